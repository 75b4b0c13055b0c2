"""Rate limiter windows (on a fake clock, no timing) and settings parsing."""

from __future__ import annotations

import pytest

from config.settings import Settings, SettingsError, load_settings
from controller.tiktok.factory import request_concurrency
from controller.tiktok.rate_limiter import RateLimiter
from tests.support.clock import acquire_times, max_in_window


def test_no_window_ever_exceeds_qps_or_qpm(clock):
    limiter = RateLimiter(10, 600, margin=0.05, clock=clock)
    starts = acquire_times(limiter, clock, 1300)
    assert max_in_window(starts, 1.0) == 10
    assert max_in_window(starts, 60.0) <= 600
    rate = len(starts) / (starts[-1] - starts[0])
    assert 9.0 <= rate <= 10.0  # saturates the tier instead of idling


def test_qpm_binds_when_lower_than_qps_times_60(clock):
    limiter = RateLimiter(10, 30, clock=clock)
    starts = acquire_times(limiter, clock, 61)
    assert max_in_window(starts, 60.0) == 30
    assert starts[30] >= 60.0


def test_child_budget_is_fractional_and_counts_against_parent(clock):
    parent = RateLimiter(10, 600, clock=clock)
    child = parent.child(2.5, None)
    starts = acquire_times(child, clock, 21)
    assert max_in_window(starts, 1.0) <= 3
    assert max_in_window(starts, 1.0) == 2  # 2.5 QPS rounds down per second
    assert len(parent._windows[0].slots) == 10  # parent saw every start (window holds last 10)


def test_deadline_raises_instead_of_waiting_forever(clock):
    limiter = RateLimiter(1, 600, clock=clock)
    limiter.acquire()
    with pytest.raises(TimeoutError):
        limiter.acquire(deadline=0.5)


def test_settings_defaults_and_overrides():
    assert load_settings({}) == Settings()
    settings = load_settings({"TIKTOK_QPS": "20", "TIKTOK_QPM": "1200", "DAYS_REPROCESS": "5",
                              "TIKTOK_API_BASE_URL": "http://127.0.0.1:9/open_api/v1.3"})  # fmt: skip
    assert (settings.tiktok_qps, settings.tiktok_qpm, settings.days_reprocess) == (20.0, 1200, 5)
    assert settings.tiktok_api_base_url == "http://127.0.0.1:9/open_api/v1.3/"
    assert Settings().tiktok_api_base_url == "https://business-api.tiktok.com/open_api/v1.3/"


def test_sandbox_host_gets_its_limits_and_a_bare_host_the_version_path():
    sandbox = load_settings({"TIKTOK_API_BASE_URL": "https://sandbox-ads.tiktok.com"})
    assert sandbox.tiktok_api_base_url == "https://sandbox-ads.tiktok.com/open_api/v1.3/"
    assert (sandbox.tiktok_qps, sandbox.tiktok_qpm) == (1.0, 30)  # TikTok's sandbox limits
    chosen = load_settings(
        {"TIKTOK_API_BASE_URL": "https://sandbox-ads.tiktok.com/open_api/v1.3/", "TIKTOK_QPS": "2"}
    )
    assert (chosen.tiktok_qps, chosen.tiktok_qpm) == (2.0, 30)
    local = load_settings({"TIKTOK_API_BASE_URL": "http://127.0.0.1:8123"})
    assert local.tiktok_api_base_url == "http://127.0.0.1:8123/open_api/v1.3/"
    assert (local.tiktok_qps, local.tiktok_qpm) == (10.0, 600)


def test_invalid_settings_name_each_variable_and_hide_token():
    with pytest.raises(SettingsError) as info:
        load_settings(
            {"TIKTOK_QPS": "fast", "PORT": "0", "BIGQUERY_EMULATOR_HOST": "127.0.0.1:9050"}
        )
    text = str(info.value)
    assert "TIKTOK_QPS='fast': not a number" in text
    assert "PORT='0': must be between 1 and 65535" in text
    assert "BIGQUERY_EMULATOR_HOST='127.0.0.1:9050': must include the scheme" in text
    assert "secret-value" not in repr(Settings(tiktok_access_token="secret-value"))


def test_a_share_of_the_rate_gets_its_share_of_the_threads():
    """TIKTOK_CONCURRENCY is sized for the app's rate: a backfill unit at a fifth of it runs a
    fifth of the threads (five units kept 120 threads waking for one process' GIL), at least 4.
    """
    settings = Settings(tiktok_qps=50, tiktok_qpm=3000, tiktok_concurrency=24)
    app = RateLimiter(50, 3000)
    assert request_concurrency(settings, app) == 24
    assert request_concurrency(settings, app.child(10, 600)) == 5  # ceil(24 / 5)
    assert request_concurrency(settings, app.child(25, None)) == 12
    assert request_concurrency(settings, app.child(50, 300)) == 4  # a tenth of the QPM: 3 → 4
    assert request_concurrency(Settings(tiktok_concurrency=2), RateLimiter(10, 600)) == 2
