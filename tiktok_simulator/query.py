"""Parsing and validating ``report/integrated/get`` query parameters
(docs/tiktok_api_reference.md §1, §2.1, §2.2, §3.6).

Scalars arrive as plain strings; lists and objects as JSON text in the query string. Each
rule raises an ``ApiError`` 40002 whose message names the offending parameter, in the
``"<param>: <problem>"`` style of TikTok's parameter errors. Unknown parameters are ignored,
as the real API does (which is exactly why the v1.2 name ``filters`` silently does nothing).
The rules are deliberately as strict as the reference: a lax simulator hides client bugs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import orjson

from . import audience
from .errors import invalid_metrics, param_error
from .metrics import (
    AD,
    ADGROUP,
    CAMPAIGN,
    DEFAULT_METRICS,
    LEVELS,
    MAX_METRICS,
    METRICS,
)
from .metrics import invalid_metrics as find_invalid_metrics
from .params import (
    boolean as _boolean,
)
from .params import (
    dates as _dates,
)
from .params import (
    duplicates as _duplicates,
)
from .params import (
    integer as _integer,
)
from .params import (
    json_param as _json,
)
from .params import (
    missing as _missing,
)
from .params import (
    one_of as _one_of,
)
from .params import (
    parse_advertiser_ids,
)
from .params import (
    string_list as _string_list,
)
from .report import ID_DIMENSIONS, TIME_DIMENSIONS, ReportQuery
from .world import DEFAULT_ORIGINS, ORIGINS

REPORT_TYPES = ("BASIC", "AUDIENCE", "PLAYABLE_MATERIAL", "CATALOG", "BC", "TT_SHOP")
SERVICE_TYPES = ("AUCTION", "RESERVATION")
# Dimensions the real BASIC report knows (docs/tiktok_api_reference.md §3.7) but the simulator does
# not model.
UNSUPPORTED_DIMENSIONS = frozenset(
    {
        "country_code",
        "ad_type",
        "custom_event_type",
        "event_source_id",
        "page_id",
        "component_name",
        "room_id",
        "post_id",
        "image_id",
        "video_material_id",
        "search_terms",
        "search_keyword",
        "match_type",
        "skan_postback_sequence",
    }
)
MAX_FILTER_IDS = 100

FILTER_TYPES = (
    "IN",
    "CONTAIN_ANY_OF",
    "MATCH",
    "NOT_IN",
    "GREATER_EQUAL",
    "GREATER_THAN",
    "LOWER_EQUAL",
    "LOWER_THAN",
    "BETWEEN",
)
STATUS_FIELDS = {CAMPAIGN: "campaign_status", ADGROUP: "adgroup_status", AD: "ad_status"}
# Id filters, and the levels they make sense at (the level of the id or below it).
ID_FILTER_LEVELS = {
    "campaign_ids": (CAMPAIGN, ADGROUP, AD),
    "adgroup_ids": (ADGROUP, AD),
    "ad_ids": (AD,),
    "ad_ids_v2": (AD,),  # Upgraded Smart+ ads (docs/tiktok_api_gmv_smartplus.md §2)
}
UNSUPPORTED_FILTER_FIELDS = frozenset(
    {"buying_type", "campaign_automation_type", "promotion_type", "country_code"}
)
STATUS_VALUES = ("STATUS_ALL", "STATUS_NOT_DELETE")
# Promote campaigns are hidden unless this filter asks for them (docs/tiktok_api_beyond.md §1.1).
# Accepted at every level, AUCTION_ADVERTISER included, where it decides whether Promote spend is in
# the totals (TikTok's docs are silent there; the client sends it at every level).
ORIGINS_FILTER = "campaign_system_origins"
UNSUPPORTED_STATUS_VALUES = frozenset({"STATUS_DELIVERY_OK", "STATUS_DELETE", "STATUS_DISABLE"})


def _report_type(params: Mapping[str, str]) -> str:
    report_type = params.get("report_type")
    if report_type is None:
        raise _missing("report_type")
    if report_type not in REPORT_TYPES:
        raise _one_of("report_type", REPORT_TYPES)
    if report_type not in ("BASIC", "AUDIENCE"):
        raise param_error(f"report_type: {report_type} is not supported by simulator.")
    service_type = params.get("service_type")
    if service_type is not None and service_type not in SERVICE_TYPES:
        raise _one_of("service_type", SERVICE_TYPES)
    if service_type == "RESERVATION":
        raise param_error("service_type: RESERVATION is not supported by simulator.")
    query_mode = params.get("query_mode")
    if query_mode is not None and query_mode != "REGULAR":
        if query_mode == "CHUNK":
            raise param_error("query_mode: CHUNK is not supported by simulator.")
        raise _one_of("query_mode", ("REGULAR", "CHUNK"))
    return report_type


def _data_level(params: Mapping[str, str]) -> str:
    data_level = params.get("data_level")
    if data_level is None:
        raise _missing("data_level")
    if data_level not in LEVELS:
        if data_level.startswith("RESERVATION_"):
            raise param_error(f"data_level: {data_level} is not supported by simulator.")
        raise _one_of("data_level", LEVELS)
    return data_level


def _dimensions(params: Mapping[str, str], data_level: str) -> tuple[tuple[str, ...], str | None]:
    """Exactly the level's id dimension, plus at most one of stat_time_day / stat_time_hour."""
    if "dimensions" not in params:
        raise _missing("dimensions")
    dimensions = _string_list(params, "dimensions")
    if not dimensions:
        raise param_error("dimensions: Shorter than minimum length 1.")
    if _duplicates(dimensions):
        raise param_error(f"dimensions: Duplicate dimensions: {_duplicates(dimensions)!r}.")
    known = {*ID_DIMENSIONS.values(), *TIME_DIMENSIONS, "ad_id_v2"}
    unknown = [d for d in dimensions if d not in known and d not in UNSUPPORTED_DIMENSIONS]
    if unknown:
        raise param_error(
            "Please correct the information in invalid dimension fields and try again. "
            f"Invalid dimension fields: {unknown!r}."
        )
    unsupported = [d for d in dimensions if d in UNSUPPORTED_DIMENSIONS]
    if unsupported:
        raise param_error(f"dimensions: {unsupported!r} not supported by simulator.")
    expected = _id_dimension(dimensions, data_level)
    wrong_ids = [d for d in dimensions if d in known - set(TIME_DIMENSIONS) and d != expected]
    if wrong_ids:
        raise param_error(
            f"dimensions: {wrong_ids!r} cannot be used with data_level {data_level}; the only id "
            f"dimension allowed is {expected} (request parent ids as metrics)."
        )
    if expected not in dimensions:
        raise param_error(f"dimensions: {expected} is required with data_level {data_level}.")
    time_dimensions = [d for d in dimensions if d in TIME_DIMENSIONS]
    if len(time_dimensions) > 1:
        raise param_error("dimensions: stat_time_day and stat_time_hour cannot be used together.")
    return tuple(dimensions), (time_dimensions[0] if time_dimensions else None)


