"""The SQL examples of README.md, by name, so tests run exactly what the README shows.

A query is a fenced ``sql`` block whose first line is ``-- <name>``.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"  # tests/support/ -> the repo
_BLOCK = re.compile(r"```sql\n-- (?P<name>[^\n]+)\n(?P<sql>.*?)```", re.DOTALL)


def readme_query(name: str) -> str:
    queries = {m["name"].strip(): m["sql"] for m in _BLOCK.finditer(README.read_text())}
    return queries[name]
