"""The HTTP contract: every route's request and response, validated strictly with pydantic.

Strict on purpose: a wrong field is a 400 naming it, not a silent default. Advertiser ids
must be JSON strings of digits: a JSON number above 2**53 has usually been rounded by the
tool that wrote it (spreadsheets, JavaScript), and the wrong advertiser would be read.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from controller.reports import registry
from controller.reports.metrics import FAMILY_NAMES, check_family_names
from controller.reports.registry import ENTITY_TYPES

MAX_ADVERTISERS = 200  # per request; the DAG fans larger lists out in batches
MAX_WINDOW_DAYS = 366
EARLIEST_DATE = date(2016, 1, 1)
MAX_SAMPLE_DAYS = 30  # a /plan sample span
MAX_SETTLEMENT_DAYS = MAX_WINDOW_DAYS
MAX_QPS, MAX_QPM = 1000, 60000  # the bounds of a request's share of the app's rate

DISCOVER_ALL = "all"


def _known_report(value: str) -> str:
    if value not in registry.all_reports() and value not in ENTITY_TYPES:
        known = ", ".join(repr(name) for name in (*registry.names(), *ENTITY_TYPES))
        raise ValueError(f"unknown report type {value!r}; choose from {known}")
    return value


# Any report of the registry: the seed four, the prebuilt ones, custom ones loaded at start.
ReportType = Annotated[
    str,
    AfterValidator(_known_report),
    Field(
        description="A report name: advertiser, campaign, adgroup, ad, the prebuilt "
        "<level>_<breakdown> reports, a custom report of this deployment, or an entity "
        "type: advertiser_info, campaigns, adgroups, ads.",
        json_schema_extra={"examples": list(registry.builtin())},
    ),
]

AdvertiserId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{1,20}$", strict=True),
    Field(description="TikTok advertiser id as a string of digits (ids exceed 2**53)."),
]
_PROJECT_ID = re.compile(r"^(?:[a-z][a-z0-9.-]{0,62}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATASET_ID = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TOKEN = re.compile(r"^[\x21-\x7e]{1,4096}$")


def _parse_day(value: object) -> object:
    if value is None or isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date string YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a calendar date") from None


class RunRequest(BaseModel):
    """POST /run body."""

    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    access_token: SecretStr | None = Field(
        default=None,
        description="TikTok access token; optional when the service has TIKTOK_ACCESS_TOKEN.",
    )
    advertiser_ids: list[AdvertiserId] = Field(
        min_length=1,
        max_length=MAX_ADVERTISERS,
        description='Advertiser ids, or the string "all": every advertiser the token was '
        "granted (needs TIKTOK_APP_ID and TIKTOK_APP_SECRET on the service).",
    )
    project_id: str = Field(
        description="GCP project of the destination dataset.",
        json_schema_extra={"pattern": _PROJECT_ID.pattern},
    )
    dataset_id: str = Field(
        default="raw",
        description="BigQuery dataset; created if missing.",
        json_schema_extra={"pattern": _DATASET_ID.pattern},
    )
    if_exists: Literal["append", "replace"] = Field(
        default="append",
        description="append adds rows; replace swaps the window's rows of these advertisers atomically.",
    )
    report_types: list[ReportType] = Field(
        default_factory=registry.default_report_types,
        min_length=1,
        description="Reports to load; default the four seed tables.",
    )
    start_date: date | None = Field(default=None, description="YYYY-MM-DD, advertiser-local.")
    end_date: date | None = Field(default=None, description="YYYY-MM-DD, advertiser-local.")
    metric_families: list[str] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Metric families to ask TikTok for (default: the service's TIKTOK_METRIC_FAMILIES, "
            f"else all): {', '.join(FAMILY_NAMES)}. core is always included; the columns of "
            "the others are kept and hold null for this run's rows."
        ),
    )
    max_qps: float | None = Field(
        default=None, gt=0, le=MAX_QPS, description="This request's share of the app's QPS."
    )
    max_qpm: int | None = Field(
        default=None, gt=0, le=MAX_QPM, description="This request's share of the app's QPM."
    )
    with_gmv_max: bool | None = Field(
        default=None,
        description=(
            "Add the GMV Max reports (TKT050-052) for the advertisers with a TikTok Shop store "
            "usable for GMV Max; the others get no GMV Max item. Default: when report_types "
            "is left out. The service's TIKTOK_GMV_MAX=off turns it off."
        ),
    )

    def gmv_max_added(self) -> bool:
        """Whether the run adds the GMV Max reports for the accounts that have a store."""
        if self.with_gmv_max is not None:
            return self.with_gmv_max
        return "report_types" not in self.model_fields_set

    @field_validator("advertiser_ids", mode="wrap")
    @classmethod
    def _all_or_ids(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # "all" stays a string (discovery happens in the service); anything else is a list.
        return value if value == DISCOVER_ALL else handler(value)

    @property
    def discover(self) -> bool:
        return self.advertiser_ids == DISCOVER_ALL

    @property
    def report_kinds(self) -> list[str]:
        """The requested report types of the report registry (TKT001.., not entities)."""
        return [t for t in self.report_types if t not in ENTITY_TYPES]

    @property
    def entity_kinds(self) -> list[str]:
        """The requested account-info and entity types (TKT010..TKT013)."""
        return [t for t in self.report_types if t in ENTITY_TYPES]

    @field_validator("access_token", mode="before")
    @classmethod
    def _token_text(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("must not be empty")
            if not _TOKEN.match(value):  # it travels in an HTTP header
                raise ValueError("must be printable ASCII without spaces")
        return value

    @field_validator("project_id")
    @classmethod
    def _project(cls, value: str) -> str:
        if not _PROJECT_ID.match(value):
            raise ValueError("not a valid GCP project id (6-30 lowercase letters, digits, hyphens)")
        return value

    @field_validator("dataset_id")
    @classmethod
    def _dataset(cls, value: str) -> str:
        if not _DATASET_ID.match(value):
            raise ValueError("not a valid BigQuery dataset id (letters, digits, underscores)")
        return value

    @field_validator("start_date", "end_date", mode="before")
    @classmethod
    def _day(cls, value: object) -> object:
        return _parse_day(value)

    @field_validator("metric_families")
    @classmethod
    def _families(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else list(check_family_names(values))

    @field_validator("advertiser_ids", "report_types")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return values if isinstance(values, str) else list(dict.fromkeys(values))

    @model_validator(mode="after")
    def _window(self) -> RunRequest:
        latest = datetime.now(UTC).date() + timedelta(days=1)  # advertiser zones run ahead of UTC
        for name in ("start_date", "end_date"):
            day = getattr(self, name)
            if day is not None and not EARLIEST_DATE <= day <= latest:
                raise ValueError(f"{name}: must be between {EARLIEST_DATE} and {latest}")
        if self.start_date and self.end_date:
            if self.start_date > self.end_date:
                raise ValueError("start_date: must not be after end_date")
            if (self.end_date - self.start_date).days + 1 > MAX_WINDOW_DAYS:
                raise ValueError(
                    f"end_date: window longer than {MAX_WINDOW_DAYS} days (one request must "
                    "finish inside the service's deadline); load a longer history with the "
                    "DAG's backfill: trigger tiktok_ads_to_bigquery with the conf "
                    '{"start_date": ..., "end_date": ...} (README, Backfill)'
                )
        return self

    def window(self, days_reprocess: int, today: date | None = None) -> tuple[date, date]:
        """The requested window, defaulting to D-days_reprocess .. D-1 (UTC)."""
        today = today or datetime.now(UTC).date()
        end = self.end_date or today - timedelta(days=1)
        start = self.start_date or end - timedelta(days=days_reprocess - 1)
        if start > end:
            raise ValueError("start_date: must not be after end_date")
        return start, end


class ItemOutcome(BaseModel):
    advertiser_id: str
    report_type: str
    destination_table: str
    inserted_rows: int
    requests: int = 0  # TikTok requests it took (a backfill planner's measure)
    # the rate budget those requests counted against: the app's (general) or GMV Max's own
    rate_budget: Literal["general", "gmv_max"] = "general"
    status: Literal["success", "error"]
    error: str | None = None
    # e.g. metrics TikTok refused at this level: loaded as nulls, said here rather than hidden
    warnings: list[str] = []


# Top-level words of a /run answer. "Ok" is the contract the service's users were given
# (its original specification); the two failure words are documented in README.md.
RUN_OK: Final = "Ok"  # every report loaded (HTTP 200)
RUN_PARTIAL: Final = "partial_success"  # some reports failed (HTTP 207)
RUN_FAILED: Final = "error"  # every report failed (HTTP 502)
RunStatus = Literal["Ok", "partial_success", "error"]
assert set(get_args(RunStatus)) == {RUN_OK, RUN_PARTIAL, RUN_FAILED}


class ReconciliationDifference(BaseModel):
    """An advertiser's day whose loaded levels disagree on a metric beyond rounding."""

    advertiser_id: str
    date: date
    metric: str
    values: dict[str, float] = Field(description="The day's total at each level loaded.")
    campaign_id: str | None = Field(
        default=None,
        description="A GMV Max campaign whose TT_SHOP spend and TKT050 cost disagree.",
    )


