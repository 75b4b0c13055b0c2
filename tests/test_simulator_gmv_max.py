"""The simulator's GMV Max (docs/tiktok_api_gmv_smartplus.md §1, §1.3): the store list, the
GMV Max report per level equal to the truth functions and as strict as TikTok's rules (one
store, a filtering object, 30 days, promotion types and dimensions, deleted campaigns only with
STATUS_ALL), its own rate budget, TT_SHOP spend, the BASIC advertiser-total switch and revoked
GMV Max permission.

Requests go through ``SimulatorApp.handle`` (the app without sockets); where time matters the
test hands it the arrival time (``arrived``), which is the clock the GMV Max budget counts on,
so no assertion depends on how fast the machine is."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import requests

from tests.fixtures.simulator import SIM_TOKEN
from tests.support.worlds import gmv_max_world
from tiktok_simulator import SimulatorApp, SimulatorServer, World, gmv_max
from tiktok_simulator.__main__ import build_parser, build_world
from tiktok_simulator.report import served_rows

START, END = "2025-03-01", "2025-03-30"
INVALID_METRICS = (
    "Please correct the information in invalid metric fields and try again. "
    "Invalid metric fields: {}."
)
APP_LIMITED = "Due to too many requests, requests from App [1234567890] are temporarily restricted."
T0 = datetime(2025, 6, 1, 23, 59, 50, tzinfo=UTC).timestamp()  # 10 s before a UTC midnight


@pytest.fixture(scope="module")
def world() -> World:
    return gmv_max_world()


@pytest.fixture
def app(world: World) -> SimulatorApp:
    """The app without rate limits (the budget tests build their own)."""
    return SimulatorApp(world, rate_limit=False)


def get(app: SimulatorApp, path: str, arrived: float | None = None, **params: Any) -> dict:
    """One API call through the app (HTTP 200 asserted: TikTok's errors are in ``code``)."""
    reply = app.handle(
        "GET",
        "/open_api/v1.3/" + path,
        urlencode(params),
        {"Access-Token": SIM_TOKEN},
        arrived=arrived,
    )
    assert reply.status == 200
    return orjson.loads(reply.body)


def store_ids(world: World, advertiser: int = 0) -> list[str]:
    stores = gmv_max.shops_of(world).stores(world.advertiser_ids[advertiser])
    return [s.store_id for s in stores if s.available]


def gmv_params(world: World, level: str = "campaign", **overrides: Any) -> dict:
    """A valid GMV Max report request of ``level`` for advertiser 0's first store; ``None``
    removes a parameter."""
    dimensions, types, metrics = gmv_max.LEVELS[level]
    params: dict[str, Any] = {
        "advertiser_id": world.advertiser_ids[0],
        "store_ids": json.dumps(store_ids(world)[:1]),
        "start_date": START,
        "end_date": END,
        "dimensions": json.dumps(dimensions),
        "metrics": json.dumps(metrics),
        "filtering": json.dumps({"gmv_max_promotion_types": [types[0]]}),
        "page_size": "1000",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def gmv_report(app: SimulatorApp, arrived: float | None = None, **params: Any) -> dict:
    return get(app, gmv_max.REPORT_PATH, arrived, **params)


def all_pages(app: SimulatorApp, params: dict, page_size: int) -> tuple[list, list]:
    rows, infos = [], []
    page = 1
    while True:
        body = gmv_report(app, **{**params, "page": str(page), "page_size": str(page_size)})
        assert body["code"] == 0, body
        rows += body["data"]["list"]
        infos.append(body["data"]["page_info"])
        if page >= body["data"]["page_info"]["total_page"]:
            return rows, infos
        page += 1


def wire(rows: list[dict], store_id: str) -> list[dict]:
    """Truth rows of one store, as the endpoint sends them (without the added store_id)."""
    return [
        {"dimensions": r["dimensions"], "metrics": r["metrics"]}
        for r in rows
        if r["store_id"] == store_id
    ]


def cost(rows: list[dict], key: tuple[str, ...]) -> dict[tuple[str, ...], Decimal]:
    sums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    for row in rows:
        sums[tuple(row["dimensions"][k] for k in key)] += Decimal(row["metrics"]["cost"])
    return dict(sums)


# --------------------------------------------------------------------------- stores
def test_store_list_has_usable_and_unusable_stores(app: SimulatorApp, world: World) -> None:
    body = get(app, gmv_max.STORE_LIST_PATH, advertiser_id=world.advertiser_ids[0])
    assert body["code"] == 0 and body["message"] == "OK"
    stores = body["data"]["store_list"]
    assert [s["is_gmv_max_available"] for s in stores] == [True, True, False]
    assert [s["store_id"] for s in stores[:2]] == store_ids(world)
    assert set(stores[0]) == {
        "store_id",
        "store_name",
        "store_code",
        "is_gmv_max_available",
        "is_owner_bc",
        "store_authorized_bc_id",
        "store_status",
        "store_role",
        "targeting_region_codes",
    }
    assert all(s["store_id"].isdigit() and len(s["store_id"]) == 19 for s in stores)
    plain = get(app, gmv_max.STORE_LIST_PATH, advertiser_id=world.advertiser_ids[2])
    assert plain["code"] == 0 and plain["data"] == {"store_list": []}


def test_unusable_and_foreign_stores_are_refused(app: SimulatorApp, world: World) -> None:
    adv = world.advertiser_ids[0]
    unusable = gmv_max.shops_of(world).stores(adv)[-1].store_id
    body = gmv_report(app, **gmv_params(world, store_ids=json.dumps([unusable])))
    assert body["code"] == 40002
    assert body["message"] == (
        f"store_ids: Store {unusable} is not available for GMV Max (is_gmv_max_available is false)."
    )
    foreign = store_ids(world, 1)[0]
    body = gmv_report(app, **gmv_params(world, store_ids=json.dumps([foreign])))
    assert body["code"] == 40002
    assert body["message"] == f"store_ids: Store {foreign} is not a store of advertiser {adv}."


# --------------------------------------------------------------------------- rows = truth
@pytest.mark.parametrize("level", ["campaign", "product", "live"])
def test_each_level_equals_the_truth_across_pages(
    app: SimulatorApp, world: World, level: str
) -> None:
    adv = world.advertiser_ids[0]
    truth = gmv_max.served_rows(world, adv, level, START, END)
    _, types, _ = gmv_max.LEVELS[level]
    served = 0
    for store in store_ids(world):
        expected: list[dict] = []
        for promotion in types:
            params = gmv_params(
                world,
                level,
                store_ids=json.dumps([store]),
                filtering=json.dumps(
                    {"gmv_max_promotion_types": [promotion], "campaign_statuses": ["STATUS_ALL"]}
                ),
            )
            rows, infos = all_pages(app, params, page_size=17)
            assert infos[0]["total_number"] == len(rows)
            assert [i["page"] for i in infos] == list(range(1, infos[0]["total_page"] + 1))
            expected += rows
        assert expected == wire(truth, store)
        served += len(expected)
    assert served == len(truth) > 100
    campaigns = {r["dimensions"]["campaign_id"] for r in truth}
    # per store: the level's campaigns, one deleted of each promotion type among them
    assert len(campaigns) == 2 * 2 * len(types)


def test_levels_add_up_and_values_are_derived(world: World) -> None:
    adv = world.advertiser_ids[1]
    campaign = gmv_max.served_rows(world, adv, "campaign", START, END)
    product = gmv_max.served_rows(world, adv, "product", START, END)
    live = gmv_max.served_rows(world, adv, "live", START, END)
    key = ("campaign_id", "stat_time_day")
    assert cost(campaign, key) == {**cost(product, key), **cost(live, key)}
    for row in campaign + product + live:
        m = row["metrics"]
        assert Decimal(m["net_cost"]) <= Decimal(m["cost"])
        if m["orders"] == "0":
            assert m["cost_per_order"] == "-"
        else:
            per_order = Decimal(m["cost"]) / int(m["orders"])
            assert abs(Decimal(m["cost_per_order"]) - per_order) <= Decimal("0.005")
        roi = Decimal(m["gross_revenue"]) / Decimal(m["cost"])
        assert abs(Decimal(m["roi"]) - roi) <= Decimal("0.005")
        assert row["dimensions"]["stat_time_day"].endswith(" 00:00:00")
    assert {r["metrics"]["orders"] for r in product} >= {"0"}  # the zero guard is exercised
    basic = set(world.campaign_ids(adv))
    assert not basic & {r["dimensions"]["campaign_id"] for r in campaign}


def test_paging_edges(app: SimulatorApp, world: World) -> None:
    body = gmv_report(app, **gmv_params(world, page_size="5", page="2"))
    info = body["data"]["page_info"]
    assert info["page"] == 2 and info["page_size"] == 5 and len(body["data"]["list"]) == 5
    assert info["total_page"] == -(-info["total_number"] // 5)
    past = gmv_report(app, **gmv_params(world, page=str(info["total_page"] + 1)))
    assert past["code"] == 0 and past["data"]["list"] == []
    too_big = gmv_report(app, **gmv_params(world, page_size="1001"))
    assert too_big["code"] == 40002
    assert too_big["message"] == (
        "page_size: Must be greater than or equal to 1 and less than or equal to 1000."
    )


# --------------------------------------------------------------------------- strictness
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"end_date": "2025-03-31"},
            "start_date, end_date: The time range must be within 30 day(s) with stat_time_day; "
            "got 31 days.",
        ),
        ({"store_ids": None}, "store_ids: Missing data for required field."),
        (
            {"store_ids": json.dumps(["7490000000000000001", "7490000000000000003"])},
            "store_ids: Exactly one store id is allowed per request; got 2.",
        ),
        ({"store_ids": "[]"}, "store_ids: Exactly one store id is allowed per request; got 0."),
        (
            {
                "filtering": json.dumps(
                    [
                        {
                            "field_name": "gmv_max_promotion_types",
                            "filter_type": "IN",
                            "filter_value": '["PRODUCT"]',
                        }
                    ]
                )
            },
            "filtering: Not a valid object; the GMV Max report takes a JSON object such as "
            '{"gmv_max_promotion_types": ["PRODUCT"]}, not a list of filters.',
        ),
        ({"filtering": None}, "filtering: Missing data for required field."),
        (
            {"filtering": json.dumps({"campaign_statuses": ["STATUS_ALL"]})},
            "filtering: gmv_max_promotion_types: Missing data for required field.",
        ),
        (
            {"filtering": json.dumps({"gmv_max_promotion_types": ["PRODUCT_GMV_MAX"]})},
            "filtering: gmv_max_promotion_types: Must be distinct values of: PRODUCT, LIVE.",
        ),
        (
            {"filtering": json.dumps({"gmv_max_promotion_types": ["LIVE"], "ad_ids": ["1"]})},
            "filtering: Unknown field: ad_ids.",
        ),
        (
            {"metrics": json.dumps(["cost", "spend", "clicks"])},
            INVALID_METRICS.format("['spend', 'clicks']"),
        ),
        (
            {"metrics": json.dumps(["cost", "live_views"])},  # a LIVE metric, PRODUCT request
            INVALID_METRICS.format("['live_views']"),
        ),
        (
            {"dimensions": json.dumps(["campaign_id", "stat_time_hour"])},
            "dimensions: ['stat_time_hour'] not supported by simulator.",
        ),
        (
            {"dimensions": json.dumps(["campaign_id", "ad_id"])},
            "dimensions: Invalid dimension fields: ['ad_id'].",
        ),
        (
            {
                "dimensions": json.dumps(["campaign_id", "item_group_id"]),
                "filtering": json.dumps({"gmv_max_promotion_types": ["LIVE"]}),
                "metrics": json.dumps(["cost"]),
            },
            'dimensions: item_group_id is only valid with gmv_max_promotion_types ["PRODUCT"]; '
            "got ['LIVE'].",
        ),
        (
            {
                "dimensions": json.dumps(["campaign_id", "room_id"]),
                "filtering": json.dumps({"gmv_max_promotion_types": ["PRODUCT", "LIVE"]}),
                "metrics": json.dumps(["cost"]),
            },
            'dimensions: room_id is only valid with gmv_max_promotion_types ["LIVE"]; '
            "got ['PRODUCT', 'LIVE'].",
        ),
        (
            {"dimensions": json.dumps(["campaign_id", "item_group_id", "room_id"])},
            "dimensions: item_group_id and room_id cannot be used together.",
        ),
        (
            {
                "dimensions": json.dumps(["campaign_id", "item_group_id"]),
                "metrics": json.dumps(["cost", "campaign_name"]),
            },
            "metrics: ['campaign_name'] are campaign attributes, not available with the "
            "dimension item_group_id.",
        ),
    ],
)
def test_refusals_name_the_field(
    app: SimulatorApp, world: World, overrides: dict, message: str
) -> None:
    body = gmv_report(app, **gmv_params(world, **overrides))
    assert (body["code"], body["message"], body["data"]) == (40002, message, {})


