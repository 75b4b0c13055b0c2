"""Metric families: the simulator serves every leg consistently, and every family loads.

The simulator's values are checked against their definitions (cost per = spend / count,
rates over clicks, total web payment value = payments x value per payment, no negative
value, "0" on a web-only advertiser's App leg); the extraction is checked against the
simulator's ground truth with every family (three requests per level joined on the
dimensions), with rows missing from one request of a level, and with fewer families (their
columns kept, null); the service refuses an unknown family naming it and writes null in
the columns of the families a ``replace`` did not ask for.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
import requests

from controller.reports.catalog import REPORTS, MetricType, arrow_schema
from controller.reports.metrics import FAMILIES
from controller.tiktok.origins import ALL_ORIGINS
from tests.support.extraction_calls import assert_equals_truth, extract, report_calls
from tests.support.service_calls import payload, post_run
from tests.support.truth import by_key, truth_rows
from tests.support.warehouse import table_rows
from tiktok_simulator.report import served_rows

START, END = date(2025, 3, 1), date(2025, 3, 10)
# Cost names that do not follow "cost_per_<count>", and their counts
# (docs/tiktok_api_beyond.md §2.2-2.5).
IRREGULAR_COSTS = {
    "cost_per_page_content_view_event": "page_content_view_events",
    "cost_per_onsite_destination_visit": "onsite_destination_visits",
    "cost_per_vta_payments_completed": "vta_complete_payment",
    "cost_per_engaged_view_through_conversion": "engaged_view_through_conversions",
}


def _count_of_cost(name: str, names: set[str]) -> str | None:
    if name in IRREGULAR_COSTS:
        return IRREGULAR_COSTS[name]
    if name.startswith("onsite_cost_per_unique_"):
        return "onsite_unique_" + name.removeprefix("onsite_cost_per_unique_")
    if name.startswith("onsite_cost_per_"):
        return "onsite_total_" + name.removeprefix("onsite_cost_per_")
    count = name.removeprefix("cost_per_")
    return count if name.startswith("cost_per_") and count in names else None


def _number(text: str) -> float | None:
    return None if text == "-" else float(text)


@pytest.mark.parametrize("level", ["AUCTION_ADVERTISER", "AUCTION_CAMPAIGN", "AUCTION_AD"])
def test_simulator_serves_every_leg_consistently(sim_world, level):
    spec = next(s for s in REPORTS.values() if s.data_level == level)
    names = set(spec.metric_names)
    costs = {n: _count_of_cost(n, names) for n in names}
    costs = {n: c for n, c in costs.items() if c is not None}
    assert len(costs) >= 60  # every family's cost metrics, checked below
    checked = 0
    for advertiser in sim_world.advertiser_ids:
        rows = served_rows(
            sim_world, advertiser, level, START, END, spec.metric_names, origins=ALL_ORIGINS
        )
        assert rows
        for row in rows:
            m = row["metrics"]
            spend = float(m["spend"])
            for name, kind in spec.metrics.items():
                value = _number(m[name])
                assert value is None or value >= 0, (name, m[name])
                if kind is MetricType.INT and value is not None:
                    assert m[name].isdigit(), (name, m[name])
            for cost, count in costs.items():
                if m[count] == "-":  # not applicable (no secondary goal): its cost neither
                    assert m[cost] == "-"
                    continue
                n = int(m[count])
                if n == 0:
                    assert m[cost] == "-", (cost, m[cost])  # nothing to divide by: null
                else:
                    assert abs(float(m[cost]) - spend / n) <= 0.005 + 1e-9, (cost, count)
                    checked += 1
            for event in ("complete_payment", "web_event_add_to_cart", "onsite_shopping"):
                clicks, count = int(m["clicks"]), int(m[event])
                if clicks:
                    assert abs(float(m[f"{event}_rate"]) - 100 * count / clicks) <= 0.005
            # total_complete_payment_rate is the total value: payments x value per payment
            payments = int(m["complete_payment"])
            total = float(m["total_complete_payment_rate"])
            if payments:
                per = float(m["value_per_complete_payment"])
                assert abs(total - payments * per) <= payments * 0.005 + 1e-9
            else:
                assert total == 0 and m["value_per_complete_payment"] == "-"
            if sim_world.is_web_only(advertiser):  # a pixel advertiser: the App leg is "0"
                assert m["app_install"] == m["total_purchase"] == m["vta_purchase"] == "0"
                assert m["total_purchase_value"] == "0.00"
    assert checked > 1000


def test_the_levels_refuse_what_tiktok_refuses(sim, sim_world):
    params = {
        "advertiser_id": sim_world.advertiser_ids[0],
        "report_type": "BASIC",
        "data_level": "AUCTION_AD",
        "dimensions": '["ad_id","stat_time_day"]',
        "metrics": '["spend","total_complete_payment_value"]',
        "start_date": "2025-03-01",
        "end_date": "2025-03-02",
    }
    body = requests.get(
        sim.base_url + "report/integrated/get/",
        params=params,
        headers={"Access-Token": "sim-token"},
        timeout=10,
    ).json()
    assert (body["code"], body["message"]) == (
        40002,
        "Please correct the information in invalid metric fields and try again. "
        "Invalid metric fields: ['total_complete_payment_value'].",
    )


def test_every_family_loads_with_its_types(sim, sim_world):
    advertiser = sim_world.advertiser_ids[1]  # web-only: the App leg loads as 0, not null
    items = [(advertiser, spec) for spec in REPORTS.values()]
    results, tables = extract(sim, items)
    assert {r.status for r in results} == {"success"}
    assert {r.report_type: r.requests for r in results} == dict.fromkeys(REPORTS, 3)
    for spec in REPORTS.values():
        table = tables[(spec.report_type, advertiser)]
        assert assert_equals_truth(sim_world, spec, advertiser, table) > 0
        for family in FAMILIES.values():
            for name, kind in family.metrics.items():
                expected = pa.int64() if kind is MetricType.INT else pa.float64()
                assert table.schema.field(name).type == expected, name
        for name in ("complete_payment", "onsite_shopping", "onsite_total_purchase"):
            assert sum(table.column(name).to_pylist()) > 0, name  # the web/TikTok/Shop legs
        assert set(table.column("app_install").to_pylist()) == {0}
        assert table.column("total_complete_payment_rate").null_count == 0


def test_a_part_missing_rows_loses_and_duplicates_nothing(sim, sim_world):
    # TikTok leaves out rows without data per request: each metric group of a level then
    # holds different rows, and their full outer join must keep each row exactly once.
    sim.configure(sparse_parts=True)
    advertiser, spec = sim_world.advertiser_ids[0], REPORTS["ad"]
    start, end = date(2025, 3, 1), date(2025, 3, 30)
    result, tables = extract(sim, [(advertiser, spec)], start, end)
    assert result[0].status == "success" and result[0].requests == 3
    table = tables[("ad", advertiser)].drop_columns(["_extracted_at"])
    expected = by_key(spec, truth_rows(sim_world, spec, advertiser, start, end))
    got = by_key(spec, table.to_pylist())  # asserts no duplicate key
    assert got.keys() == expected.keys() and len(got) > 200
    groups = spec.metric_groups()
    missing = [0] * len(groups)
    for k, row in got.items():
        for i, group in enumerate(groups):
            values = [row[m] for m in group if expected[k][m] is not None]
            if all(v is None for v in values):
                missing[i] += 1
            else:
                assert all(row[m] == expected[k][m] for m in group), (k, i)
    # The part with spend has every row; each of the other parts lacked some.
    assert missing[0] == 0 and all(count > 0 for count in missing[1:]), missing


def test_fewer_families_ask_less_and_keep_every_column(sim, sim_world):
    advertiser, spec = sim_world.advertiser_ids[0], REPORTS["ad"]
    result, tables = extract(sim, [(advertiser, spec)], families=("in_app",))
    assert result[0].status == "success"
    calls = report_calls(sim)
    assert [len(c["metrics"].split(",")) for c in calls] == [75]  # attributes, core, in_app
    table = tables[("ad", advertiser)]
    assert table.schema.names == arrow_schema(spec).names  # every family's column
    assert table.column("complete_payment").null_count == len(table) > 0
    assert table.column("app_install").null_count == 0
    assert table.column("likes").null_count == len(table)  # engagement not asked either
    assert assert_equals_truth(sim_world, spec, advertiser, table, families=("in_app",))


def test_service_refuses_an_unknown_family_naming_it(service):
    body = payload("my-project", "raw", ["7000000000000000001"], metric_families=["in_app", "webb"])
    response = post_run(service, body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["metric_families"]
    assert "unknown metric family 'webb'" in errors[0]["message"]


def test_service_replace_with_fewer_families_writes_null_in_the_others(
    service, sim, sim_world, bq_client, bq_dataset
):
    advertiser, spec = sim_world.advertiser_ids[0], REPORTS["campaign"]
    body = payload(bq_client.project, bq_dataset, [advertiser], report_types=["campaign"])
    assert post_run(service, body).status_code == 200
    loaded = table_rows(bq_client, bq_dataset, spec.table)
    assert all(r["complete_payment"] is not None for r in loaded)
    response = post_run(service, {**body, "metric_families": ["in_app"]})
    assert response.status_code == 200, response.json()
    loaded = table_rows(bq_client, bq_dataset, spec.table)
    for row in loaded:
        del row["_extracted_at"]
    expected = truth_rows(sim_world, spec, advertiser, *_window(body), families=("in_app",))
    assert by_key(spec, loaded) == by_key(spec, expected)
    assert {r["complete_payment"] for r in loaded} == {None}  # same columns, web leg null
    table = bq_client.get_table(f"{bq_dataset}.{spec.table}")
    assert {f.name for f in table.schema} >= set(spec.metric_names)


def _window(body: dict) -> tuple[date, date]:
    return date.fromisoformat(body["start_date"]), date.fromisoformat(body["end_date"])
