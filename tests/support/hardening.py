"""Shared machinery of the hardening suite (tests/test_hardening_*.py).

Everything here drives real processes on 127.0.0.1: the TikTok simulator as a process
(``python -m tiktok_simulator``), the service as the Dockerfile's gunicorn command, and the
session's local-bigquery, optionally behind ``FaultProxy``: a standard-library HTTP proxy
that fails the BigQuery requests matching a method/path/body pattern (HTTP 500/503 or a
dropped connection) before they reach the server, so a failure is never silently retried
into success.

The access token of every scenario is ``SECRET_TOKEN``; each service records every response
body it sent, and ``assert_no_secret`` searches those, the service log and its temp dir.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from google.cloud import bigquery

from controller.reports.catalog import REPORTS, ReportSpec
from database.run_log import RUN_LOG_TABLE
from local_env.stack import ServiceProcess, SimulatorProcess
from tests.support.truth import by_key, truth_rows
from tests.support.warehouse import table_rows
from tiktok_simulator import World

SECRET_TOKEN = "tok-SECRET-4f3a9c1e7b2d48a6b0f5e9d3c8a1f702"
SECOND_TOKEN = "tok-SECRET-2-9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
UNKNOWN_TOKEN = "tok-SECRET-unknown-0c1d2e3f4a5b6c7d8e9f"  # never granted: TikTok answers 40105
SECRETS = (SECRET_TOKEN, SECOND_TOKEN, UNKNOWN_TOKEN)

WORLD_PARAMS: dict[str, Any] = {
    "seed": 11,
    "advertisers": 5,
    "campaigns_per_advertiser": 2,
    "adgroups_per_campaign": 2,
    "ads_per_adgroup": 2,
    "start": "2025-01-01",
    "end": "2026-12-31",
    "delivery_probability": 0.6,
    "deleted_fraction": 0.2,
}
START, END = date(2025, 6, 1), date(2025, 6, 30)  # 30 days: one chunk per report
ALL_TYPES = ("advertiser", "campaign", "adgroup", "ad")

_WORLD: World | None = None
_TRUTH: dict[tuple, list[dict]] = {}
COUNTERS: dict[str, int] = {}


def count(name: str, n: int = 1) -> None:
    """Tally what the suite did (faults injected, rows compared...); printed at the end."""
    COUNTERS[name] = COUNTERS.get(name, 0) + n


def world() -> World:
    global _WORLD
    if _WORLD is None:
        _WORLD = World(**WORLD_PARAMS)
    return _WORLD


# --------------------------------------------------------------------------- simulator


class Simulator:
    """The simulator as a process with the 5-advertiser world; controlled over /_sim/."""

    def __init__(self, log_path: Path, *extra: str) -> None:
        p = WORLD_PARAMS
        args = [
            "--seed", str(p["seed"]),
            "--advertisers", str(p["advertisers"]),
            "--campaigns", str(p["campaigns_per_advertiser"]),
            "--adgroups", str(p["adgroups_per_campaign"]),
            "--ads", str(p["ads_per_adgroup"]),
            "--start", p["start"],
            "--end", p["end"],
            "--delivery-probability", str(p["delivery_probability"]),
            "--deleted-fraction", str(p["deleted_fraction"]),
            "--token", SECRET_TOKEN,
            "--token", SECOND_TOKEN,
            *extra,
        ]  # fmt: skip
        self.process = SimulatorProcess(log_path, *args)
        self.base_url = self.process.base_url
        self.control_url = self.process.control_url
        described = self._get("/_sim/world")
        assert described == world().describe()  # the tests' ground truth is this world
        self.advertisers: list[str] = described["advertiser_ids"]

    def _get(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.control_url}{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def _post(self, path: str, body: Any) -> Any:
        response = requests.post(f"{self.control_url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._post("/_sim/reset", {})

    def faults(self, plan: dict[str, Any]) -> None:
        self._post("/_sim/faults", plan)

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self._post("/_sim/config", changes)

    def hold(self, match: dict[str, str], count: int = 1) -> dict[str, Any]:
        """The first ``count`` report calls matching ``match`` wait until ``release``."""
        return self._post("/_sim/hold", {"match": match, "count": count})

    def holds(self) -> dict[str, Any]:
        return self._get("/_sim/hold")

    def release(self) -> dict[str, Any]:
        return self._post("/_sim/release", {})

    def stats(self, log: bool = True) -> dict[str, Any]:
        return self._get("/_sim/stats", log=str(log).lower())

    def report_log(self) -> list[dict[str, Any]]:
        return [e for e in self.stats()["log"] if e["path"].endswith("/report/integrated/get/")]

    def stop(self) -> None:
        self.process.stop()


# --------------------------------------------------------------------------- service


class Service:
    """The gunicorn service (Dockerfile command) with its own log file and temp dir.

    Every response it sends is kept in ``bodies`` for the secret search.
    """

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.tmpdir = directory / "tmp"
        self.tmpdir.mkdir(exist_ok=True)
        self.log_path = directory / "service.log"
        self.bodies: list[str] = []
        self.seen_files: set[Path] = set()
        full_env = {
            "TMPDIR": str(self.tmpdir),
            "LOG_LEVEL": "INFO",
            "TIKTOK_QPS": "20",
            "TIKTOK_QPM": "1200",
            "BQ_LOCATION": "US",
            **env,
        }
        self.process = ServiceProcess(self.log_path, full_env)
        self.url = self.process.url
        self.pid = self.process.proc.pid

    def post(self, body: Any, *, timeout: float = 240, **kwargs: Any) -> requests.Response:
        if "data" not in kwargs and "json" not in kwargs:
            kwargs["json"] = body
        response = requests.post(f"{self.url}/run", timeout=timeout, **kwargs)
        self.bodies.append(response.text)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        response = requests.request(method, f"{self.url}{path}", **kwargs)
        self.bodies.append(response.text)
        return response

    def healthy(self) -> bool:
        try:
            response = requests.get(f"{self.url}/health", timeout=5)
        except requests.RequestException:
            return False
        return response.status_code == 200 and response.json()["status"] == "ok"

    def snapshot_files(self) -> None:
        """Remember the files the service has in its temp dir right now (runs delete them)."""
        self.seen_files.update(p for p in self.tmpdir.rglob("*") if p.is_file())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    lines.append(entry)
        return lines

    def stop(self) -> int | None:
        return self.process.stop()


def assert_no_secret(service: Service, *extra_texts: str) -> int:
    """No token in the service log, its response bodies, or any file it wrote; returns the
    number of places searched."""
    places: list[tuple[str, bytes]] = [("log", service.log_path.read_bytes())]
    places += [(f"response {i}", b.encode()) for i, b in enumerate(service.bodies)]
    places += [(f"text {i}", t.encode()) for i, t in enumerate(extra_texts)]
    files = {p for p in service.tmpdir.rglob("*") if p.is_file()} | service.seen_files
    for path in files:
        with contextlib.suppress(OSError):
            places.append((str(path), path.read_bytes()))
    for name, data in places:
        for secret in SECRETS:
            assert secret.encode() not in data, f"token found in {name}"
    count("secret_places_searched", len(places))
    print(f"\nHARDENING counters so far: {COUNTERS}")
    return len(places)


def watch_files(service: Service, stop: threading.Event) -> threading.Thread:
    """Keep reading the service's temp dir while a run writes Parquet spools there."""

    def loop() -> None:
        while not stop.wait(0.05):
            with contextlib.suppress(OSError):
                for path in service.tmpdir.rglob("*"):
                    if path.is_file() and path not in service.seen_files:
                        with contextlib.suppress(OSError):
                            data = path.read_bytes()
                            for secret in SECRETS:
                                assert secret.encode() not in data, f"token in {path}"
                        service.seen_files.add(path)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def running_stack(
    bq_endpoint: str, root: Path, *sim_args: str
) -> Iterator[tuple[Simulator, Service]]:
    """A simulator process and the gunicorn service pointed at it, stopped afterwards."""
    sim = Simulator(root / "simulator.log", *sim_args)
    service = Service(root / "service", service_env(sim, bq_endpoint))
    try:
        yield sim, service
    finally:
        service.stop()
        sim.stop()