def test_deleted_campaigns_only_with_status_all(app: SimulatorApp, world: World) -> None:
    def campaigns(filtering: dict) -> dict[str, str]:
        body = gmv_report(app, **gmv_params(world, filtering=json.dumps(filtering)))
        assert body["code"] == 0, body
        return {
            r["dimensions"]["campaign_id"]: r["metrics"]["operation_status"]
            for r in body["data"]["list"]
        }

    both = {"gmv_max_promotion_types": ["PRODUCT", "LIVE"]}
    default = campaigns(both)
    not_deleted = campaigns({**both, "campaign_statuses": ["STATUS_NOT_DELETE"]})
    every = campaigns({**both, "campaign_statuses": ["STATUS_ALL"]})
    assert default == not_deleted
    assert "DELETE" not in default.values() and len(default) == 2
    deleted = {c for c, status in every.items() if status == "DELETE"}
    assert len(deleted) == 2 and set(every) == set(default) | deleted


def test_filters_by_campaign_and_product(app: SimulatorApp, world: World) -> None:
    truth = wire(
        gmv_max.served_rows(world, world.advertiser_ids[0], "product", START, END),
        store_ids(world)[0],
    )
    one = truth[0]["dimensions"]
    body = gmv_report(
        app,
        **gmv_params(
            world,
            "product",
            filtering=json.dumps(
                {
                    "gmv_max_promotion_types": ["PRODUCT"],
                    "campaign_ids": [one["campaign_id"]],
                    "item_group_ids": [one["item_group_id"]],
                    "campaign_statuses": ["STATUS_ALL"],
                }
            ),
        ),
    )
    assert body["data"]["list"] == [
        r
        for r in truth
        if r["dimensions"]["item_group_id"] == one["item_group_id"]
        and r["dimensions"]["campaign_id"] == one["campaign_id"]
    ]


