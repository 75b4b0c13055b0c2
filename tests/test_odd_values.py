"""One odd value never costs a report (issue 20, point 3): POST /run → simulator → BigQuery.

An attribute value that does not fit its column (a budget written as a word) loads as null
with one warning per column naming it, the value (truncated) and the row count; the rest of
the row loads. A delivery metric that does not parse still fails its report, nothing loaded.
The simulator's ``worded_metrics`` serves the word on every row holding the metric.
"""

from __future__ import annotations

from datetime import date

import requests

from controller.reports.catalog import REPORTS
from controller.tiktok.reader import OddValues, page_to_table
from tests.support.truth import by_key, truth_rows
from tests.support.warehouse import table_rows

TOKEN = "sim-token"
START, END = date(2025, 5, 1), date(2025, 5, 7)
WORD = "no limit, spend as much as the campaign can"  # 44 characters: the warning cuts it


def _run(service, project: str, dataset: str, advertiser: str, report_types: list[str]) -> dict:
    body = {
        "access_token": TOKEN,
        "advertiser_ids": [advertiser],
        "project_id": project,
        "dataset_id": dataset,
        "if_exists": "replace",
        "start_date": START.isoformat(),
        "end_date": END.isoformat(),
        "report_types": report_types,
    }
    return requests.post(f"{service.url}/run", json=body, timeout=300).json()


def _loaded(bq_client, dataset: str, table: str) -> list[dict]:
    rows = table_rows(bq_client, dataset, table)
    for row in rows:
        row.pop("_extracted_at")
    return rows


def test_an_attribute_served_as_a_word_loads_as_null_with_one_warning(
    service, sim, sim_world, bq_client, bq_dataset
):
    advertiser = sim_world.advertiser_ids[0]
    sim.configure(worded_metrics={"campaign_budget": WORD})
    body = _run(service, bq_client.project, bq_dataset, advertiser, ["campaign", "adgroup"])
    assert body["errors_count"] == 0, body
    for item in body["results"]:
        spec = REPORTS[item["report_type"]]
        expected = truth_rows(sim_world, spec, advertiser, START, END)
        for row in expected:
            row["campaign_budget"] = None  # the word, loaded as null
        assert expected and by_key(spec, _loaded(bq_client, bq_dataset, spec.table)) == by_key(
            spec, expected
        )
        assert item["status"] == "success" and item["inserted_rows"] == len(expected)
        assert item["warnings"] == [
            f"{spec.report_type} attribute campaign_budget: {len(expected)} row(s) held a value "
            "that is not a FLOAT64 number (e.g. 'no limit, spend as much as the campaign ...'), "
            "loaded as null"
        ]


def test_a_metric_served_as_a_word_fails_its_report_and_loads_nothing(
    service, sim, sim_world, bq_client, bq_dataset
):
    advertiser = sim_world.advertiser_ids[0]
    sim.configure(worded_metrics={"cash_spend": "n/a"})  # the advertiser level's alone
    body = _run(service, bq_client.project, bq_dataset, advertiser, ["advertiser", "campaign"])
    results = {item["report_type"]: item for item in body["results"]}
    failed = results["advertiser"]
    assert failed["status"] == "error" and failed["inserted_rows"] == 0
    assert failed["error"].startswith(
        f"advertiser {advertiser}: metric cash_spend: value not a FLOAT64 number ("
    )
    assert "n/a" in failed["error"] and failed["warnings"] == []
    assert _loaded(bq_client, bq_dataset, REPORTS["advertiser"].table) == []
    spec = REPORTS["campaign"]
    expected = truth_rows(sim_world, spec, advertiser, START, END)
    assert results["campaign"]["status"] == "success" and results["campaign"]["warnings"] == []
    assert by_key(spec, _loaded(bq_client, bq_dataset, spec.table)) == by_key(spec, expected)


def test_odd_attribute_values_are_counted_and_the_others_typed_as_usual():
    spec = REPORTS["ad"]
    names = ["campaign_name", "ad_name", "campaign_budget", "budget", "spend"]
    cells = [
        {"campaign_name": "a", "ad_name": 7, "campaign_budget": "12.5", "budget": "-"},
        {"campaign_name": {"x": 1}, "ad_name": "b", "campaign_budget": "lots", "budget": "3"},
        {"campaign_name": "c", "ad_name": "d", "campaign_budget": "lots", "budget": "4.0"},
    ]
    rows = [
        {"dimensions": {"ad_id": str(i), "stat_time_day": "2025-05-01 00:00:00"}, "metrics": m}
        for i, m in enumerate({**c, "spend": "1.50"} for c in cells)
    ]
    odd = OddValues()
    table = page_to_table(spec, names, rows, odd)
    assert table.select(names).to_pydict() == {
        "campaign_name": ["a", None, "c"],
        "ad_name": ["7", "b", "d"],  # a number where a name belongs: its text
        "campaign_budget": [12.5, None, None],
        "budget": [None, 3.0, 4.0],
        "spend": [1.5, 1.5, 1.5],
    }
    assert odd.warnings("ad") == [
        "ad attribute campaign_budget: 2 row(s) held a value that is not a FLOAT64 number "
        "(e.g. 'lots'), loaded as null",
        "ad attribute campaign_name: 1 row(s) held a value that is not a string "
        "(e.g. '{\"x\":1}'), loaded as null",
    ]
