"""A backfill of any length: units planned from the service, adaptive, resumable.

The workflow's prepare_payload plans the units (``plan_backfill``), each mapped
call_cloud_run_api runs one (``run_unit`` with ``unit_post``), and validate_result records
what loaded (``record_done``) in the resume state the workflow keeps in a Variable
(``state_name``). bench/backfill.py runs the same planner and payloads without Airflow.

Planning. ``POST /plan`` answers, per (advertiser, report type), the rows TikTok reports
for a short sample span (``page_info.total_number`` of page 1: one request each) and how
many days one request may cover and how many requests a page costs. From that,
``estimate_requests`` gives the requests of any span: per request-window (30 days for daily
reports, 1 for hourly) ``ceil(rows per day × days ÷ 1000)`` pages, at least one, times the
metric groups. ``plan_units`` then cuts the window into units, a batch of advertisers × a
date span, as long as the unit's requests take at most ``unit_seconds`` at the unit's share
of the app's rate (``max_qps``); dates are shortened first, then batches halved. A span is
cut only where a request window ends (30 days for daily reports), so the units cost no more
requests than the whole window read at once; more, smaller units are made where they end
sooner at the units in flight (``best_counts``: no last round with slots idle); they are
ordered biggest first, so the end of a backfill is not one long unit running alone.

Adapting. ``run_unit`` POSTs a unit (``if_exists: replace``, so repeating never duplicates
rows) and reads the answer item by item: a report left unfinished at the service's
deadline (or refused with 40067, TikTok's query-size limit, when the service could not
resolve it) is not a failure; its advertisers × dates are split (dates first, then
advertisers) and posted again, until every part loads or a part of one advertiser × one
day fails for such a reason, which splitting cannot fix. Any other error (a revoked
advertiser, a refused permission) fails that report alone; the unit goes on with the rest.

Resuming. ``done_ranges`` / ``subtract_done`` let a re-triggered run with the same conf
skip the (advertiser, report type, dates) that a previous run of it loaded.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .config import MAX_ADVERTISERS_PER_REQUEST, Config
from .fanout import CallRequest, rate_budget, split_batches
from .results import missing_pairs, summarize
from .service import ServiceClient, handle_response

BACKFILL_STATE_PREFIX = "TIKTOK_BACKFILL_STATE_"  # + the conf's key: what a backfill loaded
PLAN_SAMPLE_DAYS = 30
MAX_UNIT_DAYS = 366  # the service's cap on one request's window
# A unit should take at most this share of the service's deadline at its rate share. The
# service stops starting requests at 480 of its 540 s (the rest is kept to commit), so a
# unit planned at 60 % (324 s) still fits if its span holds 1.48x the rows the sample
# predicts; the sample is the window's last 30 days, usually an account's busiest, and a
# unit that overruns anyway is split, not failed. Fewer, longer units cost fewer setups and
# final commits, during which a unit's rate share idles: the bench's two years of 50
# accounts run as 5 units in one round at 60 %, as 10 in two rounds at 40 %.
UNIT_DEADLINE_SHARE = 0.6
# Errors that mean "not finished in time" (the run's deadline, no rate-limit slot before it,
# the service stopping) or TikTok's query-size limit (40067): a smaller part can succeed.
# What a unit costs besides its requests: the service's BigQuery setup and its last commit,
# during which the unit's rate share idles (a few seconds each, measured in the bench).
UNIT_OVERHEAD_SECONDS = 5.0
SPLITTABLE = ("deadline passed", "before the deadline", "40067", "shutting down")


def days_between(start: date, end: date) -> int:
    return (end - start).days + 1


def estimate_requests(item: Mapping[str, Any], days: int) -> int:
    """Requests one (advertiser, report type) costs over ``days`` days, from its /plan item.

    An item /plan could not size (TikTok refused it) counts one request per request-window:
    it will fail fast, or it is small. The Upgraded Smart+ ads its sample showed
    (``smart_plus_requests``) cost as much again in every request-window. A GMV Max item
    reads ``parts`` request chains per window (its stores × promotion types; 0 without a store).
    """
    per_request = item.get("days_per_request")
    windows = 1 if per_request is None else math.ceil(days / per_request)
    groups = int(item.get("metric_groups") or 1)
    parts = item.get("parts", 1)
    parts = 1 if parts is None else int(parts)
    rows = item.get("rows")
    if rows is None:
        return windows * groups * max(parts, 1)
    if parts == 0:
        return 0
    rows_per_day = rows / max(1, int(item.get("sample_days") or 1)) / parts
    span = days if per_request is None else min(days, per_request)
    pages = max(1, math.ceil(rows_per_day * span / int(item.get("page_size") or 1000)))
    if per_request is None:
        pages = max(1, math.ceil(rows / parts / int(item.get("page_size") or 1000)))
    return windows * (pages * groups * parts + int(item.get("smart_plus_requests") or 0))


def spans_of(start: date, end: date, count: int, align: int = 1) -> list[tuple[date, date]]:
    """``start..end`` in ``count`` consecutive spans, cut only where a request window of
    ``align`` days ends: the service reads a span in windows of that many days from its
    start, so a cut inside a window would cost one more request per report and page.
    Spans differ by one window at most (the biggest first); ``align`` 1 cuts anywhere."""
    total = days_between(start, end)
    windows = math.ceil(total / align)
    count = max(1, min(count, windows))
    size, extra = divmod(windows, count)
    out, cursor = [], start
    for index in range(count):
        length = (size + (1 if index < extra else 0)) * align
        last = min(cursor + timedelta(days=length - 1), end)
        out.append((cursor, last))
        cursor = last + timedelta(days=1)
    return out


def busiest_slot(
    costs: Iterable[int], parallel: int, app_qps: float, overhead: float = 0.0
) -> float:
    """The backfill's duration in seconds: ``min(parallel, units)`` slots, each at that
    share of the app's rate, take the units biggest first, each the next free slot (what
    the DAG's mapped tasks do); ``overhead``: a unit's seconds besides its requests.

    A share of 1 QPS or more counts whole requests a second, as the service holds it.
    """
    ordered = sorted(costs, reverse=True)
    width = max(1, min(parallel, len(ordered)))
    share = app_qps / width
    rate = math.floor(share) if share >= 1 else share
    slots = [0.0] * width
    for cost in ordered:
        heapq.heapreplace(slots, slots[0] + cost / rate + overhead)
    return max(slots)


def best_counts(
    counts: list[int],
    most: list[int],
    unit_costs: Callable[[list[int]], list[int]],
    parallel: int,
    app_qps: float,
) -> list[int]:
    """The spans per batch that finish soonest (``busiest_slot``), from the fewest that fit.

    Units run ``parallel`` at a time. Seven equal units at four in flight run a second round
    of three, a quarter of the rate idle for a unit's time (a bench measured 1.41× its
    minimum so); units cut at request windows differ by a window, and a last round of
    unequal units leaves slots idle too. So more, smaller units are tried, one cut at a
    time in the batch whose units are biggest, for a few rounds' worth of cuts; each unit
    costs ``UNIT_OVERHEAD_SECONDS`` more (its setup and commit), so cuts that gain nothing
    are not kept.
    """

    def duration(counts: list[int]) -> float:
        return busiest_slot(unit_costs(counts), parallel, app_qps, UNIT_OVERHEAD_SECONDS)

    counts = list(counts)
    best = (duration(counts), counts)
    for _ in range(3 * parallel):
        growable = [i for i, count in enumerate(counts) if count < most[i]]
        if not growable:
            break
        costs = unit_costs(counts)  # per unit, batch by batch
        sizes, at = [], 0
        for count in counts:
            sizes.append(max(costs[at : at + count]))
            at += count
        counts = list(counts)
        counts[max(growable, key=sizes.__getitem__)] += 1
        seconds = duration(counts)
        if seconds < best[0]:
            best = (seconds, counts)
    return best[1]


@dataclass
class Unit:
    """A batch of advertisers × a date span: one POST /run (and its splits)."""

    advertiser_ids: list[str]
    report_types: list[str]
    start: date
    end: date
    requests: int  # estimated
    label: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "advertiser_ids": self.advertiser_ids,
            "report_types": self.report_types,
            "start_date": self.start.isoformat(),
            "end_date": self.end.isoformat(),
            "estimated_requests": self.requests,
            "label": self.label,
        }


def plan_units(
    items: Iterable[Mapping[str, Any]],
    advertiser_ids: list[str],
    report_types: list[str],
    start: date,
    end: date,
    *,
    max_qps: float,
    unit_seconds: float,
    batch_size: int,
    parallel: int = 1,
) -> list[Unit]:
    """Units whose estimated requests take at most ``unit_seconds`` at ``max_qps``.

    ``items``: /plan's answer. ``batch_size`` caps the advertisers of a unit (at most 200,
    the service's cap); the span shrinks first, then the batch is halved. ``parallel``: the
    units in flight; the units are as many as finish soonest at that (``best_counts``).
    """
    by_pair = {(str(i["advertiser_id"]), i["report_type"]): i for i in items}
    budget = max(1, int(max_qps * unit_seconds))
    window = days_between(start, end)

    def cost(batch: list[str], days: int) -> int:
        return sum(
            estimate_requests(by_pair.get((adv, rt), {"days_per_request": 30}), days)
            for adv in batch
            for rt in report_types
        )

    def longest_span(batch: list[str]) -> int:
        lo, hi = 0, min(window, MAX_UNIT_DAYS)
        while lo < hi:  # the largest day count whose cost fits (cost grows with days)
            mid = (lo + hi + 1) // 2
            if cost(batch, mid) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def request_window(batch: list[str]) -> int:
        """The days per request of the batch's costliest report type (1: none applies)."""
        costs = {
            rt: sum(estimate_requests(by_pair.get((a, rt), {}), window) for a in batch)
            for rt in report_types
        }
        costliest = max(report_types, key=costs.__getitem__)
        days = [by_pair.get((a, costliest), {}).get("days_per_request", 30) for a in batch]
        return int(days[0] or 1) if len(set(days)) == 1 else 1

    batches: list[list[str]] = []
    counts: list[int] = []  # spans per batch
    aligns: list[int] = []  # their request window, where spans may be cut
    pending = [
        advertiser_ids[i : i + batch_size] for i in range(0, len(advertiser_ids), batch_size)
    ]
    while pending:
        batch = pending.pop(0)
        days = longest_span(batch)
        if days == 0 and len(batch) > 1:
            half = len(batch) // 2
            pending[:0] = [batch[:half], batch[half:]]
            continue
        align = request_window(batch)
        if days < align:  # a unit cannot hold a whole request window: cut anywhere
            align = 1
        per_unit = max(days, 1) // align  # whole windows a unit may hold
        batches.append(batch)
        aligns.append(align)
        counts.append(math.ceil(math.ceil(window / align) / per_unit))

    def unit_costs(counts: list[int]) -> list[int]:
        return [
            cost(batch, days_between(a, b))
            for batch, count, align in zip(batches, counts, aligns, strict=True)
            for a, b in spans_of(start, end, count, align)
        ]

    counts = best_counts(
        counts,
        [math.ceil(window / align) for align in aligns],
        unit_costs,
        parallel,
        app_qps=max_qps * parallel,
    )
    units = [
        Unit(batch, report_types, a, b, cost(batch, days_between(a, b)))
        for batch, count, align in zip(batches, counts, aligns, strict=True)
        for a, b in spans_of(start, end, count, align)
    ]
    units.sort(key=lambda u: -u.requests)  # biggest first: the tail is made of small units
    for number, unit in enumerate(units, start=1):
        unit.label = unit_label(number, len(units), unit)
    return units


