"""Target 5: a simulated agency backfill through the planner and POST /run units.

What the DAG's backfill does, minus Airflow's scheduler: ``POST /plan`` sizes every
advertiser × report type from page 1 of the window's last 30 days, ``dags/tiktok_ads/backfill``
(the planner the DAG's ``prepare_payload`` calls, pure Python) cuts the window into units,
and ``parallel`` threads run the units with ``backfill.run_unit`` (the DAG's mapped
``call_cloud_run_api``), each POST /run carrying the unit's share of the app's rate
(``max_qps = APP_QPS / in-flight``, ``max_qpm = APP_QPM // in-flight``, the DAG's
``rate_budget``). The service is the Dockerfile's gunicorn command against the simulator
process and local-bigquery. ``dag.test()`` is not used: it runs mapped tasks one after the
other, never at the planned parallelism, so Airflow's per-task overhead is not in the figure.

TikTok is scaled so the run takes minutes: latency ``latency`` s instead of ~1 s and the
limit ``qps`` / ``qpm`` (×5) on both sides. The service keeps its real 540-s deadline
(``run_deadline``; units are planned to take at most 60 % of it at their share, as in the
DAG), so a unit takes as long as in production and a commit weighs on it as it does there.
Scaling the deadline too (108 s) would make units of production's request count but a fifth
of its duration, while each unit's commit (a load and a DML per table, serialised by
local-bigquery, ~2 s each) is not scaled: it measured ~2× the minimum, an artefact of the
emulator. The headline is wall time ÷ (requests ÷ QPS): 1.0 is the physical minimum, the
target is ≤ 1.15. Rows are checked against the simulator's ground truth (``/_sim/truth``):
per advertiser and table, the row count and the sum of impressions in BigQuery equal the
simulator's.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import requests

from bench.rate import API_PATH as REPORT_API_PATH
from bench.stack import SIM_TOKEN, Simulator, WorldSize
from controller.reports.catalog import REPORT_TYPES, REPORTS
from controller.tiktok.origins import ALL_ORIGINS
from dags.tiktok_ads import backfill
from dags.tiktok_ads.fanout import rate_budget
from database.bigquery import make_client
from local_env.bigquery_emulator import LocalBigQuery, install
from local_env.stack import ServiceProcess

PROJECT = "local-project"

# 50 small accounts (2 ads each): every 30-day request window is one page at every level,
# times the report's metric groups (3), so the work is 50 × 4 × 25 × 3 = 15,000 requests
# over two years: 300 s at 50 QPS.
BACKFILL_WORLD = WorldSize(advertisers=50, campaigns=1, adgroups=1, ads=2, delivery=0.6)


@dataclass(frozen=True)
class BackfillSize:
    world: WorldSize = BACKFILL_WORLD
    days: int = 730  # two years, ending yesterday (the service refuses future dates)
    report_types: tuple[str, ...] = REPORT_TYPES
    qps: int = 50  # TikTok's 10 QPS / 600 QPM scaled ×5, both sides
    qpm: int = 3000
    latency: float = 0.2  # TikTok's ~1 s scaled ×1/5
    parallel: int = 5  # TIKTOK_MAX_PARALLEL_BATCHES: a divisor of the QPS (10 each, see README)
    run_deadline: float = 540.0  # the service's own (see the module docstring)
    batch_size: int = 50


@dataclass
class BackfillResult:
    advertisers: int
    days: int
    report_types: list[str]
    qps: int
    qpm: int
    latency: float
    parallel: int
    units: int
    posts: int
    splits: int
    failed_units: int
    requests: int  # report requests TikTok answered, /plan's included
    plan_requests: int
    rows: int
    truth_rows: int
    rows_match: bool
    mismatches: list[str]
    rate_limited: int
    codes: dict[str, int]
    plan_seconds: float
    wall_seconds: float
    unit_seconds: list[float] = field(default_factory=list)

    @property
    def minimum_seconds(self) -> float:
        return self.requests / self.qps

    @property
    def ratio(self) -> float:
        """Wall time ÷ the physical minimum (requests ÷ QPS); the target is ≤ 1.15."""
        return self.wall_seconds / self.minimum_seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "advertisers": self.advertisers,
            "days": self.days,
            "report_types": self.report_types,
            "qps": self.qps,
            "qpm": self.qpm,
            "latency_seconds": self.latency,
            "parallel_units": self.parallel,
            "units": self.units,
            "posts": self.posts,
            "splits": self.splits,
            "failed_units": self.failed_units,
            "requests": self.requests,
            "plan_requests": self.plan_requests,
            "rows": self.rows,
            "truth_rows": self.truth_rows,
            "rows_equal_truth": self.rows_match,
            "mismatches": self.mismatches[:10],
            "rate_limited_40100": self.rate_limited,
            "codes": self.codes,
            "plan_seconds": round(self.plan_seconds, 2),
            "wall_seconds": round(self.wall_seconds, 2),
            "minimum_seconds": round(self.minimum_seconds, 2),
            "wall_to_minimum_ratio": round(self.ratio, 4),
            "unit_seconds_max": round(max(self.unit_seconds, default=0.0), 2),
        }


def window(days: int) -> tuple[date, date]:
    """``days`` days ending yesterday (the simulated world starts on the first of them)."""
    end = date.today() - timedelta(days=1)
    return end - timedelta(days=days - 1), end


def plan(service: str, size: BackfillSize, advertisers: list[str], dataset: str) -> list[dict]:
    """POST /plan on the window's last 30 days, then the planner's units as /run payloads."""
    start, end = window(size.days)
    sample_start = max(start, end - timedelta(days=backfill.PLAN_SAMPLE_DAYS - 1))
    response = requests.post(
        f"{service}/plan",
        json={
            "access_token": SIM_TOKEN,
            "advertiser_ids": advertisers,
            "report_types": list(size.report_types),
            "start_date": sample_start.isoformat(),
            "end_date": end.isoformat(),
        },
        timeout=600,
    )
    response.raise_for_status()
    items = response.json()["items"]
    units = backfill.plan_units(
        items,
        advertisers,
        list(size.report_types),
        start,
        end,
        max_qps=min(size.qps / size.parallel, size.qpm / size.parallel / 60),
        unit_seconds=size.run_deadline * backfill.UNIT_DEADLINE_SHARE,
        batch_size=size.batch_size,
        parallel=size.parallel,
    )
    max_qps, max_qpm = rate_budget(size.qps, size.qpm, size.parallel, len(units))
    return [
        {
            "label": unit.label,
            "payload": {
                "access_token": SIM_TOKEN,
                **backfill.unit_payload(unit, PROJECT, dataset, max_qps, max_qpm),
            },
        }
        for unit in units
    ]


def post_part(service: str, payload: dict[str, Any]) -> dict[str, Any]:
    """One POST /run, as the DAG's ``unit_post`` reads it (per-item answers)."""
    response = requests.post(f"{service}/run", json=payload, timeout=900)
    body = response.json()
    if response.status_code not in (200, 207, 502) or "results" not in body:
        raise RuntimeError(f"POST /run answered HTTP {response.status_code}: {body}")
    return {**body, "missing": []}


