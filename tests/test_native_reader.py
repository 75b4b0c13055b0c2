"""The native page reader types exactly what the orjson + pyarrow path types, or declines.

Its contract: for any body, ``read_columns`` either returns None (the caller then reads the
JSON in Python) or the same envelope and the same typed columns as ``decode_json`` +
``page_to_table``. These tests hold it to that on the simulator's own pages for every level
and on generated bodies full of what TikTok may send: escapes, non-ASCII, ``"-"``, empty
strings, nulls, JSON numbers, missing and unknown keys, any key order and whitespace; and,
through ``fuzz.differential`` (floats by their bits, errors by class and text), on the fixed
corpus: issue 14's bodies, every input a fuzz run found, a page cut at every position. The
last test runs the sanitizer fuzzer itself for a minute (``make fuzz`` runs it for longer).
"""

from __future__ import annotations

import json
import os
import random
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.reports import registry
from controller.reports.catalog import REPORTS, MetricType
from controller.tiktok import native
from controller.tiktok.client import REPORT_PATH, TikTokClient, decode_json
from controller.tiktok.rate_limiter import RateLimiter
from controller.tiktok.reader import NormalizationError, page_reader, page_to_table
from fuzz import differential, seeds
from tiktok_simulator import SimulatorApp, World

TOKEN = "sim-token"  # the simulator's default grant
SPEC = REPORTS["ad"]
METRICS = ["campaign_name", "campaign_id", "spend", "impressions", "clicks", "ctr", "conversion"]


def python_path(spec, metrics, body: bytes) -> tuple[dict, pa.Table | str]:
    envelope, rows = decode_json(body)
    try:
        return envelope, page_to_table(spec, metrics, rows)
    except NormalizationError as exc:
        return envelope, f"NormalizationError: {exc}"


def native_path(spec, metrics, body: bytes) -> tuple[dict, pa.Table | str] | None:
    read = page_reader(spec, metrics)(body)
    if read is None:
        return None
    envelope, rows = read
    try:
        return envelope, page_to_table(spec, metrics, rows)
    except NormalizationError as exc:
        return envelope, f"NormalizationError: {exc}"


def assert_same(expected: tuple, got: tuple) -> None:
    assert got[0] == expected[0]
    if isinstance(expected[1], str) or isinstance(got[1], str):
        assert got[1] == expected[1]
    else:
        assert got[1].schema == expected[1].schema
        assert got[1].to_pylist() == expected[1].to_pylist()


def test_the_library_is_built_and_loaded():
    # make test builds it; without it every page silently takes the 5x slower path.
    assert native.library() is not None


@pytest.mark.parametrize("level", list(REPORTS))
def test_simulator_pages_of_every_level_read_identically(level):
    spec = REPORTS[level]
    world = World(seed=7, advertisers=1, campaigns_per_advertiser=6, deleted_fraction=0.2)
    app = SimulatorApp(world, rate_limit=False)
    client = TikTokClient("http://127.0.0.1/open_api/v1.3/", TOKEN, RateLimiter(1, 1))
    rows = 0
    groups = spec.metric_groups()  # every family: three requests of at most 100 metrics
    try:
        for metrics in groups:
            for page in (1, 2):
                params = client.report_params(
                    spec, world.advertiser_ids[0], metrics, *_window(), page
                )
                params["page_size"] = "10"
                reply = app.handle(
                    "GET",
                    "/open_api/v1.3/" + REPORT_PATH,
                    urlencode(params),
                    {"Access-Token": TOKEN},
                )
                assert reply.status == 200 and reply.body.startswith(b'{"code":0')
                expected = python_path(spec, metrics, reply.body)
                got = native_path(spec, metrics, reply.body)
                assert got is not None, "the simulator's plain pages must take the native path"
                assert_same(expected, got)
                rows += len(got[1])
    finally:
        client.close()
    assert rows == 20 * len(groups) == 60
    assert expected[0]["data"]["page_info"]["page"] == 2


