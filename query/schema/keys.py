"""GraphQL types and resolvers for API keys: admins of a tenant list, create and revoke
that tenant's keys. The token of a new key is in the creation's answer and nowhere else."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from ...auth import Forbidden
from ...storage import keys as stored
from ..context import QueryContext
from .scalars import Time

strawberry.enum(stored.Role, name="Role")


@strawberry.type
class ApiKey:
    id: str
    tenant: str
    role: stored.Role
    name: str
    created_at: Time
    revoked_at: Time | None

    @strawberry.field
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def of(cls, key: stored.ApiKey) -> ApiKey:
        return cls(
            id=key.id,
            tenant=key.tenant,
            role=key.role,
            name=key.name,
            created_at=Time(key.created_unix_nano),
            revoked_at=None if key.revoked_unix_nano is None else Time(key.revoked_unix_nano),
        )


@strawberry.type
class NewApiKey:
    key: ApiKey
    token: str = strawberry.field(description="The key to send as 'Authorization: Bearer'."
                                  " Shown only here: Argus keeps only its hash.")


def _admin_keys(info: Info[QueryContext, Any]) -> tuple[stored.KeyStore, str]:
    context = info.context
    context.caller.require(context.caller.role.may_manage_keys(), "manage API keys")
    if context.keys is None:
        raise Forbidden("API keys are not managed by this server")
    return context.keys, context.tenant


async def resolve_api_keys(info: Info[QueryContext, Any]) -> list[ApiKey]:
    store, tenant = _admin_keys(info)
    return [ApiKey.of(key) for key in await store.list(tenant)]


async def create_api_key(
    info: Info[QueryContext, Any],
    role: stored.Role,
    name: str = "",
) -> NewApiKey:
    store, tenant = _admin_keys(info)
    created = await store.create(tenant, role, name)
    return NewApiKey(key=ApiKey.of(created.key), token=created.token)


async def revoke_api_key(info: Info[QueryContext, Any], id: str) -> ApiKey:
    store, tenant = _admin_keys(info)
    try:
        return ApiKey.of(await store.revoke(id, tenant))
    except stored.KeyNotFound as exc:
        raise ValueError(str(exc)) from None
