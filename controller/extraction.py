"""Concurrent extraction of many (advertiser, report type) items over a date window.

The unit of scheduling is one page request, not one advertiser: page 1 of every chunk is
queued first, the longest expected chains (the ad level) ahead, and once a page 1 tells how
many pages follow, those pages jump the queue (``controller.scheduling``): the run's last
requests are then short chains, and its tail is not one latency per page long. A bounded thread pool keeps enough requests in flight to cover TikTok's
latency; the shared rate limiter is the only throttle. So a slow advertiser or a long page
chain never idles the rest, and the app's QPS budget is used, not wasted.

Rows stream: each page becomes a typed Arrow table handed to ``sink`` right away (or, when
a level's metrics need several requests, once the chunk's requests are joined). Nothing
holds an account in memory, nor a big chunk: a chunk whose page 1 announces more rows than
``row_bound`` is read as shorter date windows, one after the other (README "Memory at full
width"), so what waits to be joined is at most ``row_bound`` full-width rows per chunk.

Nor does the run hold more with more chunks (more days, more advertisers): a chunk read in
several metric groups waits for a slot before its page 1s are queued (``_Slot``): at most
``workers`` such chunks are open (each under the bound, as many as there are threads so
small accounts keep every thread busy), and at most ``open_windows`` chunks over the bound
are read in windows; the others' windows wait, holding nothing, and their page 1s run
ahead of new chunks' once a slot frees. A budget of slots rather than only a priority:
every page 1 still runs before the last windows, so priority alone would leave a window
of every chunk open at the end. Waiting is a queue, never a sleeping thread, and a chunk
with a slot never waits for anything, so every slot comes back and nothing deadlocks.
Open chunks under the bound also share a budget past page 1 (``_may_page``): together they
read at most the windows slots' rows, so 24 accounts just under the bound do not hold 24
bounds. ``held_bound`` is the run-wide figure, and ``peak_held`` what was held.

One item's failure never stops the others; its result carries the error, and the rows it
had already handed over are flagged by the failed status so the writer can leave them out.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from config.settings import Settings
from controller.reports.catalog import REPORTS, SMART_PLUS_AD_ID, ReportSpec
from controller.scheduling import PriorityPool, page_priority
from controller.tiktok.client import (
    GENERAL,
    GMV_MAX_BUDGET,
    PAGE_SIZE,
    Budget,
    Page,
    QuotaError,
    TikTokApiError,
    TikTokClient,
    TikTokError,
    TikTokTruncatedError,
)
from controller.tiktok.gmv_max import NO_STORE, Discovered, discover_stores
from controller.tiktok.origins import ADVERTISER_WARNING, OriginPlan, Origins, refuses_origins
from controller.tiktok.query_size import (
    QuerySizes,
    QueryTooLargeError,
    is_too_large,
    read_shrinking,
)
from controller.tiktok.reader import (
    NormalizationError,
    OddValues,
    ad_rows,
    finish,
    gmv_max_rows,
    join_metric_groups,
    key_fingerprints,
    of_campaigns,
    page_reader,
    page_to_table,
    repeated_keys,
    without_creatives,
)

log = logging.getLogger(__name__)

MAX_DAYS_PER_REQUEST = 30  # TikTok's limit for daily (stat_time_day) sync reports
# Rows a chunk read in several metric groups may announce before it is read as shorter date
# windows (``TIKTOK_CHUNK_ROW_BOUND``).
CHUNK_ROW_BOUND = Settings.tiktok_chunk_row_bound
CAMPAIGNS_PER_PART = 30  # TikTok's advice for campaign_ids filters: at most 30 per request
# A chunk whose report changed while it was paged, and nothing of which was handed on yet
# (its metric groups wait to be joined), is read again this many times before it fails.
MAX_REREADS = 2
# TikTok's 40002 for metrics a level does not offer: "... Invalid metric fields: ['a', 'b']."
_INVALID_METRICS = re.compile(r"Invalid metric fields?:\s*\[([^\]]*)\]", re.IGNORECASE)


def rejected_metrics(error: TikTokError) -> set[str]:
    """The metric names a 40002 answer says are invalid (empty for any other error)."""
    if not isinstance(error, TikTokApiError) or error.code != 40002:
        return set()
    match = _INVALID_METRICS.search(error.message)
    return set(re.findall(r"[A-Za-z0-9_]+", match.group(1))) if match else set()


def date_chunks(
    start: date, end: date, days: int = MAX_DAYS_PER_REQUEST
) -> Iterator[tuple[date, date]]:
    """Split an inclusive window into inclusive chunks of at most ``days`` days."""
    while start <= end:
        chunk_end = min(start + timedelta(days=days - 1), end)
        yield start, chunk_end
        start = chunk_end + timedelta(days=1)


def report_chunks(spec: ReportSpec, start: date, end: date) -> list[tuple[date, date]]:
    """The date ranges of a report's requests: as many days as its time dimension allows
    per request (one request for a lifetime report, whose dates TikTok ignores)."""
    days = spec.days_per_request
    return [(start, end)] if days is None else list(date_chunks(start, end, days))


@dataclass
class ItemResult:
    """Outcome of one advertiser × report type over the window."""

    advertiser_id: str
    report_type: str
    status: str = "running"
    rows: int = 0
    requests: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    budget: Budget = GENERAL  # the rate budget its report requests count against

    @property
    def ok(self) -> bool:
        return self.status == "success"


Sink = Callable[[ReportSpec, str, pa.Table], None]
Scope = tuple[str, ...]  # campaign ids a request is narrowed to; () = the whole advertiser
# A request's part of the item besides its scope: the campaign origins asked for (BASIC), or
# the (store id, promotion type) of a GMV Max request (passed where ``origins`` go).
Part = tuple[str, ...]
# Where a metric group's page sits among the chunk's requests: (scope, origins or part, page)
PartKey = tuple[Scope, Part, int]


@dataclass
class _Slot:
    """A place in one of the run's two budgets of chunks that hold metric-group parts.

    A 30-day chunk read in several metric groups takes an *open* slot before its page 1s are
    queued and keeps it until it is joined; found over the row bound, it gives it back and
    its windows wait for a *windows* slot, kept from the first window to the last. The
    Upgraded Smart+ chunk a joined chunk spawns shares its slot (``holders``).
    """

    windows: bool  # which budget: ``Extraction._max_windows`` or ``_max_open``
    holders: int = 1


@dataclass
class _Chunk:
    """One date chunk of one item; collects metric-group parts when a level needs several.

    A chunk over the row bound is ``replaced``: its answers are dropped and its days are read
    as windows, each opened when the one before is joined, up to ``rest_end``.
    """

    start: date
    end: date
    # per metric group, its pages' tables by ``PartKey``: joined in that order, not arrival's
    parts: list[list[tuple[PartKey, pa.Table]]] = field(default_factory=list)
    pending: int = 0
    # (metric group, campaign scope, origins) -> the total_number page 1 counted
    totals: dict[tuple[int, Scope, Origins], int] = field(default_factory=dict)
    # the same requests -> their pages' key fingerprints, checked for repeats once all are in
    keys: dict[tuple[int, Scope, Origins], list[pa.Array]] = field(default_factory=dict)
    # read by ``ad_id_v2`` (the Upgraded Smart+ ads of an ``ads_as_shown`` report)
    by_ad_id_v2: bool = False
    # campaigns whose Upgraded Smart+ ads of these days are already asked for by ad_id_v2
    # (of a chunk read by ad_id_v2: the campaigns it asks for)
    smart_plus: set[str] = field(default_factory=set)
    rest_end: date | None = None  # the last day of the windows still to read after this one
    replaced: bool = False
    held: int = 0  # metric values in ``parts``
    slot: _Slot | None = None  # None: read in one request per page, it holds nothing
    rereads: int = 0  # times these days were read again after they changed while paged
    # rows of the run's open budget this chunk took (``_may_page``); 0: none (yet)
    admitted: int = 0
    # (group, scope, origins, total_page) of page 1s answered while it waits for the budget
    paused: list[tuple[int, Scope, Origins, int]] | None = None

    def announced(self) -> int:
        """The rows the largest metric group announced so far (its scopes and origins summed)."""
        per_group: dict[int, int] = {}
        for (group, _, _), total in self.totals.items():
            per_group[group] = per_group.get(group, 0) + total
        return max(per_group.values(), default=0)


@dataclass
class _Item:
    spec: ReportSpec
    result: ItemResult
    pending: int = 0
    # attribute values that did not fit their type, loaded as null: warnings once it is done
    # counted as rows are loaded: not the creative rows an ``ads_as_shown`` report leaves out
    odd: OddValues = field(default_factory=lambda: OddValues(marked=True))


class Extraction:
    """Runs the requests of many items concurrently and streams typed tables to ``sink``."""

    def __init__(
        self,
        client: TikTokClient,
        items: list[tuple[str, ReportSpec]],
        start: date,
        end: date,
        *,
        sink: Sink,
        workers: int,
        extracted_at: datetime,
        deadline: float | None = None,
        max_metrics: int | None = None,
        families: Sequence[str] | None = None,
        origins: OriginPlan | None = None,
        on_item_done: Callable[[ItemResult], None] | None = None,
        on_request_done: Callable[[int], None] | None = None,
        stop_requested: Callable[[], bool] | None = None,
        row_bound: int = CHUNK_ROW_BOUND,
        stores: Discovered | None = None,
        open_windows: int | None = None,
    ) -> None:
        self._client = client
        self._row_bound = row_bound
        self._held = 0  # metric values waiting in chunk parts to be joined, all chunks
        self.peak_held = 0  # the most ``_held`` ever was (tests and bench read it)
        # What the run holds is bounded by two budgets of chunks (``_Slot``), whatever the
        # number of chunks: ``workers`` chunks open under the bound (each holds at most the
        # bound; as many as there are threads, so small accounts keep every thread busy),
        # and ``open_windows`` chunks read in windows (default: enough windows of ``row_bound``
        # rows for every thread to have a page, at least 2).
        self._max_open = workers
        self._max_windows = open_windows or max(2, -(-workers * PAGE_SIZE // row_bound))
        self._open = self._windows = 0  # slots taken
        # Open chunks are under the bound each, but 24 of them would hold 24 bounds: past
        # page 1, they together read at most as many announced rows as the windows slots
        # may hold; the others wait with their page 1s (``_may_page``, ``_resume``).
        self._open_budget = self._max_windows * row_bound
        self._admitted_rows = 0
        self._paused: deque[tuple[_Item, _Chunk]] = deque()
        # chunks waiting for a slot, in the order their page 1s would have been queued
        self._waiting_chunks: deque[tuple[_Item, date, date]] = deque()
        self._waiting_windows: deque[tuple[_Item, date, date, date]] = deque()
        self._admitting = self._readmit = False
        # the most rows the chunks of this run hold at once (``peak_held`` ÷ the width): the
        # windows, the open chunks admitted past page 1, and the page 1s of those waiting
        self.held_bound = 2 * self._max_windows * row_bound + self._max_open * PAGE_SIZE
        self._start, self._end = start, end
        self._sink = sink
        self._workers = workers
        self._extracted_at = extracted_at
        self._deadline = deadline
        self._on_item_done = on_item_done
        self._on_request_done = on_request_done
        self._stop_requested = stop_requested
        self._lock = threading.Lock()
        self._items = [
            _Item(
                spec,
                ItemResult(
                    advertiser_id,
                    spec.report_type,
                    budget=GMV_MAX_BUDGET if spec.gmv_max else GENERAL,
                ),
            )
            for advertiser_id, spec in items
        ]
        # advertiser -> the GMV Max stores to read (``_discover_stores``)
        self._stores: dict[str, list[str]] = {}
        self._given_stores: Discovered = dict(stores or {})  # already discovered by the caller
        # The metric families asked for (default: every family of the level), in requests
        # of at most 100 metrics joined on the dimensions. Columns of families not asked
        # for load as null (``normalize.finish``): a table's schema never loses a column.
        self._groups = {
            spec.report_type: spec.metric_groups(max_metrics, families)
            if max_metrics
            else spec.metric_groups(families=families)
            for _, spec in items
        }
        self._origins = origins or OriginPlan()
        self._sizes = QuerySizes()  # per advertiser and level: what 40067 taught
        self._readers = {
            spec.report_type: [page_reader(spec, group) for group in self._groups[spec.report_type]]
            for _, spec in items
        }
        self._pool: PriorityPool | None = None
        self._all_done = threading.Event()
        self._outstanding = 0
        self.planned_requests = 0  # grows as page 1 answers reveal more pages (for progress bars)

    @property
    def results(self) -> list[ItemResult]:
        return [item.result for item in self._items]

    def run(self) -> list[ItemResult]:
        if not self._items:
            return []
        chunks = {
            item.spec.report_type: report_chunks(item.spec, self._start, self._end)
            for item in self._items
        }
        self._pool = PriorityPool(self._workers, thread_name_prefix="tiktok")
        # Every item stays open until all its chunks are queued: a first chunk answered before
        # the next one is queued must not mark the item complete (its other days unread).
        with self._lock:
            for item in self._items:
                item.pending += 1
                self._outstanding += 1
        self._discover_stores()
        # Chunk-major order: every item gets its first request early. A chunk read in several
        # metric groups waits for an open slot; the longest expected chains first, as page 1s
        # are ordered in the pool (``page_priority``).
        waiting: list[tuple[_Item, date, date]] = []
        for index in range(max(map(len, chunks.values()))):
            for item in self._items:
                if index >= len(chunks[item.spec.report_type]) or item.result.status != "running":
                    continue
                if item.spec.gmv_max and not self._stores.get(item.result.advertiser_id):
                    continue
                start, end = chunks[item.spec.report_type][index]
                if len(self._groups[item.spec.report_type]) > 1:
                    waiting.append((item, start, end))
                else:
                    self._open_chunk(item, start, end, end, None)
        waiting.sort(key=lambda entry: page_priority(1, entry[0].spec.data_level, None))
        with self._lock:
            for item, _, _ in waiting:
                item.pending += 1  # released when it is opened (``_admit``)
                self._outstanding += 1
            self._waiting_chunks.extend(waiting)
        self._admit()
        for item in self._items:
            self._task_done(item)
        while not self._all_done.wait(0.1):
            reason = self._abort_reason()
            if reason:
                self._abandon(reason)
                self._pool.shutdown(wait=False, cancel_futures=True)
                return self.results
        self._pool.shutdown(wait=True)
        return self.results

    def _discover_stores(self) -> None:
        """The GMV Max stores of every advertiser with a GMV Max item (those not given). An
        advertiser without a usable store: its GMV Max items succeed with 0 rows and say
        why; one TikTok refuses (40001, GMV Max permission revoked): its GMV Max items fail
        with TikTok's words, like a revoked account."""
        wanted = {i.result.advertiser_id for i in self._items if i.spec.gmv_max}
        found = dict(self._given_stores)
        found.update(
            discover_stores(
                self._client,
                sorted(wanted - set(found)),
                workers=self._workers,
                deadline=self._deadline,
            )
        )
        for item in self._items:
            stores = found.get(item.result.advertiser_id) if item.spec.gmv_max else None
            if isinstance(stores, TikTokError):
                self._fail(item, stores)
            elif stores == []:
                item.result.warnings.append(NO_STORE)
            elif stores:
                self._stores[item.result.advertiser_id] = stores

    def _parts(self, item: _Item) -> list[Part]:
        """A chunk's page-1 requests per metric group: one per campaign-origin request
        (BASIC), or per store and promotion type (GMV Max, which takes one store each)."""
        spec = item.spec
        if spec.gmv_max:
            stores = self._stores.get(item.result.advertiser_id, [])
            return [(store, kind) for store in stores for kind in spec.promotion_types]
        return list(self._origins.requests(spec.by_entity))

    def _open_chunk(
        self,
        item: _Item,
        start: date,
        end: date,
        rest_end: date,
        slot: _Slot | None,
        rereads: int = 0,
    ) -> None:
        """Queue page 1 of every metric group of ``start..end``; ``rest_end``: windows follow."""
        groups = len(self._groups[item.spec.report_type])
        chunk = _Chunk(
            start, end, [[] for _ in range(groups)], rest_end=rest_end, slot=slot, rereads=rereads
        )
        chunk.pending += 1  # held open while its groups are queued, as items are in ``run``
        for group in range(groups):
            for origins in self._parts(item):
                self._submit(item, chunk, group, 1, (), origins)
        self._release_chunk(item, chunk)

    def _release_chunk(self, item: _Item, chunk: _Chunk) -> None:
        try:
            self._chunk_part_done(item, chunk)
        except (TikTokError, NormalizationError, ValueError) as exc:
            self._fail(item, exc)
        except Exception as exc:  # a bug must fail the item, never hang the run
            log.exception("unexpected extraction error")
            self._fail(item, exc)

    def _admit(self) -> None:
        """Open waiting chunks while their budget has a slot: windows of a chunk over the
        bound first (their chunk's page 1 was read already), then new chunks.

        Waiting costs no thread and holds nothing, and a chunk with a slot never waits for
        another, so every slot is given back (``_leave``) and no wait can deadlock. One
        thread admits at a time; a call meanwhile makes it look again (no recursion when
        an opened chunk is done at once).
        """
        with self._lock:
            self._readmit = True
            if self._admitting:
                return
            self._admitting = True
        try:
            while True:
                with self._lock:
                    if self._waiting_windows and self._windows < self._max_windows:
                        item, start, end, rest_end = self._waiting_windows.popleft()
                        windows = True
                    elif self._waiting_chunks and self._open < self._max_open:
                        item, start, end = self._waiting_chunks.popleft()
                        rest_end, windows = end, False
                    elif self._readmit:
                        self._readmit = False
                        continue
                    else:
                        self._admitting = False
                        return
                    running = item.result.status == "running"
                    if running and windows:
                        self._windows += 1
                    elif running:
                        self._open += 1
                if running:
                    self._open_chunk(item, start, end, rest_end, _Slot(windows))
                self._task_done(item)
        except BaseException:
            with self._lock:
                self._admitting = False
            raise

    def _leave(self, slot: _Slot | None) -> None:
        """One holder of ``slot`` is done: the last gives the place back and admits more."""
        if slot is None:
            return
        with self._lock:
            slot.holders -= 1
            if slot.holders:
                return
            if slot.windows:
                self._windows -= 1
            else:
                self._open -= 1
        self._admit()

    def _abort_reason(self) -> str | None:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return "the run's deadline passed before this report finished; retry the run"
        if self._stop_requested and self._stop_requested():
            return "the service is shutting down; this report was not finished, retry the run"
        return None

    def _abandon(self, reason: str) -> None:
        """Fail every unfinished item now; in-flight requests finish in the background.

        Rows such a request might still hand to the sink belong to a failed item, which the
        writer leaves out, so nothing half-done is ever committed.
        """
        for item in self._items:
            self._fail(item, TimeoutError(reason))

    # -- scheduling -------------------------------------------------------------------------

    def _submit(
        self,
        item: _Item,
        chunk: _Chunk,
        group: int,
        page: int,
        scope: Scope = (),
        origins: Origins = (),
    ) -> None:
        with self._lock:
            item.pending += 1
            chunk.pending += 1
            self._outstanding += 1
            self.planned_requests += 1
        context = contextvars.copy_context()  # keeps the run's request id on worker log lines
        assert self._pool is not None
        # Campaign parts and an open window's page 1s run ahead of new chunks' page 1s, as
        # follow-up pages: they end a chunk that holds a slot.
        follow_up = page > 1 or bool(scope) or (chunk.slot is not None and chunk.slot.windows)
        priority = page_priority(max(page, 2) if follow_up else 1, item.spec.data_level, None)
        self._pool.submit(
            priority, context.run, self._task, item, chunk, group, page, scope, origins
        )

    def _task(
        self, item: _Item, chunk: _Chunk, group: int, page: int, scope: Scope, origins: Origins
    ) -> None:
        try:
            if item.result.status == "running" and not chunk.replaced:
                try:
                    self._fetch(item, chunk, group, page, scope, origins)
                except TikTokApiError as exc:
                    if not self._store_refused(item, page, origins, exc):
                        raise
        except (TikTokError, NormalizationError, TimeoutError) as exc:
            self._fail(item, exc)
        except Exception as exc:  # a bug must fail the item, never hang the run
            log.exception("unexpected extraction error")
            self._fail(item, exc)
        finally:
            # counted down even when it failed: the chunk then ends and gives its slot back
            self._release_chunk(item, chunk)
            self._task_done(item)

    def _store_refused(self, item: _Item, page: int, origins: Origins, exc: TikTokApiError) -> bool:
        """Whether TikTok refused one GMV Max store (40002 naming it: not, or no longer,
        usable for GMV Max, e.g. listed without ``is_gmv_max_available``): that store is
        skipped with a warning naming it and TikTok's words, and the other stores load."""
        if not (item.spec.gmv_max and page == 1 and exc.code == 40002 and origins):
            return False
        store = origins[0]
        if store not in exc.message:
            return False
        warning = f"TikTok Shop store {store} skipped: TikTok refused it ({exc.message})"
        with self._lock:
            if warning not in item.result.warnings:
                item.result.warnings.append(warning)
        log.warning(
            "GMV Max store refused by TikTok: skipped",
            extra={"fields": {"advertiser_id": item.result.advertiser_id, "store_id": store}},
        )
        return True

    def _chunk_part_done(self, item: _Item, chunk: _Chunk) -> None:
        """Count down a chunk's requests; the last one of a split chunk joins its groups,
        then opens the next date window when the chunk is read in windows."""
        with self._lock:
            chunk.pending -= 1
            chunk_done = chunk.pending == 0 and not chunk.replaced
        if not chunk_done:
            return
        repeated = self._repeated_keys(item, chunk)
        if repeated and self._read_again(item, chunk, repeated):
            return  # its slot goes on with the chunk that reads the days again
        joined = False
        try:
            if repeated:
                raise TikTokError(item.result.advertiser_id, repeated)
            if len(chunk.parts) > 1 and item.result.status == "running":
                self._emit_joined(item, chunk)
            joined = True
        finally:
            self._drop_parts(chunk)
            more = chunk.rest_end is not None and chunk.end < chunk.rest_end
            if joined and more and item.result.status == "running":
                self._open_next_window(item, chunk)  # in the same slot
            else:
                self._leave(chunk.slot)

    def _repeated_keys(self, item: _Item, chunk: _Chunk) -> str | None:
        """Why ``chunk`` cannot be loaded as read: a request listed a key on two of its pages.

        TikTok's report list is unsorted and its pages are asked for at once: a row that
        moved while the list was paged comes twice, and the row it displaced never, while
        ``total_number`` stays the same. Loading the repeat would duplicate a row, dropping
        it would hide the missing one: the chunk is read again or its item fails (its rows
        already handed to the sink are left out with it), as when the count changes.
        """
        with self._lock:
            requests, chunk.keys = chunk.keys, {}
        if item.result.status != "running":
            return None
        for (_, scope, _), fingerprints in requests.items():
            repeated = repeated_keys(fingerprints)
            if repeated:
                part = f" (campaigns {', '.join(scope)})" if scope else ""
                return (
                    f"the {item.spec.report_type} report of {chunk.start}..{chunk.end}{part} "
                    f"listed {repeated} row(s) twice across its pages: it changed while it was "
                    "paged, so as many rows may be missing; nothing of it is loaded, rerun "
                    "the window"
                )
        return None

    def _read_again(self, item: _Item, chunk: _Chunk, reason: str) -> bool:
        """Read ``chunk``'s days again from page 1, in its slot, when its report changed while
        it was paged (``reason``); False when it cannot be: its pages went to the sink already
        (one request a page), it is the Upgraded Smart+ part of another chunk, or it was read
        again ``MAX_REREADS`` times. TikTok's daily data fix rewrites reports for a while, so
        a second read usually finds them settled; nothing of the first was handed on."""
        if chunk.slot is None or chunk.rest_end is None or chunk.rereads >= MAX_REREADS:
            return False
        with self._lock:
            if item.result.status != "running":
                return False
            if chunk.replaced:
                return True  # another page's answer already asked for it again
            chunk.replaced = True
        self._drop_parts(chunk)
        log.warning(
            "report changed while it was paged: read again",
            extra={
                "fields": {
                    "advertiser_id": item.result.advertiser_id,
                    "report_type": item.spec.report_type,
                    "start": str(chunk.start),
                    "end": str(chunk.end),
                    "reason": reason,
                }
            },
        )
        self._open_chunk(
            item, chunk.start, chunk.end, chunk.rest_end, chunk.slot, chunk.rereads + 1
        )
        return True

    def _open_next_window(self, item: _Item, done: _Chunk) -> None:
        """The window after ``done``, as many days as its density says fit the bound."""
        days = (done.end - done.start).days + 1
        announced = done.announced()
        start = done.end + timedelta(days=1)
        assert done.rest_end is not None
        remaining = (done.rest_end - start).days + 1
        window = max(1, self._row_bound * days // announced) if announced else remaining
        end = start + timedelta(days=min(window, remaining) - 1)
        self._open_chunk(item, start, end, done.rest_end, done.slot)

    def _over_bound(self, item: _Item, chunk: _Chunk) -> bool:
        """Whether ``chunk`` announced more rows than the bound and is now read in windows.

        Its metric groups' parts wait for its last page to be joined, so a chunk of a big
        account at full width would hold tens of thousands of rows × ~270 metrics. Its days
        are then read as windows of as many days as fit the bound at the density page 1
        showed (one day at least: a day of ad rows is capped by TikTok at 20,000 ads per
        request), one after another. What the chunk already read is dropped: its page 1s
        only, as its other pages wait for them. True also when it was replaced already.
        """
        days = (chunk.end - chunk.start).days + 1
        if item.spec.lifetime or item.spec.time_dimension is None or days == 1:
            return False  # rows without a day would be summed per window: never split
        if chunk.rest_end is None:
            return False  # the Upgraded Smart+ ads of a chunk already read: a part of its rows
        with self._lock:
            if chunk.replaced:
                return True
            announced = chunk.announced()
            if announced <= self._row_bound:
                return False
            chunk.replaced = True
        self._drop_parts(chunk)
        window = max(1, self._row_bound * days // announced)
        log.info(
            "chunk over the row bound: read as shorter date windows",
            extra={
                "fields": {
                    "advertiser_id": item.result.advertiser_id,
                    "report_type": item.spec.report_type,
                    "start": str(chunk.start),
                    "rows": announced,
                    "days": window,
                }
            },
        )
        assert chunk.rest_end is not None
        end = chunk.start + timedelta(days=window - 1)
        slot = chunk.slot
        if slot is not None and slot.windows:  # a window over the bound: shorter, same slot
            self._open_chunk(item, chunk.start, end, chunk.rest_end, slot)
            return True
        # A new chunk gives its open slot back; its windows wait for a windows slot.
        with self._lock:
            item.pending += 1  # released when its first window is opened (``_admit``)
            self._outstanding += 1
            self._waiting_windows.append((item, chunk.start, end, chunk.rest_end))
        self._leave(slot)
        self._admit()
        return True

    def _hold(
        self, chunk: _Chunk, group: int, key: PartKey, table: pa.Table, dimensions: int
    ) -> None:
        """Keep one metric group's rows until the chunk is joined (not for a replaced one)."""
        values = table.num_rows * (table.num_columns - dimensions)
        with self._lock:
            if chunk.replaced:
                return
            chunk.parts[group].append((key, table))
            chunk.held += values
            self._held += values
            self.peak_held = max(self.peak_held, self._held)

    def _drop_parts(self, chunk: _Chunk) -> None:
        """``chunk`` holds nothing more: its share of the open budget goes to a waiting one."""
        with self._lock:
            chunk.parts = [[] for _ in chunk.parts]
            self._held -= chunk.held
            chunk.held = 0
            released, chunk.admitted = chunk.admitted, 0
            self._admitted_rows -= released
        if released:
            self._resume()

    def _may_page(
        self, item: _Item, chunk: _Chunk, follow: tuple[int, Scope, Origins, int]
    ) -> bool:
        """Whether an open chunk's pages after page 1 (``follow``: which request, how many
        pages) may be asked for now: while the chunks admitted so far announce at most
        ``_open_budget`` rows (or none is admitted). Otherwise the chunk waits, holding its
        page 1s and a count on itself and its item, until ``_resume`` admits it.

        Each open chunk is under the row bound, yet 24 of them just under it (24 mid-size
        accounts) would hold 24 bounds at once; a wait costs no request and no thread.
        Windows hold their own slots' bound, and one page is all a one-page chunk holds.
        """
        _, _, _, total_page = follow
        if total_page < 2 or chunk.slot is None or chunk.slot.windows or chunk.rest_end is None:
            return True
        with self._lock:
            announced = chunk.announced()
            if chunk.admitted:  # another page 1 of it: its share follows what it announced
                self._admitted_rows += announced - chunk.admitted
                chunk.admitted = announced
                return True
            if chunk.paused is None and self._take_budget(chunk):
                return True
            if chunk.paused is None:
                chunk.paused = []
                chunk.pending += 1  # released by ``_resume``
                item.pending += 1
                self._outstanding += 1
                self._paused.append((item, chunk))
            chunk.paused.append(follow)
            return False

    def _take_budget(self, chunk: _Chunk) -> bool:
        """Admit ``chunk`` when what it announced fits the open budget (or nothing is
        admitted); the caller holds the lock."""
        announced = max(chunk.announced(), 1)
        if self._admitted_rows and announced > self._open_budget - self._admitted_rows:
            return False
        chunk.admitted = announced
        self._admitted_rows += announced
        return True

    def _resume(self) -> None:
        """Admit waiting chunks, oldest first, while the open budget has room (one at least
        when none is admitted), and ask for their pages; a waiting chunk whose item failed
        or that is read otherwise now only gives its counts back."""
        while True:
            with self._lock:
                if not self._paused:
                    return
                item, chunk = self._paused[0]
                gone = chunk.replaced or item.result.status != "running"
                if not gone and not self._take_budget(chunk):
                    return
                self._paused.popleft()
                follows, chunk.paused = chunk.paused or [], None
            if not gone:
                for group, scope, origins, total_page in follows:
                    for next_page in range(2, total_page + 1):
                        self._submit(item, chunk, group, next_page, scope, origins)
            self._release_chunk(item, chunk)
            self._task_done(item)

    def _fetch(
        self, item: _Item, chunk: _Chunk, group: int, page: int, scope: Scope, origins: Origins
    ) -> None:
        reason = self._abort_reason()
        if reason:
            raise TimeoutError(reason)
        spec, advertiser_id = item.spec, item.result.advertiser_id
        whole = len(chunk.parts) == 1  # one request per chunk: its pages go straight to the sink
        result = self._request(item, chunk, group, page, scope, origins, whole)
        if result is None:  # read otherwise (in parts, per origin, or shrunk): already handled
            return
        with self._lock:
            if chunk.replaced:  # read again as shorter windows: this answer is not needed
                return
            counted = chunk.totals.setdefault((group, scope, origins), result.total_number)
        if counted != result.total_number:
            # TikTok's list is unsorted and pages are fetched at once: a report that changed
            # between pages may have lost or repeated rows in the pages already read.
            counts = f"page 1 counted {counted} rows, page {page} counts {result.total_number}"
            if self._read_again(item, chunk, counts):
                return
            raise TikTokError(
                advertiser_id,
                f"the {spec.report_type} report of {chunk.start}..{chunk.end} changed while "
                f"it was paged ({counts}); nothing of it is loaded, rerun the window",
            )
        if self._on_request_done:
            self._on_request_done(len(result.rows))
        if page == 1 and not whole and self._over_bound(item, chunk):
            return
        if page == 1 and self._may_page(item, chunk, (group, scope, origins, result.total_page)):
            for next_page in range(2, result.total_page + 1):
                self._submit(item, chunk, group, next_page, scope, origins)
        if not len(result.rows):
            return
        fingerprints = key_fingerprints(result.rows, spec.dimensions)
        with self._lock:
            chunk.keys.setdefault((group, scope, origins), []).append(fingerprints)
        if whole:
            return
        self._hold(chunk, group, (scope, origins, page), result.rows, len(spec.dimensions))

    def _request(
        self,
        item: _Item,
        chunk: _Chunk,
        group: int,
        page: int,
        scope: Scope,
        origins: Origins,
        whole: bool,
    ) -> Page | None:
        """One page, asked again without metrics TikTok refuses; None when it is read
        otherwise: over the ad cap (in parts of a few campaigns), refused with both origins
        in one filter (once per origin), or too large for TikTok (40067: in smaller requests)."""
        spec = item.spec
        gmv_max = spec.gmv_max
        key = (item.result.advertiser_id, spec.report_type)
        while True:
            with self._lock:
                metrics = self._groups[spec.report_type][group]
                read = self._readers[spec.report_type][group]
            wire, asked, typed = self._wire(item, chunk, metrics)
            if chunk.by_ad_id_v2:
                read = page_reader(wire, asked)
            if page == 1 and not gmv_max and len(origins) > 1 and not self._origins.combined:
                # queued before TikTok refused the combined filter: not sent again as is
                for single in self._origins.requests(spec.by_entity):
                    self._submit(item, chunk, group, 1, scope, single)
                return None
            days = 1 if spec.lifetime else (chunk.end - chunk.start).days + 1
            if page == 1 and not self._sizes.fits(key, days, len(metrics)):
                self._read_shrunk(item, chunk, group, scope, origins, metrics, whole)
                return None

            def convert(rows: Any, typed: Callable[[Any], pa.Table] = typed) -> pa.Table:
                # Runs on one of the client's few decode threads, not on this request thread:
                # the decoded page, its typing and its spooling stay in those threads.
                table = typed(rows)
                if gmv_max:
                    table = gmv_max_rows(spec, table, origins[0])
                if whole and len(table):
                    self._emit(item, chunk, table)
                return table

            with self._lock:
                item.result.requests += 1
                if not origins and ADVERTISER_WARNING not in item.result.warnings:
                    item.result.warnings.append(ADVERTISER_WARNING)
            try:
                return self._client.fetch_page(
                    wire,
                    item.result.advertiser_id,
                    asked,
                    chunk.start,
                    chunk.end,
                    page,
                    deadline=self._deadline,
                    convert=convert,
                    read=read,
                    campaign_ids=scope,
                    origins=() if gmv_max else origins,
                    store=(origins[0], origins[1]) if gmv_max else None,
                )
            except TikTokApiError as exc:
                if page == 1 and is_too_large(exc) and not gmv_max:
                    if self._sizes.shrink(key, days, len(metrics)) is None:
                        raise QueryTooLargeError(
                            item.result.advertiser_id,
                            f"TikTok answered 40067 (query too large) even for one day "
                            f"({chunk.start}) and {len(metrics)} metrics, the smallest request "
                            "it can be asked; this report is not loaded: ask for fewer metric "
                            "families or contact TikTok",
                        ) from None
                    continue  # page 1 again: now over the learnt size, read shrunk
                if page == 1 and not gmv_max and refuses_origins(exc):
                    each = self._origins.refused(origins, spec.by_entity)
                    if each is None:
                        raise
                    log.warning(
                        "TikTok refused several campaign origins in one filter: one per request",
                        extra={"fields": {"origins": list(origins)}},
                    )
                    for single in each:
                        self._submit(item, chunk, group, 1, scope, single)
                    return None
                if not self._drop_rejected_metrics(spec, group, metrics, exc):
                    raise
            except QuotaError as exc:
                if not exc.sent:  # refused by the day's count before it left: it cost nothing
                    with self._lock:
                        item.result.requests -= 1
                raise
            except TikTokTruncatedError:
                if page != 1 or not spec.splits_by_campaign or len(scope) == 1:
                    raise
                self._split_by_campaign(item, chunk, group, scope, origins)
                return None

    def _read_shrunk(
        self,
        item: _Item,
        chunk: _Chunk,
        group: int,
        scope: Scope,
        origins: Origins,
        metrics: list[str],
        whole: bool,
    ) -> None:
        """A chunk's metric group in requests small enough for TikTok (see ``query_size``).

        Read in this worker, page after page: 40067 is rare and per account, and the parts
        must all be in before they can be joined. The result joins the chunk like any page.
        """
        spec, advertiser_id = item.spec, item.result.advertiser_id

        def fetch(names: list[str], start: date, end: date) -> pa.Table:
            wire, asked, typed = self._wire(item, chunk, names)
            read = page_reader(wire, asked)
            tables: list[pa.Table] = []
            page, total_page, counted = 1, 1, None
            while page <= total_page:
                with self._lock:
                    item.result.requests += 1
                result = self._client.fetch_page(
                    wire,
                    advertiser_id,
                    asked,
                    start,
                    end,
                    page,
                    deadline=self._deadline,
                    convert=typed,
                    read=read,
                    campaign_ids=scope,
                    origins=origins,
                )
                if counted is not None and counted != result.total_number:
                    raise TikTokError(
                        advertiser_id,
                        f"the {spec.report_type} report of {start}..{end} changed while it was "
                        "paged; nothing of it is loaded, rerun the window",
                    )
                counted = result.total_number
                if self._on_request_done:
                    self._on_request_done(len(result.rows))
                tables.append(result.rows)
                page, total_page = page + 1, result.total_page
            return pa.concat_tables(tables, promote_options="default")  # odd marks (reader)

        table = read_shrinking(
            fetch,
            lambda parts: join_metric_groups(spec, parts),
            self._sizes,
            (advertiser_id, spec.report_type),
            metrics,
            chunk.start,
            chunk.end,
            advertiser_id,
            split_days=not spec.lifetime,
        )
        log.info(
            "report read in smaller requests (TikTok 40067: query too large)",
            extra={
                "fields": {
                    "advertiser_id": advertiser_id,
                    "report_type": spec.report_type,
                    "start": str(chunk.start),
                    "size": str(self._sizes.get((advertiser_id, spec.report_type))),
                }
            },
        )
        if whole:
            if len(table):
                self._emit(item, chunk, table)
        elif len(table):
            self._hold(chunk, group, (scope, origins, 0), table, len(spec.dimensions))

    def _split_by_campaign(
        self, item: _Item, chunk: _Chunk, group: int, scope: Scope, origins: Origins
    ) -> None:
        """Read a chunk TikTok truncated (over 20,000 ads) in parts of at most 30 campaigns.

        The sync report serves only the 20,000 most recently created ads of what it is asked
        for (``X-Tt-Ads-Throttle``); narrowed to a few campaigns, each part stays under the
        cap. The campaigns are those the campaign-level report shows delivering in the
        chunk: an ad with a row has a campaign with one. A part that is still truncated is
        split into single campaigns; a single campaign over the cap fails the report.
        """
        spec, advertiser_id = item.spec, item.result.advertiser_id
        if scope:
            parts: list[tuple[str, ...]] = [(campaign,) for campaign in scope]
        else:
            campaigns = self._delivering_campaigns(advertiser_id, chunk)
            parts = [
                tuple(campaigns[i : i + CAMPAIGNS_PER_PART])
                for i in range(0, len(campaigns), CAMPAIGNS_PER_PART)
            ]
        log.warning(
            "report over TikTok's 20,000-ad cap: reading it by campaign",
            extra={
                "fields": {
                    "advertiser_id": advertiser_id,
                    "report_type": spec.report_type,
                    "start": str(chunk.start),
                    "parts": len(parts),
                }
            },
        )
        for part in parts:
            self._submit(item, chunk, group, 1, part, origins)

    def _delivering_campaigns(self, advertiser_id: str, chunk: _Chunk) -> list[str]:
        """The campaigns with a row in the campaign-level report of the chunk's days."""
        spec = REPORTS["campaign"]
        campaigns: list[str] = []
        for origins in self._origins.requests(spec.by_entity):
            page, total_page = 1, 1
            while page <= total_page:
                result = self._client.fetch_page(
                    spec,
                    advertiser_id,
                    ["spend", "impressions", "clicks"],
                    chunk.start,
                    chunk.end,
                    page,
                    deadline=self._deadline,
                    origins=origins,
                )
                campaigns += [row["dimensions"][spec.id_dimension] for row in result.rows]
                page, total_page = page + 1, result.total_page
        return sorted(set(campaigns))

    def _drop_rejected_metrics(
        self, spec: ReportSpec, group: int, sent: list[str], error: TikTokApiError
    ) -> bool:
        """After a 40002 naming invalid metrics, ask again without them; False: give up.

        Which metrics TikTok offers at each level is not fully documented (conversion metrics
        at the advertiser level, newly retired metrics), and one refused name would otherwise
        fail the whole level for every advertiser. The names come from TikTok's own answer;
        the level's request loses them for the rest of the run, their columns load as null,
        and every item of the level carries a warning naming them. Each retry asks for
        strictly fewer metrics, so this ends.
        """
        rejected = rejected_metrics(error)
        with self._lock:
            current = self._groups[spec.report_type][group]
            if current is not sent:
                return True  # another request already dropped them: ask again with the new list
            dropped = [m for m in current if m in rejected]
            if not dropped or len(dropped) == len(current):
                return False
            kept = [m for m in current if m not in rejected]
            self._groups[spec.report_type][group] = kept
            self._readers[spec.report_type][group] = page_reader(spec, kept)
            warning = (
                f"TikTok refused these {spec.report_type}-level metrics, loaded as null: "
                + ", ".join(dropped)
            )
            for item in self._items:
                if item.spec.report_type == spec.report_type:
                    item.result.warnings.append(warning)
        log.warning(
            "metrics refused by TikTok dropped",
            extra={"fields": {"report_type": spec.report_type, "metrics": dropped}},
        )
        return True

    def _emit_joined(self, item: _Item, chunk: _Chunk) -> None:
        """All requests of a split chunk are in: join their groups into full rows.

        Each group's pages in page order, not in the order they arrived: when TikTok lists
        a chunk's rows in the same order for each group (its usual answer), the groups then
        line up row for row and ``join_metric_groups`` takes its zero-copy path; arrival
        order made it gather every column of every window again (~10 % of the CSV tool's
        page faults at the default width). Pages differ only in their odd marks
        (``reader.OddValues``), filled with nulls.
        """
        parts = [
            pa.concat_tables(
                [table for _, table in sorted(tables, key=lambda part: part[0])],
                promote_options="default",
            )
            for tables in chunk.parts
            if tables
        ]
        chunk.parts = []
        if parts:
            self._emit(item, chunk, join_metric_groups(item.spec, parts))

    def _wire(
        self, item: _Item, chunk: _Chunk, names: list[str]
    ) -> tuple[ReportSpec, list[str], Callable[[Any], pa.Table]]:
        """What to ask TikTok for a chunk's metric group ``names`` (the report, the metrics)
        and how to type its pages: by ``ad_id_v2`` for a chunk of Upgraded Smart+ ads, whose
        rows then carry the ad level's columns (``reader.ad_rows``)."""
        spec = item.spec
        if not chunk.by_ad_id_v2:
            return spec, names, functools.partial(page_to_table, spec, names, odd=item.odd)
        wire = spec.by_ad_id_v2()
        asked = [name for name in names if name != SMART_PLUS_AD_ID]

        def typed(rows: Any) -> pa.Table:
            return ad_rows(page_to_table(wire, asked, rows, item.odd), names)

        return wire, asked, typed

    def _read_smart_plus_ads(self, item: _Item, chunk: _Chunk, campaigns: list[str]) -> None:
        """Ask for the Upgraded Smart+ ads of ``campaigns`` over the chunk's days by
        ``ad_id_v2`` (their creatives' ``ad_id`` rows are left out of the report): a chunk of
        its own, in parts of at most 30 campaigns, only for campaigns not asked for yet. An
        account without such campaigns costs no request more."""
        with self._lock:
            new = [c for c in campaigns if c not in chunk.smart_plus]
            chunk.smart_plus.update(new)
        if not new:
            return
        groups = len(self._groups[item.spec.report_type])
        ads = _Chunk(
            chunk.start,
            chunk.end,
            [[] for _ in range(groups)],
            by_ad_id_v2=True,
            smart_plus=set(new),
            slot=chunk.slot,
        )
        if ads.slot is not None:
            with self._lock:
                ads.slot.holders += 1  # what it holds counts in its chunk's place
        ads.pending += 1  # held open while its requests are queued
        for i in range(0, len(new), CAMPAIGNS_PER_PART):
            part = tuple(new[i : i + CAMPAIGNS_PER_PART])
            for group in range(groups):
                for origins in self._origins.requests(item.spec.by_entity):
                    self._submit(item, ads, group, 1, part, origins)
        self._release_chunk(item, ads)

    def _emit(self, item: _Item, chunk: _Chunk, table: pa.Table) -> None:
        if item.spec.ads_as_shown:
            with self._lock:
                smart_plus = set(chunk.smart_plus)
            if chunk.by_ad_id_v2:
                table = of_campaigns(table, smart_plus)
            else:
                table, campaigns = without_creatives(table, smart_plus)
                if campaigns:
                    self._read_smart_plus_ads(item, chunk, campaigns)
            if not len(table):
                return
        table = item.odd.settle(table)
        typed = finish(item.spec, table, item.result.advertiser_id, self._extracted_at)
        self._sink(item.spec, item.result.advertiser_id, typed)
        with self._lock:
            item.result.rows += len(typed)

    def _fail(self, item: _Item, exc: Exception) -> None:
        with self._lock:
            if item.result.status != "running":
                return
            item.result.status = "error"
            item.result.error = (
                str(exc)
                if isinstance(exc, TikTokError)
                else (f"advertiser {item.result.advertiser_id}: {exc}")
            )
        log.warning(
            "report failed",
            extra={
                "fields": {
                    "advertiser_id": item.result.advertiser_id,
                    "report_type": item.spec.report_type,
                    "error": item.result.error,
                }
            },
        )

    def _task_done(self, item: _Item) -> None:
        with self._lock:
            item.pending -= 1
            self._outstanding -= 1
            finished = item.pending == 0
            if finished and item.result.status == "running":
                item.result.status = "success"
                item.result.warnings += item.odd.warnings(item.spec.report_type)
            all_done = self._outstanding == 0
        if finished and self._on_item_done:
            self._on_item_done(item.result)
        if all_done:
            self._all_done.set()