# --------------------------------------------------------------------------- the budget
def test_gmv_max_qps_and_qpm_budget(world: World) -> None:
    app = SimulatorApp(world, gmv_max_qps=3, gmv_max_qpm=5)
    params = gmv_params(world)
    codes = [gmv_report(app, T0 + i * 0.01, **params)["code"] for i in range(4)]
    assert codes == [0, 0, 0, 40100]
    limited = gmv_report(app, T0 + 0.1, **params)
    assert limited == {**limited, "code": 40100, "data": {}}
    assert limited["message"] == (
        "Too many requests. GMV Max report requests from App [1234567890] exceed the QPS "
        "limit of 3; retry later."
    )
    assert [gmv_report(app, T0 + 1.0 + i * 0.01, **params)["code"] for i in range(3)] == [
        0,
        0,
        40100,
    ]
    assert gmv_report(app, T0 + 1.5, **params)["message"] == (
        "Too many requests. GMV Max report requests from App [1234567890] exceed the QPM "
        "limit of 5; retry later."
    )
    assert gmv_report(app, T0 + 60.5, **params)["code"] == 0


def test_gmv_max_daily_quota_resets_at_utc_midnight(world: World) -> None:
    app = SimulatorApp(world, gmv_max_daily_quota=4)
    params = gmv_params(world)
    assert [gmv_report(app, T0 + i, **params)["code"] for i in range(5)] == [0, 0, 0, 0, 40100]
    spent = gmv_report(app, T0 + 8, **params)
    assert (spent["code"], spent["message"]) == (
        40100,
        "Too many requests. GMV Max report requests from App [1234567890] have used the daily "
        "quota of 4 requests; the quota resets at 00:00 UTC.",
    )
    # The general tier is untouched: store list and BASIC still answer that second.
    store_list = get(app, gmv_max.STORE_LIST_PATH, T0 + 8, advertiser_id=world.advertiser_ids[0])
    assert store_list["code"] == 0
    assert gmv_report(app, T0 + 10.5, **params)["code"] == 0  # 2025-06-02 00:00:00.5 UTC
    stats = app.stats.snapshot(False)
    assert stats["codes"]["40100"] == 2


