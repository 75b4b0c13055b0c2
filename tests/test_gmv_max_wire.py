"""The GMV Max wire against what a stricter or real TikTok may send (issue 20, point 1;
docs/tiktok_api_gmv_smartplus.md §1.1): metric values as JSON numbers (public examples write
``"cost": 0.01``), ``"-"``, empty and null values, missing metrics and unknown fields, a day
written with or without its time, a store list without ``is_gmv_max_available``, the day
quota's 40100 in other words, 51001 and 50000 retried on the GMV Max endpoint, and an empty
answer (``total_page`` 0). Fast: the reader alone, or the extraction against the simulator in
a thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from controller.reports import registry
from controller.tiktok.client import TikTokClient, TikTokError, names_day_quota
from controller.tiktok.gmv_max import (
    NO_STORE,
    discover_stores,
    parse_store,
    tt_shop_key,
    usable_stores,
)
from controller.tiktok.rate_limiter import RateLimiter
from controller.tiktok.reader import (
    NormalizationError,
    OddValues,
    finish,
    gmv_max_rows,
    page_to_table,
)
from tests.support.extraction_calls import extract
from tests.support.worlds import gmv_max_world
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator import gmv_max as sim_gmv_max

CAMPAIGN = registry.get("gmv_max_campaign")
AT = datetime(2026, 11, 25, tzinfo=UTC)
START, END = date(2025, 5, 1), date(2025, 5, 4)
GMV_MAX_REPORT = "/open_api/v1.3/gmv_max/report/get/"


def typed(rows: list) -> list[dict]:
    """``rows`` as the reader types them for TKT050 (store ``s1``, advertiser ``a1``)."""
    odd = OddValues()
    metrics = list(CAMPAIGN.metric_names)
    table = gmv_max_rows(CAMPAIGN, page_to_table(CAMPAIGN, metrics, rows, odd), "s1")
    assert odd.warnings("gmv_max_campaign") == []
    return finish(CAMPAIGN, table, "a1", AT).to_pylist()


def test_numbers_dashes_nulls_missing_metrics_and_bare_days_are_typed() -> None:
    rows = [
        {
            "dimensions": {"campaign_id": "1800000000000000001", "stat_time_day": "2025-05-01"},
            "metrics": {
                "cost": 0.01,
                "net_cost": "-",
                "orders": 3,
                "cost_per_order": None,
                "gross_revenue": "",
                "roi": "1.5",
                "roas_bid": 2,
                "campaign_name": "Shop",
                "a_metric_tiktok_adds_tomorrow": "7",
            },
            "a_field_tiktok_adds_tomorrow": {"x": 1},
        },
        {
            "dimensions": {
                "campaign_id": 1800000000000000002,
                "stat_time_day": "2025-05-02 00:00:00",
            },
            "metrics": {"cost": "12.50", "orders": "4.0"},
        },
        {"dimensions": {"campaign_id": "3", "stat_time_day": "2025-05-03"}, "metrics": None},
    ]
    got = typed(rows)
    assert [(r["campaign_id"], r["date"], r["store_id"], r["_advertiser_id"]) for r in got] == [
        ("1800000000000000001", date(2025, 5, 1), "s1", "a1"),
        ("1800000000000000002", date(2025, 5, 2), "s1", "a1"),
        ("3", date(2025, 5, 3), "s1", "a1"),
    ]
    first, second, third = got
    assert (first["cost"], first["net_cost"], first["orders"], first["cost_per_order"]) == (
        0.01,
        None,
        3,
        None,
    )
    assert (first["gross_revenue"], first["roi"], first["roas_bid"]) == (None, 1.5, 2.0)
    assert first["campaign_name"] == "Shop" and "a_metric_tiktok_adds_tomorrow" not in first
    assert (second["cost"], second["orders"], second["net_cost"]) == (12.5, 4, None)
    assert {k: v for k, v in third.items() if k in CAMPAIGN.metric_names} == {
        name: None for name in CAMPAIGN.metric_names
    }


def test_a_day_that_is_no_date_still_fails_its_page() -> None:
    rows = [{"dimensions": {"campaign_id": "1", "stat_time_day": "05/01/2025"}, "metrics": {}}]
    with pytest.raises(NormalizationError, match="stat_time_day is not 'YYYY-MM-DD HH:MM:SS'"):
        typed(rows)


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ("a row", "a report row without a dimensions object: 'a row'"),
        (None, "a row has no campaign_id dimension"),
        ({"dimensions": ["1"], "metrics": {}}, "a report row without a dimensions object"),
        (
            {"dimensions": {"campaign_id": "1", "stat_time_day": "2025-05-01"}, "metrics": [1]},
            "a report row without a metrics object",
        ),
    ],
)
def test_a_row_that_is_no_report_row_fails_its_page_by_name(row: object, error: str) -> None:
    with pytest.raises(NormalizationError, match=error.replace("(", "\\(")):
        typed([row])


def test_a_store_is_skipped_only_when_tiktok_says_it_is_not_available() -> None:
    rows = [
        {"store_id": "1", "is_gmv_max_available": True},
        {"store_id": 2},  # no field: read (asking costs a 40002 at worst, skipping loses spend)
        {"store_id": "3", "is_gmv_max_available": False},
        {"store_id": "4", "is_gmv_max_available": "false"},
        {"store_id": "5", "is_gmv_max_available": "true", "a_field_tiktok_adds": []},
    ]
    assert usable_stores([parse_store(row) for row in rows]) == ["1", "2", "5"]


def test_a_tt_shop_row_is_keyed_by_day_and_campaign_or_refused_by_name() -> None:
    """TT_SHOP's cross-check rows: numbers or strings, a day with or without its time; a row
    without them is an error the run reports as the cross-check not read."""
    row = {"dimensions": {"campaign_id": 95, "stat_time_day": "2025-05-01"}, "metrics": {}}
    assert tt_shop_key("a1", row) == (date(2025, 5, 1), "95")
    row = {"dimensions": {"campaign_id": "95", "stat_time_day": "2025-05-01 00:00:00"}}
    assert tt_shop_key("a1", row) == (date(2025, 5, 1), "95")
    for dimensions in ({"campaign_id": "95"}, {"stat_time_day": "2025-05-01"}, None):
        with pytest.raises(TikTokError, match="advertiser a1: a TT_SHOP row without"):
            tt_shop_key("a1", {"dimensions": dimensions})


@pytest.mark.parametrize(
    ("message", "day"),
    [
        (
            "Too many requests. GMV Max report requests from App [1] have used the daily quota "
            "of 20000 requests; the quota resets at 00:00 UTC.",
            True,
        ),
        ("App [1] exceeded the request limit per day.", True),
        ("Requests exceed the QPD limit of 20000.", True),
        ("Today's quota of GMV Max report requests is used up.", True),
        ("Quota exhausted, it resets at midnight UTC.", True),
        ("Too many requests in 24 hours.", True),
        (
            "Too many requests. GMV Max report requests from App [1] exceed the QPS limit of 8; "
            "retry later.",
            False,
        ),
        (
            "Too many requests. GMV Max report requests from App [1] exceed the QPM limit of 240; "
            "retry later.",
            False,
        ),
        ("Request too frequent", False),
    ],
)
def test_the_day_quota_is_told_from_the_windows_in_any_wording(message: str, day: bool) -> None:
    assert names_day_quota(message) is day


@pytest.fixture(scope="module")
def world() -> World:
    return gmv_max_world()


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[SimulatorServer]:
    with SimulatorServer(world) as running:
        yield running


def gmv_max_requests(server: SimulatorServer) -> int:
    return server.stats(include_log=False)["by_path"].get(GMV_MAX_REPORT, 0)


def keyed(table) -> dict[tuple, dict]:
    """Rows by (store, campaign, day): the stores and promotion types are read at once."""
    return {(r["store_id"], r["campaign_id"], r["date"]): r for r in table.to_pylist()}


def test_51001_and_50000_on_the_gmv_max_endpoint_are_retried(server, world) -> None:
    shop = world.advertiser_ids[0]
    server.reset()
    (clean,), tables = extract(server, [(shop, CAMPAIGN)], START, END)
    expected, asked = keyed(tables[("gmv_max_campaign", shop)]), gmv_max_requests(server)
    assert clean.status == "success" and len(expected) == len(
        sim_gmv_max.served_rows(world, shop, "campaign", START, END)
    )
    server.reset()
    server.set_faults({"mode": "queue", "queue": ["51001", "50000", "51010"]})
    (retried,), tables = extract(server, [(shop, CAMPAIGN)], START, END)
    assert retried.status == "success" and retried.rows == clean.rows
    assert keyed(tables[("gmv_max_campaign", shop)]) == expected
    assert gmv_max_requests(server) == asked + 3  # each fault cost one more request


def test_an_empty_answer_succeeds_with_no_rows(server, world) -> None:
    """Days before any delivery: TikTok answers ``total_page`` 0 (or no page_info at all)."""
    shop = world.advertiser_ids[0]
    server.reset()
    (empty,), tables = extract(server, [(shop, CAMPAIGN)], date(2024, 12, 1), date(2024, 12, 3))
    assert empty.status == "success" and empty.rows == 0 and not tables
    server.set_faults({"mode": "queue", "queue": ["empty_ok"] * 4})
    (bare,), tables = extract(server, [(shop, CAMPAIGN)], START, START)
    assert bare.status == "success" and bare.rows == 0 and not tables


def test_an_advertiser_without_stores_succeeds_with_the_reason(server, world) -> None:
    plain = world.advertiser_ids[2]
    server.reset()
    (result,), _ = extract(server, [(plain, CAMPAIGN)], START, END)
    assert result.status == "success" and result.rows == 0
    assert result.warnings == [NO_STORE] and gmv_max_requests(server) == 0


def test_a_store_tiktok_refuses_is_skipped_by_name_and_the_others_load(server, world) -> None:
    """A store listed without ``is_gmv_max_available`` is read; when it is not usable after
    all, TikTok's 40002 names it: that store is skipped with a warning, the others load."""
    shop = world.advertiser_ids[0]
    listed = sim_gmv_max.store_list(world, shop)["store_list"]
    usable = [s["store_id"] for s in listed if s["is_gmv_max_available"]]
    (unusable,) = [s["store_id"] for s in listed if not s["is_gmv_max_available"]]
    server.reset()
    _, tables = extract(server, [(shop, CAMPAIGN)], START, END)
    expected = keyed(tables[("gmv_max_campaign", shop)])
    (result,), tables = extract(
        server, [(shop, CAMPAIGN)], START, END, stores={shop: [*usable, unusable]}
    )
    assert result.status == "success" and keyed(tables[("gmv_max_campaign", shop)]) == expected
    assert result.warnings == [
        f"TikTok Shop store {unusable} skipped: TikTok refused it (store_ids: Store {unusable} "
        "is not available for GMV Max (is_gmv_max_available is false).)"
    ]
    server.set_faults({"mode": "queue", "queue": ["40002"]})  # 40002 naming no store: fails
    (failed,), _ = extract(server, [(shop, CAMPAIGN)], START, END)
    assert failed.status == "error" and "TikTok API error 40002" in failed.error


def test_a_store_list_without_a_rate_slot_before_the_deadline_is_that_advertisers_error(
    server, world
) -> None:
    """One store list a minute (QPM 1), a deadline 30 s away: the first advertiser's list is
    read, the others' cannot be sent in time and are their errors, not the run's crash."""
    server.reset()
    client = TikTokClient(server.base_url, "sim-token", RateLimiter(1, 1))
    try:
        found = discover_stores(client, world.advertiser_ids[:3], deadline=time.monotonic() + 30)
    finally:
        client.close()
    errors = [f for f in found.values() if isinstance(f, TikTokError)]
    assert len(found) == 3 and len(errors) == 2
    assert all(
        str(e).endswith(
            "the GMV Max store list was not read: rate limiter: no request slot before the deadline"
        )
        for e in errors
    )