def truth(sim: Simulator, advertisers: list[str], size: BackfillSize) -> dict:
    """(table, advertiser) → (rows, impressions) as the simulator serves them to the service:
    every campaign origin (Promote too), as the service asks, not the simulator's default."""
    start, end = window(size.days)
    counts = {}
    for report_type in size.report_types:
        spec = REPORTS[report_type]
        for adv in advertisers:
            answer = sim._get(
                "/_sim/truth",
                advertiser_id=adv,
                data_level=spec.data_level,
                start_date=start.isoformat(),
                end_date=end.isoformat(),
                metrics=orjson.dumps(["impressions"]).decode(),
                origins=orjson.dumps(list(ALL_ORIGINS)).decode(),
            )
            impressions = sum(int(r["metrics"]["impressions"]) for r in answer["rows"])
            counts[(spec.table, adv)] = (answer["total_number"], impressions)
    return counts


def loaded(bigquery: LocalBigQuery, dataset: str, size: BackfillSize) -> dict:
    """(table, advertiser) → (rows, impressions) in BigQuery."""
    client = make_client(PROJECT, location="US", emulator_host=bigquery.endpoint)
    counts = {}
    try:
        for report_type in size.report_types:
            table = REPORTS[report_type].table
            query = (
                f"SELECT _advertiser_id AS adv, COUNT(*) AS n, SUM(impressions) AS imp "
                f"FROM `{PROJECT}.{dataset}.{table}` GROUP BY _advertiser_id"
            )
            for row in client.query(query).result():
                counts[(table, str(row["adv"]))] = (int(row["n"]), int(row["imp"] or 0))
    finally:
        client.close()
    return counts


