"""The warehouse against a real BigQuery API (local-bigquery on 127.0.0.1), no mocks.

Faults are injected for real: a Parquet file that does not match, a corrupted file, and a
client proxy (``FaultyClient``) that adds a failing statement to the transaction or answers
with a commit conflict before passing the call on to the real client.
Jobs are counted with ``client.list_jobs`` (local-bigquery lists them), per test dataset.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.api_core import exceptions as google_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from controller.reports.catalog import REPORTS, arrow_schema
from database.bigquery import (
    BigQueryWarehouse,
    TableDefinition,
    TableWriter,
    WarehouseError,
    make_client,
)
from local_env.bigquery_emulator import LocalBigQuery
from tests.support.warehouse import table_rows

UTC = dt.UTC
D1, D2, D3, D4 = (dt.date(2024, 3, day) for day in (1, 2, 3, 4))
EXTRACTED = dt.datetime(2024, 3, 5, 6, 7, 8, 123456, tzinfo=UTC)
BIG_ID = "7234567890123456789"  # 19 digits: beyond float64's exact range

SCHEMA = pa.schema(
    [
        pa.field("ad_id", pa.string()),
        pa.field("date", pa.date32()),
        pa.field("spend", pa.float64()),
        pa.field("clicks", pa.int64()),
        pa.field("is_active", pa.bool_()),
        pa.field("_advertiser_id", pa.string()),
        pa.field("_extracted_at", pa.timestamp("us", tz="UTC")),
    ]
)
DEFN = TableDefinition("TEST_ADS", SCHEMA, clustering_fields=("_advertiser_id", "ad_id"))


def rows(advertiser: str, dates: list[dt.date], clicks: int = 1, ad: str = "ad") -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "ad_id": f"{ad}-{advertiser}",
                "date": day,
                "spend": 1.25 * clicks,
                "clicks": clicks,
                "is_active": True,
                "_advertiser_id": advertiser,
                "_extracted_at": EXTRACTED,
            }
            for day in dates
        ],
        schema=SCHEMA,
    )


@pytest.fixture
def warehouse(bq_client: bigquery.Client, bq_dataset: str) -> BigQueryWarehouse:
    warehouse = BigQueryWarehouse(bq_client, bq_dataset, location="US", job_timeout=30)
    warehouse.ensure_dataset()
    warehouse.ensure_table(DEFN)
    return warehouse


def spool(warehouse: BigQueryWarehouse, tmp_path: Path, *tables: pa.Table, defn=DEFN) -> Path:
    writer = warehouse.open_writer(defn, tmp_path)
    for table in tables:
        writer.write(table)
    return writer.close()


def commit(warehouse, path, keys, mode="replace", start=D1, end=D4, defn=DEFN) -> int:
    return warehouse.commit(defn, path, key_values=keys, start=start, end=end, mode=mode)


def content(client: bigquery.Client, warehouse: BigQueryWarehouse, name: str = "TEST_ADS"):
    """All rows, sorted, as tuples: what the table holds."""
    sql = f"SELECT * FROM `{warehouse.table_id(name)}`"
    result = client.query(sql, job_retry=None).result(timeout=30)
    return sorted(tuple(row.values()) for row in result)


def table_names(client: bigquery.Client, dataset: str) -> list[str]:
    return sorted(table.table_id for table in client.list_tables(dataset))


def jobs_on(client: bigquery.Client, dataset: str) -> dict[str, int]:
    """How many load and query jobs touched ``dataset`` (local-bigquery lists jobs)."""
    counts = {"load": 0, "query": 0}
    since = dt.datetime.now(UTC) - dt.timedelta(minutes=5)
    for job in client.list_jobs(min_creation_time=since, all_users=True):
        if job.job_type == "load" and job.destination.dataset_id == dataset:
            counts["load"] += 1
        elif job.job_type == "query" and f".{dataset}." in (job.query or ""):
            counts["query"] += 1
    return counts


class FaultyClient:
    """The real client, with one fault injected into ``query`` calls (everything else passes)."""

    def __init__(self, client: bigquery.Client, *, before_commit: str = "", conflicts: int = 0):
        self._client = client
        self.before_commit = before_commit
        self.conflicts = conflicts
        self.queries = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def query(self, sql: str, *args: Any, **kwargs: Any) -> bigquery.QueryJob:
        self.queries += 1
        if self.conflicts:
            self.conflicts -= 1
            raise google_exceptions.BadRequest("Failed to commit: Failed to commit DuckLake txn")
        if self.before_commit:
            sql = sql.replace("COMMIT TRANSACTION;", f"{self.before_commit};\nCOMMIT TRANSACTION;")
        return self._client.query(sql, *args, **kwargs)


# --------------------------------------------------------------------------- client, DDL


def test_make_client_with_emulator_host(local_bigquery: LocalBigQuery, bq_dataset: str) -> None:
    for host in (local_bigquery.endpoint, local_bigquery.endpoint.removeprefix("http://")):
        client = make_client("local-project", location="US", emulator_host=host)
        assert isinstance(client._credentials, AnonymousCredentials)
        assert client.project == "local-project"
        assert client.location == "US"
        client.create_dataset(bq_dataset, exists_ok=True)
        assert bq_dataset in [d.dataset_id for d in client.list_datasets()]
        client.close()


def test_table_created_with_types_partitioning_clustering(warehouse, bq_client) -> None:
    warehouse.ensure_table(DEFN)  # idempotent
    table = bq_client.get_table(warehouse.table_id("TEST_ADS"))
    types = {field.name: (field.field_type, field.mode) for field in table.schema}
    assert types == {
        "ad_id": ("STRING", "NULLABLE"),
        "date": ("DATE", "NULLABLE"),
        "spend": ("FLOAT", "NULLABLE"),  # the API speaks legacy names: FLOAT = FLOAT64
        "clicks": ("INTEGER", "NULLABLE"),
        "is_active": ("BOOLEAN", "NULLABLE"),
        "_advertiser_id": ("STRING", "NULLABLE"),
        "_extracted_at": ("TIMESTAMP", "NULLABLE"),
    }
    assert table.time_partitioning.type_ == "DAY"
    assert table.time_partitioning.field == "date"
    assert table.clustering_fields == ["_advertiser_id", "ad_id"]
    assert table.description


def test_ensure_table_adds_columns_and_keeps_rows(warehouse, bq_client, tmp_path) -> None:
    commit(warehouse, spool(warehouse, tmp_path, rows("A", [D1, D2])), ["A"])
    wider = TableDefinition("TEST_ADS", SCHEMA.append(pa.field("conversion", pa.int64())))
    warehouse.ensure_table(wider)
    names = [field.name for field in bq_client.get_table(warehouse.table_id("TEST_ADS")).schema]
    assert names == [*SCHEMA.names, "conversion"]
    assert [row[-1] for row in content(bq_client, warehouse)] == [None, None]

    # The narrower definition again: the extra column stays, and commits still work.
    warehouse.ensure_table(DEFN)
    assert len(bq_client.get_table(warehouse.table_id("TEST_ADS")).schema) == len(names)
    assert commit(warehouse, spool(warehouse, tmp_path, rows("B", [D1])), ["B"]) == 1
    assert len(content(bq_client, warehouse)) == 3


def test_ensure_table_refuses_a_changed_column_type(warehouse) -> None:
    changed = TableDefinition("TEST_ADS", SCHEMA.set(3, pa.field("clicks", pa.string())))
    with pytest.raises(WarehouseError, match=r"create failed for table TEST_ADS.*clicks"):
        warehouse.ensure_table(changed)


def test_definition_rejects_unsafe_identifiers() -> None:
    with pytest.raises(ValueError, match="table name"):
        TableDefinition("ads`; DROP TABLE x; --", SCHEMA)
    with pytest.raises(ValueError, match="not a column"):
        TableDefinition("ok", SCHEMA, key_field="advertiser")


# --------------------------------------------------------------------------- writer


def test_writer_is_thread_safe_and_checks_the_schema(warehouse, tmp_path) -> None:
    writer = warehouse.open_writer(DEFN, tmp_path)
    chunk = rows("A", [D1, D2, D3])

    def write_many() -> None:
        for _ in range(50):
            writer.write(chunk.to_batches()[0])

    threads = [threading.Thread(target=write_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with pytest.raises(ValueError, match="schema differs"):
        writer.write(chunk.drop_columns(["spend"]))
    path = writer.close()
    assert writer.rows == 8 * 50 * 3 == pq.read_metadata(path).num_rows


def test_writer_flushes_chunks_that_hold_big_buffers(tmp_path) -> None:
    """Rows alone do not bound the writer's memory: a one-row chunk may keep a large buffer
    alive (a slice; an Acero join's output). Past 64 MiB of buffers it writes a row group."""
    writer = TableWriter(DEFN, tmp_path / "big.parquet")
    big = pa.array(["x" * (30 * 2**20), "ad-A"])  # a 30 MiB data buffer behind row 2
    chunk = rows("A", [D1]).set_column(0, "ad_id", big.slice(1, 1))
    for _ in range(4):
        writer.write(chunk)
    path = writer.close()
    metadata = pq.read_metadata(path)
    # the third chunk took the writer past 64 MiB: row groups of 3 and 1 rows
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [3, 1]
    assert pq.read_table(path).column("ad_id").to_pylist() == ["ad-A"] * 4


# --------------------------------------------------------------------------- commit


def test_append_loads_rows_and_appends_again(warehouse, bq_client, tmp_path) -> None:
    first = spool(warehouse, tmp_path, rows("A", [D1, D2]), rows("B", [D1]))
    assert commit(warehouse, first, ["A", "B"], mode="append") == 3
    assert commit(warehouse, spool(warehouse, tmp_path, rows("A", [D3])), ["A"], "append") == 1
    assert len(content(bq_client, warehouse)) == 4
    assert table_names(bq_client, warehouse.dataset_id) == ["TEST_ADS"]  # staging dropped


def test_replace_window_leaves_other_keys_and_dates(warehouse, bq_client, tmp_path) -> None:
    before = spool(warehouse, tmp_path, rows("A", [D1, D2, D3, D4]), rows("B", [D1, D2, D3, D4]))
    commit(warehouse, before, ["A", "B"])
    new = spool(warehouse, tmp_path, rows("A", [D2, D3], clicks=7))
    assert commit(warehouse, new, ["A"], start=D2, end=D3) == 2

    got = {(r[5], r[1]): r[3] for r in content(bq_client, warehouse)}  # (advertiser, date)
    assert got == {
        **{("A", day): 1 for day in (D1, D4)},
        **{("A", day): 7 for day in (D2, D3)},
        **{("B", day): 1 for day in (D1, D2, D3, D4)},
    }


def test_replace_twice_gives_identical_rows(warehouse, bq_client, tmp_path) -> None:
    path = spool(warehouse, tmp_path, rows("A", [D1, D2]), rows("B", [D2]))
    assert commit(warehouse, path, ["A", "B"]) == 3
    once = content(bq_client, warehouse)
    assert commit(warehouse, path, ["A", "B"]) == 3
    assert content(bq_client, warehouse) == once
    assert len(once) == 3


def test_rows_of_unlisted_keys_are_never_inserted(warehouse, bq_client, tmp_path) -> None:
    # C failed half-way through extraction: its partial rows are in the file, not in the list.
    path = spool(warehouse, tmp_path, rows("A", [D1]), rows("B", [D1]), rows("C", [D1, D2]))
    assert commit(warehouse, path, ["A", "B"], mode="append") == 2
    assert commit(warehouse, path, ["A", "B"], mode="replace") == 2
    assert {row[5] for row in content(bq_client, warehouse)} == {"A", "B"}
    assert len(content(bq_client, warehouse)) == 2  # the replace took the appended rows' place


def test_replace_with_no_rows_empties_the_window(warehouse, bq_client, tmp_path) -> None:
    commit(
        warehouse, spool(warehouse, tmp_path, rows("A", [D1, D2, D3]), rows("B", [D2])), ["A", "B"]
    )
    empty = spool(warehouse, tmp_path)
    assert commit(warehouse, empty, ["A"], start=D2, end=D3) == 0
    assert [(row[5], row[1]) for row in content(bq_client, warehouse)] == [("A", D1), ("B", D2)]
    assert commit(warehouse, empty, ["A"], mode="append") == 0


def test_19_digit_ids_and_values_round_trip(warehouse, bq_client, tmp_path) -> None:
    table = rows(BIG_ID, [D1], ad=BIG_ID).set_column(3, "clicks", pa.array([2**63 - 1], pa.int64()))
    commit(warehouse, spool(warehouse, tmp_path, table), [BIG_ID])
    (row,) = content(bq_client, warehouse)
    assert row[0] == f"{BIG_ID}-{BIG_ID}"
    assert row[5] == BIG_ID
    assert row[3] == 2**63 - 1
    assert row[6] == EXTRACTED  # microseconds kept


def test_full_catalog_report_table(bq_client, bq_dataset, tmp_path) -> None:
    spec = REPORTS["ad"]
    defn = TableDefinition(spec.table, arrow_schema(spec), clustering_fields=("_advertiser_id",))
    warehouse = BigQueryWarehouse(bq_client, bq_dataset, location="US", job_timeout=30)
    warehouse.ensure_dataset()
    warehouse.ensure_table(defn)
    row = {name: None for name in defn.schema.names}
    row |= {"ad_id": BIG_ID, "date": D1, "_advertiser_id": "1", "spend": 3.5, "clicks": 4}
    path = spool(warehouse, tmp_path, pa.Table.from_pylist([row], schema=defn.schema), defn=defn)
    assert commit(warehouse, path, ["1"], defn=defn) == 1
    assert len(bq_client.get_table(warehouse.table_id(spec.table)).schema) == len(defn.schema)


# --------------------------------------------------------------------------- failures


def test_load_failure_leaves_table_unchanged(warehouse, bq_client, tmp_path) -> None:
    commit(warehouse, spool(warehouse, tmp_path, rows("A", [D1, D2])), ["A"])
    before = content(bq_client, warehouse)

    mismatched = tmp_path / "mismatched.parquet"  # a valid file of another layout
    pq.write_table(
        pa.table({"ad_id": ["x"], "date": ["not a date"], "clicks": ["many"]}), mismatched
    )
    corrupted = tmp_path / "corrupted.parquet"
    corrupted.write_bytes(b"PAR1" + b"\x00garbage" * 100)
    for path in (mismatched, corrupted):
        with pytest.raises(WarehouseError, match="load failed for table TEST_ADS") as caught:
            commit(warehouse, path, ["A"])
        assert caught.value.step == "load"
        assert content(bq_client, warehouse) == before
        assert table_names(bq_client, warehouse.dataset_id) == ["TEST_ADS"]


def test_transaction_failure_rolls_back(warehouse, bq_client, tmp_path) -> None:
    commit(warehouse, spool(warehouse, tmp_path, rows("A", [D1, D2])), ["A"])
    before = content(bq_client, warehouse)
    # The DELETE and INSERT have run when the injected statement fails, before COMMIT.
    faulty = FaultyClient(bq_client, before_commit="SELECT ERROR('injected failure')")
    broken = BigQueryWarehouse(faulty, warehouse.dataset_id, location="US", job_timeout=30)
    new = spool(warehouse, tmp_path, rows("A", [D1, D2, D3], clicks=9))
    with pytest.raises(WarehouseError, match="replace failed for table TEST_ADS") as caught:
        commit(broken, new, ["A"])
    assert "injected failure" in str(caught.value)
    assert faulty.queries == 1  # not a conflict: no retry
    assert content(bq_client, warehouse) == before
    assert table_names(bq_client, warehouse.dataset_id) == ["TEST_ADS"]


def test_commit_conflict_is_retried_then_gives_up(warehouse, bq_client, tmp_path) -> None:
    path = spool(warehouse, tmp_path, rows("A", [D1, D2]))
    faulty = FaultyClient(bq_client, conflicts=2)
    retrying = BigQueryWarehouse(faulty, warehouse.dataset_id, location="US", commit_retries=2)
    assert commit(retrying, path, ["A"]) == 2
    assert faulty.queries == 3
    assert len(content(bq_client, warehouse)) == 2

    faulty.conflicts, faulty.queries = 5, 0
    with pytest.raises(WarehouseError, match=r"replace failed.*Failed to commit"):
        commit(retrying, path, ["A"])
    assert faulty.queries == 3  # 1 try + commit_retries
    assert len(content(bq_client, warehouse)) == 2
    assert table_names(bq_client, warehouse.dataset_id) == ["TEST_ADS"]


def test_one_load_and_one_query_job_per_commit(warehouse, bq_client, tmp_path) -> None:
    """Counted with client.list_jobs: jobs whose destination or SQL names this test's dataset."""
    dataset = warehouse.dataset_id
    advertisers = [f"{1000000000000000000 + n}" for n in range(50)]
    path = spool(warehouse, tmp_path, *(rows(adv, [D1, D2]) for adv in advertisers))
    start = jobs_on(bq_client, dataset)
    assert commit(warehouse, path, advertisers) == 100
    assert jobs_on(bq_client, dataset) == {"load": start["load"] + 1, "query": start["query"] + 1}

    commit(warehouse, path, advertisers, mode="append")
    assert jobs_on(bq_client, dataset) == {"load": start["load"] + 2, "query": start["query"] + 2}

    empty = spool(warehouse, tmp_path)
    commit(warehouse, empty, advertisers, mode="append")  # nothing to do: no job
    commit(warehouse, empty, advertisers, mode="replace")  # only the DELETE
    assert jobs_on(bq_client, dataset) == {"load": start["load"] + 2, "query": start["query"] + 3}


def test_concurrent_commits_are_serialised(warehouse, bq_client, tmp_path) -> None:
    other = TableDefinition("TEST_ADS_2", SCHEMA)
    warehouse.ensure_table(other)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        defn = (DEFN, other)[n % 2]
        try:
            path = spool(warehouse, tmp_path, rows(f"adv{n}", [D1, D2]), defn=defn)
            commit(warehouse, path, [f"adv{n}"], defn=defn)
        except BaseException as exc:  # collected: the assertion below reports them
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert (
        len(content(bq_client, warehouse)) + len(content(bq_client, warehouse, "TEST_ADS_2")) == 12
    )


# --------------------------------------------------------------------------- emulator


@pytest.mark.e2e  # a local-bigquery process of its own
def test_emulator_stop_start_restart_keeps_data(tmp_path: Path) -> None:
    with LocalBigQuery("restart-project", tmp_path / "data") as server:
        endpoint = server.endpoint
        client = make_client(server.project, location="US", emulator_host=server.endpoint)
        client.create_dataset("kept")
        server.restart()
        assert server.endpoint == endpoint
        assert "kept" in [d.dataset_id for d in client.list_datasets()]
        assert server.running
    assert not server.running
    server.stop()  # idempotent
    assert (tmp_path / "data" / "local-bigquery.log").exists()


def test_the_tests_fast_reader_types_rows_like_the_client(bq_client, bq_dataset) -> None:
    """tests/support/warehouse.table_rows (one JSON column per row) equals SELECT * row for row."""
    bq_client.create_dataset(bq_dataset)
    types = ["DATE", "TIMESTAMP", "INT64", "FLOAT64", "NUMERIC", "STRING", "BOOL", "DATETIME"]
    schema = [bigquery.SchemaField(f"c_{t.lower()}", t) for t in types]
    rows = [
        ["2025-01-02", "2026-11-28T15:00:00.123456Z", 7000454944200096763, 0.1 + 0.2, "12.345",
         'a"b\\c é 7000454944200096763', True, "2025-01-02T03:04:05.5"],
        [None] * 8,
        ["2025-12-31", "2026-11-28T15:00:00Z", -1, 123456789.123456789, "0", "", False,
         "2025-01-02T03:04:05"],
        [None, None, 0, 1e-300, "-0.000000001", "0", None, None],
        [None, None, None, None, "100", None, None, None],
    ]  # fmt: skip
    table = f"{bq_client.project}.{bq_dataset}.TYPES"
    config = bigquery.LoadJobConfig(schema=schema)
    records = [dict(zip([f.name for f in schema], row, strict=True)) for row in rows]
    bq_client.load_table_from_json(records, table, job_config=config).result(timeout=60)
    by_client = bq_client.query(f"SELECT * FROM `{table}`", job_retry=None).result(timeout=60)
    expected = sorted(repr(dict(row.items())) for row in by_client)
    fast = sorted(repr(row) for row in table_rows(bq_client, bq_dataset, "TYPES"))
    assert len(fast) == 5 and fast == expected
