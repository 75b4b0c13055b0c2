"""Promote ads in reports: the ``campaign_system_origins`` filter, and what TikTok accepts.

TikTok's synchronous reports leave out Promote campaigns (boosts bought in the TikTok app)
unless ``filtering`` names their origin; the default is ``["TT_ADS_PLATFORM"]``
(docs/tiktok_api_beyond.md §1). Every report here asks for every origin. TikTok's docs only ever
show one value in this filter, so whether a list of both is accepted is unknown: the first request
asks for both in one ``IN`` filter; if TikTok refuses that (40002 naming the filter), each origin is
asked for on its own and the rows are put together (an id belongs to one origin only, so nothing
is counted twice). What worked is remembered for the rest of the run.

The filter is sent at every level, ``AUCTION_ADVERTISER`` included: whether TikTok's
advertiser totals hold Promote spend without it is undocumented, and with it the advertiser
row equals the sum of the campaigns (docs/tiktok_api_beyond.md §1.1 "Levels"; our decision). One
level cannot be put together from one request per origin: the advertiser's, whose one row per day
would come back once per origin and its rates cannot be added. If TikTok refuses the combined
filter, that level is read with TikTok's default origins and every advertiser-level result
carries ``ADVERTISER_WARNING``: its totals may leave out Promote spend, which the campaign
level holds.
"""

from __future__ import annotations

import threading

from controller.tiktok.client import TikTokApiError, TikTokError

REGULAR = "TT_ADS_PLATFORM"
PROMOTE = "PROMOTE"
ALL_ORIGINS: tuple[str, ...] = (REGULAR, PROMOTE)
FILTER_FIELD = "campaign_system_origins"
PARAM_ERROR = 40002

Origins = tuple[str, ...]


def refuses_origins(error: TikTokError) -> bool:
    """Whether TikTok refused the origins filter itself (40002 naming it)."""
    return (
        isinstance(error, TikTokApiError)
        and error.code == PARAM_ERROR
        and FILTER_FIELD in error.message
    )


class OriginPlan:
    """How the run asks for every origin: one filter with both, or one request per origin."""

    def __init__(self, origins: Origins = ALL_ORIGINS) -> None:
        self.origins = origins
        self._combined = True
        self._lock = threading.Lock()

    @property
    def combined(self) -> bool:
        return self._combined

    def requests(self, by_entity: bool = True) -> list[Origins]:
        """The origin lists one report is asked with (their rows together make the report).

        ``by_entity``: whether the level's rows are objects of one origin each (campaign,
        ad group, ad), so that one request per origin can be put together; the advertiser
        level's are not, and gets TikTok's default instead (an empty list: no filter).
        """
        if self._combined or len(self.origins) == 1:
            return [self.origins]
        if not by_entity:
            return [()]
        return [(origin,) for origin in self.origins]

    def refused(self, sent: Origins, by_entity: bool = True) -> list[Origins] | None:
        """After TikTok refused ``sent``: the origin lists to ask instead, or None when even
        one origin alone is refused (nothing else to try)."""
        if len(sent) <= 1:
            return None
        with self._lock:
            self._combined = False
        return self.requests(by_entity)


ADVERTISER_WARNING = (
    "TikTok refused the campaign_system_origins filter with several origins: the advertiser "
    "level was read with TikTok's default origins, whose totals may leave out Promote spend "
    "(the campaign, ad group and ad levels hold it)"
)
