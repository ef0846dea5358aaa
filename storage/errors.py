"""Errors raised by stores. Callers decide by class: retry a `RetryableStoreError`, never a
`PermanentStoreError`."""


class StoreError(Exception):
    """Base class of every store failure."""


class RetryableStoreError(StoreError):
    """The store could not take the request now (down, busy, timed out); try again later."""


class PermanentStoreError(StoreError):
    """The request can never succeed as sent (bad data, schema conflict)."""


class QueryError(StoreError):
    """A query is invalid or exceeds a limit; the message says which and is shown to users."""


class Unsupported(StoreError):
    """The backend cannot do what was asked; see its declared capabilities."""
