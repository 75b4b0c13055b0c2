"""Rate limiting at the send point, the adaptive margin, the simulator's arrival window and
the order in which the extraction schedules its page requests."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest

from controller.reports.catalog import REPORTS
from controller.scheduling import PriorityPool, page_priority
from controller.tiktok.http_gate import gate, gated_adapter
from controller.tiktok.rate_limiter import MARGIN_STEP, NARROW_EVERY, RateLimiter
from tests.support.extraction_calls import extract, report_calls
from tiktok_simulator.ratelimit import QPS_WINDOW_SECONDS, AppRateLimiter, SlidingWindow


def test_margin_widens_after_40100_and_narrows_slowly(clock):
    limiter = RateLimiter(10, 600, margin=0.02, clock=clock)
    limiter.rate_limited()
    assert limiter.margin == pytest.approx(0.02 + MARGIN_STEP)
    before = clock.now
    limiter.acquire()
    assert clock.now - before == pytest.approx(1.0)  # everyone held for TikTok's second
    limiter.rate_limited()
    assert limiter.margin == pytest.approx(0.02 + 2 * MARGIN_STEP)
    starts = [(limiter.acquire(), clock.now)[1] for _ in range(10 * NARROW_EVERY)]
    assert limiter.margin == pytest.approx(0.02 + 2 * MARGIN_STEP - 10 * MARGIN_STEP / 10)
    # Widened windows hold: no 1.02 + margin window ever had more than 10 sends.
    assert max(sum(1 for t in starts if s <= t < s + 1.02) for s in starts) <= 10
    for _ in range(20 * NARROW_EVERY):
        limiter.acquire()
    assert limiter.margin == pytest.approx(0.02)  # back at the floor, never below


def test_child_shares_the_adaptive_margin(clock):
    parent = RateLimiter(10, 600, margin=0.0, clock=clock)
    child = parent.child(5, None)
    child.rate_limited()
    assert parent.margin == child.margin == pytest.approx(MARGIN_STEP)


def test_a_late_send_pushes_its_slot_and_the_next_ones(clock):
    limiter = RateLimiter(2, 600, margin=0.0, clock=clock)
    first = limiter.acquire_slot()
    clock.now = 0.3  # the request left 300 ms after its slot was granted
    first.sent()
    limiter.acquire_slot()
    third_at = (limiter.acquire_slot(), clock.now)[1]
    assert third_at == pytest.approx(1.3)  # 1 s after the first one really left


def test_slot_is_taken_when_the_request_leaves(sim):
    """Through a real connection: the slot's time is after the connect, at the write."""
    import requests

    limiter = RateLimiter(10, 600)
    session = requests.Session()
    session.mount("http://", gated_adapter(2))
    slots = []
    taken_at = []  # each slot's time when taken, before the write re-stamps it

    def acquire():
        slots.append(limiter.acquire_slot())
        taken_at.append(slots[-1].at)
        return slots[-1]

    began = time.monotonic()
    with gate(acquire):
        session.get(sim.url + "/_sim/config", timeout=5)
        session.get(sim.url + "/_sim/config", timeout=5)
    session.get(sim.url + "/_sim/config", timeout=5)  # outside the gate: no slot
    assert len(slots) == 2
    # taken after the connect began, re-stamped only later (at the write), and the second
    # taken ~100 ms after the first at 10 QPS. Not the re-stamped times: a write delayed by
    # a busy machine moves the first later, and the pacing grid lets the next follow a
    # little sooner (``_Pacing``; the QPS window on send times is the hard bound).
    assert began <= taken_at[0] <= slots[0].at
    assert taken_at[1] <= slots[1].at
    assert taken_at[1] - taken_at[0] >= 0.09


def test_simulator_window_is_tiktoks_095_seconds():
    limiter = AppRateLimiter(10, 600)
    assert all(limiter.try_acquire(i * 0.095) for i in range(10))  # 10 in 0.855 s
    assert not limiter.try_acquire(0.9)  # an 11th within 0.95 s of the first: 40100
    assert limiter.try_acquire(QPS_WINDOW_SECONDS + 0.001)


def test_simulator_window_counts_arrivals_handled_out_of_order():
    window = SlidingWindow(3, 1.0)
    for t in (0.5, 0.6, 0.7):
        window.add(t)
    # An arrival at 0.45, handled after those three: 4 arrivals within 0.45..0.7.
    assert window.is_full(0.45)
    assert not window.is_full(-0.6)  # a whole window before them
    assert window.count(0.7) == 3


def test_priority_pool_runs_most_urgent_first():
    pool = PriorityPool(1, thread_name_prefix="test")
    ran: list[str] = []
    release = threading.Event()
    pool.submit((0.0,), release.wait)  # holds the only worker while the others queue
    for name, priority in (("b", (2.0,)), ("a", (1.0,)), ("c", (2.0,))):
        pool.submit(priority, ran.append, name)
    release.set()
    pool.shutdown(wait=True)
    assert ran == ["a", "b", "c"]  # FIFO among equals


def test_page_priority_orders_follow_ups_then_long_chains():
    order = sorted(
        [
            ("advertiser p1", page_priority(1, "AUCTION_ADVERTISER", None)),
            ("ad p1", page_priority(1, "AUCTION_AD", None)),
            ("campaign p2", page_priority(2, "AUCTION_CAMPAIGN", None)),
            ("big campaign p1", page_priority(1, "AUCTION_CAMPAIGN", 5000)),
        ],
        key=lambda pair: pair[1],
    )
    assert [name for name, _ in order] == [
        "campaign p2",
        "big campaign p1",
        "ad p1",
        "advertiser p1",
    ]


def test_extraction_asks_for_the_ad_level_first(sim, sim_world):
    levels = ["advertiser", "campaign", "adgroup", "ad"]
    items = [(adv, REPORTS[level]) for level in levels for adv in sim_world.advertiser_ids]
    results, _ = extract(sim, items, date(2025, 1, 1), date(2025, 2, 28), workers=1)
    assert all(r.ok for r in results)
    calls = report_calls(sim)
    sent = [c["data_level"] for c in calls]
    chunks = 2 * len(sim_world.advertiser_ids)  # two 30-day chunks per advertiser
    assert sent[:chunks] == ["AUCTION_AD"] * chunks
    assert sent[-chunks:] == ["AUCTION_ADVERTISER"] * chunks