def test_budgets_are_apart(world: World) -> None:
    """BASIC calls never spend the GMV Max budget, GMV Max reports never the app tier."""
    app = SimulatorApp(world, qps=2, gmv_max_qps=2)
    basic = {
        "advertiser_id": world.advertiser_ids[0],
        "report_type": "BASIC",
        "data_level": "AUCTION_ADVERTISER",
        "dimensions": json.dumps(["advertiser_id", "stat_time_day"]),
        "start_date": START,
        "end_date": START,
    }
    arrived = datetime.now(UTC).timestamp()  # one instant for every call: 2 QPS either way
    report_path = "report/integrated/get/"
    assert [get(app, report_path, arrived, **basic)["code"] for _ in range(2)] == [0, 0]
    params = gmv_params(world)
    assert [gmv_report(app, arrived, **params)["code"] for _ in range(3)] == [0, 0, 40100]
    limited = get(app, report_path, arrived, **basic)
    assert (limited["code"], limited["message"]) == (40100, APP_LIMITED)
    stats = app.stats.snapshot(False)
    assert sum(n for _, n in stats["accepted_per_second"]) == 2
    assert sum(n for _, n in stats["gmv_max_accepted_per_second"]) == 2
    assert stats["codes_by_path"] == {
        "/open_api/v1.3/" + report_path: {"0": 2, "40100": 1},
        "/open_api/v1.3/" + gmv_max.REPORT_PATH: {"0": 2, "40100": 1},
    }


