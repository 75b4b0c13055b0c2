"""``ServiceClient``: every call the workflow makes to the tiktok-ads-api Cloud Run service.

One place for what each call needs: the Google identity token Cloud Run IAM checks (its
audience is the service's root URL; none for a service on loopback, as in tests), the
timeouts, the TikTok access token (in the body of POST /run and /plan, in a header of GET
/advertisers, never stored elsewhere), and the mapping of an answer to an outcome:

- 200/207 with per-item results → a summary (``results.summarize``, errors scrubbed);
- 502 with results (every report failed), 5xx, 408, 429, an unreadable body, a network
  error → ``ServiceUnavailable``, which the call task retries;
- any other 4xx (a bad payload, 401/403 IAM) → ``ServiceRejected``: fails at once.

``requests`` and ``google-auth`` (which Cloud Composer images ship) are imported when a call
is made, so the package imports with neither.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .config import MAX_ADVERTISERS_PER_REQUEST
from .errors import ServiceRejected, ServiceUnavailable, scrub
from .fanout import split_batches
from .results import failed_pairs, summarize

log = logging.getLogger(__name__)

# Connect, read: the read timeout outlasts Cloud Run's 600 s request timeout and the
# service's own 540 s deadline, so the client never gives up on a run that is still going.
HTTP_TIMEOUT = (10.0, 900.0)
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})  # Cloud Run overload: try again later
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def _no_mask(_secret: str) -> None:
    """Outside Airflow nothing masks logs; the workflow passes Airflow's ``mask_secret``."""


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_headers(service_url: str, mask: Callable[[str], None] = _no_mask) -> dict[str, str]:
    """A Google identity token for Cloud Run IAM (audience = root URL); none for loopback."""
    if is_loopback(service_url):
        return {}
    import google.auth.transport.requests
    import google.oauth2.id_token

    token = google.oauth2.id_token.fetch_id_token(
        google.auth.transport.requests.Request(), service_url
    )
    mask(token)
    return {"Authorization": f"Bearer {token}"}


def is_rejection(http_status: int) -> bool:
    """A 4xx that the same request would meet again (408 and 429 are Cloud Run overload)."""
    return 400 <= http_status < 500 and http_status not in RETRYABLE_CLIENT_STATUSES


def rejection_message(http_status: int, body: Mapping[str, Any] | None, secret: str) -> str:
    body = body or {}
    details = [f"{e.get('field')}: {e.get('message')}" for e in body.get("errors", [])]
    message = f"the service rejected the request (HTTP {http_status}): {body.get('message')}"
    if details:
        message += " [" + "; ".join(details) + "]"
    if http_status in (401, 403):
        message += "; grant roles/run.invoker on the service to the Composer service account"
    return scrub(message + f" (request_id {body.get('request_id')})", secret) or message


def service_error(what: str, http_status: int, text: str, secret: str) -> Exception:
    """The error for an answer that is not a result: rejected (4xx) or worth retrying."""
    body = _json_object(text)
    if is_rejection(http_status):
        return ServiceRejected(f"{what}: " + rejection_message(http_status, body, secret))
    shown = scrub(text, secret) if body is None else (body.get("message") or "")
    return ServiceUnavailable(f"{what}: HTTP {http_status} from the service: {shown}")


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def handle_response(http_status: int, text: str, label: str, secret: str) -> dict[str, Any]:
    """200/207 → summary; 4xx → ``ServiceRejected``; 5xx, 502 (all failed) → retryable error.

    502 means every report of the batch failed (TikTok or BigQuery refused the whole run):
    usually transient, so it is retried, at the price of two useless retries when the cause
    is permanent (a revoked token, a missing grant).
    """
    body = _json_object(text)
    if http_status in (200, 207) and body and "results" in body:
        return summarize(http_status, body, label, secret)
    if http_status == 502 and body and "results" in body:
        summary = summarize(http_status, body, label, secret)
        raise ServiceUnavailable(
            f"{label}: every report failed (HTTP 502, request_id {summary['request_id']}): "
            + "; ".join(failed_pairs(summary["results"]))
        )
    raise service_error(label, http_status, text, secret)


