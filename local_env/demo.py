"""``make demo``: the main job end to end on local defaults.

Starts the TikTok simulator, local-bigquery (data kept under .local/bigquery) and the service
with the Dockerfile's gunicorn command, POSTs sample_request.json, prints the response and a
row count per table read back from BigQuery, then stops what it started (unless
``--keep-running``, which leaves the stack up for curl until Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

import requests

from controller.catalog import REPORTS
from database.bigquery import make_client
from local_env.bigquery_emulator import LocalBigQuery
from local_env.stack import ROOT, ServiceProcess, SimulatorProcess, free_port, port_is_free

STATE = ROOT / ".local"
SIMULATOR_ARGS = ("--seed", "42", "--advertisers", "2", "--token", "sim-token")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up for curl")
    parser.add_argument("--port", type=int, default=8080, help="service port (default 8080)")
    args = parser.parse_args(argv)
    payload = json.loads((ROOT / "sample_request.json").read_text())
    logs = STATE / "logs"
    print("Starting the TikTok simulator, local BigQuery and the service (gunicorn)…")
    simulator = SimulatorProcess(logs / "simulator.log", *SIMULATOR_ARGS)
    bigquery = LocalBigQuery(payload["project_id"], STATE / "bigquery").start()
    service = None
    try:
        service = ServiceProcess(
            logs / "service.log",
            {
                "TIKTOK_API_BASE_URL": simulator.base_url,
                "BIGQUERY_EMULATOR_HOST": bigquery.endpoint,
            },
            port=args.port if port_is_free(args.port) else free_port(),
        )
        print(f"  simulator  {simulator.base_url}")
        print(f"  bigquery   {bigquery.endpoint}  (data in .local/bigquery)")
        print(f"  service    {service.url}  (logs in {logs})")
        print(f"\nPOST {service.url}/run with sample_request.json")
        response = requests.post(f"{service.url}/run", json=payload, timeout=900)
        body = response.json()
        print(f"HTTP {response.status_code}")
        print(json.dumps(body, indent=2))
        print_table_counts(payload, bigquery)
        if args.keep_running:
            print_curl(service.url)
            stop = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # sigwait needs them blocked
            signal.sigwait(stop)
        return 0 if response.status_code == 200 else 1
    finally:
        if service:
            service.stop()
        bigquery.stop()
        simulator.stop()


def print_table_counts(payload: dict, bigquery: LocalBigQuery) -> None:
    client = make_client(payload["project_id"], location="US", emulator_host=bigquery.endpoint)
    dataset = payload.get("dataset_id", "raw")
    print(f"\nRows in BigQuery ({payload['project_id']}.{dataset}):")
    for name in payload.get("report_types", list(REPORTS)):
        table = REPORTS[name].table
        query = (
            f"SELECT COUNT(*) AS n_rows, COUNT(DISTINCT _advertiser_id) AS advertisers, "
            f"MIN(date) AS first_day, MAX(date) AS last_day, ROUND(SUM(spend), 2) AS spend "
            f"FROM `{payload['project_id']}.{dataset}.{table}`"
        )
        row = next(iter(client.query(query).result(timeout=60)))
        print(
            f"  {table:<30} {row.n_rows:>6} rows  {row.advertisers} advertisers  "
            f"{row.first_day}..{row.last_day}  spend {row.spend}"
        )
    client.close()


def print_curl(url: str) -> None:
    print(
        "\nThe stack is up. Try:\n"
        f"  curl -sS -X POST {url}/run -H 'Content-Type: application/json' -d @sample_request.json\n"
        f"  curl -sS {url}/health\n"
        "Ctrl-C stops everything."
    )


if __name__ == "__main__":
    sys.exit(main())
