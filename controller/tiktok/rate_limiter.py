"""Client-side rate limiter for the TikTok developer app's QPS/QPM tier.

Guarantee: across every thread that shares a limiter, no rolling window of ``window``
seconds ever contains more requests than the window allows, for the QPS window and the QPM
window alike, counted at the moment each request leaves the process. TikTok counts
requests per developer app, whatever the advertiser or token, so one limiter per process
holds the whole app; a request may add a child limiter with a smaller budget (its share of
the app, when several callers share it).

Where the window is held matters. A slot taken when a thread may start is not when its
request leaves: building it, taking a pooled connection, a GIL switch or a busy CPU can add
tens of ms, and two requests that started 100 ms apart may then leave 40 ms apart. So the
HTTP client takes its slot inside the connection, right before the request's bytes are
written (see ``controller.tiktok.http_gate``), and ``Slot.sent`` re-stamps the slot with the time
the write returned, so a late request also pushes the next ones back.

A sliding log (the send times of the last N requests) is used instead of a token bucket:
a bucket allows a burst of N right after N at the boundary of a second, which TikTok's
rolling counters answer with 40100. TikTok refuses more than N arrivals within about
0.95 s, which leaves ~50 ms for the jitter between our send and their arrival; each window
is widened by an adaptive ``margin`` on top of that. The margin starts at its floor
(TIKTOK_RATE_MARGIN), widens by ``MARGIN_STEP`` after every 40100 (``rate_limited``,
which also holds every start for a second, as TikTok asks), and narrows back towards the
floor by a tenth of a step every ``NARROW_EVERY`` requests without one: a machine that got
busy costs a few percent of throughput instead of a run of refusals, and an idle one runs
at the floor.

Some endpoints have a budget of their own beside the app tier: the GMV Max report counts
per app at its own QPS and QPM and also per UTC day (docs/tiktok_api_gmv_smartplus.md §1.1). Its limiter
is another ``RateLimiter`` of the same design with a ``DailyQuota``: once the day's count is
reached (or TikTok said so), a request is refused at once with ``QuotaSpentError`` instead
of waiting until midnight.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

MARGIN_STEP = 0.05  # seconds added to every window after a 40100
MAX_MARGIN = 0.5
NARROW_EVERY = 50  # requests without a 40100 before the margin narrows by a tenth of a step
EXACT_MIN_UP_TO = 100  # windows of more slots wait for their oldest slot (see ``wait_time``)


class Slot:
    """One request's place in the windows; ``sent`` moves it to when it really left."""

    __slots__ = ("_clock", "_lock", "at")

    def __init__(self, at: float, lock: threading.Lock, clock: Callable[[], float]) -> None:
        self.at = at
        self._lock = lock
        self._clock = clock

    def sent(self) -> None:
        """Re-stamp the slot with now, when the request's bytes were written (only later)."""
        at = self._clock()
        if at > self.at:
            with self._lock:
                self.at = max(self.at, at)


class _Window:
    """At most ``count`` sends in any ``base + margin``-second interval."""

    def __init__(self, count: int, base: float, margin: _Margin) -> None:
        self.count = count
        self.base = base
        self.margin = margin
        self.slots: deque[Slot] = deque(maxlen=count)  # only the last ``count`` sends matter

    @property
    def seconds(self) -> float:
        return self.base + self.margin.value

    def wait_time(self, now: float) -> float:
        if len(self.slots) < self.count:
            return 0.0
        if self.count > EXACT_MIN_UP_TO:
            # A minute's window (thousands of slots): the scan below, under the lock, on
            # every wake of every waiting thread, kept a core busy in a 4-unit backfill. The
            # oldest slot is at or after the earliest, so waiting for it is safe; it errs by
            # that slot's re-stamp (ms, against 60 s).
            return self.slots[0].at + self.seconds - now
        # A re-stamped slot may now be later than a newer one: the earliest of the last
        # ``count`` is the one that leaves the window first.
        return min(slot.at for slot in self.slots) + self.seconds - now

    def take(self, slot: Slot) -> None:
        self.slots.append(slot)


