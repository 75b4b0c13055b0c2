"""The test suite's own layout: test modules never import each other, and fixtures reach
tests through the plugins of tests/conftest.py, never by being imported by name.

Importing a test module runs it twice over (pytest collects it too) and hides its helpers
in a file named for something else; importing a fixture by name needs ``noqa: F401/F811``
and ties the test to where the fixture happens to live. Helpers belong in tests/support/,
fixtures shared by modules in tests/fixtures/. Read from the source, nothing imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(module: str) -> bool:
    return module.startswith("tests.test_") or module.startswith("test_")


def _absolute(module: str | None, level: int, path: Path) -> str:
    """``from ..x import y`` in ``path`` as the absolute module it names (tests/ is a package)."""
    if not level:
        return module or ""
    package = list(path.relative_to(TESTS.parent).parent.parts)
    base = package[: len(package) - level + 1]
    return ".".join([*base, *([module] if module else [])])


def test_module_imports(source: str, path: Path) -> list[str]:
    """The test modules that ``source`` (the text of ``path``) imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("tests.test_")]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module, node.level, path)
            if module.startswith("tests.test_"):
                found.append(module)
            elif module == "tests":
                found += [f"tests.{a.name}" for a in node.names if _is_test_module(a.name)]
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func).endswith(("import_module", "__import__"))
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and node.args[0].value.startswith("tests.test_")
        ):
            found.append(node.args[0].value)  # importlib.import_module("tests.test_x")
    return found


test_module_imports.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def _fixture_names() -> set[str]:
    """Every fixture the plugins under tests/fixtures/ define."""
    names = set()
    for path in (TESTS / "fixtures").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                "fixture" in ast.unparse(decorator) for decorator in node.decorator_list
            ):
                names.add(node.name)
    return names


def _sources() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in sorted(TESTS.rglob("*.py"))}


def test_no_test_module_imports_another() -> None:
    imports = {
        str(path.relative_to(TESTS.parent)): found
        for path, source in _sources().items()
        if (found := test_module_imports(source, path))
    }
    assert imports == {}, "move shared helpers to tests/support/, fixtures to tests/fixtures/"


def test_no_fixture_is_imported_by_name() -> None:
    fixtures = _fixture_names()
    assert {"sim", "service", "variables", "e2e", "clock"} <= fixtures
    imported = {
        (str(path.relative_to(TESTS.parent)), alias.name)
        for path, source in _sources().items()
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
        and _absolute(node.module, node.level, path).startswith("tests.fixtures.")
        for alias in node.names
        if alias.name in fixtures
    }
    assert imported == set(), "use the fixture as an argument: conftest.py registers its plugin"


def test_the_import_finder_finds_every_form() -> None:
    here = TESTS / "test_example.py"
    source = (
        "import tests.test_a\n"
        "from tests.test_b import helper\n"
        "from tests import test_c, support\n"
        "from .test_d import helper\n"
        "from . import test_e\n"
        "import importlib\n"
        "importlib.import_module('tests.test_f')\n"
        "from tests.support.dag_runs import run_dag\n"
        "from tests.fixtures.service import serve\n"
    )
    assert test_module_imports(source, here) == [f"tests.test_{name}" for name in "abcdef"]
