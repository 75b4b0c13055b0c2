"""One POST /run per batch of advertisers (and span of days), each with its share of the rate.

TikTok limits the app, not the request: every POST in flight carries ``max_qps`` and
``max_qpm`` so that together they never exceed the app's tier, even when Cloud Run serves
them on different instances (dags/README.md, "Fan-out and the rate-limit budget").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any, NotRequired, TypedDict

from .config import MAX_PARALLEL_BATCHES, PARALLEL_VAR, QPS_VAR
from .windows import SETTLEMENT_SPAN_DAYS, date_spans, default_window, settlement_groups


class CallRequest(TypedDict):
    """One mapped call (XCom): where to POST, its label, the payload; never the token."""

    service_url: str
    label: str
    payload: dict[str, Any]
    unit: NotRequired[dict[str, Any]]  # a backfill unit (tiktok_ads.backfill.Unit.to_json)


def split_batches(advertiser_ids: list[str], batch_size: int) -> list[list[str]]:
    return [advertiser_ids[i : i + batch_size] for i in range(0, len(advertiser_ids), batch_size)]


def rate_budget(app_qps: float, app_qpm: int, parallel: int, batches: int) -> tuple[float, int]:
    """Each request's share of the app's tier, so the batches in flight never exceed it.

    Only min(parallel, batches) requests can be in flight. The QPS share is rounded down
    (to 1/1000) so the shares never add up to more than the tier.
    """
    in_flight = max(1, min(parallel, batches))
    qps = math.floor(app_qps / in_flight * 1000) / 1000
    return max(qps, 0.001), max(app_qpm // in_flight, 1)


def rate_share_warning(app_qps: float, parallel: int) -> str | None:
    """Why ``parallel`` leaves part of the app's QPS unused, or None when it does not.

    The service counts whole requests per second: a share of 2.5 QPS is held to 2 (two
    units cannot both send a third request in one second without the app going over). So
    4 in flight at 10 QPS use 8; the divisors of the QPS use all of it.
    """
    share = app_qps / parallel
    if share < 1 or share == math.floor(share):
        return None
    used = parallel * math.floor(share)
    better = [n for n in range(1, MAX_PARALLEL_BATCHES + 1) if app_qps / n == app_qps // n]
    return (
        f"{PARALLEL_VAR}={parallel} at {QPS_VAR}={app_qps:g}: each batch is held to "
        f"{math.floor(share)} requests a second (whole requests), {used:g} of the app's "
        f"{app_qps:g} used; {', '.join(map(str, better[-4:]))} would use all of it"
    )


def build_requests(
    config: Mapping[str, Any], start: date, end: date, span_days: int | None = None
) -> list[dict[str, Any]]:
    """One POST /run per batch (and per span of ``span_days``, if given): the URL, a label and
    the payload (never the access token). The rate budget is split over every POST that can
    be in flight, whichever batch or span it is."""
    batches = split_batches(config["advertiser_ids"], config["batch_size"])
    spans = date_spans(start, end, span_days)
    max_qps, max_qpm = rate_budget(
        config["app_qps"], config["app_qpm"], config["parallel_batches"], len(batches) * len(spans)
    )
    return [
        {
            "service_url": config["service_url"],
            "label": f"batch {number}/{len(batches)}"
            + (f", {span_start}..{span_end}" if len(spans) > 1 else ""),
            "payload": {
                "advertiser_ids": batch,
                "project_id": config["project_id"],
                "dataset_id": config["dataset_id"],
                # Entities first: the service loads them before the reports of the batch
                # (once per batch: in its first span only).
                "report_types": [
                    *(config.get("entity_types", []) if index == 0 else []),
                    *config["report_types"],
                ],
                "start_date": span_start.isoformat(),
                "end_date": span_end.isoformat(),
                "if_exists": "replace",
                "max_qps": max_qps,
                "max_qpm": max_qpm,
                # TikTok Shop's GMV Max reports (TKT050-052) for the advertisers that have a
                # store; the service's TIKTOK_GMV_MAX=off turns them off for a deployment.
                "with_gmv_max": True,
            },
        }
        for index, (span_start, span_end) in enumerate(spans)
        for number, batch in enumerate(batches, start=1)
    ]


def build_auto_settlement(
    config: Mapping[str, Any], day: date, days: Mapping[str, int]
) -> list[dict[str, Any]]:
    """One POST per batch and span of each group of advertisers with the same N; the rate
    budget is split over every POST of every group."""
    requests_: list[dict[str, Any]] = []
    for n, advertiser_ids in settlement_groups(days, config["days_reprocess"]).items():
        start, end = default_window(day, n)
        span = SETTLEMENT_SPAN_DAYS if n > config["days_reprocess"] else None
        for request in build_requests(
            {**config, "advertiser_ids": advertiser_ids}, start, end, span
        ):
            request["label"] = f"N={n}: {request['label']}"
            requests_.append(request)
    max_qps, max_qpm = rate_budget(
        config["app_qps"], config["app_qpm"], config["parallel_batches"], len(requests_)
    )
    for request in requests_:
        request["payload"].update(max_qps=max_qps, max_qpm=max_qpm)
    return requests_
