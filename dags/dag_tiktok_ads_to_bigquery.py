"""TikTok Ads → BigQuery, daily at 08:00 UTC, through the tiktok-ads-api Cloud Run service.

The DAG only orchestrates: the service extracts the reports from TikTok and loads BigQuery.
A run reprocesses the days D-3..D-1 of its run day D (`TIKTOK_DAYS_REPROCESS` overrides 3)
with `if_exists: "replace"`, so a retry, a rerun or an overlapping backfill rewrites the
same rows instead of duplicating them. Once a week (`TIKTOK_SETTLEMENT_WEEKDAY`, Monday) the
run replaces D-28..D-1 instead (`TIKTOK_SETTLEMENT_DAYS`): TikTok books conversions on the
day of the impression for up to 28 days, so the daily window alone freezes them too early.

`validate_config` → `prepare_payload` → `call_cloud_run_api` (mapped: one POST /run per
batch of advertisers) → `validate_result`. Runs on Airflow 3 and 2.10; needs only
`requests` and `google-auth`, which Cloud Composer images ship. Full notes: dags/README.md.

**Deploy**: `gcloud composer environments storage dags import --environment ENV
--location REGION --source dag_tiktok_ads_to_bigquery.py` (or `gsutil cp` it to the
environment bucket's `dags/` folder). Grant the environment's service account
`roles/run.invoker` on the service: the POST carries a Google identity token whose
audience is the service root URL.

**Variables** (UI: Admin → Variables, or `gcloud composer environments run ENV --location
REGION variables set -- NAME VALUE`):

| Variable | Default | Meaning |
|---|---|---|
| `TIKTOK_ADS_CLOUD_RUN_URL` | required | service root URL, e.g. https://tiktok-ads-api-xyz.a.run.app |
| `TIKTOK_ACCESS_TOKEN` | required | TikTok access token (read only by call_cloud_run_api) |
| `TIKTOK_ADVERTISER_IDS` | all | JSON list of id strings: `["7012345678901234567"]`, or `all` (or unset): every advertiser the token was granted, discovered through the service's GET /advertisers at each run (the service needs TIKTOK_APP_ID / TIKTOK_APP_SECRET); closed or refused accounts and accounts granted no more since the previous run are logged as warnings, not run |
| `GCP_PROJECT` | required | project of the destination dataset |
| `GCP_REGION` | required | region of the service (validated and logged) |
| `TIKTOK_BQ_DATASET` | raw | destination dataset |
| `TIKTOK_REPORT_TYPES` | the four seed | JSON list of report names: advertiser, campaign, adgroup, ad, the prebuilt `<level>_<breakdown>` ones (README) and custom ones |
| `TIKTOK_ENTITY_TYPES` | all four | JSON list of account/entity tables loaded before the reports: advertiser_info, campaigns, adgroups, ads (`[]` turns them off) |
| `TIKTOK_CUSTOM_REPORT_TYPES` | [] | JSON list of the custom report names the service declares |
| `TIKTOK_DAYS_REPROCESS` | 3 | days before the run day to reprocess |
| `TIKTOK_SETTLEMENT_DAYS` | 28 | days the weekly settlement run replaces (D-N..D-1); 0 turns it off; `auto`: N per advertiser from the service's GET /settlement_days (longest click attribution window of the ad groups that delivered in the last 28 days, from the entity tables; 28 when unknown) |
| `TIKTOK_SETTLEMENT_WEEKDAY` | 0 | day of the settlement run: 0 = Monday … 6 = Sunday (UTC run day) |
| `TIKTOK_BATCH_SIZE` | 20 | advertisers per POST /run (at most 200) |
| `TIKTOK_MAX_PARALLEL_BATCHES` | 2 | POSTs in flight at once; read when the file is parsed |
| `TIKTOK_APP_QPS` | 10 | the TikTok app's QPS tier, shared by the batches |
| `TIKTOK_APP_QPM` | 600 | the TikTok app's QPM tier, shared by the batches |
| `TIKTOK_RUN_DEADLINE_SECONDS` | 540 | the service's RUN_DEADLINE_SECONDS: backfill units are sized to 60 % of it |

**Backfill**: trigger with the conf `{"start_date": "2024-01-01", "end_date": "2026-10-31"}`
(any length back to 2016-01-01; optional "advertiser_ids", "report_types"). The window is
sized with the service's POST /plan and cut into units (dags/tiktok_backfill.py, deployed
next to this file), each a mapped call that splits what the deadline left unfinished;
validate_result lists every unit. Clear failed units, or trigger the same conf, to resume.

**Rate-limit budget**: every payload carries `max_qps = APP_QPS / n` and
`max_qpm = APP_QPM // n`, n = min(parallel batches, batches): the batches in flight never
exceed the app's tier together, even on different Cloud Run instances.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

try:  # Airflow 3
    from airflow.sdk import Variable, dag, get_current_context, task
    from airflow.sdk.exceptions import AirflowFailException
    from airflow.sdk.log import mask_secret

    _VARIABLE_DEFAULT_KW = "default"
    # validate_result runs once every call is done and one succeeded: a failed backfill
    # unit must not hide the summary of the others.
    _SUMMARY_TRIGGER = "all_done_min_one_success"
except ImportError:  # Airflow 2.x (2.10 on Cloud Composer 2)
    from airflow.decorators import dag, task
    from airflow.exceptions import AirflowFailException
    from airflow.models import Variable
    from airflow.operators.python import get_current_context
    from airflow.utils.log.secrets_masker import mask_secret

    _VARIABLE_DEFAULT_KW = "default_var"
    _SUMMARY_TRIGGER = "all_success"  # Airflow 2: a failed unit leaves validate_result out

try:  # the sibling module, deployed next to this file (dags/ is on sys.path in Airflow)
    import tiktok_backfill as backfill
except ImportError:  # imported as dags.dag_tiktok_ads_to_bigquery (tests)
    from dags import tiktok_backfill as backfill

log = logging.getLogger(__name__)

DAG_ID = "tiktok_ads_to_bigquery"
SCHEDULE = "0 8 * * *"

SEED_REPORT_TYPES = ("advertiser", "campaign", "adgroup", "ad")  # the default of a run
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
# Connect, read: the read timeout outlasts Cloud Run's 600 s request timeout and the
# service's own 540 s deadline, so the client never gives up on a run that is still going.
HTTP_TIMEOUT = (10.0, 900.0)
ERROR_TEXT_LIMIT = 300
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})  # Cloud Run overload: try again later

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
BACKFILL_STATE_PREFIX = "TIKTOK_BACKFILL_STATE_"  # + the conf's key: what a backfill loaded
DEFAULT_RUN_DEADLINE = 540.0
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
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class ConfigError(ValueError):
    """One value is missing or malformed; the message says what is expected."""


# --------------------------------------------------------------------------- Variables


def get_variable(name: str) -> str | None:
    """A Variable's text, or None when unset (the default keyword differs on Airflow 2 and 3)."""
    value = Variable.get(name, **{_VARIABLE_DEFAULT_KW: None})
    if value is None:
        return None
    text = str(value).strip()
    return text or None


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
_CONFIG_FIELDS: dict[str, tuple[str, Callable[[str], Any], Any]] = {
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


def parse_config(raw: Mapping[str, str | None]) -> tuple[dict[str, Any], list[str]]:
    """Parse every config Variable; return the config and one problem per bad Variable.

    All Variables are checked before failing so that one run reports every mistake.
    """
    config: dict[str, Any] = {}
    problems: list[str] = []
    for name, (key, parse, default) in _CONFIG_FIELDS.items():
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
    return config, problems


# --------------------------------------------------------------------------- run window


def parse_day(name: str, value: object) -> date:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ConfigError(f"{name} must be a date string YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name} {value!r} is not a calendar date") from None


CONF_KEYS = ("start_date", "end_date", "advertiser_ids", "report_types")


def parse_conf(conf: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A backfill's run conf: ``start_date``, ``end_date`` (any length from 2016-01-01),
    optional ``advertiser_ids`` and ``report_types`` (the Variables' otherwise); None if empty.

    Unknown keys are rejected: a misspelt key would otherwise silently run the default window.
    """
    conf = conf or {}
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
    if start < backfill.EARLIEST_DATE or end > latest:
        raise ConfigError(f"dates must be between {backfill.EARLIEST_DATE} and {latest}")
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


def run_day(context: Mapping[str, Any]) -> date:
    """The UTC day a run stands for.

    ``data_interval_end`` is the run's day on Airflow 3 and 2 alike (``logical_date`` is not:
    on 2.x it is the start of the interval, the previous day). Manual runs on 3.x may have no
    data interval: then the moment the run was requested counts.
    """
    dag_run = context.get("dag_run")
    for moment in (
        context.get("data_interval_end"),
        getattr(dag_run, "run_after", None),
        context.get("logical_date"),
    ):
        if moment is not None:
            return moment.astimezone(UTC).date()
    raise AirflowFailException("the run has no data_interval_end, run_after or logical_date")


def default_window(day: date, days_reprocess: int) -> tuple[date, date]:
    """D-days_reprocess .. D-1: yesterday plus the days TikTok may still restate."""
    return day - timedelta(days=days_reprocess), day - timedelta(days=1)


def is_settlement_day(day: date, config: Mapping[str, Any]) -> bool:
    """The weekly run that replaces the attribution window instead of the daily days.

    Off when ``settlement_days`` is 0 or no longer than the daily window (nothing to add).
    """
    days = settlement_ceiling(config)
    return days > config["days_reprocess"] and day.weekday() == config["settlement_weekday"]


def settlement_ceiling(config: Mapping[str, Any]) -> int:
    """The settlement window's days; with ``auto``, its longest (TikTok's 28-day click window)."""
    days = config["settlement_days"]
    return DEFAULT_SETTLEMENT_DAYS if days == AUTO else days


def settlement_groups(days: Mapping[str, int], days_reprocess: int) -> dict[int, list[str]]:
    """Advertisers by the days their settlement replaces (``auto``); at least the daily
    window's, which every run replaces anyway."""
    groups: dict[int, list[str]] = {}
    for advertiser_id, n in days.items():
        groups.setdefault(max(int(n), days_reprocess), []).append(advertiser_id)
    return dict(sorted(groups.items(), reverse=True))


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


def fetch_settlement_days(config: Mapping[str, Any], advertiser_ids: list[str]) -> dict[str, int]:
    """The service's GET /settlement_days for these advertisers (N per advertiser)."""
    import requests

    days: dict[str, int] = {}
    for batch in split_batches(advertiser_ids, MAX_ADVERTISERS_PER_REQUEST):
        response = requests.get(
            f"{config['service_url']}/settlement_days",
            params={
                "project_id": config["project_id"],
                "dataset_id": config["dataset_id"],
                "advertiser_ids": ",".join(batch),
                "max_days": str(DEFAULT_SETTLEMENT_DAYS),
            },
            headers=auth_headers(config["service_url"]),
            timeout=HTTP_TIMEOUT,
        )
        if response.status_code != 200:
            raise ServiceUnavailable(
                f"settlement days: HTTP {response.status_code}: {response.text[:ERROR_TEXT_LIMIT]}"
            )
        for advertiser_id, entry in response.json()["settlement_days"].items():
            days[advertiser_id] = int(entry["days"])
            log.info(
                "settlement of %s: %s days (%s)", advertiser_id, entry["days"], entry["reason"]
            )
    return days


def scheduled_window(day: date, config: Mapping[str, Any]) -> tuple[date, date, int | None]:
    """The window of a scheduled run of ``day`` and the span its POSTs are split into.

    Daily: D-days_reprocess..D-1 in one span. Settlement day: D-settlement_days..D-1 in
    spans of ``SETTLEMENT_SPAN_DAYS`` (each POST must fit the service's deadline).
    """
    if is_settlement_day(day, config):
        start, end = default_window(day, settlement_ceiling(config))
        return start, end, SETTLEMENT_SPAN_DAYS
    start, end = default_window(day, config["days_reprocess"])
    return start, end, None


def date_spans(start: date, end: date, days: int | None) -> list[tuple[date, date]]:
    """The inclusive window cut into consecutive spans of at most ``days`` (None: one span)."""
    if not days:
        return [(start, end)]
    spans = []
    while start <= end:
        span_end = min(start + timedelta(days=days - 1), end)
        spans.append((start, span_end))
        start = span_end + timedelta(days=1)
    return spans


# --------------------------------------------------------------------------- fan-out


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
            },
        }
        for index, (span_start, span_end) in enumerate(spans)
        for number, batch in enumerate(batches, start=1)
    ]


