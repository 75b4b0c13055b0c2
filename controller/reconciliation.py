"""Reconciliation: do the levels a run loaded add up, per advertiser and day?

TikTok's advertiser total should equal the sum of its campaigns, of its ad groups and of its
ads. When it does not, rows are missing somewhere (Promote campaigns filtered out by
TikTok's default ``campaign_system_origins``, objects left out by a status filter, a page
lost), and the gap looks like real data: lower totals, not errors. So every run that loads
more than one of the four levels for an advertiser compares the additive metrics across
them and reports every difference above rounding, never hiding it and never failing the run
for it.

It costs no extra query: the typed Arrow pages the extraction streams to the table writers
pass through ``Reconciler.add`` too, which keeps only per (advertiser, level, day) sums
(a few numbers per day) and row counts. Only reports that were committed are compared.
Rounding: TikTok rounds each row's money to the cent, so two levels may differ by up to one
cent per row summed; counts are integers and must match exactly.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

LEVELS = ("advertiser", "campaign", "adgroup", "ad")  # report types, coarsest first
METRICS = ("spend", "impressions", "clicks", "conversion")
MONEY = frozenset({"spend"})
CENT = 0.01


@dataclass(frozen=True)
class Difference:
    """One advertiser, day and metric whose loaded levels disagree."""

    advertiser_id: str
    date: date
    metric: str
    values: dict[str, float | int]  # level -> the level's total for the day

    def as_dict(self) -> dict[str, Any]:
        return {
            "advertiser_id": self.advertiser_id,
            "date": self.date.isoformat(),
            "metric": self.metric,
            "values": dict(self.values),
        }


class Reconciler:
    """Collects day sums from the streamed tables (thread-safe) and compares the levels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (advertiser, level) -> day -> metric -> sum (None: the level has no value for it)
        self._sums: dict[tuple[str, str], dict[date, dict[str, float | None]]] = defaultdict(dict)
        self._rows: dict[tuple[str, str], dict[date, int]] = defaultdict(dict)

    def add(self, report_type: str, advertiser_id: str, table: pa.Table) -> None:
        """Fold one typed page of a report into its day sums (other report types ignored)."""
        names = set(table.column_names)  # a new list of ~270 names on every access
        if report_type not in LEVELS or not len(table) or "date" not in names:
            return
        metrics = [m for m in METRICS if m in names]
        grouped = table.select(["date", *metrics]).group_by("date")
        aggregated = grouped.aggregate(
            [("date", "count"), *((m, "sum", _min_one()) for m in metrics)]
        ).to_pylist()
        with self._lock:
            sums = self._sums[(advertiser_id, report_type)]
            rows = self._rows[(advertiser_id, report_type)]
            for group in aggregated:
                day = group["date"]
                rows[day] = rows.get(day, 0) + group["date_count"]
                current = sums.setdefault(day, {})
                for metric in metrics:
                    value = group[f"{metric}_sum"]
                    if value is None:
                        current.setdefault(metric, None)
                    else:
                        current[metric] = (current.get(metric) or 0) + value

    def differences(self, loaded: Iterable[tuple[str, str]]) -> list[Difference]:
        """Days where two committed levels of an advertiser differ beyond rounding.

        ``loaded``: the (advertiser, report type) pairs whose rows were committed. A level
        with no row on a day counts 0 for it (TikTok omits rows without delivery); a metric
        a level did not load (all null, e.g. refused by TikTok) is not compared there.
        """
        by_advertiser: dict[str, list[str]] = defaultdict(list)
        for advertiser_id, report_type in set(loaded):
            if report_type in LEVELS:
                by_advertiser[advertiser_id].append(report_type)
        found: list[Difference] = []
        with self._lock:
            for advertiser_id in sorted(by_advertiser):
                levels = sorted(by_advertiser[advertiser_id], key=LEVELS.index)
                if len(levels) > 1:
                    found += self._compare(advertiser_id, levels)
        return found

    def _compare(self, advertiser_id: str, levels: list[str]) -> list[Difference]:
        sums = {level: self._sums.get((advertiser_id, level), {}) for level in levels}
        rows = {level: self._rows.get((advertiser_id, level), {}) for level in levels}
        days = sorted({day for level in levels for day in sums[level]})
        found = []
        for day in days:
            for metric in METRICS:
                values: dict[str, float | int] = {}
                for level in levels:
                    daily = sums[level].get(day)
                    if daily is None:
                        if _loaded_metric(sums[level], metric):
                            values[level] = 0
                        continue
                    value = daily.get(metric)
                    if value is not None:
                        values[level] = round(value, 2) if metric in MONEY else int(value)
                if len(values) < 2:
                    continue
                tolerance = 0.0
                if metric in MONEY:  # one cent per row of the level with the most rows
                    tolerance = CENT * max(rows[level].get(day, 0) for level in values) + 1e-9
                if max(values.values()) - min(values.values()) > tolerance:
                    found.append(Difference(advertiser_id, day, metric, values))
        return found


def _loaded_metric(sums: dict[date, dict[str, float | None]], metric: str) -> bool:
    """Whether a level has values of ``metric``: a level with no row at all has 0 of
    everything; one whose rows hold only nulls for it did not load it (refused by TikTok)."""
    return not sums or any(daily.get(metric) is not None for daily in sums.values())


def _min_one() -> pc.ScalarAggregateOptions:
    return pc.ScalarAggregateOptions(min_count=1)


def warning_for(differences: list[Difference]) -> str:
    """The per-item warning: how many days disagree, and the first one as an example."""
    first = differences[0]
    values = ", ".join(f"{level} {value}" for level, value in first.values.items())
    days = len({d.date for d in differences})
    metrics = ", ".join(sorted({d.metric for d in differences}, key=METRICS.index))
    return (
        f"levels do not add up on {days} day(s) ({metrics}), e.g. {first.date} "
        f"{first.metric}: {values}; see reconciliation"
    )


def report(differences: list[Difference], items: Iterable[Any]) -> None:
    """Warn on each affected item (``advertiser_id``, ``report_type``, ``warnings``) and log
    one line per advertiser. The run's outcome is unchanged: a gap is news, not a failure."""
    by_advertiser: dict[str, list[Difference]] = defaultdict(list)
    for difference in differences:
        by_advertiser[difference.advertiser_id].append(difference)
    for item in items:
        found = [
            d for d in by_advertiser.get(item.advertiser_id, []) if item.report_type in d.values
        ]
        if found:
            item.warnings.append(warning_for(found))
    for advertiser_id, found in by_advertiser.items():
        log.warning(
            "levels do not reconcile",
            extra={
                "fields": {
                    "advertiser_id": advertiser_id,
                    "differences": len(found),
                    "days": sorted({d.date.isoformat() for d in found}),
                    "metrics": sorted({d.metric for d in found}, key=METRICS.index),
                    "first": found[0].as_dict(),
                }
            },
        )


def for_item(differences: list[Difference], advertiser_id: str, report_type: str) -> list[dict]:
    """The differences one (advertiser, report type) took part in, for its run log row."""
    return [
        d.as_dict()
        for d in differences
        if d.advertiser_id == advertiser_id and report_type in d.values
    ]
