"""Hardening 2: BigQuery faults. A load job, a replace transaction or the whole warehouse
failing leaves every table exactly as it was, reports the failed items, leaves no staging
table, and the same request afterwards loads exactly the ground truth.

The service (gunicorn) talks to local-bigquery through ``FaultProxy``, which fails the
requests of one phase for as long as the test says (persistent: the client's own retries
cannot turn the failure into a success) before they reach BigQuery. "Going away" is a real
stop of a dedicated local-bigquery in the middle of a run, then a restart.

RUN_DEADLINE_SECONDS is short (8 s) so a persistent failure costs the test about 8 s: the
service stops retrying BigQuery at its run deadline (database.bigquery ``deadline``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest

from controller.reports.catalog import REPORTS
from database.bigquery import make_client
from database.run_log import RUN_LOG_TABLE
from local_env.bigquery_emulator import LocalBigQuery
from tests.support.hardening import (
    FaultProxy,
    Rule,
    Service,
    Simulator,
    assert_no_secret,
    assert_tables_hold,
    count,
    payload,
    service_env,
    snapshot,
    staging_tables,
    wait_until,
)
from tests.support.tiers import spawns_processes

DEADLINE = 8.0
TYPES = ["campaign", "ad"]
TABLES = [REPORTS[name].table for name in TYPES]
LOAD = Rule(method="POST|PUT", path=r"^/upload/bigquery/v2/projects/[^/]+/jobs")
TRANSACTION = Rule(method="POST", path=r"^/bigquery/v2/projects/[^/]+/jobs\?", body="TRANSACTION")


@pytest.fixture(scope="module")
@spawns_processes
def stack(
    local_bigquery, tmp_path_factory
) -> Iterator[tuple[Simulator, FaultProxy, Service, Service]]:
    root = tmp_path_factory.mktemp("hardening-warehouse")
    sim = Simulator(root / "simulator.log", "--qps", "40", "--qpm", "2400")
    proxy = FaultProxy(local_bigquery.endpoint)
    service = Service(
        root / "service",
        service_env(sim, proxy.endpoint, RUN_DEADLINE_SECONDS=DEADLINE),
    )
    # The default deadline (540 s): retries of transient failures are never cut short.
    patient = Service(root / "patient", service_env(sim, proxy.endpoint))
    try:
        yield sim, proxy, service, patient
    finally:
        patient.stop()
        service.stop()
        proxy.stop()
        sim.stop()


@pytest.fixture
def sim(stack) -> Iterator[Simulator]:
    stack[0].reset()
    yield stack[0]
    stack[0].reset()


def run_log_rows(client, dataset: str, request_id: str) -> list[dict]:
    query = (
        f"SELECT * FROM `{client.project}.{dataset}.{RUN_LOG_TABLE}` "
        f"WHERE request_id = '{request_id}'"
    )
    return [dict(row.items()) for row in client.query(query).result(timeout=60)]


def failing(rule: Rule, action: str, times: int | None = None) -> Rule:
    return Rule(rule.method, rule.path, rule.body, action=action, times=times)


FAILURES = {
    "load job, HTTP 503": (failing(LOAD, "503"), "load"),
    "replace transaction, connection dropped": (failing(TRANSACTION, "drop"), "replace"),
    "replace transaction, HTTP 500": (failing(TRANSACTION, "500"), "replace"),
}


@pytest.mark.slow
def test_failed_phase_leaves_tables_unchanged_and_a_retry_loads_once(
    stack, sim, bq_client, bq_dataset
):
    _, proxy, service, _ = stack
    advertisers = sim.advertisers[:2]
    body = payload(bq_client.project, bq_dataset, advertisers, report_types=TYPES)
    assert service.post(body).status_code == 200
    before = snapshot(bq_client, bq_dataset)
    assert sorted(before) == sorted(TABLES) and all(before.values())

    for phase, (rule, step) in FAILURES.items():
        started = time.monotonic()
        with proxy.failing(rule):
            response = service.post(body)
        elapsed = time.monotonic() - started
        result = response.json()
        assert response.status_code == 502, (phase, result)
        assert result["errors_count"] == 4 and result["total_inserted_rows"] == 0
        for item in result["results"]:
            assert item["status"] == "error" and item["inserted_rows"] == 0
            assert item["error"].startswith(f"BigQuery {step} failed for table "), (phase, item)
        # The run log is written in the same run with each failure; a warehouse that also
        # refuses its load job (the load phase) is reported, and the run is not failed for it.
        run_log = result["run_log"]
        if step == "load":
            assert run_log["status"] == "failed" and run_log["rows"] == 0, (phase, run_log)
            assert run_log["error"].startswith(f"BigQuery load failed for table {RUN_LOG_TABLE}")
        else:
            assert run_log["status"] == "written" and run_log["rows"] == 4, (phase, run_log)
            logged = run_log_rows(bq_client, bq_dataset, result["request_id"])
            assert sorted((r["advertiser_id"], r["report_type"]) for r in logged) == sorted(
                (a, t) for a in advertisers for t in TYPES
            )
            assert all(r["status"] == "error" and r["rows"] == 0 for r in logged), phase
            assert all(r["error"].startswith(f"BigQuery {step} failed") for r in logged), phase
        # Persistent: every table reached the phase and the first one was retried.
        assert rule.hits > len(TYPES), f"{phase}: {rule.hits} failed requests"
        count("warehouse_faults_injected", rule.hits)
        # The service stopped retrying at its run deadline (8 s), not at the client
        # library's (600 s): a bound far from both, so a busy machine does not fail it.
        assert elapsed < 60, (phase, elapsed)
        assert snapshot(bq_client, bq_dataset) == before, phase  # exactly as it was
        assert staging_tables(bq_client, bq_dataset) == [], phase

    response = service.post(body)  # the same request, BigQuery healthy again
    assert response.status_code == 200, response.text
    assert_tables_hold(bq_client, bq_dataset, advertisers, TYPES)
    assert staging_tables(bq_client, bq_dataset) == []


def test_transient_failures_of_every_phase_are_retried_to_exactly_one_copy(
    stack, sim, bq_client, bq_dataset
):
    _, proxy, _, service = stack
    advertisers = sim.advertisers[:2]
    body = payload(bq_client.project, bq_dataset, advertisers, report_types=TYPES)
    rules = (
        failing(LOAD, "503", times=1),
        failing(TRANSACTION, "drop", times=2),
        Rule(method="GET", path=r"/queries/", action="500", times=1),
        Rule(method="DELETE", path="__staging_", action="drop", times=1),
    )
    with proxy.failing(*rules):
        response = service.post(body)
        assert response.status_code == 200, response.text
    assert [r.hits for r in rules] == [1, 2, 1, 1]
    count("warehouse_faults_injected", 5)
    assert_tables_hold(bq_client, bq_dataset, advertisers, TYPES)
    assert staging_tables(bq_client, bq_dataset) == []


def test_staging_table_whose_delete_fails_expires_within_the_hour(
    stack, sim, bq_client, bq_dataset
):
    _, proxy, service, _ = stack
    advertisers = sim.advertisers[:1]
    body = payload(bq_client.project, bq_dataset, advertisers, report_types=TYPES)
    rule = Rule(method="DELETE", path="__staging_", action="drop")
    with proxy.failing(rule):
        response = service.post(body)
    assert response.status_code == 200, response.text  # the rows are committed
    assert rule.hits >= 2
    count("warehouse_faults_injected", rule.hits)
    assert_tables_hold(bq_client, bq_dataset, advertisers, TYPES)
    left = staging_tables(bq_client, bq_dataset)
    assert len(left) == 2  # one per table: its delete never reached BigQuery
    now = dt.datetime.now(dt.UTC)
    for name in left:
        expires = bq_client.get_table(f"{bq_dataset}.{name}").expires
        assert expires is not None and now < expires <= now + dt.timedelta(hours=1, minutes=1)


@pytest.fixture(scope="module")
@spawns_processes
def own_bigquery(tmp_path_factory) -> Iterator[LocalBigQuery]:
    server = LocalBigQuery("local-project", tmp_path_factory.mktemp("hardening-own-bq"))
    with server:
        yield server


@pytest.mark.slow
def test_warehouse_going_away_mid_run_changes_nothing_and_the_retry_loads_once(
    stack, sim, own_bigquery, tmp_path
):
    service = Service(
        tmp_path / "direct",
        service_env(sim, own_bigquery.endpoint, RUN_DEADLINE_SECONDS=DEADLINE),
    )
    client = make_client("local-project", location="US", emulator_host=own_bigquery.endpoint)
    try:
        advertisers = sim.advertisers[:2]
        body = payload(client.project, "going_away", advertisers, report_types=TYPES)
        assert service.post(body).status_code == 200
        before = snapshot(client, "going_away")

        # Every report call waits in the simulator until BigQuery is down, so no report can
        # be complete (and committed early) before it goes, whatever the machine's speed.
        sim.hold({"service_type": "AUCTION", "page": "1"}, count=1000)
        outcome: dict = {}
        thread = threading.Thread(target=lambda: outcome.update(r=service.post(body)))
        thread.start()
        try:
            wait_until(lambda: sim.holds()["waiting"] > 0, 60, what="extraction")
            own_bigquery.stop()
        finally:
            sim.release()
        thread.join(120)
        response = outcome["r"]
        result = response.json()
        assert response.status_code == 502, result
        assert result["errors_count"] == 4
        assert all(i["error"].startswith("BigQuery load failed") for i in result["results"])

        own_bigquery.start()
        assert snapshot(client, "going_away") == before
        assert staging_tables(client, "going_away") == []
        response = service.post(body)
        assert response.status_code == 200, response.text
        assert_tables_hold(client, "going_away", advertisers, TYPES)
        assert staging_tables(client, "going_away") == []
        assert_no_secret(service)
    finally:
        service.stop()
        client.close()


def test_no_token_in_logs_responses_or_files(stack):
    for service in stack[2:]:
        assert service.healthy()
        assert_no_secret(service)
