"""Build a TikTok client and its rate limiter from the service's settings.

Every entry point (``/run``, ``/plan``, discovery, the CSV tool) builds its client here, so
timeouts, retries, the app's shared limiter and the threads in flight are decided once.
"""

from __future__ import annotations

import math

from config.settings import Settings
from controller.tiktok.client import RetryPolicy, TikTokClient
from controller.tiktok.rate_limiter import RateLimiter, app_limiter, budget_limiter


def build_client(
    settings: Settings, access_token: str, limiter: RateLimiter, concurrency: int | None = None
) -> TikTokClient:
    """A client whose report requests count against ``limiter`` (the app's tier or a share
    of it) and whose GMV Max report requests against the GMV Max budget, shared alike."""
    return TikTokClient(
        settings.tiktok_api_base_url,
        access_token,
        limiter,
        pool_size=concurrency or settings.tiktok_concurrency,
        connect_timeout=settings.tiktok_connect_timeout,
        read_timeout=settings.tiktok_read_timeout,
        retry=RetryPolicy(
            max_attempts=settings.tiktok_retry_max_attempts,
            max_seconds=settings.tiktok_retry_max_seconds,
        ),
        gmv_max_limiter=gmv_max_limiter(settings, limiter),
    )


def gmv_max_limiter(settings: Settings, limiter: RateLimiter | None = None) -> RateLimiter:
    """The GMV Max report's own budget (``TIKTOK_GMV_MAX_QPS``/``_QPM``/``_DAILY_QUOTA``),
    process-wide; narrowed in the proportion ``limiter`` is a share of the app's tier (a
    backfill unit at a fifth of the app's rate gets a fifth of GMV Max's too)."""
    budget = budget_limiter(
        "gmv_max",
        settings.tiktok_gmv_max_qps,
        settings.tiktok_gmv_max_qpm,
        settings.tiktok_gmv_max_daily_quota,
        settings.tiktok_rate_margin,
    )
    if limiter is None:
        return budget
    share = min(limiter.qps / settings.tiktok_qps, limiter.qpm / settings.tiktok_qpm)
    if share >= 1:
        return budget
    qps = max(budget.qps * share, 0.5)
    return budget.child(qps, max(1, math.floor(budget.qpm * share)))


def request_concurrency(settings: Settings, limiter: RateLimiter) -> int:
    """Requests in flight for a run: ``TIKTOK_CONCURRENCY`` for the app's whole rate, in
    proportion for a share of it (at least 4).

    ``TIKTOK_CONCURRENCY`` is sized for the app's QPS × TikTok's latency. A backfill unit at
    a fifth of the rate needs a fifth of the threads; with all of them, five units kept 120
    threads waking for the limiter and the GIL in one process, and the requests left later
    than their slots.
    """
    share = min(limiter.qps / settings.tiktok_qps, limiter.qpm / settings.tiktok_qpm, 1.0)
    return max(min(4, settings.tiktok_concurrency), math.ceil(settings.tiktok_concurrency * share))


def request_limiter(settings: Settings, max_qps: float | None, max_qpm: int | None) -> RateLimiter:
    """The app's limiter, narrowed to this request's share when the caller sets one."""
    limiter = app_limiter(settings.tiktok_qps, settings.tiktok_qpm, settings.tiktok_rate_margin)
    return limiter.child(max_qps, max_qpm) if (max_qps or max_qpm) else limiter
