"""Sliding-window rate limits (docs/tiktok_api_reference.md §4.3).

TikTok limits a developer *app* (every token and advertiser using it share the quota): Basic
tier 10 QPS and 600 QPM. The window is a true rolling window, not a fixed clock second: a
request is rejected when the number of requests already accepted in the last ``window``
seconds has reached the limit. A client that spaces requests "10 per clock second" can still
put 11 into some rolling second and will be told so (code 40100).

The QPS window is ``QPS_WINDOW_SECONDS`` = 0.95 s, TikTok's as modelled from its answers:
more than ``qps`` arrivals within 0.95 s are refused, which leaves a client that holds a
1-s window at its end 50 ms for the jitter between its send and the arrival.
"""

from __future__ import annotations

import bisect
import threading

QPS_WINDOW_SECONDS = 0.95


class SlidingWindow:
    """Counts events in the last ``window`` seconds (timestamps from a monotonic clock).

    Arrivals are stamped when they reached the server but counted when a thread handles
    them, so they may come slightly out of order: events are kept sorted, and an event is
    refused when any ``window``-long interval containing it would hold more than ``limit``.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: list[float] = []

    def _prune(self, now: float) -> None:
        events = self._events
        keep = bisect.bisect_right(events, now - 2 * self.window)
        if keep:
            del events[:keep]

    def count(self, now: float) -> int:
        """Events in (now - window, now]."""
        self._prune(now)
        events = self._events
        return bisect.bisect_right(events, now) - bisect.bisect_right(events, now - self.window)

    def is_full(self, now: float) -> bool:
        """True when an event at ``now`` would put more than ``limit`` in some window."""
        if self.count(now) >= self.limit:
            return True
        events = self._events
        # Windows ending at a later event (one handled before this earlier arrival).
        later = bisect.bisect_right(events, now)
        for end in events[later : bisect.bisect_left(events, now + self.window)]:
            inside = bisect.bisect_right(events, end) - bisect.bisect_right(
                events, end - self.window
            )
            if inside >= self.limit:
                return True
        return False

    def add(self, now: float) -> None:
        bisect.insort(self._events, now)

    def clear(self) -> None:
        self._events.clear()


class AppRateLimiter:
    """QPS and QPM windows of one developer app.

    ``count_rejected`` decides whether a rejected request also consumes quota (a client that
    keeps hammering then stays locked out). Off by default: only accepted requests count.
    """

    def __init__(self, qps: int, qpm: int, count_rejected: bool = False) -> None:
        self._lock = threading.Lock()
        self.count_rejected = count_rejected
        self.configure(qps, qpm)

    def configure(self, qps: int, qpm: int) -> None:
        with self._lock:
            self._second = SlidingWindow(qps, QPS_WINDOW_SECONDS)
            self._minute = SlidingWindow(qpm, 60.0)

    def try_acquire(self, now: float) -> bool:
        """Record a request arriving at ``now``; False when it exceeds either window."""
        with self._lock:
            allowed = not (self._second.is_full(now) or self._minute.is_full(now))
            if allowed or self.count_rejected:
                self._second.add(now)
                self._minute.add(now)
            return allowed

    def clear(self) -> None:
        with self._lock:
            self._second.clear()
            self._minute.clear()


class AdvertiserRateLimiter:
    """Optional per-advertiser, per-path QPS limit (code 40133); its real value is undocumented."""

    def __init__(self, qps: int | None) -> None:
        self._lock = threading.Lock()
        self.qps = qps
        self._windows: dict[tuple[str, str], SlidingWindow] = {}

    def try_acquire(self, advertiser_id: str, path: str, now: float) -> tuple[bool, int]:
        """(allowed, requests in the current window including this one)."""
        if self.qps is None:
            return True, 0
        with self._lock:
            window = self._windows.setdefault((advertiser_id, path), SlidingWindow(self.qps, 1.0))
            current = window.count(now)
            if current >= self.qps:
                return False, current + 1
            window.add(now)
            return True, current + 1

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
