"""The report catalog: the four TikTok report levels as data.

Everything that differs between the advertiser, campaign, ad group and ad reports lives in
one row of ``REPORTS``: destination table, ``data_level``, id dimension, status field used
to include deleted objects, and the metric list the API accepts at that level. The request
loop, the typing of values and the table schema are written once and driven by this table.

Metric names are exactly the API's. Types: ``INT`` for counts, ``FLOAT`` for money, rates
(percent numbers) and averages, ``STRING`` for attribute metrics (names and parent ids).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import pyarrow as pa

from controller.reports.metrics import (
    ALWAYS,
    FAMILIES,
    FAMILY_NAMES,
    MetricType,
    check_family_names,
)

ARROW_TYPES: dict[MetricType, pa.DataType] = {
    MetricType.INT: pa.int64(),
    MetricType.FLOAT: pa.float64(),
    MetricType.STRING: pa.string(),
}

MAX_METRICS_PER_REQUEST = 100  # TikTok's best-practice ceiling per report request.

I, F, S = MetricType.INT, MetricType.FLOAT, MetricType.STRING


# Every family's metrics, core first (kept as one dict: the table schema holds them all).
PERFORMANCE = {name: kind for family in FAMILIES.values() for name, kind in family.metrics.items()}
# The seed's groups by their old names (``controller/reports/rules.py`` builds on them).
CORE = FAMILIES["core"].metrics
ENGAGEMENT = FAMILIES["engagement"].metrics
VIDEO = FAMILIES["video"].metrics
CONVERSION = FAMILIES["conversion"].metrics
IN_APP = FAMILIES["in_app"].metrics
# Metrics a run may leave out by its choice of families (``core``'s never are).
OPTIONAL_METRICS = frozenset(
    m for name, family in FAMILIES.items() if name != ALWAYS for m in family.metrics
)

# At AUCTION_AD, ``ad_id`` reports an Upgraded Smart+ ad's creatives, ``ad_id_v2`` the ad
# (docs/tiktok_api_gmv_smartplus.md §2); ``campaign_automation_type`` tells them apart.
SMART_PLUS_AD_ID = "ad_id_v2"
SMART_PLUS_ADS = "UPGRADED_SMART_PLUS"
SMART_PLUS_CREATIVES = "UPGRADED_SMART_PLUS_CREATIVE"

# Attribute metrics typed as numbers: settings of the object (budgets), not its delivery. Like
# the string attributes, a value of theirs that does not fit the type loads as null with a
# warning (``controller.tiktok.reader.OddValues``): one odd budget must not cost the spend.
NUMERIC_ATTRIBUTES = frozenset(
    {"campaign_budget", "budget", "roas_bid", "target_roi_budget", "max_delivery_budget"}
)

# Cash and voucher split of spend: the API accepts them only at AUCTION_ADVERTISER, daily.
ADVERTISER_ONLY = {"cash_spend": F, "voucher_spend": F}


# Time granularity of a report → TikTok's time dimension (None: lifetime, no time dimension).
TIME_DIMENSIONS: dict[str, str | None] = {
    "day": "stat_time_day",
    "hour": "stat_time_hour",
    "lifetime": None,
}
# Days one sync request may cover (TikTok: 30 with stat_time_day, 1 with stat_time_hour; its
# best practice for AUDIENCE reports is at most 7). Lifetime asks once, dates ignored.
DAYS_PER_REQUEST = {
    ("BASIC", "day"): 30,
    ("AUDIENCE", "day"): 7,
    ("BASIC", "hour"): 1,
    ("GMV_MAX", "day"): 30,
    ("TT_SHOP", "day"): 30,
}
# ``tiktok_report_type`` of the GMV Max reports: their own endpoint (``/gmv_max/report/get/``),
# one store per request, a filtering object, their own rate budget (docs/tiktok_api_gmv_smartplus.md §1).
GMV_MAX = "GMV_MAX"
# The column that says which TikTok Shop a GMV Max row belongs to (a request's store, not a
# dimension TikTok serves).
STORE_ID = "store_id"


@dataclass(frozen=True)
class ReportSpec:
    """One report definition: what to ask TikTok for and where the rows land.

    The four seed tables are BASIC daily reports with only an id dimension; audience,
    hourly, lifetime and custom reports (``controller/reports/``) fill the last fields.
    """

    report_type: str
    table: str
    data_level: str
    id_dimension: str
    status_field: str | None
    attributes: tuple[str, ...]
    metrics: dict[str, MetricType]
    tiktok_report_type: str = "BASIC"  # BASIC or AUDIENCE
    breakdowns: tuple[str, ...] = ()  # dimensions besides the id and time, e.g. ("age", "gender")
    granularity: str = "day"  # day, hour or lifetime
    families: tuple[str, ...] = ()  # metric families the metrics were chosen from
    # One row per ad as Ads Manager shows it (TKT004): the ``ad_id`` rows of Upgraded Smart+
    # creatives are left out and their ads read by ``ad_id_v2`` (``controller.smart_plus``).
    ads_as_shown: bool = False
    # GMV Max: the promotion types read, one request each (TikTok's filter takes them apart).
    promotion_types: tuple[str, ...] = ()
    # Columns the service fills, asked of TikTok by no request (GMV Max's report serves no
    # currency: the account's fills it).
    filled: tuple[str, ...] = ()
    # (metric, column) where TikTok's name is not a BigQuery column name (GMV Max's
    # ``10_second_live_views``: a column cannot start with a digit).
    renamed: tuple[tuple[str, str], ...] = ()

    def column(self, name: str) -> str:
        """The table column of the metric ``name``."""
        return dict(self.renamed).get(name, name)

    @property
    def gmv_max(self) -> bool:
        """Whether the report is read from ``/gmv_max/report/get/``, store by store."""
        return self.tiktok_report_type == GMV_MAX

    def gmv_max_filtering(self, promotion_type: str) -> dict[str, list[str]]:
        """GMV Max's filtering object: one promotion type, deleted campaigns included
        (TikTok leaves them out unless ``STATUS_ALL``)."""
        return {"gmv_max_promotion_types": [promotion_type], "campaign_statuses": ["STATUS_ALL"]}

    @property
    def time_dimension(self) -> str | None:
        return TIME_DIMENSIONS[self.granularity]

    @property
    def dimensions(self) -> tuple[str, ...]:
        time = (self.time_dimension,) if self.time_dimension else ()
        return (self.id_dimension, *self.breakdowns, *time)

    @property
    def lifetime(self) -> bool:
        """``query_lifetime=true``: one row per object over its whole life, dates ignored;
        its rows are replaced whole per advertiser (no window)."""
        return self.granularity == "lifetime"

    @property
    def days_per_request(self) -> int | None:
        return (
            None if self.lifetime else DAYS_PER_REQUEST[(self.tiktok_report_type, self.granularity)]
        )

    def key_fields(self) -> list[pa.Field]:
        """The columns before the metrics: dimensions (strings), then ``date`` (and ``hour``)."""
        fields = [pa.field(name, pa.string()) for name in self.dimensions]
        if self.gmv_max:
            fields.append(pa.field(STORE_ID, pa.string()))
        fields.append(pa.field("date", pa.date32()))
        if self.granularity == "hour":
            fields.append(pa.field("hour", pa.int64()))
        return fields

    @property
    def metric_names(self) -> list[str]:
        """Every metric of the level, attributes first (they are what analysts join and read):
        the table's columns, whatever families a run asks for."""
        return [*self.attributes, *self.metrics]

    def requested_metrics(self, families: Collection[str] | None = None) -> list[str]:
        """The metrics to ask TikTok for, attributes first: every metric of the definition,
        or (``families`` given) those of the chosen families plus ``core`` and the metrics of
        no optional family (budgets, the advertiser's cash/voucher split, custom names)."""
        if not families:
            return [name for name in self.metric_names if name not in self.filled]
        chosen = {m for f in check_family_names(tuple(families)) for m in FAMILIES[f].metrics}
        return [
            *(a for a in self.attributes if a not in self.filled),
            *(m for m in self.metrics if m not in OPTIONAL_METRICS or m in chosen),
        ]

    def by_ad_id_v2(self) -> ReportSpec:
        """This ad-level report asked by ``ad_id_v2``: one row per Upgraded Smart+ ad (its
        creatives summed). ``ad_id_v2`` is then the dimension, so not asked as a metric too."""
        return replace(
            self,
            id_dimension=SMART_PLUS_AD_ID,
            attributes=tuple(a for a in self.attributes if a != SMART_PLUS_AD_ID),
            ads_as_shown=False,
        )

    def metric_type(self, name: str) -> MetricType:
        return S if name in self.attributes else self.metrics[name]

    def is_attribute(self, name: str) -> bool:
        """Whether ``name`` describes the object (a name, id, enum or budget) rather than
        measures its delivery: an attribute value that does not fit its type loads as null
        with a warning, while a delivery metric that does not parse fails the report."""
        return name in self.attributes or name in NUMERIC_ATTRIBUTES

    @property
    def by_entity(self) -> bool:
        """Whether each row is one object (campaign, ad group, ad), not an account total:
        rows of requests asked per campaign origin then add up without overlapping."""
        return self.id_dimension != "advertiser_id"

    @property
    def splits_by_campaign(self) -> bool:
        """Whether a report TikTok truncates at 20,000 ads can be read campaign by campaign
        (the campaign list itself comes from the campaign level, so not at or above it)."""
        return self.id_dimension in ("adgroup_id", "ad_id") and not self.lifetime

    def filtering(
        self, campaign_ids: Sequence[str] = (), origins: Sequence[str] = ()
    ) -> list[dict[str, str]] | None:
        """Include deleted objects (TikTok's default status filter hides their history) and
        the campaign ``origins`` given (its default hides Promote campaigns, see
        ``controller.tiktok.origins``), and keep to ``campaign_ids`` when given (how a report over
        20,000 ads is read in parts)."""
        filters = []
        if self.status_field is not None:
            filters.append(_in_filter(self.status_field, ["STATUS_ALL"]))
        if origins:
            filters.append(_in_filter("campaign_system_origins", origins))
        if campaign_ids:
            filters.append(_in_filter("campaign_ids", campaign_ids))
        return filters or None

    def metric_groups(
        self, limit: int = MAX_METRICS_PER_REQUEST, families: Collection[str] | None = None
    ) -> list[list[str]]:
        """Split the requested metrics into requests of at most ``limit`` metrics each
        (TikTok's best practice is 100): joined again on the dimensions."""
        names = self.requested_metrics(families)
        return [names[i : i + limit] for i in range(0, len(names), limit)]


