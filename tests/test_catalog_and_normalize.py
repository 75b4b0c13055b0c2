"""The report catalog and the typing of raw API rows (no servers needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.extraction import date_chunks
from controller.reports.catalog import REPORTS, MetricType, arrow_schema
from controller.reports.metrics import FAMILIES, FAMILY_NAMES, check_family_names
from controller.tiktok.reader import NormalizationError, finish, join_metric_groups, page_to_table

BIG_ID = "7123456789012345679"  # > 2**53: a float would turn it into ...5680
EXTRACTED = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_catalog_levels_tables_and_metric_limits():
    assert {s.report_type: s.table for s in REPORTS.values()} == {
        "advertiser": "TKT001_TIKTOK_ADS_ADVERTISER",
        "campaign": "TKT002_TIKTOK_ADS_CAMPAIGN",
        "adgroup": "TKT003_TIKTOK_ADS_ADGROUP",
        "ad": "TKT004_TIKTOK_ADS_AD",
    }
    for spec in REPORTS.values():
        assert len(set(spec.metric_names)) == len(spec.metric_names)
        # every family: more than TikTok's 100 metrics per request, so three requests
        assert [len(g) for g in spec.metric_groups()] == [100, 100, len(spec.metric_names) - 200]
    assert {s.report_type: len(s.metric_names) for s in REPORTS.values()} == {
        "advertiser": 260,
        "campaign": 261,
        "adgroup": 266,
        "ad": 271,
    }
    assert "cash_spend" in REPORTS["advertiser"].metric_names
    assert "cash_spend" not in REPORTS["campaign"].metric_names
    assert REPORTS["ad"].attributes == (
        "campaign_name", "campaign_id", "adgroup_name", "adgroup_id", "ad_name",
        "objective_type", "placement_type", "promotion_type", "ad_text", "ad_id_v2",
        "campaign_automation_type", "currency",
    )  # fmt: skip
    assert REPORTS["campaign"].attributes == ("campaign_name", "objective_type", "currency")
    assert REPORTS["adgroup"].metric_type("budget") is MetricType.FLOAT
    assert "budget" not in REPORTS["campaign"].metric_names
    assert "campaign_budget" not in REPORTS["advertiser"].metric_names
    assert REPORTS["advertiser"].attributes == ("currency",)
    assert REPORTS["ad"].filtering() == [
        {"field_name": "ad_status", "filter_type": "IN", "filter_value": '["STATUS_ALL"]'}
    ]
    assert REPORTS["advertiser"].filtering() is None
    assert REPORTS["advertiser"].filtering(origins=("TT_ADS_PLATFORM", "PROMOTE")) == [
        {
            "field_name": "campaign_system_origins",
            "filter_type": "IN",
            "filter_value": '["TT_ADS_PLATFORM","PROMOTE"]',
        }
    ]


def test_metric_families_are_data_and_selectable():
    assert FAMILY_NAMES == (
        "core", "engagement", "video", "conversion", "in_app",
        "website", "onsite", "shop", "engaged_view", "attribution",
    )  # fmt: skip
    sizes = {name: len(family.metrics) for name, family in FAMILIES.items()}
    assert sizes == {
        "core": 9, "engagement": 6, "video": 9, "conversion": 15, "in_app": 52,
        "website": 58, "onsite": 51, "shop": 21, "engaged_view": 16, "attribution": 20,
    }  # fmt: skip
    spec = REPORTS["ad"]
    everything = spec.requested_metrics()
    assert everything == spec.metric_names
    app_only = spec.requested_metrics(["in_app"])
    assert app_only[: len(spec.attributes)] == list(spec.attributes)
    assert "app_install" in app_only and "complete_payment" not in app_only
    assert "spend" in app_only and "campaign_budget" in app_only  # core is always asked
    assert "likes" not in app_only  # engagement was not chosen
    assert spec.requested_metrics(["core"]) == [
        *spec.attributes, "campaign_budget", "budget", *FAMILIES["core"].metrics
    ]  # fmt: skip
    seed = ["engagement", "video", "conversion", "in_app"]  # what the seed asked for
    assert [len(g) for g in spec.metric_groups(families=seed)] == [100, 5]
    assert "cash_spend" in REPORTS["advertiser"].requested_metrics(["core"])
    # exact names of the note (docs/tiktok_api_beyond.md §2), including its irregular spellings
    web = FAMILIES["website"].metrics
    assert web["total_complete_payment_rate"] is MetricType.FLOAT  # a value, not a rate
    assert "total_complete_payment_value" not in spec.metric_names  # TikTok refuses it
    assert "total_page_view_content_events_value" in web
    assert "cost_per_vta_payments_completed" in FAMILIES["attribution"].metrics
    assert "onsite_cost_per_unique_add_to_cart" in FAMILIES["onsite"].metrics
    assert "cost_per_onsite_destination_visit" in FAMILIES["onsite"].metrics
    assert not FAMILIES["website"].audience and not FAMILIES["shop"].audience
    with pytest.raises(ValueError, match="unknown metric family 'webb'; choose from core, eng"):
        check_family_names(["in_app", "webb"])
    assert check_family_names(["website", "in_app", "website"]) == ("core", "website", "in_app")


def test_metric_groups_split_and_cover_every_metric():
    spec = REPORTS["ad"]
    groups = spec.metric_groups(40)
    assert [len(g) for g in groups] == [40] * 6 + [len(spec.metric_names) - 240]
    assert [name for group in groups for name in group] == spec.metric_names


def test_schema_types():
    schema = arrow_schema(REPORTS["ad"])
    assert schema.field("ad_id").type == pa.string()
    assert schema.field("adgroup_id").type == pa.string()
    assert schema.field("date").type == pa.date32()
    assert schema.field("impressions").type == pa.int64()
    assert schema.field("spend").type == pa.float64()
    assert schema.field("_extracted_at").type == pa.timestamp("us", tz="UTC")


def test_date_chunks_75_days_make_three_requests():
    chunks = list(date_chunks(date(2025, 1, 1), date(2025, 3, 16)))
    assert chunks == [
        (date(2025, 1, 1), date(2025, 1, 30)),
        (date(2025, 1, 31), date(2025, 3, 1)),
        (date(2025, 3, 2), date(2025, 3, 16)),
    ]
    assert list(date_chunks(date(2025, 1, 1), date(2025, 1, 1))) == [
        (date(2025, 1, 1), date(2025, 1, 1))
    ]


def _row(ad_id, day, **metrics):
    return {"dimensions": {"ad_id": ad_id, "stat_time_day": f"{day} 00:00:00"}, "metrics": metrics}


def test_page_typing_dash_null_numbers_and_big_ids():
    spec = REPORTS["ad"]
    rows = [
        _row(BIG_ID, "2025-01-02", spend="14.68", impressions="1079", ctr="1.11",
             secondary_goal_result="-", adgroup_id="1799999999999999999", ad_name="Ad, \"one\""),
        _row("1714125042508817", "2025-01-03", spend=3, impressions=12.0, ctr=None,
             secondary_goal_result="5", adgroup_id="1799999999999999998", ad_name="-"),
    ]  # fmt: skip
    metrics = ["spend", "impressions", "ctr", "secondary_goal_result", "adgroup_id", "ad_name"]
    table = finish(spec, page_to_table(spec, metrics, rows), BIG_ID, EXTRACTED)
    assert table.schema == arrow_schema(spec)
    data = table.to_pydict()
    assert data["ad_id"] == [BIG_ID, "1714125042508817"]
    assert data["adgroup_id"] == ["1799999999999999999", "1799999999999999998"]
    assert data["date"] == [date(2025, 1, 2), date(2025, 1, 3)]
    assert data["stat_time_day"] == ["2025-01-02 00:00:00", "2025-01-03 00:00:00"]
    assert data["spend"] == [14.68, 3.0]
    assert data["impressions"] == [1079, 12]
    assert data["ctr"] == [1.11, None]
    assert data["secondary_goal_result"] == [None, 5]
    assert data["ad_name"] == ['Ad, "one"', None]
    assert data["clicks"] == [None, None]  # not requested: null, never 0
    assert data["_advertiser_id"] == [BIG_ID, BIG_ID]
    assert data["_report_type"] == ["ad", "ad"]
    assert data["_extracted_at"] == [EXTRACTED, EXTRACTED]


def test_unparseable_metric_fails_loudly():
    spec = REPORTS["ad"]
    with pytest.raises(NormalizationError, match="metric impressions"):
        page_to_table(spec, ["impressions"], [_row(BIG_ID, "2025-01-02", impressions="<5")])
    with pytest.raises(NormalizationError, match="stat_time_day"):
        bad = [{"dimensions": {"ad_id": BIG_ID, "stat_time_day": "2025/01/02"}, "metrics": {}}]
        finish(spec, page_to_table(spec, [], bad), BIG_ID, EXTRACTED)


def test_join_metric_groups_full_outer():
    spec = REPORTS["ad"]
    first = page_to_table(
        spec, ["spend"], [_row("1", "2025-01-01", spend="1.5"), _row("2", "2025-01-01", spend="2")]
    )
    second = page_to_table(
        spec, ["clicks"], [_row("2", "2025-01-01", clicks="7"), _row("3", "2025-01-01", clicks="1")]
    )
    joined = finish(spec, join_metric_groups(spec, [first, second]), "9", EXTRACTED).sort_by(
        "ad_id"
    )
    assert joined.select(["ad_id", "spend", "clicks"]).to_pylist() == [
        {"ad_id": "1", "spend": 1.5, "clicks": None},
        {"ad_id": "2", "spend": 2.0, "clicks": 7},
        {"ad_id": "3", "spend": None, "clicks": 1},
    ]
    assert joined.column("date").to_pylist() == [date(2025, 1, 1)] * 3


def acero_join(parts: list[pa.Table]) -> pa.Table:
    """The reference: Arrow's own full outer join, as join_metric_groups did before."""
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.join(
            part, keys=["ad_id", "stat_time_day"], join_type="full outer", coalesce_keys=True
        )
    return joined


