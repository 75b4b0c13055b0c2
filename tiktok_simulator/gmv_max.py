"""GMV Max (TikTok Shop) as the simulator plays it (docs/tiktok_api_gmv_smartplus.md §1, §1.3).

TikTok's automated Shop campaigns live beside the BASIC world and never inside it: BASIC reports
below the advertiser level, ``/campaign/get/`` and the other entity lists do not hold them. They
are read through their own endpoints:

* ``GET /gmv_max/store/list/``: the advertiser's TikTok Shops (general app rate tier);
* ``GET /gmv_max/report/get/``: one store per request, a JSON *object* as ``filtering``, rows per
  campaign, product (``item_group_id``) or LIVE room (``room_id``) and day, under its own rate
  budget (QPS, QPM and a per-day quota, ``GmvMaxBudget``) that the general tier does not share;
* ``report_type=TT_SHOP`` on the sync report: GMV Max spend per campaign (or advertiser) and day.

Everything is a pure function of the ``World`` (its seed and ``gmv_max_*`` options): a leaf (a
product of a Product campaign, a room of a LIVE campaign) delivers on a day when a hash of its key
and the day falls under the world's delivery probability; a campaign's row is the sum of its
leaves. The truth functions (``served_rows``, ``tt_shop_spend``, ``cost_by_day``) are the code the
endpoints serve from, so a test's expected rows cannot drift from the answers.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson

from .errors import APP_RATE_LIMITED, NO_PERMISSION, ApiError, invalid_metrics, param_error
from .params import (
    check_id,
    dates,
    integer,
    missing,
    parse_advertiser_ids,
    parse_id_list,
    string_list,
)
from .ratelimit import QPS_WINDOW_SECONDS, SlidingWindow
from .world import GOLDEN, M64, World, as_date, hash_of, mix64


class Selection(Protocol):
    """What the BASIC total hooks need of ``report.Selection`` (not imported: report imports
    this module)."""

    entities: list[Any]
    keys: array

    def pack(self, position: int, day: int, hour: int) -> int: ...

    def unpack(self, packed: int) -> tuple[int, int, int]: ...


STORE_LIST_PATH = "gmv_max/store/list/"
REPORT_PATH = "gmv_max/report/get/"
PRODUCT, LIVE = "PRODUCT", "LIVE"
PROMOTION_TYPES = (PRODUCT, LIVE)
STATUS_ALL, STATUS_NOT_DELETE = "STATUS_ALL", "STATUS_NOT_DELETE"

# ---------------------------------------------------------------------------- metrics
# Numbers every level serves (TT-GMVM), then the LIVE ones (LIVE campaigns only), then the
# campaign attributes (only with campaign_id as the finest dimension).
CORE_METRICS = ("cost", "net_cost", "orders", "cost_per_order", "gross_revenue", "roi")
LIVE_METRICS = (
    "live_views",
    "cost_per_live_view",
    "10_second_live_views",
    "cost_per_10_second_live_view",
    "live_follows",
)
CAMPAIGN_ATTRIBUTES = (
    "campaign_name",
    "operation_status",
    "schedule_type",
    "schedule_start_time",
    "schedule_end_time",
    "bid_type",
    "roas_bid",
    "target_roi_budget",
    "max_delivery_budget",
)
LIVE_CAMPAIGN_ATTRIBUTES = ("tt_account_name", "tt_account_profile_image_url", "identity_id")
ATTRIBUTES = frozenset(CAMPAIGN_ATTRIBUTES + LIVE_CAMPAIGN_ATTRIBUTES)
LIVE_ONLY = frozenset(LIVE_METRICS + LIVE_CAMPAIGN_ATTRIBUTES)
ALL_METRICS = frozenset(CORE_METRICS + LIVE_METRICS) | ATTRIBUTES
MAX_METRICS = 100

# The levels the service reads: (finest dimensions, promotion types, the metrics it asks for).
LEVELS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "campaign": (
        ("campaign_id", "stat_time_day"),
        (PRODUCT, LIVE),
        (
            *CORE_METRICS,
            "campaign_name",
            "operation_status",
            "schedule_type",
            "bid_type",
            "roas_bid",
            "target_roi_budget",
            "max_delivery_budget",
        ),
    ),
    "product": (("campaign_id", "item_group_id", "stat_time_day"), (PRODUCT,), CORE_METRICS),
    "live": (("campaign_id", "room_id", "stat_time_day"), (LIVE,), CORE_METRICS + LIVE_METRICS),
}

# ---------------------------------------------------------------------------- dimensions
LEAF_DIMENSIONS = {"item_group_id": PRODUCT, "room_id": LIVE}
# Named by TikTok (TT-GMVR) but not played by the simulator.
UNSUPPORTED_DIMENSIONS = ("advertiser_id", "stat_time_hour", "item_id", "duration")
KNOWN_DIMENSIONS = frozenset(
    ("campaign_id", "stat_time_day", *LEAF_DIMENSIONS, *UNSUPPORTED_DIMENSIONS)
)
FILTER_FIELDS = (
    "gmv_max_promotion_types",
    "campaign_ids",
    "campaign_statuses",
    "item_group_ids",
    "room_ids",
)
MAX_FILTER_IDS = 100

_LEAF_SALT = 0x3C6EF372FE94F82B
_VALUE_SALT = 0xA54FF53A5F1D36F1
_STORE_NAMES = ("Maison Léa, Paris", 'The "Good" Shop', "東京セレクト", "Zoë & Co.")
_PRODUCT_NAMES = ("Serum, 30 ml", 'Tote "Classic"', "Lip tint — rosé", "Mug ☕ 350 ml")
_REGIONS = (("US",), ("GB",), ("US", "CA"), ("ID", "MY"))


# ---------------------------------------------------------------------------- the world's shops
@dataclass(frozen=True, slots=True)
class Leaf:
    """A product of a Product GMV Max campaign or a LIVE room of a LIVE one: what delivers."""

    id: str
    key: int
    live: bool


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    store_id: str
    promotion_type: str
    deleted: bool
    attributes: Mapping[str, str]
    leaves: tuple[Leaf, ...]


@dataclass(frozen=True, slots=True)
class Store:
    """One TikTok Shop of an advertiser, as ``/gmv_max/store/list/`` lists it."""

    store_id: str
    available: bool
    listing: Mapping[str, Any]
    campaigns: tuple[Campaign, ...]


class Shops:
    """The GMV Max side of one world: stores built per advertiser on first use."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._stores: dict[str, tuple[Store, ...]] = {}
        self._lock = threading.Lock()
        self._threshold = int(world.delivery_probability * (1 << 64))
        self._first, self._last = world.start.toordinal(), world.end.toordinal()

    def has_gmv_max(self, advertiser_id: str) -> bool:
        """Advertisers at positions 0, 1, 3, 4, ... (not 2 mod 3) have Shops when the world
        has ``gmv_max_stores_per_advertiser``; the others answer an empty store list."""
        index = self.world.advertiser_ids.index(advertiser_id)
        return self.world.gmv_max_stores_per_advertiser > 0 and index % 3 != 2

    def stores(self, advertiser_id: str) -> tuple[Store, ...]:
        stores = self._stores.get(advertiser_id)
        if stores is None:
            with self._lock:
                stores = self._stores.setdefault(advertiser_id, self._build(advertiser_id))
        return stores

    def store(self, advertiser_id: str, store_id: str) -> Store | None:
        return next((s for s in self.stores(advertiser_id) if s.store_id == store_id), None)

    def campaigns(self, advertiser_id: str) -> list[Campaign]:
        """Every GMV Max campaign of the advertiser (deleted ones too), store by store."""
        return [c for store in self.stores(advertiser_id) for c in store.campaigns]

    def leaf_day(self, leaf: Leaf, day: int) -> tuple[int, ...] | None:
        """A leaf's delivery on a day (an ordinal): (cost, net_cost, orders, gross_revenue,
        live_views, 10_second_live_views, live_follows), money in cents; None without it."""
        if day < self._first or day > self._last:
            return None
        h = mix64(leaf.key ^ ((day * GOLDEN) & M64))
        if h >= self._threshold:
            return None
        v = mix64(h ^ _VALUE_SALT)
        cost = 200 + v % 12_000
        net_cost = cost - cost * ((v >> 16) % 16) // 100  # credits and refunds: 0-15 % off
        orders = (v >> 24) % 6  # 0 on one day in six: cost_per_order has no denominator
        gross_revenue = orders * (1_000 + (v >> 32) % 9_000)
        if not leaf.live:
            return cost, net_cost, orders, gross_revenue, 0, 0, 0
        views = 20 + (v >> 44) % 3_000
        ten_second = views * (5 + (v >> 56) % 50) // 100
        return cost, net_cost, orders, gross_revenue, views, ten_second, (v >> 20) % 40

    # ------------------------------------------------------------------ building
    def _build(self, advertiser_id: str) -> tuple[Store, ...]:
        if not self.has_gmv_max(advertiser_id):
            return ()
        world = self.world
        index = world.advertiser_ids.index(advertiser_id)
        count = world.gmv_max_stores_per_advertiser
        counters = [0, 0, 0]  # campaigns, products, rooms of the advertiser
        # One more store than the option: the last is not available for GMV Max.
        return tuple(self._store(index, s, s < count, counters) for s in range(count + 1))

    def _store(self, index: int, s: int, available: bool, counters: list[int]) -> Store:
        world = self.world
        key = hash_of(world.seed, 70, index, s)
        store_id = f"749{index:03d}{s:02d}{key % 10**11:011d}"
        listing = {
            "store_id": store_id,
            "store_name": f"{_STORE_NAMES[key % len(_STORE_NAMES)]} #{s + 1}",
            "store_code": f"US{key % 10**10:010d}"[:12],
            "is_gmv_max_available": available,
            "is_owner_bc": s % 2 == 0,
            "store_authorized_bc_id": f"72{(key >> 8) % 10**17:017d}",
            "store_status": "ACTIVE",
            "store_role": "AD_PROMOTION",
            "targeting_region_codes": list(_REGIONS[(key >> 4) % len(_REGIONS)]),
        }
        campaigns: list[Campaign] = []
        if available:
            active = world.gmv_max_campaigns_per_store
            for promotion in PROMOTION_TYPES:  # per type: the active ones, then one deleted
                for c in range(active + 1):
                    campaigns.append(
                        self._campaign(index, store_id, promotion, c == active, counters)
                    )
        return Store(store_id, available, listing, tuple(campaigns))

    def _campaign(
        self, index: int, store_id: str, promotion: str, deleted: bool, counters: list[int]
    ) -> Campaign:
        world = self.world
        n = counters[0]
        counters[0] += 1
        key = hash_of(world.seed, 71, index, n)
        # 16 digits from 9_500_..., apart from BASIC campaigns (9_007_... and 9_100_...).
        campaign_id = str(9_500_000_000_000_000 + (index * 100_000 + n) * 10_000 + key % 10_000)
        live = promotion == LIVE
        custom = key % 2 == 0  # Target ROI (a ROAS bid) or Max delivery
        budget = f"{(key >> 8) % 900 + 100}.00"
        attributes = {
            "campaign_name": f'{"LIVE" if live else "Product"} GMV Max, «{n + 1}» "Shop"',
            "operation_status": "DELETE" if deleted else ("ENABLE" if key % 5 else "DISABLE"),
            "schedule_type": "SCHEDULE_START_END" if key % 3 == 0 else "SCHEDULE_FROM_NOW",
            "schedule_start_time": f"{world.start.isoformat()} 00:00:00",
            "schedule_end_time": f"{world.end.isoformat()} 23:59:59" if key % 3 == 0 else "-",
            "bid_type": "CUSTOM" if custom else "NO_BID",
            "roas_bid": f"{(key >> 16) % 400 / 100 + 1:.2f}" if custom else "0.00",
            "target_roi_budget": budget if custom else "0.00",
            "max_delivery_budget": "0.00" if custom else budget,
        }
        if live:
            attributes.update(
                tt_account_name=f"shop.live.{index}",
                tt_account_profile_image_url=f"https://example.com/avatar/{index}.png",
                identity_id=str(6_900_000_000_000_000_000 + index),
            )
        slot = 2 if live else 1
        per_campaign = (
            world.gmv_max_rooms_per_campaign if live else world.gmv_max_products_per_campaign
        )
        leaves = []
        for _ in range(per_campaign):
            m = counters[slot]
            counters[slot] += 1
            leaf_key = hash_of(world.seed, 72 + slot, index, m) ^ _LEAF_SALT
            base = 7_300_000_000_000_000_000 if live else 1_729_000_000_000_000_000
            leaf_id = str(base + (index * 1_000_000 + m) * 1_000 + leaf_key % 1_000)
            leaves.append(Leaf(leaf_id, leaf_key, live))
        return Campaign(campaign_id, store_id, promotion, deleted, attributes, tuple(leaves))


