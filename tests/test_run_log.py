"""The run log table TKT000_TIKTOK_ADS_RUNS: one row per (run, advertiser, report type).

Real service (Flask on 127.0.0.1 or its test client), the simulator, local BigQuery. Loads
are made to fail as in test_service: a warehouse whose Parquet file is corrupted before the
load job (data tables only, or the run log's own load).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from google.cloud import bigquery

from controller.reports.catalog import REPORTS
from database.bigquery import BigQueryWarehouse, WarehouseError, make_client
from database.run_log import RUN_LOG_TABLE
from main import __version__, create_app
from tests.fixtures.service import service_settings_for
from tests.support.service_calls import payload, post_run
from tests.support.warehouse import table_rows

TYPES = ["advertiser", "campaign"]


def log_rows(client: bigquery.Client, dataset: str, request_id: str) -> dict[tuple, dict]:
    query = (
        f"SELECT * FROM `{client.project}.{dataset}.{RUN_LOG_TABLE}` "
        f"WHERE request_id = '{request_id}'"
    )
    rows = [dict(row.items()) for row in client.query(query).result(timeout=60)]
    keyed = {(row["advertiser_id"], row["report_type"]): row for row in rows}
    assert len(keyed) == len(rows), "one row per (run, advertiser, report type)"
    return keyed


def check_common(row: dict, body: dict, dataset: str) -> None:
    assert row["request_id"] == body["request_id"]
    assert (row["start_date"], row["end_date"]) == (date(2025, 5, 1), date(2025, 5, 10))
    assert row["if_exists"] == "replace" and row["service_version"] == __version__
    assert row["destination_table"] == f"{dataset}.{REPORTS[row['report_type']].table}"
    assert row["started_at"] <= row["finished_at"] <= datetime.now(UTC)
    assert row["run_date"] == row["started_at"].date()


def test_success_writes_one_row_per_report(service, sim, sim_world, bq_client, bq_dataset):
    advertisers = sim_world.advertiser_ids[:2]
    response = post_run(
        service, payload(bq_client.project, bq_dataset, advertisers, report_types=TYPES)
    )
    body = response.json()
    assert response.status_code == 200 and body["status"] == "Ok", body
    assert body["run_log"] == {
        "table": f"{bq_dataset}.{RUN_LOG_TABLE}",
        "status": "written",
        "rows": 4,
        "error": None,
    }
    rows = log_rows(bq_client, bq_dataset, body["request_id"])
    assert sorted(rows) == sorted((a, t) for a in advertisers for t in TYPES)
    for item in body["results"]:
        row = rows[(item["advertiser_id"], item["report_type"])]
        check_common(row, body, bq_dataset)
        assert (row["status"], row["error"], row["rows"]) == (
            "success",
            None,
            item["inserted_rows"],
        )
        assert row["rows"] > 0 and row["requests"] >= 1
        assert (row["warnings_count"], json.loads(row["warnings"])) == (0, [])
        assert (row["reconciliation_differences"], json.loads(row["reconciliation"])) == (0, [])
    # Every TikTok request the run made is counted on one of its rows.
    assert sum(row["requests"] for row in rows.values()) == sim.stats(include_log=False)["requests"]
    print(
        "run log (success):",
        {key: (row["rows"], row["requests"]) for key, row in sorted(rows.items())},
    )
    table = bq_client.get_table(f"{bq_dataset}.{RUN_LOG_TABLE}")
    assert table.time_partitioning.field == "run_date"
    assert table.clustering_fields == ["advertiser_id", "report_type"]


def test_partial_failure_logs_the_error_of_the_failed_advertiser(
    service, sim, sim_world, bq_client, bq_dataset
):
    bad, good = sim_world.advertiser_ids[:2]
    sim.remove_permission(bad)
    response = post_run(
        service, payload(bq_client.project, bq_dataset, [bad, good], report_types=TYPES)
    )
    body = response.json()
    assert response.status_code == 207 and body["status"] == "partial_success"
    assert body["run_log"]["status"] == "written" and body["run_log"]["rows"] == 4
    rows = log_rows(bq_client, bq_dataset, body["request_id"])
    for report_type in TYPES:
        failed, loaded = rows[(bad, report_type)], rows[(good, report_type)]
        check_common(failed, body, bq_dataset)
        assert failed["status"] == "error" and failed["rows"] == 0
        assert failed["error"].startswith(f"advertiser {bad}: TikTok API error 40001: ")
        # a permission error is not retried: one request per metric group (every family:
        # three, sent at once), none asked again
        assert failed["requests"] == len(REPORTS[report_type].metric_groups()) == 3
        assert loaded["status"] == "success" and loaded["rows"] > 0 and loaded["error"] is None


class FailingDataLoads(BigQueryWarehouse):
    """The real warehouse; every data table's Parquet file is corrupted before its load."""

    def commit(self, defn, parquet_path, **kwargs):
        parquet_path.write_bytes(parquet_path.read_bytes()[:100])
        return super().commit(defn, parquet_path, **kwargs)


