"""What API keys and per-tenant limits cost on the OTLP/HTTP ingest path.

Alternates two fresh `argus serve` configurations, round after round on the same
pre-built requests, so that drift of a shared machine hits both alike:

- open:    no API keys, every rate limit off (requests_per_second = items_per_second = 0);
- guarded: one ingest key sent as `Authorization: Bearer` on every request, the default
           rate limits (token buckets checked per request and per item; high enough not
           to throttle this load).

Reports the median accepted items/s of each configuration per signal and their ratio.
Usage: python bench/ingest_auth_cost.py [--rounds 3] [--seconds 6] [--signal traces]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import ITEM_NAMES, SIGNALS, _wait_ready, free_port, run_signal  # noqa: E402

OPEN_CONFIG = "[limits]\nrequests_per_second = 0\nitems_per_second = 0\n"


def _run_once(mode: str, sig: str, args: argparse.Namespace) -> float:
    data_dir = Path(tempfile.mkdtemp(prefix=f"argus-authcost-{mode}-"))
    host, port, api = "127.0.0.1", free_port(), free_port()
    cmd = ["argus", "serve", "--data-dir", str(data_dir), "--otlp-http", f"{host}:{port}",
           "--api", f"{host}:{api}", "--otlp-grpc", f"{host}:{free_port()}"]
    token = ""
    if mode == "open":
        config = data_dir / "open.toml"
        config.write_text(OPEN_CONFIG)
        cmd += ["--config", str(config)]
    else:
        token = subprocess.run(
            ["argus", "keys", "create", "--data-dir", str(data_dir), "--tenant", "bench",
             "--role", "ingest"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        _wait_ready(f"http://{host}:{api}/readyz", proc, 60)
        result, _ = run_signal(host, port, sig, args.clients, 1, args.seconds, args.warmup,
                               args.pool, token)
        if result.other:
            raise RuntimeError(f"{mode}: non-200 answers {result.other}")
        return result.accepted / args.seconds
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--signal", choices=[*SIGNALS, "all"], default="all")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--pool", type=int, default=50)
    args = ap.parse_args()
    signals = list(SIGNALS) if args.signal == "all" else [args.signal]
    rows = []
    for sig in signals:
        rates: dict[str, list[float]] = {"open": [], "guarded": []}
        for round_ in range(args.rounds):
            order = ("open", "guarded") if round_ % 2 == 0 else ("guarded", "open")
            for mode in order:
                rate = _run_once(mode, sig, args)
                rates[mode].append(rate)
                print(f"{sig} round {round_ + 1} {mode}: {rate:,.0f} {ITEM_NAMES[sig]}/s",
                      file=sys.stderr)
        rows.append((sig, statistics.median(rates["open"]), statistics.median(rates["guarded"]),
                     rates))
    print(f"\n### Cost of API keys and rate limits on OTLP/HTTP ingest\n\n{os.cpu_count()} cores,"
          f" {args.clients} connections, {args.rounds} alternating rounds of {args.seconds:g} s"
          f" (after {args.warmup:g} s warm-up), fresh server each run; medians.\n")
    print("| signal | open (no keys, no rate limits) | keys + limits | ratio | cost |")
    print("|---|---:|---:|---:|---:|")
    for sig, open_rate, guarded_rate, _ in rows:
        ratio = guarded_rate / open_rate
        print(f"| {sig} | {open_rate:,.0f} {ITEM_NAMES[sig]}/s | {guarded_rate:,.0f}"
              f" {ITEM_NAMES[sig]}/s | {ratio:.2f} | {(1 - ratio) * 100:+.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
