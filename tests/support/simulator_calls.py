"""Daily report requests to the simulator over HTTP, as a client sends them: a valid
request's parameters, one call, one page, every page (the simulator's own tests)."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.fixtures.simulator import SIM_TOKEN
from tiktok_simulator import SimulatorServer, World
from tiktok_simulator.metrics import AD, ADGROUP, ADVERTISER, CAMPAIGN

ID_DIM = {ADVERTISER: "advertiser_id", CAMPAIGN: "campaign_id", ADGROUP: "adgroup_id", AD: "ad_id"}
STATUS_FIELD = {CAMPAIGN: "campaign_status", ADGROUP: "adgroup_status", AD: "ad_status"}
INVALID_METRICS = "Please correct the information in invalid metric fields and try again. "

session = requests.Session()  # one keep-alive pool for every call of the simulator tests


def status_all(level: str) -> str:
    """The filter that includes deleted objects at ``level``."""
    return json.dumps(
        [{"field_name": STATUS_FIELD[level], "filter_type": "IN", "filter_value": '["STATUS_ALL"]'}]
    )


def params_for(world: World, level: str = AD, advertiser: int = 0, **overrides: Any) -> dict:
    """A valid daily report request; ``None`` in ``overrides`` removes a parameter."""
    params: dict[str, Any] = {
        "advertiser_id": world.advertiser_ids[advertiser],
        "service_type": "AUCTION",
        "report_type": "BASIC",
        "data_level": level,
        "dimensions": json.dumps([ID_DIM[level], "stat_time_day"]),
        "metrics": json.dumps(["spend", "impressions"]),
        "start_date": "2025-01-01",
        "end_date": "2025-01-30",
        "page_size": "1000",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def call(
    server: SimulatorServer, params: dict, token: str | None = SIM_TOKEN, **kw: Any
) -> requests.Response:
    """One report request (``token=None`` sends no Access-Token header)."""
    headers = {} if token is None else {"Access-Token": token}
    return session.get(
        server.base_url + "report/integrated/get/", params=params, headers=headers, timeout=10, **kw
    )


def report(server: SimulatorServer, params: dict, token: str | None = SIM_TOKEN) -> dict:
    """One report request's JSON body (HTTP 200 asserted: TikTok's errors are in ``code``)."""
    response = call(server, params, token)
    assert response.status_code == 200
    return response.json()


def all_pages(server: SimulatorServer, params: dict, page_size: int) -> tuple[list, list]:
    """Every page of a report: (all rows, the page_info of each page)."""
    rows, infos = [], []
    page = 1
    while True:
        body = report(server, {**params, "page": str(page), "page_size": str(page_size)})
        assert body["code"] == 0, body
        rows += body["data"]["list"]
        infos.append(body["data"]["page_info"])
        if page >= body["data"]["page_info"]["total_page"]:
            return rows, infos
        page += 1
