"""Typed settings: defaults, then a TOML file, then `ARGUS_*` environment variables, then
command-line flags. Every source is validated against the same schema, and the first bad
key or value stops start-up with a `ConfigError` naming it.

A key `section.name` in TOML is `ARGUS_SECTION_NAME` in the environment; top-level keys
are `ARGUS_NAME` (e.g. `data_dir` is `ARGUS_DATA_DIR`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .query.service import QueryLimits as QuerySettings

ENV_PREFIX = "ARGUS_"
# Variables read by the test suite and tools, not by the server.
_ENV_IGNORED_PREFIXES = ("ARGUS_TEST_",)


class ConfigError(ValueError):
    """A setting is unknown or invalid; the message names the key and its source."""


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HostPort:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        return cls(host.strip("[]"), int(port_text))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may resolve to anything
            return False


@dataclass(frozen=True, slots=True)
class ServerSettings:
    otlp_http: HostPort = HostPort("127.0.0.1", 4318)
    otlp_grpc: HostPort = HostPort("127.0.0.1", 4317)
    api: HostPort = HostPort("127.0.0.1", 8080)
    # Without API keys Argus is open to anyone who reaches it: it then refuses to listen
    # on anything but loopback unless this is set.
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class IngestSettings:
    # Limits on one OTLP request body, as received and after gzip decompression.
    max_request_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    # Write-ahead log segment size; acknowledged data lives here until it is indexed.
    wal_segment_bytes: int = 64 * 1024 * 1024
    # How much WAL data the indexer turns into one store write.
    index_batch_bytes: int = 4 * 1024 * 1024
    # Backpressure: above this many acknowledged-but-unindexed bytes per signal, receivers
    # answer 503 / UNAVAILABLE with Retry-After instead of accepting more.
    max_unindexed_bytes: int = 2 * 1024 * 1024 * 1024
    # Memory: request bytes (raw and inflated) held by all requests in progress together.
    # Over it, receivers answer 503 / UNAVAILABLE with Retry-After.
    max_inflight_bytes: int = 256 * 1024 * 1024
    # A sink in `also_write_to` that falls further behind than this (e.g. its server is
    # down) gives up its oldest data, logged and counted, instead of holding the log.
    max_secondary_lag_bytes: int = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """One tenant's rate limits where they differ from the defaults (unset: the default)."""

    requests_per_second: float | None = None
    items_per_second: float | None = None
    burst_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Per-tenant ingest limits (rates as token buckets, attributes, timestamps); 0 turns a
    limit off."""

    requests_per_second: float = 10_000.0
    items_per_second: float = 2_000_000.0
    burst_seconds: float = 2.0
    # Per span, event, link, log record and data point, as the OTel SDK limits do.
    max_attributes_per_item: int = 128
    max_attribute_value_length: int = 0
    # How far before / after its receive time an item's timestamp may lie (span start,
    # data point time, log time or else observed time); items outside are rejected as a
    # partial success and counted. 0 turns a bound off. The past bound is off by default
    # on purpose: back-filling old data is legitimate, and the official OTLP examples
    # (tests/fixtures/otlp-examples) carry 2018 timestamps and must be accepted.
    max_past_seconds: float = 0.0
    max_future_seconds: float = 3600.0
    # Per-tenant rate overrides, TOML only: [limits.tenants.acme] items_per_second = 5e6
    tenants: dict[str, TenantLimits] = field(default_factory=dict)


# Which backends can serve each signal. `embedded` needs no server.
BACKENDS = {
    "traces": ("embedded", "postgres"),
    "metrics": ("embedded", "influxdb"),
    "logs": ("embedded", "elasticsearch"),
}


@dataclass(frozen=True, slots=True)
class SignalStorage:
    """Where one signal goes: `backend` stores it and serves its queries; `also_write_to`
    names more sinks that get a copy (each with its own position in the write-ahead log,
    retries and lag), e.g. embedded + InfluxDB."""

    backend: str = "embedded"
    also_write_to: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StorageSettings:
    traces: SignalStorage = field(default_factory=SignalStorage)
    metrics: SignalStorage = field(default_factory=SignalStorage)
    logs: SignalStorage = field(default_factory=SignalStorage)
    meta: str = "embedded"  # API keys (later rules, dashboards): "embedded" or "postgres"


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    dsn: str = ""  # postgresql://user@host:5432/db
    schema: str = "argus"
    pool_size: int = 8


@dataclass(frozen=True, slots=True)
class InfluxDBSettings:
    url: str = ""  # http://host:8086
    database: str = "argus"  # v1 API (1.x; 2.x/3.x through their v1-compatible API)
    write_api: str = "v1"  # "v2": influxdb-client's /api/v2/write with org, bucket, token
    org: str = ""
    bucket: str = ""
    token: str = ""
    username: str = ""
    password: str = ""
    create_database: bool = True  # CREATE DATABASE on start (1.x; needs admin rights)


@dataclass(frozen=True, slots=True)
class ElasticsearchSettings:
    url: str = ""  # http://host:9200
    index_prefix: str = "argus"
    api_key: str = ""


@dataclass(frozen=True, slots=True)
class TenantRetention:
    """One tenant's retention where it differs from the defaults (unset: the default)."""

    traces_days: float | None = None
    metrics_days: float | None = None
    logs_days: float | None = None


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long data is kept, per signal, in days; 0 keeps it forever (the default, so
    that nothing is deleted that nobody asked to delete). Enforced on every sink."""

    traces_days: float = 0.0
    metrics_days: float = 0.0
    logs_days: float = 0.0
    interval_seconds: float = 600.0
    # TOML only: [retention.tenants.acme] logs_days = 30
    tenants: dict[str, TenantRetention] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """Argus's own metrics sent to its own OTLP/HTTP receiver (see argus/selfexport.py)."""

    self_export: bool = False
    self_export_interval_seconds: float = 15.0
    # An ingest key for the export; required when API keys are in use.
    self_export_key: str = ""


