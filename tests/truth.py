"""Moved to tests/support/truth.py; this re-export keeps the DAG tests' imports working
until they import from there (then it is deleted)."""

from tests.support.truth import by_key, truth_rows, typed_cell  # noqa: F401
