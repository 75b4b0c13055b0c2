"""Build the native page reader: ``python controller/native/build.py`` (stdlib only).

Standard library only, so a Docker build stage with a compiler and no dependencies can run
it. The library embeds a hash of its source; ``controller.native`` loads it only when that
hash matches the source beside it, so an edited reader is never run from a stale build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).with_name("tiktok_rows.c")
LIBRARY = Path(__file__).with_name("libtiktok_rows.so")
FLAGS = ["-O3", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"]


def source_hash() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]


def build(compiler: str | None = None) -> Path:
    """Compile next to the source, atomically (a running service may be loading it)."""
    cc = compiler or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise RuntimeError("no C compiler found (set CC)")
    partial = LIBRARY.with_suffix(f".{os.getpid()}.tmp")
    define = f'-DTT_SOURCE_HASH="{source_hash()}"'
    subprocess.run([cc, *FLAGS, define, "-o", str(partial), str(SOURCE)], check=True)
    partial.replace(LIBRARY)
    return LIBRARY


if __name__ == "__main__":
    print(f"built {build(sys.argv[1] if len(sys.argv) > 1 else None)}")
