"""API keys: the contract of the key store, and the token format.

A key belongs to one tenant and has one role. The token handed to its owner once, at
creation, is `argus_<id>_<secret>`: `id` is public (it names the key in lists, logs and
revocations), `secret` is 256 random bits. Stores keep only the SHA-256 of the secret: a
fast hash is the right one for high-entropy random tokens (a slow password hash protects
guessable secrets, which these are not), and it keeps verification off the request's
critical path. Whoever reads the store's file learns no usable token.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

TOKEN_PREFIX = "argus"
_TOKEN = re.compile(r"^argus_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class Role(enum.StrEnum):
    """What a key may do. `ingest` sends telemetry; the others use the API, each role
    able to do what the one before it can: viewer reads, editor also changes
    configuration (rules, dashboards), admin also manages keys and may ingest."""

    INGEST = "ingest"
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    def may_ingest(self) -> bool:
        return self in (Role.INGEST, Role.ADMIN)

    def may_read(self) -> bool:
        return self in (Role.VIEWER, Role.EDITOR, Role.ADMIN)

    def may_edit(self) -> bool:
        return self in (Role.EDITOR, Role.ADMIN)

    def may_manage_keys(self) -> bool:
        return self is Role.ADMIN


class KeyNotFound(LookupError):
    """No key with that id in the tenant."""


class InvalidKeyRequest(ValueError):
    """A tenant name or key field that cannot be stored; the message says which."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: everything but the secret."""

    id: str
    tenant: str
    role: Role
    name: str
    created_unix_nano: int
    secret_sha256: bytes
    revoked_unix_nano: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_unix_nano is not None

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_sha256, hash_secret(secret))

    def revoked_now(self) -> ApiKey:
        """This key revoked at this moment (for a store to persist)."""
        return dataclasses.replace(self, revoked_unix_nano=time.time_ns())


@dataclass(frozen=True, slots=True)
class NewKey:
    key: ApiKey
    token: str  # shown once; never stored


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def generate_token() -> tuple[str, str, str]:
    """A fresh (token, id, secret)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{TOKEN_PREFIX}_{key_id}_{secret}", key_id, secret


def new_key(tenant: str, role: Role, name: str) -> NewKey:
    """A fresh key for a store to persist (everything but the token). Raises
    InvalidKeyRequest for a bad tenant name."""
    check_tenant_name(tenant)
    token, key_id, secret = generate_token()
    key = ApiKey(key_id, tenant, Role(role), name, time.time_ns(), hash_secret(secret))
    return NewKey(key, token)


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    match = _TOKEN.match(token)
    return (match.group(1), match.group(2)) if match else None


def check_tenant_name(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise InvalidKeyRequest(
            f"invalid tenant {tenant!r}: 1-63 characters, letters, digits, '_', '.', '-',"
            " starting with a letter or digit"
        )
    return tenant


class KeyStore(Protocol):
    """Where API keys live. Every process of one deployment sees the same keys."""

    async def create(self, tenant: str, role: Role, name: str) -> NewKey:
        """A new key. Raises InvalidKeyRequest for a bad tenant name."""
        ...

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        """Keys of one tenant (every tenant for None), revoked ones included, oldest first."""
        ...

    async def revoke(self, key_id: str, tenant: str | None = None) -> ApiKey:
        """Revoke a key (of `tenant` only, when given). Revoking twice keeps the first
        time. Raises KeyNotFound."""
        ...

    async def changed_since(self, version: int) -> int | None:
        """A version of the key set: None when it is still `version`, else the new one.
        Cheap enough to poll every second."""
        ...

    async def close(self) -> None: ...
