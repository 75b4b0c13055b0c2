"""Which days a run replaces: its run day, the daily window, the weekly settlement window.

A run stands for a UTC day D and replaces D-n..D-1 with ``if_exists: replace``, so a retry
or a rerun rewrites the same rows. On the settlement weekday it replaces the attribution
window instead (dags/README.md, "Attribution settlement"), posted in spans that each fit
the service's deadline as a daily run does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, timedelta
from typing import Any

from .config import AUTO, DEFAULT_SETTLEMENT_DAYS
from .errors import PermanentError

# A settlement window is posted in spans of at most this many days, so that each POST holds
# about as much as two daily runs and fits the service's deadline like they do.
SETTLEMENT_SPAN_DAYS = 7


def run_day(context: Mapping[str, Any]) -> date:
    """The UTC day a run stands for.

    ``data_interval_end`` is the run's day on Airflow 3 and 2 alike (``logical_date`` is not:
    on 2.x it is the start of the interval, the previous day). Manual runs on 3.x may have no
    data interval: then the moment the run was requested counts.
    """
    dag_run = context.get("dag_run")
    for moment in (
        context.get("data_interval_end"),
        getattr(dag_run, "run_after", None),
        context.get("logical_date"),
    ):
        if moment is not None:
            return moment.astimezone(UTC).date()
    raise PermanentError("the run has no data_interval_end, run_after or logical_date")


def default_window(day: date, days_reprocess: int) -> tuple[date, date]:
    """D-days_reprocess .. D-1: yesterday plus the days TikTok may still restate."""
    return day - timedelta(days=days_reprocess), day - timedelta(days=1)


def is_settlement_day(day: date, config: Mapping[str, Any]) -> bool:
    """The weekly run that replaces the attribution window instead of the daily days.

    Off when ``settlement_days`` is 0 or no longer than the daily window (nothing to add).
    """
    days = settlement_ceiling(config)
    return days > config["days_reprocess"] and day.weekday() == config["settlement_weekday"]


def settlement_ceiling(config: Mapping[str, Any]) -> int:
    """The settlement window's days; with ``auto``, its longest (TikTok's 28-day click window)."""
    days = config["settlement_days"]
    return DEFAULT_SETTLEMENT_DAYS if days == AUTO else days


def settlement_groups(days: Mapping[str, int], days_reprocess: int) -> dict[int, list[str]]:
    """Advertisers by the days their settlement replaces (``auto``); at least the daily
    window's, which every run replaces anyway."""
    groups: dict[int, list[str]] = {}
    for advertiser_id, n in days.items():
        groups.setdefault(max(int(n), days_reprocess), []).append(advertiser_id)
    return dict(sorted(groups.items(), reverse=True))


def scheduled_window(day: date, config: Mapping[str, Any]) -> tuple[date, date, int | None]:
    """The window of a scheduled run of ``day`` and the span its POSTs are split into.

    Daily: D-days_reprocess..D-1 in one span. Settlement day: D-settlement_days..D-1 in
    spans of ``SETTLEMENT_SPAN_DAYS`` (each POST must fit the service's deadline).
    """
    if is_settlement_day(day, config):
        start, end = default_window(day, settlement_ceiling(config))
        return start, end, SETTLEMENT_SPAN_DAYS
    start, end = default_window(day, config["days_reprocess"])
    return start, end, None


def date_spans(start: date, end: date, days: int | None) -> list[tuple[date, date]]:
    """The inclusive window cut into consecutive spans of at most ``days`` (None: one span)."""
    if not days:
        return [(start, end)]
    spans = []
    while start <= end:
        span_end = min(start + timedelta(days=days - 1), end)
        spans.append((start, span_end))
        start = span_end + timedelta(days=1)
    return spans