def service_env(sim: Simulator, bq_endpoint: str, **env: Any) -> dict[str, str]:
    values = {
        "TIKTOK_API_BASE_URL": sim.base_url,
        "BIGQUERY_EMULATOR_HOST": bq_endpoint,
        "TIKTOK_READ_TIMEOUT": "2",
        "TIKTOK_CONNECT_TIMEOUT": "2",
        "TIKTOK_RETRY_MAX_SECONDS": "60",
    }
    values.update({k: str(v) for k, v in env.items()})
    return values


def payload(
    project: str,
    dataset: str,
    advertisers: Iterable[str],
    report_types: Iterable[str] = ALL_TYPES,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "access_token": SECRET_TOKEN,
        "advertiser_ids": list(advertisers),
        "project_id": project,
        "dataset_id": dataset,
        "if_exists": "replace",
        "report_types": list(report_types),
        "start_date": START.isoformat(),
        "end_date": END.isoformat(),
    }
    body.update(extra)
    return body


# --------------------------------------------------------------------------- BigQuery


def table_names(client: bigquery.Client, dataset: str) -> list[str]:
    return sorted(t.table_id for t in client.list_tables(dataset))


def staging_tables(client: bigquery.Client, dataset: str) -> list[str]:
    return [name for name in table_names(client, dataset) if "__staging_" in name]


