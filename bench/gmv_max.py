"""Scenario ``gmv_max`` (opt-in: ``--gmv-max``): TikTok Shop accounts' requests per rate budget.

The service's extraction reads the three GMV Max reports (TKT050-052) and the BASIC campaign
level of Shop advertisers from the simulator as its own process, with TikTok's latency and
both budgets at TikTok's Basic tier on both sides: the app's 10 QPS / 600 QPM and the GMV Max
report's own 8 QPS / 240 QPM (docs/tiktok_api_gmv_smartplus.md §1.1). The simulator's world gives every
advertiser at a position not 2 mod 3 ``gmv_max_stores`` usable stores (plus one the service
must skip) with a Product and a LIVE campaign and a deleted one of each; the others have no
store. Measured from the simulator's counters: requests per endpoint (store list, GMV Max
report, BASIC report), 40100s, the GMV Max requests per second TikTok accepted. Target: no
40100, and GMV Max requests = Σ stores × (2 + 1 + 1 promotion-type requests) × windows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stack import SIM_TOKEN, Simulator, WorldSize, window
from controller.extraction import Extraction
from controller.reports import registry
from controller.tiktok.client import TikTokClient
from controller.tiktok.rate_limiter import DailyQuota, RateLimiter

API = "/open_api/v1.3/"
PATHS = {
    "store_list": API + "gmv_max/store/list/",
    "gmv_max_report": API + "gmv_max/report/get/",
    "basic_report": API + "report/integrated/get/",
}
REPORT_TYPES = ("gmv_max_campaign", "gmv_max_product", "gmv_max_live", "campaign")
# Requests per usable store and 30-day window: TKT050 asks PRODUCT and LIVE apart.
PER_STORE_WINDOW = 2 + 1 + 1


@dataclass(frozen=True)
class GmvMaxSize:
    world: WorldSize = field(
        default_factory=lambda: WorldSize(
            advertisers=6, campaigns=2, adgroups=2, ads=2, delivery=0.8, gmv_max_stores=2
        )
    )
    days: int = 60  # two request windows
    workers: int = 24
    latency: float = 1.0


@dataclass
class GmvMaxResult:
    advertisers: int
    shops: int
    stores: int
    days: int
    requests: dict[str, int]
    expected_gmv_max_requests: int
    rows: int
    failed_items: int
    wall_seconds: float
    rate_limited: int
    gmv_max_max_per_second: int

    def to_json(self) -> dict[str, Any]:
        return {
            "advertisers": self.advertisers,
            "shop_advertisers": self.shops,
            "usable_stores": self.stores,
            "days": self.days,
            "requests": self.requests,
            "expected_gmv_max_requests": self.expected_gmv_max_requests,
            "rows": self.rows,
            "failed_items": self.failed_items,
            "wall_seconds": round(self.wall_seconds, 3),
            "rate_limited_40100": self.rate_limited,
            "gmv_max_max_per_second": self.gmv_max_max_per_second,
        }


def run(size: GmvMaxSize, log_dir: Path, *, progress=print) -> GmvMaxResult:
    with Simulator(
        log_dir / "simulator-gmv-max.log", size.world, qps=10, qpm=600, latency=size.latency
    ) as sim:
        sim.reset()
        shops = sum(1 for i in range(len(sim.advertiser_ids)) if i % 3 != 2)
        stores = shops * size.world.gmv_max_stores
        progress(
            f"gmv_max: {len(sim.advertiser_ids)} advertisers ({shops} with {stores} stores) × "
            f"{size.days} days, Basic budgets 10/600 and GMV Max 8/240, {size.latency:g} s latency"
        )
        client = TikTokClient(
            sim.base_url,
            SIM_TOKEN,
            RateLimiter(10, 600),
            pool_size=size.workers,
            read_timeout=60,
            gmv_max_limiter=RateLimiter(8, 240, daily=DailyQuota(20_000)),
        )
        specs = [registry.get(name) for name in REPORT_TYPES]
        items = [(adv, spec) for spec in specs for adv in sim.advertiser_ids]
        start, end = window(size.days)
        extraction = Extraction(
            client,
            items,
            start,
            end,
            sink=lambda *_: None,  # what is measured is the requests, not the rows' way out
            workers=size.workers,
            extracted_at=datetime.now(UTC),
            families=["core"],
        )
        began = time.perf_counter()
        try:
            results = extraction.run()
        finally:
            wall = time.perf_counter() - began
            client.close()
        stats = sim.stats()
    by_path = stats["by_path"]
    windows = math.ceil(size.days / 30)
    result = GmvMaxResult(
        advertisers=len(sim.advertiser_ids),
        shops=shops,
        stores=stores,
        days=size.days,
        requests={name: int(by_path.get(path, 0)) for name, path in PATHS.items()},
        expected_gmv_max_requests=stores * PER_STORE_WINDOW * windows,
        rows=sum(r.rows for r in results),
        failed_items=sum(not r.ok for r in results),
        wall_seconds=wall,
        rate_limited=int(stats["codes"].get("40100", 0)),
        gmv_max_max_per_second=max((n for _, n in stats["gmv_max_accepted_per_second"]), default=0),
    )
    progress(f"gmv_max: {result.requests} in {wall:.1f} s, {result.rate_limited} × 40100")
    return result


def table_row(result: GmvMaxResult) -> dict[str, str]:
    requests = result.requests
    ok = (
        result.rate_limited == 0
        and result.failed_items == 0
        and requests["gmv_max_report"] == result.expected_gmv_max_requests
    )
    return {
        "scenario": "gmv_max: Shop accounts, both budgets",
        "requests": f"{sum(requests.values())}",
        "rows": f"{result.rows:,}",
        "wall s": f"{result.wall_seconds:.1f}",
        "req/s": f"{sum(requests.values()) / result.wall_seconds:.2f}",
        "÷limit": "",
        "as TikTok": "",
        "sustained": "",
        "40100": f"{result.rate_limited}",
        "target": "0×40100, GMV Max = stores×4×windows: " + ("PASS" if ok else "MISS"),
        "notes": f"{result.shops}/{result.advertisers} Shop advertisers, {result.stores} stores, "
        f"{result.days} days: GMV Max {requests['gmv_max_report']} (busiest 1 s: "
        f"{result.gmv_max_max_per_second}), store lists {requests['store_list']}, BASIC "
        f"{requests['basic_report']}",
    }