class RunLogOutcome(BaseModel):
    """Whether the run's rows reached the run log table (its failure never fails the run)."""

    table: str
    status: Literal["written", "failed"]
    rows: int
    error: str | None = None


class SkippedAdvertiser(BaseModel):
    """An advertiser discovery found but did not run, and why (closed, disabled...)."""

    advertiser_id: str
    name: str | None = None
    status: str | None = None
    reason: str


class RunResponse(BaseModel):
    status: RunStatus
    message: str
    request_id: str
    start_date: date
    end_date: date
    total_inserted_rows: int
    results: list[ItemOutcome]
    errors_count: int
    # Days where the levels loaded for an advertiser do not add up (never fails the run).
    reconciliation: list[ReconciliationDifference] = []
    run_log: RunLogOutcome | None = None
    # With "advertiser_ids": "all": the granted advertisers that were not run, with why.
    skipped_advertisers: list[SkippedAdvertiser] = []


class FieldError(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    status: Literal["error"] = "error"
    message: str
    request_id: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class PlanRequest(BaseModel):
    """POST /plan: the items to size and the sample span (at most 30 days)."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr | None = None
    advertiser_ids: list[AdvertiserId] = Field(min_length=1, max_length=MAX_ADVERTISERS)
    report_types: list[ReportType] = Field(
        default_factory=registry.default_report_types, min_length=1
    )
    start_date: date
    end_date: date
    max_qps: float | None = Field(default=None, gt=0, le=MAX_QPS)
    max_qpm: int | None = Field(default=None, gt=0, le=MAX_QPM)

    @model_validator(mode="after")
    def _span(self) -> PlanRequest:
        if not EARLIEST_DATE <= self.start_date <= self.end_date:
            raise ValueError(f"start_date: must be from {EARLIEST_DATE} and not after end_date")
        if (self.end_date - self.start_date).days + 1 > MAX_SAMPLE_DAYS:
            raise ValueError(f"end_date: a sample span is at most {MAX_SAMPLE_DAYS} days")
        if any(name in ENTITY_TYPES for name in self.report_types):
            raise ValueError("report_types: only reports can be planned, not entity types")
        return self


class PlanItem(BaseModel):
    """One (advertiser, report type) of a /plan answer."""

    model_config = ConfigDict(extra="allow")

    advertiser_id: str
    report_type: str


class PlanResponse(BaseModel):
    request_id: str | None
    start_date: date
    end_date: date
    items: list[PlanItem]


class SettlementQuery(BaseModel):
    """GET /settlement_days query parameters (strings, as a query string carries them)."""

    model_config = ConfigDict(extra="ignore")

    project_id: str = ""
    dataset_id: str = "raw"
    advertiser_ids: str = ""
    max_days: str = "28"

    def problems(self) -> list[FieldError]:
        """Every invalid parameter, named (a query string is checked whole, not first-fail)."""
        found: list[FieldError] = []
        if not _PROJECT_ID.match(self.project_id):
            found.append(FieldError(field="project_id", message="required: a valid GCP project id"))
        if not _DATASET_ID.match(self.dataset_id):
            found.append(FieldError(field="dataset_id", message="not a valid BigQuery dataset id"))
        ids = self.ids
        if (
            not ids
            or not all(i.isdigit() and len(i) <= 20 for i in ids)
            or len(ids) > MAX_ADVERTISERS
        ):
            found.append(
                FieldError(
                    field="advertiser_ids",
                    message=f"required: 1-{MAX_ADVERTISERS} comma-separated ids of digits",
                )
            )
        if not 1 <= self.days <= MAX_SETTLEMENT_DAYS:
            found.append(
                FieldError(
                    field="max_days",
                    message=f"must be a whole number between 1 and {MAX_SETTLEMENT_DAYS}",
                )
            )
        return found

    @property
    def ids(self) -> list[str]:
        return [part.strip() for part in self.advertiser_ids.split(",") if part.strip()]

    @property
    def days(self) -> int:
        return int(self.max_days) if self.max_days.isdigit() else 0


class SettlementDays(BaseModel):
    days: int
    reason: str


class SettlementResponse(BaseModel):
    request_id: str | None
    settlement_days: dict[str, SettlementDays]


class AdvertiserEntry(BaseModel):
    """One advertiser a token reaches, as discovery sees it."""

    model_config = ConfigDict(extra="allow")

    advertiser_id: str
    active: bool


class AdvertisersResponse(BaseModel):
    request_id: str | None
    advertisers: list[AdvertiserEntry]
    active: int
    skipped: int


class HealthResponse(BaseModel):
    status: str
    version: str


_CURRENCY = re.compile(r"^[A-Z]{3}$")
_TABLE_REF = re.compile(
    r"^(?:[a-z][a-z0-9.:-]{4,}[a-z0-9]\.)?[A-Za-z0-9_]+\.[A-Za-z_][A-Za-z0-9_]*$"
)


class ViewsRequest(BaseModel):
    """POST /views: the raw dataset the views read and the two datasets they go to."""

    model_config = ConfigDict(extra="forbid", strict=True)

    project_id: str = Field(description="GCP project of the datasets.")
    dataset_id: str | None = Field(
        default=None,
        description="The raw tables' dataset (/run's). Default VIEWS_RAW_DATASET (raw).",
    )
    reporting_dataset_id: str | None = Field(
        default=None,
        description="Dataset of the cross-platform (ad_reporting-shaped) views; created if "
        "missing. Default VIEWS_REPORTING_DATASET (tiktok_ads_reporting).",
    )
    fivetran_dataset_id: str | None = Field(
        default=None,
        description="Dataset of the dbt_tiktok_ads-compatible source views; created if "
        "missing. Default VIEWS_FIVETRAN_DATASET (tiktok_ads).",
    )
    reporting_currency: str | None = Field(
        default=None,
        description="ISO 4217 code the *_in_reporting_currency columns are in. Default "
        "REPORTING_CURRENCY (none: those columns are NULL).",
    )
    currency_rates_table: str | None = Field(
        default=None,
        description="[project.]dataset.table of daily rates: date DATE, from_currency STRING, "
        "to_currency STRING, rate FLOAT64 (amount in to_currency = amount × rate). Default "
        "CURRENCY_RATES_TABLE.",
    )

    @model_validator(mode="after")
    def _names(self) -> ViewsRequest:
        if not _PROJECT_ID.match(self.project_id):
            raise ValueError("project_id: not a valid GCP project id")
        for name in ("dataset_id", "reporting_dataset_id", "fivetran_dataset_id"):
            value = getattr(self, name)
            if value is not None and not _DATASET_ID.match(value):
                raise ValueError(f"{name}: not a valid BigQuery dataset id")
        if self.reporting_currency is not None and not _CURRENCY.match(self.reporting_currency):
            raise ValueError("reporting_currency: must be a 3-letter ISO 4217 code, e.g. EUR")
        rates = self.currency_rates_table
        if rates is not None and not _TABLE_REF.match(rates):
            raise ValueError("currency_rates_table: must be [project.]dataset.table")
        return self


class ViewStatus(BaseModel):
    dataset_id: str
    view: str
    status: Literal["created", "replaced", "unchanged", "skipped"]
    reason: str | None = None


class ViewsResponse(BaseModel):
    request_id: str | None
    views: list[ViewStatus]