def _id_dimension(dimensions: list[str], data_level: str) -> str:
    """The level's id dimension: at AUCTION_AD ``ad_id`` (a row per creative of an Upgraded
    Smart+ ad) or ``ad_id_v2`` (a row per ad), never both (docs/tiktok_api_gmv_smartplus.md §2)."""
    if data_level != AD or "ad_id_v2" not in dimensions:
        return ID_DIMENSIONS[data_level]
    if "ad_id" in dimensions:
        raise param_error("dimensions: ad_id and ad_id_v2 cannot be used together.")
    return "ad_id_v2"


def _metrics(
    params: Mapping[str, str], data_level: str, time_dimension: str | None, multi: bool
) -> tuple[str, ...]:
    if "metrics" not in params:
        return DEFAULT_METRICS
    metrics = _string_list(params, "metrics")
    if not metrics:
        return DEFAULT_METRICS
    if len(metrics) > MAX_METRICS:
        raise param_error(f"metrics: Longer than maximum length {MAX_METRICS}.")
    if _duplicates(metrics):
        raise param_error(f"metrics: Duplicate metric fields: {_duplicates(metrics)!r}.")
    invalid = find_invalid_metrics(metrics, data_level, time_dimension, multi)
    if invalid:
        raise invalid_metrics(invalid)
    return tuple(metrics)


