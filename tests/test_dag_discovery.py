"""The DAG with ``TIKTOK_ADVERTISER_IDS`` unset: discovery through the service's GET
/advertisers at each run, the entity tables loaded before the reports, a closed account
reported and not run, and an account whose access was removed reported at the next run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.dag_runs import SECRET, run_dag, run_xcoms, task_logs
from tiktok_ads import config as config_module
from tiktok_ads import fanout
from tiktok_ads import windows as dag_windows

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_discovered_advertisers_fan_out_and_lost_ones_are_reported(
    runnable_dag: Any,
    variables: Any,
    app_service: str,
    sim: Any,
    sim_world: Any,
    local_bigquery: Any,
    bq_dataset: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.configure(add_token={"token": SECRET, "advertiser_ids": "*"})
    variables(
        TIKTOK_ADS_CLOUD_RUN_URL=app_service,
        TIKTOK_ACCESS_TOKEN=SECRET,
        GCP_PROJECT=local_bigquery.project,
        GCP_REGION="us-central1",
        TIKTOK_BQ_DATASET=bq_dataset,
        TIKTOK_BATCH_SIZE="1",
        TIKTOK_REPORT_TYPES='["advertiser"]',
        TIKTOK_SETTLEMENT_DAYS="0",  # a run on a Monday must not turn into a weekly settlement
    )  # TIKTOK_ADVERTISER_IDS and TIKTOK_ENTITY_TYPES unset: discovery, all four entity types
    first, second, closed = sim_world.advertiser_ids  # the third is seeded STATUS_DISABLE
    day = datetime.now(UTC).date() - timedelta(days=1)

    run, states = run_dag(runnable_dag, day)

    assert str(run.state) == "success", states
    xcoms = run_xcoms(run)
    requests = xcoms[("prepare_payload", -1)]
    assert [r["payload"]["advertiser_ids"] for r in requests] == [[first], [second]]
    assert requests[0]["payload"]["report_types"] == [
        "advertiser_info", "campaigns", "adgroups", "ads", "advertiser"
    ]  # fmt: skip
    outcome = xcoms[("validate_result", -1)]
    assert outcome["failures"] == []
    assert outcome["rows_by_table"][f"{bq_dataset}.TKT011_TIKTOK_ADS_CAMPAIGN_HISTORY"] > 0
    logs = task_logs(capfd, caplog)
    assert f"advertiser not run: {closed} (" in logs and "account closed (STATUS_DISABLE)" in logs

    sim.configure(remove_permission={"advertiser_id": first, "token": SECRET})
    run, states = run_dag(runnable_dag, day + timedelta(days=1))

    assert str(run.state) == "success", states
    requests = run_xcoms(run)[("prepare_payload", -1)]
    assert [r["payload"]["advertiser_ids"] for r in requests] == [[second]]
    logs = task_logs(capfd, caplog)
    assert f"{first}: granted at the previous run, not any more (access removed)" in logs
    assert SECRET not in logs


def test_auto_settlement_sizes_each_advertisers_window() -> None:
    raw = {
        "TIKTOK_ADS_CLOUD_RUN_URL": "https://svc.a.run.app",
        "GCP_PROJECT": "my-project",
        "GCP_REGION": "europe-west1",
        "TIKTOK_SETTLEMENT_DAYS": "auto",
        "TIKTOK_ENTITY_TYPES": "[]",
        "TIKTOK_REPORT_TYPES": '["ad"]',
    }
    config, problems = config_module.parse_config(raw)
    assert problems == [] and config["settlement_days"] == "auto"
    monday = datetime(2026, 11, 23).date()
    assert dag_windows.is_settlement_day(monday, config)
    assert dag_windows.scheduled_window(monday, config)[0] == monday - timedelta(days=28)
    days = {"1": 28, "2": 7, "3": 0, "4": 7}  # 0: no delivery, the daily window only
    requests = fanout.build_auto_settlement(config, monday, days)
    windows = {
        (
            tuple(r["payload"]["advertiser_ids"]),
            r["payload"]["start_date"],
            r["payload"]["end_date"],
        )
        for r in requests
    }
    yesterday = (monday - timedelta(days=1)).isoformat()
    assert (("3",), (monday - timedelta(days=3)).isoformat(), yesterday) in windows
    assert (("2", "4"), (monday - timedelta(days=7)).isoformat(), yesterday) in windows
    starts = sorted(
        r["payload"]["start_date"] for r in requests if r["payload"]["advertiser_ids"] == ["1"]
    )
    assert (
        starts[0] == (monday - timedelta(days=28)).isoformat() and len(starts) == 4
    )  # 7-day spans
    assert len(requests) == 6
    assert {(r["payload"]["max_qps"], r["payload"]["max_qpm"]) for r in requests} == {(5.0, 300)}


def test_auto_settlement_run_asks_the_service_for_each_advertisers_days(
    runnable_dag: Any,
    variables: Any,
    app_service: str,
    sim: Any,
    sim_world: Any,
    local_bigquery: Any,
    bq_client: Any,
    bq_dataset: str,
) -> None:
    import requests

    # The third advertiser's delivering ad groups have windows of at most 14 days.
    loaded, never_loaded = sim_world.advertiser_ids[2], sim_world.advertiser_ids[1]
    today = datetime.now(UTC).date()
    body = {"access_token": SECRET, "advertiser_ids": [loaded], "project_id": local_bigquery.project,
            "dataset_id": bq_dataset, "report_types": ["adgroups", "adgroup"],
            "start_date": (today - timedelta(days=20)).isoformat(),
            "end_date": (today - timedelta(days=2)).isoformat()}  # fmt: skip
    sim.configure(add_token={"token": SECRET, "advertiser_ids": "*"})
    assert requests.post(f"{app_service}/run", json=body, timeout=300).status_code == 200
    expected = requests.get(
        f"{app_service}/settlement_days",
        params={"project_id": local_bigquery.project, "dataset_id": bq_dataset,
                "advertiser_ids": loaded, "max_days": "28"},
        timeout=60,
    ).json()["settlement_days"][loaded]["days"]  # fmt: skip
    variables(
        TIKTOK_ADS_CLOUD_RUN_URL=app_service,
        TIKTOK_ACCESS_TOKEN=SECRET,
        GCP_PROJECT=local_bigquery.project,
        GCP_REGION="us-central1",
        TIKTOK_BQ_DATASET=bq_dataset,
        TIKTOK_ADVERTISER_IDS=f'["{loaded}", "{never_loaded}"]',
        TIKTOK_ENTITY_TYPES="[]",
        TIKTOK_REPORT_TYPES='["advertiser"]',
        TIKTOK_SETTLEMENT_DAYS="auto",
    )
    monday = today - timedelta(days=today.weekday())

    run, states = run_dag(runnable_dag, monday)

    assert str(run.state) == "success", states
    requests_ = run_xcoms(run)[("prepare_payload", -1)]
    first_day = {}
    for request in requests_:
        for advertiser in request["payload"]["advertiser_ids"]:
            day = request["payload"]["start_date"]
            first_day[advertiser] = min(first_day.get(advertiser, day), day)
    assert first_day[never_loaded] == (monday - timedelta(days=28)).isoformat()
    assert first_day[loaded] == (monday - timedelta(days=max(expected, 3))).isoformat()
    assert 3 < expected < 28  # sized from the windows, not the ceiling
