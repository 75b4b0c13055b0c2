"""Requests that shrink instead of failing when TikTok answers 40067 "query too large".

TikTok refuses a report it finds too large with code 40067 ("Your query is too large, please
reduce the query size (e.g. fewer metrics or time range) and retry after a while.",
docs/tiktok_api_beyond.md §3); the same request asked again fails again. So the request is
split: its date range is halved, down to one day, then its metric list is halved, down to
``MIN_METRICS`` metrics; the parts are read and joined on the dimensions. The size that
worked is remembered per (advertiser, level) for the rest of the run, so later requests start
there instead of failing first. One day of ``MIN_METRICS`` metrics still refused fails the
report, saying so.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa

from controller.tiktok.client import TikTokApiError, TikTokError

QUERY_TOO_LARGE = 40067
MIN_METRICS = 10  # below this, splitting metrics multiplies requests for nothing


def is_too_large(error: TikTokError) -> bool:
    return isinstance(error, TikTokApiError) and error.code == QUERY_TOO_LARGE


@dataclass(frozen=True)
class Size:
    days: int
    metrics: int


UNLIMITED = Size(days=10**6, metrics=10**6)
Key = tuple[str, str]  # (advertiser id, report type)
# Reads every page of one request: metrics over [start, end] -> typed table of those metrics.
Fetch = Callable[[list[str], date, date], pa.Table]
Join = Callable[[list[pa.Table]], pa.Table]


class QueryTooLargeError(TikTokError):
    """TikTok refused even the smallest request it can be asked."""


class QuerySizes:
    """Per (advertiser, level), the largest request size TikTok has not refused in the run."""

    def __init__(self) -> None:
        self._sizes: dict[Key, Size] = {}
        self._lock = threading.Lock()

    def get(self, key: Key) -> Size:
        with self._lock:
            return self._sizes.get(key, UNLIMITED)

    def fits(self, key: Key, days: int, metrics: int) -> bool:
        size = self.get(key)
        return days <= size.days and metrics <= size.metrics

    def shrink(self, key: Key, days: int, metrics: int) -> Size | None:
        """After a 40067 at ``days`` x ``metrics``: half the days, or at one day half the
        metrics; None when the request was already one day of ``MIN_METRICS`` or fewer."""
        with self._lock:
            size = self._sizes.get(key, UNLIMITED)
            if days > 1:
                size = Size(min(size.days, math.ceil(days / 2)), size.metrics)
            elif metrics > MIN_METRICS:
                size = Size(1, min(size.metrics, max(MIN_METRICS, math.ceil(metrics / 2))))
            else:
                return None
            self._sizes[key] = size
            return size


def _day_pieces(start: date, end: date, days: int) -> list[tuple[date, date]]:
    pieces = []
    while start <= end:
        piece_end = min(start + timedelta(days=days - 1), end)
        pieces.append((start, piece_end))
        start = piece_end + timedelta(days=1)
    return pieces


def read_shrinking(
    fetch: Fetch,
    join: Join,
    sizes: QuerySizes,
    key: Key,
    metrics: list[str],
    start: date,
    end: date,
    advertiser_id: str,
    split_days: bool = True,
) -> pa.Table:
    """``metrics`` over ``start..end`` in requests no larger than the size learnt for ``key``,
    shrinking further on 40067. Parts of a day range are joined on the dimensions (a full
    outer join: a part may lack rows another has), day ranges are concatenated.
    ``split_days`` False (a lifetime report, whose dates TikTok ignores): metrics only."""
    size = sizes.get(key)
    days = (end - start).days + 1 if split_days else 1
    if days > size.days or len(metrics) > size.metrics:
        groups = [metrics[i : i + size.metrics] for i in range(0, len(metrics), size.metrics)]
        tables = []
        pieces = _day_pieces(start, end, min(days, size.days)) if split_days else [(start, end)]
        for piece_start, piece_end in pieces:
            parts = [
                read_shrinking(
                    fetch, join, sizes, key, group, piece_start, piece_end, advertiser_id
                )
                for group in groups
            ]
            tables.append(join(parts) if len(parts) > 1 else parts[0])
        names = tables[0].column_names
        return pa.concat_tables([table.select(names) for table in tables])
    try:
        return fetch(metrics, start, end)
    except TikTokApiError as exc:
        if not is_too_large(exc):
            raise
        if sizes.shrink(key, days, len(metrics)) is None:
            scope = f"one day ({start})" if split_days else "the lifetime report"
            raise QueryTooLargeError(
                advertiser_id,
                f"TikTok answered 40067 (query too large) even for {scope} and "
                f"{len(metrics)} metrics, the smallest request it can be asked; this report is "
                "not loaded: ask for fewer metric families or contact TikTok",
            ) from None
    return read_shrinking(fetch, join, sizes, key, metrics, start, end, advertiser_id, split_days)
