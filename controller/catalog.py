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
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa


class MetricType(StrEnum):
    INT = "INT64"
    FLOAT = "FLOAT64"
    STRING = "STRING"


ARROW_TYPES: dict[MetricType, pa.DataType] = {
    MetricType.INT: pa.int64(),
    MetricType.FLOAT: pa.float64(),
    MetricType.STRING: pa.string(),
}

MAX_METRICS_PER_REQUEST = 100  # TikTok's best-practice ceiling per report request.

I, F, S = MetricType.INT, MetricType.FLOAT, MetricType.STRING


def _event_family(
    event: str, *, value: bool, value_name: str | None = None
) -> dict[str, MetricType]:
    """TikTok's naming pattern for one app event: unique and total counts, costs, rate, value."""
    family = {
        event: I,
        f"cost_per_{event}": F,
        f"{event}_rate": F,
        f"total_{event}": I,
        f"cost_per_total_{event}": F,
    }
    if value:
        family[value_name or f"value_per_total_{event}"] = F
        family[f"total_{event}_value"] = F
    return family


CORE = {
    "spend": F,
    "impressions": I,
    "clicks": I,
    "ctr": F,
    "cpc": F,
    "cpm": F,
    "reach": I,
    "cost_per_1000_reached": F,
    "frequency": F,
}
ENGAGEMENT = {
    "profile_visits": I,
    "likes": I,
    "comments": I,
    "shares": I,
    "follows": I,
    "engagements": I,
}
VIDEO = {
    "video_play_actions": I,
    "video_watched_2s": I,
    "video_watched_6s": I,
    "video_views_p25": I,
    "video_views_p50": I,
    "video_views_p75": I,
    "video_views_p100": I,
    "average_video_play": F,
    "average_video_play_per_user": F,
}
CONVERSION = {
    "conversion": I,
    "cost_per_conversion": F,
    "conversion_rate": F,
    "real_time_conversion": I,
    "real_time_cost_per_conversion": F,
    "real_time_conversion_rate": F,
    "result": I,
    "cost_per_result": F,
    "result_rate": F,
    "real_time_result": I,
    "real_time_cost_per_result": F,
    "real_time_result_rate": F,
    "secondary_goal_result": I,
    "cost_per_secondary_goal_result": F,
    "secondary_goal_result_rate": F,
}
IN_APP = {
    "app_install": I,
    "cost_per_app_install": F,
    "real_time_app_install": I,
    "real_time_app_install_cost": F,
    **_event_family("registration", value=False),
    **_event_family("purchase", value=True),
    **_event_family("app_event_add_to_cart", value=True),
    **_event_family("checkout", value=True, value_name="value_per_checkout"),
    **_event_family("view_content", value=True),
    **_event_family("sales_lead", value=False),
    **_event_family("add_payment_info", value=False),
    **_event_family("launch_app", value=False),
}
PERFORMANCE = {**CORE, **ENGAGEMENT, **VIDEO, **CONVERSION, **IN_APP}

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
DAYS_PER_REQUEST = {("BASIC", "day"): 30, ("AUDIENCE", "day"): 7, ("BASIC", "hour"): 1}


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
        fields.append(pa.field("date", pa.date32()))
        if self.granularity == "hour":
            fields.append(pa.field("hour", pa.int64()))
        return fields

    @property
    def metric_names(self) -> list[str]:
        """Requested metrics, attributes first (they are what analysts join and read)."""
        return [*self.attributes, *self.metrics]

    def metric_type(self, name: str) -> MetricType:
        return S if name in self.attributes else self.metrics[name]

    @property
    def splits_by_campaign(self) -> bool:
        """Whether a report TikTok truncates at 20,000 ads can be read campaign by campaign
        (the campaign list itself comes from the campaign level, so not at or above it)."""
        return self.id_dimension in ("adgroup_id", "ad_id") and not self.lifetime

    def filtering(self, campaign_ids: Sequence[str] = ()) -> list[dict[str, str]] | None:
        """Include deleted objects (TikTok's default status filter hides their history), and
        keep to ``campaign_ids`` when given (how a report over 20,000 ads is read in parts)."""
        filters = []
        if self.status_field is not None:
            filters.append(
                {
                    "field_name": self.status_field,
                    "filter_type": "IN",
                    "filter_value": '["STATUS_ALL"]',
                }
            )
        if campaign_ids:
            filters.append(
                {
                    "field_name": "campaign_ids",
                    "filter_type": "IN",
                    "filter_value": json.dumps(list(campaign_ids), separators=(",", ":")),
                }
            )
        return filters or None

    def metric_groups(self, limit: int = MAX_METRICS_PER_REQUEST) -> list[list[str]]:
        """Split the metric list into requests of at most ``limit`` metrics each."""
        names = self.metric_names
        return [names[i : i + limit] for i in range(0, len(names), limit)]


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
    )


REPORTS: dict[str, ReportSpec] = {
    spec.report_type: spec
    for spec in (
        _spec("advertiser", 1, "advertiser_id", None, (), ADVERTISER_ONLY),
        _spec("campaign", 2, "campaign_id", "campaign_status", ("campaign_name",), {}),
        _spec(
            "adgroup",
            3,
            "adgroup_id",
            "adgroup_status",
            ("campaign_name", "campaign_id", "adgroup_name"),
            {},
        ),
        _spec(
            "ad",
            4,
            "ad_id",
            "ad_status",
            ("campaign_name", "campaign_id", "adgroup_name", "adgroup_id", "ad_name"),
            {},
        ),
    )
}
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
    fields += [pa.field(name, ARROW_TYPES[spec.metric_type(name)]) for name in spec.metric_names]
    fields += [pa.field(name, typ) for name, typ in BOOKKEEPING_FIELDS]
    return pa.schema(fields)
