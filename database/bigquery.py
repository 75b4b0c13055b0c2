"""The warehouse: the only module that knows BigQuery.

It receives table definitions (an Arrow schema plus partitioning and key columns) and Arrow
data; it knows nothing of TikTok. The write path is built for real BigQuery's limits:

* Rows are spooled to a local Parquet file (bounded memory), then written with **one load job
  and one DML script per table per run**, whatever the number of advertisers: load jobs and
  DML statements are quota-limited per table per day, and rows loaded by a load job (unlike
  streamed rows) can be deleted or replaced at once.
* **Replace is atomic per table**: ``DELETE`` of the window for the listed keys and ``INSERT``
  from the staging table run in one transaction; if anything fails the table is unchanged.
* Only rows whose key is listed are inserted, so a half-extracted advertiser (left out of
  ``key_values``) never lands in the table.
* Writes of every warehouse in the process (one per run) are serialised by one lock
  (BigQuery aborts concurrent DML on a table; local-bigquery fails concurrent commits; two
  runs replacing the same rows at once would both delete, then both insert) and a commit
  conflict is retried with exponential backoff. Extraction can stay concurrent: only the writes queue.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as google_exceptions
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Mode = Literal["append", "replace"]

API_DEADLINE_S = 60.0  # bound on retries of one API call (the client's default is 600 s)
UPLOAD_RETRIES = 6  # the client's default for a load's upload (backoff 1, 2, 4... s)
STAGING_TTL = dt.timedelta(hours=1)  # staging tables expire by themselves if a delete is missed
# Rows per Parquet row group of a spool file (~40 MB of Arrow data at the ad level): measured
# against 10,000, it costs ~20 % less CPU per row and makes the file ~15 % smaller (longer
# dictionary runs), for ~30 MB more held per table being written.
ROW_GROUP_ROWS = 50_000
# ... or this many bytes of Arrow buffers, whichever comes first: a chunk may hold buffers
# far larger than its rows (a slice, an Acero join's output), and rows alone would let the
# writer keep them all until the row group fills.
ROW_GROUP_BYTES = 64 * 2**20
# A load's file is uploaded in chunks, each read into memory (and the previous one still held
# while the next is read): the client's default of 100 MB made the upload a million-row run's
# largest allocation. The client has no public setting for it (google-cloud-bigquery 3.47).
UPLOAD_CHUNK_BYTES = 16 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require
bigquery.client._DEFAULT_CHUNKSIZE = UPLOAD_CHUNK_BYTES

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")  # tables and columns we create
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_PROJECT = re.compile(r"^[A-Za-z0-9.:-]{1,128}$")

# Commit conflicts, worth retrying: real BigQuery's messages, then local-bigquery's (HTTP 400).
_CONFLICT_MARKERS = (
    "concurrent update",
    "could not serialize access",
    "failed to commit",
)

# Writes of every warehouse of the process queue here: each run builds its own warehouse,
# and two runs replacing the same rows at once must not both delete-then-insert.
_PROCESS_WRITE_LOCK = threading.RLock()

# What a failed step can raise: API errors, retries given up, timeouts and network errors.
FAILURES = (google_exceptions.GoogleAPIError, OSError)

_ARROW_TO_BIGQUERY: tuple[tuple[Callable[[pa.DataType], bool], str], ...] = (
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "STRING"),
    (pa.types.is_int64, "INT64"),
    (pa.types.is_float64, "FLOAT64"),
    (pa.types.is_date32, "DATE"),
    (lambda t: pa.types.is_timestamp(t) and t.tz in ("UTC", "+00:00", "Etc/UTC"), "TIMESTAMP"),
    (pa.types.is_boolean, "BOOL"),
)
# The API answers with legacy type names; compare on the standard SQL ones.
_STANDARD_TYPE = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}


class WarehouseError(Exception):
    """A warehouse step failed; the message names the table and the step, never credentials."""

    def __init__(self, table: str, step: str, detail: str) -> None:
        super().__init__(f"BigQuery {step} failed for table {table}: {detail}")
        self.table = table
        self.step = step


@dataclass(frozen=True)
class TableDefinition:
    """What the warehouse needs to know about one table (no knowledge of where rows come from)."""

    name: str
    schema: pa.Schema
    partition_field: str = "date"
    clustering_fields: tuple[str, ...] = ()
    key_field: str = "_advertiser_id"
    description: str | None = None

    def __post_init__(self) -> None:
        check_name(NAME_PATTERN, self.name, "table name")
        for column in self.schema.names:
            check_name(NAME_PATTERN, column, "column name")
        for column in (self.partition_field, self.key_field, *self.clustering_fields):
            if column not in self.schema.names:
                raise ValueError(f"{self.name}: {column!r} is not a column of the schema")

    @property
    def bigquery_schema(self) -> list[bigquery.SchemaField]:
        return [bigquery.SchemaField(f.name, bigquery_type(f.type)) for f in self.schema]


def bigquery_type(arrow_type: pa.DataType) -> str:
    """The BigQuery column type for an Arrow type (every column is NULLABLE)."""
    for matches, name in _ARROW_TO_BIGQUERY:
        if matches(arrow_type):
            return name
    raise ValueError(f"no BigQuery type for Arrow type {arrow_type}")


def check_name(pattern: re.Pattern[str], value: str, what: str) -> str:
    """Identifiers cannot be query parameters: only well-formed ones reach SQL, backticked."""
    if not pattern.fullmatch(value):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def make_client(project_id: str, *, location: str, emulator_host: str | None) -> bigquery.Client:
    """A BigQuery client: Application Default Credentials, or anonymous against an emulator.

    ``emulator_host`` is like ``http://127.0.0.1:9050`` (a missing scheme gets ``http://``).
    """
    check_name(_PROJECT, project_id, "project id")
    if not emulator_host:
        return bigquery.Client(project=project_id, location=location)
    if "://" not in emulator_host:
        emulator_host = f"http://{emulator_host}"
    return bigquery.Client(
        project=project_id,
        location=location,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator_host},
    )


class TableWriter:
    """Streams Arrow chunks of exactly one schema into a local Parquet file, from any thread.

    Chunks are gathered up to ``ROW_GROUP_ROWS`` rows or ``ROW_GROUP_BYTES`` of the buffers
    they hold, and written as one row group (memory stays bounded by that): one ~1,000-row page per row group would double the CPU cost of
    writing, and the file's footer, held in memory until ``close()``, would grow with every
    page. No column statistics: a load job never reads them, and they cost CPU per cell. No
    compression either: dictionary and run-length encoding already make the file small, and
    snappy on top cost ~20 % of the writing CPU to save ~15 % of the bytes (measured, ad level).
    ``close()`` finishes the file and returns its path for ``BigQueryWarehouse.commit``.
    """

    def __init__(self, defn: TableDefinition, path: Path) -> None:
        self.definition = defn
        self.path = path
        self.rows = 0
        self._lock = threading.Lock()
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            path, defn.schema, write_statistics=False, compression="none"
        )

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        if not data.schema.equals(self.definition.schema, check_metadata=False):
            raise ValueError(
                f"{self.definition.name}: chunk schema differs from the table definition:\n"
                f"{data.schema}"
            )
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        with self._lock:
            if self._writer is None:
                raise ValueError(f"{self.definition.name}: writer is closed")
            self._pending.append(data)
            self._pending_rows += data.num_rows
            self._pending_bytes += data.get_total_buffer_size()
            self.rows += data.num_rows
            if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
                self._flush()

    def _flush(self) -> None:
        """Write the gathered chunks as one row group (caller holds the lock)."""
        if self._pending and self._writer is not None:
            self._writer.write_table(pa.concat_tables(self._pending))
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def close(self) -> Path:
        """Finish the file (idempotent) and return its path."""
        with self._lock:
            if self._writer is not None:
                try:
                    self._flush()
                finally:
                    self._writer.close()
                    self._writer = None
        return self.path

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _is_conflict(exc: BaseException) -> bool:
    if not isinstance(exc, google_exceptions.GoogleAPICallError):
        return False
    message = str(exc).lower()
    return any(marker in message for marker in _CONFLICT_MARKERS)


def error_detail(exc: BaseException) -> str:
    """The server's message without request details (no headers, so no credentials)."""
    if isinstance(exc, google_exceptions.GoogleAPICallError):
        return f"{exc.code} {exc.message}" if exc.code else str(exc.message)
    if isinstance(exc, google_exceptions.RetryError):
        return f"gave up retrying: {exc.cause}"
    return f"{type(exc).__name__}: {exc}"


