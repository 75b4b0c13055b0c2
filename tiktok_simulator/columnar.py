"""A report page rendered in columns: the same text as ``compiled``, at a fraction of the CPU.

``compiled`` renders one row at a time in Python, ~0.3 µs a metric value: a 1,000-row page
of 100 metrics took ~35 ms, so the simulator served ~30 pages/s and was the bottleneck of
every benchmark at the default width. Here the same formulas (``metrics.Formula``: the
registry stays the one definition) run once per *column* of the page: numpy for the integer
arithmetic (int64 and uint64 follow Python's ``//``, ``%`` and 64-bit wrap-around), pyarrow
for the integer → text conversions and for joining each row's JSON, and the rows' JSON is
handed to the envelope as one ``orjson.Fragment``.

The text must equal what ``report.ReportBuilder.rows`` serves byte for byte (tests compare
both for many query shapes). Values that could overflow int64 (sums far beyond any
simulated account) raise ``Unfit``: the caller then renders with the reference path.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .compiled import D2
from .metrics import (
    METRICS,
    AttributeOf,
    Base,
    Constant,
    CountOf,
    Difference,
    Formula,
    MoneyOf,
    Ratio,
)
from .settlement import attributed_per_mille, delivery_per_mille, is_attributed
from .world import GOLDEN, HOUR_SALT, VALUE_SALT, WEIGHT_SALT

# Bases above this make ``2 * num * mult + den`` in a ratio risk int64 overflow.
SAFE_BASE = 1 << 40
_CENTS = pa.array([f".{d}" for d in D2] + [""], pa.string())
_U20 = np.uint64(20)

Columns = dict[str, np.ndarray]
Piece = str | pa.Array  # literal JSON text, or one text per row


class Unfit(Exception):
    """The page's values do not fit the int64 arithmetic: render it with ``compiled``."""


def mix64(x: np.ndarray) -> np.ndarray:
    """``world.mix64`` of a uint64 column (uint64 arithmetic wraps like its ``& M64``)."""
    x = x + np.uint64(GOLDEN)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def value_hashes(day_hashes: np.ndarray) -> np.ndarray:
    """``world.value_hash`` of many ad-day hashes."""
    return mix64(day_hashes ^ np.uint64(VALUE_SALT))


