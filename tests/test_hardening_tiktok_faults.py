"""Hardening 1: TikTok faults. A run through gunicorn loads exactly the ground truth while 20 %
of report calls fail at random, and token/permission errors fail their items at once.

Real processes: the simulator (5 advertisers, its own process), the service (gunicorn, read
timeout 2 s so the simulator's ``slow`` answers time out), local-bigquery.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from controller.reports.catalog import REPORTS
from tests.support.hardening import (
    ALL_TYPES,
    SECOND_TOKEN,
    Service,
    Simulator,
    assert_no_secret,
    assert_tables_hold,
    count,
    payload,
    results_by_item,
    running_stack,
    table_rows,
)
from tests.support.tiers import spawns_processes

FAULT_KINDS = ["40100", "40133", "50000", "51010", "503_html", "504", "reset", "truncated", "slow"]
SLOW_SECONDS = 3.5  # above the service's TIKTOK_READ_TIMEOUT (2 s)


@pytest.fixture(scope="module")
@spawns_processes
def stack(local_bigquery, tmp_path_factory) -> Iterator[tuple[Simulator, Service]]:
    root = tmp_path_factory.mktemp("hardening-tiktok")
    with running_stack(local_bigquery.endpoint, root, "--qps", "40", "--qpm", "2400") as pair:
        yield pair


@pytest.fixture
def sim(stack) -> Iterator[Simulator]:
    stack[0].reset()
    yield stack[0]
    stack[0].reset()


@pytest.fixture
def service(stack) -> Service:
    return stack[1]


def report_calls_by_advertiser(sim: Simulator) -> Counter[str]:
    return Counter(entry["params"]["advertiser_id"] for entry in sim.report_log())


@pytest.mark.slow
def test_random_faults_still_load_exactly_the_ground_truth(sim, service, bq_client, bq_dataset):
    advertisers = sim.advertisers
    body = payload(bq_client.project, bq_dataset, advertisers)
    injected: Counter[str] = Counter()
    plans = [
        {"mode": "random", "probability": 0.2, "kinds": FAULT_KINDS, "seed": 7},
        # Every kind at least twice, whatever the random draws did.
        {"mode": "queue", "queue": FAULT_KINDS * 2},
    ]
    for plan in plans:
        sim.reset()
        sim.faults({**plan, "slow_seconds": SLOW_SECONDS})
        response = service.post(body)
        result = response.json()
        assert response.status_code == 200, result
        assert result["status"] == "Ok" and result["errors_count"] == 0
        items = results_by_item(result)
        assert len(items) == 20
        assert all(item["status"] == "success" for item in items.values())
        stats = sim.stats(log=False)
        injected.update(stats["faults"])
        assert sum(stats["faults"].values()) > 0
        # The same window replaced again: still exactly one copy of every row.
        rows = assert_tables_hold(bq_client, bq_dataset, advertisers)
        assert result["total_inserted_rows"] == rows
    assert set(injected) == set(FAULT_KINDS), injected
    count("tiktok_faults_injected", sum(injected.values()))
    print(f"\nHARDENING tiktok faults injected: {dict(injected)}")


def test_revoked_token_or_no_permission_fails_only_that_advertiser_without_retry(
    sim, service, bq_client, bq_dataset
):
    revoked, denied, *healthy = sim.advertisers
    types = ["campaign", "ad"]
    body = payload(bq_client.project, bq_dataset, sim.advertisers, types)
    assert service.post(body).status_code == 200  # every advertiser has rows before

    def rows_of_failed() -> dict[str, list[str]]:
        return {
            spec.table: sorted(
                repr(sorted((k, v) for k, v in row.items() if k != "_extracted_at"))
                for row in table_rows(bq_client, bq_dataset, spec.table)
                if row["_advertiser_id"] in (revoked, denied)
            )
            for spec in (REPORTS[name] for name in types)
        }

    before = rows_of_failed()
    assert all(before.values())

    sim.reset()
    # TikTok answers 40105 for this advertiser's token (its authorisation was revoked)...
    sim.faults({"mode": "random", "probability": 1.0, "kinds": ["40105"], "advertiser_id": revoked})
    # ...and the token lost its permission on another advertiser (40001).
    sim.configure(remove_permission={"advertiser_id": denied, "token": body["access_token"]})
    response = service.post(body)
    result = response.json()
    assert response.status_code == 207, result
    assert result["status"] == "partial_success"
    assert result["errors_count"] == 2 * len(types)
    for (advertiser, _), item in results_by_item(result).items():
        if advertiser == revoked:
            assert item["status"] == "error" and item["inserted_rows"] == 0
            assert item["error"].startswith(f"advertiser {revoked}: TikTok API error 40105: ")
        elif advertiser == denied:
            assert item["status"] == "error" and item["inserted_rows"] == 0
            assert item["error"].startswith(f"advertiser {denied}: TikTok API error 40001: ")
        else:
            assert item["status"] == "success" and item["error"] is None, item
    calls = report_calls_by_advertiser(sim)
    # Every family: three metric groups per report, their requests sent at once. A failed
    # one is never retried: at most one call per group (those queued after the first error
    # are not sent), exactly one per group for the healthy advertisers.
    groups = len(REPORTS["ad"].metric_groups())
    assert groups == 3
    assert len(types) <= calls[revoked] <= groups * len(types)
    assert len(types) <= calls[denied] <= groups * len(types)
    assert all(calls[adv] == groups * len(types) for adv in healthy)
    # The failed advertisers keep the rows they had; the others were replaced with the truth.
    assert_tables_hold(bq_client, bq_dataset, sim.advertisers, types)
    assert rows_of_failed() == before
    count("tiktok_auth_errors_injected", 2 * len(types))


@pytest.mark.parametrize(("action", "code"), [("revoke_token", 40105), ("expire_token", 40102)])
def test_revoked_or_expired_token_fails_every_item_with_one_call_each(
    sim, service, bq_client, bq_dataset, action, code
):
    sim.configure(**{action: SECOND_TOKEN})
    body = payload(bq_client.project, bq_dataset, sim.advertisers, access_token=SECOND_TOKEN)
    response = service.post(body)
    result = response.json()
    assert response.status_code == 502, result
    assert result["status"] == "error" and result["errors_count"] == 20
    assert result["total_inserted_rows"] == 0
    for item in result["results"]:
        assert f"TikTok API error {code}: " in item["error"]
    log = sim.report_log()
    # One call per metric group at most (three per report, sent at once), none retried.
    assert 20 <= len(log) <= 3 * 20 and {e["code"] for e in log} == {code}
    per_advertiser = Counter(e["params"]["advertiser_id"] for e in log)
    assert set(per_advertiser) == set(sim.advertisers)
    assert all(4 <= n <= 3 * 4 for n in per_advertiser.values())
    assert set(ALL_TYPES) == {i["report_type"] for i in result["results"]}
    count("tiktok_auth_errors_injected", 20)


def test_no_token_in_logs_responses_or_files(service):
    assert service.healthy()
    assert_no_secret(service)