def shops_of(world: World) -> Shops:
    """The world's GMV Max side, created on first use (kept on the world like its report engine)."""
    if world._gmv_max is None:
        with world._lock:
            if world._gmv_max is None:
                world._gmv_max = Shops(world)  # type: ignore[assignment]
    return world._gmv_max  # type: ignore[return-value]


# ---------------------------------------------------------------------------- values
def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _ratio(numerator: int, denominator: int) -> str:
    """numerator / denominator to 2 decimals (half up); "-" without a denominator."""
    if denominator <= 0:
        return "-"
    hundredths = (200 * numerator + denominator) // (2 * denominator)
    return _money(hundredths)


def _add(total: list[int] | None, values: tuple[int, ...]) -> list[int]:
    if total is None:
        return list(values)
    for i, v in enumerate(values):
        total[i] += v
    return total


def render(names: Iterable[str], values: Sequence[int], campaign: Campaign) -> dict[str, str]:
    """Wire metrics of one row (strings, as BASIC's): money with 2 decimals, counts as integers,
    ``cost_per_*`` and ``roi`` derived from the sums, "-" when their denominator is 0."""
    cost, net_cost, orders, gross_revenue, views, ten_second, follows = values
    computed = {
        "cost": lambda: _money(cost),
        "net_cost": lambda: _money(net_cost),
        "orders": lambda: str(orders),
        "cost_per_order": lambda: _ratio(cost, 100 * orders),
        "gross_revenue": lambda: _money(gross_revenue),
        "roi": lambda: _ratio(gross_revenue, cost),
        "live_views": lambda: str(views),
        "cost_per_live_view": lambda: _ratio(cost, 100 * views),
        "10_second_live_views": lambda: str(ten_second),
        "cost_per_10_second_live_view": lambda: _ratio(cost, 100 * ten_second),
        "live_follows": lambda: str(follows),
    }
    return {
        name: campaign.attributes[name] if name in ATTRIBUTES else computed[name]()
        for name in names
    }


