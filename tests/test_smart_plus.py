"""Upgraded Smart+ (issue 20, point 2; docs/tiktok_api_gmv_smartplus.md §2).

TKT004 holds one row per ad as Ads Manager shows it: a classic ad by its ``ad_id``, an
Upgraded Smart+ ad by its ``ad_id_v2`` (its creatives summed, read by ``ad_id_v2`` for the
campaigns whose creatives the ``ad_id`` rows show); its spend equals the ad group level.
``ad_creative`` (TKT043) holds TikTok's ``ad_id`` rows, each creative with its ``ad_id_v2``.
An account without Upgraded Smart+ costs no request more. The ads history (TKT013) holds the
Upgraded Smart+ ads (``/smart_plus/ad/get/``) as ads, keyed like TKT004, and not their
creatives (which ``/ad/get/`` lists).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from controller.reports import registry
from controller.reports.catalog import SMART_PLUS_CREATIVES as SMART_PLUS_CREATIVE
from controller.tiktok.entities import ENTITIES
from controller.tiktok.origins import ALL_ORIGINS
from controller.tiktok.reader import of_campaigns, without_creatives
from main import create_app
from tests.fixtures.service import service_settings_for
from tests.support.extraction_calls import extract
from tests.support.truth import by_key, typed_cell
from tests.support.warehouse import table_rows
from tests.support.worlds import smart_plus_world
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator.entities import SMART_PLUS_AD
from tiktok_simulator.metrics import AD, ADGROUP
from tiktok_simulator.report import served_rows

START, END = date(2025, 5, 1), date(2025, 6, 9)  # 40 days: two request windows
AD_SPEC, CREATIVES, ADGROUPS = (registry.get(n) for n in ("ad", "ad_creative", "adgroup"))


@pytest.fixture(scope="module")
def world() -> World:
    # advertiser 0 runs Upgraded Smart+ campaigns (2 ads of 3 creatives each); 1 does not
    return smart_plus_world(2)


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[SimulatorServer]:
    with SimulatorServer(world) as running:
        running.configure(qps=50, qpm=3000)
        yield running


def _typed(spec, advertiser: str, raw: dict, id_value: str) -> dict:
    row = {
        spec.id_dimension: id_value,
        "stat_time_day": raw["dimensions"]["stat_time_day"],
        "date": date.fromisoformat(raw["dimensions"]["stat_time_day"][:10]),
        "_advertiser_id": advertiser,
        "_report_type": spec.report_type,
    }
    for name in spec.metric_names:
        row[name] = typed_cell(spec.metric_type(name), raw["metrics"].get(name))
    return row


def _served(world: World, advertiser: str, spec, dimension: str) -> list[dict]:
    metrics = [m for m in spec.metric_names if m != dimension]
    return served_rows(
        world,
        advertiser,
        spec.data_level,
        START,
        END,
        metrics=metrics,
        dimensions=(dimension, "stat_time_day"),
        origins=ALL_ORIGINS,
    )


def creative_truth(world: World, advertiser: str) -> list[dict]:
    """TikTok's ``ad_id`` rows: classic ads and Upgraded Smart+ creatives."""
    return [
        _typed(CREATIVES, advertiser, r, r["dimensions"]["ad_id"])
        for r in _served(world, advertiser, CREATIVES, "ad_id")
    ]


def ad_truth(world: World, advertiser: str) -> list[dict]:
    """One row per ad as Ads Manager shows it."""
    kind = "campaign_automation_type"
    rows = [
        _typed(AD_SPEC, advertiser, r, r["dimensions"]["ad_id"])
        for r in _served(world, advertiser, AD_SPEC, "ad_id")
        if r["metrics"][kind] != "UPGRADED_SMART_PLUS_CREATIVE"
    ]
    for raw in _served(world, advertiser, AD_SPEC, "ad_id_v2"):
        if raw["metrics"][kind] == "UPGRADED_SMART_PLUS":
            ad_id_v2 = raw["dimensions"]["ad_id_v2"]
            raw["metrics"]["ad_id_v2"] = ad_id_v2
            rows.append(_typed(AD_SPEC, advertiser, raw, ad_id_v2))
    return rows


def _spend(rows) -> Decimal:
    return sum((Decimal(str(r["spend"])) for r in rows), Decimal(0)).quantize(Decimal("0.01"))


