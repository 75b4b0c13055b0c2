"""Views: create or replace them idempotently, and read which columns the tables they read have.

Knows nothing of what the views say: a view is a name, a query and a description, written by
the caller. ``ensure_view`` leaves a view whose query is already the wanted one untouched (so
running it twice changes nothing, not even the view's modification time), and otherwise
writes it with ``CREATE OR REPLACE VIEW`` (one DDL statement: the view is never absent, and
its schema is the new query's, which an update of ``view_query`` alone does not guarantee on
every implementation of the API).

"Already the wanted one" is read from a fingerprint of the query kept at the end of the
view's description, not from the stored query: an implementation may store the query
rewritten (local-bigquery collapses whitespace, drops ``r''`` prefixes and writes
``x IS NOT NULL`` as ``NOT x IS NULL``), which would make every refresh a replacement.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from google.api_core import exceptions as google_exceptions

from database.bigquery import FAILURES, BigQueryWarehouse, WarehouseError, error_detail

CREATED, REPLACED, UNCHANGED = "created", "replaced", "unchanged"


@dataclass(frozen=True)
class ViewDefinition:
    """One view of a dataset: its name, its query and what it is (the view's description)."""

    name: str
    query: str
    description: str = ""


def table_columns(warehouse: BigQueryWarehouse, name: str) -> tuple[str, ...] | None:
    """The columns of table ``name`` of the warehouse's dataset, or None when it does not exist."""
    try:
        table = warehouse.client.get_table(warehouse.table_id(name), retry=warehouse.retry)
    except google_exceptions.NotFound:
        return None
    except FAILURES as exc:
        raise WarehouseError(name, "read schema", error_detail(exc)) from exc
    return tuple(field.name for field in table.schema)


def _described(view: ViewDefinition) -> str:
    """The description, ending with the query's fingerprint."""
    digest = hashlib.sha256(view.query.encode()).hexdigest()[:16]
    return f"{view.description} [definition {digest}]".lstrip()


def ensure_view(warehouse: BigQueryWarehouse, view: ViewDefinition) -> str:
    """Create the view, replace it if its query differs, or leave it: which one happened."""
    view_id = warehouse.table_id(view.name)
    with warehouse._write_lock:
        try:
            try:
                existing = warehouse.client.get_table(view_id, retry=warehouse.retry)
            except google_exceptions.NotFound:
                existing = None
            wanted = _described(view)
            if existing is not None and existing.description == wanted:
                return UNCHANGED
            description = wanted.replace("\\", "\\\\").replace('"', '\\"')
            sql = (
                f"CREATE OR REPLACE VIEW `{view_id}`\n"
                f'OPTIONS (description = "{description}")\n'
                f"AS {view.query}"
            )
            job = warehouse.client.query(
                sql, location=warehouse.location, retry=warehouse.retry, job_retry=None
            )
            warehouse.wait(job)
        except FAILURES as exc:
            raise WarehouseError(view.name, "create view", error_detail(exc)) from exc
    return CREATED if existing is None else REPLACED
