"""The report engine: which rows a validated query has, and their values for one page.

A query is answered in two steps so that paging stays cheap:

1. ``select`` lists the row *keys* (entity, day, hour) that have delivery, in the API's
   stable order (id, then time). It needs only the presence hash of each ad-day, and is
   cached per query shape, so the pages of one report share one selection.
2. ``rows`` renders only the requested slice of keys: generates the ad-day bases, sums them
   over the entity's ads and renders each metric. ``page_json`` serves the same slice as
   JSON rendered by columns (``columnar``), 2.5-15× cheaper; ``rows`` is its reference.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import orjson

from . import columnar, gmv_max
from .compiled import Generator, direct_renderer_for, generator_for, renderer_for
from .metrics import (
    AD,
    ADGROUP,
    ADVERTISER,
    CAMPAIGN,
    DASH,
    DEFAULT_METRICS,
    LEVELS,
    METRICS,
    Base,
    base_plan,
    zeroed_bases,
)
from .settlement import ATTRIBUTION_DAYS, is_final, settler
from .world import AD_V2, DEFAULT_ORIGINS, M64, ORIGINS, Entity, World, as_date

ID_DIMENSIONS: dict[str, str] = {
    ADVERTISER: "advertiser_id",
    CAMPAIGN: "campaign_id",
    ADGROUP: "adgroup_id",
    AD: "ad_id",
}
TIME_DIMENSIONS = ("stat_time_day", "stat_time_hour")
MULTI_ADVERTISER_FIELDS = ("advertiser_id", "currency", "timezone")

Key = tuple[int, int, int]  # (entity position, day ordinal or -1, hour or -1)
Row = dict[str, dict[str, str]]


@dataclass(frozen=True)
class ReportQuery:
    """A validated synchronous BASIC or AUDIENCE report request (``query.parse_report_query``)."""

    advertiser_ids: tuple[str, ...]
    data_level: str
    dimensions: tuple[str, ...]
    time_dimension: str | None
    start: date
    end: date
    metrics: tuple[str, ...]
    include_deleted: bool = False
    campaign_ids: frozenset[str] | None = None
    adgroup_ids: frozenset[str] | None = None
    ad_ids: frozenset[str] | None = None
    ad_ids_v2: frozenset[str] | None = None  # Upgraded Smart+ ad ids (and classic ads' v2 ids)
    multi_advertiser: bool = False
    lifetime: bool = False
    page: int = 1
    page_size: int = 10
    enable_total_metrics: bool = False
    order_field: str | None = None
    order_type: str = "DESC"
    # Campaign ids (or "PROMOTE": every Promote campaign) whose rows this level leaves out:
    # the ``dropped_campaigns`` setting, a TikTok that hides some rows at some levels only.
    hidden_campaigns: frozenset[str] = frozenset()
    # The simulator's today for attribution and the data fix (``settlement``); None: final.
    as_of: date | None = None
    attribution_days: int = ATTRIBUTION_DAYS

    @property
    def as_of_ordinal(self) -> int | None:
        return None if self.as_of is None else self.as_of.toordinal()

    report_type: str = "BASIC"  # or AUDIENCE (see ``audience``)
    breakdowns: tuple[str, ...] = ()  # AUDIENCE dimensions, e.g. ("age", "gender")
    origins: frozenset[str] = DEFAULT_ORIGINS  # campaign_system_origins

    @property
    def id_dimension(self) -> str:
        """The level's id, or ``ad_id_v2`` at AUCTION_AD when asked for (one row per ad as
        Ads Manager shows it, an Upgraded Smart+ ad's creatives summed)."""
        if self.data_level == AD and "ad_id_v2" in self.dimensions:
            return "ad_id_v2"
        return ID_DIMENSIONS[self.data_level]

    @property
    def entity_level(self) -> str:
        """Which objects the rows are (``world.Account.entities``)."""
        return AD_V2 if self.id_dimension == "ad_id_v2" else self.data_level

    @property
    def output_metrics(self) -> tuple[str, ...]:
        """Requested metrics plus the fields a multi-advertiser report always carries."""
        if not self.multi_advertiser:
            return self.metrics
        extra = tuple(f for f in MULTI_ADVERTISER_FIELDS if f not in self.metrics)
        return self.metrics + extra

    def selection_key(self) -> tuple:
        return (
            self.advertiser_ids,
            self.data_level,
            self.time_dimension,
            self.start,
            self.end,
            self.include_deleted,
            self.campaign_ids,
            self.adgroup_ids,
            self.ad_ids,
            self.ad_ids_v2,
            self.entity_level,
            self.hidden_campaigns,
            self.as_of,
            self.attribution_days,
            self.origins,
        )


