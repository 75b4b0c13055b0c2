"""The entity readers as data: campaigns, ad groups and ads from TikTok's list endpoints.

One ``EntitySpec`` per level says where the objects come from, where they go and which
fields are typed columns; ``EntityReader`` pages every (advertiser, level, origin) to the
end and streams each page, as a typed Arrow table, to a sink. Nothing holds an account.

Upgraded Smart+ ads (docs/tiktok_api_gmv_smartplus.md §2) are listed by their own endpoint,
``/smart_plus/ad/get/``, before ``/ad/get/``: an ads history then holds each as an ad
(``ad_id`` = ``ad_id_v2`` = its ``smart_plus_ad_id``, ``campaign_automation_type``
``UPGRADED_SMART_PLUS``), and leaves out what ``/ad/get/`` lists for their ad groups, which
are their creatives (the creative report, ``ad_creative``, holds those with their ad). One
request per advertiser more, with or without Smart+ campaigns: none of the other listings
says whether an account has them.

Every object of an account is read: all statuses (``primary_status: STATUS_ALL``, so deleted
objects too) and both origins, regular and Promote. TikTok hides Promote objects unless
``campaign_system_origins`` asks for them, and no source says whether one request may ask for
both (docs/tiktok_api_beyond.md §1.1), so each origin is its own listing, merged on id.

Typing never breaks a run: a value of an unexpected type becomes NULL in its typed column,
and the whole object, unknown and new fields included, is kept as JSON in ``_raw``; its
SHA-256 (``_hash``) is what the history compares.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from controller.tiktok.client import TikTokApiError, TikTokClient, TikTokError

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
ORIGINS = ("TT_ADS_PLATFORM", "PROMOTE")
MAX_PAGES = 10_000  # 10 M objects per listing: a guard against a page_info that never ends

S, F, B, T = pa.string(), pa.float64(), pa.bool_(), pa.timestamp("us", tz="UTC")

_COMMON: tuple[tuple[str, pa.DataType], ...] = (
    ("advertiser_id", S),
    ("campaign_id", S),
    ("campaign_name", S),
    ("campaign_system_origin", S),
    ("operation_status", S),
    ("secondary_status", S),
    ("create_time", T),
    ("modify_time", T),
)
_CAMPAIGN = (
    ("objective_type", S),
    ("campaign_type", S),
    ("budget_mode", S),
    ("budget", F),
    ("budget_optimize_on", B),
    ("bid_type", S),
    ("deep_bid_type", S),
    ("roas_bid", F),
    ("optimization_goal", S),
    ("app_promotion_type", S),
    ("is_smart_performance_campaign", B),
)
_ADGROUP = (
    ("adgroup_id", S),
    ("adgroup_name", S),
    ("budget_mode", S),
    ("budget", F),
    ("bid_type", S),
    ("bid_strategy", S),
    ("bid_price", F),
    ("conversion_bid_price", F),
    ("deep_cpa_bid", F),
    ("optimization_goal", S),
    ("optimization_event", S),
    ("billing_event", S),
    ("pacing", S),
    ("placement_type", S),
    ("placements", S),
    ("schedule_type", S),
    ("schedule_start_time", T),
    ("schedule_end_time", T),
    ("promotion_type", S),
    ("pixel_id", S),
    ("app_id", S),
    ("click_attribution_window", S),
    ("view_attribution_window", S),
    ("engaged_view_attribution_window", S),
    ("attribution_event_count", S),
)
_AD = (
    ("adgroup_id", S),
    ("adgroup_name", S),
    ("ad_id", S),
    ("ad_name", S),
    ("ad_format", S),
    ("ad_text", S),
    ("call_to_action", S),
    ("landing_page_url", S),
    ("display_name", S),
    ("identity_type", S),
    ("identity_id", S),
    ("video_id", S),
    ("image_ids", S),
    ("tracking_pixel_id", S),
    ("optimization_event", S),
    ("is_aco", B),
    # set on Upgraded Smart+ ads (their smart_plus_ad_id); null on classic ads, whose
    # /ad/get/ object carries neither
    ("ad_id_v2", S),
    ("campaign_automation_type", S),
)
SMART_PLUS_ADS = "UPGRADED_SMART_PLUS"
SMART_PLUS_PAGE_SIZE = 100
NO_PERMISSION = 40001  # docs/tiktok_api_reference.md §4
SMART_PLUS_UNREADABLE = (
    "TikTok refused to list Upgraded Smart+ ads ({detail}): the app lacks that permission, "
    "so the creatives of such campaigns are listed as ads, as before Upgraded Smart+"
)
META: tuple[tuple[str, pa.DataType], ...] = (
    ("_raw", S),
    ("_hash", S),
    ("_advertiser_id", S),
    ("_extracted_at", T),
    ("_report_type", S),
)


@dataclass(frozen=True)
class EntitySpec:
    """One entity level: endpoint, history table, id field and typed columns."""

    report_type: str
    path: str
    table: str
    id_field: str
    fields: tuple[tuple[str, pa.DataType], ...]
    # the Upgraded Smart+ objects of this level, listed first (their ad groups' objects on
    # ``path`` are their creatives, left out)
    smart_plus_path: str | None = None

    @property
    def schema(self) -> pa.Schema:
        """The rows as read (the history table adds valid_from, valid_to, is_current)."""
        return pa.schema([pa.field(n, t) for n, t in (*self.fields, *META)])

    @property
    def view(self) -> str:
        return self.table.removesuffix("_HISTORY") + "_CURRENT"


ENTITIES: dict[str, EntitySpec] = {
    spec.report_type: spec
    for spec in (
        EntitySpec(
            "campaigns",
            "campaign/get/",
            "TKT011_TIKTOK_ADS_CAMPAIGN_HISTORY",
            "campaign_id",
            (*_COMMON, *_CAMPAIGN),
        ),
        EntitySpec(
            "adgroups",
            "adgroup/get/",
            "TKT012_TIKTOK_ADS_ADGROUP_HISTORY",
            "adgroup_id",
            (*_COMMON, *_ADGROUP),
        ),
        EntitySpec(
            "ads",
            "ad/get/",
            "TKT013_TIKTOK_ADS_AD_HISTORY",
            "ad_id",
            (*_COMMON, *_AD),
            smart_plus_path="smart_plus/ad/get/",
        ),
    )
}


# --------------------------------------------------------------------------- typing
def _string(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()  # lists (placements, image_ids) and objects: JSON


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return None if value is None or value == "" or value == "-" else float(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _time(value: Any) -> datetime | None:
    """TikTok's ``YYYY-MM-DD HH:MM:SS`` (UTC, per the docs' filters) as a UTC timestamp."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