def _window():
    from datetime import date

    return date(2026, 10, 1), date(2026, 10, 30)


def body_of(rows: list[Any], *, indent: int | None = None, extra: dict | None = None) -> bytes:
    envelope = {
        "code": 0,
        "message": "OK",
        "request_id": "2026112508000001",
        "data": {"list": rows, "page_info": {"page": 1, "page_size": 1000, "total_page": 1}},
        **(extra or {}),
    }
    return json.dumps(envelope, indent=indent, ensure_ascii=indent is None).encode()


def row(ad_id: str = "7123456789012345679", **metrics: Any) -> dict:
    return {
        "dimensions": {"ad_id": ad_id, "stat_time_day": "2026-11-01 00:00:00"},
        "metrics": metrics,
    }


def test_values_tiktok_sends_are_typed_like_the_python_path():
    rows = [
        row(campaign_name='Soldes d\'été, "Paris" \\ 🚀', spend="35.50", impressions="4952"),
        row(campaign_name="-", spend="-", impressions="", ctr="0.000", clicks=None),
        row(campaign_name="", spend=12, impressions=7, ctr=1.25, conversion="-0"),
        row(spend="99999999999.99", impressions="9223372036854775"),
        row(spend="-0.000001", impressions="123456789012345678", ctr="-0.00"),  # 18 digits
        {"metrics": {"spend": "1.5"}, "dimensions": {"stat_time_day": "2026-11-02 00:00:00",
                                                      "ad_id": "1"}, "extra": [1, {"a": None}]},
    ]  # fmt: skip
    for body in (body_of(rows), body_of(rows, indent=2)):
        expected = python_path(SPEC, METRICS, body)
        got = native_path(SPEC, METRICS, body)
        assert got is not None
        assert_same(expected, got)
    table = got[1]
    assert table.column("campaign_name").to_pylist()[:3] == [
        'Soldes d\'été, "Paris" \\ 🚀',
        None,
        None,
    ]
    assert table.column("spend").to_pylist() == [35.5, None, 12.0, 99999999999.99, -1e-06, 1.5]
    assert table.column("impressions").to_pylist() == [
        4952, None, 7, 9223372036854775, 123456789012345678, None,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "value",
    ["12.0", "1e3", "+5", "0x10", "12 ", " 12", "1.", ".5", "99999999999999999999", True, [1]],
)
def test_numbers_it_cannot_type_exactly_are_left_to_the_python_path(value):
    body = body_of([row(impressions=value), row(impressions="3")])
    assert native_path(SPEC, METRICS, body) is None
    python_path(SPEC, METRICS, body)  # which types them or fails with its own message


def test_bodies_it_declines():
    good = body_of([row(spend="1.5")])
    declined = {
        "duplicate key": good.replace(b'"spend": "1.5"', b'"spend": "1.5", "spend": "2"'),
        "invalid UTF-8": body_of([row(campaign_name="caf\u00e9")], indent=1).replace(
            "é".encode(), b"\xe9"
        ),
        "lone surrogate": good.replace(b'"1.5"}', b'"1.5", "campaign_name": "\\ud800"}'),
        "number as id": good.replace(b'"7123456789012345679"', b"7123456789012345679"),
        "rows not objects": body_of([[1, 2]]),
        "trailing garbage": good + b"x",
    }
    for name, body in declined.items():
        assert body != good, name
        assert native_path(SPEC, METRICS, body) is None, name


def test_truncated_bodies_are_never_read_partially():
    body = body_of([row(spend=f"{i}.25", impressions=str(i)) for i in range(40)])
    for cut in range(1, len(body), 7):
        assert native_path(SPEC, METRICS, body[:cut]) is None
        with pytest.raises(orjson.JSONDecodeError):
            decode_json(body[:cut])


