"""Running the DAG in tests: its Variables, ``dag.test()`` of one day, what the run left in
XCom and in the logs. Airflow is imported only inside the functions that need it, so the
fast tests of the DAG package can import the constants without Airflow."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

DAG_ID = "tiktok_ads_to_bigquery"
SECRET = "dag-test-secret-token-5f1c"  # never a real token; searched for in XCom and logs
UNKNOWN_ADVERTISER = "7999999999999999999"  # no token is granted it: the simulator answers 40001


def valid_variables(url: str = "https://tiktok-ads-api-abc-ew.a.run.app") -> dict[str, str]:
    """The Variables a deployment must set, valid (the service URL may be the test's)."""
    return {
        "TIKTOK_ADS_CLOUD_RUN_URL": url,
        "TIKTOK_ACCESS_TOKEN": SECRET,
        "TIKTOK_ADVERTISER_IDS": '["7012345678901234567", "7012345678901234568"]',
        "GCP_PROJECT": "my-project",
        "GCP_REGION": "europe-west1",
    }


def run_dag(dag: Any, day: date, conf: dict[str, Any] | None = None) -> tuple[Any, dict]:
    """dag.test() for the run of ``day`` (08:00 UTC); the run and its task states by task."""
    run = dag.test(
        logical_date=datetime(day.year, day.month, day.day, 8, tzinfo=UTC), run_conf=conf
    )
    states: dict[str, list[str]] = {}
    for ti in run.get_task_instances():
        states.setdefault(ti.task_id, []).append(str(ti.state))
    return run, {task_id: sorted(values) for task_id, values in states.items()}


def task_logs(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """What the run logged: Airflow's own output (stdout/stderr) and stdlib log records."""
    out = capfd.readouterr()
    return "\n".join((out.out, out.err, caplog.text))


def run_xcoms(run: Any) -> dict[tuple[str, int], Any]:
    """The run's XCom values, read back from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id)
        ).all()
        return {(row.task_id, row.map_index): row.value for row in rows}
