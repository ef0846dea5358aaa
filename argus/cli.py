"""The `argus` command: serve, keys, loadgen."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import ConfigError, HostPort, load_settings


def _host_port(text: str) -> HostPort:
    try:
        return HostPort.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="argus", description="Argus observability backend: OTLP in, queries out."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the collector, stores and query API")
    serve.add_argument("--config", type=Path, help="TOML config file")
    serve.add_argument("--data-dir", type=Path, help="where data lives (default ./argus-data)")
    serve.add_argument("--otlp-http", type=_host_port, metavar="HOST:PORT",
                       help="OTLP/HTTP listener (default 127.0.0.1:4318)")
    serve.add_argument("--otlp-grpc", type=_host_port, metavar="HOST:PORT",
                       help="OTLP/gRPC listener (default 127.0.0.1:4317)")
    serve.add_argument("--api", type=_host_port, metavar="HOST:PORT",
                       help="API, GraphQL and UI listener (default 127.0.0.1:8080)")
    serve.add_argument("--insecure", action="store_true", default=None,
                       help="allow non-loopback listeners without API keys (server.insecure)")
    serve.add_argument("--log-level", default="warning",
                       choices=["debug", "info", "warning", "error"])

    from . import keys_cli
    from .loadgen import add_arguments

    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    keys_cli.add_arguments(keys)

    loadgen = commands.add_parser("loadgen", help="send synthetic telemetry over OTLP/HTTP")
    add_arguments(loadgen)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from .selfmetrics import prepare_multiprocess_dir

    overrides: dict[str, Any] = {
        "data_dir": args.data_dir,
        "server.otlp_http": args.otlp_http,
        "server.otlp_grpc": args.otlp_grpc,
        "server.api": args.api,
        "server.insecure": args.insecure,
    }
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        settings = load_settings(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"argus: {exc}", file=sys.stderr)
        return 2
    try:
        prepare_multiprocess_dir(settings.data_dir)
    except OSError as exc:
        print(f"argus: cannot use data dir {settings.data_dir}: {exc}", file=sys.stderr)
        return 2
    # Imported only now: prometheus_client must see its multiprocess dir at import time.
    from .server import ReceiverDied, StartupError, serve

    try:
        asyncio.run(serve(settings))
    except StartupError as exc:
        print(f"argus: {exc}", file=sys.stderr)
        return 2
    except ReceiverDied as exc:
        print(f"argus: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _loadgen(args: argparse.Namespace) -> int:
    from .loadgen import options_from_args, run_loadgen

    try:
        report = asyncio.run(run_loadgen(options_from_args(args)))
    except KeyboardInterrupt:
        return 130
    except ConnectionError as exc:
        print(f"argus loadgen: {exc}", file=sys.stderr)
        return 1
    return 0 if report.failed_requests == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "keys":
        from . import keys_cli

        return keys_cli.run(args)
    return _loadgen(args)


if __name__ == "__main__":
    sys.exit(main())
