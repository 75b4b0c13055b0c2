"""A deterministic synthetic TikTok Ads world: accounts, campaigns, ad groups, ads, delivery.

Everything is a pure function of the seed, so tests can compute the expected answer of any
report (``tiktok_simulator.report.truth_rows``) without talking to the server. Entities of an account are
built on first use; delivery is never stored: whether an ad delivered on a day, and what it
delivered, is a hash of (seed, ad, day), recomputed whenever a row is served. That keeps a
world with a million ad-day rows cheap to create.

Promote campaigns (boosts bought in the TikTok app, docs/tiktok_api_beyond.md §1) follow an
account's regular ones: one ad group and one ad each, ``campaign_system_origin`` PROMOTE,
``promotion_type`` "Other", and "0" for the metrics TikTok does not support for them. Reports hide
them unless the ``campaign_system_origins`` filter asks for them. Every third advertiser (the
second, fifth, ...) is web-only: its App-leg metrics are "0", as TikTok shows a pixel advertiser's.

Upgraded Smart+ campaigns (docs/tiktok_api_gmv_smartplus.md §2; opt-in with
``smart_plus_campaigns_per_advertiser``; advertisers at even positions only, so a world holds
accounts with and without them) follow the Promote ones: one ad group each, whose ads
(what Ads Manager shows, ``ad_id_v2``) have ``creatives_per_smart_plus_ad`` creatives each. A creative is
what the ``ad_id`` dimension reports (``campaign_automation_type``
``UPGRADED_SMART_PLUS_CREATIVE``, its ad's ``ad_id_v2``), so an ``ad_id`` report holds one row
per creative; the ``ad_id_v2`` dimension reports the ad, summing its creatives. A classic ad is
one row either way, its ``ad_id_v2`` its own second id.

IDs are digit strings above 2**53 (16, 18 and 19 digits, mostly odd), so a client that
round-trips them through a float corrupts them; the very first campaign is 2**53 + 1.
Names contain commas, quotes and non-ASCII text to exercise CSV quoting downstream.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from .metrics import AD, ADGROUP, ADVERTISER, CAMPAIGN

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
VALUE_SALT = 0x5851F42D4C957F2D
HOUR_SALT = 0x2545F4914F6CDD1D
WEIGHT_SALT = 0x9FB21C651E98DF25


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a cheap, well-distributed 64-bit hash step."""
    x = (x + GOLDEN) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def hash_of(*parts: int) -> int:
    h = 0
    for part in parts:
        h = mix64(h ^ (part & M64))
    return h


def as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


# Catalogues the synthetic names and enum attributes are drawn from.
_CURRENCIES = (
    ("USD", "America/Los_Angeles"),
    ("EUR", "Europe/Paris"),
    ("GBP", "Europe/London"),
    ("JPY", "Asia/Tokyo"),
    ("BRL", "America/Sao_Paulo"),
)
_ADVERTISER_NAMES = ("Acme, Inc.", 'Café "Olé" GmbH', "Łódź Shoes", "東京ストア", "Ünïcode Ltd")
_CAMPAIGN_NAMES = (
    "Spring promo",
    'Soldes d\'été, "Paris"',
    "Black Friday — 50% off",
    "Kampagne Über, Größe",
    "春のセール",
    'Promo "VIP", round 2',
    "Año nuevo 🎉",
    "Back, to school",
)
_ADGROUP_NAMES = (
    "Broad 18-34",
    'Lookalike "buyers", 1%',
    "Retargeting — 30d",
    "Intérêts: mode, beauté",
)
_AD_NAMES = (
    'Video "A", 15s',
    "Carousel, v2",
    "Spark ad — creator",
    "Image ✨ new",
    "UGC test, «B»",
)
_OBJECTIVES = ("TRAFFIC", "CONVERSIONS", "APP_PROMOTION", "REACH", "VIDEO_VIEWS", "LEAD_GENERATION")
_PROMOTION_TYPES = ("WEBSITE", "APP_ANDROID", "APP_IOS", "LEAD_GENERATION")
_OPT_STATUS = ("CLICK", "CONVERT", "INSTALL", "REACH", "SHOW")
_CTAS = ("LEARN_MORE", "SHOP_NOW", "DOWNLOAD_NOW", "SIGN_UP", "ORDER_NOW")

