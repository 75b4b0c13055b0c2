"""HTTP front of tiktok-ads-api: a thin Flask layer over controller.pipeline.

``main:app`` is the WSGI entry gunicorn serves (see Dockerfile); ``python main.py`` runs the
same app locally on ``PORT``. The routes only parse, validate and translate: every decision
about TikTok or BigQuery lives in ``controller`` and ``database``.

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
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from config.logging import configure_logging, redact, register_secret, request_id_var
from config.settings import Settings, get_settings
from config.version import SERVICE_VERSION
from controller.accounts import DiscoveryError
from controller.entity_pipeline import AccountsRun, list_advertisers
from controller.models import (
    RUN_FAILED,
    RUN_OK,
    RUN_PARTIAL,
    ErrorResponse,
    FieldError,
    RunRequest,
)
from controller.openapi import openapi_document
from controller.pipeline import Run, RunPlan
from controller.planning import PlanRequest
from controller.planning import plan as sample_plan
from controller.reports import registry
from controller.reports.custom import CustomReportError
from controller.settlement import parse_query as parse_settlement_query
from controller.settlement import settlement_days
from database.bigquery import BigQueryWarehouse, WarehouseError, make_client

__version__ = SERVICE_VERSION
MAX_BODY_BYTES = 1024 * 1024
STATUS_CODES = {RUN_OK: 200, RUN_PARTIAL: 207, RUN_FAILED: 502}

log = logging.getLogger("tiktok_ads_api")

# Set when the process receives SIGTERM (gunicorn.conf.py): runs stop starting new work.
shutdown_requested = threading.Event()


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
            field, message = message.split(": ", 1)
            loc = (field,)
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


def load_custom_reports(settings: Settings) -> None:
    """Custom report definitions are read once, at start: one TikTok would refuse stops the
    service here, with a message naming the report and the field, not at its first run."""
    try:
        loaded = registry.load_custom_file(settings.tiktok_custom_reports_file)
    except CustomReportError as exc:
        log.critical("invalid custom report definition: %s", exc)
        raise
    if loaded:
        log.info(
            "custom reports loaded",
            extra={"fields": {"report_types": [spec.report_type for spec in loaded]}},
        )


def _discovery_field(settings: Settings) -> FieldError:
    missing = ", ".join(settings.missing_app_credentials())
    return FieldError(
        field="advertiser_ids",
        message=f'"all" needs the developer app\'s credentials: set {missing} on the service',
    )


def create_app(
    settings: Settings | None = None,
    *,
    warehouse_factory: Callable[..., Any] | None = None,
) -> Flask:
    """Build the app; tests pass their own settings (simulator URL, emulator endpoint)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    register_secret(settings.tiktok_access_token)
    load_custom_reports(settings)
    register_secret(settings.tiktok_app_secret)  # TikTok wants it in a query string
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False

    @app.before_request
    def new_request_id() -> None:
        # Worker threads are reused: without this, a 404/405 would carry the request id of
        # the thread's previous /run, pointing whoever reads it to another run's logs.
        request_id_var.set(str(uuid.uuid4()))

    def read_body(model: type[BaseModel]) -> tuple[Any, str] | Response:
        """The JSON body as ``model`` and the token to use (the body's, else the service's),
        or the 4xx answer naming the field: one place for /run and /plan."""
        if not request.is_json:
            return _error(415, "Content-Type must be application/json")
        try:
            payload = model.model_validate_json(request.get_data(cache=False))
        except ValidationError as exc:
            return _error(400, "invalid request", _validation_errors(exc))
        token = (
            payload.access_token.get_secret_value()
            if payload.access_token
            else settings.tiktok_access_token
        )
        if not token:
            field = FieldError(
                field="access_token", message="required (the service has no TIKTOK_ACCESS_TOKEN)"
            )
            return _error(400, "invalid request", [field])
        register_secret(token)
        return payload, token

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok", version=__version__)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(openapi_document(__version__))

    @app.post("/run")
    def run() -> Response:
        request_id = request_id_var.get() or str(uuid.uuid4())
        parsed = read_body(RunRequest)
        if isinstance(parsed, Response):
            return parsed
        payload, token = parsed
        if payload.discover and settings.missing_app_credentials():
            return _error(400, "invalid request", [_discovery_field(settings)])
        try:
            start, end = payload.window(settings.days_reprocess)
        except ValueError as exc:
            field, message = str(exc).split(": ", 1)
            return _error(400, "invalid request", [FieldError(field=field, message=message)])
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
            warehouse_factory=warehouse_factory,
            stop_requested=shutdown_requested.is_set,
        ).execute()
        response = jsonify(outcome.model_dump(mode="json"))
        response.status_code = STATUS_CODES[outcome.status]
        return response

    @app.post("/plan")
    def plan() -> Response:
        """Rows and requests per (advertiser, report type) over a sample span (sizing)."""
        parsed = read_body(PlanRequest)
        if isinstance(parsed, Response):
            return parsed
        payload, token = parsed
        items = sample_plan(
            settings,
            token,
            payload.advertiser_ids,
            payload.report_types,
            payload.start_date,
            payload.end_date,
            max_qps=payload.max_qps,
            max_qpm=payload.max_qpm,
        )
        return jsonify(
            request_id=request_id_var.get(),
            start_date=payload.start_date.isoformat(),
            end_date=payload.end_date.isoformat(),
            items=items,
        )

    @app.get("/advertisers")
    def advertisers() -> Response:
        """The advertisers a token reaches (``Access-Token`` header, else the service's own)."""
        token = request.headers.get("Access-Token") or settings.tiktok_access_token
        if not token:
            field = FieldError(
                field="Access-Token",
                message="header required (the service has no TIKTOK_ACCESS_TOKEN)",
            )
            return _error(400, "invalid request", [field])
        register_secret(token)
        if settings.missing_app_credentials():
            return _error(400, "invalid request", [_discovery_field(settings)])
        try:
            found = list_advertisers(settings, token)
        except DiscoveryError as exc:
            return _error(502, str(exc))
        return jsonify(
            request_id=request_id_var.get(),
            advertisers=found,
            active=sum(a["active"] for a in found),
            skipped=sum(not a["active"] for a in found),
        )

    @app.get("/settlement_days")
    def settlement() -> Response:
        """Per advertiser, the settlement window its attribution settings need (DAG: auto)."""
        query, problems = parse_settlement_query(request.args.to_dict())
        if problems:
            errors = [FieldError(field=field, message=message) for field, message in problems]
            return _error(400, "invalid request", errors)
        factory = warehouse_factory or (
            lambda project, dataset: BigQueryWarehouse(
                make_client(
                    project,
                    location=settings.bq_location,
                    emulator_host=settings.bigquery_emulator_host,
                ),
                dataset,
                location=settings.bq_location,
            )
        )
        try:
            warehouse = factory(query["project_id"], query["dataset_id"])
            days = settlement_days(
                warehouse, query["advertiser_ids"], query["max_days"], datetime.now(UTC).date()
            )
        except WarehouseError as exc:
            return _error(502, str(exc))
        return jsonify(request_id=request_id_var.get(), settlement_days=days)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return _error(500, "internal error; see the service logs for this request_id")

    return app


def __getattr__(name: str) -> Any:
    """``main:app`` for gunicorn, built on first access (nothing happens at import time)."""
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)


def serve() -> None:
    settings = get_settings()
    create_app(settings).run(host="0.0.0.0", port=settings.port, threaded=True)


if __name__ == "__main__":
    serve()
