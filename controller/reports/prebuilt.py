"""The prebuilt reports beyond the four seed tables, as data.

Names are ``<level>_<breakdown>``, tables ``TKT0NN_TIKTOK_ADS_<NAME IN UPPER CASE>`` with
numbers assigned here, in order, from ``FIRST_NUMBER`` (TKT000 and TKT010-TKT019 belong to
the run log and entity tables):

* audience, daily, at the four levels: ``_age_gender`` (age + gender together),
  ``_country`` (``country_code``), ``_platform``, ``_language``, with the metrics TikTok
  serves with audience dimensions (no UV metrics, no App/Website/Shop legs);
* hourly at the four levels: ``_hourly`` (``stat_time_hour``, one day per request);
* lifetime at campaign, ad group and ad level: ``_lifetime`` (``query_lifetime=true``).

Each level keeps the seed level's attributes (names, parent ids, currency) and status
filter, so deleted objects are included as in the seed tables.
"""

from __future__ import annotations

from dataclasses import replace

from controller.reports.catalog import REPORTS, ReportSpec
from controller.reports.rules import LEVEL_FAMILIES, family_metrics, metric_types

FIRST_NUMBER = 20
LEVELS = ("advertiser", "campaign", "adgroup", "ad")
# name suffix -> audience breakdown dimensions (TikTok's names, also the column names)
AUDIENCE_BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "age_gender": ("age", "gender"),
    "country": ("country_code",),
    "platform": ("platform",),
    "language": ("language",),
}


def table_name(number: int, report_type: str) -> str:
    return f"TKT{number:03d}_TIKTOK_ADS_{report_type.upper()}"


def definition(
    report_type: str,
    table: str,
    level: str,
    *,
    tiktok_report_type: str = "BASIC",
    breakdowns: tuple[str, ...] = (),
    granularity: str = "day",
    families: tuple[str, ...] | None = None,
    metrics: tuple[str, ...] = (),
) -> ReportSpec:
    """A definition at ``level`` that reuses the seed level's id, status filter and
    attributes, with the metrics of ``families`` (default: the seed level's) that TikTok
    serves for such a report, plus ``metrics`` named one by one."""

    seed = REPORTS[level]
    families = LEVEL_FAMILIES[level] if families is None else families
    audience = tiktok_report_type == "AUDIENCE"
    chosen = family_metrics(
        families,
        audience=audience,
        daily_advertiser=level == "advertiser" and granularity == "day" and not breakdowns,
    )
    types = metric_types()
    for name in metrics:
        chosen.setdefault(name, types[name])
    return ReportSpec(
        report_type=report_type,
        table=table,
        data_level=seed.data_level,
        id_dimension=seed.id_dimension,
        status_field=seed.status_field,
        attributes=seed.attributes,
        metrics=chosen,
        tiktok_report_type=tiktok_report_type,
        breakdowns=breakdowns,
        granularity=granularity,
        families=families,
    )


def _prebuilt() -> list[ReportSpec]:
    names: list[tuple[str, dict]] = []
    for suffix, breakdowns in AUDIENCE_BREAKDOWNS.items():
        for level in LEVELS:
            names.append(
                (
                    f"{level}_{suffix}",
                    {
                        "level": level,
                        "tiktok_report_type": "AUDIENCE",
                        "breakdowns": breakdowns,
                    },
                )
            )
    for level in LEVELS:
        names.append((f"{level}_hourly", {"level": level, "granularity": "hour"}))
    for level in LEVELS[1:]:
        names.append((f"{level}_lifetime", {"level": level, "granularity": "lifetime"}))
    return [
        definition(name, table_name(FIRST_NUMBER + i, name), **params)
        for i, (name, params) in enumerate(names)
    ]


def _creatives() -> ReportSpec:
    """``ad_creative``: the ad level's ``ad_id`` rows as TikTok serves them, an Upgraded Smart+
    ad's creatives each a row with the ``ad_id_v2`` of their ad (TKT004 holds the ads)."""
    seed = REPORTS["ad"]
    name = "ad_creative"
    return replace(seed, report_type=name, table=table_name(43, name), ads_as_shown=False)


PREBUILT: dict[str, ReportSpec] = {spec.report_type: spec for spec in [*_prebuilt(), _creatives()]}