# --------------------------------------------------------------------------- the call


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_headers(service_url: str) -> dict[str, str]:
    """A Google identity token for Cloud Run IAM (audience = root URL); none for loopback."""
    if is_loopback(service_url):
        return {}
    import google.auth.transport.requests
    import google.oauth2.id_token

    token = google.oauth2.id_token.fetch_id_token(
        google.auth.transport.requests.Request(), service_url
    )
    mask_secret(token)
    return {"Authorization": f"Bearer {token}"}


class ServiceUnavailable(RuntimeError):
    """A failure worth retrying: 5xx, 408/429, unreadable body, or a run where all failed."""


def scrub(text: str | None, secret: str) -> str | None:
    """Error text fit for XCom: the secret removed (defence in depth) and bounded in size."""
    if text is None:
        return None
    text = text.replace(secret, "***") if secret else text
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


def failed_pairs(results: Iterable[Mapping[str, Any]]) -> list[str]:
    return [
        f"{item['advertiser_id']}/{item['report_type']}: {item.get('error') or 'failed'}"
        for item in results
        if item.get("status") != "success"
    ]


def missing_pairs(payload: Mapping[str, Any], results: Iterable[Mapping[str, Any]]) -> list[str]:
    """Requested advertiser/report pairs the service's answer does not account for.

    A batch is judged by its items: an answer that leaves a requested report out has not
    loaded it, whatever its top-level word says.
    """
    answered = {(str(item["advertiser_id"]), item["report_type"]) for item in results}
    return [
        f"{advertiser}/{report_type}: missing from the service's answer"
        for advertiser in payload["advertiser_ids"]
        for report_type in payload["report_types"]
        if (advertiser, report_type) not in answered
    ]


