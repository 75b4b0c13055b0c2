"""The DAG's rules without Airflow: the ``tiktok_ads`` package beside the DAG file.

Airflow is never imported here (``test_the_package_imports_without_airflow`` checks it in a
fresh interpreter), so these run in the fast tier; tests/test_dag.py runs the DAG itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.dag_runs import SECRET, valid_variables
from tiktok_ads import config as cfg
from tiktok_ads import errors, fanout, results, service, windows

DAGS = Path(__file__).resolve().parents[1] / "dags"


def test_the_package_imports_without_airflow() -> None:
    """The scheduler's parse and these tests need no Airflow, requests or google-auth."""
    code = (
        "import sys, tiktok_ads.backfill, tiktok_ads.config, tiktok_ads.fanout, "
        "tiktok_ads.results, tiktok_ads.service, tiktok_ads.windows; "
        "print(sorted(m for m in ('airflow', 'requests', 'google.auth') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=DAGS, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_conf_schema_declares_every_conf_key() -> None:
    assert tuple(cfg.CONF_SCHEMA) == cfg.CONF_KEYS
    # The trigger form sends every field, empty ones as null: that is a daily run.
    assert cfg.parse_conf(dict.fromkeys(cfg.CONF_KEYS)) is None


def test_config_errors_are_reported_together() -> None:
    raw = {
        "TIKTOK_ADS_CLOUD_RUN_URL": "ftp://example.com",
        "TIKTOK_ADVERTISER_IDS": '["123", 7012345678901234567, "12a"]',
        "GCP_REGION": "europe-west1",
        "TIKTOK_REPORT_TYPES": '["ad", "keyword"]',
        "TIKTOK_BATCH_SIZE": "0",
        "TIKTOK_APP_QPS": "fast",
    }
    _, problems = cfg.parse_config(raw)
    text = "; ".join(problems)
    assert "TIKTOK_ADS_CLOUD_RUN_URL: must be an http(s) URL" in text
    assert "item 1 is a JSON number" in text
    assert "item 2 '12a' is not a string of digits" in text
    assert "GCP_PROJECT: missing" in text
    assert "TIKTOK_REPORT_TYPES: unknown report types ['keyword']" in text
    assert "TIKTOK_BATCH_SIZE: must be between 1 and 200" in text
    assert "TIKTOK_APP_QPS: must be a number" in text
    assert len(problems) == 6


def test_config_defaults_and_normalisation() -> None:
    raw = valid_variables("https://svc.a.run.app/")
    raw["TIKTOK_ADVERTISER_IDS"] = '["1", "2", "1"]'
    config, problems = cfg.parse_config(raw)
    assert problems == []
    assert config["service_url"] == "https://svc.a.run.app"
    assert config["advertiser_ids"] == ["1", "2"]
    assert config["dataset_id"] == "raw"
    assert config["report_types"] == ["advertiser", "campaign", "adgroup", "ad"]
    assert (config["days_reprocess"], config["batch_size"], config["parallel_batches"]) == (
        3,
        20,
        2,
    )
    assert (config["app_qps"], config["app_qpm"]) == (10.0, 600)
    assert "TIKTOK_ACCESS_TOKEN" not in json.dumps(config) and SECRET not in json.dumps(config)


def test_service_url_must_be_the_root() -> None:
    with pytest.raises(cfg.ConfigError, match="root URL"):
        cfg.parse_service_url("https://svc.a.run.app/run")


def test_window_is_the_three_days_before_the_run_day() -> None:
    scheduled = {"data_interval_end": datetime(2026, 3, 10, 8, tzinfo=UTC)}
    day = windows.run_day(scheduled)
    assert windows.default_window(day, 3) == (date(2026, 3, 7), date(2026, 3, 9))
    assert windows.default_window(day, 1) == (date(2026, 3, 9), date(2026, 3, 9))
    manual = {
        "data_interval_end": None,
        "dag_run": SimpleNamespace(run_after=scheduled["data_interval_end"]),
    }
    assert windows.run_day(manual) == date(2026, 3, 10)


def test_backfill_conf() -> None:
    parse = cfg.parse_conf_window
    assert parse(None) is None and parse({}) is None
    assert parse({"start_date": "2026-01-01", "end_date": "2026-01-31"}) == (
        date(2026, 1, 1),
        date(2026, 1, 31),
    )
    # Any length back to 2016-01-01: a backfill the DAG plans into units.
    assert parse({"start_date": "2016-01-01", "end_date": "2025-12-31"}) == (
        date(2016, 1, 1),
        date(2025, 12, 31),
    )
    conf = {"start_date": "2024-01-01", "end_date": "2025-12-31", "advertiser_ids": ["7"]}
    assert cfg.parse_conf(conf | {"report_types": ["ad"]}) == {
        "window": ["2024-01-01", "2025-12-31"],
        "advertiser_ids": ["7"],
        "report_types": ["ad"],
    }
    for conf, message in [
        ({"start_date": "2026-01-31", "end_date": "2026-01-01"}, "after end_date"),
        ({"start_date": "2026-1-1", "end_date": "2026-01-02"}, "YYYY-MM-DD"),
        ({"start_date": "2026-02-30", "end_date": "2026-03-02"}, "not a calendar date"),
        ({"start_date": "2026-01-01"}, "both"),
        ({"start": "2026-01-01"}, "unknown keys"),
        ({"start_date": "2015-12-31", "end_date": "2016-01-31"}, "between 2016-01-01"),
        ({"start_date": "2016-01-01", "end_date": "2016-01-31", "ids": []}, "unknown keys"),
        ({"start_date": "2016-01-01", "end_date": "2016-01-31", "report_types": []}, "non-empty"),
    ]:
        with pytest.raises(cfg.ConfigError, match=message):
            parse(conf)


def test_batches_share_the_app_rate_limit() -> None:
    config, _ = cfg.parse_config(valid_variables())
    config |= {"advertiser_ids": [str(i) for i in range(5)], "batch_size": 2}
    config |= {"parallel_batches": 3, "app_qps": 10.0, "app_qpm": 600}
    requests = fanout.build_requests(config, date(2026, 3, 7), date(2026, 3, 9))
    assert [r["payload"]["advertiser_ids"] for r in requests] == [["0", "1"], ["2", "3"], ["4"]]
    assert {r["payload"]["max_qps"] for r in requests} == {3.333}
    assert {r["payload"]["max_qpm"] for r in requests} == {200}
    assert all(r["payload"]["if_exists"] == "replace" for r in requests)
    assert all("access_token" not in r["payload"] for r in requests)
    # Fewer batches than parallel slots: each batch may use a larger share.
    assert fanout.rate_budget(10.0, 600, 4, 1) == (10.0, 600)
    # 4 in flight at 10 QPS: 2.5 each, held to 2 by the service (whole requests a second).
    assert fanout.rate_share_warning(10.0, 4) == (
        "TIKTOK_MAX_PARALLEL_BATCHES=4 at TIKTOK_APP_QPS=10: each batch is held to 2 requests "
        "a second (whole requests), 8 of the app's 10 used; 1, 2, 5, 10 would use all of it"
    )
    assert fanout.rate_share_warning(10.0, 5) is None
    assert fanout.rate_share_warning(2.0, 4) is None  # shares below 1 QPS are exact


def test_identity_token_only_for_remote_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.oauth2.id_token

    audiences: list[str] = []

    def fake_fetch(_request: Any, audience: str) -> str:
        audiences.append(audience)
        return "id-token"

    monkeypatch.setattr(google.oauth2.id_token, "fetch_id_token", fake_fetch)
    for local in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"):
        assert service.auth_headers(local) == {}
    headers = service.auth_headers("https://svc.a.run.app")
    assert headers == {"Authorization": "Bearer id-token"}
    assert audiences == ["https://svc.a.run.app"]


def test_service_answers_map_to_task_outcomes() -> None:
    item = {"advertiser_id": "1", "report_type": "ad", "destination_table": "T", "inserted_rows": 0}
    failed = {**item, "status": "error", "error": f"TikTok API error 40105 token {SECRET}"}
    body = {
        "status": "partial_success",
        "message": "",
        "request_id": "r1",
        "start_date": "2026-03-07",
        "end_date": "2026-03-09",
        "total_inserted_rows": 5,
        "results": [{**item, "inserted_rows": 5, "status": "success"}, failed],
        "errors_count": 1,
    }
    summary = service.handle_response(207, json.dumps(body), "batch 1/1", SECRET)
    assert summary["errors_count"] == 1 and summary["http_status"] == 207
    assert SECRET not in json.dumps(summary)

    all_failed = {**body, "status": "error", "results": [failed], "errors_count": 1}
    with pytest.raises(errors.ServiceUnavailable, match="1/ad"):
        service.handle_response(502, json.dumps(all_failed), "batch 1/1", SECRET)
    rejected = {
        "status": "error",
        "message": "invalid request",
        "errors": [{"field": "project_id", "message": "not a valid GCP project id"}],
    }
    with pytest.raises(errors.ServiceRejected, match="project_id: not a valid"):
        service.handle_response(400, json.dumps(rejected), "batch 1/1", SECRET)
    with pytest.raises(errors.ServiceRejected, match=r"roles/run\.invoker"):
        service.handle_response(403, "<html>Forbidden</html>", "batch 1/1", SECRET)
    for status in (429, 500, 503):
        with pytest.raises(errors.ServiceUnavailable):
            service.handle_response(status, "<html>busy</html>", "batch 1/1", SECRET)


def _answer(results: list[dict[str, Any]], errors_count: int, status: str = "Ok") -> str:
    return json.dumps(
        {
            "status": status,
            "message": "Extração concluída",
            "request_id": "r1",
            "start_date": "2026-03-07",
            "end_date": "2026-03-09",
            "total_inserted_rows": sum(item["inserted_rows"] for item in results),
            "results": results,
            "errors_count": errors_count,
        }
    )


def test_batches_are_judged_by_their_items_not_by_one_word() -> None:
    def item(advertiser: str, report_type: str, status: str = "success") -> dict[str, Any]:
        return {
            "advertiser_id": advertiser,
            "report_type": report_type,
            "destination_table": f"raw.{report_type}",
            "inserted_rows": 350 if status == "success" else 0,
            "status": status,
            **({"error": "TikTok API error 40001: no permission"} if status != "success" else {}),
        }

    payload = {"advertiser_ids": ["1", "2"], "report_types": ["campaign", "ad"]}
    every = [item(a, r) for a in ("1", "2") for r in ("campaign", "ad")]

    def judge(text: str, http_status: int = 200) -> dict[str, Any]:
        summary = service.handle_response(http_status, text, "batch 1/2", SECRET)
        summary["missing"] = results.missing_pairs(payload, summary["results"])
        return results.check_results([summary])

    # The service's contract: "Ok", every item success, errors_count 0 → the run passes.
    passed = judge(_answer(every, 0))
    assert passed["failures"] == [] and passed["total_inserted_rows"] == 4 * 350
    # Any other word with the same items passes too: the word is not what is judged.
    assert judge(_answer(every, 0, status="success"))["failures"] == []
    # A partial batch fails naming each failed pair.
    partial = [*every[:3], item("2", "ad", "error")]
    assert judge(_answer(partial, 1, "partial_success"), 207)["failures"] == [
        "2/ad: TikTok API error 40001: no permission"
    ]
    # A requested report the answer leaves out has not loaded, even under "Ok".
    assert judge(_answer(every[:3], 0))["failures"] == ["2/ad: missing from the service's answer"]
    # errors_count counting failures no item shows fails the batch too.
    assert judge(_answer(every, 2))["failures"] == [
        "batch 1/2: errors_count 2 but 0 failed report(s) listed (request_id r1)"
    ]
