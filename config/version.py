"""The service's version: shown by GET /health, the OpenAPI document and the run log."""

SERVICE_VERSION = "1.0.0"
