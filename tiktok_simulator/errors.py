"""API error codes and TikTok-style messages (docs/tiktok_api_reference.md §4).

Errors travel as HTTP 200 with a non-zero ``code`` and ``data: {}``; only requests that never
reach the API logic (wrong path or method) get an HTTP 4xx.
"""

from __future__ import annotations

OK = 0
PARAM_ERROR = 40002
NO_PERMISSION = 40001
APP_RATE_LIMITED = 40100
TOKEN_EXPIRED = 40102
TOKEN_MISSING = 40104
TOKEN_INVALID = 40105
INVALID_AUTH_PARAMS = 40101
ADVERTISER_RATE_LIMITED = 40133
SYSTEM_ERROR = 50000

TOKEN_MISSING_MESSAGE = (
    "Access token is null, you should set it in http header with key Access-Token."
)
TOKEN_INVALID_MESSAGE = "Access token is invalid or incorrect."
TOKEN_EXPIRED_MESSAGE = "Access token has expired. Please re-authorize."  # wording guessed

# Messages of the codes a fault plan can inject that have no request-specific wording.
# Only 50000 "System error." is observed; the others paraphrase the official code table.
STATIC_MESSAGES: dict[int, str] = {
    40000: "Parameters invalid.",
    40002: "Parameter error.",
    40003: "Forbidden.",
    40007: "Object does not exist.",
    40011: "Too many ids in one request.",
    40016: "Requests made too frequently.",
    40067: "Your query is too large, please reduce the query size (e.g. fewer metrics or time "
    "range) and retry after a while.",
    40102: TOKEN_EXPIRED_MESSAGE,
    40104: TOKEN_MISSING_MESSAGE,
    40105: TOKEN_INVALID_MESSAGE,
    40106: "Core user invalid.",
    40200: "Task error.",
    40201: "Task is not ready.",
    40202: "Write or update conflict, please retry.",
    40700: "Internal service validation error.",
    50000: "System error.",
    50002: "Error occurred when processing the request, please try again later.",
    51000: "Internal service error.",
    51001: "Statistics service error.",
    51010: "Internal service timeout, please try again later.",
    51099: "Statistics service error.",
    60001: "System maintenance, please try again later.",
    61000: "Too many requests.",
}


class ApiError(Exception):
    """An API-level failure: rendered as HTTP 200 ``{"code": code, "message": message, "data": {}}``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def param_error(message: str) -> ApiError:
    return ApiError(PARAM_ERROR, message)


def no_permission(advertiser_id: str) -> ApiError:
    return ApiError(NO_PERMISSION, f"No permission to operate advertiser {advertiser_id}.")


def app_rate_limited(app_id: str) -> ApiError:
    return ApiError(
        APP_RATE_LIMITED,
        f"Due to too many requests, requests from App [{app_id}] are temporarily restricted.",
    )


def advertiser_rate_limited(advertiser_id: str, current: int, limit: int) -> ApiError:
    return ApiError(
        ADVERTISER_RATE_LIMITED,
        f"Advertiser ({advertiser_id})'s QPS ({current}) reaches QPS limit {limit} for current "
        "path, request is temporarily restricted.",
    )


def invalid_metrics(names: list[str]) -> ApiError:
    return param_error(
        "Please correct the information in invalid metric fields and try again. "
        f"Invalid metric fields: {names!r}."
    )


def simulated(code: int, advertiser_id: str, app_id: str) -> ApiError:
    """The error a fault plan injects for an API code."""
    if code == APP_RATE_LIMITED:
        return app_rate_limited(app_id)
    if code == ADVERTISER_RATE_LIMITED:
        return advertiser_rate_limited(advertiser_id, 11, 10)
    if code == NO_PERMISSION:
        return no_permission(advertiser_id)
    return ApiError(code, STATIC_MESSAGES.get(code, f"Simulated error {code}."))


def origins_not_combinable(count: int) -> ApiError:
    """A stricter TikTok: several campaign_system_origins in one filter.

    What TikTok does is unknown (docs/tiktok_api_beyond.md §1.1).
    """
    return param_error(
        "filtering: campaign_system_origins: Only one value is allowed in filter_value, "
        f"got {count}."
    )


QUERY_TOO_LARGE = 40067
# docs/tiktok_api_beyond.md §3 (Airbyte's test of TikTok's answer): HTTP 200 and this exact text.
QUERY_TOO_LARGE_MESSAGE = (
    "Your query is too large, please reduce the query size (e.g. fewer metrics or time range) "
    "and retry after a while."
)


def query_too_large() -> ApiError:
    return ApiError(QUERY_TOO_LARGE, QUERY_TOO_LARGE_MESSAGE)
