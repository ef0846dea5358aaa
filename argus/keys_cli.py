"""`argus keys create|list|revoke`: manage API keys in the data dir's key store.

Works while `argus serve` runs on the same data dir: the server picks changes up within a
second. The token of a new key goes to stdout (and only there), the rest to stderr, so
`TOKEN=$(argus keys create ...)` works.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from pathlib import Path

from .config import ConfigError, Settings, load_settings, meta_postgres_dsn
from .storage.errors import StoreError
from .storage.keys import ApiKey, InvalidKeyRequest, KeyNotFound, Role
from .storage.registry import open_key_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML config file")
    common.add_argument("--data-dir", type=Path,
                        help="data dir of the server (default ./argus-data)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[common],
                                help="create a key and print its token once")
    create.add_argument("--tenant", required=True, help="tenant the key belongs to")
    create.add_argument("--role", required=True, choices=[role.value for role in Role],
                        help="ingest: send telemetry; viewer: query; editor: also configure;"
                        " admin: everything, including keys")
    create.add_argument("--name", default="", help="what the key is for (shown in lists)")
    listing = actions.add_parser("list", parents=[common], help="list keys (revoked ones too)")
    listing.add_argument("--tenant", help="only this tenant's keys")
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a key by id")
    revoke.add_argument("id", help="the key's id (the part after argus_ in the token)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config, overrides={"data_dir": args.data_dir})
        return asyncio.run(_run(args, settings))
    except (ConfigError, InvalidKeyRequest, KeyNotFound, StoreError) as exc:
        print(f"argus keys: {exc}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    store = await open_key_store(
        settings.data_dir, meta_postgres_dsn(settings), settings.postgres.schema
    )
    try:
        if args.action == "create":
            created = await store.create(args.tenant, Role(args.role), args.name)
            print(f"created key {created.key.id} ({created.key.role.value}) for tenant"
                  f" {created.key.tenant}; the token is shown only now:", file=sys.stderr)
            print(created.token)
        elif args.action == "list":
            _print_table(await store.list(args.tenant))
        else:
            key = await store.revoke(args.id)
            print(f"revoked key {key.id} of tenant {key.tenant}", file=sys.stderr)
    finally:
        await store.close()
    return 0


def _print_table(keys: list[ApiKey]) -> None:
    rows = [("ID", "TENANT", "ROLE", "CREATED", "REVOKED", "NAME")]
    rows += [
        (key.id, key.tenant, key.role.value, _time(key.created_unix_nano),
         _time(key.revoked_unix_nano) if key.revoked_unix_nano else "-", key.name)
        for key in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
              + "  " + row[-1])


def _time(unix_nano: int | None) -> str:
    if unix_nano is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(unix_nano / 1e9, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