def _filtering(params: Mapping[str, str], data_level: str) -> dict[str, Any]:
    """``filtering``: a JSON array of {field_name, filter_type, filter_value} objects.

    Returns ``{"include_deleted": bool, "campaign_ids"|"adgroup_ids"|"ad_ids": frozenset}``.
    """
    result: dict[str, Any] = {"include_deleted": False}
    if "filtering" not in params:
        return result
    filters = _json(params, "filtering")
    if not isinstance(filters, list):
        raise param_error("filtering: Not a valid list.")
    seen: set[str] = set()
    for item in filters:
        field_name, values = _filter_item(item)
        if field_name in seen:
            raise param_error(f"filtering: Duplicate field_name: {field_name}.")
        seen.add(field_name)
        if field_name.endswith("_status"):
            result["include_deleted"] = _status_filter(field_name, values, data_level)
        elif field_name == ORIGINS_FILTER:
            result["origins"] = _origins_filter(values)
        else:
            result[field_name] = _id_filter(field_name, values, data_level)
    if "ad_ids" in result and "ad_ids_v2" in result:
        raise param_error("filtering: ad_ids and ad_ids_v2 cannot be used together.")
    return result


def _filter_item(item: Any) -> tuple[str, list[Any]]:
    if not isinstance(item, dict):
        raise param_error("filtering: Each filter must be an object.")
    for key in ("field_name", "filter_type", "filter_value"):
        if key not in item:
            raise param_error(f"filtering: {key}: Missing data for required field.")
    field_name, filter_type, filter_value = (
        item["field_name"],
        item["filter_type"],
        item["filter_value"],
    )
    if not isinstance(field_name, str):
        raise param_error("filtering: field_name: Not a valid string.")
    if filter_type not in FILTER_TYPES:
        raise param_error(f"filtering: filter_type: Must be one of: {', '.join(FILTER_TYPES)}.")
    if not isinstance(filter_value, str):
        raise param_error(
            "filtering: filter_value: Not a valid string (for IN it is a JSON array  encoded as a string)."
        )
    known = set(STATUS_FIELDS.values()) | set(ID_FILTER_LEVELS) | {ORIGINS_FILTER}
    if field_name in UNSUPPORTED_FILTER_FIELDS:
        raise param_error(f"filtering: field_name {field_name} is not supported by simulator.")
    if field_name not in known:
        raise param_error(f"filtering: Invalid field_name: {field_name}.")
    if filter_type != "IN":
        raise param_error(
            f"filtering: filter_type {filter_type} is not supported by simulator for {field_name}."
        )
    try:
        values = orjson.loads(filter_value)
    except orjson.JSONDecodeError:
        values = None
    if not isinstance(values, list) or not values:
        raise param_error(
            f"filtering: filter_value of {field_name} must be a non-empty JSON array string, "
            'e.g. "[\\"STATUS_ALL\\"]".'
        )
    return field_name, values


def _status_filter(field_name: str, values: list[Any], data_level: str) -> bool:
    """Returns include_deleted. The status field must be the one of the report's level."""
    if STATUS_FIELDS.get(data_level) != field_name:
        allowed = STATUS_FIELDS.get(data_level)
        hint = f"use {allowed}" if allowed else "no status filter exists at this level"
        raise param_error(
            f"filtering: field_name {field_name} is invalid with data_level {data_level} ({hint})."
        )
    for value in values:
        if value in UNSUPPORTED_STATUS_VALUES:
            raise param_error(
                f"filtering: {field_name} value {value} is not supported by simulator."
            )
        if value not in STATUS_VALUES:
            raise param_error(
                f"filtering: {field_name}: Must be one of: {', '.join(STATUS_VALUES)}."
            )
    return "STATUS_ALL" in values


def _origins_filter(values: list[Any]) -> tuple[str, ...]:
    """The origins asked for, in order (whether several may be combined is the app's setting)."""
    for value in values:
        if value not in ORIGINS:
            raise param_error(f"filtering: {ORIGINS_FILTER}: Must be one of: {', '.join(ORIGINS)}.")
    if _duplicates(values):
        raise param_error(
            f"filtering: {ORIGINS_FILTER}: Duplicate values: {_duplicates(values)!r}."
        )
    return tuple(values)


