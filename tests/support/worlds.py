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


def gmv_max_world(**options: object) -> World:
    """GMV Max at advertisers 0, 1 and 3 (2 is a plain account, 3 lost its GMV Max permission):
    2 usable stores and 1 unusable each, per usable store a Product and a LIVE campaign plus a
    deleted one of each, 3 products and 2 LIVE rooms per campaign. ``options`` override."""
    params: dict[str, object] = {
        "seed": 30,
        "advertisers": 4,
        "campaigns_per_advertiser": 2,
        "adgroups_per_campaign": 1,
        "ads_per_adgroup": 2,
        "start": "2025-01-01",
        "end": "2025-12-31",
        "gmv_max_stores_per_advertiser": 2,
        "gmv_max_revoked_advertisers": [3],
        **options,
    }
    return World(**params)  # type: ignore[arg-type]
