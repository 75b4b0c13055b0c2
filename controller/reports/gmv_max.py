"""The GMV Max reports (TikTok Shop's Product and LIVE campaigns), as data.

TikTok leaves GMV Max campaigns out of the BASIC report below the advertiser level; their
spend, orders and revenue come from ``/gmv_max/report/get/`` (docs/tiktok_api_gmv_smartplus.md §1.1),
asked once per store (exactly one in ``store_ids``) and per promotion type:

* ``gmv_max_campaign`` → TKT050: store × campaign × day, Product and LIVE campaigns;
* ``gmv_max_product`` → TKT051: store × Product campaign × product (``item_group_id``) × day;
* ``gmv_max_live`` → TKT052: store × LIVE campaign × LIVE room (``room_id``) × day.

Every row carries its ``store_id`` and the account's currency (filled by the service: the
report serves none). Deleted campaigns are included (``campaign_statuses: ["STATUS_ALL"]``).
The product level keeps to numeric metrics: TikTok's product-level attribute names are not
settled by the sources at hand.
"""

from __future__ import annotations

from controller.reports.catalog import GMV_MAX, ReportSpec
from controller.reports.metrics import MetricType

INT, F = MetricType.INT, MetricType.FLOAT
PRODUCT, LIVE = "PRODUCT", "LIVE"

# The money and order metrics TikTok lists for every GMV Max level.
SALES: dict[str, MetricType] = {
    "cost": F,
    "net_cost": F,
    "orders": INT,
    "cost_per_order": F,
    "gross_revenue": F,
    "roi": F,
}
LIVE_VIEWS: dict[str, MetricType] = {
    "live_views": INT,
    "cost_per_live_view": F,
    "10_second_live_views": INT,
    "cost_per_10_second_live_view": F,
    "live_follows": INT,
}
# The campaign's settings, as the campaign level serves them (budgets and the ROAS bid are
# numbers: a value that does not parse loads as null with a warning, like BASIC budgets).
CAMPAIGN_ATTRIBUTES = ("campaign_name", "operation_status", "schedule_type", "bid_type")
CAMPAIGN_SETTINGS: dict[str, MetricType] = {
    "roas_bid": F,
    "target_roi_budget": F,
    "max_delivery_budget": F,
}


# TikTok's names that are no BigQuery column names (they start with a digit).
RENAMED = (
    ("10_second_live_views", "ten_second_live_views"),
    ("cost_per_10_second_live_view", "cost_per_ten_second_live_view"),
)


def _gmv_max(
    report_type: str,
    number: int,
    breakdowns: tuple[str, ...],
    promotion_types: tuple[str, ...],
    attributes: tuple[str, ...],
    metrics: dict[str, MetricType],
) -> ReportSpec:
    return ReportSpec(
        report_type=report_type,
        table=f"TKT{number:03d}_TIKTOK_ADS_{report_type.upper()}",
        data_level=f"{report_type.upper()}",
        id_dimension="campaign_id",
        status_field=None,  # deleted campaigns: ``ReportSpec.gmv_max_filtering``
        attributes=(*attributes, "currency"),
        metrics=metrics,
        tiktok_report_type=GMV_MAX,
        breakdowns=breakdowns,
        promotion_types=promotion_types,
        filled=("currency",),
        renamed=tuple((name, column) for name, column in RENAMED if name in metrics),
    )


# TikTok's TT_SHOP spend per GMV Max campaign and day (``/report/integrated/get/``, the app
# tier; docs/tiktok_api_gmv_smartplus.md §1.2): no table of its own, read by reconciliation as a cross-check
# of TKT050's cost. No filtering (TikTok refuses it) and no status filter.
TT_SHOP_CAMPAIGN = ReportSpec(
    report_type="tt_shop_campaign",
    table="",
    data_level="AUCTION_CAMPAIGN",
    id_dimension="campaign_id",
    status_field=None,
    attributes=(),
    metrics={"spend": F},
    tiktok_report_type="TT_SHOP",
)

GMV_MAX_REPORTS: dict[str, ReportSpec] = {
    spec.report_type: spec
    for spec in (
        _gmv_max(
            "gmv_max_campaign",
            50,
            (),
            (PRODUCT, LIVE),
            CAMPAIGN_ATTRIBUTES,
            {**CAMPAIGN_SETTINGS, **SALES},
        ),
        _gmv_max("gmv_max_product", 51, ("item_group_id",), (PRODUCT,), (), dict(SALES)),
        _gmv_max("gmv_max_live", 52, ("room_id",), (LIVE,), (), {**SALES, **LIVE_VIEWS}),
    )
}
