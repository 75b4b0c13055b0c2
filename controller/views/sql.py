"""SQL of the analysts' views, generated from ``controller/views/definitions.py``.

Every view reads the raw tables only, and only tables that exist with the columns they have
(``Raw.columns``): a view whose own table is missing is not made (``None``, with the reason),
an optional table that is missing (history, account info, rates) is left out of the join and
its columns fall back (report-row names, NULL). Each refresh writes the views again over what
exists, so a run that created a table or a column is followed by views that use it.

Report rows are read as the latest run wrote them: one row per key, the latest
``_extracted_at`` (a table loaded with ``append`` holds a row per run). BigQuery standard SQL,
within what local-bigquery runs too (REGEXP_EXTRACT, QUALIFY, LEAD, TIMESTAMP(date)).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from controller.reports import registry
from controller.tiktok.accounts import INFO_TABLE
from controller.views.definitions import (
    ACCOUNT_EXTRA_SPEND,
    AD_HISTORY,
    CONVERTED,
    EXTRA_SPEND_COLUMN,
    PLATFORM,
    RATES_COLUMNS,
    REPORTING_METRICS,
    URL_COLUMNS,
    Col,
    Level,
    ReportingView,
    SourceView,
    report_keys,
)

CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Raw:
    """The raw dataset as it is now: ``project.dataset`` and the columns of each table."""

    dataset: str  # project.dataset
    columns: Mapping[str, tuple[str, ...]]  # existing tables only
    reporting_currency: str | None = None
    rates_table: str | None = None  # project.dataset.table, when it exists
    rates_columns: tuple[str, ...] = field(default=())

    def table(self, name: str) -> str:
        return f"`{self.dataset}.{name}`"

    def has(self, name: str, *columns: str) -> bool:
        """Whether table ``name`` exists (with ``columns``, when named)."""
        return name in self.columns and set(columns) <= set(self.columns[name])


def _value(col: Col, available: tuple[str, ...], alias: str = "r") -> str:
    """``col``'s value over the row ``alias`` (a typed NULL for absent raw columns)."""
    if col.expr is not None:
        return col.expr
    present = [name for name in col.source if name in available]
    if not present:
        return col.otherwise or f"CAST(NULL AS {col.type})"
    if len(present) == 1:
        return f"CAST({alias}.`{present[0]}` AS {col.type})"
    # Several legs: added up, a NULL leg counting 0; NULL when every leg is.
    legs = [f"{alias}.`{name}`" for name in present]
    summed = " + ".join(f"IFNULL({leg}, 0)" for leg in legs)
    return f"CAST(IF(COALESCE({', '.join(legs)}) IS NULL, NULL, {summed}) AS {col.type})"


def _column(col: Col, available: tuple[str, ...], alias: str = "r") -> str:
    """``col`` as a select item."""
    return f"{_value(col, available, alias)} AS `{col.name}`"


def _latest_rows(
    raw: Raw, table: str, keys: tuple[str, ...], latest: tuple[str, ...] = ("_extracted_at",)
) -> str:
    """The table's rows, one per key: the latest run's (``latest``: the columns that say so)."""
    partition = ", ".join(f"`{key}`" for key in keys)
    order = ", ".join(f"`{name}` DESC" for name in latest)
    return (
        f"(SELECT * FROM {raw.table(table)} WHERE TRUE QUALIFY ROW_NUMBER() OVER "
        f"(PARTITION BY {partition} ORDER BY {order}) = 1)"
    )


def _versions(raw: Raw, table: str, id_column: str, value: str) -> str:
    """Each version of an object with the days it is valid on: from the UTC day TikTok says it
    changed (``modify_time``; the run that first saw it when none), to the next version's."""
    since = "COALESCE(`modify_time`, `valid_from`)"
    return (
        f"(SELECT `_advertiser_id`, `{id_column}` AS id, `{value}` AS value, "
        f"DATE({since}) AS from_day, LEAD(DATE({since})) OVER (PARTITION BY `_advertiser_id`, "
        f"`{id_column}` ORDER BY {since}, `valid_from`) AS to_day FROM {raw.table(table)})"
    )


def _as_of_join(alias: str, versions: str, id_expr: str) -> str:
    return (
        f"LEFT JOIN {versions} AS {alias} ON {alias}._advertiser_id = r._advertiser_id "
        f"AND {alias}.id = {id_expr} AND r.date >= {alias}.from_day "
        f"AND ({alias}.to_day IS NULL OR r.date < {alias}.to_day)"
    )


