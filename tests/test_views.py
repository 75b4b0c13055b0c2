"""The analysts' layer end to end: runs into local BigQuery, POST /views, then every view read back
and compared with the raw tables and the simulator's truth.

One module-scoped world, then many asserts on it: two accounts (EUR, the reporting currency,
and BRL, converted with a rates table the test writes), a week around a campaign rename,
campaign history seen the day before the rename and everything the day of it, account info,
the four levels and the campaign country report. The service makes the views itself after
each run that created a table (``views_after_run``); POST /views then finds nothing to change.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from config.settings import Settings
from controller.pipeline import table_definition
from controller.reports import registry
from controller.tiktok.accounts import INFO_TABLE
from controller.views.__main__ import main as views_cli
from controller.views.definitions import CONVERSION_VALUE_LEGS, REPORTING_VIEWS, SOURCE_VIEWS
from main import create_app
from tests.fixtures.service import service_settings_for
from tests.fixtures.simulator import SIM_TOKEN
from tests.support.truth import truth_rows
from tests.support.warehouse import table_rows
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator.metrics import CAMPAIGN

APP_ID, APP_SECRET = "1234567890", "sim-app-secret"
ENTITY_TYPES = ["advertiser_info", "campaigns", "adgroups", "ads"]
REPORT_TYPES = ["advertiser", "campaign", "adgroup", "ad"]
RATE = 0.17  # BRL → EUR, the test's own rate

# Column names and types of the Fivetran-compatible views: the columns dbt_tiktok_ads's staging
# macros read (docs/analytics_layer.md §1.2) that this project has data for, with ids as
# STRING (dbt_ad_reporting casts every id to string) and Fivetran's spellings.
_HOURLY_METRICS = [
    ("clicks", "INTEGER"), ("impressions", "INTEGER"), ("reach", "INTEGER"),
    ("conversion", "INTEGER"), ("real_time_conversion", "INTEGER"), ("comments", "INTEGER"),
    ("follows", "INTEGER"), ("likes", "INTEGER"), ("profile_visits", "INTEGER"),
    ("shares", "INTEGER"), ("video_play_actions", "INTEGER"), ("video_views_p_25", "INTEGER"),
    ("video_views_p_50", "INTEGER"), ("video_views_p_75", "INTEGER"),
    ("video_views_p_100", "INTEGER"), ("video_view_p_100", "INTEGER"),
    ("video_watched_2_s", "INTEGER"), ("video_watched_6_s", "INTEGER"), ("spend", "FLOAT"),
    ("cpc", "FLOAT"), ("cpm", "FLOAT"), ("ctr", "FLOAT"), ("conversion_rate", "FLOAT"),
    ("cost_per_conversion", "FLOAT"), ("average_video_play", "FLOAT"),
    ("average_video_play_per_user", "FLOAT"), ("total_purchase_value", "FLOAT"),
    ("total_sales_lead_value", "FLOAT"), ("frequency", "FLOAT"),
    ("cost_per_1000_reached", "FLOAT"),
]  # fmt: skip
_HISTORY_META = [
    ("updated_at", "TIMESTAMP"), ("modify_time", "TIMESTAMP"),
    ("is_most_recent_record", "BOOLEAN"), ("_fivetran_synced", "TIMESTAMP"),
]  # fmt: skip
FIVETRAN_COLUMNS = {
    "advertiser": [
        ("id", "STRING"), ("name", "STRING"), ("company", "STRING"), ("currency", "STRING"),
        ("timezone", "STRING"), ("country", "STRING"), ("balance", "FLOAT"),
        ("create_time", "TIMESTAMP"), ("_fivetran_synced", "TIMESTAMP"),
    ],
    "campaign_history": [
        ("advertiser_id", "STRING"), ("campaign_id", "STRING"), ("campaign_name", "STRING"),
        ("campaign_type", "STRING"), ("objective_type", "STRING"), ("budget_mode", "STRING"),
        ("campaign_system_origin", "STRING"), ("status", "STRING"), ("budget", "FLOAT"),
        ("create_time", "TIMESTAMP"), *_HISTORY_META,
    ],
    "adgroup_history": [
        ("advertiser_id", "STRING"), ("campaign_id", "STRING"), ("adgroup_id", "STRING"),
        ("adgroup_name", "STRING"), ("budget_mode", "STRING"), ("optimization_goal", "STRING"),
        ("placement_type", "STRING"), ("promotion_type", "STRING"), ("status", "STRING"),
        ("budget", "FLOAT"), *_HISTORY_META,
    ],
    "ad_history": [
        ("advertiser_id", "STRING"), ("campaign_id", "STRING"), ("adgroup_id", "STRING"),
        ("ad_id", "STRING"), ("ad_name", "STRING"), ("call_to_action", "STRING"),
        ("landing_page_url", "STRING"), ("ad_text", "STRING"), ("display_name", "STRING"),
        ("status", "STRING"), *_HISTORY_META,
    ],
    **{
        f"{level}_report_hourly": [
            (f"{level}_id", "STRING"), ("advertiser_id", "STRING"),
            ("stat_time_hour", "TIMESTAMP"), *_HOURLY_METRICS, ("currency", "STRING"),
            ("_fivetran_synced", "TIMESTAMP"),
        ]
        for level in ("campaign", "adgroup", "ad")
    },
    "campaign_country_report": [
        ("campaign_id", "STRING"), ("advertiser_id", "STRING"), ("stat_time_day", "TIMESTAMP"),
        ("country_code", "STRING"), ("clicks", "INTEGER"), ("impressions", "INTEGER"),
        ("conversion", "INTEGER"), ("real_time_conversion", "INTEGER"), ("spend", "FLOAT"),
        ("cpc", "FLOAT"), ("cpm", "FLOAT"), ("ctr", "FLOAT"), ("conversion_rate", "FLOAT"),
        ("cost_per_conversion", "FLOAT"), ("currency", "STRING"),
        ("_fivetran_synced", "TIMESTAMP"),
    ],
}  # fmt: skip
AD_REPORTING_HEAD = ["source_relation", "date_day", "platform", "account_id", "account_name"]
METRIC_COLUMNS = [
    ("clicks", "INTEGER"), ("impressions", "INTEGER"), ("spend", "FLOAT"),
    ("conversions", "FLOAT"), ("conversions_value", "FLOAT"),
    *((f"conversions_value_{leg}", "FLOAT") for leg in CONVERSION_VALUE_LEGS),
    ("reach", "INTEGER"), ("frequency", "FLOAT"), ("currency", "STRING"),
    ("reporting_currency", "STRING"), ("exchange_rate", "FLOAT"),
    ("spend_in_reporting_currency", "FLOAT"), ("conversions_value_in_reporting_currency", "FLOAT"),
]  # fmt: skip


SUFFIX = uuid.uuid4().hex[:8]
RAW, REPORTING, FIVETRAN = f"views_raw_{SUFFIX}", f"views_rep_{SUFFIX}", f"views_ft_{SUFFIX}"
RATES_DATASET = f"views_rates_{SUFFIX}"
RATES_TABLE = f"{RATES_DATASET}.daily_rates"


@pytest.fixture(scope="module")
def views_service(simulator, local_bigquery) -> Iterator[str]:
    """The service as a deployment with views would run it: views made after runs, EUR."""
    settings = service_settings_for(
        simulator,
        local_bigquery,
        tiktok_app_id=APP_ID,
        tiktok_app_secret=APP_SECRET,
        views_after_run=True,
        views_raw_dataset=RAW,
        views_reporting_dataset=REPORTING,
        views_fivetran_dataset=FIVETRAN,
        reporting_currency="EUR",
        currency_rates_table=RATES_TABLE,
    )
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


class Loaded:
    """What the module loaded, where, and what POST /views answered along the way."""

    def __init__(self, url: str, project: str, sim_world: World) -> None:
        self.url, self.project, self.world = url, project, sim_world
        self.advertisers = sim_world.advertiser_ids[1:3]  # EUR and BRL
        self.rename_day = date(2026, 2, 14)  # a campaign of the BRL account is renamed
        self.start = self.rename_day - timedelta(days=3)
        self.end = self.rename_day + timedelta(days=3)
        self.answers: dict[str, list[dict]] = {}
        self.rows_without_rates: list[dict] = []

    def run(self, report_types: list[str], dataset: str = RAW, end: date | None = None) -> dict:
        payload = {
            "access_token": SIM_TOKEN,
            "advertiser_ids": self.advertisers,
            "project_id": self.project,
            "dataset_id": dataset,
            "if_exists": "replace",
            "report_types": report_types,
            "start_date": self.start.isoformat(),
            "end_date": (end or self.end).isoformat(),
            "max_qps": 200,
            "max_qpm": 12000,
        }
        response = requests.post(f"{self.url}/run", json=payload, timeout=240)
        assert response.status_code == 200, response.text
        return response.json()

    def views(self, **body: Any) -> requests.Response:
        payload = {"project_id": self.project, "dataset_id": RAW, **body}
        return requests.post(f"{self.url}/views", json=payload, timeout=240)

    def answer(self, name: str) -> None:
        response = self.views()
        assert response.status_code == 200, response.text
        self.answers[name] = response.json()["views"]


def _write_rates(bq_client, loaded: Loaded) -> None:
    bq_client.create_dataset(RATES_DATASET, exists_ok=True)
    bq_client.query(
        f"CREATE TABLE `{RATES_TABLE}` (date DATE, from_currency STRING, to_currency STRING, "
        "rate FLOAT64)"
    ).result()
    days = [loaded.start + timedelta(days=n) for n in range((loaded.end - loaded.start).days)]
    values = ", ".join(f"(DATE '{d}', 'BRL', 'EUR', {RATE})" for d in days)  # not the last day
    bq_client.query(f"INSERT INTO `{RATES_TABLE}` VALUES {values}").result()


@pytest.fixture(scope="module")
def loaded(views_service, simulator: SimulatorServer, sim_world, bq_client) -> Iterator[Loaded]:
    world = Loaded(views_service, bq_client.project, sim_world)
    simulator.reset()
    simulator.configure(rate_limit=False)  # not a test of rates: no waiting on a 10 QPS tier
    try:
        simulator.configure(as_of=(world.rename_day - timedelta(days=1)).isoformat())
        world.run(["campaigns"])
        simulator.configure(as_of=world.rename_day.isoformat())
        world.run(ENTITY_TYPES)
        world.answer("after_entities")  # report views skipped: their tables do not exist yet
        simulator.configure(as_of=None)
        world.run([*REPORT_TYPES, "campaign_country"])
        # The campaign level's hourly report on the first two days only.
        world.run(["campaign_hourly"], end=world.start + timedelta(days=1))
    finally:
        simulator.reset()
    world.answer("after_reports")  # the run made them: nothing left to change
    world.rows_without_rates = table_rows(bq_client, REPORTING, "account_report")
    _write_rates(bq_client, world)
    world.answer("with_rates")
    world.answer("again")
    yield world
    for dataset in (RAW, REPORTING, FIVETRAN, RATES_DATASET):
        bq_client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def _truth(loaded: Loaded, report_type: str) -> list[dict]:
    spec = registry.get(report_type)
    return [
        row
        for advertiser in loaded.advertisers
        for row in truth_rows(loaded.world, spec, advertiser, loaded.start, loaded.end)
    ]


def _statuses(answer: list[dict], dataset: str) -> dict[str, str]:
    return {v["view"]: v["status"] for v in answer if v["dataset_id"] == dataset}


def _legs(row: dict) -> float | None:
    legs = [row.get(column) for column in CONVERSION_VALUE_LEGS.values()]
    return None if all(v is None for v in legs) else sum(v or 0.0 for v in legs)


def test_views_are_made_after_the_runs_and_a_refresh_twice_changes_nothing(loaded) -> None:
    first = loaded.answers["after_entities"]
    reporting = _statuses(first, REPORTING)
    assert set(reporting.values()) == {"skipped"}
    reasons = {v["view"]: v["reason"] for v in first if v["dataset_id"] == REPORTING}
    assert reasons["account_report"].startswith("TKT001_TIKTOK_ADS_ADVERTISER not in")
    fivetran = _statuses(first, FIVETRAN)
    # The entity run made the history views; the report views wait for their tables.
    assert {k for k, v in fivetran.items() if v == "unchanged"} == {
        "advertiser", "campaign_history", "adgroup_history", "ad_history",
    }  # fmt: skip
    assert {k for k, v in fivetran.items() if v == "skipped"} == {
        "campaign_report_hourly", "adgroup_report_hourly", "ad_report_hourly",
        "campaign_country_report",
    }  # fmt: skip
    after = loaded.answers["after_reports"]
    assert len(after) == len(REPORTING_VIEWS) + len(SOURCE_VIEWS)
    assert {v["status"] for v in after} == {"unchanged"}, [
        v for v in after if v["status"] != "unchanged"
    ]
    # The rates table appeared: the reporting views now join it; then nothing changes.
    assert set(_statuses(loaded.answers["with_rates"], REPORTING).values()) == {"replaced"}
    assert set(_statuses(loaded.answers["with_rates"], FIVETRAN).values()) == {"unchanged"}
    assert {v["status"] for v in loaded.answers["again"]} == {"unchanged"}


def test_reporting_views_have_the_ad_reporting_columns_and_types(loaded, bq_client) -> None:
    levels = {
        "account_report": [],
        "campaign_report": ["campaign"],
        "ad_group_report": ["campaign", "ad_group"],
        "ad_report": ["campaign", "ad_group", "ad"],
        "url_report": ["campaign", "ad_group", "ad"],
        "campaign_country_report": ["campaign"],
    }
    for view, prefixes in levels.items():
        schema = bq_client.get_table(f"{REPORTING}.{view}").schema
        names = [f.name for f in schema]
        ids = [c for p in prefixes for c in (f"{p}_id", f"{p}_name")]
        url = ["base_url", "url_host", "url_path"] + [
            f"utm_{p}" for p in ("source", "medium", "campaign", "content", "term")
        ]
        extra = url if view == "url_report" else []
        extra += ["country_code"] if view == "campaign_country_report" else []
        metrics = [name for name, _ in METRIC_COLUMNS]
        assert names == [*AD_REPORTING_HEAD, *ids, *extra, *metrics], view
        types = {f.name: f.field_type for f in schema}
        assert types["date_day"] == "DATE"
        assert all(types[c] == "STRING" for c in [*AD_REPORTING_HEAD[2:], *ids, *extra])
        assert {n: types[n] for n, _ in METRIC_COLUMNS} == dict(METRIC_COLUMNS), view


def test_account_report_is_the_advertiser_level_with_every_leg(loaded, bq_client) -> None:
    truth = {(r["_advertiser_id"], r["date"]): r for r in _truth(loaded, "advertiser")}
    rows = table_rows(bq_client, REPORTING, "account_report")
    assert {(r["account_id"], r["date_day"]) for r in rows} == set(truth)
    names = {r["advertiser_id"]: r["name"] for r in table_rows(bq_client, RAW, INFO_TABLE)}
    for row in rows:
        want = truth[(row["account_id"], row["date_day"])]
        assert row["platform"] == "tiktok_ads" and row["account_name"] == names[row["account_id"]]
        assert (row["spend"], row["clicks"], row["impressions"]) == (
            want["spend"], want["clicks"], want["impressions"],
        )  # fmt: skip
        assert row["conversions"] == float(want["conversion"])
        assert row["reach"] == want["reach"] and row["currency"] == want["currency"]
        for leg, column in CONVERSION_VALUE_LEGS.items():
            assert row[f"conversions_value_{leg}"] == want[column]
        assert row["conversions_value"] == pytest.approx(_legs(want))
    assert any(r["conversions_value_web"] for r in rows), "no web value: the test sees nothing"


def test_object_views_equal_their_tables_with_deleted_and_promote_objects(
    loaded, bq_client, simulator
) -> None:
    for view, report_type, id_column in (
        ("campaign_report", "campaign", "campaign_id"),
        ("ad_group_report", "adgroup", "ad_group_id"),
        ("ad_report", "ad", "ad_id"),
    ):
        spec = registry.get(report_type)
        truth = {(r["_advertiser_id"], r[spec.id_dimension], r["date"]): r
                 for r in _truth(loaded, report_type)}  # fmt: skip
        rows = table_rows(bq_client, REPORTING, view)
        keyed = {(r["account_id"], r[id_column], r["date_day"]): r for r in rows}
        assert len(keyed) == len(rows) and set(keyed) == set(truth), view
        for key, row in keyed.items():
            want = truth[key]
            assert (row["spend"], row["clicks"], row["impressions"], row["reach"]) == (
                want["spend"], want["clicks"], want["impressions"], want["reach"],
            ), view  # fmt: skip
            assert row["conversions_value"] == pytest.approx(_legs(want))
        ids = {key[1] for key in keyed}
        level = spec.data_level
        for advertiser in loaded.advertisers:
            assert set(loaded.world.promote_ids(advertiser, level)) & ids, (view, "Promote")
            deleted = {
                o[spec.id_dimension]
                for o in simulator.app.entity_book.objects(advertiser, level, loaded.end)
                if o["_deleted"]
            }
            assert deleted & ids or not deleted & {k[1] for k in truth}, (view, "deleted")


def test_reach_is_each_rows_own_never_a_sum(loaded, bq_client) -> None:
    account = {(r["account_id"], r["date_day"]): r["reach"]
               for r in table_rows(bq_client, REPORTING, "account_report")}  # fmt: skip
    summed: dict[tuple, int] = defaultdict(int)
    for row in table_rows(bq_client, REPORTING, "campaign_report"):
        summed[(row["account_id"], row["date_day"])] += row["reach"] or 0
    truth = {(r["_advertiser_id"], r["date"]): r["reach"] for r in _truth(loaded, "advertiser")}
    assert account == truth
    # The campaigns' reach is theirs too: the account's is TikTok's own, not their sum.
    campaigns = {(r["_advertiser_id"], r["campaign_id"], r["date"]): r["reach"]
                 for r in _truth(loaded, "campaign")}  # fmt: skip
    assert {k: v for k, v in summed.items()} == {
        k: sum(v or 0 for (a, _, d), v in campaigns.items() if (a, d) == k) for k in summed
    }


def test_a_renamed_campaign_shows_each_days_name(loaded, bq_client, simulator) -> None:
    advertiser = loaded.advertisers[1]
    change = next(
        c for c in simulator.app.entity_book.changes(advertiser)
        if c.kind == "renamed" and c.level == CAMPAIGN and c.day == loaded.rename_day
    )  # fmt: skip
    rows = table_rows(
        bq_client, REPORTING, "campaign_report", f"campaign_id = '{change.object_id}'"
    )
    assert {r["date_day"] for r in rows} >= {loaded.rename_day - timedelta(1), loaded.rename_day}
    names = {r["date_day"]: r["campaign_name"] for r in rows}
    old = next(n for d, n in names.items() if d < loaded.rename_day)
    assert not old.endswith(" (edited)")
    for day, name in names.items():
        assert name == (old + " (edited)" if day >= loaded.rename_day else old), day
    versions = table_rows(bq_client, FIVETRAN, "campaign_history",
                          f"campaign_id = '{change.object_id}'")  # fmt: skip
    assert sorted(v["campaign_name"] for v in versions) == sorted([old, old + " (edited)"])
    assert len({v["updated_at"] for v in versions}) == 2


def test_url_report_splits_each_days_landing_page(loaded, bq_client) -> None:
    current = {
        r["ad_id"]: r["landing_page_url"]
        for r in table_rows(bq_client, RAW, "TKT013_TIKTOK_ADS_AD_HISTORY", "is_current")
    }
    rows = table_rows(bq_client, REPORTING, "url_report")
    ads = {r["ad_id"] for r in table_rows(bq_client, REPORTING, "ad_report")}
    assert rows and {r["ad_id"] for r in rows} == {a for a in ads if current.get(a)}
    for row in rows:
        url = urlsplit(current[row["ad_id"]])
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert row["url_host"] == url.hostname and row["url_path"] == (url.path or None)
        assert row["base_url"] == current[row["ad_id"]].split("?")[0].split("#")[0]
        for part in ("source", "medium", "campaign", "content", "term"):
            assert row[f"utm_{part}"] == query.get(f"utm_{part}"), part


def test_campaign_country_report_equals_the_audience_table(loaded, bq_client) -> None:
    """Against the raw table (which other tests hold equal to the simulator's rows)."""
    truth = {(r["_advertiser_id"], r["campaign_id"], r["country_code"], r["date"]): r
             for r in table_rows(bq_client, RAW, "TKT025_TIKTOK_ADS_CAMPAIGN_COUNTRY")}  # fmt: skip
    rows = table_rows(bq_client, REPORTING, "campaign_country_report")
    keyed = {(r["account_id"], r["campaign_id"], r["country_code"], r["date_day"]): r
             for r in rows}  # fmt: skip
    assert set(keyed) == set(truth) and len(keyed) == len(rows)
    for key, row in keyed.items():
        assert (row["spend"], row["clicks"]) == (truth[key]["spend"], truth[key]["clicks"])
        assert row["conversions_value"] is None and row["reach"] is None  # not served there


def test_currency_with_and_without_a_rates_table(loaded, bq_client) -> None:
    eur, brl = loaded.advertisers
    last = loaded.end  # the rates table has no rate for it
    for row in loaded.rows_without_rates:
        assert row["reporting_currency"] == "EUR"
        if row["account_id"] == eur:
            assert row["spend_in_reporting_currency"] == row["spend"]
        else:
            assert row["exchange_rate"] is None and row["spend_in_reporting_currency"] is None
    rows = table_rows(bq_client, REPORTING, "account_report")
    for row in rows:
        if row["account_id"] == brl and row["date_day"] != last:
            assert row["currency"] == "BRL" and row["exchange_rate"] == RATE
            assert row["spend_in_reporting_currency"] == pytest.approx(row["spend"] * RATE)
            assert row["conversions_value_in_reporting_currency"] == pytest.approx(
                row["conversions_value"] * RATE
            )
        elif row["account_id"] == brl:
            assert row["spend_in_reporting_currency"] is None  # no rate that day: not guessed
        else:
            assert row["spend_in_reporting_currency"] == row["spend"]


def test_fivetran_views_have_the_packages_names_and_types(loaded, bq_client) -> None:
    for view, columns in FIVETRAN_COLUMNS.items():
        schema = bq_client.get_table(f"{FIVETRAN}.{view}").schema
        assert [(f.name, f.field_type) for f in schema] == columns, view


def test_fivetran_report_views_sum_to_the_daily_tables_with_video_columns(
    loaded, bq_client
) -> None:
    for view, report_type, id_column in (
        ("campaign_report_hourly", "campaign", "campaign_id"),
        ("adgroup_report_hourly", "adgroup", "adgroup_id"),
        ("ad_report_hourly", "ad", "ad_id"),
    ):
        truth = {(r[id_column], r["date"]): r for r in _truth(loaded, report_type)}
        rows = table_rows(bq_client, FIVETRAN, view)
        daily: dict[tuple, dict] = defaultdict(lambda: defaultdict(float))
        hours: dict[date, set] = defaultdict(set)
        for row in rows:
            hours[row["stat_time_hour"].date()].add(row["stat_time_hour"].hour)
            day = daily[(row[id_column], row["stat_time_hour"].date())]
            for name in ("spend", "clicks", "impressions", "video_views_p_25", "video_watched_2_s"):
                day[name] += row[name] or 0
            assert row["_fivetran_synced"] is not None
        assert set(daily) == set(truth), view
        for key, sums in daily.items():
            want = truth[key]
            assert (
                sums["spend"] == pytest.approx(want["spend"]) and sums["clicks"] == want["clicks"]
            )
            assert sums["video_views_p_25"] == (want["video_views_p25"] or 0)
            assert sums["video_watched_2_s"] == (want["video_watched_2s"] or 0)
        # Days with hourly rows loaded come from them (campaign level, first two days); the
        # others are one row per day at midnight.
        hourly_days = {loaded.start, loaded.start + timedelta(days=1)}
        for day, seen in hours.items():
            if view == "campaign_report_hourly" and day in hourly_days:
                assert len(seen) > 1, (view, day)
            else:
                assert seen == {0}, (view, day)
        served = [r for r in rows if (truth[(r[id_column], r["stat_time_hour"].date())]
                                       ["video_views_p25"])]  # fmt: skip
        assert served and all(r["video_views_p_25"] is not None for r in served), view


def test_fivetran_history_views_hold_one_row_per_version(loaded, bq_client) -> None:
    for view, table, id_column in (
        ("campaign_history", "TKT011_TIKTOK_ADS_CAMPAIGN_HISTORY", "campaign_id"),
        ("adgroup_history", "TKT012_TIKTOK_ADS_ADGROUP_HISTORY", "adgroup_id"),
        ("ad_history", "TKT013_TIKTOK_ADS_AD_HISTORY", "ad_id"),
    ):
        raw = table_rows(bq_client, RAW, table)
        rows = table_rows(bq_client, FIVETRAN, view)
        assert sorted((r[id_column], r["valid_from"]) for r in raw) == sorted(
            (r[id_column], r["updated_at"]) for r in rows
        ), view
        current = [r for r in rows if r["is_most_recent_record"]]
        assert len(current) == len({r[id_column] for r in rows})
    advertisers = table_rows(bq_client, FIVETRAN, "advertiser")
    assert sorted(r["id"] for r in advertisers) == sorted(loaded.advertisers)
    assert all(r["name"] and r["currency"] for r in advertisers)


def test_account_report_is_never_rebuilt_from_ad_rows(loaded, bq_client) -> None:
    """Last: it deletes the Promote ads' rows from the raw ad table, as an ad level that
    misses spend; the account's spend stays the advertiser level's (Promote included)."""
    advertiser = loaded.advertisers[0]
    (promote,) = loaded.world.promote_ids(advertiser, "AUCTION_AD")
    bq_client.query(f"DELETE FROM `{RAW}.TKT004_TIKTOK_ADS_AD` WHERE ad_id = '{promote}'").result()
    truth = {r["date"]: r["spend"] for r in _truth(loaded, "advertiser")
             if r["_advertiser_id"] == advertiser}  # fmt: skip
    account = {r["date_day"]: r["spend"] for r in table_rows(
        bq_client, REPORTING, "account_report", f"account_id = '{advertiser}'")}  # fmt: skip
    ads: dict[date, float] = defaultdict(float)
    for row in table_rows(bq_client, REPORTING, "ad_report", f"account_id = '{advertiser}'"):
        ads[row["date_day"]] += row["spend"]
    assert account == truth
    assert any(ads[d] < account[d] - 0.005 for d in account), "the Promote ad spent nothing"


def test_views_resolve_before_and_after_a_run_adds_columns(loaded, bq_client, simulator) -> None:
    """A raw table an older version wrote, without the clicks and the Shop leg's columns: the
    views read NULL there; the run that adds the columns is followed by views that read them.
    Another raw dataset, so that this module's views are left alone (a run there does not
    refresh them)."""
    old, rep, ft = f"views_old_{SUFFIX}", f"views_old_rep_{SUFFIX}", f"views_old_ft_{SUFFIX}"
    table = f"{old}.TKT001_TIKTOK_ADS_ADVERTISER"
    advertiser = loaded.advertisers[0]
    later = {"clicks"} | {
        f.name
        for f in table_definition(registry.get("advertiser")).bigquery_schema
        if "onsite_shopping" in f.name
    }
    columns = ", ".join(
        f"`{f.name}` {f.field_type}"
        for f in table_definition(registry.get("advertiser")).bigquery_schema
        if f.name not in later
    )
    bq_client.create_dataset(old)
    try:
        bq_client.query(
            f"CREATE TABLE `{table}` ({columns}); INSERT INTO `{table}` (advertiser_id, "
            "stat_time_day, date, spend, currency, _advertiser_id, _extracted_at, _report_type) "
            f"VALUES ('{advertiser}', '{loaded.start} 00:00:00', DATE '{loaded.start}', 1.5, "
            f"'EUR', '{advertiser}', CURRENT_TIMESTAMP(), 'advertiser')"
        ).result()
        body = {"dataset_id": old, "reporting_dataset_id": rep, "fivetran_dataset_id": ft}
        first = loaded.views(**body).json()["views"]
        assert _statuses(first, rep)["account_report"] == "created"
        (row,) = table_rows(bq_client, rep, "account_report")
        assert (row["spend"], row["clicks"], row["conversions_value_shop"]) == (1.5, None, None)
        simulator.configure(rate_limit=False)
        try:
            loaded.run(["advertiser"], dataset=old)
        finally:
            simulator.reset()
        assert _statuses(loaded.views(**body).json()["views"], rep)["account_report"] == "replaced"
        shop = CONVERSION_VALUE_LEGS["shop"]
        truth = {r["date"]: (r["spend"], r["clicks"], r[shop]) for r in _truth(loaded, "advertiser")
                 if r["_advertiser_id"] == advertiser}  # fmt: skip
        rows = table_rows(bq_client, rep, "account_report", f"account_id = '{advertiser}'")
        got = {r["date_day"]: (r["spend"], r["clicks"], r["conversions_value_shop"]) for r in rows}
        assert got == truth
    finally:
        for dataset in (old, rep, ft):
            bq_client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"reporting_currency": "eur"}, "reporting_currency", "3-letter ISO 4217 code"),
        ({"currency_rates_table": "rates"}, "currency_rates_table", "[project.]dataset.table"),
        ({"reporting_dataset_id": "bad-name"}, "reporting_dataset_id", "not a valid BigQuery"),
        ({"project_id": "X"}, "project_id", "not a valid GCP project id"),
        ({"views": "all"}, "views", "unknown field"),
    ],
)
def test_post_views_names_a_bad_field(body: dict, field: str, message: str) -> None:
    client = create_app(Settings()).test_client()
    response = client.post("/views", json={"project_id": "my-project", **body})
    assert response.status_code == 400, response.get_json()
    (error,) = response.get_json()["errors"]
    assert error["field"] == field and message in error["message"], error


def test_every_view_has_sql_over_a_dataset_holding_every_table(capsys) -> None:
    """``python -m controller.views --sql``: the local check prints every view, none skipped."""
    assert views_cli(["--sql", "--project-id", "my-project", "--reporting-currency", "EUR"]) == 0
    printed = capsys.readouterr().out
    names = [line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("-- ")]
    assert names == [v.name for v in REPORTING_VIEWS] + [v.name for v in SOURCE_VIEWS]
    assert (
        "None;" not in printed and "`my-project.raw.TKT037_TIKTOK_ADS_CAMPAIGN_HOURLY`" in printed
    )