def test_budget_is_configurable_and_switched_off_with_the_rate_limit(world: World) -> None:
    app = SimulatorApp(world)
    assert app.config()["gmv_max_qps"] is None  # the world's: 8
    params = gmv_params(world)
    assert [gmv_report(app, T0, **params)["code"] for _ in range(9)] == [0] * 8 + [40100]
    app.configure(gmv_max_qps=20)
    assert [gmv_report(app, T0 + 2, **params)["code"] for _ in range(12)] == [0] * 12
    app.configure(rate_limit=False, gmv_max_daily_quota=1)
    assert {gmv_report(app, T0 + 3, **params)["code"] for _ in range(30)} == {0}


# --------------------------------------------------------------------------- TT_SHOP
def tt_shop(app: SimulatorApp, world: World, level: str, advertiser: int = 0, **kw: Any) -> dict:
    dims = ["campaign_id" if level == "AUCTION_CAMPAIGN" else "advertiser_id", "stat_time_day"]
    params = {
        "advertiser_id": world.advertiser_ids[advertiser],
        "report_type": "TT_SHOP",
        "service_type": "AUCTION",
        "data_level": level,
        "dimensions": json.dumps(dims),
        "metrics": json.dumps(["spend", "billed_cost"]),
        "start_date": START,
        "end_date": END,
        "page_size": "1000",
        **kw,
    }
    return get(app, "report/integrated/get/", **{k: v for k, v in params.items() if v is not None})


