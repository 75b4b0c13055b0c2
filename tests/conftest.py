"""Shared fixtures: real servers on loopback, started once per session."""

pytest_plugins = [
    "tests.fixtures.simulator",
    "tests.fixtures.bigquery",
    "tests.fixtures.service",
    "tests.fixtures.airflow",
]
