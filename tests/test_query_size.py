"""40067 "query too large": requests shrink (days, then metrics) instead of failing.

The simulator refuses with TikTok's exact 40067 body any request above ``query_size_limit``
(days x metrics, or rows x metrics); the tables must still equal the ground truth, and the
requests the splitting costs are counted (one worker makes the order, hence the counts,
deterministic). An ad-level month has every family in three metric groups (100, 100, 69).
"""

from __future__ import annotations

from datetime import date

import pytest
import requests

from controller.reports.catalog import REPORTS
from tests.support.extraction_calls import ONE_REQUEST, assert_equals_truth, extract
from tests.support.service_calls import payload, post_run
from tests.support.truth import by_key, truth_rows
from tests.support.warehouse import table_rows

START, END = date(2025, 3, 1), date(2025, 3, 30)
MESSAGE = (
    "Your query is too large, please reduce the query size (e.g. fewer metrics or time range) "
    "and retry after a while."
)


def codes(sim) -> list[int]:
    return [e["code"] for e in sim.stats()["log"] if e["path"].endswith("integrated/get/")]


def test_simulator_answers_40067_with_tiktoks_body(sim, sim_world):
    sim.configure(query_size_limit=20)
    params = {
        "advertiser_id": sim_world.advertiser_ids[0],
        "report_type": "BASIC",
        "data_level": "AUCTION_CAMPAIGN",
        "dimensions": '["campaign_id","stat_time_day"]',
        "metrics": '["spend","clicks"]',
        "start_date": "2025-03-01",
        "end_date": "2025-03-11",  # 11 days x 2 metrics = 22 > 20
    }
    url, headers = sim.base_url + "report/integrated/get/", {"Access-Token": "sim-token"}
    response = requests.get(url, params=params, headers=headers, timeout=10)
    body = response.json()
    assert response.status_code == 200
    assert (body["code"], body["message"], body["data"]) == (40067, MESSAGE, {})
    params["end_date"] = "2025-03-10"  # 20: accepted
    assert requests.get(url, params=params, headers=headers, timeout=10).json()["code"] == 0
    sim.configure(query_size_measure="rows_metrics", query_size_limit=10)
    rows = requests.get(url, params=params, headers=headers, timeout=10).json()
    assert rows["code"] == 40067  # the report's rows x 2 metrics


@pytest.mark.parametrize(
    ("limit", "requests_sent", "refused"),
    [
        # 30 days x 100 metrics refused; 15 days fit: each group halves once (3 refused,
        # learnt by the first group, so groups 2 and 3 start at 15 days).
        (1500, 1 + 2 + 2 + 2, 1),
        # Only one day of 100 metrics fits: 30, 15, 8, 4, 2 days refused once each, then
        # every group is read day by day (3 x 30).
        (100, 5 + 3 * 30, 5),
        # Not even one day of 100: then the metrics halve (50 per request): 6 refused, then
        # each of the 3 groups costs 2 requests a day (69 metrics: 50 + 19).
        (50, 6 + 3 * 30 * 2, 6),
    ],
)
def test_tables_equal_the_truth_at_several_thresholds(
    sim, sim_world, limit, requests_sent, refused
):
    sim.configure(query_size_limit=limit, rate_limit=False)
    advertiser, spec = sim_world.advertiser_ids[0], REPORTS["ad"]
    results, tables = extract(sim, [(advertiser, spec)], START, END, qps=200, workers=1)
    (result,) = results
    assert result.status == "success", result.error
    assert assert_equals_truth(sim_world, spec, advertiser, tables[("ad", advertiser)], START, END)
    sent = codes(sim)
    print(f"limit {limit}: {len(sent)} requests, {sent.count(40067)} answered 40067")
    assert (len(sent), sent.count(40067)) == (requests_sent, refused)
    assert result.requests == len(sent)


def test_later_requests_start_at_the_size_that_worked(sim, sim_world):
    # Two 30-day chunks, one metric group: the second chunk never asks too large again.
    sim.configure(query_size_limit=100, rate_limit=False)
    advertiser, spec = sim_world.advertiser_ids[0], REPORTS["campaign"]
    start, end = date(2025, 3, 1), date(2025, 4, 29)
    results, tables = extract(
        sim, [(advertiser, spec)], start, end, qps=200, workers=1, families=ONE_REQUEST
    )
    assert results[0].status == "success"
    table = tables[("campaign", advertiser)]
    assert assert_equals_truth(sim_world, spec, advertiser, table, start, end, ONE_REQUEST)
    sent = codes(sim)
    # 43 metrics: 30, 15, 8 and 4 days refused; 2 days (86) fit. The first chunk's halves
    # (1-4, 5-8, 9-15, 16-30) cost 2 + 2 + 4 + 8 requests; the second chunk starts at 2 days
    # straight away: 15 requests, none refused.
    assert len(spec.requested_metrics(ONE_REQUEST)) == 43
    assert sent.count(40067) == 4 and len(sent) == 4 + 16 + 15
    assert all(code == 0 for code in sent[4:])


def test_rows_times_metrics_measure_also_converges(sim, sim_world):
    sim.configure(query_size_measure="rows_metrics", query_size_limit=3000, rate_limit=False)
    advertiser, spec = sim_world.advertiser_ids[2], REPORTS["adgroup"]
    results, tables = extract(sim, [(advertiser, spec)], START, END, qps=200)
    assert results[0].status == "success", results[0].error
    assert assert_equals_truth(
        sim_world, spec, advertiser, tables[("adgroup", advertiser)], START, END
    )
    sent = codes(sim)
    assert sent.count(40067) >= 1 and sent.count(0) > 3


def test_one_day_of_the_fewest_metrics_still_refused_fails_the_report(sim, sim_world):
    sim.configure(query_size_limit=5, rate_limit=False)
    advertiser = sim_world.advertiser_ids[0]
    good = sim_world.advertiser_ids[1]
    results, _ = extract(
        sim, [(advertiser, REPORTS["ad"])], START, END, qps=200, workers=1, families=ONE_REQUEST
    )
    (result,) = results
    assert result.status == "error"
    assert result.error == (
        f"advertiser {advertiser}: TikTok answered 40067 (query too large) even for one day "
        "(2025-03-01) and 10 metrics, the smallest request it can be asked; this report is "
        "not loaded: ask for fewer metric families or contact TikTok"
    )
    # 30, 15, 8, 4, 2 days, then 1 day of 50, 25, 13 and 10 metrics
    assert codes(sim) == [40067] * 9
    assert good  # other advertisers are not concerned (each learns its own size)


def test_service_run_with_40067_loads_the_truth(service, sim, sim_world, bq_client, bq_dataset):
    sim.configure(query_size_limit=1500)
    advertiser, spec = sim_world.advertiser_ids[0], REPORTS["campaign"]
    body = payload(bq_client.project, bq_dataset, [advertiser], report_types=["campaign"])
    body.update(start_date="2025-03-01", end_date="2025-03-30")
    response = post_run(service, body)
    assert response.status_code == 200, response.json()
    loaded = table_rows(bq_client, bq_dataset, spec.table)
    for row in loaded:
        del row["_extracted_at"]
    expected = truth_rows(sim_world, spec, advertiser, START, END)
    assert by_key(spec, loaded) == by_key(spec, expected) and loaded
    assert 40067 in codes(sim)