def discovered_ids(
    found: Mapping[str, Any], previous: Iterable[str] | None
) -> tuple[list[str], list[str]]:
    """(active ids to run, one warning per account not run: skipped now or lost since the
    previous run). Lost accounts are reported once, never retried."""
    accounts = found.get("advertisers") or []
    active = [a["advertiser_id"] for a in accounts if a.get("active")]
    warnings = [
        f"{a['advertiser_id']} ({a.get('name')}): {a.get('reason')}"
        for a in accounts
        if not a.get("active")
    ]
    listed = {a["advertiser_id"] for a in accounts}
    warnings += [
        f"{advertiser_id}: granted at the previous run, not any more (access removed)"
        for advertiser_id in previous or ()
        if advertiser_id not in listed
    ]
    return active, warnings


class ServiceClient:
    """The service at ``url`` on behalf of one TikTok access token (``token``).

    The token is held here only for the calls that need it; ``mask`` registers secrets
    (the token, each identity token) with the log masker.
    """

    def __init__(self, url: str, token: str = "", mask: Callable[[str], None] = _no_mask) -> None:
        self.url = url
        self.token = token
        self.mask = mask
        if token:
            mask(token)

    def _send(self, method: str, path: str, **kwargs: Any) -> tuple[int, str]:
        """One request with the identity token and the timeouts; (HTTP status, body text)."""
        import requests

        headers = {**auth_headers(self.url, self.mask), **kwargs.pop("headers", {})}
        response = requests.request(
            method, f"{self.url}{path}", headers=headers, timeout=HTTP_TIMEOUT, **kwargs
        )
        return response.status_code, response.text

    def _answer(self, what: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A call whose only good answer is 200 with a JSON object; anything else raises."""
        status, text = self._send(method, path, **kwargs)
        body = _json_object(text)
        if status != 200 or body is None:
            raise service_error(what, status, text, self.token)
        return body

    def run(self, payload: Mapping[str, Any]) -> tuple[int, str]:
        """POST /run; the answer is judged by ``handle_response`` (or a backfill unit)."""
        return self._send("POST", "/run", json={**payload, "access_token": self.token})

    def run_batch(self, payload: Mapping[str, Any], label: str) -> dict[str, Any]:
        """POST /run of one batch → its summary, or the error its answer maps to."""
        status, text = self.run(payload)
        return handle_response(status, text, label, self.token)

    def plan(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """POST /plan (one page-1 request per advertiser × report type): a backfill's sizing."""
        answer = self._answer("plan", "POST", "/plan", json={**body, "access_token": self.token})
        return answer["items"]

    def advertisers(self) -> dict[str, Any]:
        """GET /advertisers: every advertiser the token reaches, active or not."""
        return self._answer(
            "advertiser discovery", "GET", "/advertisers", headers={"Access-Token": self.token}
        )

    def settlement_days(
        self, project_id: str, dataset_id: str, advertiser_ids: list[str], max_days: int
    ) -> dict[str, int]:
        """GET /settlement_days: the days each advertiser's settlement replaces (``auto``)."""
        days: dict[str, int] = {}
        for batch in split_batches(advertiser_ids, MAX_ADVERTISERS_PER_REQUEST):
            params = {"project_id": project_id, "dataset_id": dataset_id,
                      "advertiser_ids": ",".join(batch), "max_days": str(max_days)}  # fmt: skip
            answer = self._answer("settlement days", "GET", "/settlement_days", params=params)
            for advertiser_id, entry in answer["settlement_days"].items():
                days[advertiser_id] = int(entry["days"])
                log.info("settlement of %s: %s days (%s)", advertiser_id, entry["days"],
                         entry["reason"])  # fmt: skip
        return days