# ---------------------------------------------------------------------------- report query
@dataclass(frozen=True)
class GmvQuery:
    """A validated ``/gmv_max/report/get/`` request (``parse_report_query``)."""

    advertiser_id: str
    store_id: str
    start: date
    end: date
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    promotion_types: tuple[str, ...]
    include_deleted: bool = False
    campaign_ids: frozenset[str] | None = None
    leaf_ids: frozenset[str] | None = None  # item_group_ids or room_ids
    page: int = 1
    page_size: int = 10
    # campaigns the answer leaves out (the ``dropped_campaigns`` setting under ``DROPPED``):
    # a TikTok whose GMV Max report misses a campaign TT_SHOP still bills
    hidden_campaigns: frozenset[str] = frozenset()

    @property
    def leaf_dimension(self) -> str | None:
        return next((d for d in self.dimensions if d in LEAF_DIMENSIONS), None)

    @property
    def daily(self) -> bool:
        return "stat_time_day" in self.dimensions


def parse_report_query(params: Mapping[str, str]) -> GmvQuery:
    """Validate a GMV Max report request; every refusal is 40002 naming the field."""
    advertiser_id = params.get("advertiser_id")
    if advertiser_id is None:
        raise missing("advertiser_id")
    check_id("advertiser_id", advertiser_id)
    if "store_ids" not in params:
        raise missing("store_ids")
    stores = string_list(params, "store_ids")
    if len(stores) != 1:
        raise param_error(
            f"store_ids: Exactly one store id is allowed per request; got {len(stores)}."
        )
    store_id = parse_id_list(params, "store_ids", 1)[0]
    if "filtering" not in params:
        raise missing("filtering")
    filters = _filtering(params["filtering"])
    types = filters["gmv_max_promotion_types"]
    if "dimensions" not in params:
        raise missing("dimensions")
    dimensions = _dimensions(string_list(params, "dimensions"), types)
    leaf_dimension = next((d for d in dimensions if d in LEAF_DIMENSIONS), None)
    for name, dimension in (("item_group_ids", "item_group_id"), ("room_ids", "room_id")):
        if name in filters and leaf_dimension != dimension:
            raise param_error(f"filtering: {name} needs the dimension {dimension}.")
    time_dimension = "stat_time_day" if "stat_time_day" in dimensions else None
    start, end = dates(params, time_dimension)  # 30 days with stat_time_day, else 365: as BASIC
    metrics = _metrics(params, types, leaf_dimension)
    if params.get("enable_total_metrics", "false").lower() == "true":
        raise param_error("enable_total_metrics: not supported by simulator.")
    return GmvQuery(
        advertiser_id=advertiser_id,
        store_id=store_id,
        start=start,
        end=end,
        dimensions=dimensions,
        metrics=metrics,
        promotion_types=types,
        include_deleted=STATUS_ALL in filters.get("campaign_statuses", ()),
        campaign_ids=filters.get("campaign_ids"),
        leaf_ids=filters.get("item_group_ids", filters.get("room_ids")),
        page=integer(params, "page", 1, 1, None),
        page_size=integer(params, "page_size", 10, 1, 1000),
    )


