"""Memory bounded by the pages in flight: a chunk over the row bound is read as date windows.

At the default width a level's metrics take three requests per page, joined on the
dimensions once the chunk's last page is in; a chunk of a big account would hold all its
rows × ~270 metrics until then. Over ``row_bound`` announced rows, the chunk is read as
shorter windows one after another (``controller.extraction``), so what waits to be joined
never exceeds the bound, and the rows loaded are still exactly the simulator's.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime

import orjson
import pyarrow as pa
import pytest
import requests

from config.allocators import tune_allocators
from controller.extraction import Extraction
from controller.reports.catalog import REPORTS
from controller.tiktok.client import TikTokClient
from controller.tiktok.rate_limiter import RateLimiter
from tests.fixtures.service import serve, service_settings_for
from tests.support.extraction_calls import FAST_RETRY, TOKEN, report_calls
from tests.support.truth import by_key, truth_rows
from tests.support.warehouse import table_rows
from tests.support.worlds import one_big_account
from tiktok_simulator import SimulatorServer, World

START, END = date(2025, 3, 1), date(2025, 3, 30)  # one chunk of 30 days


@pytest.fixture(scope="module")
def wide_world() -> World:
    return one_big_account()


@pytest.fixture(scope="module")
def wide_sim(wide_world) -> SimulatorServer:
    with SimulatorServer(wide_world, qps=1000, qpm=60000) as server:
        yield server


def _extract(
    server,
    items,
    row_bound: int,
    start: date = START,
    end: date = END,
    *,
    workers: int = 8,
    open_windows: int | None = None,
    deadline: float | None = None,
) -> tuple[Extraction, dict[str, pa.Table]]:
    client = TikTokClient(
        server.base_url, TOKEN, RateLimiter(1000, 60000), retry=FAST_RETRY, read_timeout=10.0
    )
    tables: dict[str, list[pa.Table]] = {}

    def sink(spec, advertiser_id, table):
        tables.setdefault(advertiser_id, []).append(table)

    extraction = Extraction(
        client,
        items,
        start,
        end,
        sink=sink,
        workers=workers,
        extracted_at=datetime(2026, 11, 25, tzinfo=UTC),
        row_bound=row_bound,
        open_windows=open_windows,
        deadline=deadline,
    )
    extraction.run()
    client.close()
    return extraction, {k: pa.concat_tables(v) for k, v in tables.items()}


def test_a_chunk_over_the_bound_holds_at_most_the_bound_and_loads_the_truth(wide_sim, wide_world):
    # Each metric group without spend lacks a different quarter of the rows: the join of
    # every window must still keep each row exactly once.
    wide_sim.reset()  # this test's requests only in the log
    wide_sim.configure(sparse_parts=True)
    advertiser, spec = wide_world.advertiser_ids[0], REPORTS["ad"]
    bound = 1200
    extraction, tables = _extract(wide_sim, [(advertiser, spec)], bound)
    [result] = extraction.results
    assert result.status == "success", result.error
    expected = by_key(spec, truth_rows(wide_world, spec, advertiser, START, END))
    assert len(expected) > 2 * bound  # the chunk is well over the bound: 4 pages per group
    got = tables[advertiser].drop_columns(["_extracted_at"]).to_pylist()
    assert_sparse_truth(spec, got, expected)
    assert result.rows == len(expected)
    groups = spec.metric_groups()
    width = sum(len(group) for group in groups)
    assert width > 250  # the default width: every family, three requests per page
    assert 1000 * 50 < extraction.peak_held <= bound * width

    windows = {(c["start_date"], c["end_date"]) for c in report_calls(wide_sim) if c["page"] == "1"}
    days = sorted(windows)
    assert (START.isoformat(), END.isoformat()) in days  # page 1 of the whole chunk first
    read = sorted(w for w in days if w != (START.isoformat(), END.isoformat()))
    # The windows that were read cover the 30 days, each day once, with more than one page.
    covered = [
        day
        for first, last in _leaves(read)
        for day in range(date.fromisoformat(first).day, date.fromisoformat(last).day + 1)
    ]
    assert covered == list(range(1, 31))
    pages = [int(c["page"]) for c in report_calls(wide_sim)]
    assert max(pages) >= 2
    assert all(len(orjson.loads(c["metrics"])) <= 100 for c in report_calls(wide_sim))


def _leaves(windows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The windows not split further (a window over the bound is replaced by shorter ones
    starting on its first day)."""
    starts: dict[str, tuple[str, str]] = {}
    for first, last in windows:  # sorted: the shortest of a start day comes first
        starts.setdefault(first, (first, last))
    return sorted(starts.values())


