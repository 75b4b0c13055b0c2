"""GMV Max (TikTok Shop) end to end: the service, the simulator and local BigQuery (issue 20,
point 1; docs/tiktok_api_gmv_smartplus.md §1).

TKT050-052 hold what TikTok serves store by store (deleted campaigns included) over a 40-day
window read in two requests per store and promotion type; replace twice leaves the same rows;
the GMV Max report's own budget is held (0 × 40100 at the Basic limits) and a spent day quota
fails the GMV Max items with an error naming it while the other reports load; an account
without GMV Max succeeds with 0 rows and says why; one whose permission was revoked fails like
a revoked account. Reconciliation counts GMV Max in the advertiser total (both simulator
switches) and compares TikTok's TT_SHOP spend with TKT050 campaign by campaign.
"""

from __future__ import annotations

import csv
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from controller.reports import registry
from controller.reports.catalog import ReportSpec
from controller.tiktok.client import TikTokApiError, TikTokError
from controller.tiktok.gmv_max import NO_STORE, refuses_the_account
from database.run_log import RUN_LOG_TABLE
from local_env.stack import ROOT
from main import create_app
from tests.fixtures.service import service_settings_for
from tests.support.truth import typed_cell
from tests.support.warehouse import table_rows
from tests.support.worlds import gmv_max_world
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator import gmv_max as sim_gmv_max

START, END = date(2025, 5, 1), date(2025, 6, 9)  # 40 days: two request windows
SHORT = date(2025, 5, 10)  # one window, where two add nothing to what a test shows
GMV_TYPES = ["gmv_max_campaign", "gmv_max_product", "gmv_max_live"]
SPECS = {name: registry.get(name) for name in GMV_TYPES}
LEVEL = {"gmv_max_campaign": "campaign", "gmv_max_product": "product", "gmv_max_live": "live"}
SHOP, SHOP_TOO, PLAIN, REVOKED = range(4)  # advertisers of ``gmv_max_world``


@pytest.fixture(scope="module")
def world() -> World:
    return gmv_max_world()


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[SimulatorServer]:
    with SimulatorServer(world) as running:  # GMV Max at its Basic budget: 8 / 240 / 20,000
        running.configure(qps=50, qpm=3000)
        yield running


@pytest.fixture
def app(server, local_bigquery):
    server.reset()
    server.configure(qps=50, qpm=3000)
    return create_app(
        service_settings_for(server, local_bigquery, tiktok_qps=50.0, tiktok_qpm=3000)
    ).test_client()


def truth(world: World, spec: ReportSpec, advertiser: str) -> list[dict]:
    """The rows the simulator serves for ``spec``, typed as the table holds them."""
    currency = world.advertiser_info(advertiser)["currency"]
    rows = []
    for raw in sim_gmv_max.served_rows(world, advertiser, LEVEL[spec.report_type], START, END):
        row = {name: raw["dimensions"][name] for name in spec.dimensions}
        row["store_id"] = raw["store_id"]
        row["date"] = date.fromisoformat(raw["dimensions"]["stat_time_day"][:10])
        for name in spec.metric_names:
            row[spec.column(name)] = typed_cell(spec.metric_type(name), raw["metrics"].get(name))
        row["currency"] = currency
        row["_advertiser_id"] = advertiser
        row["_report_type"] = spec.report_type
        rows.append(row)
    return rows


def keyed(spec: ReportSpec, rows: list[dict]) -> dict[tuple, dict]:
    by = {(r["_advertiser_id"], r["store_id"], *(r[d] for d in spec.dimensions)): r for r in rows}
    assert len(by) == len(rows), "duplicate rows"
    return by


def run(app, bq_client, dataset: str, advertisers, report_types, start=START, end=END) -> dict:
    body = {
        "access_token": "sim-token",
        "advertiser_ids": list(advertisers),
        "project_id": bq_client.project,
        "dataset_id": dataset,
        "if_exists": "replace",
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "report_types": list(report_types),
        "metric_families": ["core"],
    }
    response = app.post("/run", json=body)
    assert response.status_code in (200, 207, 502), response.get_json()  # 502: all failed
    return response.get_json()


