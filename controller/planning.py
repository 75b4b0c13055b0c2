"""POST /plan: how big each (advertiser, report type) is, from what TikTok says cheaply.

A backfill planner (the DAG's) must size its units so each POST /run finishes well inside
the service's deadline at its share of the rate budget. Guessing from advertiser counts is
how connectors overrun: one account may have 50 ads and the next 50,000. TikTok reports
``page_info.total_number`` on page 1 of any report, so one request per (advertiser, report
type) over a short sample span tells the rows, hence the pages, hence the requests a span
of any length will cost. The answer gives, per item: the sample's rows and the requests
its extraction would make, the days one request may cover (``days_per_request``), and how
many requests each page costs (``metric_groups``, when a level's metrics need several).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from config.settings import Settings
from controller.models import (
    EARLIEST_DATE,
    ENTITY_TYPES,
    MAX_ADVERTISERS,
    AdvertiserId,
    ReportType,
)
from controller.origins import ALL_ORIGINS, refuses_origins
from controller.pipeline import build_client, request_limiter
from controller.reports import registry
from controller.tiktok_client import PAGE_SIZE, TikTokClient, TikTokError

log = logging.getLogger(__name__)

MAX_SAMPLE_DAYS = 30
SEED_REPORT_TYPES = ("advertiser", "campaign", "adgroup", "ad")


class PlanRequest(BaseModel):
    """POST /plan: the items to size and the sample span (at most 30 days)."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr | None = None
    advertiser_ids: list[AdvertiserId] = Field(min_length=1, max_length=MAX_ADVERTISERS)
    report_types: list[ReportType] = Field(
        default_factory=lambda: list(SEED_REPORT_TYPES), min_length=1
    )
    start_date: date
    end_date: date
    max_qps: float | None = Field(default=None, gt=0, le=1000)
    max_qpm: int | None = Field(default=None, gt=0, le=60000)

    @model_validator(mode="after")
    def _span(self) -> PlanRequest:
        if not EARLIEST_DATE <= self.start_date <= self.end_date:
            raise ValueError(f"start_date: must be from {EARLIEST_DATE} and not after end_date")
        if (self.end_date - self.start_date).days + 1 > MAX_SAMPLE_DAYS:
            raise ValueError(f"end_date: a sample span is at most {MAX_SAMPLE_DAYS} days")
        if any(name in ENTITY_TYPES for name in self.report_types):
            raise ValueError("report_types: only reports can be planned, not entity types")
        return self


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
    }
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
            items = list(pool.map(lambda pair: _item(client, *pair, start, end, families), pairs))
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
