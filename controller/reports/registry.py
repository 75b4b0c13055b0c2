"""Every report the service can run, by name: the seed four, the prebuilt ones and the
custom ones declared at start (``TIKTOK_CUSTOM_REPORTS_FILE``).

``/run``, the CSV tool and the pipeline look reports up here. The seed four are the default
of a run; the others are asked for by name.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal, get_args

from controller.reports.catalog import REPORT_TYPES as SEED_REPORT_TYPES
from controller.reports.catalog import REPORTS as SEED
from controller.reports.catalog import ReportSpec
from controller.reports.custom import load_file, parse
from controller.reports.gmv_max import GMV_MAX_REPORTS
from controller.reports.prebuilt import PREBUILT

_lock = threading.Lock()
_custom: dict[str, ReportSpec] = {}
# Tables other parts of the service write (run log, entity tables): no report may take them.
RESERVED_TABLE_PREFIXES = ("TKT000_", "TKT010_", "TKT011_", "TKT012_", "TKT013_")
# Account info and the entity history tables (controller/tiktok/entities.py and accounts.py):
# /run takes them by name like reports, but they are not reports, so no report may take
# their names either.
EntityType = Literal["advertiser_info", "campaigns", "adgroups", "ads"]
ENTITY_TYPES: tuple[str, ...] = get_args(EntityType)


def builtin() -> dict[str, ReportSpec]:
    return {**SEED, **PREBUILT, **GMV_MAX_REPORTS}


def all_reports() -> dict[str, ReportSpec]:
    return {**builtin(), **_custom}


def names() -> tuple[str, ...]:
    return tuple(all_reports())


def default_report_types() -> list[str]:
    """What a run without ``report_types`` loads: the four seed tables."""
    return list(SEED_REPORT_TYPES)


def get(name: str) -> ReportSpec:
    return all_reports()[name]


def custom() -> dict[str, ReportSpec]:
    return dict(_custom)


def set_custom(definitions: list[ReportSpec]) -> None:
    """Install validated custom definitions (replacing any earlier set)."""
    with _lock:
        _custom.clear()
        _custom.update({spec.report_type: spec for spec in definitions})


def _taken() -> dict:
    """What a custom report may not take: built-in reports, entity names, our tables."""
    return {
        "taken": builtin(),
        "reserved_names": ENTITY_TYPES,
        "reserved_prefixes": RESERVED_TABLE_PREFIXES,
    }


def parse_custom(entries: list, source: str = "custom reports") -> list[ReportSpec]:
    """Validate custom definitions against TikTok's rules and what is already taken."""
    return parse(entries, source, **_taken())


def load_custom_file(path: str | Path | None) -> list[ReportSpec]:
    """Read, validate and install the custom reports of ``path`` (none when ``path`` is
    empty). Raises ``CustomReportError`` naming the report and the field."""
    definitions = load_file(path, **_taken()) if path else []
    set_custom(definitions)
    return definitions
