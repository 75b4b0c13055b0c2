"""The Composer DAG on real Airflow (3.x here), without a scheduler.

Structure tests read the parsed DagBag (the helpers are tested without Airflow in
tests/test_dag_package.py); the ``dag.test()`` runs execute every task in this process and POST to the real service on
127.0.0.1 (TikTok simulator + local BigQuery behind it). Airflow is configured by the
``tests.fixtures.airflow`` plugin before anything imports it: this module imports the DAG
module only inside fixtures. The fixtures that run the DAG (``variables``, ``runnable_dag``,
``e2e``) are the ``tests.fixtures.dag`` plugin's, the helpers tests/support/dag_runs.py's.
"""

from __future__ import annotations

import importlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.dag_runs import (
    DAG_ID,
    SECRET,
    UNKNOWN_ADVERTISER,
    run_dag,
    run_xcoms,
    task_logs,
    valid_variables,
)

TASK_IDS = {"validate_config", "prepare_payload", "call_cloud_run_api", "validate_result"}

# Raised inside Airflow's in-process execution API (fastapi.testclient), not by the DAG.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="session")
def dag_module() -> ModuleType:
    return importlib.import_module("dags.dag_tiktok_ads_to_bigquery")


@pytest.fixture(scope="session")
def parsed_dag(dag_bag: Any) -> Any:
    return dag_bag.dags[DAG_ID]


# --------------------------------------------------------------------------- structure


def test_dag_file_imports_without_errors_or_deprecations(dag_bag: Any) -> None:
    assert dag_bag.import_errors == {}
    assert dag_bag.captured_warnings == {}
    assert DAG_ID in dag_bag.dags


@pytest.mark.parametrize("syntax", ["glob", "regexp"])  # Airflow 3's default, Airflow 2's
def test_only_the_dag_file_is_parsed(syntax: str) -> None:
    """dags/.airflowignore keeps the package beside the DAG out of the scheduler's parse."""
    from airflow._shared.module_loading.file_discovery import find_path_from_directory

    from tests.fixtures.airflow import DAGS_FOLDER

    found = find_path_from_directory(DAGS_FOLDER, ".airflowignore", syntax)
    assert [Path(p).name for p in found if p.endswith(".py")] == ["dag_tiktok_ads_to_bigquery.py"]


def test_dag_schedule_and_run_policy(parsed_dag: Any) -> None:
    assert parsed_dag.schedule == "0 8 * * *"
    assert parsed_dag.timetable.expression == "0 8 * * *"
    assert str(parsed_dag.timetable.timezone) in {"UTC", "Timezone('UTC')"}
    assert parsed_dag.catchup is False
    assert parsed_dag.max_active_runs == 1
    assert parsed_dag.start_date < datetime.now(UTC)
    assert "roles/run.invoker" in parsed_dag.doc_md


def test_tasks_chain_in_order(parsed_dag: Any) -> None:
    assert set(parsed_dag.task_ids) == TASK_IDS
    upstream = {task.task_id: task.upstream_task_ids for task in parsed_dag.tasks}
    assert upstream == {
        "validate_config": set(),
        "prepare_payload": {"validate_config"},
        "call_cloud_run_api": {"prepare_payload"},
        "validate_result": {"call_cloud_run_api"},
    }


def test_only_the_service_call_retries_and_it_is_mapped(parsed_dag: Any) -> None:
    call = parsed_dag.get_task("call_cloud_run_api")
    assert type(call).__name__ == "DecoratedMappedOperator"
    assert call.retries == 2
    assert call.retry_delay == timedelta(minutes=5)
    assert call.pool == "tiktok_ads_api"  # its slots: the POSTs in flight at once
    for task_id in TASK_IDS - {"call_cloud_run_api"}:
        assert parsed_dag.get_task(task_id).retries == 0


