"""The DAG with ``TIKTOK_ADVERTISER_IDS`` unset: discovery through the service's GET
/advertisers at each run, the entity tables loaded before the reports, a closed account
reported and not run, and an account whose access was removed reported at the next run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.test_dag import (  # noqa: F401 (fixtures)
    SECRET,
    dag_module,
    run_dag,
    run_xcoms,
    runnable_dag,
    task_logs,
    variables,
)
from tests.test_entities import app_service  # noqa: F401 (fixture)

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_discovered_advertisers_fan_out_and_lost_ones_are_reported(
    runnable_dag: Any,  # noqa: F811 (the imported fixture)
    variables: Any,  # noqa: F811 (the imported fixture)
    app_service: str,  # noqa: F811 (the imported fixture)
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
