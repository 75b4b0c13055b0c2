"""The service's answers → what a task returns, and the run's verdict over every batch.

A batch is judged by its items, never by its top-level word: every requested
advertiser/report pair must be answered ``success``. Error texts are scrubbed of the
access token before they reach XCom, which Airflow never masks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import scrub


def failed_pairs(results: Iterable[Mapping[str, Any]]) -> list[str]:
    return [
        f"{item['advertiser_id']}/{item['report_type']}: {item.get('error') or 'failed'}"
        for item in results
        if item.get("status") != "success"
    ]


def missing_pairs(payload: Mapping[str, Any], results: Iterable[Mapping[str, Any]]) -> list[str]:
    """Requested advertiser/report pairs the service's answer does not account for.

    A batch is judged by its items: an answer that leaves a requested report out has not
    loaded it, whatever its top-level word says.
    """
    answered = {(str(item["advertiser_id"]), item["report_type"]) for item in results}
    return [
        f"{advertiser}/{report_type}: missing from the service's answer"
        for advertiser in payload["advertiser_ids"]
        for report_type in payload["report_types"]
        if (advertiser, report_type) not in answered
    ]


def summarize(http_status: int, body: Mapping[str, Any], label: str, secret: str) -> dict:
    """What the task returns to XCom: the run's outcome, with error texts scrubbed."""
    results = [
        {
            "advertiser_id": str(item["advertiser_id"]),
            "report_type": item["report_type"],
            "destination_table": item.get("destination_table"),
            "inserted_rows": int(item.get("inserted_rows") or 0),
            "requests": int(item.get("requests") or 0),
            "status": item["status"],
            "error": scrub(item.get("error"), secret),
        }
        for item in body.get("results", [])
    ]
    return {
        "label": label,
        "http_status": http_status,
        "status": body.get("status"),  # informative only: batches are judged by their items
        "request_id": body.get("request_id"),
        "start_date": body.get("start_date"),
        "end_date": body.get("end_date"),
        "total_inserted_rows": int(body.get("total_inserted_rows") or 0),
        "errors_count": int(body.get("errors_count") or 0),
        "results": results,
    }


def check_results(summaries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Rows per destination table and every failed advertiser/report pair of the run.

    A batch is judged by its items and its ``errors_count``, never by its top-level word
    (the service answers "Ok" when every report loaded; the words may change, the items
    may not): every item must be ``success``, none may be missing, and ``errors_count``
    must not count failures the items do not show.
    """
    rows_by_table: dict[str, int] = {}
    failures: list[str] = []
    batches = 0
    for summary in summaries:
        batches += 1
        for item in summary["results"]:
            table = item.get("destination_table") or item["report_type"]
            rows_by_table[table] = rows_by_table.get(table, 0) + item["inserted_rows"]
        pairs = failed_pairs(summary["results"])
        failures.extend(pairs)
        failures.extend(summary.get("missing") or [])
        if summary["errors_count"] > len(pairs):
            failures.append(
                f"{summary['label']}: errors_count {summary['errors_count']} but "
                f"{len(pairs)} failed report(s) listed (request_id {summary['request_id']})"
            )
    return {
        "batches": batches,
        "total_inserted_rows": sum(rows_by_table.values()),
        "rows_by_table": dict(sorted(rows_by_table.items())),
        "failures": failures,
    }


def backfill_summary(outcomes: list[dict[str, Any] | None], labels: list[str]) -> dict:
    """Per unit rows, requests, seconds and status, and the totals."""
    units: list[dict[str, Any]] = []
    for label, outcome in zip(labels, outcomes, strict=True):
        if outcome is None:
            units.append({"label": label, "status": "not run", "rows": 0, "requests": 0,
                          "seconds": 0.0, "failures": []})  # fmt: skip
        else:
            units.append({k: v for k, v in outcome.items() if k != "parts"})
    return {
        "units": units,
        "total_rows": sum(u["rows"] for u in units),
        "total_requests": sum(u["requests"] for u in units),
        "total_seconds": round(sum(u["seconds"] for u in units), 1),
        "failed_units": [u["label"] for u in units if u["status"] != "success"],
    }
