"""Client-side rate limiter for the TikTok developer app's QPS/QPM tier.

Guarantee: across every thread that shares a limiter, no rolling window of ``window``
seconds ever contains more request starts than the window allows, for the QPS window and
the QPM window alike. TikTok counts requests per developer app, whatever the advertiser or
token, so one limiter per process holds the whole app; a request may add a child limiter
with a smaller budget (its share of the app, when several callers share it).

A sliding log (the start times of the last N requests) is used instead of a token bucket:
a bucket allows a burst of N right after N at the boundary of a second, which TikTok's
rolling counters may answer with 40100. The log is tiny (N entries per window). Each
window is widened by ``margin`` seconds so that jitter between our clock and TikTok's
arrival time cannot squeeze N+1 requests into one of their windows (measured on loopback
with a Python server under load: delays spread by up to ~200 ms at the tail, so the default
is 100 ms, configurable with TIKTOK_RATE_MARGIN). After a 40100 anyway, ``pause`` holds
every start for a second, as TikTok asks ("retry after the current second").
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class _Window:
    """At most ``count`` starts in any ``seconds``-long interval."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.seconds = seconds
        self.starts: deque[float] = deque(maxlen=count)  # only the last ``count`` starts matter

    def wait_time(self, now: float) -> float:
        if len(self.starts) < self.count:
            return 0.0
        return self.starts[0] + self.seconds - now

    def take(self, now: float) -> None:
        self.starts.append(now)


class _Pacing(_Window):
    """One start per ``seconds``, on a grid that a late caller does not shift.

    A thread woken a few ms late (scheduler, GIL) would otherwise push every later start
    back by as much, and those delays add up to ~5 % of the budget on a loaded machine. A
    start up to ``slack`` seconds late is booked at its slot, so the next one may follow a
    little sooner. Only smoothing: the QPS window, on real start times, is the hard bound.
    """

    def __init__(self, seconds: float, slack: float) -> None:
        super().__init__(1, seconds)
        self.slack = slack

    def take(self, now: float) -> None:
        slot = self.starts[0] + self.seconds if self.starts else now
        self.starts.append(max(slot, now - self.slack))


def _qps_window(qps: float, margin: float) -> _Window:
    # TikTok counts per second, so a fractional budget is rounded down, never spread over a
    # longer window: 2.5 QPS allowed as "5 per 2 s" could put 5 requests in one second.
    if qps >= 1:
        return _Window(math.floor(qps), 1.0 + margin)
    return _Window(1, 1.0 / qps + margin)


class RateLimiter:
    """Blocks each caller until a request may start without breaking any window."""

    def __init__(
        self,
        qps: float,
        qpm: int,
        *,
        margin: float = 0.1,
        parent: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if qps <= 0 or qpm <= 0:
            raise ValueError("qps and qpm must be greater than 0")
        self.qps, self.qpm = qps, qpm
        self._parent = parent
        self._lock = parent._lock if parent else threading.Lock()  # one lock: atomic check-and-take
        self._clock = clock
        per_second = _qps_window(qps, margin)
        # Pacing: starts spaced evenly (one per window/count seconds) instead of bursts of N.
        # A burst makes N connections race, and the jitter between our start and TikTok's
        # arrival time grows with the race; evenly spaced starts arrive as they left.
        interval = per_second.seconds / per_second.count
        pacing = _Pacing(interval, slack=interval / 2)
        own = [per_second, pacing, _Window(qpm, 60.0 + margin)]
        self._windows = own + (parent._windows if parent else [])
        self.waits = 0
        self.waited_seconds = 0.0
        self._paused_until = [0.0]  # shared with children through the parent's list
        if parent:
            self._paused_until = parent._paused_until
        self._held_until = 0.0  # this limiter's alone (see ``hold``)

    def pause(self, seconds: float = 1.0) -> None:
        """Hold every start (of this limiter, its parent and siblings) for ``seconds``."""
        with self._lock:
            self._paused_until[0] = max(self._paused_until[0], self._clock() + seconds)

    def hold(self, seconds: float) -> None:
        """Hold the starts of this limiter only (not its parent's, not its siblings')."""
        with self._lock:
            self._held_until = max(self._held_until, self._clock() + seconds)

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

        Raises TimeoutError when no slot frees up before ``deadline`` (monotonic seconds).
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = max(window.wait_time(now) for window in self._windows)
                wait = max(wait, self._paused_until[0] - now, self._held_until - now)
                if wait <= 1e-9:  # float rounding must not cost a spin of the loop
                    for window in self._windows:
                        window.take(now)
                    if waited:
                        self.waits += 1
                        self.waited_seconds += waited
                    return waited
            if deadline is not None and self._clock() + wait > deadline:
                raise TimeoutError("rate limiter: no request slot before the deadline")
            time.sleep(wait)
            waited += wait


_app_limiters: dict[tuple[float, int, float], RateLimiter] = {}
_app_lock = threading.Lock()


def app_limiter(qps: float, qpm: int, margin: float = 0.1) -> RateLimiter:
    """The process-wide limiter of the developer app's tier, shared by all runs and threads."""
    with _app_lock:
        key = (qps, qpm, margin)
        if key not in _app_limiters:
            _app_limiters[key] = RateLimiter(qps, qpm, margin=margin)
        return _app_limiters[key]