def summarize(http_status: int, body: Mapping[str, Any], label: str, secret: str) -> dict:
    """What the task returns to XCom: the run's outcome, with error texts scrubbed."""
    results = [
        {
            "advertiser_id": str(item["advertiser_id"]),
            "report_type": item["report_type"],
            "destination_table": item.get("destination_table"),
            "inserted_rows": int(item.get("inserted_rows") or 0),
            "requests": int(item.get("requests") or 0),
            "status": item["status"],
            "error": scrub(item.get("error"), secret),
        }
        for item in body.get("results", [])
    ]
    return {
        "label": label,
        "http_status": http_status,
        "status": body.get("status"),  # informative only: batches are judged by their items
        "request_id": body.get("request_id"),
        "start_date": body.get("start_date"),
        "end_date": body.get("end_date"),
        "total_inserted_rows": int(body.get("total_inserted_rows") or 0),
        "errors_count": int(body.get("errors_count") or 0),
        "results": results,
    }


def rejection_message(http_status: int, body: Mapping[str, Any] | None, secret: str) -> str:
    body = body or {}
    details = [f"{e.get('field')}: {e.get('message')}" for e in body.get("errors", [])]
    message = f"the service rejected the request (HTTP {http_status}): {body.get('message')}"
    if details:
        message += " [" + "; ".join(details) + "]"
    if http_status in (401, 403):
        message += "; grant roles/run.invoker on the service to the Composer service account"
    return scrub(message + f" (request_id {body.get('request_id')})", secret) or message


