"""Audience, hourly, lifetime and custom reports end to end: simulator → service → BigQuery.

Every report type of the registry is loaded in one /run and compared row by row with the
simulator's ground truth (types, ids as strings, breakdown values exact); the sums between
the new tables and the seed tables are checked in BigQuery; replace twice changes nothing;
a custom report from a JSON file loads, an invalid one stops the service at start; the CSV
tool writes the new types.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime

import pytest
import requests

from controller.reports import registry
from controller.reports.catalog import ReportSpec
from controller.reports.custom import CustomReportError
from controller.reports.registry import parse_custom
from controller.tiktok.origins import ALL_ORIGINS
from local_env.stack import ROOT, ServiceProcess
from tests.fixtures.service import serve, service_settings_for
from tests.support.truth import typed_cell
from tests.support.warehouse import table_rows
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator.audience import audience_rows
from tiktok_simulator.report import served_rows

TOKEN = "sim-token"
START, END = date(2026, 11, 10), date(2026, 11, 12)
# A world that ends before today, so that /run can load every day of it (lifetime sums).
WORLD = {
    "seed": 11,
    "advertisers": 2,
    "campaigns_per_advertiser": 2,
    "adgroups_per_campaign": 2,
    "ads_per_adgroup": 2,
    "start": "2026-09-01",
    "end": "2026-11-20",
    "delivery_probability": 0.7,
    "deleted_fraction": 0.25,
}
# GMV Max reports are read from another endpoint, store by store: tests/test_gmv_max.py.
ALL_TYPES = [name for name, spec in registry.builtin().items() if not spec.gmv_max]
ADDITIVE = ("spend", "impressions", "clicks", "conversion")


# --------------------------------------------------------------------------- stack
@pytest.fixture(scope="module")
def world() -> World:
    return World(**WORLD)


@pytest.fixture(scope="module")
def simulator(world):
    with SimulatorServer(world, qps=40, qpm=2400) as server:
        yield server


@pytest.fixture(scope="module")
def service(simulator, local_bigquery):
    settings = service_settings_for(simulator, local_bigquery, tiktok_qps=30.0, tiktok_qpm=1800)
    with serve(settings) as handle:
        yield handle.url


def run(url: str, project: str, dataset: str, advertisers, report_types, start=START, end=None):
    body = {
        "access_token": TOKEN,
        "advertiser_ids": list(advertisers),
        "project_id": project,
        "dataset_id": dataset,
        "if_exists": "replace",
        "report_types": list(report_types),
        "start_date": start.isoformat(),
        "end_date": (end or max(start, END)).isoformat(),
    }
    response = requests.post(f"{url}/run", json=body, timeout=600)
    assert response.status_code == 200, response.text
    assert response.json()["errors_count"] == 0
    return response.json()


def scalar(client, sql: str):
    return next(iter(client.query(sql).result(timeout=60)))[0]


@pytest.fixture(scope="module")
def loaded(service, world, bq_client, local_bigquery):
    """One /run of every built-in report type for both advertisers, into a fresh dataset."""
    dataset = f"reports_{datetime.now(UTC):%H%M%S%f}"
    body = run(service, bq_client.project, dataset, world.advertiser_ids, ALL_TYPES)
    yield dataset, body
    bq_client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


# --------------------------------------------------------------------------- ground truth
def truth(world: World, spec: ReportSpec, advertiser: str, start: date, end: date, day: date):
    """The rows the simulator serves for ``spec``, typed as the table should hold them."""
    if spec.tiktok_report_type == "AUDIENCE":
        raw = audience_rows(
            world,
            advertiser,
            spec.data_level,
            start,
            end,
            spec.metric_names,
            spec.breakdowns,
            origins=ALL_ORIGINS,  # the service asks for Promote campaigns too
        )
    else:
        if spec.lifetime:
            start, end = world.start, world.end
        raw = served_rows(
            world,
            advertiser,
            spec.data_level,
            start,
            end,
            spec.metric_names,
            dimensions=spec.dimensions,
            origins=ALL_ORIGINS,
        )
    rows = []
    for item in raw:
        row = dict(item["dimensions"])
        time = spec.time_dimension
        row["date"] = date.fromisoformat(row[time][:10]) if time else day
        if spec.granularity == "hour":
            row["hour"] = int(row["stat_time_hour"][11:13])
        for name in spec.metric_names:
            row[name] = typed_cell(spec.metric_type(name), item["metrics"].get(name))
        row["_advertiser_id"] = advertiser
        row["_report_type"] = spec.report_type
        rows.append(row)
    return rows


def keyed(spec: ReportSpec, rows: list[dict]) -> dict[tuple, dict]:
    out = {(r["_advertiser_id"], *(r[d] for d in spec.dimensions)): r for r in rows}
    assert len(out) == len(rows), "duplicate rows"
    return out


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("report_type", ALL_TYPES)
def test_every_report_type_loads_the_ground_truth(loaded, world, bq_client, report_type):
    dataset, body = loaded
    spec = registry.get(report_type)
    got = table_rows(bq_client, dataset, spec.table)
    extracted = {row.pop("_extracted_at") for row in got}
    assert len(extracted) == 1
    day = next(iter(extracted)).astimezone(UTC).date()
    expected = []
    for advertiser in world.advertiser_ids:
        expected += truth(world, spec, advertiser, START, END, day)
    assert len(expected) > 0
    assert keyed(spec, got) == keyed(spec, expected)
    items = [r for r in body["results"] if r["report_type"] == report_type]
    assert {r["destination_table"] for r in items} == {f"{dataset}.{spec.table}"}
    assert sum(r["inserted_rows"] for r in items) == len(expected)
    table = bq_client.get_table(f"{dataset}.{spec.table}")
    types = {f.name: f.field_type for f in table.schema}
    assert all(types[d] == "STRING" for d in spec.dimensions)
    assert types["date"] == "DATE" and types["_extracted_at"] == "TIMESTAMP"
    assert types["impressions"] in ("INTEGER", "INT64") and types["spend"] in ("FLOAT", "FLOAT64")
    assert table.time_partitioning.field == "date"
    if spec.granularity == "hour":
        assert types["hour"] in ("INTEGER", "INT64")
    if spec.tiktok_report_type == "AUDIENCE":
        assert not {"reach", "frequency", "cost_per_1000_reached"} & set(types)


def _mismatches(client, dataset: str, detail: ReportSpec, seed: ReportSpec, where="TRUE") -> tuple:
    """Groups where Σ of ``detail`` per (advertiser, id, date) differs from the seed table."""
    project = client.project
    sums = ", ".join(f"ROUND(SUM({m}), 2) AS {m}" for m in ADDITIVE)
    differ = " OR ".join(f"d.{m} IS DISTINCT FROM s.{m}" for m in ADDITIVE)
    key = f"_advertiser_id, {seed.id_dimension}, date"
    sql = f"""
        WITH d AS (SELECT {key}, {sums} FROM `{project}.{dataset}.{detail.table}` GROUP BY {key}),
             s AS (SELECT {key}, {sums} FROM `{project}.{dataset}.{seed.table}`
                   WHERE {where} GROUP BY {key})
        SELECT COUNTIF({differ}), COUNT(*) FROM d FULL OUTER JOIN s USING ({key})
    """
    row = next(iter(client.query(sql).result(timeout=60)))
    return row[0], row[1]


@pytest.mark.parametrize("level", ["advertiser", "campaign", "adgroup", "ad"])
def test_audience_and_hourly_sums_equal_the_daily_table(loaded, bq_client, level):
    dataset, _ = loaded
    seed = registry.get(level)
    for suffix in ("age_gender", "country", "platform", "language", "hourly"):
        differing, groups = _mismatches(bq_client, dataset, registry.get(f"{level}_{suffix}"), seed)
        assert groups > 0
        assert differing == 0, f"{level}_{suffix}: {differing} of {groups} (id, day) differ"


def test_lifetime_equals_the_daily_sum_over_the_life(service, world, bq_client, bq_dataset):
    levels = ["campaign", "adgroup", "ad"]
    # every day of the world (it ends before today): 81 days, 3 daily requests per level
    run(
        service,
        bq_client.project,
        bq_dataset,
        world.advertiser_ids,
        [*levels, *(f"{level}_lifetime" for level in levels)],
        start=world.start,
        end=world.end,
    )
    for level in levels:
        seed, lifetime = registry.get(level), registry.get(f"{level}_lifetime")
        project, key = bq_client.project, f"_advertiser_id, {seed.id_dimension}"
        sums = ", ".join(f"ROUND(SUM({m}), 2) AS {m}" for m in ADDITIVE)
        differ = " OR ".join(f"d.{m} IS DISTINCT FROM s.{m}" for m in ADDITIVE)
        sql = f"""
            WITH d AS (SELECT {key}, {sums} FROM `{project}.{bq_dataset}.{lifetime.table}`
                       GROUP BY {key}),
                 s AS (SELECT {key}, {sums} FROM `{project}.{bq_dataset}.{seed.table}`
                       GROUP BY {key})
            SELECT COUNTIF({differ}), COUNT(*) FROM d FULL OUTER JOIN s USING ({key})
        """
        row = next(iter(bq_client.query(sql).result(timeout=60)))
        assert row[1] > 0 and row[0] == 0, f"{level}: {row[0]} of {row[1]} objects differ"


def test_replace_twice_leaves_the_same_rows(loaded, service, world, bq_client):
    """Day, hour and lifetime tables, replaced again over the same window: same rows."""
    dataset, _ = loaded
    types = ["ad_country", "campaign_hourly", "campaign_lifetime"]
    tables = [registry.get(t).table for t in types]

    def snapshot() -> dict[str, list]:
        out = {}
        for table in tables:
            rows = table_rows(bq_client, dataset, table)
            for row in rows:
                row.pop("_extracted_at")
            out[table] = sorted(rows, key=lambda r: json.dumps(r, default=str, sort_keys=True))
        return out

    before = snapshot()
    again = run(service, bq_client.project, dataset, world.advertiser_ids, types)
    assert snapshot() == before
    assert all(before[t] for t in tables)
    assert again["total_inserted_rows"] == sum(len(before[t]) for t in tables)
    # A lifetime table holds one row per object and advertiser whatever the window: the
    # advertiser's rows are swapped whole, the other advertiser's are left alone.
    lifetime = registry.get("campaign_lifetime").table
    one = world.advertiser_ids[:1]
    run(service, bq_client.project, dataset, one, ["campaign_lifetime"], start=date(2026, 10, 1))
    assert snapshot()[lifetime] == before[lifetime]


# --------------------------------------------------------------------------- custom reports
CUSTOM = {
    "reports": [
        {
            "report_type": "campaign_gender",
            "table": "TKT100_TIKTOK_ADS_CAMPAIGN_GENDER",
            "level": "campaign",
            "tiktok_report_type": "AUDIENCE",
            "dimensions": ["gender"],
            "metric_families": ["core"],
            "metrics": ["conversion", "video_views_p100"],
        },
        {
            "report_type": "adgroup_core_hourly",
            "table": "TKT101_TIKTOK_ADS_ADGROUP_CORE_HOURLY",
            "level": "adgroup",
            "granularity": "hour",
            "metric_families": ["core"],
        },
    ]
}


@pytest.fixture
def custom_service(simulator, local_bigquery, tmp_path):
    path = tmp_path / "custom_reports.json"
    path.write_text(json.dumps(CUSTOM))
    settings = service_settings_for(
        simulator, local_bigquery, tiktok_custom_reports_file=str(path), tiktok_qps=30.0
    )
    with serve(settings) as handle:
        yield handle.url
    registry.set_custom([])


def test_custom_reports_from_a_json_file_load(
    custom_service, simulator, world, bq_client, bq_dataset
):
    names = [r["report_type"] for r in CUSTOM["reports"]]
    # TikTok refusing one metric at run time (40002) drops it with a warning, as for any report
    simulator.configure(refused_metrics={"AUCTION_CAMPAIGN": ["video_views_p100"]})
    try:
        body = run(custom_service, bq_client.project, bq_dataset, world.advertiser_ids, names)
    finally:
        simulator.reset()
    gender_items = [r for r in body["results"] if r["report_type"] == "campaign_gender"]
    assert gender_items and all(
        any("video_views_p100" in w for w in r["warnings"]) for r in gender_items
    )
    for name in names:
        spec = registry.get(name)
        got = table_rows(bq_client, bq_dataset, spec.table)
        for row in got:
            row.pop("_extracted_at")
        expected = []
        for advertiser in world.advertiser_ids:
            expected += truth(world, spec, advertiser, START, END, START)
        for row in expected:
            if "video_views_p100" in row:
                row["video_views_p100"] = None  # refused: loads as null
        assert keyed(spec, got) == keyed(spec, expected) and expected
        assert {r["destination_table"] for r in body["results"] if r["report_type"] == name} == {
            f"{bq_dataset}.{spec.table}"
        }
    gender = registry.get("campaign_gender")
    core = ["spend", "impressions", "clicks", "ctr", "cpc", "cpm"]  # without the UV metrics
    assert list(gender.metrics) == [*core, "conversion", "video_views_p100"]


BAD: list[tuple[dict, str, str]] = [
    ({"granularity": "hour"}, "granularity", "stat_time_hour with AUDIENCE"),
    ({"granularity": "lifetime"}, "granularity", "not available in v1.3"),
    ({"metrics": ["reach"]}, "metrics", "['reach'] with report_type AUDIENCE"),
    ({"metric_families": ["in_app"]}, "metric_families", "['in_app'] with report_type AUDIENCE"),
    ({"dimensions": ["age", "gender", "language"]}, "dimensions", "5 dimensions"),
    ({"dimensions": ["country_code", "province_id"]}, "dimensions", "together"),
    ({"dimensions": ["stat_time_hour"]}, "dimensions", "granularity"),
    ({"dimensions": ["interests"]}, "dimensions", "not available in AUDIENCE"),
    ({"dimensions": []}, "dimensions", "at least one audience dimension"),
    ({"table": "TKT002_TIKTOK_ADS_CAMPAIGN"}, "table", "already the table of 'campaign'"),
    ({"table": "TKT000_TIKTOK_ADS_RUNS"}, "table", "reserved"),
    ({"report_type": "campaign_country"}, "report_type", "already a report"),
    ({"report_type": "campaigns"}, "report_type", "already a report"),
    ({"report_type": "Bad-Name"}, "report_type", "lowercase"),
    ({"level": "account"}, "level", "Input should be"),
    ({"colour": "red"}, "colour", "Extra inputs"),
    ({"metric_families": [], "metrics": []}, "metrics", "give metric_families or metrics"),
    ({"metrics": ["spend", "spnd"]}, "metrics", "unknown metrics ['spnd']"),
    (
        {"tiktok_report_type": "BASIC", "dimensions": [], "granularity": "lifetime",
         "metrics": ["cash_spend"]},
        "metrics",
        "only in the advertiser-level daily BASIC report",
    ),
    (
        {"tiktok_report_type": "BASIC", "dimensions": ["country_code"], "granularity": "lifetime"},
        "dimensions",
        "takes the id dimension only",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field", "text"), BAD, ids=[b[2] for b in BAD])
def test_custom_definitions_tiktok_would_refuse_are_refused(change, field, text):
    entry = {
        "report_type": "my_report",
        "table": "TKT100_MY_REPORT",
        "level": "campaign",
        "tiktok_report_type": "AUDIENCE",
        "dimensions": ["gender"],
        "metric_families": ["core"],
        **change,
    }
    with pytest.raises(CustomReportError) as info:
        parse_custom([entry], "reports.json")
    message = str(info.value)
    assert f"custom report {entry['report_type']!r}: field {field!r}" in message, message
    assert text in message, message
    assert message.startswith("reports.json: ")


def test_two_custom_reports_cannot_share_a_table():
    entry = {"report_type": "a", "table": "T1", "level": "ad", "metric_families": ["core"]}
    with pytest.raises(CustomReportError, match="field 'table': T1 is already the table of 'a'"):
        parse_custom([entry, {**entry, "report_type": "b"}])


def test_an_invalid_custom_definition_stops_the_service_at_start(tmp_path, local_bigquery):
    path = tmp_path / "reports.json"
    bad = {**CUSTOM["reports"][0], "granularity": "hour"}
    path.write_text(json.dumps({"reports": [bad]}))
    log = tmp_path / "service.log"
    env = {
        "TIKTOK_API_BASE_URL": "http://127.0.0.1:9/",
        "BIGQUERY_EMULATOR_HOST": local_bigquery.endpoint,
        "TIKTOK_CUSTOM_REPORTS_FILE": str(path),
    }
    with pytest.raises(RuntimeError) as info:
        ServiceProcess(log, env)
    assert "exited" in str(info.value)
    text = log.read_text()
    assert "custom report 'campaign_gender': field 'granularity'" in text
    assert "stat_time_hour with AUDIENCE" in text


# --------------------------------------------------------------------------- CSV tool
@pytest.mark.e2e  # run_local_csv.py as a process
def test_the_csv_tool_writes_the_new_report_types(simulator, world, tmp_path):
    types = ["campaign_country", "ad_hourly", "adgroup_lifetime", "advertiser_age_gender"]
    env = {**os.environ, "TIKTOK_API_BASE_URL": simulator.base_url}
    env.pop("TIKTOK_CUSTOM_REPORTS_FILE", None)
    advertiser = world.advertiser_ids[0]
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_local_csv.py"), "--output-dir", str(tmp_path),
         "--access-token", TOKEN, "--advertiser-ids", advertiser,
         "--start-date", START.isoformat(), "--end-date", END.isoformat(),
         "--report-types", ",".join(types)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for name in types:
        spec = registry.get(name)
        (path,) = tmp_path.glob(f"{spec.table}_{advertiser}_*.csv")
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        expected = truth(world, spec, advertiser, START, END, START)
        assert len(rows) == len(expected) > 0
        header = list(rows[0])
        assert header[: len(spec.dimensions)] == list(spec.dimensions)
        got = {tuple(r[d] for d in spec.dimensions): r for r in rows}
        for row in expected:
            cell = got[tuple(row[d] for d in spec.dimensions)]
            assert cell["impressions"] == str(row["impressions"])
            assert float(cell["spend"]) == row["spend"]
        assert f"saved {path} ({len(rows)} rows)" in result.stdout


def test_the_dag_accepts_every_prebuilt_name():
    dag = importlib.import_module("tiktok_ads.config")  # the DAG's package: no Airflow
    assert set(dag.REPORT_TYPES) == set(registry.builtin())
    config, problems = dag.parse_config(
        {
            "TIKTOK_ADS_CLOUD_RUN_URL": "https://svc-abc.a.run.app",
            "TIKTOK_ADVERTISER_IDS": '["7000000000000000001"]',
            "GCP_PROJECT": "my-project",
            "GCP_REGION": "europe-west1",
            "TIKTOK_REPORT_TYPES": json.dumps(["ad_hourly", "campaign_gender", "keyword"]),
            "TIKTOK_CUSTOM_REPORT_TYPES": '["campaign_gender"]',
        }
    )
    assert problems == [
        "TIKTOK_REPORT_TYPES: unknown report types ['keyword']; allowed: "
        f"{list(dag.REPORT_TYPES)} and the custom reports listed in TIKTOK_CUSTOM_REPORT_TYPES"
    ]
    assert config["report_types"] == ["ad_hourly", "campaign_gender", "keyword"]


def test_the_readme_example_file_is_a_valid_definition():
    try:
        loaded = registry.load_custom_file(ROOT / "local_env" / "custom_reports.example.json")
        assert [s.report_type for s in loaded] == ["campaign_gender", "ad_core_hourly"]
        assert loaded[0].dimensions == ("campaign_id", "gender", "stat_time_day")
        assert "reach" not in loaded[0].metrics and "conversion" in loaded[0].metrics
    finally:
        registry.set_custom([])
