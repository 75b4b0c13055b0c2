"""Variables and the run conf → one validated ``Config``, every problem reported at once.

``CONFIG_FIELDS`` is the table of Variables (name → config key, parser, default); the
meaning of each is in dags/README.md. The workflow file reads the Variables' text and hands
it to ``parse_config``: nothing here reads Airflow, so the rules are tested without it.
``CONF_SCHEMA`` is the run conf as JSON schema (the workflow's ``params``: validated at
trigger time, a form in the UI); ``parse_conf`` keeps what a schema cannot say (start ≤ end,
the calendar, unknown keys, ids that lost precision).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, NotRequired, TypedDict, cast
from urllib.parse import urlsplit

from .errors import ConfigError

EARLIEST_DATE = date(2016, 1, 1)  # TikTok's reporting data starts no earlier

SEED_REPORT_TYPES = ("advertiser", "campaign", "adgroup", "ad")  # the default of a run
# TikTok Shop's GMV Max campaigns, store by store (TKT050-052; controller/reports/gmv_max.py).
GMV_MAX_REPORT_TYPES = ("gmv_max_campaign", "gmv_max_product", "gmv_max_live")
# Every report the service prebuilds (controller/reports/prebuilt.py; a test keeps them equal):
# audience breakdowns at the four levels, hourly at the four, lifetime below the advertiser.
REPORT_TYPES = (
    *SEED_REPORT_TYPES,
    *(
        f"{level}_{suffix}"
        for suffix in ("age_gender", "country", "platform", "language")
        for level in SEED_REPORT_TYPES
    ),
    *(f"{level}_hourly" for level in SEED_REPORT_TYPES),
    *(f"{level}_lifetime" for level in SEED_REPORT_TYPES[1:]),
    "ad_creative",  # TKT043: the ad level's creative rows (Upgraded Smart+)
    *GMV_MAX_REPORT_TYPES,
)
# Account info and entity history (the service's TKT010..TKT013), loaded before the reports.
ENTITY_TYPES = ("advertiser_info", "campaigns", "adgroups", "ads")
DISCOVER_ALL = "all"
_CUSTOM_REPORT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DEFAULT_DATASET = "raw"
DEFAULT_DAYS_REPROCESS = 3
DEFAULT_SETTLEMENT_DAYS = 28  # TikTok's longest click attribution window
DEFAULT_SETTLEMENT_WEEKDAY = 0  # Monday
# A settlement window is posted in spans of at most this many days, so that each POST holds
# about as much as two daily runs and fits the service's deadline like they do.
SETTLEMENT_SPAN_DAYS = 7
AUTO = "auto"  # TIKTOK_SETTLEMENT_DAYS: N per advertiser from its attribution windows
DEFAULT_BATCH_SIZE = 20
DEFAULT_PARALLEL_BATCHES = 2
DEFAULT_APP_QPS = 10.0  # TikTok Basic tier
DEFAULT_APP_QPM = 600

MAX_ADVERTISERS_PER_REQUEST = 200  # the service's cap (controller/api/models.py)
MAX_PARALLEL_BATCHES = 16
MAX_WINDOW_DAYS = 366  # the service's cap on one request's window
MAX_REQUEST_QPS = 1000.0  # the service's bounds on max_qps / max_qpm
MAX_REQUEST_QPM = 60000

URL_VAR = "TIKTOK_ADS_CLOUD_RUN_URL"
TOKEN_VAR = "TIKTOK_ACCESS_TOKEN"
IDS_VAR = "TIKTOK_ADVERTISER_IDS"
PROJECT_VAR = "GCP_PROJECT"
REGION_VAR = "GCP_REGION"
DATASET_VAR = "TIKTOK_BQ_DATASET"
REPORT_TYPES_VAR = "TIKTOK_REPORT_TYPES"
CUSTOM_REPORT_TYPES_VAR = "TIKTOK_CUSTOM_REPORT_TYPES"
ENTITY_TYPES_VAR = "TIKTOK_ENTITY_TYPES"
DAYS_VAR = "TIKTOK_DAYS_REPROCESS"
SETTLEMENT_DAYS_VAR = "TIKTOK_SETTLEMENT_DAYS"
SETTLEMENT_WEEKDAY_VAR = "TIKTOK_SETTLEMENT_WEEKDAY"
BATCH_SIZE_VAR = "TIKTOK_BATCH_SIZE"
PARALLEL_VAR = "TIKTOK_MAX_PARALLEL_BATCHES"
QPS_VAR = "TIKTOK_APP_QPS"
QPM_VAR = "TIKTOK_APP_QPM"
DEADLINE_VAR = "TIKTOK_RUN_DEADLINE_SECONDS"  # the service's RUN_DEADLINE_SECONDS
DEFAULT_RUN_DEADLINE = 540.0
# The Airflow pool the POSTs to the service run in: its slots are the POSTs in flight at once
# (`airflow pools set tiktok_ads_api 2 ...`, dags/README.md); keep them equal to
# TIKTOK_MAX_PARALLEL_BATCHES, which divides the app's rate between them.
POOL = "tiktok_ads_api"
CONFIG_VARIABLES = (
    URL_VAR,
    IDS_VAR,
    PROJECT_VAR,
    REGION_VAR,
    DATASET_VAR,
    REPORT_TYPES_VAR,
    CUSTOM_REPORT_TYPES_VAR,
    ENTITY_TYPES_VAR,
    DAYS_VAR,
    SETTLEMENT_DAYS_VAR,
    SETTLEMENT_WEEKDAY_VAR,
    BATCH_SIZE_VAR,
    PARALLEL_VAR,
    QPS_VAR,
    QPM_VAR,
    DEADLINE_VAR,
)


_ADVERTISER_ID = re.compile(r"^[0-9]{1,20}$")
_PROJECT_ID = re.compile(r"^(?:[a-z][a-z0-9.-]{0,62}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATASET_ID = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Config(TypedDict):
    """What validate_config returns (XCom): every Variable parsed, never the access token."""

    service_url: str
    advertiser_ids: list[str] | str  # or DISCOVER_ALL
    project_id: str
    region: str
    dataset_id: str
    custom_report_types: list[str]
    entity_types: list[str]
    report_types: list[str]
    days_reprocess: int
    settlement_days: int | str  # or AUTO
    settlement_weekday: int
    batch_size: int
    parallel_batches: int
    app_qps: float
    run_deadline_seconds: float
    app_qpm: int
    conf: NotRequired[dict[str, Any] | None]  # a backfill's parsed run conf
    conf_window: NotRequired[list[str] | None]


# --------------------------------------------------------------------------- Variables


def parse_positive_int(raw: str, *, maximum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"must be a whole number, got {raw!r}") from None
    if not 1 <= value <= maximum:
        raise ConfigError(f"must be between 1 and {maximum}, got {value}")
    return value


def parse_int_between(raw: str, *, minimum: int, maximum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"must be a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"must be between {minimum} and {maximum}, got {value}")
    return value


def parse_positive_float(raw: str, *, maximum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"must be a number, got {raw!r}") from None
    if not (math.isfinite(value) and 0 < value <= maximum):
        raise ConfigError(f"must be greater than 0 and at most {maximum:g}, got {raw}")
    return value


def parse_service_url(raw: str) -> str:
    """The service root URL (also the identity token's audience), without a trailing slash."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("must be an http(s) URL such as https://tiktok-ads-api-xyz.a.run.app")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("must be the service root URL, without a path such as /run")
    return f"{parts.scheme}://{parts.netloc}"


def parse_json_list(raw: str) -> list[Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError('must be a JSON list, e.g. ["7012345678901234567"]') from None
    if not isinstance(value, list) or not value:
        raise ConfigError("must be a non-empty JSON list")
    return value


def parse_advertiser_ids(raw: str) -> list[str] | str:
    """Ids stay strings: a 19-digit JSON number has often been rounded by whoever wrote it.
    ``all`` (bare or as a JSON string) means: discover them at each run."""
    if raw.strip().strip('"').lower() == DISCOVER_ALL:
        return DISCOVER_ALL
    bad = []
    for index, item in enumerate(values := parse_json_list(raw)):
        if isinstance(item, bool) or not isinstance(item, str):
            kind = "a JSON number" if isinstance(item, int | float) else type(item).__name__
            bad.append(f"item {index} is {kind}; quote it (19-digit numbers lose precision)")
        elif not _ADVERTISER_ID.match(item):
            bad.append(f"item {index} {item!r} is not a string of digits")
    if bad:
        raise ConfigError("; ".join(bad))
    return list(dict.fromkeys(values))


def parse_entity_types(raw: str) -> list[str]:
    """Entity tables to load before the reports; ``[]`` turns them off."""
    try:
        values = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(f"must be a JSON list, e.g. {json.dumps(list(ENTITY_TYPES))}") from None
    if not isinstance(values, list) or any(v not in ENTITY_TYPES for v in values):
        raise ConfigError(f"must be a JSON list of {list(ENTITY_TYPES)}")
    return list(dict.fromkeys(values))


def parse_custom_report_types(raw: str) -> list[str]:
    """Names of the custom reports the service declares (its TIKTOK_CUSTOM_REPORTS_FILE)."""
    values = parse_json_list(raw)
    bad = [v for v in values if not isinstance(v, str) or not _CUSTOM_REPORT.match(v)]
    if bad:
        raise ConfigError(f"{bad} are not report names (lowercase letters, digits, _)")
    return list(dict.fromkeys(values))


def parse_report_types(raw: str) -> list[str]:
    """Report names; names neither prebuilt nor custom are refused by ``parse_config``."""
    values = parse_json_list(raw)
    bad = [v for v in values if not isinstance(v, str) or not _CUSTOM_REPORT.match(v)]
    if bad:
        raise ConfigError(f"unknown report types {bad}; allowed: {list(REPORT_TYPES)}")
    return list(dict.fromkeys(values))


def unknown_report_types(config: Mapping[str, Any]) -> list[str]:
    custom = config.get("custom_report_types") or []
    return [
        t for t in config.get("report_types") or [] if t not in REPORT_TYPES and t not in custom
    ]


def _matching(pattern: re.Pattern[str], expected: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not pattern.match(raw):
            raise ConfigError(f"{raw!r} is not {expected}")
        return raw

    return parse


# Variable → (key in the config, parser, default when unset; None = required).
CONFIG_FIELDS: dict[str, tuple[str, Callable[[str], Any], Any]] = {
    URL_VAR: ("service_url", parse_service_url, None),
    IDS_VAR: ("advertiser_ids", parse_advertiser_ids, DISCOVER_ALL),
    PROJECT_VAR: ("project_id", _matching(_PROJECT_ID, "a valid GCP project id"), None),
    REGION_VAR: ("region", _matching(_REGION, "a GCP region such as europe-west1"), None),
    DATASET_VAR: (
        "dataset_id",
        _matching(_DATASET_ID, "a BigQuery dataset id (letters, digits, _)"),
        DEFAULT_DATASET,
    ),
    CUSTOM_REPORT_TYPES_VAR: ("custom_report_types", parse_custom_report_types, []),
    ENTITY_TYPES_VAR: ("entity_types", parse_entity_types, list(ENTITY_TYPES)),
    REPORT_TYPES_VAR: ("report_types", parse_report_types, list(SEED_REPORT_TYPES)),
    DAYS_VAR: (
        "days_reprocess",
        lambda raw: parse_positive_int(raw, maximum=MAX_WINDOW_DAYS),
        DEFAULT_DAYS_REPROCESS,
    ),
    SETTLEMENT_DAYS_VAR: (
        "settlement_days",
        lambda raw: (
            AUTO
            if raw.strip().lower() == AUTO
            else parse_int_between(raw, minimum=0, maximum=MAX_WINDOW_DAYS)
        ),
        DEFAULT_SETTLEMENT_DAYS,
    ),
    SETTLEMENT_WEEKDAY_VAR: (
        "settlement_weekday",
        lambda raw: parse_int_between(raw, minimum=0, maximum=6),
        DEFAULT_SETTLEMENT_WEEKDAY,
    ),
    BATCH_SIZE_VAR: (
        "batch_size",
        lambda raw: parse_positive_int(raw, maximum=MAX_ADVERTISERS_PER_REQUEST),
        DEFAULT_BATCH_SIZE,
    ),
    PARALLEL_VAR: (
        "parallel_batches",
        lambda raw: parse_positive_int(raw, maximum=MAX_PARALLEL_BATCHES),
        DEFAULT_PARALLEL_BATCHES,
    ),
    QPS_VAR: (
        "app_qps",
        lambda raw: parse_positive_float(raw, maximum=MAX_REQUEST_QPS),
        DEFAULT_APP_QPS,
    ),
    DEADLINE_VAR: (
        "run_deadline_seconds",
        lambda raw: parse_positive_float(raw, maximum=3600.0),
        DEFAULT_RUN_DEADLINE,
    ),
    QPM_VAR: (
        "app_qpm",
        lambda raw: parse_positive_int(raw, maximum=MAX_REQUEST_QPM),
        DEFAULT_APP_QPM,
    ),
}


def parse_config(raw: Mapping[str, str | None]) -> tuple[Config, list[str]]:
    """Parse every config Variable; return the config and one problem per bad Variable.

    All Variables are checked before failing so that one run reports every mistake.
    """
    config: dict[str, Any] = {}
    problems: list[str] = []
    for name, (key, parse, default) in CONFIG_FIELDS.items():
        value = raw.get(name)
        if value is None:
            if default is None:
                problems.append(f"{name}: missing (required)")
            config[key] = default
            continue
        try:
            config[key] = parse(value)
        except ConfigError as exc:
            problems.append(f"{name}: {exc}")
    unknown = unknown_report_types(config)
    if unknown:
        problems.append(
            f"{REPORT_TYPES_VAR}: unknown report types {unknown}; allowed: {list(REPORT_TYPES)} "
            f"and the custom reports listed in {CUSTOM_REPORT_TYPES_VAR}"
        )
    if not problems and config["app_qpm"] < config["parallel_batches"]:
        problems.append(f"{QPM_VAR}: must be at least {PARALLEL_VAR} (one request a minute each)")
    return cast(Config, config), problems


# --------------------------------------------------------------------------- run conf


def parse_day(name: str, value: object) -> date:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ConfigError(f"{name} must be a date string YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name} {value!r} is not a calendar date") from None


CONF_KEYS = ("start_date", "end_date", "advertiser_ids", "report_types")
# The run conf as JSON schema, one entry per CONF_KEYS key: the workflow declares each as a
# Param (checked when a run is triggered, and the trigger form of the UI). Every key may be
# null, which is what the form sends for a field left empty: a daily run.
CONF_SCHEMA: dict[str, dict[str, Any]] = {
    "start_date": {
        "type": ["null", "string"],
        "format": "date",
        "description": f"Backfill: first day (YYYY-MM-DD, from {EARLIEST_DATE}); empty: a daily run",
    },
    "end_date": {
        "type": ["null", "string"],
        "format": "date",
        "description": "Backfill: last day (YYYY-MM-DD), with start_date",
    },
    "advertiser_ids": {
        "type": ["null", "array"],
        "items": {"type": "string", "pattern": _ADVERTISER_ID.pattern},
        "minItems": 1,
        "description": "Backfill: advertiser ids as strings; empty: TIKTOK_ADVERTISER_IDS",
    },
    "report_types": {
        "type": ["null", "array"],
        "items": {"type": "string", "pattern": _CUSTOM_REPORT.pattern},
        "minItems": 1,
        "description": "Backfill: report names; empty: TIKTOK_REPORT_TYPES",
    },
}


def parse_conf(conf: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A backfill's run conf: ``start_date``, ``end_date`` (any length from 2016-01-01),
    optional ``advertiser_ids`` and ``report_types`` (the Variables' otherwise); None if empty.

    Unknown keys are rejected: a misspelt key would otherwise silently run the default window.
    A key set to null counts as absent: the trigger form sends every field, empty ones null.
    """
    conf = {key: value for key, value in (conf or {}).items() if value is not None}
    unknown = sorted(set(conf) - set(CONF_KEYS))
    if unknown:
        raise ConfigError(f"unknown keys {unknown}; only {', '.join(CONF_KEYS)} are accepted")
    if not conf:
        return None
    if not {"start_date", "end_date"} <= set(conf):
        raise ConfigError("give both start_date and end_date")
    start = parse_day("start_date", conf["start_date"])
    end = parse_day("end_date", conf["end_date"])
    if start > end:
        raise ConfigError(f"start_date {start} is after end_date {end}")
    latest = datetime.now(UTC).date() + timedelta(days=1)
    if start < EARLIEST_DATE or end > latest:
        raise ConfigError(f"dates must be between {EARLIEST_DATE} and {latest}")
    parsed: dict[str, Any] = {"window": [start.isoformat(), end.isoformat()]}
    if "advertiser_ids" in conf:
        parsed["advertiser_ids"] = parse_advertiser_ids(json.dumps(conf["advertiser_ids"]))
    if "report_types" in conf:
        parsed["report_types"] = parse_report_types(json.dumps(conf["report_types"]))
    return parsed


def parse_conf_window(conf: Mapping[str, Any] | None) -> tuple[date, date] | None:
    """The window of a run conf, or None when the conf is empty (see ``parse_conf``)."""
    parsed = parse_conf(conf)
    if parsed is None:
        return None
    start, end = parsed["window"]
    return date.fromisoformat(start), date.fromisoformat(end)
