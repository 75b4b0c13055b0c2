"""Sliding-window rate limits (reference §4.3).

TikTok limits a developer *app* (every token and advertiser using it share the quota): Basic
tier 10 QPS and 600 QPM. The window is a true rolling window, not a fixed clock second: a
request is rejected when the number of requests already accepted in the last ``window``
seconds has reached the limit. A client that spaces requests "10 per clock second" can still
put 11 into some rolling second and will be told so (code 40100).
"""

from __future__ import annotations

import threading
from collections import deque


class SlidingWindow:
    """Counts events in the last ``window`` seconds (timestamps from a monotonic clock)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: deque[float] = deque()

    def count(self, now: float) -> int:
        events = self._events
        while events and events[0] <= now - self.window:
            events.popleft()
        return len(events)

    def is_full(self, now: float) -> bool:
        return self.count(now) >= self.limit

    def add(self, now: float) -> None:
        self._events.append(now)

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
            self._second = SlidingWindow(qps, 1.0)
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