_CONVERT: dict[pa.DataType, Callable[[Any], Any]] = {S: _string, F: _float, B: _bool, T: _time}


def typed_rows(
    spec: EntitySpec,
    objects: Iterable[Any],
    advertiser_id: str,
    origin: str,
    extracted_at: datetime,
) -> pa.Table:
    """A page of objects as the spec's Arrow table (never raises on a field's value)."""
    columns: dict[str, list[Any]] = {name: [] for name in spec.schema.names}
    for item in objects:
        if not isinstance(item, dict):
            continue
        obj = dict(item)
        # Only Promote campaigns and ad groups carry the marker; the listing knows it for all.
        obj.setdefault("campaign_system_origin", origin)
        raw = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        for name, kind in spec.fields:
            columns[name].append(_CONVERT[kind](obj.get(name)))
        columns["_raw"].append(raw.decode())
        columns["_hash"].append(hashlib.sha256(raw).hexdigest())
        columns["_advertiser_id"].append(advertiser_id)
        columns["_extracted_at"].append(extracted_at)
        columns["_report_type"].append(spec.report_type)
    return pa.table(columns, schema=spec.schema)


# A Smart+ ad's lists whose one value fills the ad's column (several: null, the list in _raw).
_SINGLE_VALUES = {
    "ad_text": ("ad_text_list", "ad_text"),
    "call_to_action": ("call_to_action_list", "call_to_action"),
    "landing_page_url": ("landing_page_url_list", "landing_page_url"),
}


def _single(items: Any, key: str) -> Any:
    values = {i.get(key) for i in items if isinstance(i, dict)} if isinstance(items, list) else ()
    return next(iter(values)) if len(values) == 1 else None


def as_ad(smart_plus_ad: Any) -> Any:
    """An Upgraded Smart+ ad of ``/smart_plus/ad/get/`` as a row of the ads history: keyed
    by its ``smart_plus_ad_id`` (the reports' ``ad_id_v2``), which is also its ``ad_id``;
    a text, call to action or landing page it has one of fills the classic ad's column."""
    if not isinstance(smart_plus_ad, dict):
        return smart_plus_ad
    ad_id = smart_plus_ad.get("smart_plus_ad_id")
    single = {
        column: _single(smart_plus_ad.get(name), key)
        for column, (name, key) in _SINGLE_VALUES.items()
    }
    return {
        **{k: v for k, v in single.items() if v is not None},
        **smart_plus_ad,
        "ad_id": ad_id,
        "ad_id_v2": ad_id,
        "campaign_automation_type": SMART_PLUS_ADS,
    }


