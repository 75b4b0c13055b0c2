"""Simulator worlds more than one test module builds."""

from __future__ import annotations

from tiktok_simulator import World


def one_big_account() -> World:
    """One advertiser with 160 ads: an ad-level month is ~3,400 rows, 4 pages of 1,000."""
    return World(
        seed=7,
        advertisers=1,
        campaigns_per_advertiser=4,
        adgroups_per_campaign=4,
        ads_per_adgroup=10,
        delivery_probability=0.7,
    )


def smart_plus_world(advertisers: int) -> World:
    """Upgraded Smart+ at the even-positioned advertisers: 2 campaigns, 2 ads of 3 creatives."""
    return World(
        seed=30,
        advertisers=advertisers,
        campaigns_per_advertiser=2,
        adgroups_per_campaign=1,
        ads_per_adgroup=2,
        smart_plus_campaigns_per_advertiser=2,
        creatives_per_smart_plus_ad=3,
        deleted_fraction=0.2,
    )
