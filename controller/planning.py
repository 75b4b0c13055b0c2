"""POST /plan: how big each (advertiser, report type) is, from what TikTok says cheaply.

A backfill planner (the DAG's) must size its units so each POST /run finishes well inside
the service's deadline at its share of the rate budget. Guessing from advertiser counts is
how connectors overrun: one account may have 50 ads and the next 50,000. TikTok reports
``page_info.total_number`` on page 1 of any report, so one request per (advertiser, report
type) over a short sample span tells the rows, hence the pages, hence the requests a span
of any length will cost. The answer gives, per item: the sample's rows and the requests
its extraction would make, the days one request may cover (``days_per_request``), and how
many requests each page costs (``metric_groups``, when a level's metrics need several).

The ad report (``ads_as_shown``) costs more where Upgraded Smart+ campaigns deliver: the
campaigns whose creatives a page shows are read again by ``ad_id_v2``, in parts of
``CAMPAIGNS_PER_PART``, one request per part and metric group
(docs/tiktok_api_gmv_smartplus.md §2). Its sample request therefore asks the two columns
that show them (any metrics cost the same request and tell the same row count), and
``smart_plus_requests`` (included in ``requests``) counts those reads: exact for a sample of
one page; for more pages, page 1's campaigns plus, for a report of one metric group (read
page by page), one part per further page (an estimate).

A GMV Max item (``rate_budget: gmv_max``) is asked store by store and per promotion type:
its sample lists the advertiser's stores (one request of the app's tier) and reads page 1 of
each (store, promotion type) part; ``parts`` says how many request chains a window costs
(0 for an account without a store), ``rows`` and ``requests`` are summed over them.

A sample in several metric groups that announces more rows than ``TIKTOK_CHUNK_ROW_BOUND``
(``row_bound`` in the answer) is read by the run as shorter date windows, each with pages of
its own (``Extraction._over_bound``): its ``requests`` count them (``sample_requests``). Page
1 tells only the span's total, so the windows are counted at an even density per day; the run
sizes each window by what the one before it showed, so the count is an estimate within a few
pages either way (171 counted for a 28-day span of 50,468 rows that took 163).
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from config.settings import Settings
from controller.extraction import CAMPAIGNS_PER_PART, rejected_metrics
from controller.reports import registry
from controller.reports.catalog import SMART_PLUS_CREATIVES, ReportSpec
from controller.tiktok.client import (
    GENERAL,
    GMV_MAX_BUDGET,
    PAGE_SIZE,
    Page,
    TikTokClient,
    TikTokError,
)
from controller.tiktok.factory import build_client, request_limiter
from controller.tiktok.gmv_max import list_stores, usable_stores
from controller.tiktok.origins import ALL_ORIGINS, refuses_origins

log = logging.getLogger(__name__)

# What the sample of an ``ads_as_shown`` report asks: the columns that show Smart+ creatives.
SMART_PLUS_SAMPLE = ["campaign_id", "campaign_automation_type"]


def smart_plus_parts(spec: ReportSpec, page: Page, groups: int) -> int:
    """The ``ad_id_v2`` parts (requests per metric group) the sample's rows will cost. A
    report of one metric group asks them page by page (only campaigns not asked yet); one of
    several, once its pages are joined."""
    if not spec.ads_as_shown:
        return 0
    campaigns = {
        (row.get("metrics") or {}).get("campaign_id")
        for row in page.rows
        if isinstance(row, dict)
        and (row.get("metrics") or {}).get("campaign_automation_type") == SMART_PLUS_CREATIVES
    }
    if not campaigns:
        return 0
    further = max(0, page.total_page - 1) if groups == 1 else 0
    return -(-len(campaigns) // CAMPAIGNS_PER_PART) + further


def _item(
    client: TikTokClient,
    advertiser_id: str,
    report_type: str,
    start: date,
    end: date,
    families: tuple[str, ...] | None,
    row_bound: int,
) -> dict[str, Any]:
    """Page 1 of the report's first request over the sample: one request per item (two when
    TikTok refuses a metric of it, asked again without, as the run does).

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
        "row_bound": row_bound,
    }
    if spec.gmv_max:
        return entry | _gmv_max_sample(client, advertiser_id, report_type, groups[0], start, end)

    def sample(metrics: list[str]) -> Page:
        # Every campaign origin, like the run itself (Promote rows are rows to plan for); a
        # TikTok that refuses several origins in one filter is sampled with its default.
        try:
            return client.fetch_page(
                spec, advertiser_id, metrics, start, end, 1, origins=ALL_ORIGINS
            )
        except TikTokError as exc:
            if not refuses_origins(exc):
                raise
            return client.fetch_page(spec, advertiser_id, metrics, start, end, 1)

    first = SMART_PLUS_SAMPLE if spec.ads_as_shown else groups[0]
    try:
        try:
            page = sample(first)
        except TikTokError as exc:
            # metrics TikTok refuses at the level: asked again without them, as the run does
            # (without campaign_automation_type, the run keeps creatives as rows: no ad_id_v2)
            kept = [name for name in first if name not in rejected_metrics(exc)]
            if len(kept) in (0, len(first)):
                raise
            page = sample(kept)
    except TikTokError as exc:
        return entry | {
            "rows": None,
            "requests": None,
            "smart_plus_requests": None,
            "status": "error",
            "error": str(exc),
        }
    smart_plus = smart_plus_parts(spec, page, len(groups)) * len(groups)
    windowed = spec.time_dimension is not None and not spec.lifetime
    return entry | {
        "rows": page.total_number,
        "requests": sample_requests(
            page.total_number, page.total_page, len(groups), days if windowed else 1, row_bound
        )
        + smart_plus,
        "smart_plus_requests": smart_plus,
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


def sample_requests(rows: int, pages: int, groups: int, days: int, row_bound: int) -> int:
    """The requests a span of ``days`` with ``rows`` (``pages`` pages) costs the run.

    Pages × metric groups; but a span in several groups over ``row_bound`` rows is read as
    windows of ``row_bound × days ÷ rows`` days (one at least) after its page 1s, each window
    with its own pages (``Extraction._over_bound`` and ``_open_next_window``), counted here
    at an even density per day. ``days`` is 1 for a span the run never splits.
    """
    if groups == 1 or days == 1 or rows <= row_bound:
        return max(1, pages) * groups
    window = max(1, row_bound * days // rows)
    full, rest = divmod(days, window)
    window_pages = full * math.ceil(rows * window / days / PAGE_SIZE)
    if rest:
        window_pages += math.ceil(rows * rest / days / PAGE_SIZE)
    return (1 + window_pages) * groups  # the span's page 1s, then the windows' pages


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
            bound = settings.tiktok_chunk_row_bound
            items = list(
                pool.map(
                    lambda pair: _item(client, pair[0], pair[1], start, end, families, bound),
                    pairs,
                )
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
