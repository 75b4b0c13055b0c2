"""Metric families: named groups of metrics a definition is built from.

Families are the catalog's metric groups (``controller/reports/catalog.py``), so a metric added
there reaches every report that asks for its family. Which families and metrics TikTok
refuses with audience dimensions, hourly or lifetime is here too, from the docs
(docs/tiktok_api_reference.md §3.6, docs/tiktok_api_beyond.md §5.4 and §6): definitions leave them
out, and a custom definition that asks for them is refused at start.
"""

from __future__ import annotations

from controller.reports import catalog, metrics
from controller.reports.catalog import MetricType

FAMILY_METRICS: dict[str, dict[str, MetricType]] = {
    # the families a /run may choose (``controller/reports/metrics.py``), same names
    **{name: family.metrics for name, family in metrics.FAMILIES.items()},
    "spend_split": catalog.ADVERTISER_ONLY,
}
# What each seed level asks for (the advertiser level alone adds the cash/voucher split).
LEVEL_FAMILIES: dict[str, tuple[str, ...]] = {
    "advertiser": ("spend_split", "core", "engagement", "video", "conversion", "in_app"),
    "campaign": ("core", "engagement", "video", "conversion", "in_app"),
    "adgroup": ("core", "engagement", "video", "conversion", "in_app"),
    "ad": ("core", "engagement", "video", "conversion", "in_app"),
}

# UV (unique-visitor) metrics: not served with audience dimensions (async says so; the
# Promote audience list lacks them) and not additive over days or breakdowns.
UV_METRICS = frozenset(
    {"reach", "cost_per_1000_reached", "frequency", "average_video_play_per_user"}
)
# Metrics TikTok refuses, or connectors never ask for, with report_type=AUDIENCE
# (docs/tiktok_api_reference.md §3.6, docs/tiktok_api_beyond.md §5.4): UV metrics, engagements, the
# secondary goal, the cash/voucher split, and the App leg (the app purchase family is refused; app
# installs are not offered in audience lists).
AUDIENCE_REFUSED_METRICS = frozenset(
    {
        *UV_METRICS,
        "engagements",
        "engagement_rate",
        "secondary_goal_result",
        "cost_per_secondary_goal_result",
        "secondary_goal_result_rate",
        "cash_spend",
        "voucher_spend",
    }
)
# Whole families refused with AUDIENCE: the App leg, the advertiser spend split (and the
# Website and Shop legs once the catalog carries them: "website", "shop", "onsite").
AUDIENCE_REFUSED_FAMILIES = frozenset({"in_app", "spend_split", "website", "shop", "onsite"})
# cash_spend / voucher_spend: advertiser level, daily only (docs/tiktok_api_reference.md §3.6).
DAILY_ADVERTISER_ONLY = frozenset(catalog.ADVERTISER_ONLY)


def metric_types() -> dict[str, MetricType]:
    """Every metric any family holds, with its type (how a custom metric name is typed)."""
    types: dict[str, MetricType] = {}
    for family in FAMILY_METRICS.values():
        types.update(family)
    return types


def family_metrics(families: tuple[str, ...], *, audience: bool, daily_advertiser: bool):
    """The metrics of ``families`` that TikTok serves in such a report, in family order."""
    metrics: dict[str, MetricType] = {}
    for name in families:
        if audience and name in AUDIENCE_REFUSED_FAMILIES:
            continue
        for metric, kind in FAMILY_METRICS[name].items():
            if audience and metric in AUDIENCE_REFUSED_METRICS:
                continue
            if metric in DAILY_ADVERTISER_ONLY and not daily_advertiser:
                continue
            metrics[metric] = kind
    return metrics