class _Pacing(_Window):
    """One send per ``seconds / count``, on a grid that a late caller does not shift.

    A thread woken a few ms late (scheduler, GIL) would otherwise push every later send
    back by as much, and those delays add up to ~5 % of the budget on a loaded machine. A
    send up to half an interval late is booked at its slot, so the next one may follow a
    little sooner. Only smoothing: the QPS window, on real send times, is the hard bound.
    """

    def __init__(self, per_window: int, base: float, margin: _Margin) -> None:
        super().__init__(1, base, margin)
        self.per_window = per_window
        self.next_at = -math.inf

    @property
    def interval(self) -> float:
        return self.seconds / self.per_window

    def wait_time(self, now: float) -> float:
        return self.next_at - now

    def take(self, slot: Slot) -> None:
        interval = self.interval
        # The first send is booked when it left; a late one up to half an interval early.
        booked = max(self.next_at, slot.at - interval / 2 if self.next_at > -math.inf else slot.at)
        self.next_at = booked + interval


class QuotaSpentError(Exception):
    """The day's quota of a budget is spent: no request of it may leave before UTC midnight
    (not an OSError nor a TimeoutError: nothing may retry it)."""


def _utc_today() -> date:
    return datetime.now(UTC).date()


class DailyQuota:
    """At most ``limit`` requests per UTC day, counted when each request takes its slot.

    TikTok's own count may be ahead (another process of the same app, a restart): its answer
    that the day's quota is spent (``spend``) closes the day here too.
    """

    def __init__(self, limit: int, today: Callable[[], date] = _utc_today) -> None:
        if limit <= 0:
            raise ValueError("the daily quota must be greater than 0")
        self.limit = limit
        self._today = today
        self._day = today()
        self.used = 0
        # TikTok's words when it said the day is spent: what every later refusal repeats
        self.tiktok_said: str | None = None

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:
            self._day, self.used, self.tiktok_said = day, 0, None

    def spent(self) -> bool:
        self._roll()
        return self.used >= self.limit

    def take(self) -> None:
        """Count one request; raises ``QuotaSpentError`` when the day's are all used."""
        if self.spent():
            raise QuotaSpentError(f"the daily quota of {self.limit} requests is spent")
        self.used += 1

    def spend(self, tiktok_said: str | None = None) -> None:
        """TikTok says the day's quota is spent: none more today."""
        self._roll()
        self.used = max(self.used, self.limit)
        self.tiktok_said = tiktok_said or self.tiktok_said


@dataclass
class _Margin:
    """The seconds every window of a limiter family is widened by (shared with children)."""

    value: float
    floor: float
    clean: int = 0  # requests since the last change

    def widen(self) -> None:
        self.value = min(MAX_MARGIN, max(self.value, self.floor) + MARGIN_STEP)
        self.clean = 0

    def count_request(self) -> None:
        self.clean += 1
        if self.clean >= NARROW_EVERY and self.value > self.floor:
            self.value = max(self.floor, self.value - MARGIN_STEP / 10)
            self.clean = 0


def _qps_count_and_base(qps: float) -> tuple[int, float]:
    # TikTok counts per second, so a fractional budget is rounded down, never spread over a
    # longer window: 2.5 QPS allowed as "5 per 2 s" could put 5 requests in one second.
    if qps >= 1:
        return math.floor(qps), 1.0
    return 1, 1.0 / qps