# --------------------------------------------------------------------------- reading
@dataclass
class EntityResult:
    advertiser_id: str
    report_type: str
    rows: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class EntityReader:
    """Lists every object of the given advertisers and levels; pages go to ``sink``."""

    def __init__(
        self,
        client: TikTokClient,
        *,
        extracted_at: datetime,
        workers: int,
        deadline: float | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = client
        self.extracted_at = extracted_at
        self.workers = max(1, workers)
        self.deadline = deadline
        self.page_size = page_size
        self._lock = threading.Lock()

    def run(
        self,
        advertiser_ids: list[str],
        specs: list[EntitySpec],
        sink: Callable[[EntitySpec, str, pa.Table], None],
    ) -> list[EntityResult]:
        results = {
            (adv, spec.report_type): EntityResult(adv, spec.report_type)
            for spec in specs
            for adv in advertiser_ids
        }
        # (advertiser, level) -> the Upgraded Smart+ ad groups, whose objects on the level's
        # own endpoint are creatives; listed first, so those listings can leave them out
        smart_plus: dict[tuple[str, str], set[str]] = {}
        first = [(adv, spec) for spec in specs if spec.smart_plus_path for adv in advertiser_ids]
        tasks = [
            (adv, spec, origin) for spec in specs for adv in advertiser_ids for origin in ORIGINS
        ]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="tiktok-entities") as pool:
            for _ in pool.map(
                lambda t: self._smart_plus(
                    t[0], t[1], results[(t[0], t[1].report_type)], smart_plus, sink
                ),
                first,
            ):
                pass
            for _ in pool.map(
                lambda t: self._list(
                    t[0],
                    t[1],
                    t[2],
                    results[(t[0], t[1].report_type)],
                    sink,
                    smart_plus.get((t[0], t[1].report_type), set()),
                ),
                [t for t in tasks if results[(t[0], t[1].report_type)].ok],
            ):
                pass
        return list(results.values())

    def _pages(
        self, path: str, advertiser_id: str, filtering: dict[str, Any], page_size: int
    ) -> Iterator[list[Any]]:
        """Every page of one listing, to the last (``page_info.total_page``)."""
        page_number, total_page = 1, 1
        while page_number <= min(total_page, MAX_PAGES):
            page = self.client.get(
                path,
                {
                    "advertiser_id": advertiser_id,
                    "filtering": filtering,
                    "page": page_number,
                    "page_size": page_size,
                },
                advertiser_id=advertiser_id,
                deadline=self.deadline,
            )
            yield page.rows
            total_page = page.total_page
            page_number += 1

    def _read(
        self,
        what: str,
        pages: Iterable[list[Any]],
        spec: EntitySpec,
        advertiser_id: str,
        origin: str,
        result: EntityResult,
        sink: Callable[[EntitySpec, str, pa.Table], None],
        refused: Callable[[TikTokApiError], bool] = lambda _: False,
    ) -> None:
        """Type each page and hand it to ``sink``; a failure becomes the item's error, but
        one ``refused`` says may be lived with, a warning."""
        try:
            for rows in pages:
                table = typed_rows(spec, rows, advertiser_id, origin, self.extracted_at)
                sink(spec, advertiser_id, table)
                with self._lock:
                    result.requests += 1
                    result.rows += table.num_rows
        except TikTokApiError as exc:
            with self._lock:
                if refused(exc):
                    result.warnings.append(SMART_PLUS_UNREADABLE.format(detail=exc.detail))
                else:
                    result.errors.append(f"{what}: {exc.detail}")
        except TikTokError as exc:
            with self._lock:
                result.errors.append(f"{what}: {exc.detail}")
        except Exception as exc:  # a bug must fail this item, not the whole run
            log.exception("entity listing failed")
            with self._lock:
                result.errors.append(f"{what}: {type(exc).__name__}: {exc}")

    def _smart_plus(
        self,
        advertiser_id: str,
        spec: EntitySpec,
        result: EntityResult,
        found: dict[tuple[str, str], set[str]],
        sink: Callable[[EntitySpec, str, pa.Table], None],
    ) -> None:
        """The level's Upgraded Smart+ objects (every status) as its rows; their ad groups
        go to ``found``. They are never Promote objects: the endpoint has no origin filter."""
        assert spec.smart_plus_path is not None
        adgroups: set[str] = set()
        listing = self._pages(
            spec.smart_plus_path,
            advertiser_id,
            {"primary_status": "STATUS_ALL"},
            SMART_PLUS_PAGE_SIZE,
        )

        def ads() -> Iterator[list[Any]]:
            for rows in listing:
                objects = [as_ad(o) for o in rows]
                adgroups.update(
                    str(o["adgroup_id"])
                    for o in objects
                    if isinstance(o, dict) and o.get("adgroup_id")
                )
                yield objects

        self._read(
            "Upgraded Smart+ ads",
            ads(),
            spec,
            advertiser_id,
            ORIGINS[0],
            result,
            sink,
            refused=lambda exc: exc.code == NO_PERMISSION and not adgroups,
        )
        with self._lock:
            found[(advertiser_id, spec.report_type)] = adgroups

    def _list(
        self,
        advertiser_id: str,
        spec: EntitySpec,
        origin: str,
        result: EntityResult,
        sink: Callable[[EntitySpec, str, pa.Table], None],
        skip_adgroups: set[str],
    ) -> None:
        filtering = {"primary_status": "STATUS_ALL", "campaign_system_origins": [origin]}
        listing = self._pages(spec.path, advertiser_id, filtering, self.page_size)
        if skip_adgroups:  # the creatives of Upgraded Smart+ ads: not ads of their own
            listing = (
                [
                    o
                    for o in rows
                    if not (isinstance(o, dict) and str(o.get("adgroup_id")) in skip_adgroups)
                ]
                for rows in listing
            )
        self._read(f"{origin} objects", listing, spec, advertiser_id, origin, result, sink)
