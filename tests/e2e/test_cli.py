"""Start-up refuses bad input with one clear line, and SIGTERM stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.harness import ArgusProcess, free_port


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARGUS_")}
    return subprocess.run(
        [sys.executable, "-m", "argus.cli", *args],
        capture_output=True, text=True, timeout=60, env={**clean, **(env or {})},
    )


def test_unknown_flag_is_named(tmp_path: Path) -> None:
    result = _run(["serve", "--data-dir", str(tmp_path), "--bogus"])
    assert result.returncode == 2 and "--bogus" in result.stderr


def test_bad_address_flag_is_named(tmp_path: Path) -> None:
    result = _run(["serve", "--data-dir", str(tmp_path), "--api", "nowhere"])
    assert result.returncode == 2 and "--api" in result.stderr


def test_unknown_environment_setting_is_named(tmp_path: Path) -> None:
    result = _run(["serve", "--data-dir", str(tmp_path)], env={"ARGUS_SERVER_APIX": "1"})
    assert result.returncode == 2
    assert result.stderr.strip() == "argus: unknown setting in environment variable ARGUS_SERVER_APIX"


def test_bad_config_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "argus.toml"
    config.write_text('[server]\napi = "127.0.0.1:1"\ncolour = "blue"\n')
    result = _run(["serve", "--config", str(config), "--data-dir", str(tmp_path)])
    assert result.returncode == 2
    assert "'server.colour'" in result.stderr and str(config) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_config_value_is_named(tmp_path: Path) -> None:
    config = tmp_path / "argus.toml"
    config.write_text("[ingest]\nmax_request_bytes = \"lots\"\n")
    result = _run(["serve", "--config", str(config), "--data-dir", str(tmp_path)])
    assert result.returncode == 2 and "'ingest.max_request_bytes'" in result.stderr


def test_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run([
            "serve", "--data-dir", str(tmp_path), "--otlp-http", f"127.0.0.1:{port}",
            "--api", f"127.0.0.1:{free_port()}",
        ])
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"argus: cannot listen on 127.0.0.1:{port} (--otlp-http): address already in use"
    )


def test_sigterm_stops_cleanly(fresh_argus: ArgusProcess) -> None:
    fresh_argus.start()
    assert fresh_argus.stop() == 0
    assert "Traceback" not in fresh_argus.log()


def test_a_dead_receiver_process_stops_argus_with_a_message(fresh_argus: ArgusProcess) -> None:
    server = fresh_argus.start()
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    (receiver,) = [
        int(child) for child in children
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]
    os.kill(receiver, signal.SIGKILL)
    assert server.process.wait(30) == 1
    assert "the OTLP receiver process exited with code -9" in server.log()


def test_grpc_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run([
            "serve", "--data-dir", str(tmp_path), "--otlp-http", f"127.0.0.1:{free_port()}",
            "--api", f"127.0.0.1:{free_port()}", "--otlp-grpc", f"127.0.0.1:{port}",
        ])
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"argus: cannot listen on 127.0.0.1:{port} (--otlp-grpc): address already in use"
    )