def assert_sparse_truth(spec, rows: list[dict], expected: dict[tuple, dict]) -> None:
    """``rows`` hold every row of the truth once; a metric group that lacked a row (the
    simulator's ``sparse_parts``) has null in its columns there, and the truth elsewhere."""
    got = by_key(spec, rows)  # asserts no duplicate key
    assert got.keys() == expected.keys()
    groups = spec.metric_groups()
    metrics = set(spec.metric_names)
    missing = [0] * len(groups)
    for key, row in got.items():
        truth = expected[key]
        assert {n: v for n, v in row.items() if n not in metrics} == {
            n: v for n, v in truth.items() if n not in metrics
        }
        for i, group in enumerate(groups):
            if all(row[m] is None for m in group if truth[m] is not None):
                missing[i] += 1
            else:
                assert all(row[m] == truth[m] for m in group), (key, i)
    # The group with spend has every row; each of the others lacked some.
    assert missing[0] == 0 and all(count > 0 for count in missing[1:]), missing


@pytest.fixture(scope="module")
def bounded_service(wide_sim, local_bigquery):
    settings = service_settings_for(
        wide_sim, local_bigquery, tiktok_qps=1000.0, tiktok_qpm=60000, tiktok_chunk_row_bound=1200
    )
    with serve(settings) as handle:
        yield handle.url


def test_run_over_the_bound_loads_exactly_the_truth(
    bounded_service, wide_sim, wide_world, bq_client, bq_dataset
):
    wide_sim.reset()  # this test's requests only in the log
    wide_sim.configure(sparse_parts=True)
    advertiser, spec = wide_world.advertiser_ids[0], REPORTS["ad"]
    body = {
        "access_token": TOKEN,
        "advertiser_ids": [advertiser],
        "project_id": bq_client.project,
        "dataset_id": bq_dataset,
        "if_exists": "replace",
        "report_types": ["ad"],
        "start_date": START.isoformat(),
        "end_date": END.isoformat(),
    }
    response = requests.post(f"{bounded_service}/run", json=body, timeout=300)
    assert response.status_code == 200, response.text
    assert response.json()["errors_count"] == 0, response.json()
    loaded = table_rows(bq_client, bq_dataset, spec.table)
    for row in loaded:
        del row["_extracted_at"]
    expected = by_key(spec, truth_rows(wide_world, spec, advertiser, START, END))
    assert len(expected) > 2 * 1200
    assert_sparse_truth(spec, loaded, expected)


def test_the_service_gives_arrow_the_system_allocator():
    # Arrow's bundled mimalloc kept what the ~26 threads of a run freed: a long run's peak
    # grew with its length (config/allocators.py). create_app and the CSV tool tune it.
    tune_allocators()
    assert pa.default_memory_pool().backend_name == "system"


