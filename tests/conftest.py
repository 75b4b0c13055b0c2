"""Shared fixtures: real servers on loopback, started once per session; test tiers."""

from __future__ import annotations

import pytest

from tests.support.tiers import fixture_functions, tier

pytest_plugins = [
    "tests.fixtures.simulator",
    "tests.fixtures.bigquery",
    "tests.fixtures.service",
    "tests.fixtures.airflow",
    "tests.fixtures.dag",
    "tests.fixtures.clock",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test ``integration`` or ``e2e`` from what it uses (tests/support/tiers.py);
    unmarked tests are the fast tier (``make test-fast``)."""
    for item in items:
        markers = {mark.name for mark in item.iter_markers()}
        assigned = tier(getattr(item, "fixturenames", ()), fixture_functions(item), markers)
        if assigned != "fast" and assigned not in markers:
            item.add_marker(assigned)
