"""OTLP/JSON ExportMetricsServiceRequest: type checks, validation and conversion in one walk."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from ..storage.model import (
    Exemplar,
    ExponentialBuckets,
    ExponentialHistogramValue,
    HistogramValue,
    MetricPoint,
    QuantileValue,
    Resource,
    Scope,
    SummaryValue,
    Temporality,
)
from .json_anyvalue import attributes
from .json_fields import (
    I32_MAX,
    I32_MIN,
    I64_MAX,
    I64_MIN,
    FieldError,
    JsonObject,
    boolean,
    double,
    double_list,
    enum,
    exact_id,
    index_of,
    int_field,
    objects,
    optional_double,
    optional_object,
    string,
    uint32,
    uint64,
    uint64_list,
)
from .json_request import walk
from .points import KIND_BY_JSON_FIELD, Series, new_point, temporality
from .rules import (
    EMPTY_METRIC_NAME,
    NO_NUMBER_VALUE,
    Tally,
    Validation,
    histogram_problem,
    no_data_note,
)
from .time_window import TimeWindow

_TEMPORALITY_NAMES: dict[str, int] = dict(AggregationTemporality.items())
_ONE_DATA_FIELD = "only one of gauge, sum, histogram, exponentialHistogram, summary may be set"

PointConverter = Callable[[JsonObject, Series], "MetricPoint | str"]


def convert(
    request: JsonObject, window: TimeWindow | None = None
) -> tuple[list[MetricPoint], Validation]:
    """Raises FieldError for a value of the wrong type anywhere in the request."""
    tally = Tally("data point", "data points", window)
    points = walk(request, ("resourceMetrics", "scopeMetrics", "metrics"), _metric, tally)
    return points, tally.validation()


def _metric(
    obj: JsonObject, res: Resource, scp: Scope, tally: Tally, out: list[MetricPoint]
) -> None:
    name = string(obj, "name")
    data_key, data = _data(obj)
    if data is None:
        tally.note(no_data_note(name))
        return
    description, unit, metadata = (
        string(obj, "description"),
        string(obj, "unit"),
        attributes(obj, "metadata"),
    )
    try:
        points = objects(data, "dataPoints")
        if not name:
            tally.reject(EMPTY_METRIC_NAME, len(points))
            return
        series = Series(
            name=name,
            kind=KIND_BY_JSON_FIELD[data_key],
            description=description,
            unit=unit,
            temporality=(
                Temporality.UNSPECIFIED
                if data_key in ("gauge", "summary")
                else temporality(enum(data, "aggregationTemporality", _TEMPORALITY_NAMES))
            ),
            is_monotonic=data_key == "sum" and boolean(data, "isMonotonic"),
            metadata=metadata,
            resource=res,
            scope=scp,
        )
        convert_point = _POINT_CONVERTERS[data_key]
        window = tally.window
        for point_obj in points:
            try:
                point = convert_point(point_obj, series)
            except FieldError as exc:
                raise exc.at(f"dataPoints[{index_of(points, point_obj)}]") from None
            if isinstance(point, str):
                tally.reject(point)
            elif window is not None and (
                problem := window.time_problem(point.time_unix_nano)
            ) is not None:
                tally.reject(problem)
            else:
                tally.accepted += 1
                out.append(point)
    except FieldError as exc:
        raise exc.at(data_key) from None


def _data(obj: JsonObject) -> tuple[str, JsonObject | None]:
    """The one `Metric.data` member that is set, as (key, object); data None when none is."""
    found_key, found = "", None
    for key in KIND_BY_JSON_FIELD:
        data = optional_object(obj, key)
        if data is not None:
            if found is not None:
                raise FieldError(_ONE_DATA_FIELD, key)
            found_key, found = key, data
    return found_key, found


def _new_point(obj: JsonObject, series: Series, exemplars: list[Exemplar]) -> MetricPoint:
    return new_point(
        series,
        uint64(obj, "timeUnixNano"),
        uint64(obj, "startTimeUnixNano"),
        attributes(obj),
        uint32(obj, "flags"),
        exemplars,
    )


def _int_or_double(obj: JsonObject) -> int | float | None:
    """The `asInt` / `asDouble` oneof of number points and exemplars."""
    if obj.get("asInt") is not None:
        if obj.get("asDouble") is not None:
            raise FieldError("only one of asInt and asDouble may be set", "asDouble")
        return int_field(obj, "asInt", I64_MIN, I64_MAX)
    if obj.get("asDouble") is not None:
        return double(obj, "asDouble")
    return None


def _number_point(obj: JsonObject, series: Series) -> MetricPoint | str:
    value = _int_or_double(obj)
    if value is None:
        return NO_NUMBER_VALUE
    point = _new_point(obj, series, _exemplars(obj))
    point.value = value
    return point


def _histogram_point(obj: JsonObject, series: Series) -> MetricPoint | str:
    bucket_counts = uint64_list(obj, "bucketCounts")
    explicit_bounds = double_list(obj, "explicitBounds")
    problem = histogram_problem(len(bucket_counts), explicit_bounds)
    if problem is not None:
        return problem
    point = _new_point(obj, series, _exemplars(obj))
    point.histogram = HistogramValue(
        count=uint64(obj, "count"),
        sum=optional_double(obj, "sum"),
        bucket_counts=bucket_counts,
        explicit_bounds=explicit_bounds,
        min=optional_double(obj, "min"),
        max=optional_double(obj, "max"),
    )
    return point


def _exponential_histogram_point(obj: JsonObject, series: Series) -> MetricPoint | str:
    point = _new_point(obj, series, _exemplars(obj))
    point.exponential_histogram = ExponentialHistogramValue(
        count=uint64(obj, "count"),
        sum=optional_double(obj, "sum"),
        scale=int_field(obj, "scale", I32_MIN, I32_MAX),
        zero_count=uint64(obj, "zeroCount"),
        positive=_buckets(obj, "positive"),
        negative=_buckets(obj, "negative"),
        min=optional_double(obj, "min"),
        max=optional_double(obj, "max"),
        zero_threshold=double(obj, "zeroThreshold"),
    )
    return point


def _buckets(obj: JsonObject, key: str) -> ExponentialBuckets:
    buckets = optional_object(obj, key)
    if buckets is None:
        return ExponentialBuckets()
    try:
        return ExponentialBuckets(
            int_field(buckets, "offset", I32_MIN, I32_MAX), uint64_list(buckets, "bucketCounts")
        )
    except FieldError as exc:
        raise exc.at(key) from None


def _summary_point(obj: JsonObject, series: Series) -> MetricPoint | str:
    point = _new_point(obj, series, [])  # summary points carry no exemplars
    quantiles = objects(obj, "quantileValues")
    values = []
    for quantile in quantiles:
        try:
            values.append(QuantileValue(double(quantile, "quantile"), double(quantile, "value")))
        except FieldError as exc:
            raise exc.at(f"quantileValues[{index_of(quantiles, quantile)}]") from None
    point.summary = SummaryValue(uint64(obj, "count"), double(obj, "sum"), values)
    return point


_POINT_CONVERTERS: dict[str, PointConverter] = {
    "gauge": _number_point,
    "sum": _number_point,
    "histogram": _histogram_point,
    "exponentialHistogram": _exponential_histogram_point,
    "summary": _summary_point,
}


def _exemplars(point: JsonObject) -> list[Exemplar]:
    items = objects(point, "exemplars")
    out = []
    for obj in items:
        try:
            value = _int_or_double(obj)
            out.append(
                Exemplar(
                    time_unix_nano=uint64(obj, "timeUnixNano"),
                    # No value reads as the proto3 default of as_double, as in protobuf.
                    value=0.0 if value is None else value,
                    trace_id=exact_id(obj, "traceId").hex(),
                    span_id=exact_id(obj, "spanId").hex(),
                    filtered_attributes=attributes(obj, "filteredAttributes"),
                )
            )
        except FieldError as exc:
            raise exc.at(f"exemplars[{index_of(items, obj)}]") from None
    return out
