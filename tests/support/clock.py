"""A clock the tests move by hand, so rate-limiter tests assert spacing without timing."""

from __future__ import annotations


class FakeClock:
    """Seconds since the test began; the ``clock`` fixture advances it on every sleep."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