def loaded(bq_client, dataset: str, spec: ReportSpec) -> list[dict]:
    rows = table_rows(bq_client, dataset, spec.table)
    for row in rows:
        row.pop("_extracted_at")
    return rows


def items(body: dict) -> dict[tuple[str, str], dict]:
    return {(r["advertiser_id"], r["report_type"]): r for r in body["results"]}


def test_tables_equal_the_truth_deleted_campaigns_included_and_replace_twice(
    app, server, world, bq_client, bq_dataset
):
    shops = [world.advertiser_ids[SHOP], world.advertiser_ids[SHOP_TOO]]
    body = run(app, bq_client, bq_dataset, shops, GMV_TYPES)
    assert body["status"] == "Ok" and body["errors_count"] == 0, body
    for name, spec in SPECS.items():
        expected = [row for adv in shops for row in truth(world, spec, adv)]
        assert expected, name
        assert keyed(spec, loaded(bq_client, bq_dataset, spec)) == keyed(spec, expected), name
    campaigns = loaded(bq_client, bq_dataset, SPECS["gmv_max_campaign"])
    assert {r["operation_status"] for r in campaigns} >= {"DELETE"}  # deleted ones are in
    # 2 usable stores (the unusable third skipped) x 2 windows, x 2 promotion types at the
    # campaign level; every request counted against GMV Max's own budget
    for adv in shops:
        got = items(body)
        assert got[(adv, "gmv_max_campaign")]["requests"] == 2 * 2 * 2
        assert got[(adv, "gmv_max_product")]["requests"] == 2 * 2
        assert got[(adv, "gmv_max_live")]["requests"] == 2 * 2
        assert {got[(adv, n)]["rate_budget"] for n in GMV_TYPES} == {"gmv_max"}
    stats = server.stats(include_log=False)
    assert stats["codes"].get("40100", 0) == 0
    # the run log counts the requests per budget
    logged = bq_client.query(
        f"SELECT rate_budget, SUM(requests) AS requests FROM `{bq_client.project}.{bq_dataset}."
        f"{RUN_LOG_TABLE}` WHERE request_id = '{body['request_id']}' GROUP BY 1"
    ).result(timeout=60)
    assert {row["rate_budget"]: row["requests"] for row in logged} == {"gmv_max": 2 * 16}
    again = run(app, bq_client, bq_dataset, shops, ["gmv_max_campaign"])  # TKT050 replaced
    assert again["errors_count"] == 0
    for name, spec in SPECS.items():
        expected = [row for adv in shops for row in truth(world, spec, adv)]
        assert keyed(spec, loaded(bq_client, bq_dataset, spec)) == keyed(spec, expected), name


def test_no_gmv_max_succeeds_with_no_rows_and_a_revoked_permission_fails_like_an_account(
    app, world, bq_client, bq_dataset
):
    plain, revoked = world.advertiser_ids[PLAIN], world.advertiser_ids[REVOKED]
    body = run(app, bq_client, bq_dataset, [plain, revoked], [*GMV_TYPES, "campaign"])
    got = items(body)
    for name in GMV_TYPES:
        assert got[(plain, name)]["status"] == "success"
        assert got[(plain, name)]["inserted_rows"] == 0
        assert got[(plain, name)]["warnings"] == [NO_STORE]
        assert got[(plain, name)]["requests"] == 0  # the store list only, on the app's tier
        refused = got[(revoked, name)]
        assert refused["status"] == "error"
        assert refused["error"] == (
            f"advertiser {revoked}: TikTok API error 40001: No permission to operate GMV Max "
            f"for advertiser {revoked}."
            + refused["error"].split(f"advertiser {revoked}.", 1)[1]  # TikTok's request_id
        )
    assert got[(plain, "campaign")]["status"] == got[(revoked, "campaign")]["status"] == "success"


