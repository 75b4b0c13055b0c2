"""Advertiser discovery, account info (TKT010) and entity history (TKT011..TKT013), end to end:
the service in-process against the simulator and local BigQuery.

Ground truth is the simulator's own model (``tiktok_simulator.entities``): what it serves on
an "as of" day. A history test moves that day across scheduled changes and checks that the
history tables gain exactly the versions that changed, close the previous ones, and that a
rerun adds nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from controller.tiktok.accounts import iana_zone
from controller.tiktok.entities import ENTITIES
from tests.fixtures.service import APP_SECRET
from tests.fixtures.simulator import SIM_TOKEN
from tests.support.warehouse import table_rows
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator.entities import advertiser_info
from tiktok_simulator.metrics import AD, ADGROUP, CAMPAIGN

LEVELS = {"campaigns": CAMPAIGN, "adgroups": ADGROUP, "ads": AD}
ENTITY_TYPES = ["campaigns", "adgroups", "ads"]


def run(url: str, project: str, dataset: str, **body: Any) -> requests.Response:
    payload = {
        "access_token": SIM_TOKEN,
        "advertiser_ids": "all",
        "project_id": project,
        "dataset_id": dataset,
        "if_exists": "replace",
        "report_types": ENTITY_TYPES,
        "start_date": "2025-06-01",
        "end_date": "2025-06-02",
        **body,
    }
    return requests.post(f"{url}/run", json=payload, timeout=240)


def rows(bq_client, dataset: str, table: str, where: str = "TRUE") -> list[dict]:
    return table_rows(bq_client, dataset, table, where)


def served(sim: SimulatorServer, advertiser_id: str, level: str, as_of: date) -> dict[str, dict]:
    """Every object the simulator serves on ``as_of`` (deleted and Promote ones), by id."""
    id_field = {CAMPAIGN: "campaign_id", ADGROUP: "adgroup_id", AD: "ad_id"}[level]
    objects = sim.app.entity_book.objects(advertiser_id, level, as_of)
    return {o[id_field]: o for o in objects}


def test_discovery_lists_granted_advertisers_and_skips_a_closed_one(
    sim: SimulatorServer, sim_world: World, app_service: str, bq_client, bq_dataset
) -> None:
    first, second, closed = sim_world.advertiser_ids  # the third is seeded STATUS_DISABLE
    sim.configure(remove_permission=first)
    listed = requests.get(
        f"{app_service}/advertisers", headers={"Access-Token": SIM_TOKEN}, timeout=60
    ).json()
    assert [(a["advertiser_id"], a["active"]) for a in listed["advertisers"]] == [
        (second, True),
        (closed, False),
    ]
    assert listed["advertisers"][0]["timezone"] == "Etc/GMT-8"
    assert listed["advertisers"][0]["timezone_iana"] == "Asia/Singapore"
    assert listed["advertisers"][1]["reason"] == "account closed (STATUS_DISABLE)"

    response = run(app_service, bq_client.project, bq_dataset,
                   report_types=["advertiser_info", "campaigns", "campaign"])  # fmt: skip
    body = response.json()
    assert response.status_code == 200, body
    assert body["skipped_advertisers"] == [
        {"advertiser_id": closed, "name": sim_world.advertiser_info(closed)["name"],
         "status": "STATUS_DISABLE", "reason": "account closed (STATUS_DISABLE)"}
    ]  # fmt: skip
    ran = {(r["advertiser_id"], r["report_type"]) for r in body["results"]}
    # The closed account's info is loaded (it was seen); nothing else of it runs.
    assert ran == {(second, "advertiser_info"), (closed, "advertiser_info"),
                   (second, "campaigns"), (second, "campaign")}  # fmt: skip
    assert all(r["status"] == "success" for r in body["results"])
    loaded = rows(bq_client, bq_dataset, "TKT002_TIKTOK_ADS_CAMPAIGN")
    assert {r["_advertiser_id"] for r in loaded} == {second}
    assert all(r["currency"] == sim_world.advertiser_info(second)["currency"] for r in loaded)

    sim.configure(add_token={"token": "nobody", "advertiser_ids": []})
    empty = run(app_service, bq_client.project, bq_dataset, access_token="nobody").json()
    assert empty["status"] == "Ok" and empty["results"] == []
    assert empty["message"] == "no active advertiser to run"


def test_a_revoked_app_secret_is_a_clear_error(
    sim: SimulatorServer, app_service: str, bq_client, bq_dataset
) -> None:
    sim.configure(app_secret="rotated-in-the-developer-portal")
    response = run(app_service, bq_client.project, bq_dataset)
    assert response.status_code == 502
    assert response.json()["message"] == (
        "TikTok refused the app credentials (TIKTOK_APP_ID / TIKTOK_APP_SECRET): 40101 "
        "Invalid app_id or secret.; check the app secret was not reset"
    )
    listed = requests.get(
        f"{app_service}/advertisers", headers={"Access-Token": SIM_TOKEN}, timeout=60
    )
    assert listed.status_code == 502 and "40101" in listed.json()["message"]
    assert APP_SECRET not in response.text + listed.text


def test_all_without_app_credentials_is_a_400_naming_them(service, bq_client) -> None:
    body = {"advertiser_ids": "all", "project_id": bq_client.project, "access_token": SIM_TOKEN}
    response = requests.post(f"{service.url}/run", json=body, timeout=60)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "advertiser_ids",
            "message": '"all" needs the developer app\'s credentials: set TIKTOK_APP_ID, '
            "TIKTOK_APP_SECRET on the service",
        }
    ]
    listed = requests.get(f"{service.url}/advertisers", headers={"Access-Token": SIM_TOKEN})
    assert listed.status_code == 400 and "TIKTOK_APP_SECRET" in listed.text


def test_account_table_equals_the_simulator(
    sim: SimulatorServer, sim_world: World, app_service: str, bq_client, bq_dataset
) -> None:
    for _ in range(2):  # replaced per advertiser and day: a second run leaves one row each
        response = run(app_service, bq_client.project, bq_dataset, report_types=["advertiser_info"])
        assert response.status_code == 200, response.text
    loaded = {
        r["advertiser_id"]: r
        for r in rows(bq_client, bq_dataset, "TKT010_TIKTOK_ADS_ADVERTISER_INFO")
    }
    assert sorted(loaded) == sorted(sim_world.advertiser_ids)
    for advertiser_id, row in loaded.items():
        truth = advertiser_info(sim_world, advertiser_id)
        for column in ("name", "company", "status", "currency", "timezone", "display_timezone",
                       "country", "role", "balance"):  # fmt: skip
            assert row[column] == truth[column], column
        assert row["create_time"] == datetime.fromtimestamp(truth["create_time"], UTC)
        assert row["timezone_iana"] == iana_zone(truth["timezone"], truth["display_timezone"])
        assert "/" in row["timezone_iana"] and row["date"] == row["_extracted_at"].date()


def test_entity_tables_hold_every_object_including_deleted_and_promote(
    sim: SimulatorServer, sim_world: World, app_service: str, bq_client, bq_dataset
) -> None:
    as_of = date(2025, 9, 1)
    sim.configure(as_of=as_of.isoformat())
    response = run(app_service, bq_client.project, bq_dataset)
    assert response.status_code == 200, response.text
    active = [a for i, a in enumerate(sim_world.advertiser_ids) if i != 2]
    for report_type, level in LEVELS.items():
        spec = ENTITIES[report_type]
        loaded = rows(bq_client, bq_dataset, spec.table)
        assert all(r["is_current"] and r["valid_to"] is None for r in loaded)
        got = {(r["_advertiser_id"], r[spec.id_field]): r for r in loaded}
        want = {(a, i): o for a in active for i, o in served(sim, a, level, as_of).items()}
        assert got.keys() == want.keys(), report_type
        assert len(got) == len(loaded)
        deleted = [k for k, o in want.items() if o["_deleted"]]
        promote = [k for k, o in want.items() if o["_origin"] == "PROMOTE"]
        assert deleted and len(promote) == len(active)
        for key, obj in want.items():
            row = got[key]
            assert row["campaign_system_origin"] == obj["_origin"]
            assert row["secondary_status"] == obj["secondary_status"]
            name = {"campaigns": "campaign_name", "adgroups": "adgroup_name", "ads": "ad_name"}
            assert row[name[report_type]] == obj[name[report_type]]
            if "budget" in obj:
                assert row["budget"] == obj["budget"]
        current = rows(bq_client, bq_dataset, spec.view)
        assert len(current) == len(loaded)


def test_a_change_adds_exactly_one_version_and_a_rerun_adds_nothing(
    sim: SimulatorServer, sim_world: World, app_service: str, bq_client, bq_dataset
) -> None:
    advertiser = sim_world.advertiser_ids[0]
    change = next(
        c for c in sim.app.entity_book.changes(advertiser)
        if c.kind == "budget_raised" and c.level == ADGROUP
    )  # fmt: skip
    day_before = change.day - timedelta(days=1)
    # Ground truth: the objects whose served form differs between the two days.
    changed = {
        (level, i)
        for level in LEVELS.values()
        for i, obj in served(sim, advertiser, level, change.day).items()
        if served(sim, advertiser, level, day_before).get(i) != obj
    }
    assert (ADGROUP, change.object_id) in changed

    def run_on(day: date) -> dict:
        sim.configure(as_of=day.isoformat())
        response = run(app_service, bq_client.project, bq_dataset, advertiser_ids=[advertiser])
        assert response.status_code == 200, response.text
        return response.json()

    run_on(day_before)
    counts = {t: len(rows(bq_client, bq_dataset, ENTITIES[t].table)) for t in ENTITY_TYPES}
    body = run_on(change.day)
    added = {
        t: len(rows(bq_client, bq_dataset, ENTITIES[t].table)) - counts[t] for t in ENTITY_TYPES
    }
    assert added == {t: sum(1 for level, _ in changed if level == LEVELS[t]) for t in ENTITY_TYPES}
    assert body["total_inserted_rows"] == len(changed)
    versions = sorted(
        rows(bq_client, bq_dataset, ENTITIES["adgroups"].table,
             f"adgroup_id = '{change.object_id}'"),
        key=lambda r: r["valid_from"],
    )  # fmt: skip
    assert len(versions) == 2
    old, new = versions
    assert not old["is_current"] and old["valid_to"] == new["valid_from"]
    assert new["is_current"] and new["valid_to"] is None
    assert new["budget"] == 2 * old["budget"] and new["_hash"] != old["_hash"]

    totals = {t: len(rows(bq_client, bq_dataset, ENTITIES[t].table)) for t in ENTITY_TYPES}
    rerun = run_on(change.day)
    assert rerun["total_inserted_rows"] == 0
    assert {t: len(rows(bq_client, bq_dataset, ENTITIES[t].table)) for t in ENTITY_TYPES} == totals


@pytest.mark.parametrize(
    ("timezone", "display", "expected"),
    [
        ("Europe/London", "Europe/London", "Europe/London"),
        ("Etc/GMT-8", "Asia/Singapore", "Asia/Singapore"),
        ("Etc/GMT+5", None, "Etc/GMT+5"),
        ("GMT+08:00", None, "Etc/GMT-8"),
        ("UTC-03:00", None, "Etc/GMT+3"),
        ("GMT+05:30", None, None),
        ("Nowhere/Land", None, None),
    ],
)
def test_iana_zone(timezone: str, display: str | None, expected: str | None) -> None:
    assert iana_zone(timezone, display) == expected


def test_settlement_days_follow_the_click_windows_of_delivering_ad_groups(
    sim: SimulatorServer, sim_world: World, app_service: str, bq_client, bq_dataset
) -> None:
    from controller.settlement import WINDOW_DAYS

    # The third advertiser: its delivering ad groups' longest click window is under 28 days.
    advertiser, never_loaded = sim_world.advertiser_ids[2], sim_world.advertiser_ids[1]
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=20), today - timedelta(days=2)
    response = run(app_service, bq_client.project, bq_dataset, advertiser_ids=[advertiser],
                   report_types=["adgroups", "adgroup"], start_date=start.isoformat(),
                   end_date=end.isoformat())  # fmt: skip
    assert response.status_code == 200, response.text
    delivered = {
        r["adgroup_id"]
        for r in rows(bq_client, bq_dataset, "TKT003_TIKTOK_ADS_ADGROUP")
        if (r["spend"] or 0) > 0 or (r["impressions"] or 0) > 0
    }
    windows = {
        o["click_attribution_window"]
        for i, o in served(sim, advertiser, ADGROUP, today).items()
        if i in delivered and "click_attribution_window" in o
    }
    assert windows  # the window had delivery
    answer = requests.get(
        f"{app_service}/settlement_days",
        params={"project_id": bq_client.project, "dataset_id": bq_dataset,
                "advertiser_ids": f"{advertiser},{never_loaded}", "max_days": "28"},
        timeout=60,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    days = answer.json()["settlement_days"]
    assert days[advertiser]["days"] == max(WINDOW_DAYS[w] for w in windows)
    assert days[advertiser]["days"] < 28
    assert days[never_loaded] == {"days": 28, "reason": "no ad group history loaded"}
    bad = requests.get(f"{app_service}/settlement_days", params={"advertiser_ids": "x"}, timeout=60)
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"project_id", "advertiser_ids"}


def test_report_rows_without_currency_take_the_accounts() -> None:
    import pyarrow as pa

    from controller.pipeline import fill_currency

    table = pa.table(
        {"currency": pa.array([None, "EUR", None], pa.string()), "spend": [1.0, 2.0, 3.0]}
    )
    filled = fill_currency(table, "USD")
    assert filled["currency"].to_pylist() == ["USD", "EUR", "USD"]
    assert filled.schema == table.schema
    assert fill_currency(table, None) is table  # no account info read in this run
