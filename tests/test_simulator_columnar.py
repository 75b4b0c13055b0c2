"""The simulator's page renderer in columns (``tiktok_simulator.columnar``) serves exactly what
the reference renderer (``report.ReportBuilder.rows``, behind ``served_rows``) says: the same
rows, values and text, byte for byte, for every query shape; and no page ever repeats a
dimension key of its query (issue 19: a simulator fast enough, as strict as before)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from urllib.parse import urlencode

import orjson
import pytest

from tests.fixtures.simulator import SIM_TOKEN
from tests.support.simulator_calls import ID_DIM, params_for, status_all
from tests.support.worlds import one_big_account, smart_plus_world
from tiktok_simulator import SimulatorApp, World, columnar
from tiktok_simulator.metrics import AD, ADGROUP, ADVERTISER, CAMPAIGN, metrics_for_level
from tiktok_simulator.query import parse_report_query
from tiktok_simulator.report import ReportBuilder, builder_for, served_rows
from tiktok_simulator.world import AD_V2

REPORT = "/open_api/v1.3/report/integrated/get/"


def _filter(field: str, values: list[str]) -> dict:
    return {"field_name": field, "filter_type": "IN", "filter_value": json.dumps(values)}


def _filtering(*items: dict) -> str:
    return json.dumps(list(items))


def _every_metric(level: str, time_dimension: str | None = "stat_time_day") -> list[list[str]]:
    """Every metric of ``level``, as requests of at most 100."""
    names = metrics_for_level(level, time_dimension)
    return [names[i : i + 100] for i in range(0, len(names), 100)]


def _shapes(world: World) -> dict[str, dict]:
    """Report requests of every shape the renderer distinguishes."""
    campaigns = world.account(world.advertiser_ids[0]).entities(CAMPAIGN)
    shapes: dict[str, dict] = {}
    for level in (AD, ADGROUP, CAMPAIGN, ADVERTISER):
        for i, metrics in enumerate(_every_metric(level)):
            shapes[f"{level} daily, metrics {i}"] = params_for(
                world,
                level,
                metrics=json.dumps(metrics),
                **({} if level == ADVERTISER else {"filtering": status_all(level)}),
            )
    shapes["ad lifetime"] = params_for(
        world,
        AD,
        dimensions=json.dumps(["ad_id"]),
        metrics=json.dumps(_every_metric(AD, None)[0]),
        start_date="2025-01-01",
        end_date="2025-03-31",
    )
    shapes["campaign hourly"] = params_for(
        world,
        CAMPAIGN,
        dimensions=json.dumps(["campaign_id", "stat_time_hour"]),
        metrics=json.dumps(_every_metric(CAMPAIGN, "stat_time_hour")[0]),
        start_date="2025-02-03",
        end_date="2025-02-03",
    )
    shapes["ad hourly, time first"] = params_for(
        world,
        AD,
        dimensions=json.dumps(["stat_time_hour", "ad_id"]),
        start_date="2025-02-03",
        end_date="2025-02-03",
    )
    shapes["ad filtered by campaign, ordered, paged"] = params_for(
        world,
        AD,
        filtering=_filtering(_filter("campaign_ids", [c.id for c in campaigns[:2]])),
        metrics=json.dumps(
            ["spend", "cpc", "ctr", "campaign_name", "conversion", "cost_per_conversion"]
        ),
        order_field="spend",
        order_type="ASC",
        page="2",
        page_size="7",
    )
    shapes["adgroup ordered by clicks, last short page"] = params_for(
        world, ADGROUP, order_field="clicks", page="4", page_size="13"
    )
    shapes["beyond the last page"] = params_for(world, AD, page="9", page_size="1000")
    shapes["two advertisers"] = params_for(
        world,
        CAMPAIGN,
        advertiser_id=None,
        advertiser_ids=json.dumps(world.advertiser_ids[:2]),
        metrics=json.dumps(["spend", "impressions", "cpm"]),
    )
    shapes["every origin"] = params_for(
        world,
        ADVERTISER,
        filtering=_filtering(
            {
                "field_name": "campaign_system_origins",
                "filter_type": "IN",
                "filter_value": json.dumps(["TT_ADS_PLATFORM", "PROMOTE"]),
            }
        ),
    )
    return shapes


def _reference(app: SimulatorApp, params: dict, words: dict[str, str]) -> tuple:
    """(query, selection, lo, hi, the reference rows as the app serves them) of ``params``."""
    query = parse_report_query(params, (app.world.start, app.world.end))
    builder = builder_for(app.world)
    selection = builder.select(query, app.settings.throttle_threshold)
    lo = (query.page - 1) * query.page_size
    hi = max(lo, min(lo + query.page_size, len(selection.keys)))
    rows = builder.rows(query, selection, lo, hi)
    for row in rows:
        row["metrics"].update((n, w) for n, w in words.items() if n in row["metrics"])
    return query, selection, lo, hi, rows


def _not_the_reference(*args, **kwargs):
    raise AssertionError("the page fell back to the reference renderer")


@pytest.fixture(scope="module")
def smart_world() -> World:
    return smart_plus_world(2)


@pytest.mark.parametrize("world_name", ["sim_world", "smart_world"])
def test_every_query_shape_renders_the_reference_bytes(
    request, monkeypatch, world_name: str
) -> None:
    world: World = request.getfixturevalue(world_name)
    app = SimulatorApp(world, rate_limit=False)
    builder = builder_for(world)
    shapes = _shapes(world)
    if world_name == "smart_world":
        account = world.account(world.advertiser_ids[0])
        v2 = account.smart_plus_ads[:2] + account.entities(AD_V2)[:2]  # Smart+ and classic
        shapes["Smart+ ad_id_v2, filtered"] = params_for(
            world,
            AD,
            dimensions=json.dumps(["ad_id_v2", "stat_time_day"]),
            metrics=json.dumps(_every_metric(AD)[0]),
            filtering=_filtering(_filter("ad_ids_v2", [e.id for e in v2])),
        )
    rendered = 0
    for name, params in shapes.items():
        query, selection, lo, hi, rows = _reference(app, params, {})
        with monkeypatch.context() as patched:  # the columns, not the reference, served it
            patched.setattr(ReportBuilder, "_render", _not_the_reference)
            served = builder.page_json(query, selection, lo, hi)
        assert served == orjson.dumps(rows), name
        rendered += len(rows)
    assert rendered > 1_000


def test_worded_metrics_settling_days_and_hidden_campaigns_render_the_reference_bytes(
    sim_world: World,
) -> None:
    app = SimulatorApp(sim_world, rate_limit=False)
    builder = builder_for(sim_world)
    campaign = sim_world.account(sim_world.advertiser_ids[0]).entities(CAMPAIGN)[1]
    words = {"campaign_budget": "unlimited", "spend": 'a "quoted"\nword', "cpc": "né"}
    for params in _shapes(sim_world).values():
        query, selection, lo, hi, rows = _reference(app, params, words)
        assert builder.page_json(query, selection, lo, hi, words) == orjson.dumps(rows)
        for changed in (
            {"as_of": date(2025, 1, 20), "attribution_days": 7},  # the last days still settle
            {"hidden_campaigns": frozenset({campaign.id, "PROMOTE"})},
        ):
            query = dataclasses.replace(query, **changed)
            selection = builder.select(query, app.settings.throttle_threshold)
            reference = builder.rows(query, selection, lo, min(hi, len(selection.keys)))
            served = builder.page_json(query, selection, lo, min(hi, len(selection.keys)))
            assert served == orjson.dumps(reference)


def _get(app: SimulatorApp, params: dict) -> dict:
    reply = app.handle("GET", REPORT, urlencode(params), {"Access-Token": SIM_TOKEN})
    body = orjson.loads(reply.body)
    assert reply.status == 200 and body["code"] == 0, body
    return body


def test_the_api_serves_the_rows_of_served_rows_page_after_page(sim_world: World) -> None:
    app = SimulatorApp(sim_world, rate_limit=False)
    metrics = _every_metric(AD)[0]
    params = params_for(
        sim_world, AD, metrics=json.dumps(metrics), filtering=status_all(AD), page_size="17"
    )
    rows, page, total_page = [], 1, 1
    while page <= total_page:
        data = _get(app, {**params, "page": str(page)})["data"]
        rows += data["list"]
        total_page = data["page_info"]["total_page"]
        page += 1
    truth = served_rows(
        sim_world, sim_world.advertiser_ids[0], AD, "2025-01-01", "2025-01-30", metrics
    )
    assert total_page > 3 and rows == truth


def test_the_settings_that_reshape_a_page_still_apply(sim_world: World) -> None:
    """``worded_metrics`` on every row, ``short_page`` one row short, ``drift`` one more total,
    ``repeat`` a row of the page before first."""
    app = SimulatorApp(sim_world, rate_limit=False, worded_metrics={"spend": "lots"})
    params = params_for(sim_world, AD, page_size="10")
    full = _get(app, params)["data"]
    assert full["list"] and all(row["metrics"]["spend"] == "lots" for row in full["list"])
    app.set_faults({"mode": "queue", "queue": ["short_page", "drift"]})
    short = _get(app, params)["data"]
    assert short["list"] == full["list"][:-1] and short["page_info"] == full["page_info"]
    drift = _get(app, params)["data"]
    assert drift["list"] == full["list"]
    assert drift["page_info"]["total_number"] == full["page_info"]["total_number"] + 1
    # ``repeat``: the row before the page comes first (page 1: its own last row), in place
    # of the page's first; page_info unchanged
    page_2 = _get(app, {**params, "page": "2"})["data"]
    app.set_faults({"mode": "queue", "queue": ["repeat", "repeat"]})
    repeated = _get(app, params)["data"]
    assert repeated["list"] == [full["list"][-1], *full["list"][1:]]
    assert repeated["page_info"] == full["page_info"]
    repeated_2 = _get(app, {**params, "page": "2"})["data"]
    assert repeated_2["list"] == [full["list"][-1], *page_2["list"][1:]]
    assert repeated_2["page_info"] == page_2["page_info"]


@pytest.mark.parametrize("order", [None, "spend", "frequency"])
def test_no_page_repeats_a_dimension_key_of_its_query(order: str | None) -> None:
    """Every key of a 4-page report (deleted ads too) served once, in total_number rows, unordered or ordered
    by a metric (``frequency`` has many ties: pages must still split them once)."""
    world = one_big_account()
    app = SimulatorApp(world, rate_limit=False)
    extra = {} if order is None else {"order_field": order}
    params = params_for(world, AD, filtering=status_all(AD), **extra)
    keys: list[tuple] = []
    page, total_page, total = 1, 1, 0
    while page <= total_page:
        data = _get(app, {**params, "page": str(page)})["data"]
        keys += [
            (r["dimensions"][ID_DIM[AD]], r["dimensions"]["stat_time_day"]) for r in data["list"]
        ]
        total_page, total = data["page_info"]["total_page"], data["page_info"]["total_number"]
        page += 1
    assert total_page == 4
    assert len(keys) == total == len(set(keys))


def test_a_page_beyond_int64_falls_back_to_the_reference_renderer(
    sim_world: World, monkeypatch
) -> None:
    """Sums too large for the columns' int64 arithmetic (none in a simulated account: made
    here by lowering the bound) are rendered row by row: the same bytes, words included."""
    app = SimulatorApp(sim_world, rate_limit=False)
    builder = builder_for(sim_world)
    monkeypatch.setattr(columnar, "SAFE_BASE", 0)
    words = {"spend": "lots"}
    for params in _shapes(sim_world).values():
        query, selection, lo, hi, rows = _reference(app, params, words)
        assert builder.page_json(query, selection, lo, hi, words) == orjson.dumps(rows)


def test_daily_selections_in_columns_equal_the_reference_loop(sim_world: World) -> None:
    """``ReportBuilder._daily_keys`` (numpy) selects the rows ``_keys`` (one ``day_hash`` per
    ad and day) does, in the same order, at every level, origin and status filter."""
    for world in (sim_world, smart_plus_world(2), one_big_account()):
        builder = ReportBuilder(world)
        checked = 0
        for name, params in _shapes(world).items():
            query = parse_report_query(params, (world.start, world.end))
            if query.time_dimension != "stat_time_day":
                continue
            selection = builder.select(query, 20_000)
            expected = [selection.pack(*key) for key in builder._keys(query, selection.entities)]
            # (GMV Max days may follow at the advertiser level: ``extend_advertiser_keys``)
            assert selection.keys[: len(expected)].tolist() == expected, name
            checked += bool(expected)
        assert checked >= 8
