"""Promote campaigns: hidden by TikTok's default origins filter, loaded at every level here.

Both answers of the unknown "several origins in one filter" question are tested: the
simulator's ``mixed_origins`` setting accepts the combined ``IN`` list, or refuses it with
40002 naming the filter, and then the client asks per origin and puts the rows together.
"""

from __future__ import annotations

from datetime import date

import orjson
import requests

from controller.reports.catalog import REPORTS
from controller.tiktok.origins import ADVERTISER_WARNING, ALL_ORIGINS, REGULAR
from tests.support.extraction_calls import assert_equals_truth, extract, report_calls
from tests.support.service_calls import payload, post_run
from tests.support.truth import by_key, truth_rows
from tests.support.warehouse import table_rows
from tiktok_simulator.report import served_rows

START, END = date(2025, 3, 1), date(2025, 3, 10)
ORIGINS_FILTER = "campaign_system_origins"


def _report(sim, **params) -> dict:
    base = {
        "report_type": "BASIC",
        "dimensions": '["campaign_id","stat_time_day"]',
        "data_level": "AUCTION_CAMPAIGN",
        "metrics": '["spend","campaign_name"]',
        "start_date": "2025-03-01",
        "end_date": "2025-03-30",
        "page_size": "1000",
    }
    return requests.get(
        sim.base_url + "report/integrated/get/",
        params={**base, **params},
        headers={"Access-Token": "sim-token"},
        timeout=10,
    ).json()


def _origins(*values: str) -> str:
    return orjson.dumps(
        [
            {
                "field_name": ORIGINS_FILTER,
                "filter_type": "IN",
                "filter_value": orjson.dumps(values).decode(),
            }
        ]
    ).decode()


def test_simulator_hides_promote_unless_the_filter_asks(sim, sim_world):
    advertiser = sim_world.advertiser_ids[0]
    (promote,) = sim_world.promote_ids(advertiser, "AUCTION_CAMPAIGN")
    default = {
        r["dimensions"]["campaign_id"]
        for r in _report(sim, advertiser_id=advertiser)["data"]["list"]
    }
    asked = _report(sim, advertiser_id=advertiser, filtering=_origins("PROMOTE"))["data"]["list"]
    assert promote not in default and asked
    assert {r["dimensions"]["campaign_id"] for r in asked} == {promote}
    assert all(r["metrics"]["campaign_name"].startswith("Promote: ") for r in asked)
    both = _report(sim, advertiser_id=advertiser, filtering=_origins(*ALL_ORIGINS))["data"]["list"]
    assert {r["dimensions"]["campaign_id"] for r in both} == default | {promote}
    sim.configure(mixed_origins=False)
    refused = _report(sim, advertiser_id=advertiser, filtering=_origins(*ALL_ORIGINS))
    assert (refused["code"], refused["message"]) == (
        40002,
        "filtering: campaign_system_origins: Only one value is allowed in filter_value, got 2.",
    )


def test_promote_ads_carry_other_and_zero_for_unsupported_metrics(sim_world):
    advertiser = sim_world.advertiser_ids[0]
    (ad,) = sim_world.promote_ids(advertiser, "AUCTION_AD")
    rows = served_rows(sim_world,
        advertiser, "AUCTION_AD", "2025-01-01", "2025-06-30",
        ["promotion_type", "spend", "vta_app_install", "complete_payment", "app_install"],
        origins=("PROMOTE",),
    )  # fmt: skip
    assert rows and {r["dimensions"]["ad_id"] for r in rows} == {ad}
    for row in rows:
        m = row["metrics"]
        assert m["promotion_type"] == "Other" and float(m["spend"]) > 0
        assert m["vta_app_install"] == m["complete_payment"] == m["app_install"] == "0"


def _check_every_level(sim_world, advertiser, tables, combined: bool = True) -> None:
    spends = {}
    for spec in REPORTS.values():
        table = tables[(spec.report_type, advertiser)]
        if spec.by_entity or combined:
            assert assert_equals_truth(sim_world, spec, advertiser, table) > 0
        else:  # the advertiser level without the filter: TikTok's default origins
            expected = by_key(
                spec, truth_rows(sim_world, spec, advertiser, START, END, origins=(REGULAR,))
            )
            got = by_key(spec, table.drop_columns(["_extracted_at"]).to_pylist())
            assert got == expected and len(got) > 0
        spends[spec.report_type] = round(sum(table.column("spend").to_pylist()), 2)
        if spec.by_entity:
            promote = set(sim_world.promote_ids(advertiser, spec.data_level))
            assert promote <= set(table.column(spec.id_dimension).to_pylist())
    regular = sum(
        float(r["metrics"]["spend"])
        for r in served_rows(sim_world, advertiser, "AUCTION_ADVERTISER", START, END)
    )
    assert spends["campaign"] == spends["adgroup"] == spends["ad"] > round(regular, 2)
    # with the combined filter the advertiser total holds Promote spend too
    assert spends["advertiser"] == (spends["campaign"] if combined else round(regular, 2))


