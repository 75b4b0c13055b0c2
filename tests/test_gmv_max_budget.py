"""The GMV Max report's own rate budget (QPS, QPM, per-day quota) on a fake clock, and its
settings (docs/tiktok_api_gmv_smartplus.md §1.1: Basic 8 QPS / 240 QPM / 20,000 a day)."""

from __future__ import annotations

from datetime import date

import pytest

from config.settings import Settings, SettingsError, load_settings
from controller.tiktok.factory import gmv_max_limiter, request_limiter
from controller.tiktok.rate_limiter import DailyQuota, QuotaSpentError, RateLimiter
from tests.support.clock import acquire_times, max_in_window


def test_basic_tier_windows_hold_8_per_second_and_240_per_minute(clock):
    limiter = RateLimiter(8, 240, clock=clock, daily=DailyQuota(20_000))
    starts = acquire_times(limiter, clock, 500)
    assert max_in_window(starts, 1.0) == 8
    assert max_in_window(starts, 60.0) == 240
    assert limiter.daily is not None and limiter.daily.used == 500


def test_the_day_quota_refuses_at_once_and_opens_again_at_utc_midnight(clock):
    today = [date(2026, 12, 7)]
    limiter = RateLimiter(8, 240, clock=clock, daily=DailyQuota(5, today=lambda: today[0]))
    acquire_times(limiter, clock, 5)
    waited_until = clock.now
    with pytest.raises(QuotaSpentError, match="daily quota of 5 requests is spent"):
        limiter.acquire()
    assert clock.now == waited_until  # refused, not waited for
    today[0] = date(2026, 12, 8)
    limiter.acquire()
    assert limiter.daily is not None and limiter.daily.used == 1


def test_tiktok_saying_the_day_is_spent_closes_it_for_children_too(clock):
    today = date(2026, 12, 7)
    budget = RateLimiter(8, 240, clock=clock, daily=DailyQuota(20_000, today=lambda: today))
    share = budget.child(2, 60)
    share.acquire()
    budget.spend_day()
    with pytest.raises(QuotaSpentError):
        share.acquire()


def test_the_gmv_max_budget_is_apart_from_the_app_tier():
    settings = Settings(tiktok_gmv_max_daily_quota=19_999)
    budget = gmv_max_limiter(settings)
    assert (budget.qps, budget.qpm) == (8.0, 240)
    assert budget.daily is not None and budget.daily.limit == 19_999
    app = request_limiter(settings, None, None)
    assert budget is not app and app.daily is None
    assert gmv_max_limiter(settings, app) is budget  # the app's whole rate: the whole budget
    # a backfill unit at a fifth of the app's rate gets a fifth of GMV Max's, same day quota
    unit = gmv_max_limiter(settings, request_limiter(settings, 2.0, 120))
    assert (unit.qps, unit.qpm) == (1.6, 48)
    assert unit.daily is budget.daily


def test_gmv_max_settings_defaults_overrides_and_errors():
    defaults = load_settings({})
    assert (
        defaults.tiktok_gmv_max_qps,
        defaults.tiktok_gmv_max_qpm,
        defaults.tiktok_gmv_max_daily_quota,
        defaults.tiktok_gmv_max,
    ) == (8.0, 240, 20_000, True)
    advanced = load_settings(
        {
            "TIKTOK_GMV_MAX_QPS": "12",
            "TIKTOK_GMV_MAX_QPM": "360",
            "TIKTOK_GMV_MAX_DAILY_QUOTA": "30000",
            "TIKTOK_GMV_MAX": "off",
        }
    )
    assert (advanced.tiktok_gmv_max_qps, advanced.tiktok_gmv_max_qpm) == (12.0, 360)
    assert (advanced.tiktok_gmv_max_daily_quota, advanced.tiktok_gmv_max) == (30_000, False)
    with pytest.raises(SettingsError) as error:
        load_settings({"TIKTOK_GMV_MAX_DAILY_QUOTA": "0", "TIKTOK_GMV_MAX": "maybe"})
    assert "TIKTOK_GMV_MAX_DAILY_QUOTA='0': must be greater than 0" in str(error.value)
    assert "TIKTOK_GMV_MAX='maybe': must be on or off" in str(error.value)