class RateLimiter:
    """Blocks each caller until a request may leave without breaking any window."""

    def __init__(
        self,
        qps: float,
        qpm: int,
        *,
        margin: float = 0.03,
        parent: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        daily: DailyQuota | None = None,
    ) -> None:
        if qps <= 0 or qpm <= 0:
            raise ValueError("qps and qpm must be greater than 0")
        self.qps, self.qpm = qps, qpm
        self._parent = parent
        self._lock: threading.Lock = (
            parent._lock if parent else threading.Lock()
        )  # one lock: atomic check-and-take
        self._clock = clock
        self._margin: _Margin = parent._margin if parent else _Margin(margin, margin)
        count, base = _qps_count_and_base(qps)
        # Pacing: sends spaced evenly (one per window/count seconds) instead of bursts of N.
        # A burst makes N connections race, and the jitter between our send and TikTok's
        # arrival time grows with the race; evenly spaced sends arrive as they left.
        own = [
            _Window(count, base, self._margin),
            _Pacing(count, base, self._margin),
            _Window(qpm, 60.0, self._margin),
        ]
        self._windows: list[_Window] = own + (parent._windows if parent else [])
        self.waits = 0
        self.waited_seconds = 0.0
        self._paused_until: list[float] = (
            parent._paused_until if parent else [0.0]
        )  # shared with children
        self._held_until = 0.0  # this limiter's alone (see ``hold``)
        # requests per UTC day (shared with children); None: the budget has no day quota
        self.daily: DailyQuota | None = parent.daily if parent else daily

    @property
    def margin(self) -> float:
        """The seconds currently added to each window (adaptive, see the module docstring)."""
        return self._margin.value

    def pause(self, seconds: float = 1.0) -> None:
        """Hold every start (of this limiter, its parent and siblings) for ``seconds``."""
        with self._lock:
            self._paused_until[0] = max(self._paused_until[0], self._clock() + seconds)

    def rate_limited(self) -> None:
        """TikTok answered 40100: hold everyone for a second and widen the margin."""
        with self._lock:
            self._paused_until[0] = max(self._paused_until[0], self._clock() + 1.0)
            self._margin.widen()

    def hold(self, seconds: float) -> None:
        """Hold the starts of this limiter only (not its parent's, not its siblings')."""
        with self._lock:
            self._held_until = max(self._held_until, self._clock() + seconds)

    def spend_day(self, tiktok_said: str | None = None) -> None:
        """TikTok answered that the day's quota is spent (in ``tiktok_said``): refuse the rest
        of the day, every refusal repeating TikTok's words."""
        if self.daily is not None:
            with self._lock:
                self.daily.spend(tiktok_said)

    def child(self, qps: float | None, qpm: int | None) -> RateLimiter:
        """A limiter that also honours this one: a caller's share of the app's budget."""
        return RateLimiter(
            min(qps or self.qps, self.qps),
            min(qpm or self.qpm, self.qpm),
            parent=self,
            clock=self._clock,
        )

    def acquire(self, deadline: float | None = None) -> float:
        """Wait for a slot and take it; returns the seconds waited.

        Raises TimeoutError when no slot frees up before ``deadline`` (monotonic seconds),
        ``QuotaSpentError`` when the budget's day quota is spent.
        """
        waited, _ = self._acquire(deadline)
        return waited

    def acquire_slot(self, deadline: float | None = None) -> Slot:
        """Like ``acquire``, but returns the slot so the sender can re-stamp it (``sent``)."""
        _, slot = self._acquire(deadline)
        return slot

    def _acquire(self, deadline: float | None) -> tuple[float, Slot]:
        waited = 0.0
        while True:
            with self._lock:
                if self.daily is not None and self.daily.spent():
                    raise QuotaSpentError(
                        f"the daily quota of {self.daily.limit} requests is spent"
                    )
                now = self._clock()
                wait = max(window.wait_time(now) for window in self._windows)
                wait = max(wait, self._paused_until[0] - now, self._held_until - now)
                if wait <= 1e-9:  # float rounding must not cost a spin of the loop
                    if self.daily is not None:
                        self.daily.take()
                    slot = Slot(now, self._lock, self._clock)
                    for window in self._windows:
                        window.take(slot)
                    self._margin.count_request()
                    if waited:
                        self.waits += 1
                        self.waited_seconds += waited
                    return waited, slot
            if deadline is not None and self._clock() + wait > deadline:
                raise TimeoutError("rate limiter: no request slot before the deadline")
            time.sleep(wait)
            waited += wait


_app_limiters: dict[tuple[float, int, float], RateLimiter] = {}
_app_lock = threading.Lock()


def app_limiter(qps: float, qpm: int, margin: float = 0.03) -> RateLimiter:
    """The process-wide limiter of the developer app's tier, shared by all runs and threads."""
    with _app_lock:
        key = (qps, qpm, margin)
        if key not in _app_limiters:
            _app_limiters[key] = RateLimiter(qps, qpm, margin=margin)
        return _app_limiters[key]


_budget_limiters: dict[tuple[str, float, int, int, float], RateLimiter] = {}


def budget_limiter(
    name: str, qps: float, qpm: int, daily_quota: int, margin: float = 0.03
) -> RateLimiter:
    """The process-wide limiter of an endpoint's own budget (e.g. ``gmv_max``), with its day
    quota: shared by all runs and threads, like ``app_limiter``."""
    with _app_lock:
        key = (name, qps, qpm, daily_quota, margin)
        if key not in _budget_limiters:
            _budget_limiters[key] = RateLimiter(
                qps, qpm, margin=margin, daily=DailyQuota(daily_quota)
            )
        return _budget_limiters[key]
