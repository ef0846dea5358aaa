"""Log pattern groups: similar bodies clustered into templates with drain3's Drain miner.

Every backend answers `LogStore.patterns` the same way: it searches the newest
`sample_limit` matching records (one page of `search`) and hands them to `mine`, in a
worker thread. Before clustering, drain3 masks what varies between otherwise identical
lines (MASKING, in that order: UUIDs, IPv4 addresses, hex numbers and ids, decimal
numbers), so "took 12 ms" and "took 340 ms" share the template "took <NUM> ms"; tokens
that still differ become `<*>`. A fresh miner per call: patterns describe the records
asked about, with nothing remembered between calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

from .attributes import encode_value
from .errors import QueryError
from .logs import MAX_PATTERN_SAMPLE, LogPattern, LogPatterns, LogQuery, LogStore
from .model import AnyValue, LogRecord

# A token boundary: start/end of text or a character that is not a letter or digit.
_BEFORE = r"(?<![A-Za-z0-9])"
_AFTER = r"(?![A-Za-z0-9])"
MASKING: tuple[tuple[str, str], ...] = (
    (_BEFORE + r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
     + _AFTER, "UUID"),
    (_BEFORE + r"\d{1,3}(?:\.\d{1,3}){3}" + _AFTER, "IP"),
    (_BEFORE + r"0[xX][0-9a-fA-F]+" + _AFTER, "HEX"),
    # Ids in hex (trace and span ids, digests): 8+ hex digits, at least one a decimal digit.
    (_BEFORE + r"(?=[a-fA-F]*[0-9])[0-9a-fA-F]{8,}" + _AFTER, "HEX"),
    (_BEFORE + r"[-+]?\d+(?:\.\d+)?" + _AFTER, "NUM"),
)  # fmt: skip
SIMILARITY = 0.4  # drain3's default: share of tokens two lines must have in common
DEPTH = 4

logging.getLogger("drain3").setLevel(logging.WARNING)  # it logs every miner it starts


def check_patterns(limit: int, sample_limit: int) -> None:
    if limit < 1:
        raise QueryError(f"limit must be at least 1, got {limit}")
    if not 1 <= sample_limit <= MAX_PATTERN_SAMPLE:
        raise QueryError(
            f"sample_limit must be between 1 and {MAX_PATTERN_SAMPLE}, got {sample_limit}"
        )


def body_string(body: AnyValue) -> str:
    """A body's string form, as `contains` searches it; "" for an empty body."""
    if body is None:
        return ""
    return body if isinstance(body, str) else encode_value(body).decode()


def _miner() -> TemplateMiner:
    config = TemplateMinerConfig()
    config.drain_sim_th = SIMILARITY
    config.drain_depth = DEPTH
    config.masking_instructions = [MaskingInstruction(regex, name) for regex, name in MASKING]
    config.mask_prefix, config.mask_suffix = "<", ">"
    return TemplateMiner(config=config)


def mine(records: Sequence[LogRecord], limit: int, sampled: bool) -> LogPatterns:
    """Cluster `records` (newest first) by body; the `limit` largest groups, ties by
    template."""
    miner = _miner()
    samples: dict[int, LogRecord] = {}
    for record in records:
        result = miner.add_log_message(body_string(record.body))
        samples.setdefault(int(result["cluster_id"]), record)  # the first seen is the newest
    clusters = sorted(miner.drain.clusters, key=lambda c: (-c.size, c.get_template()))
    patterns = [
        LogPattern(template=c.get_template(), count=c.size, sample=samples[c.cluster_id])
        for c in clusters[:limit]
    ]
    return LogPatterns(patterns=patterns, records=len(records), sampled=sampled)


async def patterns_by_search(
    store: LogStore, query: LogQuery, limit: int, sample_limit: int
) -> LogPatterns:
    """LogStore.patterns for any store: one search page of the newest records, mined in a
    worker thread."""
    check_patterns(limit, sample_limit)
    page = await store.search(replace(query, limit=sample_limit, cursor=None))
    return await asyncio.to_thread(mine, page.records, limit, page.next_cursor is not None)