@pytest.mark.parametrize("value", ["3", "lots"])
def test_parsing_reads_no_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """TIKTOK_MAX_PARALLEL_BATCHES, read at parse time before the pool, is read at run time
    now (it divides the rate budget); the parse reads no Variable at all (ruff AIR003)."""
    from airflow.sdk import Variable

    from tests.fixtures.airflow import load_dag_bag

    monkeypatch.setenv("AIRFLOW_VAR_TIKTOK_MAX_PARALLEL_BATCHES", value)
    read: list[str] = []
    monkeypatch.setattr(Variable, "get", lambda name, *a, **k: read.append(name))
    bag = load_dag_bag()
    assert bag.import_errors == {} and read == []
    assert bag.dags[DAG_ID].get_task("call_cloud_run_api").pool == "tiktok_ads_api"


def test_run_conf_is_declared_as_params(parsed_dag: Any) -> None:
    """The conf's keys are the DAG's params (the trigger form); the schema rejects what it can
    at trigger time, validate_config the rest (tests/test_dag_package.py)."""
    from airflow.sdk.exceptions import ParamValidationError

    params = parsed_dag.params
    assert set(params) == {"start_date", "end_date", "advertiser_ids", "report_types"}
    assert params.validate() == dict.fromkeys(params)  # a scheduled run: every key empty
    assert params.get_param("start_date").resolve("2024-01-01") == "2024-01-01"
    assert params.get_param("advertiser_ids").resolve(["7012345678901234567"])
    for key, bad in [
        ("start_date", "2024-1-1"),
        ("advertiser_ids", [7012345678901234567]),  # a JSON number: precision lost
        ("report_types", "ad"),
    ]:
        with pytest.raises(ParamValidationError):
            params.get_param(key).resolve(bad)


def test_permanent_errors_fail_the_task_without_retry(dag_module: ModuleType) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from tiktok_ads.errors import ServiceRejected, ServiceUnavailable

    @dag_module.fail_fast
    def call(error: Exception) -> None:
        raise error

    with pytest.raises(AirflowFailException, match="plan: the service rejected"):
        call(ServiceRejected("plan: the service rejected the request (HTTP 400)"))
    with pytest.raises(ServiceUnavailable):  # left to the task's retries
        call(ServiceUnavailable("batch 1/1: HTTP 503 from the service"))


# --------------------------------------------------------------------------- dag.test()


