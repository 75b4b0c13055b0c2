"""The TikTok client and the extraction against the simulator over real HTTP."""

from __future__ import annotations

import logging
import time
from datetime import date

import orjson
import pyarrow as pa
import pytest

from controller.extraction import ItemResult
from controller.reports.catalog import REPORTS
from controller.tiktok.origins import ALL_ORIGINS
from tests.support.extraction_calls import (
    END,
    ONE_REQUEST,
    START,
    TOKEN,
    assert_equals_truth,
    extract,
    report_calls,
)
from tests.support.truth import by_key, truth_rows
from tests.support.worlds import one_big_account
from tiktok_simulator import SimulatorServer, World


@pytest.fixture(scope="module")
def big_world() -> World:
    return one_big_account()


@pytest.fixture(scope="module")
def big_sim(big_world) -> SimulatorServer:
    with SimulatorServer(big_world) as server:
        yield server


def test_every_level_matches_ground_truth(sim, sim_world):
    advertiser = sim_world.advertiser_ids[0]
    items = [(advertiser, spec) for spec in REPORTS.values()]
    results, tables = extract(sim, items)
    assert [r.status for r in results] == ["success"] * 4
    for spec in REPORTS.values():
        rows = assert_equals_truth(
            sim_world, spec, advertiser, tables[(spec.report_type, advertiser)]
        )
        assert rows > 0
        assert next(r for r in results if r.report_type == spec.report_type).rows == rows
    calls = report_calls(sim)
    # Every family: 260-269 metrics per level, so 3 requests of at most 100 per level.
    assert len(calls) == sum(len(spec.metric_groups()) for spec in REPORTS.values()) == 12
    assert all(len(orjson.loads(c["metrics"])) <= 100 for c in calls)
    ad_call = next(c for c in calls if c["data_level"] == "AUCTION_AD")
    assert orjson.loads(ad_call["dimensions"]) == ["ad_id", "stat_time_day"]
    assert orjson.loads(ad_call["filtering"]) == [
        {"field_name": "ad_status", "filter_type": "IN", "filter_value": '["STATUS_ALL"]'},
        {
            "field_name": "campaign_system_origins",
            "filter_type": "IN",
            "filter_value": '["TT_ADS_PLATFORM","PROMOTE"]',
        },
    ]
    assert ad_call["page_size"] == "1000"
    assert ad_call["service_type"] == "AUCTION" and ad_call["report_type"] == "BASIC"


def test_ids_stay_exact_strings_above_2_pow_53(sim, sim_world):
    advertiser = sim_world.advertiser_ids[1]
    _, tables = extract(sim, [(advertiser, REPORTS["ad"])])
    table = tables[("ad", advertiser)]
    for column in ("ad_id", "adgroup_id", "campaign_id", "_advertiser_id"):
        assert table.schema.field(column).type == pa.string()
        values = [v for v in table.column(column).to_pylist() if v is not None]
        assert values and all(len(v) >= 16 and v.isdigit() for v in values)
        assert any(int(v) > 2**53 and float(int(v)) != int(v) for v in values), column


def test_dash_becomes_null_and_types_are_numbers(sim, sim_world):
    advertiser = sim_world.advertiser_ids[0]
    _, tables = extract(sim, [(advertiser, REPORTS["campaign"])])
    table = tables[("campaign", advertiser)]
    assert table.column("secondary_goal_result").null_count == len(table)  # "-" on the wire
    assert table.schema.field("impressions").type == pa.int64()
    assert table.schema.field("spend").type == pa.float64()
    assert table.column("spend").null_count == 0


def test_deleted_objects_are_included(sim, sim_world):
    advertiser = sim_world.advertiser_ids[0]
    deleted = set(sim_world.deleted_ids(advertiser, "AUCTION_AD"))
    window = (date(2025, 1, 1), date(2025, 3, 31))
    _, tables = extract(sim, [(advertiser, REPORTS["ad"])], *window)
    served = set(tables[("ad", advertiser)].column("ad_id").to_pylist())
    assert deleted and deleted & served == deleted - (deleted - served)
    assert served & deleted, "no deleted ad delivered in the window: pick another window"


