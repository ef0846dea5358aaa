"""Timestamps too far in the past or future: the window's rule, and validate / to_model in
both encodings rejecting and skipping exactly the same items, counted once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from argus.proto import rules
from argus.proto.otlp import Encoding, Signal, Validation, parse_request, to_model, validate
from argus.proto.time_window import TimeBounds, TimeWindow, format_duration
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .builders import SPAN_ID, TRACE_ID, attrs, to_otlp_json

SECOND = 1_000_000_000
HOUR = 3600 * SECOND
NOW = 1_750_000_000 * SECOND
WINDOW = TimeWindow(NOW, max_past_nanos=24 * HOUR, max_future_nanos=HOUR)
TOO_OLD = "timestamp more than 1d in the past"
IN_FUTURE = "timestamp more than 1h in the future"

GOOD_TIME = NOW - HOUR
OLD_TIME = NOW - 25 * HOUR
FUTURE_TIME = NOW + 2 * HOUR


def _both(
    signal: Signal, message: Message, window: TimeWindow | None
) -> tuple[Validation, list[Any]]:
    """validate and to_model in both encodings, which must agree; the result."""
    results = []
    for encoding, body in (
        (Encoding.PROTOBUF, message.SerializeToString()),
        (Encoding.JSON, to_otlp_json(message)),
    ):
        result = validate(signal, parse_request(signal, encoding, body), window)
        items = to_model(signal, parse_request(signal, encoding, body), window)
        assert len(items) == result.accepted, encoding
        results.append((result, items))
    assert results[0] == results[1]
    return results[0]


# ------------------------------------------------------------------------ the window


def test_bounds_are_inclusive_and_reasons_name_the_limits() -> None:
    assert WINDOW.time_problem(NOW) is None
    assert WINDOW.time_problem(NOW - 24 * HOUR) is None
    assert WINDOW.time_problem(NOW + HOUR) is None
    assert WINDOW.time_problem(NOW - 24 * HOUR - 1) == TOO_OLD
    assert WINDOW.time_problem(NOW + HOUR + 1) == IN_FUTURE
    assert WINDOW.time_problem(0) == TOO_OLD


def test_zero_bound_leaves_that_side_open() -> None:
    future_only = TimeWindow(NOW, max_future_nanos=HOUR)
    assert future_only.time_problem(0) is None  # time 0 is judged only with a past bound
    assert future_only.time_problem(1) is None
    assert future_only.time_problem(NOW + 2 * HOUR) == IN_FUTURE
    past_only = TimeWindow(NOW, max_past_nanos=HOUR)
    assert past_only.time_problem(2**64 - 1) is None
    assert past_only.time_problem(0) == "timestamp more than 1h in the past"


def test_log_rule_uses_time_then_observed_time_and_never_judges_neither() -> None:
    assert WINDOW.log_time_problem(OLD_TIME, GOOD_TIME) == TOO_OLD
    assert WINDOW.log_time_problem(GOOD_TIME, OLD_TIME) is None
    assert WINDOW.log_time_problem(0, FUTURE_TIME) == IN_FUTURE
    assert WINDOW.log_time_problem(0, GOOD_TIME) is None
    assert WINDOW.log_time_problem(0, 0) is None


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (7 * 86_400 * SECOND, "7d"),
        (HOUR, "1h"),
        (90 * 60 * SECOND, "1h30m"),
        (90 * SECOND, "1m30s"),
        (SECOND // 4, "0.25s"),
        (86_400 * SECOND + 5 * SECOND, "1d5s"),
    ],
)
def test_durations_read_well(nanos: int, text: str) -> None:
    assert format_duration(nanos) == text


@dataclass
class _Seconds:
    max_past_seconds: float
    max_future_seconds: float


def test_bounds_from_settings() -> None:
    assert TimeBounds.from_settings(None).window(NOW) is None
    assert TimeBounds.from_settings(_Seconds(0.0, 0.0)).window(NOW) is None
    # Negative or not finite: off, like 0.
    assert TimeBounds.from_settings(_Seconds(-1.0, float("inf"))).window(NOW) is None
    window = TimeBounds.from_settings(_Seconds(7 * 86_400, 3600.5)).window(NOW)
    assert window is not None
    assert window.too_old == "timestamp more than 7d in the past"
    assert window.in_future == "timestamp more than 3600.5s in the future"
    assert (window.earliest, window.latest) == (NOW - 7 * 86_400 * SECOND, NOW + 3600_500_000_000)


# ------------------------------------------------------------------------ traces


def _spans(*spans: tuple[str, int, bytes]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    for name, start, trace_id in spans:
        scope_spans.spans.add(
            trace_id=trace_id, span_id=SPAN_ID, name=name, start_time_unix_nano=start,
            end_time_unix_nano=start + SECOND,
        )
    return request


def test_spans_outside_the_window_are_rejected_and_skipped() -> None:
    request = _spans(
        ("good", GOOD_TIME, TRACE_ID),
        ("old", OLD_TIME, TRACE_ID),
        ("future", FUTURE_TIME, TRACE_ID),
        ("zero", 0, TRACE_ID),
        ("bad id and old", OLD_TIME, bytes(16)),  # counted for its id, once
        ("edge", NOW + HOUR, TRACE_ID),
    )
    result, spans = _both(Signal.TRACES, request, WINDOW)
    assert [s.name for s in spans] == ["good", "edge"]
    assert result == Validation(
        2,
        4,
        f"4 spans rejected: 2 with {TOO_OLD}; 1 with {IN_FUTURE}; 1 with {rules.BAD_TRACE_ID}",
        rejected_too_old=2,
        rejected_in_future=1,
    )
    # Without a window no timestamp is judged.
    result, spans = _both(Signal.TRACES, request, None)
    assert (result.accepted, result.rejected, result.rejected_too_old) == (5, 1, 0)
    assert len(spans) == 5


def test_time_rejections_alone_are_worded_as_one_reason() -> None:
    result, _ = _both(Signal.TRACES, _spans(("f", FUTURE_TIME, TRACE_ID)), WINDOW)
    assert result == Validation(0, 1, f"1 span rejected: {IN_FUTURE}", 0, 1)


# ------------------------------------------------------------------------ metrics


def _metrics_request() -> ExportMetricsServiceRequest:
    """A metric of every kind with one good, one old and one future point (attribute
    `id` names each), plus points that break other rules and are also out of the window."""
    request = ExportMetricsServiceRequest()
    metrics = request.resource_metrics.add().scope_metrics.add().metrics
    times = {"good": GOOD_TIME, "old": OLD_TIME, "future": FUTURE_TIME}
    for kind in ("gauge", "sum", "histogram", "exponential_histogram", "summary"):
        metric = metrics.add(name=f"m.{kind}")
        data = getattr(metric, kind)
        for label, time in times.items():
            point = data.data_points.add(time_unix_nano=time, start_time_unix_nano=time - SECOND)
            point.attributes.extend(attrs(id=f"{kind}.{label}"))
            if kind in ("gauge", "sum"):
                point.as_int = 1
            elif kind == "histogram":
                point.count = 1
                point.bucket_counts.extend([1, 0])
                point.explicit_bounds.append(1.0)
            else:
                point.count = 1
    gauge = metrics.add(name="m.broken").gauge
    gauge.data_points.add(time_unix_nano=OLD_TIME)  # no value, and old: counted for no value
    histogram = metrics.add(name="m.broken.histogram").histogram
    bad = histogram.data_points.add(time_unix_nano=FUTURE_TIME)  # bad bounds, and future
    bad.explicit_bounds.extend([2.0, 1.0])
    nameless = metrics.add(name="").sum  # empty name, and old: counted for the name
    nameless.data_points.add(time_unix_nano=OLD_TIME, as_double=1.0)
    return request


def test_points_of_every_kind_outside_the_window_are_rejected_and_skipped() -> None:
    result, points = _both(Signal.METRICS, _metrics_request(), WINDOW)
    kinds = ("gauge", "sum", "histogram", "exponential_histogram", "summary")
    assert [p.attributes["id"] for p in points] == [f"{kind}.good" for kind in kinds]
    assert result.accepted == 5
    assert (result.rejected, result.rejected_too_old, result.rejected_in_future) == (13, 5, 5)
    assert result.message == (
        f"13 data points rejected: 5 with {TOO_OLD}; 5 with {IN_FUTURE};"
        f" 1 with {rules.NO_NUMBER_VALUE}; 1 with {rules.BAD_EXPLICIT_BOUNDS};"
        f" 1 with {rules.EMPTY_METRIC_NAME}"
    )
    result, points = _both(Signal.METRICS, _metrics_request(), None)
    assert (result.accepted, result.rejected, result.rejected_too_old) == (15, 3, 0)


def test_point_time_zero_is_judged_only_with_a_past_bound() -> None:
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="m")
    metric.summary.data_points.add(count=1)  # time_unix_nano 0
    result, _ = _both(Signal.METRICS, request, WINDOW)
    assert (result.accepted, result.rejected_too_old) == (0, 1)
    result, points = _both(Signal.METRICS, request, TimeWindow(NOW, 0, HOUR))
    assert (result.accepted, len(points)) == (1, 1)


# ------------------------------------------------------------------------ logs


def _logs(*records: tuple[str, int, int, bytes]) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    log_records = request.resource_logs.add().scope_logs.add().log_records
    for label, time, observed, trace_id in records:
        log_records.add(
            severity_text=label, time_unix_nano=time, observed_time_unix_nano=observed,
            trace_id=trace_id,
        )
    return request


def test_log_records_outside_the_window_are_rejected_and_skipped() -> None:
    request = _logs(
        ("good", GOOD_TIME, GOOD_TIME, b""),
        ("old", OLD_TIME, GOOD_TIME, b""),
        ("future", FUTURE_TIME, GOOD_TIME, b""),
        ("time wins over observed", GOOD_TIME, OLD_TIME, b""),
        ("observed old", 0, OLD_TIME, b""),
        ("observed future", 0, FUTURE_TIME, b""),
        ("no times", 0, 0, b""),
        ("bad id and old", OLD_TIME, 0, b"\x01"),  # counted for its id, once
    )
    result, records = _both(Signal.LOGS, request, WINDOW)
    assert [r.severity_text for r in records] == ["good", "time wins over observed", "no times"]
    assert result == Validation(
        3,
        5,
        f"5 log records rejected: 2 with {TOO_OLD}; 2 with {IN_FUTURE};"
        f" 1 with {rules.BAD_LOG_TRACE_ID}",
        rejected_too_old=2,
        rejected_in_future=2,
    )
    result, records = _both(Signal.LOGS, request, None)
    assert (result.accepted, result.rejected, len(records)) == (7, 1, 7)