def handle_response(http_status: int, text: str, label: str, secret: str) -> dict[str, Any]:
    """200/207 → summary; 4xx → fail without retry; 5xx, 502 (all failed) → retryable error.

    502 means every report of the batch failed (TikTok or BigQuery refused the whole run):
    usually transient, so it is retried, at the price of two useless retries when the cause
    is permanent (a revoked token, a missing grant).
    """
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = None
    if http_status in (200, 207) and body and "results" in body:
        return summarize(http_status, body, label, secret)
    if http_status == 502 and body and "results" in body:
        summary = summarize(http_status, body, label, secret)
        raise ServiceUnavailable(
            f"{label}: every report failed (HTTP 502, request_id {summary['request_id']}): "
            + "; ".join(failed_pairs(summary["results"]))
        )
    if 400 <= http_status < 500 and http_status not in RETRYABLE_CLIENT_STATUSES:
        raise AirflowFailException(f"{label}: " + rejection_message(http_status, body, secret))
    shown = scrub(text, secret) if body is None else (body.get("message") or "")
    raise ServiceUnavailable(f"{label}: HTTP {http_status} from the service: {shown}")


def discover_advertisers(service_url: str, token: str) -> dict[str, Any]:
    """The service's GET /advertisers: every advertiser the token reaches, active or not."""
    import requests

    response = requests.get(
        f"{service_url}/advertisers",
        headers={**auth_headers(service_url), "Access-Token": token},
        timeout=HTTP_TIMEOUT,
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        message = scrub(body.get("message") if isinstance(body, dict) else response.text, token)
        detail = ""
        if isinstance(body, dict) and body.get("errors"):
            detail = ": " + "; ".join(f"{e['field']}: {e['message']}" for e in body["errors"])
        error = f"advertiser discovery failed: HTTP {response.status_code}: {message}{detail}"
        if 400 <= response.status_code < 500 and response.status_code not in (
            RETRYABLE_CLIENT_STATUSES
        ):
            raise AirflowFailException(scrub(error, token))
        raise ServiceUnavailable(scrub(error, token))
    return body


def discovered_ids(
    found: Mapping[str, Any], previous: Iterable[str] | None
) -> tuple[list[str], list[str]]:
    """(active ids to run, one warning per account not run: skipped now or lost since the
    previous run). Lost accounts are reported once, never retried."""
    accounts = found.get("advertisers") or []
    active = [a["advertiser_id"] for a in accounts if a.get("active")]
    warnings = [
        f"{a['advertiser_id']} ({a.get('name')}): {a.get('reason')}"
        for a in accounts
        if not a.get("active")
    ]
    listed = {a["advertiser_id"] for a in accounts}
    warnings += [
        f"{advertiser_id}: granted at the previous run, not any more (access removed)"
        for advertiser_id in previous or ()
        if advertiser_id not in listed
    ]
    return active, warnings


def post_run(service_url: str, payload: Mapping[str, Any], token: str) -> tuple[int, str]:
    import requests

    response = requests.post(
        f"{service_url}/run",
        json={**payload, "access_token": token},
        headers=auth_headers(service_url),
        timeout=HTTP_TIMEOUT,
    )
    return response.status_code, response.text


# --------------------------------------------------------------------------- results


def check_results(summaries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Rows per destination table and every failed advertiser/report pair of the run.

    A batch is judged by its items and its ``errors_count``, never by its top-level word
    (the service answers "Ok" when every report loaded; the words may change, the items
    may not): every item must be ``success``, none may be missing, and ``errors_count``
    must not count failures the items do not show.
    """
    rows_by_table: dict[str, int] = {}
    failures: list[str] = []
    batches = 0
    for summary in summaries:
        batches += 1
        for item in summary["results"]:
            table = item.get("destination_table") or item["report_type"]
            rows_by_table[table] = rows_by_table.get(table, 0) + item["inserted_rows"]
        pairs = failed_pairs(summary["results"])
        failures.extend(pairs)
        failures.extend(summary.get("missing") or [])
        if summary["errors_count"] > len(pairs):
            failures.append(
                f"{summary['label']}: errors_count {summary['errors_count']} but "
                f"{len(pairs)} failed report(s) listed (request_id {summary['request_id']})"
            )
    return {
        "batches": batches,
        "total_inserted_rows": sum(rows_by_table.values()),
        "rows_by_table": dict(sorted(rows_by_table.items())),
        "failures": failures,
    }


# --------------------------------------------------------------------------- backfill


def post_plan(service_url: str, body: Mapping[str, Any], token: str) -> list[dict[str, Any]]:
    """POST /plan (one page-1 request per advertiser × report type): the sizing of a backfill."""
    import requests

    response = requests.post(
        f"{service_url}/plan",
        json={**body, "access_token": token},
        headers=auth_headers(service_url),
        timeout=HTTP_TIMEOUT,
    )
    if response.status_code != 200:
        body_json = None
        with contextlib.suppress(ValueError):
            body_json = response.json()
        message = rejection_message(response.status_code, body_json, token)
        if 400 <= response.status_code < 500:
            raise AirflowFailException(f"plan: {message}")
        raise ServiceUnavailable(f"plan: {message}")
    return response.json()["items"]


def backfill_state_name(config: Mapping[str, Any], conf: Mapping[str, Any]) -> str:
    """The Variable holding what a backfill (this conf, this destination) already loaded."""
    key = backfill.conf_key(
        {
            "conf": conf,
            "project_id": config["project_id"],
            "dataset_id": config["dataset_id"],
            "advertiser_ids": conf.get("advertiser_ids") or config["advertiser_ids"],
            "report_types": conf.get("report_types") or config["report_types"],
        }
    )
    return BACKFILL_STATE_PREFIX + key


def read_backfill_state(name: str) -> dict[str, list[list[str]]]:
    raw = get_variable(name)
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


def build_units(
    config: Mapping[str, Any],
    conf: Mapping[str, Any],
    items: list[dict[str, Any]],
    state: Mapping[str, list[list[str]]],
    parallel: int,
) -> list[dict[str, Any]]:
    """The backfill's units as call requests, minus those a previous run already loaded."""
    start, end = (date.fromisoformat(day) for day in conf["window"])
    advertisers = conf.get("advertiser_ids") or config["advertiser_ids"]
    report_types = conf.get("report_types") or config["report_types"]
    share = config["app_qps"] / parallel  # each unit's share when ``parallel`` run at once
    units = backfill.plan_units(
        items,
        advertisers,
        report_types,
        start,
        end,
        max_qps=min(share, config["app_qpm"] / parallel / 60),
        unit_seconds=config["run_deadline_seconds"] * backfill.UNIT_DEADLINE_SHARE,
        batch_size=config["batch_size"],
        parallel=parallel,
    )
    todo = [unit for unit in units if not backfill.is_done(state, unit)]
    max_qps, max_qpm = rate_budget(config["app_qps"], config["app_qpm"], parallel, len(todo))
    return [
        {
            "service_url": config["service_url"],
            "label": unit.label,
            "unit": unit.to_json(),
            "payload": {
                "advertiser_ids": unit.advertiser_ids,
                "project_id": config["project_id"],
                "dataset_id": config["dataset_id"],
                "report_types": unit.report_types,
                "start_date": unit.start.isoformat(),
                "end_date": unit.end.isoformat(),
                "if_exists": "replace",
                "max_qps": max_qps,
                "max_qpm": max_qpm,
            },
        }
        for unit in todo
    ]


def plan_backfill(
    config: Mapping[str, Any], conf: Mapping[str, Any], token: str, parallel: int
) -> tuple[list[dict[str, Any]], int]:
    """Size every advertiser × report type with /plan, then cut the window into units.

    The sample is the window's last (at most) 30 days: recent days are the busiest of an
    account's history, so older spans are over- rather than under-estimated.
    """
    start, end = (date.fromisoformat(day) for day in conf["window"])
    sample_start = max(start, end - timedelta(days=backfill.PLAN_SAMPLE_DAYS - 1))
    advertisers = conf.get("advertiser_ids") or config["advertiser_ids"]
    report_types = conf.get("report_types") or config["report_types"]
    items: list[dict[str, Any]] = []
    max_qps, max_qpm = rate_budget(config["app_qps"], config["app_qpm"], 1, 1)
    for batch in split_batches(advertisers, MAX_ADVERTISERS_PER_REQUEST):
        items += post_plan(
            config["service_url"],
            {
                "advertiser_ids": batch,
                "report_types": report_types,
                "start_date": sample_start.isoformat(),
                "end_date": end.isoformat(),
                "max_qps": max_qps,
                "max_qpm": max_qpm,
            },
            token,
        )
    state = read_backfill_state(backfill_state_name(config, config["conf"]))  # as first given
    units = build_units(config, conf, items, state, parallel)
    return units, sum(1 for _ in items)


def unit_post(request: Mapping[str, Any], token: str) -> Callable[[Mapping[str, Any]], dict]:
    """POST one part of a unit; per-item answers (200, 207, 502) come back as summaries."""

    def post(payload: Mapping[str, Any]) -> dict[str, Any]:
        status, text = post_run(request["service_url"], payload, token)
        label = f"{request['label']} ({payload['start_date']}..{payload['end_date']})"
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if status in (200, 207, 502) and isinstance(body, dict) and "results" in body:
            summary = summarize(status, body, label, token)
        else:
            summary = handle_response(status, text, label, token)  # raises for 4xx/5xx
        summary["missing"] = missing_pairs(payload, summary["results"])
        return summary

    return post


def backfill_summary(outcomes: list[dict[str, Any] | None], labels: list[str]) -> dict:
    """Per unit rows, requests, seconds and status, and the totals."""
    units = []
    for label, outcome in zip(labels, outcomes, strict=True):
        if outcome is None:
            units.append({"label": label, "status": "not run", "rows": 0, "requests": 0,
                          "seconds": 0.0, "failures": []})  # fmt: skip
        else:
            units.append({k: v for k, v in outcome.items() if k != "parts"})
    return {
        "units": units,
        "total_rows": sum(u["rows"] for u in units),
        "total_requests": sum(u["requests"] for u in units),
        "total_seconds": round(sum(u["seconds"] for u in units), 1),
        "failed_units": [u["label"] for u in units if u["status"] != "success"],
    }


# --------------------------------------------------------------------------- the DAG


def _parallel_batches_at_parse_time() -> int:
    """TIKTOK_MAX_PARALLEL_BATCHES for ``max_active_tis_per_dag``, fixed when the file is parsed.

    Never fails the parse: an unreadable or malformed value gives the default here, and
    validate_config then fails the run naming the Variable. A change takes effect after the
    next parse (about 30 s); prepare_payload divides the rate budget by the larger of this and
    the current value, so the split stays safe meanwhile.
    """
    try:
        raw = get_variable(PARALLEL_VAR)
        return parse_positive_int(raw, maximum=MAX_PARALLEL_BATCHES) if raw else 0
    except Exception:
        return 0


PARSED_PARALLEL_BATCHES = _parallel_batches_at_parse_time()


@dag(
    dag_id=DAG_ID,
    description="TikTok Ads reports → BigQuery through the tiktok-ads-api Cloud Run service",
    schedule=SCHEDULE,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 0},
    tags=["tiktok", "bigquery", "cloud-run"],
    doc_md=__doc__,
)
def tiktok_ads_to_bigquery() -> None:
    @task(retries=0, multiple_outputs=False)
    def validate_config(**context: Any) -> dict[str, Any]:
        """Every Variable and the run conf checked at once; one message names each problem."""
        config, problems = parse_config({name: get_variable(name) for name in CONFIG_VARIABLES})
        if get_variable(TOKEN_VAR) is None:  # checked, never kept
            problems.insert(1, f"{TOKEN_VAR}: missing (required)")
        try:
            conf = parse_conf(context["dag_run"].conf)
        except ConfigError as exc:
            problems.append(f"run conf: {exc}")
            conf = None
        if conf and conf.get("report_types"):
            unknown = unknown_report_types({**config, "report_types": conf["report_types"]})
            if unknown:
                problems.append(f"run conf: unknown report types {unknown}")
        if problems:
            raise AirflowFailException("invalid configuration: " + "; ".join(problems))
        config["conf"] = conf  # a backfill: planned into units (dags/tiktok_backfill.py)
        config["conf_window"] = conf["window"] if conf else None
        log.info("configuration: %s", {k: v for k, v in config.items() if k != "advertiser_ids"})
        warning = rate_share_warning(config["app_qps"], config["parallel_batches"])
        if warning:
            log.warning(warning)
        if config["advertiser_ids"] == DISCOVER_ALL:
            log.info("advertisers: every one the token was granted (discovered at prepare_payload)")
        else:
            log.info("%d advertisers", len(config["advertiser_ids"]))
        return config

    @task(retries=0, multiple_outputs=False)
    def prepare_payload(config: dict[str, Any], **context: Any) -> list[dict[str, Any]]:
        """The run's window and one request per batch; the budget is split across batches."""
        parallel = max(config["parallel_batches"], PARSED_PARALLEL_BATCHES)
        if config.get("conf"):
            conf = config["conf"]
            if not conf.get("advertiser_ids") and config["advertiser_ids"] == DISCOVER_ALL:
                conf = {**conf, "advertiser_ids": _discover(config["service_url"], context)}
            token = get_variable(TOKEN_VAR)
            if token is None:
                raise AirflowFailException(f"{TOKEN_VAR}: missing (required)")
            mask_secret(token)
            units, sampled = plan_backfill(config, conf, token, parallel)
            estimated = sum(u["unit"]["estimated_requests"] for u in units)
            log.info(
                "backfill %s..%s: %d items sampled, %d units to run (%d estimated requests, "
                "~%.0f s at %s QPS), %s QPS / %s QPM each",
                *conf["window"],
                sampled,
                len(units),
                estimated,
                estimated / config["app_qps"],
                config["app_qps"],
                units[0]["payload"]["max_qps"] if units else "-",
                units[0]["payload"]["max_qpm"] if units else "-",
            )
            return units
        span_days = None
        if config["conf_window"]:
            start, end = (date.fromisoformat(day) for day in config["conf_window"])
        else:
            start, end, span_days = scheduled_window(run_day(context), config)
        if config["advertiser_ids"] == DISCOVER_ALL:
            config = {**config, "advertiser_ids": _discover(config["service_url"], context)}
        if span_days and config["settlement_days"] == AUTO and not config["conf_window"]:
            days = fetch_settlement_days(config, config["advertiser_ids"])
            requests_ = build_auto_settlement(
                {**config, "parallel_batches": parallel}, run_day(context), days
            )
        else:
            requests_ = build_requests(
                {**config, "parallel_batches": parallel}, start, end, span_days
            )
        if not requests_:
            log.warning("no active advertiser to run")
            return []
        log.info(
            "%s window %s..%s, %d POSTs, %s QPS / %s QPM each",
            "settlement" if span_days else "run",
            start,
            end,
            len(requests_),
            requests_[0]["payload"]["max_qps"],
            requests_[0]["payload"]["max_qpm"],
        )
        return requests_

    def _discover(service_url: str, context: Mapping[str, Any]) -> list[str]:
        """Active advertisers from the service; skipped and lost ones logged as warnings."""
        token = get_variable(TOKEN_VAR)
        if token is None:
            raise AirflowFailException(f"{TOKEN_VAR}: missing (required)")
        mask_secret(token)
        ti = context["ti"]
        try:  # the previous run's list, to report accounts whose access was removed
            previous = ti.xcom_pull(
                task_ids="prepare_payload", key="discovered", include_prior_dates=True
            )
        except Exception:  # an XCom backend without history: nothing to compare
            previous = None
        active, warnings = discovered_ids(discover_advertisers(service_url, token), previous)
        for warning in warnings:
            log.warning("advertiser not run: %s", warning)
        ti.xcom_push(key="discovered", value=active)
        log.info("%d advertisers discovered and active, %d not run", len(active), len(warnings))
        return active

    @task(
        retries=2,
        multiple_outputs=False,  # one XCom per batch, not one per key
        retry_delay=timedelta(minutes=5),
        max_active_tis_per_dag=PARSED_PARALLEL_BATCHES or DEFAULT_PARALLEL_BATCHES,
        execution_timeout=timedelta(minutes=20),
        map_index_template="{{ batch_label }}",
    )
    def call_cloud_run_api(request: dict[str, Any]) -> dict[str, Any]:
        """POST one batch; the access token joins the payload here and is never returned."""
        get_current_context()["batch_label"] = request["label"]  # the mapped instance's name
        token = get_variable(TOKEN_VAR)
        if token is None:
            raise AirflowFailException(f"{TOKEN_VAR}: missing (required)")
        mask_secret(token)
        if "unit" in request:  # a backfill unit: split and posted again until done
            outcome = backfill.run_unit(
                request["label"], request["payload"], unit_post(request, token), log.info
            ).to_json()
            get_current_context()["ti"].xcom_push(key="unit_outcome", value=outcome)
            if outcome["failures"]:
                raise AirflowFailException(
                    f"{request['label']}: {len(outcome['failures'])} failure(s): "
                    + "; ".join(outcome["failures"])
                )
            return outcome
        status, text = post_run(request["service_url"], request["payload"], token)
        summary = handle_response(status, text, request["label"], token)
        summary["missing"] = missing_pairs(request["payload"], summary["results"])
        log.info(
            "%s: HTTP %d, %s, %d rows, %d errors (request_id %s)",
            summary["label"],
            status,
            summary["status"],
            summary["total_inserted_rows"],
            summary["errors_count"],
            summary["request_id"],
        )
        return summary

    @task(retries=0, multiple_outputs=False, trigger_rule=_SUMMARY_TRIGGER)
    def validate_result(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """Fail the run when any report failed, listing each failed advertiser/report pair;
        for a backfill, list every unit (rows, requests, seconds, status) and the totals."""
        ti = get_current_context()["ti"]
        requests_ = ti.xcom_pull(task_ids="prepare_payload") or []
        if requests_ and "unit" in requests_[0]:
            return summarize_backfill(ti, requests_)
        summaries = [s for s in summaries if s]
        if len(summaries) < len(requests_):
            raise AirflowFailException(
                f"{len(requests_) - len(summaries)} of {len(requests_)} batch(es) failed "
                "(see call_cloud_run_api); clear them to run them again"
            )
        outcome = check_results(summaries)
        for table, rows in outcome["rows_by_table"].items():
            log.info("%s: %d rows", table, rows)
        if outcome["failures"]:
            raise AirflowFailException(
                f"{len(outcome['failures'])} report(s) failed: " + "; ".join(outcome["failures"])
            )
        log.info("%d batches, %d rows", outcome["batches"], outcome["total_inserted_rows"])
        return outcome

    def summarize_backfill(ti: Any, requests_: list[dict[str, Any]]) -> dict[str, Any]:
        outcomes = [
            ti.xcom_pull(task_ids="call_cloud_run_api", key="unit_outcome", map_indexes=index)
            for index in range(len(requests_))
        ]
        summary = backfill_summary(outcomes, [r["label"] for r in requests_])
        for unit in summary["units"]:
            log.info(
                "%s: %s, %d rows, %d requests, %.1f s%s",
                unit["label"],
                unit["status"],
                unit["rows"],
                unit["requests"],
                unit["seconds"],
                ("; " + "; ".join(unit["failures"])) if unit["failures"] else "",
            )
        log.info(
            "backfill: %d units, %d rows, %d requests, %.1f unit-seconds; %d unit(s) not done",
            len(summary["units"]),
            summary["total_rows"],
            summary["total_requests"],
            summary["total_seconds"],
            len(summary["failed_units"]),
        )
        config = ti.xcom_pull(task_ids="validate_config")
        name = backfill_state_name(config, config["conf"])
        state = read_backfill_state(name)
        for outcome in outcomes:
            if outcome:
                backfill.record_done(state, outcome)
        Variable.set(name, json.dumps(state))
        if summary["failed_units"]:
            raise AirflowFailException(
                f"{len(summary['failed_units'])} unit(s) not done: "
                + "; ".join(summary["failed_units"])
                + " (clear their call_cloud_run_api tasks, or trigger the same conf, to resume)"
            )
        return summary

    requests_ = prepare_payload(validate_config())
    validate_result(call_cloud_run_api.expand(request=requests_))


tiktok_ads_to_bigquery()
