"""Service settings, read from the environment once.

Every knob has a documented default (README "Configuration"). An invalid value stops the
process at start with a message naming the variable, instead of failing mid-run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import cache
from typing import Any
from urllib.parse import urlsplit

API_PATH = "open_api/v1.3/"
PRODUCTION_BASE_URL = "https://business-api.tiktok.com/" + API_PATH
SANDBOX_BASE_URL = "https://sandbox-ads.tiktok.com/" + API_PATH
# TikTok's sandbox allows 1 QPS / 30 QPM per endpoint (docs/tiktok_api_reference.md §4.3): the
# defaults there, unless set.
SANDBOX_HOST = "sandbox-ads.tiktok.com"
SANDBOX_QPS, SANDBOX_QPM = 1.0, 30


class SettingsError(ValueError):
    """A configuration variable has a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    tiktok_api_base_url: str = PRODUCTION_BASE_URL
    tiktok_access_token: str | None = None
    # The developer app, for advertiser discovery ("advertiser_ids": "all"): TikTok wants the
    # secret in the query string of /oauth2/advertiser/get/, so it is masked in every log line.
    tiktok_app_id: str | None = None
    tiktok_app_secret: str | None = None
    tiktok_qps: float = 10.0  # the developer app's tier (Basic: 10 QPS / 600 QPM)
    tiktok_qpm: int = 600
    # The GMV Max report's own budget (docs/tiktok_api_gmv_smartplus.md §1.1; Basic tier), apart
    # from the app tier above: QPS, QPM and requests per UTC day. ``tiktok_gmv_max`` off
    # leaves GMV Max out of the default report set (the daily DAG's) for every account.
    tiktok_gmv_max_qps: float = 8.0
    tiktok_gmv_max_qpm: int = 240
    tiktok_gmv_max_daily_quota: int = 20_000
    tiktok_gmv_max: bool = True
    tiktok_rate_margin: float = 0.03  # seconds added to each rate window against network jitter
    tiktok_concurrency: int = 24  # requests in flight; the rate limiter is the real throttle
    tiktok_connect_timeout: float = 10.0
    tiktok_read_timeout: float = 120.0
    tiktok_retry_max_seconds: float = 300.0  # total time one request may spend retrying
    tiktok_retry_max_attempts: int = 8
    days_reprocess: int = 3
    port: int = 8080
    run_deadline_seconds: float = 540.0  # under Cloud Run's 600 s request timeout
    bq_location: str = "US"
    bigquery_emulator_host: str | None = None
    bq_commit_retries: int = 5
    log_level: str = "INFO"
    # JSON file of custom report definitions, read and validated at start (README)
    tiktok_custom_reports_file: str | None = None
    # Metric families asked for by default (None: every family a level offers); a /run
    # request's ``metric_families`` wins. ``core`` is always asked for.
    tiktok_metric_families: tuple[str, ...] | None = None
    # Rows a chunk read in several metric groups (the default width: 3) may announce before it
    # is read as shorter date windows (README "Memory at full width"): ~4.4 KB per
    # full-width row waits to be joined, so ~44 MB per chunk in flight.
    tiktok_chunk_row_bound: int = 10_000
    # The analysts' views (README "Analysts' layer"): their datasets, the reporting currency
    # and its daily rates table ([project.]dataset.table), and whether a run that created a
    # table or a column makes them again (so a view never misses a table that exists).
    views_after_run: bool = True
    views_raw_dataset: str = "raw"  # the dataset the views read; runs into others leave them
    views_reporting_dataset: str = "tiktok_ads_reporting"
    views_fivetran_dataset: str = "tiktok_ads"
    reporting_currency: str | None = None
    currency_rates_table: str | None = None

    def missing_app_credentials(self) -> list[str]:
        """The variables discovery needs that are not set (empty: discovery can run)."""
        return [
            name
            for name, value in (
                ("TIKTOK_APP_ID", self.tiktok_app_id),
                ("TIKTOK_APP_SECRET", self.tiktok_app_secret),
            )
            if not value
        ]

    def __repr__(self) -> str:  # never print the token
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in ("tiktok_access_token", "tiktok_app_secret"):
            if shown[secret]:
                shown[secret] = "***"
        return f"Settings({shown})"


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        value = kind(raw)
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value

    return parse


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be between 1 and 65535")
    return value


