"""The DAG's backfill: planned from POST /plan, split into units, adaptive and resumable.

Real Airflow (``dag.test()``), the real service (in a thread), the simulator and local
BigQuery, as in ``tests/test_dag.py`` (with the same fixtures, the ``tests.fixtures.dag``
plugin's). The planner's pure functions (``dags/tiktok_ads/backfill.py``) are tested first,
without Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from controller.reports.catalog import REPORTS
from tests.fixtures.service import ServiceHandle, serve, service_settings_for
from tests.support.dag_runs import SECRET, UNKNOWN_ADVERTISER, run_dag, run_xcoms, task_logs
from tests.support.hardening import snapshot, table_rows
from tests.support.truth import by_key, truth_rows
from tiktok_ads import backfill

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

# The multi-year window: 13 months over two calendar years, longer than one POST's 366 days,
# so it needs several units and the span cap.
MULTI_START, MULTI_END = date(2025, 1, 1), date(2026, 1, 31)
# The split test's window: one unit (≤ 366 days) that one POST cannot finish.
SPLIT_START, SPLIT_END = date(2025, 1, 1), date(2025, 4, 30)
TYPES = ["advertiser", "ad"]
RUN_DAY = date(2026, 11, 1)
# The services of the dag.test() runs here ask the core metrics only: one request per page
# instead of three. What is tested is planning, splitting and resuming, not the metric
# families (tests/test_metric_families.py); it keeps these runs short.
FAMILIES = ("core",)


# --------------------------------------------------------------------------- the planner


def plan_item(adv: str, report_type: str, rows: int | None, days: int = 30) -> dict:
    return {
        "advertiser_id": adv,
        "report_type": report_type,
        "rows": rows,
        "sample_days": days,
        "days_per_request": 30,
        "metric_groups": 1,
        "page_size": 1000,
    }


def test_estimate_counts_request_windows_pages_and_groups():
    item = plan_item("1", "ad", 3000)  # 100 rows a day
    assert backfill.estimate_requests(item, 30) == 3  # 3,000 rows: 3 pages
    assert backfill.estimate_requests(item, 365) == 13 * 3
    assert backfill.estimate_requests(item | {"metric_groups": 2}, 10) == 2  # 1 page × 2
    assert backfill.estimate_requests(plan_item("1", "ad", 0), 400) == 14  # 1 per window
    assert backfill.estimate_requests(plan_item("1", "ad", None), 60) == 2  # unsized


def test_units_fit_the_deadline_at_their_rate_share_dates_first_then_batches():
    items = [plan_item(str(a), "ad", 30_000) for a in range(4)]  # 1,000 rows a day each
    ids = [str(a) for a in range(4)]
    units = backfill.plan_units(
        items, ids, ["ad"], date(2024, 1, 1), date(2025, 12, 31), max_qps=5,
        unit_seconds=216, batch_size=4,
    )  # fmt: skip
    budget = 5 * 216
    assert all(u.requests <= budget for u in units)
    # Every advertiser × day covered exactly once.
    covered = {(a, u.start.toordinal() + d) for u in units for a in u.advertiser_ids
               for d in range((u.end - u.start).days + 1)}  # fmt: skip
    assert (
        len(covered)
        == 4 * 731
        == sum(len(u.advertiser_ids) * ((u.end - u.start).days + 1) for u in units)
    )
    assert all(len(u.advertiser_ids) == 4 for u in units)  # dates were cut, not the batch
    # A single day of a huge batch does not fit: the batch is halved instead.
    huge = [plan_item(str(a), "ad", 30_000_000) for a in range(4)]
    units = backfill.plan_units(
        huge, ids, ["ad"], date(2025, 1, 1), date(2025, 1, 2), max_qps=5,
        unit_seconds=216, batch_size=4,
    )  # fmt: skip
    assert {len(u.advertiser_ids) for u in units} == {1}
    assert units[0].label.startswith(f"unit 1/{len(units)}: ")


def covered_once(units, advertisers: int, days: int) -> bool:
    cells = [(a, u.start.toordinal() + d) for u in units for a in u.advertiser_ids
             for d in range((u.end - u.start).days + 1)]  # fmt: skip
    return len(cells) == len(set(cells)) == advertisers * days


def test_units_fill_whole_rounds_and_cut_at_request_windows():
    """Units are cut where a 30-day request window ends, so they cost no more requests than
    the window read at once; and as many as finish soonest at the units in flight, so the
    last round is not a few units alone."""
    ids = [str(a) for a in range(6)]
    items = [plan_item(str(a), "ad", 30_000 * (a + 1)) for a in range(6)]  # unequal accounts

    def plan(parallel: int):
        return backfill.plan_units(
            items, ids, ["ad"], date(2024, 1, 1), date(2025, 12, 31), max_qps=5,
            unit_seconds=216, batch_size=2, parallel=parallel,
        )  # fmt: skip

    def seconds(units, parallel: int) -> float:
        return backfill.busiest_slot([u.requests for u in units], parallel, 5 * parallel)

    alone = plan(1)
    total = sum(u.requests for u in alone)
    # The whole window read at once costs as many requests: 731 days = 25 windows.
    assert total == sum(backfill.estimate_requests(item, 731) for item in items) == 15_750
    assert len(alone) == 17 and max(u.requests for u in alone) <= 5 * 216
    assert all((u.start - date(2024, 1, 1)).days % 30 == 0 for u in alone)
    # The fewest units, 17 at 4 in flight: 12 % over the time the requests need.
    assert seconds(alone, 4) / (total / 20) == 1.12
    for parallel in (2, 3, 4, 5):
        units = plan(parallel)
        assert covered_once(units, 6, 731)
        assert max(u.requests for u in units) <= 5 * 216
        assert seconds(units, parallel) / (total / (5 * parallel)) < 1.03
        assert seconds(units, parallel) <= seconds(alone, parallel)
    assert [u.requests for u in plan(4)] == sorted((u.requests for u in plan(4)), reverse=True)
    # One batch of 50 small accounts, two years, 5 in flight at 10 QPS each (the bench's):
    # 25 windows in 10 units, five of 3 windows then five of 2: both rounds full.
    small = [plan_item(str(a), "ad", 30) | {"metric_groups": 3} for a in range(50)]
    units = backfill.plan_units(
        small, [str(a) for a in range(50)], ["ad"], date(2024, 1, 1), date(2025, 12, 30),
        max_qps=10, unit_seconds=216 / 4, batch_size=50, parallel=5,
    )  # fmt: skip
    assert [(u.end - u.start).days + 1 for u in units] == [90] * 5 + [60] * 4 + [40]
    assert sum(u.requests for u in units) == 50 * 25 * 3


def test_split_part_halves_dates_then_advertisers():
    part = {"advertiser_ids": ["1", "2"], "start_date": "2025-01-01", "end_date": "2025-01-04"}
    first, second = backfill.split_part(part)
    assert (first["end_date"], second["start_date"]) == ("2025-01-02", "2025-01-03")
    day = {**part, "start_date": "2025-01-01", "end_date": "2025-01-01"}
    assert [p["advertiser_ids"] for p in backfill.split_part(day)] == [["1"], ["2"]]
    assert backfill.split_part({**day, "advertiser_ids": ["1"]}) is None


def test_run_unit_splits_what_the_deadline_left_and_fails_what_splitting_cannot_fix():
    posted = []

    def post(payload):
        posted.append(payload)
        days = (
            date.fromisoformat(payload["end_date"]) - date.fromisoformat(payload["start_date"])
        ).days + 1
        results = []
        for adv in payload["advertiser_ids"]:
            for rt in payload["report_types"]:
                if adv == "9":
                    item = {"status": "error", "error": "advertiser 9: TikTok API error 40001"}
                elif days > 2:
                    item = {"status": "error", "error": "the run's deadline passed before ..."}
                else:
                    item = {"status": "success", "error": None}
                results.append({"advertiser_id": adv, "report_type": rt, "inserted_rows": days,
                                "requests": 1, **item})  # fmt: skip
        return {"results": results, "total_inserted_rows": 0, "missing": []}

    payload = {"advertiser_ids": ["1", "9"], "report_types": ["ad"],
               "start_date": "2025-01-01", "end_date": "2025-01-08"}  # fmt: skip
    outcome = backfill.run_unit("unit 1/1", payload, post, log=lambda _m: None).to_json()
    # 8 days → 4 + 4 → 2 + 2 + 2 + 2: all of advertiser 1 loaded, 8 days in 4 parts.
    assert outcome["rows"] == 8 and outcome["splits"] == 3 and outcome["posts"] == 7
    assert outcome["failures"] == [
        "9/ad 2025-01-01..2025-01-08: advertiser 9: TikTok API error 40001"
    ]  # the revoked advertiser fails alone, once, not split
    assert all(p["advertiser_ids"] == ["1"] for p in posted[1:])


def test_resume_state_skips_units_already_loaded():
    unit = backfill.Unit(["1"], ["ad"], date(2025, 1, 1), date(2025, 1, 10), 1)
    summary = {"parts": [
        {"start_date": "2025-01-01", "end_date": "2025-01-04", "results": [
            {"advertiser_id": "1", "report_type": "ad", "status": "success"}]},
        {"start_date": "2025-01-05", "end_date": "2025-01-10", "results": [
            {"advertiser_id": "1", "report_type": "ad", "status": "error"}]},
    ]}  # fmt: skip
    state: dict = {}
    backfill.record_done(state, summary)
    assert not backfill.is_done(state, unit)
    summary["parts"][1]["results"][0]["status"] = "success"
    backfill.record_done(state, summary)
    assert backfill.is_done(state, unit)


# --------------------------------------------------------------------------- dag.test()


def loaded(bq_client, dataset: str, report_type: str) -> dict:
    spec = REPORTS[report_type]
    rows = table_rows(bq_client, dataset, spec.table)
    for row in rows:
        row.pop("_extracted_at")
    return by_key(spec, rows)


def assert_equals_truth(
    bq_client, dataset, world, advertisers, types=TYPES, start=MULTI_START, end=MULTI_END
) -> int:
    compared = 0
    for report_type in types:
        spec = REPORTS[report_type]
        want = by_key(
            spec,
            [r for a in advertisers for r in truth_rows(world, spec, a, start, end, FAMILIES)],
        )
        got = loaded(bq_client, dataset, report_type)
        assert got.keys() == want.keys(), (report_type, len(got), len(want))
        assert got == want, report_type
        compared += len(got)
    return compared


def backfill_conf(advertisers: list[str], start: date = MULTI_START, end: date = MULTI_END) -> dict:
    return {"start_date": start.isoformat(), "end_date": end.isoformat(),
            "advertiser_ids": advertisers, "report_types": TYPES}  # fmt: skip


def test_multi_year_backfill_loads_the_ground_truth_within_the_rate_limit_and_resumes(
    e2e, fast_service, sim_world, bq_client, capfd, caplog
):
    advertisers = list(sim_world.advertiser_ids[:2])
    e2e.simulator.configure(qps=50, qpm=3000)
    # A 1.7-s service deadline as the DAG knows it: units of at most 1.02 s (60 %) at 25 QPS
    # (two units in flight share the app's 50 QPS), i.e. 25 requests: 6 of the 14 request
    # windows of 2 advertisers × 2 reports, so 3 units.
    e2e.set(
        TIKTOK_ADS_CLOUD_RUN_URL=fast_service.url,
        TIKTOK_ADVERTISER_IDS=json.dumps(advertisers),
        TIKTOK_RUN_DEADLINE_SECONDS="1.7",
        TIKTOK_APP_QPS="50",
        TIKTOK_APP_QPM="3000",
    )

    conf = backfill_conf(advertisers)

    run, states = run_dag(e2e.dag, RUN_DAY, conf)

    assert str(run.state) == "success", states
    xcoms = run_xcoms(run)
    units = xcoms[("prepare_payload", -1)]
    assert len(units) >= 3 and states["call_cloud_run_api"] == ["success"] * len(units)
    for unit in units:
        payload = unit["payload"]
        assert payload["if_exists"] == "replace" and payload["report_types"] == TYPES
        assert payload["max_qps"] * 2 <= 50 and payload["max_qpm"] * 2 <= 3000
        assert unit["unit"]["estimated_requests"] <= 25
    compared = assert_equals_truth(bq_client, e2e.dataset, sim_world, advertisers)
    assert compared > 1000
    summary = xcoms[("validate_result", -1)]
    assert summary["total_rows"] == compared and summary["failed_units"] == []
    assert [u["status"] for u in summary["units"]] == ["success"] * len(units)
    stats = e2e.simulator.stats(include_log=False)
    assert stats["codes"].get("40100", 0) == 0  # units in flight never exceeded the app's QPS
    assert summary["total_requests"] == stats["requests"] - 2 * len(TYPES)  # minus /plan's
    logs = task_logs(capfd, caplog)
    assert f"{units[0]['label']}: part " in logs and "left: 0 part(s)" in logs
    assert SECRET not in logs

    # The same conf again: every unit was loaded, so nothing is posted and no row changes.
    before = snapshot(bq_client, e2e.dataset)
    requests_before = e2e.simulator.stats(include_log=False)["requests"]
    run, states = run_dag(e2e.dag, RUN_DAY, conf)
    assert str(run.state) == "success", states
    assert run_xcoms(run)[("prepare_payload", -1)] == []
    assert e2e.simulator.stats(include_log=False)["requests"] == requests_before + 4  # /plan
    assert snapshot(bq_client, e2e.dataset) == before


def core_settings(simulator, local_bigquery, **overrides):
    return service_settings_for(
        simulator, local_bigquery, tiktok_metric_families=FAMILIES, **overrides
    )


@pytest.fixture
def core_service(simulator, local_bigquery) -> Iterator[ServiceHandle]:
    """The service at the simulator's default limits (10 QPS)."""
    with serve(core_settings(simulator, local_bigquery)) as handle:
        yield handle


