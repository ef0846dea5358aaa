"""Settings: TOML, ARGUS_* variables and overrides, and the errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from argus.config import ConfigError, HostPort, load_settings


def test_defaults_need_nothing() -> None:
    settings = load_settings(None, environ={})
    assert settings.server.api == HostPort("127.0.0.1", 8080)
    assert settings.storage.traces.backend == "embedded"
    assert settings.storage.metrics.also_write_to == ()


def test_toml_env_and_flags_in_rising_precedence(tmp_path: Path) -> None:
    config = tmp_path / "argus.toml"
    config.write_text(
        '[server]\napi = "127.0.0.1:9000"\n'
        '[storage.metrics]\nbackend = "influxdb"\nalso_write_to = ["embedded"]\n'
        '[influxdb]\nurl = "http://127.0.0.1:8086"\ndatabase = "ops"\n'
        '[storage.traces]\nbackend = "postgres"\n[postgres]\ndsn = "postgresql://pg/argus"\n'
    )
    settings = load_settings(
        config,
        environ={"ARGUS_SERVER_API": "127.0.0.1:9100", "ARGUS_INFLUXDB_DATABASE": "env"},
        overrides={"server.api": HostPort("127.0.0.1", 9200)},
    )
    assert settings.server.api.port == 9200
    assert settings.storage.metrics.backend == "influxdb"
    assert settings.storage.metrics.also_write_to == ("embedded",)
    assert settings.influxdb.database == "env"
    assert settings.storage.traces.backend == "postgres"
    assert settings.postgres.dsn == "postgresql://pg/argus"


def test_lists_from_the_environment_are_comma_separated() -> None:
    settings = load_settings(None, environ={
        "ARGUS_STORAGE_LOGS_BACKEND": "elasticsearch",
        "ARGUS_ELASTICSEARCH_URL": "http://es:9200",
        "ARGUS_STORAGE_LOGS_ALSO_WRITE_TO": "embedded",
    })
    assert settings.storage.logs.also_write_to == ("embedded",)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ARGUS_STORAGE_TRACES_BACKEND": "influxdb"}, "'storage.traces.backend'"),
        ({"ARGUS_STORAGE_METRICS_BACKEND": "influxdb"}, "'influxdb.url' is empty"),
        ({"ARGUS_STORAGE_LOGS_ALSO_WRITE_TO": "embedded"}, "'storage.logs.also_write_to' repeats"),
        ({"ARGUS_INFLUXDB_WRITE_API": "v3"}, "'influxdb.write_api'"),
        ({"ARGUS_NO_SUCH_THING": "1"}, "ARGUS_NO_SUCH_THING"),
        ({"ARGUS_INGEST_MAX_INFLIGHT_BYTES": "lots"}, "'ingest.max_inflight_bytes'"),
        ({"ARGUS_SERVER_INSECURE": "maybe"}, "'server.insecure'"),
    ],
)
def test_bad_settings_name_the_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, environ=environ)


def test_unknown_toml_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "argus.toml"
    config.write_text("[storage.traces]\nbackned = 'embedded'\n")
    with pytest.raises(ConfigError, match="storage.traces.backned"):
        load_settings(config, environ={})


def test_per_tenant_rate_limits_from_toml(tmp_path: Path) -> None:
    config = tmp_path / "argus.toml"
    config.write_text(
        "[limits]\nitems_per_second = 1000\n"
        "[limits.tenants.acme]\nitems_per_second = 5e6\n"
        "[limits.tenants.tiny]\nrequests_per_second = 5\nburst_seconds = 1\n"
    )
    limits = load_settings(config, environ={}).limits
    assert limits.tenants["acme"].items_per_second == 5e6
    assert limits.tenants["acme"].requests_per_second is None  # the default applies
    assert limits.tenants["tiny"].requests_per_second == 5


def test_unknown_key_in_a_tenant_override_is_named(tmp_path: Path) -> None:
    config = tmp_path / "argus.toml"
    config.write_text("[limits.tenants.acme]\nitems_per_secnd = 5\n")
    with pytest.raises(ConfigError, match="limits.tenants.acme.items_per_secnd"):
        load_settings(config, environ={})


def test_tenant_overrides_become_rate_limits(tmp_path: Path) -> None:
    from argus.collector.ratelimit import RateLimits

    from argus.receiver_process import tenant_rate_limits

    config = tmp_path / "argus.toml"
    config.write_text("[limits]\nrequests_per_second = 7\n[limits.tenants.acme]\nitems_per_second = 9\n")
    limits = load_settings(config, environ={}).limits
    defaults = RateLimits(limits.requests_per_second, limits.items_per_second, limits.burst_seconds)
    assert tenant_rate_limits(limits, defaults) == {"acme": RateLimits(7, 9, limits.burst_seconds)}
