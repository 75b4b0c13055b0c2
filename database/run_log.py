"""The run log: one row per (run, advertiser, report type) in ``TKT000_TIKTOK_ADS_RUNS``.

Why a table and not only logs: whoever reads the data tables wants to know, in SQL, when an
account was last loaded, what failed this week and which days did not add up across
levels, long after Cloud Logging's retention. The log lives in the destination dataset,
partitioned by the run's UTC day and clustered by advertiser and report type.

It is written with one load job (``WRITE_APPEND``, atomic: all the run's rows or none) after
the data tables, also when their loads failed. Failing to write it never fails the run: the
caller reports the failure in the response instead. Lists (warnings, reconciliation
differences) are JSON array text, readable with ``JSON_QUERY_ARRAY``; their counts are
columns of their own so the usual questions need no JSON at all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from database.bigquery import BigQueryWarehouse, TableDefinition

log = logging.getLogger(__name__)

RUN_LOG_TABLE = "TKT000_TIKTOK_ADS_RUNS"

_TIMESTAMP = pa.timestamp("us", tz="UTC")
RUN_LOG_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("run_date", pa.date32()),  # UTC day the run started: the partition
        ("advertiser_id", pa.string()),
        ("report_type", pa.string()),
        ("destination_table", pa.string()),
        ("start_date", pa.date32()),  # the window the run read and wrote
        ("end_date", pa.date32()),
        ("if_exists", pa.string()),
        ("status", pa.string()),  # success | error, as results[].status of the response
        ("rows", pa.int64()),  # rows inserted into destination_table (0 when it failed)
        ("requests", pa.int64()),  # TikTok requests the report cost
        # the rate budget they counted against: general (the app tier) or gmv_max
        ("rate_budget", pa.string()),
        ("error", pa.string()),
        ("warnings_count", pa.int64()),
        ("warnings", pa.string()),  # JSON array of strings
        ("reconciliation_differences", pa.int64()),
        ("reconciliation", pa.string()),  # JSON array of {date, metric, values per level}
        ("started_at", _TIMESTAMP),
        ("finished_at", _TIMESTAMP),
        ("service_version", pa.string()),
    ]
)

RUN_LOG = TableDefinition(
    name=RUN_LOG_TABLE,
    schema=RUN_LOG_SCHEMA,
    partition_field="run_date",
    clustering_fields=("advertiser_id", "report_type"),
    key_field="advertiser_id",
    description=(
        "One row per (run, advertiser, report type) of the tiktok-ads-api service; "
        "partitioned by run_date (UTC day the run started). Appended by one load job per run."
    ),
)


@dataclass
class RunLogRow:
    """What one (run, advertiser, report type) did; the columns of ``RUN_LOG``."""

    request_id: str
    advertiser_id: str
    report_type: str
    destination_table: str
    start_date: date
    end_date: date
    if_exists: str
    status: str
    rows: int
    requests: int
    error: str | None
    started_at: datetime
    finished_at: datetime
    service_version: str
    warnings: list[str] = field(default_factory=list)
    reconciliation: list[dict[str, Any]] = field(default_factory=list)
    rate_budget: str = "general"

    def record(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "run_date": self.started_at.date(),
            "advertiser_id": self.advertiser_id,
            "report_type": self.report_type,
            "destination_table": self.destination_table,
            "start_date": self.start_date,
            "end_date": self.end_date,
            "if_exists": self.if_exists,
            "status": self.status,
            "rows": self.rows,
            "requests": self.requests,
            "rate_budget": self.rate_budget,
            "error": self.error,
            "warnings_count": len(self.warnings),
            "warnings": json.dumps(self.warnings, ensure_ascii=False),
            "reconciliation_differences": len(self.reconciliation),
            "reconciliation": json.dumps(self.reconciliation, ensure_ascii=False, default=str),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "service_version": self.service_version,
        }


def run_log_table(rows: Sequence[RunLogRow]) -> pa.Table:
    return pa.Table.from_pylist([row.record() for row in rows], schema=RUN_LOG_SCHEMA)


def ensure_run_log(warehouse: BigQueryWarehouse) -> None:
    """Create the table, or add the columns a newer service writes (never drops any)."""
    warehouse.ensure_table(RUN_LOG)


def write_run_log(warehouse: BigQueryWarehouse, rows: Iterable[RunLogRow], directory: Path) -> int:
    """Append the run's rows in one load job; return how many. Raises ``WarehouseError``."""
    table = run_log_table(list(rows))
    if not table.num_rows:
        return 0
    writer = warehouse.open_writer(RUN_LOG, directory)
    with writer:
        writer.write(table)
    return warehouse.append_file(RUN_LOG, writer.path)
