"""Hardening 3: concurrent runs. Identical ``replace`` requests at the same moment, and a
``replace`` overlapping another advertiser's run, end with exactly one copy of each row.

One gunicorn service (1 worker, 8 threads, as in production), so the runs share the process:
its rate limiter and the warehouse's serialised commits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.hardening import (
    Service,
    Simulator,
    assert_no_secret,
    assert_tables_hold,
    count,
    payload,
    running_stack,
    staging_tables,
)
from tests.support.tiers import spawns_processes

TYPES = ["advertiser", "ad"]  # commits are the contended part: two tables are enough


@pytest.fixture(scope="module")
@spawns_processes
def stack(local_bigquery, tmp_path_factory) -> Iterator[tuple[Simulator, Service]]:
    root = tmp_path_factory.mktemp("hardening-concurrency")
    with running_stack(local_bigquery.endpoint, root, "--qps", "40", "--qpm", "2400") as pair:
        yield pair


def at_once(service: Service, bodies: list[dict[str, Any]]) -> list[requests.Response]:
    """POST every body at the same moment (a barrier releases the threads together)."""
    barrier = threading.Barrier(len(bodies))
    responses: list[requests.Response | None] = [None] * len(bodies)
    errors: list[BaseException] = []

    def send(index: int) -> None:
        try:
            barrier.wait(10)
            responses[index] = service.post(bodies[index])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == []
    return [r for r in responses if r is not None]


@pytest.mark.slow
def test_identical_and_overlapping_replaces_leave_one_copy_of_each_row(
    stack, bq_client, bq_dataset
):
    sim, service = stack
    sim.reset()
    shared, other = sim.advertisers[:2], sim.advertisers[2:3]
    twin = payload(bq_client.project, bq_dataset, shared, TYPES)
    overlapping = payload(bq_client.project, bq_dataset, other, TYPES)
    part_of_twin = payload(
        bq_client.project,
        bq_dataset,
        shared[:1],
        TYPES,
        start_date="2025-06-05",
        end_date="2025-06-12",
    )
    rounds = [
        # A new dataset: tables created concurrently, every window empty.
        [twin, dict(twin), overlapping],
        # Over existing rows: the same window twice, a part of it, another advertiser.
        [twin, dict(twin), part_of_twin, overlapping],
    ]
    for bodies in rounds:
        responses = at_once(service, bodies)
        for response in responses:
            assert response.status_code == 200, response.text
            assert response.json()["errors_count"] == 0
        count("concurrent_runs", len(responses))
        assert_tables_hold(bq_client, bq_dataset, [*shared, *other], TYPES)
        assert staging_tables(bq_client, bq_dataset) == []


def test_no_token_in_logs_responses_or_files(stack):
    service = stack[1]
    assert service.healthy()
    assert_no_secret(service)
