"""What a store cannot do, and why. The default is everything.

A store that cannot do something declares it in an `unsupported` mapping (a class
attribute, or a property when it depends on configuration) from feature name to the
reason, which callers show to users. Its methods for that feature raise
`errors.Unsupported` with the same reason. Declare a gap only where the backend makes the
feature impossible, not where it is merely unimplemented.

    class SomeStore:
        unsupported: Mapping[str, str] = {EXEMPLARS: "the server has no exemplar type"}

The contract tests skip a feature's tests with the declared reason, so a new backend runs
the whole suite by default.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import Unsupported

# Metric store features.
POINTS = "points"  # MetricStore.points: stored points read back with every field
QUERY_RANGE = "query_range"  # MetricStore.query_range
CATALOG = "catalog"  # metric_names, label_names, label_values
EXEMPLARS = "exemplars"  # exemplars kept with their points
NONFINITE_VALUES = "nonfinite_values"  # NaN and infinities stored and read back
NONFINITE_AGGREGATION = "nonfinite_aggregation"  # NaN and infinities taking part in queries

# Trace store features.
TRACE_ANALYTICS = "trace_analytics"  # service_map, red_series, latency_histogram, top_*

# Features of every store.
RETENTION = "retention"  # tenants() and delete_before(): per-tenant retention

FEATURES = frozenset({
    POINTS, QUERY_RANGE, CATALOG, EXEMPLARS, NONFINITE_VALUES, NONFINITE_AGGREGATION,
    TRACE_ANALYTICS, RETENTION,
})


def unsupported(store: object) -> Mapping[str, str]:
    """Feature name -> reason for everything `store` declares it cannot do."""
    declared = getattr(store, "unsupported", None)
    return declared if isinstance(declared, Mapping) else {}


def reason(store: object, feature: str) -> str | None:
    """Why `store` cannot do `feature`, or None if it can. KeyError for an unknown name,
    so a typo cannot silently pass."""
    if feature not in FEATURES:
        raise KeyError(f"unknown feature {feature!r}; known: {sorted(FEATURES)}")
    return unsupported(store).get(feature)


def check(store: object, feature: str) -> None:
    """Raise Unsupported if `store` cannot do `feature`."""
    why = reason(store, feature)
    if why is not None:
        raise Unsupported(f"{type(store).__name__} cannot do {feature}: {why}")
