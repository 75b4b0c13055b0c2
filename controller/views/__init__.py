"""The analysts' layer: views over the raw tables, made from ``definitions`` by ``sql``.

``refresh_views`` reads which raw tables exist and their columns, then creates, replaces or
leaves each view of the two datasets (``database.views.ensure_view``): idempotent, so it runs
on ``POST /views``, after a run that created a table or added a column, and from the CSV
tool's ``--views``. A view whose own table does not exist yet is skipped with the reason
(never a view over a missing table); the next refresh after the table appears makes it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from config.settings import Settings
from controller.reports import registry
from controller.tiktok.accounts import INFO_TABLE
from controller.views.definitions import (
    ACCOUNT_EXTRA_SPEND,
    AD,
    AD_GROUP,
    AD_HISTORY,
    CAMPAIGN,
    FIVETRAN_DATASET,
    REPORTING_DATASET,
    REPORTING_VIEWS,
    SOURCE_VIEWS,
)
from controller.views.sql import Raw, reporting_view, source_view
from database.bigquery import BigQueryWarehouse
from database.views import ViewDefinition, ensure_view, table_columns

log = logging.getLogger(__name__)

SKIPPED = "skipped"
_RATES_TABLE = re.compile(r"^(?:([A-Za-z0-9.:-]+)\.)?([A-Za-z0-9_]+)\.([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class ViewsPlan:
    """Where the views go and what they read (``POST /views``'s body, or the settings)."""

    project_id: str
    dataset_id: str = "raw"  # the raw tables
    reporting_dataset_id: str = REPORTING_DATASET
    fivetran_dataset_id: str = FIVETRAN_DATASET
    reporting_currency: str | None = None
    currency_rates_table: str | None = None  # [project.]dataset.table


@dataclass(frozen=True)
class ViewOutcome:
    dataset_id: str
    view: str
    status: str  # created, replaced, unchanged, skipped
    reason: str | None = None


def _raw_state(warehouses: Callable[[str, str], BigQueryWarehouse], plan: ViewsPlan) -> Raw:
    """The raw dataset as it is: the columns of every table a view may read, and the rates."""
    raw = warehouses(plan.project_id, plan.dataset_id)
    tables = {v.table for v in REPORTING_VIEWS} | {v.table for v in SOURCE_VIEWS}
    tables |= {INFO_TABLE, AD_HISTORY, CAMPAIGN.history, AD_GROUP.history, AD.history}
    tables |= {v.hourly_table for v in SOURCE_VIEWS if v.hourly_table}
    tables |= {registry.get(report_type).table for report_type, _ in ACCOUNT_EXTRA_SPEND}
    columns = {t: cols for t in sorted(tables) if (cols := table_columns(raw, t)) is not None}
    rates_id: str | None = None
    rates_columns: tuple[str, ...] = ()
    if plan.currency_rates_table:
        match = _RATES_TABLE.match(plan.currency_rates_table)
        if match is None:
            raise ValueError("currency_rates_table: not [project.]dataset.table")
        project, dataset, table = match.groups()
        project = project or plan.project_id
        found = table_columns(warehouses(project, dataset), table)
        if found is not None:
            rates_id, rates_columns = f"{project}.{dataset}.{table}", found
    return Raw(
        f"{plan.project_id}.{plan.dataset_id}",
        columns,
        reporting_currency=plan.reporting_currency,
        rates_table=rates_id,
        rates_columns=rates_columns,
    )


def _missing(raw: Raw, *tables: str) -> str:
    absent = [t for t in tables if not raw.has(t)]
    return f"{', '.join(absent)} not in {raw.dataset} yet: made by the first refresh after"


def view_queries(raw: Raw) -> dict[str, list[tuple[str, str | None, str, str]]]:
    """Per dataset role: (view, SELECT or None, description, why None) of every view."""
    reporting = [
        (
            v.name,
            reporting_view(raw, v),
            f"TikTok Ads, ad_reporting shape: {v.description}. README: Analysts' layer.",
            _missing(raw, v.table, *((AD_HISTORY,) if v.url else ())),
        )
        for v in REPORTING_VIEWS
    ]
    fivetran = [
        (
            v.name,
            source_view(raw, v),
            f"dbt_tiktok_ads source table {v.name}, from {v.table}. README: Analysts' layer.",
            _missing(raw, v.table),
        )
        for v in SOURCE_VIEWS
    ]
    return {"reporting": reporting, "fivetran": fivetran}


def refresh_views(
    warehouses: Callable[[str, str], BigQueryWarehouse], plan: ViewsPlan
) -> list[ViewOutcome]:
    """Create, replace or leave every view of both datasets over what exists now."""
    raw = _raw_state(warehouses, plan)
    datasets = {"reporting": plan.reporting_dataset_id, "fivetran": plan.fivetran_dataset_id}
    outcomes = []
    for role, views in view_queries(raw).items():
        warehouse = warehouses(plan.project_id, datasets[role])
        warehouse.ensure_dataset()
        for name, query, description, reason in views:
            if query is None:
                outcomes.append(ViewOutcome(datasets[role], name, SKIPPED, reason))
                continue
            status = ensure_view(warehouse, ViewDefinition(name, query, description))
            outcomes.append(ViewOutcome(datasets[role], name, status))
    return outcomes


def plan_for(
    settings: Settings, project_id: str, dataset_id: str, **given: str | None
) -> ViewsPlan:
    """The views of a raw dataset: what ``given`` says (a request's fields), else the settings."""
    defaults = {
        "reporting_dataset_id": settings.views_reporting_dataset,
        "fivetran_dataset_id": settings.views_fivetran_dataset,
        "reporting_currency": settings.reporting_currency,
        "currency_rates_table": settings.currency_rates_table,
    }
    chosen = {k: given[k] if given.get(k) is not None else v for k, v in defaults.items()}
    return ViewsPlan(project_id, dataset_id, **chosen)  # type: ignore[arg-type]


def refresh_after_run(
    settings: Settings,
    warehouses: Callable[[str, str], BigQueryWarehouse],
    project_id: str,
    dataset_id: str,
    deadline: float | None = None,
) -> None:
    """After a run that created a table or a column: the views again over what exists.
    Logged, never raised: the views must not fail the run that loaded the rows, nor hold it
    past its ``deadline`` (``time.monotonic()``; BigQuery retries stop there)."""
    if not settings.views_after_run or dataset_id != settings.views_raw_dataset:
        return  # views read one raw dataset: a run into another must not repoint them

    def bounded(project: str, dataset: str) -> BigQueryWarehouse:
        warehouse = warehouses(project, dataset)
        warehouse.deadline = deadline
        return warehouse

    try:
        outcomes = refresh_views(bounded, plan_for(settings, project_id, dataset_id))
    except Exception as exc:
        log.error("views not refreshed", extra={"fields": {"error": str(exc)}})
        return
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    log.info("views refreshed", extra={"fields": counts})
