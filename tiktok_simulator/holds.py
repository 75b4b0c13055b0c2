"""Holds: report requests that wait, mid-flight, until the test that set them lets them go.

A test about ordering ("the deadline passes while this request is in flight") cannot rely on
latency: on a slow or busy machine the deadline lands somewhere else. A hold pins the moment
instead. ``POST /_sim/hold`` with::

    {"match": {"data_level": "AUCTION_ADGROUP", "start_date": "2025-06-01"}, "count": 1}

makes the first ``count`` report requests whose query parameters equal every ``match`` value
wait (after authentication, rate limits and faults, before the answer is built) until
``POST /_sim/release``, a reset, or ``timeout`` seconds (default 300: a test that died never
leaves a request hanging for good). ``GET /_sim/hold`` tells how many are waiting now, so a
test waits for a condition rather than for time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

_KEYS = {"match", "count", "timeout"}


@dataclass
class HoldPlan:
    match: dict[str, str] = field(default_factory=dict)
    count: int = 1
    timeout: float = 300.0

    @classmethod
    def from_dict(cls, plan: dict[str, Any] | None) -> HoldPlan:
        """Parse and validate a plan; raises ValueError with a readable reason."""
        if not isinstance(plan, dict):
            raise ValueError("a hold is a JSON object with 'match' (and 'count', 'timeout')")
        unknown = set(plan) - _KEYS
        if unknown:
            raise ValueError(f"unknown hold keys: {sorted(unknown)}")
        match = plan.get("match")
        if not isinstance(match, dict) or not match:
            raise ValueError("'match' must be a non-empty object of query parameters")
        count, timeout = int(plan.get("count", 1)), float(plan.get("timeout", 300.0))
        if count < 1 or timeout <= 0:
            raise ValueError("'count' must be >= 1 and 'timeout' > 0")
        return cls({str(k): str(v) for k, v in match.items()}, count, timeout)


class Holds:
    """The current hold plan and the requests waiting on it (thread-safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._plan: HoldPlan | None = None
        self._released = threading.Event()
        self._taken = 0  # matching requests held so far under this plan
        self._waiting = 0  # of those, still waiting now

    def set_plan(self, plan: dict[str, Any] | None) -> dict[str, Any]:
        parsed = HoldPlan.from_dict(plan)
        self.release()
        with self._cond:
            self._plan, self._taken = parsed, 0
            self._released = threading.Event()
        return self.state()

    def release(self) -> dict[str, Any]:
        """Let every waiting request go and drop the plan."""
        with self._cond:
            self._plan = None
            self._released.set()
        return self.state()

    def state(self) -> dict[str, Any]:
        with self._cond:
            plan = self._plan
            return {
                "match": dict(plan.match) if plan else None,
                "count": plan.count if plan else 0,
                "held": self._taken,
                "waiting": self._waiting,
            }

    def wait_if_held(self, params: dict[str, str]) -> bool:
        """Block while the request is held; True if it was held (for the request log)."""
        with self._cond:
            plan, released = self._plan, self._released
            if plan is None or self._taken >= plan.count:
                return False
            if any(params.get(key) != value for key, value in plan.match.items()):
                return False
            self._taken += 1
            self._waiting += 1
        try:
            released.wait(plan.timeout)
        finally:
            with self._cond:
                self._waiting -= 1
        return True
