"""Build the native page reader: ``python controller/tiktok/native/build.py`` (stdlib only).

Standard library only, so a Docker build stage with a compiler and no dependencies can run
it. The library embeds a hash of its source; ``controller.tiktok.native`` loads it only when that
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


def build(
    compiler: str | None = None, flags: list[str] | None = None, output: Path = LIBRARY
) -> Path:
    """Compile (next to the source unless ``output`` says otherwise: the fuzzer's sanitizer
    build goes elsewhere), atomically: a running service may be loading it."""
    cc = compiler or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise RuntimeError("no C compiler found (set CC)")
    partial = output.with_suffix(f".{os.getpid()}.tmp")
    define = f'-DTT_SOURCE_HASH="{source_hash()}"'
    command = [cc, *(FLAGS if flags is None else flags), define, "-o", str(partial), str(SOURCE)]
    subprocess.run(command, check=True)
    partial.replace(output)
    return output


if __name__ == "__main__":
    print(f"built {build(sys.argv[1] if len(sys.argv) > 1 else None)}")
