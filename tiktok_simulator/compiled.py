"""Compiles metric lists into plain Python functions, once per list (cached).

Serving 20k rows/s with ~100 metrics each leaves well under a microsecond per value, which a
function call per metric does not fit. So the registry's formulas (data, see
``metrics.Formula``) are turned into source for one function per metric list and compiled.
Only registry names and numeric constants reach the generated source, never request text.

Three shapes:

* ``generator_for(plan)``: ``(hv, scale) -> {base: int}``, an ad-day's bases, to be summed
  for campaign/ad group/advertiser rows or split into hours;
* ``renderer_for(names)``: ``(bases, attributes) -> {metric: text}``;
* ``direct_renderer_for(names)``: ``(hv, scale, attributes) -> {metric: text}``, both fused,
  for the common case of a row made of one ad-day (ad level, daily).

Pages on the wire are rendered by ``columnar`` (the same formulas by columns, 2.5-15×
cheaper); these functions are its reference (``served_rows``, ``report.ReportBuilder.rows``)
and compute ``total_metrics`` and the values pages are ordered by.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .metrics import METRICS, Base, base_plan

M64 = (1 << 64) - 1
D2 = tuple(f"{i:02d}" for i in range(100))

Generator = Callable[[int, int], dict[str, int]]
Renderer = Callable[[dict[str, int], dict[str, str]], dict[str, str]]
DirectRenderer = Callable[[int, int, dict[str, str]], dict[str, str]]


def _compile(name: str, lines: list[str]) -> Callable:
    namespace: dict[str, object] = {"D2": D2}
    exec(compile("\n".join(lines) + "\n", f"<simulator {name}>", "exec"), namespace)
    return namespace[name]  # type: ignore[return-value]


def _base_lines(
    plan: tuple[Base, ...], zero: frozenset[str] = frozenset()
) -> tuple[list[str], dict[str, str]]:
    """Statements computing each base into a local ``b<i>``: ``uniform(lo, hi)`` from ``hv``.

    Each base multiplies the ad-day hash by its own odd salt, so its draw differs from the
    other bases'; a root base is scaled by the ad, a derived one is per-mille of its basis.
    """
    lines: list[str] = []
    variables: dict[str, str] = {}
    for i, base in enumerate(plan):
        variables[base.name] = var = f"b{i}"
        if base.name in zero:  # a leg the ad has no data for (``metrics.zeroed_bases``)
            lines.append(f"    {var} = 0")
            continue
        draw = f"({base.lo} + (((hv * {base.salt}) & {M64}) >> 20) % {base.hi - base.lo + 1})"
        if base.basis is None:
            lines.append(f"    {var} = {draw} * scale")
        else:
            lines.append(f"    {var} = {variables[base.basis]} * {draw} // 1000")
    return lines, variables


def _metric_lines(names: tuple[str, ...], ref: Callable[[str], str]) -> list[str]:
    lines: list[str] = []
    for i, name in enumerate(names):
        lines += [f"    {line}" for line in METRICS[name].formula.statements(ref, f"m{i}")]
    pairs = ", ".join(f"{name!r}: m{i}" for i, name in enumerate(names))
    return [*lines, f"    return {{{pairs}}}"]


@functools.lru_cache(maxsize=256)
def generator_for(plan: tuple[Base, ...]) -> Generator:
    lines, variables = _base_lines(plan)
    pairs = ", ".join(f"{b.name!r}: {variables[b.name]}" for b in plan)
    return _compile("generate", ["def generate(hv, scale):", *lines, f"    return {{{pairs}}}"])


@functools.lru_cache(maxsize=256)
def renderer_for(names: tuple[str, ...]) -> Renderer:
    plan = base_plan(names)
    variables = {b.name: f"b{i}" for i, b in enumerate(plan)}
    loads = [f"    {variables[b.name]} = v[{b.name!r}]" for b in plan]
    body = _metric_lines(names, variables.__getitem__)
    return _compile("render", ["def render(v, a):", *loads, *body])


@functools.lru_cache(maxsize=256)
def direct_renderer_for(
    names: tuple[str, ...], zero: frozenset[str] = frozenset()
) -> DirectRenderer:
    """``zero``: bases that are 0 for this ad (its missing conversion legs)."""
    lines, variables = _base_lines(base_plan(names), zero)
    body = _metric_lines(names, variables.__getitem__)
    return _compile("direct", ["def direct(hv, scale, a):", *lines, *body])
