"""run_local_csv.py end to end as a real process against the simulator."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, date, datetime

import pytest

from controller.reports.catalog import REPORTS
from controller.tiktok.origins import ALL_ORIGINS
from local_env.stack import ROOT
from tests.support.truth import by_key, truth_rows, typed_cell
from tiktok_simulator.report import served_rows

pytestmark = pytest.mark.e2e  # every test runs run_local_csv.py as a process

START, END = "2025-02-01", "2025-02-10"


def run_tool(simulator, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TIKTOK_API_BASE_URL": simulator.base_url}
    env.pop("TIKTOK_ACCESS_TOKEN", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "run_local_csv.py"), "--output-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )


def test_writes_one_csv_per_advertiser_and_report_equal_to_ground_truth(sim, sim_world, tmp_path):
    advertisers = sim_world.advertiser_ids[:2]
    before = datetime.now(UTC).strftime("%Y%m%d")
    result = run_tool(
        sim, tmp_path, "--access-token", "sim-token", "--advertiser-ids", ",".join(advertisers),
        "--start-date", START, "--end-date", END,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stamp = next(tmp_path.iterdir()).name.rsplit("_", 1)[1].removesuffix(".csv")
    assert stamp in (before, datetime.now(UTC).strftime("%Y%m%d"))  # a run may cross midnight
    out = result.stdout
    assert f"Period: {START} to {END}" in out and f"Output folder: {tmp_path}/" in out
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted(
        f"{s.table}_{a}_{stamp}.csv" for s in REPORTS.values() for a in advertisers
    )
    totals = {}
    for spec in REPORTS.values():
        for advertiser in advertisers:
            path = tmp_path / f"{spec.table}_{advertiser}_{stamp}.csv"
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            truth = served_rows(
                sim_world,
                advertiser,
                spec.data_level,
                START,
                END,
                spec.metric_names,
                origins=ALL_ORIGINS,
            )
            assert len(rows) == len(truth) > 0
            got = {(r[spec.id_dimension], r["stat_time_day"]): r for r in rows}
            for raw in truth:
                row = got[
                    (raw["dimensions"][spec.id_dimension], raw["dimensions"]["stat_time_day"])
                ]
                assert float(row["spend"]) == float(raw["metrics"]["spend"])
                assert row["impressions"] == raw["metrics"]["impressions"]
            assert f"saved {path} ({len(rows)} rows)" in out
            totals[spec.report_type] = totals.get(spec.report_type, 0) + len(rows)
    for report_type, rows in totals.items():
        assert any(line.split() == [report_type, str(rows), "success"] for line in out.splitlines())
    assert "0 failed reports" in out


def test_failed_report_exits_1_and_leaves_no_file(sim, sim_world, tmp_path):
    bad, good = sim_world.advertiser_ids[:2]
    sim.remove_permission(bad)
    result = run_tool(
        sim, tmp_path, "--access-token", "sim-token", "--advertiser-ids", f"{bad},{good}",
        "--report-types", "campaign", "--start-date", START, "--end-date", END,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"[{bad}] campaign: FAILED: advertiser {bad}: TikTok API error 40001" in result.stdout
    assert [p.name.split("_")[4] for p in tmp_path.iterdir()] == [good]
    assert "sim-token" not in result.stdout + result.stderr


def test_refused_metrics_are_named_in_the_summary(sim, sim_world, tmp_path):
    sim.configure(refused_metrics={"AUCTION_CAMPAIGN": ["cost_per_conversion"]})
    result = run_tool(
        sim, tmp_path, "--access-token", "sim-token", "--advertiser-ids", sim_world.advertiser_ids[0],
        "--report-types", "campaign", "--start-date", START, "--end-date", END,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert (
        lines.count(
            "warning: TikTok refused these campaign-level metrics, loaded as null: cost_per_conversion"
        )
        == 1
    )
    (path,) = tmp_path.iterdir()
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {row["cost_per_conversion"] for row in rows} == {""}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start-date", "2025-02-30"], "'2025-02-30' is not a date YYYY-MM-DD"),
        (["--advertiser-ids", "12x"], "advertiser ids must be digits"),
        (["--report-types", "ad_groups"], "unknown report type"),
        (["--start-date", "2025-03-01", "--end-date", "2025-02-01"], "is after --end-date"),
        (["--bogus"], "unrecognized arguments"),
        (["--metric-families", "in_app,webb"], "unknown metric family 'webb'; choose from core"),
    ],
)
def test_bad_flags_get_one_line_errors(sim, tmp_path, args, message):
    result = run_tool(sim, tmp_path, "--access-token", "t", "--advertiser-ids", "1", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_families_promote_and_40067_reach_the_csv(sim, sim_world, tmp_path):
    # The CSV tool shares the extraction: a 40067 limit is read in smaller requests, Promote
    # rows are in, and the families not asked for stay as empty columns.
    sim.configure(query_size_limit=1500, mixed_origins=False)
    advertiser = sim_world.advertiser_ids[0]
    result = run_tool(
        sim, tmp_path, "--access-token", "sim-token", "--advertiser-ids", advertiser,
        "--report-types", "campaign", "--metric-families", "in_app",
        "--start-date", "2025-03-01", "--end-date", "2025-03-30",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = tmp_path.iterdir()
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    spec = REPORTS["campaign"]
    truth = served_rows(sim_world,
        advertiser, spec.data_level, "2025-03-01", "2025-03-30", spec.requested_metrics(["in_app"]),
        origins=ALL_ORIGINS,
    )  # fmt: skip
    got = {(r["campaign_id"], r["stat_time_day"]): r for r in rows}
    assert len(got) == len(rows) == len(truth) > 0
    for raw in truth:
        row = got[(raw["dimensions"]["campaign_id"], raw["dimensions"]["stat_time_day"])]
        assert float(row["spend"]) == float(raw["metrics"]["spend"])
        assert row["app_install"] == raw["metrics"]["app_install"]
        assert row["complete_payment"] == "" and row["likes"] == ""  # not asked: empty
    (promote,) = sim_world.promote_ids(advertiser, spec.data_level)
    assert promote in {r["campaign_id"] for r in rows}
    codes = [e["code"] for e in sim.stats()["log"] if e["path"].endswith("integrated/get/")]
    assert 40067 in codes and 40002 in codes  # shrunk, and asked once per origin


def test_full_width_over_a_chunk_bigger_than_the_row_bound_writes_the_truth(
    sim, sim_world, tmp_path, monkeypatch
):
    # Every family (three requests per page) over a 30-day chunk of ~200 ad rows with a bound
    # of 40: the chunk is read as shorter date windows, and the file is still exactly the truth.
    monkeypatch.setenv("TIKTOK_CHUNK_ROW_BOUND", "40")
    advertiser, spec = sim_world.advertiser_ids[0], REPORTS["ad"]
    result = run_tool(
        sim, tmp_path, "--access-token", "sim-token", "--advertiser-ids", advertiser,
        "--report-types", "ad", "--start-date", "2025-03-01", "--end-date", "2025-03-30",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = tmp_path.iterdir()
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    truth = by_key(
        spec, truth_rows(sim_world, spec, advertiser, date(2025, 3, 1), date(2025, 3, 30))
    )
    assert len(rows) == len(truth) > 40 * 3
    got = {(advertiser, r["ad_id"], r["stat_time_day"]): r for r in rows}
    assert got.keys() == truth.keys()
    for key, expected in truth.items():
        row = got[key]
        for name in spec.metric_names:
            cell = row[name]
            value = None if cell == "" else typed_cell(spec.metric_type(name), cell)
            assert value == expected[name], (key, name)
    windows = {
        (e["params"]["start_date"], e["params"]["end_date"])
        for e in sim.stats()["log"]
        if e["path"].endswith("integrated/get/")
    }
    assert len(windows) > 2  # the whole chunk's page 1, then shorter windows
