"""Names in InfluxDB: measurements, tag keys and values, field keys, the `kind` tag.

Every name the store writes passes through here, so what is reserved and how user text is
escaped lives in one place (the full mapping is in influxdb_metrics' docstring).

* Internal measurements and the escape prefix start with "~", which OTel metric names
  cannot: a metric name starting with "~" or "_" (InfluxDB 2.x reserves "_") gets one more
  "~" in front, so it can never meet `SERIES_MEASUREMENT` or `METRICS_MEASUREMENT`.
* Label keys: `tenant`, `kind`, `bounds`, `sid` (the store's own tags), `time` (InfluxQL's), the
  field keys (`value`, `count`, `b0`, `q0.5`, ...: a tag may not share a field's key) and
  keys starting with "~" or "_" get a "~" in front. Everything else is stored as is.
* Text that line protocol cannot carry in a tag or measurement (a backslash, which 1.x
  cannot escape and which breaks a line at the end of a value, CR, LF) is stored as
  "~b64:" + urlsafe base64 of its UTF-8 bytes. Decoding reverses all of this.
"""

from __future__ import annotations

import base64

from ..model import MetricKind, Temporality

SERIES_MEASUREMENT = "~series"  # one line per variant and hour: typed resource, scope, ...
METRICS_MEASUREMENT = "~metrics"  # one line per metric when its metadata is (re)recorded
# An InfluxQL regex for every measurement that holds points, i.e. all but the catalog
# ones: what `measurement()` makes never starts with "~" except as "~~", "~_", "~b64:" or
# the lone "~" of an empty name, and the catalog names start with "~s" and "~m".
POINT_MEASUREMENTS = "/^(?:[^~]|~[~_]|~b64:|~$)/"

TENANT_TAG = "tenant"
KIND_TAG = "kind"
BOUNDS_TAG = "bounds"
# The logical series: a hash of kind and labels. Statements group by it and by the labels
# they need instead of GROUP BY *, which InfluxDB 1.x answers ~3x slower.
SERIES_TAG = "sid"
INTERNAL_TAGS = frozenset({TENANT_TAG, KIND_TAG, BOUNDS_TAG, SERIES_TAG})

# Catalog lines: tags tenant, metric (and variant), one string field.
METRIC_TAG = "metric"
VARIANT_TAG = "variant"
DATA_FIELD = "data"

# Point fields.
VALUE = "value"  # float; every finite gauge/sum value (what queries read)
INT = "int"  # integer; the exact value of an int gauge/sum, beside `value`
NONFINITE = "nonfinite"  # string; JSON {"field": "NaN" | "Infinity" | "-Infinity"}
START = "start"  # integer; start_time_unix_nano when set
FLAGS = "flags"  # integer; when non-zero
EXEMPLARS = "exemplars"  # string; JSON, when the point has exemplars
VARIANT = "v"  # string; the variant hash, key into SERIES_MEASUREMENT
COUNT, SUM, MIN, MAX = "count", "sum", "min", "max"
BUCKET_PREFIX = "b"  # b0, b1, ...: per-bucket (not cumulative) counts, integers
BUCKET_REGEX = "/^b[0-9]+$/"
ZERO_COUNT, SCALE = "zero_count", "scale"
QUANTILE_PREFIX = "q"  # q0.5, q0.99, ...: summary quantiles (copies of `data`)
FIELD_KEYS = frozenset({
    VALUE, INT, NONFINITE, START, FLAGS, EXEMPLARS, VARIANT, COUNT, SUM, MIN, MAX,
    DATA_FIELD, ZERO_COUNT, SCALE,
})
# A tag may not share its key with a field (InfluxDB 3 refuses it, 1.x renames columns).
_RESERVED_KEYS = INTERNAL_TAGS | FIELD_KEYS | {"time"}

_ESCAPE = "~"
_B64 = "~b64:"
_UNSAFE = ("\\", "\n", "\r")

