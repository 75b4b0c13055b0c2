"""The analysts' views as data: the ONE place that maps TikTok's columns to each view's columns.

Two datasets of views over the raw tables (README "Analysts' layer"):

* the **reporting** views (default dataset ``tiktok_ads_reporting``), in the cross-platform
  ``ad_reporting`` shape of Fivetran's dbt_ad_reporting (docs/analytics_layer.md §1.4), one row
  per object and account day, names as of that day;
* the **Fivetran-compatible source** (default dataset ``tiktok_ads``): the table names, keys and
  spellings dbt_tiktok_ads reads (docs/analytics_layer.md §1.2), so its package, and through it
  dbt_ad_reporting, runs on this project's tables.

``controller/views/sql.py`` turns these rows into SQL; nothing here is SQL but the few
expressions that are not a column (the URL parts). A raw column that a table does not have
(yet) becomes a typed NULL, so adding a metric never breaks a view.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.reports import registry
from controller.reports.catalog import STORE_ID
from controller.tiktok.accounts import INFO_TABLE
from controller.tiktok.entities import ENTITIES

PLATFORM = "tiktok_ads"  # ad_reporting's platform value for TikTok (docs/analytics_layer.md §1.4)
REPORTING_DATASET = "tiktok_ads_reporting"
FIVETRAN_DATASET = "tiktok_ads"
REPORTING, FIVETRAN = "reporting", "fivetran"

INT, FLOAT, STRING, TIMESTAMP, DATE, BOOL = (
    "INT64",
    "FLOAT64",
    "STRING",
    "TIMESTAMP",
    "DATE",
    "BOOL",
)


@dataclass(frozen=True)
class Col:
    """One column of a view: its name and type, and where it comes from.

    ``source``: raw columns of the row; several are added up (one missing or NULL counts 0,
    all NULL gives NULL): how a value defined over several conversion legs is written.
    ``expr``: a SQL expression over the builder's aliases (``r`` the row), for what is not a
    raw column. Neither: a typed NULL (a column the package reads that TikTok has no data for).
    """

    name: str
    type: str
    source: tuple[str, ...] = ()
    expr: str | None = None
    otherwise: str | None = None  # the value when no ``source`` column exists (else NULL)


# --------------------------------------------------------------------------- conversions
# conversions_value per conversion leg (docs/tiktok_api_beyond.md §2.1): the value of the
# purchase step wherever it happened. Fivetran counts the App purchase value plus the sales lead
# value only (docs/analytics_layer.md §1.2), which reads ~0 for web and Shop sellers.
CONVERSION_VALUE_LEGS: dict[str, str] = {
    "app": "total_purchase_value",  # App (SDK/MMP) purchases
    "web": "total_complete_payment_rate",  # pixel complete payments: a VALUE despite its name
    "onsite": "onsite_total_purchase_value",  # TikTok instant pages and forms
    "shop": "total_onsite_shopping_value",  # TikTok Shop gross revenue
}

# The ad_reporting metrics, from TikTok's. ``conversions`` is TikTok's ``conversion`` (the
# optimisation goal's conversions, whatever leg). reach and frequency are the row's own
# (one object and day): unique users, which never add up across rows.
REPORTING_METRICS: tuple[Col, ...] = (
    Col("clicks", INT, ("clicks",)),
    Col("impressions", INT, ("impressions",)),
    Col("spend", FLOAT, ("spend",)),
    Col("conversions", FLOAT, ("conversion",)),
    Col("conversions_value", FLOAT, tuple(CONVERSION_VALUE_LEGS.values())),
    *(Col(f"conversions_value_{leg}", FLOAT, (col,)) for leg, col in CONVERSION_VALUE_LEGS.items()),
    Col("reach", INT, ("reach",)),
    Col("frequency", FLOAT, ("frequency",)),
)
# Money columns converted to the deployment's reporting currency (when it sets one).
CONVERTED = ("spend", "conversions_value")
# The deployment's daily rates table (README "Analysts' layer"): one row per day and currency
# pair, ``amount in to_currency = amount in from_currency × rate``.
RATES_COLUMNS = ("date", "from_currency", "to_currency", "rate")

_URL = r"^[A-Za-z][A-Za-z0-9+.-]*://"
# The ad's landing page split as dbt_tiktok_ads splits it (docs/analytics_layer.md §1.2);
# REGEXP_EXTRACT only, which BigQuery and local-bigquery both run (NET.HOST is BigQuery's).
# The patterns hold no backslash, so they are plain SQL strings: local-bigquery stores r'...'
# as '...', and a stored query that differs from ours would be replaced on every refresh.
URL_COLUMNS: tuple[Col, ...] = (
    Col("base_url", STRING, expr=r"REGEXP_EXTRACT(lp.landing_page_url, '^([^?#]*)')"),
    Col("url_host", STRING, expr=rf"REGEXP_EXTRACT(lp.landing_page_url, '{_URL}([^/?#:]*)')"),
    Col("url_path", STRING, expr=rf"REGEXP_EXTRACT(lp.landing_page_url, '{_URL}[^/?#]*(/[^?#]*)')"),
    *(
        Col(
            f"utm_{part}",
            STRING,
            expr=rf"REGEXP_EXTRACT(lp.landing_page_url, '[?&]utm_{part}=([^&#]*)')",
        )
        for part in ("source", "medium", "campaign", "content", "term")
    ),
)


# --------------------------------------------------------------------------- names and levels
@dataclass(frozen=True)
class Level:
    """An object level of the views: its columns there, in the reports and in its history."""

    prefix: str  # ad_reporting's: campaign, ad_group, ad
    id_column: str  # TikTok's, in the report rows and the history table
    name_column: str
    history: str  # SCD2 history table (names as of each day)


CAMPAIGN = Level("campaign", "campaign_id", "campaign_name", ENTITIES["campaigns"].table)
AD_GROUP = Level("ad_group", "adgroup_id", "adgroup_name", ENTITIES["adgroups"].table)
AD = Level("ad", "ad_id", "ad_name", ENTITIES["ads"].table)
AD_HISTORY = ENTITIES["ads"].table


@dataclass(frozen=True)
class ReportingView:
    """One ``ad_reporting``-shaped view: one row per row of its daily table (latest run's)."""

    name: str
    report_type: str  # its raw daily table, through the report registry
    levels: tuple[Level, ...]
    keys: tuple[Col, ...] = ()  # breakdown columns besides the levels (e.g. country_code)
    url: bool = False  # landing page parts from the ad's history (rows without one left out)
    description: str = ""

    @property
    def table(self) -> str:
        return registry.get(self.report_type).table


REPORTING_VIEWS: tuple[ReportingView, ...] = (
    # The account's own report (TKT001): spend TikTok did not attribute to an ad is in it, and
    # Promote spend with it; never rebuilt from ad rows.
    # GMV Max: its spend is reported by its own endpoint (docs/tiktok_api_gmv_smartplus.md) into
    # TKT050, named in ACCOUNT_EXTRA_SPEND below: account_report gains ``gmv_max_spend`` once
    # that table exists (a table that does not exist is never named in a view).
    ReportingView("account_report", "advertiser", (), description="one row per account day"),
    ReportingView("campaign_report", "campaign", (CAMPAIGN,), description="per campaign day"),
    ReportingView(
        "ad_group_report", "adgroup", (CAMPAIGN, AD_GROUP), description="per ad group day"
    ),
    ReportingView("ad_report", "ad", (CAMPAIGN, AD_GROUP, AD), description="per ad day"),
    ReportingView(
        "url_report",
        "ad",
        (CAMPAIGN, AD_GROUP, AD),
        url=True,
        description="per ad day, with the landing page as of that day split in parts",
    ),
    ReportingView(
        "campaign_country_report",
        "campaign_country",
        (CAMPAIGN,),
        keys=(Col("country_code", STRING, ("country_code",)),),
        description="per campaign, country and day (TikTok's audience report)",
    ),
)

# GMV Max (issue 20): the reports whose spend account_report adds per account and day, as
# (report type, spend column), summed into its ``gmv_max_spend`` column. Kept apart from
# ``spend``: whether TikTok's advertiser total already holds GMV Max is undocumented
# (docs/tiktok_api_gmv_smartplus.md §1; the run's reconciliation tells which it is).
ACCOUNT_EXTRA_SPEND: tuple[tuple[str, str], ...] = (("gmv_max_campaign", "cost"),)
EXTRA_SPEND_COLUMN = "gmv_max_spend"


# --------------------------------------------------------------------------- Fivetran source
SYNCED = Col("_fivetran_synced", TIMESTAMP, expr="r._extracted_at")


@dataclass(frozen=True)
class SourceView:
    """One view of the Fivetran-compatible source: a raw table's rows under Fivetran's names.

    ``keys``: one row per key, the latest by ``latest`` (a report: the latest run's row);
    empty: every row (a history table: one row per version).
    """

    name: str
    table: str
    columns: tuple[Col, ...]
    keys: tuple[str, ...] = ()
    latest: tuple[str, ...] = ("_extracted_at",)
    # An hourly report of the same level: the days it holds are served from it, hour by hour
    # (the other days from ``table``, at midnight).
    hourly: str | None = None

    @property
    def hourly_table(self) -> str | None:
        return registry.get(self.hourly).table if self.hourly else None


def report_keys(report_type: str) -> tuple[str, ...]:
    """A report row's key. ``date`` adds nothing to it (it is the time label's day) but lets
    BigQuery push a filter on the partition column through the views' window function."""
    spec = registry.get(report_type)
    stores = (STORE_ID,) if spec.gmv_max else ()  # a GMV Max row is one store's
    return ("_advertiser_id", *spec.dimensions, *stores, "date")


def _same(*names: str, type_: str = STRING) -> tuple[Col, ...]:
    return tuple(Col(name, type_, (name,)) for name in names)


# Fivetran spells an underscore before digits (docs/analytics_layer.md §1.2); Airbyte's
# converter reads those spellings from TikTok's JSON, where they do not exist.
FIVETRAN_METRICS: tuple[Col, ...] = (
    *_same("clicks", "impressions", "reach", "conversion", "real_time_conversion", type_=INT),
    *_same("comments", "follows", "likes", "profile_visits", "shares", type_=INT),
    *_same("video_play_actions", type_=INT),
    Col("video_views_p_25", INT, ("video_views_p25",)),
    Col("video_views_p_50", INT, ("video_views_p50",)),
    Col("video_views_p_75", INT, ("video_views_p75",)),
    Col("video_views_p_100", INT, ("video_views_p100",)),
    Col("video_view_p_100", INT, ("video_views_p100",)),  # the yml's spelling
    Col("video_watched_2_s", INT, ("video_watched_2s",)),
    Col("video_watched_6_s", INT, ("video_watched_6s",)),
    *_same("spend", "cpc", "cpm", "ctr", "conversion_rate", "cost_per_conversion", type_=FLOAT),
    *_same("average_video_play", "average_video_play_per_user", type_=FLOAT),
    *_same("total_purchase_value", type_=FLOAT),
    # No sales lead value in the App leg TikTok serves here; 0, not NULL, so the package's
    # total_purchase_value + total_sales_lead_value stays the purchase value.
    Col("total_sales_lead_value", FLOAT, expr="0.0"),
    *_same("frequency", "cost_per_1000_reached", type_=FLOAT),
)


def _hourly(name: str, report_type: str, id_column: str) -> SourceView:
    """A ``*_report_hourly`` view from the DAILY table: one row per day at its midnight, so the
    package's daily sums are TikTok's daily numbers and reach stays a day's reach; the days a
    deployment loaded the level's hourly report come from it instead, hour by hour (their
    daily sums are the same; the package then sums hourly reach, which is its choice)."""
    return SourceView(
        name,
        registry.get(report_type).table,
        (
            Col(id_column, STRING, (id_column,)),
            Col("advertiser_id", STRING, ("_advertiser_id",)),
            Col("stat_time_hour", TIMESTAMP, ("stat_time_hour",), otherwise="TIMESTAMP(r.date)"),
            *FIVETRAN_METRICS,
            Col("currency", STRING, ("currency",)),
            SYNCED,
        ),
        keys=report_keys(report_type),
        hourly=f"{report_type}_hourly",
    )


_HISTORY_META = (
    Col("updated_at", TIMESTAMP, expr="r.valid_from"),
    Col("modify_time", TIMESTAMP, ("modify_time",)),
    Col("is_most_recent_record", BOOL, ("is_current",)),
    SYNCED,
)

SOURCE_VIEWS: tuple[SourceView, ...] = (
    SourceView(
        "advertiser",
        INFO_TABLE,
        (
            Col("id", STRING, ("advertiser_id",)),
            *_same("name", "company", "currency", "timezone", "country"),
            Col("balance", FLOAT, ("balance",)),
            Col("create_time", TIMESTAMP, ("create_time",)),
            SYNCED,
        ),
        keys=("advertiser_id",),
        latest=("date", "_extracted_at"),
    ),
    SourceView(
        "campaign_history",
        ENTITIES["campaigns"].table,
        (
            *_same("advertiser_id", "campaign_id", "campaign_name", "campaign_type"),
            *_same("objective_type", "budget_mode", "campaign_system_origin"),
            Col("status", STRING, ("operation_status",)),
            Col("budget", FLOAT, ("budget",)),
            Col("create_time", TIMESTAMP, ("create_time",)),
            *_HISTORY_META,
        ),
    ),
    SourceView(
        "adgroup_history",
        ENTITIES["adgroups"].table,
        (
            *_same("advertiser_id", "campaign_id", "adgroup_id", "adgroup_name"),
            *_same("budget_mode", "optimization_goal", "placement_type", "promotion_type"),
            Col("status", STRING, ("operation_status",)),
            Col("budget", FLOAT, ("budget",)),
            *_HISTORY_META,
        ),
    ),
    SourceView(
        "ad_history",
        ENTITIES["ads"].table,
        (
            *_same("advertiser_id", "campaign_id", "adgroup_id", "ad_id", "ad_name"),
            *_same("call_to_action", "landing_page_url", "ad_text", "display_name"),
            Col("status", STRING, ("operation_status",)),
            *_HISTORY_META,
        ),
    ),
    _hourly("campaign_report_hourly", "campaign", "campaign_id"),
    _hourly("adgroup_report_hourly", "adgroup", "adgroup_id"),
    _hourly("ad_report_hourly", "ad", "ad_id"),
    SourceView(
        "campaign_country_report",
        registry.get("campaign_country").table,
        (
            Col("campaign_id", STRING, ("campaign_id",)),
            Col("advertiser_id", STRING, ("_advertiser_id",)),
            Col("stat_time_day", TIMESTAMP, expr="TIMESTAMP(r.date)"),
            Col("country_code", STRING, ("country_code",)),
            *_same("clicks", "impressions", "conversion", "real_time_conversion", type_=INT),
            *_same("spend", "cpc", "cpm", "ctr", "conversion_rate", type_=FLOAT),
            *_same("cost_per_conversion", type_=FLOAT),
            Col("currency", STRING, ("currency",)),
            SYNCED,
        ),
        keys=report_keys("campaign_country"),
    ),
)
