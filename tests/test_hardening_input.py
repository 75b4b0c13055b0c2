"""Hardening 5: hostile input. Every bad request is a 4xx JSON error naming the field, never a
5xx, nothing runs, and the service stays healthy; schemathesis fuzzes the published OpenAPI
document against the gunicorn service.

Schemathesis sends /run only NEGATIVE (schema-violating) bodies: a valid generated body is a
real run (up to 200 random advertisers × 366 days, thousands of TikTok calls each), which the
ground-truth scenarios cover instead. The service still points at the simulator and the local
BigQuery, so even a body it wrongly accepted would never leave 127.0.0.1, and the test checks
that the simulator received no report request at all. GET endpoints are fuzzed positively.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from controller.api.models import RunRequest
from controller.api.openapi import openapi_document
from main import __version__
from tests.support.hardening import (
    SECRET_TOKEN,
    Service,
    Simulator,
    assert_no_secret,
    count,
    service_env,
)
from tests.support.tiers import spawns_processes

ADVERTISER = "7000565813154703460"
BASE = {
    "access_token": SECRET_TOKEN,
    "advertiser_ids": [ADVERTISER],
    "project_id": "local-project",
    "dataset_id": "hostile_input",
    "if_exists": "replace",
    "report_types": ["campaign"],
    "start_date": "2025-06-01",
    "end_date": "2025-06-02",
}
JSON = {"Content-Type": "application/json"}
TODAY = datetime.now(UTC).date()


def body(**changes: Any) -> dict[str, Any]:
    """BASE with fields changed; a value of ``...`` removes the field."""
    data = {**BASE, **changes}
    return {k: v for k, v in data.items() if v is not ...}


def raw(data: bytes | str, content_type: str | None = "application/json") -> dict[str, Any]:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return {"data": data, "headers": headers}


# (id, request kwargs, expected status, field named in errors[] or None)
CORPUS: list[tuple[str, dict[str, Any], int, str | None]] = [
    # advertiser_ids: types, nulls, sizes, numbers
    ("ids-string", {"json": body(advertiser_ids=ADVERTISER)}, 400, "advertiser_ids"),
    ("ids-null", {"json": body(advertiser_ids=None)}, 400, "advertiser_ids"),
    ("ids-missing", {"json": body(advertiser_ids=...)}, 400, "advertiser_ids"),
    ("ids-empty", {"json": body(advertiser_ids=[])}, 400, "advertiser_ids"),
    (
        "ids-10000",
        {"json": body(advertiser_ids=[str(7 * 10**18 + n) for n in range(10_000)])},
        400,
        "advertiser_ids",
    ),
    ("ids-201", {"json": body(advertiser_ids=[str(n) for n in range(201)])}, 400, "advertiser_ids"),
    ("ids-number", {"json": body(advertiser_ids=[int(ADVERTISER)])}, 400, "advertiser_ids[0]"),
    ("ids-float", {"json": body(advertiser_ids=[7.0e18])}, 400, "advertiser_ids[0]"),
    ("ids-second-number", {"json": body(advertiser_ids=["1", 2])}, 400, "advertiser_ids[1]"),
    ("ids-letters", {"json": body(advertiser_ids=["70005x"])}, 400, "advertiser_ids[0]"),
    ("ids-empty-string", {"json": body(advertiser_ids=[""])}, 400, "advertiser_ids[0]"),
    ("ids-21-digits", {"json": body(advertiser_ids=["1" * 21])}, 400, "advertiser_ids[0]"),
    ("ids-unicode-digits", {"json": body(advertiser_ids=["٣٤٥٦"])}, 400, "advertiser_ids[0]"),
    ("ids-null-item", {"json": body(advertiser_ids=[None])}, 400, "advertiser_ids[0]"),
    ("ids-nested", {"json": body(advertiser_ids=[[ADVERTISER]])}, 400, "advertiser_ids[0]"),
    ("ids-object", {"json": body(advertiser_ids={"0": ADVERTISER})}, 400, "advertiser_ids"),
    (
        "ids-1e400",
        raw(b'{"advertiser_ids": [1e400], "project_id": "abcdef"}'),
        400,
        "advertiser_ids[0]",
    ),
    # project_id / dataset_id: injection, paths, types
    ("project-missing", {"json": body(project_id=...)}, 400, "project_id"),
    ("project-null", {"json": body(project_id=None)}, 400, "project_id"),
    ("project-number", {"json": body(project_id=123456)}, 400, "project_id"),
    ("project-sql", {"json": body(project_id="p; DROP TABLE raw.t; --")}, 400, "project_id"),
    ("project-backtick", {"json": body(project_id="proj`.raw.t` WHERE 1=1 --")}, 400, "project_id"),
    ("project-path", {"json": body(project_id="../../etc/passwd")}, 400, "project_id"),
    ("project-url", {"json": body(project_id="http://169.254.169.254/")}, 400, "project_id"),
    ("dataset-sql", {"json": body(dataset_id="raw; DROP TABLE x")}, 400, "dataset_id"),
    (
        "dataset-backtick",
        {"json": body(dataset_id="raw`; DELETE FROM `p.raw.t` WHERE TRUE; --")},
        400,
        "dataset_id",
    ),
    ("dataset-path", {"json": body(dataset_id="../raw")}, 400, "dataset_id"),
    ("dataset-dot", {"json": body(dataset_id="other_project.raw")}, 400, "dataset_id"),
    ("dataset-empty", {"json": body(dataset_id="")}, 400, "dataset_id"),
    ("dataset-nul", {"json": body(dataset_id="raw\u0000")}, 400, "dataset_id"),
    ("dataset-1025", {"json": body(dataset_id="a" * 1025)}, 400, "dataset_id"),
    ("dataset-900kb", {"json": body(dataset_id="a" * 900_000)}, 400, "dataset_id"),
    ("dataset-null", {"json": body(dataset_id=None)}, 400, "dataset_id"),
    ("dataset-list", {"json": body(dataset_id=["raw"])}, 400, "dataset_id"),
    # enums and lists
    ("if-exists-unknown", {"json": body(if_exists="truncate")}, 400, "if_exists"),
    ("if-exists-null", {"json": body(if_exists=None)}, 400, "if_exists"),
    ("report-unknown", {"json": body(report_types=["campaing"])}, 400, "report_types[0]"),
    ("report-upper", {"json": body(report_types=["AD"])}, 400, "report_types[0]"),
    ("report-empty", {"json": body(report_types=[])}, 400, "report_types"),
    ("report-string", {"json": body(report_types="ad")}, 400, "report_types"),
    ("report-null", {"json": body(report_types=None)}, 400, "report_types"),
    # dates
    ("date-feb-30", {"json": body(start_date="2025-02-30")}, 400, "start_date"),
    ("date-feb-29-2025", {"json": body(end_date="2025-02-29")}, 400, "end_date"),
    ("date-month-13", {"json": body(end_date="2025-13-01")}, 400, "end_date"),
    ("date-short", {"json": body(start_date="2025-6-1")}, 400, "start_date"),
    ("date-number", {"json": body(start_date=20250601)}, 400, "start_date"),
    ("date-datetime", {"json": body(start_date="2025-06-01T00:00:00Z")}, 400, "start_date"),
    (
        "date-reversed",
        {"json": body(start_date="2025-06-10", end_date="2025-06-01")},
        400,
        "start_date",
    ),
    (
        "date-far-future",
        {"json": body(start_date="2999-01-01", end_date="2999-01-02")},
        400,
        "start_date",
    ),
    (
        "date-future-end",
        {"json": body(end_date=(TODAY + timedelta(days=30)).isoformat())},
        400,
        "end_date",
    ),
    ("date-too-old", {"json": body(start_date="2015-12-31")}, 400, "start_date"),
    (
        "date-window-too-long",
        {"json": body(start_date="2024-01-01", end_date="2025-06-30")},
        400,
        "end_date",
    ),
    (
        "date-start-after-default-end",
        # Tomorrow, not today: still after the default end (yesterday) if the run crosses
        # midnight UTC between building this corpus and sending it.
        {"json": body(start_date=(TODAY + timedelta(days=1)).isoformat(), end_date=...)},
        400,
        "start_date",
    ),
    # other fields
    ("unknown-field", {"json": body(extra_field=1)}, 400, "extra_field"),
    ("singular-id-typo", {"json": body(advertiser_id=ADVERTISER)}, 400, "advertiser_id"),
    ("token-empty", {"json": body(access_token="")}, 400, "access_token"),
    ("token-number", {"json": body(access_token=12345)}, 400, "access_token"),
    ("token-spaces", {"json": body(access_token="tok with spaces")}, 400, "access_token"),
    ("qps-zero", {"json": body(max_qps=0)}, 400, "max_qps"),
    ("qps-negative", {"json": body(max_qps=-5)}, 400, "max_qps"),
    ("qps-string", {"json": body(max_qps="5")}, 400, "max_qps"),
    ("qps-bool", {"json": body(max_qps=True)}, 400, "max_qps"),
    ("qps-nan", raw(json.dumps(body(max_qps=float("nan")))), 400, "max_qps"),
    ("qpm-float", {"json": body(max_qpm=1.5)}, 400, "max_qpm"),
    ("qpm-huge", {"json": body(max_qpm=10**12)}, 400, "max_qpm"),
    # bodies that are not a JSON object
    ("body-array", raw(b"[]"), 400, "body"),
    ("body-null", raw(b"null"), 400, "body"),
    ("body-string", raw(b'"run please"'), 400, "body"),
    ("body-form", raw(b"advertiser_ids=1&project_id=p"), 400, "body"),
    ("body-truncated", raw(b'{"advertiser_ids": ["7000'), 400, "body"),
    ("body-empty", raw(b""), 400, "body"),
    ("body-not-utf8", raw(b'{"project_id": "\xff\xfe\xfd"}'), 400, "body"),
    ("body-utf16", raw(json.dumps(BASE).encode("utf-16")), 400, "body"),
    ("body-deep-nesting", raw(b"[" * 100_000 + b"]" * 100_000), 400, "body"),
    # size, content type, method, path
    ("body-20mb", raw(b'{"dataset_id": "' + b"a" * (20 * 1024 * 1024) + b'"}'), 413, None),
    ("type-text", raw(json.dumps(BASE), "text/plain"), 415, None),
    ("type-form", raw(json.dumps(BASE), "application/x-www-form-urlencoded"), 415, None),
    ("type-missing", raw(json.dumps(BASE).encode(), None), 415, None),
    ("get-run", {"method": "GET"}, 405, None),
    ("put-run", {"method": "PUT", "json": BASE}, 405, None),
    ("delete-run", {"method": "DELETE"}, 405, None),
    ("unknown-path", {"path": "/run/../admin"}, 404, None),
]


@pytest.fixture(scope="module")
@spawns_processes
def stack(local_bigquery, tmp_path_factory) -> Iterator[tuple[Simulator, Service]]:
    root = tmp_path_factory.mktemp("hardening-input")
    sim = Simulator(root / "simulator.log")
    service = Service(
        root / "service",
        # The server-side token (Secret Manager in production) is the secret here.
        service_env(sim, local_bigquery.endpoint, TIKTOK_ACCESS_TOKEN=SECRET_TOKEN),
    )
    try:
        yield sim, service
    finally:
        service.stop()
        sim.stop()


def send(service: Service, kwargs: dict[str, Any]) -> requests.Response:
    kwargs = dict(kwargs)
    method = kwargs.pop("method", "POST")
    path = kwargs.pop("path", "/run")
    return service.request(method, path, **kwargs)


def test_every_hostile_request_is_a_4xx_json_error_naming_the_field(stack):
    sim, service = stack
    assert len(CORPUS) >= 40
    assert len({case[0] for case in CORPUS}) == len(CORPUS)
    sim.reset()
    request_ids = []
    for name, kwargs, status, field in CORPUS:
        response = send(service, kwargs)
        assert response.status_code == status, (name, response.status_code, response.text[:500])
        assert response.headers["Content-Type"].startswith("application/json"), name
        result = response.json()
        assert result["status"] == "error" and result["message"], (name, result)
        fields = [error["field"] for error in result["errors"]]
        if field is not None:
            assert field in fields, (name, result["errors"])
            assert all(error["message"] for error in result["errors"]), name
        else:
            assert fields == [], (name, fields)
        request_ids.append(result["request_id"])
    # Each answer has its own request id (a reused worker thread must not repeat one).
    assert None not in request_ids and len(set(request_ids)) == len(request_ids)
    count("hostile_requests", len(CORPUS))
    assert service.healthy()
    assert sim.stats(log=False)["requests"] == 0  # nothing reached TikTok


def test_token_placed_in_other_fields_is_never_echoed_or_logged(stack):
    _, service = stack
    bad = [
        body(access_token=..., dataset_id=SECRET_TOKEN),
        body(access_token=..., project_id=SECRET_TOKEN),
        body(access_token=..., advertiser_ids=[SECRET_TOKEN]),
        body(access_token=..., report_types=[SECRET_TOKEN]),
        body(access_token=..., start_date=SECRET_TOKEN),
        body(access_token=..., if_exists=SECRET_TOKEN),
        {**body(access_token=...), SECRET_TOKEN: "as a key"},
        {**body(access_token=...), "token": SECRET_TOKEN},
    ]
    for data in bad:
        response = service.post(data)
        assert response.status_code == 400, response.text
        assert SECRET_TOKEN not in response.text
    count("hostile_requests", len(bad))
    assert_no_secret(service)


def test_openapi_document_validates_and_matches_the_run_request_model(stack):
    _, service = stack
    document = service.request("GET", "/openapi.json").json()
    assert document == json.loads(json.dumps(openapi_document(__version__)))
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()  # OpenAPI 3.1 meta-schema
    run = document["components"]["schemas"]["RunRequest"]
    assert set(run["properties"]) == set(RunRequest.model_fields)
    assert set(run["required"]) == {
        name for name, field in RunRequest.model_fields.items() if field.is_required()
    }
    assert run.get("additionalProperties") is False
    operation = document["paths"]["/run"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RunRequest"
    }
    assert {"200", "207", "400", "413", "415", "500", "502"} <= set(operation["responses"])


# The schema the service serves (a test above checks /openapi.json returns this document).
SCHEMA = schemathesis.openapi.from_dict(openapi_document(__version__))
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


@FUZZ
@given(case=SCHEMA["/run"]["POST"].as_strategy(generation_mode=GenerationMode.NEGATIVE))
def test_schemathesis_negative_run_bodies(stack, case):
    _, service = stack
    response = case.call_and_validate(base_url=service.url, timeout=30)
    service.bodies.append(response.text)
    assert 400 <= response.status_code < 500, response.text
    count("schemathesis_cases")


@settings(FUZZ, max_examples=5)
@given(case=SCHEMA["/health"]["GET"].as_strategy(generation_mode=GenerationMode.POSITIVE))
def test_schemathesis_health(stack, case):
    _, service = stack
    response = case.call_and_validate(base_url=service.url, timeout=30)
    assert response.status_code == 200
    count("schemathesis_cases")


def test_service_healthy_and_nothing_ran_after_the_fuzzing(stack):
    sim, service = stack
    assert service.healthy()
    assert sim.stats(log=False)["by_path"].get("/open_api/v1.3/report/integrated/get/", 0) == 0
    assert_no_secret(service)
