"""Plumbing shared by Elasticsearch stores: the client, API compatibility, errors.

API compatibility. The elasticsearch 9 client marks every request
`application/vnd.elasticsearch+json; compatible-with=9`, which an Elasticsearch 8 server
refuses (400 media_type_header_exception), and setting other headers on the client does
not help: each API method sets its own, which the client then rewrites. So the HTTP node
class below rewrites them on the way out instead: to plain `application/json` while the
server's version is unknown (any server accepts that), then to the detected major version
(8 for an 8.x server; 9 for 9.x and, through its REST compatibility, 10.x).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, cast

from elastic_transport import ApiError as TransportApiError
from elastic_transport import BaseAsyncNode, HttpHeaders, SerializationError, TransportError
from elastic_transport.client_utils import DEFAULT, DefaultType
from elasticsearch import AsyncElasticsearch

from ..errors import PermanentStoreError, QueryError, RetryableStoreError, StoreError

if TYPE_CHECKING:
    from elastic_transport._node import NodeApiResponse

CLIENT_MAJOR = 9  # the client line these stores are written for (pyproject: elasticsearch>=8)
OLDEST_SERVER_MAJOR = 8

_VENDOR_MIMETYPE = re.compile(
    r"application/vnd\.elasticsearch\+([A-Za-z0-9.-]+)\s*;\s*compatible-with=\d+"
)
_COMPAT_HEADERS = ("accept", "content-type")


class ApiCompat:
    """Which REST API version requests ask for: None (plain JSON) until detected."""

    def __init__(self, major: int | None = None) -> None:
        self.major = major

    def rewrite(self, headers: HttpHeaders) -> HttpHeaders:
        """`headers` with the client's compatibility media types set to `self.major`."""
        if not any(_VENDOR_MIMETYPE.search(headers.get(name) or "") for name in _COMPAT_HEADERS):
            return headers
        rewritten = headers.copy()
        for name in _COMPAT_HEADERS:
            value = rewritten.get(name)
            if value:
                rewritten[name] = _VENDOR_MIMETYPE.sub(self._replacement, value)
        return rewritten

    def _replacement(self, match: re.Match[str]) -> str:
        if self.major is None:
            return f"application/{match.group(1)}"
        return f"application/vnd.elasticsearch+{match.group(1)}; compatible-with={self.major}"


class _CompatNodeMixin:
    """Rewrites the compatibility headers of every request (see the module docstring)."""

    compat: ClassVar[ApiCompat]

    async def perform_request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: DefaultType | float | None = DEFAULT,
    ) -> NodeApiResponse:
        if headers is not None:
            headers = self.compat.rewrite(headers)
        response = await super().perform_request(  # type: ignore[misc]
            method, target, body=body, headers=headers, request_timeout=request_timeout
        )
        return cast("NodeApiResponse", response)


def node_class(compat: ApiCompat) -> type[BaseAsyncNode]:
    """An HTTP node class bound to `compat`: aiohttp's (the async client's default) when
    installed (`elasticsearch[async]`), else httpx's."""
    base: type[BaseAsyncNode]
    try:
        import aiohttp  # noqa: F401 - the node class imports lazily; fail here instead
        from elastic_transport import AiohttpHttpNode

        base = AiohttpHttpNode
    except ImportError:
        from elastic_transport import HttpxAsyncHttpNode

        base = HttpxAsyncHttpNode
    name = f"Argus{base.__name__}"
    return cast(type[BaseAsyncNode], type(name, (_CompatNodeMixin, base), {"compat": compat}))


def make_client(
    url: str, *, api_key: str = "", request_timeout: float = 30.0, compat: ApiCompat
) -> AsyncElasticsearch:
    return AsyncElasticsearch(
        url,
        api_key=api_key or None,
        node_class=node_class(compat),
        request_timeout=request_timeout,
        max_retries=2,
        retry_on_timeout=False,  # a timed-out bulk may have been applied: the caller decides
    )


async def detect_major(client: AsyncElasticsearch) -> int:
    """The server's major version, from `GET /` (sent as plain JSON, which every server
    accepts). PermanentStoreError for a server older than OLDEST_SERVER_MAJOR."""
    info = (await client.info()).body
    number = str(info.get("version", {}).get("number", ""))
    try:
        major = int(number.split(".")[0])
    except ValueError:
        raise PermanentStoreError(f"Elasticsearch sent no usable version: {number!r}") from None
    if major < OLDEST_SERVER_MAJOR:
        raise PermanentStoreError(
            f"Elasticsearch {number} is too old: version {OLDEST_SERVER_MAJOR} or newer is needed"
        )
    return major


def compat_major(server_major: int) -> int:
    """The API version to ask a server of this major version for."""
    return min(server_major, CLIENT_MAJOR)


# ---------------------------------------------------------------------------- errors


def error_type(exc: Exception) -> str:
    """The `error.type` of an API error's body ("" for other errors and bodies)."""
    if not isinstance(exc, TransportApiError):
        return ""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("type", ""))
    return ""


def describe(error: Any) -> str:
    """`type: reason (caused by: ...)` of an Elasticsearch error object, or its text."""
    if not isinstance(error, dict):
        return str(error)[:500]
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        text += f" (caused by {cause.get('type', '')}: {cause['reason']})"
    return text[:1000]


def is_retryable_status(status: int) -> bool:
    # 401/403 too: a revoked or under-privileged key is fixed by configuration, and writes
    # failing permanently would dead-letter every batch in the meantime.
    return status in (401, 403, 408, 429) or status >= 500


def translate_error(
    exc: Exception, what: str, *, bad_request_is_query_error: bool = False
) -> StoreError:
    """Map a client failure onto the store error classes."""
    if isinstance(exc, TransportApiError):
        status = exc.meta.status
        body = exc.body.get("error") if isinstance(exc.body, dict) else exc.body
        message = f"Elasticsearch {what} answered {status}: {describe(body)}"
        if is_retryable_status(status):
            return RetryableStoreError(message)
        if status == 400 and bad_request_is_query_error:
            return QueryError(message)
        return PermanentStoreError(message)
    if isinstance(exc, SerializationError):
        return PermanentStoreError(f"Elasticsearch {what}: cannot serialise: {exc}")
    if isinstance(exc, TransportError):  # connection refused, TLS, timeout
        return RetryableStoreError(f"Elasticsearch {what}: {type(exc).__name__}: {exc}")
    return PermanentStoreError(f"Elasticsearch {what}: {type(exc).__name__}: {exc}")


CLIENT_ERRORS = (TransportApiError, TransportError)
