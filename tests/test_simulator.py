"""The TikTok API simulator, exercised over real HTTP as a client would see it."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.fixtures.simulator import SIM_TOKEN
from tests.support.simulator_calls import (
    ID_DIM,
    INVALID_METRICS,
    STATUS_FIELD,
    all_pages,
    call,
    params_for,
    report,
    session,
    status_all,
)
from tiktok_simulator import METRICS, Kind, SimulatorServer, World, metrics_for_level
from tiktok_simulator.metrics import AD, ADGROUP, ADVERTISER, CAMPAIGN, LEVELS
from tiktok_simulator.report import served_rows

REPO = Path(__file__).resolve().parent.parent
RATE_LIMITED = (
    "Due to too many requests, requests from App [1234567890] are temporarily restricted."
)
THROTTLE = (
    "Number of ad ids is equal or more than 20k, only return the top 20k id's results, "
    "sorting by create time desc order."
)
REQUEST_ID = re.compile(r"\d{14}[0-9A-F]{18}")


# --------------------------------------------------------------------------- world
def test_world_has_deleted_objects_at_every_level(sim_world: World) -> None:
    for advertiser_id in sim_world.advertiser_ids:
        account = sim_world.account(advertiser_id)
        assert any(c.own_deleted for c in account.campaigns)
        live_campaigns = {c.id for c in account.campaigns if not c.deleted}
        live_adgroups = {g.id for g in account.adgroups if not g.deleted}
        assert any(g.own_deleted and g.campaign_id in live_campaigns for g in account.adgroups)
        assert any(a.own_deleted and a.adgroup_id in live_adgroups for a in account.ads)


def test_ids_are_long_digit_strings_that_a_float_would_corrupt(sim_world: World) -> None:
    ids = list(sim_world.advertiser_ids)
    for advertiser_id in sim_world.advertiser_ids:
        for level in (CAMPAIGN, ADGROUP, AD):
            ids += sim_world.ids(advertiser_id, level)
    assert len(ids) == len(set(ids))
    assert all(i.isdigit() and 16 <= len(i) <= 19 and int(i) > 2**53 for i in ids)
    assert all(len(a) == 19 for a in sim_world.advertiser_ids)
    assert sim_world.campaign_ids(sim_world.advertiser_ids[0])[0] == str(2**53 + 1)
    assert sum(int(float(i)) != int(i) for i in ids) > len(ids) // 2


def test_world_is_deterministic(sim_world: World) -> None:
    params = {k: v for k, v in sim_world.describe().items() if k != "advertiser_ids"}
    twin = World(**params)
    adv = sim_world.advertiser_ids[1]
    args = (adv, AD, "2026-03-01", "2026-03-30", ["ad_name", "spend", "clicks", "ctr"])
    assert served_rows(twin, *args) == served_rows(sim_world, *args)
    assert World(seed=1).advertiser_ids != World(seed=2).advertiser_ids


# --------------------------------------------------------------------------- envelope and auth
def test_success_envelope(simulator: SimulatorServer, sim_world: World) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    response = call(simulator, params_for(sim_world))
    body = response.json()
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert set(body) == {"code", "message", "request_id", "data"}
    assert (body["code"], body["message"]) == (0, "OK")
    assert REQUEST_ID.fullmatch(body["request_id"])
    stamp = datetime.strptime(body["request_id"][:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC)
    assert set(body["data"]) == {"page_info", "list"}
    again = call(simulator, params_for(sim_world)).json()
    assert again["request_id"] != body["request_id"]


@pytest.mark.parametrize(
    ("token", "code", "message"),
    [
        (
            None,
            40104,
            "Access token is null, you should set it in http header with key Access-Token.",
        ),
        ("", 40104, "Access token is null"),
        ("not-a-token", 40105, "Access token is invalid or incorrect."),
    ],
)
def test_token_errors(sim: SimulatorServer, sim_world: World, token, code, message) -> None:
    body = report(sim, params_for(sim_world), token=token)
    assert body["code"] == code
    assert body["message"].startswith(message)
    assert body["data"] == {}
    assert REQUEST_ID.fullmatch(body["request_id"])


def test_revoked_and_expired_tokens(sim: SimulatorServer, sim_world: World) -> None:
    sim.revoke_token(SIM_TOKEN)
    assert report(sim, params_for(sim_world))["code"] == 40105
    sim.configure(restore_token=SIM_TOKEN, expire_token=SIM_TOKEN)
    assert report(sim, params_for(sim_world))["code"] == 40102
    sim.configure(restore_token=SIM_TOKEN)
    assert report(sim, params_for(sim_world))["code"] == 0


def test_permission_per_advertiser(sim: SimulatorServer, sim_world: World) -> None:
    first, second = sim_world.advertiser_ids[:2]
    sim.configure(add_token={"token": "narrow", "advertiser_ids": [first]})
    assert report(sim, params_for(sim_world), token="narrow")["code"] == 0
    body = report(sim, params_for(sim_world, advertiser=1), token="narrow")
    assert body["code"] == 40001
    assert body["message"] == f"No permission to operate advertiser {second}."
    assert body["data"] == {}
    sim.remove_permission(first)
    assert report(sim, params_for(sim_world))["code"] == 40001
    unknown = report(sim, params_for(sim_world, advertiser_id="7999999999999999999"))
    assert unknown["code"] == 40001


def test_wrong_path_and_method_are_plain_http_errors(simulator: SimulatorServer) -> None:
    url = simulator.base_url + "report/integrated/get"
    response = session.get(url, headers={"Access-Token": SIM_TOKEN}, timeout=5)
    assert (response.status_code, response.text) == (404, "404 page not found")
    response = session.post(url + "/", headers={"Access-Token": SIM_TOKEN}, timeout=5)
    assert response.status_code == 405
    with pytest.raises(ValueError):
        response.json()
    assert session.get(simulator.base_url + "campaign/nope/", timeout=5).status_code == 404


def test_any_host_header_is_served(simulator: SimulatorServer, sim_world: World) -> None:
    headers = {"Access-Token": SIM_TOKEN, "Host": "sandbox-ads.tiktok.com"}
    response = session.get(
        simulator.base_url + "report/integrated/get/",
        params=params_for(sim_world),
        headers=headers,
        timeout=5,
    )
    assert response.json()["code"] == 0


# --------------------------------------------------------------------------- validation
def _many_metrics(n: int) -> str:
    return json.dumps(metrics_for_level(AD)[:n])


def _filter(field: str, value: str, filter_type: str = "IN") -> str:
    return json.dumps([{"field_name": field, "filter_type": filter_type, "filter_value": value}])


VALIDATION_CASES: list[tuple[str, dict, str]] = [
    ("no report_type", {"report_type": None}, "report_type: Missing data for required field."),
    ("bad report_type", {"report_type": "FOO"}, "report_type: Must be one of:"),
    (
        "audience without a breakdown",
        {"report_type": "AUDIENCE"},
        "dimensions: an AUDIENCE report needs at least one audience dimension",
    ),
    ("playable", {"report_type": "PLAYABLE_MATERIAL"}, "not supported by simulator"),
    ("bad service_type", {"service_type": "BIDDING"}, "service_type: Must be one of:"),
    ("no advertiser", {"advertiser_id": None}, "advertiser_id: Missing data for required field."),
    ("no data_level", {"data_level": None}, "data_level: Missing data for required field."),
    ("bad data_level", {"data_level": "AD"}, "data_level: Must be one of:"),
    ("no dimensions", {"dimensions": None}, "dimensions: Missing data for required field."),
    ("dimensions not JSON", {"dimensions": "ad_id,stat_time_day"}, "dimensions: Not a valid JSON"),
    ("dimensions object", {"dimensions": '{"ad_id": 1}'}, "dimensions: Not a valid list"),
    ("wrong id dim", {"dimensions": '["campaign_id","stat_time_day"]'}, "['campaign_id']"),
    ("parent id dim", {"dimensions": '["ad_id","campaign_id"]'}, "request parent ids as metrics"),
    ("adgroup id dim", {"dimensions": '["adgroup_id","ad_id"]'}, "['adgroup_id']"),
    ("no id dim", {"dimensions": '["stat_time_day"]'}, "ad_id is required"),
    ("two time dims", {"dimensions": '["ad_id","stat_time_day","stat_time_hour"]'}, "together"),
    ("unknown dim", {"dimensions": '["ad_id","colour"]'}, "Invalid dimension fields: ['colour']"),
    ("duplicate dim", {"dimensions": '["ad_id","ad_id"]'}, "Duplicate dimensions"),
    ("no start", {"start_date": None}, "start_date: Missing data for required field."),
    ("no end", {"end_date": None}, "end_date: Missing data for required field."),
    ("slashes", {"start_date": "2025/01/01"}, "start_date: Not a valid date"),
    ("not a day", {"end_date": "2025-02-30"}, "end_date: Not a valid date"),
    ("datetime", {"start_date": "2025-01-01 00:00:00"}, "start_date: Not a valid date"),
    ("reversed", {"start_date": "2025-02-01"}, "end_date: Must be later than or equal"),
    ("31 days", {"end_date": "2025-01-31"}, "within 30 day(s) with stat_time_day"),
    (
        "2 hourly days",
        {"dimensions": '["ad_id","stat_time_hour"]', "end_date": "2025-01-02"},
        "within 1 day(s) with stat_time_hour",
    ),
    (
        "366 days",
        {"dimensions": '["ad_id"]', "end_date": "2026-01-01"},
        "within 365 day(s) without a time dimension",
    ),
    ("lifetime + day", {"query_lifetime": "true"}, "cannot be used with query_lifetime=true"),
    ("bad boolean", {"query_lifetime": "yes"}, "query_lifetime: Not a valid boolean."),
    ("page 0", {"page": "0"}, "page: Must be greater than or equal to 1."),
    ("page text", {"page": "two"}, "page: Not a valid integer."),
    ("page_size 0", {"page_size": "0"}, "page_size: Must be greater than or equal to 1 and less"),
    ("page_size 1001", {"page_size": "1001"}, "less than or equal to 1000."),
    ("page_size float", {"page_size": "10.0"}, "page_size: Not a valid integer."),
    ("metrics not JSON", {"metrics": "spend,impressions"}, "metrics: Not a valid JSON"),
    ("metrics numbers", {"metrics": "[1, 2]"}, "metrics: Not a valid list of strings."),
    ("duplicate metric", {"metrics": '["spend","clicks","spend"]'}, "Duplicate metric fields"),
    ("101 metrics", {"metrics": _many_metrics(101)}, "metrics: Longer than maximum length 100."),
    ("filtering not JSON", {"filtering": "ad_status=STATUS_ALL"}, "filtering: Not a valid JSON"),
    (
        "filtering object",
        {"filtering": '{"ad_status": "STATUS_ALL"}'},
        "filtering: Not a valid list.",
    ),
    (
        "filter without value",
        {"filtering": '[{"field_name": "ad_status", "filter_type": "IN"}]'},
        "filter_value: Missing data for required field.",
    ),
    (
        "filter value as list",
        {
            "filtering": json.dumps(
                [{"field_name": "ad_status", "filter_type": "IN", "filter_value": ["STATUS_ALL"]}]
            )
        },
        "filter_value: Not a valid string",
    ),
    (
        "filter value not array",
        {"filtering": _filter("ad_status", "STATUS_ALL")},
        "JSON array string",
    ),
    (
        "bad filter_type",
        {"filtering": _filter("ad_status", '["STATUS_ALL"]', "EQUALS")},
        "filter_type",
    ),
    (
        "unknown filter field",
        {"filtering": _filter("status", '["STATUS_ALL"]')},
        "Invalid field_name",
    ),
    (
        "campaign_status at ad level",
        {"filtering": _filter("campaign_status", '["STATUS_ALL"]')},
        "campaign_status is invalid with data_level AUCTION_AD (use ad_status)",
    ),
    (
        "bad status value",
        {"filtering": _filter("ad_status", '["ALL"]')},
        "ad_status: Must be one of",
    ),
    (
        "101 ids",
        {"filtering": _filter("campaign_ids", json.dumps([str(10**17 + i) for i in range(101)]))},
        "At most 100 ids",
    ),
    ("numeric ids", {"filtering": _filter("ad_ids", "[1800000000000000001]")}, "digit strings"),
    (
        "multi advertiser > 5",
        {"advertiser_ids": json.dumps(["1"] * 6)},
        "Longer than maximum length 5",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [c[1:] for c in VALIDATION_CASES],
    ids=[c[0] for c in VALIDATION_CASES],
)
def test_parameter_errors(api: SimulatorServer, sim_world: World, overrides, message) -> None:
    body = report(api, params_for(sim_world, **overrides))
    assert body["code"] == 40002, body
    assert message in body["message"]
    assert body["data"] == {}


@pytest.mark.parametrize(
    ("level", "metrics", "invalid"),
    [
        (AD, ["spend", "not_a_metric"], ["not_a_metric"]),
        (AD, ["placement"], ["placement"]),
        (ADVERTISER, ["campaign_name", "spend", "ad_name"], ["campaign_name", "ad_name"]),
        (
            CAMPAIGN,
            ["campaign_name", "campaign_id", "adgroup_name"],
            ["campaign_id", "adgroup_name"],
        ),
        (ADGROUP, ["campaign_id", "adgroup_id", "ad_name", "is_aco"], ["adgroup_id", "ad_name"]),
        (AD, ["adgroup_id", "is_aco", "ad_text"], ["is_aco"]),
        (CAMPAIGN, ["voucher_spend", "cash_spend"], ["voucher_spend", "cash_spend"]),
        (AD, ["timezone"], ["timezone"]),
    ],
)
def test_invalid_metric_fields(
    api: SimulatorServer, sim_world: World, level, metrics, invalid
) -> None:
    body = report(api, params_for(sim_world, level, metrics=json.dumps(metrics)))
    assert body["code"] == 40002
    assert body["message"] == f"{INVALID_METRICS}Invalid metric fields: {invalid!r}."


@pytest.mark.parametrize("dimensions", ['["advertiser_id", "stat_time_hour"]', '["advertiser_id"]'])
def test_cash_spend_only_daily_at_advertiser_level(
    api: SimulatorServer, sim_world: World, dimensions: str
) -> None:
    ok = report(api, params_for(sim_world, ADVERTISER, metrics='["cash_spend", "voucher_spend"]'))
    assert ok["code"] == 0
    body = report(
        api,
        params_for(
            sim_world,
            ADVERTISER,
            metrics='["cash_spend"]',
            dimensions=dimensions,
            end_date="2025-01-01",
        ),
    )
    assert body["message"] == f"{INVALID_METRICS}Invalid metric fields: ['cash_spend']."


@pytest.mark.parametrize("level", LEVELS)
def test_status_filter_must_match_level(api: SimulatorServer, sim_world: World, level: str) -> None:
    for other in STATUS_FIELD.values():
        body = report(api, params_for(sim_world, level, filtering=_filter(other, '["STATUS_ALL"]')))
        expected_ok = STATUS_FIELD.get(level) == other
        assert (body["code"] == 0) is expected_ok, (level, other, body["message"])
        if not expected_ok:
            assert other in body["message"]


def test_valid_edge_requests(api: SimulatorServer, sim_world: World) -> None:
    spaced = params_for(
        sim_world, dimensions='[ "ad_id" , "stat_time_day" ]', metrics='[ "spend" ]'
    )
    cases = [
        spaced,
        params_for(sim_world, metrics=_many_metrics(100)),
        params_for(sim_world, metrics=None, page_size=None, page=None, service_type=None),
        params_for(sim_world, dimensions='["ad_id"]', end_date="2025-12-31"),
        params_for(sim_world, dimensions='["ad_id", "stat_time_hour"]', end_date="2025-01-01"),
        params_for(sim_world, dimensions='["ad_id"]', query_lifetime="true", start_date=None),
        params_for(sim_world, unknown_param="whatever", filters='{"ignored": true}'),
        params_for(sim_world, metrics="[]"),
    ]
    for params in cases:
        body = report(api, params)
        assert body["code"] == 0, (params, body["message"])
    default = report(api, params_for(sim_world, metrics=None, page_size=None))["data"]
    assert default["page_info"]["page_size"] == 10 and default["page_info"]["page"] == 1
    assert set(default["list"][0]["metrics"]) == {"spend", "impressions"}


def test_every_registered_metric_is_accepted_somewhere(
    api: SimulatorServer, sim_world: World
) -> None:
    for level in LEVELS:
        names = metrics_for_level(level)
        for start in range(0, len(names), 100):
            chunk = names[start : start + 100]
            body = report(api, params_for(sim_world, level, metrics=json.dumps(chunk)))
            assert body["code"] == 0, body["message"]
            row = body["data"]["list"][0]["metrics"]
            assert list(row) == chunk
            assert all(isinstance(v, str) for v in row.values())


def test_every_catalog_metric_is_accepted_at_its_level(
    api: SimulatorServer, sim_world: World
) -> None:
    catalog = pytest.importorskip("controller.reports.catalog")
    for spec in catalog.REPORTS.values():
        groups = spec.metric_groups()  # more than 100 metrics: several requests per level
        assert [m for group in groups for m in group] == spec.metric_names
        for group in groups:
            params = params_for(
                sim_world,
                spec.data_level,
                dimensions=json.dumps(list(spec.dimensions)),
                metrics=json.dumps(group),
            )
            if spec.filtering() is not None:
                params["filtering"] = json.dumps(spec.filtering())
            body = report(api, params)
            assert body["code"] == 0, (spec.data_level, body["message"])
            assert list(body["data"]["list"][0]["metrics"]) == group


def test_registry_follows_reference_patterns() -> None:
    for name in (
        "cost_per_total_day7_retention",
        "total_purchase_roas_day6",
        "value_per_checkout",
        "total_checkout_value",
        "value_per_total_view_content",
        "cost_per_total_app_event_add_to_cart",
        "unique_custom_app_events",
        "skan_cost_per_app_install",
        "paid_engaged_view_15s",
        "total_complete_payment_rate",
        "onsite_shopping_roas",
        "cost_per_vta_purchase",
    ):
        assert name in METRICS, name
    assert "value_per_total_checkout" not in METRICS
    assert METRICS["total_complete_payment_rate"].kind is Kind.MONEY
    assert METRICS["ctr"].kind is Kind.RATE and METRICS["clicks"].kind is Kind.COUNT
    assert METRICS["frequency"].kind is Kind.AVERAGE
    assert METRICS["campaign_id"].levels == frozenset({ADGROUP, AD})


# --------------------------------------------------------------------------- data
def test_rows_match_ground_truth_across_pages(api: SimulatorServer, sim_world: World) -> None:
    metrics = ["campaign_id", "adgroup_id", "ad_name", "spend", "impressions", "ctr", "cpc"]
    params = params_for(sim_world, metrics=json.dumps(metrics), filtering=status_all(AD))
    rows, infos = all_pages(api, params, page_size=7)
    truth = served_rows(
        sim_world, sim_world.advertiser_ids[0], AD, "2025-01-01", "2025-01-30", metrics
    )
    assert rows == truth
    total = len(truth)
    assert all(
        i["total_number"] == total and i["total_page"] == math.ceil(total / 7) for i in infos
    )
    keys = [(r["dimensions"]["ad_id"], r["dimensions"]["stat_time_day"]) for r in rows]
    assert keys == sorted(keys, key=lambda k: (int(k[0]), k[1])) and len(set(keys)) == len(keys)


def test_paging_edges(api: SimulatorServer, sim_world: World) -> None:
    params = params_for(sim_world, CAMPAIGN)
    everything = report(api, {**params, "page_size": "1000"})["data"]
    total = everything["page_info"]["total_number"]
    assert everything["page_info"] == {
        "page": 1,
        "page_size": 1000,
        "total_number": total,
        "total_page": 1,
    }
    one = report(api, {**params, "page_size": "1", "page": "3"})["data"]
    assert one["page_info"]["total_page"] == total and one["list"] == everything["list"][2:3]
    past = report(api, {**params, "page_size": "10", "page": "999"})["data"]
    assert past["list"] == [] and past["page_info"]["total_number"] == total
    empty = report(api, params_for(sim_world, start_date="2024-01-01", end_date="2024-01-30"))[
        "data"
    ]
    assert empty == {
        "page_info": {"page": 1, "page_size": 1000, "total_number": 0, "total_page": 0},
        "list": [],
    }


@pytest.mark.parametrize("level", [CAMPAIGN, ADGROUP, AD])
def test_deleted_objects_hidden_unless_status_all(
    api: SimulatorServer, sim_world: World, level: str
) -> None:
    advertiser_id = sim_world.advertiser_ids[0]
    params = params_for(
        sim_world, level, dimensions=json.dumps([ID_DIM[level]]), end_date="2025-12-31"
    )
    default = {r["dimensions"][ID_DIM[level]] for r in report(api, params)["data"]["list"]}
    with_all = {
        r["dimensions"][ID_DIM[level]]
        for r in report(api, {**params, "filtering": status_all(level)})["data"]["list"]
    }
    deleted = set(sim_world.deleted_ids(advertiser_id, level))
    assert deleted and deleted <= with_all
    assert not deleted & default
    assert default == with_all - deleted
    not_deleted = report(
        api, {**params, "filtering": _filter(STATUS_FIELD[level], '["STATUS_NOT_DELETE"]')}
    )
    assert {r["dimensions"][ID_DIM[level]] for r in not_deleted["data"]["list"]} == default


def test_ads_of_a_deleted_campaign_are_hidden(api: SimulatorServer, sim_world: World) -> None:
    account = sim_world.account(sim_world.advertiser_ids[0])
    deleted_campaign = next(c for c in account.campaigns if c.own_deleted)
    live_ads_below = [
        a.id for a in account.ads if a.campaign_id == deleted_campaign.id and not a.own_deleted
    ]
    params = params_for(
        sim_world, dimensions='["ad_id"]', end_date="2025-12-31", metrics='["campaign_id"]'
    )
    shown = {r["dimensions"]["ad_id"] for r in report(api, params)["data"]["list"]}
    assert live_ads_below and not shown & set(live_ads_below)
    shown_all = report(api, {**params, "filtering": status_all(AD)})["data"]["list"]
    assert set(live_ads_below) <= {r["dimensions"]["ad_id"] for r in shown_all}


def _sum_spend(rows: list, by: str | None = None) -> dict:
    totals: dict = defaultdict(int)
    for row in rows:
        cents = int(row["metrics"]["spend"].replace(".", ""))
        totals[row["dimensions"].get(by) if by else None] += cents
    return dict(totals)


def test_spend_adds_up_across_levels(api: SimulatorServer, sim_world: World) -> None:
    by_level = {}
    for level in LEVELS:
        params = params_for(sim_world, level, advertiser=1)
        if level != ADVERTISER:
            params["filtering"] = status_all(level)
        rows, _ = all_pages(api, params, 1000)
        by_level[level] = _sum_spend(rows, "stat_time_day")
    assert by_level[ADVERTISER] == by_level[CAMPAIGN] == by_level[ADGROUP] == by_level[AD]
    assert len(by_level[ADVERTISER]) == 30


def test_no_delivery_days_are_omitted(api: SimulatorServer, sim_world: World) -> None:
    advertiser_id = sim_world.advertiser_ids[0]
    params = params_for(sim_world, filtering=status_all(AD), metrics='["impressions", "spend"]')
    rows = report(api, params)["data"]["list"]
    ads = sim_world.ad_ids(advertiser_id)
    assert 0 < len(rows) < len(ads) * 30
    assert all(int(r["metrics"]["impressions"]) > 0 for r in rows)
    served = {(r["dimensions"]["ad_id"], r["dimensions"]["stat_time_day"][:10]) for r in rows}
    start = date(2025, 1, 1)
    for ad_id in ads:
        ad = sim_world.entity(advertiser_id, AD, ad_id)
        for offset in range(30):
            day = start + timedelta(days=offset)
            delivered = sim_world.day_hash(ad, day.toordinal()) is not None
            assert ((ad_id, day.isoformat()) in served) is delivered


def test_value_formats(api: SimulatorServer, sim_world: World) -> None:
    metrics = [
        "campaign_name",
        "adgroup_name",
        "ad_name",
        "campaign_id",
        "spend",
        "impressions",
        "clicks",
        "ctr",
        "cpm",
        "frequency",
        "conversion",
        "cost_per_conversion",
        "secondary_goal_result",
        "cost_per_secondary_goal_result",
        "secondary_goal_result_rate",
    ]
    rows = []
    for advertiser in range(3):
        params = params_for(sim_world, advertiser=advertiser, metrics=json.dumps(metrics))
        rows += report(api, {**params, "filtering": status_all(AD)})["data"]["list"]
    two_decimals = re.compile(r"\d+\.\d\d")
    for row in rows:
        m = row["metrics"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d 00:00:00", row["dimensions"]["stat_time_day"])
        assert all(isinstance(v, str) for v in [*m.values(), *row["dimensions"].values()])
        assert m["impressions"].isdigit() and m["clicks"].isdigit() and m["conversion"].isdigit()
        assert all(two_decimals.fullmatch(m[k]) for k in ("spend", "ctr", "cpm", "frequency"))
        assert m["secondary_goal_result"] == m["cost_per_secondary_goal_result"] == "-"
        assert m["secondary_goal_result_rate"] == "-"
        if m["conversion"] == "0":
            assert m["cost_per_conversion"] == "-"
        else:
            assert two_decimals.fullmatch(m["cost_per_conversion"])
    assert any(r["metrics"]["cost_per_conversion"] == "-" for r in rows)
    names = "".join(r["metrics"]["campaign_name"] + r["metrics"]["ad_name"] for r in rows)
    assert "," in names and '"' in names and not names.isascii()


def test_hourly_rows_add_up_to_the_day(api: SimulatorServer, sim_world: World) -> None:
    day = {"start_date": "2025-03-03", "end_date": "2025-03-03", "filtering": status_all(AD)}
    metrics = '["spend", "impressions", "clicks"]'
    daily = report(api, params_for(sim_world, metrics=metrics, **day))["data"]["list"]
    hourly = report(
        api, params_for(sim_world, metrics=metrics, dimensions='["ad_id", "stat_time_hour"]', **day)
    )["data"]["list"]
    assert len(hourly) > len(daily) > 0
    assert all(
        re.fullmatch(r"2025-03-03 \d\d:00:00", r["dimensions"]["stat_time_hour"]) for r in hourly
    )
    sums: dict = defaultdict(lambda: defaultdict(int))
    for row in hourly:
        for name in ("spend", "impressions", "clicks"):
            sums[row["dimensions"]["ad_id"]][name] += int(row["metrics"][name].replace(".", ""))
    for row in daily:
        expected = {k: int(v.replace(".", "")) for k, v in row["metrics"].items()}
        assert dict(sums[row["dimensions"]["ad_id"]]) == expected


def test_id_filters(api: SimulatorServer, sim_world: World) -> None:
    advertiser_id = sim_world.advertiser_ids[0]
    account = sim_world.account(advertiser_id)
    campaign = next(c for c in account.campaigns if not c.deleted)
    params = params_for(
        sim_world,
        metrics='["campaign_id"]',
        filtering=_filter("campaign_ids", json.dumps([campaign.id])),
    )
    rows = report(api, params)["data"]["list"]
    assert rows and {r["metrics"]["campaign_id"] for r in rows} == {campaign.id}
    bad = report(api, params_for(sim_world, CAMPAIGN, filtering=_filter("ad_ids", '["1"]')))
    assert bad["code"] == 40002


def test_total_metrics_and_ordering(api: SimulatorServer, sim_world: World) -> None:
    params = params_for(sim_world, CAMPAIGN, metrics='["campaign_name", "spend"]')
    body = report(api, {**params, "enable_total_metrics": "true"})["data"]
    assert body["total_metrics"]["campaign_name"] == "-"
    assert int(body["total_metrics"]["spend"].replace(".", "")) == sum(
        _sum_spend(body["list"]).values()
    )
    ordered = report(api, {**params, "order_field": "spend", "order_type": "ASC"})["data"]["list"]
    spends = [float(r["metrics"]["spend"]) for r in ordered]
    assert spends == sorted(spends)
    assert report(api, {**params, "order_field": "campaign_name"})["code"] == 40002


def test_multi_advertiser_report(api: SimulatorServer, sim_world: World) -> None:
    ids = list(sim_world.advertiser_ids[:2])
    params = params_for(sim_world, ADVERTISER, advertiser_id=None, advertiser_ids=json.dumps(ids))
    rows = report(api, params)["data"]["list"]
    assert {r["dimensions"]["advertiser_id"] for r in rows} == set(ids)
    assert {"advertiser_id", "currency", "timezone"} <= set(rows[0]["metrics"])


def test_advertiser_info(api: SimulatorServer, sim_world: World) -> None:
    url = api.base_url + "advertiser/info/"
    headers = {"Access-Token": SIM_TOKEN}
    ids = list(sim_world.advertiser_ids)
    body = session.get(url, params={"advertiser_ids": json.dumps(ids)}, headers=headers).json()
    assert body["code"] == 0
    assert [a["advertiser_id"] for a in body["data"]["list"]] == ids
    # By default every field but company_name_editable (docs/tiktok_api_beyond.md §7.2).
    assert {"advertiser_id", "name", "currency", "timezone", "status", "create_time"} <= set(
        body["data"]["list"][0]
    )
    assert "company_name_editable" not in body["data"]["list"][0]
    missing = session.get(url, headers=headers).json()
    assert missing["code"] == 40002
    api.remove_permission(ids[2])
    denied = session.get(url, params={"advertiser_ids": json.dumps(ids)}, headers=headers).json()
    assert denied["code"] == 40001 and ids[2] in denied["message"]


# --------------------------------------------------------------------------- rate limits
def test_app_qps_limit(sim: SimulatorServer, sim_world: World) -> None:
    sim.configure(qps=3, qpm=600)
    codes = [report(sim, params_for(sim_world))["code"] for _ in range(3)]
    assert codes == [0, 0, 0]
    limited = report(sim, params_for(sim_world))
    assert limited["code"] == 40100
    assert limited["message"] == RATE_LIMITED
    assert limited["data"] == {}
    time.sleep(1.05)
    assert report(sim, params_for(sim_world))["code"] == 0
    stats = sim.stats()
    assert stats["codes"]["40100"] == stats["rate_limited"] == 1
    assert len(stats["accepted_timestamps"]) == 4


def test_app_limit_is_shared_by_tokens_and_not_hit_below_it(
    sim: SimulatorServer, sim_world: World
) -> None:
    sim.configure(qps=4, add_token={"token": "other", "advertiser_ids": "*"})
    for _ in range(2):
        assert report(sim, params_for(sim_world))["code"] == 0
        assert report(sim, params_for(sim_world), token="other")["code"] == 0
    assert report(sim, params_for(sim_world), token="other")["code"] == 40100


def test_app_qpm_limit(sim: SimulatorServer, sim_world: World) -> None:
    sim.configure(qps=100, qpm=5)
    codes = [report(sim, params_for(sim_world))["code"] for _ in range(6)]
    assert codes == [0, 0, 0, 0, 0, 40100]


def test_rate_limit_can_be_switched_off(sim: SimulatorServer, sim_world: World) -> None:
    sim.configure(rate_limit=False)
    assert {report(sim, params_for(sim_world))["code"] for _ in range(15)} == {0}


def test_advertiser_limit(sim: SimulatorServer, sim_world: World) -> None:
    sim.configure(advertiser_qps=2, rate_limit=False)
    codes = [report(sim, params_for(sim_world))["code"] for _ in range(3)]
    assert codes == [0, 0, 40133]
    limited = report(sim, params_for(sim_world))
    assert limited["message"].startswith(f"Advertiser ({sim_world.advertiser_ids[0]})'s QPS (")
    assert "reaches QPS limit 2 for current path" in limited["message"]
    assert report(sim, params_for(sim_world, advertiser=1))["code"] == 0


# --------------------------------------------------------------------------- latency and faults
def test_latency_delays_the_answer(sim: SimulatorServer, sim_world: World) -> None:
    sim.configure(latency=0.4)
    started = time.monotonic()
    assert report(sim, params_for(sim_world))["code"] == 0
    assert time.monotonic() - started >= 0.4  # a lower bound: no machine answers sooner


def test_a_waiting_request_does_not_block_other_connections(
    sim: SimulatorServer, sim_world: World
) -> None:
    """One request held in flight (not slept: a hold lasts until released, whatever the
    machine's speed) while seven others are answered on their own connections."""
    sim.configure(rate_limit=False)
    held = sim.hold({"data_level": AD, "start_date": "2025-01-01"})
    assert held["waiting"] == 0 and held["match"]["data_level"] == AD
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_patient_report, sim, params_for(sim_world))
        _wait_for(lambda: sim.holds()["waiting"] == 1)
        others = [report(sim, params_for(sim_world))["code"] for _ in range(7)]
        assert others == [0] * 7  # count=1: only the first matching request is held
        assert not waiting.done() and sim.holds() | {"match": None} == {
            "match": None,
            "count": 1,
            "held": 1,
            "waiting": 1,
        }
        sim.release()
        assert waiting.result(timeout=10)["code"] == 0
    assert sim.holds() == {"match": None, "count": 0, "held": 1, "waiting": 0}
    assert sim.stats()["max_in_flight"] >= 2