def run(size: BackfillSize, log_dir: Path, *, progress=print) -> BackfillResult:
    with contextlib.ExitStack() as stack:
        install()  # no-op when .venv-bq is ready (`make bq-venv`)
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-bq-"))
        # nice 10: BigQuery's loads and DML run on Google's machines in production, not on
        # the service's CPU; on this 2-CPU machine the emulator's commits otherwise starve
        # the service and the simulator for seconds at a time (holes in the request rate).
        bigquery = stack.enter_context(LocalBigQuery(PROJECT, data_dir, nice=10))
        sim = stack.enter_context(
            Simulator(
                log_dir / "simulator-backfill.log",
                size.world,
                qps=size.qps,
                qpm=size.qpm,
                latency=size.latency,
                start=window(size.days)[0],
            )
        )
        env = {
            "TIKTOK_API_BASE_URL": sim.base_url,
            "BIGQUERY_EMULATOR_HOST": bigquery.endpoint,
            "TIKTOK_QPS": str(size.qps),
            "TIKTOK_QPM": str(size.qpm),
            "RUN_DEADLINE_SECONDS": str(size.run_deadline),
            "GUNICORN_THREADS": str(max(8, size.parallel * 2)),
        }
        log_path = log_dir / "service-backfill.log"
        log_path.unlink(missing_ok=True)
        service = ServiceProcess(log_path, env)
        stack.callback(service.stop)
        advertisers = sim.advertiser_ids[: size.world.advertisers]
        dataset = f"bench_backfill_{int(time.time())}"
        progress(
            f"backfill: {len(advertisers)} advertisers × {len(size.report_types)} report types"
            f" × {size.days} days, {size.parallel} units in flight, {size.latency:g} s latency,"
            f" {size.qps} QPS / {size.qpm} QPM, service deadline {size.run_deadline:g} s"
        )
        sim.reset()
        began = time.perf_counter()
        units = plan(service.url, size, advertisers, dataset)
        plan_seconds = time.perf_counter() - began
        plan_requests = int(sim.stats()["by_path"].get(REPORT_API_PATH, 0))
        progress(f"backfill: {len(units)} units planned in {plan_seconds:.1f} s")

        def run_one(unit: dict[str, Any]) -> dict[str, Any]:
            return backfill.run_unit(
                unit["label"],
                unit["payload"],
                lambda payload: post_part(service.url, dict(payload)),
                log=lambda _message: None,
            ).to_json()

        with ThreadPoolExecutor(max_workers=size.parallel) as pool:
            outcomes = list(pool.map(run_one, units))
        wall = time.perf_counter() - began
        stats = sim.stats()
        requests_ = int(stats["by_path"].get(REPORT_API_PATH, 0))
        progress(f"backfill: {requests_} requests in {wall:.1f} s; checking the ground truth…")
        want = truth(sim, advertisers, size)
        got = loaded(bigquery, dataset, size)
    mismatches = [
        f"{table}/{adv}: loaded {got.get((table, adv))}, truth {expected}"
        for (table, adv), expected in sorted(want.items())
        if got.get((table, adv), (0, 0)) != expected
    ]
    mismatches += [f"{key}: not in the truth" for key in sorted(set(got) - set(want))]
    return BackfillResult(
        advertisers=len(advertisers),
        days=size.days,
        report_types=list(size.report_types),
        qps=size.qps,
        qpm=size.qpm,
        latency=size.latency,
        parallel=size.parallel,
        units=len(units),
        posts=sum(o["posts"] for o in outcomes),
        splits=sum(o["splits"] for o in outcomes),
        failed_units=sum(o["status"] != "success" for o in outcomes),
        requests=requests_,
        plan_requests=plan_requests,
        rows=sum(o["rows"] for o in outcomes),
        truth_rows=sum(n for n, _ in want.values()),
        rows_match=not mismatches,
        mismatches=mismatches,
        rate_limited=int(stats["codes"].get("40100", 0)),
        codes=dict(stats["codes"]),
        plan_seconds=plan_seconds,
        wall_seconds=wall,
        unit_seconds=[o["seconds"] for o in outcomes],
    )
