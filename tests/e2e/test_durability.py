"""A 200 means durable: `kill -9` right after the answer loses nothing."""

from __future__ import annotations

import random
import threading
import uuid

import httpx

from tests.e2e.test_http_receiver import PROTOBUF, _trace_request
from tests.harness import ArgusProcess, eventually


def _found(server: ArgusProcess, service: str) -> set[str]:
    query = "query($s: String!) { traces(filter: {service: $s, limit: 1000}) { traceId } }"
    return {item["traceId"] for item in server.graphql(query, {"s": service})["traces"]}


def test_kill_9_right_after_200_loses_nothing(fresh_argus: ArgusProcess) -> None:
    server = fresh_argus.start()
    service = f"durable-{uuid.uuid4().hex[:6]}"
    acknowledged: set[str] = set()
    with httpx.Client() as client:
        for _ in range(30):
            trace_id = uuid.uuid4().bytes
            response = client.post(
                f"{server.otlp_url}/v1/traces", content=_trace_request(service, [trace_id]), headers=PROTOBUF
            )
            assert response.status_code == 200
            acknowledged.add(trace_id.hex())
    server.kill9()
    server.start()
    assert eventually(lambda: _found(server, service) >= acknowledged and True)
    assert _found(server, service) == acknowledged


def test_kill_9_while_sending_keeps_every_acknowledged_record(fresh_argus: ArgusProcess) -> None:
    service = f"durable-loop-{uuid.uuid4().hex[:6]}"
    acknowledged: set[str] = set()
    rng = random.Random(7)
    for _ in range(3):
        server = fresh_argus.start()
        stop = threading.Event()

        def send() -> None:
            with httpx.Client() as client:
                while not stop.is_set():
                    trace_id = uuid.uuid4().bytes
                    try:
                        response = client.post(
                            f"{server.otlp_url}/v1/traces",
                            content=_trace_request(service, [trace_id]),
                            headers=PROTOBUF,
                            timeout=5,
                        )
                    except httpx.HTTPError:
                        return  # the server died mid-request: not acknowledged
                    if response.status_code == 200:
                        acknowledged.add(trace_id.hex())
                    stop.wait(0.01)  # keep the total under one search page (1,000)

        senders = [threading.Thread(target=send) for _ in range(4)]
        for thread in senders:
            thread.start()
        stop.wait(rng.uniform(0.3, 1.2))
        server.kill9()
        stop.set()
        for thread in senders:
            thread.join(10)
    server = fresh_argus.start()
    assert 20 < len(acknowledged) < 1000
    # Records durable at the kill but not yet answered may be stored too: only a subset
    # relation is promised.
    eventually(lambda: _found(server, service) >= acknowledged, timeout=30)


def test_everything_acknowledged_is_indexed_across_segments(fresh_argus: ArgusProcess) -> None:
    """Many small index batches over many WAL segments: every span reaches the store."""
    config = fresh_argus.data_dir.parent / "small-wal.toml"
    config.write_text("[ingest]\nwal_segment_bytes = 200000\nindex_batch_bytes = 30000\n")
    fresh_argus.extra_args = ["--config", str(config)]
    server = fresh_argus.start()
    service = f"volume-{uuid.uuid4().hex[:6]}"
    sent: set[str] = set()
    with httpx.Client() as client:
        for _ in range(150):
            trace_ids = [uuid.uuid4().bytes for _ in range(20)]
            response = client.post(
                f"{server.otlp_url}/v1/traces",
                content=_trace_request(service, trace_ids),
                headers=PROTOBUF,
            )
            assert response.status_code == 200
            sent.update(trace_id.hex() for trace_id in trace_ids)

    def indexed() -> int:
        state = httpx.get(f"{server.api_url}/readyz").json()["indexing"]["traces"]
        return state["indexed_items"] if state["lag_bytes"] == 0 else 0

    assert eventually(indexed, timeout=60) == len(sent) == 3000
    sample = random.Random(1).sample(sorted(sent), 20)
    for trace_id in sample:
        assert server.graphql(
            "query($t: String!) { trace(traceId: $t) { spanCount } }", {"t": trace_id}
        )["trace"] == {"spanCount": 1}
