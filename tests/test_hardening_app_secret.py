"""Hardening: the developer app's secret, which TikTok wants in the query string of
/oauth2/advertiser/get/, never appears in a log line (urllib3's DEBUG request lines
included), a response, an error or a file, and neither does the access token.

The gunicorn service runs at DEBUG with the app credentials and a server-side token;
scenarios: discovery runs with entity tables and a report, GET /advertisers, a secret
rotated in the developer portal (TikTok answers 40101), TikTok faults on the reports.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Iterator

import pytest

from config.logging import JsonFormatter, configure_logging, register_secret
from controller.tiktok.accounts import DiscoveryError, discover
from controller.tiktok.client import TikTokClient
from controller.tiktok.rate_limiter import RateLimiter
from tests.fixtures.simulator import SIM_TOKEN
from tests.support.hardening import (
    SECRET_TOKEN,
    SECRETS,
    Service,
    Simulator,
    payload,
    service_env,
)
from tests.support.tiers import spawns_processes

APP_SECRET = "app-SECRET-d41d8cd98f00b204e9800998ecf8427e"
ALL_SECRETS = (*SECRETS, APP_SECRET)


def _watch(service: Service, stop: threading.Event, found: list[str]) -> threading.Thread:
    """Read every file the service writes while it runs (spools are deleted after a run)."""

    def loop() -> None:
        while not stop.wait(0.05):
            for path in list(service.tmpdir.rglob("*")):
                with contextlib.suppress(OSError):
                    if path.is_file():
                        data = path.read_bytes()
                        service.seen_files.add(path)
                        found.extend(f"{s} in {path}" for s in ALL_SECRETS if s.encode() in data)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
@spawns_processes
def stack(local_bigquery, tmp_path_factory) -> Iterator[tuple[Simulator, Service]]:
    root = tmp_path_factory.mktemp("hardening-app-secret")
    sim = Simulator(root / "simulator.log", "--qps", "40", "--qpm", "2400",
                    "--app-secret", APP_SECRET)  # fmt: skip
    env = service_env(
        sim,
        local_bigquery.endpoint,
        TIKTOK_ACCESS_TOKEN=SECRET_TOKEN,
        TIKTOK_APP_ID="1234567890",
        TIKTOK_APP_SECRET=APP_SECRET,
        LOG_LEVEL="DEBUG",
    )
    service = Service(root / "service", env)
    try:
        yield sim, service
    finally:
        service.stop()
        sim.stop()


@pytest.mark.slow
def test_no_app_secret_or_token_anywhere(stack, bq_client, bq_dataset) -> None:
    sim, service = stack
    sim.reset()
    stop, found = threading.Event(), []
    watcher = _watch(service, stop, found)
    try:
        body = payload(bq_client.project, bq_dataset, [], ["advertiser_info", "campaigns", "ads",
                                                           "campaign"], advertiser_ids="all")  # fmt: skip
        del body["access_token"]  # the service's own token
        sim.faults({"mode": "random", "probability": 0.3, "kinds": ["50000", "reset"], "seed": 5})
        response = service.post(body)
        assert response.status_code == 200, response.text
        assert response.json()["skipped_advertisers"][0]["reason"] == (
            "account closed (STATUS_DISABLE)"
        )
        sim.faults({"mode": "off"})
        listed = service.request("GET", "/advertisers")
        assert listed.status_code == 200 and len(listed.json()["advertisers"]) == 5
        sim.configure(app_secret="rotated-in-the-portal")
        rotated = service.post(body)
        assert rotated.status_code == 502 and "40101" in rotated.text
        assert service.request("GET", "/advertisers").status_code == 502
    finally:
        stop.set()
        watcher.join(5)
    assert found == []
    assert service.seen_files, "the runs spooled no file: the file search searched nothing"
    log = service.log_text()
    assert "advertisers discovered" in log and "history loaded" in log
    for secret in ALL_SECRETS:
        assert secret not in log
        assert all(secret not in text for text in service.bodies)


def test_urllib3_debug_lines_never_show_the_app_secret(simulator) -> None:
    """urllib3 logs each request line (with its query) at DEBUG; the secret is masked there
    for any handler, not only the service's JSON one."""
    secret = "sim-app-secret"
    configure_logging("INFO")
    register_secret(secret)
    stream = io.StringIO()
    plain = logging.StreamHandler(stream)  # not the service's formatter: the filter must do it
    json_handler = logging.StreamHandler(io.StringIO())
    json_handler.setFormatter(JsonFormatter())
    urllib3 = logging.getLogger("urllib3")
    level = urllib3.level
    urllib3.setLevel(logging.DEBUG)
    urllib3.addHandler(plain)
    try:
        client = TikTokClient(simulator.base_url, SIM_TOKEN, RateLimiter(50, 3000))
        accounts = discover(client, "1234567890", secret)
        with pytest.raises(DiscoveryError, match="40101"):
            discover(client, "1234567890", "wrong-" + secret)
        client.close()
    finally:
        urllib3.removeHandler(plain)
        urllib3.setLevel(level)
    text = stream.getvalue()
    assert accounts and "/oauth2/advertiser/get/?" in text  # urllib3 did log the request line
    assert "secret=***" in text and secret not in text
