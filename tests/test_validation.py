"""POST /run payload validation: every bad payload is a 400 naming the field (no servers)."""

from __future__ import annotations

import pytest

from config.settings import Settings
from main import create_app

VALID = {
    "access_token": "tok",
    "advertiser_ids": ["7000091845267208524"],
    "project_id": "local-project",
    "dataset_id": "raw",
    "if_exists": "replace",
    "report_types": ["ad"],
    "start_date": "2025-01-01",
    "end_date": "2025-01-03",
}


@pytest.fixture(scope="module")
def client():
    # Port 9 (discard) on loopback: a payload that wrongly passes validation fails fast.
    settings = Settings(tiktok_api_base_url="http://127.0.0.1:9/open_api/v1.3/")
    return create_app(settings).test_client()


BAD = [
    ({"advertiser_ids": []}, "advertiser_ids", "at least 1"),
    ({"advertiser_ids": [7000091845267208524]}, "advertiser_ids[0]", "string of digits"),
    ({"advertiser_ids": ["70000abc"]}, "advertiser_ids[0]", "pattern"),
    ({"advertiser_ids": [""]}, "advertiser_ids[0]", "pattern"),
    ({"advertiser_ids": "7000091845267208524"}, "advertiser_ids", "valid array"),
    ({"advertiser_ids": None}, "advertiser_ids", "valid array"),
    ({"advertiser_ids": [str(10**18 + i) for i in range(201)]}, "advertiser_ids", "at most 200"),
    ({"start_date": "2025-02-30"}, "start_date", "not a calendar date"),
    ({"start_date": "01/02/2025"}, "start_date", "YYYY-MM-DD"),
    ({"start_date": 20250101}, "start_date", "YYYY-MM-DD"),
    ({"start_date": "2025-01-05", "end_date": "2025-01-01"}, "start_date", "after end_date"),
    ({"end_date": "2999-01-01"}, "end_date", "must be between"),
    ({"start_date": "2020-01-01", "end_date": "2025-01-01"}, "end_date", "366 days"),
    ({"report_types": ["ad_groups"]}, "report_types[0]", "'advertiser'"),
    ({"report_types": []}, "report_types", "at least 1"),
    ({"if_exists": "truncate"}, "if_exists", "'append' or 'replace'"),
    ({"dataset_id": "raw; DROP TABLE x"}, "dataset_id", "dataset id"),
    ({"dataset_id": "../etc"}, "dataset_id", "dataset id"),
    ({"project_id": "Bad_Project"}, "project_id", "project id"),
    ({"project_id": "p`; --"}, "project_id", "project id"),
    ({"bogus": 1}, "bogus", "unknown field"),
    ({"access_token": ""}, "access_token", "must not be empty"),
    ({"access_token": "tok\nen"}, "access_token", "printable ASCII"),
    ({"max_qps": 0}, "max_qps", "greater than 0"),
]


@pytest.mark.parametrize(("change", "field", "text"), BAD)
def test_bad_payload_is_400_naming_the_field(client, change, field, text):
    response = client.post("/run", json={**VALID, **change})
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == "error" and body["message"] == "invalid request"
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert field in fields, fields
    assert text in fields[field]


def test_missing_required_fields_are_each_named(client):
    body = client.post("/run", json={}).get_json()
    assert {e["field"] for e in body["errors"]} == {"advertiser_ids", "project_id"}


def test_token_required_when_the_service_has_none(client):
    payload = {k: v for k, v in VALID.items() if k != "access_token"}
    body = client.post("/run", json=payload).get_json()
    assert body["errors"] == [
        {"field": "access_token", "message": "required (the service has no TIKTOK_ACCESS_TOKEN)"}
    ]


@pytest.mark.parametrize(
    ("data", "content_type", "status", "field"),
    [
        (b"{not json", "application/json", 400, "body"),
        (b"\xff\xfe\x00", "application/json", 400, "body"),
        (b"[1, 2]", "application/json", 400, "body"),
        (b'{"a": 1}', "text/plain", 415, None),
        (b"x" * (2 * 1024 * 1024), "application/json", 413, None),
    ],
)
def test_bodies_that_are_not_a_json_object(client, data, content_type, status, field):
    response = client.post("/run", data=data, content_type=content_type)
    assert response.status_code == status
    body = response.get_json()
    assert body["status"] == "error"
    if field:
        assert body["errors"][0]["field"] == field


def test_wrong_method_and_path_are_json(client):
    assert client.get("/run").status_code == 405
    assert client.get("/run").get_json()["status"] == "error"
    assert client.get("/nope").status_code == 404


def test_token_is_not_echoed_in_validation_errors(client):
    secret = "tok-SECRET-abcdef123456"
    response = client.post(
        "/run", json={**VALID, "access_token": secret, "dataset_id": secret + "!"}
    )
    assert response.status_code == 400
    assert secret not in response.get_data(as_text=True)


def test_openapi_document_matches_the_payload_model(client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    request_schema = document["components"]["schemas"]["RunRequest"]
    assert set(request_schema["properties"]) == {
        *VALID,
        "max_qps",
        "max_qpm",
        "metric_families",
        "with_gmv_max",
    }
    assert set(request_schema["required"]) == {"advertiser_ids", "project_id"}