REGULAR = "TT_ADS_PLATFORM"
PROMOTE = "PROMOTE"
ORIGINS = (REGULAR, PROMOTE)
DEFAULT_ORIGINS = frozenset({REGULAR})  # what a report shows without the origins filter
# Legs TikTok has no data for on a Promote ad (docs/tiktok_api_beyond.md §1.3: unsupported metrics
# read "0"), and the App leg of a web-only advertiser.
PROMOTE_ZERO_LEGS = frozenset({"app", "web", "onsite", "shop", "attribution", "paid"})
WEB_ONLY_ZERO_LEGS = frozenset({"app"})
MANUAL = "MANUAL"
UPGRADED_SMART_PLUS = "UPGRADED_SMART_PLUS"
SMART_PLUS_CREATIVE = "UPGRADED_SMART_PLUS_CREATIVE"  # an ad_id row of an Upgraded Smart+ ad
# Not a TikTok data level: the key of the ``ad_id_v2`` rows of AUCTION_AD in ``Account.entities``.
AD_V2 = "AUCTION_AD_V2"


T = TypeVar("T")


def _pick(options: Sequence[T], key: int) -> T:
    return options[key % len(options)]


def _is_creative(ad: Entity) -> bool:
    return ad.attributes.get("campaign_automation_type") == SMART_PLUS_CREATIVE


def _under_v2(ad: Entity) -> Entity:
    """A classic ad as the ``ad_id_v2`` dimension reports it: the same ad, its second id."""
    return Entity(
        level=AD,
        id=ad.attributes["ad_id_v2"],
        name=ad.name,
        key=ad.key,
        deleted=ad.deleted,
        own_deleted=ad.own_deleted,
        attributes=ad.attributes,
        campaign_id=ad.campaign_id,
        adgroup_id=ad.adgroup_id,
        scale=ad.scale,
        create_index=ad.create_index,
        ads=[ad],
        origin=ad.origin,
        zero_legs=ad.zero_legs,
    )


def _money_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(eq=False, slots=True)
class Entity:
    """An advertiser, campaign, ad group or ad.

    ``deleted`` is the *effective* status: an object is hidden by the default report status
    filter when it or any ancestor is deleted. ``ads`` are the ads whose delivery this
    entity's report rows add up: every ad below it, deleted ones included, because deleting
    a child does not un-spend its money. For an ad it is ``[self]``.
    """

    level: str
    id: str
    name: str
    key: int
    deleted: bool
    own_deleted: bool
    attributes: dict[str, str]
    campaign_id: str | None = None
    adgroup_id: str | None = None
    scale: int = 1
    create_index: int = 0
    ads: list[Entity] = field(default_factory=list)
    origin: str = REGULAR  # campaign_system_origin: TT_ADS_PLATFORM or PROMOTE
    zero_legs: frozenset[str] = frozenset()  # conversion legs without data (ads only)


@dataclass(slots=True)
class Account:
    """One advertiser and its objects, ordered by id (which is also creation order)."""

    advertiser: Entity
    campaigns: list[Entity]
    adgroups: list[Entity]
    ads: list[Entity]  # what the ``ad_id`` dimension reports: classic ads and creatives
    # Upgraded Smart+ ads (``ad_id_v2``), each summing its creatives (``ads``)
    smart_plus_ads: list[Entity] = field(default_factory=list)
    # what the ``ad_id_v2`` dimension reports: every classic ad under its ``ad_id_v2``, and
    # the Upgraded Smart+ ads; ordered by id
    ads_v2: list[Entity] = field(default_factory=list)

    def entities(self, data_level: str) -> list[Entity]:
        return {
            ADVERTISER: [self.advertiser],
            CAMPAIGN: self.campaigns,
            ADGROUP: self.adgroups,
            AD: self.ads,
            AD_V2: self.ads_v2,
        }[data_level]


