"""What the entity history says about attribution: the click windows of the ad groups that
delivered recently, per advertiser (for sizing the settlement window).

Reads the ad group history table (its current rows) and the ad group report table, whose
names the caller passes; knows their column names, not what the window values mean
(``controller/settlement.py`` does).
"""

from __future__ import annotations

import datetime as dt

from google.api_core import exceptions as google_exceptions
from google.cloud import bigquery

from database.bigquery import FAILURES, BigQueryWarehouse, WarehouseError, error_detail


def delivering_click_windows(
    warehouse: BigQueryWarehouse,
    advertiser_ids: list[str],
    since: dt.date,
    *,
    history_table: str,
    report_table: str,
) -> tuple[set[str], dict[str, set[str]]]:
    """(advertisers with ad group history, advertiser → click windows of its current ad
    groups with spend or impressions on or after ``since``). Missing tables: nothing known."""
    known_sql = (
        f"SELECT DISTINCT _advertiser_id FROM {warehouse.sql_table(history_table)} "
        "WHERE _advertiser_id IN UNNEST(@ids)"
    )
    windows_sql = (
        f"SELECT DISTINCT h._advertiser_id, h.click_attribution_window "
        f"FROM {warehouse.sql_table(history_table)} AS h "
        f"JOIN (SELECT DISTINCT _advertiser_id, adgroup_id FROM "
        f"{warehouse.sql_table(report_table)} WHERE _advertiser_id IN UNNEST(@ids) "
        f"AND date >= @since AND (spend > 0 OR impressions > 0)) AS r "
        f"ON r._advertiser_id = h._advertiser_id AND r.adgroup_id = h.adgroup_id "
        f"WHERE h.is_current AND h._advertiser_id IN UNNEST(@ids)"
    )
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ArrayQueryParameter("ids", "STRING", advertiser_ids),
            bigquery.ScalarQueryParameter("since", "DATE", since),
        ]
    )

    def rows(sql: str) -> list[tuple]:
        job = warehouse.client.query(
            sql, job_config=config, location=warehouse.location, retry=warehouse.retry,
            job_retry=None,
        )  # fmt: skip
        return [tuple(row.values()) for row in warehouse.wait(job)]

    try:
        known = {str(r[0]) for r in rows(known_sql)}
        windows: dict[str, set[str]] = {}
        if known:
            try:
                for advertiser_id, window in rows(windows_sql):
                    windows.setdefault(str(advertiser_id), set()).add(window or "")
            except google_exceptions.NotFound:  # no ad group report loaded yet
                pass
    except google_exceptions.NotFound:
        return set(), {}
    except FAILURES as exc:
        raise WarehouseError(history_table, "query", error_detail(exc)) from exc
    return known, windows