def test_two_chunks_over_the_bound_each_read_in_windows_load_exactly_the_truth(
    wide_sim, wide_world
):
    # 45 days: a 30-day and a 15-day chunk, both over the bound, read in windows side by side.
    wide_sim.reset()  # this test's requests only in the log
    wide_sim.configure(sparse_parts=False)
    advertiser, spec = wide_world.advertiser_ids[0], REPORTS["ad"]
    start, end, bound = date(2025, 4, 1), date(2025, 5, 15), 1500
    extraction, tables = _extract(wide_sim, [(advertiser, spec)], bound, start, end)
    [result] = extraction.results
    assert result.status == "success", result.error
    expected = by_key(spec, truth_rows(wide_world, spec, advertiser, start, end))
    got = by_key(spec, tables[advertiser].drop_columns(["_extracted_at"]).to_pylist())
    assert got == expected and result.rows == len(expected) > 3 * bound
    width = sum(len(group) for group in spec.metric_groups())
    assert extraction.peak_held <= 2 * bound * width  # one window per chunk at a time
    windows = {(c["start_date"], c["end_date"]) for c in report_calls(wide_sim)}
    assert len(windows) > 4


@pytest.mark.parametrize("days", [60, 240])
def test_what_a_run_holds_does_not_grow_with_its_chunks(wide_sim, wide_world, days):
    # 2 chunks, then 8 (4× the days), each over the bound and read in windows. A chunk's
    # windows wait for one of the run's 2 windows slots (the design before opened a window
    # of every chunk at once: ~8 windows held over 240 days), so what the run holds has the
    # same bound for both, and the rows loaded are exactly the simulator's.
    wide_sim.reset()  # this test's requests only in the log
    wide_sim.configure(sparse_parts=True)
    advertiser, spec = wide_world.advertiser_ids[0], REPORTS["ad"]
    start, bound = date(2025, 6, 1), 1200
    end = date.fromordinal(start.toordinal() + days - 1)
    extraction, tables = _extract(wide_sim, [(advertiser, spec)], bound, start, end, open_windows=2)
    [result] = extraction.results
    assert result.status == "success", result.error
    expected = by_key(spec, truth_rows(wide_world, spec, advertiser, start, end))
    assert len(expected) > days // 30 * 2 * bound  # every chunk is over the bound
    got = tables[advertiser].drop_columns(["_extracted_at"]).to_pylist()
    assert_sparse_truth(spec, got, expected)
    assert result.rows == len(expected)
    width = sum(len(group) for group in spec.metric_groups())
    assert extraction.held_bound == 2 * 2 * bound + 8 * 1000  # run-wide: no number of chunks
    # Chunks over the bound hold nothing until a windows slot is theirs: 2 windows at most.
    assert 1000 * 50 < extraction.peak_held <= 2 * bound * width


def test_a_failed_chunk_gives_its_slot_back():
    # One thread, so one open slot: the first advertiser's chunks (no permission: 40001)
    # must give it back for the second's to be read at all; a waiting chunk of the failed
    # item is dropped unread. The deadline only turns a hang into a failure.
    world = World(seed=11, advertisers=2, campaigns_per_advertiser=2, ads_per_adgroup=5)
    bad, good = world.advertiser_ids
    spec = REPORTS["ad"]
    start, end = date(2025, 4, 1), date(2025, 5, 30)  # 2 chunks each
    with SimulatorServer(world, qps=1000, qpm=60000) as server:
        server.remove_permission(bad)
        extraction, tables = _extract(
            server,
            [(bad, spec), (good, spec)],
            100,
            start,
            end,
            workers=1,
            deadline=time.monotonic() + 120,
        )
        calls = report_calls(server)
    status = {r.advertiser_id: r for r in extraction.results}
    assert status[bad].status == "error" and "40001" in status[bad].error
    assert status[good].status == "success", status[good].error
    expected = by_key(spec, truth_rows(world, spec, good, start, end))
    got = by_key(spec, tables[good].drop_columns(["_extracted_at"]).to_pylist())
    assert got == expected and len(expected) > 2 * 100  # read in windows, in the freed slot
    # The failed item's second chunk waited for the slot and was never asked for.
    assert {c["start_date"] for c in calls if c["advertiser_id"] == bad} == {"2025-04-01"}


