"""The simulator's AUDIENCE, hourly and lifetime reports: one world, consistent sums, and
TikTok's refusals (docs/tiktok_api_beyond.md §5-6, docs/tiktok_api_reference.md §3.6-3.7)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.simulator_calls import (
    ID_DIM,
    INVALID_METRICS,
    all_pages,
    params_for,
    report,
    status_all,
)
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator.audience import VALUES, audience_rows
from tiktok_simulator.metrics import AD, ADGROUP, ADVERTISER, CAMPAIGN, LEVELS
from tiktok_simulator.report import served_rows

ADDITIVE = ("spend", "impressions", "clicks", "conversion", "video_play_actions", "likes")
CONFLICT = "Conflict occurs. The input params including metrics and dimensions have no relation."
START, END = date(2025, 3, 1), date(2025, 3, 4)


def _sums(rows, keys: tuple[str, ...]) -> dict[tuple, dict[str, Decimal]]:
    sums: dict[tuple, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        key = tuple(row["dimensions"][k] for k in keys)
        for metric in ADDITIVE:
            sums[key][metric] += Decimal(row["metrics"][metric])
    return {k: dict(v) for k, v in sums.items()}


@pytest.mark.parametrize(
    "breakdowns", [("age", "gender"), ("country_code",), ("platform",), ("language",)]
)
@pytest.mark.parametrize("level", LEVELS)
def test_audience_rows_of_a_day_sum_to_its_basic_row(sim_world: World, level, breakdowns) -> None:
    adv = sim_world.advertiser_ids[1]
    basic = served_rows(sim_world, adv, level, START, END, ADDITIVE)
    audience = audience_rows(sim_world, adv, level, START, END, ADDITIVE, breakdowns)
    keys = (ID_DIM[level], "stat_time_day")
    assert basic and len(audience) > len(basic)
    assert _sums(audience, keys) == _sums(basic, keys)
    values = {tuple(r["dimensions"][b] for b in breakdowns) for r in audience}
    assert all(v in VALUES[b] for combo in values for b, v in zip(breakdowns, combo, strict=True))
    assert len(values) > 1


def test_age_gender_summed_over_gender_is_the_age_report(sim_world: World) -> None:
    adv = sim_world.advertiser_ids[0]
    both = audience_rows(sim_world, adv, AD, START, END, ADDITIVE, ("age", "gender"))
    age = audience_rows(sim_world, adv, AD, START, END, ADDITIVE, ("age",))
    keys = ("ad_id", "age", "stat_time_day")
    assert _sums(both, keys) == _sums(age, keys)


@pytest.mark.parametrize("level", LEVELS)
def test_hourly_rows_sum_to_the_daily_row(sim_world: World, level) -> None:
    adv = sim_world.advertiser_ids[2]
    daily = served_rows(sim_world, adv, level, START, START, ADDITIVE)
    hourly = served_rows(
        sim_world, adv, level, START, START, ADDITIVE, dimensions=(ID_DIM[level], "stat_time_hour")
    )
    assert len(hourly) > len(daily) > 0
    for row in hourly:
        row["dimensions"]["stat_time_day"] = row["dimensions"]["stat_time_hour"][:10] + " 00:00:00"
    keys = (ID_DIM[level], "stat_time_day")
    assert _sums(hourly, keys) == _sums(daily, keys)


@pytest.mark.parametrize("level", [CAMPAIGN, ADGROUP, AD])
def test_lifetime_is_the_sum_over_the_object_life(api: SimulatorServer, sim_world: World, level):
    adv = sim_world.advertiser_ids[0]
    params = params_for(
        sim_world,
        level,
        dimensions=json.dumps([ID_DIM[level]]),
        metrics=json.dumps(list(ADDITIVE)),
        query_lifetime="true",
        start_date=None,
        end_date=None,
        filtering=status_all(level),
    )
    lifetime, _ = all_pages(api, params, 1000)
    daily = []
    day = sim_world.start
    while day <= sim_world.end:  # the world's whole span, 30 days at a time
        last = min(day + timedelta(days=29), sim_world.end)
        daily += served_rows(sim_world, adv, level, day, last, ADDITIVE)
        day = last + timedelta(days=1)
    keys = (ID_DIM[level],)
    assert _sums(lifetime, keys) == _sums(daily, keys)
    assert len(lifetime) == len({r["dimensions"][ID_DIM[level]] for r in daily})


def test_audience_pages_over_http_are_the_ground_truth(api: SimulatorServer, sim_world: World):
    params = params_for(
        sim_world,
        ADGROUP,
        report_type="AUDIENCE",
        dimensions=json.dumps(["adgroup_id", "country_code", "stat_time_day"]),
        metrics=json.dumps(["adgroup_name", "spend", "impressions", "ctr", "conversion"]),
        start_date="2025-03-01",
        end_date="2025-03-07",
        filtering=status_all(ADGROUP),
    )
    rows, infos = all_pages(api, params, 7)
    truth = audience_rows(
        sim_world,
        sim_world.advertiser_ids[0],
        ADGROUP,
        "2025-03-01",
        "2025-03-07",
        ["adgroup_name", "spend", "impressions", "ctr", "conversion"],
        ("country_code",),
    )
    assert rows == truth
    assert infos[0]["total_number"] == len(truth) and len(infos) > 1


def test_audience_without_id_dimension_sums_the_level(api: SimulatorServer, sim_world: World):
    base = {
        "report_type": "AUDIENCE",
        "metrics": json.dumps(["spend", "impressions"]),
        "start_date": "2025-03-01",
        "end_date": "2025-03-02",
    }
    by_id, _ = all_pages(
        api,
        params_for(
            sim_world,
            ADVERTISER,
            dimensions=json.dumps(["advertiser_id", "gender", "stat_time_day"]),
            **base,
        ),
        1000,
    )
    without, _ = all_pages(
        api,
        params_for(
            sim_world, ADVERTISER, dimensions=json.dumps(["gender", "stat_time_day"]), **base
        ),
        1000,
    )
    for row in by_id:
        del row["dimensions"]["advertiser_id"]
    assert without == by_id


REFUSALS: list[tuple[str, dict, str]] = [
    (
        "stat_time_hour with AUDIENCE",
        {"report_type": "AUDIENCE", "dimensions": json.dumps(["ad_id", "age", "stat_time_hour"])},
        CONFLICT,
    ),
    (
        "lifetime AUDIENCE",
        {
            "report_type": "AUDIENCE",
            "dimensions": json.dumps(["ad_id", "age"]),
            "query_lifetime": "true",
        },
        "Lifetime AUDIENCE reports are not available in v1.3.",
    ),
    (
        "lifetime with a time dimension",
        {"query_lifetime": "true"},
        "dimensions: stat_time_day cannot be used with query_lifetime=true.",
    ),
    (
        "hourly range over one day",
        {
            "dimensions": json.dumps(["ad_id", "stat_time_hour"]),
            "start_date": "2025-01-01",
            "end_date": "2025-01-02",
        },
        "The time range must be within 1 day(s) with stat_time_hour; got 2 days.",
    ),
    (
        "UV metric with AUDIENCE",
        {
            "report_type": "AUDIENCE",
            "dimensions": json.dumps(["ad_id", "gender", "stat_time_day"]),
            "metrics": json.dumps(["spend", "reach", "frequency"]),
        },
        INVALID_METRICS + "Invalid metric fields: ['reach', 'frequency'].",
    ),
    (
        "website leg with AUDIENCE",
        {
            "report_type": "AUDIENCE",
            "dimensions": json.dumps(["ad_id", "platform", "stat_time_day"]),
            "metrics": json.dumps(["spend", "complete_payment", "onsite_shopping"]),
        },
        "Invalid metric fields: ['complete_payment', 'onsite_shopping'].",
    ),
    (
        "id dimension of another level",
        {
            "report_type": "AUDIENCE",
            "dimensions": json.dumps(["campaign_id", "age", "stat_time_day"]),
        },
        "dimensions: ['campaign_id'] cannot be used with data_level AUCTION_AD",
    ),
    (
        "audience dimension in BASIC",
        {"dimensions": json.dumps(["ad_id", "age", "stat_time_day"])},
        "Invalid dimension fields: ['age'].",
    ),
    (
        "cash_spend hourly",
        {
            "data_level": ADVERTISER,
            "dimensions": json.dumps(["advertiser_id", "stat_time_hour"]),
            "metrics": json.dumps(["cash_spend"]),
            "end_date": "2025-01-01",
        },
        "Invalid metric fields: ['cash_spend'].",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "message"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_refusals_with_tiktok_wording(api: SimulatorServer, sim_world: World, overrides, message):
    body = report(api, params_for(sim_world, **overrides))
    assert body["code"] == 40002, body
    assert message in body["message"], body["message"]
    assert body["data"] == {}


def test_audience_latency_holds_back_recent_days() -> None:
    today = datetime.now(UTC).date()
    world = World(seed=5, advertisers=1, start=today - timedelta(days=10), end=today)
    adv, start, end = world.advertiser_ids[0], today - timedelta(days=3), today - timedelta(days=1)

    def days(latency: float | None) -> set[str]:
        rows = audience_rows(
            world, adv, ADVERTISER, start, end, ["spend"], ("gender",), latency_hours=latency
        )
        return {r["dimensions"]["stat_time_day"][:10] for r in rows}

    served = days(None)
    assert served == {(today - timedelta(days=n)).isoformat() for n in (1, 2, 3)}
    # A day is out `latency` hours after it ends: 24 h holds back yesterday only.
    assert days(24) == served - {(today - timedelta(days=1)).isoformat()}
    assert days(0) == served
