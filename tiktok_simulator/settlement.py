"""How a day's numbers change after the day: attribution and the daily data fix
(docs/tiktok_api_beyond.md §4.3).

TikTok books a conversion on the day of the impression, so a day's conversions and their
values keep growing on later days until its attribution window closes (click windows up to
28 days); spend, impressions and the other delivery counts are provisional (real time) until
TikTok's daily data fix, and final from the day after. A simulator without this serves
every past day final, and a connector that freezes days too early looks correct.

This is a layer over the metric values, not part of the registry: it scales the hidden
*bases* of one ad-day by a factor that depends only on the base's kind and on the day's age
"as of" the simulator's today (setting ``as_of``; unset = every day final). Every rendered
metric is computed from the scaled bases, so ratios stay consistent, and every level sums the
same scaled ad-days, so the levels still add up exactly. A metric added to the registry is
classified by its chain of bases (see ``is_attributed``); nothing here lists metric names
beyond the few delivery bases that hang off ``clicks``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .metrics import BASES

ATTRIBUTION_DAYS = 28  # default click window: a day is final when it is this many days old
PROVISIONAL_PERCENT = 97  # delivery before the data fix, relative to final
# Bases derived from clicks that are delivery, not conversions (the rest of clicks' family is
# attributed: conversions, results, installs, app/web/shop/onsite events and their values).
_DELIVERY_FROM_CLICKS = frozenset({"engagements", "ix_page_view_count"})

Settle = Callable[[dict[str, int], int], dict[str, int]]


@functools.lru_cache(maxsize=1024)
def is_attributed(base: str) -> bool:
    """Whether a base counts conversions (or their values), which attribution grows.

    A base is attributed when it, or a base it derives from, derives directly from
    ``clicks`` and is not one of the click-derived delivery counts.
    """
    current = BASES.get(base)
    while current is not None and current.basis is not None:
        if current.basis == "clicks" and current.name not in _DELIVERY_FROM_CLICKS:
            return True
        current = BASES.get(current.basis)
    return False


def attributed_per_mille(age: int, window: int) -> int:
    """Share (per mille) of a day's final conversions booked when the day is ``age`` days old.

    Concave: about half arrive by the next day, the rest over the window; final from
    ``window`` days on. Age 0 (the day itself) counts as age 1.
    """
    if age >= window:
        return 1000
    remaining = window - max(age, 1)
    return 1000 - 500 * remaining * remaining // (window * window)


def delivery_per_mille(age: int) -> int:
    """Spend, impressions... are provisional on the day and the next (before the data fix)."""
    return 1000 if age >= 2 else PROVISIONAL_PERCENT * 10


@functools.lru_cache(maxsize=64)
def settler(as_of_ordinal: int | None, window: int = ATTRIBUTION_DAYS) -> Settle | None:
    """A function scaling an ad-day's bases as they stood on ``as_of`` (None: all final)."""
    if as_of_ordinal is None:
        return None

    def settle(values: dict[str, int], day_ordinal: int) -> dict[str, int]:
        age = as_of_ordinal - day_ordinal
        if age >= max(window, 2):
            return values
        attributed = attributed_per_mille(age, window)
        delivery = delivery_per_mille(age)
        return {
            name: value * (attributed if is_attributed(name) else delivery) // 1000
            for name, value in values.items()
        }

    return settle


def is_final(as_of_ordinal: int | None, day_ordinal: int, window: int = ATTRIBUTION_DAYS) -> bool:
    return as_of_ordinal is None or as_of_ordinal - day_ordinal >= max(window, 2)
