"""Account info and the entity list endpoints: ``/advertiser/info/``, ``/campaign/get/``,
``/adgroup/get/``, ``/ad/get/`` and ``/smart_plus/ad/get/``
(docs/tiktok_api_beyond.md §1.2, §7, §8, §9; docs/tiktok_api_reference.md §5.2;
docs/tiktok_api_gmv_smartplus.md §2).

Upgraded Smart+ ads are listed by ``/smart_plus/ad/get/`` only (``smart_plus_ad_id``, the
reports' ``ad_id_v2``; filters as the SDK's ``FilteringSmartPlusAdGet``: no ``ad_ids``, no
name, no origins; pages of at most 100); ``/ad/get/`` lists their creatives, as TikTok's does
without ``ad_ids_v2``, beside the classic ads.

Objects come from the world (``World.account``); what they look like on a given day is a
pure function of the world's seed and the simulator's "as of" day, so history can be tested:
each object may carry one scheduled change (a budget raised, a status paused, a name edited,
the object deleted) on a day drawn from its key. ``EntityBook.changes`` lists them (the
ground truth of a history test); ``EntityBook.objects`` is what the API serves on a day.

Promote objects (made in the TikTok app: one campaign, one ad group, one ad) are the world's
when it has them (a campaign whose ``attributes["campaign_system_origin"]`` is ``PROMOTE``);
until then each account gets one Promote campaign built here. They are hidden unless
``filtering.campaign_system_origins`` asks for ``PROMOTE``, and answer the reduced field sets
of docs/tiktok_api_beyond.md §1.2. Deleted objects are hidden unless ``primary_status`` is
``STATUS_ALL`` or ``STATUS_DELETE`` (or the level's ``*_STATUS_ALL`` / ``*_STATUS_DELETE`` secondary
status).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from .errors import param_error
from .metrics import AD, ADGROUP, CAMPAIGN
from .world import Entity, World, hash_of

PROMOTE, REGULAR = "PROMOTE", "TT_ADS_PLATFORM"
ORIGINS = (PROMOTE, REGULAR)
MAX_PAGE_SIZE = 1000
# Not a report data level: the Upgraded Smart+ ads ``/smart_plus/ad/get/`` lists
# (docs/tiktok_api_gmv_smartplus.md §2); their creatives are what ``/ad/get/`` lists.
SMART_PLUS_AD = "SMART_PLUS_AD"
# TikTok states no page_size range for /smart_plus/ad/get/; its other Smart+ endpoints take
# 1-100, and the simulator takes that strict side.
MAX_SMART_PLUS_PAGE_SIZE = 100
MAX_FILTER_IDS = 100
MAX_INFO_IDS = 100

# --------------------------------------------------------------------------- account info
ADVERTISER_INFO_FIELDS = (
    "telephone_number",
    "contacter",
    "currency",
    "cellphone_number",
    "timezone",
    "advertiser_id",
    "role",
    "company",
    "status",
    "description",
    "rejection_reason",
    "address",
    "name",
    "language",
    "industry",
    "license_no",
    "email",
    "license_url",
    "country",
    "balance",
    "create_time",
    "display_timezone",
    "owner_bc_id",
    "company_name_editable",
)
_COUNTRIES = {"USD": "US", "EUR": "FR", "GBP": "GB", "JPY": "JP", "BRL": "BR"}
# Seeded zones (docs/tiktok_api_beyond.md §9): an offset-style one east of UTC and one west of it
# (POSIX-style signs: Etc/GMT-8 is UTC+8), next to the Region/City zones of the world.
_OFFSET_ZONES = {1: ("Etc/GMT-8", "Asia/Singapore"), 3: ("Etc/GMT+5", "America/Bogota")}
ADVERTISER_STATUSES = (
    "STATUS_ENABLE",
    "STATUS_DISABLE",
    "STATUS_LIMIT",
    "STATUS_PENDING_CONFIRM",
    "STATUS_CONFIRM_FAIL",
    "STATUS_CONTRACT_PENDING",
)


def advertiser_status(world: World, advertiser_id: str) -> str:
    """Every fifth account from the third on is closed (``STATUS_DISABLE``), the rest enabled."""
    index = world.advertiser_ids.index(advertiser_id)
    return "STATUS_DISABLE" if index % 5 == 2 else "STATUS_ENABLE"


def advertiser_info(world: World, advertiser_id: str, status: str | None = None) -> dict[str, Any]:
    """The full ``/advertiser/info/`` item of an account (every field but the editable flag)."""
    index = world.advertiser_ids.index(advertiser_id)
    attrs = world.account(advertiser_id).advertiser.attributes
    key = hash_of(world.seed, 5, index)
    timezone, display = _OFFSET_ZONES.get(index % 4, (attrs["timezone"], attrs["timezone"]))
    created = datetime(world.start.year, world.start.month, world.start.day, tzinfo=UTC)
    created -= timedelta(days=30 + key % 900, seconds=key % 86_400)
    name = attrs["advertiser_name"]
    return {
        "telephone_number": "+1*****5678",
        "contacter": "J*** D**",
        "currency": attrs["currency"],
        "cellphone_number": "+1*****1234",
        "timezone": timezone,
        "advertiser_id": advertiser_id,
        "role": "ROLE_ADVERTISER",
        "company": f"{name} Holding",
        "status": status or advertiser_status(world, advertiser_id),
        "description": "",
        "rejection_reason": "",
        "address": "1*** M*** St",
        "name": name,
        "language": "en",
        "industry": "291905",
        "license_no": "",
        "email": "a***@example.com",
        "license_url": None,
        "country": _COUNTRIES.get(attrs["currency"], "US"),
        "balance": round((key >> 8) % 10_000_000 / 100, 2),
        "create_time": int(created.timestamp()),
        "display_timezone": display,
        "owner_bc_id": str(7_300_000_000_000_000_000 + index),
        "advertiser_account_type": "AUCTION",
    }


def info_list(
    world: World, params: Mapping[str, str], statuses: Mapping[str, str]
) -> tuple[list[str], list[dict[str, Any]]]:
    """(advertiser ids asked, items) of an ``/advertiser/info/`` request; raises 40002."""
    if "advertiser_ids" not in params:
        raise param_error("advertiser_ids: Missing data for required field.")
    ids = _string_list(params, "advertiser_ids")
    if not ids:
        raise param_error("advertiser_ids: Shorter than minimum length 1.")
    if len(ids) > MAX_INFO_IDS:
        raise param_error(f"advertiser_ids: Longer than maximum length {MAX_INFO_IDS}.")
    wanted: tuple[str, ...] | None = None
    if "fields" in params:
        wanted = tuple(_string_list(params, "fields"))
        unknown = [f for f in wanted if f not in ADVERTISER_INFO_FIELDS]
        if unknown:
            raise param_error(f"fields: Invalid fields: {unknown!r}.")
        # Asked for, company_name_editable comes alone (docs/tiktok_api_beyond.md §7.2).
        if "company_name_editable" in wanted:
            wanted = ("advertiser_id", "company_name_editable")
    items = []
    for advertiser_id in ids:
        if not world.has_advertiser(advertiser_id):
            continue  # the caller authorises first; unknown ids never get here
        info = advertiser_info(world, advertiser_id, statuses.get(advertiser_id))
        info["company_name_editable"] = False
        if wanted is None:
            del info["company_name_editable"]
            items.append(info)
        else:
            items.append({f: info.get(f) for f in wanted})
    return ids, items


# --------------------------------------------------------------------------- objects over time
CHANGE_KINDS = ("budget_raised", "paused", "renamed", "deleted")


@dataclass(frozen=True)
class Change:
    """One scheduled change of an object: from ``day`` on (UTC), the object looks changed."""

    level: str
    object_id: str
    kind: str
    day: date


@dataclass(frozen=True)
class Node:
    """An object of the entity lists: the world entity, its origin and its parents."""

    level: str
    entity: Entity
    origin: str
    campaign: Node | None = None
    adgroup: Node | None = None

    @property
    def id(self) -> str:
        return self.entity.id


@dataclass
class _AccountObjects:
    campaigns: list[Node] = field(default_factory=list)
    adgroups: list[Node] = field(default_factory=list)
    ads: list[Node] = field(default_factory=list)
    smart_plus_ads: list[Node] = field(default_factory=list)

    def level(self, level: str) -> list[Node]:
        return {
            CAMPAIGN: self.campaigns,
            ADGROUP: self.adgroups,
            AD: self.ads,
            SMART_PLUS_AD: self.smart_plus_ads,
        }[level]


def _is_promote(entity: Entity) -> bool:
    return entity.attributes.get("campaign_system_origin") == PROMOTE


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class EntityBook:
    """What the entity endpoints serve for a world, on any day."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._objects: dict[str, _AccountObjects] = {}
        self._lock = threading.Lock()
        self._span = (world.end - world.start).days + 1

    # ------------------------------------------------------------------ structure
    def _account(self, advertiser_id: str) -> _AccountObjects:
        objects = self._objects.get(advertiser_id)
        if objects is None:
            with self._lock:
                objects = self._objects.get(advertiser_id)
                if objects is None:
                    objects = self._build(advertiser_id)
                    self._objects[advertiser_id] = objects
        return objects

    def _build(self, advertiser_id: str) -> _AccountObjects:
        account = self.world.account(advertiser_id)
        out = _AccountObjects()
        campaigns: dict[str, Node] = {}
        adgroups: dict[str, Node] = {}
        for entity in account.campaigns:
            node = Node(CAMPAIGN, entity, PROMOTE if _is_promote(entity) else REGULAR)
            campaigns[entity.id] = node
            out.campaigns.append(node)
        for entity in account.adgroups:
            parent = campaigns[entity.campaign_id or ""]
            node = Node(ADGROUP, entity, parent.origin, campaign=parent)
            adgroups[entity.id] = node
            out.adgroups.append(node)
        for entity in account.ads:
            parent = adgroups[entity.adgroup_id or ""]
            out.ads.append(Node(AD, entity, parent.origin, parent.campaign, parent))
        for entity in account.smart_plus_ads:
            parent = adgroups[entity.adgroup_id or ""]
            out.smart_plus_ads.append(
                Node(SMART_PLUS_AD, entity, parent.origin, parent.campaign, parent)
            )
        if not any(n.origin == PROMOTE for n in out.campaigns):
            self._add_promote(advertiser_id, account.advertiser.key, out)
        return out

    def _add_promote(self, advertiser_id: str, adv_key: int, out: _AccountObjects) -> None:
        """One Promote campaign with one ad group and one ad (until the world has its own)."""
        index = self.world.advertiser_ids.index(advertiser_id)
        key = hash_of(adv_key, 9, 1)
        base = {"campaign_system_origin": PROMOTE, "advertiser_id": advertiser_id}
        campaign = Entity(
            CAMPAIGN, str(9_200_000_000_000_000 + index * 10_000 + key % 10_000),
            f"Promote: boost #{index + 1}", key, False, False, dict(base),
        )  # fmt: skip
        campaign.campaign_id = campaign.id
        gkey = hash_of(key, 3, 0)
        adgroup = Entity(
            ADGROUP, str(175_000_000_000_000_000 + index * 1_000 + gkey % 1_000),
            f"Promote: boost #{index + 1} ad group", gkey, False, False,
            {**base, "budget": "30.00"}, campaign_id=campaign.id,
        )  # fmt: skip
        adgroup.adgroup_id = adgroup.id
        akey = hash_of(gkey, 4, 0)
        ad = Entity(
            AD, str(1_850_000_000_000_000_000 + index * 1_000 + akey % 1_000),
            f"Promote: boost #{index + 1} video", akey, False, False, dict(base),
            campaign_id=campaign.id, adgroup_id=adgroup.id,
        )  # fmt: skip
        c = Node(CAMPAIGN, campaign, PROMOTE)
        g = Node(ADGROUP, adgroup, PROMOTE, campaign=c)
        out.campaigns.append(c)
        out.adgroups.append(g)
        out.ads.append(Node(AD, ad, PROMOTE, c, g))

    # ------------------------------------------------------------------ time
    def created(self, node: Node) -> datetime:
        """Creation: up to 400 days before the world's first delivery day (UTC)."""
        key = node.entity.key
        start = datetime(self.world.start.year, self.world.start.month, self.world.start.day)
        return start - timedelta(days=1 + (key >> 5) % 400, seconds=(key >> 17) % 86_400)

    def change(self, node: Node) -> Change | None:
        """The object's one scheduled change, if it has one (Promote objects never change)."""
        key = node.entity.key
        if node.origin == PROMOTE or node.entity.own_deleted:
            return None
        kind_index = (key >> 40) % 6
        if kind_index >= len(CHANGE_KINDS):
            return None
        kind = CHANGE_KINDS[kind_index]
        if kind == "budget_raised" and node.level in (AD, SMART_PLUS_AD):
            kind = "renamed"
        day = self.world.start + timedelta(days=(key >> 28) % self._span)
        return Change(node.level, node.id, kind, day)

    def changes(self, advertiser_id: str) -> list[Change]:
        """Every scheduled change of the account, by day then id (the tests' ground truth)."""
        objects = self._account(advertiser_id)
        found = [
            c
            for level in (CAMPAIGN, ADGROUP, AD, SMART_PLUS_AD)
            for n in objects.level(level)
            if (c := self.change(n)) is not None
        ]
        return sorted(found, key=lambda c: (c.day, c.level, c.object_id))

    def _state(self, node: Node, as_of: date) -> dict[str, Any]:
        """Name, operation status, own deletion, budget factor and modify time on ``as_of``."""
        entity = node.entity
        change = self.change(node)
        applied = change is not None and change.day <= as_of
        kind = change.kind if change is not None and applied else None
        modified = self.created(node) + timedelta(seconds=600 + entity.key % 3_600)
        if applied and change is not None:
            modified = datetime(change.day.year, change.day.month, change.day.day) + timedelta(
                seconds=36_000 + entity.key % 3_600
            )
        return {
            "name": entity.name + (" (edited)" if kind == "renamed" else ""),
            "paused": kind == "paused" or (entity.key >> 2) % 7 == 0,
            "deleted": entity.own_deleted or kind == "deleted",
            "budget_factor": 2 if kind == "budget_raised" else 1,
            "modified": modified,
        }

    # ------------------------------------------------------------------ serving
    def objects(self, advertiser_id: str, level: str, as_of: date) -> list[dict[str, Any]]:
        """Every object of the level on ``as_of`` (deleted and Promote ones included), with
        its full field set and two private keys: ``_origin`` and ``_deleted``."""
        nodes = self._account(advertiser_id).level(level)
        states: dict[str, dict[str, Any]] = {}

        def state(node: Node) -> dict[str, Any]:
            if node.id not in states:
                states[node.id] = self._state(node, as_of)
            return states[node.id]

        out = []
        for node in nodes:
            if self.created(node).date() > as_of:
                continue
            out.append(self._render(advertiser_id, node, state))
        return out

    def _render(self, advertiser_id: str, node: Node, state) -> dict[str, Any]:
        own = state(node)
        chain = [n for n in (node.campaign, node.adgroup) if n is not None]
        parent_deleted = [n.level for n in chain if state(n)["deleted"]]
        deleted = own["deleted"] or bool(parent_deleted)
        prefix = _STATUS_PREFIX[node.level]
        if own["deleted"]:
            secondary = f"{prefix}_STATUS_DELETE"
        elif parent_deleted:
            secondary = (
                f"{prefix}_STATUS_{'CAMPAIGN' if CAMPAIGN in parent_deleted else 'ADGROUP'}_DELETE"
            )
        elif own["paused"]:
            secondary = f"{prefix}_STATUS_DISABLE"
        else:
            secondary = (
                f"{prefix}_STATUS_ENABLE"
                if node.level == CAMPAIGN
                else f"{prefix}_STATUS_DELIVERY_OK"
            )
        entity, key = node.entity, node.entity.key
        row: dict[str, Any] = {
            "advertiser_id": advertiser_id,
            "campaign_id": entity.campaign_id,
            "campaign_name": state(node.campaign)["name"] if node.campaign else own["name"],
            "operation_status": "DISABLE" if own["paused"] or own["deleted"] else "ENABLE",
            "secondary_status": secondary,
            "create_time": _fmt(self.created(node)),
            "modify_time": _fmt(own["modified"]),
        }
        if node.level == SMART_PLUS_AD:
            return self._smart_plus_fields(node, row, own, deleted)
        if node.level in (ADGROUP, AD):
            row["adgroup_id"] = entity.adgroup_id
            row["adgroup_name"] = state(node.adgroup)["name"] if node.adgroup else own["name"]
        if node.level == AD:
            row["ad_id"] = entity.id
            row["ad_name"] = own["name"]
        row["_origin"], row["_deleted"] = node.origin, deleted
        if node.origin == PROMOTE:
            return self._promote_fields(node, row)
        attrs = entity.attributes
        if node.level == CAMPAIGN:
            budget = attrs.get("campaign_budget", "-")
            row.update(
                objective_type=attrs.get("objective_type"),
                campaign_type="REGULAR_CAMPAIGN",
                budget_mode="BUDGET_MODE_INFINITE" if budget == "-" else "BUDGET_MODE_DAY",
                budget=0.0 if budget == "-" else float(budget) * own["budget_factor"],
                app_promotion_type=attrs.get("app_promotion_type"),
                is_smart_performance_campaign=False,
                deep_bid_type=None,
                roas_bid=0.0,
                optimization_goal=None,
                rf_campaign_type="STANDARD",
                special_industries=[],
                is_new_structure=True,
            )
            if budget != "-" and key % 5 == 0:
                row["budget_optimize_on"] = True
        elif node.level == ADGROUP:
            row.update(
                budget_mode="BUDGET_MODE_DAY",
                budget=float(attrs.get("budget", "20.00")) * own["budget_factor"],
                bid_type="BID_TYPE_NO_BID",
                bid_price=0.0,
                conversion_bid_price=0.0,
                deep_cpa_bid=0.0,
                optimization_goal=attrs.get("opt_status"),
                optimization_event="SHOPPING" if key % 2 else None,
                billing_event=attrs.get("billing_event"),
                pacing="PACING_MODE_SMOOTH",
                placement_type=attrs.get("placement_type"),
                placements=["PLACEMENT_TIKTOK"]
                if attrs.get("placement_type") == "PLACEMENT_TYPE_NORMAL"
                else ["PLACEMENT_TIKTOK", "PLACEMENT_PANGLE"],
                schedule_type="SCHEDULE_FROM_NOW",
                schedule_start_time=_fmt(self.created(node) + timedelta(hours=1)),
                schedule_end_time=None,
                promotion_type=attrs.get("promotion_type"),
                pixel_id=str(6_900_000_000_000_000_000 + key % 1_000) if key % 2 else None,
                app_id=None,
                click_attribution_window=(
                    "ONE_DAY",
                    "SEVEN_DAYS",
                    "FOURTEEN_DAYS",
                    "TWENTY_EIGHT_DAYS",
                )[key % 4],
                view_attribution_window=("OFF", "ONE_DAY", "SEVEN_DAYS")[(key >> 3) % 3],
                engaged_view_attribution_window=("ONE_DAY", "SEVEN_DAYS")[(key >> 5) % 2],
                attribution_event_count=("UNSET", "EVERY", "ONCE")[(key >> 7) % 3],
                location_ids=["6252001"],
                age_groups=["AGE_18_24", "AGE_25_34"],
                gender="GENDER_UNLIMITED",
            )
        else:
            row.update(
                ad_format="SINGLE_VIDEO",
                ad_text=attrs.get("ad_text"),
                call_to_action=attrs.get("call_to_action"),
                landing_page_url=attrs.get("ad_url"),
                display_name=attrs.get("advertiser_name"),
                video_id=f"v10044g50000{key % 10**12:012d}",
                image_ids=[f"ad-site-i18n-sg/{key % 10**9:09d}"],
                identity_type="CUSTOMIZED_USER",
                identity_id=str(7_000_000_000_000_000_000 + key % 10**6),
                tracking_pixel_id=None,
                optimization_event=None,
                is_aco=False,
                creative_type=None,
            )
            # Some Smart+ ads come without modify_time (docs/tiktok_api_reference.md §5.2).
            if key % 11 == 0:
                del row["modify_time"]
        return row

    @staticmethod
    def _smart_plus_fields(
        node: Node, row: dict[str, Any], own: dict[str, Any], deleted: bool
    ) -> dict[str, Any]:
        """An Upgraded Smart+ ad as ``/smart_plus/ad/get/`` lists it: its own id
        (``smart_plus_ad_id``, the ``ad_id_v2`` of the reports), no campaign or ad group name,
        and its creatives, texts, calls to action and landing pages as lists."""
        entity, attrs = node.entity, node.entity.attributes
        del row["campaign_name"]
        creatives = [
            {
                "creative_info": {
                    "ad_material_name": creative.name,
                    "identity_type": "CUSTOMIZED_USER",
                    "identity_id": str(7_000_000_000_000_000_000 + creative.key % 10**6),
                    "video_info": {"video_id": f"v10044g50000{creative.key % 10**12:012d}"},
                },
                "material_operation_status": "ENABLE",
            }
            for creative in entity.ads
        ]
        row.update(
            adgroup_id=entity.adgroup_id,
            smart_plus_ad_id=entity.id,
            ad_name=own["name"],
            creative_list=creatives,
            ad_text_list=[{"ad_text": attrs.get("ad_text")}],
            call_to_action_list=[{"call_to_action": attrs.get("call_to_action")}],
            landing_page_url_list=[{"landing_page_url": attrs.get("ad_url")}],
            ad_configuration={"dark_post_status": "ON"},
            _origin=node.origin,
            _deleted=deleted,
        )
        return row

    @staticmethod
    def _promote_fields(node: Node, row: dict[str, Any]) -> dict[str, Any]:
        """The reduced field sets of Promote objects (docs/tiktok_api_beyond.md §1.2)."""
        keep = ["advertiser_id", "campaign_id", "create_time", "campaign_name"]
        keep += ["operation_status", "secondary_status", "_origin", "_deleted"]
        if node.level in (ADGROUP, AD):
            keep += ["adgroup_id", "adgroup_name"]
        out = {k: row[k] for k in keep if k in row}
        if node.level in (CAMPAIGN, ADGROUP):
            out["campaign_system_origin"] = PROMOTE
        if node.level == ADGROUP:
            out.update(
                budget=float(node.entity.attributes.get("budget", "30.00")),
                schedule_type="SCHEDULE_START_END",
                schedule_start_time=row["create_time"],
                schedule_end_time=_fmt(
                    datetime.strptime(row["create_time"], "%Y-%m-%d %H:%M:%S") + timedelta(days=7)
                ),
            )
        if node.level == AD:
            out.update(ad_id=node.id, ad_name=node.entity.name)
        return out


