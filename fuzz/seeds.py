"""What the fuzzer starts from, and what the regression tests replay.

- ``simulator_pages``: real pages of every level, as the simulator serves them to the
  service's own ``TikTokClient`` query (small pages, so mutations stay cheap).
- ``ISSUE_CASES``: the bodies of issue 14, each once read differently by the two paths.
- ``truncations``: a body cut at every position (never a partial read).
- ``fixed_corpus``: the files of ``fuzz/corpus/``: every input a fuzz run ever found, kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

from controller.reports import registry
from controller.reports.catalog import REPORTS
from controller.tiktok.client import REPORT_PATH, TikTokClient
from controller.tiktok.rate_limiter import RateLimiter
from fuzz.differential import OTHER_REPORTS
from tiktok_simulator import DEFAULT_TOKEN, SimulatorApp, World

CORPUS = Path(__file__).with_name("corpus")
DICTIONARY = Path(__file__).with_name("json.dict")


def R(metrics: bytes, dimensions: bytes = b'"ad_id":"1","stat_time_day":"2026-11-01 00:00:00"'):
    """One ad-level row around a raw ``metrics`` object (the issue's ``R(m)``)."""
    return b'{"dimensions":{' + dimensions + b'},"metrics":' + metrics + b"}"


def page(*rows: bytes, envelope: bytes = b'"code":0,"message":"OK",') -> bytes:
    return b"{" + envelope + b'"data":{"list":[' + b",".join(rows) + b"]}}"


# name → body; each was read differently by the native reader and the fallback.
ISSUE_CASES: dict[str, bytes] = {
    "1-duplicate-data-null": b'{"data":{"list":[' + R(b'{"spend":"1"}') + b']},"data":null}',
    "1-duplicate-data-object": b'{"data":{"list":[' + R(b'{"spend":"1"}') + b']},"data":{}}',
    "1-data-null-then-object": b'{"data":null,"data":{"list":[' + R(b'{"spend":"1"}') + b"]}}",
    "1-duplicate-list": b'{"data":{"list":[' + R(b'{"spend":"1"}') + b'],"list":null}}',
    "2-id-guessed-from-metrics": b'{"code":0,"data":{"list":['
    + R(b'{"x":0,"spend":"1"}')
    + b',{"dimensions":{"stat_time_day":"2026-11-01 00:00:00"},"metrics":{"ad_id":"9"}}]}}',
    "3-stat-time-day-dash": page(R(b'{"spend":"1"}', b'"ad_id":"1","stat_time_day":"-"')),
    "3-stat-time-day-empty": page(R(b'{"spend":"1"}', b'"ad_id":"1","stat_time_day":""')),
    "3-stat-time-day-escaped-dash": page(
        R(b'{"spend":"1"}', b'"ad_id":"1","stat_time_day":"\\u002d"')
    ),
    "3-ad-id-dash": page(R(b'{"spend":"1"}', b'"ad_id":"-","stat_time_day":"2026-11-01 00:00:00"')),
    "4-bare-minus-zero": page(R(b'{"spend":-0,"impressions":-0}')),
    "4-bare-minus-zero-fraction": page(R(b'{"spend":-0.0}')),
    "4-string-minus-zero": page(R(b'{"spend":"-0","impressions":"-0"}')),
    "5-invalid-utf8-skipped-value": page(R(b'{"x":"\xff","spend":"1"}')),
    "5-invalid-utf8-skipped-key": page(R(b'{"\xff":1,"spend":"1"}')),
    "5-overlong-utf8": page(R(b'{"x":"\xc0\x80"}')),
    "5-utf8-surrogate": page(R(b'{"x":"\xed\xa0\x80"}')),
    "5-above-unicode": page(R(b'{"x":"\xf4\x90\x80\x80"}')),
    "5-cut-utf8": page(R(b'{"x":"\xe2\x82"}')),
    "5-bad-escape": page(R(b'{"x":"\\q"}')),
    "5-lone-high-surrogate": page(R(b'{"x":"\\ud800"}')),
    "5-lone-low-surrogate": page(R(b'{"x":"\\udc00"}')),
    "5-high-then-not-low": page(R(b'{"x":"\\ud800\\u0041"}')),
    "5-short-hex": page(R(b'{"x":"\\u12"}')),
    "5-number-two-dots": page(R(b'{"x":1.2.3,"spend":"1"}')),
    "5-number-no-exponent-digits": page(R(b'{"x":1e,"spend":"1"}')),
    "5-number-leading-zero": page(R(b'{"x":01,"spend":"1"}')),
    "5-number-infinite": page(R(b'{"x":1e400,"spend":"1"}')),
    "5-number-infinite-integer": page(R(b'{"x":' + b"9" * 400 + b"}")),
    "5-number-tiny": page(R(b'{"x":1e-400,"spend":"1"}')),
    "5-number-fraction-dot": page(R(b'{"x":1.,"spend":"1"}')),
    "5-number-minus-only": page(R(b'{"x":-,"spend":"1"}')),
    "5-leading-zeros-int-column": page(R(b'{"impressions":00012}')),
    "5-leading-zeros-float-column": page(R(b'{"spend":00012.5}')),
    "5-leading-zeros-string": page(R(b'{"impressions":"00012","spend":"007.50"}')),
    "5-exponent-in-column": page(R(b'{"spend":1e2,"impressions":1E2}')),
    "5-invalid-utf8-in-envelope": b'{"message":"\xff",' + page(R(b"{}"))[1:],
    "memory-empty-rows": page(*([b"{}"] * 1001)),
    "memory-many-rows": page(*([R(b'{"spend":"1"}')] * 1001)),
    "max-rows": page(*([R(b'{"spend":"1"}')] * 1000)),
}


def simulator_pages(page_size: int = 3) -> Iterator[tuple[str, bytes]]:
    """Pages 1 and 2 of every level (and of an audience, an hourly and a lifetime report)
    with all its metrics, as the simulator serves them."""
    world = World(seed=7, advertisers=1, campaigns_per_advertiser=3, deleted_fraction=0.2)
    app = SimulatorApp(world, rate_limit=False)
    client = TikTokClient("http://127.0.0.1/open_api/v1.3/", DEFAULT_TOKEN, RateLimiter(1, 1))
    try:
        specs = {**REPORTS, **{name: registry.get(name) for name in OTHER_REPORTS}}
        for level, spec in specs.items():
            # every metric: more than 100 at the seed levels, so one request per metric group
            for group, metrics in enumerate(spec.metric_groups()):
                yield from _pages(app, client, world, level, spec, metrics, group, page_size)
    finally:
        client.close()


def _pages(
    app, client, world, level, spec, metrics, group: int, page_size: int
) -> Iterator[tuple[str, bytes]]:
    """Pages 1 and 2 of one metric group of a report."""
    for number in (1, 2):
        params = client.report_params(
            spec,
            world.advertiser_ids[0],
            metrics,
            date(2026, 10, 1),
            date(2026, 10, 1) + timedelta(days=(spec.days_per_request or 30) - 1),
            number,
        )
        params["page_size"] = str(page_size)
        reply = app.handle(
            "GET",
            "/open_api/v1.3/" + REPORT_PATH,
            urlencode(params),
            {"Access-Token": DEFAULT_TOKEN},
        )
        if reply.status != 200 or not reply.body.startswith(b'{"code":0'):
            raise RuntimeError(f"simulator refused {level} page: {reply.body[:200]!r}")
        suffix = f"-group{group + 1}" if group else ""
        yield f"simulator-{level}{suffix}-page{number}", reply.body


def truncations(body: bytes) -> Iterator[bytes]:
    """``body`` cut at every position."""
    for cut in range(len(body)):
        yield body[:cut]


def fixed_corpus() -> Iterator[tuple[str, bytes]]:
    for path in sorted(CORPUS.iterdir()):
        if path.is_file():
            yield path.name, path.read_bytes()