class RefusingRunLog(BigQueryWarehouse):
    """The real warehouse, except that the run log's load job is refused."""

    def append_file(self, defn, parquet_path):
        raise WarehouseError(defn.name, "load", "403 Access Denied: test refuses the run log")


def app_with(warehouse_class, simulator, local_bigquery):
    def factory(project, dataset_id):
        client = make_client(project, location="US", emulator_host=local_bigquery.endpoint)
        return warehouse_class(client, dataset_id, location="US")

    settings = service_settings_for(simulator, local_bigquery)
    return create_app(settings, warehouse_factory=factory).test_client()


def test_failed_warehouse_load_is_logged(
    simulator, local_bigquery, sim, sim_world, bq_client, bq_dataset
):
    advertisers = sim_world.advertiser_ids[:2]
    client = app_with(FailingDataLoads, simulator, local_bigquery)
    response = client.post(
        "/run", json=payload(bq_client.project, bq_dataset, advertisers, report_types=TYPES)
    )
    body = response.get_json()
    assert response.status_code == 502 and body["status"] == "error" and body["errors_count"] == 4
    assert body["run_log"]["status"] == "written" and body["run_log"]["rows"] == 4
    rows = log_rows(bq_client, bq_dataset, body["request_id"])
    assert len(rows) == 4
    for (_, report_type), row in rows.items():
        check_common(row, body, bq_dataset)
        assert row["status"] == "error" and row["rows"] == 0 and row["requests"] >= 1
        table = REPORTS[report_type].table
        assert row["error"].startswith(f"BigQuery load failed for table {table}: "), row["error"]


def test_a_refused_run_log_does_not_fail_the_run(
    simulator, local_bigquery, sim, sim_world, bq_client, bq_dataset
):
    advertisers = sim_world.advertiser_ids[:1]
    client = app_with(RefusingRunLog, simulator, local_bigquery)
    response = client.post(
        "/run", json=payload(bq_client.project, bq_dataset, advertisers, report_types=["campaign"])
    )
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "Ok" and body["errors_count"] == 0
    assert body["run_log"] == {
        "table": f"{bq_dataset}.{RUN_LOG_TABLE}",
        "status": "failed",
        "rows": 0,
        "error": f"BigQuery load failed for table {RUN_LOG_TABLE}: 403 Access Denied: "
        "test refuses the run log",
    }
    loaded = table_rows(bq_client, bq_dataset, REPORTS["campaign"].table)
    assert len(loaded) == body["total_inserted_rows"] > 0
    assert log_rows(bq_client, bq_dataset, body["request_id"]) == {}


@pytest.mark.parametrize("query_name", ["last run", "failed this week", "reconciliation gaps"])
def test_readme_queries_run(query_name, service, sim, sim_world, bq_client, bq_dataset):
    """The three queries README.md shows run against the table as the service writes it."""
    from tests.support.readme_queries import readme_query

    bad, good = sim_world.advertiser_ids[:2]
    sim.remove_permission(bad)
    post_run(
        service, payload(bq_client.project, bq_dataset, [bad, good], report_types=["campaign"])
    )
    sql = readme_query(query_name).replace(
        "`my-project.raw.", f"`{bq_client.project}.{bq_dataset}."
    )
    rows = [dict(row.items()) for row in bq_client.query(sql).result(timeout=60)]
    if query_name == "last run":
        assert {(r["advertiser_id"], r["status"]) for r in rows} == {
            (bad, "error"),
            (good, "success"),
        }
    elif query_name == "failed this week":
        assert [(r["advertiser_id"], r["report_type"]) for r in rows] == [(bad, "campaign")]
        assert "40001" in rows[0]["error"]
    else:
        assert rows == []  # one level loaded: nothing to reconcile
