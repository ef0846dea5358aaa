"""The internal telemetry model: plain typed records every store reads and writes.

`proto/` is the only code that knows OTLP message shapes; it converts requests into these
records. Conventions shared by every record:

* timestamps are integers in nanoseconds since the Unix epoch (0 means "not set");
* trace and span ids are lowercase hex strings (32 and 16 characters), "" when absent;
* attribute values keep their OTLP `AnyValue` kind: str, bool, int, float, bytes,
  list (array) or dict (kvlist); None stands for an empty AnyValue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeAlias, Union

AnyValue: TypeAlias = Union[  # noqa: UP007 - a recursive alias needs the string forward refs
    str, bool, int, float, bytes, list["AnyValue"], dict[str, "AnyValue"], None
]
Attributes: TypeAlias = dict[str, AnyValue]

DEFAULT_TENANT = "default"


class SpanKind(IntEnum):
    """OTLP `Span.SpanKind` values."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(IntEnum):
    """OTLP `Status.StatusCode` values."""

    UNSET = 0
    OK = 1
    ERROR = 2


class MetricKind(IntEnum):
    """Which OTLP `Metric.data` shape a point came from."""

    GAUGE = 1
    SUM = 2
    HISTOGRAM = 3
    EXPONENTIAL_HISTOGRAM = 4
    SUMMARY = 5


class Temporality(IntEnum):
    """OTLP `AggregationTemporality` values."""

    UNSPECIFIED = 0
    DELTA = 1
    CUMULATIVE = 2


@dataclass(slots=True)
class Resource:
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0
    schema_url: str = ""

    @property
    def service_name(self) -> str:
        """`service.name`, or the SDK's documented fallback when the app sent none."""
        name = self.attributes.get("service.name")
        return name if isinstance(name, str) and name else "unknown_service"


@dataclass(slots=True)
class Scope:
    """The instrumentation scope (library) that produced a record."""

    name: str = ""
    version: str = ""
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0
    schema_url: str = ""


# ---------------------------------------------------------------------------- traces


@dataclass(slots=True)
class SpanEvent:
    time_unix_nano: int
    name: str
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0


@dataclass(slots=True)
class SpanLink:
    trace_id: str
    span_id: str
    trace_state: str = ""
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0
    flags: int = 0


@dataclass(slots=True)
class Span:
    trace_id: str
    span_id: str
    name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    resource: Resource
    scope: Scope
    parent_span_id: str = ""
    trace_state: str = ""
    flags: int = 0
    kind: SpanKind = SpanKind.UNSPECIFIED
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0
    events: list[SpanEvent] = field(default_factory=list)
    dropped_events_count: int = 0
    links: list[SpanLink] = field(default_factory=list)
    dropped_links_count: int = 0
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""

    @property
    def service_name(self) -> str:
        return self.resource.service_name

    @property
    def duration_nano(self) -> int:
        return max(0, self.end_time_unix_nano - self.start_time_unix_nano)

    @property
    def is_error(self) -> bool:
        return self.status_code == StatusCode.ERROR


# ---------------------------------------------------------------------------- metrics


@dataclass(slots=True)
class Exemplar:
    time_unix_nano: int
    value: float | int
    trace_id: str = ""
    span_id: str = ""
    filtered_attributes: Attributes = field(default_factory=dict)


@dataclass(slots=True)
class HistogramValue:
    """An explicit-bucket histogram point: len(bucket_counts) == len(explicit_bounds) + 1."""

    count: int
    sum: float | None
    bucket_counts: list[int]
    explicit_bounds: list[float]
    min: float | None = None
    max: float | None = None


@dataclass(slots=True)
class ExponentialBuckets:
    offset: int = 0
    bucket_counts: list[int] = field(default_factory=list)


@dataclass(slots=True)
class ExponentialHistogramValue:
    count: int
    sum: float | None
    scale: int
    zero_count: int
    positive: ExponentialBuckets
    negative: ExponentialBuckets
    min: float | None = None
    max: float | None = None
    zero_threshold: float = 0.0


@dataclass(slots=True)
class QuantileValue:
    quantile: float
    value: float


@dataclass(slots=True)
class SummaryValue:
    count: int
    sum: float
    quantile_values: list[QuantileValue]


@dataclass(slots=True)
class MetricPoint:
    """One data point of one metric, with everything needed to identify its series.

    Exactly one of `value` (gauge, sum), `histogram`, `exponential_histogram` and `summary`
    is set, according to `kind`.
    """

    name: str
    kind: MetricKind
    time_unix_nano: int
    resource: Resource
    scope: Scope
    attributes: Attributes = field(default_factory=dict)
    description: str = ""
    unit: str = ""
    start_time_unix_nano: int = 0
    temporality: Temporality = Temporality.UNSPECIFIED
    is_monotonic: bool = False
    flags: int = 0
    value: float | int | None = None
    histogram: HistogramValue | None = None
    exponential_histogram: ExponentialHistogramValue | None = None
    summary: SummaryValue | None = None
    exemplars: list[Exemplar] = field(default_factory=list)
    metadata: Attributes = field(default_factory=dict)

    @property
    def service_name(self) -> str:
        return self.resource.service_name


# ---------------------------------------------------------------------------- logs


@dataclass(slots=True)
class LogRecord:
    time_unix_nano: int
    observed_time_unix_nano: int
    resource: Resource
    scope: Scope
    severity_number: int = 0
    severity_text: str = ""
    body: AnyValue = None
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0
    flags: int = 0
    trace_id: str = ""
    span_id: str = ""
    event_name: str = ""

    @property
    def service_name(self) -> str:
        return self.resource.service_name

    @property
    def timestamp(self) -> int:
        """The time to sort and filter by: the event time, else when it was observed."""
        return self.time_unix_nano or self.observed_time_unix_nano