def test_tt_shop_spend_is_the_gmv_max_cost(app: SimulatorApp, world: World) -> None:
    adv = world.advertiser_ids[0]
    body = tt_shop(app, world, "AUCTION_CAMPAIGN")
    assert body["code"] == 0
    served = {
        (r["dimensions"]["campaign_id"], r["dimensions"]["stat_time_day"][:10]): Decimal(
            r["metrics"]["spend"]
        )
        for r in body["data"]["list"]
    }
    assert served == gmv_max.tt_shop_spend(world, adv, START, END)
    gmv_cost = cost(
        gmv_max.served_rows(world, adv, "campaign", START, END), ("campaign_id", "stat_time_day")
    )
    assert served == {(c, day[:10]): amount for (c, day), amount in gmv_cost.items()}
    assert len(served) > 100 and len({c for c, _ in served}) == 8  # deleted campaigns too
    by_day = tt_shop(app, world, "AUCTION_ADVERTISER")["data"]["list"]
    daily: dict[str, Decimal] = defaultdict(Decimal)
    for (_, day), amount in served.items():
        daily[day] += amount
    assert {
        r["dimensions"]["stat_time_day"][:10]: Decimal(r["metrics"]["spend"]) for r in by_day
    } == daily


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "filtering": json.dumps(
                    [{"field_name": "campaign_ids", "filter_type": "IN", "filter_value": "[]"}]
                )
            },
            "filtering: Not supported with report_type TT_SHOP.",
        ),
        ({"query_lifetime": "true"}, "query_lifetime: Not supported with report_type TT_SHOP."),
        (
            {"metrics": json.dumps(["spend", "impressions"])},
            INVALID_METRICS.format("['impressions']"),
        ),
        (
            {"data_level": "AUCTION_AD"},
            "data_level: Must be one of: AUCTION_ADVERTISER, AUCTION_CAMPAIGN with report_type TT_SHOP.",
        ),
    ],
)
def test_tt_shop_refusals(app: SimulatorApp, world: World, overrides: dict, message: str) -> None:
    body = tt_shop(app, world, "AUCTION_CAMPAIGN", **overrides)
    assert (body["code"], body["message"]) == (40002, message)


# --------------------------------------------------------------------------- BASIC
@pytest.fixture(scope="module")
def world_without_total() -> World:
    return gmv_max_world(gmv_max_in_advertiser_total=False)


def _spend_by_day(rows: list[dict]) -> dict[str, Decimal]:
    return {r["dimensions"]["stat_time_day"]: Decimal(r["metrics"]["spend"]) for r in rows}


def test_advertiser_total_switch(world: World, world_without_total: World) -> None:
    for advertiser, has_gmv_max in ((0, True), (2, False)):
        adv = world.advertiser_ids[advertiser]
        metrics = ["spend", "cash_spend", "voucher_spend", "impressions"]
        level = "AUCTION_ADVERTISER"
        with_total = served_rows(world, adv, level, START, END, metrics)
        without = served_rows(world_without_total, adv, level, START, END, metrics)
        gmv = gmv_max.advertiser_cost_by_day(world, adv, START, END)
        assert bool(gmv) is has_gmv_max
        expected = {
            f"{date.fromordinal(d).isoformat()} 00:00:00": Decimal(c) / 100
            for d, (c, _) in gmv.items()
        }
        basic = _spend_by_day(without)
        assert _spend_by_day(with_total) == {
            day: basic.get(day, Decimal(0)) + expected.get(day, Decimal(0))
            for day in basic.keys() | expected.keys()
        }
        for row in with_total:
            m = row["metrics"]
            assert Decimal(m["spend"]) == Decimal(m["cash_spend"]) + Decimal(m["voucher_spend"])
        lifetime = served_rows(
            world, adv, level, START, END, ["spend"], dimensions=["advertiser_id"]
        )
        assert Decimal(lifetime[0]["metrics"]["spend"]) == sum(_spend_by_day(with_total).values())


