"""HTTP client of TikTok's synchronous report endpoint (Marketing API v1.3).

It knows HTTP, the envelope, paging metadata, the rate limit and the retry policy, and
nothing of where rows go. One ``requests.Session`` with a connection pool sized to the
worker pool is shared by every thread.

Retry policy (tenacity, exponential backoff with full jitter, bounded in attempts and in
total seconds): TikTok reports most errors as HTTP 200 with a non-zero ``code``. Rate limits
(40100 app, 40133 advertiser, 40016), TikTok-side faults (50000, 50002, 51xxx-53xxx, 60001,
61000, 40700, 40202), HTTP 5xx/429, timeouts, broken connections and bodies that are not
complete JSON are retried. Everything else (401xx token errors, 40001 permission, 40002
parameters, ...) fails at once: a retry cannot fix it.

The access token travels only in the ``Access-Token`` header; it never enters a URL, a log
line or an exception message.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal
from urllib.parse import urlencode

import orjson
import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from controller.reports.catalog import ReportSpec
from controller.tiktok.http_gate import NoSlotError, gate, gated_adapter
from controller.tiktok.rate_limiter import QuotaSpentError, RateLimiter

log = logging.getLogger(__name__)

REPORT_PATH = "report/integrated/get/"
GMV_MAX_REPORT_PATH = "gmv_max/report/get/"
# The rate budgets a request counts against: the app tier, or the GMV Max report's own
# (docs/tiktok_api_gmv_smartplus.md §1.1).
Budget = Literal["general", "gmv_max"]
GENERAL: Final = "general"
GMV_MAX_BUDGET: Final = "gmv_max"
# One GMV Max request's store and promotion type (TikTok takes one store per request).
StorePart = tuple[str, str]
PAGE_SIZE = 1000
THROTTLE_HEADER = "X-Tt-Ads-Throttle"
# Threads that decode pages (JSON, then ``convert``). Decoding is CPU-bound and the GIL runs
# one thread at a time, so two suffice. Decoding on a few dedicated threads, not on each of
# the request threads, bounds memory: at most two decoded pages (~10 MB of Python objects
# each) exist at once, and the allocators' per-thread caches (glibc arenas) stay in two
# threads instead of growing in every one of TIKTOK_CONCURRENCY threads.
DECODE_THREADS = 2

# TikTok blocks a request for 10 minutes once it timed out 3 times in 10 minutes
# (docs/tiktok_api_reference.md §2.8).
MAX_TIMEOUTS = 3
RATE_LIMIT_CODES = frozenset({40016, 40100, 40133, 61000})
ADVERTISER_RATE_LIMITED = 40133
# 40133's message: "Advertiser (7...)'s QPS (12) reaches QPS limit 10 for current path, ..."
_ADVERTISER_QPS_LIMIT = re.compile(r"QPS limit (\d+(?:\.\d+)?)")
TRANSIENT_CODES = frozenset({40202, 40700, 50000, 50002, 60001})


def is_transient_code(code: int) -> bool:
    return code in RATE_LIMIT_CODES or code in TRANSIENT_CODES or 51000 <= code <= 53999


class TikTokError(Exception):
    """A report request that did not produce a page. ``retryable`` drives the retry policy."""

    retryable = False

    def __init__(self, advertiser_id: str, detail: str) -> None:
        super().__init__(f"advertiser {advertiser_id}: {detail}")
        self.advertiser_id = advertiser_id
        self.detail = detail


class TikTokApiError(TikTokError):
    """HTTP 200 with a non-zero ``code``: TikTok's own error report."""

    def __init__(self, advertiser_id: str, code: int, message: str, request_id: str | None) -> None:
        detail = f"TikTok API error {code}: {message}"
        if request_id:
            detail += f" (request_id {request_id})"
        super().__init__(advertiser_id, detail)
        self.code = code
        self.message = message
        self.retryable = is_transient_code(code)


class TikTokTransportError(TikTokError):
    """HTTP 5xx/429, timeout, reset connection or a truncated body: worth another try."""

    retryable = True


class TikTokHttpError(TikTokError):
    """HTTP 4xx other than 429: the request never reached the API logic (wrong URL/path)."""


class QuotaError(TikTokError):
    """A budget's day quota is spent (by our count or TikTok's 40100 saying so): nothing of
    that budget can be read before UTC midnight, so it is not retried. ``sent``: whether
    the request reached TikTok (False: refused by our count, it cost nothing)."""

    sent = False