class World:
    """The synthetic world. See the module docstring; parameters are per parent object."""

    def __init__(
        self,
        seed: int = 42,
        advertisers: int = 3,
        campaigns_per_advertiser: int = 2,
        adgroups_per_campaign: int = 2,
        ads_per_adgroup: int = 3,
        start: date | str = "2025-01-01",
        end: date | str = "2026-12-31",
        delivery_probability: float = 0.7,
        deleted_fraction: float = 0.15,
        promote_campaigns_per_advertiser: int = 1,
        smart_plus_campaigns_per_advertiser: int = 0,
        creatives_per_smart_plus_ad: int = 3,
    ) -> None:
        if not 1 <= advertisers <= 999:
            raise ValueError("advertisers must be between 1 and 999")
        if not 1 <= campaigns_per_advertiser <= 99_999:
            raise ValueError("campaigns_per_advertiser must be between 1 and 99999")
        if adgroups_per_campaign < 1 or ads_per_adgroup < 1:
            raise ValueError("adgroups_per_campaign and ads_per_adgroup must be >= 1")
        if campaigns_per_advertiser * adgroups_per_campaign >= 10**7:
            raise ValueError("too many ad groups per advertiser (ids would collide)")
        if campaigns_per_advertiser * adgroups_per_campaign * ads_per_adgroup >= 10**9:
            raise ValueError("too many ads per advertiser (ids would collide)")
        if not 0 <= promote_campaigns_per_advertiser <= 999:
            raise ValueError("promote_campaigns_per_advertiser must be between 0 and 999")
        if not 0 <= smart_plus_campaigns_per_advertiser <= 999:
            raise ValueError("smart_plus_campaigns_per_advertiser must be between 0 and 999")
        if not 1 <= creatives_per_smart_plus_ad <= 50:
            raise ValueError("creatives_per_smart_plus_ad must be between 1 and 50")
        if (
            campaigns_per_advertiser
            + promote_campaigns_per_advertiser
            + smart_plus_campaigns_per_advertiser
            > 99_999
        ):
            raise ValueError("too many campaigns per advertiser (ids would collide)")
        if not 0.0 <= delivery_probability <= 1.0 or not 0.0 <= deleted_fraction <= 1.0:
            raise ValueError("probabilities must be within [0, 1]")
        self.seed = seed
        self.campaigns_per_advertiser = campaigns_per_advertiser
        self.adgroups_per_campaign = adgroups_per_campaign
        self.ads_per_adgroup = ads_per_adgroup
        self.start = as_date(start)
        self.end = as_date(end)
        if self.start > self.end:
            raise ValueError("start must not be after end")
        self.delivery_probability = delivery_probability
        self.deleted_fraction = deleted_fraction
        self.promote_campaigns_per_advertiser = promote_campaigns_per_advertiser
        self.smart_plus_campaigns_per_advertiser = smart_plus_campaigns_per_advertiser
        self.creatives_per_smart_plus_ad = creatives_per_smart_plus_ad
        self._start_ord = self.start.toordinal()
        self._end_ord = self.end.toordinal()
        self._threshold = int(delivery_probability * (1 << 64))
        self._deleted_threshold = int(deleted_fraction * 10_000)
        self.advertiser_ids: tuple[str, ...] = tuple(
            f"7{i:03d}{hash_of(seed, 1, i) % 10**15:015d}" for i in range(advertisers)
        )
        self._index = {adv: i for i, adv in enumerate(self.advertiser_ids)}
        self._accounts: dict[int, Account] = {}
        self._lock = threading.Lock()
        self._builder = None  # its report engine: tiktok_simulator.report.builder_for

    def describe(self) -> dict[str, object]:
        """The parameters that reproduce this world."""
        return {
            "seed": self.seed,
            "advertisers": len(self.advertiser_ids),
            "campaigns_per_advertiser": self.campaigns_per_advertiser,
            "adgroups_per_campaign": self.adgroups_per_campaign,
            "ads_per_adgroup": self.ads_per_adgroup,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "delivery_probability": self.delivery_probability,
            "deleted_fraction": self.deleted_fraction,
            "promote_campaigns_per_advertiser": self.promote_campaigns_per_advertiser,
            "smart_plus_campaigns_per_advertiser": self.smart_plus_campaigns_per_advertiser,
            "creatives_per_smart_plus_ad": self.creatives_per_smart_plus_ad,
            "advertiser_ids": list(self.advertiser_ids),
        }

    # ------------------------------------------------------------------ entities
    def has_advertiser(self, advertiser_id: str) -> bool:
        return advertiser_id in self._index

    def account(self, advertiser_id: str) -> Account:
        """The advertiser's objects, built once on first use."""
        index = self._index[advertiser_id]
        account = self._accounts.get(index)
        if account is None:
            with self._lock:
                account = self._accounts.get(index)
                if account is None:
                    account = self._build_account(index)
                    self._accounts[index] = account
        return account

    def ids(
        self,
        advertiser_id: str,
        data_level: str,
        include_deleted: bool = True,
        origins: Iterable[str] = DEFAULT_ORIGINS,
    ) -> list[str]:
        """Ids of the objects at ``data_level`` (sorted); ``include_deleted=False`` as the
        API's default status filter, ``origins`` as its ``campaign_system_origins`` filter."""
        entities = self.account(advertiser_id).entities(data_level)
        wanted = set(origins)
        return [e.id for e in entities if (include_deleted or not e.deleted) and e.origin in wanted]

    def promote_ids(self, advertiser_id: str, data_level: str) -> list[str]:
        """The Promote objects at ``data_level`` (hidden from reports unless asked for)."""
        return self.ids(advertiser_id, data_level, origins=(PROMOTE,))

    def is_web_only(self, advertiser_id: str) -> bool:
        """Every third advertiser (index 1, 4, 7 ...) has no App leg: its app metrics are 0."""
        return self._index[advertiser_id] % 3 == 1

    def campaign_ids(self, advertiser_id: str, include_deleted: bool = True) -> list[str]:
        return self.ids(advertiser_id, CAMPAIGN, include_deleted)

    def adgroup_ids(self, advertiser_id: str, include_deleted: bool = True) -> list[str]:
        return self.ids(advertiser_id, ADGROUP, include_deleted)

    def ad_ids(self, advertiser_id: str, include_deleted: bool = True) -> list[str]:
        return self.ids(advertiser_id, AD, include_deleted)

    def deleted_ids(
        self, advertiser_id: str, data_level: str, origins: Iterable[str] = DEFAULT_ORIGINS
    ) -> list[str]:
        """Objects hidden by the default status filter (deleted themselves or by an ancestor)."""
        wanted = set(origins)
        return [
            e.id
            for e in self.account(advertiser_id).entities(data_level)
            if e.deleted and e.origin in wanted
        ]

    def entity(self, advertiser_id: str, data_level: str, entity_id: str) -> Entity:
        for e in self.account(advertiser_id).entities(data_level):
            if e.id == entity_id:
                return e
        raise KeyError(entity_id)

    def advertiser_info(self, advertiser_id: str) -> dict[str, str]:
        attrs = self.account(advertiser_id).advertiser.attributes
        return {
            "advertiser_id": advertiser_id,
            "name": attrs["advertiser_name"],
            "currency": attrs["currency"],
            "timezone": attrs["timezone"],
        }

    def _build_account(self, index: int) -> Account:
        seed = self.seed
        adv_id = self.advertiser_ids[index]
        adv_key = hash_of(seed, 1, index)
        currency, timezone = _pick(_CURRENCIES, adv_key >> 8)
        advertiser = Entity(
            level=ADVERTISER,
            id=adv_id,
            name=f"{_pick(_ADVERTISER_NAMES, adv_key)} #{index + 1}",
            key=adv_key,
            deleted=False,
            own_deleted=False,
            attributes={},
        )
        advertiser.attributes = {
            "advertiser_name": advertiser.name,
            "advertiser_id": adv_id,
            "currency": currency,
            "timezone": timezone,
        }
        campaigns: list[Entity] = []
        adgroups: list[Entity] = []
        ads: list[Entity] = []
        for c in range(self.campaigns_per_advertiser):
            campaign = self._campaign(advertiser, index, c)
            campaigns.append(campaign)
            for _ in range(self.adgroups_per_campaign):
                adgroup = self._adgroup(campaign, index, len(adgroups))
                adgroups.append(adgroup)
                for _ in range(self.ads_per_adgroup):
                    ad = self._ad(adgroup, index, len(ads))
                    ads.append(ad)
                    adgroup.ads.append(ad)
                    campaign.ads.append(ad)
        for p in range(self.promote_campaigns_per_advertiser):
            campaign = self._campaign(advertiser, index, self.campaigns_per_advertiser + p, PROMOTE)
            campaigns.append(campaign)
            adgroup = self._adgroup(campaign, index, len(adgroups))
            adgroups.append(adgroup)
            ad = self._ad(adgroup, index, len(ads))
            ads.append(ad)
            adgroup.ads.append(ad)
            campaign.ads.append(ad)
        smart_plus_ads: list[Entity] = []
        for s in range(self.smart_plus_campaigns_per_advertiser if index % 2 == 0 else 0):
            c = self.campaigns_per_advertiser + self.promote_campaigns_per_advertiser + s
            campaign = self._campaign(advertiser, index, c, automation=UPGRADED_SMART_PLUS)
            campaigns.append(campaign)
            adgroup = self._adgroup(campaign, index, len(adgroups))
            adgroups.append(adgroup)
            for _ in range(self.ads_per_adgroup):
                smart = self._smart_plus_ad(adgroup, index, len(smart_plus_ads))
                smart_plus_ads.append(smart)
                for k in range(self.creatives_per_smart_plus_ad):
                    creative = self._creative(self._ad(adgroup, index, len(ads)), smart, k)
                    ads.append(creative)
                    smart.ads.append(creative)
                    adgroup.ads.append(creative)
                    campaign.ads.append(creative)
        if index % 3 == 1:  # web-only (``is_web_only``)
            for ad in ads:
                ad.zero_legs = ad.zero_legs | WEB_ONLY_ZERO_LEGS
        advertiser.ads = ads
        classic = [_under_v2(ad) for ad in ads if not _is_creative(ad)]
        ads_v2 = sorted([*classic, *smart_plus_ads], key=lambda e: int(e.id))
        return Account(advertiser, campaigns, adgroups, ads, smart_plus_ads, ads_v2)

    def _is_deleted(self, key: int) -> bool:
        return (key >> 3) % 10_000 < self._deleted_threshold

    def _campaign(
        self,
        advertiser: Entity,
        adv_index: int,
        c: int,
        origin: str = REGULAR,
        automation: str = MANUAL,
    ) -> Entity:
        key = hash_of(advertiser.key, 2, c)
        if adv_index == 0 and c == 0:
            number = 2**53 + 1  # the classic id a float cast turns into 2**53
        else:
            number = 9_100_000_000_000_000 + (adv_index * 100_000 + c) * 10_000 + key % 10_000
        own_deleted = self._is_deleted(key)
        name = f"{_pick(_CAMPAIGN_NAMES, key)} #{c + 1}"
        if origin == PROMOTE:
            name = f"Promote: {name}"
        elif automation == UPGRADED_SMART_PLUS:
            name = f"Smart+: {name}"
        budget = (
            "-" if key % 3 == 0 or origin == PROMOTE else _money_text((key >> 5) % 500_000 + 5_000)
        )
        attributes = {
            **advertiser.attributes,
            "campaign_name": name,
            "objective_type": _pick(_OBJECTIVES, key >> 7),
            "split_test": "SPLIT_TEST_DISABLED",
            "campaign_budget": budget,
            "campaign_dedicate_type": "GENERAL",
            "app_promotion_type": "UNSET",
            "campaign_automation_type": automation,
        }
        # Returned on Promote objects only (docs/tiktok_api_beyond.md §1.1 "Marker").
        if origin == PROMOTE:
            attributes["campaign_system_origin"] = PROMOTE
        return Entity(
            level=CAMPAIGN,
            id=str(number),
            name=name,
            key=key,
            deleted=own_deleted,
            own_deleted=own_deleted,
            attributes=attributes,
            campaign_id=str(number),
            origin=origin,
        )

    def _adgroup(self, campaign: Entity, adv_index: int, g: int) -> Entity:
        key = hash_of(campaign.key, 3, g)
        number = 170_000_000_000_000_000 + (adv_index * 10_000_000 + g) * 1_000 + key % 1_000
        own_deleted = self._is_deleted(key)
        name = f"{_pick(_ADGROUP_NAMES, key)} #{g + 1}"
        promotion = "Other" if campaign.origin == PROMOTE else _pick(_PROMOTION_TYPES, key >> 9)
        attributes = {
            **campaign.attributes,
            "campaign_id": campaign.id,
            "adgroup_name": name,
            "placement_type": "PLACEMENT_TYPE_AUTOMATIC" if key & 1 else "PLACEMENT_TYPE_NORMAL",
            "promotion_type": promotion,
            "opt_status": _pick(_OPT_STATUS, key >> 11),
            "adgroup_download_url": "-",
            "profile_image": "-",
            "dpa_target_audience_type": "-",
            "budget": _money_text((key >> 13) % 100_000 + 2_000),
            "smart_target": "-",
            "pricing_category": "-",
            "billing_event": "OCPM",
            "bid_strategy": "BID_STRATEGY_MAX_CONVERSION",
            "bid": "0.00",
            "bid_secondary_goal": "-",
            "aeo_type": "-",
            "tt_app_id": "0",
            "tt_app_name": "-",
            "mobile_app_id": "0",
            "is_aco": "False",
        }
        return Entity(
            level=ADGROUP,
            id=str(number),
            name=name,
            key=key,
            deleted=campaign.deleted or own_deleted,
            own_deleted=own_deleted,
            attributes=attributes,
            campaign_id=campaign.id,
            adgroup_id=str(number),
            origin=campaign.origin,
        )

    def _ad(self, adgroup: Entity, adv_index: int, a: int) -> Entity:
        key = hash_of(adgroup.key, 4, a)
        number = 1_800_000_000_000_000_000 + (adv_index * 1_000_000_000 + a) * 1_000 + key % 1_000
        own_deleted = self._is_deleted(key)
        name = f"{_pick(_AD_NAMES, key)} #{a + 1}"
        text = (
            "Shop now, save 20%!\n“Limited” offer — ends soon" if key % 4 == 0 else "Try it today"
        )
        attributes = {
            **adgroup.attributes,
            "adgroup_id": adgroup.id,
            "ad_name": name,
            "ad_text": text,
            "call_to_action": _pick(_CTAS, key >> 5),
            "ad_profile_image": "-",
            "ad_url": f"https://example.com/landing?ad={a + 1}&utm_source=tiktok",
            "image_mode": "VIDEO",
            "ad_id_v2": str(number + 7),
            "is_smart_creative": "False",
        }
        del attributes["is_aco"]
        ad = Entity(
            level=AD,
            id=str(number),
            name=name,
            key=key,
            deleted=adgroup.deleted or own_deleted,
            own_deleted=own_deleted,
            attributes=attributes,
            campaign_id=adgroup.campaign_id,
            adgroup_id=adgroup.id,
            scale=1 + (key >> 17) % 5,
            create_index=a,
            origin=adgroup.origin,
            zero_legs=PROMOTE_ZERO_LEGS if adgroup.origin == PROMOTE else frozenset(),
        )
        ad.ads = [ad]
        return ad

    def _smart_plus_ad(self, adgroup: Entity, adv_index: int, s: int) -> Entity:
        """An Upgraded Smart+ ad: what Ads Manager shows and ``ad_id_v2`` reports; its
        delivery is its creatives' (``ads``), added to it by ``_build_account``."""
        key = hash_of(adgroup.key, 6, s)
        number = 1_850_000_000_000_000_000 + (adv_index * 1_000_000 + s) * 1_000 + key % 1_000
        own_deleted = self._is_deleted(key)
        name = f"Smart+ ad {_pick(_AD_NAMES, key)} #{s + 1}"
        attributes = {
            **adgroup.attributes,
            "adgroup_id": adgroup.id,
            "ad_name": name,
            "ad_text": "Try it today",
            "call_to_action": _pick(_CTAS, key >> 5),
            "ad_profile_image": "-",
            "ad_url": f"https://example.com/smart?ad={s + 1}",
            "image_mode": "VIDEO",
            "ad_id_v2": str(number),
            "is_smart_creative": "False",
        }
        del attributes["is_aco"]
        return Entity(
            level=AD,
            id=str(number),
            name=name,
            key=key,
            deleted=adgroup.deleted or own_deleted,
            own_deleted=own_deleted,
            attributes=attributes,
            campaign_id=adgroup.campaign_id,
            adgroup_id=adgroup.id,
            create_index=s,
            origin=adgroup.origin,
        )

    @staticmethod
    def _creative(ad: Entity, smart: Entity, k: int) -> Entity:
        """``ad`` made the ``k``-th creative of ``smart``: its ad's id and status, its name."""
        ad.name = f"{smart.name} · creative {k + 1}"
        ad.attributes.update(
            ad_name=ad.name,
            ad_id_v2=smart.id,
            campaign_automation_type=SMART_PLUS_CREATIVE,
        )
        ad.deleted, ad.own_deleted = smart.deleted, smart.own_deleted
        return ad

    # ------------------------------------------------------------------ delivery
    @property
    def delivery_window(self) -> tuple[int, int, int]:
        """(first day, last day, hash threshold) of ``day_hash``, for ``columnar``'s copy."""
        return self._start_ord, self._end_ord, self._threshold

    def day_hash(self, ad: Entity, day: int) -> int | None:
        """The ad's hash for a day (an ordinal), or None when it did not deliver that day."""
        if day < self._start_ord or day > self._end_ord:
            return None
        h = mix64(ad.key ^ ((day * GOLDEN) & M64))
        return h if h < self._threshold else None

    @staticmethod
    def value_hash(h: int) -> int:
        """The hash an ad-day's values are drawn from (decorrelated from the presence draw)."""
        return mix64(h ^ VALUE_SALT)

    @staticmethod
    def hour_split(h: int) -> tuple[int, list[int]]:
        """Hours with delivery (24-bit mask) and cumulative weights used to split a day."""
        hm = mix64(h ^ HOUR_SALT)
        mask = (hm & 0xFFFFFF) | (1 << ((hm >> 59) % 24))  # never an empty day
        hw = mix64(h ^ WEIGHT_SALT)
        cumulative = [0]
        for hour in range(24):
            weight = 1 + ((hw >> (2 * hour)) & 3) if mask >> hour & 1 else 0
            cumulative.append(cumulative[-1] + weight)
        return mask, cumulative

    # ------------------------------------------------------------------ ground truth
