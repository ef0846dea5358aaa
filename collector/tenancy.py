"""Which tenant a request belongs to: the tenant of its API key (`Authorization: Bearer`
on HTTP, the `authorization` metadata entry on gRPC), or the default tenant while no
keys exist."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..auth import Authenticator
from ..auth import Unauthenticated as UnknownKey
from ..storage.model import DEFAULT_TENANT
from .errors import PermissionDenied, Unauthenticated

TenantResolver = Callable[[Mapping[str, str]], str]


def single_tenant(headers: Mapping[str, str]) -> str:
    return DEFAULT_TENANT


def key_tenant(authenticator: Authenticator) -> TenantResolver:
    """Resolve by API key; raises Unauthenticated or PermissionDenied (a key whose role
    may not ingest)."""

    def resolve(headers: Mapping[str, str]) -> str:
        try:
            principal = authenticator.authenticate(headers.get("authorization"))
        except UnknownKey as exc:
            raise Unauthenticated(str(exc)) from None
        if not principal.role.may_ingest():
            raise PermissionDenied(
                f"API key role {principal.role.value!r} may not send telemetry;"
                " use an ingest or admin key"
            )
        return principal.tenant

    return resolve
