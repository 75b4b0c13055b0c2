"""Settlement window per advertiser from its attribution settings
(``TIKTOK_SETTLEMENT_DAYS=auto`` in the DAG; docs/tiktok_api_beyond.md §4).

A day's conversions keep changing until the longest click window of the ad groups that
delivered it has passed. N per advertiser = the longest ``click_attribution_window`` among
its ad groups that delivered in the last ``max_days`` days (from the entity history and the
ad group report already loaded), capped at ``max_days``. An advertiser whose ad groups were
never loaded gets ``max_days`` (nothing known: the safe side); one whose ad groups did not
deliver gets 0 (nothing to settle beyond the daily window).
"""

from __future__ import annotations

from datetime import date, timedelta

from database.attribution import delivering_click_windows
from database.bigquery import BigQueryWarehouse

# TikTok's click window values (TT-ADG; GO's enum adds the longer ones).
WINDOW_DAYS = {
    "OFF": 0,
    "ZERO_DAY": 0,
    "ONE_DAY": 1,
    "SEVEN_DAYS": 7,
    "FOURTEEN_DAYS": 14,
    "TWENTY_EIGHT_DAYS": 28,
    "THIRTY_DAYS": 30,
    "THIRTY_TWO_DAYS": 32,
}
DEFAULT_CLICK_DAYS = 7  # TikTok's default click window, for an ad group without the setting


def settlement_days(
    warehouse: BigQueryWarehouse, advertiser_ids: list[str], max_days: int, today: date
) -> dict[str, dict[str, object]]:
    """advertiser → {"days": N, "reason": why}."""
    since = today - timedelta(days=max_days)
    known, windows = delivering_click_windows(warehouse, advertiser_ids, since)
    out: dict[str, dict[str, object]] = {}
    for advertiser_id in advertiser_ids:
        if advertiser_id not in known:
            out[advertiser_id] = {"days": max_days, "reason": "no ad group history loaded"}
            continue
        found = windows.get(advertiser_id, set())
        if not found:
            out[advertiser_id] = {"days": 0, "reason": f"no ad group delivered since {since}"}
            continue
        days = max(
            WINDOW_DAYS.get(w, DEFAULT_CLICK_DAYS) if w else DEFAULT_CLICK_DAYS for w in found
        )
        out[advertiser_id] = {
            "days": min(days, max_days),
            "reason": "longest click window of delivering ad groups: " + ", ".join(sorted(found)),
        }
    return out


def parse_query(args: dict[str, str]) -> tuple[dict[str, object], list[tuple[str, str]]]:
    """GET /settlement_days parameters: (values, [(field, problem)])."""
    from controller.models import _DATASET_ID, _PROJECT_ID

    problems: list[tuple[str, str]] = []
    project = args.get("project_id", "")
    if not _PROJECT_ID.match(project):
        problems.append(("project_id", "required: a valid GCP project id"))
    dataset = args.get("dataset_id", "raw")
    if not _DATASET_ID.match(dataset):
        problems.append(("dataset_id", "not a valid BigQuery dataset id"))
    ids = [part.strip() for part in args.get("advertiser_ids", "").split(",") if part.strip()]
    if not ids or not all(i.isdigit() and len(i) <= 20 for i in ids) or len(ids) > 200:
        problems.append(("advertiser_ids", "required: 1-200 comma-separated ids of digits"))
    raw_days = args.get("max_days", "28")
    max_days = int(raw_days) if raw_days.isdigit() else 0
    if not 1 <= max_days <= 366:
        problems.append(("max_days", "must be a whole number between 1 and 366"))
    return {"project_id": project, "dataset_id": dataset, "advertiser_ids": ids,
            "max_days": max_days}, problems  # fmt: skip
