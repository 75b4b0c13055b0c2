"""The simulator's metric registry, written independently from the client's catalog.

Built from docs/tiktok_api_reference.md §3.1-§3.5. Every metric has a *kind* (how its value is
written on the wire) and a *formula* (how it is computed from the synthetic delivery):

* **bases** are hidden, summable integers generated per ad and day (counts, or money in
  cents). Aggregating a campaign or an ad group sums the bases of its ads, so counts and
  money add up exactly across levels.
* **metrics** are rendered from bases: a count or money base as-is, ratios (costs, rates,
  averages, ROAS) recomputed from the aggregated bases, attributes from the entity, and
  ``"-"`` for the secondary-goal family, which TikTok returns when no secondary goal is set.

Keeping the two registries independent is deliberate: a typo in the client's catalog must
surface as the API's "invalid metric fields" error, as it would against TikTok.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a metric value is written: all of them are JSON strings on the wire."""

    COUNT = "count"  # integer string: "1079"
    MONEY = "money"  # two decimals, account currency: "14.68"
    RATE = "rate"  # percent number with two decimals: "1.11" means 1.11 %
    AVERAGE = "average"  # two decimals: frequency, average play time, ROAS
    ATTRIBUTE = "attribute"  # free string taken from the entity: names, parent ids, enums


ADVERTISER = "AUCTION_ADVERTISER"
CAMPAIGN = "AUCTION_CAMPAIGN"
ADGROUP = "AUCTION_ADGROUP"
AD = "AUCTION_AD"
LEVELS: tuple[str, ...] = (ADVERTISER, CAMPAIGN, ADGROUP, AD)
ALL_LEVELS = frozenset(LEVELS)

DASH = "-"
ZERO = "0.00"


@dataclass(frozen=True, slots=True)
class Base:
    """A hidden summable quantity generated per ad and day.

    A root base (``basis is None``) is ``uniform(lo, hi) * ad scale``; a derived base is
    ``basis * uniform(lo, hi) // 1000``, i.e. ``lo``/``hi`` are per-mille of the basis.
    Chaining keeps the numbers plausible (clicks <= impressions, p100 <= p75 ...).
    """

    name: str
    basis: str | None
    lo: int
    hi: int
    salt: int
    leg: str | None = None  # the conversion leg it belongs to (see ``zeroed_bases``)


# --------------------------------------------------------------------------- formulas
Ref = Callable[[str], str]


class Formula:
    """How a metric is computed, as Python statements assigning the metric's text to ``out``.

    ``ref(base)`` is the source of a base's value, ``a`` the row entity's attributes and
    ``D2`` a table of two-digit strings. Formulas are data rather than functions so that
    ``compiled`` can turn a whole metric list into one function: a function call per metric
    and row was too slow for the 20k rows/s the benchmark needs.
    """

    def statements(self, ref: Ref, out: str) -> list[str]:
        raise NotImplementedError


def _two_decimals(hundredths: str, out: str) -> list[str]:
    return [f"h = {hundredths}", f"{out} = f'{{h // 100}}.{{D2[h % 100]}}'"]


@dataclass(frozen=True, slots=True)
class CountOf(Formula):
    base: str

    def statements(self, ref: Ref, out: str) -> list[str]:
        return [f"{out} = str({ref(self.base)})"]


@dataclass(frozen=True, slots=True)
class MoneyOf(Formula):
    """A summable amount, kept in cents."""

    base: str

    def statements(self, ref: Ref, out: str) -> list[str]:
        return _two_decimals(ref(self.base), out)


@dataclass(frozen=True, slots=True)
class Difference(Formula):
    plus: str
    minus: str

    def statements(self, ref: Ref, out: str) -> list[str]:
        return _two_decimals(f"{ref(self.plus)} - {ref(self.minus)}", out)


@dataclass(frozen=True, slots=True)
class Ratio(Formula):
    """``num * mult / den`` in hundredths, rounded half up; ``zero`` when ``den`` is 0.

    ``mult`` folds in the unit: 1 for cents per unit, 1000 for cost per mille, 10000 for a
    percentage, 100 for a plain ratio of two counts.
    """

    num: str
    den: str
    mult: int
    zero: str

    def statements(self, ref: Ref, out: str) -> list[str]:
        value = f"(2 * {ref(self.num)} * {self.mult} + d) // (2 * d)"
        return [
            f"d = {ref(self.den)}",
            "if d:",
            *(f"    {line}" for line in _two_decimals(value, out)),
            "else:",
            f"    {out} = {self.zero!r}",
        ]


