"""The Dockerfile's gunicorn command as a real process, and the image's files."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import requests

from controller.tiktok.origins import ALL_ORIGINS
from local_env.stack import ROOT, ServiceProcess, dockerfile_command
from tests.support.tiers import spawns_processes
from tiktok_simulator.report import served_rows

TOKEN = "sim-token"


@pytest.fixture(scope="module")
@spawns_processes
def gunicorn_service(simulator, local_bigquery, tmp_path_factory):
    log = tmp_path_factory.mktemp("gunicorn") / "service.log"
    env = {
        "TIKTOK_API_BASE_URL": simulator.base_url,
        "BIGQUERY_EMULATOR_HOST": local_bigquery.endpoint,
    }
    service = ServiceProcess(log, env)
    yield service
    assert service.stop() == 0  # SIGTERM: graceful exit


def test_dockerfile_runs_gunicorn_with_the_config():
    assert dockerfile_command() == ["gunicorn", "--config", "gunicorn.conf.py", "main:app"]
    text = (ROOT / "Dockerfile").read_text()
    assert (
        text.index("COPY requirements.txt") < text.index("pip install") < text.index("COPY main.py")
    )
    assert re.search(r"^USER 10001$", text, re.MULTILINE)


@pytest.mark.e2e  # runs hadolint, a process of its own
def test_dockerfile_passes_hadolint():
    hadolint = Path(ROOT / ".venv/bin/hadolint")
    result = subprocess.run(
        [str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_secrets_and_dev_files_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".venv-bq", "tests", "output", "*.pem", ".env"} <= ignored


def test_requirements_are_pinned():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line.strip()), line


def test_gunicorn_serves_health_and_a_real_run(
    gunicorn_service, sim, sim_world, bq_client, bq_dataset
):
    health = requests.get(f"{gunicorn_service.url}/health", timeout=5)
    assert health.json()["status"] == "ok"
    advertiser = sim_world.advertiser_ids[0]
    body = {
        "access_token": TOKEN,
        "advertiser_ids": [advertiser],
        "project_id": bq_client.project,
        "dataset_id": bq_dataset,
        "if_exists": "replace",
        "report_types": ["campaign"],
        "start_date": "2025-06-01",
        "end_date": "2025-06-03",
    }
    response = requests.post(f"{gunicorn_service.url}/run", json=body, timeout=120)
    result = response.json()
    assert response.status_code == 200, result
    expected = len(
        served_rows(
            sim_world,
            advertiser,
            "AUCTION_CAMPAIGN",
            "2025-06-01",
            "2025-06-03",
            origins=ALL_ORIGINS,
        )  # every report includes Promote campaigns
    )
    assert result["total_inserted_rows"] == expected > 0
    query = f"SELECT COUNT(*) FROM `{bq_client.project}.{bq_dataset}.TKT002_TIKTOK_ADS_CAMPAIGN`"
    assert next(iter(bq_client.query(query).result(timeout=60)))[0] == expected

    lines = [
        json.loads(line)
        for line in gunicorn_service.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    mine = [line for line in lines if line.get("request_id") == result["request_id"]]
    messages = [line["message"] for line in mine]
    assert (
        "run started" in messages and "report extracted" in messages and "run finished" in messages
    )
    assert all(line["severity"] in {"INFO", "WARNING", "ERROR"} for line in mine)
    progress = next(line for line in mine if line["message"] == "report extracted")
    assert progress["advertiser_id"] == advertiser and progress["rows"] == expected
    assert TOKEN not in gunicorn_service.log_path.read_text()