def test_basic_endpoint_serves_the_switched_total_and_no_gmv_max_below(
    app: SimulatorApp, world: World
) -> None:
    adv = world.advertiser_ids[0]
    common = {
        "advertiser_id": adv,
        "report_type": "BASIC",
        "start_date": START,
        "end_date": END,
        "metrics": json.dumps(["spend"]),
        "page_size": "1000",
    }
    body = get(
        app,
        "report/integrated/get/",
        data_level="AUCTION_ADVERTISER",
        dimensions=json.dumps(["advertiser_id", "stat_time_day"]),
        **common,
    )
    assert body["data"]["list"] == served_rows(
        world, adv, "AUCTION_ADVERTISER", START, END, ["spend"]
    )
    campaigns = get(
        app,
        "report/integrated/get/",
        data_level="AUCTION_CAMPAIGN",
        dimensions=json.dumps(["campaign_id", "stat_time_day"]),
        **common,
    )
    listed = get(app, "campaign/get/", advertiser_id=adv, page_size="1000")
    gmv_ids = {c.id for c in gmv_max.shops_of(world).campaigns(adv)}
    assert campaigns["data"]["list"] and listed["data"]["list"]
    assert not gmv_ids & {r["dimensions"]["campaign_id"] for r in campaigns["data"]["list"]}
    assert not gmv_ids & {c["campaign_id"] for c in listed["data"]["list"]}


# --------------------------------------------------------------------------- permission
def test_revoked_gmv_max_permission(app: SimulatorApp, world: World) -> None:
    revoked = world.advertiser_ids[3]
    message = f"No permission to operate GMV Max for advertiser {revoked}."
    listed = get(app, gmv_max.STORE_LIST_PATH, advertiser_id=revoked)
    assert (listed["code"], listed["message"], listed["data"]) == (40001, message, {})
    body = gmv_report(
        app,
        **gmv_params(world, advertiser_id=revoked, store_ids=json.dumps(store_ids(world, 3)[:1])),
    )
    assert (body["code"], body["message"]) == (40001, message)
    # BASIC still answers for the account
    assert tt_shop(app, world, "AUCTION_CAMPAIGN", advertiser=3)["code"] == 0
    # and an account can lose it in the middle of a history
    adv = world.advertiser_ids[0]
    assert gmv_report(app, **gmv_params(world))["code"] == 0
    app.configure(gmv_max_revoked_advertisers=[adv])
    lost = gmv_report(app, **gmv_params(world))
    assert (lost["code"], lost["message"]) == (
        40001,
        f"No permission to operate GMV Max for advertiser {adv}.",
    )
    app.reset()
    assert gmv_report(app, **gmv_params(world))["code"] == 0


def test_world_describes_its_gmv_max_options(world: World) -> None:
    described = world.describe()
    assert described["gmv_max_stores_per_advertiser"] == 2
    assert described["gmv_max_revoked_advertisers"] == [world.advertiser_ids[3]]
    assert (described["gmv_max_qps"], described["gmv_max_qpm"]) == (8, 240)
    assert described["gmv_max_daily_quota"] == 20_000
    assert World(seed=30).describe()["gmv_max_stores_per_advertiser"] == 0


def test_a_day_with_gmv_max_spend_only_is_an_advertiser_row() -> None:
    """An account whose one BASIC ad did not deliver that day still spent on GMV Max."""
    options = {
        "seed": 3,
        "advertisers": 1,
        "campaigns_per_advertiser": 1,
        "adgroups_per_campaign": 1,
        "ads_per_adgroup": 1,
        "promote_campaigns_per_advertiser": 0,
        "delivery_probability": 0.5,
        "gmv_max_stores_per_advertiser": 1,
    }
    world, basic_only = World(**options), World(**options, gmv_max_in_advertiser_total=False)
    adv = world.advertiser_ids[0]
    metrics = ["spend", "impressions"]
    rows = served_rows(world, adv, "AUCTION_ADVERTISER", START, END, metrics)
    basic = served_rows(basic_only, adv, "AUCTION_ADVERTISER", START, END, metrics)
    gmv_only = [r for r in rows if r["metrics"]["impressions"] == "0"]
    assert len(rows) == 30 > len(basic) and len(gmv_only) == 30 - len(basic) > 0
    gmv = gmv_max.advertiser_cost_by_day(world, adv, START, END)
    for row in gmv_only:
        day = date.fromisoformat(row["dimensions"]["stat_time_day"][:10]).toordinal()
        assert Decimal(row["metrics"]["spend"]) == Decimal(gmv[day][0]) / 100