@pytest.fixture
def fast_service(simulator, local_bigquery) -> Iterator[ServiceHandle]:
    """The service for an app of 50 QPS / 3,000 QPM (the simulator is set to the same)."""
    settings = core_settings(simulator, local_bigquery, tiktok_qps=50.0, tiktok_qpm=3000)
    with serve(settings) as handle:
        yield handle


@pytest.fixture
def short_deadline_service(simulator, local_bigquery) -> Iterator[ServiceHandle]:
    """The service with a 3-s deadline at 3 QPS: the one unit planned for 540 s cannot finish
    in one POST (its 16 requests take over 5 s)."""
    settings = core_settings(
        simulator, local_bigquery, run_deadline_seconds=3.0, tiktok_qps=3.0, tiktok_qpm=180
    )
    with serve(settings) as handle:
        yield handle


def test_unit_that_hits_the_deadline_is_split_and_completes(
    e2e, sim_world, bq_client, short_deadline_service
):
    advertisers = list(sim_world.advertiser_ids[:2])
    e2e.set(
        TIKTOK_ADS_CLOUD_RUN_URL=short_deadline_service.url,
        TIKTOK_ADVERTISER_IDS=json.dumps(advertisers),
        TIKTOK_MAX_PARALLEL_BATCHES="1",
    )

    conf = backfill_conf(advertisers, SPLIT_START, SPLIT_END)
    run, states = run_dag(e2e.dag, RUN_DAY, conf)

    assert str(run.state) == "success", states
    xcoms = run_xcoms(run)
    # Planned as one unit (540 s assumed) of 16 requests: 4 windows × 2 advertisers × 2 reports.
    (unit,) = xcoms[("prepare_payload", -1)]
    assert unit["unit"]["estimated_requests"] == 16
    outcome = xcoms[("call_cloud_run_api", 0)]
    assert outcome["splits"] >= 1 and outcome["posts"] >= 3 and outcome["failures"] == []
    assert_equals_truth(bq_client, e2e.dataset, sim_world, advertisers, start=SPLIT_START,
                        end=SPLIT_END)  # fmt: skip
    assert e2e.simulator.stats(include_log=False)["codes"].get("40100", 0) == 0


