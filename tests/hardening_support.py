"""Moved to tests/support/hardening.py; this re-export keeps the DAG tests' imports working
until they import from there (then it is deleted)."""

from tests.support.hardening import snapshot, table_rows  # noqa: F401
