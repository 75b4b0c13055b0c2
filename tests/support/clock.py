"""A clock the tests move by hand, so rate-limiter tests assert spacing without timing."""

from __future__ import annotations

from typing import Protocol


class _Acquiring(Protocol):
    def acquire(self) -> float: ...


class FakeClock:
    """Seconds since the test began; the ``clock`` fixture advances it on every sleep."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def acquire_times(limiter: _Acquiring, clock: FakeClock, count: int) -> list[float]:
    """When each of ``count`` back-to-back ``acquire`` calls was let through."""
    starts = []
    for _ in range(count):
        limiter.acquire()
        starts.append(clock.now)
    return starts


def max_in_window(starts: list[float], seconds: float) -> int:
    """The most ``starts`` in any ``seconds``-long window beginning at one of them."""
    return max(sum(1 for t in starts if s <= t < s + seconds) for s in starts)
