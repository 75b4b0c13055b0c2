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

from controller.reports.catalog import REPORTS
from controller.tiktok.entities import ENTITIES
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
    known, windows = delivering_click_windows(
        warehouse,
        advertiser_ids,
        since,
        history_table=ENTITIES["adgroups"].table,
        report_table=REPORTS["adgroup"].table,
    )
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
