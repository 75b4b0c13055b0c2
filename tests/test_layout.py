"""The dependency rule of ``controller/__init__.py``, and the HTTP contract's completeness.

Imports are read from the source (every ``import``, including those inside functions, which
hide a layering problem as well as top-level ones do), so nothing is started or imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("config", "controller", "database", "tiktok_simulator", "dags", "local_env")
SCRIPTS = ("main.py", "run_local_csv.py")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] == "dags" and len(parts) > 1:  # dags/ is Airflow's folder, not a package
        parts = parts[1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    files = [ROOT / name for name in SCRIPTS]
    for package in PRODUCT:
        files += sorted((ROOT / package).rglob("*.py"))
    return {_module_name(path): path for path in files}


def _imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The known modules ``path`` imports (``from a import b`` counts ``a.b`` if a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {name: _imported(name, path, known) for name, path in sources.items()}


GRAPH = import_graph()


def _edges(source_prefix: str) -> list[tuple[str, str]]:
    return [
        (source, target)
        for source, targets in GRAPH.items()
        if source == source_prefix or source.startswith(source_prefix + ".")
        for target in sorted(targets)
    ]


def _in(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("package", ["config", "database"])
def test_config_and_database_import_nothing_of_controller(package):
    assert [e for e in _edges(package) if _in(e[1], "controller")] == []


def test_reports_import_nothing_else_of_controller():
    bad = [
        e for e in _edges("controller.reports") if _in(e[1], "controller") and e[1] != "controller"
    ]
    assert [e for e in bad if not _in(e[1], "controller.reports")] == []


def test_the_wire_knows_nothing_of_bigquery_or_the_composition():
    allowed = ("controller.tiktok", "controller.reports", "config")
    bad = [
        e
        for e in _edges("controller.tiktok")
        if _in(e[1], "controller", "database") and not _in(e[1], *allowed)
    ]
    assert bad == []


def test_the_contract_models_import_only_report_definitions():
    bad = [
        e
        for e in _edges("controller.api.models")
        if _in(e[1], "controller", "database") and not _in(e[1], "controller.reports")
    ]
    assert bad == []


def test_only_the_routes_and_the_app_factory_import_the_routes():
    importers = {s for s, targets in GRAPH.items() if "controller.api.routes" in targets}
    assert importers <= {"main"}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # ``from pkg import mod`` names pkg too; a package's __init__ importing nothing of its
    # own is not a cycle, so pkg -> pkg.mod edges from a child are dropped.
    return {
        source: {t for t in targets if not source.startswith(t + ".")}
        for source, targets in graph.items()
    }


def test_no_import_cycle_in_product_code_or_the_simulator():
    assert _cycle(_without_package_inits(GRAPH)) is None


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_openapi_lists_every_route_and_method():
    from config.settings import Settings
    from config.version import SERVICE_VERSION
    from controller.api.openapi import openapi_document
    from main import create_app

    app = create_app(Settings())
    served = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    document = openapi_document(SERVICE_VERSION)
    listed = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert served == listed
