"""The TikTok Shop stores an advertiser can read GMV Max reports of (docs/tiktok_api_gmv_smartplus.md §1.1).

``/gmv_max/report/get/`` takes exactly one store per request, from
``/gmv_max/store/list/`` (one unpaged answer, the app's general rate tier). Only stores
with ``is_gmv_max_available`` are asked for: TikTok refuses the others. An advertiser
without GMV Max gets an empty list; one whose permission was revoked gets 40001, which the
caller reports like any refused account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.tiktok.client import TikTokClient

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
    return [_store(row) for row in page.rows if isinstance(row, dict) and row.get("store_id")]


def usable_stores(stores: list[Store]) -> list[str]:
    """The ids of the stores GMV Max reports can be read for, in TikTok's order."""
    return [store.store_id for store in stores if store.available]


def _store(row: dict[str, Any]) -> Store:
    return Store(
        store_id=str(row["store_id"]),
        name=row.get("store_name"),
        available=row.get("is_gmv_max_available") is True,
    )
