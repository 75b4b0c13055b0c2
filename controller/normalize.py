"""Raw API rows → typed Arrow columns.

Columnar on purpose: a page's values are gathered per column once (one list comprehension
per metric) and converted by Arrow compute kernels in bulk, so a row costs a few
microseconds instead of a Python call per cell. Ids stay strings from the JSON to the
warehouse: they exceed 2**53, so any float or int on their way would change or break them.
``"-"`` (TikTok's "not applicable") and missing values become nulls.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from controller.catalog import ARROW_TYPES, MetricType, ReportSpec, arrow_schema

_NOT_APPLICABLE = pa.array(["-", ""], type=pa.string())


class NormalizationError(ValueError):
    """A value TikTok sent that cannot be typed as the catalog says (never silently dropped)."""


def _strings(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # Some payloads carry JSON numbers instead of numeric strings: accept both.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _typed(name: str, values: list[Any], kind: MetricType) -> pa.Array:
    strings = _strings(values)
    strings = pc.if_else(pc.is_in(strings, _NOT_APPLICABLE), pa.scalar(None, pa.string()), strings)
    if kind is MetricType.STRING:
        return strings
    target = ARROW_TYPES[kind]
    try:
        return pc.cast(strings, target)
    except pa.ArrowInvalid:
        try:  # counts written as "12.0"
            return pc.cast(pc.cast(strings, pa.float64()), target)
        except pa.ArrowInvalid as exc:
            raise NormalizationError(
                f"metric {name}: value not a {kind.value} number ({exc})"
            ) from None


def _dates(labels: pa.Array) -> pa.Array:
    try:
        return pc.cast(pc.strptime(labels, format="%Y-%m-%d %H:%M:%S", unit="s"), pa.date32())
    except pa.ArrowInvalid as exc:
        raise NormalizationError(f"stat_time_day is not 'YYYY-MM-DD HH:MM:SS' ({exc})") from None


def page_to_table(spec: ReportSpec, metrics: list[str], rows: list[dict[str, Any]]) -> pa.Table:
    """Type one page of rows holding ``metrics`` (all, or one group of the level's metrics)."""
    dimensions = [row.get("dimensions") or {} for row in rows]
    values = [row.get("metrics") or {} for row in rows]
    ids = _typed(
        spec.id_dimension, [d.get(spec.id_dimension) for d in dimensions], MetricType.STRING
    )
    if ids.null_count:
        raise NormalizationError(f"a row has no {spec.id_dimension} dimension")
    days = _strings([d.get("stat_time_day") for d in dimensions])
    if days.null_count:
        raise NormalizationError("a row has no stat_time_day dimension")
    columns: dict[str, pa.Array] = {spec.id_dimension: ids, "stat_time_day": days}
    for name in metrics:
        columns[name] = _typed(name, [m.get(name) for m in values], spec.metric_type(name))
    return pa.table(columns)


def finish(
    spec: ReportSpec, table: pa.Table, advertiser_id: str, extracted_at: datetime
) -> pa.Table:
    """Add ``date`` and the bookkeeping columns, and give the table the report's exact schema."""
    count = len(table)
    added = {
        "date": _dates(table.column("stat_time_day")),
        "_advertiser_id": pa.array([advertiser_id] * count, type=pa.string()),
        "_extracted_at": pa.array([extracted_at] * count, type=pa.timestamp("us", tz="UTC")),
        "_report_type": pa.array([spec.report_type] * count, type=pa.string()),
    }
    schema = arrow_schema(spec)
    columns = []
    for field in schema:
        if field.name in added:
            columns.append(added[field.name])
        elif field.name in table.column_names:
            columns.append(table.column(field.name))
        else:  # a metric of a group TikTok sent no row for
            columns.append(pa.nulls(count, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def join_metric_groups(spec: ReportSpec, parts: list[pa.Table]) -> pa.Table:
    """Join the tables of requests that split one level's metrics, on the dimensions.

    A full outer join: TikTok omits rows without delivery per request, so a row may be
    present in one part only.
    """
    keys = list(spec.dimensions)
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.join(part, keys=keys, join_type="full outer", coalesce_keys=True)
    return joined
