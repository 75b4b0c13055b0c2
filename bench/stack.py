"""The benchmark's simulated world and the simulator process around it.

The benchmark measures the service against the TikTok simulator running as a separate
process (``python -m tiktok_simulator``), never in-process: the simulator renders ~1,000-row
pages with real CPU, and sharing a GIL with it would make the client look slower than it is.
The world is sized by flags so that ``--quick`` and the smoke test run the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

from local_env.stack import SimulatorProcess

SIM_TOKEN = "sim-token"
WORLD_START = date(2025, 1, 1)  # first day with delivery; every window starts here


@dataclass(frozen=True)
class WorldSize:
    """Shape of a simulated world: ads per advertiser = campaigns × adgroups × ads."""

    advertisers: int
    campaigns: int
    adgroups: int
    ads: int
    delivery: float = 0.9
    seed: int = 42
    gmv_max_stores: int = 0  # usable TikTok Shop stores per Shop advertiser (GMV Max)

    @property
    def ads_per_advertiser(self) -> int:
        return self.campaigns * self.adgroups * self.ads

    def expected_ad_rows(self, days: int, advertisers: int | None = None) -> int:
        """Roughly how many ad-level rows a window yields (delivery is a hash draw)."""
        count = self.advertisers if advertisers is None else advertisers
        return round(count * self.ads_per_advertiser * days * self.delivery)


def window(days: int) -> tuple[date, date]:
    """An inclusive window of ``days`` days starting on the world's first day."""
    return WORLD_START, WORLD_START + timedelta(days=days - 1)


class Simulator:
    """A simulator process plus its control endpoints (reset, stats, world)."""

    def __init__(
        self,
        log_path: Path,
        world: WorldSize,
        *,
        qps: int,
        qpm: int,
        latency: float = 0.0,
        start: date = WORLD_START,
    ) -> None:
        args = [
            "--seed", str(world.seed),
            "--advertisers", str(world.advertisers),
            "--campaigns", str(world.campaigns),
            "--adgroups", str(world.adgroups),
            "--ads", str(world.ads),
            "--start", start.isoformat(),
            "--end", "2026-12-31",
            "--delivery-probability", str(world.delivery),
            "--deleted-fraction", "0.1",
            "--latency", str(latency),
            "--qps", str(qps),
            "--qpm", str(qpm),
            "--token", SIM_TOKEN,
        ]  # fmt: skip
        if world.gmv_max_stores:
            args += ["--gmv-max-stores", str(world.gmv_max_stores)]
        self.qps, self.qpm = qps, qpm
        log_path.unlink(missing_ok=True)  # SimulatorProcess reads the first READY line of the log
        self.process = SimulatorProcess(log_path, *args)
        self.base_url = self.process.base_url
        self._control = self.process.control_url
        self._http = requests.Session()
        self.advertiser_ids: list[str] = self._get("/_sim/world")["advertiser_ids"]

    def _get(self, path: str, **params: str) -> Any:
        response = self._http.get(f"{self._control}{path}", params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Empty rate-limit windows and fresh stats: each measurement starts from zero."""
        self._http.post(f"{self._control}/_sim/reset", timeout=30).raise_for_status()

    def stats(self) -> dict[str, Any]:
        """Counters and accepted-request timestamps, without the per-request log."""
        return self._get("/_sim/stats", log="false")

    def stop(self) -> None:
        self._http.close()
        self.process.stop()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