# --------------------------------------------------------------------------- requests
LEVEL_OF_PATH = {
    "campaign/get/": CAMPAIGN,
    "adgroup/get/": ADGROUP,
    "ad/get/": AD,
    "smart_plus/ad/get/": SMART_PLUS_AD,
}
ID_FIELD = {
    CAMPAIGN: "campaign_id",
    ADGROUP: "adgroup_id",
    AD: "ad_id",
    SMART_PLUS_AD: "smart_plus_ad_id",
}
_STATUS_PREFIX = {CAMPAIGN: "CAMPAIGN", ADGROUP: "ADGROUP", AD: "AD", SMART_PLUS_AD: "AD"}
ID_FILTERS = {
    CAMPAIGN: ("campaign_ids",),
    ADGROUP: ("campaign_ids", "adgroup_ids"),
    AD: ("campaign_ids", "adgroup_ids", "ad_ids"),
    # the SDK's FilteringSmartPlusAdGet: no ad_ids, no name, no campaign_system_origins
    SMART_PLUS_AD: ("campaign_ids", "adgroup_ids", "smart_plus_ad_ids"),
}
NAME_FILTER = {CAMPAIGN: "campaign_name", ADGROUP: "adgroup_name", AD: "ad_name"}
OTHER_FILTERS = {
    CAMPAIGN: {"objective_type", "campaign_type", "is_smart_performance_campaign", "buying_types",
               "sales_destination", "campaign_automation_type", "optimization_goal"},
    ADGROUP: {"objective_type", "promotion_type", "bid_strategy", "billing_events",
              "creative_material_mode", "optimization_goal", "buying_types"},
    AD: {"objective_type", "destination", "creative_material_mode", "optimization_goal",
         "buying_types"},
    SMART_PLUS_AD: {"objective_type", "optimization_goal"},
}  # fmt: skip
PRIMARY_STATUSES = (
    "STATUS_ALL",
    "STATUS_NOT_DELETE",
    "STATUS_DELETE",
    "STATUS_DELIVERY_OK",
    "STATUS_DISABLE",
    "STATUS_NOT_DELIVERY",
    "STATUS_TIME_DONE",
    "STATUS_RF_CLOSED",
    "STATUS_FROZEN",
    "STATUS_DELIVERY_PARTIAL",
)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def _string_list(params: Mapping[str, str], name: str) -> list[str]:
    try:
        value = orjson.loads(params[name])
    except orjson.JSONDecodeError:
        raise param_error(f"{name}: Not a valid JSON string.") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise param_error(f"{name}: Not a valid list of strings.")
    return value


