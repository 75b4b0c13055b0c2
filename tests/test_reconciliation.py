"""Reconciliation across levels on every /run (controller/reconciliation.py).

The real service on 127.0.0.1, the simulator and local BigQuery. The simulator's
``dropped_campaigns`` setting leaves one campaign's rows out at the ad group and ad levels
only (as if TikTok changed a default filter there, e.g. Promote campaigns): the service must
report the missing amounts on exactly the days that campaign delivered, and nothing on a
clean run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date

import pytest

from controller.reconciliation import Reconciler
from controller.reports.catalog import REPORTS
from database.run_log import RUN_LOG_TABLE
from tests.support.service_calls import END, START, payload, post_run
from tests.support.truth import truth_rows

METRICS = ("spend", "impressions", "clicks", "conversion")


def test_a_clean_run_reports_nothing(service, sim, sim_world, bq_client, bq_dataset):
    advertisers = sim_world.advertiser_ids[:2]
    response = post_run(service, payload(bq_client.project, bq_dataset, advertisers))
    body = response.json()
    assert response.status_code == 200 and body["status"] == "Ok", body
    assert len(body["results"]) == 8 and body["total_inserted_rows"] > 0
    assert body["reconciliation"] == []
    assert all(item["warnings"] == [] for item in body["results"])


@pytest.mark.parametrize("dropping", ["PROMOTE", "one campaign"])
def test_rows_missing_at_lower_levels_are_reported_with_amounts_and_days(
    dropping, service, sim, sim_world, bq_client, bq_dataset
):
    """``PROMOTE``: the Promote campaigns' rows vanish below the campaign level, as if TikTok
    changed its default ``campaign_system_origins`` there; "one campaign": the busiest one."""
    advertiser, other = sim_world.advertiser_ids[:2]
    campaign_rows = truth_rows(sim_world, REPORTS["campaign"], advertiser, START, END)
    by_campaign: dict[str, list[dict]] = defaultdict(list)
    for row in campaign_rows:
        by_campaign[row["campaign_id"]].append(row)
    if dropping == "PROMOTE":
        (dropped,) = sim_world.promote_ids(advertiser, "AUCTION_CAMPAIGN")
        setting = ["PROMOTE"]
    else:
        dropped = max(by_campaign, key=lambda c: len(by_campaign[c]))  # the busiest campaign
        setting = [dropped]
    sim.configure(dropped_campaigns={"AUCTION_ADGROUP": setting, "AUCTION_AD": setting})

    response = post_run(service, payload(bq_client.project, bq_dataset, [advertiser, other]))
    body = response.json()
    # A gap is reported, not a failure: every report loaded.
    assert response.status_code == 200 and body["status"] == "Ok" and body["errors_count"] == 0

    found = {
        (d["date"], d["metric"]): d
        for d in body["reconciliation"]
        if d["advertiser_id"] == advertiser
    }
    # Every account has a Promote campaign: with PROMOTE dropped, the other one shows too.
    others_affected = dropping == "PROMOTE"
    assert {d["advertiser_id"] for d in body["reconciliation"]} == (
        {advertiser, other} if others_affected else {advertiser}
    )
    missing = {
        (row["date"].isoformat(), metric): row[metric]
        for row in by_campaign[dropped]
        for metric in METRICS
        if row[metric]
    }
    assert set(found) == set(missing), (sorted(found), sorted(missing))
    for key, gap in missing.items():
        values = found[key]["values"]
        assert set(values) == {"advertiser", "campaign", "adgroup", "ad"}
        assert values["advertiser"] == pytest.approx(values["campaign"], abs=0.011)
        assert values["adgroup"] == pytest.approx(values["ad"], abs=0.011)
        assert values["campaign"] - values["ad"] == pytest.approx(gap, abs=0.011), key
    spend_days = sorted(day for day, metric in missing if metric == "spend")
    spend_gap = round(sum(v for (_, m), v in missing.items() if m == "spend"), 2)
    print(
        f"dropped {dropping} campaign {dropped}: {len(by_campaign[dropped])} days, "
        f"{len(found)} differences, spend missing {spend_gap} on {spend_days}"
    )
    assert len(spend_days) == len(by_campaign[dropped]) > 0

    for item in body["results"]:
        if item["advertiser_id"] == advertiser:
            (warning,) = item["warnings"]
            assert warning.startswith(f"levels do not add up on {len(spend_days)} day(s) (")
        elif not others_affected:
            assert item["warnings"] == []
    query = (
        f"SELECT advertiser_id, report_type, reconciliation_differences, reconciliation "
        f"FROM `{bq_client.project}.{bq_dataset}.{RUN_LOG_TABLE}` "
        f"WHERE request_id = '{body['request_id']}'"
    )
    logged = {
        (row["advertiser_id"], row["report_type"]): row
        for row in bq_client.query(query).result(timeout=60)
    }
    for report_type in ("advertiser", "campaign", "adgroup", "ad"):
        row = logged[(advertiser, report_type)]
        assert row["reconciliation_differences"] == len(found)
        assert json.loads(row["reconciliation"]) == list(found.values())
        assert (logged[(other, report_type)]["reconciliation_differences"] > 0) is others_affected


def test_rounding_is_not_a_difference_and_unloaded_metrics_are_not_compared() -> None:
    import pyarrow as pa

    day = date(2025, 5, 1)

    def page(spends: list[float], clicks: list[int | None]) -> pa.Table:
        return pa.table(
            {
                "date": pa.array([day] * len(spends)),
                "spend": pa.array(spends, pa.float64()),
                "clicks": pa.array(clicks, pa.int64()),
            }
        )

    reconciler = Reconciler()
    reconciler.add("advertiser", "1", page([3.01], [None]))  # clicks refused at this level
    reconciler.add("ad", "1", page([1.0, 1.0, 1.0], [4, 5, 6]))  # 3 rows: 3 cents of rounding
    reconciler.add("ad", "1", page([], []))
    assert reconciler.differences([("1", "advertiser"), ("1", "ad")]) == []
    reconciler.add("ad", "1", page([0.02], [1]))  # now 4 rows, 3.02 against 3.01: still rounding
    assert reconciler.differences([("1", "advertiser"), ("1", "ad")]) == []
    reconciler.add("advertiser", "1", page([0.5], [None]))
    (difference,) = reconciler.differences([("1", "advertiser"), ("1", "ad")])
    assert (difference.metric, difference.values) == ("spend", {"advertiser": 3.51, "ad": 3.02})
    # A level whose report failed (not committed) is not compared.
    assert reconciler.differences([("1", "advertiser")]) == []
