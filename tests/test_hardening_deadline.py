"""Hardening 4: a run that cannot finish inside its deadline stops starting new work, commits
nothing half-done, reports the unfinished items as errors, and a retry completes them.

The service runs under gunicorn with RUN_DEADLINE_SECONDS = 16 (extraction stops starting
work at 12 s, keeping a quarter of the budget to commit) and one request in flight
(TIKTOK_CONCURRENCY = 1); the window is 60 days (two chunks per report, each read in three
calls: every metric family makes three metric groups). With one worker the calls go in the
scheduler's order: the ad level first (both chunks), then the ad group level, then campaigns
and advertisers.

The deadline does not depend on how fast the machine is: the simulator *holds* the first
call of the second chunk of the first advertiser's ad group report (``/_sim/hold``) until the
run has answered. By then every ad report is complete, every ad group report has its first
30 days spooled (half-read: they must never be committed), and the held call is still in
flight when the deadline passes, whatever the latency. The only speed the test needs is
that the 27 calls before the held one fit in 12 s (they take about 2 s on an idle machine);
the hold's ``held`` count tells so if they did not.
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
from tests.support.hardening import (
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
from tests.support.tiers import spawns_processes

DEADLINE = 16.0
START, END = date(2025, 5, 2), date(2025, 6, 30)  # 60 days: two requests per report
SECOND_CHUNK = date(2025, 6, 1)
HELD_REPORT = "adgroup"  # scheduled after the ad level, before campaigns and advertisers


@pytest.fixture(scope="module")
@spawns_processes
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
    advertisers = sim.advertisers[:3]
    held = {
        "data_level": REPORTS[HELD_REPORT].data_level,
        "advertiser_id": advertisers[0],
        "start_date": SECOND_CHUNK.isoformat(),
    }
    sim.hold(held)
    body = payload(
        bq_client.project,
        bq_dataset,
        advertisers,
        start_date=START.isoformat(),
        end_date=END.isoformat(),
    )
    try:
        response = service.post(body)
        holding = sim.holds()
    finally:
        sim.release()
    # It answered while TikTok still had the held call: the deadline ended the run.
    assert holding["held"] == 1, "the held call was not reached before the deadline"
    assert holding["waiting"] == 1, holding
    result = response.json()
    assert response.status_code == 207, result
    items = results_by_item(result)
    done = {key for key, item in items.items() if item["status"] == "success"}
    unfinished = {key for key, item in items.items() if item["status"] == "error"}
    assert done == {(adv, "ad") for adv in advertisers}
    assert unfinished == set(items) - done
    assert result["errors_count"] == len(unfinished)
    for key in unfinished:
        assert "deadline passed" in items[key]["error"] and "retry the run" in items[key]["error"]
        assert items[key]["inserted_rows"] == 0

    # Nothing started after the held call, neither while it waited past the deadline nor
    # once it was released (the run had dropped its queue when it answered).
    wait_until(lambda: sim.stats(log=False)["in_flight"] == 0, 30, what="in-flight requests")
    log = sim.report_log()
    last = max(log, key=lambda entry: entry["time"])
    assert {key: last["params"][key] for key in held} == held
    read = {
        (e["params"]["advertiser_id"], e["params"]["data_level"]) for e in log if e["code"] == 0
    }
    half_read = {(a, t) for a, t in unfinished if (a, REPORTS[t].data_level) in read}
    assert half_read >= {(adv, HELD_REPORT) for adv in advertisers}
    count("deadline_unfinished_items", len(unfinished))
    count("deadline_half_read_items", len(half_read))

    # Complete reports are in the tables, exactly; unfinished ones left no row at all, even
    # those whose first 30 days had been read (half-done).
    for name in ALL_TYPES:
        complete = [adv for adv in advertisers if (adv, name) in done]
        assert_tables_hold(bq_client, bq_dataset, complete, [name], START, END)
    assert staging_tables(bq_client, bq_dataset) == []

    # The same request with nothing held completes every report, once.
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