@pytest.mark.parametrize("counted_by", ["the service", "TikTok"])
def test_a_spent_day_quota_fails_gmv_max_with_its_name_and_spares_the_rest(
    counted_by, server, world, local_bigquery, bq_client, bq_dataset
):
    """The service's own count (``TIKTOK_GMV_MAX_DAILY_QUOTA``), or TikTok's 40100 naming the
    daily quota when another client of the app spent it. Each case its own process budget."""
    server.reset()
    server.configure(qps=50, qpm=3000)
    if counted_by == "TikTok":
        server.configure(gmv_max_daily_quota=3)
        quota = 19_998  # a budget of its own in this process, spent by TikTok's answer
    else:
        quota = 3
    settings = service_settings_for(
        server, local_bigquery, tiktok_qps=50.0, tiktok_qpm=3000, tiktok_gmv_max_daily_quota=quota
    )
    app = create_app(settings).test_client()
    shop = world.advertiser_ids[SHOP]
    body = run(app, bq_client, bq_dataset, [shop], [*GMV_TYPES, "campaign"])
    got = items(body)
    assert body["status"] == "partial_success"
    assert got[(shop, "campaign")]["status"] == "success"
    assert got[(shop, "campaign")]["inserted_rows"] > 0
    named = "the GMV Max report daily quota"
    errors = [got[(shop, name)]["error"] for name in GMV_TYPES]
    assert [got[(shop, name)]["status"] for name in GMV_TYPES] == ["error"] * 3
    # each needs at least 4 requests, 3 were allowed; what was refused before it left is
    # not counted as a request
    sent = sum(got[(shop, name)]["requests"] for name in GMV_TYPES)
    if counted_by == "the service":
        assert sent == 3
        assert set(errors) == {
            f"advertiser {shop}: {named} (3 requests per UTC day) is spent; this report was not "
            "read, nothing of it is loaded: run it again after 00:00 UTC (other reports are not "
            "affected)"
        }
    else:  # the answer that said so carries TikTok's words; the rest were refused here
        assert sent >= 4  # 3 answered, then 40100 (and any that left before its answer came)
        assert all(e.startswith(f"advertiser {shop}: {named} (19,998 requests") for e in errors)
        # every item repeats TikTok's words, whichever of its requests met the closed day
        assert all("have used the daily quota of 3 requests" in e for e in errors)
    stats = server.stats(include_log=False)
    assert stats["codes"].get("40100", 0) == sent - 3
    server.reset()


def _spend(rows, column: str = "spend") -> Decimal:
    return sum((Decimal(str(r[column] or 0)) for r in rows), Decimal(0)).quantize(Decimal("0.01"))


@pytest.mark.parametrize("in_total", [True, False])
def test_the_advertiser_level_counts_gmv_max_either_way(
    in_total, app, world, bq_client, bq_dataset
):
    """Whether TikTok's BASIC advertiser total holds GMV Max is undocumented: both answers
    reconcile, and the account's spend (advertiser ± GMV Max) is the simulator's."""
    shop = world.advertiser_ids[SHOP]
    world.gmv_max_in_advertiser_total = in_total
    try:
        reports = ["advertiser", "campaign", "gmv_max_campaign"]
        body = run(app, bq_client, bq_dataset, [shop], reports, end=SHORT)
    finally:
        world.gmv_max_in_advertiser_total = True
    assert body["status"] == "Ok" and body["reconciliation"] == [], body["reconciliation"]
    advertiser = _spend(loaded(bq_client, bq_dataset, registry.get("advertiser")))
    campaigns = _spend(loaded(bq_client, bq_dataset, registry.get("campaign")))
    gmv = _spend(loaded(bq_client, bq_dataset, SPECS["gmv_max_campaign"]), "cost")
    tt_shop = sum(sim_gmv_max.tt_shop_spend(world, shop, START, SHORT).values(), Decimal(0))
    assert gmv == tt_shop > 0
    account = advertiser if in_total else advertiser + gmv
    assert account == campaigns + gmv


def test_a_campaign_missing_from_the_gmv_max_answer_is_reported_with_its_amount(
    app, server, world, bq_client, bq_dataset
):
    shop = world.advertiser_ids[SHOP]
    spend = sim_gmv_max.tt_shop_spend(world, shop, START, SHORT)
    busiest = max(
        {c for c, _ in spend}, key=lambda c: sum(v for (k, _), v in spend.items() if k == c)
    )
    server.configure(dropped_campaigns={sim_gmv_max.DROPPED: [busiest]})
    reports = ["advertiser", "campaign", "gmv_max_campaign"]
    body = run(app, bq_client, bq_dataset, [shop], reports, end=SHORT)
    assert body["status"] == "Ok" and body["errors_count"] == 0
    by_campaign = [d for d in body["reconciliation"] if d.get("campaign_id")]
    expected = {
        day: float(amount) for (campaign, day), amount in spend.items() if campaign == busiest
    }
    assert {d["campaign_id"] for d in by_campaign} == {busiest}
    assert {d["date"]: d["values"] for d in by_campaign} == {
        day: {"tt_shop": amount, "gmv_max_campaign": 0.0} for day, amount in expected.items()
    }
    # the advertiser total holds the campaign's spend: those days do not add up either
    days = {d["date"] for d in body["reconciliation"] if not d.get("campaign_id")}
    assert days == {day for day, amount in expected.items() if amount}
    item = items(body)[(shop, "gmv_max_campaign")]
    assert any("do not add up" in w for w in item["warnings"])


