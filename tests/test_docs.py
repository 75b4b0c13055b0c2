"""Every "§" citation in the repository names a file of docs/ and a section that file has, and
nothing points at notes outside the repository. Reads text files only."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP_DIRS = {".git", ".venv", ".venv-bq", ".local", "output", "node_modules", "__pycache__"}
SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".sh", ".c", ".h"}
NAMES = {"Makefile", "Dockerfile", "run"}
# A docs file, or a section sign with a number, a dotted number or a range of them.
TOKEN = re.compile(r"docs/([\w.-]+\.md)|§(\d+(?:\.\d+)?)(?:\s*[-–]\s*§?(\d+(?:\.\d+)?))?")
# Inside docs/, these name the two TikTok files; a bare § is the file itself.
ALIASES = {"REF": "tiktok_api_reference.md"}
LIST = re.compile(r"[\s,;]*(?:and\s*)?")
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)?)\.?\s", re.MULTILINE)


def text_files() -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in names:
            path = Path(folder, name)
            if (path.suffix in SUFFIXES or name in NAMES) and path.stat().st_size < 2_000_000:
                files.append(path)
    return files


def sections(name: str) -> set[str]:
    return set(HEADING.findall((DOCS / name).read_text(encoding="utf-8")))


def citations(path: Path, text: str) -> list[tuple[int, str | None, str]]:
    """(line, docs file or None, section) for every § of a text, the file being the last one
    the same line named before the section (in docs/, a bare § is the file itself)."""
    in_docs = path.parent == DOCS
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        current = path.name if in_docs else None
        name, end = current, None
        for match in TOKEN.finditer(line):
            if match.group(1):
                current = name = match.group(1)
                end = None
                continue
            before = line[: match.start()].rstrip()
            if end is None or not LIST.fullmatch(line[end : match.start()]):
                name = current  # not a list continuing the previous section's file
            for alias, target in ALIASES.items():
                if in_docs and before.endswith(alias):
                    name = target
            end = match.end()
            for section in filter(None, match.group(2, 3)):
                found.append((number, name, section))
    return found


def test_every_section_citation_names_an_existing_docs_section() -> None:
    known: dict[str, set[str]] = {}
    problems = []
    count = 0
    for path in text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        if "§" not in text:
            continue
        for line, name, section in citations(path, text):
            count += 1
            where = f"{path.relative_to(ROOT)}:{line}"
            if name is None:
                problems.append(f"{where}: §{section} names no docs/ file on its line")
                continue
            if not (DOCS / name).is_file():
                problems.append(f"{where}: docs/{name} does not exist")
                continue
            if section not in known.setdefault(name, sections(name)):
                problems.append(f"{where}: docs/{name} has no section {section}")
    assert not problems, "\n".join(problems)
    assert count > 50  # the scan did see the citations


def test_nothing_points_at_notes_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|(?<![\w-])shared/\w")
    problems = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in text_files()
        if path.relative_to(ROOT).parts[0] != ".ci"
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        )
        if outside.search(line)
    ]
    assert not problems, problems


def test_docs_index_lists_every_doc() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "README.md" and p.name not in index]
    assert not missing, missing
