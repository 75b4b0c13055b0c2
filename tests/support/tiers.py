"""Test tiers, assigned from what a test uses rather than by hand, so a new test is tiered
the day it is written:

* ``e2e``: it starts processes (gunicorn, the simulator or local-bigquery as a process of its
  own, a subprocess of the repo's tools) or Airflow. A fixture that starts processes says so
  with ``@spawns_processes``; a test that starts one itself is marked ``@pytest.mark.e2e``.
* ``integration``: it uses the session's local-bigquery or the in-thread service.
* ``fast``: everything else (pure code, the simulator in a thread): ``make test-fast``.

``item.fixturenames`` is the closure of a test's fixtures, so a fixture built on
``local_bigquery`` (``bq_client``, ``service``, a module's own service) tiers its tests too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

INTEGRATION_FIXTURES = frozenset({"local_bigquery", "bq_client", "bq_dataset", "service"})
AIRFLOW_FIXTURE_MODULE = "tests.fixtures.airflow"
TIERS = ("fast", "integration", "e2e")

F = TypeVar("F", bound=Callable[..., Any])


def spawns_processes(fixture_function: F) -> F:
    """Mark a fixture function (under ``@pytest.fixture``) as starting processes: e2e."""
    fixture_function.spawns_processes = True  # type: ignore[attr-defined]
    return fixture_function


def _starts_processes(function: Callable[..., Any]) -> bool:
    return bool(getattr(function, "spawns_processes", False)) or (
        getattr(function, "__module__", "") == AIRFLOW_FIXTURE_MODULE
    )


def tier(
    fixturenames: Iterable[str],
    fixture_functions: Mapping[str, Sequence[Callable[..., Any]]],
    markers: Iterable[str] = (),
) -> str:
    """The tier of a test from its fixture closure, the functions that define those fixtures
    (the last definition is the one in use) and its own marker names."""
    names = list(fixturenames)
    used = [fixture_functions[name][-1] for name in names if fixture_functions.get(name)]
    if "e2e" in markers or any(_starts_processes(function) for function in used):
        return "e2e"
    if "integration" in markers or INTEGRATION_FIXTURES.intersection(names):
        return "integration"
    return "fast"


def fixture_functions(item: Any) -> dict[str, list[Callable[..., Any]]]:
    """name -> the functions defining it, as pytest resolved them for ``item``."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = getattr(info, "name2fixturedefs", {}) or {}
    return {name: [d.func for d in defs] for name, defs in definitions.items()}