def _filtering(raw: str) -> dict[str, Any]:
    """GMV Max's ``filtering`` is a JSON object, not BASIC's list of {field_name, ...}."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise param_error("filtering: Not a valid JSON string.") from None
    if not isinstance(value, dict):
        raise param_error(
            "filtering: Not a valid object; the GMV Max report takes a JSON object such as "
            '{"gmv_max_promotion_types": ["PRODUCT"]}, not a list of filters.'
        )
    for name in value:
        if name == "creative_types":
            raise param_error("filtering: creative_types is not supported by simulator.")
        if name not in FILTER_FIELDS:
            raise param_error(f"filtering: Unknown field: {name}.")
    result: dict[str, Any] = {}
    types = _filter_list(value, "gmv_max_promotion_types", required=True)
    if any(t not in PROMOTION_TYPES for t in types) or len(set(types)) != len(types):
        raise param_error(
            "filtering: gmv_max_promotion_types: Must be distinct values of: PRODUCT, LIVE."
        )
    result["gmv_max_promotion_types"] = tuple(t for t in PROMOTION_TYPES if t in types)
    statuses = _filter_list(value, "campaign_statuses")
    for status in statuses:
        if status not in (STATUS_ALL, STATUS_NOT_DELETE):
            raise param_error(
                f"filtering: campaign_statuses: {status} is not supported by simulator "
                f"(use {STATUS_ALL} or {STATUS_NOT_DELETE})."
            )
    if statuses:
        result["campaign_statuses"] = tuple(statuses)
    for name in ("campaign_ids", "item_group_ids", "room_ids"):
        ids = _filter_list(value, name)
        if name not in value:
            continue
        if not ids or len(ids) > MAX_FILTER_IDS or not all(i.isdigit() for i in ids):
            raise param_error(
                f"filtering: {name}: 1 to {MAX_FILTER_IDS} ids, each a string of digits."
            )
        result[name] = frozenset(ids)
    for name, only in (("item_group_ids", PRODUCT), ("room_ids", LIVE)):
        if name in result and result["gmv_max_promotion_types"] != (only,):
            raise param_error(f'filtering: {name} needs gmv_max_promotion_types ["{only}"] alone.')
    return result


def _filter_list(value: dict[str, Any], name: str, required: bool = False) -> list[str]:
    if name not in value:
        if required:
            raise param_error(f"filtering: {name}: Missing data for required field.")
        return []
    items = value[name]
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise param_error(f"filtering: {name}: Not a valid list of strings.")
    if required and not items:
        raise param_error(f"filtering: {name}: Shorter than minimum length 1.")
    return items


def _dimensions(dimensions: list[str], types: tuple[str, ...]) -> tuple[str, ...]:
    if not dimensions or len(set(dimensions)) != len(dimensions):
        raise param_error("dimensions: A non-empty list of distinct dimensions is required.")
    unknown = [d for d in dimensions if d not in KNOWN_DIMENSIONS]
    if unknown:
        raise param_error(f"dimensions: Invalid dimension fields: {unknown!r}.")
    unsupported = [d for d in dimensions if d in UNSUPPORTED_DIMENSIONS]
    if unsupported:
        raise param_error(f"dimensions: {unsupported!r} not supported by simulator.")
    if "campaign_id" not in dimensions:
        raise param_error("dimensions: campaign_id is required by simulator.")
    leaves = [d for d in dimensions if d in LEAF_DIMENSIONS]
    if len(leaves) > 1:
        raise param_error("dimensions: item_group_id and room_id cannot be used together.")
    for leaf in leaves:
        only = LEAF_DIMENSIONS[leaf]
        if types != (only,):
            raise param_error(
                f'dimensions: {leaf} is only valid with gmv_max_promotion_types ["{only}"]; '
                f"got {list(types)!r}."
            )
    return tuple(dimensions)


def _metrics(
    params: Mapping[str, str], types: tuple[str, ...], leaf_dimension: str | None
) -> tuple[str, ...]:
    if "metrics" not in params:
        raise param_error("metrics: Missing data for required field.")
    metrics = string_list(params, "metrics")
    if not metrics or len(metrics) > MAX_METRICS or len(set(metrics)) != len(metrics):
        raise param_error(f"metrics: 1 to {MAX_METRICS} distinct metric fields are required.")
    invalid = [m for m in metrics if m not in ALL_METRICS or (m in LIVE_ONLY and types != (LIVE,))]
    if invalid:
        raise invalid_metrics(invalid)
    attributes = [m for m in metrics if m in ATTRIBUTES]
    if attributes and leaf_dimension is not None:
        raise param_error(
            f"metrics: {attributes!r} are campaign attributes, not available with the "
            f"dimension {leaf_dimension}."
        )
    return tuple(metrics)


# ---------------------------------------------------------------------------- report rows
Row = dict[str, Any]


def _day_label(day: int) -> str:
    return f"{date.fromordinal(day).isoformat()} 00:00:00"


# The key of the server's ``dropped_campaigns`` setting for the GMV Max report.
DROPPED = "GMV_MAX"


def report_rows(shops: Shops, query: GmvQuery) -> list[Row]:
    """Every row of a report (one store), in serving order: campaign id, leaf id, day."""
    store = shops.store(query.advertiser_id, query.store_id)
    if store is None:
        return []
    days = range(query.start.toordinal(), query.end.toordinal() + 1)
    leaf_dimension = query.leaf_dimension
    rows: list[Row] = []
    for campaign in sorted(store.campaigns, key=lambda c: int(c.id)):
        if campaign.promotion_type not in query.promotion_types:
            continue
        if campaign.deleted and not query.include_deleted:
            continue
        if query.campaign_ids is not None and campaign.id not in query.campaign_ids:
            continue
        if campaign.id in query.hidden_campaigns:
            continue
        if leaf_dimension is None:
            groups = [("", campaign.leaves)]
        else:
            groups = [
                (leaf.id, (leaf,))
                for leaf in sorted(campaign.leaves, key=lambda leaf: int(leaf.id))
                if query.leaf_ids is None or leaf.id in query.leaf_ids
            ]
        for leaf_id, leaves in groups:
            if query.daily:
                per_day = [(d, _sum(shops, leaves, (d,))) for d in days]
            else:
                per_day = [(-1, _sum(shops, leaves, days))]
            for day, values in per_day:
                if values is None:
                    continue
                dimensions = {}
                for name in query.dimensions:
                    if name == "campaign_id":
                        dimensions[name] = campaign.id
                    elif name == "stat_time_day":
                        dimensions[name] = _day_label(day)
                    else:
                        dimensions[name] = leaf_id
                rows.append(
                    {"dimensions": dimensions, "metrics": render(query.metrics, values, campaign)}
                )
    return rows


def _sum(shops: Shops, leaves: Iterable[Leaf], days: Iterable[int]) -> list[int] | None:
    total: list[int] | None = None
    for day in days:
        for leaf in leaves:
            values = shops.leaf_day(leaf, day)
            if values is not None:
                total = _add(total, values)
    return total


def page_data(rows: list[Row], page: int, page_size: int) -> dict[str, Any]:
    """``data`` of a paged answer, ``page_info`` as BASIC's (0 pages when empty)."""
    first = (page - 1) * page_size
    return {
        "list": rows[first : first + page_size],
        "page_info": {
            "page": page,
            "page_size": page_size,
            "total_number": len(rows),
            "total_page": -(-len(rows) // page_size),
        },
    }


def store_list(world: World, advertiser_id: str) -> dict[str, Any]:
    """``data`` of ``/gmv_max/store/list/``: every store, available for GMV Max or not."""
    return {"store_list": [dict(s.listing) for s in shops_of(world).stores(advertiser_id)]}


def check_store(world: World, query: GmvQuery) -> None:
    """40002 unless ``store_ids`` names a store of the advertiser usable for GMV Max."""
    store = shops_of(world).store(query.advertiser_id, query.store_id)
    if store is None:
        raise param_error(
            f"store_ids: Store {query.store_id} is not a store of advertiser {query.advertiser_id}."
        )
    if not store.available:
        raise param_error(
            f"store_ids: Store {query.store_id} is not available for GMV Max "
            "(is_gmv_max_available is false)."
        )


# ---------------------------------------------------------------------------- truth
def served_rows(
    world: World,
    advertiser_id: str,
    level: str,
    start: date | str,
    end: date | str,
    metrics: Sequence[str] | None = None,
    include_deleted: bool = True,
) -> list[Row]:
    """The rows the service reads for ``level`` (campaign, product or live) over every store
    usable for GMV Max, deleted campaigns included by default: each row is the wire row plus
    ``"store_id"``. A window over 30 days is served as the endpoint would in 30-day requests.
    Campaign level: PRODUCT rows then LIVE rows of each store (one request per type)."""
    dimensions, types, default_metrics = LEVELS[level]
    shops = shops_of(world)
    first, last = as_date(start).toordinal(), as_date(end).toordinal()
    rows: list[Row] = []
    for store in shops.stores(advertiser_id):
        if not store.available:
            continue
        for promotion in types:
            query = GmvQuery(
                advertiser_id=advertiser_id,
                store_id=store.store_id,
                start=date.fromordinal(first),
                end=date.fromordinal(last),
                dimensions=dimensions,
                metrics=tuple(metrics or default_metrics),
                promotion_types=(promotion,),
                include_deleted=include_deleted,
            )
            rows += [{**row, "store_id": store.store_id} for row in report_rows(shops, query)]
    return rows


def cost_by_day(
    world: World, advertiser_id: str, start: date | str, end: date | str
) -> dict[tuple[str, int], tuple[int, int]]:
    """(campaign id, day ordinal) -> (cost, net_cost) in cents, every GMV Max campaign of every
    store (deleted ones included: deleting does not un-spend), days with cost only."""
    shops = shops_of(world)
    first, last = as_date(start).toordinal(), as_date(end).toordinal()
    result: dict[tuple[str, int], tuple[int, int]] = {}
    for campaign in shops.campaigns(advertiser_id):
        for day in range(first, last + 1):
            values = _sum(shops, campaign.leaves, (day,))
            if values is not None:
                result[(campaign.id, day)] = (values[0], values[1])
    return result


def advertiser_cost_by_day(
    world: World, advertiser_id: str, start: date | str, end: date | str
) -> dict[int, tuple[int, int]]:
    """Day ordinal -> (cost, net_cost) in cents of the advertiser's GMV Max campaigns."""
    totals: dict[int, tuple[int, int]] = {}
    for (_, day), (cost, net) in cost_by_day(world, advertiser_id, start, end).items():
        before = totals.get(day, (0, 0))
        totals[day] = (before[0] + cost, before[1] + net)
    return totals


def tt_shop_spend(
    world: World, advertiser_id: str, start: date | str, end: date | str
) -> dict[tuple[str, str], Decimal]:
    """(campaign id, "YYYY-MM-DD") -> spend of the TT_SHOP report: the GMV Max report's
    ``cost`` of the campaign that day (a campaign belongs to one store)."""
    return {
        (campaign_id, date.fromordinal(day).isoformat()): Decimal(cost) / 100
        for (campaign_id, day), (cost, _) in cost_by_day(world, advertiser_id, start, end).items()
    }


# ---------------------------------------------------------------------------- TT_SHOP
TT_SHOP_LEVELS = {"AUCTION_ADVERTISER": "advertiser_id", "AUCTION_CAMPAIGN": "campaign_id"}
TT_SHOP_METRICS = ("spend", "billed_cost")


@dataclass(frozen=True)
class TtShopQuery:
    advertiser_id: str
    data_level: str
    dimensions: tuple[str, ...]
    start: date
    end: date
    metrics: tuple[str, ...]
    page: int
    page_size: int


def parse_tt_shop_query(params: Mapping[str, str]) -> TtShopQuery:
    """``report_type=TT_SHOP`` (docs/tiktok_api_gmv_smartplus.md §1.2): advertiser or campaign
    level, no filtering, no lifetime, spend and billed_cost only."""
    service_type = params.get("service_type", "AUCTION")
    if service_type != "AUCTION":
        raise param_error("service_type: Must be AUCTION with report_type TT_SHOP.")
    if "advertiser_ids" in params:
        raise param_error("advertiser_ids: not supported by simulator with report_type TT_SHOP.")
    advertiser_id = parse_advertiser_ids(params)[0][0]
    data_level = params.get("data_level")
    if data_level is None:
        raise missing("data_level")
    if data_level not in TT_SHOP_LEVELS:
        raise param_error(
            f"data_level: Must be one of: {', '.join(TT_SHOP_LEVELS)} with report_type TT_SHOP."
        )
    if "filtering" in params:
        raise param_error("filtering: Not supported with report_type TT_SHOP.")
    if params.get("query_lifetime", "false").lower() == "true":
        raise param_error("query_lifetime: Not supported with report_type TT_SHOP.")
    if "dimensions" not in params:
        raise missing("dimensions")
    dimensions = string_list(params, "dimensions")
    id_dimension = TT_SHOP_LEVELS[data_level]
    if "country_code" in dimensions:
        raise param_error("dimensions: ['country_code'] not supported by simulator.")
    wrong = [d for d in dimensions if d not in (id_dimension, "stat_time_day")]
    if wrong or id_dimension not in dimensions or len(set(dimensions)) != len(dimensions):
        raise param_error(
            f"dimensions: With data_level {data_level} use {id_dimension} and optionally "
            f"stat_time_day; got {dimensions!r}."
        )
    time_dimension = "stat_time_day" if "stat_time_day" in dimensions else None
    start, end = dates(params, time_dimension)
    metrics = string_list(params, "metrics") if "metrics" in params else []
    invalid = [m for m in metrics if m not in TT_SHOP_METRICS]
    if invalid:
        raise invalid_metrics(invalid)
    if len(set(metrics)) != len(metrics):
        raise param_error("metrics: Duplicate metric fields.")
    return TtShopQuery(
        advertiser_id=advertiser_id,
        data_level=data_level,
        dimensions=tuple(dimensions),
        start=start,
        end=end,
        metrics=tuple(metrics) or TT_SHOP_METRICS,
        page=integer(params, "page", 1, 1, None),
        page_size=integer(params, "page_size", 10, 1, 1000),
    )


def tt_shop_rows(world: World, query: TtShopQuery) -> list[Row]:
    """Every row of a TT_SHOP report: spend = GMV Max cost, billed_cost = its net_cost, per
    campaign (or the advertiser) and day, ordered by id then day."""
    costs = cost_by_day(world, query.advertiser_id, query.start, query.end)
    daily = "stat_time_day" in query.dimensions
    grouped: dict[tuple[str, int], list[int]] = {}
    for (campaign_id, day), (cost, net) in costs.items():
        owner = campaign_id if query.data_level == "AUCTION_CAMPAIGN" else query.advertiser_id
        slot = grouped.setdefault((owner, day if daily else -1), [0, 0])
        slot[0] += cost
        slot[1] += net
    id_dimension = TT_SHOP_LEVELS[query.data_level]
    rows: list[Row] = []
    for (owner, day), (cost, net) in sorted(grouped.items(), key=lambda i: (int(i[0][0]), i[0][1])):
        dimensions = {id_dimension: owner}
        if daily:
            dimensions["stat_time_day"] = _day_label(day)
        values = {"spend": _money(cost), "billed_cost": _money(net)}
        rows.append({"dimensions": dimensions, "metrics": {m: values[m] for m in query.metrics}})
    return rows


# ---------------------------------------------------------------------------- BASIC total
# BASIC metrics of AUCTION_ADVERTISER that carry GMV Max spend when the world's switch is on:
# spend (and cash_spend, so spend = cash + voucher holds) gets the cost, billed_cost the net.
_TOTAL_METRICS = (("spend", 0), ("cash_spend", 0), ("billed_cost", 1))


def extend_advertiser_keys(world: World, query: Any, selection: Selection) -> None:
    """Add the days an advertiser spent on GMV Max only to a BASIC AUCTION_ADVERTISER
    selection (``gmv_max_in_advertiser_total``; hourly rows stay BASIC-only)."""
    if not in_advertiser_total(world, query):
        return
    extra: set[int] = set()
    for position, entity in enumerate(selection.entities):
        days = advertiser_cost_by_day(world, entity.id, query.start, query.end)
        if query.time_dimension is None and days:
            extra.add(selection.pack(position, -1, -1))
        elif query.time_dimension is not None:
            extra.update(selection.pack(position, day, -1) for day in days)
    if extra - set(selection.keys):
        selection.keys = array("q", sorted(extra | set(selection.keys)))


def add_to_advertiser_rows(
    world: World, query: Any, selection: Selection, keys: Iterable[int], rows: list[Row]
) -> None:
    """Add GMV Max cost to the spend of BASIC AUCTION_ADVERTISER rows (the world's switch)."""
    if not in_advertiser_total(world, query):
        return
    wanted = [(name, i) for name, i in _TOTAL_METRICS if name in query.metrics]
    if not wanted:
        return
    by_advertiser: dict[str, dict[int, tuple[int, int]]] = {}
    for key, row in zip(keys, rows, strict=True):
        position, day, _ = selection.unpack(key)
        advertiser_id = selection.entities[position].id
        days = by_advertiser.get(advertiser_id)
        if days is None:
            days = advertiser_cost_by_day(world, advertiser_id, query.start, query.end)
            by_advertiser[advertiser_id] = days
        if day >= 0:
            amounts = days.get(day, (0, 0))
        else:
            amounts = (sum(c for c, _ in days.values()), sum(n for _, n in days.values()))
        metrics = row["metrics"]
        for name, i in wanted:
            if amounts[i] and metrics.get(name) not in (None, "-"):
                metrics[name] = str(Decimal(metrics[name]) + Decimal(amounts[i]) / 100)


def in_advertiser_total(world: World, query: Any) -> bool:
    """Whether GMV Max cost adds to this BASIC AUCTION_ADVERTISER query's rows."""
    return (
        world.gmv_max_stores_per_advertiser > 0
        and world.gmv_max_in_advertiser_total
        and query.report_type == "BASIC"
        and query.time_dimension != "stat_time_hour"
    )


# ---------------------------------------------------------------------------- rate budget
class GmvMaxBudget:
    """The GMV Max report's own budget per app (TT-GMVR; Basic 8 QPS, 240 QPM, 20,000 a day),
    in the design of ``ratelimit.AppRateLimiter``: rolling QPS and QPM windows plus a count per
    UTC day of the arrival time. Only ``/gmv_max/report/get/`` counts, and it does not count
    against the general app tier. ``now`` is the arrival on the wall clock (seconds since the
    epoch), so a test that hands ``SimulatorApp.handle`` its ``arrived`` controls the clock."""

    def __init__(self, qps: int, qpm: int, daily: int, count_rejected: bool = False) -> None:
        self._lock = threading.Lock()
        self.count_rejected = count_rejected
        self.configure(qps, qpm, daily)

    def configure(self, qps: int, qpm: int, daily: int) -> None:
        with self._lock:
            self.qps, self.qpm, self.daily = qps, qpm, daily
            self._second = SlidingWindow(qps, QPS_WINDOW_SECONDS)
            self._minute = SlidingWindow(qpm, 60.0)
            self._days: dict[date, int] = {}

    def try_acquire(self, now: float) -> str | None:
        """Record a request arriving at ``now``; the name of the exceeded limit, else None."""
        day = datetime.fromtimestamp(now, UTC).date()
        with self._lock:
            if self._days.get(day, 0) >= self.daily:
                return "daily quota"
            exceeded = (
                "QPS" if self._second.is_full(now) else "QPM" if self._minute.is_full(now) else None
            )
            if exceeded is None or self.count_rejected:
                self._second.add(now)
                self._minute.add(now)
            if exceeded is None:
                self._days[day] = self._days.get(day, 0) + 1
            return exceeded

    def limit(self, exceeded: str) -> int:
        return {"QPS": self.qps, "QPM": self.qpm, "daily quota": self.daily}[exceeded]


def rate_limited(exceeded: str, limit: int, app_id: str) -> ApiError:
    """40100 naming the GMV Max limit that was hit (the daily one says when it resets)."""
    if exceeded == "daily quota":
        return ApiError(
            APP_RATE_LIMITED,
            f"Too many requests. GMV Max report requests from App [{app_id}] have used the "
            f"daily quota of {limit} requests; the quota resets at 00:00 UTC.",
        )
    return ApiError(
        APP_RATE_LIMITED,
        f"Too many requests. GMV Max report requests from App [{app_id}] exceed the "
        f"{exceeded} limit of {limit}; retry later.",
    )


def no_permission(advertiser_id: str) -> ApiError:
    """40001 of an advertiser whose GMV Max permission was revoked (both GMV Max endpoints)."""
    return ApiError(
        NO_PERMISSION, f"No permission to operate GMV Max for advertiser {advertiser_id}."
    )
