"""Custom reports: extra report definitions a deployment declares in a JSON file.

The file (path in ``TIKTOK_CUSTOM_REPORTS_FILE``) is read once at start::

    {"reports": [
      {"report_type": "campaign_gender",            # the name /run, the DAG and the CSV tool use
       "table": "TKT100_TIKTOK_ADS_CAMPAIGN_GENDER", # BigQuery table in the run's dataset
       "level": "campaign",                          # advertiser | campaign | adgroup | ad
       "tiktok_report_type": "AUDIENCE",             # BASIC (default) | AUDIENCE
       "dimensions": ["gender"],                     # breakdowns besides the id and time
       "granularity": "day",                         # day (default) | hour | lifetime
       "metric_families": ["core", "video"],         # and/or
       "metrics": ["conversion"]}                    # metric names one by one
    ]}

Everything TikTok would refuse is refused here, before the service takes any request, with
a message naming the report and the field (docs/tiktok_api_reference.md §3.6-3.7,
docs/tiktok_api_beyond.md §5-6): dimensions a report type does not know, audience with hourly
or lifetime, lifetime with a breakdown, metrics a report refuses (UV and App, Website, Shop
legs with audience dimensions; cash/voucher spend outside the advertiser daily report),
more dimensions than a request may group by, a name or table already taken. What TikTok
refuses only at run time (a 40002 naming metrics) is handled as for any report: those
metrics are dropped with a warning.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.reports import rules
from controller.reports.catalog import ReportSpec
from controller.reports.prebuilt import definition

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
# Breakdowns TikTok knows per report type (docs/tiktok_api_reference.md §3.7). Lifetime takes none.
BASIC_BREAKDOWNS = frozenset({"country_code", "ad_type"})
AUDIENCE_BREAKDOWNS = frozenset(
    {
        "age",
        "gender",
        "country_code",
        "province_id",
        "dma_id",
        "platform",
        "ac",
        "language",
        "placement",
        "interest_category",
        "interest_category_tier2",
        "interest_category_tier3",
        "interest_category_tier4",
        "interest_category_v2",
        "behavior_id",
        "purchase_intention",
        "hashtag",
        "audience_tags",
        "device_brand_id",
        "contextual_tag",
    }
)
# Pairs reported refused together (country_code + province_id, docs/tiktok_api_beyond.md §5.2).
REFUSED_PAIRS = (frozenset({"country_code", "province_id"}),)
# A request groups by at most this many dimensions (id + time + breakdowns): no connector
# sends more than two breakdowns (age + gender), and the docs document none beyond it
# (docs/tiktok_api_beyond.md §5.3).
MAX_DIMENSIONS = 4


class CustomReportError(ValueError):
    """A custom definition TikTok (or the warehouse) would refuse; names report and field."""

    def __init__(self, source: str, report: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: custom report {report!r}: field {field!r}: {problem}")
        self.report, self.field = report, field


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    report_type: str
    table: str
    level: Literal["advertiser", "campaign", "adgroup", "ad"]
    tiktok_report_type: Literal["BASIC", "AUDIENCE"] = "BASIC"
    dimensions: list[str] = Field(default_factory=list)
    granularity: Literal["day", "hour", "lifetime"] = "day"
    metric_families: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)


def load_file(path: str | Path, **taken: Any) -> list[ReportSpec]:
    """The definitions of a custom reports file; ``taken`` as ``parse`` takes it."""
    source = str(path)
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CustomReportError(source, "*", "file", f"cannot be read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise CustomReportError(source, "*", "file", f"is not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("reports"), list):
        raise CustomReportError(source, "*", "reports", 'the file must be {"reports": [...]}')
    return parse(document["reports"], source, **taken)


def parse(
    entries: list[Any],
    source: str = "custom reports",
    *,
    taken: dict[str, ReportSpec],
    reserved_names: tuple[str, ...] = (),
    reserved_prefixes: tuple[str, ...] = (),
) -> list[ReportSpec]:
    """Validate every entry against TikTok's rules and the existing reports.

    What is already taken comes in as arguments (the registry passes its built-in reports,
    the entity names /run also takes, and the service's own table prefixes), so this module
    depends on nothing above it.
    """
    taken_names = set(taken) | set(reserved_names)
    taken_tables = {spec.table.upper(): spec.report_type for spec in taken.values()}
    definitions: list[ReportSpec] = []
    for index, raw in enumerate(entries):
        label = raw.get("report_type") if isinstance(raw, dict) else None
        report = label if isinstance(label, str) else f"#{index}"
        try:
            entry = _Entry.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "report"
            raise CustomReportError(source, report, field, error["msg"]) from None
        spec = _definition(entry, source)
        if spec.report_type in taken_names:
            raise CustomReportError(
                source, report, "report_type", "the name is already a report; choose another"
            )
        owner = taken_tables.get(spec.table.upper())
        if owner is not None:
            raise CustomReportError(
                source, report, "table", f"{spec.table} is already the table of {owner!r}"
            )
        if spec.table.upper().startswith(reserved_prefixes):
            raise CustomReportError(
                source,
                report,
                "table",
                f"{spec.table}: prefixes {', '.join(reserved_prefixes)} are reserved "
                "for the service's own tables",
            )
        taken_names.add(spec.report_type)
        taken_tables[spec.table.upper()] = spec.report_type
        definitions.append(spec)
    return definitions


def _definition(entry: _Entry, source: str) -> ReportSpec:
    report = entry.report_type

    def refuse(field: str, problem: str) -> CustomReportError:
        return CustomReportError(source, report, field, problem)

    if not NAME.match(report):
        raise refuse("report_type", "use lowercase letters, digits and _ (at most 63)")
    if not TABLE.match(entry.table):
        raise refuse("table", "not a valid BigQuery table name (letters, digits, _)")
    audience = entry.tiktok_report_type == "AUDIENCE"
    _check_dimensions(entry, audience, refuse)
    if not entry.metric_families and not entry.metrics:
        raise refuse("metrics", "give metric_families or metrics (or both)")
    unknown = [f for f in entry.metric_families if f not in rules.FAMILY_METRICS]
    if unknown:
        raise refuse(
            "metric_families", f"unknown {unknown}; choose from {sorted(rules.FAMILY_METRICS)}"
        )
    types = rules.metric_types()
    unknown = [m for m in entry.metrics if m not in types]
    if unknown:
        raise refuse("metrics", f"unknown metrics {unknown} (names as TikTok spells them)")
    daily_advertiser = (
        entry.level == "advertiser"
        and entry.granularity == "day"
        and not entry.dimensions
        and not audience
    )
    refused = [
        m for m in entry.metrics if m in rules.DAILY_ADVERTISER_ONLY and not daily_advertiser
    ]
    if refused:
        raise refuse(
            "metrics",
            f"TikTok accepts {refused} only in the advertiser-level daily BASIC report "
            "without breakdowns (40002 Invalid metric fields)",
        )
    if audience:
        families = [f for f in entry.metric_families if f in rules.AUDIENCE_REFUSED_FAMILIES]
        if families:
            raise refuse(
                "metric_families",
                f"TikTok refuses {families} with report_type AUDIENCE (40002)",
            )
        audience_refused = [m for m in entry.metrics if m in rules.AUDIENCE_REFUSED_METRICS] + [
            m
            for m in entry.metrics
            if any(
                m in rules.FAMILY_METRICS[f]
                for f in rules.AUDIENCE_REFUSED_FAMILIES
                if f in rules.FAMILY_METRICS
            )
        ]
        if audience_refused:
            raise refuse(
                "metrics",
                f"TikTok refuses {sorted(set(audience_refused))} with report_type AUDIENCE "
                "(UV metrics, the App, Website and Shop legs)",
            )
    spec = definition(
        report,
        entry.table,
        entry.level,
        tiktok_report_type=entry.tiktok_report_type,
        breakdowns=tuple(entry.dimensions),
        granularity=entry.granularity,
        families=tuple(entry.metric_families),
        metrics=tuple(entry.metrics),
    )
    if not spec.metrics:
        raise refuse("metric_families", "no metric of these families is served in this report")
    return spec


def _check_dimensions(entry: _Entry, audience: bool, refuse) -> None:
    dims = entry.dimensions
    duplicates = sorted({d for d in dims if dims.count(d) > 1})
    if duplicates:
        raise refuse("dimensions", f"repeated {duplicates}")
    forbidden = [
        d
        for d in dims
        if d in ("advertiser_id", "campaign_id", "adgroup_id", "ad_id")
        or d.startswith("stat_time_")
    ]
    if forbidden:
        raise refuse(
            "dimensions",
            f"{forbidden}: the id dimension comes from level and the time dimension from "
            "granularity; list breakdowns only",
        )
    allowed = AUDIENCE_BREAKDOWNS if audience else BASIC_BREAKDOWNS
    unknown = [d for d in dims if d not in allowed]
    if unknown:
        kind = entry.tiktok_report_type
        raise refuse(
            "dimensions",
            f"{unknown} not available in {kind} reports; choose from {sorted(allowed)}",
        )
    if audience and not dims:
        raise refuse("dimensions", "an AUDIENCE report needs at least one audience dimension")
    for pair in REFUSED_PAIRS:
        if pair <= set(dims):
            raise refuse("dimensions", f"TikTok refuses {sorted(pair)} together")
    if audience and entry.granularity == "hour":
        raise refuse(
            "granularity",
            "TikTok refuses stat_time_hour with AUDIENCE (40002 Conflict occurs. The input "
            "params including metrics and dimensions have no relation.)",
        )
    if audience and entry.granularity == "lifetime":
        raise refuse("granularity", "lifetime AUDIENCE reports are not available in v1.3")
    if entry.granularity == "lifetime" and dims:
        raise refuse(
            "dimensions", "a lifetime report (query_lifetime=true) takes the id dimension only"
        )
    total = 1 + (entry.granularity != "lifetime") + len(dims)
    if total > MAX_DIMENSIONS:
        raise refuse(
            "dimensions",
            f"{total} dimensions (id, time and {len(dims)} breakdowns); at most {MAX_DIMENSIONS}",
        )