def test_every_level_includes_promote_with_one_combined_filter(sim, sim_world):
    advertiser = sim_world.advertiser_ids[0]
    results, tables = extract(sim, [(advertiser, spec) for spec in REPORTS.values()])
    assert {r.status for r in results} == {"success"}
    _check_every_level(sim_world, advertiser, tables)
    assert all(r.warnings == [] for r in results)
    calls = report_calls(sim)
    assert len(calls) == 12  # 3 metric groups x 4 levels, both origins in each request
    for call in calls:
        filters = {f["field_name"]: f["filter_value"] for f in orjson.loads(call["filtering"])}
        assert filters[ORIGINS_FILTER] == '["TT_ADS_PLATFORM","PROMOTE"]'


def test_a_refused_combined_filter_is_asked_per_origin_and_remembered(sim, sim_world):
    sim.configure(mixed_origins=False)
    advertiser = sim_world.advertiser_ids[0]
    items = [(advertiser, spec) for spec in REPORTS.values()]
    results, tables = extract(sim, items, workers=1)
    assert {r.status for r in results} == {"success"}
    _check_every_level(sim_world, advertiser, tables, combined=False)
    warnings = {r.report_type: r.warnings for r in results}
    assert warnings == {**{key: [] for key in REPORTS}, "advertiser": [ADVERTISER_WARNING]}
    log = [e for e in sim.stats()["log"] if e["path"].endswith("integrated/get/")]
    refused = [e for e in log if e["code"] == 40002]
    answered = [e for e in log if e["code"] == 0]
    # All 12 first requests were queued before TikTok's first answer; with one worker only
    # the first is sent combined: the refusal is remembered for every later request.
    assert len(refused) == 1 and ORIGINS_FILTER in refused[0]["params"]["filtering"]
    assert len(answered) == 9 * 2 + 3  # once per origin; the advertiser level once, unfiltered
    sent = [orjson.loads(e["params"]["filtering"]) for e in answered if "filtering" in e["params"]]
    values = [
        next(f["filter_value"] for f in fs if f["field_name"] == ORIGINS_FILTER) for fs in sent
    ]
    assert sorted(set(values)) == ['["PROMOTE"]', '["TT_ADS_PLATFORM"]']
    assert sum(r.requests for r in results) == len(log)


def test_service_loads_promote_at_every_level(service, sim, sim_world, bq_client, bq_dataset):
    sim.configure(mixed_origins=False)
    advertiser = sim_world.advertiser_ids[2]
    body = payload(bq_client.project, bq_dataset, [advertiser])
    response = post_run(service, body)
    assert response.status_code == 200, response.json()
    start, end = date.fromisoformat(body["start_date"]), date.fromisoformat(body["end_date"])
    spends = set()
    for spec in REPORTS.values():
        loaded = table_rows(bq_client, bq_dataset, spec.table)
        origins = ALL_ORIGINS if spec.by_entity else (REGULAR,)  # combined filter refused
        expected = truth_rows(sim_world, spec, advertiser, start, end, origins=origins)
        assert len(loaded) == len(expected) > 0
        key = spec.id_dimension
        assert sorted((r[key], r["stat_time_day"], r["spend"]) for r in loaded) == sorted(
            (r[key], r["stat_time_day"], r["spend"]) for r in expected
        )
        if spec.by_entity:
            promote = set(sim_world.promote_ids(advertiser, spec.data_level))
            assert promote <= {r[key] for r in loaded}
            spends.add(round(sum(r["spend"] for r in loaded), 2))
    assert len(spends) == 1
    items = {r["report_type"]: r for r in response.json()["results"]}
    # said twice: the advertiser level was read without Promote, and the levels then differ
    assert items["advertiser"]["warnings"][0] == ADVERTISER_WARNING
    assert "levels do not add up" in items["advertiser"]["warnings"][1]
