"""Fault plans: failures injected into otherwise valid report requests, on demand.

A plan is a plain dict (settable from Python and as JSON over ``POST /_sim/faults``)::

    {"mode": "random", "probability": 0.2, "kinds": ["50000", "reset"], "seed": 1}
    {"mode": "queue", "queue": ["40100", "503_html", "truncated"]}
    {"mode": "off"}

Optional keys: ``advertiser_id`` (only requests for that advertiser are affected and consume
the queue), ``slow_seconds`` (delay of the ``slow`` kind, default 5 s).

Kinds:

* ``"40100"``, ``"50000"`` ... any five-digit API code: HTTP 200 JSON error with that code.
* ``"503_html"`` / ``"5xx_html"``: that HTTP status with an HTML body (a gateway page).
* ``"504"`` / ``"5xx"``: that HTTP status with a plain-text body.
* ``"reset"``: the connection is closed (TCP RST) without any response.
* ``"truncated"``: headers announce the full Content-Length but only half the body is sent.
* ``"slow"``: the answer (a normal one) comes after ``slow_seconds`` extra seconds.
* ``"empty_ok"``: code 0 with ``data: {}`` and no ``page_info``: TikTok's answer when the
  ``service_type`` does not match the account ("code 0 and an empty list").
* ``"short_page"``: a normal answer missing the page's last row (page_info unchanged).
* ``"drift"``: a normal answer whose ``total_number`` is one more (the report grew while it
  was paged, TikTok's list being unsorted).
* ``"repeat"``: a normal answer whose first row is the row before it (the page before's
  last; on page 1 the page's own last), page_info unchanged: a row that moved while the
  unsorted list was paged comes twice and the one it replaced never.
* ``"ok"``: no fault (holds a place in a queue).
"""

from __future__ import annotations

import random
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

_KIND_RE = re.compile(
    r"\d{5}|5\d\d(_html)?|reset|truncated|slow|empty_ok|short_page|drift|repeat|ok"
)
MODES = ("off", "random", "queue")


def validate_kind(kind: Any) -> str:
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        raise ValueError(
            f"unknown fault kind {kind!r}: use an API code like '50000', '503_html', '504', "
            "'reset', 'truncated', 'slow', 'empty_ok', 'short_page', 'drift', 'repeat' or 'ok'"
        )
    return kind


@dataclass
class FaultPlan:
    mode: str = "off"
    kinds: tuple[str, ...] = ()
    probability: float = 0.0
    seed: int = 0
    queue: deque[str] = field(default_factory=deque)
    advertiser_id: str | None = None
    slow_seconds: float = 5.0

    @classmethod
    def from_dict(cls, plan: dict[str, Any] | None) -> FaultPlan:
        """Parse and validate a plan; raises ValueError with a readable reason."""
        if not plan:
            return cls()
        if not isinstance(plan, dict):
            raise ValueError("a fault plan is a JSON object")
        unknown = set(plan) - {
            "mode",
            "kinds",
            "probability",
            "seed",
            "queue",
            "advertiser_id",
            "slow_seconds",
        }
        if unknown:
            raise ValueError(f"unknown fault plan keys: {sorted(unknown)}")
        mode = plan.get("mode") or ("queue" if "queue" in plan else "random")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        kinds = tuple(validate_kind(k) for k in plan.get("kinds", ()))
        queue = deque(validate_kind(k) for k in plan.get("queue", ()))
        probability = float(plan.get("probability", 1.0 if mode == "random" else 0.0))
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if mode == "random" and not kinds:
            raise ValueError("a random plan needs a non-empty 'kinds' list")
        advertiser_id = plan.get("advertiser_id")
        return cls(
            mode=mode,
            kinds=kinds,
            probability=probability,
            seed=int(plan.get("seed", 0)),
            queue=queue,
            advertiser_id=None if advertiser_id is None else str(advertiser_id),
            slow_seconds=float(plan.get("slow_seconds", 5.0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "kinds": list(self.kinds),
            "probability": self.probability,
            "seed": self.seed,
            "queue": list(self.queue),
            "advertiser_id": self.advertiser_id,
            "slow_seconds": self.slow_seconds,
        }


class FaultInjector:
    """Holds the current plan and draws the fault (if any) for each request, thread-safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan = FaultPlan()
        self._rng = random.Random(0)

    def set_plan(self, plan: dict[str, Any] | FaultPlan | None) -> FaultPlan:
        parsed = plan if isinstance(plan, FaultPlan) else FaultPlan.from_dict(plan)
        with self._lock:
            self._plan = parsed
            self._rng = random.Random(parsed.seed)
        return parsed

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def draw(self, advertiser_ids: tuple[str, ...]) -> tuple[str | None, float]:
        """The fault kind for a request (or None) and the plan's slow delay."""
        with self._lock:
            plan = self._plan
            if plan.mode == "off":
                return None, 0.0
            if plan.advertiser_id is not None and plan.advertiser_id not in advertiser_ids:
                return None, 0.0
            if plan.mode == "queue":
                return (plan.queue.popleft() if plan.queue else None), plan.slow_seconds
            if self._rng.random() < plan.probability:
                return self._rng.choice(plan.kinds), plan.slow_seconds
            return None, 0.0