class BigQueryWarehouse:
    """Tables in one dataset, written with load jobs and transactional DML.

    Guarantees: one load job and one DML script per ``commit``; replace is atomic per table;
    rows of keys not listed are never inserted; the staging table never outlives the commit
    (and expires within an hour even if the process dies). Writes of all instances of the
    process are serialised; a commit conflict is retried ``commit_retries`` times with backoff (so up to
    ``commit_retries + 1`` attempts); any other error is raised at once as ``WarehouseError``.
    ``job_timeout`` bounds each wait for a job (a job still running then is cancelled).
    ``deadline`` (``time.monotonic()`` seconds, e.g. the run's) stops retries of failed calls
    from going past it (each call is still tried once), so an outage of BigQuery cannot hold
    the caller past its own deadline.
    """

    def __init__(
        self,
        client: bigquery.Client,
        dataset_id: str,
        *,
        location: str,
        commit_retries: int = 5,
        job_timeout: float = 600.0,
        deadline: float | None = None,
    ) -> None:
        self.client = client
        self.project = check_name(_PROJECT, client.project, "project id")
        self.dataset_id = check_name(_DATASET, dataset_id, "dataset id")
        self.location = location
        self.commit_retries = commit_retries
        self.job_timeout = job_timeout
        self.deadline = deadline
        self._write_lock = _PROCESS_WRITE_LOCK

    # ------------------------------------------------------------------ helpers

    def table_id(self, name: str) -> str:
        return f"{self.project}.{self.dataset_id}.{check_name(NAME_PATTERN, name, 'table name')}"

    def sql_table(self, name: str) -> str:
        return f"`{self.table_id(name)}`"

    def _remaining(self) -> float:
        if self.deadline is None:
            return float("inf")
        return max(0.0, self.deadline - time.monotonic())

    @property
    def retry(self) -> Retry:
        """Retries of one API call: for at most API_DEADLINE_S, never past ``deadline``."""
        return Retry(timeout=min(API_DEADLINE_S, self._remaining()))

    def _upload_retries(self) -> int:
        """Upload retries whose backoff (about 2**n - 1 s, plus up to 1 s jitter each) ends
        before ``deadline``; the upload does not take a Retry object."""
        remaining, retries = self._remaining(), 0
        while retries < UPLOAD_RETRIES and 2 ** (retries + 1) - 1 + (retries + 1) <= remaining:
            retries += 1
        return retries

    def conflict_retrying(self, step: Callable[[], T]) -> T:
        """Run an idempotent step, again on commit conflicts only (exponential backoff)."""
        retrying = Retrying(
            retry=retry_if_exception(_is_conflict),
            stop=stop_after_attempt(self.commit_retries + 1),
            wait=wait_exponential(multiplier=0.2, max=10.0) + wait_random(0, 0.2),
            reraise=True,
        )
        return retrying(step)

    def wait(self, job: bigquery.LoadJob | bigquery.QueryJob) -> Any:
        """Wait for a job, bounded: on timeout cancel it (a cancelled transaction rolls back)."""
        try:
            return job.result(timeout=self.job_timeout, retry=self.retry)
        except concurrent.futures.TimeoutError as exc:
            with contextlib.suppress(*FAILURES):
                job.cancel(retry=self.retry)
            raise TimeoutError(
                f"job {job.job_id} still running after {self.job_timeout:.0f} s (cancelled)"
            ) from exc

    # ------------------------------------------------------------------ DDL

    def ensure_dataset(self) -> None:
        dataset = bigquery.Dataset(f"{self.project}.{self.dataset_id}")
        dataset.location = self.location
        with self._write_lock:
            try:
                self.conflict_retrying(
                    lambda: self.client.create_dataset(dataset, exists_ok=True, retry=self.retry)
                )
            except FAILURES as exc:
                raise WarehouseError(self.dataset_id, "create", error_detail(exc)) from exc

    def ensure_table(self, defn: TableDefinition) -> bool:
        """Create the table, or add the columns it lacks. Never drops a table or a column.
        True when it created the table or added a column (views over it may need making)."""
        with self._write_lock:
            try:
                return self.conflict_retrying(lambda: self._ensure_table(defn))
            except FAILURES as exc:
                raise WarehouseError(defn.name, "create", error_detail(exc)) from exc

    def _ensure_table(self, defn: TableDefinition) -> bool:
        wanted = defn.bigquery_schema
        try:
            table = self.client.get_table(self.table_id(defn.name), retry=self.retry)
        except google_exceptions.NotFound:
            table = bigquery.Table(self.table_id(defn.name), schema=wanted)
            table.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=defn.partition_field
            )
            table.clustering_fields = list(defn.clustering_fields) or None
            table.description = defn.description or (
                f"Partitioned by day on {defn.partition_field}; rows keyed by {defn.key_field}. "
                "Written by load job + transactional DELETE/INSERT (one per run)."
            )
            self.client.create_table(table, exists_ok=True, retry=self.retry)
            return True
        existing = {field.name: field for field in table.schema}
        for field in wanted:
            have = existing.get(field.name)
            if have is not None and _STANDARD_TYPE.get(have.field_type, have.field_type) != (
                field.field_type
            ):
                raise WarehouseError(
                    defn.name,
                    "create",
                    f"column {field.name} is {have.field_type} in BigQuery, "
                    f"{field.field_type} in the definition",
                )
        missing = [field for field in wanted if field.name not in existing]
        if missing:
            table.schema = [*table.schema, *missing]
            self.client.update_table(table, ["schema"], retry=self.retry)
        return bool(missing)

    # ------------------------------------------------------------------ writes

    def open_writer(self, defn: TableDefinition, directory: Path) -> TableWriter:
        """A thread-safe spool of ``defn``'s rows in ``directory`` (closed → ``commit``)."""
        return TableWriter(defn, Path(directory) / f"{defn.name}.{uuid.uuid4().hex[:8]}.parquet")

    def commit(
        self,
        defn: TableDefinition,
        parquet_path: Path,
        *,
        key_values: Iterable[str],
        start: dt.date,
        end: dt.date,
        mode: Mode,
    ) -> int:
        """Write the spooled rows of the listed keys; return the number of rows inserted.

        ``replace``: in one transaction, delete ``start..end`` (partition field) for the
        listed keys and insert the staged rows of those keys in that window; run twice, the
        table ends identical. With no rows, only the delete runs (a key whose window is now
        empty is emptied). ``append``: insert the staged rows of the listed keys.
        One load job (into a staging table dropped afterwards) and one query job per call.
        """
        if mode not in ("append", "replace"):
            raise ValueError(f"mode must be 'append' or 'replace', not {mode!r}")
        if start > end:
            raise ValueError(f"start {start} is after end {end}")
        keys = sorted(set(key_values))
        try:
            rows = pq.read_metadata(parquet_path).num_rows
        except (OSError, pa.ArrowException) as exc:
            raise WarehouseError(defn.name, "load", f"unreadable Parquet file: {exc}") from exc
        if not keys or (rows == 0 and mode == "append"):
            return 0
        with self._write_lock:
            if rows == 0:
                self._run_transaction(defn, None, keys, start, end, mode)
                return 0
            staging = f"{defn.name}__staging_{uuid.uuid4().hex}"
            try:
                self._load_staging(defn, staging, Path(parquet_path))
                return self._run_transaction(defn, staging, keys, start, end, mode)
            finally:
                self._drop(staging)

    def append_file(self, defn: TableDefinition, parquet_path: Path) -> int:
        """Append a Parquet file to the table with one load job (atomic: all rows or none).

        For tables that only grow (e.g. a run log): no staging table, no DML. Returns the
        rows in the file. Raises ``WarehouseError`` naming the table.
        """
        try:
            rows = pq.read_metadata(parquet_path).num_rows
        except (OSError, pa.ArrowException) as exc:
            raise WarehouseError(defn.name, "load", f"unreadable Parquet file: {exc}") from exc
        if rows == 0:
            return 0

        def load() -> None:
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                schema=defn.bigquery_schema,
            )
            with open(parquet_path, "rb") as source:
                job = self.client.load_table_from_file(
                    source,
                    self.table_id(defn.name),
                    job_config=config,
                    location=self.location,
                    timeout=self.job_timeout,
                    num_retries=self._upload_retries(),
                )
            self.wait(job)

        with self._write_lock:
            try:
                self.conflict_retrying(load)
            except FAILURES as exc:
                raise WarehouseError(defn.name, "load", error_detail(exc)) from exc
        return rows

    def _drop(self, staging: str) -> None:
        """Delete a staging table; if that fails, its expiration removes it within the hour."""
        try:
            self.client.delete_table(self.table_id(staging), not_found_ok=True, retry=self.retry)
        except FAILURES as exc:
            log.warning("could not delete staging table %s: %s", staging, error_detail(exc))

    def _load_staging(self, defn: TableDefinition, staging: str, path: Path) -> None:
        def load() -> None:
            table = bigquery.Table(self.table_id(staging), schema=defn.bigquery_schema)
            table.expires = dt.datetime.now(dt.UTC) + STAGING_TTL
            self.client.create_table(table, exists_ok=True, retry=self.retry)
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                schema=defn.bigquery_schema,
            )
            with open(path, "rb") as source:
                job = self.client.load_table_from_file(
                    source,
                    self.table_id(staging),
                    job_config=config,
                    location=self.location,
                    timeout=self.job_timeout,
                    num_retries=self._upload_retries(),
                )
            self.wait(job)

        try:
            self.conflict_retrying(load)
        except FAILURES as exc:
            raise WarehouseError(defn.name, "load", error_detail(exc)) from exc

    def _run_transaction(
        self,
        defn: TableDefinition,
        staging: str | None,
        keys: list[str],
        start: dt.date,
        end: dt.date,
        mode: Mode,
    ) -> int:
        sql = self._dml(defn, staging, mode)
        parameters: list[bigquery.ArrayQueryParameter | bigquery.ScalarQueryParameter]
        parameters = [bigquery.ArrayQueryParameter("keys", "STRING", keys)]
        if mode == "replace":
            parameters += [
                bigquery.ScalarQueryParameter("start", "DATE", start),
                bigquery.ScalarQueryParameter("end", "DATE", end),
            ]
        config = bigquery.QueryJobConfig(query_parameters=parameters)

        def run() -> int:
            job = self.client.query(
                sql, job_config=config, location=self.location, retry=self.retry, job_retry=None
            )
            result = self.wait(job)
            if staging is None:
                return 0
            if mode == "append":
                return int(job.num_dml_affected_rows or 0)
            return int(next(iter(result))[0] or 0)  # the script ends with SELECT inserted

        try:
            return self.conflict_retrying(run)
        except FAILURES as exc:
            raise WarehouseError(defn.name, mode, error_detail(exc)) from exc

    def _dml(self, defn: TableDefinition, staging: str | None, mode: Mode) -> str:
        """The one query of a commit. Values are parameters; identifiers are checked, quoted."""
        target = self.sql_table(defn.name)
        key, part = f"`{defn.key_field}`", f"`{defn.partition_field}`"
        delete = (
            f"DELETE FROM {target} WHERE {part} BETWEEN @start AND @end AND {key} IN UNNEST(@keys)"
        )
        if staging is None:  # replace with no rows: empty the window of these keys
            return f"BEGIN TRANSACTION;\n{delete};\nCOMMIT TRANSACTION;"
        columns = ", ".join(f"`{name}`" for name in defn.schema.names)
        insert = (
            f"INSERT INTO {target} ({columns})\n"
            f"SELECT {columns} FROM {self.sql_table(staging)}\nWHERE {key} IN UNNEST(@keys)"
        )
        if mode == "append":
            return insert
        return (
            "DECLARE inserted INT64 DEFAULT 0;\n"
            "BEGIN TRANSACTION;\n"
            f"{delete};\n"
            f"{insert} AND {part} BETWEEN @start AND @end;\n"
            "SET inserted = @@row_count;\n"
            "COMMIT TRANSACTION;\n"
            "SELECT inserted;"
        )