def test_unit_of_a_revoked_advertiser_fails_alone_with_the_reason(
    e2e, sim_world, bq_client, core_service, capfd, caplog
):
    good = sim_world.advertiser_ids[0]
    advertisers = [good, UNKNOWN_ADVERTISER]
    e2e.set(
        TIKTOK_ADS_CLOUD_RUN_URL=core_service.url,
        TIKTOK_ADVERTISER_IDS=json.dumps(advertisers),
        TIKTOK_BATCH_SIZE="1",
    )

    run, states = run_dag(e2e.dag, RUN_DAY, backfill_conf(advertisers))

    assert str(run.state) == "failed"
    # Two units per advertiser (at most 366 days each): the revoked one's fail, alone.
    assert states["call_cloud_run_api"] == ["failed", "failed", "success", "success"]
    assert states["validate_result"] == ["failed"]
    xcoms = run_xcoms(run)
    labels = [u["label"] for u in xcoms[("prepare_payload", -1)]]
    bad = next(label for label in labels if UNKNOWN_ADVERTISER in label)
    logs = task_logs(capfd, caplog)
    assert f"{bad}: 2 failure(s): {UNKNOWN_ADVERTISER}/advertiser " in logs
    assert "40001" in logs and f"2 unit(s) not done: {bad}" in logs
    assert_equals_truth(bq_client, e2e.dataset, sim_world, [good])


