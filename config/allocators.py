"""Allocators tuned so that a long run's peak memory does not grow with its length.

Measured on one big account at the default width (``bench/memory.py``, the wide runs): the
rows a run holds are bounded (``TIKTOK_CHUNK_ROW_BOUND``), yet with the defaults the peak RSS
of the extraction grew with the days read (292 → 427 → 555 MiB over 3, 12 and 24 days of
13,500 rows, Python's heap flat, Arrow's pool never above 31 MB): memory freed by one of the
~26 threads was kept by the allocators, not given back or reused. Two changes make it flat
(189 and 200 MiB over 3 and 12 days):

* Arrow allocates from the system allocator instead of its bundled mimalloc, whose per-thread
  heaps kept what the request and decode threads freed;
* glibc keeps at most two arenas (not 8 per core, one per thread in practice) and serves
  blocks of 64 KiB and more (page bodies, Arrow buffers) with their own mappings, given back
  on free, instead of raising that threshold as it does by default after the first frees.

Arrow's own C++ code (the Parquet writer, concatenation, compute kernels) allocates from
``arrow::default_memory_pool()``, not from the pool ``pa.set_memory_pool`` sets for calls
made from Python: that pool is chosen once, when pyarrow is first imported, from
``ARROW_DEFAULT_MEMORY_POOL``. Left to mimalloc it held ~100 MiB more at the peak of 1M rows
than of 100k (4 accounts at the default width: 445 vs 273 MiB; measured with glibc's
``mallinfo2`` and ``/proc/self/smaps``: a 1 GiB mimalloc reservation with 142 MiB resident),
so this module sets the variable before it imports pyarrow, and the entry points import it
before anything else that does (``tests/test_allocators.py`` checks both).

Called once at process start (``main.create_app``, ``run_local_csv.py``); outside glibc
(macOS) only the Arrow part applies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

# Before the first import of pyarrow in the process (see above); a deployment may choose another.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import pyarrow as pa  # after the variable: Arrow reads it when it loads

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD_BYTES = 64 * 1024


def tune_allocators() -> None:
    """Arrow on the system allocator, glibc with few arenas and a fixed mmap threshold."""
    backend = pa.default_memory_pool().backend_name  # Arrow's C++ default, until set below
    pa.set_memory_pool(pa.system_memory_pool())
    if backend != os.environ["ARROW_DEFAULT_MEMORY_POOL"]:
        log.warning(
            "Arrow's C++ code allocates from %s: pyarrow was imported before config.allocators,"
            " so peak memory may grow with a run",
            backend,
        )
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not (mallopt(M_ARENA_MAX, ARENAS) and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)):
        log.warning("glibc refused the allocator settings: peak memory may grow with a run")