def _base_url(raw: str) -> str:
    """The API root; a bare host gets TikTok's version path (without it: HTTP 404)."""
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    url = raw if raw.endswith("/") else raw + "/"
    return url + API_PATH if urlsplit(url).path == "/" else url


def _emulator_host(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must include the scheme, e.g. http://127.0.0.1:9050")
    return raw.rstrip("/")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _flag(raw: str) -> bool:
    if raw.lower() not in {"true", "false", "1", "0"}:
        raise ValueError("must be true or false")
    return raw.lower() in {"true", "1"}


def _switch(raw: str) -> bool:
    """on/off, as a deployment writes a feature switch (true/false and 1/0 too)."""
    value = raw.lower()
    if value in {"on", "off"}:
        return value == "on"
    try:
        return _flag(raw)
    except ValueError:
        raise ValueError("must be on or off") from None


def _currency(raw: str) -> str:
    if not (len(raw) == 3 and raw.isascii() and raw.isalpha() and raw.isupper()):
        raise ValueError("must be a 3-letter ISO 4217 code, e.g. EUR")
    return raw


def _families(raw: str) -> tuple[str, ...]:
    """The names as written; which names exist is the report definitions' to say
    (``controller.settings.checked``, at start), since config imports nothing of controller."""
    names = [part.strip() for part in raw.split(",") if part.strip()]
    if not names:
        raise ValueError("must name at least one metric family")
    return tuple(dict.fromkeys(names))


_PARSERS: dict[str, Callable[[str], Any]] = {
    "TIKTOK_API_BASE_URL": _base_url,
    "TIKTOK_ACCESS_TOKEN": str,
    "TIKTOK_APP_ID": str,
    "TIKTOK_APP_SECRET": str,
    "TIKTOK_QPS": _positive(float),
    "TIKTOK_QPM": _positive(int),
    "TIKTOK_GMV_MAX_QPS": _positive(float),
    "TIKTOK_GMV_MAX_QPM": _positive(int),
    "TIKTOK_GMV_MAX_DAILY_QUOTA": _positive(int),
    "TIKTOK_GMV_MAX": _switch,
    "TIKTOK_RATE_MARGIN": _non_negative_float,
    "TIKTOK_CONCURRENCY": _positive(int),
    "TIKTOK_CONNECT_TIMEOUT": _positive(float),
    "TIKTOK_READ_TIMEOUT": _positive(float),
    "TIKTOK_RETRY_MAX_SECONDS": _positive(float),
    "TIKTOK_RETRY_MAX_ATTEMPTS": _positive(int),
    "DAYS_REPROCESS": _positive(int),
    "PORT": _port,
    "RUN_DEADLINE_SECONDS": _positive(float),
    "BQ_LOCATION": str,
    "BIGQUERY_EMULATOR_HOST": _emulator_host,
    "BQ_COMMIT_RETRIES": _non_negative_int,
    "LOG_LEVEL": _log_level,
    "TIKTOK_CUSTOM_REPORTS_FILE": str,
    "TIKTOK_METRIC_FAMILIES": _families,
    "TIKTOK_CHUNK_ROW_BOUND": _positive(int),
    "VIEWS_AFTER_RUN": _flag,
    "VIEWS_RAW_DATASET": str,
    "VIEWS_REPORTING_DATASET": str,
    "VIEWS_FIVETRAN_DATASET": str,
    "REPORTING_CURRENCY": _currency,
    "CURRENCY_RATES_TABLE": str,
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment).

    Raises SettingsError naming every variable whose value is invalid.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, parse in _PARSERS.items():
        raw = environ.get(name, "").strip()
        if not raw:
            continue
        try:
            values[name.lower()] = parse(raw)
        except ValueError as exc:
            shown = "***" if "TOKEN" in name or "SECRET" in name else repr(raw)
            problems.append(f"{name}={shown}: {_reason(exc)}")
    if problems:
        raise SettingsError("invalid configuration: " + "; ".join(problems))
    if urlsplit(values.get("tiktok_api_base_url", "")).hostname == SANDBOX_HOST:
        values.setdefault("tiktok_qps", SANDBOX_QPS)
        values.setdefault("tiktok_qpm", SANDBOX_QPM)
    return Settings(**values)


def _reason(exc: ValueError) -> str:
    text = str(exc)
    if text.startswith(("invalid literal", "could not convert")):
        return "not a number"
    return text


@cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use and never again."""
    return load_settings()
