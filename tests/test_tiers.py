"""The tiers of tests/conftest.py: assigned from fixtures, so `make test-fast` stays fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import airflow, bigquery, simulator
from tests.support.tiers import spawns_processes, tier

ROOT = Path(__file__).resolve().parent.parent


def in_thread_simulator() -> None:
    """A fixture function that starts nothing (the simulator in a thread)."""


@spawns_processes
def process_stack() -> None:
    """A fixture function that starts the service and the simulator as processes."""


FIXTURES = {
    "sim": [simulator.sim],
    "local_bigquery": [bigquery.local_bigquery],
    "bq_client": [bigquery.bq_client],
    "airflow_db": [airflow.airflow_db],
    "thread_sim": [in_thread_simulator],
    # a module's own fixture overrides the session's: the last definition is the one used
    "stack": [in_thread_simulator, process_stack],
}


@pytest.mark.parametrize(
    ("fixturenames", "markers", "expected"),
    [
        ((), (), "fast"),
        (("sim", "thread_sim", "tmp_path"), (), "fast"),
        (("bq_client", "local_bigquery"), (), "integration"),
        (("service", "simulator"), (), "integration"),
        (("local_bigquery", "stack"), (), "e2e"),
        (("airflow_db",), (), "e2e"),
        (("sim",), ("e2e",), "e2e"),  # a test that starts a process itself
        (("sim",), ("slow", "parametrize"), "fast"),
    ],
)
def test_tier_follows_the_fixture_closure(fixturenames, markers, expected) -> None:
    assert tier(fixturenames, FIXTURES, markers) == expected


KNOWN = {
    "tests/test_catalog_and_normalize.py::test_date_chunks_75_days_make_three_requests": "fast",
    "tests/test_simulator.py::test_success_envelope": "fast",
    "tests/test_simulator.py::test_cli_prints_ready_and_serves": "e2e",
    "tests/test_hardening_deadline.py::test_an_item_is_complete_only_when_every_chunk_was_read": (
        "fast"
    ),
    "tests/test_hardening_deadline.py::test_no_token_in_logs_responses_or_files": "e2e",
    "tests/test_service.py::test_health": "integration",
}


PYTEST_COLLECT = (sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider")


def collected(*args: str) -> set[str]:
    files = sorted({key.split("::")[0] for key in KNOWN})
    run = subprocess.run(
        [*PYTEST_COLLECT, *args, *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode in (0, 5), run.stdout[-3000:] + run.stderr[-3000:]
    return {line for line in run.stdout.splitlines() if line.startswith("tests/")}


@pytest.mark.e2e  # pytest's own collection, as a process
def test_known_tests_get_their_tier() -> None:
    """Real tests, collected the way `make test-fast` selects them."""
    fast = collected("-m", "not integration and not e2e")
    integration, e2e = collected("-m", "integration"), collected("-m", "e2e")
    tiers = {"fast": fast, "integration": integration, "e2e": e2e}
    assert not (fast & integration or fast & e2e or integration & e2e)
    assert {key: next(t for t, ids in tiers.items() if key in ids) for key in KNOWN} == KNOWN
