"""Targets 3 and 4: bounded memory of a real /run, and BigQuery work per run.

The service runs as in production (``local_env.stack.ServiceProcess``: the Dockerfile's
gunicorn command) against the simulator process and local-bigquery. The rate limit is
raised on both sides and there is no latency, so a million-row run takes a minute or two,
not hours: memory, not throughput, is measured here. A thread samples the RSS of the
gunicorn master and its worker every 50 ms with psutil. Each size runs in a fresh service
process, because a peak RSS is a high-water mark: a second run in the same process would
inherit the first one's.

Memory is bounded when the peak does not grow with the rows: pages are decoded and typed on
the client's two decode threads (not on each of the 24 request threads), spooled to a Parquet
file in 10,000-row row groups and uploaded in 16 MiB chunks, so the file, not memory, grows.
RSS also holds what the allocators keep after a free (glibc arenas per thread, and Arrow's
mimalloc heaps before ``config/allocators.py`` moved Arrow, its C++ default pool included, to
the system allocator), which is why the peak is measured from outside rather than estimated.

The wide runs (``MemorySize.wide_world``) read one big account at the default width (every
metric family, 3 requests a page, joined per chunk) over 3 and 12 days: its chunks are over
``TIKTOK_CHUNK_ROW_BOUND`` and read as date windows, so the 12-day peak must stay within
1.25× the 3-day one (``config/allocators.py`` says why the allocators matter there). The
many-accounts run (``MemorySize.many_world``) is the run-wide worst case: 24 accounts whose
chunks each announce just under the bound, so none is read in windows and every open slot
may hold a whole chunk.

The BigQuery side is counted from the emulator's job list: at most one load job and one DML
statement per table and run, whatever the number of advertisers.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.stack import SIM_TOKEN, Simulator, WorldSize, window
from controller.reports.catalog import REPORT_TYPES, REPORTS
from database.bigquery import make_client
from local_env.bigquery_emulator import LocalBigQuery, install
from local_env.stack import ServiceProcess

PROJECT = "local-project"
MIB = 1024 * 1024
SAMPLE_SECONDS = 0.05


# 4 advertisers × 1,000 ads, delivering on 90 % of the days: ~3,600 ad rows a day.
MEMORY_WORLD = WorldSize(advertisers=4, campaigns=10, adgroups=10, ads=10, delivery=0.9)
# One big account at the default width (every family: 3 requests a page): 15,000 ads (under
# TikTok's 20,000-ad cap) delivering on 90 % of the days, ~13,500 ad rows a day.
WIDE_WORLD = WorldSize(advertisers=1, campaigns=10, adgroups=10, ads=150, delivery=0.9)
# The run-wide holding's worst case: 24 accounts (one per request thread) of 330 ads, ~8,900
# ad rows a 30-day chunk, just under TIKTOK_CHUNK_ROW_BOUND (10,000): no chunk is read in
# windows, so every open slot may hold a whole chunk at the default width.
MANY_WORLD = WorldSize(advertisers=24, campaigns=3, adgroups=10, ads=11, delivery=0.9)


@dataclass(frozen=True)
class MemorySize:
    """Sizes of the memory runs: ad-level rows ≈ advertisers × ads × days × delivery."""

    world: WorldSize = MEMORY_WORLD
    small_days: int = 28  # ≈ 100k rows
    large_days: int = 278  # ≈ 1M rows
    jobs_days: int = 3  # the all-report-types run that counts BigQuery jobs per table
    qps: int = 1000
    qpm: int = 60000
    # One big account at the default width over wide_days[0] and wide_days[1] days: its peak
    # RSS must not grow with its rows (README "Memory at full width"). None: not run.
    wide_world: WorldSize | None = None
    wide_days: tuple[int, int] = (3, 12)
    # The same account over ~1M rows (74 days of ~13,500): peak RSS < 512 MiB at the default
    # width. None: not run.
    wide_million_days: int | None = 74
    # Many accounts each just under the row bound, over ``many_days`` (one chunk each), at
    # the default width: what the open slots hold at worst (< 512 MiB). None: not run.
    many_world: WorldSize | None = None
    many_days: int = 30


@dataclass
class RssSampler:
    """Samples the RSS of a process tree (gunicorn master + workers) in a thread."""

    pid: int
    interval: float = SAMPLE_SECONDS
    peak_worker: int = 0
    peak_total: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        master = psutil.Process(self.pid)
        while not self._stop.is_set():
            try:
                workers = master.children(recursive=True)
                worker_rss = sum(_rss(p) for p in workers)
                total = _rss(master) + worker_rss
            except psutil.Error:
                break  # the service exited
            self.peak_worker = max(self.peak_worker, worker_rss)
            self.peak_total = max(self.peak_total, total)
            self.samples += 1
            self._stop.wait(self.interval)


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


@dataclass
class ServiceRun:
    """One POST /run measured from outside the service."""

    label: str
    report_types: list[str]
    advertisers: int
    days: int
    status: int
    rows: int
    requests: int
    wall_seconds: float
    peak_worker_rss: int
    peak_total_rss: int
    rss_samples: int
    worker_cpu_seconds: float
    jobs_per_table: dict[str, dict[str, int]]
    errors: int

    @property
    def max_load_jobs(self) -> int:
        return max((j["load"] for j in self.jobs_per_table.values()), default=0)

    @property
    def max_dml_jobs(self) -> int:
        return max((j["dml"] for j in self.jobs_per_table.values()), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "report_types": self.report_types,
            "advertisers": self.advertisers,
            "days": self.days,
            "http_status": self.status,
            "rows": self.rows,
            "requests": self.requests,
            "errors": self.errors,
            "wall_seconds": round(self.wall_seconds, 2),
            "peak_worker_rss_mib": round(self.peak_worker_rss / MIB, 1),
            "peak_total_rss_mib": round(self.peak_total_rss / MIB, 1),
            "rss_samples": self.rss_samples,
            "worker_cpu_seconds": round(self.worker_cpu_seconds, 2),
            "bigquery_jobs_per_table": self.jobs_per_table,
        }


@dataclass
class MemoryResult:
    small: ServiceRun
    large: ServiceRun
    jobs: ServiceRun
    wide_small: ServiceRun | None = None  # one big account, default width, fewer days
    wide_large: ServiceRun | None = None  # the same account over 4× the days
    wide_million: ServiceRun | None = None  # the same account over ~1M rows
    many: ServiceRun | None = None  # many accounts, each chunk just under the row bound

    @property
    def wide_growth(self) -> float | None:
        """Peak RSS of the big account's long run ÷ its short run's (the target is ≤ 1.25)."""
        if self.wide_small is None or self.wide_large is None:
            return None
        return self.wide_large.peak_worker_rss / self.wide_small.peak_worker_rss

    @property
    def growth(self) -> float:
        """Peak RSS at the large size ÷ at the small size (the target is below 1.5)."""
        return self.large.peak_worker_rss / self.small.peak_worker_rss

    def to_json(self) -> dict[str, Any]:
        return {
            "small": self.small.to_json(),
            "large": self.large.to_json(),
            "jobs": self.jobs.to_json(),
            "peak_rss_ratio_large_to_small": round(self.growth, 3),
            "wide_small": self.wide_small.to_json() if self.wide_small else None,
            "wide_large": self.wide_large.to_json() if self.wide_large else None,
            "wide_peak_rss_ratio": None if self.wide_growth is None else round(self.wide_growth, 3),
            "wide_million": self.wide_million.to_json() if self.wide_million else None,
            "many": self.many.to_json() if self.many else None,
        }


def count_jobs(client: Any, dataset: str, since: datetime) -> dict[str, dict[str, int]]:
    """Top-level load and query jobs per destination table created since ``since``.

    A load job names its staging table (``<table>__staging_<hex>``); a DML script names the
    target table between backticks. Child jobs of a script are not separate statements.
    """
    tables = [spec.table for spec in REPORTS.values()]
    counts: dict[str, Counter[str]] = {}
    for job in client.list_jobs(min_creation_time=since):
        if getattr(job, "parent_job_id", None):
            continue
        if job.job_type == "load":
            destination = job.destination
            if destination.dataset_id != dataset:
                continue
            table = destination.table_id.split("__staging_")[0]
            counts.setdefault(table, Counter())["load"] += 1
        elif job.job_type == "query":
            query = job.query or ""
            for table in tables:
                if f".{dataset}.{table}`" in query:
                    counts.setdefault(table, Counter())["dml"] += 1
    return {table: {"load": c["load"], "dml": c["dml"]} for table, c in sorted(counts.items())}


def post_run(
    service: ServiceProcess,
    bigquery: LocalBigQuery,
    sim: Simulator,
    *,
    label: str,
    report_types: list[str],
    days: int,
) -> ServiceRun:
    """POST /run while sampling RSS; then read the simulator's and BigQuery's counters."""
    sim.reset()
    start, end = window(days)
    dataset = f"bench_{label}_{int(time.time())}"
    payload = {
        "access_token": SIM_TOKEN,
        "advertiser_ids": sim.advertiser_ids,
        "project_id": PROJECT,
        "dataset_id": dataset,
        "if_exists": "replace",
        "report_types": report_types,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
    }
    since = datetime.now(UTC).replace(microsecond=0)
    began = time.perf_counter()
    with RssSampler(service.proc.pid) as sampler:
        response = requests.post(f"{service.url}/run", json=payload, timeout=900)
    wall = time.perf_counter() - began
    body = response.json()
    worker_cpu = sum(
        sum(p.cpu_times()[:2]) for p in psutil.Process(service.proc.pid).children(recursive=True)
    )
    client = make_client(PROJECT, location="US", emulator_host=bigquery.endpoint)
    try:
        jobs = count_jobs(client, dataset, since)
    finally:
        client.close()
    return ServiceRun(
        label=label,
        report_types=report_types,
        advertisers=len(sim.advertiser_ids),
        days=days,
        status=response.status_code,
        rows=int(body.get("total_inserted_rows", 0)),
        requests=int(sim.stats()["requests"]),
        wall_seconds=wall,
        peak_worker_rss=sampler.peak_worker,
        peak_total_rss=sampler.peak_total,
        rss_samples=sampler.samples,
        worker_cpu_seconds=worker_cpu,
        jobs_per_table=jobs,
        errors=int(body.get("errors_count", 0)) or (0 if response.ok else 1),
    )


def run(
    size: MemorySize,
    log_dir: Path,
    *,
    bigquery: LocalBigQuery | None = None,
    progress=print,
) -> MemoryResult:
    """The small and large ad-level runs, then one run of every report type for job counts.

    ``bigquery``: a running local-bigquery (project ``PROJECT``) to use instead of starting
    one (the smoke test shares the test session's).
    """
    with contextlib.ExitStack() as stack:
        if bigquery is None:
            install()  # no-op when .venv-bq is ready (`make bq-venv`)
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-bq-"))
            bigquery = stack.enter_context(LocalBigQuery(PROJECT, data_dir))
        sim = stack.enter_context(
            Simulator(log_dir / "simulator-memory.log", size.world, qps=size.qps, qpm=size.qpm)
        )
        env = {
            "TIKTOK_API_BASE_URL": sim.base_url,
            "BIGQUERY_EMULATOR_HOST": bigquery.endpoint,
            "TIKTOK_QPS": str(size.qps),
            "TIKTOK_QPM": str(size.qpm),
        }
        runs: dict[str, ServiceRun] = {}
        plan = [
            ("small", ["ad"], size.small_days),
            ("large", ["ad"], size.large_days),
            ("jobs", list(REPORT_TYPES), size.jobs_days),
        ]
        _measure(plan, size.world, sim, bigquery, env, log_dir, runs, progress)

        def measure_on(name: str, world: WorldSize, plan: list[tuple[str, list[str], int]]) -> None:
            """``plan``'s runs against a simulator process of ``world`` of their own."""
            own = stack.enter_context(
                Simulator(
                    log_dir / f"simulator-memory-{name}.log", world, qps=size.qps, qpm=size.qpm
                )
            )
            own_env = {**env, "TIKTOK_API_BASE_URL": own.base_url}
            _measure(plan, world, own, bigquery, own_env, log_dir, runs, progress)

        if size.wide_world is not None:
            wide_days = list(size.wide_days)
            if size.wide_million_days:
                wide_days.append(size.wide_million_days)
            wide_plan = [(f"wide{days}", ["ad"], days) for days in dict.fromkeys(wide_days)]
            measure_on("wide", size.wide_world, wide_plan)
        if size.many_world is not None:
            measure_on("many", size.many_world, [(f"many{size.many_days}", ["ad"], size.many_days)])
    return MemoryResult(
        small=runs["small"],
        large=runs["large"],
        jobs=runs["jobs"],
        wide_small=runs.get(f"wide{size.wide_days[0]}"),
        wide_large=runs.get(f"wide{size.wide_days[1]}"),
        wide_million=runs.get(f"wide{size.wide_million_days}") if size.wide_million_days else None,
        many=runs.get(f"many{size.many_days}"),
    )


def _measure(
    plan: list[tuple[str, list[str], int]],
    world: WorldSize,
    sim: Simulator,
    bigquery: LocalBigQuery,
    env: dict[str, str],
    log_dir: Path,
    runs: dict[str, ServiceRun],
    progress: Any,
) -> None:
    """One POST /run per (label, report types, days), each in a fresh gunicorn."""
    for label, report_types, days in plan:
        expected = world.expected_ad_rows(days)
        progress(
            f"memory: POST /run {label}: {'+'.join(report_types)}, {days} days"
            f" (≈{expected:,} ad rows), fresh gunicorn"
        )
        log_path = log_dir / f"service-{label}.log"
        log_path.unlink(missing_ok=True)
        service = ServiceProcess(log_path, env)
        try:
            runs[label] = post_run(
                service, bigquery, sim, label=label, report_types=report_types, days=days
            )
        finally:
            service.stop()
        r = runs[label]
        progress(
            f"memory: {label}: HTTP {r.status}, {r.rows:,} rows in {r.wall_seconds:.1f} s,"
            f" peak RSS {r.peak_worker_rss / MIB:.0f} MiB (worker)"
        )