def _id_filter(field_name: str, values: list[Any], data_level: str) -> frozenset[str]:
    if data_level not in ID_FILTER_LEVELS[field_name]:
        raise param_error(
            f"filtering: field_name {field_name} is invalid with data_level {data_level}."
        )
    if len(values) > MAX_FILTER_IDS:
        raise param_error(f"filtering: {field_name}: At most {MAX_FILTER_IDS} ids are allowed.")
    if not all(isinstance(v, str) and v.isdigit() for v in values):
        raise param_error(f"filtering: {field_name}: ids must be digit strings.")
    return frozenset(values)


def _ordering(params: Mapping[str, str], data_level: str) -> tuple[str | None, str]:
    order_type = params.get("order_type", "DESC")
    if order_type not in ("ASC", "DESC"):
        raise _one_of("order_type", ("ASC", "DESC"))
    order_field = params.get("order_field")
    if order_field is not None:
        metric = METRICS.get(order_field)
        if metric is None or metric.is_attribute or data_level not in metric.levels:
            raise param_error(f"order_field: {order_field} cannot be used for sorting.")
    return order_field, order_type


# --------------------------------------------------------------------------- entry point
def parse_report_query(params: Mapping[str, str], lifetime: tuple[date, date]) -> ReportQuery:
    """Validate a report request; ``lifetime`` is the date span ``query_lifetime=true`` covers."""
    report_type = _report_type(params)
    advertiser_ids, multi = parse_advertiser_ids(params)
    data_level = _data_level(params)
    breakdowns: tuple[str, ...] = ()
    if report_type == "AUDIENCE":
        if "dimensions" not in params:
            raise _missing("dimensions")
        dimensions, time_dimension, breakdowns = audience.parse_dimensions(
            _string_list(params, "dimensions"), data_level, ID_DIMENSIONS
        )
    else:
        dimensions, time_dimension = _dimensions(params, data_level)
    query_lifetime = _boolean(params, "query_lifetime")
    if query_lifetime and report_type == "AUDIENCE":
        raise param_error("query_lifetime: Lifetime AUDIENCE reports are not available in v1.3.")
    if query_lifetime:
        if time_dimension is not None:
            raise param_error(
                f"dimensions: {time_dimension} cannot be used with query_lifetime=true."
            )
        start, end = lifetime
    else:
        start, end = _dates(params, time_dimension)
    page = _integer(params, "page", 1, 1, None)
    page_size = _integer(params, "page_size", 10, 1, 1000)
    metrics = _metrics(params, data_level, time_dimension, multi)
    if report_type == "AUDIENCE":
        audience.check_metrics(metrics, ID_DIMENSIONS[data_level] in dimensions)
    filters = _filtering(params, data_level)
    enable_total_metrics = _boolean(params, "enable_total_metrics")
    if enable_total_metrics and report_type == "AUDIENCE":
        raise param_error("enable_total_metrics: Only supported with report_type BASIC.")
    if enable_total_metrics and time_dimension == "stat_time_hour":
        raise param_error("enable_total_metrics: Not supported with stat_time_hour.")
    order_field, order_type = _ordering(params, data_level)
    if order_field is not None and report_type == "AUDIENCE":
        raise param_error("order_field: not supported by simulator with report_type AUDIENCE.")
    return ReportQuery(
        advertiser_ids=advertiser_ids,
        data_level=data_level,
        dimensions=dimensions,
        time_dimension=time_dimension,
        start=start,
        end=end,
        metrics=metrics,
        include_deleted=filters["include_deleted"],
        campaign_ids=filters.get("campaign_ids"),
        adgroup_ids=filters.get("adgroup_ids"),
        ad_ids=filters.get("ad_ids"),
        ad_ids_v2=filters.get("ad_ids_v2"),
        multi_advertiser=multi,
        lifetime=query_lifetime,
        page=page,
        page_size=page_size,
        enable_total_metrics=enable_total_metrics,
        order_field=order_field,
        order_type=order_type,
        report_type=report_type,
        breakdowns=breakdowns,
        origins=frozenset(filters.get("origins", DEFAULT_ORIGINS)),
    )
