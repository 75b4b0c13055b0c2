"""run_local_csv.py with --advertiser-ids all and the account/entity types, as a process."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import date

import pytest

from local_env.stack import ROOT
from tiktok_simulator.metrics import CAMPAIGN

pytestmark = pytest.mark.e2e  # every test runs run_local_csv.py as a process


def test_all_advertisers_and_entity_csvs(sim, sim_world, tmp_path) -> None:
    as_of = date(2025, 9, 1)
    sim.configure(as_of=as_of.isoformat())
    env = {**os.environ, "TIKTOK_API_BASE_URL": sim.base_url, "TIKTOK_APP_ID": "1234567890",
           "TIKTOK_APP_SECRET": "sim-app-secret", "TIKTOK_QPS": "20", "TIKTOK_QPM": "1200"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_local_csv.py"), "--output-dir", str(tmp_path),
         "--access-token", "sim-token", "--advertiser-ids", "all",
         "--report-types", "advertiser_info,campaigns,advertiser",
         "--start-date", "2025-02-01", "--end-date", "2025-02-02"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    first, second, closed = sim_world.advertiser_ids
    assert f"skipped {closed} (" in result.stdout and "STATUS_DISABLE" in result.stdout
    assert "sim-app-secret" not in result.stdout + result.stderr
    names = sorted(p.name.rsplit("_", 1)[0] for p in tmp_path.iterdir())
    assert names == sorted(
        [f"TKT010_TIKTOK_ADS_ADVERTISER_INFO_{a}" for a in (first, second, closed)]
        + [f"TKT011_TIKTOK_ADS_CAMPAIGN_HISTORY_{a}" for a in (first, second)]
        + [f"TKT001_TIKTOK_ADS_ADVERTISER_{a}" for a in (first, second)]
    )
    for advertiser in (first, second):
        path = next(tmp_path.glob(f"TKT011_TIKTOK_ADS_CAMPAIGN_HISTORY_{advertiser}_*.csv"))
        with path.open(newline="") as handle:
            rows = {r["campaign_id"]: r for r in csv.DictReader(handle)}
        served = sim.app.entity_book.objects(advertiser, CAMPAIGN, as_of)
        assert rows.keys() == {o["campaign_id"] for o in served}
        assert {r["campaign_system_origin"] for r in rows.values()} == {
            "PROMOTE",
            "TT_ADS_PLATFORM",
        }
