"""AUDIENCE reports: the same delivery as BASIC, split by age, gender, country, platform and
language (docs/tiktok_api_beyond.md §5, docs/tiktok_api_reference.md §3.6-3.7).

Consistency with BASIC is exact for additive metrics: each ad-day's bases (counts and money
in cents) are split over the breakdown values with cumulative integer weights, so the parts
telescope back to the whole (``v*c[i+1]//W - v*c[i]//W`` summed over ``i`` is ``v``). A
day's audience rows therefore sum to that day's BASIC row; ratios are recomputed from the
split bases as in BASIC. Several breakdowns nest in a fixed order (age, gender, country,
platform, language), so an age + gender report summed over gender equals the age report.
Not every value has delivery every day: a value missing from an ad-day has no row (TikTok
omits rows without data).

UV metrics (reach, frequency...) are refused, as TikTok does with audience dimensions, and
so are the other metrics the docs list as refused with AUDIENCE (engagements, the
secondary goal, cash/voucher spend, the app purchase family, LIVE, the Website and Shop legs
except the landing-page-view family). ``stat_time_hour`` → 40002 "Conflict occurs…",
lifetime → 40002. Audience data of a day appears ``audience_latency_hours`` after the day
ends (a setting; None serves it like BASIC data).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from itertools import product
from typing import TYPE_CHECKING

from .compiled import generator_for, renderer_for
from .errors import invalid_metrics, param_error
from .metrics import AD, METRICS, base_plan, zeroed_bases
from .world import DEFAULT_ORIGINS, Entity, mix64

if TYPE_CHECKING:
    from .report import ReportQuery
    from .world import World

# Report values (docs/tiktok_api_beyond.md §5.5, docs/tiktok_api_reference.md §3.7). platform and
# language value lists are not documented in full: these are plausible spellings, in the same style.
VALUES: dict[str, tuple[str, ...]] = {
    "age": ("AGE_13_17", "AGE_18_24", "AGE_25_34", "AGE_35_44", "AGE_45_54", "AGE_55_100"),
    "gender": ("FEMALE", "MALE", "NONE"),
    "country_code": ("US", "GB", "DE", "FR", "BR", "JP", "ID", "MX", "CA", "ES", "IT", "AU"),
    "platform": ("ANDROID", "IOS", "PC"),
    "language": ("en", "es", "pt", "de", "fr", "ja", "id", "ar", "ko", "it"),
}
ORDER = tuple(VALUES)  # the nesting order of the split (independent of the request's order)
# Audience dimensions TikTok knows that the simulator does not model.
UNSUPPORTED = frozenset(
    {
        "province_id",
        "dma_id",
        "ac",
        "placement",
        "interest_category",
        "interest_category_tier2",
        "interest_category_tier3",
        "interest_category_tier4",
        "interest_category_v2",
        "behavior_id",
        "purchase_intention",
        "hashtag",
        "audience_tags",
        "additional_interests",
        "device_brand_id",
        "contextual_tag",
        "ad_type",
    }
)
CONFLICT = "Conflict occurs. The input params including metrics and dimensions have no relation."
_SALTS = {name: 0x7F4A7C15F39CC060 + 0x9E3779B97F4A7C15 * (i + 1) for i, name in enumerate(ORDER)}
_M64 = (1 << 64) - 1


def _web_and_shop() -> set[str]:
    events = [
        "button_click",
        "online_consult",
        "user_registration",
        "web_event_add_to_cart",
        "on_web_order",
        "initiate_checkout",
        "add_billing",
        "page_event_search",
        "form",
        "download_start",
        "on_web_add_to_wishlist",
        "on_web_subscribe",
        "onsite_initiate_checkout_count",
        "onsite_on_web_detail",
        "onsite_on_web_cart",
    ]
    names = {
        n
        for e in events
        for n in (e, f"cost_per_{e}", f"{e}_rate", f"total_{e}_value", f"value_per_{e}")
    }
    names |= set(
        [
            "complete_payment",
            "cost_per_complete_payment",
            "complete_payment_rate",
            "total_complete_payment_rate",
            "value_per_complete_payment",
            "complete_payment_roas",
            "total_pageview",
            "cost_per_pageview",
            "total_value_per_pageview",
            "avg_value_per_pageview",
            "page_content_view_events",
            "custom_page_events",
            "vta_complete_payment",
            "cost_per_vta_complete_payment",
            "onsite_shopping",
            "cost_per_onsite_shopping",
            "onsite_shopping_rate",
            "total_onsite_shopping_value",
            "value_per_onsite_shopping",
            "onsite_shopping_roas",
        ]
    )
    names |= {n for n in METRICS if n.startswith("onsite_")}
    return names


REFUSED_METRICS: frozenset[str] = frozenset(
    {
        "reach",
        "cost_per_1000_reached",
        "frequency",
        "average_video_play_per_user",
        "engagements",
        "engagement_rate",
        "secondary_goal_result",
        "cost_per_secondary_goal_result",
        "secondary_goal_result_rate",
        "cash_spend",
        "voucher_spend",
        "image_mode",
        "engaged_view",
        "engaged_view_15s",
        *(n for n in METRICS if n.startswith(("live_", "paid_"))),
        *(n for n in METRICS if "purchase" in n and "vta" not in n and "cta" not in n),
        *_web_and_shop(),
    }
)


# --------------------------------------------------------------------------- validation
def parse_dimensions(
    dimensions: list[str], data_level: str, id_dimensions: dict[str, str]
) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
    """An AUDIENCE ``dimensions`` list: optional id (the level's), optional stat_time_day,
    at least one audience dimension. Returns (dimensions, time dimension, breakdowns)."""
    if "stat_time_hour" in dimensions:
        raise param_error(CONFLICT)
    unknown = [
        d
        for d in dimensions
        if d not in VALUES
        and d not in UNSUPPORTED
        and d not in id_dimensions.values()
        and d != "stat_time_day"
    ]
    if unknown:
        raise param_error(
            "Please correct the information in invalid dimension fields and try again. "
            f"Invalid dimension fields: {unknown!r}."
        )
    unsupported = [d for d in dimensions if d in UNSUPPORTED]
    if unsupported:
        raise param_error(f"dimensions: {unsupported!r} not supported by simulator.")
    expected = id_dimensions[data_level]
    wrong_ids = [d for d in dimensions if d in id_dimensions.values() and d != expected]
    if wrong_ids:
        raise param_error(
            f"dimensions: {wrong_ids!r} cannot be used with data_level {data_level}; the only id "
            f"dimension allowed is {expected} (request parent ids as metrics)."
        )
    breakdowns = tuple(d for d in dimensions if d in VALUES)
    if not breakdowns:
        raise param_error(
            "dimensions: an AUDIENCE report needs at least one audience dimension "
            f"({', '.join(ORDER)})."
        )
    time_dimension = "stat_time_day" if "stat_time_day" in dimensions else None
    return tuple(dimensions), time_dimension, breakdowns


def check_metrics(metrics: Sequence[str], has_id: bool) -> None:
    """40002 "Invalid metric fields" for metrics TikTok refuses with audience dimensions."""
    refused = [m for m in metrics if m in REFUSED_METRICS]
    # Attribute metrics are only valid with an id dimension (docs/tiktok_api_reference.md §3.1).
    if not has_id:
        refused += [m for m in metrics if m in METRICS and METRICS[m].is_attribute]
    if refused:
        raise invalid_metrics(list(dict.fromkeys(refused)))


# --------------------------------------------------------------------------- the split
def split(h: int, dimension: str) -> list[int]:
    """Cumulative weights of one ad-day over a dimension's values (weight 0: no delivery)."""
    values = VALUES[dimension]
    hw = mix64(h ^ _SALTS[dimension])
    count = len(values)
    # Few countries and languages per ad; most ages, genders and platforms.
    wide = dimension in ("age", "gender", "platform")
    present = 0
    for i in range(count):
        draw = (hw >> (i * 3)) & 7
        present |= (draw != 0 if wide else draw < 2) << i  # 7/8 of the values, or 1/4
    if not present:
        present = 1 << ((hw >> 50) % count)
    weights = mix64(hw)
    cumulative = [0]
    for i in range(count):
        weight = (1 + ((weights >> (5 * i)) & 31)) if present >> i & 1 else 0
        if dimension == "gender" and i == 2 and weight:
            weight = 1  # gender NONE: a sliver
        cumulative.append(cumulative[-1] + weight)
    return cumulative


def combos(h: int, breakdowns: tuple[str, ...]) -> Iterable[tuple[int, ...]]:
    """The value-index tuples (in ``ORDER`` of the breakdowns) an ad-day delivered in."""
    ordered = [d for d in ORDER if d in breakdowns]
    present = []
    for dimension in ordered:
        c = split(h, dimension)
        present.append([i for i in range(len(c) - 1) if c[i + 1] > c[i]])
    return product(*present)


def share(values: dict[str, int], splits: list[list[int]], combo: tuple[int, ...]):
    """The part of an ad-day's bases that falls in ``combo`` (nested telescoping split);
    ``splits`` are the ad-day's cumulative weights per breakdown, in ``ORDER``."""
    part = values
    for c, index in zip(splits, combo, strict=True):
        whole, lo, hi = c[-1], c[index], c[index + 1]
        if lo == hi:
            return dict.fromkeys(values, 0)
        part = {k: v * hi // whole - v * lo // whole for k, v in part.items()}
    return part


# --------------------------------------------------------------------------- the builder
@dataclass
class AudienceSelection:
    """The rows of an audience report in serving order, as (group, day, combo) keys."""

    groups: list[Entity]  # entities (or one merged group when there is no id dimension)
    keys: list[tuple[int, int, tuple[int, ...]]]
    throttled: bool

    def __len__(self) -> int:
        return len(self.keys)


class AudienceBuilder:
    """Selections (cached) and rows of AUDIENCE reports for one world."""

    CACHE_SIZE = 32

    def __init__(self, world: World) -> None:
        self.world = world
        self._cache: OrderedDict[tuple, AudienceSelection] = OrderedDict()
        self._lock = threading.Lock()

    def select(
        self, query: ReportQuery, max_ads: int | None = None, latency_hours: float | None = None
    ) -> AudienceSelection:
        last_day = _last_available_day(latency_hours)
        key = (query.selection_key(), query.breakdowns, query.id_dimension in query.dimensions)
        key = (key, max_ads, last_day)
        with self._lock:
            selection = self._cache.get(key)
            if selection is None:
                selection = self._compute(query, max_ads, last_day)
                self._cache[key] = selection
                if len(self._cache) > self.CACHE_SIZE:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            return selection

    def _compute(
        self, query: ReportQuery, max_ads: int | None, last_day: int | None
    ) -> AudienceSelection:
        from .report import _ads, _in_scope

        entities: list[Entity] = []
        throttled = False
        for advertiser_id in sorted(query.advertiser_ids, key=int):
            account = self.world.account(advertiser_id)
            in_scope = [e for e in account.entities(query.data_level) if _in_scope(e, query)]
            if query.data_level == AD and max_ads is not None and len(in_scope) >= max_ads:
                throttled = True
                in_scope = in_scope[len(in_scope) - max_ads :]
            # an advertiser's row adds up the ads of the origins asked for (Promote or not)
            entities.extend(replace(e, ads=_ads(e, query)) for e in in_scope)
        if query.id_dimension not in query.dimensions and entities:
            merged = Entity(
                level=query.data_level,
                id="",
                name="",
                key=0,
                deleted=False,
                own_deleted=False,
                attributes={},
                ads=[ad for e in entities for ad in e.ads],
            )
            entities = [merged]
        last = query.end.toordinal() if last_day is None else min(last_day, query.end.toordinal())
        days = range(query.start.toordinal(), last + 1)
        keys: list[tuple[int, int, tuple[int, ...]]] = []
        day_hash = self.world.day_hash
        for pos, entity in enumerate(entities):
            if query.time_dimension is None:
                found = set()
                for ad in entity.ads:
                    for d in days:
                        h = day_hash(ad, d)
                        if h is not None:
                            found.update(combos(h, query.breakdowns))
                keys.extend((pos, -1, c) for c in sorted(found))
                continue
            for d in days:
                found = set()
                for ad in entity.ads:
                    h = day_hash(ad, d)
                    if h is not None:
                        found.update(combos(h, query.breakdowns))
                keys.extend((pos, d, c) for c in sorted(found))
        return AudienceSelection(entities, keys, throttled)

    def rows(
        self, query: ReportQuery, selection: AudienceSelection, lo: int, hi: int
    ) -> list[dict[str, dict[str, str]]]:
        names = query.output_metrics
        plan = base_plan(names)
        generate = generator_for(plan)
        render = renderer_for(names)
        ordered = [d for d in ORDER if d in query.breakdowns]
        position = {d: i for i, d in enumerate(ordered)}  # a combo indexes values in ORDER
        day_hash, value_hash = self.world.day_hash, self.world.value_hash
        cache: dict[tuple[int, int], list[tuple[dict[str, int], list[list[int]]]]] = {}
        out = []
        for pos, day, combo in selection.keys[lo:hi]:
            entity = selection.groups[pos]
            deliveries = cache.get((pos, day))
            if deliveries is None:
                cache.clear()  # keys come grouped by (entity, day)
                days = (
                    range(query.start.toordinal(), query.end.toordinal() + 1) if day < 0 else (day,)
                )
                deliveries = []
                for ad in entity.ads:
                    zero = zeroed_bases(plan, ad.zero_legs) if ad.zero_legs else ()
                    for d in days:
                        h = day_hash(ad, d)
                        if h is not None:
                            splits = [split(h, d) for d in ordered]
                            values = generate(value_hash(h), ad.scale)
                            for name in zero:  # legs the ad has no data for (Promote, web-only)
                                values[name] = 0
                            deliveries.append((values, splits))
                cache[(pos, day)] = deliveries
            total = {b.name: 0 for b in plan}
            for values, splits in deliveries:
                for k, v in share(values, splits, combo).items():
                    total[k] += v
            metrics = render(total, entity.attributes)
            dimensions: dict[str, str] = {}
            for dim in query.dimensions:
                if dim == query.id_dimension:
                    dimensions[dim] = entity.id
                elif dim == "stat_time_day":
                    dimensions[dim] = f"{date.fromordinal(day).isoformat()} 00:00:00"
                else:
                    dimensions[dim] = VALUES[dim][combo[position[dim]]]
            out.append({"dimensions": dimensions, "metrics": metrics})
        return out


def _last_available_day(latency_hours: float | None) -> int | None:
    """The last day whose audience data is out (None: no latency modelled)."""
    if latency_hours is None:
        return None
    ready = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=latency_hours)
    return ready.date().toordinal() - 1  # a day is out once it has ended + the latency


_builders: dict[int, AudienceBuilder] = {}
_builders_lock = threading.Lock()


def builder_for(world: World) -> AudienceBuilder:
    with _builders_lock:
        builder = _builders.get(id(world))
        if builder is None or builder.world is not world:
            builder = _builders[id(world)] = AudienceBuilder(world)
        return builder


def audience_rows(
    world: World,
    advertiser_id: str,
    data_level: str,
    start_date: date | str,
    end_date: date | str,
    metrics: Iterable[str],
    breakdowns: Sequence[str],
    *,
    include_deleted: bool = True,
    time_dimension: str | None = "stat_time_day",
    latency_hours: float | None = None,
    origins: Iterable[str] = DEFAULT_ORIGINS,
) -> list[dict[str, dict[str, str]]]:
    """Ground truth: exactly the rows an AUDIENCE report serves, across all pages
    (``origins``: the ``campaign_system_origins`` filter, TikTok's default without it)."""
    from .report import ID_DIMENSIONS, ReportQuery
    from .world import as_date

    id_dimension = ID_DIMENSIONS[data_level]
    dims = (id_dimension, *breakdowns, *((time_dimension,) if time_dimension else ()))
    query = ReportQuery(
        advertiser_ids=(advertiser_id,),
        data_level=data_level,
        dimensions=dims,
        time_dimension=time_dimension,
        start=as_date(start_date),
        end=as_date(end_date),
        metrics=tuple(metrics),
        include_deleted=include_deleted,
        report_type="AUDIENCE",
        breakdowns=tuple(breakdowns),
        origins=frozenset(origins),
    )
    builder = builder_for(world)
    selection = builder.select(query, None, latency_hours)
    return builder.rows(query, selection, 0, len(selection))