@dataclass(frozen=True, slots=True)
class Constant(Formula):
    text: str

    def statements(self, ref: Ref, out: str) -> list[str]:
        return [f"{out} = {self.text!r}"]


@dataclass(frozen=True, slots=True)
class AttributeOf(Formula):
    """Read from the row's entity (its own attributes merged with its ancestors')."""

    name: str

    def statements(self, ref: Ref, out: str) -> list[str]:
        return [f"{out} = a[{self.name!r}]"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric the simulated API accepts.

    ``needs`` lists the bases the formula reads. ``levels`` restricts where the metric may
    be requested; ``time_dimensions`` restricts which time dimension it may be combined with
    (``None`` standing for "no time dimension", which includes lifetime queries);
    ``multi_advertiser_only`` marks fields that only exist with ``advertiser_ids``.
    """

    name: str
    kind: Kind
    formula: Formula
    needs: tuple[str, ...] = ()
    levels: frozenset[str] = ALL_LEVELS
    time_dimensions: frozenset[str | None] | None = None
    multi_advertiser_only: bool = False

    @property
    def is_attribute(self) -> bool:
        return self.kind is Kind.ATTRIBUTE


BASES: dict[str, Base] = {}
METRICS: dict[str, Metric] = {}


# --------------------------------------------------------------------------- builders
def _salt(name: str) -> int:
    """A fixed odd 64-bit multiplier per base (FNV-1a of the name), independent of PYTHONHASHSEED."""
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h | 1


_LEG: list[str | None] = [None]  # the leg of the bases being registered (``leg``)


def leg(name: str | None) -> None:
    """Bases registered from here on belong to this conversion leg (None: delivery itself)."""
    _LEG[0] = name


def _base(name: str, basis: str | None, lo: int, hi: int) -> str:
    if basis is not None and basis not in BASES:
        raise ValueError(f"base {name} depends on unknown base {basis}")
    BASES[name] = Base(name, basis, lo, hi, _salt(name), _LEG[0])
    return name


def _metric(name: str, kind: Kind, formula: Formula, needs: Iterable[str] = (), **kw) -> None:
    if name in METRICS:
        raise ValueError(f"metric {name} registered twice")
    METRICS[name] = Metric(name, kind, formula, tuple(needs), **kw)


def count(name: str, basis: str | None, lo: int, hi: int, **kw) -> None:
    """A count metric backed by a base of the same name."""
    _metric(name, Kind.COUNT, CountOf(_base(name, basis, lo, hi)), (name,), **kw)


def money(name: str, basis: str | None, lo: int, hi: int, **kw) -> None:
    """A summable money metric (cents base of the same name)."""
    _metric(name, Kind.MONEY, MoneyOf(_base(name, basis, lo, hi)), (name,), **kw)


def ratio(name: str, kind: Kind, num: str, den: str, mult: int, zero: str = ZERO, **kw) -> None:
    _metric(name, kind, Ratio(num, den, mult, zero), (num, den), **kw)


def cost_per(name: str, den: str, **kw) -> None:
    """Spend divided by a count; ``"-"`` when the count is 0 (nothing to divide by)."""
    ratio(name, Kind.MONEY, "spend", den, 1, DASH, **kw)


def rate(name: str, num: str, den: str, **kw) -> None:
    ratio(name, Kind.RATE, num, den, 10000, **kw)


def dash(name: str, kind: Kind) -> None:
    _metric(name, kind, Constant(DASH))


def attribute(name: str, levels: Iterable[str], **kw) -> None:
    _metric(name, Kind.ATTRIBUTE, AttributeOf(name), levels=frozenset(levels), **kw)


def event_family(
    event: str,
    *,
    basis: str = "clicks",
    hi: int = 100,
    value: bool = False,
    value_per: str | None = None,
) -> None:
    """The in-app event pattern of docs/tiktok_api_reference.md §3.4.

    Unique count ``<e>``, ``cost_per_<e>``, ``<e>_rate``, total count ``total_<e>``,
    ``cost_per_total_<e>`` and, for value-carrying events, ``value_per_total_<e>`` (or the
    given ``value_per`` spelling, e.g. ``value_per_checkout``) and ``total_<e>_value``.
    """
    count(event, basis, 0, hi)
    cost_per(f"cost_per_{event}", event)
    rate(f"{event}_rate", event, "clicks")
    count(f"total_{event}", event, 1000, 1600)
    cost_per(f"cost_per_total_{event}", f"total_{event}")
    if value:
        money(f"total_{event}_value", f"total_{event}", 300_000, 5_000_000)
        value_name = value_per or f"value_per_total_{event}"
        ratio(value_name, Kind.MONEY, f"total_{event}_value", f"total_{event}", 1, DASH)


def web_event(event: str, *, basis: str = "clicks", hi: int = 100) -> None:
    """A website/shop event with the ``cost_per_*``, ``*_rate``, ``value_per_*``, ``total_*_value`` legs."""
    count(event, basis, 0, hi)
    cost_per(f"cost_per_{event}", event)
    rate(f"{event}_rate", event, "clicks")
    money(f"total_{event}_value", event, 300_000, 5_000_000)
    ratio(f"value_per_{event}", Kind.MONEY, f"total_{event}_value", event, 1, DASH)


def roas(name: str, value_base: str) -> None:
    """Return on ad spend: value / spend as a plain two-decimal ratio."""
    ratio(name, Kind.AVERAGE, value_base, "spend", 100)


# ---------------------------------------------------------- docs/tiktok_api_reference.md §3.2 core
count("impressions", None, 200, 4000)
count("gross_impressions", "impressions", 1000, 1150)
count("clicks", "impressions", 3, 40)
money("spend", "impressions", 100, 1500)  # cents: a CPM between 1 and 15
money("billed_cost", "spend", 950, 1000)
# cash + voucher = spend. Only at AUCTION_ADVERTISER with stat_time_day
# (docs/tiktok_api_reference.md §3.6).
_ADVERTISER_DAILY = {
    "levels": frozenset({ADVERTISER}),
    "time_dimensions": frozenset({"stat_time_day"}),
}
money("voucher_spend", "spend", 0, 200, **_ADVERTISER_DAILY)
_metric(
    "cash_spend",
    Kind.MONEY,
    Difference("spend", "voucher_spend"),
    ("spend", "voucher_spend"),
    **_ADVERTISER_DAILY,
)
ratio("cpc", Kind.MONEY, "spend", "clicks", 1)
ratio("cpm", Kind.MONEY, "spend", "impressions", 1000)
rate("ctr", "clicks", "impressions")
count("reach", "impressions", 400, 950)
ratio("cost_per_1000_reached", Kind.MONEY, "spend", "reach", 1000, DASH)
ratio("frequency", Kind.AVERAGE, "impressions", "reach", 100)

for _prefix in ("", "real_time_"):
    count(f"{_prefix}conversion", "clicks", 0, 150)
    cost_per(f"{_prefix}cost_per_conversion", f"{_prefix}conversion")
    rate(f"{_prefix}conversion_rate", f"{_prefix}conversion", "clicks")
    rate(f"{_prefix}conversion_rate_v2", f"{_prefix}conversion", "impressions")
    count(f"{_prefix}result", "clicks", 0, 200)
    cost_per(f"{_prefix}cost_per_result", f"{_prefix}result")
    rate(f"{_prefix}result_rate", f"{_prefix}result", "impressions")

dash("secondary_goal_result", Kind.COUNT)
dash("cost_per_secondary_goal_result", Kind.MONEY)
dash("secondary_goal_result_rate", Kind.RATE)

leg("app")
count("skan_result", "clicks", 0, 60)
cost_per("skan_cost_per_result", "skan_result")
rate("skan_result_rate", "skan_result", "impressions")
count("skan_conversion", "clicks", 0, 60)
cost_per("skan_cost_per_conversion", "skan_conversion")
rate("skan_conversion_rate", "skan_conversion", "clicks")
rate("skan_conversion_rate_v2", "skan_conversion", "impressions")
count("skan_app_install", "clicks", 0, 80)
cost_per("skan_cost_per_app_install", "skan_app_install")
count("skan_app_install_withheld", "skan_app_install", 0, 300)
leg(None)

# --------------------------------------------------------- docs/tiktok_api_reference.md §3.3 video
count("video_play_actions", "impressions", 200, 700)
count("video_watched_2s", "video_play_actions", 300, 800)
count("video_watched_6s", "video_watched_2s", 300, 800)
count("video_views_p25", "video_play_actions", 200, 600)
count("video_views_p50", "video_views_p25", 400, 900)
count("video_views_p75", "video_views_p50", 400, 900)
count("video_views_p100", "video_views_p75", 300, 900)
# Play time in centiseconds (2-15 s per play) and unique players: averages are recomputed.
_base("_video_play_time_cs", "video_play_actions", 200_000, 1_500_000)
_base("_video_players", "video_play_actions", 500, 950)
ratio("average_video_play", Kind.AVERAGE, "_video_play_time_cs", "video_play_actions", 1)
ratio("average_video_play_per_user", Kind.AVERAGE, "_video_play_time_cs", "_video_players", 1)
count("engaged_view", "video_play_actions", 0, 150)
count("engaged_view_15s", "engaged_view", 200, 700)
# The paid_* views need one ID dimension, optionally with stat_time_day (never hourly).
_NOT_HOURLY = {"time_dimensions": frozenset({None, "stat_time_day"})}
leg("paid")
count("paid_engaged_view", "engaged_view", 500, 1000, **_NOT_HOURLY)
count("paid_engaged_view_15s", "engaged_view_15s", 500, 1000, **_NOT_HOURLY)
count("paid_engagement_engaged_view", "engaged_view", 0, 300, **_NOT_HOURLY)
count("paid_engagement_engaged_view_15s", "engaged_view_15s", 0, 300, **_NOT_HOURLY)
leg(None)
count("organic_video_views", "impressions", 0, 80)

# Clicks / interactions / social.
count("engagements", "clicks", 1000, 3000)
rate("engagement_rate", "engagements", "impressions")
count("clicks_on_music_disc", "impressions", 0, 5)
count("duet_clicks", "impressions", 0, 3)
count("stitch_clicks", "impressions", 0, 3)
count("sound_usage_clicks", "impressions", 0, 3)
count("anchor_clicks", "impressions", 0, 10)
rate("anchor_click_rate", "anchor_clicks", "impressions")
count("clicks_on_hashtag_challenge", "impressions", 0, 3)
count("follows", "impressions", 0, 5)
count("likes", "impressions", 0, 40)
count("comments", "impressions", 0, 5)
count("shares", "impressions", 0, 5)
count("profile_visits", "impressions", 0, 15)
rate("profile_visits_rate", "profile_visits", "impressions")
count("tt_playlist_visit", "impressions", 0, 3)
rate("tt_playlist_visit_rate", "tt_playlist_visit", "impressions")

# LIVE, interactive add-ons, instant page.
count("live_views", "impressions", 0, 20)
count("live_unique_views", "live_views", 500, 1000)
count("live_effective_views", "live_views", 100, 600)
count("live_product_clicks", "live_views", 0, 200)
count("interactive_add_on_impressions", "impressions", 0, 300)
count("interactive_add_on_destination_clicks", "interactive_add_on_impressions", 0, 50)
count("interactive_add_on_activity_clicks", "interactive_add_on_impressions", 0, 50)
count("interactive_add_on_option_a_clicks", "interactive_add_on_impressions", 0, 30)
count("interactive_add_on_option_b_clicks", "interactive_add_on_impressions", 0, 30)
count("countdown_sticker_recall_clicks", "interactive_add_on_impressions", 0, 20)
leg("onsite")  # instant pages are on TikTok
count("ix_page_view_count", "clicks", 0, 500)
count("ix_button_click_count", "ix_page_view_count", 0, 300)
count("ix_product_click_count", "ix_page_view_count", 0, 300)
_base("_ix_page_time_cs", "ix_page_view_count", 300_000, 3_000_000)
_base("_ix_page_depth_pct", "ix_page_view_count", 20_000, 100_000)
ratio("ix_page_duration_avg", Kind.AVERAGE, "_ix_page_time_cs", "ix_page_view_count", 1)
ratio("ix_page_viewrate_avg", Kind.RATE, "_ix_page_depth_pct", "ix_page_view_count", 100)
count("ix_video_views", "impressions", 0, 30)
count("ix_video_views_p25", "ix_video_views", 200, 600)
count("ix_video_views_p50", "ix_video_views_p25", 400, 900)
count("ix_video_views_p75", "ix_video_views_p50", 400, 900)
count("ix_video_views_p100", "ix_video_views_p75", 300, 900)
_base("_ix_video_time_cs", "ix_video_views", 200_000, 1_500_000)
ratio("ix_average_video_play", Kind.AVERAGE, "_ix_video_time_cs", "ix_video_views", 1)

leg(None)

# -------------------------------------------------------- docs/tiktok_api_reference.md §3.4 in-app
leg("app")
count("app_install", "clicks", 0, 200)
cost_per("cost_per_app_install", "app_install")
count("real_time_app_install", "clicks", 0, 200)
ratio("real_time_app_install_cost", Kind.MONEY, "spend", "real_time_app_install", 1, DASH)
event_family("registration")
event_family("purchase", value=True)
roas("total_active_pay_roas", "total_purchase_value")
money("total_purchase_value_day0", "total_purchase_value", 200, 500)
money("total_purchase_value_day2", "total_purchase_value_day0", 1000, 1500)
money("total_purchase_value_day6", "total_purchase_value_day2", 1000, 1300)
for _day in (0, 2, 6):
    roas(f"total_purchase_roas_day{_day}", f"total_purchase_value_day{_day}")
event_family("app_event_add_to_cart", value=True)
event_family("checkout", value=True, value_per="value_per_checkout")
event_family("view_content", value=True)

# "Others (same pattern)". Which of them carry a value is not documented
# (docs/tiktok_api_reference.md §3.4): the value legs are given to the events that obviously carry
# one (wishlist, credits, subscriptions, ad revenue); the rest get the five count/cost/rate names
# only.
_VALUE_EVENTS = {
    "add_to_wishlist",
    "spend_credits",
    "subscribe",
    "in_app_ad_click",
    "in_app_ad_impr",
}
for _event in (
    "next_day_open",
    "day7_retention",
    "add_payment_info",
    "add_to_wishlist",
    "launch_app",
    "complete_tutorial",
    "create_group",
    "join_group",
    "create_gamerole",
    "spend_credits",
    "achieve_level",
    "unlock_achievement",
    "sales_lead",
    "in_app_ad_click",
    "in_app_ad_impr",
    "loan_apply",
    "loan_credit",
    "loan_disbursement",
    "login",
    "ratings",
    "search",
    "start_trial",
    "subscribe",
):
    event_family(_event, value=_event in _VALUE_EVENTS)
count("unique_custom_app_events", "clicks", 0, 100)
count("custom_app_events", "unique_custom_app_events", 1000, 1600)

# ------------------------------------------------------- docs/tiktok_api_reference.md §3.5 website
# docs/tiktok_api_beyond.md §2.2. The legs are what a web-only advertiser or a Promote ad zeroes
# (``zeroed_bases``).
leg("web")
count("complete_payment", "clicks", 0, 100)
cost_per("cost_per_complete_payment", "complete_payment")
rate("complete_payment_rate", "complete_payment", "clicks")
# Despite its name total_complete_payment_rate is the total payment *value* (money), so it
# equals complete_payment x value_per_complete_payment (to the cent of the average).
# total_complete_payment_value is not registered: TikTok refuses it
# (docs/tiktok_api_beyond.md §2.7, PH42830).
money("total_complete_payment_rate", "complete_payment", 300_000, 5_000_000)
ratio(
    "value_per_complete_payment",
    Kind.MONEY,
    "total_complete_payment_rate",
    "complete_payment",
    1,
    DASH,
)
roas("complete_payment_roas", "total_complete_payment_rate")
count("total_landing_page_view", "clicks", 300, 900)
cost_per("cost_per_landing_page_view", "total_landing_page_view")
rate("landing_page_view_rate", "total_landing_page_view", "clicks")
count("total_pageview", "clicks", 500, 3000)
cost_per("cost_per_pageview", "total_pageview")
money("total_value_per_pageview", "total_pageview", 1_000, 50_000)
ratio("avg_value_per_pageview", Kind.MONEY, "total_value_per_pageview", "total_pageview", 1, DASH)
for _event in (
    "button_click",
    "online_consult",
    "user_registration",
    "web_event_add_to_cart",
    "on_web_order",
    "initiate_checkout",
    "add_billing",
    "page_event_search",
    "form",
    "download_start",
    "on_web_add_to_wishlist",
    "on_web_subscribe",
):
    web_event(_event)
# View content: the total value's word order differs from the pattern
# (docs/tiktok_api_beyond.md §2.2).
count("page_content_view_events", "clicks", 0, 800)
cost_per("cost_per_page_content_view_event", "page_content_view_events")
rate("page_content_view_event_rate", "page_content_view_events", "clicks")
money("total_page_view_content_events_value", "page_content_view_events", 10_000, 200_000)
ratio(
    "value_per_page_content_view_event",
    Kind.MONEY,
    "total_page_view_content_events_value",
    "page_content_view_events",
    1,
    DASH,
)
count("custom_page_events", "clicks", 0, 300)

# Onsite (TikTok) leg, docs/tiktok_api_beyond.md §2.3. Pattern A: the onsite_ prefix first.
leg("onsite")
for _event, _unique in (
    ("purchase", True),
    ("add_to_cart", True),
    ("checkout_initiation", True),
    ("product_details_page_view", False),
):
    count(f"onsite_total_{_event}", "clicks", 0, 100)
    cost_per(f"onsite_cost_per_{_event}", f"onsite_total_{_event}")
    rate(f"onsite_{_event}_rate", f"onsite_total_{_event}", "clicks")
    money(f"onsite_total_{_event}_value", f"onsite_total_{_event}", 300_000, 5_000_000)
    ratio(
        f"onsite_value_per_{_event}",
        Kind.MONEY,
        f"onsite_total_{_event}_value",
        f"onsite_total_{_event}",
        1,
        DASH,
    )
    if _unique:
        count(f"onsite_unique_{_event}", f"onsite_total_{_event}", 500, 1000)
        cost_per(f"onsite_cost_per_unique_{_event}", f"onsite_unique_{_event}")
roas("onsite_purchases_roas", "onsite_total_purchase_value")
# Pattern B: onsite_<e> inside the other names.
for _event in ("form", "add_to_wishlist", "add_billing"):
    count(f"onsite_{_event}", "clicks", 0, 100)
    cost_per(f"cost_per_onsite_{_event}", f"onsite_{_event}")
    rate(f"onsite_{_event}_rate", f"onsite_{_event}", "clicks")
    money(f"total_onsite_{_event}_value", f"onsite_{_event}", 300_000, 5_000_000)
    ratio(
        f"value_per_onsite_{_event}",
        Kind.MONEY,
        f"total_onsite_{_event}_value",
        f"onsite_{_event}",
        1,
        DASH,
    )
# Count, cost and rate only; the cost and rate use the singular.
for _event, _single in (
    ("onsite_download_start", "onsite_download_start"),
    ("onsite_destination_visits", "onsite_destination_visit"),
):
    count(_event, "clicks", 0, 100)
    cost_per(f"cost_per_{_single}", _event)
    rate(f"{_single}_rate", _event, "clicks")

# TikTok Shop leg, docs/tiktok_api_beyond.md §2.4.
leg("shop")
count("onsite_shopping", "clicks", 0, 80)
cost_per("cost_per_onsite_shopping", "onsite_shopping")
rate("onsite_shopping_rate", "onsite_shopping", "clicks")
money("total_onsite_shopping_value", "onsite_shopping", 300_000, 5_000_000)
ratio(
    "value_per_onsite_shopping",
    Kind.MONEY,
    "total_onsite_shopping_value",
    "onsite_shopping",
    1,
    DASH,
)
roas("onsite_shopping_roas", "total_onsite_shopping_value")
for _event in ("onsite_initiate_checkout_count", "onsite_on_web_detail", "onsite_on_web_cart"):
    web_event(_event)

# View-through / click-through / engaged-view-through attribution splits
# (docs/tiktok_api_beyond.md §2.5).
leg("attribution")
for _split, _basis in (
    ("vta_conversion", "conversion"),
    ("cta_conversion", "conversion"),
    ("vta_purchase", "purchase"),
    ("cta_purchase", "purchase"),
    ("evta_purchase", "purchase"),
    ("vta_app_install", "app_install"),
    ("cta_app_install", "app_install"),
    ("evta_app_install", "app_install"),
    ("vta_registration", "registration"),
    ("cta_registration", "registration"),
    ("evta_registration", "registration"),
    ("evta_payments_completed", "complete_payment"),
    ("engaged_view_through_conversions", "conversion"),
):
    count(_split, _basis, 0, 600)
    cost_per(
        "cost_per_engaged_view_through_conversion"
        if _split == "engaged_view_through_conversions"
        else f"cost_per_{_split}",
        _split,
    )
# Web payments: a view-through form only, whose cost name does not match its count's.
count("vta_complete_payment", "complete_payment", 0, 600)
cost_per("cost_per_vta_payments_completed", "vta_complete_payment")
money("vta_complete_payment_value", "vta_complete_payment", 300_000, 5_000_000)
roas("vta_complete_payment_roas", "vta_complete_payment_value")
leg(None)

# ---------------------------------------------------- docs/tiktok_api_reference.md §3.1 attributes
_ALL = LEVELS
_FROM_CAMPAIGN = (CAMPAIGN, ADGROUP, AD)
_FROM_ADGROUP = (ADGROUP, AD)
_AD_ONLY = (AD,)
ATTRIBUTE_LEVELS: dict[str, tuple[str, ...]] = {
    "advertiser_name": _ALL,
    "advertiser_id": _ALL,
    "currency": _ALL,
    **dict.fromkeys(
        (
            "campaign_name",
            "objective_type",
            "split_test",
            "campaign_budget",
            "campaign_dedicate_type",
            "app_promotion_type",
            "campaign_automation_type",
        ),
        _FROM_CAMPAIGN,
    ),
    "campaign_id": _FROM_ADGROUP,
    **dict.fromkeys(
        (
            "adgroup_name",
            "placement_type",
            "promotion_type",
            "opt_status",
            "adgroup_download_url",
            "profile_image",
            "dpa_target_audience_type",
            "budget",
            "smart_target",
            "pricing_category",
            "billing_event",
            "bid_strategy",
            "bid",
            "bid_secondary_goal",
            "aeo_type",
            "tt_app_id",
            "tt_app_name",
            "mobile_app_id",
        ),
        _FROM_ADGROUP,
    ),
    **dict.fromkeys(
        (
            "adgroup_id",
            "ad_name",
            "ad_text",
            "call_to_action",
            "ad_profile_image",
            "ad_url",
            "image_mode",
            "ad_id_v2",
        ),
        _AD_ONLY,
    ),
    "is_aco": (ADGROUP,),
    "is_smart_creative": (AD,),
}
for _name, _levels in ATTRIBUTE_LEVELS.items():
    attribute(_name, _levels)
# timezone is only returned with a multi-advertiser (advertiser_ids) report.
attribute("timezone", _ALL, multi_advertiser_only=True)

DEFAULT_METRICS: tuple[str, ...] = ("spend", "impressions")
MAX_METRICS = 100


def invalid_metrics(
    names: Iterable[str], data_level: str, time_dimension: str | None, multi_advertiser: bool
) -> list[str]:
    """The requested names the API would list in its "Invalid metric fields" error, in order."""
    invalid = []
    for name in names:
        metric = METRICS.get(name)
        if (
            metric is None
            or data_level not in metric.levels
            or (metric.time_dimensions is not None and time_dimension not in metric.time_dimensions)
            or (metric.multi_advertiser_only and not multi_advertiser)
        ):
            invalid.append(name)
    return invalid


@functools.lru_cache(maxsize=256)
def base_plan(names: tuple[str, ...]) -> tuple[Base, ...]:
    """The bases needed to render ``names``, ordered so that every basis precedes its users."""
    ordered: dict[str, Base] = {}

    def visit(base_name: str) -> None:
        if base_name in ordered:
            return
        base = BASES[base_name]
        if base.basis is not None:
            visit(base.basis)
        ordered[base_name] = base

    for name in names:
        for needed in METRICS[name].needs:
            visit(needed)
    return tuple(ordered.values())


@functools.lru_cache(maxsize=512)
def zeroed_bases(plan: tuple[Base, ...], legs: frozenset[str]) -> tuple[str, ...]:
    """The bases of ``plan`` an ad without those conversion legs has at 0.

    A base belongs to a leg by its own tag or through its basis (a view-through purchase is
    an app purchase), so a web-only advertiser's app-leg metrics and everything derived from
    them are "0", and a Promote ad's unsupported metrics are "0", as TikTok writes them.
    """
    zero: set[str] = set()
    for base in plan:  # a basis precedes its users in a plan
        if base.leg in legs or (base.basis is not None and base.basis in zero):
            zero.add(base.name)
    return tuple(name for name in (b.name for b in plan) if name in zero)


def metrics_for_level(data_level: str, time_dimension: str | None = "stat_time_day") -> list[str]:
    """Every metric valid for a single-advertiser report at ``data_level`` (for tests and docs)."""
    return [
        name
        for name in METRICS
        if not invalid_metrics([name], data_level, time_dimension, multi_advertiser=False)
    ]
