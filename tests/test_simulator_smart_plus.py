"""The simulator's Upgraded Smart+ campaigns (docs/tiktok_api_gmv_smartplus.md §2): ``ad_id``
reports a row per creative, ``ad_id_v2`` a row per ad (its creatives summed), both add up to
the ad group level, and TikTok's stated refusals (no ``ad_id`` with ``ad_id_v2``, no
``ad_ids`` with ``ad_ids_v2``) are answered with 40002. ``/ad/get/`` lists the creatives,
``/smart_plus/ad/get/`` the ads, strictly as the SDK documents its parameters."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.fixtures.simulator import SIM_TOKEN
from tests.support.simulator_calls import params_for, report, session
from tests.support.worlds import smart_plus_world
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator.metrics import AD, ADGROUP, CAMPAIGN
from tiktok_simulator.report import served_rows
from tiktok_simulator.world import SMART_PLUS_CREATIVE, UPGRADED_SMART_PLUS

START, END = "2025-05-01", "2025-05-20"
ATTRIBUTES = ["ad_id_v2", "campaign_automation_type", "ad_name", "campaign_id"]


@pytest.fixture(scope="module")
def world() -> World:
    return smart_plus_world(1)


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[SimulatorServer]:
    with SimulatorServer(world) as running:
        running.configure(rate_limit=False)
        yield running


def _spend(rows: list[dict]) -> Decimal:
    return sum((Decimal(r["metrics"]["spend"]) for r in rows), Decimal(0))


def _rows(world: World, level: str, id_dimension: str) -> list[dict]:
    adv = world.advertiser_ids[0]
    metrics = ["spend", "impressions", *(ATTRIBUTES if level == AD else [])]
    dims = (id_dimension, "stat_time_day")
    return served_rows(world, adv, level, START, END, metrics, dimensions=dims)


def test_ad_id_reports_creatives_and_ad_id_v2_reports_ads(world: World) -> None:
    account = world.account(world.advertiser_ids[0])
    smart = account.smart_plus_ads
    assert len(smart) == 4 and all(len(ad.ads) == 3 for ad in smart)
    creatives = _rows(world, AD, "ad_id")
    ads = _rows(world, AD, "ad_id_v2")
    kinds = Counter(r["metrics"]["campaign_automation_type"] for r in creatives)
    assert set(kinds) == {"MANUAL", SMART_PLUS_CREATIVE}
    assert {r["metrics"]["campaign_automation_type"] for r in ads} == {
        "MANUAL",
        UPGRADED_SMART_PLUS,
    }
    # a creative row names its ad; the ad's row sums its creatives' rows of the day
    by_ad: dict[tuple[str, str], Decimal] = Counter()
    for row in creatives:
        if row["metrics"]["campaign_automation_type"] == SMART_PLUS_CREATIVE:
            key = (row["metrics"]["ad_id_v2"], row["dimensions"]["stat_time_day"])
            by_ad[key] += Decimal(row["metrics"]["spend"])
    smart_rows = {
        (r["dimensions"]["ad_id_v2"], r["dimensions"]["stat_time_day"]): Decimal(
            r["metrics"]["spend"]
        )
        for r in ads
        if r["metrics"]["campaign_automation_type"] == UPGRADED_SMART_PLUS
    }
    assert smart_rows == dict(by_ad) and smart_rows
    assert {ad_v2 for ad_v2, _ in smart_rows} == {ad.id for ad in smart}
    # a classic ad is one row either way, under its second id
    classic = [r for r in ads if r["metrics"]["campaign_automation_type"] == "MANUAL"]
    assert len(classic) == kinds["MANUAL"]
    assert all(r["dimensions"]["ad_id_v2"] == r["metrics"]["ad_id_v2"] for r in ads)
    # every way of reading the account spends the same
    spends = {_spend(_rows(world, lvl, dim)) for lvl, dim in [(AD, "ad_id"), (AD, "ad_id_v2")]}
    spends |= {
        _spend(_rows(world, ADGROUP, "adgroup_id")),
        _spend(_rows(world, CAMPAIGN, "campaign_id")),
    }
    assert len(spends) == 1


def test_ad_id_v2_over_http_with_its_filter(server: SimulatorServer, world: World) -> None:
    smart = world.account(world.advertiser_ids[0]).smart_plus_ads[0]
    ids = json.dumps([smart.id])
    ad_filter = [{"field_name": "ad_ids_v2", "filter_type": "IN", "filter_value": ids}]
    status = [{"field_name": "ad_status", "filter_type": "IN", "filter_value": '["STATUS_ALL"]'}]
    metrics = json.dumps(["spend", "ad_id_v2"])
    for dimension, count in (("ad_id_v2", 1), ("ad_id", 3)):
        params = params_for(
            world,
            AD,
            dimensions=json.dumps([dimension]),
            metrics=metrics,
            filtering=json.dumps([*ad_filter, *status]),
            start_date=START,
            end_date=END,
        )
        params.pop("page_size")
        body = report(server, {**params, "query_lifetime": "true", "start_date": None})
        assert body["code"] == 0, body
        rows = body["data"]["list"]
        assert len(rows) == count and {r["metrics"]["ad_id_v2"] for r in rows} == {smart.id}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"dimensions": json.dumps(["ad_id", "ad_id_v2", "stat_time_day"])},
            "dimensions: ad_id and ad_id_v2 cannot be used together.",
        ),
        (
            {
                "dimensions": json.dumps(["ad_id_v2", "stat_time_day"]),
                "filtering": json.dumps(
                    [
                        {"field_name": "ad_ids", "filter_type": "IN", "filter_value": '["1"]'},
                        {"field_name": "ad_ids_v2", "filter_type": "IN", "filter_value": '["2"]'},
                    ]
                ),
            },
            "filtering: ad_ids and ad_ids_v2 cannot be used together.",
        ),
        (
            {"data_level": ADGROUP, "dimensions": json.dumps(["ad_id_v2", "stat_time_day"])},
            "dimensions: ['ad_id_v2'] cannot be used with data_level AUCTION_ADGROUP",
        ),
        (
            {
                "data_level": ADGROUP,
                "dimensions": json.dumps(["adgroup_id", "stat_time_day"]),
                "filtering": json.dumps(
                    [{"field_name": "ad_ids_v2", "filter_type": "IN", "filter_value": '["2"]'}]
                ),
            },
            "filtering: field_name ad_ids_v2 is invalid with data_level AUCTION_ADGROUP.",
        ),
    ],
)
def test_mixed_ad_ids_are_refused(server: SimulatorServer, world: World, overrides, message):
    body = report(server, params_for(world, AD, **overrides))
    assert body["code"] == 40002 and body["message"].startswith(message), body


# --------------------------------------------------------------------------- the ad lists
def _list(server: SimulatorServer, path: str, advertiser: str, **params) -> dict:
    query = {"advertiser_id": advertiser, **params}
    for name in ("filtering", "fields"):
        if name in query:
            query[name] = json.dumps(query[name])
    response = session.get(
        server.base_url + path, params=query, headers={"Access-Token": SIM_TOKEN}, timeout=10
    )
    assert response.status_code == 200
    return response.json()


def test_ad_get_lists_creatives_and_smart_plus_ad_get_the_ads(server, world) -> None:
    advertiser = world.advertiser_ids[0]
    account = world.account(advertiser)
    everything = {"primary_status": "STATUS_ALL"}
    body = _list(server, "ad/get/", advertiser, filtering=everything, page_size=1000)
    assert body["code"] == 0, body
    listed = {ad["ad_id"] for ad in body["data"]["list"]}
    creatives = {c.id for ad in account.smart_plus_ads for c in ad.ads}
    assert len(creatives) == 12 and creatives <= listed  # /ad/get/ without ad_ids_v2
    assert listed.isdisjoint(ad.id for ad in account.smart_plus_ads)
    # /smart_plus/ad/get/: the 4 ads, in pages of at most 100
    pages = [
        _list(server, "smart_plus/ad/get/", advertiser, filtering=everything, page=p, page_size=3)
        for p in (1, 2)
    ]
    assert [p["data"]["page_info"]["total_page"] for p in pages] == [2, 2]
    ads = [ad for p in pages for ad in p["data"]["list"]]
    assert sorted(ad["smart_plus_ad_id"] for ad in ads) == sorted(
        ad.id for ad in account.smart_plus_ads
    )
    assert all(len(ad["creative_list"]) == 3 and "ad_id" not in ad for ad in ads)
    one = account.smart_plus_ads[1]
    for filtering in ({"smart_plus_ad_ids": [one.id]}, {"adgroup_ids": [one.adgroup_id]}):
        body = _list(
            server, "smart_plus/ad/get/", advertiser, filtering={**everything, **filtering}
        )
        assert one.id in {ad["smart_plus_ad_id"] for ad in body["data"]["list"]}
        assert all(ad["adgroup_id"] == one.adgroup_id for ad in body["data"]["list"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filtering": {"ad_ids": ["1"]}}, "filtering: Unknown field(s): ['ad_ids']."),
        (
            {"filtering": {"campaign_system_origins": ["PROMOTE"]}},
            "filtering: Unknown field(s): ['campaign_system_origins'].",
        ),
        (
            {"page_size": 101},
            "page_size: Must be greater than or equal to 1 and less than or equal to 100.",
        ),
        ({"fields": ["ad_id"]}, "fields: Invalid fields: ['ad_id']."),
    ],
)
def test_smart_plus_ad_get_refuses_what_tiktok_does_not_take(server, world, params, message):
    body = _list(server, "smart_plus/ad/get/", world.advertiser_ids[0], **params)
    assert (body["code"], body["message"]) == (40002, message)