def test_holds_match_parameters_and_a_reset_releases_them(
    sim: SimulatorServer, sim_world: World
) -> None:
    sim.configure(rate_limit=False)
    sim.hold({"data_level": CAMPAIGN}, count=2)
    assert report(sim, params_for(sim_world, level=AD))["code"] == 0  # not matched: not held
    with ThreadPoolExecutor(2) as pool:
        waiting = [
            pool.submit(_patient_report, sim, params_for(sim_world, level=CAMPAIGN))
            for _ in range(2)
        ]
        _wait_for(lambda: sim.holds()["waiting"] == 2)
        sim.reset()
        assert [w.result(timeout=10)["code"] for w in waiting] == [0, 0]
    for plan in ({}, {"match": {}}, {"match": {"a": 1}, "count": 0}, {"match": {"a": 1}, "x": 1}):
        with pytest.raises(ValueError):
            sim.app.holds.set_plan(plan)


def _patient_report(server: SimulatorServer, params: dict) -> dict:
    """A report call on its own connection that outwaits any hold a test keeps."""
    headers = {"Access-Token": SIM_TOKEN}
    url = server.base_url + "report/integrated/get/"
    return requests.get(url, params=params, headers=headers, timeout=120).json()


def _wait_for(condition, timeout: float = 30.0) -> None:
    """Poll a condition (not a duration): the timeout only bounds a failing test."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("40100", 40100),
        ("40133", 40133),
        ("50000", 50000),
        ("50002", 50002),
        ("51010", 51010),
        ("40001", 40001),
        ("40105", 40105),
    ],
)
def test_api_code_faults(sim: SimulatorServer, sim_world: World, kind: str, code: int) -> None:
    sim.set_faults({"mode": "queue", "queue": [kind]})
    body = report(sim, params_for(sim_world))
    assert body["code"] == code and body["data"] == {}
    assert body["message"]
    if code == 40100:
        assert body["message"] == RATE_LIMITED
    if code == 50000:
        assert body["message"] == "System error."
    assert report(sim, params_for(sim_world))["code"] == 0  # the queue is used up
    assert sim.stats()["faults"] == {kind: 1}


def test_http_error_faults(sim: SimulatorServer, sim_world: World) -> None:
    sim.set_faults({"queue": ["503_html", "504"]})
    html = call(sim, params_for(sim_world))
    assert html.status_code == 503 and html.headers["Content-Type"].startswith("text/html")
    assert "<html>" in html.text
    text = call(sim, params_for(sim_world))
    assert text.status_code == 504 and text.headers["Content-Type"].startswith("text/plain")
    with pytest.raises(ValueError):
        text.json()


def test_connection_faults(sim: SimulatorServer, sim_world: World) -> None:
    sim.set_faults({"queue": ["reset", "truncated"]})
    with pytest.raises(requests.ConnectionError):
        requests.get(
            sim.base_url + "report/integrated/get/",
            params=params_for(sim_world),
            headers={"Access-Token": SIM_TOKEN},
            timeout=5,
        )
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(
            sim.base_url + "report/integrated/get/",
            params=params_for(sim_world),
            headers={"Access-Token": SIM_TOKEN},
            timeout=5,
        )
    assert report(sim, params_for(sim_world))["code"] == 0
    assert sim.stats()["faults"] == {"reset": 1, "truncated": 1}


def test_slow_fault(sim: SimulatorServer, sim_world: World) -> None:
    sim.set_faults({"queue": ["slow", "slow"], "slow_seconds": 0.6})
    started = time.monotonic()
    assert report(sim, params_for(sim_world))["code"] == 0
    assert time.monotonic() - started >= 0.6
    with pytest.raises(requests.ReadTimeout):
        requests.get(
            sim.base_url + "report/integrated/get/",
            params=params_for(sim_world),
            headers={"Access-Token": SIM_TOKEN},
            timeout=0.2,
        )


def test_random_faults_are_seeded_and_can_target_one_advertiser(
    sim: SimulatorServer, sim_world: World
) -> None:
    sim.configure(rate_limit=False)

    def draw() -> list[int]:
        sim.set_faults(
            {
                "mode": "random",
                "probability": 0.5,
                "kinds": ["50000"],
                "seed": 7,
                "advertiser_id": sim_world.advertiser_ids[1],
            }
        )
        return [report(sim, params_for(sim_world, advertiser=1))["code"] for _ in range(12)]

    first = draw()
    assert first == draw()
    assert set(first) == {0, 50000}
    assert {report(sim, params_for(sim_world))["code"] for _ in range(5)} == {0}


def test_bad_fault_plans_are_rejected(sim: SimulatorServer) -> None:
    for plan in ({"queue": ["boom"]}, {"mode": "random", "kinds": []}, {"mode": "x"}, {"nope": 1}):
        with pytest.raises(ValueError):
            sim.set_faults(plan)


def test_throttle_header(sim: SimulatorServer, sim_world: World) -> None:
    sim.configure(throttle_threshold=5, rate_limit=False)
    advertiser_id = sim_world.advertiser_ids[0]
    params = params_for(
        sim_world, dimensions='["ad_id"]', end_date="2025-12-31", filtering=status_all(AD)
    )
    response = call(sim, params)
    assert response.headers["X-Tt-Ads-Throttle"] == THROTTLE
    served = [r["dimensions"]["ad_id"] for r in response.json()["data"]["list"]]
    assert served == sim_world.ad_ids(advertiser_id)[-5:]  # the 5 most recently created ads
    assert served == [
        r["dimensions"]["ad_id"]
        for r in sim.truth(advertiser_id, AD, "2025-01-01", "2025-12-31", dimensions=["ad_id"])
    ]
    campaign = call(sim, params_for(sim_world, CAMPAIGN))
    assert "X-Tt-Ads-Throttle" not in campaign.headers
    first = sim_world.campaign_ids(advertiser_id)[0]
    filters = [
        *json.loads(status_all(AD)),
        *json.loads(_filter("campaign_ids", json.dumps([first]))),
    ]
    narrowed = call(sim, {**params, "filtering": json.dumps(filters)})  # 4 ads: under the cap
    assert narrowed.json()["data"]["list"]
    assert "X-Tt-Ads-Throttle" not in narrowed.headers
    sim.reset()
    assert "X-Tt-Ads-Throttle" not in call(sim, params).headers


# --------------------------------------------------------------------------- stats and control
def test_stats_log_without_token(sim: SimulatorServer, sim_world: World) -> None:
    report(sim, {**params_for(sim_world), "access_token": "leak"})
    report(sim, params_for(sim_world, page_size="0"))
    stats = sim.stats()
    assert stats["requests"] == 2 and stats["codes"] == {"0": 1, "40002": 1}
    assert stats["by_path"] == {"/open_api/v1.3/report/integrated/get/": 2}
    first = stats["log"][0]
    assert "access_token" not in first["params"] and "leak" not in json.dumps(stats)
    assert first["params"]["data_level"] == AD and first["code"] == 0 and first["rows"] > 0
    assert sum(n for _, n in stats["accepted_per_second"]) == 2
    sim.reset()
    assert sim.stats()["requests"] == 0


def test_control_endpoints(sim: SimulatorServer, sim_world: World) -> None:
    root = sim.url + "/_sim/"
    assert session.post(root + "config", json={"qps": 2, "latency": 0}).json()["qps"] == 2
    assert session.post(root + "config", json={"qps": 0}).status_code == 400
    assert session.post(root + "config", json={"colour": 1}).status_code == 400
    assert session.post(root + "faults", json={"queue": ["50000"]}).json()["queue"] == ["50000"]
    assert session.post(root + "faults", json={"queue": ["nope"]}).status_code == 400
    assert report(sim, params_for(sim_world))["code"] == 50000
    stats = session.get(root + "stats").json()
    assert stats["codes"] == {"50000": 1} and len(stats["log"]) == 1
    assert "log" not in session.get(root + "stats", params={"log": "false"}).json()
    session.post(root + "config", json={"revoke_token": SIM_TOKEN})
    assert report(sim, params_for(sim_world))["code"] == 40105
    session.post(
        root + "config",
        json={"restore_token": SIM_TOKEN, "remove_permission": sim_world.advertiser_ids[0]},
    )
    assert report(sim, params_for(sim_world))["code"] == 40001
    assert session.post(root + "reset").json() == {"reset": True}
    assert report(sim, params_for(sim_world))["code"] == 0
    assert session.get(root + "config").json()["qps"] == 10
    world = session.get(root + "world").json()
    assert world["advertiser_ids"] == list(sim_world.advertiser_ids)
    truth = session.get(
        root + "truth",
        params={
            "advertiser_id": sim_world.advertiser_ids[2],
            "data_level": ADGROUP,
            "start_date": "2025-06-01",
            "end_date": "2025-06-30",
            "metrics": '["adgroup_name", "spend"]',
        },
    ).json()
    expected = served_rows(
        sim_world,
        sim_world.advertiser_ids[2],
        ADGROUP,
        "2025-06-01",
        "2025-06-30",
        ["adgroup_name", "spend"],
    )
    assert truth["rows"] == expected and truth["total_number"] == len(expected)
    assert session.get(root + "nothing").status_code == 404


@pytest.mark.e2e  # the simulator CLI as a process
def test_cli_prints_ready_and_serves() -> None:
    command = [
        sys.executable,
        "-m",
        "tiktok_simulator",
        "--port",
        "0",
        "--seed",
        "3",
        "--advertisers",
        "2",
        "--campaigns",
        "1",
        "--adgroups",
        "1",
        "--ads",
        "2",
        "--qps",
        "10",
        "--token",
        "cli-token",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"READY (http://127\.0\.0\.1:(\d+)/open_api/v1\.3/)", line)
        assert match, line
        advertiser_id = World(seed=3, advertisers=2).advertiser_ids[0]
        body = requests.get(
            match.group(1) + "report/integrated/get/",
            params={
                "advertiser_id": advertiser_id,
                "report_type": "BASIC",
                "data_level": CAMPAIGN,
                "dimensions": '["campaign_id", "stat_time_day"]',
                "start_date": "2025-01-01",
                "end_date": "2025-01-02",
            },
            headers={"Access-Token": "cli-token"},
            timeout=5,
        ).json()
        assert body["code"] == 0 and body["data"]["page_info"]["total_number"] > 0
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