def _int(params: Mapping[str, str], name: str, default: int, lo: int, hi: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw):
        raise param_error(f"{name}: Not a valid integer.")
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        bound = f" and less than or equal to {hi}" if hi is not None else ""
        raise param_error(f"{name}: Must be greater than or equal to {lo}{bound}.")
    return value


def _time(filtering: Mapping[str, Any], name: str) -> datetime | None:
    raw = filtering.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str) or not _TIME.fullmatch(raw):
        raise param_error(f"filtering.{name}: Not a valid datetime, format YYYY-MM-DD HH:MM:SS.")
    return datetime.strptime(raw, "%Y-%m-%d %H:%M:%S")


@dataclass
class EntityQuery:
    advertiser_id: str
    level: str
    fields: tuple[str, ...] | None
    page: int
    page_size: int
    origins: tuple[str, ...]
    primary_status: str
    secondary_status: str | None
    ids: dict[str, set[str]]
    name: str | None
    created_from: datetime | None
    created_to: datetime | None
    modified_after: datetime | None


def parse_entity_query(level: str, params: Mapping[str, str]) -> EntityQuery:
    """Validate an entity list request the way TikTok does (40002 naming the parameter)."""
    advertiser_id = params.get("advertiser_id")
    if not advertiser_id:
        raise param_error("advertiser_id: Missing data for required field.")
    if not advertiser_id.isdigit():
        raise param_error("advertiser_id: Not a valid integer.")
    fields = tuple(_string_list(params, "fields")) if "fields" in params else None
    if fields is not None:
        unknown = [f for f in fields if f not in ENTITY_FIELDS[level]]
        if unknown:
            raise param_error(f"fields: Invalid fields: {unknown!r}.")
    if "exclude_field_types_in_response" in params:
        excluded = _string_list(params, "exclude_field_types_in_response")
        if any(v != "NULL_FIELD" for v in excluded):
            raise param_error("exclude_field_types_in_response: Must be one of: NULL_FIELD.")
    page = _int(params, "page", 1, 1, None)
    largest = MAX_SMART_PLUS_PAGE_SIZE if level == SMART_PLUS_AD else MAX_PAGE_SIZE
    page_size = _int(params, "page_size", 10, 1, largest)
    filtering: dict[str, Any] = {}
    if "filtering" in params:
        try:
            filtering = orjson.loads(params["filtering"])
        except orjson.JSONDecodeError:
            raise param_error("filtering: Not a valid JSON string.") from None
        if not isinstance(filtering, dict):  # an object here, unlike the report's list
            raise param_error("filtering: Not a valid mapping type.")
    allowed = {
        *ID_FILTERS[level], "primary_status", "secondary_status", "creation_filter_start_time",
        "creation_filter_end_time", *OTHER_FILTERS[level],
        *(("modified_after",) if level in (AD, SMART_PLUS_AD) else ()),
        *((NAME_FILTER[level], "campaign_system_origins") if level in NAME_FILTER else ()),
    }  # fmt: skip
    unknown = sorted(set(filtering) - allowed)
    if unknown:
        raise param_error(f"filtering: Unknown field(s): {unknown!r}.")
    origins = filtering.get("campaign_system_origins", [REGULAR])
    if not isinstance(origins, list) or not origins or any(o not in ORIGINS for o in origins):
        raise param_error(
            f"filtering.campaign_system_origins: Must be a list of: {', '.join(ORIGINS)}."
        )
    # Undocumented (docs/tiktok_api_beyond.md §1.1): the simulator takes the strict side.
    if len(set(origins)) > 1:
        raise param_error("filtering.campaign_system_origins: Only one origin may be given.")
    primary = filtering.get("primary_status", "STATUS_NOT_DELETE")
    if primary not in PRIMARY_STATUSES or (primary == "STATUS_TIME_DONE" and level == CAMPAIGN):
        raise param_error("filtering.primary_status: Invalid enum value.")
    prefix = _STATUS_PREFIX[level]
    secondary = filtering.get("secondary_status")
    if secondary is not None and (
        not isinstance(secondary, str) or not secondary.startswith(prefix + "_STATUS_")
    ):
        raise param_error("filtering.secondary_status: Invalid enum value.")
    ids: dict[str, set[str]] = {}
    for name in ID_FILTERS[level]:
        if name in filtering:
            values = filtering[name]
            if not isinstance(values, list) or not all(
                isinstance(v, str) and v.isdigit() for v in values
            ):
                raise param_error(f"filtering.{name}: Not a valid list of id strings.")
            if len(values) > MAX_FILTER_IDS:
                raise param_error(f"filtering.{name}: Longer than maximum length {MAX_FILTER_IDS}.")
            ids[name] = set(values)
    name_filter = filtering.get(NAME_FILTER.get(level, ""))
    return EntityQuery(
        advertiser_id=advertiser_id,
        level=level,
        fields=fields,
        page=page,
        page_size=page_size,
        origins=tuple(origins),
        primary_status=primary,
        secondary_status=secondary,
        ids=ids,
        name=name_filter if isinstance(name_filter, str) else None,
        created_from=_time(filtering, "creation_filter_start_time"),
        created_to=_time(filtering, "creation_filter_end_time"),
        modified_after=_time(filtering, "modified_after"),
    )


