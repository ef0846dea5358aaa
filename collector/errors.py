"""Why the collector refuses a request. Receivers map each class to their protocol's
status (HTTP status + google.rpc.Status, or a gRPC code) in one place each."""


class IngestError(Exception):
    """Base class: the request was not accepted and nothing of it was stored."""


class InvalidRequest(IngestError):
    """Undecodable or invalid data; retrying the same bytes can never succeed."""


class PayloadTooLarge(IngestError):
    """The body exceeds the size limit, compressed or after decompression."""


class UnsupportedMediaType(IngestError):
    """A content type or content encoding the receiver does not speak."""


class Unavailable(IngestError):
    """A transient failure (the write-ahead log could not be written); retry later."""

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Throttled(IngestError):
    """The tenant exceeds a rate limit; retry after the given time."""

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Unauthenticated(IngestError):
    """No API key, or one that is unknown or revoked."""


class PermissionDenied(IngestError):
    """A valid API key whose role may not send telemetry."""
