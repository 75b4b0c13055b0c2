"""Request statistics, for tests (what did the client send?) and the benchmark (how fast?)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

# Query parameters never logged: a token must not end up in stats or benchmark reports.
SECRET_PARAMS = frozenset({"access_token", "access-token", "secret", "app_secret"})


class Stats:
    """Thread-safe counters and a request log; ``reset`` starts a new measurement."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0  # a gauge, not a counter: survives resets
        self._clear()

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self.started_at = time.time()
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.http_status: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.accepted: list[float] = []
        self.gmv_max_accepted: list[float] = []  # the GMV Max report's own budget
        self.codes_by_path: dict[str, Counter[str]] = {}
        self.rows_served = 0
        self.max_in_flight = self.in_flight
        self.log: list[dict[str, Any]] = []

    def begin(self, path: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_path[path] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def accepted_at(self, timestamp: float, gmv_max: bool = False) -> None:
        """A request passed the app rate limiter, or with ``gmv_max`` the GMV Max report's
        own budget (arrival time, wall clock): the two are counted apart as TikTok does."""
        with self._lock:
            (self.gmv_max_accepted if gmv_max else self.accepted).append(timestamp)

    def end(
        self,
        *,
        path: str,
        params: dict[str, str],
        arrived: float,
        status: int | None,
        code: int | None,
        fault: str | None,
        rows: int,
    ) -> None:
        entry = {
            "time": arrived,
            "duration": round(time.time() - arrived, 4),
            "path": path,
            "params": {k: v for k, v in params.items() if k.lower() not in SECRET_PARAMS},
            "status": status,
            "code": code,
            "fault": fault,
            "rows": rows,
        }
        with self._lock:
            self.in_flight -= 1
            self.http_status[str(status) if status is not None else "none"] += 1
            if code is not None:
                self.codes[str(code)] += 1
                self.codes_by_path.setdefault(path, Counter())[str(code)] += 1
            if fault is not None:
                self.faults[fault] += 1
            self.rows_served += rows
            self.log.append(entry)

    def snapshot(self, include_log: bool = True) -> dict[str, Any]:
        with self._lock:
            per_second = Counter(int(t) for t in self.accepted)
            data: dict[str, Any] = {
                "started_at": self.started_at,
                "requests": self.requests,
                "by_path": dict(self.by_path),
                "codes": dict(self.codes),
                "rate_limited": self.codes.get("40100", 0),
                "http_status": dict(self.http_status),
                "faults": dict(self.faults),
                "rows_served": self.rows_served,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "accepted_timestamps": list(self.accepted),
                "accepted_per_second": sorted(per_second.items()),
                "gmv_max_accepted_per_second": sorted(
                    Counter(int(t) for t in self.gmv_max_accepted).items()
                ),
                "codes_by_path": {p: dict(c) for p, c in self.codes_by_path.items()},
            }
            if include_log:
                data["log"] = [dict(e) for e in self.log]
            return data