def test_plan_sizes_gmv_max_per_store_on_its_budget_and_the_backfill_counts_it(app, world):
    backfill = importlib.import_module("tiktok_ads.backfill")  # the DAG's package: no Airflow
    shop, plain = world.advertiser_ids[SHOP], world.advertiser_ids[PLAIN]
    sample_end = date(2025, 5, 10)
    response = app.post(
        "/plan",
        json={
            "access_token": "sim-token",
            "advertiser_ids": [shop, plain],
            "report_types": [*GMV_TYPES, "campaign"],
            "start_date": START.isoformat(),
            "end_date": sample_end.isoformat(),
        },
    )
    assert response.status_code == 200, response.get_json()
    got = {(i["advertiser_id"], i["report_type"]): i for i in response.get_json()["items"]}
    parts = {"gmv_max_campaign": 4, "gmv_max_product": 2, "gmv_max_live": 2}  # stores x types
    for name in GMV_TYPES:
        rows = sim_gmv_max.served_rows(world, shop, LEVEL[name], START, sample_end)
        item = got[(shop, name)]
        assert (item["rate_budget"], item["parts"], item["status"]) == (
            "gmv_max",
            parts[name],
            "success",
        )
        assert (item["rows"], item["requests"]) == (len(rows), parts[name])
        none = got[(plain, name)]
        assert (none["parts"], none["rows"], none["requests"]) == (0, 0, 0)
        # the 40-day run reads 2 windows of each part: what the backfill planner counts
        assert backfill.estimate_requests(item, 40) == 2 * parts[name]
        assert backfill.estimate_requests(none, 40) == 0
    assert got[(shop, "campaign")]["rate_budget"] == "general"


