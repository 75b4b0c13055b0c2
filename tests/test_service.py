"""POST /run end to end: Flask app on 127.0.0.1 → simulator → local-bigquery (real client)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
import requests

from controller.reports.catalog import REPORTS
from database.bigquery import BigQueryWarehouse, make_client
from main import create_app
from tests.fixtures.service import service_settings_for
from tests.support.service_calls import END, START, TOKEN, payload, post_run
from tests.support.truth import by_key, truth_rows
from tests.support.warehouse import table_rows


@pytest.fixture
def dataset(bq_dataset):
    return bq_dataset


def test_health(service):
    response = requests.get(f"{service.url}/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "1.0.0"}


def test_run_loads_exactly_the_ground_truth(service, sim, sim_world, bq_client, dataset):
    advertisers = sim_world.advertiser_ids[:2]
    response = post_run(service, payload(bq_client.project, dataset, advertisers))
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "Ok" and body["errors_count"] == 0
    assert (body["start_date"], body["end_date"]) == ("2025-05-01", "2025-05-10")
    uuid.UUID(body["request_id"])
    assert len(body["results"]) == 8
    total = 0
    for spec in REPORTS.values():
        expected = []
        for advertiser in advertisers:
            expected += truth_rows(sim_world, spec, advertiser, START, END)
            item = next(
                r
                for r in body["results"]
                if r["advertiser_id"] == advertiser and r["report_type"] == spec.report_type
            )
            assert item["destination_table"] == f"{dataset}.{spec.table}"
            assert item["status"] == "success" and item["error"] is None
        loaded = table_rows(bq_client, dataset, spec.table)
        for row in loaded:
            assert row.pop("_extracted_at").tzinfo is not None
        assert by_key(spec, loaded) == by_key(spec, expected)
        assert sum(
            r["inserted_rows"] for r in body["results"] if r["report_type"] == spec.report_type
        ) == len(expected)
        total += len(expected)
        table = bq_client.get_table(f"{dataset}.{spec.table}")
        assert table.time_partitioning.field == "date"
        assert table.time_partitioning.type_ == "DAY"
        assert table.clustering_fields == ["_advertiser_id", spec.id_dimension]
        types = {f.name: f.field_type for f in table.schema}
        assert types[spec.id_dimension] == "STRING" and types["date"] == "DATE"
        assert types["spend"] in ("FLOAT", "FLOAT64") and types["impressions"] in (
            "INTEGER",
            "INT64",
        )
        assert types["_extracted_at"] == "TIMESTAMP"
    assert body["total_inserted_rows"] == total > 0
    # spend adds up across levels, as in TikTok
    spends = [
        round(sum(r["spend"] for r in table_rows(bq_client, dataset, spec.table)), 2)
        for spec in REPORTS.values()
    ]
    assert len(set(spends)) == 1


def _count(client, dataset, table, where="TRUE") -> int:
    query = f"SELECT COUNT(*) FROM `{client.project}.{dataset}.{table}` WHERE {where}"
    return next(iter(client.query(query).result(timeout=60)))[0]


def _duplicates(client, dataset, spec) -> int:
    query = (
        f"SELECT COUNT(*) FROM (SELECT _advertiser_id, {spec.id_dimension}, date, COUNT(*) AS n "
        f"FROM `{client.project}.{dataset}.{spec.table}` GROUP BY 1, 2, 3 HAVING n > 1)"
    )
    return next(iter(client.query(query).result(timeout=60)))[0]


def test_replace_twice_leaves_the_same_rows(service, sim, sim_world, bq_client, dataset):
    advertiser = sim_world.advertiser_ids[0]
    body = payload(bq_client.project, dataset, [advertiser], report_types=["ad", "campaign"])
    for _ in range(2):
        assert post_run(service, body).status_code == 200
        for name in ("ad", "campaign"):
            spec = REPORTS[name]
            loaded = table_rows(bq_client, dataset, spec.table)
            for row in loaded:
                del row["_extracted_at"]
            assert by_key(spec, loaded) == by_key(
                spec, truth_rows(sim_world, spec, advertiser, START, END)
            )
            assert _duplicates(bq_client, dataset, spec) == 0


def test_replace_of_a_window_touches_only_that_window_and_advertiser(
    service, sim, sim_world, bq_client, dataset
):
    a, b = sim_world.advertiser_ids[:2]
    spec = REPORTS["adgroup"]
    assert (
        post_run(
            service, payload(bq_client.project, dataset, [a, b], report_types=["adgroup"])
        ).status_code
        == 200
    )
    before = {
        (r["_advertiser_id"], r["adgroup_id"], r["date"]): r["_extracted_at"]
        for r in table_rows(bq_client, dataset, spec.table)
    }
    small = payload(
        bq_client.project,
        dataset,
        [a],
        report_types=["adgroup"],
        start_date="2025-05-04",
        end_date="2025-05-06",
    )
    assert post_run(service, small).status_code == 200
    after = {
        (r["_advertiser_id"], r["adgroup_id"], r["date"]): r["_extracted_at"]
        for r in table_rows(bq_client, dataset, spec.table)
    }
    assert after.keys() == before.keys()
    changed = {k for k in after if after[k] != before[k]}
    assert changed and all(
        k[0] == a and date(2025, 5, 4) <= k[2] <= date(2025, 5, 6) for k in changed
    )
    inside = {k for k in after if k[0] == a and date(2025, 5, 4) <= k[2] <= date(2025, 5, 6)}
    assert changed == inside
    assert _duplicates(bq_client, dataset, spec) == 0


def test_append_appends(service, sim, sim_world, bq_client, dataset):
    body = payload(
        bq_client.project,
        dataset,
        sim_world.advertiser_ids[:1],
        report_types=["campaign"],
        if_exists="append",
    )
    first = post_run(service, body).json()["total_inserted_rows"]
    second = post_run(service, body).json()["total_inserted_rows"]
    assert first == second > 0
    assert _count(bq_client, dataset, REPORTS["campaign"].table) == 2 * first


def test_token_error_for_one_advertiser_others_load(service, sim, sim_world, bq_client, dataset):
    bad, good = sim_world.advertiser_ids[:2]
    sim.remove_permission(bad)
    response = post_run(
        service, payload(bq_client.project, dataset, [bad, good], report_types=["campaign", "ad"])
    )
    body = response.json()
    assert response.status_code == 207
    assert body["status"] == "partial_success" and body["errors_count"] == 2
    for item in body["results"]:
        if item["advertiser_id"] == bad:
            assert item["status"] == "error" and item["inserted_rows"] == 0
            assert item["error"].startswith(f"advertiser {bad}: TikTok API error 40001: ")
        else:
            assert item["status"] == "success" and item["inserted_rows"] > 0
    assert _count(bq_client, dataset, REPORTS["ad"].table, f"_advertiser_id = '{bad}'") == 0
    assert _count(bq_client, dataset, REPORTS["ad"].table, f"_advertiser_id = '{good}'") > 0
    assert TOKEN not in response.text


class FailingLoadWarehouse(BigQueryWarehouse):
    """The real warehouse, whose Parquet file is corrupted right before the load job."""

    def commit(self, defn, parquet_path, **kwargs):
        parquet_path.write_bytes(parquet_path.read_bytes()[:100])
        return super().commit(defn, parquet_path, **kwargs)


def test_failed_load_leaves_the_table_as_it_was(
    simulator, local_bigquery, sim, sim_world, bq_client, dataset
):
    settings = service_settings_for(simulator, local_bigquery)
    body = payload(
        bq_client.project, dataset, sim_world.advertiser_ids[:1], report_types=["campaign"]
    )
    healthy = create_app(settings).test_client()
    assert healthy.post("/run", json=body).status_code == 200
    before = sorted(map(str, table_rows(bq_client, dataset, REPORTS["campaign"].table)))

    def factory(project, dataset_id):
        client = make_client(project, location="US", emulator_host=local_bigquery.endpoint)
        return FailingLoadWarehouse(client, dataset_id, location="US")

    broken = create_app(settings, warehouse_factory=factory).test_client()
    response = broken.post("/run", json=body)
    assert response.status_code == 502
    item = response.get_json()["results"][0]
    assert item["status"] == "error" and "load" in item["error"] and "TKT002" in item["error"]
    assert sorted(map(str, table_rows(bq_client, dataset, REPORTS["campaign"].table))) == before
    leftovers = [t.table_id for t in bq_client.list_tables(dataset) if "staging" in t.table_id]
    assert leftovers == []