class TikTokTruncatedError(TikTokError):
    """TikTok served only the newest 20k ads (``X-Tt-Ads-Throttle``): rows would be lost."""


# Reads a body into (its envelope without ``data.list``, that list's rows in the reader's
# own form), or None to have the client decode it as plain JSON.
BodyReader = Callable[[bytes], "tuple[dict[str, Any], Any] | None"]


def decode_json(body: bytes) -> tuple[dict[str, Any], Any]:
    """The plain JSON reading of a body: rows as a list of dicts.

    Raises ``orjson.JSONDecodeError`` when the body is not complete JSON.
    """
    envelope = orjson.loads(body)
    rows: Any = None
    if isinstance(envelope, dict) and isinstance(envelope.get("data"), dict):
        rows = envelope["data"].pop("list", None)
    return envelope, rows or []


@dataclass(frozen=True)
class Page:
    rows: Any  # the decoded JSON rows, or what ``fetch_page``'s ``convert`` made of them
    page: int
    total_page: int
    total_number: int
    page_size: int = PAGE_SIZE


@dataclass
class _Request:
    """One page request, as its attempts and its decoding see it."""

    advertiser_id: str
    page: int
    url: str
    deadline: float | None
    convert: Callable[[Any], Any] | None
    read: BodyReader | None
    timeouts: int = 0
    path: str = REPORT_PATH
    paged: bool = True  # False: an endpoint without page_info (account info, discovery)
    list_key: str = "list"  # where an unpaged endpoint's rows are in ``data``
    budget: Budget = GENERAL


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    max_seconds: float = 300.0
    min_wait: float = 1.0
    max_wait: float = 60.0


