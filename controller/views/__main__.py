"""The views from the command line: the CSV tool's counterpart for a local check.

``python -m controller.views --sql`` prints every view's SQL as it would be made over a raw
dataset holding every table (no BigQuery needed: read it, paste it into a console);
``python -m controller.views --project-id P [--dataset-id raw]`` makes the views as
``POST /views`` does, over what the dataset holds (``BIGQUERY_EMULATOR_HOST`` for
local-bigquery, else Application Default Credentials).
"""

from __future__ import annotations

import argparse
import sys

from config.settings import load_settings
from controller.pipeline import table_definition, warehouse_for
from controller.reports import registry
from controller.tiktok.accounts import INFO_SCHEMA, INFO_TABLE
from controller.tiktok.entities import ENTITIES
from controller.views import plan_for, refresh_views, view_queries
from controller.views.sql import Raw
from database.history import HISTORY_COLUMNS


def every_table(dataset: str, currency: str | None) -> Raw:
    """A raw dataset holding every table with the columns this version writes."""
    columns = {
        spec.table: tuple(table_definition(spec).schema.names)
        for spec in registry.all_reports().values()
    }
    for spec in ENTITIES.values():
        columns[spec.table] = (*spec.schema.names, *(f.name for f in HISTORY_COLUMNS))
    columns[INFO_TABLE] = tuple(INFO_SCHEMA.names)
    return Raw(dataset, columns, reporting_currency=currency)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project-id", default="my-project")
    parser.add_argument("--dataset-id", default="raw")
    parser.add_argument("--reporting-currency", default=None)
    parser.add_argument("--sql", action="store_true", help="print the SQL only")
    args = parser.parse_args(argv)
    if args.sql:
        raw = every_table(f"{args.project_id}.{args.dataset_id}", args.reporting_currency)
        for role, views in view_queries(raw).items():
            for name, query, _, _ in views:
                print(f"-- {role}: {name}\n{query};\n")
        return 0
    settings = load_settings()
    plan = plan_for(
        settings, args.project_id, args.dataset_id, reporting_currency=args.reporting_currency
    )
    outcomes = refresh_views(lambda p, d: warehouse_for(settings, p, d), plan)
    for outcome in outcomes:
        reason = f"  ({outcome.reason})" if outcome.reason else ""
        print(f"{outcome.dataset_id}.{outcome.view}: {outcome.status}{reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