def test_error_envelopes_and_empty_pages():
    error = b'{"code": 40100, "message": "Too many requests", "request_id": "x", "data": {}}'
    assert_same(python_path(SPEC, METRICS, error), native_path(SPEC, METRICS, error))
    assert native_path(SPEC, METRICS, error)[0]["data"] == {}
    for body in (b'{"code":0,"message":"OK","data":null}', body_of([])):
        assert_same(python_path(SPEC, METRICS, body), native_path(SPEC, METRICS, body))


def test_missing_ids_fail_with_the_same_message():
    body = body_of([row(spend="1"), {"metrics": {"spend": "2"}}])
    got = native_path(SPEC, METRICS, body)
    assert got[1] == "NormalizationError: a row has no ad_id dimension"
    assert python_path(SPEC, METRICS, body)[1] == got[1]


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


def _mostly(common: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """``odd`` one time in 30: a row has several cells, and one odd cell declines the page."""
    return st.integers(0, 29).flatmap(
        lambda n: odd if n == 17 else common
    )  # not 0: hypothesis favours bounds


_absent = st.sampled_from(["-", "", None])
_int_cell = _mostly(
    st.one_of(_absent, st.integers(-(10**15), 10**15).map(str), st.integers(-(10**6), 10**6)),
    st.sampled_from(["12.0", "1e3", "007", "-0", " 1"]),  # the Python path's leniency or error
)
_float_cell = _mostly(
    st.one_of(
        _absent,
        st.decimals(-(10**9), 10**9, places=2, allow_nan=False).map(lambda d: f"{d:f}"),
        st.floats(-1e9, 1e9, allow_nan=False).map(lambda x: f"{x:.6f}"),
        st.integers(-(10**6), 10**6),
    ),
    st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.just("1e-05")),
)
_cells = {MetricType.STRING: _text, MetricType.INT: _int_cell, MetricType.FLOAT: _float_cell}


@st.composite
def generated_rows(draw) -> list[dict]:
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        metrics: dict[str, Any] = {}
        for name in draw(st.permutations(METRICS)):
            if draw(st.integers(0, 9)) == 0:
                continue  # a missing key
            metrics[name] = draw(_cells[SPEC.metric_type(name)])
        if draw(st.booleans()):
            metrics["not_requested"] = draw(st.one_of(_text, st.lists(st.integers(), max_size=2)))
        rows.append(row(draw(st.sampled_from(["1", "7123456789012345679", "-"])), **metrics))
    return rows


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=generated_rows(), indent=st.sampled_from([None, 1]), seed=st.integers(0, 3))
def test_generated_bodies_read_identically_or_are_declined(rows, indent, seed):
    random.Random(seed).shuffle(rows)
    body = body_of(rows, indent=indent)
    expected = python_path(SPEC, METRICS, body)
    got = native_path(SPEC, METRICS, body)
    if got is not None:
        assert_same(expected, got)


# Issue 14 and the fuzzer's findings: the fixed corpus, replayed through the same comparison
# the fuzzer makes (every layout: each level with all its metrics, and two ad-level subsets).


@pytest.mark.parametrize("name", list(seeds.ISSUE_CASES))
def test_issue_14_bodies_read_identically_or_are_declined(name):
    assert differential.compare(seeds.ISSUE_CASES[name]) is None


def test_the_fixed_corpus_reads_identically_or_is_declined():
    found = list(seeds.fixed_corpus())
    assert len(found) >= 100  # the fuzzer's minimised corpus, kept in fuzz/corpus/
    mismatches = [(name, differential.compare(body)) for name, body in found]
    assert [m for m in mismatches if m[1]] == []


def test_a_page_cut_at_every_position_is_never_read_partially():
    body = dict(seeds.simulator_pages(page_size=2))["simulator-ad-page1"]
    for cut in seeds.truncations(body):
        assert differential.declined(cut) == [case.name for case in differential.CASES]


def test_a_repeated_data_is_declined_as_orjson_keeps_the_last():
    body = seeds.ISSUE_CASES["1-duplicate-data-null"]
    assert decode_json(body) == ({"data": None}, [])
    assert native_path(SPEC, ["spend", "impressions"], body) is None


