"""The simulated API, independent of HTTP plumbing: ``SimulatorApp.handle`` maps a request to a ``Reply``.

Order of checks for an API request, as a gateway in front of TikTok's logic would do it:
route (HTTP 404/405) -> ``Access-Token`` (40104/40105/40102) -> app rate limit (40100,
counted at arrival) -> parameters (40002) -> advertiser permission (40001) -> advertiser
rate limit (40133, optional) -> hold (a test's, ``holds.py``) -> injected fault -> latency
-> data.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import orjson

from . import audience, entities, errors, gmv_max
from .errors import ApiError
from .faults import FaultInjector, FaultPlan
from .holds import Holds
from .metrics import DEFAULT_METRICS, LEVELS
from .query import parse_report_query
from .ratelimit import AdvertiserRateLimiter, AppRateLimiter
from .report import ReportBuilder, ReportQuery, Selection, builder_for, served_rows
from .settlement import ATTRIBUTION_DAYS
from .stats import Stats
from .world import DEFAULT_ORIGINS, World, mix64

API_PREFIX = "/open_api/v1.3/"
REPORT_PATH = API_PREFIX + "report/integrated/get/"
ADVERTISER_INFO_PATH = API_PREFIX + "advertiser/info/"
OAUTH_ADVERTISERS_PATH = API_PREFIX + "oauth2/advertiser/get/"
GMV_MAX_STORE_LIST_PATH = API_PREFIX + gmv_max.STORE_LIST_PATH
GMV_MAX_REPORT_PATH = API_PREFIX + gmv_max.REPORT_PATH
ENTITY_PATHS = {API_PREFIX + path: level for path, level in entities.LEVEL_OF_PATH.items()}
DEFAULT_TOKEN = "sim-token"
ALL_ADVERTISERS = "*"
THROTTLE_HEADER = "X-Tt-Ads-Throttle"
THROTTLE_MESSAGE = (
    "Number of ad ids is equal or more than 20k, only return the top 20k id's results, "
    "sorting by create time desc order."
)
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"


@dataclass
class Reply:
    """What to send back. ``action`` "reset" drops the connection, "truncate" sends half the body."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None


@dataclass
class Outcome:
    """A reply plus what the stats need to know about it."""

    reply: Reply
    code: int | None = None
    fault: str | None = None
    rows: int = 0