def _in_filter(field: str, values: Sequence[str]) -> dict[str, str]:
    """One ``IN`` filter; its value is a JSON array written as a string.

    The encoding is the one of docs/tiktok_api_reference.md §2.1.
    """
    return {
        "field_name": field,
        "filter_type": "IN",
        "filter_value": json.dumps(list(values), separators=(",", ":")),
    }


def _spec(report_type: str, number: int, id_dimension: str, status: str | None, attributes, extra):
    level = report_type.upper()
    return ReportSpec(
        report_type=report_type,
        table=f"TKT00{number}_TIKTOK_ADS_{level}",
        data_level=f"AUCTION_{level}",
        id_dimension=id_dimension,
        status_field=status,
        # The account's currency on every row: spend and values are in it, and analysts
        # joining several accounts or media sources cannot convert them without it.
        attributes=(*attributes, "currency"),
        metrics={**extra, **PERFORMANCE},
        families=FAMILY_NAMES,
    )


# Attribute metrics analysts filter and group by, at the levels TikTok offers them
# (docs/tiktok_api_reference.md §3.1): the campaign's objective and budget from the campaign level
# down, the ad group's placement, promotion type (``Other`` on Promote ads) and budget from the ad
# group level down, the ad's text at the ad level. Budgets are money (FLOAT64, null when TikTok
# writes "-").
_CAMPAIGN_ATTRIBUTES = ("campaign_name", "objective_type")
_CAMPAIGN_BUDGET = {"campaign_budget": F}
_ADGROUP_BUDGET = {"campaign_budget": F, "budget": F}

