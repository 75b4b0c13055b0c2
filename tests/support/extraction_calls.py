"""One extraction against a simulator, as the extraction tests run it, and its checks: the
tables equal the simulator's ground truth, the report requests the simulator logged."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from controller.extraction import Extraction
from controller.tiktok.client import RetryPolicy, TikTokClient
from controller.tiktok.rate_limiter import RateLimiter
from tests.support.truth import by_key, truth_rows

TOKEN = "sim-token"
FAST_RETRY = RetryPolicy(max_attempts=6, max_seconds=30, min_wait=0.05, max_wait=0.2)
START, END = date(2025, 3, 1), date(2025, 3, 10)
# Delivery, engagement, video and conversions (39 metrics and the attributes) fit one
# request per level and chunk: the tests of paging, retries and limits count requests in
# those units (every family costs three requests per level).
ONE_REQUEST = ("core", "engagement", "video", "conversion")


def extract(server, items, start=START, end=END, *, token=TOKEN, qps=10, **kwargs):
    """Run an extraction; returns (results, {(report_type, advertiser): pa.Table})."""
    client = TikTokClient(
        server.base_url, token, RateLimiter(qps, 600), retry=FAST_RETRY, read_timeout=2.0
    )
    tables: dict[tuple[str, str], list[pa.Table]] = {}

    def sink(spec, advertiser_id, table):
        tables.setdefault((spec.report_type, advertiser_id), []).append(table)

    extraction = Extraction(
        client,
        items,
        start,
        end,
        sink=sink,
        extracted_at=datetime(2026, 11, 25, tzinfo=UTC),
        **{"workers": 8, **kwargs},
    )
    results = extraction.run()
    client.close()
    return results, {k: pa.concat_tables(v) for k, v in tables.items()}


def assert_equals_truth(world, spec, advertiser_id, table, start=START, end=END, families=None):
    """``table`` holds exactly the simulator's rows (by key); returns how many."""
    expected = by_key(spec, truth_rows(world, spec, advertiser_id, start, end, families))
    got = by_key(spec, table.drop_columns(["_extracted_at"]).to_pylist())
    assert got.keys() == expected.keys()
    for k, row in expected.items():
        assert got[k] == row, k
    return len(expected)


def report_calls(server: Any) -> list[dict]:
    """The parameters of every report request the simulator logged, in order."""
    return [e["params"] for e in server.stats()["log"] if e["path"].endswith("integrated/get/")]
