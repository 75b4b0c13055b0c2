"""Attribution settlement: the simulator's "as of" layer, the DAG's weekly window, end to end.

TikTok books a conversion on the day of the impression for up to 28 days (click window), and
revises delivery at its daily data fix: the simulator serves a day as it stood on its
``as_of`` day (tiktok_simulator/settlement.py). The DAG replaces D-3..D-1 every day and, on
``TIKTOK_SETTLEMENT_WEEKDAY``, D-N..D-1 (``TIKTOK_SETTLEMENT_DAYS``) in spans of 7 days.
The end-to-end test runs the real DAG (dag.test) against the real service, the simulator
and local BigQuery three times, moving the simulator's "today" between runs.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from controller.reports.catalog import REPORTS
from tests.support.dag_runs import run_dag, run_xcoms, valid_variables
from tests.support.truth import by_key, truth_rows
from tests.support.warehouse import table_rows
from tiktok_ads import config as config_module
from tiktok_ads import fanout
from tiktok_ads import windows as dag_windows
from tiktok_simulator.metrics import AD, ADVERTISER, CAMPAIGN
from tiktok_simulator.report import served_rows
from tiktok_simulator.settlement import attributed_per_mille, is_attributed

# --------------------------------------------------------------------------- the simulator


def _sums(world: Any, level: str, day: date, as_of: date | None, **kw: Any) -> dict[str, float]:
    rows = served_rows(
        world,
        world.advertiser_ids[0],
        level,
        day,
        day,
        ["spend", "impressions", "clicks", "conversion", "total_purchase_value"],
        as_of=as_of,
        **kw,
    )
    return {
        name: round(sum(float(row["metrics"][name]) for row in rows), 2)
        for name in ("spend", "impressions", "clicks", "conversion", "total_purchase_value")
    }


def test_a_day_settles_by_metric_kind(sim_world: Any) -> None:
    day = date(2026, 3, 10)
    final = _sums(sim_world, ADVERTISER, day, None)
    by_age = {
        age: _sums(sim_world, ADVERTISER, day, day + timedelta(days=age)) for age in range(30)
    }
    # Delivery: provisional (97 %) on the day and the next, final after the data fix.
    assert by_age[1]["spend"] < final["spend"] and by_age[1]["impressions"] < final["impressions"]
    assert all(by_age[age]["spend"] == final["spend"] for age in range(2, 30))
    assert all(by_age[age]["clicks"] == final["clicks"] for age in range(2, 30))
    # Conversions and their values grow until the 28-day window closes, then stay final.
    conversions = [by_age[age]["conversion"] for age in range(1, 30)]
    assert conversions == sorted(conversions) and conversions[0] < final["conversion"]
    assert by_age[27]["conversion"] <= final["conversion"] == by_age[28]["conversion"]
    assert by_age[3]["total_purchase_value"] < by_age[28]["total_purchase_value"]
    assert by_age[28] == by_age[29] == final
    # Every level sums the same settled ad-days: the levels still add up as of any day.
    for age in (1, 3, 10):
        as_of = day + timedelta(days=age)
        levels = [_sums(sim_world, level, day, as_of) for level in (ADVERTISER, CAMPAIGN, AD)]
        assert levels[0] == levels[1] == levels[2], age
    # A shorter window (the simulator's attribution_days) closes earlier.
    assert _sums(sim_world, ADVERTISER, day, day + timedelta(days=7), attribution_days=7) == final
    print(
        f"day {day}: conversion by age 1/3/10/28 = "
        f"{[by_age[a]['conversion'] for a in (1, 3, 10, 28)]}, spend age 1 {by_age[1]['spend']} "
        f"final {final['spend']}"
    )


def test_metric_kinds() -> None:
    assert not any(is_attributed(b) for b in ("spend", "impressions", "clicks", "reach"))
    assert not any(is_attributed(b) for b in ("engagements", "video_views_p100", "likes"))
    assert all(
        is_attributed(b)
        for b in ("conversion", "purchase", "total_purchase_value", "complete_payment")
    )
    assert all(is_attributed(b) for b in ("vta_conversion", "onsite_shopping", "app_install"))
    # Per mille of the final conversions booked by age (days after the day), 28-day window.
    assert [attributed_per_mille(age, 28) for age in (0, 1, 3, 10, 26, 28)] == [
        536,
        536,
        602,
        794,
        998,
        1000,
    ]


# --------------------------------------------------------------------------- DAG window


def _config(**variables: str) -> dict[str, Any]:
    config, problems = config_module.parse_config({**valid_variables(), **variables})
    assert problems == []
    return config


def test_settlement_window_on_its_weekday_only() -> None:
    monday, tuesday = date(2026, 3, 9), date(2026, 3, 10)
    config = _config()
    assert (config["settlement_days"], config["settlement_weekday"]) == (28, 0)
    assert dag_windows.scheduled_window(monday, config) == (
        date(2026, 2, 9),
        date(2026, 3, 8),
        7,
    )
    assert dag_windows.scheduled_window(tuesday, config) == (
        date(2026, 3, 7),
        date(2026, 3, 9),
        None,
    )
    sunday = _config(TIKTOK_SETTLEMENT_WEEKDAY="6", TIKTOK_SETTLEMENT_DAYS="14")
    assert dag_windows.scheduled_window(date(2026, 3, 15), sunday)[:2] == (
        date(2026, 3, 1),
        date(2026, 3, 14),
    )
    assert dag_windows.scheduled_window(monday, sunday)[2] is None
    off = _config(TIKTOK_SETTLEMENT_DAYS="0")
    assert dag_windows.scheduled_window(monday, off) == (date(2026, 3, 6), date(2026, 3, 8), None)
    # Not longer than the daily window: nothing to settle, the daily window runs.
    short = _config(TIKTOK_SETTLEMENT_DAYS="3")
    assert dag_windows.scheduled_window(monday, short)[2] is None


def test_settlement_posts_fit_the_deadline_and_share_the_budget() -> None:
    config = _config(
        TIKTOK_ADVERTISER_IDS=json.dumps([str(i) for i in range(5)]),
        TIKTOK_BATCH_SIZE="2",
        TIKTOK_MAX_PARALLEL_BATCHES="4",
    )
    start, end, span = dag_windows.scheduled_window(date(2026, 3, 9), config)
    requests = fanout.build_requests(config, start, end, span)
    # 3 batches x 4 spans of 7 days: every day of D-28..D-1 once per advertiser.
    assert len(requests) == 12
    windows = sorted({(r["payload"]["start_date"], r["payload"]["end_date"]) for r in requests})
    assert windows == [
        ("2026-02-09", "2026-02-15"),
        ("2026-02-16", "2026-02-22"),
        ("2026-02-23", "2026-03-01"),
        ("2026-03-02", "2026-03-08"),
    ]
    covered = {
        (advertiser, r["payload"]["start_date"])
        for r in requests
        for advertiser in r["payload"]["advertiser_ids"]
    }
    assert len(covered) == 5 * 4
    assert requests[0]["label"] == "batch 1/3, 2026-02-09..2026-02-15"
    # 4 POSTs in flight share the app's 10 QPS / 600 QPM.
    assert {(r["payload"]["max_qps"], r["payload"]["max_qpm"]) for r in requests} == {(2.5, 150)}
    assert {r["payload"]["if_exists"] for r in requests} == {"replace"}


def test_settlement_variables_are_validated() -> None:
    _, problems = config_module.parse_config(
        {**valid_variables(), "TIKTOK_SETTLEMENT_WEEKDAY": "7", "TIKTOK_SETTLEMENT_DAYS": "-1"}
    )
    assert problems == [
        "TIKTOK_SETTLEMENT_DAYS: must be between 0 and 366, got -1",
        "TIKTOK_SETTLEMENT_WEEKDAY: must be between 0 and 6, got 7",
    ]


# --------------------------------------------------------------------------- end to end

TYPES = ["advertiser", "campaign"]
WINDOW_DAYS = 7  # the simulator's attribution window in this test: D-10 is final at D


def _expected(world: Any, advertiser: str, start: date, end: date, **as_of: Any) -> dict:
    return {
        report_type: by_key(
            REPORTS[report_type],
            truth_rows(world, REPORTS[report_type], advertiser, start, end, **as_of),
        )
        for report_type in TYPES
    }


def _loaded(client: Any, dataset: str, start: date, end: date) -> dict:
    tables = {}
    for report_type in TYPES:
        spec = REPORTS[report_type]
        rows = [r for r in table_rows(client, dataset, spec.table) if start <= r["date"] <= end]
        for row in rows:
            row.pop("_extracted_at")
        tables[report_type] = by_key(spec, rows)  # asserts: no duplicated key
    return tables


def test_settlement_run_corrects_a_stale_day(
    e2e: Any, sim_world: Any, bq_client: Any, local_bigquery: Any
) -> None:
    settlement = date(2026, 3, 9)  # a Monday
    daily = settlement - timedelta(days=1)
    stale = daily - timedelta(days=10)  # D-10 of the daily run
    first = stale + timedelta(days=3)  # the last daily run whose window held that day
    advertiser = sim_world.advertiser_ids[0]
    e2e.set(
        TIKTOK_ADVERTISER_IDS=json.dumps([advertiser]),
        TIKTOK_REPORT_TYPES=json.dumps(TYPES),
        TIKTOK_SETTLEMENT_DAYS="14",
        TIKTOK_SETTLEMENT_WEEKDAY=str(settlement.weekday()),
    )
    e2e.simulator.configure(attribution_days=WINDOW_DAYS)
    final = _expected(sim_world, advertiser, stale, stale)
    window = {"attribution_days": WINDOW_DAYS}

    # 1. The daily run of `first` loads D-10 three days old (its conversions still growing).
    e2e.simulator.configure(as_of=first.isoformat())
    run, states = run_dag(e2e.dag, first)
    assert str(run.state) == "success", states
    # 2. The daily run of `daily` (not the settlement weekday) leaves D-10 as it was.
    e2e.simulator.configure(as_of=daily.isoformat())
    run, states = run_dag(e2e.dag, daily)
    assert str(run.state) == "success", states
    request = run_xcoms(run)[("prepare_payload", -1)]
    assert [(r["payload"]["start_date"], r["payload"]["end_date"]) for r in request] == [
        ((daily - timedelta(days=3)).isoformat(), (daily - timedelta(days=1)).isoformat())
    ]
    before = _loaded(bq_client, e2e.dataset, stale, stale)
    assert before == _expected(sim_world, advertiser, stale, stale, as_of=first, **window)
    assert before != final
    stale_conversions = sum(r["conversion"] for r in before["advertiser"].values())
    final_conversions = sum(r["conversion"] for r in final["advertiser"].values())
    assert stale_conversions < final_conversions

    # 3. The settlement run replaces D-14..D-1 in spans: D-10 now equals the final truth.
    e2e.simulator.configure(as_of=settlement.isoformat())
    run, states = run_dag(e2e.dag, settlement)
    assert str(run.state) == "success", states
    xcoms = run_xcoms(run)
    spans = [
        (r["payload"]["start_date"], r["payload"]["end_date"])
        for r in xcoms[("prepare_payload", -1)]
    ]
    start, end = settlement - timedelta(days=14), settlement - timedelta(days=1)
    assert spans == [
        (start.isoformat(), (start + timedelta(days=6)).isoformat()),
        ((start + timedelta(days=7)).isoformat(), end.isoformat()),
    ]
    after = _loaded(bq_client, e2e.dataset, stale, stale)
    assert after == final
    # The whole window equals the truth as of the settlement day (final up to D-7), once.
    loaded = _loaded(bq_client, e2e.dataset, start, end)
    assert loaded == _expected(sim_world, advertiser, start, end, as_of=settlement, **window)
    rows = sum(len(table) for table in loaded.values())
    outcome = xcoms[("validate_result", -1)]
    assert outcome["failures"] == [] and outcome["total_inserted_rows"] == rows
    print(
        f"D-10 = {stale}: conversions {stale_conversions} after the daily runs, "
        f"{final_conversions} final, {sum(r['conversion'] for r in after['advertiser'].values())}"
        f" after the settlement run; settlement window {start}..{end}: {rows} rows in "
        f"{len(spans)} POSTs"
    )