def _level_columns(
    raw: Raw, level: Level, available: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """(select items, joins) of one level: its id, and its name as of the row's day."""
    alias = f"n_{level.prefix}"
    report_name = (
        f"r.`{level.name_column}`" if level.name_column in available else "CAST(NULL AS STRING)"
    )
    items = [f"r.`{level.id_column}` AS `{level.prefix}_id`"]
    joins = []
    if raw.has(level.history, level.id_column, level.name_column, "modify_time", "valid_from"):
        versions = _versions(raw, level.history, level.id_column, level.name_column)
        joins.append(_as_of_join(alias, versions, f"r.`{level.id_column}`"))
        items.append(f"COALESCE({alias}.value, {report_name}) AS `{level.prefix}_name`")
    else:
        items.append(f"{report_name} AS `{level.prefix}_name`")
    return items, joins


def _account_join(raw: Raw) -> tuple[str, list[str]]:
    """The account's name (its latest account info), when account info was loaded."""
    if not raw.has(INFO_TABLE):
        return "CAST(NULL AS STRING) AS `account_name`", []
    latest = _latest_rows(raw, INFO_TABLE, ("advertiser_id",), ("date", "_extracted_at"))
    join = f"LEFT JOIN {latest} AS acct ON acct.advertiser_id = r._advertiser_id"
    return "acct.name AS `account_name`", [join]


def _currency_columns(raw: Raw, available: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The row's currency, and the money columns in the reporting currency: the value × the
    day's rate from the rates table; rate 1 in the reporting currency itself; NULL otherwise
    (no reporting currency, no rates table, no rate that day: never guessed)."""
    currency = "r.`currency`" if "currency" in available else "CAST(NULL AS STRING)"
    items = [f"{currency} AS `currency`"]
    target, joins = raw.reporting_currency, []
    if target is None:
        items.append("CAST(NULL AS STRING) AS `reporting_currency`")
        rate = "CAST(NULL AS FLOAT64)"
    else:
        if not CURRENCY_CODE.match(target):
            raise ValueError(f"reporting_currency: {target!r} is not a 3-letter currency code")
        items.append(f"'{target}' AS `reporting_currency`")
        found = "CAST(NULL AS FLOAT64)"
        if raw.rates_table and set(RATES_COLUMNS) <= set(raw.rates_columns):
            joins.append(
                "LEFT JOIN (SELECT `date`, `from_currency`, MAX(`rate`) AS rate "
                f"FROM `{raw.rates_table}` WHERE `to_currency` = '{target}' GROUP BY 1, 2) AS fx "
                f"ON fx.date = r.date AND fx.from_currency = {currency}"
            )
            found = "CAST(fx.rate AS FLOAT64)"
        rate = f"IF({currency} = '{target}', 1.0, {found})"
    items.append(f"{rate} AS `exchange_rate`")
    for col in REPORTING_METRICS:
        if col.name in CONVERTED:
            value = _value(col, available)
            items.append(f"{value} * {rate} AS `{col.name}_in_reporting_currency`")
    return items, joins


def reporting_view(raw: Raw, view: ReportingView) -> str | None:
    """The SELECT of one ad_reporting view, or None when a table it needs does not exist."""
    if not raw.has(view.table) or (view.url and not raw.has(AD_HISTORY, "landing_page_url")):
        return None
    available = raw.columns[view.table]
    rows = _latest_rows(raw, view.table, report_keys(view.report_type))
    items = [
        f"'{raw.dataset}' AS `source_relation`",
        "r.date AS `date_day`",
        f"'{PLATFORM}' AS `platform`",
        "r._advertiser_id AS `account_id`",
    ]
    account, joins = _account_join(raw)
    items.append(account)
    for level in view.levels:
        level_items, level_joins = _level_columns(raw, level, available)
        items += level_items
        joins += level_joins
    where = ""
    if view.url:
        versions = _versions(raw, AD_HISTORY, "ad_id", "landing_page_url")
        versions = f"(SELECT *, value AS landing_page_url FROM {versions})"
        joins.append(_as_of_join("lp", versions, "r.`ad_id`"))
        items += [_column(c, ()) for c in URL_COLUMNS]
        where = "\nWHERE lp.value IS NOT NULL"  # as dbt_tiktok_ads: ads with a landing page
    items += [_column(c, available) for c in view.keys]
    items += [_column(c, available) for c in REPORTING_METRICS]
    currency_items, currency_joins = _currency_columns(raw, available)
    items += currency_items
    joins += currency_joins
    if view.name == "account_report":
        extra_items, extra_joins = _extra_spend(raw)
        items += extra_items
        joins += extra_joins
    return "SELECT\n  " + ",\n  ".join(items) + f"\nFROM {rows} AS r\n" + "\n".join(joins) + where


def _extra_spend(raw: Raw) -> tuple[list[str], list[str]]:
    """GMV Max's spend per account and day (``ACCOUNT_EXTRA_SPEND``), when its tables exist:
    the ``gmv_max_spend`` column, 0 on an account day without any."""
    legs, joins = [], []
    for index, (report_type, column) in enumerate(ACCOUNT_EXTRA_SPEND):
        table = registry.get(report_type).table
        if not raw.has(table, column):
            continue
        rows = _latest_rows(raw, table, report_keys(report_type))
        alias = f"x{index}"
        joins.append(
            f"LEFT JOIN (SELECT _advertiser_id, date, SUM(`{column}`) AS spend FROM {rows} "
            f"GROUP BY 1, 2) AS {alias} ON {alias}._advertiser_id = r._advertiser_id "
            f"AND {alias}.date = r.date"
        )
        legs.append(f"IFNULL({alias}.spend, 0)")
    if not legs:
        return [], []
    return [f"CAST({' + '.join(legs)} AS FLOAT64) AS `{EXTRA_SPEND_COLUMN}`"], joins


def source_view(raw: Raw, view: SourceView) -> str | None:
    """The SELECT of one Fivetran-compatible view, or None when its table does not exist."""
    if not raw.has(view.table):
        return None
    select = _source_select(raw, view, view.table)
    hourly = view.hourly_table
    if hourly is None or not raw.has(hourly):
        return select
    # Days the hourly table holds (for an advertiser) are served from it, the others daily.
    covered = (
        f"\nWHERE NOT EXISTS (SELECT 1 FROM {raw.table(hourly)} AS h "
        "WHERE h._advertiser_id = r._advertiser_id AND h.date = r.date)"
    )
    return f"{select}{covered}\nUNION ALL\n{_source_select(raw, view, hourly)}"


def _source_select(raw: Raw, view: SourceView, table: str) -> str:
    available = raw.columns[table]
    if view.keys:
        keys = view.keys
        if table != view.table:  # the hourly table's own key
            keys = report_keys(view.hourly or "")
        rows = _latest_rows(raw, table, keys, view.latest)
    else:
        rows = raw.table(table)
    items = [_column(c, available) for c in view.columns]
    return "SELECT\n  " + ",\n  ".join(items) + f"\nFROM {rows} AS r"