REPORTS: dict[str, ReportSpec] = {
    spec.report_type: spec
    for spec in (
        _spec("advertiser", 1, "advertiser_id", None, (), ADVERTISER_ONLY),
        _spec(
            "campaign", 2, "campaign_id", "campaign_status", _CAMPAIGN_ATTRIBUTES, _CAMPAIGN_BUDGET
        ),
        _spec(
            "adgroup",
            3,
            "adgroup_id",
            "adgroup_status",
            (
                "campaign_name",
                "campaign_id",
                "adgroup_name",
                "objective_type",
                "placement_type",
                "promotion_type",
            ),
            _ADGROUP_BUDGET,
        ),
        _spec(
            "ad",
            4,
            "ad_id",
            "ad_status",
            (
                "campaign_name",
                "campaign_id",
                "adgroup_name",
                "adgroup_id",
                "ad_name",
                "objective_type",
                "placement_type",
                "promotion_type",
                "ad_text",
                # which ad a creative belongs to, and which kind of campaign it is in
                SMART_PLUS_AD_ID,
                "campaign_automation_type",
            ),
            _ADGROUP_BUDGET,
        ),
    )
}
REPORTS["ad"] = replace(REPORTS["ad"], ads_as_shown=True)
REPORT_TYPES: tuple[str, ...] = tuple(REPORTS)

# Columns every row carries besides the dimensions and metrics.
BOOKKEEPING_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("_advertiser_id", pa.string()),
    ("_extracted_at", pa.timestamp("us", tz="UTC")),
    ("_report_type", pa.string()),
)


def arrow_schema(spec: ReportSpec) -> pa.Schema:
    """The typed row layout of one report: ids as strings, ``date`` as DATE, metrics typed."""
    fields = spec.key_fields()
    fields += [
        pa.field(spec.column(name), ARROW_TYPES[spec.metric_type(name)])
        for name in spec.metric_names
    ]
    fields += [pa.field(name, typ) for name, typ in BOOKKEEPING_FIELDS]
    return pa.schema(fields)
