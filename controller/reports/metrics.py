"""TikTok's metrics grouped in families, as data: what an analyst selects, and what it costs.

A family is one place a conversion happens (TikTok calls them legs: App, Website pixel,
TikTok onsite, TikTok Shop) or one view of the delivery (engagement, video, engaged views,
view/click attribution splits). Asking only for the App leg, as other connectors do, makes a web or
Shop advertiser's conversions look like real zeros; so every family a level offers is asked
for unless a deployment (``TIKTOK_METRIC_FAMILIES``) or a request (``metric_families``)
narrows it. ``core`` (spend, impressions, clicks, reach and their ratios) is always asked
for, with the attributes: it holds the spend every reconciliation needs.

Names and levels are the ones of ``docs/tiktok_api_beyond.md`` §2 (GO ``metrics.go``,
TikTok's "supported metrics for a dimension" tables): every one of them is accepted at the
four ``AUCTION_*`` levels of a BASIC report (AB85815). ``audience`` says whether TikTok also
accepts the family in AUDIENCE reports: it refuses the App, Website, onsite and Shop legs
there (AB85820; ``controller/reports/rules.py`` holds the metric-level refusals).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MetricType(StrEnum):
    """How a metric's values are typed in the warehouse (BigQuery type names)."""

    INT = "INT64"
    FLOAT = "FLOAT64"
    STRING = "STRING"


I, F = MetricType.INT, MetricType.FLOAT  # noqa: E741 (as in the catalog)


@dataclass(frozen=True)
class MetricFamily:
    name: str
    description: str
    metrics: dict[str, MetricType]
    audience: bool = True  # accepted in AUDIENCE reports too


def app_event(event: str, *, value: bool, value_name: str | None = None) -> dict[str, MetricType]:
    """The App leg's pattern: unique and total counts, costs, rate, value.

    See docs/tiktok_api_reference.md §3.4.
    """
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


def web_event(event: str) -> dict[str, MetricType]:
    """The Website and Shop pattern: count, cost, rate, value per, total value.

    See docs/tiktok_api_beyond.md §2.2, §2.4.
    """
    return {
        event: I,
        f"cost_per_{event}": F,
        f"{event}_rate": F,
        f"value_per_{event}": F,
        f"total_{event}_value": F,
    }


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
# The optimisation goal's conversions and results, whatever leg they come from.
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
    **app_event("registration", value=False),
    **app_event("purchase", value=True),
    **app_event("app_event_add_to_cart", value=True),
    **app_event("checkout", value=True, value_name="value_per_checkout"),
    **app_event("view_content", value=True),
    **app_event("sales_lead", value=False),
    **app_event("add_payment_info", value=False),
    **app_event("launch_app", value=False),
}

WEB = {
    # total_complete_payment_rate is the total payment VALUE despite its name
    # (docs/tiktok_api_beyond.md §2.7); total_complete_payment_value does not exist (TikTok
    # refuses it).
    "complete_payment": I,
    "cost_per_complete_payment": F,
    "complete_payment_rate": F,
    "value_per_complete_payment": F,
    "total_complete_payment_rate": F,
    "complete_payment_roas": F,
    **web_event("web_event_add_to_cart"),
    "page_content_view_events": I,
    "cost_per_page_content_view_event": F,
    "page_content_view_event_rate": F,
    "value_per_page_content_view_event": F,
    "total_page_view_content_events_value": F,  # TikTok's word order
    **web_event("on_web_order"),
    **web_event("initiate_checkout"),
    **web_event("user_registration"),
    "total_landing_page_view": I,
    "cost_per_landing_page_view": F,
    "landing_page_view_rate": F,
    "total_pageview": I,
    "cost_per_pageview": F,
    "avg_value_per_pageview": F,
    "total_value_per_pageview": F,
    **web_event("button_click"),
    **web_event("online_consult"),
    **web_event("form"),
    **web_event("download_start"),
}


def _onsite_a(event: str, unique: bool) -> dict[str, MetricType]:
    """The TikTok leg's pattern A: the ``onsite_`` prefix comes first (docs/tiktok_api_beyond.md §2.3)."""
    family = {
        f"onsite_total_{event}": I,
        f"onsite_cost_per_{event}": F,
        f"onsite_{event}_rate": F,
        f"onsite_value_per_{event}": F,
        f"onsite_total_{event}_value": F,
    }
    if unique:
        family[f"onsite_unique_{event}"] = I
        family[f"onsite_cost_per_unique_{event}"] = F
    return family


