"""The Composer DAG on real Airflow (3.x here), without a scheduler.

Structure tests read the parsed DagBag; the helpers are tested as plain functions; the
``dag.test()`` runs execute every task in this process and POST to the real service on
127.0.0.1 (TikTok simulator + local BigQuery behind it). Airflow is configured by the
``tests.fixtures.airflow`` plugin before anything imports it: this module imports the DAG
module only inside fixtures.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

DAG_ID = "tiktok_ads_to_bigquery"
TASK_IDS = {"validate_config", "prepare_payload", "call_cloud_run_api", "validate_result"}
SECRET = "dag-test-secret-token-5f1c"  # never a real token; searched for in XCom and logs

# Raised inside Airflow's in-process execution API (fastapi.testclient), not by the DAG.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="session")
def dag_module() -> ModuleType:
    return importlib.import_module("dags.dag_tiktok_ads_to_bigquery")


@pytest.fixture(scope="session")
def parsed_dag(dag_bag: Any) -> Any:
    return dag_bag.dags[DAG_ID]


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch, dag_module: ModuleType) -> Any:
    """Set Airflow Variables as AIRFLOW_VAR_* (None unsets); every DAG Variable starts unset."""
    names = (*dag_module.CONFIG_VARIABLES, dag_module.TOKEN_VAR)
    for name in names:
        monkeypatch.delenv(f"AIRFLOW_VAR_{name}", raising=False)

    def set_variables(**values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(f"AIRFLOW_VAR_{name}", raising=False)
            else:
                monkeypatch.setenv(f"AIRFLOW_VAR_{name}", value)

    return set_variables


def valid_variables(url: str = "https://tiktok-ads-api-abc-ew.a.run.app") -> dict[str, str]:
    return {
        "TIKTOK_ADS_CLOUD_RUN_URL": url,
        "TIKTOK_ACCESS_TOKEN": SECRET,
        "TIKTOK_ADVERTISER_IDS": '["7012345678901234567", "7012345678901234568"]',
        "GCP_PROJECT": "my-project",
        "GCP_REGION": "europe-west1",
    }


# --------------------------------------------------------------------------- structure


def test_dag_file_imports_without_errors_or_deprecations(dag_bag: Any) -> None:
    assert dag_bag.import_errors == {}
    assert dag_bag.captured_warnings == {}
    assert DAG_ID in dag_bag.dags


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
    assert call.max_active_tis_per_dag == 2  # TIKTOK_MAX_PARALLEL_BATCHES unset: the default
    for task_id in TASK_IDS - {"call_cloud_run_api"}:
        assert parsed_dag.get_task(task_id).retries == 0


@pytest.mark.parametrize(("value", "expected"), [("3", 3), ("lots", 2), ("0", 2)])
def test_parallel_batches_are_read_at_parse_time(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int
) -> None:
    """A malformed value never breaks the parse: the default applies, validate_config fails."""
    from tests.fixtures.airflow import load_dag_bag

    monkeypatch.setenv("AIRFLOW_VAR_TIKTOK_MAX_PARALLEL_BATCHES", value)
    bag = load_dag_bag()
    assert bag.import_errors == {}
    assert bag.dags[DAG_ID].get_task("call_cloud_run_api").max_active_tis_per_dag == expected


# --------------------------------------------------------------------------- helpers


def test_config_errors_are_reported_together(dag_module: ModuleType) -> None:
    raw = {
        "TIKTOK_ADS_CLOUD_RUN_URL": "ftp://example.com",
        "TIKTOK_ADVERTISER_IDS": '["123", 7012345678901234567, "12a"]',
        "GCP_REGION": "europe-west1",
        "TIKTOK_REPORT_TYPES": '["ad", "keyword"]',
        "TIKTOK_BATCH_SIZE": "0",
        "TIKTOK_APP_QPS": "fast",
    }
    _, problems = dag_module.parse_config(raw)
    text = "; ".join(problems)
    assert "TIKTOK_ADS_CLOUD_RUN_URL: must be an http(s) URL" in text
    assert "item 1 is a JSON number" in text
    assert "item 2 '12a' is not a string of digits" in text
    assert "GCP_PROJECT: missing" in text
    assert "TIKTOK_REPORT_TYPES: unknown report types ['keyword']" in text
    assert "TIKTOK_BATCH_SIZE: must be between 1 and 200" in text
    assert "TIKTOK_APP_QPS: must be a number" in text
    assert len(problems) == 6


def test_config_defaults_and_normalisation(dag_module: ModuleType) -> None:
    raw = valid_variables("https://svc.a.run.app/")
    raw["TIKTOK_ADVERTISER_IDS"] = '["1", "2", "1"]'
    config, problems = dag_module.parse_config(raw)
    assert problems == []
    assert config["service_url"] == "https://svc.a.run.app"
    assert config["advertiser_ids"] == ["1", "2"]
    assert config["dataset_id"] == "raw"
    assert config["report_types"] == ["advertiser", "campaign", "adgroup", "ad"]
    assert (config["days_reprocess"], config["batch_size"], config["parallel_batches"]) == (
        3,
        20,
        2,
    )
    assert (config["app_qps"], config["app_qpm"]) == (10.0, 600)
    assert "TIKTOK_ACCESS_TOKEN" not in json.dumps(config) and SECRET not in json.dumps(config)


def test_service_url_must_be_the_root(dag_module: ModuleType) -> None:
    with pytest.raises(dag_module.ConfigError, match="root URL"):
        dag_module.parse_service_url("https://svc.a.run.app/run")


def test_window_is_the_three_days_before_the_run_day(dag_module: ModuleType) -> None:
    scheduled = {"data_interval_end": datetime(2026, 3, 10, 8, tzinfo=UTC)}
    day = dag_module.run_day(scheduled)
    assert dag_module.default_window(day, 3) == (date(2026, 3, 7), date(2026, 3, 9))
    assert dag_module.default_window(day, 1) == (date(2026, 3, 9), date(2026, 3, 9))
    manual = {
        "data_interval_end": None,
        "dag_run": SimpleNamespace(run_after=scheduled["data_interval_end"]),
    }
    assert dag_module.run_day(manual) == date(2026, 3, 10)


def test_backfill_conf(dag_module: ModuleType) -> None:
    parse = dag_module.parse_conf_window
    assert parse(None) is None and parse({}) is None
    assert parse({"start_date": "2026-01-01", "end_date": "2026-01-31"}) == (
        date(2026, 1, 1),
        date(2026, 1, 31),
    )
    # Any length back to 2016-01-01: a backfill the DAG plans into units.
    assert parse({"start_date": "2016-01-01", "end_date": "2025-12-31"}) == (
        date(2016, 1, 1),
        date(2025, 12, 31),
    )
    conf = {"start_date": "2024-01-01", "end_date": "2025-12-31", "advertiser_ids": ["7"]}
    assert dag_module.parse_conf(conf | {"report_types": ["ad"]}) == {
        "window": ["2024-01-01", "2025-12-31"],
        "advertiser_ids": ["7"],
        "report_types": ["ad"],
    }
    for conf, message in [
        ({"start_date": "2026-01-31", "end_date": "2026-01-01"}, "after end_date"),
        ({"start_date": "2026-1-1", "end_date": "2026-01-02"}, "YYYY-MM-DD"),
        ({"start_date": "2026-02-30", "end_date": "2026-03-02"}, "not a calendar date"),
        ({"start_date": "2026-01-01"}, "both"),
        ({"start": "2026-01-01"}, "unknown keys"),
        ({"start_date": "2015-12-31", "end_date": "2016-01-31"}, "between 2016-01-01"),
        ({"start_date": "2016-01-01", "end_date": "2016-01-31", "ids": []}, "unknown keys"),
        ({"start_date": "2016-01-01", "end_date": "2016-01-31", "report_types": []}, "non-empty"),
    ]:
        with pytest.raises(dag_module.ConfigError, match=message):
            parse(conf)


def test_batches_share_the_app_rate_limit(dag_module: ModuleType) -> None:
    config, _ = dag_module.parse_config(valid_variables())
    config |= {"advertiser_ids": [str(i) for i in range(5)], "batch_size": 2}
    config |= {"parallel_batches": 3, "app_qps": 10.0, "app_qpm": 600}
    requests = dag_module.build_requests(config, date(2026, 3, 7), date(2026, 3, 9))
    assert [r["payload"]["advertiser_ids"] for r in requests] == [["0", "1"], ["2", "3"], ["4"]]
    assert {r["payload"]["max_qps"] for r in requests} == {3.333}
    assert {r["payload"]["max_qpm"] for r in requests} == {200}
    assert all(r["payload"]["if_exists"] == "replace" for r in requests)
    assert all("access_token" not in r["payload"] for r in requests)
    # Fewer batches than parallel slots: each batch may use a larger share.
    assert dag_module.rate_budget(10.0, 600, 4, 1) == (10.0, 600)
    # 4 in flight at 10 QPS: 2.5 each, held to 2 by the service (whole requests a second).
    assert dag_module.rate_share_warning(10.0, 4) == (
        "TIKTOK_MAX_PARALLEL_BATCHES=4 at TIKTOK_APP_QPS=10: each batch is held to 2 requests "
        "a second (whole requests), 8 of the app's 10 used; 1, 2, 5, 10 would use all of it"
    )
    assert dag_module.rate_share_warning(10.0, 5) is None
    assert dag_module.rate_share_warning(2.0, 4) is None  # shares below 1 QPS are exact


def test_identity_token_only_for_remote_urls(
    dag_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.oauth2.id_token

    audiences: list[str] = []

    def fake_fetch(_request: Any, audience: str) -> str:
        audiences.append(audience)
        return "id-token"

    monkeypatch.setattr(google.oauth2.id_token, "fetch_id_token", fake_fetch)
    for local in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"):
        assert dag_module.auth_headers(local) == {}
    headers = dag_module.auth_headers("https://svc.a.run.app")
    assert headers == {"Authorization": "Bearer id-token"}
    assert audiences == ["https://svc.a.run.app"]


def test_service_answers_map_to_task_outcomes(dag_module: ModuleType) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    item = {"advertiser_id": "1", "report_type": "ad", "destination_table": "T", "inserted_rows": 0}
    failed = {**item, "status": "error", "error": f"TikTok API error 40105 token {SECRET}"}
    body = {
        "status": "partial_success",
        "message": "",
        "request_id": "r1",
        "start_date": "2026-03-07",
        "end_date": "2026-03-09",
        "total_inserted_rows": 5,
        "results": [{**item, "inserted_rows": 5, "status": "success"}, failed],
        "errors_count": 1,
    }
    summary = dag_module.handle_response(207, json.dumps(body), "batch 1/1", SECRET)
    assert summary["errors_count"] == 1 and summary["http_status"] == 207
    assert SECRET not in json.dumps(summary)

    all_failed = {**body, "status": "error", "results": [failed], "errors_count": 1}
    with pytest.raises(dag_module.ServiceUnavailable, match="1/ad"):
        dag_module.handle_response(502, json.dumps(all_failed), "batch 1/1", SECRET)
    rejected = {
        "status": "error",
        "message": "invalid request",
        "errors": [{"field": "project_id", "message": "not a valid GCP project id"}],
    }
    with pytest.raises(AirflowFailException, match="project_id: not a valid"):
        dag_module.handle_response(400, json.dumps(rejected), "batch 1/1", SECRET)
    with pytest.raises(AirflowFailException, match=r"roles/run\.invoker"):
        dag_module.handle_response(403, "<html>Forbidden</html>", "batch 1/1", SECRET)
    for status in (429, 500, 503):
        with pytest.raises(dag_module.ServiceUnavailable):
            dag_module.handle_response(status, "<html>busy</html>", "batch 1/1", SECRET)


def _answer(results: list[dict[str, Any]], errors_count: int, status: str = "Ok") -> str:
    return json.dumps(
        {
            "status": status,
            "message": "Extração concluída",
            "request_id": "r1",
            "start_date": "2026-03-07",
            "end_date": "2026-03-09",
            "total_inserted_rows": sum(item["inserted_rows"] for item in results),
            "results": results,
            "errors_count": errors_count,
        }
    )


def test_batches_are_judged_by_their_items_not_by_one_word(dag_module: ModuleType) -> None:
    def item(advertiser: str, report_type: str, status: str = "success") -> dict[str, Any]:
        return {
            "advertiser_id": advertiser,
            "report_type": report_type,
            "destination_table": f"raw.{report_type}",
            "inserted_rows": 350 if status == "success" else 0,
            "status": status,
            **({"error": "TikTok API error 40001: no permission"} if status != "success" else {}),
        }

    payload = {"advertiser_ids": ["1", "2"], "report_types": ["campaign", "ad"]}
    every = [item(a, r) for a in ("1", "2") for r in ("campaign", "ad")]

    def judge(text: str, http_status: int = 200) -> dict[str, Any]:
        summary = dag_module.handle_response(http_status, text, "batch 1/2", SECRET)
        summary["missing"] = dag_module.missing_pairs(payload, summary["results"])
        return dag_module.check_results([summary])

    # The service's contract: "Ok", every item success, errors_count 0 → the run passes.
    passed = judge(_answer(every, 0))
    assert passed["failures"] == [] and passed["total_inserted_rows"] == 4 * 350
    # Any other word with the same items passes too: the word is not what is judged.
    assert judge(_answer(every, 0, status="success"))["failures"] == []
    # A partial batch fails naming each failed pair.
    partial = [*every[:3], item("2", "ad", "error")]
    assert judge(_answer(partial, 1, "partial_success"), 207)["failures"] == [
        "2/ad: TikTok API error 40001: no permission"
    ]
    # A requested report the answer leaves out has not loaded, even under "Ok".
    assert judge(_answer(every[:3], 0))["failures"] == ["2/ad: missing from the service's answer"]
    # errors_count counting failures no item shows fails the batch too.
    assert judge(_answer(every, 2))["failures"] == [
        "batch 1/2: errors_count 2 but 0 failed report(s) listed (request_id r1)"
    ]


# --------------------------------------------------------------------------- dag.test()


@pytest.fixture
def runnable_dag(airflow_db: None) -> Iterator[Any]:
    """A freshly parsed DAG with retries off, so a failing run does not wait out delays."""
    from tests.fixtures.airflow import load_dag_bag

    dag = load_dag_bag().dags[DAG_ID]
    for task in dag.tasks:
        task.retries = 0
    yield dag


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

UNKNOWN_ADVERTISER = "7999999999999999999"  # no token is granted it: the simulator answers 40001


@pytest.fixture
def e2e(
    runnable_dag: Any,
    variables: Any,
    service: Any,
    sim: Any,
    local_bigquery: Any,
    bq_dataset: str,
) -> Any:
    """Variables pointing at the real service; the simulator (reset by ``sim``) grants SECRET."""
    sim.configure(add_token={"token": SECRET, "advertiser_ids": "*"})
    variables(
        TIKTOK_ADS_CLOUD_RUN_URL=service.url,
        TIKTOK_ACCESS_TOKEN=SECRET,
        GCP_PROJECT=local_bigquery.project,
        GCP_REGION="us-central1",
        TIKTOK_BQ_DATASET=bq_dataset,
        TIKTOK_MAX_PARALLEL_BATCHES="2",
        TIKTOK_ENTITY_TYPES="[]",  # reports only here; tests/test_dag_discovery.py runs entities
        TIKTOK_SETTLEMENT_DAYS="0",  # runs of today must not turn into a weekly settlement
    )
    return SimpleNamespace(dag=runnable_dag, set=variables, simulator=sim, dataset=bq_dataset)


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