def test_a_missing_id_is_never_guessed_from_another_section():
    body = seeds.ISSUE_CASES["2-id-guessed-from-metrics"]
    got = native_path(SPEC, ["spend", "impressions"], body)
    assert got[1] == "NormalizationError: a row has no ad_id dimension"


@pytest.mark.parametrize("day", ["-", "", "\\u002d"])
def test_a_not_applicable_day_is_left_to_the_python_path(day):
    body = seeds.page(seeds.R(b'{"spend":"1"}', b'"ad_id":"1","stat_time_day":"%s"' % day.encode()))
    assert native_path(SPEC, ["spend"], body) is None


def test_a_bare_minus_zero_is_the_python_paths_plus_zero():
    body = seeds.ISSUE_CASES["4-bare-minus-zero"]
    bits = {
        name: [
            struct.pack("<d", v) for v in path(SPEC, ["spend"], body)[1].column("spend").to_pylist()
        ]
        for name, path in (("native", native_path), ("python", python_path))
    }
    assert bits == {"native": [struct.pack("<d", 0.0)], "python": [struct.pack("<d", 0.0)]}
    quoted = native_path(SPEC, ["spend"], seeds.ISSUE_CASES["4-string-minus-zero"])[1]
    assert struct.pack("<d", quoted.column("spend")[0].as_py()) == struct.pack("<d", -0.0)


@pytest.mark.parametrize("name", [n for n in seeds.ISSUE_CASES if n.startswith("5-")])
def test_bodies_orjson_refuses_are_declined(name):
    body = seeds.ISSUE_CASES[name]
    try:
        decode_json(body)
    except orjson.JSONDecodeError:
        assert native_path(SPEC, ["spend", "impressions"], body) is None
    else:  # 1e-400 is 0.0, "00012" a string: valid JSON, read by both
        assert differential.compare(body) is None


def test_more_rows_than_a_page_holds_are_declined():
    assert len(python_path(SPEC, ["spend"], seeds.ISSUE_CASES["max-rows"])[1]) == 1000
    assert len(native_path(SPEC, ["spend"], seeds.ISSUE_CASES["max-rows"])[1]) == 1000
    assert native_path(SPEC, ["spend"], seeds.ISSUE_CASES["memory-many-rows"]) is None
    million_empty_rows = seeds.page(*([b"{}"] * 1_000_000))
    assert native_path(SPEC, SPEC.metric_names, million_empty_rows) is None


def test_valid_simulator_pages_are_never_declined():
    pages = dict(seeds.simulator_pages(page_size=50))
    # two pages of each metric group of the four levels (three groups each: every family)
    # and of three other reports
    specs = [*REPORTS.values(), *(registry.get(name) for name in seeds.OTHER_REPORTS)]
    assert len(pages) == sum(2 * len(spec.metric_groups()) for spec in specs) == 34
    declined = {name: differential.declined(body) for name, body in pages.items()}
    assert declined == {name: [] for name in pages}


@pytest.mark.slow
@pytest.mark.e2e  # a sanitizer build and fuzz.run as a process
@pytest.mark.timeout(900)  # the seeds (~3,000 bodies) first, then 60 s of mutations
def test_a_minute_of_sanitizer_fuzzing_finds_no_mismatch(tmp_path):
    # make fuzz runs the same for as long as asked; this is the smoke run of make test (from
    # the seeds and fuzz/corpus/ alone: not what earlier runs left in .local/fuzz/corpus).
    seconds = os.environ.get("FUZZ_SMOKE_SECONDS", "60")
    run = subprocess.run(
        [sys.executable, "-m", "fuzz.run", "--seconds", seconds, "--corpus", str(tmp_path)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    executed = re.search(r"fuzz: (\d+) inputs executed", run.stdout)
    assert executed and int(executed.group(1)) > 1000, run.stdout[-3000:]
