"""Raw API rows → typed Arrow columns.

Columnar on purpose, and without a Python object per cell: the numeric cells of a page
(~90 of the ~100 metrics) are joined row by row into one string, split, nulled, reordered
and cast by a handful of Arrow compute calls for the whole page, and each column is a
zero-copy slice of the result; attribute columns are converted one list each. A call per
metric per page (or worse, per cell) would cost more than the JSON decoding itself. Ids stay
strings from the JSON to the warehouse: they exceed 2**53, so any float or int on their way
would change or break them. ``"-"`` (TikTok's "not applicable") and missing values become
nulls.

Attributes (names, ids, enums, budgets: ``ReportSpec.is_attribute``) describe an object; a
value of theirs that does not fit the column's type (a budget written as a word, an object
where a name belongs) loads as null and is counted in ``OddValues``, which the item turns
into a warning: one odd value must not cost the spend of every row. Delivery metrics stay
strict: one that does not parse fails its report, nothing of it loaded. The native reader
declines every such page (it types only what parses exactly), so this is Python's alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from functools import partial
from itertools import chain, pairwise
from operator import itemgetter
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from controller.reports.catalog import (
    ARROW_TYPES,
    SMART_PLUS_AD_ID,
    SMART_PLUS_CREATIVES,
    STORE_ID,
    MetricType,
    ReportSpec,
    arrow_schema,
)
from controller.tiktok import native

_NOT_APPLICABLE = pa.array(["-", ""], type=pa.string())
_EXTRACTED_AT = pa.timestamp("us", tz="UTC")
_SEPARATOR = "\x1f"  # ASCII unit separator: not in metric values (and checked anyway)
_NATIVE_KINDS = {
    MetricType.STRING: native.STRING,
    MetricType.INT: native.INT64,
    MetricType.FLOAT: native.FLOAT64,
}
_SHOWN_CHARS = 40  # an odd value is quoted in its warning up to this length
# A page's column marking the rows whose attribute ``name`` was odd: ``ODD_MARK + name``.
ODD_MARK = "\x00odd:"
_orders: dict[tuple[int, int], pa.Array] = {}
_schemas: dict[str, tuple[ReportSpec, pa.Schema]] = {}


class NormalizationError(ValueError):
    """A value TikTok sent that cannot be typed as the catalog says (never silently dropped)."""


def _strings(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # Some payloads carry JSON numbers instead of numeric strings: accept both.
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _typed(name: str, values: list[Any], kind: MetricType) -> pa.Array:
    return _cast(name, _nulled(_strings(values)), kind)


def _nulled(strings: pa.Array) -> pa.Array:
    """``"-"`` and ``""`` (TikTok's "not applicable") as nulls."""
    return pc.if_else(pc.is_in(strings, _NOT_APPLICABLE), pa.scalar(None, pa.string()), strings)


def _cast(name: str, strings: pa.Array, kind: MetricType) -> pa.Array:
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


class OddValues:
    """Attribute values that did not fit their column's type and loaded as null, per column:
    the first such value and how many rows held one. One per item, shared by its pages (typed
    on several decode threads at once), read into the item's warnings when it is done.

    ``marked``: rows are counted when they are kept, not when typed. A page then carries a
    boolean column ``ODD_MARK + name`` per column with odd values, which ``settle`` counts and
    drops right before its rows are loaded: rows the extraction leaves out after typing (the
    ``ad_id`` rows of Upgraded Smart+ creatives, whose ads are read by ``ad_id_v2``) are not
    counted, so the warning's count is of loaded rows."""

    def __init__(self, *, marked: bool = False) -> None:
        self._lock = threading.Lock()
        self._columns: dict[str, tuple[MetricType, str, int]] = {}
        self.marked = marked

    def add(self, column: str, kind: MetricType, value: str, rows: int) -> None:
        with self._lock:
            _, first, count = self._columns.get(column, (kind, value, 0))
            self._columns[column] = (kind, first, count + rows)

    def settle(self, table: pa.Table) -> pa.Table:
        """``table`` without its marks, each counted for its column (see ``marked``)."""
        marks = [name for name in table.column_names if name.startswith(ODD_MARK)]
        for mark in marks:
            column = mark.removeprefix(ODD_MARK)
            rows = pc.sum(pc.fill_null(table.column(mark), False)).as_py() or 0
            with self._lock:
                kind, first, count = self._columns[column]
                self._columns[column] = (kind, first, count + rows)
        return table.drop_columns(marks) if marks else table

    def warnings(self, report_type: str) -> list[str]:
        """One warning per column: its name, the first odd value (truncated), the row count."""
        with self._lock:
            columns = sorted(item for item in self._columns.items() if item[1][2])
        return [
            f"{report_type} attribute {column}: {rows} row(s) held a value that is not "
            f"{'a string' if kind is MetricType.STRING else 'a ' + kind.value + ' number'} "
            f"(e.g. {_shown(value)}), loaded as null"
            for column, (kind, value, rows) in columns
        ]


def _shown(value: str) -> str:
    """``value`` quoted, cut at ``_SHOWN_CHARS`` (a warning names it, never carries a blob)."""
    if len(value) > _SHOWN_CHARS:
        value = value[:_SHOWN_CHARS] + "..."
    return repr(value)


def _attribute(
    name: str, values: list[Any], kind: MetricType, odd: OddValues
) -> tuple[pa.Array, pa.Array | None]:
    """An attribute column: values that do not fit ``kind`` become nulls, counted in ``odd``
    (or, ``odd.marked``, first noted and the rows' mask returned for ``OddValues.settle``).

    The fitting values are cast exactly as ``_typed`` casts them; only the odd ones (a
    distinct value at a time, on the rare page that has any) are looked at one by one.
    """
    if kind is MetricType.STRING:
        nested = [v for v in values if isinstance(v, dict | list)]
        if not nested:
            return _typed(name, values, kind), None
        # an object or array where a name or enum belongs
        mask = pa.array([isinstance(v, dict | list) for v in values], pa.bool_())
        values = [None if isinstance(v, dict | list) else v for v in values]
        return _typed(name, values, kind), _odd(
            odd, name, kind, orjson.dumps(nested[0]).decode(), mask
        )
    strings = _nulled(_strings(values))
    try:
        return _cast(name, strings, kind), None
    except NormalizationError:
        pass
    bad = [v for v in pc.unique(strings).drop_null().to_pylist() if not _fits(name, v, kind)]
    if not bad:  # each value fits alone, not all together: no value to blame, so strict
        return _cast(name, strings, kind), None
    mask = pc.fill_null(pc.is_in(strings, value_set=pa.array(bad, pa.string())), False)
    typed = _cast(name, pc.if_else(mask, pa.scalar(None, pa.string()), strings), kind)
    return typed, _odd(odd, name, kind, strings.filter(mask)[0].as_py(), mask)


def _odd(
    odd: OddValues, name: str, kind: MetricType, first: str, mask: pa.Array
) -> pa.Array | None:
    """Note a column's odd rows: counted now, or (``odd.marked``) their mask for later."""
    if odd.marked:
        odd.add(name, kind, first, 0)
        return mask
    odd.add(name, kind, first, pc.sum(mask).as_py())
    return None


def _fits(name: str, value: str, kind: MetricType) -> bool:
    try:
        _cast(name, pa.array([value], pa.string()), kind)
    except NormalizationError:
        return False
    return True


def _column_major(rows: int, width: int) -> pa.Array:
    """Indices that reorder a row-major ``rows × width`` block column by column (cached)."""
    order = _orders.get((rows, width))
    if order is None:
        if len(_orders) >= 64:  # page sizes repeat (1,000 rows, then one last page)
            _orders.clear()
        order = pa.array([r * width + c for c in range(width) for r in range(rows)], pa.int32())
        _orders[(rows, width)] = order
    return order


def _numeric_block(
    names: list[str], kinds: list[MetricType], values: list[dict[str, Any]]
) -> dict[str, pa.Array] | None:
    """Every numeric cell of a page typed in a handful of Arrow calls, or None.

    The cells are joined row by row into one string (no Python object per cell), split by
    Arrow, nulled where TikTok wrote ``"-"``, reordered column by column and cast once per
    type; each column is then a zero-copy slice. ``names`` are grouped by kind. None when the
    page is not plain strings (a JSON number, a missing metric, the separator inside a value)
    or a value does not cast strictly: the caller then types metric by metric, leniently.
    """
    count, width = len(values), len(names)
    try:
        text = _SEPARATOR.join(chain.from_iterable(map(itemgetter(*names), values)))
    except (KeyError, TypeError):
        return None
    cells = pc.split_pattern(pa.array([text], pa.string()), _SEPARATOR).flatten()
    if len(cells) != count * width:
        return None
    cells = pc.if_else(pc.is_in(cells, _NOT_APPLICABLE), pa.scalar(None, pa.string()), cells)
    cells = pc.take(cells, _column_major(count, width))
    columns: dict[str, pa.Array] = {}
    start = 0
    while start < width:
        kind = kinds[start]
        end = start
        while end < width and kinds[end] is kind:
            end += 1
        try:
            typed = pc.cast(cells.slice(start * count, (end - start) * count), ARROW_TYPES[kind])
        except pa.ArrowInvalid:
            return None
        for j in range(start, end):
            columns[names[j]] = typed.slice((j - start) * count, count)
        start = end
    return columns


def _metric_columns(
    spec: ReportSpec, metrics: list[str], values: list[dict[str, Any]], odd: OddValues | None
) -> dict[str, pa.Array]:
    """Typed columns of ``metrics``: numeric ones in bulk when possible, others one by one.

    Attributes are typed leniently when ``odd`` can carry what did not fit (a caller without
    one keeps them strict), and never in the bulk block, whose one failing value would send
    the whole page down the slow path.
    """
    lenient = {name for name in metrics if odd is not None and spec.is_attribute(name)}
    numeric = sorted(
        (
            name
            for name in metrics
            if spec.metric_type(name) is not MetricType.STRING and name not in lenient
        ),
        key=lambda name: spec.metric_type(name) is MetricType.FLOAT,  # stable: INT, then FLOAT
    )
    block = None
    if len(numeric) > 1 and values:
        block = _numeric_block(numeric, [spec.metric_type(n) for n in numeric], values)
    columns: dict[str, pa.Array] = {}
    for name in metrics:
        if block is not None and name in block:
            columns[name] = block[name]
        elif odd is not None and name in lenient:
            columns[name], mask = _attribute(
                name, [m.get(name) for m in values], spec.metric_type(name), odd
            )
            if mask is not None:
                columns[ODD_MARK + name] = mask
        else:
            columns[name] = _typed(name, [m.get(name) for m in values], spec.metric_type(name))
    return columns


def _dates(labels: pa.Array | pa.ChunkedArray, name: str = "stat_time_day") -> pa.Array:
    """``date`` from the ``stat_time_day`` (or ``stat_time_hour``) labels, parsed once per
    distinct label of the page. TikTok writes ``YYYY-MM-DD 00:00:00``; a bare ``YYYY-MM-DD``
    (as some endpoints and public examples write a day) is the same day, not an error."""
    try:
        encoded = pc.dictionary_encode(labels)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        labels = encoded.dictionary
        bare = pc.equal(pc.utf8_length(labels), len("YYYY-MM-DD"))
        labels = pc.if_else(bare, pc.binary_join_element_wise(labels, " 00:00:00", ""), labels)
        days = pc.strptime(labels, format="%Y-%m-%d %H:%M:%S", unit="s")
        return pc.take(pc.cast(days, pa.date32()), encoded.indices)
    except pa.ArrowInvalid as exc:
        raise NormalizationError(
            f"{name} is not 'YYYY-MM-DD HH:MM:SS' nor 'YYYY-MM-DD' ({exc})"
        ) from None


def _time_columns(spec: ReportSpec, table: pa.Table, extracted_at: datetime) -> dict[str, pa.Array]:
    """``date`` (and ``hour``) of each row. Lifetime rows have no time dimension: their
    ``date`` is the UTC day of the extraction, the day the totals were read."""
    if spec.time_dimension is None:
        day = pa.scalar(extracted_at.astimezone(UTC).date(), pa.date32())
        return {"date": pa.repeat(day, len(table))}
    labels = table.column(spec.time_dimension)
    columns = {"date": _dates(labels, spec.time_dimension)}
    if spec.granularity == "hour":
        try:
            hours = pc.cast(pc.utf8_slice_codeunits(labels, 11, 13), pa.int64())
        except pa.ArrowInvalid as exc:
            raise NormalizationError(f"stat_time_hour has no hour ({exc})") from None
        columns["hour"] = hours.combine_chunks() if isinstance(hours, pa.ChunkedArray) else hours
    return columns


def page_reader(
    spec: ReportSpec, metrics: list[str]
) -> Callable[[bytes], tuple[dict[str, Any], native.NativeRows] | None]:
    """A reader of raw report bodies straight into typed columns (see ``controller.tiktok.native``).

    It returns None for a body it does not read exactly as ``page_to_table`` would type the
    JSON (or when the library is not built): the caller then decodes the body as JSON.
    """
    layout = native.Layout(
        (
            *((native.DIMENSIONS, native.STRING, d) for d in spec.dimensions),
            *((native.METRICS, _NATIVE_KINDS[spec.metric_type(m)], m) for m in metrics),
        )
    )
    return partial(native.read_columns, layout)


def page_to_table(
    spec: ReportSpec,
    metrics: list[str],
    rows: list[dict[str, Any]] | native.NativeRows,
    odd: OddValues | None = None,
) -> pa.Table:
    """Type one page of rows holding ``metrics`` (all, or one group of the level's metrics).

    ``rows`` are the decoded JSON rows, or the columns ``page_reader`` already typed (which
    parsed exactly, so hold no odd value). Attribute values that do not fit load as null and
    are counted in ``odd``; without ``odd`` they fail the page like a metric.
    """
    names = spec.dimensions
    if isinstance(rows, native.NativeRows):
        dimension_columns = rows.arrays[: len(names)]
        values = rows.arrays[len(names) :]
        metric_columns = dict(zip(metrics, values, strict=True))
    else:
        dimensions = [_part(row, "dimensions") for row in rows]
        dimension_columns = [
            _typed(name, [d.get(name) for d in dimensions], MetricType.STRING)
            if name == spec.id_dimension
            else _strings([d.get(name) for d in dimensions])
            for name in names
        ]
        metric_rows = [_part(row, "metrics") for row in rows]
        metric_columns = _metric_columns(spec, metrics, metric_rows, odd)
    columns: dict[str, pa.Array] = {}
    for name, column in zip(names, dimension_columns, strict=True):
        if column.null_count:
            raise NormalizationError(f"a row has no {name} dimension")
        columns[name] = column
    columns.update(metric_columns)
    return pa.table(columns)


def _part(row: Any, name: str) -> dict[str, Any]:
    """A row's ``dimensions`` or ``metrics`` object (absent or null: empty); anything else
    is no report row, and fails its page with a clear error rather than an AttributeError."""
    part = row.get(name) if isinstance(row, dict) else row
    if part is None:
        return {}
    if not isinstance(part, dict):
        shown = _shown(orjson.dumps(row).decode() if isinstance(row, dict | list) else str(row))
        raise NormalizationError(f"a report row without a {name} object: {shown}")
    return part


def gmv_max_rows(spec: ReportSpec, table: pa.Table, store_id: str) -> pa.Table:
    """A GMV Max page's rows with the store they were asked for (one store per request),
    their metrics under the table's column names."""
    if spec.renamed:
        table = table.rename_columns([spec.column(name) for name in table.column_names])
    return table.append_column(STORE_ID, pa.repeat(pa.scalar(store_id, pa.string()), len(table)))


def _schema(spec: ReportSpec) -> pa.Schema:
    """``arrow_schema(spec)``, built once per report (it is asked for on every page)."""
    cached = _schemas.get(spec.report_type)
    if cached is None or cached[0] is not spec:
        cached = _schemas[spec.report_type] = (spec, arrow_schema(spec))
    return cached[1]


def finish(
    spec: ReportSpec, table: pa.Table, advertiser_id: str, extracted_at: datetime
) -> pa.Table:
    """Add ``date`` and the bookkeeping columns, and give the table the report's exact schema."""
    count = len(table)
    added = {
        **_time_columns(spec, table, extracted_at),
        "_advertiser_id": pa.repeat(pa.scalar(advertiser_id, pa.string()), count),
        "_extracted_at": pa.repeat(pa.scalar(extracted_at, _EXTRACTED_AT), count),
        "_report_type": pa.repeat(pa.scalar(spec.report_type, pa.string()), count),
    }
    schema = _schema(spec)
    # One dict of the columns: looking each of ~100 up by name would scan the names each time.
    present = dict(zip(table.column_names, table.columns, strict=True))
    present.update(added)
    columns = [
        present.get(field.name)
        or pa.nulls(count, field.type)  # nulls: a group TikTok sent no row for
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def key_fingerprints(table: pa.Table, dimensions: Sequence[str]) -> pa.Array:
    """One 64-bit fingerprint of each row's dimensions, to find a key a request listed twice.

    Eight bytes a row, not the key's ~40 (an ad id and a day as strings), so checking a
    whole chunk's pages stays small beside the pages themselves. Python's string hash (a
    keyed SipHash, the same within a process): two different keys of a 30-day chunk of
    20,000 ads a day share one with odds of ~1 in 10^7. Arrow has no row hash kernel.
    """
    columns = [table.column(name) for name in dimensions if name in table.column_names]
    if not columns:  # no key to tell rows apart by: nothing to check
        return pa.array([], pa.int64())
    strings = [c if pa.types.is_string(c.type) else pc.cast(c, pa.string()) for c in columns]
    joined = strings[0] if len(strings) == 1 else pc.binary_join_element_wise(*strings, "\x1f")
    return pa.array(list(map(hash, joined.to_pylist())), pa.int64())


def repeated_keys(fingerprints: list[pa.Array]) -> int:
    """How many rows repeat a key listed before them (0: every key once)."""
    rows = sum(len(part) for part in fingerprints)
    if rows < 2:
        return 0
    return rows - pc.count_distinct(pa.chunked_array(fingerprints, pa.int64())).as_py()


def join_metric_groups(spec: ReportSpec, parts: list[pa.Table]) -> pa.Table:
    """Join the tables of requests that split one level's metrics, on the dimensions.

    A full outer join: TikTok omits rows without delivery per request, so a row may be
    present in one part only. Columns: the first part's, then each next part's metrics.

    Not ``Table.join``: Acero's hash join hands back ~190 KB of buffers per column whatever
    the row count (50 MB for a 40-row chunk of 270 columns) and costs ~18 ms. The file writer
    gathers chunks until its row group fills, so a backfill unit of small accounts held 5+ GB
    of those buffers. Here each row's dimensions become one integer code (the columns'
    dictionary codes, combined), and every part is ``take``n at its codes' positions: exact-
    size buffers, a few ms. Parts with a dimension repeated (Acero would pair every repeat)
    or with differing key types keep Acero's join, copied into exact-size buffers.
    """
    if len(parts) == 1:
        return parts[0]
    keys = list(spec.dimensions)
    joined = _join_on_codes(parts, keys)
    if joined is not None:
        return joined
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.join(part, keys=keys, join_type="full outer", coalesce_keys=True)
    return joined.take(pa.array(range(len(joined)), pa.int64()))  # copies: exact-size buffers


def _join_on_codes(parts: list[pa.Table], keys: list[str]) -> pa.Table | None:
    """The full outer join of ``parts`` on ``keys``, or None when a part repeats a key,
    the key types differ or two parts share a metric."""
    metric_names = [name for part in parts for name in part.column_names if name not in keys]
    if len(set(metric_names)) != len(metric_names):
        return None
    try:
        all_keys = pa.concat_tables([part.select(keys) for part in parts])
    except (pa.ArrowInvalid, KeyError):
        return None
    codes = _row_codes(all_keys)
    offsets = [0]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    part_codes = [codes.slice(a, b - a) for a, b in pairwise(offsets)]
    if any(pc.count_distinct(c).as_py() != len(c) for c in part_codes):
        return None
    if all(own.equals(part_codes[0]) for own in part_codes[1:]):
        # The usual answer: every request listed the same rows in the same order.
        shared = dict(zip(parts[0].column_names, parts[0].columns, strict=True))
        for part in parts[1:]:
            named = zip(part.column_names, part.columns, strict=True)
            shared.update((name, column) for name, column in named if name not in keys)
        return pa.table(shared)
    unique = pc.unique(codes)  # in order of first appearance
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    key_rows = all_keys.take(pc.index_in(unique, value_set=codes))
    for part, own in zip(parts, part_codes, strict=True):
        rows = pc.index_in(unique, value_set=own)  # null where the part has no such row
        for name, column in zip(part.column_names, part.columns, strict=True):
            if name in keys:
                columns.setdefault(name, key_rows.column(name))
            else:
                columns[name] = column.take(rows)
    return pa.table(columns)


def _row_codes(key_table: pa.Table) -> pa.Array:
    """One int64 per row, equal for rows with equal keys (dimensions are never null)."""
    codes: pa.Array | None = None
    for column in key_table.columns:
        encoded = pc.dictionary_encode(column.combine_chunks())
        own = pc.cast(encoded.indices, pa.int64())
        if codes is None:
            codes = own
            continue
        combined = pc.add(pc.multiply(codes, len(encoded.dictionary)), own)
        codes = pc.cast(pc.dictionary_encode(combined).indices, pa.int64())  # stays < rows
    assert codes is not None
    return codes


def without_creatives(table: pa.Table, known: Collection[str] = ()) -> tuple[pa.Table, list[str]]:
    """``table`` without the ``ad_id`` rows of Upgraded Smart+ campaigns, and the campaigns
    newly seen as such, whose ads are then read by ``ad_id_v2``
    (docs/tiktok_api_gmv_smartplus.md §2). A campaign is Upgraded Smart+ when one of its rows
    is a creative (``campaign_automation_type`` ``UPGRADED_SMART_PLUS_CREATIVE``) or it is in
    ``known`` (seen on an earlier page): all of its rows go, also one TikTok sent without the
    type or with another, since its ``ad_id_v2`` read covers the whole campaign (kept, such a
    row would count twice). A table without ``campaign_automation_type`` or ``campaign_id``
    (TikTok refused them) is kept whole: creatives then stay rows, as before Upgraded Smart+
    existed."""
    if not len(table) or not {"campaign_automation_type", "campaign_id"} <= set(table.column_names):
        return table, []
    creative = pc.fill_null(
        pc.equal(table.column("campaign_automation_type"), SMART_PLUS_CREATIVES), False
    )
    campaigns = pc.unique(table.column("campaign_id").filter(creative)).drop_null().to_pylist()
    smart_plus = pa.array(sorted({*campaigns, *known}), pa.string())
    if not len(smart_plus):
        return table, []
    dropped = pc.fill_null(pc.is_in(table.column("campaign_id"), value_set=smart_plus), False)
    return table.filter(pc.invert(dropped)), sorted(set(campaigns) - set(known))


def of_campaigns(table: pa.Table, campaigns: Collection[str]) -> pa.Table:
    """The rows of ``table`` (read by ``ad_id_v2`` for ``campaigns``) that belong to them:
    an ``ad_id_v2`` row of another campaign (a classic ad, whose ``ad_id_v2`` is its
    ``ad_id``) is already a row of the ``ad_id`` read and would count twice."""
    if not len(table) or "campaign_id" not in table.column_names:
        return table
    asked = pa.array(sorted(campaigns), pa.string())
    return table.filter(pc.fill_null(pc.is_in(table.column("campaign_id"), value_set=asked), False))


def ad_rows(table: pa.Table, metrics: list[str]) -> pa.Table:
    """A page read by ``ad_id_v2`` as rows of the ad level: its ``ad_id`` is the ad's
    ``ad_id_v2`` (an Upgraded Smart+ ad has no ``ad_id`` of its own; its creatives do), and
    ``ad_id_v2`` a column only where the metric group holds it (groups are joined on the
    dimensions, so no two may share a column)."""
    ids = table.column(SMART_PLUS_AD_ID)
    table = table.drop_columns([SMART_PLUS_AD_ID]).add_column(0, "ad_id", ids)
    if SMART_PLUS_AD_ID in metrics:
        table = table.append_column(SMART_PLUS_AD_ID, ids)
    return table
