"""A thread pool that runs the most urgent queued work first, and the order of page requests.

A run's tail is bound by latency when the last requests to start are page 1 of long
chains: their pages 2..n can only start one TikTok latency later, while the rate budget
idles. So the extraction orders its requests (``page_priority``): follow-up pages first
(they were waiting for their page 1), then page 1 of the chains expected to be longest
(the ad level, the biggest accounts), the short ones last. ``ThreadPoolExecutor`` only
knows FIFO; ``PriorityPool`` is the same idea with a heap.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Expected pages of a chunk per level when nothing better is known: an ad-level report has
# the most rows per account, the advertiser level one row a day.
LEVEL_WEIGHT = {
    "AUCTION_AD": 4.0,
    "AUCTION_ADGROUP": 3.0,
    "AUCTION_CAMPAIGN": 2.0,
    "AUCTION_ADVERTISER": 1.0,
}

Priority = tuple[float, ...]


def page_priority(page: int, data_level: str, expected_rows: float | None) -> Priority:
    """Smaller runs first: follow-up pages, then page 1 of the longest expected chains.

    ``expected_rows``: the rows a chunk of this advertiser and level is expected to have
    (from a plan or an earlier page 1); None: only the level's weight orders it.
    """
    if page > 1:
        return (0.0, page)
    level = LEVEL_WEIGHT.get(data_level, 1.0)
    return (1.0, -(expected_rows or 0.0), -level)


class PriorityPool:
    """``workers`` threads running submitted calls, lowest priority first, FIFO on ties."""

    def __init__(self, workers: int, thread_name_prefix: str = "pool") -> None:
        self._heap: list[tuple[Priority, int, Callable[[], Any]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{thread_name_prefix}_{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: Priority, fn: Callable[..., Any], *args: Any) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("pool is shut down")
            heapq.heappush(self._heap, (priority, next(self._order), lambda: fn(*args)))
            self._cond.notify()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Stop taking work; drop what is queued when ``cancel_futures``, else finish it."""
        with self._cond:
            self._closed = True
            if cancel_futures:
                self._heap.clear()
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if not self._heap:
                    return
                _, _, call = heapq.heappop(self._heap)
            try:
                call()
            except Exception:  # the extraction handles its own errors; never lose a worker
                log.exception("unexpected error in a pooled call")
