"""Smoke test of the benchmark (``bench/``): every scenario at a tiny size, in seconds.

Only that the figures exist and are sane is asserted, never a timing: the targets are
measured by ``make bench`` on purpose-sized workloads. This keeps the benchmark code from
rotting between benchmark runs (a renamed function, a changed stats field, a new column).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
from bench import run as bench_run
from bench.stack import WorldSize
from controller.reports import registry
from tests.support.tiers import spawns_processes

# Every level fits in one page; delivery on every day, so row counts are exact.
TINY_WORLD = WorldSize(advertisers=2, campaigns=1, adgroups=2, ads=3, delivery=1.0)


def quiet(_message: str) -> None:
    """Progress lines are for people running the bench, not for the test log."""


@pytest.fixture(scope="module")
@spawns_processes
def rate_result(tmp_path_factory: pytest.TempPathFactory) -> rate.RateResult:
    size = rate.RateSize(
        world=TINY_WORLD,
        days=3,
        workers=4,
        latency=0.05,
        qps=20,
        qpm=1200,
        baseline_advertisers=1,
        baseline_days=2,
    )
    return rate.run(size, tmp_path_factory.mktemp("bench-logs"), progress=quiet)


@pytest.fixture(scope="module")
def cpu_result() -> cpu.CpuResult:
    return cpu.run(cpu.CpuSize(pages=2, repeats=1), progress=quiet)


@pytest.fixture(scope="module")
@spawns_processes
def memory_result(tmp_path_factory: pytest.TempPathFactory, local_bigquery) -> memory.MemoryResult:
    size = memory.MemorySize(
        world=TINY_WORLD,
        small_days=1,
        large_days=3,
        jobs_days=1,
        many_world=TINY_WORLD,
        many_days=2,
    )
    return memory.run(
        size, tmp_path_factory.mktemp("bench-logs"), bigquery=local_bigquery, progress=quiet
    )


def test_rate_scenario_counts_requests_and_no_40100(rate_result: rate.RateResult):
    concurrent, baseline = rate_result.concurrent, rate_result.baseline
    # 2 advertisers × 4 report types × 1 chunk × 1 page × 1 request (the core metrics)
    assert concurrent.requests == 2 * 4
    assert baseline.requests == 1 * 4
    assert concurrent.rows == baseline.rows * 2 * 3 / 2 > 0  # twice the advertisers, 3/2 days
    assert concurrent.failed_items == baseline.failed_items == 0
    assert concurrent.rate_limited == baseline.rate_limited == 0
    assert concurrent.codes == {"0": 8}
    assert concurrent.wall_seconds > 0 and concurrent.rps > 0
    assert sum(concurrent.per_second) == concurrent.requests
    assert 1 <= concurrent.max_in_rolling_second <= 20
    assert rate_result.baseline_projected_seconds > 0 and rate_result.speedup > 0
    assert rate_result.to_json()["concurrent"]["rate_limited_40100"] == 0
    assert concurrent.families == ("core",) and concurrent.simulator_cpu_seconds >= 0
    assert rate_result.wide is None  # the default-width run is make bench's (RateSize.wide)


@pytest.mark.e2e  # the bench starts the simulator as a process
def test_families_scenario_compares_all_families_with_app_only(tmp_path: Path):
    size = families.FamiliesSize(
        world=TINY_WORLD, days=3, workers=4, latency=0.05, qps=20, qpm=1200
    )
    result = families.run(size, tmp_path, progress=quiet)
    # every family: 3 requests per level; the App-only set: 1 (2 at the ad level, 103 metrics)
    assert (result.full.requests, result.app_only.requests) == (2 * 4 * 3, 2 * 5)
    assert result.full.rows == result.app_only.rows > 0  # columns, not rows
    assert result.full.failed_items == result.app_only.failed_items == 0
    assert result.full.rate_limited == result.app_only.rate_limited == 0
    assert result.to_json()["request_ratio"] == 2.4
    rows = report.table_rows(report.Results(quick=True, sizes={}, families=result))
    assert [row["scenario"] for row in rows] == [
        "families: all (3 req/level)",
        "families: App-only",
    ]


def test_rolling_and_sustained_rates():
    assert rate.rolling_max([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert rate.sustained_rate([0.0, 1.0]) is None  # no steady state in a 1-s run
    steady = [i * 0.1 for i in range(101)]  # 10/s for 10 s
    assert rate.sustained_rate(steady) == pytest.approx(10.0, rel=0.05)
    assert rate.per_second([10.0, 10.5, 11.2]) == [2, 1]


def test_cpu_scenario_measures_every_stage(cpu_result: cpu.CpuResult):
    assert cpu_result.rows == 2 * 1000
    assert cpu_result.metrics == 100  # one request's metric group
    assert cpu_result.cpu_seconds > 0 and cpu_result.us_per_row > 0
    assert set(cpu_result.stages) == {"read", "page_to_table", "finish", "parquet"}
    assert all(seconds >= 0 for seconds in cpu_result.stages.values())
    assert cpu_result.reader == "native"  # the simulator's pages never need the JSON path
    assert cpu_result.python_us_per_row and cpu_result.python_us_per_row > 0
    assert cpu_result.parquet_bytes > 0 and cpu_result.body_bytes > cpu_result.parquet_bytes


def test_memory_scenario_samples_rss_and_counts_jobs(memory_result: memory.MemoryResult):
    small, large, jobs = memory_result.small, memory_result.large, memory_result.jobs
    assert (small.status, large.status, jobs.status) == (200, 200, 200)
    # advertisers × ads (6 and a Promote one) × days
    assert (small.rows, large.rows) == (2 * 7 * 1, 2 * 7 * 3)
    assert jobs.rows > 2 * 7  # all four levels
    for run in (small, large, jobs):
        assert run.errors == 0
        assert run.rss_samples > 0 and run.peak_worker_rss > 0
        assert run.peak_total_rss >= run.peak_worker_rss
        assert run.requests > 0 and run.worker_cpu_seconds > 0
        assert max(run.max_load_jobs, run.max_dml_jobs) == 1
    assert set(jobs.jobs_per_table) == {
        "TKT000_TIKTOK_ADS_RUNS",  # the run log: one load job per run
        "TKT001_TIKTOK_ADS_ADVERTISER",
        "TKT002_TIKTOK_ADS_CAMPAIGN",
        "TKT003_TIKTOK_ADS_ADGROUP",
        "TKT004_TIKTOK_ADS_AD",
    }
    assert memory_result.growth > 0
    many = memory_result.many  # the run-wide worst case's run, here on the tiny world
    assert many is not None and (many.status, many.errors) == (200, 0)
    assert many.rows == 2 * 7 * 2 and many.peak_worker_rss > 0


def test_report_table_json_and_chart(
    rate_result: rate.RateResult,
    cpu_result: cpu.CpuResult,
    memory_result: memory.MemoryResult,
    tmp_path: Path,
):
    results = report.Results(
        quick=True, sizes={}, rate=rate_result, cpu=cpu_result, memory=memory_result
    )
    rows = report.table_rows(results)
    # The concurrent run idle and beside a CPU-bound process, the one-worker baseline.
    assert [row["scenario"].split(":")[0] for row in rows[:4]] == ["rate", "rate", "rate", "cpu"]
    assert len(rows) == 8
    assert rows[-1]["scenario"] == "/run 2 accounts just under the row bound, default width, 2 d"
    table = report.render_table(rows)
    assert "CPU µs/row" in table and "peak RSS MiB" in table
    assert all(row["target"].endswith(("PASS", "MISS")) for row in rows if row.get("target"))
    written = report.write_json(report.to_json(results, rows), tmp_path / "latest.json")
    data = json.loads(written.read_text())
    assert data["rate"]["concurrent"]["rate_limited_40100"] == 0
    assert data["rate"]["concurrent"]["tiktok_ratio_to_limit"] > 0
    assert data["rate"]["concurrent_cpu_busy"]["requests"] == data["rate"]["concurrent"]["requests"]
    assert data["cpu"]["us_per_row"] > 0
    assert data["memory"]["large"]["peak_worker_rss_mib"] > 0
    assert data["memory"]["many"]["rows"] == 2 * 7 * 2
    chart = report.write_rate_chart(rate_result, tmp_path / "rate.png")
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_cli_sizes_and_a_run_with_every_scenario_skipped(tmp_path: Path, capsys):
    parser = bench_run.build_parser()
    quick = bench_run.sizes_from(parser.parse_args(["--quick", "--advertisers", "3"]))
    assert quick["rate"].world.advertisers == 3
    assert quick["rate"].days == bench_run.QUICK["rate"].days
    full = bench_run.sizes_from(parser.parse_args(["--large-days", "200"]))
    assert full["memory"].large_days == 200 and full["rate"] == bench_run.FULL["rate"]
    argv = ["--skip-rate", "--skip-reports", "--skip-cpu", "--skip-memory", "--skip-families"]
    argv += ["--skip-endtoend", "--skip-simulator"]
    argv += ["--results-dir", str(tmp_path)]
    assert bench_run.main(argv) == 0
    assert "scenario" in capsys.readouterr().out
    assert json.loads((tmp_path / "latest.json").read_text())["rate"] is None


@pytest.mark.e2e  # the bench starts the simulator as a process
def test_reports_scenario_measures_an_audience_and_an_hourly_report(tmp_path: Path):
    size = reports.ReportsSize(
        world=TINY_WORLD,
        report_days={"ad_country": 7, "ad_hourly": 2},
        workers=4,
        latency=0.05,
        qps=20,
        qpm=1200,
    )
    result = reports.run(size, tmp_path, progress=quiet)
    country, hourly = result.runs["ad_country"], result.runs["ad_hourly"]
    assert country.requests == 2  # 2 advertisers × one 7-day AUDIENCE request
    # 2 advertisers × 2 days, one day per request, each in two metric groups: the seed's
    # families and the ad attributes (objective, placement, promotion type, text, and the
    # Upgraded Smart+ ad_id_v2 and campaign_automation_type) are 103
    hourly_groups = registry.get("ad_hourly").metric_groups()
    assert [len(g) for g in hourly_groups] == [100, 3]
    assert hourly.requests == 2 * 2 * 2
    assert country.rows > 0 and hourly.rows > 0
    assert country.failed_items == hourly.failed_items == 0
    assert country.rate_limited == hourly.rate_limited == 0
    rows = reports.table_rows(result, 0.9)
    assert [row["scenario"] for row in rows] == [
        "reports: ad_country, 4 workers",
        "reports: ad_hourly, 4 workers",
    ]
    assert json.dumps(result.to_json())


@pytest.mark.e2e  # the bench starts the simulator and the CSV tool as processes
def test_endtoend_scenario_measures_the_csv_tool_per_metric_value(tmp_path: Path):
    size = endtoend.EndToEndSize(world=TINY_WORLD, short_days=1, long_days=3, repeats=1)
    default, python = endtoend.VARIANTS[:2]  # the default width, native reader on and off
    result = endtoend.run(size, tmp_path, variants=(default, python), progress=quiet)
    assert [measured.variant for measured in result.variants] == [default, python]
    width = [len(group) for group in registry.get("ad").metric_groups()]
    for measured in result.variants:
        # advertisers × ads (6 and a Promote one) × days, each page in 3 metric groups
        assert (measured.short.rows, measured.long.rows) == (2 * 7 * 1, 2 * 7 * 3)
        assert (measured.short.requests, measured.long.requests) == (2 * 3, 2 * 3)
        assert measured.variant.metrics == sum(width) and len(width) == 3
        assert measured.long.cpu_seconds > 0
    rows = report.table_rows(report.Results(quick=True, sizes={}, endtoend=result))
    assert [row["scenario"] for row in rows] == [
        f"end to end: default width ({sum(width)} metrics)",
        f"end to end: default width, native reader off ({sum(width)} metrics)",
    ]
    assert rows[0]["target"].endswith(("PASS", "MISS")) and "target" not in rows[1]
    assert json.loads(json.dumps(result.to_json()))["variants"][0]["native_reader"] is True


@pytest.mark.e2e  # the bench starts the simulator as a process
def test_simulator_scenario_times_distinct_full_pages(tmp_path: Path):
    # 100 ads delivering on ~80 % of a 30-day window (deleted ones left out): 2 full pages
    world = WorldSize(advertisers=1, campaigns=1, adgroups=10, ads=10, delivery=0.9)
    size = simulator.SimulatorSize(
        world=world, requests=4, clients=(2,), full_width_pages=2, pages_per_window=2
    )
    result = simulator.run(size, tmp_path, progress=quiet)
    assert [run.label for run in result.runs] == [
        "sequential",
        "2 concurrent clients",
        "full width",
    ]
    assert [run.requests for run in result.runs] == [4, 4, 2 * 3]
    assert all(run.rows == run.requests * 1000 for run in result.runs)  # full pages only
    assert result.runs[-1].metrics == sum(map(len, registry.get("ad").metric_groups()))
    assert all(run.cpu_seconds > 0 and run.per_cpu_second > 0 for run in result.runs)
    rows = report.table_rows(report.Results(quick=True, sizes={}, simulator=result))
    assert [row["scenario"] for row in rows] == [
        "simulator: sequential",
        "simulator: 2 concurrent clients",
        "simulator: full width",
    ]


def test_gmv_max_scenario_counts_requests_per_budget(tmp_path: Path):
    world = WorldSize(advertisers=3, campaigns=1, adgroups=1, ads=1, delivery=1.0, gmv_max_stores=1)
    result = gmv_max.run(
        gmv_max.GmvMaxSize(world=world, days=31, latency=0.05), tmp_path, progress=quiet
    )
    # advertisers 0 and 1 have a usable store each; 31 days are two windows
    assert (result.shops, result.stores) == (2, 2)
    assert result.requests == {"store_list": 3, "gmv_max_report": 2 * 4 * 2, "basic_report": 3 * 2}
    assert result.requests["gmv_max_report"] == result.expected_gmv_max_requests
    assert result.rate_limited == result.failed_items == 0 and result.rows > 0
    assert gmv_max.table_row(result)["target"].endswith("PASS")
    assert json.dumps(result.to_json())


def test_backfill_scenario_is_selected_and_sized_by_flags():
    parser = bench_run.build_parser()
    sizes = bench_run.sizes_from(
        parser.parse_args(
            ["--only-backfill", "--backfill-advertisers", "7", "--backfill-parallel", "3"]
        )
    )
    assert sizes["backfill"].world.advertisers == 7 and sizes["backfill"].parallel == 3
    assert sizes["backfill"].days == bench_run.FULL["backfill"].days == 730
    # A unit's share is the DAG's: the units in flight never add up to more than the app's.
    assert backfill.rate_budget(50, 3000, 3, 3) == (16.666, 1000)  # 3 in flight, 3 units
