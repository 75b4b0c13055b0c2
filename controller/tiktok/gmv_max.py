"""The TikTok Shop stores an advertiser can read GMV Max reports of (docs/tiktok_api_gmv_smartplus.md §1.1).

``/gmv_max/report/get/`` takes exactly one store per request, from
``/gmv_max/store/list/`` (one unpaged answer, the app's general rate tier). Stores with
``is_gmv_max_available`` false are not asked for: TikTok refuses them. An advertiser
without GMV Max gets an empty list; one whose permission was revoked gets 40001, which the
caller reports like any refused account.
"""

from __future__ import annotations

import contextvars
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from controller.reports.gmv_max import TT_SHOP_CAMPAIGN
from controller.tiktok.client import TikTokApiError, TikTokClient, TikTokError

STORE_LIST_PATH = "gmv_max/store/list/"
# The item's reason when an advertiser has no store to read (it succeeds with 0 rows).
NO_STORE = "no TikTok Shop store available for GMV Max"


@dataclass(frozen=True)
class Store:
    store_id: str
    name: str | None
    available: bool


def list_stores(
    client: TikTokClient, advertiser_id: str, *, deadline: float | None = None
) -> list[Store]:
    """Every store TikTok lists for the advertiser (raises TikTokError when it refuses)."""
    page = client.get(
        STORE_LIST_PATH,
        {"advertiser_id": advertiser_id},
        advertiser_id=advertiser_id,
        paged=False,
        deadline=deadline,
        list_key="store_list",
    )
    return [parse_store(row) for row in page.rows if isinstance(row, dict) and row.get("store_id")]


# advertiser -> the ids of its usable stores, or TikTok's refusal (40001: permission revoked)
Discovered = dict[str, "list[str] | TikTokError"]

# What a refusal of the store list says when it is about GMV Max, not the advertiser as a
# whole. TikTok's wording is not documented (docs/tiktok_api_gmv_smartplus.md §1.1): any
# mention of GMV Max, a Shop or a store counts.
_NAMES_GMV_MAX = re.compile(r"gmv|shop|store", re.IGNORECASE)


def refuses_the_account(error: TikTokError) -> bool:
    """Whether a refusal of the store list is the advertiser's as a whole (a permission or
    token code whose words name no GMV Max, Shop or store): every other report of that
    advertiser then fails with the same words, so GMV Max items would only repeat them. A
    refusal naming GMV Max (its permission revoked) or a fault that outlived its retries is
    GMV Max's own: its items fail with it, never a silent gap."""
    return (
        isinstance(error, TikTokApiError)
        and (error.code == 40001 or 40102 <= error.code <= 40131)
        and not _NAMES_GMV_MAX.search(error.message)
    )


def discover_stores(
    client: TikTokClient,
    advertiser_ids: list[str],
    *,
    workers: int = 8,
    deadline: float | None = None,
) -> Discovered:
    """The usable stores of each advertiser (one store list each, at once over ``workers``
    threads); an advertiser TikTok refuses gets its error instead."""

    def discover(advertiser_id: str) -> list[str] | TikTokError:
        try:
            return usable_stores(list_stores(client, advertiser_id, deadline=deadline))
        except TikTokError as exc:
            return exc
        except TimeoutError as exc:  # no rate slot before the run's deadline
            return TikTokError(advertiser_id, f"the GMV Max store list was not read: {exc}")

    if not advertiser_ids:
        return {}
    context = contextvars.copy_context()  # the run's request id on the workers' log lines
    with ThreadPoolExecutor(max(1, min(workers, len(advertiser_ids)))) as pool:
        found = pool.map(lambda a: context.copy().run(discover, a), advertiser_ids)
        return dict(zip(advertiser_ids, found, strict=True))


def usable_stores(stores: list[Store]) -> list[str]:
    """The ids of the stores GMV Max reports can be read for, in TikTok's order."""
    return [store.store_id for store in stores if store.available]


def parse_store(row: dict[str, Any]) -> Store:
    """One row of the store list (``store_id`` as TikTok wrote it, string or number)."""
    return Store(
        store_id=str(row["store_id"]),
        name=row.get("store_name"),
        available=_available(row.get("is_gmv_max_available")),
    )


def _available(value: Any) -> bool:
    """``is_gmv_max_available`` as a bool. Only an explicit false (or ``"false"``) skips the
    store: a store listed without the field is read, because skipping would lose the store's
    spend without a word, while an unusable one is refused by name (TikTok's 40002), which
    the extraction turns into a warning naming the store."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "")
    return bool(value)


def tt_shop_spend(
    client: TikTokClient,
    advertiser_id: str,
    start: date,
    end: date,
    *,
    deadline: float | None = None,
) -> tuple[dict[tuple[date, str], float], int]:
    """TikTok's TT_SHOP spend per (day, GMV Max campaign) of ``start..end``, and the requests
    it took (30 days per request, paged as BASIC; the app's general tier)."""
    spec = TT_SHOP_CAMPAIGN
    days = spec.days_per_request or 30
    spend: dict[tuple[date, str], float] = {}
    requests = 0
    first = start
    while first <= end:
        last = min(first + timedelta(days=days - 1), end)
        page, total_page = 1, 1
        while page <= total_page:
            result = client.fetch_page(
                spec, advertiser_id, list(spec.metrics), first, last, page, deadline=deadline
            )
            requests += 1
            for row in result.rows:
                key = tt_shop_key(advertiser_id, row)
                spend[key] = spend.get(key, 0.0) + _money((row.get("metrics") or {}).get("spend"))
            page, total_page = page + 1, result.total_page
        first = last + timedelta(days=1)
    return spend, requests


def tt_shop_key(advertiser_id: str, row: Any) -> tuple[date, str]:
    """A TT_SHOP row's (day, campaign id); a row without them is TikTok's error, reported as
    the cross-check not read (not a crash of the run)."""
    dimensions = (row.get("dimensions") if isinstance(row, dict) else None) or {}
    try:
        day = date.fromisoformat(str(dimensions["stat_time_day"])[:10])
        campaign = dimensions["campaign_id"]
    except (KeyError, ValueError):
        raise TikTokError(
            advertiser_id, f"a TT_SHOP row without a day or campaign_id: {str(row)[:80]}"
        ) from None
    if campaign is None:
        raise TikTokError(advertiser_id, "a TT_SHOP row without a campaign_id")
    return day, str(campaign)


def _money(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0  # TikTok's "-": no spend
