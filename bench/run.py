"""``make bench``: rate-limit efficiency, CPU per row, memory and BigQuery work per run.

    python -m bench.run                 # full sizes (~4 min on 2 cores)
    python -m bench.run --quick         # the same scenarios, small (under a minute)
    python -m bench.run --skip-memory --advertisers 20 --days 60

Starts the TikTok simulator as its own process (and local-bigquery plus the gunicorn service
for the memory scenario), runs each scenario, prints one table and writes the same figures
to ``bench/results/latest.json`` and a chart of requests/s over time to
``bench/results/rate.png`` (committed: they are small). ``--quick`` writes to
``.local/bench/results/`` instead, so a smoke run never replaces the full run's figures.
Process logs go to ``.local/bench/``.

Scenarios (see each module's docstring for what is measured and why):
  rate    bench/rate.py    10 QPS / 600 QPM, 1 s latency: sustained rate, 40100s, speed-up
  reports bench/reports.py the same for an AUDIENCE (ad_country) and an hourly (ad_hourly) report
  cpu     bench/cpu.py     µs of CPU per row from raw JSON bytes to Parquet bytes
  endtoend bench/endtoend.py µs of CPU per row and per metric value end to end (the CSV tool
          against the simulator process), default and seed width, native reader on and off
  memory  bench/memory.py  peak RSS of POST /run at ~100k and ~1M rows; BigQuery jobs/table;
          one big account at the default width over 3 and 12 days (peak must not grow)
  families bench/families.py every metric family vs the App-only set: requests, wall time
  simulator bench/simulator.py the simulator alone: 1,000-row × 100-metric pages per second,
          sequential, 2 and 4 clients, and at the default width (target ≥ 50 req/s)
  backfill bench/backfill.py 50 advertisers × 2 years × 4 reports through the DAG's planner
          and POST /run units at the planned parallelism (scaled TikTok): wall ÷ minimum
          (only with --backfill or --only-backfill; it takes a few minutes)
  gmv_max bench/gmv_max.py  TikTok Shop accounts: GMV Max and BASIC requests per rate budget,
          40100s (only with --gmv-max or --only-gmv-max)

    python -m bench.run --only-backfill  # e.g. make bench BENCH_ARGS=--only-backfill
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from bench import (
    backfill,
    cpu,
    endtoend,
    families,
    gmv_max,
    memory,
    rate,
    report,
    reports,
    simulator,
)
from bench.stack import WorldSize
from local_env.stack import ROOT

RESULTS_DIR = ROOT / "bench" / "results"
LOG_DIR = ROOT / ".local" / "bench"
QUICK_RESULTS_DIR = LOG_DIR / "results"

FULL = {
    "rate": rate.RateSize(wide=True),
    "reports": reports.ReportsSize(),
    "cpu": cpu.CpuSize(),
    "endtoend": endtoend.EndToEndSize(),
    "memory": memory.MemorySize(wide_world=memory.WIDE_WORLD, many_world=memory.MANY_WORLD),
    "families": families.FamiliesSize(),
    "backfill": backfill.BackfillSize(),
    "simulator": simulator.SimulatorSize(),
    "gmv_max": gmv_max.GmvMaxSize(),
}
QUICK = {
    "rate": rate.RateSize(
        world=WorldSize(advertisers=4, campaigns=2, adgroups=5, ads=10, delivery=0.8),
        days=60,
        baseline_advertisers=1,
    ),
    "reports": reports.ReportsSize(
        world=WorldSize(advertisers=4, campaigns=2, adgroups=2, ads=3, delivery=0.8),
        report_days={"ad_country": 70, "ad_hourly": 10},
    ),
    "cpu": cpu.CpuSize(pages=20, repeats=2),
    "endtoend": endtoend.EndToEndSize(short_days=1, long_days=4, repeats=1),
    "memory": memory.MemorySize(
        world=WorldSize(advertisers=2, campaigns=10, adgroups=10, ads=10, delivery=0.9),
        small_days=3,
        large_days=28,
        jobs_days=2,
        wide_world=WorldSize(advertisers=1, campaigns=10, adgroups=10, ads=20, delivery=0.9),
        wide_million_days=None,
    ),
    "families": families.FamiliesSize(
        world=WorldSize(advertisers=2, campaigns=2, adgroups=5, ads=10, delivery=0.8), days=30
    ),
    "backfill": backfill.BackfillSize(
        world=WorldSize(advertisers=6, campaigns=1, adgroups=1, ads=2, delivery=0.6),
        days=400,
        run_deadline=20.0,
    ),
    "simulator": simulator.SimulatorSize(requests=20, full_width_pages=5),
    "gmv_max": gmv_max.GmvMaxSize(
        world=WorldSize(
            advertisers=3, campaigns=1, adgroups=1, ads=2, delivery=0.8, gmv_max_stores=1
        ),
        days=40,
        latency=0.2,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Sizes default to the full run's, or --quick's; any flag overrides one size.",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes: the whole bench in under a minute")
    add("--skip-rate", action="store_true")
    add("--skip-reports", action="store_true", help="no audience/hourly rate scenario")
    add("--skip-cpu", action="store_true")
    add("--skip-endtoend", action="store_true", help="no CSV-tool runs (CPU end to end)")
    add("--skip-memory", action="store_true", help="no local-bigquery, no service process")
    add("--skip-families", action="store_true", help="no all-families vs App-only comparison")
    add("--families-advertisers", type=int, help="advertisers of the families scenario (8)")
    add("--skip-simulator", action="store_true", help="no simulator speed scenario")
    add("--backfill", action="store_true", help="also the agency backfill scenario")
    add("--only-backfill", action="store_true", help="only the agency backfill scenario")
    add("--gmv-max", action="store_true", help="also the TikTok Shop (GMV Max) scenario")
    add("--only-gmv-max", action="store_true", help="only the TikTok Shop (GMV Max) scenario")
    add(
        "--results-dir",
        type=Path,
        help=f"where latest.json and rate.png go ({RESULTS_DIR}; --quick: {QUICK_RESULTS_DIR})",
    )
    rate_flags = parser.add_argument_group("rate scenario")
    rate_flags.add_argument("--advertisers", type=int, help="advertisers (10)")
    rate_flags.add_argument("--days", type=int, help="window in days (150, i.e. 5 chunks)")
    rate_flags.add_argument("--campaigns", type=int, help="campaigns per advertiser (2)")
    rate_flags.add_argument("--adgroups", type=int, help="ad groups per campaign (5)")
    rate_flags.add_argument("--ads", type=int, help="ads per ad group (10: 3 ad pages a chunk)")
    rate_flags.add_argument("--workers", type=int, help="TIKTOK_CONCURRENCY (24)")
    rate_flags.add_argument("--latency", type=float, help="simulator seconds per call (1.0)")
    rate_flags.add_argument("--qps", type=int, help="rate limit, both sides (10)")
    rate_flags.add_argument("--qpm", type=int, help="rate limit, both sides (600)")
    rate_flags.add_argument("--margin", type=float, help="TIKTOK_RATE_MARGIN (0.03)")
    rate_flags.add_argument(
        "--skip-rate-wide", action="store_true", help="no run at the default width (3 req/page)"
    )
    rate_flags.add_argument("--baseline-advertisers", type=int, help="one-worker subset (2)")
    rate_flags.add_argument("--baseline-days", type=int, help="one-worker subset (30)")
    cpu_flags = parser.add_argument_group("cpu scenario")
    cpu_flags.add_argument("--cpu-pages", type=int, help="pages of 1,000 ad rows (100)")
    cpu_flags.add_argument("--cpu-repeats", type=int, help="passes, the best counts (5)")
    cpu_flags.add_argument(
        "--cpu-python", action="store_true", help="measure only the orjson + pyarrow path"
    )
    e2e_flags = parser.add_argument_group("endtoend scenario")
    e2e_flags.add_argument("--endtoend-days", type=int, help="the long window (28 days)")
    e2e_flags.add_argument("--endtoend-repeats", type=int, help="runs per size, least CPU (3)")
    memory_flags = parser.add_argument_group("memory scenario")
    memory_flags.add_argument("--memory-advertisers", type=int, help="advertisers of 1,000 ads (4)")
    memory_flags.add_argument("--small-days", type=int, help="window of the small run (28: ~100k)")
    memory_flags.add_argument("--large-days", type=int, help="window of the large run (278: ~1M)")
    memory_flags.add_argument("--jobs-days", type=int, help="all-report-types run's window (3)")
    memory_flags.add_argument(
        "--skip-wide-memory",
        action="store_true",
        help="no runs of one big account at the default width (3 and 12 days)",
    )
    backfill_flags = parser.add_argument_group("backfill scenario")
    backfill_flags.add_argument("--backfill-advertisers", type=int, help="advertisers (50)")
    backfill_flags.add_argument("--backfill-days", type=int, help="window in days (730)")
    backfill_flags.add_argument("--backfill-parallel", type=int, help="units in flight (5)")
    backfill_flags.add_argument("--backfill-deadline", type=float, help="service deadline (540)")
    return parser


def _override(size, **changes):
    """``size`` with the flags that were given (None means: keep the preset)."""
    given = {key: value for key, value in changes.items() if value is not None}
    return dataclasses.replace(size, **given) if given else size


def sizes_from(args: argparse.Namespace) -> dict:
    preset = QUICK if args.quick else FULL
    rate_size = preset["rate"]
    rate_size = _override(
        rate_size,
        world=_override(
            rate_size.world,
            advertisers=args.advertisers,
            campaigns=args.campaigns,
            adgroups=args.adgroups,
            ads=args.ads,
        ),
        days=args.days,
        workers=args.workers,
        latency=args.latency,
        qps=args.qps,
        qpm=args.qpm,
        margin=args.margin,
        baseline_advertisers=args.baseline_advertisers,
        baseline_days=args.baseline_days,
    )
    if args.skip_rate_wide:
        rate_size = dataclasses.replace(rate_size, wide=False)
    memory_size = preset["memory"]
    memory_size = _override(
        memory_size,
        world=_override(memory_size.world, advertisers=args.memory_advertisers),
        small_days=args.small_days,
        large_days=args.large_days,
        jobs_days=args.jobs_days,
    )
    if args.skip_wide_memory:
        memory_size = dataclasses.replace(memory_size, wide_world=None, many_world=None)
    cpu_size = _override(
        preset["cpu"],
        pages=args.cpu_pages,
        repeats=args.cpu_repeats,
        python_only=args.cpu_python or None,
    )
    endtoend_size = _override(
        preset["endtoend"], long_days=args.endtoend_days, repeats=args.endtoend_repeats
    )
    families_size = preset["families"]
    families_size = _override(
        families_size,
        world=_override(families_size.world, advertisers=args.families_advertisers),
    )
    backfill_size = preset["backfill"]
    backfill_size = _override(
        backfill_size,
        world=_override(backfill_size.world, advertisers=args.backfill_advertisers),
        days=args.backfill_days,
        parallel=args.backfill_parallel,
        run_deadline=args.backfill_deadline,
    )
    return {
        "rate": rate_size,
        "reports": preset["reports"],
        "cpu": cpu_size,
        "endtoend": endtoend_size,
        "memory": memory_size,
        "families": families_size,
        "backfill": backfill_size,
        "simulator": preset["simulator"],
        "gmv_max": preset["gmv_max"],
    }


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sizes = sizes_from(args)
    results = report.Results(
        quick=args.quick,
        sizes={name: dataclasses.asdict(size) for name, size in sizes.items()},
    )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    # Other processes on the machine delay arrivals and steal CPU: say how busy it was.
    load_before = [round(x, 2) for x in os.getloadavg()]
    progress(f"load average before: {load_before} on {os.cpu_count()} CPUs")
    began = time.perf_counter()
    if args.only_backfill or args.only_gmv_max:
        args.skip_rate = args.skip_reports = args.skip_cpu = args.skip_memory = True
        args.skip_endtoend = args.skip_families = args.skip_simulator = True
    if not args.skip_rate:
        results.rate = rate.run(sizes["rate"], LOG_DIR, progress=progress)
    if not args.skip_reports:
        results.reports = reports.run(sizes["reports"], LOG_DIR, progress=progress)
    if not args.skip_cpu:
        results.cpu = cpu.run(sizes["cpu"], progress=progress)
    if not args.skip_endtoend:
        results.endtoend = endtoend.run(sizes["endtoend"], LOG_DIR, progress=progress)
    if not args.skip_memory:
        results.memory = memory.run(sizes["memory"], LOG_DIR, progress=progress)
    if not args.skip_families:
        results.families = families.run(sizes["families"], LOG_DIR, progress=progress)
    if not args.skip_simulator:
        results.simulator = simulator.run(sizes["simulator"], LOG_DIR, progress=progress)
    if args.backfill or args.only_backfill:
        results.backfill = backfill.run(sizes["backfill"], LOG_DIR, progress=progress)
    if args.gmv_max or args.only_gmv_max:
        results.gmv_max = gmv_max.run(sizes["gmv_max"], LOG_DIR, progress=progress)
    rows = report.table_rows(results)
    print(report.render_table(rows))
    data = report.to_json(results, rows)
    data["bench_seconds"] = round(time.perf_counter() - began, 1)
    data["machine"]["load_average_before"] = load_before
    results_dir = args.results_dir or (QUICK_RESULTS_DIR if args.quick else RESULTS_DIR)
    # --only-backfill/--only-gmv-max keep the full run's latest.json: their figures go to a
    # file of their own.
    name = "latest.json"
    if args.only_backfill:
        name = "backfill.json"
    elif args.only_gmv_max:
        name = "gmv_max.json"
    written = [report.write_json(data, results_dir / name)]
    if results.rate:
        written.append(report.write_rate_chart(results.rate, results_dir / "rate.png"))
    progress(f"done in {data['bench_seconds']:.0f} s; wrote {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
