"""The cost of the metric families: every family against the App-only set, same accounts.

Every family (260-269 metrics per level) needs three requests of at most 100 metrics per
level and page, joined on the dimensions; the seed's App-only set (``core engagement video
conversion in_app``: 94-103 metrics) needs one (two at the ad level). Both extractions run
against the same simulator process and accounts at the rate limit (10 QPS / 600 QPM, 1 s
latency by default), so the difference in requests and wall time is what the families cost.
Rows are the same in both (the families add columns, not rows).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.rate import ExtractionRun, RateSize, run_extraction
from bench.stack import Simulator, WorldSize

APP_ONLY = ("core", "engagement", "video", "conversion", "in_app")
# 100 ads per advertiser on 80 % of the days, like the rate scenario's accounts.
FAMILIES_WORLD = WorldSize(advertisers=8, campaigns=2, adgroups=5, ads=10, delivery=0.8)


@dataclass(frozen=True)
class FamiliesSize:
    """Workload: a smaller world than the rate scenario's (every level costs 3 requests)."""

    world: WorldSize = FAMILIES_WORLD
    days: int = 30
    workers: int = 24
    latency: float = 1.0
    qps: int = 10
    qpm: int = 600
    margin: float = 0.1


@dataclass
class FamiliesResult:
    qps: int
    full: ExtractionRun
    app_only: ExtractionRun

    @property
    def request_ratio(self) -> float:
        return self.full.requests / max(self.app_only.requests, 1)

    @property
    def time_ratio(self) -> float:
        return self.full.wall_seconds / self.app_only.wall_seconds

    def to_json(self) -> dict[str, Any]:
        def run(r: ExtractionRun) -> dict[str, Any]:
            return {
                "advertisers": r.advertisers,
                "days": r.days,
                "requests": r.requests,
                "rows": r.rows,
                "wall_seconds": round(r.wall_seconds, 3),
                "requests_per_second": round(r.rps, 3),
                "rate_limited_40100": r.rate_limited,
                "failed_items": r.failed_items,
            }

        return {
            "qps": self.qps,
            "all_families": run(self.full),
            "app_only": run(self.app_only),
            "request_ratio": round(self.request_ratio, 3),
            "time_ratio": round(self.time_ratio, 3),
        }


def run(size: FamiliesSize, log_dir: Path, *, progress=print) -> FamiliesResult:
    rate_size = RateSize(
        world=size.world,
        days=size.days,
        workers=size.workers,
        latency=size.latency,
        qps=size.qps,
        qpm=size.qpm,
        margin=size.margin,
    )
    with (
        Simulator(
            log_dir / "simulator-families.log",
            size.world,
            qps=size.qps,
            qpm=size.qpm,
            latency=size.latency,
        ) as sim,
        tempfile.TemporaryDirectory(prefix="bench-families-") as tmp,
    ):
        runs = {}
        for name, families in (("all", None), ("app-only", APP_ONLY)):
            progress(
                f"families: {name}, {size.world.advertisers} advertisers × 4 levels × "
                f"{size.days} days at {size.qps} QPS"
            )
            runs[name] = run_extraction(
                sim,
                rate_size,
                advertisers=sim.advertiser_ids,
                days=size.days,
                workers=size.workers,
                workdir=Path(tmp),
                families=families,
            )
    return FamiliesResult(qps=size.qps, full=runs["all"], app_only=runs["app-only"])