def unit_label(number: int, total: int, unit: Unit) -> str:
    first = unit.advertiser_ids[0]
    who = first if len(unit.advertiser_ids) == 1 else f"{first}+{len(unit.advertiser_ids) - 1}"
    return f"unit {number}/{total}: {who} {unit.start}..{unit.end}"


# --------------------------------------------------------------------------- resuming


def conf_key(parts: Mapping[str, Any]) -> str:
    """A stable name for a backfill (its conf and destination): the resume state's key."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def record_done(state: dict[str, list[list[str]]], summary: Mapping[str, Any]) -> None:
    """Add a unit's loaded (advertiser, report type, dates) to the resume state."""
    for part in summary.get("parts", []):
        for item in part["results"]:
            if item["status"] == "success":
                key = f"{item['advertiser_id']}|{item['report_type']}"
                state.setdefault(key, []).append([part["start_date"], part["end_date"]])


def is_done(state: Mapping[str, list[list[str]]], unit: Unit) -> bool:
    """True when a previous run loaded every (advertiser, report type) of the unit's span."""
    for adv in unit.advertiser_ids:
        for rt in unit.report_types:
            covered = sorted(
                (date.fromisoformat(a), date.fromisoformat(b))
                for a, b in state.get(f"{adv}|{rt}", [])
            )
            cursor = unit.start
            for a, b in covered:
                if a <= cursor <= b:
                    cursor = b + timedelta(days=1)
            if cursor <= unit.end:
                return False
    return True