def day_hashes(
    window: tuple[int, int, int], ad_keys: np.ndarray, days: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``world.day_hash`` of many ad-days: (hashes, whether each ad-day delivered);
    ``window`` is ``world.delivery_window``."""
    first, last, threshold = window
    hashes = mix64(ad_keys ^ (days.astype(np.uint64) * np.uint64(GOLDEN)))
    delivered = (days >= first) & (days <= last)
    if threshold < 1 << 64:
        delivered &= hashes < np.uint64(threshold)
    return hashes, delivered


def hour_shares(
    hashes: np.ndarray, hours: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``world.hour_split`` of many ad-days, read at one hour each: (whether the ad-day
    delivered in that hour, cumulative weight before it, up to its end, of the whole day)."""
    hm = mix64(hashes ^ np.uint64(HOUR_SALT))
    always = (hm >> np.uint64(59)) % np.uint64(24)  # never an empty day
    mask = (hm & np.uint64(0xFFFFFF)) | (np.uint64(1) << always)
    hw = mix64(hashes ^ np.uint64(WEIGHT_SALT))
    shifts = np.arange(24, dtype=np.uint64)
    on = ((mask[:, None] >> shifts) & np.uint64(1)).astype(np.int64)
    weights = (1 + ((hw[:, None] >> (2 * shifts)) & np.uint64(3)).astype(np.int64)) * on
    cumulative = np.zeros((len(hashes), 25), np.int64)
    np.cumsum(weights, axis=1, out=cumulative[:, 1:])
    rows = np.arange(len(hashes))
    in_hour = on[rows, hours].astype(bool)
    return in_hour, cumulative[rows, hours], cumulative[rows, hours + 1], cumulative[:, 24]


def settle_columns(columns: Columns, ages: np.ndarray, window: int) -> None:
    """``settlement.settler`` in place: each ad-day's bases as they stood ``ages`` days after
    it (final from ``max(window, 2)`` days on)."""
    young = ages < max(window, 2)
    if not young.any():
        return
    distinct, which = np.unique(ages[young], return_inverse=True)
    attributed = np.array([attributed_per_mille(int(a), window) for a in distinct])[which]
    delivery = np.array([delivery_per_mille(int(a)) for a in distinct])[which]
    for name, column in columns.items():
        per_mille = attributed if is_attributed(name) else delivery
        column[young] = column[young] * per_mille // 1000


def bases_from_hashes(plan: tuple[Base, ...], hv: np.ndarray, scale: np.ndarray) -> Columns:
    """``compiled.generator_for(plan)`` for many ad-days at once: each base's draw from the
    ad-day value hash ``hv`` (uint64), scaled by the ad (a root base) or per mille of its
    basis (a derived one)."""
    columns: Columns = {}
    for base in plan:
        salted = (hv * np.uint64(base.salt)) >> _U20  # uint64 wraps like ``& M64``
        draw = (salted % np.uint64(base.hi - base.lo + 1)).astype(np.int64) + base.lo
        if base.basis is None:
            columns[base.name] = draw * scale
        else:
            columns[base.name] = columns[base.basis] * draw // 1000
    return columns


@dataclass(frozen=True)
class Distinct:
    """A column given as its distinct values and, per row, which one it holds: a page's
    1,000 rows are a few dozen ads over a few dozen days, so each value is encoded once."""

    values: Sequence[Any]
    index: np.ndarray  # intp, one per row

    @classmethod
    def of(cls, column: np.ndarray) -> Distinct:
        values, index = np.unique(column, return_inverse=True)
        return cls(values.tolist(), index)

    def json(self, pick: Callable[[Any], Any] = lambda value: value) -> pa.Array:
        """Each row's ``pick(value)`` as orjson writes it (escapes and quotes included)."""
        texts = pa.array([_json(pick(value)) for value in self.values], pa.string())
        return texts.take(pa.array(self.index))


def page_json(
    names: Sequence[str],
    dimensions: Sequence[tuple[str, Distinct]],
    bases: Columns,
    attributes: Distinct,
    words: dict[str, str],
) -> bytes:
    """The JSON list of a page's rows: ``{"dimensions": {...}, "metrics": {...}}`` each.

    ``dimensions``: (name, its values) in the query's order; ``bases``: one int64 column per
    base the metrics read; ``attributes``: each row's entity attributes (dicts, by position
    in ``values``); ``words``: metrics served as a word (the ``worded_metrics`` setting).
    """
    if len(attributes.index) == 0:
        return b"[]"
    if any(len(c) and int(np.abs(c).max()) >= SAFE_BASE for c in bases.values()):
        raise Unfit("a base is too large for int64 arithmetic")
    numbers = _Numbers(len(attributes.index))
    pieces: list[Piece | _Slot] = ['{"dimensions":{']
    for i, (name, values) in enumerate(dimensions):
        pieces += [("," if i else "") + _key(name), values.json()]
    pieces.append('},"metrics":{')
    for i, name in enumerate(names):
        pieces.append(("," if i else "") + _key(name))
        if name in words:
            pieces.append(_json(words[name]))
        else:
            pieces += _metric_pieces(METRICS[name].formula, bases, attributes, numbers)
    pieces.append("}},")
    joined = pc.binary_join_element_wise(*_merged(numbers.resolve(pieces, bases)), "")
    return b"".join((b"[", _concatenated(joined)[:-1], b"]"))  # each row ends with ","


@dataclass(frozen=True)
class _Slot:
    """Where a column of number texts goes once the page's numbers are written (together)."""

    kind: str  # "integer", or a two-decimal number's "units" and "cents" (".NN", or "")
    column: int


class _Numbers:
    """Every number of a page computed and written at once: the ratios as one matrix, one
    conversion to text for all the columns (a call into numpy or pyarrow costs more than
    the work on a column of 1,000 values)."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.integers: list[np.ndarray] = []
        self.hundredths: list[np.ndarray | None] = []  # None: a ratio, computed in ``resolve``
        self.ratios: list[tuple[int, Ratio]] = []

    def integer(self, values: np.ndarray) -> list[Piece | _Slot]:
        self.integers.append(values)
        return ['"', _Slot("integer", len(self.integers) - 1), '"']

    def two_decimals(self, hundredths: np.ndarray | None) -> list[Piece | _Slot]:
        """``f'{h // 100}.{D2[h % 100]}'`` (Python's floor division, negatives included)."""
        self.hundredths.append(hundredths)
        column = len(self.hundredths) - 1
        return ['"', _Slot("units", column), _Slot("cents", column), '"']

    def ratio(self, formula: Ratio) -> list[Piece | _Slot]:
        """``num * mult / den`` in hundredths, rounded half up; ``formula.zero`` if den is 0."""
        self.ratios.append((len(self.hundredths), formula))
        return self.two_decimals(None)

    def resolve(self, pieces: list[Piece | _Slot], bases: Columns) -> list[Piece]:
        """``pieces`` with each slot replaced by its column of texts."""
        rows, whole = self.rows, len(self.integers)
        zeros: dict[str, list[tuple[int, np.ndarray]]] = {}  # text -> (column, rows) it fills
        if self.ratios:
            num = np.stack([bases[f.num] for _, f in self.ratios])
            den = np.stack([bases[f.den] for _, f in self.ratios])
            mult = np.array([f.mult for _, f in self.ratios], np.int64)[:, None]
            some = den != 0
            safe = np.where(some, den, 1)
            # Without a denominator: 0 (the zero text "0.00" is 0's text), or a zero text.
            hundredths = np.where(some, (2 * num * mult + safe) // (2 * safe), 0)
            for k, (column, formula) in enumerate(self.ratios):
                self.hundredths[column] = hundredths[k]
                if formula.zero != "0.00":
                    zeros.setdefault(formula.zero, []).append((column, ~some[k]))
        decimals = np.concatenate(self.hundredths) if self.hundredths else np.zeros(0, np.int64)
        units = pc.cast(pa.array(np.concatenate([*self.integers, decimals // 100])), pa.string())
        cents = decimals % 100
        for zero, columns in zeros.items():
            written = np.zeros(len(units), bool)
            for column, none in columns:
                written[(whole + column) * rows : (whole + column + 1) * rows] = none
                cents[column * rows : (column + 1) * rows][none] = len(D2)  # "": zero text only
            units = pc.if_else(pa.array(written), zero, units)
        texts = {"integer": units, "units": units, "cents": _CENTS.take(pa.array(cents))}
        start = {"integer": 0, "units": whole, "cents": 0}
        return [
            texts[p.kind].slice((start[p.kind] + p.column) * rows, rows)
            if isinstance(p, _Slot)
            else p
            for p in pieces
        ]


def _metric_pieces(
    formula: Formula, bases: Columns, attributes: Distinct, numbers: _Numbers
) -> list[Piece | _Slot]:
    """One metric's JSON value on every row: ``compiled``'s statements, by columns."""
    if isinstance(formula, CountOf):
        return numbers.integer(bases[formula.base])
    if isinstance(formula, MoneyOf):
        return numbers.two_decimals(bases[formula.base])
    if isinstance(formula, Difference):
        return numbers.two_decimals(bases[formula.plus] - bases[formula.minus])
    if isinstance(formula, Ratio):
        return numbers.ratio(formula)
    if isinstance(formula, Constant):
        return [_json(formula.text)]
    if isinstance(formula, AttributeOf):
        return [attributes.json(operator.itemgetter(formula.name))]
    raise Unfit(f"no column form for {type(formula).__name__}")


def _json(value: Any) -> str:
    """``value`` as orjson writes it; strings (names, ids, labels, attributes) remembered."""
    return _json_string(value) if isinstance(value, str) else orjson.dumps(value).decode()


@functools.lru_cache(maxsize=1 << 16)
def _json_string(value: str) -> str:
    return orjson.dumps(value).decode()


def _key(name: str) -> str:
    return _json_string(name) + ":"


def _merged(pieces: list[Piece]) -> list[Piece]:
    """Adjacent literals as one (fewer arguments to the join)."""
    merged: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def _concatenated(texts: pa.Array) -> memoryview:
    """Every text of ``texts`` one after the other: the array's data buffer, not a copy."""
    offsets = np.frombuffer(texts.buffers()[1], np.int32)
    start, end = offsets[texts.offset], offsets[texts.offset + len(texts)]
    return memoryview(texts.buffers()[2])[start:end]