def test_the_truth_has_ads_creatives_and_adds_up(world: World) -> None:
    smart, classic = world.advertiser_ids
    ads, creatives = ad_truth(world, smart), creative_truth(world, smart)
    assert len(creatives) > len(ads)
    ids = {r["ad_id"] for r in ads}
    assert {ad.id for ad in world.account(smart).smart_plus_ads} <= ids
    assert ids.isdisjoint(r["ad_id"] for r in creatives if r["ad_id_v2"] in ids - {None})
    adgroups = served_rows(world, smart, ADGROUP, START, END, ["spend"], origins=ALL_ORIGINS)
    assert _spend(ads) == _spend(creatives) == _spend(r["metrics"] for r in adgroups)
    assert len(ad_truth(world, classic)) == len(creative_truth(world, classic))


def _run(app, bq_client, dataset: str, advertisers, report_types) -> dict:
    body = {
        "access_token": "sim-token",
        "advertiser_ids": list(advertisers),
        "project_id": bq_client.project,
        "dataset_id": dataset,
        "if_exists": "replace",
        "start_date": START.isoformat(),
        "end_date": END.isoformat(),
        "report_types": report_types,
        "metric_families": ["core"],
    }
    response = app.post("/run", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _loaded(bq_client, dataset: str, spec) -> list[dict]:
    rows = table_rows(bq_client, dataset, spec.table)
    for row in rows:
        row.pop("_extracted_at")
    return rows


def _core(spec, rows: list[dict]) -> list[dict]:
    """Rows with the columns a ``core`` run loads (the others null)."""
    asked = set(spec.requested_metrics(["core"]))
    return [
        {k: (v if k not in spec.metric_names or k in asked else None) for k, v in r.items()}
        for r in rows
    ]


def test_tkt004_holds_ads_and_tkt043_creatives(
    server, world, local_bigquery, bq_client, bq_dataset
):
    app = create_app(service_settings_for(server, local_bigquery)).test_client()
    reports = ["adgroup", "ad", "ad_creative"]
    advertisers = world.advertiser_ids
    body = _run(app, bq_client, bq_dataset, advertisers, reports)
    assert body["errors_count"] == 0
    assert body["reconciliation"] == []  # the ad level adds up to the ad group level
    for spec, truth in ((AD_SPEC, ad_truth), (CREATIVES, creative_truth)):
        expected = [row for adv in advertisers for row in _core(spec, truth(world, adv))]
        assert by_key(spec, _loaded(bq_client, bq_dataset, spec)) == by_key(spec, expected)
    smart = world.advertiser_ids[0]
    ads = [r for r in _loaded(bq_client, bq_dataset, AD_SPEC) if r["_advertiser_id"] == smart]
    adgroups = [r for r in _loaded(bq_client, bq_dataset, ADGROUPS) if r["_advertiser_id"] == smart]
    assert _spend(ads) == _spend(adgroups)
    # one row per ad and day: the Smart+ ads, not their creatives
    smart_rows = [r for r in ads if r["campaign_automation_type"] == "UPGRADED_SMART_PLUS"]
    assert smart_rows and all(r["ad_id"] == r["ad_id_v2"] for r in smart_rows)
    assert not [r for r in ads if r["campaign_automation_type"] == "UPGRADED_SMART_PLUS_CREATIVE"]
    # requests: the ad level asks the ad_id_v2 rows only where creatives showed up
    items = {(r["advertiser_id"], r["report_type"]): r for r in body["results"]}
    for advertiser, extra in ((smart, 2), (world.advertiser_ids[1], 0)):
        ad_requests = items[(advertiser, "ad")]["requests"]
        assert ad_requests == items[(advertiser, "ad_creative")]["requests"] + extra
    # replace twice leaves the same rows
    again = _run(app, bq_client, bq_dataset, advertisers, ["ad"])
    assert again["errors_count"] == 0
    expected = [row for adv in advertisers for row in _core(AD_SPEC, ad_truth(world, adv))]
    assert by_key(AD_SPEC, _loaded(bq_client, bq_dataset, AD_SPEC)) == by_key(AD_SPEC, expected)


def test_every_family_joins_the_ads_read_by_ad_id_v2(server, world):
    # three requests per window and metric group, joined on the dimensions, for both kinds
    smart = world.advertiser_ids[0]
    results, tables = extract(server, [(smart, AD_SPEC)], START, END, qps=50)
    assert [(r.status, r.warnings) for r in results] == [("success", [])]
    got = tables[("ad", smart)].drop_columns(["_extracted_at"]).to_pylist()
    assert by_key(AD_SPEC, got) == by_key(AD_SPEC, ad_truth(world, smart))
    assert results[0].requests == 2 * 3 * 2  # windows x metric groups x (ad_id, ad_id_v2)


def test_ads_read_by_ad_id_v2_shrink_like_the_rest_on_40067(server, world):
    smart = world.advertiser_ids[0]
    server.configure(query_size_limit=600)  # days x metrics: a 30-day window is too large
    try:
        results, tables = extract(server, [(smart, AD_SPEC)], START, END, qps=50, families=["core"])
    finally:
        server.configure(query_size_limit=None)
    assert [(r.status, r.warnings) for r in results] == [("success", [])]
    got = tables[("ad", smart)].drop_columns(["_extracted_at"]).to_pylist()
    assert by_key(AD_SPEC, got) == by_key(AD_SPEC, _core(AD_SPEC, ad_truth(world, smart)))


def test_tkt013_holds_smart_plus_ads_as_ads_beside_classic_ones(
    server, world, local_bigquery, bq_client, bq_dataset
):
    app = create_app(service_settings_for(server, local_bigquery)).test_client()
    before = server.stats(include_log=False)["by_path"]
    body = _run(app, bq_client, bq_dataset, world.advertiser_ids, ["ads", "ad", "ad_creative"])
    assert body["errors_count"] == 0, body
    history = ENTITIES["ads"]
    loaded = {
        (r["_advertiser_id"], r["ad_id"]): r
        for r in table_rows(bq_client, bq_dataset, history.table)
    }
    book, as_of = server.app.entity_book, server.app.as_of()
    expected: dict[tuple[str, str], dict] = {}
    for advertiser in world.advertiser_ids:
        account = world.account(advertiser)
        creatives = {c.id for ad in account.smart_plus_ads for c in ad.ads}
        for obj in book.objects(advertiser, AD, as_of):
            if obj["ad_id"] not in creatives:
                expected[(advertiser, obj["ad_id"])] = obj
        for obj in book.objects(advertiser, SMART_PLUS_AD, as_of):
            expected[(advertiser, obj["smart_plus_ad_id"])] = obj
    assert loaded.keys() == expected.keys()
    smart = world.advertiser_ids[0]
    smart_rows = [
        r for r in loaded.values() if r["campaign_automation_type"] == "UPGRADED_SMART_PLUS"
    ]
    # count = the ads, not their 3 creatives each
    assert len(smart_rows) == len(world.account(smart).smart_plus_ads) == 4
    for row in smart_rows:
        obj = expected[(row["_advertiser_id"], row["ad_id"])]
        assert row["ad_id_v2"] == row["ad_id"] == obj["smart_plus_ad_id"]
        assert (row["ad_name"], row["adgroup_id"], row["campaign_id"], row["secondary_status"]) == (
            obj["ad_name"],
            obj["adgroup_id"],
            obj["campaign_id"],
            obj["secondary_status"],
        )
        # one text, call to action and landing page: in the classic ad's columns
        (url,), (text,) = obj["landing_page_url_list"], obj["ad_text_list"]
        assert (row["landing_page_url"], row["ad_text"]) == (
            url["landing_page_url"],
            text["ad_text"],
        )
        assert row["call_to_action"] == obj["call_to_action_list"][0]["call_to_action"]
    classic_rows = [r for r in loaded.values() if r["campaign_automation_type"] is None]
    assert len(classic_rows) == len(loaded) - 4 and all(r["ad_id_v2"] is None for r in classic_rows)
    # TKT004's ads are TKT013's; TKT043's creatives are not
    reported = {(r["_advertiser_id"], r["ad_id"]) for r in _loaded(bq_client, bq_dataset, AD_SPEC)}
    assert reported <= loaded.keys()
    creative_rows = _loaded(bq_client, bq_dataset, CREATIVES)
    made_of = {
        (r["_advertiser_id"], r["ad_id"])
        for r in creative_rows
        if r["campaign_automation_type"] == "UPGRADED_SMART_PLUS_CREATIVE"
    }
    assert made_of and made_of.isdisjoint(loaded)
    # one /smart_plus/ad/get/ request per advertiser, with or without Smart+ campaigns
    after = server.stats(include_log=False)["by_path"]
    path = next(p for p in after if p.endswith("smart_plus/ad/get/"))
    assert after[path] - before.get(path, 0) == 2


def test_plan_counts_the_ad_id_v2_requests_a_run_makes(
    server, world, local_bigquery, bq_client, bq_dataset
):
    app = create_app(service_settings_for(server, local_bigquery)).test_client()
    span = {"start_date": START.isoformat(), "end_date": date(2025, 5, 30).isoformat()}
    advertisers, reports = list(world.advertiser_ids), ["ad", "ad_creative"]
    asked = {"access_token": "sim-token", "advertiser_ids": advertisers, "report_types": reports}
    plan = app.post("/plan", json={**asked, **span})
    assert plan.status_code == 200, plan.get_json()
    planned = {(i["advertiser_id"], i["report_type"]): i for i in plan.get_json()["items"]}
    groups = planned[(advertisers[0], "ad")]["metric_groups"]
    # 2 Smart+ campaigns: one part of ad_id_v2 requests per metric group; none without them
    assert [planned[(a, "ad")]["smart_plus_requests"] for a in advertisers] == [groups, 0]
    path = next(p for p in server.stats(include_log=False)["by_path"] if "report/" in p)
    before = server.stats(include_log=False)["by_path"][path]
    run = app.post(
        "/run",
        json={
            **asked,
            **span,
            "project_id": bq_client.project,
            "dataset_id": bq_dataset,
            "if_exists": "replace",
        },
    )
    assert run.status_code == 200, run.get_json()
    counted = server.stats(include_log=False)["by_path"][path] - before
    done = {
        (r["advertiser_id"], r["report_type"]): r["requests"] for r in run.get_json()["results"]
    }
    assert done == {key: item["requests"] for key, item in planned.items()}
    assert counted == sum(item["requests"] for item in planned.values())


def test_an_app_without_the_smart_plus_permission_keeps_its_ads_history(
    server, world, local_bigquery, bq_client, bq_dataset
):
    app = create_app(service_settings_for(server, local_bigquery)).test_client()
    smart = world.advertiser_ids[0]
    server.configure(smart_plus_scope=False)  # /smart_plus/ad/get/ answers 40001
    try:
        body = _run(app, bq_client, bq_dataset, [smart], ["ads"])
    finally:
        server.configure(smart_plus_scope=True)
    assert body["errors_count"] == 0, body
    (item,) = body["results"]
    (warning,) = item["warnings"]
    assert warning.startswith("TikTok refused to list Upgraded Smart+ ads (TikTok API error 40001")
    assert warning.endswith(
        "the creatives of such campaigns are listed as ads, as before Upgraded Smart+"
    )
    # as before: every /ad/get/ object, the creatives included
    book, as_of = server.app.entity_book, server.app.as_of()
    loaded = {r["ad_id"] for r in table_rows(bq_client, bq_dataset, ENTITIES["ads"].table)}
    assert loaded == {obj["ad_id"] for obj in book.objects(smart, AD, as_of)}


def test_plan_of_a_tiktok_refusing_campaign_automation_type_counts_no_ad_id_v2(
    server, world, local_bigquery
):
    app = create_app(service_settings_for(server, local_bigquery)).test_client()
    body = {
        "access_token": "sim-token",
        "advertiser_ids": [world.advertiser_ids[0]],
        "report_types": ["ad", "ad_creative"],
        "start_date": START.isoformat(),
        "end_date": date(2025, 5, 30).isoformat(),
    }
    server.configure(refused_metrics={"AUCTION_AD": ["campaign_automation_type"]})
    try:
        response = app.post("/plan", json=body)
    finally:
        server.configure(refused_metrics={})
    assert response.status_code == 200, response.get_json()
    ad, creatives = response.get_json()["items"]
    # the run then keeps the creatives as rows: the ad report costs what ad_creative does
    assert (ad["status"], ad["smart_plus_requests"]) == ("success", 0)
    assert (ad["rows"], ad["requests"]) == (creatives["rows"], creatives["requests"])


def test_a_renamed_smart_plus_ad_adds_one_version(
    server, world, local_bigquery, bq_client, bq_dataset
):
    app = create_app(service_settings_for(server, local_bigquery)).test_client()
    smart = world.advertiser_ids[0]
    book = server.app.entity_book
    change = next(
        c for c in book.changes(smart) if c.level == SMART_PLUS_AD and c.kind == "renamed"
    )
    creatives = {c.id for ad in world.account(smart).smart_plus_ads for c in ad.ads}

    def ads_on(day: date) -> dict[str, dict]:
        """What TKT013 should hold on ``day``: the classic ads and the Smart+ ads."""
        out = {o["ad_id"]: o for o in book.objects(smart, AD, day) if o["ad_id"] not in creatives}
        return out | {o["smart_plus_ad_id"]: o for o in book.objects(smart, SMART_PLUS_AD, day)}

    before, after = ads_on(change.day - timedelta(days=1)), ads_on(change.day)
    changed = {i for i, o in after.items() if before.get(i) != o}
    assert change.object_id in changed
    added = []
    try:
        for day in (change.day - timedelta(days=1), change.day):
            server.configure(as_of=day.isoformat())
            body = _run(app, bq_client, bq_dataset, [smart], ["ads"])
            assert body["errors_count"] == 0, body
            added.append(body["total_inserted_rows"])
    finally:
        server.configure(as_of=None)
    assert added == [len(before), len(changed)]
    history = ENTITIES["ads"].table
    versions = sorted(
        table_rows(bq_client, bq_dataset, history, f"ad_id = '{change.object_id}'"),
        key=lambda r: r["valid_from"],
    )
    assert [(v["ad_name"], v["is_current"]) for v in versions] == [
        (before[change.object_id]["ad_name"], False),
        (after[change.object_id]["ad_name"], True),
    ]
    assert versions[1]["ad_name"].endswith(" (edited)")


def test_every_ad_id_row_of_an_upgraded_smart_plus_campaign_goes_to_its_ad_id_v2_read() -> None:
    """A creative row names its campaign Upgraded Smart+: the campaign's other rows (one
    TikTok sent without ``campaign_automation_type``, or with another type) go too, as do
    rows of a campaign an earlier page named; its ``ad_id_v2`` read holds them all."""
    kind = "campaign_automation_type"
    table = pa.table(
        {
            "ad_id": ["c1", "c2", "a3", "a4", "c5", "a6"],
            "campaign_id": ["S", "S", "S", "K", "T", "M"],
            kind: [SMART_PLUS_CREATIVE, None, "MANUAL", None, SMART_PLUS_CREATIVE, "MANUAL"],
        }
    )
    kept, campaigns = without_creatives(table, known={"K"})
    assert kept.column("ad_id").to_pylist() == ["a6"] and campaigns == ["S", "T"]
    assert without_creatives(table.drop_columns([kind]))[0] == table.drop_columns([kind])


def test_ad_id_v2_rows_of_campaigns_not_asked_for_are_left_to_the_ad_id_read() -> None:
    """A classic ad's ``ad_id_v2`` is its ``ad_id``: served by an ``ad_id_v2`` read that
    asked for other campaigns, it would count twice."""
    table = pa.table({"ad_id": ["v1", "a2", "v3"], "campaign_id": ["S", "M", None]})
    assert of_campaigns(table, {"S"}).column("ad_id").to_pylist() == ["v1"]
    assert of_campaigns(table.drop_columns(["campaign_id"]), {"S"}).num_rows == 3


def test_a_worded_attribute_counts_the_loaded_ads_and_a_worded_metric_fails_the_ad_reports(
    server, world
):
    """Issue 20, point 3 at the ad level: TKT004's warning counts its loaded rows (classic
    ads and Upgraded Smart+ ads read by ``ad_id_v2``), not the creative rows it leaves out;
    TKT043 counts its creatives; a delivery metric as a word fails both reports."""
    advertiser, end = world.advertiser_ids[0], START + timedelta(days=6)
    items = [(advertiser, AD_SPEC), (advertiser, CREATIVES)]
    server.reset()
    server.configure(qps=50, qpm=3000)
    _, clean = extract(server, items, START, end)
    server.configure(worded_metrics={"campaign_budget": "lots"})
    results, tables = extract(server, items, START, end)
    for result in results:
        spec = registry.get(result.report_type)
        table = tables[(spec.report_type, advertiser)]
        expected = by_key(spec, clean[(spec.report_type, advertiser)].to_pylist())
        for row in expected.values():
            row["campaign_budget"] = None
        assert by_key(spec, table.to_pylist()) == expected
        assert result.status == "success" and result.rows == len(table) > 0
        assert result.warnings == [
            f"{spec.report_type} attribute campaign_budget: {len(table)} row(s) held a value "
            "that is not a FLOAT64 number (e.g. 'lots'), loaded as null"
        ]
    assert len(tables[("ad", advertiser)]) < len(tables[("ad_creative", advertiser)])
    server.configure(worded_metrics={"spend": "n/a"})
    results, _ = extract(server, items, START, end)
    for result in results:
        assert result.status == "error" and result.warnings == []
        assert result.error.startswith(
            f"advertiser {advertiser}: metric spend: value not a FLOAT64 number ("
        )
