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

GMV Max (docs/tiktok_api_gmv_smartplus.md §1): TikTok leaves GMV Max campaigns out of the BASIC levels below
the advertiser, and whether its advertiser total holds their spend is not documented. When a
run loads ``gmv_max_campaign`` beside the advertiser level, the window decides which is the
case (the advertiser total closer to campaigns + GMV Max, or to campaigns alone), and each
day is then compared that way: campaign levels + GMV Max cost = advertiser spend, or
campaign levels = advertiser spend (and the account's spend is advertiser + GMV Max). A gap
shows the GMV Max cost beside the levels. TikTok's TT_SHOP spend per campaign and day
(``add_tt_shop``) is compared with TKT050's cost of the same campaign and day: a GMV Max
campaign missing from the GMV Max answer shows there with its amount and its id.
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
GMV_MAX = "gmv_max_campaign"  # TKT050: its ``cost`` is GMV Max's spend
TT_SHOP = "tt_shop"  # TikTok's TT_SHOP spend per GMV Max campaign (values' key)
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
    campaign_id: str | None = None  # a GMV Max campaign's TT_SHOP spend against TKT050

    def as_dict(self) -> dict[str, Any]:
        return {
            "advertiser_id": self.advertiser_id,
            "date": self.date.isoformat(),
            "metric": self.metric,
            "values": dict(self.values),
            "campaign_id": self.campaign_id,
        }


class Reconciler:
    """Collects day sums from the streamed tables (thread-safe) and compares the levels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (advertiser, level) -> day -> metric -> sum (None: the level has no value for it)
        self._sums: dict[tuple[str, str], dict[date, dict[str, float | None]]] = defaultdict(dict)
        self._rows: dict[tuple[str, str], dict[date, int]] = defaultdict(dict)
        # advertiser -> (day, campaign) -> spend: GMV Max's cost (TKT050) and TikTok's TT_SHOP
        self._gmv_campaigns: dict[str, dict[tuple[date, str], float]] = defaultdict(dict)
        self._gmv_campaign_rows: dict[str, dict[tuple[date, str], int]] = defaultdict(dict)
        self._tt_shop: dict[str, dict[tuple[date, str], float]] = {}

    def add(self, report_type: str, advertiser_id: str, table: pa.Table) -> None:
        """Fold one typed page of a report into its day sums (other report types ignored)."""
        names = set(table.column_names)  # a new list of ~270 names on every access
        if report_type == GMV_MAX and len(table):
            self._add_gmv_max(advertiser_id, table)
            return
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

    def _add_gmv_max(self, advertiser_id: str, table: pa.Table) -> None:
        """GMV Max's cost per day (as the level's ``spend``) and per campaign and day."""
        grouped = table.select(["date", "campaign_id", "cost"]).group_by(["date", "campaign_id"])
        aggregated = grouped.aggregate([("cost", "sum"), ("cost", "count")]).to_pylist()
        with self._lock:
            sums = self._sums[(advertiser_id, GMV_MAX)]
            rows = self._rows[(advertiser_id, GMV_MAX)]
            campaigns = self._gmv_campaigns[advertiser_id]
            campaign_rows = self._gmv_campaign_rows[advertiser_id]
            for group in aggregated:
                day, cost = group["date"], group["cost_sum"] or 0.0
                rows[day] = rows.get(day, 0) + group["cost_count"]
                current = sums.setdefault(day, {})
                current["spend"] = (current.get("spend") or 0.0) + cost
                key = (day, group["campaign_id"])
                campaigns[key] = campaigns.get(key, 0.0) + cost
                campaign_rows[key] = campaign_rows.get(key, 0) + group["cost_count"]

    def add_tt_shop(self, advertiser_id: str, spend: dict[tuple[date, str], float]) -> None:
        """TikTok's TT_SHOP spend per (day, campaign) of the run's window, as read."""
        with self._lock:
            self._tt_shop[advertiser_id] = dict(spend)

    def differences(self, loaded: Iterable[tuple[str, str]]) -> list[Difference]:
        """Days where two committed levels of an advertiser differ beyond rounding.

        ``loaded``: the (advertiser, report type) pairs whose rows were committed. A level
        with no row on a day counts 0 for it (TikTok omits rows without delivery); a metric
        a level did not load (all null, e.g. refused by TikTok) is not compared there.
        """
        by_advertiser: dict[str, list[str]] = defaultdict(list)
        gmv_max: set[str] = set()
        for advertiser_id, report_type in set(loaded):
            if report_type in LEVELS:
                by_advertiser[advertiser_id].append(report_type)
            elif report_type == GMV_MAX:
                gmv_max.add(advertiser_id)
        found: list[Difference] = []
        with self._lock:
            for advertiser_id in sorted(by_advertiser):
                levels = sorted(by_advertiser[advertiser_id], key=LEVELS.index)
                if len(levels) > 1:
                    extra = self._gmv_max_in_levels(advertiser_id, levels, advertiser_id in gmv_max)
                    found += self._compare(advertiser_id, levels, extra)
            for advertiser_id in sorted(gmv_max & set(self._tt_shop)):
                found += self._compare_tt_shop(advertiser_id)
        return found

    def _gmv_max_in_levels(
        self, advertiser_id: str, levels: list[str], loaded: bool
    ) -> dict[date, float]:
        """GMV Max's cost per day to add to the levels below the advertiser when TikTok's
        advertiser total holds it (decided over the window: whichever of campaign levels
        + GMV Max and campaign levels alone is closer to it); empty when it does not."""
        if not loaded or "advertiser" not in levels:
            return {}
        gmv = {
            day: sums.get("spend") or 0.0
            for day, sums in self._sums.get((advertiser_id, GMV_MAX), {}).items()
        }
        if not any(gmv.values()):
            return {}
        advertiser = self._sums.get((advertiser_id, "advertiser"), {})
        lower = self._sums.get((advertiser_id, levels[1]), {})
        days = set(advertiser) | set(lower) | set(gmv)

        def spend(sums: dict[date, dict[str, float | None]], day: date) -> float:
            return (sums.get(day) or {}).get("spend") or 0.0

        with_gmv = sum(abs(spend(advertiser, d) - spend(lower, d) - gmv.get(d, 0.0)) for d in days)
        without = sum(abs(spend(advertiser, d) - spend(lower, d)) for d in days)
        return gmv if with_gmv < without else {}

    def _compare(
        self, advertiser_id: str, levels: list[str], gmv_max: dict[date, float] | None = None
    ) -> list[Difference]:
        sums = {level: self._sums.get((advertiser_id, level), {}) for level in levels}
        days = sorted({day for level in levels for day in sums[level]} | set(gmv_max or {}))
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
                compared = dict(values)
                added = (gmv_max or {}).get(day, 0.0) if metric == "spend" else 0.0
                if added:  # the advertiser total holds GMV Max; the levels below do not
                    for level in compared:
                        if level != "advertiser":
                            compared[level] = round(compared[level] + added, 2)
                tolerance = 0.0
                if metric in MONEY:  # one cent per row of the level with the most rows
                    counted = [*values, *([GMV_MAX] if added else [])]
                    tolerance = (
                        CENT * max(self._rows_on(advertiser_id, level, day) for level in counted)
                        + 1e-9
                    )
                if max(compared.values()) - min(compared.values()) > tolerance:
                    if added:
                        values[GMV_MAX] = round(added, 2)
                    found.append(Difference(advertiser_id, day, metric, values))
        return found

    def _rows_on(self, advertiser_id: str, level: str, day: date) -> int:
        return self._rows.get((advertiser_id, level), {}).get(day, 0)

    def _compare_tt_shop(self, advertiser_id: str) -> list[Difference]:
        """TikTok's TT_SHOP spend against TKT050's cost, per GMV Max campaign and day (its
        stores summed): a campaign the GMV Max answer left out shows with its amount."""
        tt_shop, gmv = self._tt_shop[advertiser_id], self._gmv_campaigns.get(advertiser_id, {})
        rows = self._gmv_campaign_rows.get(advertiser_id, {})
        found = []
        for day, campaign in sorted(set(tt_shop) | set(gmv)):
            shop = round(tt_shop.get((day, campaign), 0.0), 2)
            cost = round(gmv.get((day, campaign), 0.0), 2)
            # one cent per store row summed, and TT_SHOP's own cent
            if abs(shop - cost) > CENT * (rows.get((day, campaign), 0) + 1) + 1e-9:
                values: dict[str, float | int] = {TT_SHOP: shop, GMV_MAX: cost}
                found.append(Difference(advertiser_id, day, "spend", values, campaign))
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
