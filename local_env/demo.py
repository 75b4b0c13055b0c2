"""``make demo``: the main job end to end on local defaults.

Starts the TikTok simulator, local-bigquery (data kept under .local/bigquery) and the service
with the Dockerfile's gunicorn command, POSTs sample_request.json, prints the response and a
row count per table read back from BigQuery, then stops what it started (unless
``--keep-running``, which leaves the stack up for curl until Ctrl-C).

``--all`` runs the same request with ``"advertiser_ids": "all"`` instead (the service gets the
simulator's app credentials, discovers three advertisers, skips the closed one with its
reason) and loads the account info and entity history tables before the reports.

``--all-reports`` also loads every prebuilt report (audience, hourly, lifetime, the creatives
of ``ad_creative``, GMV Max) and the custom reports of ``local_env/custom_reports.example.json``
over the same window, and lists every report type, its table and its row count. The simulated
world has an Upgraded Smart+ campaign at the first advertiser, so TKT043 holds more rows
(creatives) than TKT004 (ads), and gives the advertisers TikTok Shop stores
(``--gmv-max-stores``), so the GMV Max tables (TKT050-052) have rows.

Then ``POST /views`` (the analysts' layer: README "Analysts' layer"; the run already made them,
so every view answers ``unchanged``) and a cross-platform query: spend per account from
``tiktok_ads_reporting.account_report``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

import requests

from controller.accounts_pipeline import destination
from controller.reports import registry
from database.bigquery import make_client
from local_env.bigquery_emulator import LocalBigQuery
from local_env.stack import ROOT, ServiceProcess, SimulatorProcess, free_port, port_is_free

STATE = ROOT / ".local"
# The first advertiser (and the third, with --all) also runs an Upgraded Smart+ campaign, whose
# ads of 3 creatives each TKT004 holds as ads and TKT043 (ad_creative) as creatives.
SMART_PLUS = ("--smart-plus-campaigns", "1", "--creatives", "3")
SIMULATOR_ARGS = ("--seed", "42", "--advertisers", "2", "--token", "sim-token", *SMART_PLUS)
# --all: a third advertiser (seeded closed) and the simulator's default app credentials.
ALL_SIMULATOR_ARGS = ("--seed", "42", "--advertisers", "3", "--token", "sim-token", *SMART_PLUS)
# --all-reports: TikTok Shop stores with GMV Max campaigns at the advertisers (TKT050-052).
GMV_MAX_SIMULATOR_ARGS = ("--gmv-max-stores", "1")
APP_CREDENTIALS = {"TIKTOK_APP_ID": "1234567890", "TIKTOK_APP_SECRET": "sim-app-secret"}
ENTITY_TYPES = ["advertiser_info", "campaigns", "adgroups", "ads"]
CUSTOM_REPORTS = ROOT / "local_env" / "custom_reports.example.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up for curl")
    parser.add_argument("--port", type=int, default=8080, help="service port (default 8080)")
    parser.add_argument(
        "--all",
        action="store_true",
        help='"advertiser_ids": "all" (discovery) and the account/entity tables too',
    )
    parser.add_argument(
        "--all-reports",
        action="store_true",
        help="also load every prebuilt and the example custom report types",
    )
    args = parser.parse_args(argv)
    payload = json.loads((ROOT / "sample_request.json").read_text())
    if args.all_reports:  # the world has Shop stores: GMV Max for them, as the daily DAG asks
        payload["with_gmv_max"] = True
    if args.all:
        payload["advertiser_ids"] = "all"
        payload["report_types"] = ENTITY_TYPES + payload["report_types"]
    logs = STATE / "logs"
    print("Starting the TikTok simulator, local BigQuery and the service (gunicorn)…")
    simulator = SimulatorProcess(
        logs / "simulator.log",
        *(ALL_SIMULATOR_ARGS if args.all else SIMULATOR_ARGS),
        *(GMV_MAX_SIMULATOR_ARGS if args.all_reports else ()),
    )
    bigquery = LocalBigQuery(payload["project_id"], STATE / "bigquery").start()
    service = None
    try:
        service = ServiceProcess(
            logs / "service.log",
            {
                "TIKTOK_API_BASE_URL": simulator.base_url,
                "BIGQUERY_EMULATOR_HOST": bigquery.endpoint,
                **(APP_CREDENTIALS if args.all else {}),
                **({"TIKTOK_CUSTOM_REPORTS_FILE": str(CUSTOM_REPORTS)} if args.all_reports else {}),
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
        ok = response.status_code == 200
        ok = make_views(service.url, payload, bigquery) and ok
        if args.all_reports:
            ok = run_all_reports(service.url, payload, bigquery) and ok
        if args.keep_running:
            print_curl(service.url)
            stop = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # sigwait needs them blocked
            signal.sigwait(stop)
        return 0 if ok else 1
    finally:
        if service:
            service.stop()
        bigquery.stop()
        simulator.stop()


def print_table_counts(payload: dict, bigquery: LocalBigQuery) -> None:
    client = make_client(payload["project_id"], location="US", emulator_host=bigquery.endpoint)
    dataset = payload.get("dataset_id", "raw")
    print(f"\nRows in BigQuery ({payload['project_id']}.{dataset}):")
    for name in payload.get("report_types", registry.default_report_types()):
        if name in ENTITY_TYPES:
            table = destination(name)
            query = (
                f"SELECT COUNT(*) AS n, COUNT(DISTINCT _advertiser_id) AS advertisers "
                f"FROM `{payload['project_id']}.{dataset}.{table}`"
            )
            row = next(iter(client.query(query).result(timeout=60)))
            print(f"  {table:<36} {row.n:>6} rows  {row.advertisers} advertisers")
            continue
        table = registry.get(name).table
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


def run_all_reports(url: str, payload: dict, bigquery: LocalBigQuery) -> bool:
    """POST every prebuilt and custom report type, then list type, table and rows of each."""
    registry.load_custom_file(CUSTOM_REPORTS)  # the names the service loaded from the file
    seeds = set(registry.default_report_types())
    others = [name for name in registry.names() if name not in seeds]
    print(f"\nPOST {url}/run with the {len(others)} other report types (same window)")
    response = requests.post(f"{url}/run", json={**payload, "report_types": others}, timeout=900)
    body = response.json()
    print(
        f"HTTP {response.status_code}: {body.get('message')} "
        f"(errors_count {body.get('errors_count')})"
    )
    for item in body.get("results", []):
        if item.get("status") != "success":
            print(f"  FAILED {item['advertiser_id']} {item['report_type']}: {item.get('error')}")
    client = make_client(payload["project_id"], location="US", emulator_host=bigquery.endpoint)
    dataset = payload.get("dataset_id", "raw")
    print(f"\nEvery report type ({payload['project_id']}.{dataset}):")
    print(f"  {'report type':<24} {'table':<42} {'rows':>7}  kind")
    for name, spec in registry.all_reports().items():
        query = f"SELECT COUNT(*) FROM `{payload['project_id']}.{dataset}.{spec.table}`"
        rows = next(iter(client.query(query).result(timeout=60)))[0]
        kind = f"{spec.tiktok_report_type} {spec.granularity}"
        if spec.breakdowns:
            kind += " by " + "+".join(spec.breakdowns)
        custom = "  (custom)" if name in registry.custom() else ""
        print(f"  {name:<24} {spec.table:<42} {rows:>7}  {kind}{custom}")
    client.close()
    return response.status_code == 200


def make_views(url: str, payload: dict, bigquery: LocalBigQuery) -> bool:
    """POST /views, then spend per account from the cross-platform account_report view."""
    body = {"project_id": payload["project_id"], "dataset_id": payload.get("dataset_id", "raw")}
    print(f"\nPOST {url}/views")
    response = requests.post(f"{url}/views", json=body, timeout=300)
    if response.status_code != 200:
        print(f"HTTP {response.status_code}: {response.text}")
        return False
    for view in response.json()["views"]:
        reason = f"  ({view['reason']})" if view["reason"] else ""
        print(f"  {view['dataset_id']}.{view['view']:<26} {view['status']}{reason}")
    client = make_client(payload["project_id"], location="US", emulator_host=bigquery.endpoint)
    query = (
        "SELECT platform, account_id, account_name, currency, COUNT(*) AS days, "
        "ROUND(SUM(spend), 2) AS total_spend, "
        "ROUND(SUM(conversions_value), 2) AS total_conversions_value "
        f"FROM `{payload['project_id']}.tiktok_ads_reporting.account_report` "
        "GROUP BY 1, 2, 3, 4 ORDER BY total_spend DESC"
    )
    print("\nSpend per account (tiktok_ads_reporting.account_report):")
    for row in client.query(query).result(timeout=60):
        print(
            f"  {row.platform}  {row.account_id}  {row.account_name or '-':<24} "
            f"{row.days:>3} days  spend {row.total_spend} {row.currency}  "
            f"conversions_value {row.total_conversions_value}"
        )
    client.close()
    return True


def print_curl(url: str) -> None:
    print(
        "\nThe stack is up. Try:\n"
        f"  curl -sS -X POST {url}/run -H 'Content-Type: application/json' -d @sample_request.json\n"
        f"  curl -sS {url}/health\n"
        "Ctrl-C stops everything."
    )


if __name__ == "__main__":
    sys.exit(main())
