"""The simulator's discovery, account info and entity list endpoints
(docs/tiktok_api_beyond.md §1.2, §7, §8, §9): strict parameters, TikTok's paging, hidden deleted and
Promote objects, reduced Promote field sets, and objects that change on their scheduled day."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import requests

from tests.fixtures.simulator import SIM_TOKEN
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator.entities import advertiser_status
from tiktok_simulator.metrics import AD, ADGROUP, CAMPAIGN

_session = requests.Session()
PATHS = {CAMPAIGN: "campaign/get/", ADGROUP: "adgroup/get/", AD: "ad/get/"}
ID_FIELD = {CAMPAIGN: "campaign_id", ADGROUP: "adgroup_id", AD: "ad_id"}


@pytest.fixture(autouse=True)
def _no_rate_limit(sim: SimulatorServer) -> None:
    sim.configure(rate_limit=False)  # these tests page two objects at a time


def get(sim: SimulatorServer, path: str, **params: Any) -> dict[str, Any]:
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    response = _session.get(
        sim.base_url + path, params=encoded, headers={"Access-Token": SIM_TOKEN}
    )
    assert response.status_code == 200
    return response.json()


def list_all(sim: SimulatorServer, level: str, advertiser_id: str, **filtering: Any) -> list[dict]:
    rows, page = [], 1
    while True:
        body = get(sim, PATHS[level], advertiser_id=advertiser_id, page=str(page),
                   page_size="2", filtering=filtering)  # fmt: skip
        assert body["code"] == 0, body
        rows += body["data"]["list"]
        info = body["data"]["page_info"]
        if page >= info["total_page"]:
            assert len(rows) == info["total_number"]
            return rows
        page += 1


def test_discovery_needs_app_credentials_in_the_query(
    sim: SimulatorServer, sim_world: World
) -> None:
    path = "oauth2/advertiser/get/"
    ok = get(sim, path, app_id="1234567890", secret="sim-app-secret")
    assert ok["code"] == 0 and "page_info" not in ok["data"]
    assert [a["advertiser_id"] for a in ok["data"]["list"]] == list(sim_world.advertiser_ids)
    assert get(sim, path, app_id="1234567890")["code"] == 40002
    assert get(sim, path, app_id="1234567890", secret="wrong")["code"] == 40101
    sim.configure(add_token={"token": "lonely", "advertiser_ids": []})
    response = _session.get(sim.base_url + path, headers={"Access-Token": "lonely"},
                            params={"app_id": "1234567890", "secret": "sim-app-secret"})  # fmt: skip
    assert response.json()["data"]["list"] == []  # a grant of zero advertisers
    sim.configure(sandbox=True)
    assert get(sim, path, app_id="1234567890", secret="sim-app-secret")["code"] == 40002
    ids = json.dumps(list(sim_world.advertiser_ids))
    assert get(sim, "advertiser/info/", advertiser_ids=ids)["code"] == 40002


def test_account_info_fields_and_seeded_accounts(sim: SimulatorServer, sim_world: World) -> None:
    ids = list(sim_world.advertiser_ids)
    items = get(sim, "advertiser/info/", advertiser_ids=ids)["data"]["list"]
    assert [i["advertiser_id"] for i in items] == ids
    by_id = {i["advertiser_id"]: i for i in items}
    assert by_id[ids[1]]["timezone"] == "Etc/GMT-8"  # offset style, east of UTC
    assert by_id[ids[1]]["display_timezone"] == "Asia/Singapore"
    assert by_id[ids[2]]["status"] == "STATUS_DISABLE" == advertiser_status(sim_world, ids[2])
    for item in items:
        assert isinstance(item["create_time"], int) and isinstance(item["balance"], float)
        assert len(item["currency"]) == 3 and "/" in item["display_timezone"]
    only = get(sim, "advertiser/info/", advertiser_ids=ids[:1], fields=["status", "currency"])
    assert only["data"]["list"] == [
        {"status": "STATUS_ENABLE", "currency": by_id[ids[0]]["currency"]}
    ]
    assert get(sim, "advertiser/info/", advertiser_ids=ids, fields=["nope"])["code"] == 40002
    sim.configure(advertiser_status={ids[0]: "STATUS_LIMIT"})
    assert (
        get(sim, "advertiser/info/", advertiser_ids=ids[:1])["data"]["list"][0]["status"]
        == "STATUS_LIMIT"
    )


@pytest.mark.parametrize("level", [CAMPAIGN, ADGROUP, AD])
def test_entity_lists_hide_deleted_and_promote_by_default(
    sim: SimulatorServer, sim_world: World, level: str
) -> None:
    sim.configure(as_of="2025-03-01")
    advertiser = sim_world.advertiser_ids[0]
    default = list_all(sim, level, advertiser)
    everything = list_all(sim, level, advertiser, primary_status="STATUS_ALL")
    deleted = list_all(sim, level, advertiser, primary_status="STATUS_DELETE")
    promote = list_all(sim, level, advertiser, primary_status="STATUS_ALL",
                       campaign_system_origins=["PROMOTE"])  # fmt: skip
    ids = [r[ID_FIELD[level]] for r in everything]
    assert ids == sorted(ids, key=int, reverse=True)  # TikTok sorts by id descending
    assert deleted and len(default) + len(deleted) == len(everything)
    assert len(everything) == len(sim_world.ids(advertiser, level))  # regular objects only
    assert len(promote) == 1 and promote[0][ID_FIELD[level]] not in ids
    if level != AD:
        assert promote[0]["campaign_system_origin"] == "PROMOTE"
        # The reduced Promote field set (docs/tiktok_api_beyond.md §1.2).
        assert "objective_type" not in promote[0]
    both = get(sim, PATHS[level], advertiser_id=advertiser,
               filtering={"campaign_system_origins": ["PROMOTE", "TT_ADS_PLATFORM"]})  # fmt: skip
    assert both["code"] == 40002


def test_entity_parameters_are_strict(sim: SimulatorServer, sim_world: World) -> None:
    advertiser = sim_world.advertiser_ids[0]
    assert get(sim, "campaign/get/")["code"] == 40002
    assert get(sim, "campaign/get/", advertiser_id=advertiser, page_size="1001")["code"] == 40002
    assert get(sim, "campaign/get/", advertiser_id=advertiser, filtering="[]")["code"] == 40002
    modified = {"modified_after": "2025-01-01 00:00:00"}
    assert get(sim, "campaign/get/", advertiser_id=advertiser, filtering=modified)["code"] == 40002
    assert get(sim, "adgroup/get/", advertiser_id=advertiser, filtering=modified)["code"] == 40002
    assert get(sim, "ad/get/", advertiser_id=advertiser, filtering=modified)["code"] == 0
    fields = get(sim, "ad/get/", advertiser_id=advertiser, fields=["ad_id", "ad_name"])
    assert all(set(r) == {"ad_id", "ad_name"} for r in fields["data"]["list"])
    assert get(sim, "ad/get/", advertiser_id=advertiser, fields=["budget"])["code"] == 40002
    other = sim_world.advertiser_ids[1]
    sim.configure(remove_permission=other)
    assert get(sim, "ad/get/", advertiser_id=other)["code"] == 40001


def test_objects_change_on_their_day(sim: SimulatorServer, sim_world: World) -> None:
    advertiser = sim_world.advertiser_ids[0]
    changes = sim.app.entity_book.changes(advertiser)
    assert {c.kind for c in changes} == {"budget_raised", "paused", "renamed", "deleted"}
    change = next(c for c in changes if c.kind == "budget_raised" and c.level == ADGROUP)

    def adgroup_on(day) -> dict:
        sim.configure(as_of=day.isoformat())
        rows = list_all(sim, ADGROUP, advertiser, primary_status="STATUS_ALL")
        return next(r for r in rows if r["adgroup_id"] == change.object_id)

    before, after = adgroup_on(change.day - timedelta(days=1)), adgroup_on(change.day)
    assert after["budget"] == 2 * before["budget"]
    assert after["modify_time"][:10] == change.day.isoformat() > before["modify_time"][:10]
    assert adgroup_on(change.day + timedelta(days=30)) == after
    created = get(sim, "adgroup/get/", advertiser_id=advertiser,
                  filtering={"primary_status": "STATUS_ALL",
                             "creation_filter_start_time": after["create_time"],
                             "creation_filter_end_time": after["create_time"]})  # fmt: skip
    assert change.object_id in [r["adgroup_id"] for r in created["data"]["list"]]
    deletion = next(c for c in changes if c.kind == "deleted")
    sim.configure(as_of=(deletion.day - timedelta(days=1)).isoformat())
    hidden = {r[ID_FIELD[deletion.level]] for r in list_all(sim, deletion.level, advertiser)}
    sim.configure(as_of=deletion.day.isoformat())
    shown = {r[ID_FIELD[deletion.level]] for r in list_all(sim, deletion.level, advertiser)}
    assert deletion.object_id in hidden and deletion.object_id not in shown
