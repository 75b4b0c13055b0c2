"""Arrow's C++ code allocates from the system pool in the service and the CSV tool.

Arrow chooses ``arrow::default_memory_pool()`` once, when pyarrow loads, from
``ARROW_DEFAULT_MEMORY_POOL``; left to mimalloc, a 1M-row run's peak held ~100 MiB more
than a 100k-row run's (``config/allocators.py``). Each entry point is imported in a fresh
interpreter, as gunicorn (``main:app``) and ``python run_local_csv.py`` do, so the import
order that sets the variable is what is tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )


@pytest.mark.parametrize("entry_point", ["main", "run_local_csv"])
def test_entry_point_puts_arrow_on_the_system_allocator(entry_point: str) -> None:
    done = _fresh(
        f"import {entry_point}, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    )
    assert done.stdout.strip() == "system"


def test_pyarrow_loaded_first_is_named_in_a_warning() -> None:
    code = (
        "import logging, pyarrow\n"
        "logging.basicConfig(format='%(levelname)s %(message)s')\n"
        "from config.allocators import tune_allocators\n"
        "tune_allocators()\n"
    )
    done = _fresh(code)
    assert done.stderr.strip() == (
        "WARNING Arrow's C++ code allocates from mimalloc: pyarrow was imported before"
        " config.allocators, so peak memory may grow with a run"
    )
