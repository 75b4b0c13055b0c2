"""``controller.planning.sample_requests``: what /plan says a sample costs the run."""

from __future__ import annotations

from controller.planning import sample_requests


def test_pages_times_groups_under_the_row_bound():
    assert sample_requests(2_500, 3, 3, 30, 10_000) == 9
    assert sample_requests(0, 0, 3, 30, 10_000) == 3  # an empty span still costs its page 1s
    assert sample_requests(50_000, 50, 1, 30, 10_000) == 50  # one group: never windowed
    assert sample_requests(50_000, 50, 3, 1, 10_000) == 150  # one day (or no day): whole


def test_a_span_over_the_row_bound_counts_its_windows():
    # 30 days of 13,500 rows (405,000): windows of 10,000 × 30 ÷ 405,000 → 1 day each, of
    # 14 pages; after the span's page 1s, in 3 metric groups.
    assert sample_requests(405_000, 405, 3, 30, 10_000) == (1 + 30 * 14) * 3
    # 28 days of 1,800 rows (50,400): windows of 5 days (9,000 rows, 9 pages), then 3 days
    # (5,400 rows, 6 pages).
    assert sample_requests(50_400, 51, 3, 28, 10_000) == (1 + 5 * 9 + 6) * 3
