"""Hardening 6: the access token never appears in a log line, a response body, an error
message or a file the service writes, whatever happens to the run.

The gunicorn service holds a server-side token (TIKTOK_ACCESS_TOKEN, Secret Manager in
production) and logs at DEBUG; requests also carry their own tokens. Scenarios: faults from
TikTok, an unknown token, a revoked token, a BigQuery failure, validation errors with the
token pasted into other fields (or as a key, a query parameter, a header). Then the service
log, every response body, every file that appeared in the service's temp dir during the
runs (watched while they ran) and local-bigquery's data files are searched for every token.
(Every other hardening module also ends by searching its own service's log and responses.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.support.hardening import (
    SECOND_TOKEN,
    SECRET_TOKEN,
    SECRETS,
    UNKNOWN_TOKEN,
    FaultProxy,
    Rule,
    Service,
    Simulator,
    assert_no_secret,
    count,
    payload,
    service_env,
    watch_files,
)
from tests.support.tiers import spawns_processes

FAULTS = ["40100", "50000", "503_html", "504", "reset", "truncated", "slow"]


@pytest.fixture(scope="module")
@spawns_processes
def stack(local_bigquery, tmp_path_factory) -> Iterator[tuple[Simulator, FaultProxy, Service]]:
    root = tmp_path_factory.mktemp("hardening-secrets")
    sim = Simulator(root / "simulator.log", "--qps", "40", "--qpm", "2400")
    proxy = FaultProxy(local_bigquery.endpoint)
    env = service_env(
        sim,
        proxy.endpoint,
        TIKTOK_ACCESS_TOKEN=SECRET_TOKEN,
        LOG_LEVEL="DEBUG",
        RUN_DEADLINE_SECONDS=60,  # room for three metric groups per report and 3 s slow faults
    )
    service = Service(root / "service", env)
    try:
        yield sim, proxy, service
    finally:
        service.stop()
        proxy.stop()
        sim.stop()


@pytest.mark.slow
def test_no_token_anywhere_whatever_happens(stack, local_bigquery, bq_client, bq_dataset):
    sim, proxy, service = stack
    sim.reset()
    advertisers = sim.advertisers[:2]
    stop = threading.Event()
    watcher = watch_files(service, stop)
    try:
        server_side = payload(bq_client.project, bq_dataset, advertisers, ["campaign", "ad"])
        del server_side["access_token"]  # the service's own token

        sim.faults({"mode": "random", "probability": 0.3, "kinds": FAULTS, "seed": 3,
                    "slow_seconds": 3})  # fmt: skip
        assert service.post(server_side).status_code == 200
        sim.faults({"mode": "off"})

        unknown = {**server_side, "access_token": UNKNOWN_TOKEN}
        response = service.post(unknown)
        assert response.status_code == 502 and "40105" in response.text

        sim.configure(revoke_token=SECOND_TOKEN)
        response = service.post({**server_side, "access_token": SECOND_TOKEN})
        assert response.status_code == 502 and "40105" in response.text

        with proxy.failing(Rule(method="POST|PUT", path="^/upload/", action="503")):
            response = service.post({**server_side, "access_token": SECRET_TOKEN})
        assert response.status_code == 502 and "BigQuery load failed" in response.text

        for field in ("dataset_id", "project_id", "start_date", "if_exists"):
            assert service.post({**server_side, field: SECRET_TOKEN}).status_code == 400
        assert service.post({**server_side, "advertiser_ids": [SECRET_TOKEN]}).status_code == 400
        assert service.post({**server_side, SECRET_TOKEN: SECRET_TOKEN}).status_code == 400
        assert service.post({**server_side, "access_token": f" {SECRET_TOKEN} "}).status_code == 400
        response = service.request("GET", f"/run?access_token={SECRET_TOKEN}")
        assert response.status_code == 405
        response = service.request(
            "POST",
            f"/{SECRET_TOKEN}",
            json=server_side,
            headers={"Authorization": f"Bearer {SECRET_TOKEN}"},
        )
        assert response.status_code == 404
    finally:
        stop.set()
        watcher.join(5)
    assert service.seen_files, "the runs spooled no file: the file search searched nothing"
    places = assert_no_secret(service)
    # Nothing the service sent to BigQuery carries a token either.
    for path in local_bigquery.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret.encode() in data for secret in SECRETS), path
            places += 1
    count("secret_scenarios", 12)
    print(f"\nHARDENING searched {places} logs/responses/files for {len(SECRETS)} tokens")