def snapshot(client: bigquery.Client, dataset: str) -> dict[str, list[str]]:
    """Every data table of the dataset and its rows (as sorted strings): 'exactly as it was'.

    The run log (TKT000) is left out: it is meant to grow with every run, failed ones too.
    """
    return {
        name: sorted(repr(sorted(row.items())) for row in table_rows(client, dataset, name))
        for name in table_names(client, dataset)
        if name != RUN_LOG_TABLE
    }


def duplicates(client: bigquery.Client, dataset: str, spec: ReportSpec) -> int:
    sql = (
        f"SELECT COUNT(*) FROM (SELECT _advertiser_id, {spec.id_dimension}, stat_time_day, "
        f"COUNT(*) AS n FROM `{client.project}.{dataset}.{spec.table}` GROUP BY 1, 2, 3 "
        "HAVING n > 1)"
    )
    return next(iter(client.query(sql, job_retry=None).result(timeout=60)))[0]


def expected_rows(spec: ReportSpec, advertisers: Iterable[str], start=START, end=END) -> list[dict]:
    rows: list[dict] = []
    for advertiser in advertisers:
        cache_key = (spec.report_type, advertiser, start, end)
        if cache_key not in _TRUTH:
            _TRUTH[cache_key] = truth_rows(world(), spec, advertiser, start, end)
        rows += _TRUTH[cache_key]
    return rows


def assert_tables_hold(
    client: bigquery.Client,
    dataset: str,
    advertisers: Iterable[str],
    report_types: Iterable[str] = ALL_TYPES,
    start: date = START,
    end: date = END,
) -> int:
    """Each table holds exactly the ground truth of ``advertisers`` (no more, no fewer, no
    duplicates, every value equal); returns the number of rows compared."""
    advertisers = list(advertisers)
    compared = 0
    for name in report_types:
        spec = REPORTS[name]
        loaded = table_rows(client, dataset, spec.table)
        for row in loaded:
            assert row.pop("_extracted_at").tzinfo is not None
        dup = duplicates(client, dataset, spec)
        count("duplicate_keys_found", dup)
        assert dup == 0, f"{spec.table}: {dup} duplicated keys"
        expected = expected_rows(spec, advertisers, start, end)
        got, want = by_key(spec, loaded), by_key(spec, expected)
        assert got.keys() == want.keys(), (
            f"{spec.table}: {len(got.keys() - want.keys())} unexpected rows, "
            f"{len(want.keys() - got.keys())} missing rows"
        )
        assert got == want, f"{spec.table}: values differ from the ground truth"
        compared += len(loaded)
    count("rows_compared", compared)
    return compared


def results_by_item(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["advertiser_id"], r["report_type"]): r for r in body["results"]}


# --------------------------------------------------------------------------- fault proxy


@dataclass
class Rule:
    """Fail requests whose method, path and body match (regular expressions, searched)."""

    method: str = ".*"
    path: str = ".*"
    body: str | None = None
    action: str = "503"  # "500", "503", "drop" (reset the connection, no response)
    times: int | None = None  # None: every matching request, for as long as the rule is set
    hits: int = 0

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if not re.fullmatch(self.method, method) or not re.search(self.path, path):
            return False
        return self.body is None or re.search(self.body.encode(), body) is not None


@dataclass
class ProxyLog:
    method: str
    path: str
    failed: str | None


_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        proxy = self.server.proxy
        rule = proxy.match(self.command, self.path, body)
        proxy.record(ProxyLog(self.command, self.path, rule.action if rule else None))
        if rule is not None:
            if rule.action == "drop":
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            status = int(rule.action)
            reason = "INTERNAL" if status == 500 else "UNAVAILABLE"
            payload = json.dumps(
                {
                    "error": {
                        "code": status,
                        "message": f"injected by the test proxy ({status})",
                        "status": reason,
                        "errors": [{"reason": "backendError", "message": "injected"}],
                    }
                }
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
        except OSError:
            self.close_connection = True
            return
        finally:
            upstream.close()
        self.send_response(reply.status, reply.reason)
        for name, value in reply.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _relay


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


@dataclass
class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream`` (local-bigquery's endpoint)."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    log: list[ProxyLog] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self._lock = threading.Lock()
        self._server = _ProxyServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def match(self, method: str, path: str, body: bytes) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, body):
                    rule.hits += 1
                    return rule
        return None

    def record(self, entry: ProxyLog) -> None:
        with self._lock:
            self.log.append(entry)

    @contextlib.contextmanager
    def failing(self, *rules: Rule) -> Iterator[list[Rule]]:
        with self._lock:
            for rule in rules:
                rule.hits = 0
            self.rules = list(rules)
            self.log.clear()
        try:
            yield list(rules)
        finally:
            with self._lock:
                self.rules = []

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")
