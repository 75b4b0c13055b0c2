"""Every route of the service, as one Flask Blueprint: parse, validate, call, translate.

The routes only read the request into a model of ``controller.api.models``, call the
composition (``controller.pipeline``, ``accounts_pipeline``, ``planning``, ``settlement``)
and answer; every decision about TikTok or BigQuery lives below them.

HTTP status of POST /run: 200 every report loaded; 207 some reports failed (the body lists
which); 502 every report failed (TikTok or BigQuery refused the whole run); 400 invalid
payload; 413 body over 1 MiB; 415 not JSON; 500 an unexpected fault (logged with the request
id). The body is JSON in every case and always carries the per-item results when a run
started.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from config.logging import redact, register_secret, request_id_var
from config.settings import Settings
from config.version import SERVICE_VERSION
from controller.accounts_pipeline import AccountsRun, list_advertisers
from controller.api.models import (
    RUN_FAILED,
    RUN_OK,
    RUN_PARTIAL,
    AdvertisersResponse,
    ErrorResponse,
    FieldError,
    HealthResponse,
    PlanRequest,
    PlanResponse,
    RunRequest,
    SettlementQuery,
    SettlementResponse,
    ViewsRequest,
    ViewsResponse,
)
from controller.api.openapi import openapi_document
from controller.pipeline import Run, RunPlan, warehouse_for
from controller.planning import plan as sample_plan
from controller.settlement import settlement_days
from controller.tiktok.accounts import DiscoveryError
from controller.views import plan_for, refresh_views
from database.bigquery import WarehouseError

MAX_BODY_BYTES = 1024 * 1024
STATUS_CODES = {RUN_OK: 200, RUN_PARTIAL: 207, RUN_FAILED: 502}
EXTENSION = "tiktok_ads_api"

log = logging.getLogger("tiktok_ads_api")
api = Blueprint("api", __name__)
M = TypeVar("M", bound=BaseModel)


@dataclass
class Service:
    """What the routes need of the app that registered them (``app.extensions``)."""

    settings: Settings
    warehouse_factory: Callable[[str, str], Any] | None = None
    # Set on SIGTERM (gunicorn.conf.py, through main.shutdown_requested): runs stop starting work.
    shutdown: threading.Event = field(default_factory=threading.Event)

    def warehouse(self, project_id: str, dataset_id: str) -> Any:
        if self.warehouse_factory is not None:
            return self.warehouse_factory(project_id, dataset_id)
        return warehouse_for(self.settings, project_id, dataset_id)


def _service() -> Service:
    return current_app.extensions[EXTENSION]


def _field_name(loc: tuple[Any, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _validation_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        loc = error["loc"]
        if not loc and ": " in message:  # model-level checks name their field first
            field_name, message = message.split(": ", 1)
            loc = (field_name,)
        if error["type"] == "json_invalid":
            loc, message = ("body",), "not valid JSON"
        elif error["type"] == "model_type" and not loc:
            loc, message = ("body",), "must be a JSON object"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        elif loc and loc[0] == "advertiser_ids" and error["type"] == "string_type":
            message = "must be a string of digits (JSON numbers lose precision above 2**53)"
        errors.append(FieldError(field=_field_name(loc), message=message))
    return errors


def _error(status: int, message: str, errors: list[FieldError] | None = None) -> Response:
    # An unknown field is named back to the caller: never a known token pasted as a key.
    errors = [FieldError(field=redact(e.field), message=redact(e.message)) for e in errors or []]
    body = ErrorResponse(message=message, request_id=request_id_var.get(), errors=errors)
    response = jsonify(body.model_dump(mode="json"))
    response.status_code = status
    return response


def _answer(model: BaseModel, status: int = 200) -> Response:
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    return response


def _discovery_field(settings: Settings) -> FieldError:
    missing = ", ".join(settings.missing_app_credentials())
    return FieldError(
        field="advertiser_ids",
        message=f'"all" needs the developer app\'s credentials: set {missing} on the service',
    )


def _parse_body(model: type[M]) -> M | Response:
    """The JSON body as ``model``, or the 415/400 answer naming the field (every POST)."""
    if not request.is_json:
        return _error(415, "Content-Type must be application/json")
    try:
        return model.model_validate_json(request.get_data(cache=False))
    except ValidationError as exc:
        return _error(400, "invalid request", _validation_errors(exc))


def _read_body(model: type[BaseModel]) -> tuple[Any, str] | Response:
    """The JSON body as ``model`` and the token to use (the body's, else the service's), or
    the 4xx answer naming the field: one place for /run and /plan."""
    payload = _parse_body(model)
    if isinstance(payload, Response):
        return payload
    secret = payload.access_token  # type: ignore[attr-defined]
    token = secret.get_secret_value() if secret else _service().settings.tiktok_access_token
    if not token:
        missing = FieldError(
            field="access_token", message="required (the service has no TIKTOK_ACCESS_TOKEN)"
        )
        return _error(400, "invalid request", [missing])
    register_secret(token)
    return payload, token


@api.before_app_request
def _new_request_id() -> None:
    # Worker threads are reused: without this, a 404/405 would carry the request id of the
    # thread's previous /run, pointing whoever reads it to another run's logs.
    request_id_var.set(str(uuid.uuid4()))


@api.get("/health")
def health() -> Response:
    return _answer(HealthResponse(status="ok", version=SERVICE_VERSION))


@api.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(SERVICE_VERSION))


@api.post("/run")
def run() -> Response:
    service = _service()
    settings = service.settings
    request_id = request_id_var.get() or str(uuid.uuid4())
    parsed = _read_body(RunRequest)
    if isinstance(parsed, Response):
        return parsed
    payload, token = parsed
    if payload.discover and settings.missing_app_credentials():
        return _error(400, "invalid request", [_discovery_field(settings)])
    try:
        start, end = payload.window(settings.days_reprocess)
    except ValueError as exc:
        field_name, message = str(exc).split(": ", 1)
        return _error(400, "invalid request", [FieldError(field=field_name, message=message)])
    log.info(
        "run started",
        extra={
            "fields": {
                "advertisers": "all" if payload.discover else len(payload.advertiser_ids),
                "report_types": payload.report_types,
                "start_date": start.isoformat(),
                "end_date": end.isoformat(),
                "if_exists": payload.if_exists,
                "project_id": payload.project_id,
                "dataset_id": payload.dataset_id,
            }
        },
    )
    plan = RunPlan(payload, token, start, end, request_id)
    runner = AccountsRun if payload.discover or payload.entity_kinds else Run
    outcome = runner(
        settings,
        plan,
        warehouse_factory=service.warehouse_factory,
        stop_requested=service.shutdown.is_set,
    ).execute()
    return _answer(outcome, STATUS_CODES[outcome.status])


@api.post("/plan")
def plan() -> Response:
    """Rows and requests per (advertiser, report type) over a sample span (sizing)."""
    parsed = _read_body(PlanRequest)
    if isinstance(parsed, Response):
        return parsed
    payload, token = parsed
    items = sample_plan(
        _service().settings,
        token,
        payload.advertiser_ids,
        payload.report_types,
        payload.start_date,
        payload.end_date,
        max_qps=payload.max_qps,
        max_qpm=payload.max_qpm,
    )
    answer = PlanResponse.model_validate(
        {
            "request_id": request_id_var.get(),
            "start_date": payload.start_date,
            "end_date": payload.end_date,
            "items": items,
        }
    )
    return _answer(answer)


@api.get("/advertisers")
def advertisers() -> Response:
    """The advertisers a token reaches (``Access-Token`` header, else the service's own)."""
    settings = _service().settings
    token = request.headers.get("Access-Token") or settings.tiktok_access_token
    if not token:
        missing = FieldError(
            field="Access-Token", message="header required (the service has no TIKTOK_ACCESS_TOKEN)"
        )
        return _error(400, "invalid request", [missing])
    register_secret(token)
    if settings.missing_app_credentials():
        return _error(400, "invalid request", [_discovery_field(settings)])
    try:
        found = list_advertisers(settings, token)
    except DiscoveryError as exc:
        return _error(502, str(exc))
    answer = AdvertisersResponse.model_validate(
        {
            "request_id": request_id_var.get(),
            "advertisers": found,
            "active": sum(a["active"] for a in found),
            "skipped": sum(not a["active"] for a in found),
        }
    )
    return _answer(answer)


@api.get("/settlement_days")
def settlement() -> Response:
    """Per advertiser, the settlement window its attribution settings need (DAG: auto)."""
    query = SettlementQuery.model_validate(request.args.to_dict())
    problems = query.problems()
    if problems:
        return _error(400, "invalid request", problems)
    try:
        warehouse = _service().warehouse(query.project_id, query.dataset_id)
        days = settlement_days(warehouse, query.ids, query.days, datetime.now(UTC).date())
    except WarehouseError as exc:
        return _error(502, str(exc))
    answer = {"request_id": request_id_var.get(), "settlement_days": days}
    return _answer(SettlementResponse.model_validate(answer))


@api.post("/views")
def views() -> Response:
    """Create or replace the analysts' views over what the raw dataset holds (idempotent)."""
    payload = _parse_body(ViewsRequest)
    if isinstance(payload, Response):
        return payload
    service = _service()
    given = payload.model_dump(exclude={"project_id", "dataset_id"})
    dataset_id = payload.dataset_id or service.settings.views_raw_dataset
    plan = plan_for(service.settings, payload.project_id, dataset_id, **given)
    try:
        outcomes = refresh_views(service.warehouse, plan)
    except WarehouseError as exc:
        return _error(502, str(exc))
    except ValueError as exc:  # a setting the request did not override, e.g. a bad rates table
        field_name, _, message = str(exc).partition(": ")
        return _error(400, "invalid request", [FieldError(field=field_name, message=message)])
    views = [vars(outcome) for outcome in outcomes]
    return _answer(
        ViewsResponse.model_validate({"request_id": request_id_var.get(), "views": views})
    )


@api.app_errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return _error(exc.code or 500, exc.description or exc.name)


@api.app_errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected error")
    return _error(500, "internal error; see the service logs for this request_id")
