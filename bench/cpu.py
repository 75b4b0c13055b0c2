"""Target 2: CPU per row from raw API JSON bytes to the Parquet bytes handed to BigQuery.

Pages are rendered beforehand by the simulator's own request handler (``SimulatorApp``,
in-process, rate limit off) for the query string the service's ``TikTokClient`` sends, so
the bytes are exactly the wire format, and rendering is not measured. The measured path is
the service's, in one thread: the body reader (``normalize.page_reader``: the native reader,
or ``decode_json`` for a body it declines) → ``normalize.page_to_table`` →
``normalize.finish`` → ``TableWriter.write`` (pyarrow ``ParquetWriter``) → ``close``.
``time.process_time`` counts the CPU of the whole process (Arrow's helper threads too).
``--cpu-python`` measures the pure-Python path (orjson + pyarrow) for comparison.

Each stage is timed too, so the table can say where a row's microseconds go.
"""

from __future__ import annotations

import dataclasses
import gc
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.stack import SIM_TOKEN, window
from controller.pipeline import table_definition
from controller.reports.catalog import REPORTS
from controller.tiktok.client import PAGE_SIZE, REPORT_PATH, TikTokClient, decode_json
from controller.tiktok.rate_limiter import RateLimiter
from controller.tiktok.reader import finish, page_reader, page_to_table
from database.bigquery import TableWriter
from tiktok_simulator import SimulatorApp, World

API_PATH = "/open_api/v1.3/" + REPORT_PATH


@dataclass(frozen=True)
class CpuSize:
    """How many full ad-level pages (1,000 rows × every ad metric) to push through."""

    pages: int = 100
    repeats: int = 5  # the best of N passes: other processes on the machine only add noise
    python_only: bool = False  # skip the native reader: the orjson + pyarrow path alone


@dataclass
class CpuResult:
    pages: int
    rows: int
    metrics: int
    body_bytes: int
    parquet_bytes: int
    cpu_seconds: float  # best pass, whole path
    stages: dict[str, float]  # CPU seconds per stage in that pass
    reader: str  # "native" or "python": which path read the pages
    python_us_per_row: float | None = None  # the orjson + pyarrow path on the same pages

    @property
    def us_per_row(self) -> float:
        return self.cpu_seconds / self.rows * 1e6

    def stage_us_per_row(self, stage: str) -> float:
        return self.stages[stage] / self.rows * 1e6

    def to_json(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "rows": self.rows,
            "metrics_per_row": self.metrics,
            "reader": self.reader,
            "python_path_us_per_row": (
                round(self.python_us_per_row, 2) if self.python_us_per_row else None
            ),
            "json_bytes": self.body_bytes,
            "parquet_bytes": self.parquet_bytes,
            "cpu_seconds": round(self.cpu_seconds, 4),
            "us_per_row": round(self.us_per_row, 2),
            "rows_per_cpu_second": round(self.rows / self.cpu_seconds),
            "stage_us_per_row": {
                stage: round(self.stage_us_per_row(stage), 2) for stage in self.stages
            },
        }


def page_metrics() -> list[str]:
    """The metrics of one ad-level request: the first group of 100 (every family takes 3)."""
    return REPORTS["ad"].metric_groups()[0]


def render_pages(pages: int) -> list[bytes]:
    """``pages`` full ad-level pages of raw JSON, as the simulator serves them."""
    spec = REPORTS["ad"]
    # One advertiser whose one 30-day report holds every page: 100 ads per campaign, each
    # delivering on ~27 of the 30 days.
    campaigns = -(-pages * PAGE_SIZE // (100 * 27))
    world = World(
        seed=42,
        advertisers=1,
        campaigns_per_advertiser=campaigns,
        adgroups_per_campaign=10,
        ads_per_adgroup=10,
        delivery_probability=0.9,
        deleted_fraction=0.1,
    )
    app = SimulatorApp(world, rate_limit=False, throttle_threshold=10**9)
    advertiser = app.world.advertiser_ids[0]
    start, end = window(30)
    client = TikTokClient("http://127.0.0.1/open_api/v1.3/", SIM_TOKEN, RateLimiter(1, 1))
    try:
        bodies = []
        for page in range(1, pages + 1):
            params = client.report_params(spec, advertiser, page_metrics(), start, end, page)
            reply = app.handle("GET", API_PATH, urlencode(params), {"Access-Token": SIM_TOKEN})
            if reply.status != 200 or not reply.body.startswith(b'{"code":0'):
                raise RuntimeError(f"simulator refused page {page}: {reply.body[:200]!r}")
            bodies.append(reply.body)
    finally:
        client.close()
    return bodies


def measure(
    bodies: list[bytes], workdir: Path, python_only: bool = False
) -> tuple[float, dict[str, float], int, int, str]:
    """One pass over the pages: (CPU seconds, CPU per stage, rows, Parquet bytes, reader)."""
    spec = REPORTS["ad"]
    metrics = page_metrics()
    read = page_reader(spec, metrics)
    readers = set()
    extracted_at = datetime.now(UTC)
    stages = dict.fromkeys(("read", "page_to_table", "finish", "parquet"), 0.0)
    path = workdir / f"cpu-{time.monotonic_ns()}.parquet"
    gc.collect()  # start every pass from the same heap
    clock = time.process_time
    began = clock()
    writer = TableWriter(table_definition(spec), path)
    rows = 0
    for body in bodies:
        t0 = clock()
        native = None if python_only else read(body)
        page_rows = native[1] if native else decode_json(body)[1]
        t1 = clock()
        readers.add("native" if native else "python")
        table = page_to_table(spec, metrics, page_rows)
        t2 = clock()
        typed = finish(spec, table, "7000000000000000000", extracted_at)
        t3 = clock()
        writer.write(typed)
        t4 = clock()
        stages["read"] += t1 - t0
        stages["page_to_table"] += t2 - t1
        stages["finish"] += t3 - t2
        stages["parquet"] += t4 - t3
        rows += len(page_rows)
    t5 = clock()
    writer.close()
    total = clock() - began
    stages["parquet"] += clock() - t5
    size = path.stat().st_size
    path.unlink()
    return total, stages, rows, size, "+".join(sorted(readers))


def run(size: CpuSize, *, progress=print) -> CpuResult:
    progress(f"cpu: rendering {size.pages} ad-level pages of {PAGE_SIZE} rows (not measured)…")
    bodies = render_pages(size.pages)
    result = _best_of(bodies, size, size.python_only)
    if result.reader == "native":
        progress("cpu: the same pages through the orjson + pyarrow path, for comparison…")
        python = dataclasses.replace(size, repeats=min(size.repeats, 2))  # only for the ratio
        result.python_us_per_row = _best_of(bodies, python, python_only=True).us_per_row
    return result


def _best_of(bodies: list[bytes], size: CpuSize, python_only: bool) -> CpuResult:
    best: tuple[float, dict[str, float], int, int, str] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        for _ in range(size.repeats):
            attempt = measure(bodies, Path(tmp), python_only)
            if best is None or attempt[0] < best[0]:
                best = attempt
    assert best is not None
    cpu, stages, rows, parquet_bytes, reader = best
    return CpuResult(
        pages=len(bodies),
        rows=rows,
        metrics=len(page_metrics()),
        body_bytes=sum(map(len, bodies)),
        parquet_bytes=parquet_bytes,
        cpu_seconds=cpu,
        stages=stages,
        reader=reader,
    )