def _jsonify(value: Any) -> str:
    """TikTok's query encoding: scalars as-is, lists and objects as compact JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


class TikTokClient:
    """Fetches single report pages; callers decide which pages to ask for and when."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        limiter: RateLimiter,
        *,
        pool_size: int = 32,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        decode_threads: int = DECODE_THREADS,
        gmv_max_limiter: RateLimiter | None = None,
    ) -> None:
        self._base = base_url.rstrip("/") + "/"
        self._limiter = limiter
        # The GMV Max report's own budget (QPS, QPM, day quota); without one, its requests
        # would count against the app's (tests of other parts build clients without it).
        self._budgets = {GENERAL: limiter, GMV_MAX_BUDGET: gmv_max_limiter or limiter}
        self._timeout = (connect_timeout, read_timeout)
        self._retry = retry or RetryPolicy()
        self._session = requests.Session()
        # The rate limiter's slot is taken inside the connection, as the request leaves.
        adapter = gated_adapter(pool_size)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["Access-Token"] = access_token
        # requests reads the proxy and CA-bundle variables on every request (~0.3 ms each,
        # a tenth of a request's CPU with a report's long URL): the same, read once here.
        settings = self._session.merge_environment_settings(self._base, {}, None, None, None)
        self._session.proxies.update(settings["proxies"])
        self._session.verify = settings["verify"]
        self._session.trust_env = False
        self._decoder = ThreadPoolExecutor(decode_threads, thread_name_prefix="tiktok-decode")
        # Advertisers TikTok limited with 40133, each paced by a child of the app limiter.
        self._advertiser_limiters: dict[str, RateLimiter] = {}
        self._advertiser_lock = threading.Lock()

    def close(self) -> None:
        self._session.close()
        self._decoder.shutdown(wait=False)

    def report_params(
        self,
        spec: ReportSpec,
        advertiser_id: str,
        metrics: list[str],
        start: date,
        end: date,
        page: int,
        campaign_ids: Sequence[str] = (),
        origins: Sequence[str] = (),
        store: StorePart | None = None,
    ) -> dict[str, str]:
        if spec.gmv_max:
            if store is None:
                raise ValueError(f"{spec.report_type}: a GMV Max request needs its store")
            return gmv_max_params(spec, advertiser_id, metrics, start, end, page, store)
        params: dict[str, Any] = {
            "advertiser_id": advertiser_id,
            "service_type": "AUCTION",
            "report_type": spec.tiktok_report_type,
            "data_level": spec.data_level,
            "dimensions": list(spec.dimensions),
            "metrics": metrics,
        }
        if spec.lifetime:  # the object's whole life: TikTok ignores dates, so none are sent
            params["query_lifetime"] = "true"
        else:
            params["start_date"], params["end_date"] = start.isoformat(), end.isoformat()
        params["page"], params["page_size"] = str(page), str(PAGE_SIZE)
        filtering = spec.filtering(campaign_ids, origins)
        if filtering:
            params["filtering"] = filtering
        return {key: _jsonify(value) for key, value in params.items()}

    def fetch_page(
        self,
        spec: ReportSpec,
        advertiser_id: str,
        metrics: list[str],
        start: date,
        end: date,
        page: int,
        deadline: float | None = None,
        convert: Callable[[Any], Any] | None = None,
        read: BodyReader | None = None,
        campaign_ids: Sequence[str] = (),
        origins: Sequence[str] = (),
        store: StorePart | None = None,
    ) -> Page:
        """One page of one report, retried per the policy; raises TikTokError when it gives up.

        A GMV Max report (``spec.gmv_max``) is asked of its own endpoint for one ``store``
        (store id, promotion type) and counts against the GMV Max budget.

        ``campaign_ids`` narrows the report to those campaigns (a report over TikTok's
        20,000-ad cap is read campaign by campaign); ``origins`` are the campaign origins
        asked for (``campaign_system_origins``; empty: TikTok's default, regular campaigns).

        ``read`` (a faster reader of report bodies, e.g. straight into typed columns; plain
        JSON when absent or when it returns None) and then ``convert`` (e.g. to an Arrow
        table, once the envelope is known to be a success) run in a decode thread, so at
        most ``decode_threads`` decoded pages exist at once, however many requests are in
        flight. ``convert``'s exceptions propagate unretried.
        """
        params = self.report_params(
            spec, advertiser_id, metrics, start, end, page, campaign_ids, origins, store
        )
        query = urlencode(params)
        path = GMV_MAX_REPORT_PATH if spec.gmv_max else REPORT_PATH
        budget: Budget = GMV_MAX_BUDGET if spec.gmv_max else GENERAL
        url = self._base + path
        request = _Request(
            advertiser_id,
            page,
            f"{url}?{query}",
            deadline,
            convert,
            read,
            path=path,
            budget=budget,
        )
        return self._retrying(deadline)(self._get_page, request)

    def get(
        self,
        path: str,
        params: dict[str, Any],
        *,
        advertiser_id: str = "-",
        paged: bool = True,
        deadline: float | None = None,
        list_key: str = "list",
    ) -> Page:
        """One GET of another endpoint (entity lists, account info, discovery), with the same
        rate limiter, retry policy and envelope checks as the reports. ``paged`` endpoints
        must answer a consistent ``page_info``; the others answer one page with every row
        (in ``data[list_key]``).

        Query values may be secrets (discovery's app ``secret``): the URL is never logged
        nor put in an exception (errors name the path only).
        """
        query = urlencode({key: _jsonify(value) for key, value in params.items()})
        page = int(params.get("page", 1)) if paged else 1
        request = _Request(
            advertiser_id,
            page,
            f"{self._base}{path}?{query}",
            deadline,
            None,
            None,
            path=path,
            paged=paged,
            list_key=list_key,
        )
        return self._retrying(deadline)(self._get_page, request)

    def _retrying(self, deadline: float | None) -> Retrying:
        return Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, TikTokError) and exc.retryable),
            wait=wait_random_exponential(
                multiplier=self._retry.min_wait, min=self._retry.min_wait, max=self._retry.max_wait
            ),
            stop=(
                stop_after_attempt(self._retry.max_attempts)
                | stop_after_delay(self._retry.max_seconds)
                | _stop_before(deadline)
            ),
            before_sleep=self._count_retry,
            reraise=True,
        )

    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying TikTok request",
            extra={"fields": {"attempt": state.attempt_number, "error": str(exc)}},
        )

    def _get_page(self, request: _Request) -> Page:
        advertiser_id = request.advertiser_id
        if request.budget == GENERAL:
            limiter = self._advertiser_limiters.get(advertiser_id, self._limiter)
        else:
            limiter = self._budgets[request.budget]
        try:
            with gate(lambda: limiter.acquire_slot(request.deadline)):
                response = self._session.get(request.url, timeout=self._timeout, stream=True)
            # The body in one read: ``response.content`` gathers it 10 KiB at a time, ~280
            # Python-level reads and a join for a full page (2.9 MB), 4 of its ~7 ms of CPU.
            # requests still maps a failed read to its exceptions, as ``content`` does.
            body = b"".join(response.iter_content(chunk_size=None))
        except NoSlotError as exc:
            raise TimeoutError(str(exc)) from None
        except QuotaSpentError:
            raise _quota_error(advertiser_id, request.budget, limiter) from None
        except requests.Timeout:
            request.timeouts += 1
            if request.timeouts < MAX_TIMEOUTS:
                raise TikTokTransportError(advertiser_id, "TikTok did not answer in time") from None
            raise TikTokError(
                advertiser_id,
                f"TikTok did not answer in time, {MAX_TIMEOUTS} times for the same request; not "
                "sent again (TikTok blocks a request that timed out 3 times in 10 minutes): "
                "rerun later or with a shorter window",
            ) from None
        except requests.RequestException as exc:
            name = type(exc).__name__
            raise TikTokTransportError(
                advertiser_id, f"connection to TikTok failed ({name})"
            ) from None
        context = contextvars.copy_context()  # the run's request id on the decoder's log lines
        try:
            decoding = self._decoder.submit(context.run, self._decode, request, response, body)
        except RuntimeError:  # closed while this request was in flight: the run was abandoned
            raise TikTokError(advertiser_id, "the run stopped before this page was read") from None
        return decoding.result()

    def _decode(self, request: _Request, response: requests.Response, body: bytes) -> Page:
        try:
            page = self._parse(request, response, body)
        except TikTokApiError as exc:
            budget = self._budgets[request.budget]
            if exc.code == 40100 and request.budget != GENERAL and names_day_quota(exc.message):
                budget.spend_day(exc.detail)  # TikTok counted the day spent: no retry today
                raise _quota_error(request.advertiser_id, request.budget, budget, exc) from None
            if exc.code == 40100:  # the budget's quota: everyone waits, and the margin widens
                budget.rate_limited()
            elif exc.code == ADVERTISER_RATE_LIMITED:
                self._limit_advertiser(request.advertiser_id, exc.message)
            raise
        if request.convert is not None:
            page = dataclasses.replace(page, rows=request.convert(page.rows))
        return page

    def _limit_advertiser(self, advertiser_id: str, message: str) -> None:
        """Pace an advertiser TikTok limited (40133) at the limit its message names.

        The per-advertiser limit is undocumented and may differ per advertiser, so it is
        learnt from the answer ("... reaches QPS limit 10 ..."); a message without a number
        halves the app's pace for that advertiser, once. The pace only ever drops to what
        TikTok named, never below on repeated answers: those are requests that left before
        the pace changed, or another client of the same advertiser, and the retry policy
        handles them. Other advertisers keep the app's full pace.
        """
        match = _ADVERTISER_QPS_LIMIT.search(message)
        qps = float(match.group(1)) if match else self._limiter.qps / 2
        qps = max(qps, 0.5)
        with self._advertiser_lock:
            current = self._advertiser_limiters.get(advertiser_id)
            if qps >= (current or self._limiter).qps:
                return
            paced = self._limiter.child(qps, max(1, int(qps * 60)))
            paced.hold(1.0)  # TikTok's window still holds the requests that hit the limit
            self._advertiser_limiters[advertiser_id] = paced
        log.warning(
            "advertiser rate-limited by TikTok (40133): pacing it",
            extra={"fields": {"advertiser_id": advertiser_id, "qps": qps}},
        )

    def _parse(self, request: _Request, response: requests.Response, body: bytes) -> Page:
        advertiser_id, read = request.advertiser_id, request.read
        status = response.status_code
        if status == 429 or status >= 500:
            raise TikTokTransportError(advertiser_id, f"TikTok answered HTTP {status}")
        if status != 200:
            raise TikTokHttpError(
                advertiser_id, f"TikTok answered HTTP {status} for {request.path}"
            )
        try:
            envelope, rows = (read and read(body)) or decode_json(body)
            code = int(envelope["code"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise TikTokTransportError(
                advertiser_id, "TikTok sent an incomplete or non-JSON body"
            ) from None
        if code not in (0, 20001):
            raise TikTokApiError(
                advertiser_id, code, str(envelope.get("message", "")), envelope.get("request_id")
            )
        if response.headers.get(THROTTLE_HEADER):
            raise TikTokTruncatedError(
                advertiser_id,
                "TikTok truncated the report to the 20,000 most recently created ads "
                f"({THROTTLE_HEADER}: {response.headers[THROTTLE_HEADER]}); "
                "nothing was loaded for this report to avoid losing the older ads' rows",
            )
        data: Any = envelope.get("data")
        if not request.paged:
            if request.list_key != "list":
                rows = (data.get(request.list_key) if isinstance(data, dict) else None) or []
            return Page(rows=rows, page=1, total_page=1, total_number=len(rows))
        if not (isinstance(data, dict) and data.get("page_info")) and not len(rows):
            # No page_info and no rows: what TikTok answers for, e.g., a service_type that
            # does not match the account ("code 0 and an empty list"). An empty report.
            return Page(rows=rows, page=request.page, total_page=0, total_number=0)
        try:
            info = data["page_info"]
            page = Page(
                rows=rows,
                page=int(info["page"]),
                total_page=int(info["total_page"]),
                total_number=int(info["total_number"]),
                page_size=int(info.get("page_size", PAGE_SIZE)),
            )
        except (KeyError, TypeError, ValueError):
            raise TikTokTransportError(
                advertiser_id, "TikTok sent a body without page_info"
            ) from None
        _check_page(request, page)
        return page


def gmv_max_params(
    spec: ReportSpec,
    advertiser_id: str,
    metrics: list[str],
    start: date,
    end: date,
    page: int,
    store: StorePart,
) -> dict[str, str]:
    """The query of one GMV Max report page (docs/tiktok_api_gmv_smartplus.md §1.1): exactly one
    store, and ``filtering`` a JSON object (one promotion type, every campaign status)."""
    store_id, promotion_type = store
    params: dict[str, Any] = {
        "advertiser_id": advertiser_id,
        "store_ids": [store_id],
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "dimensions": list(spec.dimensions),
        "metrics": metrics,
        "filtering": spec.gmv_max_filtering(promotion_type),
        "page": str(page),
        "page_size": str(PAGE_SIZE),
    }
    return {key: _jsonify(value) for key, value in params.items()}


# A 40100 naming the day's quota rather than the QPS or QPM window. TikTok's wording is not
# documented (docs/tiktok_api_gmv_smartplus.md §1.3 plays one), so any mention of a day, of
# the QPD or of the UTC-midnight reset counts: "daily quota", "requests per day", "today's
# limit", "QPD limit", "resets at 00:00 UTC".
_DAY_QUOTA = re.compile(r"\b(?:daily|day|today|qpd|midnight|24 ?hours?)\b|00:00", re.IGNORECASE)


def names_day_quota(message: str) -> bool:
    """Whether a 40100 says the day's quota is spent (not the QPS or QPM window)."""
    return _DAY_QUOTA.search(message) is not None


def _quota_error(
    advertiser_id: str, budget: str, limiter: RateLimiter, exc: TikTokApiError | None = None
) -> QuotaError:
    limit = limiter.daily.limit if limiter.daily is not None else None
    named = "GMV Max report" if budget == GMV_MAX_BUDGET else budget
    detail = f"the {named} daily quota"
    if limit is not None:
        detail += f" ({limit:,} requests per UTC day)"
    detail += " is spent"
    # TikTok's words: this answer's, or the one that closed the day for the requests after it
    # (several of a run's requests may be in flight when it comes: each item says the same)
    said = exc.detail if exc is not None else getattr(limiter.daily, "tiktok_said", None)
    if said:
        detail += f" (TikTok: {said})"
    detail += (
        "; this report was not read, nothing of it is loaded: run it again after 00:00 UTC "
        "(other reports are not affected)"
    )
    error = QuotaError(advertiser_id, detail)
    error.sent = exc is not None
    return error


def _check_page(request: _Request, page: Page) -> None:
    """A page must be the one asked for and hold the rows its page_info promises.

    TikTok's list is not sorted unless asked, so a page that disagrees with its own
    page_info (a short page, another page number) would silently lose or repeat rows. It
    is asked for again: a consistent answer is what a retry gets when TikTok merely
    hiccupped. (Pages that disagree with each other are the extraction's to catch.)
    """
    expected = max(0, min(page.page_size, page.total_number - (request.page - 1) * page.page_size))
    if page.page != request.page or len(page.rows) != expected:
        raise TikTokTransportError(
            request.advertiser_id,
            f"TikTok's page {page.page} (asked for {request.page}) holds {len(page.rows)} rows "
            f"where its page_info (total_number {page.total_number}, page_size "
            f"{page.page_size}) promises {expected}",
        )


def _stop_before(deadline: float | None):
    """Stop retrying when the next wait would cross the run's deadline."""

    def stop(state: RetryCallState) -> bool:
        if deadline is None:
            return False
        upcoming = state.upcoming_sleep or 0.0
        return time.monotonic() + upcoming >= deadline

    return stop
