"""POST /plan: how big each (advertiser, report type) is, from what TikTok says cheaply.

A backfill planner (the DAG's) must size its units so each POST /run finishes well inside
the service's deadline at its share of the rate budget. Guessing from advertiser counts is
how connectors overrun: one account may have 50 ads and the next 50,000. TikTok reports
``page_info.total_number`` on page 1 of any report, so one request per (advertiser, report
type) over a short sample span tells the rows, hence the pages, hence the requests a span
of any length will cost. The answer gives, per item: the sample's rows and the requests
its extraction would make, the days one request may cover (``days_per_request``), and how
many requests each page costs (``metric_groups``, when a level's metrics need several).

A GMV Max item (``rate_budget: gmv_max``) is asked store by store and per promotion type:
its sample lists the advertiser's stores (one request of the app's tier) and reads page 1 of
each (store, promotion type) part; ``parts`` says how many request chains a window costs
(0 for an account without a store), ``rows`` and ``requests`` are summed over them.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from config.settings import Settings
from controller.reports import registry
from controller.tiktok.client import GENERAL, GMV_MAX_BUDGET, PAGE_SIZE, TikTokClient, TikTokError
from controller.tiktok.factory import build_client, request_limiter
from controller.tiktok.gmv_max import list_stores, usable_stores
from controller.tiktok.origins import ALL_ORIGINS, refuses_origins

log = logging.getLogger(__name__)


def _item(
    client: TikTokClient,
    advertiser_id: str,
    report_type: str,
    start: date,
    end: date,
    families: tuple[str, ...] | None,
) -> dict[str, Any]:
    """Page 1 of the report's first request over the sample: one request per item.

    ``families``: the deployment's metric families (``TIKTOK_METRIC_FAMILIES``), which the
    runs it plans for will ask: they set how many requests a page costs.
    """
    spec = registry.get(report_type)
    groups = spec.metric_groups(families=families)
    if spec.days_per_request is not None:
        end = min(end, start + timedelta(days=spec.days_per_request - 1))
    days = (end - start).days + 1
    entry: dict[str, Any] = {
        "advertiser_id": advertiser_id,
        "report_type": report_type,
        "sample_days": days,
        "days_per_request": spec.days_per_request,
        "metric_groups": len(groups),
        "page_size": PAGE_SIZE,
        "rate_budget": GMV_MAX_BUDGET if spec.gmv_max else GENERAL,
    }
    if spec.gmv_max:
        return entry | _gmv_max_sample(client, advertiser_id, report_type, groups[0], start, end)
    try:
        # Every campaign origin, like the run itself (Promote rows are rows to plan for); a
        # TikTok that refuses several origins in one filter is sampled with its default.
        try:
            page = client.fetch_page(
                spec, advertiser_id, groups[0], start, end, 1, origins=ALL_ORIGINS
            )
        except TikTokError as exc:
            if not refuses_origins(exc):
                raise
            page = client.fetch_page(spec, advertiser_id, groups[0], start, end, 1)
    except TikTokError as exc:
        return entry | {"rows": None, "requests": None, "status": "error", "error": str(exc)}
    return entry | {
        "rows": page.total_number,
        "requests": max(1, page.total_page) * len(groups),
        "status": "success",
        "error": None,
    }


def _gmv_max_sample(
    client: TikTokClient,
    advertiser_id: str,
    report_type: str,
    metrics: list[str],
    start: date,
    end: date,
) -> dict[str, Any]:
    """Page 1 of every (store, promotion type) of a GMV Max report over the sample."""
    spec = registry.get(report_type)
    try:
        stores = usable_stores(list_stores(client, advertiser_id))
        parts = [(store, kind) for store in stores for kind in spec.promotion_types]
        rows, requests = 0, 0
        for part in parts:
            page = client.fetch_page(spec, advertiser_id, metrics, start, end, 1, store=part)
            rows += page.total_number
            requests += max(1, page.total_page)
    except TikTokError as exc:
        return {"parts": None, "rows": None, "requests": None, "status": "error", "error": str(exc)}
    return {
        "parts": len(parts),
        "rows": rows,
        "requests": requests,
        "status": "success",
        "error": None,
    }


def plan(
    settings: Settings,
    token: str,
    advertiser_ids: list[str],
    report_types: list[str],
    start: date,
    end: date,
    *,
    max_qps: float | None = None,
    max_qpm: int | None = None,
) -> list[dict[str, Any]]:
    """One page-1 request per (advertiser, report type) over ``start..end``, concurrently."""
    limiter = request_limiter(settings, max_qps, max_qpm)
    client = build_client(settings, token, limiter)
    pairs = [(adv, rt) for rt in report_types for adv in advertiser_ids]
    try:
        with ThreadPoolExecutor(max(1, min(settings.tiktok_concurrency, len(pairs)))) as pool:
            families = settings.tiktok_metric_families
            items = list(
                pool.map(lambda pair: _item(client, pair[0], pair[1], start, end, families), pairs)
            )
    finally:
        client.close()
    log.info(
        "plan sampled",
        extra={
            "fields": {
                "items": len(items),
                "rows": sum(i["rows"] or 0 for i in items),
                "errors": sum(i["status"] != "success" for i in items),
            }
        },
    )
    return items