@dataclass
class Settings:
    """Runtime-tunable behaviour (``configure``). Defaults: TikTok's Basic tier, no latency."""

    qps: int = 10
    qpm: int = 600
    rate_limit: bool = True
    count_rejected: bool = False
    latency: float = 0.0
    latency_per_row: float = 0.0
    advertiser_qps: int | None = None
    throttle_threshold: int = 20_000
    app_id: str = "1234567890"
    app_secret: str = "sim-app-secret"
    # TikTok's sandbox refuses discovery and account info (docs/tiktok_api_beyond.md §7.1).
    sandbox: bool = False
    # The simulator's "today" (YYYY-MM-DD) for objects that change over time; None: UTC today.
    as_of: str | None = None
    # advertiser id -> /advertiser/info/ status, over the seeded ones (e.g. STATUS_DISABLE).
    advertiser_status: dict[str, str] = field(default_factory=dict)
    # data_level -> metric names refused there with 40002 "Invalid metric fields": which
    # metrics each level offers is not fully documented (e.g. conversions at the advertiser
    # level), so clients must survive a stricter API than the catalog assumes.
    refused_metrics: dict[str, list[str]] = field(default_factory=dict)
    # data_level -> campaign ids (or "PROMOTE") whose rows that level leaves out, as if TikTok
    # changed a default filter at some levels only: the levels then do not add up. Under
    # "GMV_MAX" (``gmv_max.DROPPED``): GMV Max campaigns its report leaves out (TT_SHOP not).
    dropped_campaigns: dict[str, list[str]] = field(default_factory=dict)
    # Days a day's conversions keep growing after it (``settlement``), while ``as_of`` is set.
    attribution_days: int = ATTRIBUTION_DAYS
    # Hours after a day ends before its AUDIENCE rows are served (TikTok: ~16 h); None: none.
    audience_latency_hours: float | None = None
    # Whether one campaign_system_origins filter may hold several origins: TikTok's docs only
    # show one value at a time (docs/tiktok_api_beyond.md §1.1), so both answers are served, to
    # test both paths.
    mixed_origins: bool = True
    # 40067 "Your query is too large" above this size (None: never). The size is days x
    # metrics, or the report's rows x metrics with ``query_size_measure`` "rows_metrics"; a
    # limit below the metric count of a one-day request makes even one day fail.
    query_size_limit: int | None = None
    query_size_measure: str = "days_metrics"
    # A request without ``spend`` leaves out about a quarter of its rows, a different quarter
    # for each metric list (TikTok omits rows without data per request): the metric groups
    # of one level then hold different rows, which their join must neither lose nor
    # duplicate. (A request with spend keeps every row that delivered.)
    sparse_parts: bool = False
    # metric name -> a word served instead of its value on every report row that holds it
    # (e.g. {"campaign_budget": "unlimited"}): an attribute must then load as null with a
    # warning, a delivery metric fail its report (TikTok's values are not guaranteed typed).
    worded_metrics: dict[str, str] = field(default_factory=dict)
    # The GMV Max report's own budget (docs/tiktok_api_gmv_smartplus.md §1.1); None: the
    # world's (``World(gmv_max_qps=8, gmv_max_qpm=240, gmv_max_daily_quota=20_000)``).
    gmv_max_qps: int | None = None
    gmv_max_qpm: int | None = None
    gmv_max_daily_quota: int | None = None
    # Advertisers whose GMV Max permission is revoked now, beside the world's (40001 on both
    # GMV Max endpoints): an account that loses it in the middle of a history.
    gmv_max_revoked_advertisers: list[str] = field(default_factory=list)
    # Whether the app holds the Upgraded Smart+ ads permission: without it,
    # /smart_plus/ad/get/ answers 40001 (the reports still show the creatives and ads).
    smart_plus_scope: bool = True

    def update(self, key: str, value: Any) -> None:
        if key in ("qps", "qpm", "throttle_threshold", "attribution_days"):
            value = _positive_int(key, value)
        elif key == "query_size_limit":
            value = None if value is None else _positive_int(key, value)
        elif key == "query_size_measure":
            if value not in ("days_metrics", "rows_metrics"):
                raise ValueError("query_size_measure must be days_metrics or rows_metrics")
        elif key in ("advertiser_qps", "gmv_max_qps", "gmv_max_qpm", "gmv_max_daily_quota"):
            value = None if value is None else _positive_int(key, value)
        elif key == "gmv_max_revoked_advertisers":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key} must be a list of advertiser ids")
        elif key in ("latency", "latency_per_row"):
            value = float(value)
            if value < 0:
                raise ValueError(f"{key} must be >= 0")
        elif key == "as_of":
            value = None if value is None else date.fromisoformat(str(value)).isoformat()
        elif key == "advertiser_status":
            if not isinstance(value, dict) or not all(
                v in entities.ADVERTISER_STATUSES for v in value.values()
            ):
                raise ValueError(
                    f"advertiser_status values must be in {entities.ADVERTISER_STATUSES}"
                )
            value = {str(k): v for k, v in value.items()}
        elif key == "audience_latency_hours":
            value = None if value is None else float(value)
            if value is not None and value < 0:
                raise ValueError(f"{key} must be >= 0")
        elif key in (
            "rate_limit",
            "count_rejected",
            "sandbox",
            "mixed_origins",
            "sparse_parts",
            "smart_plus_scope",
        ):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be a boolean")
        elif key == "worded_metrics":
            if not isinstance(value, dict) or not all(
                isinstance(v, str) and v for v in value.values()
            ):
                raise ValueError(f"{key} must map metric names to non-empty words")
            value = {str(k): v for k, v in value.items()}
        elif key in ("app_id", "app_secret"):
            value = str(value)
        elif key in ("refused_metrics", "dropped_campaigns"):
            if not isinstance(value, dict) or not all(
                isinstance(names, list) and all(isinstance(n, str) for n in names)
                for names in value.values()
            ):
                raise ValueError(f"{key} must map data levels to lists of names")
            value = {str(level): list(names) for level, names in value.items()}
        setattr(self, key, value)


SETTING_NAMES = frozenset(f.name for f in fields(Settings))
# Fault kinds that shape a normal report answer rather than replace it (see ``faults``).
PAGE_FAULTS = frozenset({"ok", "slow", "truncated", "short_page", "drift", "repeat"})


def _repeated(selection: Any, first: int, last: int) -> tuple[Any, int, int]:
    """The page ``first..last`` with its first row replaced by the row before it (the last
    row of the page before; on page 1, the page's own last row): a row that moved while the
    list was paged comes twice, and the row it replaced never (``repeat`` fault)."""
    if last - first < 1 or (first == 0 and last - first < 2):
        return selection, first, last
    keys = list(selection.keys[first:last])
    keys[0] = selection.keys[first - 1] if first else keys[-1]
    if isinstance(selection, Selection):
        moved = Selection(selection.entities, selection.first_day, selection.throttled)
        moved.keys.extend(keys)
    else:  # an audience selection: keys in a list
        moved = dataclasses.replace(selection, keys=keys)
    return moved, 0, len(keys)