def _onsite_b(event: str) -> dict[str, MetricType]:
    """The TikTok leg's pattern B: ``onsite_<e>`` inside the names (docs/tiktok_api_beyond.md §2.3)."""
    return {
        f"onsite_{event}": I,
        f"cost_per_onsite_{event}": F,
        f"onsite_{event}_rate": F,
        f"value_per_onsite_{event}": F,
        f"total_onsite_{event}_value": F,
    }


ONSITE = {
    **_onsite_a("purchase", unique=True),
    "onsite_purchases_roas": F,
    **_onsite_a("add_to_cart", unique=True),
    **_onsite_a("checkout_initiation", unique=True),
    **_onsite_a("product_details_page_view", unique=False),
    **_onsite_b("form"),
    **_onsite_b("add_to_wishlist"),
    **_onsite_b("add_billing"),
    "onsite_download_start": I,
    "cost_per_onsite_download_start": F,
    "onsite_download_start_rate": F,
    "onsite_destination_visits": I,
    "cost_per_onsite_destination_visit": F,
    "onsite_destination_visit_rate": F,
    "ix_page_view_count": I,
    "ix_button_click_count": I,
    "ix_product_click_count": I,
}

SHOP = {
    **web_event("onsite_shopping"),
    "onsite_shopping_roas": F,
    **web_event("onsite_initiate_checkout_count"),
    **web_event("onsite_on_web_detail"),
    **web_event("onsite_on_web_cart"),
}

ENGAGED_VIEW = {
    "engaged_view": I,
    "engaged_view_15s": I,
    "paid_engaged_view": I,
    "paid_engaged_view_15s": I,
    "paid_engagement_engaged_view": I,
    "paid_engagement_engaged_view_15s": I,
    "engaged_view_through_conversions": I,
    "cost_per_engaged_view_through_conversion": F,
    **{
        name: kind
        for event in ("app_install", "registration", "purchase", "payments_completed")
        for name, kind in ((f"evta_{event}", I), (f"cost_per_evta_{event}", F))
    },
}

ATTRIBUTION = {
    **{
        name: kind
        for event in ("conversion", "app_install", "registration", "purchase")
        for split in ("vta", "cta")
        for name, kind in ((f"{split}_{event}", I), (f"cost_per_{split}_{event}", F))
    },
    # Web payments have a view-through form only, and its cost name does not match.
    "vta_complete_payment": I,
    "cost_per_vta_payments_completed": F,
    "vta_complete_payment_value": F,
    "vta_complete_payment_roas": F,
}

FAMILIES: dict[str, MetricFamily] = {
    family.name: family
    for family in (
        MetricFamily("core", "spend, impressions, clicks, reach and their ratios (always)", CORE),
        MetricFamily("engagement", "profile visits, likes, comments, shares, follows", ENGAGEMENT),
        MetricFamily("video", "plays, 2 s / 6 s views, quartiles, average play time", VIDEO),
        MetricFamily("conversion", "the optimisation goal's conversions and results", CONVERSION),
        MetricFamily(
            "in_app", "App leg: installs and in-app events (SDK/MMP)", IN_APP, audience=False
        ),
        MetricFamily("website", "Website leg: pixel / Events API events", WEB, audience=False),
        MetricFamily(
            "onsite", "TikTok leg: instant forms and pages, onsite events", ONSITE, audience=False
        ),
        MetricFamily(
            "shop", "TikTok Shop leg: orders, checkouts, carts, GMV", SHOP, audience=False
        ),
        MetricFamily("engaged_view", "engaged (6 s / 15 s) views and EVTA", ENGAGED_VIEW),
        MetricFamily("attribution", "view-through / click-through splits", ATTRIBUTION),
    )
}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)
ALWAYS = "core"


def check_family_names(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The names, deduplicated, with ``core`` first; ValueError naming any unknown one."""
    unknown = [name for name in names if name not in FAMILIES]
    if unknown:
        raise ValueError(
            f"unknown metric famil{'ies' if len(unknown) > 1 else 'y'} "
            f"{', '.join(repr(n) for n in unknown)}; choose from {', '.join(FAMILY_NAMES)}"
        )
    return tuple(dict.fromkeys((ALWAYS, *names)))
