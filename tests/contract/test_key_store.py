"""The key store contract, and the authenticator that reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argus.storage.keys import InvalidKeyRequest, KeyNotFound, KeyStore, Role, parse_token
from argus.storage.model import DEFAULT_TENANT

from argus.auth import Authenticator, Forbidden, Unauthenticated

KEY_BACKENDS = ["embedded", "postgres"]


@pytest.fixture(params=KEY_BACKENDS)
async def key_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    if request.param == "postgres":
        import os
        import secrets

        from argus.storage.backends.postgres_common import drop_schema
        from argus.storage.backends.postgres_keys import PostgresKeyStore

        dsn = os.environ.get("ARGUS_TEST_POSTGRES_DSN")
        if not dsn:
            pytest.skip("postgres: ARGUS_TEST_POSTGRES_DSN is not set (tests/run.sh sets it)")
        schema = f"argus_test_{secrets.token_hex(6)}"  # a fresh schema per test
        pg_store = await PostgresKeyStore.open(dsn, schema=schema, pool_size=2)
        try:
            yield pg_store
        finally:
            await pg_store.close()
            await drop_schema(dsn, schema)
        return

    from argus.storage.backends.sqlite_keys import SqliteKeyStore

    store = await SqliteKeyStore.open(tmp_path / "keys.db")
    yield store
    await store.close()


async def test_create_list_revoke(key_store: KeyStore) -> None:
    first = await key_store.create("acme", Role.ADMIN, "ops")
    second = await key_store.create("acme", Role.INGEST, "")
    other = await key_store.create("umbrella", Role.VIEWER, "grafana")
    assert parse_token(first.token) == (first.key.id, parse_token(first.token)[1])  # type: ignore[index]
    assert [k.id for k in await key_store.list("acme")] == [first.key.id, second.key.id]
    assert {k.id for k in await key_store.list()} == {first.key.id, second.key.id, other.key.id}
    listed = (await key_store.list("umbrella"))[0]
    assert (listed.tenant, listed.role, listed.name, listed.revoked) == (
        "umbrella", Role.VIEWER, "grafana", False
    )
    assert listed.matches(parse_token(other.token)[1])  # type: ignore[index]
    assert not listed.matches("x" * 43)

    with pytest.raises(KeyNotFound):
        await key_store.revoke(other.key.id, tenant="acme")  # not acme's key
    revoked = await key_store.revoke(other.key.id, tenant="umbrella")
    assert revoked.revoked
    again = await key_store.revoke(other.key.id)
    assert again.revoked_unix_nano == revoked.revoked_unix_nano
    with pytest.raises(KeyNotFound):
        await key_store.revoke("000000000000")


async def test_tenant_names_are_checked(key_store: KeyStore) -> None:
    for bad in ("", "has space", "-leading", "x" * 64, "ü"):
        with pytest.raises(InvalidKeyRequest):
            await key_store.create(bad, Role.ADMIN, "")


async def test_version_changes_with_every_change(key_store: KeyStore) -> None:
    version = await key_store.changed_since(-1)
    assert version is not None
    assert await key_store.changed_since(version) is None
    created = await key_store.create("acme", Role.ADMIN, "")
    after_create = await key_store.changed_since(version)
    assert after_create is not None
    await key_store.revoke(created.key.id)
    assert await key_store.changed_since(after_create) is not None


async def test_authenticator_follows_the_store(key_store: KeyStore) -> None:
    authenticator = await Authenticator.load(key_store)
    assert not authenticator.enforced
    assert authenticator.authenticate(None).tenant == DEFAULT_TENANT

    created = await key_store.create("acme", Role.VIEWER, "")
    assert await authenticator.refresh(key_store)
    assert not await authenticator.refresh(key_store)  # nothing changed since
    principal = authenticator.authenticate(f"Bearer {created.token}")
    assert (principal.tenant, principal.role, principal.key_id) == ("acme", Role.VIEWER, created.key.id)
    assert authenticator.authenticate(f"bearer   {created.token}  ").tenant == "acme"
    for header in (None, "", created.token, "Basic abc", f"Bearer {created.token}x", "Bearer "):
        with pytest.raises(Unauthenticated):
            authenticator.authenticate(header)
    with pytest.raises(Forbidden):
        principal.require(principal.role.may_manage_keys(), "manage API keys")

    # Revoking the last key keeps keys enforced: nobody gets in, rather than everybody.
    await key_store.revoke(created.key.id)
    await authenticator.refresh(key_store)
    assert authenticator.enforced
    with pytest.raises(Unauthenticated):
        authenticator.authenticate(f"Bearer {created.token}")