# --------------------------------------------------------------------------- running


@dataclass
class UnitOutcome:
    label: str
    parts: list[dict[str, Any]] = field(default_factory=list)  # each POST's summary
    failures: list[str] = field(default_factory=list)
    splits: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        items = [i for p in self.parts for i in p["results"]]
        return {
            "label": self.label,
            "rows": sum(i["inserted_rows"] for i in items if i["status"] == "success"),
            "requests": sum(int(i.get("requests") or 0) for i in items),
            "posts": len(self.parts),
            "splits": self.splits,
            "seconds": round(self.seconds, 1),
            "status": "failed" if self.failures else "success",
            "failures": self.failures,
            "parts": self.parts,
        }


def splittable(error: str | None) -> bool:
    return any(marker in (error or "") for marker in SPLITTABLE)


def split_part(payload: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Halve a payload: its dates first, then its advertisers; None when it is one × one."""
    start = date.fromisoformat(payload["start_date"])
    end = date.fromisoformat(payload["end_date"])
    days = days_between(start, end)
    if days > 1:
        middle = start + timedelta(days=days // 2 - 1)
        return [
            {**payload, "end_date": middle.isoformat()},
            {**payload, "start_date": (middle + timedelta(days=1)).isoformat()},
        ]
    ids = payload["advertiser_ids"]
    if len(ids) > 1:
        half = len(ids) // 2
        return [
            {**payload, "advertiser_ids": ids[:half]},
            {**payload, "advertiser_ids": ids[half:]},
        ]
    return None


def run_unit(
    label: str,
    payload: Mapping[str, Any],
    post: Callable[[Mapping[str, Any]], dict[str, Any]],
    log: Callable[[str], None] = print,
) -> UnitOutcome:
    """POST the unit, split what the deadline (or 40067) left unfinished, until done.

    ``post`` returns the summary of one answer (``results`` with per-item status, error,
    inserted_rows, requests); it raises for answers that are not per-item (4xx, 5xx).
    """
    outcome = UnitOutcome(label)
    began = time.monotonic()
    queue: list[dict[str, Any]] = [dict(payload)]
    while queue:
        part = queue.pop(0)
        summary = post(part)
        summary = {**summary, "start_date": part["start_date"], "end_date": part["end_date"]}
        outcome.parts.append(summary)
        unfinished: dict[str, set[str]] = {}  # report type → advertisers left
        reasons: dict[tuple[str, str], str] = {}
        for item in summary["results"]:
            if item["status"] == "success":
                continue
            pair = (str(item["advertiser_id"]), item["report_type"])
            if splittable(item.get("error")):
                unfinished.setdefault(pair[1], set()).add(pair[0])
                reasons[pair] = item.get("error") or "unfinished"
            else:
                outcome.failures.append(
                    f"{pair[0]}/{pair[1]} {part['start_date']}..{part['end_date']}: "
                    f"{item.get('error') or 'failed'}"
                )
        for missing in summary.get("missing") or []:
            outcome.failures.append(f"{part['start_date']}..{part['end_date']}: {missing}")
        # Report types left with the same advertisers go again together.
        groups: dict[tuple[str, ...], list[str]] = {}
        for report_type, still in unfinished.items():
            groups.setdefault(tuple(sorted(still)), []).append(report_type)
        for members, types in groups.items():
            rest = {**part, "advertiser_ids": list(members), "report_types": types}
            halves = split_part(rest)
            if halves is None:
                pair = (members[0], types[0])
                outcome.failures.append(
                    f"{pair[0]}/{','.join(types)} {part['start_date']}: still unfinished as one "
                    f"advertiser × one day: {reasons.get(pair, 'unfinished')}"
                )
                continue
            outcome.splits += 1
            queue.extend(halves)
        outcome.seconds = time.monotonic() - began
        done = sum(i["inserted_rows"] for p in outcome.parts for i in p["results"])
        left = sum(
            len(q["advertiser_ids"])
            * len(q["report_types"])
            * days_between(date.fromisoformat(q["start_date"]), date.fromisoformat(q["end_date"]))
            for q in queue
        )
        log(
            f"{label}: part {part['start_date']}..{part['end_date']} × "
            f"{len(part['advertiser_ids'])} advertiser(s): {summary['total_inserted_rows']} rows, "
            f"{sum(int(i.get('requests') or 0) for i in summary['results'])} requests; unit so "
            f"far {done} rows in {outcome.seconds:.0f} s; left: {len(queue)} part(s), "
            f"{left} report-days; {len(outcome.failures)} failure(s)"
        )
    return outcome


# --------------------------------------------------------------------------- the workflow's glue


def _advertiser_list(conf: Mapping[str, Any], config: Config) -> list[str]:
    """The backfill's advertisers: the conf's, else the Variables' (the DAG resolves "all" by
    discovery before a backfill is planned, so a string here is a bug, not an input)."""
    advertisers = conf.get("advertiser_ids") or config["advertiser_ids"]
    if isinstance(advertisers, str):
        raise TypeError(f"advertiser_ids must be resolved before planning, not {advertisers!r}")
    return list(advertisers)


def plan_backfill(
    config: Config,
    conf: Mapping[str, Any],
    client: ServiceClient,
    parallel: int,
    state: Mapping[str, list[list[str]]],
) -> tuple[list[CallRequest], int]:
    """Size every advertiser × report type with /plan, then cut the window into units; the
    call requests of those ``state`` (the resume state) does not show as loaded, and the
    number of items sized.

    The sample is the window's last (at most) 30 days: recent days are the busiest of an
    account's history, so older spans are over- rather than under-estimated.
    """
    start, end = (date.fromisoformat(day) for day in conf["window"])
    sample_start = max(start, end - timedelta(days=PLAN_SAMPLE_DAYS - 1))
    advertisers = _advertiser_list(conf, config)
    report_types = conf.get("report_types") or config["report_types"]
    items: list[dict[str, Any]] = []
    max_qps, max_qpm = rate_budget(config["app_qps"], config["app_qpm"], 1, 1)
    for batch in split_batches(advertisers, MAX_ADVERTISERS_PER_REQUEST):
        items += client.plan(
            {
                "advertiser_ids": batch,
                "report_types": report_types,
                "start_date": sample_start.isoformat(),
                "end_date": end.isoformat(),
                "max_qps": max_qps,
                "max_qpm": max_qpm,
            }
        )
    return build_units(config, conf, items, state, parallel), len(items)


def state_name(config: Config, conf: Mapping[str, Any]) -> str:
    """The Variable holding what a backfill (this conf, this destination) already loaded."""
    key = conf_key(
        {
            "conf": conf,
            "project_id": config["project_id"],
            "dataset_id": config["dataset_id"],
            "advertiser_ids": conf.get("advertiser_ids") or config["advertiser_ids"],
            "report_types": conf.get("report_types") or config["report_types"],
        }
    )
    return BACKFILL_STATE_PREFIX + key


def parse_state(raw: str | None) -> dict[str, list[list[str]]]:
    """The resume state from its Variable's text; unset or unreadable: nothing loaded yet."""
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


