"""Who is calling: API keys checked against an in-memory snapshot of the key store.

Both processes (receivers and API) hold an `Authenticator` and refresh it in the
background, so checking a key costs a dict lookup and one SHA-256 on the request path and
never waits for the store. A created or revoked key takes effect within `POLL_SECONDS`.

Keys are enforced as soon as the store holds any key, revoked ones included: revoking the
last key locks the deployment rather than opening it. With no key at all every caller is
the admin of the default tenant; `argus serve` allows that only on loopback listeners
unless told `--insecure`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from .storage.errors import StoreError
from .storage.keys import ApiKey, KeyStore, Role, parse_token
from .storage.model import DEFAULT_TENANT

POLL_SECONDS = 1.0
log = logging.getLogger("argus.auth")


class AuthError(Exception):
    """Base class: the caller may not do what it asked."""


class Unauthenticated(AuthError):
    """No key, a malformed key, or a key that is unknown or revoked."""


class Forbidden(AuthError):
    """A valid key whose role does not allow the action."""


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: str
    role: Role
    key_id: str | None  # None when keys are not enforced

    def require(self, allowed: bool, action: str) -> None:
        if not allowed:
            raise Forbidden(f"API key role {self.role.value!r} may not {action}")


OPEN_PRINCIPAL = Principal(DEFAULT_TENANT, Role.ADMIN, None)


class Authenticator:
    def __init__(self, keys: Mapping[str, ApiKey] | None = None, version: int = -1) -> None:
        self._keys = dict(keys or {})
        self._version = version

    @property
    def enforced(self) -> bool:
        return bool(self._keys)

    @classmethod
    async def load(cls, store: KeyStore) -> Authenticator:
        authenticator = cls()
        await authenticator.refresh(store)
        return authenticator

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an `Authorization` header value (or gRPC metadata entry)."""
        if not self._keys:
            return OPEN_PRINCIPAL
        if not authorization:
            raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("expected 'Authorization: Bearer <key>'")
        parsed = parse_token(token.strip())
        key = self._keys.get(parsed[0]) if parsed else None
        if parsed is None or key is None or key.revoked or not key.matches(parsed[1]):
            raise Unauthenticated("invalid or revoked API key")
        return Principal(key.tenant, key.role, key.id)

    async def refresh(self, store: KeyStore) -> bool:
        """Reload the snapshot if the key set changed; True if it did."""
        version = await store.changed_since(self._version)
        if version is None:
            return False
        keys = await store.list()
        self._keys = {key.id: key for key in keys}
        self._version = version
        return True

    async def keep_fresh(self, store: KeyStore, interval: float = POLL_SECONDS) -> None:
        """Refresh forever; a failing poll is logged and retried, the old snapshot stays."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh(store)
            except StoreError:  # keep serving on the last good snapshot
                log.exception("could not refresh API keys; keeping the previous set")