def test_windows_that_changed_while_paged_are_read_again_in_their_slot(
    wide_sim, wide_world, caplog
):
    # Rows that moved between pages (the simulator's ``repeat``) in two reads of the windows
    # of 60 days over the bound: each is read again in the slot it holds, the run
    # ends (no slot is lost: the deadline only turns a hang into a failure), holds no more
    # than without faults, and loads exactly the truth.
    wide_sim.reset()  # this test's requests only in the log
    wide_sim.configure(sparse_parts=True)
    # One thread: the 6th and 13th requests, whichever windows they belong to, repeat a row.
    queue = ["ok"] * 5 + ["repeat"] + ["ok"] * 6 + ["repeat"]
    wide_sim.set_faults({"mode": "queue", "queue": queue})
    advertiser, spec = wide_world.advertiser_ids[0], REPORTS["ad"]
    start, end, bound = date(2025, 8, 1), date(2025, 9, 29), 1200
    caplog.set_level(logging.WARNING, logger="controller.extraction")
    try:
        extraction, tables = _extract(
            wide_sim,
            [(advertiser, spec)],
            bound,
            start,
            end,
            workers=1,
            open_windows=2,
            deadline=time.monotonic() + 120,
        )
        faults = [e for e in wide_sim.stats()["log"] if e.get("fault") == "repeat"]
    finally:
        wide_sim.set_faults({"mode": "off"})
    [result] = extraction.results
    assert result.status == "success", result.error
    assert len(faults) == 2
    again = [r for r in caplog.records if r.getMessage().endswith("paged: read again")]
    assert len(again) == 2
    expected = by_key(spec, truth_rows(wide_world, spec, advertiser, start, end))
    got = tables[advertiser].drop_columns(["_extracted_at"]).to_pylist()
    assert_sparse_truth(spec, got, expected)
    assert result.rows == len(expected) > 4 * bound
    width = sum(len(group) for group in spec.metric_groups())
    assert extraction.peak_held <= 2 * bound * width


def test_many_chunks_just_under_the_bound_share_the_open_budget():
    # 8 accounts whose 30-day chunk each announces ~4,400 rows, under the bound of 5,000:
    # none is read in windows, yet 8 open chunks could hold ~35,000 full-width rows at once.
    # Past page 1 they share the open budget (one windows slot's worth here: 5,000 announced
    # rows, so one chunk at a time); the others wait with their page 1s, and every row loads.
    world = World(
        seed=23,
        advertisers=8,
        campaigns_per_advertiser=3,
        adgroups_per_campaign=5,
        ads_per_adgroup=14,
    )
    spec, start, end, bound = REPORTS["ad"], date(2025, 4, 1), date(2025, 4, 30), 5000
    expected = {a: truth_rows(world, spec, a, start, end) for a in world.advertiser_ids}
    assert all(2 * 1000 < len(rows) <= bound for rows in expected.values())
    with SimulatorServer(world, qps=1000, qpm=60000) as server:
        extraction, tables = _extract(
            server,
            [(a, spec) for a in world.advertiser_ids],
            bound,
            start,
            end,
            open_windows=1,
            deadline=time.monotonic() + 120,
        )
        calls = report_calls(server)
    assert {r.status for r in extraction.results} == {"success"}
    for advertiser, rows in expected.items():
        got = by_key(spec, tables[advertiser].drop_columns(["_extracted_at"]).to_pylist())
        assert got == by_key(spec, rows)
    # One admitted chunk at a time: the pages after page 1 come account after account.
    follow_ups = [c["advertiser_id"] for c in calls if c["page"] != "1"]
    blocks = [a for i, a in enumerate(follow_ups) if i == 0 or a != follow_ups[i - 1]]
    assert sorted(blocks) == sorted(world.advertiser_ids)
    width = sum(len(group) for group in spec.metric_groups())
    assert extraction.held_bound == 2 * bound + 8 * 1000
    assert extraction.peak_held <= (bound + 8 * 1000) * width
