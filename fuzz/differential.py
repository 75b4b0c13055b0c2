"""Both readers of a report body, side by side: the native reader's promise as a check.

``controller.tiktok.native`` promises to type a body exactly as orjson + pyarrow do
(``decode_json`` → ``page_to_table`` → ``finish``) or to decline it. ``compare`` runs both
paths on one body for several column layouts and says how they differ, if they do: a body
orjson refuses but the native reader accepts, another envelope, other columns (floats
compared by their bits, so -0.0 is not 0.0), or another error (class and message). A
declined body is never a mismatch: the caller then reads it in Python anyway.

Used by the fuzz target (``fuzz/target.py``, sanitizer build) and by the regression tests
(``tests/test_native_reader.py``, the normal build) on the fixed corpus.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson
import pyarrow as pa

from controller.reports import registry
from controller.reports.catalog import REPORTS, ReportSpec
from controller.tiktok import native
from controller.tiktok.client import decode_json
from controller.tiktok.reader import finish, page_reader, page_to_table

EXTRACTED_AT = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
ADVERTISER = "7000000000000000001"


@dataclass(frozen=True)
class Case:
    """One column layout a body is read with: a level and the metrics asked for."""

    name: str
    spec: ReportSpec
    metrics: tuple[str, ...]

    @cached_property
    def read(self) -> Callable[[bytes], tuple[dict[str, Any], native.NativeRows] | None]:
        return page_reader(self.spec, list(self.metrics))


# Besides the four levels: a report with breakdown dimensions, an hourly and a lifetime one.
OTHER_REPORTS = ("ad_age_gender", "ad_hourly", "ad_lifetime")


def _cases() -> tuple[Case, ...]:
    specs = {**REPORTS, **{name: registry.get(name) for name in OTHER_REPORTS}}
    cases = [Case(f"{name}/all", spec, tuple(spec.metric_names)) for name, spec in specs.items()]
    ad = REPORTS["ad"]
    cases.append(Case("ad/issue-14", ad, ("spend", "impressions")))
    mixed = ("campaign_name", "campaign_id", "spend", "impressions", "clicks", "ctr", "conversion")
    cases.append(Case("ad/mixed", ad, tuple(m for m in mixed if m in ad.metric_names)))
    return tuple(cases)


CASES = _cases()


def _float_bits(value: Any) -> Any:
    return None if value is None else struct.pack("<d", value).hex()


def _comparable(table: pa.Table) -> tuple:
    """The table as plain values, doubles as their bit patterns."""
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        values = column.to_pylist()
        if pa.types.is_floating(field.type):
            values = [_float_bits(v) for v in values]
        columns.append((field.name, str(field.type), values))
    return tuple(columns)


def _outcome(case: Case, rows: Any) -> tuple:
    """``page_to_table`` + ``finish`` as the service runs them: the columns, or the error."""
    try:
        table = page_to_table(case.spec, list(case.metrics), rows)
        return ("table", _comparable(finish(case.spec, table, ADVERTISER, EXTRACTED_AT)))
    except Exception as exc:  # any error: its class and text must be the same on both paths
        return ("error", type(exc).__name__, str(exc))


def _check_arrays(rows: native.NativeRows) -> str | None:
    for array in rows.arrays:
        try:
            array.validate(full=True)  # offsets, bitmaps, UTF-8: what C wrote by hand
        except pa.ArrowInvalid as exc:
            return f"native array invalid: {exc}"
    return None


def compare_case(case: Case, body: bytes, python: tuple | None = None) -> str | None:
    """How the two paths differ on ``body`` read as ``case`` (None: the same, or declined)."""
    read = case.read(body)
    if read is None:
        return None
    envelope, rows = read
    try:
        expected_envelope, expected_rows = decode_json(body)
    except orjson.JSONDecodeError as exc:
        return f"{case.name}: native read a body orjson refuses ({exc}): {len(rows)} rows"
    if envelope != expected_envelope:
        return f"{case.name}: envelope {envelope!r} != {expected_envelope!r}"
    invalid = _check_arrays(rows)
    if invalid:
        return f"{case.name}: {invalid}"
    got, expected = _outcome(case, rows), _outcome(case, expected_rows)
    if got != expected:
        return f"{case.name}: native {_brief(got)} != fallback {_brief(expected)}"
    return None


def relevant(case: Case, body: bytes) -> bool:
    """Whether the fuzzer reads ``body`` as ``case``: the small ad-level layouts always; a
    report's full layout (~100 metrics: ~50 ms in the Python path) when the body names all
    its dimensions, so its rows could be read (otherwise both paths just miss a dimension)."""
    if len(case.metrics) < 10:
        return True
    return all(b'"' + name.encode() + b'"' in body for name in case.spec.dimensions)


def compare(body: bytes, every_layout: bool = True) -> str | None:
    """The first difference between the paths on ``body``, or None: over every layout, or
    (the fuzzer, for speed) over the relevant ones."""
    for case in CASES:
        if every_layout or relevant(case, body):
            mismatch = compare_case(case, body)
            if mismatch:
                return mismatch
    return None


def declined(body: bytes) -> list[str]:
    """The layouts whose native read declines ``body`` (for the decline-rate figures)."""
    return [case.name for case in CASES if case.read(body) is None]


def _brief(outcome: tuple, limit: int = 600) -> str:
    text = repr(outcome)
    return text if len(text) <= limit else text[:limit] + "…"


def minimize(
    body: bytes, fails: Callable[[bytes], bool] | None = None, budget_seconds: float = 60
) -> bytes:
    """A smaller body that still fails (delta debugging: drop chunks, halving their size)."""
    fails = fails or (lambda candidate: compare(candidate) is not None)
    deadline = time.monotonic() + budget_seconds
    best, chunk = body, max(1, len(body) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        start, shrunk = 0, False
        while start < len(best) and time.monotonic() < deadline:
            candidate = best[:start] + best[start + chunk :]
            if candidate != best and fails(candidate):
                best, shrunk = candidate, True
            else:
                start += chunk
        if not shrunk:
            chunk //= 2
    return best