def test_missing_variable_fails_validate_config(
    runnable_dag: Any,
    variables: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    variables(**{**valid_variables(), "GCP_PROJECT": None, "TIKTOK_DAYS_REPROCESS": "three"})
    run, states = run_dag(runnable_dag, date(2026, 3, 10))
    assert str(run.state) == "failed"
    assert states["validate_config"] == ["failed"]
    assert states["prepare_payload"] == ["upstream_failed"]
    logs = task_logs(capfd, caplog)
    assert "invalid configuration: GCP_PROJECT: missing (required); " in logs
    assert "TIKTOK_DAYS_REPROCESS: must be a whole number, got 'three'" in logs
    assert SECRET not in logs


def test_bad_backfill_conf_fails_validate_config(
    runnable_dag: Any,
    variables: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    variables(**valid_variables())
    conf = {"start_date": "2026-03-09", "end_date": "2026-03-01"}
    _, states = run_dag(runnable_dag, date(2026, 3, 10), conf)
    assert states["validate_config"] == ["failed"]
    logs = task_logs(capfd, caplog)
    assert "run conf: start_date 2026-03-09 is after end_date 2026-03-01" in logs


# --------------------------------------------------------------------------- end to end


def metadata_db_text() -> str:
    """Every row of every table of the metadata DB (XCom, rendered fields, logs, runs...)."""
    from airflow.settings import engine
    from sqlalchemy import inspect, text

    with engine.connect() as connection:
        return "\n".join(
            str(row)
            for table in inspect(engine).get_table_names()
            for row in connection.execute(text(f'SELECT * FROM "{table}"'))
        )


def test_fanned_out_run_loads_bigquery_within_the_rate_limit(
    e2e: Any,
    sim_world: Any,
    bq_client: Any,
    local_bigquery: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    advertisers = list(sim_world.advertiser_ids[:3])
    # Two report types keep the run short: local BigQuery takes ~1.5 s per table commit.
    e2e.set(
        TIKTOK_ADVERTISER_IDS=json.dumps(advertisers),
        TIKTOK_BATCH_SIZE="1",
        TIKTOK_REPORT_TYPES='["advertiser", "ad"]',
    )
    day = datetime.now(UTC).date()

    run, states = run_dag(e2e.dag, day)

    assert str(run.state) == "success", states
    assert states["call_cloud_run_api"] == ["success"] * 3
    xcoms = run_xcoms(run)
    requests = xcoms[("prepare_payload", -1)]
    assert [r["payload"]["advertiser_ids"] for r in requests] == [[a] for a in advertisers]
    window = ((day - timedelta(days=3)).isoformat(), (day - timedelta(days=1)).isoformat())
    for request in requests:
        payload = request["payload"]
        assert (payload["start_date"], payload["end_date"]) == window
        assert (payload["max_qps"], payload["max_qpm"], payload["if_exists"]) == (
            5.0,
            300,
            "replace",
        )
    summaries = [xcoms[("call_cloud_run_api", index)] for index in range(3)]
    assert {(s["http_status"], s["status"]) for s in summaries} == {(200, "Ok")}
    assert all(s["total_inserted_rows"] > 0 for s in summaries)
    outcome = xcoms[("validate_result", -1)]
    table = f"{e2e.dataset}.TKT001_TIKTOK_ADS_ADVERTISER"
    assert outcome["failures"] == [] and outcome["rows_by_table"][table] > 0
    assert outcome["total_inserted_rows"] == sum(s["total_inserted_rows"] for s in summaries)

    query = f"SELECT COUNT(*) FROM `{local_bigquery.project}.{table}`"
    (count,) = next(iter(bq_client.query(query).result()))
    assert count == outcome["rows_by_table"][table]

    stats = e2e.simulator.stats(include_log=False)
    assert stats["codes"].get("40100", 0) == 0
    assert stats["requests"] > 0

    assert xcoms and SECRET not in json.dumps(list(xcoms.values()), default=str)
    assert SECRET not in metadata_db_text()
    logs = task_logs(capfd, caplog)
    assert "batch 3/3: HTTP 200" in logs  # the task logs were captured...
    assert SECRET not in logs  # ...and never show the token


def test_failed_reports_fail_validate_result_naming_them(
    e2e: Any,
    sim_world: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    advertisers = [sim_world.advertiser_ids[0], UNKNOWN_ADVERTISER]
    e2e.set(
        TIKTOK_ADVERTISER_IDS=json.dumps(advertisers),
        TIKTOK_BATCH_SIZE="2",
        TIKTOK_REPORT_TYPES='["advertiser"]',
    )

    run, states = run_dag(e2e.dag, datetime.now(UTC).date())

    assert str(run.state) == "failed"
    assert states["call_cloud_run_api"] == ["success"]  # HTTP 207: the batch itself ran
    assert states["validate_result"] == ["failed"]
    assert run_xcoms(run)[("call_cloud_run_api", 0)]["http_status"] == 207
    logs = task_logs(capfd, caplog)
    assert f"1 report(s) failed: {UNKNOWN_ADVERTISER}/advertiser: " in logs
    assert "40001" in logs
    assert SECRET not in logs and SECRET not in metadata_db_text()


def test_batch_where_every_report_failed_fails_the_call(
    e2e: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    e2e.set(
        TIKTOK_ADVERTISER_IDS=json.dumps([UNKNOWN_ADVERTISER]),
        TIKTOK_REPORT_TYPES='["advertiser"]',
    )

    run, states = run_dag(e2e.dag, datetime.now(UTC).date())

    assert str(run.state) == "failed"
    assert states["call_cloud_run_api"] == ["failed"]  # HTTP 502: retried in production
    assert states["validate_result"] == ["upstream_failed"]
    logs = task_logs(capfd, caplog)
    assert "every report failed (HTTP 502" in logs
    assert f"{UNKNOWN_ADVERTISER}/advertiser" in logs
