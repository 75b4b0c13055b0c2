"""OpenAPI 3.1 description of the service, generated from the pydantic models.

Generated rather than written so that it cannot drift from what /run validates.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from controller.api.models import (
    AdvertisersResponse,
    ErrorResponse,
    HealthResponse,
    PlanRequest,
    PlanResponse,
    RunRequest,
    RunResponse,
    SettlementQuery,
    SettlementResponse,
    ViewsRequest,
    ViewsResponse,
)


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


@cache
def openapi_document(version: str) -> dict[str, Any]:
    _, schemas = models_json_schema(
        [
            (RunRequest, "validation"),
            (RunResponse, "serialization"),
            (PlanRequest, "validation"),
            (PlanResponse, "serialization"),
            (AdvertisersResponse, "serialization"),
            (SettlementResponse, "serialization"),
            (ViewsRequest, "validation"),
            (ViewsResponse, "serialization"),
            (HealthResponse, "serialization"),
            (ErrorResponse, "serialization"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    error = "ErrorResponse"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tiktok-ads-api",
            "version": version,
            "description": "Extracts TikTok Ads daily reports into BigQuery.",
        },
        "paths": {
            "/health": {
                "get": {
                    "summary": "Liveness probe (no dependency calls)",
                    "responses": {"200": _json("HealthResponse", "Service is up")},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "The OpenAPI 3.1 document"}},
                }
            },
            "/run": {
                "post": {
                    "summary": "Extract reports for advertisers and load them into BigQuery",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/RunRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json("RunResponse", "Every report loaded"),
                        "207": _json("RunResponse", "Some reports failed (see results)"),
                        "502": _json("RunResponse", "Every report failed"),
                        "400": _json(error, "Invalid payload; errors name each field"),
                        "413": _json(error, "Body larger than 1 MiB"),
                        "415": _json(error, "Body is not application/json"),
                        "500": _json(error, "Unexpected fault"),
                    },
                }
            },
            "/plan": {
                "post": {
                    "summary": "Rows and requests per (advertiser, report type) over a sample "
                    "span of at most 30 days (what a backfill planner sizes its units with)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PlanRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json("PlanResponse", "One item per (advertiser, report type)"),
                        "400": _json(error, "Invalid payload; errors name each field"),
                        "413": _json(error, "Body larger than 1 MiB"),
                        "415": _json(error, "Body is not application/json"),
                        "500": _json(error, "Unexpected fault"),
                    },
                }
            },
            "/advertisers": {
                "get": {
                    "summary": "Advertisers the token reaches (discovery), active or not and why",
                    "parameters": [
                        {
                            "name": "Access-Token",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "TikTok token; default the service's own",
                        }
                    ],
                    "responses": {
                        "200": _json(
                            "AdvertisersResponse",
                            "advertisers: id, name, status, currency, timezone, "
                            "timezone_iana, active, reason",
                        ),
                        "400": _json(error, "No token, or TIKTOK_APP_ID/SECRET not set"),
                        "502": _json(error, "TikTok refused the app credentials or failed"),
                    },
                }
            },
            "/settlement_days": {
                "get": {
                    "summary": "Settlement days per advertiser from its ad groups' click windows",
                    "parameters": [
                        {
                            "name": name,
                            "in": "query",
                            "required": name in ("project_id", "advertiser_ids"),
                            "schema": {"type": "string"},
                        }
                        for name in SettlementQuery.model_fields
                    ],
                    "responses": {
                        "200": _json("SettlementResponse", "{advertiser_id: {days, reason}}"),
                        "400": _json(error, "Invalid parameters; errors name each one"),
                        "502": _json(error, "BigQuery refused the query"),
                    },
                }
            },
            "/views": {
                "post": {
                    "summary": "Create or replace the analysts' views (cross-platform and "
                    "dbt_tiktok_ads-compatible) over the raw tables that exist; idempotent",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ViewsRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            "ViewsResponse",
                            "Each view: created, replaced, "
                            "unchanged, or skipped (its table does not exist yet)",
                        ),
                        "400": _json(error, "Invalid payload; errors name each field"),
                        "415": _json(error, "Body is not application/json"),
                        "502": _json(error, "BigQuery refused a view"),
                    },
                }
            },
        },
        "components": {"schemas": schemas["$defs"]},
    }