def test_paging_across_pages(big_sim, big_world):
    advertiser = big_world.advertiser_ids[0]
    start, end = date(2025, 4, 1), date(2025, 4, 30)
    results, tables = extract(
        big_sim, [(advertiser, REPORTS["ad"])], start, end, families=ONE_REQUEST
    )
    rows = assert_equals_truth(
        big_world, REPORTS["ad"], advertiser, tables[("ad", advertiser)], start, end, ONE_REQUEST
    )
    pages = [int(c["page"]) for c in report_calls(big_sim)]
    assert rows > 3000 and sorted(pages) == list(range(1, (rows + 999) // 1000 + 1))
    assert results[0].requests == len(pages)


def test_75_day_window_is_split_into_three_requests(sim, sim_world):
    advertiser = sim_world.advertiser_ids[2]
    start, end = date(2025, 1, 1), date(2025, 3, 16)
    _, tables = extract(
        sim, [(advertiser, REPORTS["advertiser"])], start, end, families=ONE_REQUEST
    )
    windows = sorted((c["start_date"], c["end_date"]) for c in report_calls(sim))
    assert windows == [
        ("2025-01-01", "2025-01-30"),
        ("2025-01-31", "2025-03-01"),
        ("2025-03-02", "2025-03-16"),
    ]
    spec = REPORTS["advertiser"]
    assert (
        assert_equals_truth(
            sim_world, spec, advertiser, tables[("advertiser", advertiser)], start, end, ONE_REQUEST
        )
        > 60
    )


def test_metric_list_split_into_requests_and_joined(sim, sim_world):
    advertiser = sim_world.advertiser_ids[0]
    spec = REPORTS["ad"]
    start, end = date(2025, 3, 1), date(2025, 4, 14)  # two chunks x seven metric groups
    _, tables = extract(sim, [(advertiser, spec)], start, end, max_metrics=40)
    assert len(spec.metric_groups(40)) == 7
    assert len(report_calls(sim)) == 2 * 7
    table = tables[("ad", advertiser)]
    assert assert_equals_truth(sim_world, spec, advertiser, table, start, end) > 0
    assert table.column("spend").null_count == 0 and table.column("ad_name").null_count == 0


@pytest.mark.parametrize("faults", [["40100", "50000", "503_html"], ["51010", "504", "truncated"]])
def test_transient_faults_are_retried_to_the_exact_result(sim, sim_world, faults):
    advertiser = sim_world.advertiser_ids[0]
    sim.set_faults({"mode": "queue", "queue": faults})
    results, tables = extract(sim, [(advertiser, REPORTS["adgroup"])])
    assert results[0].status == "success"
    assert (
        assert_equals_truth(
            sim_world, REPORTS["adgroup"], advertiser, tables[("adgroup", advertiser)]
        )
        > 0
    )
    assert sum(sim.stats()["faults"].values()) == 3
    assert len(report_calls(sim)) == 3 + 3  # three metric groups, three faults retried


def test_reset_connection_and_slow_answer_are_retried(sim, sim_world):
    advertiser = sim_world.advertiser_ids[0]
    sim.set_faults({"mode": "queue", "queue": ["reset", "slow"], "slow_seconds": 3})
    results, _ = extract(sim, [(advertiser, REPORTS["advertiser"])])
    assert results[0].status == "success"
    deadline = time.monotonic() + 10  # let the abandoned slow answer finish before the next test
    while sim.stats(include_log=False)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.1)


def _only(results: list[ItemResult]) -> ItemResult:
    assert len(results) == 1
    return results[0]


def test_revoked_token_fails_fast_naming_the_advertiser(sim, sim_world):
    advertiser = sim_world.advertiser_ids[0]
    sim.revoke_token(TOKEN)
    result = _only(extract(sim, [(advertiser, REPORTS["ad"])], families=ONE_REQUEST)[0])
    assert result.status == "error"
    assert result.error.startswith(f"advertiser {advertiser}: TikTok API error 40105: ")
    assert TOKEN not in result.error
    assert len(report_calls(sim)) == 1  # never retried


def test_parameter_error_fails_fast_with_the_api_message(sim, sim_world):
    advertiser = sim_world.advertiser_ids[0]
    sim.set_faults({"mode": "queue", "queue": ["40002"]})
    result = _only(extract(sim, [(advertiser, REPORTS["campaign"])], families=ONE_REQUEST)[0])
    assert result.status == "error"
    assert result.error.startswith(f"advertiser {advertiser}: TikTok API error 40002: ")
    assert len(report_calls(sim)) == 1


def test_one_advertiser_failing_does_not_stop_the_others(sim, sim_world):
    bad, good = sim_world.advertiser_ids[0], sim_world.advertiser_ids[1]
    sim.remove_permission(bad)
    results, tables = extract(sim, [(bad, REPORTS["campaign"]), (good, REPORTS["campaign"])])
    status = {r.advertiser_id: r for r in results}
    assert status[bad].status == "error" and "40001" in status[bad].error
    assert status[good].status == "success"
    assert ("campaign", good) in tables


def test_throttle_header_is_reported_not_silently_truncated(sim, sim_world):
    # Over the cap even one campaign at a time: reported, never loaded truncated.
    advertiser = sim_world.advertiser_ids[0]
    sim.configure(throttle_threshold=1)
    result = _only(extract(sim, [(advertiser, REPORTS["ad"])])[0])
    assert result.status == "error"
    assert "X-Tt-Ads-Throttle" in result.error and "20,000" in result.error


def test_a_report_over_the_ad_cap_is_read_campaign_by_campaign(big_sim, big_world):
    # 160 ads in 4 campaigns of 40 (and a Promote one), a cap of 100: the whole account and
    # the one part of 5 campaigns are truncated, each campaign alone is not.
    advertiser, spec = big_world.advertiser_ids[0], REPORTS["ad"]
    start, end = date(2025, 3, 1), date(2025, 3, 30)
    big_sim.reset()
    big_sim.configure(throttle_threshold=100)
    result, tables = extract(big_sim, [(advertiser, spec)], start, end, families=ONE_REQUEST)
    assert _only(result).status == "success"
    rows = assert_equals_truth(
        big_world, spec, advertiser, tables[("ad", advertiser)], start, end, ONE_REQUEST
    )
    assert rows > 3000
    calls = report_calls(big_sim)
    levels = [c["data_level"] for c in calls]
    assert levels.count("AUCTION_CAMPAIGN") == 1
    scoped = [orjson.loads(c["filtering"]) for c in calls if "campaign_ids" in c["filtering"]]
    parts = {f["filter_value"] for fs in scoped for f in fs if f["field_name"] == "campaign_ids"}
    campaigns = big_world.ids(advertiser, "AUCTION_CAMPAIGN", origins=ALL_ORIGINS)
    assert len(campaigns) == 4 + 1  # and one Promote campaign (one ad)
    assert parts == {orjson.dumps(sorted(campaigns)).decode()} | {
        orjson.dumps([c]).decode() for c in campaigns
    }


def test_rate_limiter_keeps_the_simulator_from_answering_40100(sim, sim_world):
    items = [(adv, spec) for adv in sim_world.advertiser_ids for spec in REPORTS.values()]
    results, _ = extract(sim, items, date(2025, 1, 1), date(2025, 6, 29), families=ONE_REQUEST)
    stats = sim.stats(include_log=False)
    assert all(r.ok for r in results)
    assert stats["requests"] == 72  # 3 advertisers x 4 levels x 6 chunks
    assert stats["codes"] == {"0": 72}
    assert max(count for _, count in stats["accepted_per_second"]) <= 10


def test_metrics_a_level_refuses_are_dropped_and_reported(sim, sim_world):
    # Which conversion metrics TikTok offers at the advertiser level is not documented: a
    # stricter API answering 40002 "Invalid metric fields" must not fail the level.
    refused = ["conversion", "cost_per_conversion", "real_time_conversion"]
    sim.configure(refused_metrics={"AUCTION_ADVERTISER": refused})
    spec = REPORTS["advertiser"]
    advertisers = sim_world.advertiser_ids[:2]
    results, tables = extract(sim, [(a, spec) for a in advertisers], families=ONE_REQUEST)
    warning = (
        "TikTok refused these advertiser-level metrics, loaded as null: "
        "conversion, cost_per_conversion, real_time_conversion"
    )
    assert [(r.status, r.warnings) for r in results] == [("success", [warning])] * 2
    calls = report_calls(sim)
    sent_refused = [c for c in calls if "cost_per_conversion" in orjson.loads(c["metrics"])]
    assert 1 <= len(sent_refused) <= 2  # each advertiser's first request at most
    assert len(calls) == 2 + len(sent_refused)
    for advertiser in advertisers:
        expected = by_key(spec, truth_rows(sim_world, spec, advertiser, START, END, ONE_REQUEST))
        for row in expected.values():
            row.update(dict.fromkeys(refused))
        got = by_key(
            spec, tables[("advertiser", advertiser)].drop_columns(["_extracted_at"]).to_pylist()
        )
        assert got == expected and len(got) > 0


def test_a_40002_naming_no_requested_metric_still_fails(sim, sim_world):
    sim.configure(refused_metrics={"AUCTION_CAMPAIGN": ["not_a_metric_we_send"]})
    result = _only(extract(sim, [(sim_world.advertiser_ids[0], REPORTS["campaign"])])[0])
    assert result.status == "success" and result.warnings == []
    sim.configure(refused_metrics={"AUCTION_CAMPAIGN": REPORTS["campaign"].metric_names})
    result = _only(extract(sim, [(sim_world.advertiser_ids[0], REPORTS["campaign"])])[0])
    assert result.status == "error" and "Invalid metric fields" in result.error


def test_success_without_page_info_is_an_empty_page_not_a_retry(sim, sim_world):
    advertiser = sim_world.advertiser_ids[0]
    sim.set_faults({"mode": "queue", "queue": ["empty_ok"]})
    result = _only(extract(sim, [(advertiser, REPORTS["campaign"])], families=ONE_REQUEST)[0])
    assert (result.status, result.rows, result.requests) == ("success", 0, 1)
    assert len(report_calls(sim)) == 1


def test_an_advertiser_limit_40133_is_learnt_and_kept(sim, sim_world, caplog):
    # TikTok limits each advertiser too (40133, "reaches QPS limit N"): after the first such
    # answer the client paces that advertiser at N while the app pace stays 10/s.
    caplog.set_level(logging.WARNING, logger="controller.tiktok.client")
    sim.configure(advertiser_qps=2)
    advertiser = sim_world.advertiser_ids[0]
    items = [(advertiser, spec) for spec in REPORTS.values()]
    start, end = date(2025, 1, 1), date(2025, 4, 30)  # 4 chunks × 4 levels = 16+ requests
    results, tables = extract(sim, items, start, end, families=ONE_REQUEST)
    assert {r.status for r in results} == {"success"}
    for spec in REPORTS.values():
        assert assert_equals_truth(
            sim_world,
            spec,
            advertiser,
            tables[(spec.report_type, advertiser)],
            start,
            end,
            ONE_REQUEST,
        )
    codes = [e["code"] for e in sim.stats()["log"] if e["path"].endswith("integrated/get/")]
    assert codes.count(0) == sum(r.requests for r in results) >= 16
    # The limit was met (the third request of the first second) and learnt once, at the N
    # TikTok named, and kept: a pace that was forgotten or lowered again would be learnt
    # again. How many requests TikTok refuses after that is not asserted: those already in
    # flight are refused, and on a loaded machine a paced request can still arrive in the
    # same second of TikTok's window as the previous one (the retry policy absorbs both).
    refused = [i for i, code in enumerate(codes) if code == 40133]
    assert refused and refused[0] <= 2, codes
    learnt = [r for r in caplog.records if r.getMessage().endswith("(40133): pacing it")]
    assert [(r.fields["advertiser_id"], r.fields["qps"]) for r in learnt] == [(advertiser, 2.0)]


def test_a_page_short_of_its_page_info_is_asked_for_again(big_sim, big_world):
    advertiser, spec = big_world.advertiser_ids[0], REPORTS["ad"]
    start, end = date(2025, 3, 1), date(2025, 3, 30)
    big_sim.reset()
    big_sim.set_faults({"mode": "queue", "queue": ["ok", "short_page"]})
    result, tables = extract(big_sim, [(advertiser, spec)], start, end, families=ONE_REQUEST)
    assert _only(result).status == "success"
    assert assert_equals_truth(
        big_world, spec, advertiser, tables[("ad", advertiser)], start, end, ONE_REQUEST
    )
    assert len(report_calls(big_sim)) == 4 + 1


def test_a_report_that_changes_while_paged_fails_instead_of_losing_rows(big_sim, big_world):
    advertiser, spec = big_world.advertiser_ids[0], REPORTS["ad"]
    start, end = date(2025, 3, 1), date(2025, 3, 30)
    big_sim.reset()
    big_sim.set_faults({"mode": "queue", "queue": ["ok", "drift"]})  # page 2 counts one more
    result = _only(
        extract(big_sim, [(advertiser, spec)], start, end, workers=1, families=ONE_REQUEST)[0]
    )
    assert result.status == "error"
    assert result.error == (
        f"advertiser {advertiser}: the ad report of 2025-03-01..2025-03-30 changed while it was "
        f"paged (page 1 counted {big_world_total(big_world, advertiser, start, end)} rows, "
        f"page 2 counts {big_world_total(big_world, advertiser, start, end) + 1}); "
        "nothing of it is loaded, rerun the window"
    )


def test_a_row_listed_on_two_pages_fails_the_report_instead_of_loading_it_twice(big_sim, big_world):
    # The row before page 2 comes again on it (the row it displaced never): page_info agrees,
    # only the keys tell. One worker: a page 2 runs right after its page 1 (follow-ups go
    # first), so it takes the queue's "repeat". One request a page: the pages went to the
    # sink as they came, so the report cannot be read again; the writer leaves it out.
    advertiser, spec = big_world.advertiser_ids[0], REPORTS["ad"]
    start, end = date(2025, 3, 1), date(2025, 3, 30)
    big_sim.reset()
    big_sim.set_faults({"mode": "queue", "queue": ["ok", "repeat"]})
    results, tables = extract(
        big_sim, [(advertiser, spec)], start, end, workers=1, families=ONE_REQUEST
    )
    assert [e["page"] for e in report_calls(big_sim)][:2] == ["1", "2"]
    assert _only(results).status == "error"
    assert _only(results).error == (
        f"advertiser {advertiser}: the ad report of 2025-03-01..2025-03-30 listed 1 row(s) "
        "twice across its pages: it changed while it was paged, so as many rows may be "
        "missing; nothing of it is loaded, rerun the window"
    )
    # what reached the sink before the check carries the repeat, and the failed status
    assert len(tables[("ad", advertiser)]) == big_world_total(big_world, advertiser, start, end)


@pytest.mark.parametrize("fault", ["repeat", "drift"])
def test_at_the_default_width_a_report_that_changed_while_paged_is_read_again(
    big_sim, big_world, fault, caplog
):
    # Three metric groups wait to be joined: nothing was handed on, so the chunk's days are
    # read again from page 1 and load exactly the truth.
    advertiser, spec = big_world.advertiser_ids[0], REPORTS["ad"]
    start, end = date(2025, 3, 1), date(2025, 3, 30)
    big_sim.reset()
    big_sim.set_faults({"mode": "queue", "queue": ["ok", fault]})
    with caplog.at_level(logging.WARNING, logger="controller.extraction"):
        results, tables = extract(big_sim, [(advertiser, spec)], start, end, workers=1)
    assert _only(results).status == "success", _only(results).error
    assert assert_equals_truth(big_world, spec, advertiser, tables[("ad", advertiser)], start, end)
    again = [
        r
        for r in caplog.records
        if r.getMessage() == "report changed while it was paged: read again"
    ]
    assert len(again) == 1
    total = big_world_total(big_world, advertiser, start, end)
    pages = -(-total // 1000)
    reason = (
        f"page 1 counted {total} rows, page 2 counts {total + 1}"
        if fault == "drift"
        else "the ad report of 2025-03-01..2025-03-30 listed 1 row(s) twice across its pages: "
        "it changed while it was paged, so as many rows may be missing; nothing of it is "
        "loaded, rerun the window"
    )
    assert again[0].fields["reason"] == reason
    # the pages asked the first time (all of them, or up to the drifted page 2) and once again
    first = 3 * pages if fault == "repeat" else 2
    assert len(report_calls(big_sim)) == first + 3 * pages


def test_a_report_that_keeps_changing_while_paged_fails_after_two_reads_again(big_sim, big_world):
    advertiser, spec = big_world.advertiser_ids[0], REPORTS["ad"]
    start, end = date(2025, 3, 1), date(2025, 3, 30)
    big_sim.reset()
    big_sim.set_faults({"mode": "random", "probability": 1.0, "kinds": ["repeat"]})
    results, tables = extract(big_sim, [(advertiser, spec)], start, end, workers=1)
    pages = -(-big_world_total(big_world, advertiser, start, end) // 1000)
    assert _only(results).status == "error"
    # every page repeats one row (page 1 its own last): as many repeats as pages
    assert _only(results).error == (
        f"advertiser {advertiser}: the ad report of 2025-03-01..2025-03-30 listed {pages} "
        "row(s) twice across its pages: it changed while it was paged, so as many rows may "
        "be missing; nothing of it is loaded, rerun the window"
    )
    assert len(report_calls(big_sim)) == 3 * (3 * pages)  # read, then twice again
    assert ("ad", advertiser) not in tables  # joined chunks: nothing handed on


def big_world_total(world, advertiser, start, end) -> int:
    return len(truth_rows(world, REPORTS["ad"], advertiser, start, end))


def test_a_request_that_times_out_three_times_is_not_sent_again(sim, sim_world):
    # TikTok blocks a request that timed out 3 times in 10 minutes: a 4th try cannot help.
    advertiser = sim_world.advertiser_ids[0]
    sim.set_faults({"mode": "queue", "queue": ["slow"] * 4, "slow_seconds": 2.5})
    result = _only(extract(sim, [(advertiser, REPORTS["advertiser"])], families=ONE_REQUEST)[0])
    assert result.status == "error"
    assert result.error == (
        f"advertiser {advertiser}: TikTok did not answer in time, 3 times for the same request; "
        "not sent again (TikTok blocks a request that timed out 3 times in 10 minutes): "
        "rerun later or with a shorter window"
    )
    deadline = time.monotonic() + 10  # let the abandoned slow answers finish, then count
    while sim.stats(include_log=False)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(report_calls(sim)) == 3