@dataclass
class Selection:
    """The rows of a report in serving order (keys only) and whether the ad cap applied.

    Keys are packed into one 64-bit integer each (``pack``) and kept in an ``array``: a
    cached selection of 100k rows then costs under 1 MB instead of ~10 MB of tuples.
    """

    entities: list[Entity]
    first_day: int  # ordinal of the query's start date
    throttled: bool
    keys: array = field(default_factory=lambda: array("q"))
    ordered: dict[tuple[str, str], array] = field(default_factory=dict)

    def pack(self, position: int, day: int, hour: int) -> int:
        offset = day - self.first_day + 1 if day >= 0 else 0
        return (position << 21) | (offset << 5) | (hour + 1)

    def unpack(self, packed: int) -> Key:
        offset = (packed >> 5) & 0xFFFF
        day = self.first_day + offset - 1 if offset else -1
        return packed >> 21, day, (packed & 31) - 1


class ReportBuilder:
    """Computes selections (cached, LRU) and renders rows for one world."""

    CACHE_SIZE = 64

    def __init__(self, world: World) -> None:
        self.world = world
        self._cache: OrderedDict[tuple, Selection] = OrderedDict()
        self._lock = threading.Lock()
        self._day_labels: dict[int, str] = {}

    # ------------------------------------------------------------------ selection
    def select(self, query: ReportQuery, max_ads: int | None = None) -> Selection:
        """The report's row keys; computed once per query shape and ad cap."""
        cache_key = (query.selection_key(), max_ads)
        with self._lock:  # computing under the lock avoids duplicate work; it is CPU-bound anyway
            selection = self._cache.get(cache_key)
            if selection is not None:
                self._cache.move_to_end(cache_key)
                return selection
            selection = self._compute_selection(query, max_ads)
            self._cache[cache_key] = selection
            if len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
            return selection

    def _compute_selection(self, query: ReportQuery, max_ads: int | None) -> Selection:
        entities: list[Entity] = []
        throttled = False
        for advertiser_id in sorted(query.advertiser_ids, key=int):
            account = self.world.account(advertiser_id)
            in_scope = [e for e in account.entities(query.entity_level) if _in_scope(e, query)]
            if query.data_level == AD and max_ads is not None and len(in_scope) >= max_ads:
                # Only the most recently created ads are served; ids grow with creation time.
                throttled = True
                in_scope = in_scope[len(in_scope) - max_ads :]
            entities.extend(in_scope)
        selection = Selection(entities, query.start.toordinal(), throttled)
        if query.time_dimension == "stat_time_day":
            selection.keys.frombytes(self._daily_keys(query, entities).tobytes())
        else:
            selection.keys.extend(selection.pack(*key) for key in self._keys(query, entities))
        if query.data_level == ADVERTISER:  # GMV Max days, when the world counts them there
            gmv_max.extend_advertiser_keys(self.world, query, selection)
        return selection

    def _daily_keys(self, query: ReportQuery, entities: list[Entity]) -> np.ndarray:
        """``_keys`` of a daily report, packed (``Selection.pack``), in columns: an entity's
        day is a row when any of its ads delivered that day. Half the simulator's CPU went
        to this loop (a 30-day window of 1,000 ads is 30,000 ``day_hash`` calls), which
        ``bench/simulator.py`` pays once per window."""
        ads = [_ads(entity, query) for entity in entities]
        counts = np.array([len(of) for of in ads], np.int64)
        keys = np.fromiter((ad.key & M64 for of in ads for ad in of), np.uint64, int(counts.sum()))
        days = np.arange(query.start.toordinal(), query.end.toordinal() + 1, dtype=np.int64)
        ad_days = np.broadcast_arrays(keys[:, None], days[None])  # one row per ad
        _, delivered = columnar.day_hashes(self.world.delivery_window, *ad_days)
        per_entity = np.zeros((len(entities), len(days)), bool)
        some = counts > 0  # an entity without ads has no row (reduceat cannot say so)
        if some.any():
            starts = np.cumsum(counts) - counts
            per_entity[some] = np.logical_or.reduceat(delivered, starts[some], axis=0)
        position, day = np.nonzero(per_entity)  # entity by entity, days in order
        return (position.astype(np.int64) << 21) | ((day.astype(np.int64) + 1) << 5)

    def _keys(self, query: ReportQuery, entities: list[Entity]) -> Iterator[Key]:
        day_hash = self.world.day_hash
        days = range(query.start.toordinal(), query.end.toordinal() + 1)
        for pos, entity in enumerate(entities):
            ads = _ads(entity, query)
            if query.time_dimension is None:
                if any(day_hash(ad, d) is not None for ad in ads for d in days):
                    yield pos, -1, -1
            elif query.time_dimension == "stat_time_day":
                yield from (
                    (pos, d, -1) for d in days if any(day_hash(ad, d) is not None for ad in ads)
                )
            else:
                for d in days:
                    mask = 0
                    for ad in ads:
                        h = day_hash(ad, d)
                        if h is not None:
                            mask |= self.world.hour_split(h)[0]
                    yield from ((pos, d, hour) for hour in range(24) if mask >> hour & 1)

    def ordered_keys(self, query: ReportQuery, selection: Selection) -> array:
        """Keys in serving order: as selected, or sorted by ``order_field`` (stable on ties)."""
        if query.order_field is None:
            return selection.keys
        order = (query.order_field, query.order_type)
        keys = selection.ordered.get(order)
        if keys is None:
            values = [
                _sort_value(row["metrics"][query.order_field])
                for row in self._render(query, selection, selection.keys, (query.order_field,))
            ]
            positions = sorted(
                range(len(values)), key=values.__getitem__, reverse=query.order_type == "DESC"
            )
            keys = array("q", (selection.keys[i] for i in positions))
            selection.ordered[order] = keys
        return keys

    # ------------------------------------------------------------------ rows
    def rows(self, query: ReportQuery, selection: Selection, lo: int, hi: int) -> list[Row]:
        """The wire rows for positions ``lo:hi`` of the report."""
        keys = self.ordered_keys(query, selection)[lo:hi]
        rows = self._render(query, selection, keys, query.output_metrics)
        if query.data_level == ADVERTISER:  # GMV Max spend, when the world counts it there
            gmv_max.add_to_advertiser_rows(self.world, query, selection, keys, rows)
        return rows

    def page_json(
        self,
        query: ReportQuery,
        selection: Selection,
        lo: int,
        hi: int,
        words: dict[str, str] | None = None,
    ) -> bytes:
        """``rows(query, selection, lo, hi)`` as JSON, rendered in columns (``columnar``).

        ``words``: metrics served as a word (the ``worded_metrics`` setting)."""
        if query.data_level == ADVERTISER and gmv_max.in_advertiser_total(self.world, query):
            # GMV Max adds to these few rows (one a day at most): the reference path
            return self._reference_json(query, selection, lo, hi, words or {})
        keys = self.ordered_keys(query, selection)[lo:hi]
        try:
            return self._columns_json(query, selection, keys, query.output_metrics, words or {})
        except (columnar.Unfit, OverflowError):  # sums beyond int64: the reference path
            return self._reference_json(query, selection, lo, hi, words or {})

    def _reference_json(
        self, query: ReportQuery, selection: Selection, lo: int, hi: int, words: dict[str, str]
    ) -> bytes:
        """``rows(query, selection, lo, hi)`` as JSON, row by row, its words in place."""
        rows = self.rows(query, selection, lo, hi)
        for row in rows:
            row["metrics"].update((n, w) for n, w in words.items() if n in row["metrics"])
        return orjson.dumps(rows)

    def _columns_json(
        self,
        query: ReportQuery,
        selection: Selection,
        packed: array,
        names: tuple[str, ...],
        words: dict[str, str],
    ) -> bytes:
        """The rows of ``packed`` keys as ``_render`` makes them, with the same split: a row of
        one ad-day (the bulk of a daily ad-level page) has its bases drawn for the whole page
        at once; the other rows (sums, hours, days still settling) by ``_sum_columns``."""
        if not packed:
            return b"[]"
        plan = base_plan(names)
        keys = np.frombuffer(packed, np.int64)
        offset = (keys >> 5) & 0xFFFF  # ``Selection.unpack``, by columns
        day = np.where(offset > 0, selection.first_day + offset - 1, -1)
        hour = (keys & 31) - 1
        rows = columnar.Distinct.of(keys >> 21)
        entities = [selection.entities[p] for p in rows.values]
        ads = [e.ads[0] if len(e.ads) == 1 else None for e in entities]  # one ad: direct
        direct = (
            (day >= 0) & (hour < 0) & np.array([ad is not None for ad in ads], bool)[rows.index]
        )
        if query.as_of is not None:
            direct &= query.as_of.toordinal() - day >= max(query.attribution_days, 2)
        bases = {b.name: np.zeros(len(keys), np.int64) for b in plan}
        if direct.any():
            of_row = rows.index[direct]
            keyed = [
                (0, 1, frozenset()) if ad is None else (ad.key & M64, ad.scale, ad.zero_legs)
                for ad in ads
            ]
            drawn = columnar.bases_from_hashes(
                plan,
                columnar.value_hashes(
                    columnar.day_hashes(
                        self.world.delivery_window,
                        np.array([k for k, _, _ in keyed], np.uint64)[of_row],
                        day[direct],
                    )[0]  # a selected key always delivered
                ),
                np.array([scale for _, scale, _ in keyed], np.int64)[of_row],
            )
            for legs in {legs for _, _, legs in keyed if legs}:
                zeroed = np.array([legs == ad_legs for _, _, ad_legs in keyed])[of_row]
                for name in zeroed_bases(plan, legs):
                    drawn[name][zeroed] = 0
            for name, column in drawn.items():
                bases[name][direct] = column
        summed = np.flatnonzero(~direct)
        if len(summed):
            self._sum_columns(query, plan, bases, summed, rows.index[summed], day, hour, entities)
        return columnar.page_json(
            names,
            [
                (dim, self._dimension(query, dim, day, hour, rows, entities))
                for dim in query.dimensions
            ],
            bases,
            columnar.Distinct([e.attributes for e in entities], rows.index),
            words,
        )

    # Ad-days drawn at once when summing rows: ~50 MB of columns at 60 bases.
    PAIRS_AT_ONCE = 100_000

    def _sum_columns(
        self,
        query: ReportQuery,
        plan: tuple[Base, ...],
        bases: columnar.Columns,
        summed: np.ndarray,
        entity_of: np.ndarray,
        day: np.ndarray,
        hour: np.ndarray,
        entities: list[Entity],
    ) -> None:
        """``_values`` for the rows ``summed`` of a page, by columns: every (ad, day) pair of
        those rows (their entity's ads × the row's day, or every day of a lifetime row) is
        hashed and drawn at once, settled or split into its hour as ``_values`` does in
        ``_render`` (an hour is split from the final day), and added to its row."""
        row_ads = {int(e): _ads(entities[e], query) for e in np.unique(entity_of).tolist()}
        flat = [ad for ads in row_ads.values() for ad in ads]
        at = dict(zip(row_ads, np.cumsum([0, *map(len, row_ads.values())]).tolist(), strict=False))
        ad_key = np.array([ad.key & M64 for ad in flat], np.uint64)
        ad_scale = np.array([ad.scale for ad in flat], np.int64)
        legs = sorted({ad.zero_legs for ad in flat if ad.zero_legs}, key=sorted)
        ad_legs = np.array([legs.index(ad.zero_legs) + 1 if ad.zero_legs else 0 for ad in flat])
        first, last = query.start.toordinal(), query.end.toordinal()
        row_day, row_hour = day[summed], hour[summed]
        days = np.where(row_day < 0, last - first + 1, 1)
        ads = np.array([len(row_ads[int(e)]) for e in entity_of.tolist()], np.int64)
        offset = np.array([at[int(e)] for e in entity_of.tolist()], np.int64)
        ends = np.cumsum(ads * days)
        for lo in range(0, int(ends[-1]) if len(ends) else 0, self.PAIRS_AT_ONCE):
            pair = np.arange(lo, min(lo + self.PAIRS_AT_ONCE, int(ends[-1])))
            row = np.searchsorted(ends, pair, side="right")  # position in ``summed``
            j = pair - (ends[row] - ads[row] * days[row])
            ad = offset[row] + j // days[row]
            pair_day = np.where(row_day[row] < 0, first + j % days[row], row_day[row])
            hashes, delivered = columnar.day_hashes(
                self.world.delivery_window, ad_key[ad], pair_day
            )
            row, ad, pair_day, hashes = (
                row[delivered],
                ad[delivered],
                pair_day[delivered],
                hashes[delivered],
            )
            hourly = row_hour[row] >= 0
            if hourly.any():
                in_hour, before, upto, whole = columnar.hour_shares(
                    hashes, np.maximum(row_hour[row], 0)
                )
                keep = ~hourly | in_hour
                row, ad, pair_day, hashes = row[keep], ad[keep], pair_day[keep], hashes[keep]
                hourly, before, upto, whole = hourly[keep], before[keep], upto[keep], whole[keep]
            drawn = columnar.bases_from_hashes(plan, columnar.value_hashes(hashes), ad_scale[ad])
            for code, zero_legs in enumerate(legs, 1):
                zeroed = ad_legs[ad] == code
                for name in zeroed_bases(plan, zero_legs):
                    drawn[name][zeroed] = 0
            if query.as_of is not None:  # an hour is split from the final day (``_values``)
                ages = np.where(hourly, 1 << 30, query.as_of.toordinal() - pair_day)
                columnar.settle_columns(drawn, ages, query.attribution_days)
            for name, column in drawn.items():
                if hourly.any():
                    split = column * upto // whole - column * before // whole
                    column = np.where(hourly, split, column)
                np.add.at(bases[name], summed[row], column)

    def _dimension(
        self,
        query: ReportQuery,
        dim: str,
        day: np.ndarray,
        hour: np.ndarray,
        rows: columnar.Distinct,
        entities: list[Entity],
    ) -> columnar.Distinct:
        """One dimension's values on a page's rows, as ``_render`` writes them."""
        if dim == query.id_dimension:
            return columnar.Distinct([e.id for e in entities], rows.index)
        if dim == "stat_time_day":
            days = columnar.Distinct.of(day)
            return columnar.Distinct([self._day_label(d) for d in days.values], days.index)
        hours = columnar.Distinct.of(day * 24 + hour)
        labels = [f"{self._day_label(h // 24)[:10]} {h % 24:02d}:00:00" for h in hours.values]
        return columnar.Distinct(labels, hours.index)

    def total_metrics(self, query: ReportQuery, selection: Selection) -> dict[str, str]:
        """``data.total_metrics``: metrics over every row; attributes are not aggregatable."""
        measures = tuple(n for n in query.metrics if not METRICS[n].is_attribute)
        plan = base_plan(measures)
        generate = generator_for(plan)
        totals = dict.fromkeys((b.name for b in plan), 0)
        for key in map(selection.unpack, selection.keys):
            values = self._values(query, selection.entities[key[0]], key, generate, plan)
            for name in totals:
                totals[name] += values[name]
        rendered = renderer_for(measures)(totals, {})
        return {name: rendered.get(name, DASH) for name in query.metrics}

    def _render(
        self, query: ReportQuery, selection: Selection, keys: Iterable[int], names: tuple[str, ...]
    ) -> list[Row]:
        plan = base_plan(names)
        generate = generator_for(plan)
        render = renderer_for(names)
        direct = direct_renderer_for(names)
        zero_direct: dict[frozenset[str], Callable] = {}
        world = self.world
        id_dimension = query.id_dimension
        rows: list[Row] = []
        memo: dict[tuple[int, int], tuple] = {}  # an ad-day's bases and hour split, per call
        for key in map(selection.unpack, keys):
            entity = selection.entities[key[0]]
            if (
                key[1] >= 0
                and key[2] < 0
                and len(entity.ads) == 1
                and entity.level != ADVERTISER  # its row may be a GMV Max day alone (gmv_max)
                and is_final(query.as_of_ordinal, key[1], query.attribution_days)
            ):
                # One ad on one day (the bulk of an ad-level daily report): no summing needed.
                ad = entity.ads[0]
                h = world.day_hash(ad, key[1])
                assert h is not None, "a selected key always has delivery"
                render_ad = direct
                if ad.zero_legs:
                    render_ad = zero_direct.get(ad.zero_legs)
                    if render_ad is None:
                        zero = frozenset(zeroed_bases(plan, ad.zero_legs))
                        render_ad = zero_direct[ad.zero_legs] = direct_renderer_for(names, zero)
                metrics = render_ad(world.value_hash(h), ad.scale, entity.attributes)
            else:
                values = self._values(query, entity, key, generate, plan, memo)
                metrics = render(values, entity.attributes)
            dimensions = {}
            for dim in query.dimensions:
                if dim == id_dimension:
                    dimensions[dim] = entity.id
                elif dim == "stat_time_day":
                    dimensions[dim] = self._day_label(key[1])
                else:
                    dimensions[dim] = f"{self._day_label(key[1])[:10]} {key[2]:02d}:00:00"
            rows.append({"dimensions": dimensions, "metrics": metrics})
        return rows

    def _values(
        self,
        query: ReportQuery,
        entity: Entity,
        key: Key,
        generate: Generator,
        plan: tuple[Base, ...],
        memo: dict[tuple[int, int], tuple] | None = None,
    ) -> dict[str, int]:
        """Bases of one row: the sum over the entity's ads of their delivery in the key's slot.

        ``memo`` keeps each ad-day's bases and hour split for the rows of one page: an hourly
        page has up to 24 rows per ad-day, which would otherwise each draw them again."""
        world = self.world
        _, day, hour = key
        days = range(query.start.toordinal(), query.end.toordinal() + 1) if day < 0 else (day,)
        total: dict[str, int] | None = None
        settle = settler(query.as_of_ordinal, query.attribution_days)
        zeroes: dict[frozenset[str], tuple[str, ...]] = {frozenset(): ()}
        for ad in _ads(entity, query):
            zero = zeroes.get(ad.zero_legs)
            if zero is None:
                zero = zeroes[ad.zero_legs] = zeroed_bases(plan, ad.zero_legs)
            for d in days:
                if hour >= 0 and memo is not None:
                    cached = memo.get((ad.key, d))
                    if cached is None:
                        h = world.day_hash(ad, d)
                        cached = memo[(ad.key, d)] = (
                            (None, 0, None)
                            if h is None
                            else (
                                _zeroed(generate(world.value_hash(h), ad.scale), zero),
                                *world.hour_split(h),
                            )
                        )
                    whole_day, mask, cumulative = cached
                    if whole_day is None or not mask >> hour & 1:
                        continue
                    whole, before, upto = cumulative[24], cumulative[hour], cumulative[hour + 1]
                    values = {
                        k: v * upto // whole - v * before // whole for k, v in whole_day.items()
                    }
                    if total is None:
                        total = values
                    else:
                        for k, v in values.items():
                            total[k] += v
                    continue
                h = world.day_hash(ad, d)
                if h is None:
                    continue
                values = generate(world.value_hash(h), ad.scale)
                for name in zero:
                    values[name] = 0
                if settle is not None:
                    values = settle(values, d)
                if hour >= 0:
                    mask, cumulative = world.hour_split(h)
                    if not mask >> hour & 1:
                        continue
                    whole, before, upto = cumulative[24], cumulative[hour], cumulative[hour + 1]
                    values = {k: v * upto // whole - v * before // whole for k, v in values.items()}
                if total is None:
                    total = values
                else:
                    for k, v in values.items():
                        total[k] += v
        return total if total is not None else {b.name: 0 for b in plan}

    def _day_label(self, day: int) -> str:
        label = self._day_labels.get(day)
        if label is None:
            label = f"{date.fromordinal(day).isoformat()} 00:00:00"
            self._day_labels[day] = label
        return label


def _zeroed(values: dict[str, int], zero: tuple[str, ...]) -> dict[str, int]:
    """``values`` with the bases of the ad's missing legs at 0 (``metrics.zeroed_bases``)."""
    for name in zero:
        values[name] = 0
    return values


def _ads(entity: Entity, query: ReportQuery) -> list[Entity]:
    """The ads a row adds up: at the advertiser level, those of the origins asked for."""
    if entity.level != ADVERTISER or query.origins == frozenset(ORIGINS):
        return entity.ads
    return [ad for ad in entity.ads if ad.origin in query.origins]


def _in_scope(entity: Entity, query: ReportQuery) -> bool:
    """Status, origin and id filters. Deleted (or under a deleted parent) is hidden unless
    STATUS_ALL; Promote objects unless ``campaign_system_origins`` asks for them."""
    if entity.deleted and not query.include_deleted:
        return False
    if query.hidden_campaigns and (
        entity.campaign_id in query.hidden_campaigns
        or (
            "PROMOTE" in query.hidden_campaigns
            and "PROMOTE"
            in (getattr(entity, "origin", None), entity.attributes.get("campaign_system_origin"))
        )
    ):
        return False
    if entity.level != ADVERTISER and entity.origin not in query.origins:
        return False
    if query.campaign_ids is not None and entity.campaign_id not in query.campaign_ids:
        return False
    if query.adgroup_ids is not None and entity.adgroup_id not in query.adgroup_ids:
        return False
    if query.ad_ids_v2 is not None and entity.attributes.get("ad_id_v2") not in query.ad_ids_v2:
        return False
    return query.ad_ids is None or entity.id in query.ad_ids


def _sort_value(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # "-" sorts below every number
        return float("-inf")


def served_rows(
    world: World,
    advertiser_id: str,
    data_level: str,
    start_date: date | str,
    end_date: date | str,
    metrics: Iterable[str] = DEFAULT_METRICS,
    include_deleted: bool = True,
    dimensions: Sequence[str] | None = None,
    max_ads: int | None = None,
    as_of: date | str | None = None,
    attribution_days: int | None = None,
    origins: Iterable[str] = DEFAULT_ORIGINS,
) -> list[dict[str, dict[str, str]]]:
    """Exactly the rows the API serves, across all pages, in wire form.

    ``as_of``: the values as they stood that day (conversions still growing, delivery
    before the data fix; see ``settlement``); None: the final values.

    ``include_deleted=True`` corresponds to the level's ``STATUS_ALL`` filter (and is
    irrelevant at AUCTION_ADVERTISER). ``origins`` is the ``campaign_system_origins``
    filter (TikTok's default: regular campaigns only; at AUCTION_ADVERTISER it decides
    whether Promote spend is in the totals). ``dimensions`` defaults to the level's id
    dimension plus ``stat_time_day``. ``max_ads`` applies the sync-report ad cap.
    """
    if data_level not in LEVELS:
        raise ValueError(f"unknown data_level {data_level}")
    dims = tuple(dimensions or (ID_DIMENSIONS[data_level], "stat_time_day"))
    time_dims = [d for d in dims if d.startswith("stat_time_")]
    query = ReportQuery(
        advertiser_ids=(advertiser_id,),
        data_level=data_level,
        dimensions=dims,
        time_dimension=time_dims[0] if time_dims else None,
        start=as_date(start_date),
        end=as_date(end_date),
        metrics=tuple(metrics),
        include_deleted=include_deleted,
        as_of=None if as_of is None else as_date(as_of),
        **({} if attribution_days is None else {"attribution_days": attribution_days}),
        origins=frozenset(origins),
    )
    builder = builder_for(world)
    selection = builder.select(query, max_ads)
    return builder.rows(query, selection, 0, len(selection.keys))


def builder_for(world: World) -> ReportBuilder:
    """The shared report engine (and its key cache) of ``world``, created on first use."""
    if world._builder is None:
        with world._lock:
            if world._builder is None:
                world._builder = ReportBuilder(world)
    return world._builder
