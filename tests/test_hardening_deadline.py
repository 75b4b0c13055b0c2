"""Hardening 4: a run that cannot finish inside its deadline stops starting new work, commits
nothing half-done, reports the unfinished items as errors, and a retry completes them.

The service runs under gunicorn with RUN_DEADLINE_SECONDS = 24 (extraction stops starting
work at 18 s, keeping a quarter of the budget to commit) and one request in flight
(TIKTOK_CONCURRENCY = 1), the simulator answers each report call in 0.3 s, and the window is
60 days (two chunks per report, each read in three calls: every metric family makes three
metric groups). The calls go in the extraction's order: the first 30 days of all 12 reports,
then the last 30 days of each, so by the deadline (~55 calls) some reports are complete and
the others are half-read: their first 30 days are spooled but must never be committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from controller.extraction import Extraction
from controller.reports.catalog import REPORTS
from controller.tiktok.client import Page
from tests.hardening_support import (
    ALL_TYPES,
    Service,
    Simulator,
    assert_no_secret,
    assert_tables_hold,
    count,
    payload,
    results_by_item,
    service_env,
    staging_tables,
    wait_until,
)

DEADLINE = 24.0
EXTRACTION_DEADLINE = DEADLINE - DEADLINE * 0.25  # controller.pipeline keeps 25 % to commit
START, END = date(2025, 5, 2), date(2025, 6, 30)  # 60 days: two requests per report


@pytest.fixture(scope="module")
def stack(local_bigquery, tmp_path_factory) -> Iterator[tuple[Simulator, Service]]:
    root = tmp_path_factory.mktemp("hardening-deadline")
    sim = Simulator(root / "simulator.log", "--qps", "40", "--qpm", "2400")
    service = Service(
        root / "service",
        service_env(
            sim,
            local_bigquery.endpoint,
            RUN_DEADLINE_SECONDS=DEADLINE,
            TIKTOK_READ_TIMEOUT=30,
            TIKTOK_CONCURRENCY=1,
        ),
    )
    try:
        yield sim, service
    finally:
        service.stop()
        sim.stop()


@pytest.mark.slow
def test_run_past_its_deadline_commits_only_complete_reports_and_a_retry_completes(
    stack, bq_client, bq_dataset
):
    sim, service = stack
    sim.reset()
    sim.configure(latency=0.3)
    advertisers = sim.advertisers[:3]
    body = payload(
        bq_client.project,
        bq_dataset,
        advertisers,
        start_date=START.isoformat(),
        end_date=END.isoformat(),
    )
    posted = time.time()
    response = service.post(body)
    answered = time.time()
    result = response.json()
    assert response.status_code == 207, result
    assert answered - posted < DEADLINE + 10  # it answered instead of running on
    items = results_by_item(result)
    done = {key for key, item in items.items() if item["status"] == "success"}
    unfinished = {key for key, item in items.items() if item["status"] == "error"}
    assert result["errors_count"] == len(unfinished) > 0
    # The longest page chains (the ad level) are scheduled first, the advertiser level last.
    assert {t for _, t in done} >= {"ad"} and {t for _, t in unfinished} >= {"advertiser"}
    for key in unfinished:
        assert "deadline passed" in items[key]["error"] and "retry the run" in items[key]["error"]
        assert items[key]["inserted_rows"] == 0

    # No report request started after the extraction deadline (in-flight ones may finish).
    wait_until(lambda: sim.stats(log=False)["in_flight"] == 0, 15, what="in-flight requests")
    log = sim.report_log()
    last_start = max(entry["time"] for entry in log)
    assert last_start <= posted + EXTRACTION_DEADLINE + 0.5, last_start - posted
    read_in_time = {
        (e["params"]["advertiser_id"], e["params"]["data_level"])
        for e in log
        if e["code"] == 0 and e["time"] + e["duration"] < posted + EXTRACTION_DEADLINE
    }
    half_read = [(a, t) for a, t in unfinished if (a, REPORTS[t].data_level) in read_in_time]
    count("deadline_unfinished_items", len(unfinished))

    # Complete reports are in the tables, exactly; unfinished ones left no row at all, even
    # those whose first 30 days had been read (half-done).
    for name in ALL_TYPES:
        complete = [adv for adv in advertisers if (adv, name) in done]
        assert_tables_hold(bq_client, bq_dataset, complete, [name], START, END)
    assert half_read, "no report was half-read at the deadline: the scenario tested nothing"
    count("deadline_half_read_items", len(half_read))
    assert staging_tables(bq_client, bq_dataset) == []

    # The same request once TikTok is fast again completes every report, once.
    sim.configure(latency=0.0)
    response = service.post(body)
    assert response.status_code == 200, response.text
    assert_tables_hold(bq_client, bq_dataset, advertisers, ALL_TYPES, START, END)
    assert staging_tables(bq_client, bq_dataset) == []


class InstantFirstAnswer:
    """A TikTok client whose first advertiser's pages come back at once, the others slowly.

    Reproduces a race of the scheduler: the first chunk of an item answered while the run
    is still queueing the item's later chunks must not mark the item complete.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, date]] = []
        self._lock = threading.Lock()

    def fetch_page(self, spec, advertiser_id, metrics, start, end, page, **_: object) -> Page:
        with self._lock:
            self.calls.append((advertiser_id, start))
        if advertiser_id != "1":
            time.sleep(0.001)
        return Page(rows=[], page=page, total_page=0, total_number=0)


def test_an_item_is_complete_only_when_every_chunk_was_read():
    client = InstantFirstAnswer()
    items = [(str(n), REPORTS["campaign"]) for n in range(1, 2001)]
    extraction = Extraction(
        client,  # type: ignore[arg-type]
        items,
        date(2025, 1, 1),
        date(2025, 3, 1),  # 60 days: two chunks per item
        sink=lambda *_: None,
        workers=8,
        extracted_at=datetime.now(UTC),
    )
    results = extraction.run()
    assert all(r.ok for r in results)
    groups = len(REPORTS["campaign"].metric_groups())  # every family: 3 requests per chunk
    first = sorted(start for adv, start in client.calls if adv == "1")
    assert first == [date(2025, 1, 1)] * groups + [date(2025, 1, 31)] * groups
    assert results[0].requests == 2 * groups == 6
    assert len(client.calls) == 2 * groups * len(items)


def test_no_token_in_logs_responses_or_files(stack):
    service = stack[1]
    assert service.healthy()
    assert_no_secret(service)