# --------------------------------------------------------------------------- wire and CLI
def test_endpoints_over_http_and_the_truth_control(world: World) -> None:
    with SimulatorServer(world, rate_limit=False) as server:
        headers = {"Access-Token": SIM_TOKEN}
        base = server.base_url
        stores = requests.get(
            base + gmv_max.STORE_LIST_PATH,
            params={"advertiser_id": world.advertiser_ids[0]},
            headers=headers,
            timeout=10,
        ).json()
        assert len(stores["data"]["store_list"]) == 3
        params = gmv_params(
            world,
            "live",
            filtering=json.dumps(
                {"gmv_max_promotion_types": ["LIVE"], "campaign_statuses": ["STATUS_ALL"]}
            ),
        )
        body = requests.get(base + gmv_max.REPORT_PATH, params=params, headers=headers, timeout=10)
        truth = gmv_max.served_rows(world, world.advertiser_ids[0], "live", START, END)
        assert body.json()["data"]["list"] == wire(truth, store_ids(world)[0])
        posted = requests.post(base + gmv_max.REPORT_PATH, headers=headers, timeout=10)
        assert posted.status_code == 405
        control = base.split("/open_api")[0] + "/_sim/gmv_max/truth"
        query = {"advertiser_id": world.advertiser_ids[0], "start_date": START, "end_date": END}
        truth = requests.get(control, params={**query, "level": "product"}, timeout=10).json()
        assert truth["rows"] == gmv_max.served_rows(
            world, world.advertiser_ids[0], "product", START, END
        )
        spend = requests.get(control, params={**query, "level": "tt_shop"}, timeout=10).json()
        expected = gmv_max.tt_shop_spend(world, world.advertiser_ids[0], START, END)
        assert {
            (r["campaign_id"], r["stat_time_day"]): Decimal(r["spend"]) for r in spend["rows"]
        } == expected
        bad = requests.get(control, params={**query, "level": "ad"}, timeout=10)
        assert bad.status_code == 400


def test_cli_flags_build_the_gmv_max_world() -> None:
    args = build_parser().parse_args(
        [
            "--advertisers",
            "4",
            "--gmv-max-stores",
            "3",
            "--gmv-max-campaigns",
            "2",
            "--gmv-max-products",
            "4",
            "--gmv-max-rooms",
            "1",
            "--gmv-max-revoked",
            "1",
            "--gmv-max-not-in-advertiser-total",
            "--gmv-max-qps",
            "12",
            "--gmv-max-qpm",
            "360",
            "--gmv-max-daily-quota",
            "30000",
        ]
    )
    world = build_world(args)
    described = world.describe()
    assert described["gmv_max_stores_per_advertiser"] == 3
    assert described["gmv_max_revoked_advertisers"] == [world.advertiser_ids[1]]
    assert described["gmv_max_in_advertiser_total"] is False
    assert (described["gmv_max_qps"], described["gmv_max_qpm"]) == (12, 360)
    assert described["gmv_max_daily_quota"] == 30_000
    store = gmv_max.shops_of(world).stores(world.advertiser_ids[0])[0]
    # per store: 2 active + 1 deleted of each type; 4 products, 1 room each
    assert [len(c.leaves) for c in store.campaigns] == [4, 4, 4, 1, 1, 1]


def test_faults_and_worded_values_reach_the_gmv_max_report(app: SimulatorApp, world: World) -> None:
    adv, params = world.advertiser_ids[0], gmv_params(world)
    app.set_faults({"mode": "queue", "queue": ["50000", "short_page"]})
    failed = gmv_report(app, **params)
    assert (failed["code"], failed["message"]) == (50000, "System error.")
    short = gmv_report(app, **params)["data"]
    assert short["page_info"]["total_number"] == len(short["list"]) + 1
    app.configure(worded_metrics={"roas_bid": "auto"})
    rows = gmv_report(app, **params)["data"]["list"]
    product = {
        c.id for c in gmv_max.shops_of(world).campaigns(adv) if c.promotion_type == "PRODUCT"
    }
    truth = gmv_max.served_rows(world, adv, "campaign", START, END, include_deleted=False)
    expected = [
        r for r in wire(truth, store_ids(world)[0]) if r["dimensions"]["campaign_id"] in product
    ]
    assert rows == [{**r, "metrics": {**r["metrics"], "roas_bid": "auto"}} for r in expected]
