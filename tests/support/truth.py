"""Ground truth for comparisons: the simulator's rows, typed by an independent per-cell path.

The service types values column by column with Arrow kernels; this module types each cell
with plain Python, so a comparison checks one implementation against another.
"""

from __future__ import annotations

from datetime import date

from controller.reports.catalog import MetricType, ReportSpec
from controller.tiktok.origins import ALL_ORIGINS
from tiktok_simulator.report import served_rows


def typed_cell(kind: MetricType, value: object) -> object:
    if value is None or value == "-" or value == "":
        return None
    if kind is MetricType.STRING:
        return str(value)
    if kind is MetricType.INT:
        return int(float(value)) if isinstance(value, str) and "." in value else int(value)
    return float(value)


def truth_rows(
    world,
    spec: ReportSpec,
    advertiser_id: str,
    start: date,
    end: date,
    families: tuple[str, ...] | None = None,
    origins: tuple[str, ...] = ALL_ORIGINS,
    **report: object,
) -> list[dict]:
    """The rows the simulator serves, as the columns the warehouse should hold: deleted
    objects and Promote campaigns included (what the service asks for), the metric families
    asked for (default all) and null in the columns of the others.

    ``report``: more arguments of ``tiktok_simulator.report.served_rows`` (e.g. ``as_of``, ``attribution_days``).
    """
    asked = set(spec.requested_metrics(families))
    rows = []
    for raw in served_rows(
        world,
        advertiser_id,
        spec.data_level,
        start,
        end,
        metrics=spec.metric_names,
        include_deleted=True,
        origins=origins,
        **report,
    ):
        dims, metrics = raw["dimensions"], raw["metrics"]
        row = {
            spec.id_dimension: dims[spec.id_dimension],
            "stat_time_day": dims["stat_time_day"],
            "date": date.fromisoformat(dims["stat_time_day"][:10]),
        }
        for name in spec.metric_names:
            value = metrics.get(name) if name in asked else None
            row[name] = typed_cell(spec.metric_type(name), value)
        row["_advertiser_id"] = advertiser_id
        row["_report_type"] = spec.report_type
        rows.append(row)
    return rows


def key(spec: ReportSpec, row: dict) -> tuple:
    return (row["_advertiser_id"], row[spec.id_dimension], row["stat_time_day"])


def by_key(spec: ReportSpec, rows: list[dict]) -> dict[tuple, dict]:
    keyed = {key(spec, r): r for r in rows}
    assert len(keyed) == len(rows), "duplicate rows"
    return keyed