def _status_matches(query: EntityQuery, row: Mapping[str, Any]) -> bool:
    deleted = row["_deleted"]
    if query.secondary_status is not None:
        wanted = query.secondary_status.split("_STATUS_", 1)[1]
        if wanted == "ALL":
            return True
        if wanted == "NOT_DELETE":
            return not deleted
        return row["secondary_status"] == query.secondary_status
    primary = query.primary_status
    if primary == "STATUS_ALL":
        return True
    if primary == "STATUS_NOT_DELETE":
        return not deleted
    if primary == "STATUS_DELETE":
        return deleted
    if primary == "STATUS_DISABLE":
        return not deleted and row["operation_status"] == "DISABLE"
    if primary == "STATUS_DELIVERY_OK":
        return not deleted and row["operation_status"] == "ENABLE"
    return False


def _parse_time(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S") if value else None


def select(book: EntityBook, query: EntityQuery, as_of: date) -> list[dict[str, Any]]:
    """The objects a query selects, sorted by id descending, with the public fields only."""
    rows = []
    for row in book.objects(query.advertiser_id, query.level, as_of):
        if row["_origin"] not in query.origins or not _status_matches(query, row):
            continue
        if any(row.get(name[:-1]) not in values for name, values in query.ids.items()):
            continue
        if query.name is not None and query.name not in row.get(NAME_FILTER[query.level], ""):
            continue
        created = _parse_time(row["create_time"])
        if query.created_from and created and created < query.created_from:
            continue
        if query.created_to and created and created > query.created_to:
            continue
        if query.modified_after is not None:
            modified = _parse_time(row.get("modify_time"))
            if modified is None or modified < query.modified_after:
                continue
        rows.append(row)
    rows.sort(key=lambda r: int(r[ID_FIELD[query.level]]), reverse=True)
    public = []
    for row in rows:
        item = {k: v for k, v in row.items() if not k.startswith("_")}
        if query.fields is not None:
            item = {k: item[k] for k in query.fields if k in item}
        public.append(item)
    return public


def page_of(rows: list[dict[str, Any]], query: EntityQuery) -> dict[str, Any]:
    total = len(rows)
    first = (query.page - 1) * query.page_size
    return {
        "list": rows[first : first + query.page_size],
        "page_info": {
            "page": query.page,
            "page_size": query.page_size,
            "total_number": total,
            "total_page": -(-total // query.page_size),
        },
    }


_COMMON = ("advertiser_id", "campaign_id", "campaign_name", "operation_status",
           "secondary_status", "create_time", "modify_time", "campaign_system_origin")  # fmt: skip
ENTITY_FIELDS: dict[str, frozenset[str]] = {
    CAMPAIGN: frozenset(
        {*_COMMON, "objective_type", "campaign_type", "budget_mode", "budget",
         "app_promotion_type", "is_smart_performance_campaign", "deep_bid_type", "roas_bid",
         "optimization_goal", "rf_campaign_type", "special_industries", "is_new_structure",
         "budget_optimize_on"}
    ),
    ADGROUP: frozenset(
        {*_COMMON, "adgroup_id", "adgroup_name", "budget_mode", "budget", "bid_type",
         "bid_price", "conversion_bid_price", "deep_cpa_bid", "optimization_goal",
         "optimization_event", "billing_event", "pacing", "placement_type", "placements",
         "schedule_type", "schedule_start_time", "schedule_end_time", "promotion_type",
         "pixel_id", "app_id", "click_attribution_window", "view_attribution_window",
         "engaged_view_attribution_window", "attribution_event_count", "location_ids",
         "age_groups", "gender"}
    ),
    AD: frozenset(
        {*_COMMON, "adgroup_id", "adgroup_name", "ad_id", "ad_name", "ad_format", "ad_text",
         "call_to_action", "landing_page_url", "display_name", "video_id", "image_ids",
         "identity_type", "identity_id", "tracking_pixel_id", "optimization_event", "is_aco",
         "creative_type"}
    ),
    SMART_PLUS_AD: frozenset(
        {"advertiser_id", "campaign_id", "adgroup_id", "smart_plus_ad_id", "ad_name",
         "operation_status", "secondary_status", "create_time", "modify_time", "creative_list",
         "ad_text_list", "call_to_action_list", "landing_page_url_list", "ad_configuration"}
    ),
}  # fmt: skip
