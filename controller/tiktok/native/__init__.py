"""The native page reader: a TikTok report body → typed Arrow columns in one C pass.

Why native code: see ``tiktok_rows.c``. It is optional. ``read_columns`` returns None when
the library is not built or the body is anything but the plain shape it handles exactly, and
the caller then reads the page with orjson + pyarrow (``controller.tiktok.reader``), with the
same result. ``python -m controller.tiktok.native`` builds it (``make`` and the Dockerfile do);
plain ctypes, so it needs a C compiler and no Python headers. ``make fuzz`` (``fuzz/``)
checks the promise: a sanitizer build of the reader against the fallback on mutated bodies.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from controller.tiktok.native.build import LIBRARY, source_hash

log = logging.getLogger(__name__)


_OK, _FALLBACK, _NOMEM = 0, 1, 2
# TikTok's page_size is at most 1,000: a body with more rows is not a page it sends, and is
# declined before it can make the reader hold more than one page's columns.
MAX_ROWS = 1000
MAX_COLUMNS = 512  # the C reader's name table holds this many
STRING, INT64, FLOAT64 = 0, 1, 2
_ARROW = {STRING: pa.string(), INT64: pa.int64(), FLOAT64: pa.float64()}
DIMENSIONS, METRICS = 0, 1


class _Column(ctypes.Structure):
    _fields_ = [
        ("null_count", ctypes.c_int64),
        ("valid", ctypes.c_void_p),
        ("data", ctypes.c_void_p),
        ("data_len", ctypes.c_int64),
        ("offsets", ctypes.c_void_p),
    ]


class _Reader(ctypes.Structure):
    _fields_ = [
        ("rows", ctypes.c_int64),
        ("span_count", ctypes.c_int32),
        ("spans", (ctypes.c_int64 * 5) * 32),
        ("has_list", ctypes.c_int32),
        ("has_data", ctypes.c_int32),
        ("block_values", ctypes.c_void_p * 2),
        ("block_valid", ctypes.c_void_p * 2),
        ("block_nulls", ctypes.c_int64 * 2),
    ]


_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_loaded = False


def library() -> ctypes.CDLL | None:
    """The loaded library, or None (logged once) when it is not built or older than its source."""
    global _library, _loaded
    with _lock:
        if _loaded:
            return _library
        _loaded = True
        _library = _load(LIBRARY)
        return _library


def use_library(path: Path) -> ctypes.CDLL:
    """Read pages with the build at ``path`` from now on (the fuzzer's sanitizer build)."""
    global _library, _loaded
    with _lock:
        lib = _load(path)
        if lib is None:
            raise RuntimeError(f"{path}: not built from the current tiktok_rows.c")
        _library, _loaded = lib, True
        return lib


def _load(path: Path) -> ctypes.CDLL | None:
    """The build at ``path`` with its signatures declared, or None when missing or stale."""
    lib = ctypes.CDLL(str(path)) if path.exists() else None
    if lib is not None:
        lib.tt_source_hash.restype = ctypes.c_char_p
    if lib is None or lib.tt_source_hash().decode() != source_hash():
        log.warning(
            "native page reader not built or older than its source "
            "(python -m controller.tiktok.native): pages are read by the slower orjson path"
        )
        return None
    lib.tt_new.restype = ctypes.POINTER(_Reader)
    lib.tt_new.argtypes = [ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int64]
    lib.tt_parse.restype = ctypes.c_int32
    lib.tt_parse.argtypes = [ctypes.POINTER(_Reader), ctypes.c_char_p, ctypes.c_int64]
    lib.tt_column_at.restype = ctypes.POINTER(_Column)
    lib.tt_column_at.argtypes = [ctypes.POINTER(_Reader), ctypes.c_int32]
    lib.tt_finish.restype = ctypes.c_int32
    lib.tt_finish.argtypes = [ctypes.POINTER(_Reader)]
    lib.tt_free.restype = None
    lib.tt_free.argtypes = [ctypes.POINTER(_Reader)]
    return lib


@dataclass(frozen=True)
class Layout:
    """The columns to read: (section, kind, name) each, in output order."""

    columns: tuple[tuple[int, int, str], ...]

    @cached_property
    def encoded(self) -> bytes:
        """The spec ``tt_new`` reads (built once: it is asked for on every page)."""
        return b"".join(
            f"{section}{kind}{name}".encode() + b"\0" for section, kind, name in self.columns
        )

    @cached_property
    def numeric_members(self) -> dict[int, list[int]]:
        """Positions of the int64 and the double columns, in order: their blocks' slices."""
        return {
            kind: [i for i, (_, k, _) in enumerate(self.columns) if k == kind]
            for kind in (INT64, FLOAT64)
        }


@dataclass(frozen=True)
class NativeRows:
    """A page's rows as typed columns, in ``Layout`` order."""

    arrays: list[pa.Array]

    def __len__(self) -> int:
        return len(self.arrays[0]) if self.arrays else 0


def read_columns(layout: Layout, body: bytes) -> tuple[dict[str, Any], NativeRows] | None:
    """(the envelope without ``data.list``, the rows) of a body, or None to read it in Python."""
    lib = library()
    if lib is None or len(layout.columns) > MAX_COLUMNS:
        return None
    spec = layout.encoded
    reader = lib.tt_new(spec, len(spec), len(layout.columns), MAX_ROWS)
    if not reader:
        raise MemoryError("native page reader: out of memory")
    try:
        status = lib.tt_parse(reader, body, len(body))
        if status == _OK:
            status = lib.tt_finish(reader)
        if status == _NOMEM:
            raise MemoryError("native page reader: out of memory")
        if status != _OK:
            return None
        state = reader.contents
        envelope = _envelope(state, body)
        if envelope is None:
            return None
        arrays = _arrays(lib, reader, layout, state)
    finally:
        lib.tt_free(reader)
    if arrays is None:
        return None
    return envelope, NativeRows(arrays)


def _arrays(lib: ctypes.CDLL, reader: Any, layout: Layout, state: _Reader) -> list | None:
    """Arrow arrays in layout order: slices of one block per numeric type, strings one by one."""
    rows = state.rows
    if rows == 0:
        return [pa.array([], _ARROW[kind]) for _, kind, _ in layout.columns]
    arrays: list[pa.Array | None] = [None] * len(layout.columns)
    for block, kind in enumerate((INT64, FLOAT64)):
        members = layout.numeric_members[kind]
        if not members:
            continue
        cells = rows * len(members)
        values = pa.py_buffer(ctypes.string_at(state.block_values[block], cells * 8))
        validity = pa.py_buffer(ctypes.string_at(state.block_valid[block], (cells + 7) // 8))
        whole = pa.Array.from_buffers(
            _ARROW[kind], cells, [validity, values], state.block_nulls[block]
        )
        for j, i in enumerate(members):
            arrays[i] = whole.slice(j * rows, rows)
    for i, (_, kind, _) in enumerate(layout.columns):
        if kind == STRING:
            arrays[i] = _strings(lib.tt_column_at(reader, i).contents, rows)
    return arrays


def _envelope(state: _Reader, body: bytes) -> dict[str, Any] | None:
    """The body's other members, or None to decline: a repeated key (orjson keeps the last
    one; the spans lose their order against ``data`` and ``list``, so it is not guessed)."""
    top: dict[str, Any] = {}
    data: dict[str, Any] = {}
    try:
        for i in range(state.span_count):
            in_data, key_at, key_len, value_at, value_len = state.spans[i]
            key = body[key_at : key_at + key_len].decode()
            members = data if in_data else top
            if key in members:
                return None
            members[key] = orjson.loads(body[value_at : value_at + value_len])
    except (UnicodeDecodeError, orjson.JSONDecodeError):
        return None
    if state.has_data:
        if "data" in top:
            return None
        top["data"] = data
    return top


def _strings(column: _Column, rows: int) -> pa.Array:
    """Copy a string column into Arrow (the C reader checked it is UTF-8, as orjson would)."""
    validity = None
    if column.null_count:
        validity = pa.py_buffer(ctypes.string_at(column.valid, (rows + 7) // 8))
    offsets = ctypes.string_at(column.offsets, (rows + 1) * 4)
    size = int.from_bytes(offsets[-4:], sys.byteorder)
    data = ctypes.string_at(column.data, size) if size else b""
    return pa.Array.from_buffers(
        pa.string(), rows, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], column.null_count
    )