def unit_payload(
    unit: Unit, project_id: str, dataset_id: str, max_qps: float, max_qpm: int
) -> dict[str, Any]:
    """The unit's POST /run body (without the access token, which the caller adds)."""
    return {
        "advertiser_ids": unit.advertiser_ids,
        "project_id": project_id,
        "dataset_id": dataset_id,
        "report_types": unit.report_types,
        "start_date": unit.start.isoformat(),
        "end_date": unit.end.isoformat(),
        "if_exists": "replace",
        "max_qps": max_qps,
        "max_qpm": max_qpm,
    }


def build_units(
    config: Config,
    conf: Mapping[str, Any],
    items: list[dict[str, Any]],
    state: Mapping[str, list[list[str]]],
    parallel: int,
) -> list[CallRequest]:
    """The backfill's units as call requests, minus those a previous run already loaded."""
    start, end = (date.fromisoformat(day) for day in conf["window"])
    advertisers = _advertiser_list(conf, config)
    report_types = conf.get("report_types") or config["report_types"]
    share = config["app_qps"] / parallel  # each unit's share when ``parallel`` run at once
    units = plan_units(
        items,
        advertisers,
        report_types,
        start,
        end,
        max_qps=min(share, config["app_qpm"] / parallel / 60),
        unit_seconds=config["run_deadline_seconds"] * UNIT_DEADLINE_SHARE,
        batch_size=config["batch_size"],
        parallel=parallel,
    )
    todo = [unit for unit in units if not is_done(state, unit)]
    max_qps, max_qpm = rate_budget(config["app_qps"], config["app_qpm"], parallel, len(todo))
    return [
        {
            "service_url": config["service_url"],
            "label": unit.label,
            "unit": unit.to_json(),
            "payload": unit_payload(
                unit, config["project_id"], config["dataset_id"], max_qps, max_qpm
            ),
        }
        for unit in todo
    ]


def unit_post(
    client: ServiceClient, request: CallRequest
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """POST one part of a unit; per-item answers (200, 207, 502) come back as summaries."""

    def post(payload: Mapping[str, Any]) -> dict[str, Any]:
        status, text = client.run(payload)
        label = f"{request['label']} ({payload['start_date']}..{payload['end_date']})"
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if status in (200, 207, 502) and isinstance(body, dict) and "results" in body:
            summary = summarize(status, body, label, client.token)
        else:
            summary = handle_response(status, text, label, client.token)  # raises for 4xx/5xx
        summary["missing"] = missing_pairs(payload, summary["results"])
        return summary

    return post
