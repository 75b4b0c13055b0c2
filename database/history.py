"""Slowly changing dimension (type 2) tables: a new row only when an object changed.

A history table holds every version of every object: the columns of the rows as read, a
``_hash`` of the object, ``valid_from`` (the run that first saw this version), ``valid_to``
(the run that saw it replaced; NULL while current) and ``is_current``. A view
``<name>_CURRENT`` shows the current version of each object.

A run's rows are spooled to Parquet, loaded into a staging table and applied in ONE
transaction per table: close the current versions whose hash changed, insert the versions
not held yet. The comparison happens in BigQuery, so the service holds no account in memory;
a rerun (same hashes) changes nothing. Objects absent from a run are left as they are: the
listing includes deleted objects, so an absence is a failed or partial read, not a deletion.
Only the listed keys (advertisers whose listing completed) are touched.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from google.cloud import bigquery

from database.bigquery import (
    FAILURES,
    NAME_PATTERN,
    BigQueryWarehouse,
    TableDefinition,
    WarehouseError,
    check_name,
    error_detail,
)

log = logging.getLogger(__name__)

HISTORY_COLUMNS = (
    pa.field("valid_from", pa.timestamp("us", tz="UTC")),
    pa.field("valid_to", pa.timestamp("us", tz="UTC")),
    pa.field("is_current", pa.bool_()),
)


@dataclass(frozen=True)
class HistoryDefinition:
    """A history table: the spooled rows' schema, the object id and the view's name."""

    name: str
    schema: pa.Schema  # the rows as read: must hold ``id_field``, ``_hash`` and ``key_field``
    id_field: str
    view: str
    key_field: str = "_advertiser_id"

    def __post_init__(self) -> None:
        check_name(NAME_PATTERN, self.view, "view name")
        for column in (self.id_field, "_hash", self.key_field):
            if column not in self.schema.names:
                raise ValueError(f"{self.name}: {column!r} is not a column of the schema")

    @property
    def table(self) -> TableDefinition:
        schema = self.schema
        for column in HISTORY_COLUMNS:
            schema = schema.append(column)
        return TableDefinition(
            name=self.name,
            schema=schema,
            partition_field="valid_from",
            clustering_fields=(self.key_field, self.id_field),
            key_field=self.key_field,
            description=(
                f"SCD type 2 history of {self.id_field}: one row per version, valid_from/"
                f"valid_to (NULL while current), is_current; current rows in {self.view}."
            ),
        )


class HistoryTables:
    """SCD2 writes on top of a ``BigQueryWarehouse`` (its client, lock and retries)."""

    def __init__(self, warehouse: BigQueryWarehouse) -> None:
        self.warehouse = warehouse

    def ensure(self, defn: HistoryDefinition) -> bool:
        """The table (columns added, never dropped) and its ``_CURRENT`` view; True when the
        table was created or gained a column."""
        warehouse = self.warehouse
        changed = warehouse.ensure_table(defn.table)
        view = bigquery.Table(warehouse.table_id(defn.view))
        view.view_query = (
            f"SELECT * EXCEPT (is_current, valid_to) FROM {warehouse.sql_table(defn.name)} "
            "WHERE is_current"
        )
        view.description = f"The current version of each {defn.id_field} of {defn.name}."
        with warehouse._write_lock:
            try:
                warehouse.client.create_table(view, exists_ok=True, retry=warehouse.retry)
            except FAILURES as exc:
                raise WarehouseError(defn.view, "create", error_detail(exc)) from exc
        return changed

    def open_writer(self, defn: HistoryDefinition, directory: Path):
        """A spool of rows as read (``defn.schema``), committed by ``commit``."""
        spool = TableDefinition(
            name=defn.name,
            schema=defn.schema,
            partition_field=defn.key_field,
            key_field=defn.key_field,
        )
        return self.warehouse.open_writer(spool, directory)

    def commit(
        self,
        defn: HistoryDefinition,
        parquet_path: Path,
        *,
        key_values: list[str],
        observed_at: dt.datetime,
    ) -> tuple[dict[str, int], int]:
        """Apply the spooled versions of the listed keys; return (rows added per key, rows
        closed)."""
        keys = sorted(set(key_values))
        try:
            rows = pq.read_metadata(parquet_path).num_rows
        except (OSError, pa.ArrowException) as exc:
            raise WarehouseError(defn.name, "load", f"unreadable Parquet file: {exc}") from exc
        if not keys or rows == 0:
            return {}, 0
        warehouse = self.warehouse
        staging_defn = TableDefinition(
            name=f"{defn.name}__staging",
            schema=defn.schema,
            partition_field=defn.key_field,
            key_field=defn.key_field,
        )
        staging = f"{defn.name}__staging_{uuid.uuid4().hex}"
        with warehouse._write_lock:
            try:
                warehouse._load_staging(staging_defn, staging, Path(parquet_path))
                return self._apply(defn, staging, keys, observed_at)
            finally:
                warehouse._drop(staging)

    def _apply(
        self, defn: HistoryDefinition, staging: str, keys: list[str], observed_at: dt.datetime
    ) -> tuple[dict[str, int], int]:
        warehouse = self.warehouse
        target, source = warehouse.sql_table(defn.name), warehouse.sql_table(staging)
        key, ident = (
            f"`{defn.key_field}`",
            f"`{check_name(NAME_PATTERN, defn.id_field, 'column name')}`",
        )
        columns = ", ".join(f"`{name}`" for name in defn.schema.names)
        # One version per object even if a page repeated it (a listing that shifted while
        # it was paged): the first by hash, deterministically.
        latest = (
            f"SELECT {columns} FROM (SELECT {columns}, ROW_NUMBER() OVER "
            f"(PARTITION BY {key}, {ident} ORDER BY `_hash`) AS _n FROM {source} "
            f"WHERE {key} IN UNNEST(@keys)) WHERE _n = 1"
        )
        sql = (
            "DECLARE closed INT64 DEFAULT 0;\n"
            "BEGIN TRANSACTION;\n"
            f"UPDATE {target} AS t SET valid_to = @observed_at, is_current = FALSE\n"
            f"WHERE t.is_current AND t.{key} IN UNNEST(@keys) AND EXISTS (\n"
            f"  SELECT 1 FROM {source} AS s\n"
            f"  WHERE s.{key} = t.{key} AND s.{ident} = t.{ident} AND s.`_hash` != t.`_hash`);\n"
            "SET closed = @@row_count;\n"
            f"INSERT INTO {target} ({columns}, `valid_from`, `valid_to`, `is_current`)\n"
            f"SELECT {columns}, @observed_at, CAST(NULL AS TIMESTAMP), TRUE FROM ({latest}) AS s\n"
            f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t\n"
            f"  WHERE t.is_current AND t.{key} = s.{key} AND t.{ident} = s.{ident});\n"
            "COMMIT TRANSACTION;\n"
            # valid_from is this run's own timestamp: the versions it added, per key.
            f"SELECT {key}, COUNT(*), closed FROM {target}\n"
            f"WHERE valid_from = @observed_at AND {key} IN UNNEST(@keys) GROUP BY {key};"
        )
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ArrayQueryParameter("keys", "STRING", keys),
                bigquery.ScalarQueryParameter("observed_at", "TIMESTAMP", observed_at),
            ]
        )

        def run() -> tuple[dict[str, int], int]:
            job = warehouse.client.query(
                sql,
                job_config=config,
                location=warehouse.location,
                retry=warehouse.retry,
                job_retry=None,
            )
            added, closed = {}, 0
            for row in warehouse.wait(job):
                added[str(row[0])] = int(row[1] or 0)
                closed = int(row[2] or 0)
            return added, closed

        try:
            return warehouse.conflict_retrying(run)
        except FAILURES as exc:
            raise WarehouseError(defn.name, "history", error_detail(exc)) from exc