def _worded(rows: list[dict[str, Any]], words: dict[str, str]) -> list[dict[str, Any]]:
    """``rows`` with each metric of ``words`` written as its word (``worded_metrics``)."""
    if not words:
        return rows
    worded = []
    for row in rows:
        metrics = row.get("metrics") or {}
        changed = {name: word for name, word in words.items() if name in metrics}
        worded.append({**row, "metrics": {**metrics, **changed}} if changed else row)
    return worded


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer")
    return value


def request_id() -> str:
    """``YYYYMMDDhhmmss`` (UTC) followed by 18 uppercase hex characters, fresh every time."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + os.urandom(9).hex().upper()


def envelope(code: int, message: str, data: Any) -> tuple[bytes, str]:
    rid = request_id()
    body = orjson.dumps({"code": code, "message": message, "request_id": rid, "data": data})
    return body, rid


def json_reply(code: int, message: str, data: Any, headers: dict[str, str] | None = None) -> Reply:
    body, rid = envelope(code, message, data)
    return Reply(200, body, JSON, {"X-Tt-Logid": rid, **(headers or {})})


def error_reply(error: ApiError) -> Reply:
    return json_reply(error.code, error.message, {})


def text_reply(status: int, text: str, content_type: str = TEXT) -> Reply:
    return Reply(status, text.encode(), content_type)


def http_fault_reply(kind: str) -> Reply:
    status = int(kind[:3])
    phrase = HTTPStatus(status).phrase
    if kind.endswith("_html"):
        page = (
            f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {phrase}</h1></center>\r\n</body>\r\n</html>\r\n"
        )
        return text_reply(status, page, HTML)
    return text_reply(status, f"{status} {phrase}")


def control_reply(data: Any, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(data), JSON)


def first_values(query_string: str) -> dict[str, str]:
    """Query parameters, first value of each (blank values kept: ``page=`` is an error, not absent)."""
    return {k: v[0] for k, v in parse_qs(query_string, keep_blank_values=True).items()}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


class SimulatorApp:
    """State and request handling of the simulator (thread-safe)."""

    def __init__(
        self,
        world: World,
        tokens: Mapping[str, Iterable[str] | str] | None = None,
        **settings: Any,
    ) -> None:
        self.world = world
        self.entity_book = entities.EntityBook(world)
        self._initial_grants = self._grants_from(tokens or {DEFAULT_TOKEN: ALL_ADVERTISERS})
        self._initial_settings = Settings()
        for key, value in settings.items():
            if key not in SETTING_NAMES:
                raise TypeError(f"unknown simulator setting {key!r}")
            self._initial_settings.update(key, value)
        self._lock = threading.Lock()
        self.stats = Stats()
        self.faults = FaultInjector()
        self.holds = Holds()
        self._restore()

    def _grants_from(self, tokens: Mapping[str, Iterable[str] | str]) -> dict[str, set[str]]:
        return {
            token: set(self.world.advertiser_ids if ids == ALL_ADVERTISERS else ids)
            for token, ids in tokens.items()
        }

    def _restore(self) -> None:
        """Back to the constructor's configuration: tokens, grants, limits, no faults."""
        self.settings = Settings(**asdict(self._initial_settings))
        self.grants = {token: set(ids) for token, ids in self._initial_grants.items()}
        self.revoked: set[str] = set()
        self.expired: set[str] = set()
        self.app_limiter = AppRateLimiter(
            self.settings.qps, self.settings.qpm, self.settings.count_rejected
        )
        self.advertiser_limiter = AdvertiserRateLimiter(self.settings.advertiser_qps)
        self.gmv_max_budget = gmv_max.GmvMaxBudget(
            *self._gmv_max_limits(), self.settings.count_rejected
        )
        self.faults.set_plan(None)

    def _gmv_max_limits(self) -> tuple[int, int, int]:
        """QPS, QPM and daily quota of the GMV Max report: the settings', else the world's."""
        s, w = self.settings, self.world
        return (
            s.gmv_max_qps or w.gmv_max_qps,
            s.gmv_max_qpm or w.gmv_max_qpm,
            s.gmv_max_daily_quota or w.gmv_max_daily_quota,
        )

    # ------------------------------------------------------------------ control (Python)
    def reset(self) -> None:
        """Restore the initial configuration, clear faults, rate windows and stats."""
        with self._lock:
            self._restore()
        self.holds.release()
        self.stats.reset()

    def set_faults(self, plan: dict[str, Any] | FaultPlan | None) -> dict[str, Any]:
        return self.faults.set_plan(plan).to_dict()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings (see ``Settings``) and tokens/permissions; returns the new config.

        Token/permission keys: ``revoke_token`` (-> 40105), ``expire_token`` (-> 40102),
        ``restore_token``, ``remove_permission`` / ``grant_permission`` (an advertiser id for
        every token, or ``{"advertiser_id": ..., "token": ...}``) and ``add_token``
        (``{"token": ..., "advertiser_ids": [...] | "*"}``).
        """
        with self._lock:
            for key, value in changes.items():
                self._apply(key, value)
            self.app_limiter.count_rejected = self.settings.count_rejected
            if {"qps", "qpm"} & changes.keys():
                self.app_limiter.configure(self.settings.qps, self.settings.qpm)
            self.advertiser_limiter.qps = self.settings.advertiser_qps
            self.gmv_max_budget.count_rejected = self.settings.count_rejected
            if {"gmv_max_qps", "gmv_max_qpm", "gmv_max_daily_quota"} & changes.keys():
                self.gmv_max_budget.configure(*self._gmv_max_limits())
        return self.config()

    def _apply(self, key: str, value: Any) -> None:
        if key in SETTING_NAMES:
            self.settings.update(key, value)
        elif key == "revoke_token":
            self.revoked.add(str(value))
        elif key == "expire_token":
            self.expired.add(str(value))
        elif key == "restore_token":
            self.revoked.discard(str(value))
            self.expired.discard(str(value))
        elif key in ("remove_permission", "grant_permission"):
            advertiser_id, tokens = self._permission_target(value)
            for token in tokens:
                grants = self.grants.setdefault(token, set())
                if key == "remove_permission":
                    grants.discard(advertiser_id)
                else:
                    grants.add(advertiser_id)
        elif key == "add_token":
            if not isinstance(value, dict) or "token" not in value:
                raise ValueError('add_token needs {"token": ..., "advertiser_ids": [...] | "*"}')
            ids = value.get("advertiser_ids", ALL_ADVERTISERS)
            self.grants.update(self._grants_from({str(value["token"]): ids}))
        else:
            raise ValueError(f"unknown config key {key!r}")

    def _permission_target(self, value: Any) -> tuple[str, list[str]]:
        if isinstance(value, dict):
            token = value.get("token")
            return str(value["advertiser_id"]), [token] if token else list(self.grants)
        return str(value), list(self.grants)

    def config(self) -> dict[str, Any]:
        with self._lock:
            return {
                **asdict(self.settings),
                "tokens": {token: sorted(ids) for token, ids in self.grants.items()},
                "revoked_tokens": sorted(self.revoked),
                "expired_tokens": sorted(self.expired),
            }

    # ------------------------------------------------------------------ dispatch
    def handle(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        arrived: float | None = None,
    ) -> Reply:
        """``arrived``: when the request reached the server (wall clock), if known."""
        if path.startswith("/_sim/"):
            return self._control(method, path, first_values(query_string), body)
        routes: dict[str, Callable[[dict[str, str], str], Outcome]] = {
            REPORT_PATH: self._report,
            ADVERTISER_INFO_PATH: self._advertiser_info,
            OAUTH_ADVERTISERS_PATH: self._oauth_advertisers,
            GMV_MAX_STORE_LIST_PATH: self._gmv_max_store_list,
            GMV_MAX_REPORT_PATH: self._gmv_max_report,
            **{p: functools.partial(self._entity_list, lvl) for p, lvl in ENTITY_PATHS.items()},
        }
        route = routes.get(path)
        if route is None:
            return text_reply(404, "404 page not found")
        if method != "GET":
            return text_reply(405, "405 method not allowed")
        return self._api(route, path, first_values(query_string), headers, arrived)

    def _api(
        self,
        route: Callable[[dict[str, str], str], Outcome],
        path: str,
        params: dict[str, str],
        headers: Mapping[str, str],
        arrived: float | None = None,
    ) -> Reply:
        arrived = time.time() if arrived is None else arrived
        self.stats.begin(path)
        try:
            token = self._admit(headers, arrived, path)
            outcome = route(params, token)
        except ApiError as error:
            outcome = Outcome(error_reply(error), code=error.code)
        except Exception:  # a simulator bug: answer 500 rather than silently dropping the socket
            traceback.print_exc()
            outcome = Outcome(text_reply(500, "500 internal simulator error"))
        reply = outcome.reply
        self.stats.end(
            path=path,
            params=params,
            arrived=arrived,
            status=None if reply.action == "reset" else reply.status,
            code=outcome.code,
            fault=outcome.fault,
            rows=outcome.rows,
        )
        return reply

    def _admit(self, headers: Mapping[str, str], arrived: float, path: str) -> str:
        """Authenticate the token, then count the request against the app's rate limit (the
        GMV Max report against its own budget instead, on the arrival's wall clock)."""
        token = _header(headers, "Access-Token")
        if not token:
            raise ApiError(errors.TOKEN_MISSING, errors.TOKEN_MISSING_MESSAGE)
        with self._lock:
            known = token in self.grants and token not in self.revoked
            expired = token in self.expired
            rate_limit, app_id = self.settings.rate_limit, self.settings.app_id
        if not known:
            raise ApiError(errors.TOKEN_INVALID, errors.TOKEN_INVALID_MESSAGE)
        if expired:
            raise ApiError(errors.TOKEN_EXPIRED, errors.TOKEN_EXPIRED_MESSAGE)
        if path == GMV_MAX_REPORT_PATH:
            exceeded = self.gmv_max_budget.try_acquire(arrived) if rate_limit else None
            if exceeded is not None:
                limit = self.gmv_max_budget.limit(exceeded)
                raise gmv_max.rate_limited(exceeded, limit, app_id)
            self.stats.accepted_at(arrived, gmv_max=True)
            return token
        # The window counts arrivals (the server's receive time), on the monotonic clock.
        arrival = time.monotonic() - max(0.0, time.time() - arrived)
        if rate_limit and not self.app_limiter.try_acquire(arrival):
            raise errors.app_rate_limited(app_id)
        self.stats.accepted_at(arrived)
        return token

    def _authorise(self, token: str, advertiser_ids: Iterable[str]) -> None:
        """40001 unless the token is granted every advertiser (unknown advertisers never are)."""
        with self._lock:
            granted = set(self.grants.get(token, ()))
        for advertiser_id in advertiser_ids:
            if advertiser_id not in granted or not self.world.has_advertiser(advertiser_id):
                raise errors.no_permission(advertiser_id)

    # ------------------------------------------------------------------ report
    def _report(self, params: dict[str, str], token: str) -> Outcome:
        if params.get("report_type") == "TT_SHOP":
            return self._tt_shop(params, token)
        query = parse_report_query(params, (self.world.start, self.world.end))
        dropped = self.settings.dropped_campaigns.get(query.data_level)
        if dropped:
            query = dataclasses.replace(query, hidden_campaigns=frozenset(dropped))
        if self.settings.as_of:  # days still settling are served as they stood that day
            query = dataclasses.replace(
                query,
                as_of=date.fromisoformat(self.settings.as_of),
                attribution_days=self.settings.attribution_days,
            )
        refused = set(self.settings.refused_metrics.get(query.data_level, ()))
        if refused.intersection(query.metrics):
            raise errors.invalid_metrics([m for m in query.metrics if m in refused])
        if len(query.origins) > 1 and not self.settings.mixed_origins:
            raise errors.origins_not_combinable(len(query.origins))
        self._authorise(token, query.advertiser_ids)
        now = time.monotonic()
        for advertiser_id in query.advertiser_ids:
            allowed, current = self.advertiser_limiter.try_acquire(advertiser_id, REPORT_PATH, now)
            if not allowed:
                limit = self.settings.advertiser_qps or 0
                raise errors.advertiser_rate_limited(advertiser_id, current, limit)
        self._check_size(query)
        self.holds.wait_if_held(params)  # a test pins this request in flight (holds.py)
        fault, slow_seconds = self.faults.draw(query.advertiser_ids)
        fault = None if fault == "ok" else fault
        settings = self.settings
        if fault is not None and fault not in PAGE_FAULTS:
            time.sleep(settings.latency)
            return self._fault_outcome(fault, query.advertiser_ids[0])
        reply, rows = self._report_reply(query, fault)
        time.sleep(
            settings.latency
            + settings.latency_per_row * rows
            + (slow_seconds if fault == "slow" else 0.0)
        )
        if fault == "truncated":
            reply.action = "truncate"
        return Outcome(reply, code=errors.OK, fault=fault, rows=rows)

    def _check_size(self, query: ReportQuery) -> None:
        """40067 for a query above ``query_size_limit`` (docs/tiktok_api_beyond.md §3)."""
        limit = self.settings.query_size_limit
        if limit is None:
            return
        if self.settings.query_size_measure == "rows_metrics":
            selection = builder_for(self.world).select(query, self.settings.throttle_threshold)
            size = len(selection.keys) * len(query.metrics)
        else:
            size = ((query.end - query.start).days + 1) * len(query.metrics)
        if size > limit:
            raise errors.query_too_large()

    def _sparse(self, query: ReportQuery, selection: Selection) -> Selection:
        """The selection without the quarter of rows this metric list leaves out."""
        salt = mix64(int.from_bytes(query.metrics[0].encode()[:8].ljust(8, b"_"), "little"))
        kept = Selection(selection.entities, selection.first_day, selection.throttled)
        kept.keys.extend(k for k in selection.keys if mix64(k ^ salt) % 4)
        return kept

    def _report_reply(self, query: ReportQuery, fault: str | None = None) -> tuple[Reply, int]:
        if query.report_type == "AUDIENCE":
            builder = audience.builder_for(self.world)
            selection = builder.select(
                query, self.settings.throttle_threshold, self.settings.audience_latency_hours
            )
        else:
            builder = builder_for(self.world)
            selection = builder.select(query, self.settings.throttle_threshold)
            if self.settings.sparse_parts and query.metrics and "spend" not in query.metrics:
                selection = self._sparse(query, selection)
        total = len(selection.keys)
        first = (query.page - 1) * query.page_size
        last = max(first, min(first + query.page_size, total))
        if fault == "short_page":
            last = max(first, last - 1)
        elif fault == "drift":  # the report grew while it was being paged
            total += 1
        elif fault == "repeat":
            selection, first, last = _repeated(selection, first, last)
        words = self.settings.worded_metrics
        rows: list[dict[str, Any]] | orjson.Fragment
        if isinstance(builder, ReportBuilder):  # rendered in columns, straight to JSON
            rows = orjson.Fragment(builder.page_json(query, selection, first, last, words))
        else:  # another report's rows (AUDIENCE)
            rows = _worded(builder.rows(query, selection, first, last), words)
        data: dict[str, Any] = {
            "page_info": {
                "page": query.page,
                "page_size": query.page_size,
                "total_number": total,
                "total_page": -(-total // query.page_size),
            },
            "list": rows,
        }
        if query.enable_total_metrics:
            data["total_metrics"] = builder.total_metrics(query, selection)
        headers = {THROTTLE_HEADER: THROTTLE_MESSAGE} if selection.throttled else {}
        return json_reply(errors.OK, "OK", data, headers), last - first

    def _fault_outcome(self, fault: str, advertiser_id: str) -> Outcome:
        """The reply of a fault kind other than "slow" and "truncated" (see ``faults``)."""
        if fault == "reset":
            return Outcome(Reply(0, b"", action="reset"), fault=fault)
        if fault == "empty_ok":
            return Outcome(json_reply(errors.OK, "OK", {}), code=errors.OK, fault=fault)
        if fault.isdigit() and len(fault) == 5:
            error = errors.simulated(int(fault), advertiser_id, self.settings.app_id)
            return Outcome(error_reply(error), code=error.code, fault=fault)
        return Outcome(http_fault_reply(fault), fault=fault)

    # ------------------------------------------------------------------ GMV Max
    def _authorise_gmv_max(self, token: str, advertiser_id: str) -> None:
        """40001 for an advertiser not granted, then for one whose GMV Max permission is gone."""
        self._authorise(token, [advertiser_id])
        with self._lock:
            revoked = advertiser_id in self.settings.gmv_max_revoked_advertisers
        if revoked or advertiser_id in self.world.gmv_max_revoked_advertisers:
            raise gmv_max.no_permission(advertiser_id)

    def _gmv_max_store_list(self, params: dict[str, str], token: str) -> Outcome:
        advertiser_id = params.get("advertiser_id")
        if advertiser_id is None:
            raise errors.param_error("advertiser_id: Missing data for required field.")
        self._authorise_gmv_max(token, advertiser_id)
        data = gmv_max.store_list(self.world, advertiser_id)
        return Outcome(json_reply(errors.OK, "OK", data), code=errors.OK)

    def _gmv_max_report(self, params: dict[str, str], token: str) -> Outcome:
        """``/gmv_max/report/get/`` (``gmv_max``): holds and faults apply as to BASIC reports."""
        query = gmv_max.parse_report_query(params)
        hidden = self.settings.dropped_campaigns.get(gmv_max.DROPPED)
        if hidden:
            query = dataclasses.replace(query, hidden_campaigns=frozenset(hidden))
        self._authorise_gmv_max(token, query.advertiser_id)
        gmv_max.check_store(self.world, query)
        self.holds.wait_if_held(params)
        fault, slow_seconds = self.faults.draw((query.advertiser_id,))
        fault = None if fault == "ok" else fault
        if fault is not None and fault not in PAGE_FAULTS:
            time.sleep(self.settings.latency)
            return self._fault_outcome(fault, query.advertiser_id)
        rows = gmv_max.report_rows(gmv_max.shops_of(self.world), query)
        rows = _worded(rows, self.settings.worded_metrics)
        reply, served = self._paged_reply(rows, query.page, query.page_size, fault)
        time.sleep(self.settings.latency + (slow_seconds if fault == "slow" else 0.0))
        if fault == "truncated":
            reply.action = "truncate"
        return Outcome(reply, code=errors.OK, fault=fault, rows=served)

    def _tt_shop(self, params: dict[str, str], token: str) -> Outcome:
        """``report_type=TT_SHOP``: GMV Max spend per campaign or advertiser and day."""
        query = gmv_max.parse_tt_shop_query(params)
        self._authorise(token, [query.advertiser_id])
        rows = _worded(gmv_max.tt_shop_rows(self.world, query), self.settings.worded_metrics)
        reply, served = self._paged_reply(rows, query.page, query.page_size, None)
        return Outcome(reply, code=errors.OK, rows=served)

    @staticmethod
    def _paged_reply(
        rows: list[dict[str, Any]], page: int, page_size: int, fault: str | None
    ) -> tuple[Reply, int]:
        data = gmv_max.page_data(rows, page, page_size)
        if fault == "short_page":
            data["list"] = data["list"][:-1]
        elif fault == "drift":
            data["page_info"]["total_number"] += 1
        elif fault == "repeat" and data["list"]:
            first = (page - 1) * page_size
            data["list"][0] = rows[first - 1] if first else data["list"][-1]
        return json_reply(errors.OK, "OK", data), len(data["list"])

    # ------------------------------------------------------------------ other endpoints
    def _advertiser_info(self, params: dict[str, str], token: str) -> Outcome:
        self._refuse_in_sandbox()
        with self._lock:
            statuses = dict(self.settings.advertiser_status)
        ids, items = entities.info_list(self.world, params, statuses)
        self._authorise(token, ids)
        return Outcome(json_reply(errors.OK, "OK", {"list": items}), code=errors.OK)

    def _oauth_advertisers(self, params: dict[str, str], token: str) -> Outcome:
        self._refuse_in_sandbox()
        for name in ("app_id", "secret"):
            if not params.get(name):
                raise errors.param_error(f"{name}: Missing data for required field.")
        with self._lock:
            app_id, secret = self.settings.app_id, self.settings.app_secret
            granted = set(self.grants.get(token, set()))
        if params["app_id"] != app_id or params["secret"] != secret:
            raise ApiError(errors.INVALID_AUTH_PARAMS, "Invalid app_id or secret.")
        items = [
            {"advertiser_id": a, "advertiser_name": self.world.advertiser_info(a)["name"]}
            for a in self.world.advertiser_ids
            if a in granted
        ]
        return Outcome(json_reply(errors.OK, "OK", {"list": items}), code=errors.OK)

    def _refuse_in_sandbox(self) -> None:
        if self.settings.sandbox:
            raise errors.param_error("This API is not supported in the sandbox environment.")

    def as_of(self) -> date:
        """The simulator's today: the ``as_of`` setting, or the UTC date."""
        value = self.settings.as_of
        return date.fromisoformat(value) if value else datetime.now(UTC).date()

    def _entity_list(self, level: str, params: dict[str, str], token: str) -> Outcome:
        query = entities.parse_entity_query(level, params)
        self._authorise(token, [query.advertiser_id])
        if level == entities.SMART_PLUS_AD and not self.settings.smart_plus_scope:
            raise errors.ApiError(
                errors.NO_PERMISSION, "No permission to operate Upgraded Smart+ ads of this app."
            )
        rows = entities.select(self.entity_book, query, self.as_of())
        data = entities.page_of(rows, query)
        return Outcome(json_reply(errors.OK, "OK", data), code=errors.OK, rows=len(data["list"]))

    # ------------------------------------------------------------------ control (HTTP)
    def _control(self, method: str, path: str, params: dict[str, str], body: bytes) -> Reply:
        routes: dict[tuple[str, str], Callable[[dict[str, str], Any], Any]] = {
            ("GET", "/_sim/stats"): lambda p, _: self.stats.snapshot(
                p.get("log", "true") != "false"
            ),
            ("POST", "/_sim/reset"): lambda p, _: self.reset() or {"reset": True},
            ("GET", "/_sim/faults"): lambda p, _: self.faults.plan.to_dict(),
            ("POST", "/_sim/faults"): lambda p, b: self.set_faults(b),
            ("GET", "/_sim/hold"): lambda p, _: self.holds.state(),
            ("POST", "/_sim/hold"): lambda p, b: self.holds.set_plan(b),
            ("POST", "/_sim/release"): lambda p, _: self.holds.release(),
            ("GET", "/_sim/config"): lambda p, _: self.config(),
            ("POST", "/_sim/config"): lambda p, b: self.configure(**(b or {})),
            ("GET", "/_sim/truth"): lambda p, _: self._truth(p),
            ("GET", "/_sim/world"): lambda p, _: self.world.describe(),
            ("GET", "/_sim/gmv_max/truth"): lambda p, _: self._gmv_max_truth(p),
            ("GET", "/_sim/entities"): lambda p, _: self._entities(p),
            ("GET", "/_sim/entity_changes"): lambda p, _: [
                asdict(c) | {"day": c.day.isoformat()}
                for c in self.entity_book.changes(p["advertiser_id"])
            ],
        }
        handler = routes.get((method, path))
        if handler is None:
            known = any(route_path == path for _, route_path in routes)
            return control_reply(
                {"error": "method not allowed" if known else "not found"}, 405 if known else 404
            )
        try:
            payload = orjson.loads(body) if body.strip() else None
            if method == "POST" and path == "/_sim/config" and not isinstance(payload, dict | None):
                raise ValueError("config body must be a JSON object")
            return control_reply(handler(params, payload))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            return control_reply({"error": str(exc)}, 400)

    def _truth(self, params: dict[str, str]) -> dict[str, Any]:
        data_level = params["data_level"]
        if data_level not in LEVELS:
            raise ValueError(f"data_level must be one of {LEVELS}")
        rows = served_rows(
            self.world,
            params["advertiser_id"],
            data_level,
            date.fromisoformat(params["start_date"]),
            date.fromisoformat(params["end_date"]),
            orjson.loads(params["metrics"]) if "metrics" in params else DEFAULT_METRICS,
            include_deleted=params.get("include_deleted", "true") == "true",
            dimensions=orjson.loads(params["dimensions"]) if "dimensions" in params else None,
            max_ads=int(params["max_ads"]) if "max_ads" in params else None,
            # "final": values once every day settled; a date: as of then; default: as served
            as_of=None
            if params.get("as_of", self.settings.as_of) in (None, "final")
            else params.get("as_of", self.settings.as_of),
            attribution_days=self.settings.attribution_days,
            origins=orjson.loads(params["origins"]) if "origins" in params else DEFAULT_ORIGINS,
        )
        return {"total_number": len(rows), "rows": rows}

    def _gmv_max_truth(self, params: dict[str, str]) -> dict[str, Any]:
        """``gmv_max.served_rows`` (``level`` campaign/product/live) or, with ``level=tt_shop``,
        ``gmv_max.tt_shop_spend`` as rows, for tests that run the simulator as a process."""
        args = (params["advertiser_id"], params["start_date"], params["end_date"])
        if params["level"] == "tt_shop":
            spend = gmv_max.tt_shop_spend(self.world, *args)
            rows = [
                {"campaign_id": c, "stat_time_day": day, "spend": str(amount)}
                for (c, day), amount in sorted(spend.items())
            ]
        elif params["level"] in gmv_max.LEVELS:
            adv, start, end = args
            rows = gmv_max.served_rows(self.world, adv, params["level"], start, end)
        else:
            raise ValueError(f"level must be one of {[*gmv_max.LEVELS, 'tt_shop']}")
        return {"total_number": len(rows), "rows": rows}

    def _entities(self, params: dict[str, str]) -> dict[str, Any]:
        account = self.world.account(params["advertiser_id"])
        return {
            "list": [
                {
                    "id": e.id,
                    "name": e.name,
                    "deleted": e.deleted,
                    "own_deleted": e.own_deleted,
                    "campaign_id": e.campaign_id,
                    "adgroup_id": e.adgroup_id,
                    "campaign_system_origin": e.origin,
                }
                for e in account.entities(params.get("data_level", "AUCTION_AD"))
            ]
        }