def sorted_rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda row: repr(sorted(row.items())))


GROUPS = [["spend", "ad_name"], ["clicks", "ctr"], ["impressions"]]
KEYS = st.tuples(st.sampled_from(["1", "2", BIG_ID, "a\x1fb", "12"]), st.integers(1, 4))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(KEYS, max_size=12), min_size=2, max_size=3),
    st.booleans(),
    st.integers(0, 3),
)
def test_join_metric_groups_equals_arrows_join(keys, shuffle_first, split_at):
    """Any rows per part (missing, reordered, repeated keys, parts split in chunks): the same
    columns and rows as Acero's full outer join, in buffers the size of the rows."""
    spec = REPORTS["ad"]
    parts = []
    for index, part_keys in enumerate(keys):
        if index and not shuffle_first:
            part_keys = keys[0]  # the usual case: every group listed the same rows
        rows = [
            _row(ad, f"2025-01-0{day}", **{m: str(n + index) for m in GROUPS[index]})
            for n, (ad, day) in enumerate(part_keys)
        ]
        table = page_to_table(spec, GROUPS[index], rows)
        cut = min(split_at, len(table))
        parts.append(pa.concat_tables([table.slice(0, cut), table.slice(cut)]))
    joined = join_metric_groups(spec, parts)
    reference = acero_join(parts)
    assert joined.column_names == reference.column_names
    assert joined.schema == reference.schema
    assert sorted_rows(joined) == sorted_rows(reference)
    # Buffers the size of the rows (repeated keys may add rows): Acero's were ~190 KB a column.
    assert joined.get_total_buffer_size() <= 2 * joined.nbytes + 8192


def test_join_metric_groups_keeps_no_oversized_buffers():
    """Acero's join output of 40 rows × 270 columns holds ~50 MB of buffers (a backfill unit
    kept 5+ GB of them); the join's must be the size of its rows."""
    spec = REPORTS["ad"]
    groups = [list(g) for g in spec.metric_groups()]
    days = [f"2025-01-{d:02d}" for d in range(1, 21)]
    parts = []
    for index, group in enumerate(groups):
        keep = days if index == 0 else [*days[5:], "2025-01-25"]  # rows missing either side
        rows = [_row(ad, day, **dict.fromkeys(group, "1")) for ad in ("1", "2") for day in keep]
        parts.append(page_to_table(spec, group, rows))
    assert acero_join(parts).get_total_buffer_size() > 20 * 2**20  # what it would hold
    joined = join_metric_groups(spec, parts)
    assert len(joined) == 2 * 21 and joined.num_columns == 2 + len(spec.metric_names)
    assert joined.get_total_buffer_size() < 2 * 2**20
    assert sorted_rows(joined) == sorted_rows(acero_join(parts))