@pytest.mark.e2e  # runs run_local_csv.py as a process
def test_the_csv_tool_writes_gmv_max_store_by_store(server, world, tmp_path):
    server.reset()
    server.configure(qps=50, qpm=3000)
    shop, plain = world.advertiser_ids[SHOP], world.advertiser_ids[PLAIN]
    env = {**os.environ, "TIKTOK_API_BASE_URL": server.base_url}
    env.pop("TIKTOK_ACCESS_TOKEN", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_local_csv.py"), "--output-dir", str(tmp_path),
         "--access-token", "sim-token", "--advertiser-ids", f"{shop},{plain}",
         "--start-date", "2025-05-01", "--end-date", "2025-05-05",
         "--report-types", "gmv_max_live"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    spec = SPECS["gmv_max_live"]
    files = {p.name.removeprefix(f"{spec.table}_").rsplit("_", 1)[0]: p for p in tmp_path.iterdir()}
    with files[shop].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    truth = sim_gmv_max.served_rows(world, shop, "live", "2025-05-01", "2025-05-05")
    assert len(rows) == len(truth) > 0
    got = {(r["store_id"], r["campaign_id"], r["room_id"], r["stat_time_day"]): r for r in rows}
    currency = world.advertiser_info(shop)["currency"]
    for raw in truth:
        d = raw["dimensions"]
        row = got[(raw["store_id"], d["campaign_id"], d["room_id"], d["stat_time_day"])]
        assert float(row["cost"]) == float(raw["metrics"]["cost"])
        assert row["ten_second_live_views"] == raw["metrics"]["10_second_live_views"]
        assert row["currency"] == currency
    with files[plain].open(newline="") as handle:
        assert list(csv.DictReader(handle)) == []  # the header only
    assert f"({len(rows)} rows)" in result.stdout
    assert f"[{plain}] gmv_max_live: saved {files[plain]} (0 rows); {NO_STORE}" in result.stdout


@pytest.mark.parametrize("gmv_max", ["on", "off"])
def test_the_default_set_adds_gmv_max_for_accounts_with_stores_unless_off(
    gmv_max, server, world, local_bigquery, bq_client, bq_dataset
):
    server.reset()
    server.configure(qps=50, qpm=3000)
    settings = service_settings_for(
        server, local_bigquery, tiktok_qps=50.0, tiktok_qpm=3000, tiktok_gmv_max=gmv_max == "on"
    )
    app = create_app(settings).test_client()
    shop, plain, revoked = (world.advertiser_ids[i] for i in (SHOP, PLAIN, REVOKED))
    body = {
        "access_token": "sim-token",
        "advertiser_ids": [shop, plain, revoked],
        "project_id": bq_client.project,
        "dataset_id": bq_dataset,
        "start_date": "2025-05-01",
        "end_date": "2025-05-03",
        "metric_families": ["core"],
    }  # report_types left out: the default set
    response = app.post("/run", json=body).get_json()
    got = items(response)
    seeds = {(a, r) for a in (shop, plain, revoked) for r in registry.default_report_types()}
    lists = server.stats(include_log=False)["by_path"].get("/open_api/v1.3/gmv_max/store/list/", 0)
    if gmv_max == "off":
        assert set(got) == seeds and lists == 0
        return
    assert set(got) == seeds | {(a, r) for a in (shop, revoked) for r in GMV_TYPES}
    assert lists == 3  # one store list per advertiser, on the app's tier
    assert all(got[(shop, r)]["status"] == "success" for r in GMV_TYPES)
    assert all(got[(shop, r)]["inserted_rows"] > 0 for r in GMV_TYPES)
    assert all("40001" in got[(revoked, r)]["error"] for r in GMV_TYPES)
    # a request naming its reports gets exactly those, unless it asks for GMV Max too
    named = app.post("/run", json=body | {"report_types": ["campaign"]}).get_json()
    assert {r["report_type"] for r in named["results"]} == {"campaign"}
    both = app.post(
        "/run", json=body | {"report_types": ["campaign"], "with_gmv_max": True}
    ).get_json()
    assert {(r["advertiser_id"], r["report_type"]) for r in both["results"]} == {
        (a, "campaign") for a in (shop, plain, revoked)
    } | {(a, r) for a in (shop, revoked) for r in GMV_TYPES}


def test_an_advertiser_refused_as_a_whole_gets_no_gmv_max_items_its_reports_say_it(
    app, server, world, bq_client, bq_dataset
):
    """A 40001 on ``/gmv_max/store/list/`` that names no GMV Max, Shop or store (here the
    advertiser's own grant is gone): every report of the default set fails with TikTok's
    words, and no GMV Max item repeats them (``refuses_the_account``)."""
    shop = world.advertiser_ids[SHOP_TOO]
    server.remove_permission(shop)
    body = {
        "access_token": "sim-token",
        "advertiser_ids": [shop],
        "project_id": bq_client.project,
        "dataset_id": bq_dataset,
        "start_date": "2025-05-01",
        "end_date": "2025-05-01",
        "metric_families": ["core"],
    }  # report_types left out: the default set
    got = items(app.post("/run", json=body).get_json())
    assert set(got) == {(shop, r) for r in registry.default_report_types()}
    for item in got.values():
        assert item["status"] == "error"
        assert item["error"].startswith(f"advertiser {shop}: TikTok API error 40001: ")


def test_which_store_list_refusals_are_the_accounts():
    def refusal(code: int, message: str) -> TikTokApiError:
        return TikTokApiError("1", code, message, None)

    assert refuses_the_account(refusal(40001, "No permission to operate advertiser 1"))
    assert refuses_the_account(refusal(40105, "Access token is incorrect or has been revoked."))
    assert not refuses_the_account(refusal(40001, "No permission to operate GMV Max for 1"))
    assert not refuses_the_account(refusal(40001, "The TikTok Shop is not authorized"))
    assert not refuses_the_account(refusal(40001, "no access to store 7"))
    assert not refuses_the_account(refusal(50000, "System error"))
    assert not refuses_the_account(TikTokError("1", "TikTok did not answer in time"))


def test_the_daily_dag_asks_for_gmv_max_where_there_are_stores():
    config_module = importlib.import_module("tiktok_ads.config")  # the DAG's package
    fanout = importlib.import_module("tiktok_ads.fanout")
    assert (
        set(config_module.GMV_MAX_REPORT_TYPES) == set(GMV_TYPES) <= set(config_module.REPORT_TYPES)
    )
    config = {
        "service_url": "https://svc-abc.a.run.app",
        "advertiser_ids": ["1", "2"],
        "project_id": "p",
        "dataset_id": "raw",
        "report_types": list(config_module.SEED_REPORT_TYPES),
        "batch_size": 20,
        "parallel_batches": 1,
        "app_qps": 10.0,
        "app_qpm": 600,
    }
    (request,) = fanout.build_requests(config, date(2026, 3, 7), date(2026, 3, 9))
    assert request["payload"]["with_gmv_max"] is True
    assert request["payload"]["report_types"] == list(config_module.SEED_REPORT_TYPES)


def test_account_report_adds_the_gmv_max_spend_per_account_day(
    server, world, local_bigquery, bq_client, bq_dataset
):
    server.reset()
    server.configure(qps=50, qpm=3000)
    reporting, fivetran = f"{bq_dataset}_rep", f"{bq_dataset}_ft"
    settings = service_settings_for(
        server,
        local_bigquery,
        tiktok_qps=50.0,
        tiktok_qpm=3000,
        views_raw_dataset=bq_dataset,
        views_reporting_dataset=reporting,
        views_fivetran_dataset=fivetran,
    )
    app = create_app(settings).test_client()
    shop = world.advertiser_ids[SHOP]
    end = date(2025, 5, 7)
    body = run(app, bq_client, bq_dataset, [shop], ["advertiser", "gmv_max_campaign"], end=end)
    assert body["errors_count"] == 0
    try:
        response = app.post(
            "/views", json={"project_id": bq_client.project, "dataset_id": bq_dataset}
        )
        assert response.status_code == 200, response.get_json()
        rows = table_rows(bq_client, reporting, "account_report")
        costs: dict[date, Decimal] = {}
        for row in loaded(bq_client, bq_dataset, SPECS["gmv_max_campaign"]):
            costs[row["date"]] = costs.get(row["date"], Decimal(0)) + Decimal(str(row["cost"]))
        assert costs and {r["date_day"] for r in rows} >= set(costs)
        for row in rows:
            expected = costs.get(row["date_day"], Decimal(0))
            assert Decimal(str(row["gmv_max_spend"])).quantize(Decimal("0.01")) == expected
    finally:
        for dataset in (reporting, fivetran):
            bq_client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def test_a_worded_roas_bid_loads_as_null_and_a_worded_cost_fails_the_report(
    app, server, world, bq_client, bq_dataset
):
    """A campaign setting TikTok writes as a word costs no spend; a metric that does not
    parse fails its report, nothing of it loaded (issue 20, point 3, for GMV Max)."""
    shop = world.advertiser_ids[SHOP]
    spec = SPECS["gmv_max_campaign"]
    server.configure(worded_metrics={"roas_bid": "auto"})
    body = run(app, bq_client, bq_dataset, [shop], ["gmv_max_campaign"], end=date(2025, 5, 3))
    (item,) = body["results"]
    rows = loaded(bq_client, bq_dataset, spec)
    assert item["status"] == "success" and item["inserted_rows"] == len(rows) > 0
    assert {r["roas_bid"] for r in rows} == {None} and all(r["cost"] is not None for r in rows)
    assert item["warnings"] == [
        f"gmv_max_campaign attribute roas_bid: {len(rows)} row(s) held a value that is not a "
        "FLOAT64 number (e.g. 'auto'), loaded as null"
    ]
    server.configure(worded_metrics={"cost": "n/a"})
    body = run(app, bq_client, bq_dataset, [shop], ["gmv_max_live"], end=date(2025, 5, 3))
    (item,) = body["results"]
    assert item["status"] == "error" and "cost" in item["error"]
    assert table_rows(bq_client, bq_dataset, SPECS["gmv_max_live"].table) == []
