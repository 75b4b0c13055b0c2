"""Account info and entity lists as CSV files, for the CSV tool (run_local_csv.py).

The same readers as the service (``controller.tiktok.accounts``, ``controller.tiktok.entities``); a CSV
holds the objects as read today (no history: that lives in BigQuery), one file per
advertiser and type: ``<table>_<advertiser_id>_<YYYYMMDD>.csv``, written to a ``.part`` name
and renamed when the advertiser's listing completed.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from controller.extraction import ItemResult
from controller.tiktok.accounts import (
    ADVERTISER_INFO,
    INFO_SCHEMA,
    INFO_TABLE,
    Account,
    info_record,
    read_info,
)
from controller.tiktok.client import TikTokClient
from controller.tiktok.entities import ENTITIES, EntityReader, EntitySpec


def write_entity_csvs(
    client: TikTokClient,
    accounts: list[Account],
    kinds: list[str],
    directory: Path,
    now: datetime,
    workers: int,
) -> list[ItemResult]:
    """Write the asked account-info and entity CSVs; one result per advertiser and type."""
    stamp = now.strftime("%Y%m%d")
    results: list[ItemResult] = []
    if ADVERTISER_INFO in kinds:
        if any(a.info is None and a.reason is None for a in accounts):
            read_info(client, [a for a in accounts if a.info is None and a.reason is None])
        for account in accounts:
            result = ItemResult(account.advertiser_id, ADVERTISER_INFO)
            if account.info is None:
                result.status, result.error = "error", account.reason or "no account info"
            else:
                row = info_record(account, now.date().isoformat(), now)
                row["date"] = now.date()
                path = directory / f"{INFO_TABLE}_{account.advertiser_id}_{stamp}.csv"
                pacsv.write_csv(pa.Table.from_pylist([row], schema=INFO_SCHEMA), path)
                result.status, result.rows = "success", 1
            results.append(result)
    specs = [ENTITIES[k] for k in kinds if k in ENTITIES]
    if not specs:
        return results
    ids = [a.advertiser_id for a in accounts if a.active]
    writers: dict[tuple[str, str], pacsv.CSVWriter] = {}
    lock = threading.Lock()

    def part(spec: EntitySpec, advertiser_id: str) -> Path:
        return directory / f"{spec.table}_{advertiser_id}_{stamp}.csv.part"

    def sink(spec: EntitySpec, advertiser_id: str, table: pa.Table) -> None:
        with lock:
            key = (spec.report_type, advertiser_id)
            if key not in writers:
                writers[key] = pacsv.CSVWriter(part(spec, advertiser_id), spec.schema)
            writers[key].write_table(table)

    reader = EntityReader(client, extracted_at=now, workers=workers)
    for outcome in reader.run(ids, specs, sink):
        spec = ENTITIES[outcome.report_type]
        writer = writers.pop((spec.report_type, outcome.advertiser_id), None)
        if writer is not None:
            writer.close()
        path = part(spec, outcome.advertiser_id)
        result = ItemResult(outcome.advertiser_id, outcome.report_type, rows=outcome.rows)
        result.requests = outcome.requests
        if outcome.ok:
            path.replace(path.with_suffix(""))
            result.status = "success"
        else:
            path.unlink(missing_ok=True)
            result.status, result.error = "error", "; ".join(outcome.errors)
        results.append(result)
    return results