def meta_postgres_dsn(settings: Settings) -> str | None:
    """The DSN of the metadata store when it is PostgreSQL, else None (embedded)."""
    return settings.postgres.dsn if settings.storage.meta == "postgres" else None


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("./argus-data")
    server: ServerSettings = field(default_factory=ServerSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    query: QuerySettings = field(default_factory=QuerySettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    postgres: PostgresSettings = field(default_factory=PostgresSettings)
    influxdb: InfluxDBSettings = field(default_factory=InfluxDBSettings)
    elasticsearch: ElasticsearchSettings = field(default_factory=ElasticsearchSettings)


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from the file, the environment and `overrides` (dotted keys such as
    "server.api", already typed or as strings), in rising order of precedence."""
    values: dict[str, tuple[Any, str]] = {}
    if config_file is not None:
        values.update(_from_toml(config_file))
    values.update(_from_env(os.environ if environ is None else environ))
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = (value, "command line")
    settings: Settings = _build(Settings, values, prefix="")
    _check_storage(settings)
    return settings


def _check_storage(settings: Settings) -> None:
    """Every named backend must serve the signal and have its server configured."""
    servers = {
        "postgres": ("postgres.dsn", settings.postgres.dsn),
        "influxdb": ("influxdb.url", settings.influxdb.url),
        "elasticsearch": ("elasticsearch.url", settings.elasticsearch.url),
    }
    for signal, allowed in BACKENDS.items():
        routing: SignalStorage = getattr(settings.storage, signal)
        names = [("backend", routing.backend)]
        names += [("also_write_to", name) for name in routing.also_write_to]
        for key, name in names:
            if name not in allowed:
                raise ConfigError(
                    f"invalid value {name!r} for setting 'storage.{signal}.{key}': {signal}"
                    f" can go to {', '.join(allowed)}"
                )
            if name in servers and not servers[name][1]:
                raise ConfigError(
                    f"storage.{signal} uses {name}, but setting {servers[name][0]!r} is empty"
                )
        if routing.backend in routing.also_write_to or len(set(routing.also_write_to)) < len(
            routing.also_write_to
        ):
            raise ConfigError(f"setting 'storage.{signal}.also_write_to' repeats a backend")
    if settings.storage.meta not in ("embedded", "postgres"):
        raise ConfigError(
            f"invalid value {settings.storage.meta!r} for setting 'storage.meta':"
            " use embedded or postgres"
        )
    if settings.storage.meta == "postgres" and not settings.postgres.dsn:
        raise ConfigError("storage.meta uses postgres, but setting 'postgres.dsn' is empty")
    if settings.influxdb.write_api not in ("v1", "v2"):
        raise ConfigError(
            f"invalid value {settings.influxdb.write_api!r} for setting 'influxdb.write_api':"
            " use v1 or v2"
        )


def _from_toml(path: Path) -> dict[str, tuple[Any, str]]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    source = f"config file {path}"
    return {key: (value, source) for key, value in _flatten(document, "").items()}


def _flatten(table: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and _is_section(dotted):
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _is_section(dotted: str) -> bool:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    head = dotted.split(".", 1)[0]
    return head in fields and _is_table(_field_type(Settings, head))


def _from_env(environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    known = {key.replace(".", "_").upper(): key for key in _all_keys(Settings, "")}
    found: dict[str, tuple[Any, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name.startswith(_ENV_IGNORED_PREFIXES):
            continue
        key = known.get(name[len(ENV_PREFIX) :])
        if key is None:
            raise ConfigError(f"unknown setting in environment variable {name}")
        found[key] = (value, f"environment variable {name}")
    return found


def _all_keys(cls: type, prefix: str) -> list[str]:
    keys: list[str] = []
    for f in dataclasses.fields(cls):
        kind = _field_type(cls, f.name)
        if _is_table(kind):
            keys.extend(_all_keys(typing.cast(type, kind), f"{prefix}{f.name}."))
        elif not _is_named_tables(kind):  # those are TOML-only
            keys.append(f"{prefix}{f.name}")
    return keys


def _is_table(kind: Any) -> bool:
    """Settings sections are dataclasses; HostPort is a dataclass too but a single value."""
    return dataclasses.is_dataclass(kind) and kind is not HostPort


def _is_named_tables(kind: Any) -> bool:
    """dict[str, <settings dataclass>]: a table of tables named by the user."""
    return typing.get_origin(kind) is dict and _is_table(typing.get_args(kind)[1])


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _build(cls: type, values: dict[str, tuple[Any, str]], prefix: str) -> Any:
    own = {key: item for key, item in values.items() if key.startswith(prefix)}
    names = {f.name for f in dataclasses.fields(cls)}
    for key, (_, source) in own.items():
        if key[len(prefix) :].split(".", 1)[0] not in names:
            raise ConfigError(f"unknown setting {key!r} in {source}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        kind = _field_type(cls, f.name)
        if _is_table(kind):
            if key in own:
                raise ConfigError(f"setting {key!r} in {own[key][1]} must be a table")
            kwargs[f.name] = _build(typing.cast(type, kind), values, f"{key}.")
        elif _is_named_tables(kind):
            if key in own:
                raise ConfigError(f"setting {key!r} in {own[key][1]} must be a table of tables")
            names = {k[len(key) + 1 :].split(".", 1)[0] for k in own if k.startswith(f"{key}.")}
            item_type = typing.get_args(kind)[1]
            kwargs[f.name] = {name: _build(item_type, values, f"{key}.{name}.") for name in names}
        elif key in own:
            raw, source = own[key]
            kwargs[f.name] = _coerce(kind, raw, key, source)
    return cls(**kwargs)


def _coerce(kind: Any, raw: Any, key: str, source: str) -> Any:
    try:
        return _convert(kind, raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value {raw!r} for setting {key!r} in {source}: {exc}") from None


def _convert(kind: Any, raw: Any) -> Any:
    if isinstance(raw, kind if isinstance(kind, type) else ()) and kind is not bool:
        return raw
    if kind is bool:
        return _to_bool(raw)
    if kind is int:
        if isinstance(raw, bool):
            raise TypeError("expected an integer")
        value = int(raw)
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if kind is float:
        return float(raw)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
        (inner,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _convert(inner, raw)
    if kind is str:
        return str(raw)
    if kind is Path:
        return Path(str(raw))
    if kind is HostPort:
        return HostPort.parse(str(raw))
    if typing.get_origin(kind) is tuple:  # tuple[str, ...]: a TOML list or "a,b" from env
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple):
            raise TypeError("expected a list of strings")
        return tuple(str(item).strip() for item in items if str(item).strip())
    raise TypeError(f"unsupported setting type {kind}")


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")