# --------------------------------------------------------------------------- the service


def test_plan_reports_rows_and_requests_per_item_from_one_request_each(service, sim, sim_world):
    import requests

    advertisers = list(sim_world.advertiser_ids[:2])
    body = {"access_token": "sim-token", "advertiser_ids": advertisers,
            "report_types": ["advertiser", "ad"], "start_date": "2025-03-01",
            "end_date": "2025-03-30"}  # fmt: skip
    response = requests.post(f"{service.url}/plan", json=body, timeout=30)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 4 and sim.stats(include_log=False)["requests"] == 4
    for item in items:
        spec = REPORTS[item["report_type"]]
        truth = truth_rows(sim_world, spec, item["advertiser_id"], date(2025, 3, 1),
                           date(2025, 3, 30))  # fmt: skip
        assert item["rows"] == len(truth) and item["status"] == "success"
        assert item["requests"] == max(1, -(-len(truth) // 1000)) * item["metric_groups"]
        assert (item["sample_days"], item["days_per_request"]) == (30, 30)
    too_long = {**body, "end_date": "2025-04-30"}
    answer = requests.post(f"{service.url}/plan", json=too_long, timeout=30).json()
    assert answer["errors"] == [
        {"field": "end_date", "message": "a sample span is at most 30 days"}
    ]


def test_run_longer_than_366_days_points_to_the_dag_backfill(service):
    import requests

    body = {"access_token": "sim-token", "advertiser_ids": ["1"], "project_id": "my-project",
            "start_date": "2024-01-01", "end_date": "2025-12-31"}  # fmt: skip
    response = requests.post(f"{service.url}/run", json=body, timeout=30)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "end_date"
    assert "longer than 366 days" in error["message"] and "DAG's backfill" in error["message"]