_KIND_NAMES = {
    MetricKind.GAUGE: "gauge", MetricKind.SUM: "sum", MetricKind.HISTOGRAM: "histogram",
    MetricKind.EXPONENTIAL_HISTOGRAM: "exponential_histogram", MetricKind.SUMMARY: "summary",
}
_KINDS_BY_NAME = {name: kind for kind, name in _KIND_NAMES.items()}
_TEMPORALITY_NAMES = {Temporality.DELTA: "delta", Temporality.CUMULATIVE: "cumulative"}
_TEMPORALITIES_BY_NAME = {name: t for t, name in _TEMPORALITY_NAMES.items()}


def _encode_unsafe(text: str) -> str:
    return _B64 + base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")


def _decode_unsafe(text: str) -> str:
    data = text[len(_B64):]
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode()


def _is_unsafe(text: str) -> bool:
    return any(c in text for c in _UNSAFE)


def tag_value(text: str) -> str:
    """A label value as stored (the caller drops empty values: InfluxDB has none)."""
    if _is_unsafe(text) or text.startswith(_B64):
        return _encode_unsafe(text)
    return text


def label_value(stored: str) -> str:
    return _decode_unsafe(stored) if stored.startswith(_B64) else stored


def _is_reserved(key: str) -> bool:
    if key in _RESERVED_KEYS or not key or key.startswith((_ESCAPE, "_")):
        return True
    if key[0] == BUCKET_PREFIX:
        return key[1:].isdigit()
    return key[0] == QUANTILE_PREFIX and key[1:2].isdigit()


def tag_key(label: str) -> str:
    """The tag key of a label (also the `metric` tag value of catalog lines)."""
    if _is_unsafe(label):
        return _encode_unsafe(label)
    return _ESCAPE + label if _is_reserved(label) else label


def label_key(stored: str) -> str | None:
    """The label of a tag key, or None for the store's own tags."""
    if stored.startswith(_B64):
        return _decode_unsafe(stored)
    if stored.startswith(_ESCAPE):
        return stored[1:]
    return None if stored in INTERNAL_TAGS else stored


def measurement(metric: str) -> str:
    if _is_unsafe(metric):
        return _encode_unsafe(metric)
    if metric.startswith((_ESCAPE, "_")) or not metric:
        return _ESCAPE + metric
    return metric


def kind_tag(kind: MetricKind, temporality: Temporality, monotonic: bool) -> str:
    """`kind[.temporality][.monotonic]`, e.g. "sum.cumulative.monotonic", "gauge"."""
    text = _KIND_NAMES[kind]
    if temporality != Temporality.UNSPECIFIED:
        text += "." + _TEMPORALITY_NAMES.get(temporality, str(int(temporality)))
    return text + ".monotonic" if monotonic else text


def parse_kind_tag(text: str) -> tuple[MetricKind, Temporality, bool]:
    """Inverse of `kind_tag`; ValueError for text it did not make."""
    name, *rest = text.split(".")
    monotonic = bool(rest) and rest[-1] == "monotonic"
    if monotonic:
        rest.pop()
    temporality = Temporality.UNSPECIFIED
    if rest:
        word = rest.pop()
        temporality = _TEMPORALITIES_BY_NAME.get(word) or Temporality(int(word))
    if rest or name not in _KINDS_BY_NAME:
        raise ValueError(f"not a kind tag: {text!r}")
    return _KINDS_BY_NAME[name], temporality, monotonic


def kind_regex(*kinds: MetricKind, temporality: str | None = None) -> str:
    """An InfluxQL regex literal matching the kind tags of `kinds` (optionally only those
    of one temporality: "delta" or "cumulative")."""
    names = "|".join(_KIND_NAMES[kind] for kind in kinds)
    if temporality:
        return f"/^({names})\\.{temporality}(\\.|$)/"
    return f"/^({names})(\\.|$)/"
