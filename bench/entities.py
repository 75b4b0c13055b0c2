"""Accounts and objects for a simulated agency: ``python -m bench.entities [--advertisers 50]``.

Measures, against the simulator (TikTok's Basic tier, 10 QPS / 600 QPM, on both sides) and
local BigQuery, with the service in-process:

* discovery: GET /advertisers (``/oauth2/advertiser/get/`` + ``/advertiser/info/``) time
  and requests;
* one daily entity run (account info + campaign/ad group/ad history, ``"advertiser_ids":
  "all"``): requests, objects read, wall time;
* one simulated day of changes (the simulator's "as of" moved a day): history rows added,
  against the simulator's own count of changed objects; and a rerun, which must add none.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import make_server

from config.settings import Settings
from local_env.bigquery_emulator import LocalBigQuery
from main import create_app
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator.metrics import AD, ADGROUP, CAMPAIGN

ENTITY_TYPES = ["advertiser_info", "campaigns", "adgroups", "ads"]
PROJECT = "bench-project"


def changed_objects(sim: SimulatorServer, advertisers: list[str], day: date) -> int:
    """Objects whose served form differs between ``day - 1`` and ``day`` (ground truth)."""
    book, before = sim.app.entity_book, day - timedelta(days=1)
    changed = 0
    for advertiser in advertisers:
        for level in (CAMPAIGN, ADGROUP, AD):
            old = {repr(sorted(o.items())) for o in book.objects(advertiser, level, before)}
            changed += sum(
                repr(sorted(o.items())) not in old for o in book.objects(advertiser, level, day)
            )
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--advertisers", type=int, default=50)
    parser.add_argument("--campaigns", type=int, default=5, help="per advertiser")
    parser.add_argument("--adgroups", type=int, default=3, help="per campaign")
    parser.add_argument("--ads", type=int, default=4, help="per ad group")
    parser.add_argument("--day", default="2026-06-16", help="the simulated day of changes")
    args = parser.parse_args(argv)
    world = World(
        seed=7,
        advertisers=args.advertisers,
        campaigns_per_advertiser=args.campaigns,
        adgroups_per_campaign=args.adgroups,
        ads_per_adgroup=args.ads,
    )
    day = date.fromisoformat(args.day)
    with (
        tempfile.TemporaryDirectory(prefix="bench-entities-") as tmp,
        SimulatorServer(world) as sim,
        LocalBigQuery(PROJECT, Path(tmp) / "bq") as bigquery,
    ):
        settings = Settings(
            tiktok_api_base_url=sim.base_url,
            bigquery_emulator_host=bigquery.endpoint,
            tiktok_app_id="1234567890",
            tiktok_app_secret="sim-app-secret",
            run_deadline_seconds=540.0,
        )
        server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        try:
            report = measure(sim, url, day)
        finally:
            server.shutdown()
    print(f"\nAgency of {args.advertisers} advertisers, "
          f"{args.campaigns}x{args.adgroups}x{args.ads} campaigns x ad groups x ads each:")  # fmt: skip
    for name, value in report.items():
        print(f"  {name:<52} {value}")
    return 0


def _requests(sim: SimulatorServer) -> int:
    return int(sim.app.stats.snapshot(include_log=False)["requests"])


def _run(url: str, dataset: str) -> tuple[dict[str, Any], float]:
    body = {
        "access_token": "sim-token",
        "advertiser_ids": "all",
        "project_id": PROJECT,
        "dataset_id": dataset,
        "report_types": ENTITY_TYPES,
    }
    started = time.monotonic()
    response = requests.post(f"{url}/run", json=body, timeout=900)
    elapsed = time.monotonic() - started
    response.raise_for_status()
    return response.json(), elapsed


def measure(sim: SimulatorServer, url: str, day: date) -> dict[str, Any]:
    report: dict[str, Any] = {}
    before = _requests(sim)
    started = time.monotonic()
    listed = requests.get(f"{url}/advertisers", headers={"Access-Token": "sim-token"}, timeout=300)
    listed.raise_for_status()
    report["discovery: seconds"] = round(time.monotonic() - started, 2)
    report["discovery: requests"] = _requests(sim) - before
    accounts = listed.json()["advertisers"]
    active = [a["advertiser_id"] for a in accounts if a["active"]]
    report["discovery: advertisers granted / active"] = f"{len(accounts)} / {len(active)}"

    sim.configure(as_of=(day - timedelta(days=1)).isoformat())
    before = _requests(sim)
    first, seconds = _run(url, "bench_entities")
    report["daily entity run: requests (incl. discovery)"] = _requests(sim) - before
    report["daily entity run: seconds (first load)"] = round(seconds, 1)
    report["daily entity run: history rows (first load)"] = first["total_inserted_rows"] - len(
        accounts
    )

    sim.configure(as_of=day.isoformat())
    truth = changed_objects(sim, active, day)
    second, seconds = _run(url, "bench_entities")
    book = sim.app.entity_book
    scheduled = [c for a in active for c in book.changes(a)]
    span = (sim.app.world.end - sim.app.world.start).days + 1
    report["scheduled changes per day, active accounts (mean)"] = round(len(scheduled) / span, 2)
    report[f"one day of changes ({day}): scheduled changes"] = sum(c.day == day for c in scheduled)
    report[f"one day of changes ({day}): objects changed (simulator)"] = truth
    report[f"one day of changes ({day}): history rows added"] = second["total_inserted_rows"] - len(
        accounts
    )
    report["one day of changes: run seconds"] = round(seconds, 1)
    rerun, _ = _run(url, "bench_entities")
    report["rerun of the same day: history rows added"] = rerun["total_inserted_rows"] - len(
        accounts
    )
    return report


if __name__ == "__main__":
    raise SystemExit(main())
