"""Scenario ``reports``: an AUDIENCE and an hourly report at the rate limit.

The same measurement as ``bench/rate.py`` (the service's extraction, client and limiter
against the simulator as its own process with TikTok's latency and limits; figures from the
simulator's accepted-request timestamps), for one prebuilt report type at a time: an
audience breakdown (``ad_country``: 7-day requests, AUDIENCE) and an hourly report
(``ad_hourly``: one day per request). Target: requests/s ÷ limit ≥ 0.9 as TikTok sees it,
with no 40100.

The world is small per advertiser (12 ads) on purpose: what is measured is the request
rate, and the simulator (one Python process) renders audience and hourly rows several times
slower than daily ones; pages of a few hundred rows keep it from delaying its own answers.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import rate
from bench.stack import Simulator, WorldSize

REPORTS_WORLD = WorldSize(advertisers=10, campaigns=2, adgroups=2, ads=3, delivery=0.8)


@dataclass(frozen=True)
class ReportsSize:
    world: WorldSize = REPORTS_WORLD
    # report type -> days: ~300 requests each (ad_country: 10 advertisers × 30 chunks of 7
    # days; ad_hourly: 10 advertisers × 30 days)
    report_days: dict[str, int] = field(
        default_factory=lambda: {"ad_country": 210, "ad_hourly": 30}
    )
    workers: int = 24
    latency: float = 1.0
    qps: int = 10
    qpm: int = 600
    margin: float = 0.03


@dataclass
class ReportsResult:
    qps: int
    latency: float
    runs: dict[str, rate.ExtractionRun]

    def to_json(self) -> dict[str, Any]:
        return {
            "qps": self.qps,
            "latency_seconds": self.latency,
            "runs": {
                name: {
                    "requests": r.requests,
                    "rows": r.rows,
                    "days": r.days,
                    "failed_items": r.failed_items,
                    "wall_seconds": round(r.wall_seconds, 3),
                    "requests_per_second": round(r.rps, 3),
                    "tiktok_ratio_to_limit": (
                        None if r.tiktok_rps is None else round(r.tiktok_rps / self.qps, 4)
                    ),
                    "sustained_ratio_to_limit": (
                        None if r.sustained_rps is None else round(r.sustained_rps / self.qps, 4)
                    ),
                    "rate_limited_40100": r.rate_limited,
                    "codes": r.codes,
                    "max_requests_in_rolling_second": r.max_in_rolling_second,
                }
                for name, r in self.runs.items()
            },
        }


def run(size: ReportsSize, log_dir: Path, *, progress=print) -> ReportsResult:
    base = rate.RateSize(
        world=size.world,
        workers=size.workers,
        latency=size.latency,
        qps=size.qps,
        qpm=size.qpm,
        margin=size.margin,
        busy=False,
    )
    runs: dict[str, rate.ExtractionRun] = {}
    with (
        Simulator(
            log_dir / "simulator-reports.log",
            size.world,
            qps=size.qps,
            qpm=size.qpm,
            latency=size.latency,
        ) as sim,
        tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp,
    ):
        for name, days in size.report_days.items():
            progress(
                f"reports: {name}, {size.world.advertisers} advertisers × {days} days, "
                f"{size.qps} QPS, {size.latency:g} s latency"
            )
            result = rate.run_extraction(
                sim,
                replace(base, report_types=(name,), days=days),
                advertisers=sim.advertiser_ids,
                days=days,
                workers=size.workers,
                workdir=Path(tmp),
            )
            progress(
                f"reports: {name}: {result.requests} requests in {result.wall_seconds:.1f} s, "
                f"{result.rows:,} rows, {result.failed_items} failed"
            )
            runs[name] = result
    return ReportsResult(qps=size.qps, latency=size.latency, runs=runs)


def table_rows(result: ReportsResult, min_ratio: float) -> list[dict[str, str]]:
    rows = []
    for name, r in result.runs.items():
        ratio = (r.tiktok_rps or 0.0) / result.qps
        ok = ratio >= min_ratio and r.rate_limited == 0 and r.failed_items == 0
        sustained = "" if r.sustained_rps is None else f"{r.sustained_rps / result.qps:.3f}"
        rows.append(
            {
                "scenario": f"reports: {name}, {r.workers} workers",
                "requests": f"{r.requests}",
                "rows": f"{r.rows:,}",
                "wall s": f"{r.wall_seconds:.1f}",
                "req/s": f"{r.rps:.2f}",
                "÷limit": f"{r.rps / result.qps:.3f}",
                "as TikTok": "" if r.tiktok_rps is None else f"{ratio:.3f}",
                "sustained": sustained,
                "40100": f"{r.rate_limited}",
                "target": f"as TikTok≥{min_ratio:.2f}, 0×40100: {'PASS' if ok else 'MISS'}",
                "notes": f"{r.advertisers} advertisers × {r.days} days; busiest 1 s: "
                f"{r.max_in_rolling_second}",
            }
        )
    return rows
