"""POST /run as the service tests make it: a body for the session's simulator and dataset,
and the call (tests/test_service.py and the modules that load through the service)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import requests

TOKEN = "sim-token"
START, END = date(2025, 5, 1), date(2025, 5, 10)


def payload(project: str, dataset: str, advertisers: Iterable[str], **extra: Any) -> dict:
    """A valid /run body over START..END (``extra`` adds or replaces keys)."""
    body = {
        "access_token": TOKEN,
        "advertiser_ids": list(advertisers),
        "project_id": project,
        "dataset_id": dataset,
        "if_exists": "replace",
        "start_date": START.isoformat(),
        "end_date": END.isoformat(),
    }
    body.update(extra)
    return body


def post_run(service: Any, body: dict) -> requests.Response:
    """POST ``body`` to the service (a handle with ``url``) and wait for the whole run."""
    return requests.post(f"{service.url}/run", json=body, timeout=300)
