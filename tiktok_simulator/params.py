"""Parameter primitives shared by the simulator's endpoints (docs/tiktok_api_reference.md §2.1):
scalars as plain strings, lists and objects as JSON text, each refusal a 40002 naming the
parameter in TikTok's ``"<param>: <problem>"`` style. A leaf module, so both the BASIC report
(``query``) and GMV Max (``gmv_max``) parse alike without importing each other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import orjson

from .errors import param_error

MAX_DAYS = {"stat_time_day": 30, "stat_time_hour": 1, None: 365}
MAX_ADVERTISER_IDS = 5

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT_RE = re.compile(r"[+-]?\d+")


def missing(name: str):
    return param_error(f"{name}: Missing data for required field.")


def one_of(name: str, choices: tuple[str, ...]):
    return param_error(f"{name}: Must be one of: {', '.join(choices)}.")


def json_param(params: Mapping[str, str], name: str) -> Any:
    try:
        return orjson.loads(params[name])
    except orjson.JSONDecodeError:
        raise param_error(f"{name}: Not a valid JSON string.") from None


def string_list(params: Mapping[str, str], name: str) -> list[str]:
    value = json_param(params, name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise param_error(f"{name}: Not a valid list of strings.")
    return value


def boolean(params: Mapping[str, str], name: str) -> bool:
    raw = params.get(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise param_error(f"{name}: Not a valid boolean.")
    return raw.lower() == "true"


def integer(params: Mapping[str, str], name: str, default: int, lo: int, hi: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not _INT_RE.fullmatch(raw):
        raise param_error(f"{name}: Not a valid integer.")
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        if hi is None:
            raise param_error(f"{name}: Must be greater than or equal to {lo}.")
        raise param_error(
            f"{name}: Must be greater than or equal to {lo} and less than or equal to {hi}."
        )
    return value


def date_param(params: Mapping[str, str], name: str) -> date:
    raw = params.get(name)
    if raw is None:
        raise missing(name)
    try:
        if not _DATE_RE.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise param_error(f"{name}: Not a valid date, the format must be YYYY-MM-DD.") from None


def duplicates(values: list[str]) -> list[str]:
    seen: set[str] = set()
    dupes: list[str] = []
    for v in values:
        if v in seen and v not in dupes:
            dupes.append(v)
        seen.add(v)
    return dupes


def parse_advertiser_ids(params: Mapping[str, str]) -> tuple[tuple[str, ...], bool]:
    """``advertiser_ids`` (JSON, max 5, wins when both are given) or ``advertiser_id``."""
    if "advertiser_ids" in params:
        ids = parse_id_list(params, "advertiser_ids", MAX_ADVERTISER_IDS)
        if duplicates(ids):
            raise param_error(f"advertiser_ids: Duplicate advertiser ids: {duplicates(ids)!r}.")
        return tuple(ids), True
    advertiser_id = params.get("advertiser_id")
    if advertiser_id is None:
        raise missing("advertiser_id")
    check_id("advertiser_id", advertiser_id)
    return (advertiser_id,), False


def parse_id_list(
    params: Mapping[str, str], name: str, max_length: int, digits: bool = True
) -> list[str]:
    """A required, non-empty JSON array of strings (of digits: ids), at most ``max_length`` long."""
    values = string_list(params, name)
    if not values:
        raise param_error(f"{name}: Shorter than minimum length 1.")
    if len(values) > max_length:
        raise param_error(f"{name}: Longer than maximum length {max_length}.")
    if digits:
        for value in values:
            check_id(name, value)
    return values


def check_id(name: str, value: str) -> None:
    if not value.isdigit():
        raise param_error(f"{name}: {value!r} is not a valid id, ids are digit strings.")


def dates(params: Mapping[str, str], time_dimension: str | None) -> tuple[date, date]:
    start, end = date_param(params, "start_date"), date_param(params, "end_date")
    if start > end:
        raise param_error("end_date: Must be later than or equal to start_date.")
    limit = MAX_DAYS[time_dimension]
    if (end - start).days + 1 > limit:
        context = f"with {time_dimension}" if time_dimension else "without a time dimension"
        raise param_error(
            f"start_date, end_date: The time range must be within {limit} day(s) {context}; "
            f"got {(end - start).days + 1} days."
        )
    return start, end
