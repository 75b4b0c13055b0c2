"""Validate an account locally: the service's extraction, written to CSV files under output/.

Fill CONFIG below (or pass flags, which win) and run:

    python run_local_csv.py --advertiser-ids 7012345678901234567 --start-date 2025-01-01

One CSV per advertiser and report type: <table>_<advertiser_id>_<YYYYMMDD>.csv (the date of
the run), e.g. TKT002_TIKTOK_ADS_CAMPAIGN_7012…_20261128.csv. Every report type the service
knows can be asked for by name (--report-types campaign_country,ad_hourly), custom ones too
(--custom-reports FILE, default TIKTOK_CUSTOM_REPORTS_FILE), and so can the account info and
entity lists (--report-types advertiser_info,campaigns,adgroups,ads: the objects as read
today, deleted and Promote ones included). --advertiser-ids all lists every advertiser the
token was granted (needs TIKTOK_APP_ID and TIKTOK_APP_SECRET) and skips closed ones. Honours TIKTOK_API_BASE_URL,
TIKTOK_QPS/QPM and the other service settings. Exit code 0 only when every report succeeded.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# First: it chooses the pool Arrow's C++ code allocates from, once, when pyarrow loads.
from config.allocators import tune_allocators

# isort: split
import pyarrow as pa
import pyarrow.csv as pacsv

from config.logging import register_secret
from config.settings import SettingsError, load_settings
from controller.entity_csv import write_entity_csvs
from controller.extraction import Extraction, ItemResult
from controller.pipeline import fill_currency, learn_currencies
from controller.reports import registry
from controller.reports.catalog import REPORT_TYPES, ReportSpec, arrow_schema
from controller.reports.custom import CustomReportError
from controller.reports.metrics import FAMILIES, FAMILY_NAMES, check_family_names
from controller.reports.registry import ENTITY_TYPES
from controller.settings import checked as checked_settings
from controller.tiktok.accounts import Account, DiscoveryError, discover
from controller.tiktok.factory import build_client
from controller.tiktok.rate_limiter import app_limiter

# Credentials and defaults; command-line flags override them.
CONFIG: dict[str, object] = {
    "access_token": os.environ.get("TIKTOK_ACCESS_TOKEN", ""),
    "advertiser_ids": [],  # e.g. ["7012345678901234567"]
    "report_types": list(REPORT_TYPES),
    "output_dir": "output",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump or traceback
        self.exit(2, f"{self.prog}: error: {message}\n")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _ids(text: str) -> list[str] | str:
    if text.strip().lower() == "all":
        return "all"
    ids = [part.strip() for part in text.split(",") if part.strip()]
    bad = [i for i in ids if not i.isdigit()]
    if not ids or bad:
        raise argparse.ArgumentTypeError(f"advertiser ids must be digits, got {text!r}")
    return ids


def _report_types(text: str) -> list[str]:
    types = [part.strip() for part in text.split(",") if part.strip()]
    if not types:
        raise argparse.ArgumentTypeError(f"no report type in {text!r}")
    return types


def _families(text: str) -> tuple[str, ...]:
    try:
        return check_family_names([part.strip() for part in text.split(",") if part.strip()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_EPILOG = (
    "Metric families (--metric-families; core is always asked for, the CSV keeps every "
    "column and leaves the others empty): "
    + "; ".join(f"{f.name}: {f.description} ({len(f.metrics)} metrics)" for f in FAMILIES.values())
    + ". Every report includes Promote campaigns (both campaign_system_origins) and deleted "
    "objects; a report TikTok finds too large (40067) is read in smaller requests, halving "
    "the days down to one, then the metrics. Environment: TIKTOK_API_BASE_URL, TIKTOK_QPS, "
    "TIKTOK_QPM, TIKTOK_CONCURRENCY, TIKTOK_METRIC_FAMILIES, DAYS_REPROCESS and the other "
    "service settings (README, Configuration)."
)


def parse_args(
    argv: list[str] | None, days_reprocess: int, custom_reports: str | None = None
) -> argparse.Namespace:
    parser = _Parser(prog="run_local_csv.py", description=__doc__.split("\n\n")[0], epilog=_EPILOG)
    parser.add_argument(
        "--custom-reports",
        default=custom_reports,
        help="JSON file of custom report definitions (default TIKTOK_CUSTOM_REPORTS_FILE)",
    )
    parser.add_argument(
        "--access-token",
        default=CONFIG["access_token"],
        help="TikTok access token (default: TIKTOK_ACCESS_TOKEN); never printed",
    )
    parser.add_argument(
        "--advertiser-ids",
        type=_ids,
        default=CONFIG["advertiser_ids"],
        help="comma-separated advertiser ids (digits), e.g. 7012345678901234567,70123456789012"
        "34568, or all: every account the app can reach (TIKTOK_APP_ID and TIKTOK_APP_SECRET)",
    )
    parser.add_argument(
        "--start-date",
        type=_day,
        help=f"first day YYYY-MM-DD, advertiser-local (default: end date - DAYS_REPROCESS + 1, "
        f"i.e. {days_reprocess} days)",
    )
    parser.add_argument(
        "--end-date", type=_day, help="last day YYYY-MM-DD, inclusive (default: yesterday, UTC)"
    )
    parser.add_argument(
        "--report-types",
        type=_report_types,
        default=CONFIG["report_types"],
        help=f"comma-separated report types: the seed tables {','.join(REPORT_TYPES)} (the default), "
        "the prebuilt audience, hourly and lifetime reports and custom ones (README)",
    )
    parser.add_argument(
        "--metric-families",
        type=_families,
        default=None,
        help=f"comma-separated metric families to ask for (default: TIKTOK_METRIC_FAMILIES, "
        f"else all: {','.join(FAMILY_NAMES)})",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(str(CONFIG["output_dir"])),
        help="folder of the CSV files, created if missing (default: output)",
    )
    args = parser.parse_args(argv)
    try:
        registry.load_custom_file(args.custom_reports)
    except CustomReportError as exc:
        parser.error(str(exc))
    unknown = [
        t for t in args.report_types if t not in registry.all_reports() and t not in ENTITY_TYPES
    ]
    if unknown:
        parser.error(
            f"argument --report-types: unknown report type(s) {unknown}; "
            f"choose from {', '.join((*registry.names(), *ENTITY_TYPES))}"
        )
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    args.end_date = args.end_date or yesterday
    args.start_date = args.start_date or args.end_date - timedelta(days=days_reprocess - 1)
    if not args.access_token:
        parser.error("no access token: pass --access-token or set TIKTOK_ACCESS_TOKEN")
    if not args.advertiser_ids:
        parser.error("no advertiser ids: pass --advertiser-ids or fill CONFIG")
    if args.start_date > args.end_date:
        parser.error(f"--start-date {args.start_date} is after --end-date {args.end_date}")
    return args


class CsvSink:
    """One CSV per advertiser and report, written to a temporary name and renamed on success.

    A failed report leaves no file behind: a half file would look like a complete account.
    """

    def __init__(
        self, directory: Path, run_day: date, currencies: dict[str, str] | None = None
    ) -> None:
        self.directory = directory
        # advertiser -> account currency, for reports TikTok serves without one (GMV Max)
        self.currencies = currencies or {}
        self.stamp = run_day.strftime("%Y%m%d")
        self._writers: dict[tuple[str, str], pacsv.CSVWriter] = {}
        self._lock = threading.Lock()

    def path(self, spec: ReportSpec, advertiser_id: str) -> Path:
        return self.directory / f"{spec.table}_{advertiser_id}_{self.stamp}.csv"

    def _writer(self, spec: ReportSpec, advertiser_id: str) -> pacsv.CSVWriter:
        key = (spec.report_type, advertiser_id)
        if key not in self._writers:
            partial = self.path(spec, advertiser_id).with_suffix(".csv.part")
            self._writers[key] = pacsv.CSVWriter(partial, arrow_schema(spec))
        return self._writers[key]

    def write(self, spec: ReportSpec, advertiser_id: str, table: pa.Table) -> None:
        table = fill_currency(table, self.currencies.get(advertiser_id))
        with self._lock:
            self._writer(spec, advertiser_id).write_table(table)

    def finish(self, result: ItemResult) -> Path | None:
        spec = registry.get(result.report_type)
        with self._lock:
            writer = self._writer(spec, result.advertiser_id)  # header-only file for no rows
            writer.close()
            partial = self.path(spec, result.advertiser_id).with_suffix(".csv.part")
            if not result.ok:
                partial.unlink(missing_ok=True)
                return None
            return partial.replace(self.path(spec, result.advertiser_id))


class Progress:
    """Live progress on a terminal (rich); plain lines when output is piped or logged."""

    def __init__(self, total_items: int, limiter_waits, planned_requests) -> None:
        self._live = sys.stdout.isatty()
        self._waits = limiter_waits
        self._planned = planned_requests
        self.requests = 0
        self.rows = 0
        self._lock = threading.Lock()
        if self._live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("reports"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
            )
            self._task = self._bar.add_task("", total=total_items)
            self._bar.start()

    def request_done(self, rows: int) -> None:
        with self._lock:
            self.requests += 1
            self.rows += rows
        if self._live:
            text = (
                f"requests {self.requests}/{self._planned()} · rows {self.rows} · "
                f"rate-limit waits {self._waits()}"
            )
            self._bar.update(self._task, description=text)

    def item_done(self, line: str) -> None:
        if self._live:
            self._bar.console.print(line)
            self._bar.advance(self._task)
        else:
            print(line, flush=True)

    def stop(self) -> None:
        if self._live:
            self._bar.stop()


def main(argv: list[str] | None = None) -> int:
    try:
        settings = checked_settings(load_settings())
    except SettingsError as exc:
        print(f"run_local_csv.py: error: {exc}", file=sys.stderr)
        return 2
    args = parse_args(argv, settings.days_reprocess, settings.tiktok_custom_reports_file)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    tune_allocators()  # a long extraction's peak memory must not grow with its length
    limiter = app_limiter(settings.tiktok_qps, settings.tiktok_qpm, settings.tiktok_rate_margin)
    client = build_client(settings, args.access_token, limiter)
    if args.advertiser_ids == "all":
        missing = settings.missing_app_credentials()
        if missing:
            print(f"run_local_csv.py: error: --advertiser-ids all needs {', '.join(missing)}")
            return 2
        register_secret(settings.tiktok_app_secret)
        try:
            accounts = discover(
                client, settings.tiktok_app_id or "", settings.tiktok_app_secret or ""
            )
        except DiscoveryError as exc:
            print(f"run_local_csv.py: error: {exc}", file=sys.stderr)
            return 1
        for account in accounts:
            if not account.active:
                print(f"skipped {account.advertiser_id} ({account.name}): {account.reason}")
        args.advertiser_ids = [a.advertiser_id for a in accounts if a.active]
    else:
        accounts = [Account(advertiser_id, None) for advertiser_id in args.advertiser_ids]
    entity_kinds = [t for t in args.report_types if t in ENTITY_TYPES]
    specs = [registry.get(name) for name in args.report_types if name not in ENTITY_TYPES]
    items = [(adv, spec) for adv in args.advertiser_ids for spec in specs]
    now = datetime.now(UTC)
    print(f"Period: {args.start_date} to {args.end_date}")
    print(f"Output folder: {args.output_dir}/")
    print(f"Advertisers: {len(args.advertiser_ids)} · reports: {', '.join(args.report_types)}")
    entity_results = write_entity_csvs(
        client, accounts, entity_kinds, args.output_dir, now, settings.tiktok_concurrency
    )
    for result in entity_results:
        print(f"[{result.advertiser_id}] {result.report_type}: {result.status} ({result.rows} rows)"
              + (f": {result.error}" if result.error else ""))  # fmt: skip
    currencies: dict[str, str] = {}
    learn_currencies(client, specs, args.advertiser_ids, currencies)
    sink = CsvSink(args.output_dir, now.date(), currencies)
    extraction: Extraction | None = None
    progress = Progress(
        len(items), lambda: limiter.waits, lambda: extraction.planned_requests if extraction else 0
    )

    def item_done(result: ItemResult) -> None:
        saved = sink.finish(result)
        if saved:
            said = "".join(f"; {warning}" for warning in result.warnings)
            progress.item_done(
                f"[{result.advertiser_id}] {result.report_type}: saved {saved} "
                f"({result.rows} rows){said}"
            )
        else:
            progress.item_done(
                f"[{result.advertiser_id}] {result.report_type}: FAILED: {result.error}"
            )

    extraction = Extraction(
        client,
        items,
        args.start_date,
        args.end_date,
        sink=sink.write,
        workers=settings.tiktok_concurrency,
        extracted_at=now,
        families=args.metric_families or settings.tiktok_metric_families,
        row_bound=settings.tiktok_chunk_row_bound,
        on_item_done=item_done,
        on_request_done=progress.request_done,
    )
    try:
        results = extraction.run()
    finally:
        progress.stop()
        client.close()
    return _summary(
        entity_results + results, progress.requests + sum(r.requests for r in entity_results)
    )


def _summary(results: list[ItemResult], requests: int) -> int:
    print()
    print(f"{'report type':<12} {'rows':>10}  status")
    for report_type in dict.fromkeys(r.report_type for r in results):
        mine = [r for r in results if r.report_type == report_type]
        failed = sum(not r.ok for r in mine)
        status = "success" if not failed else f"error ({failed} of {len(mine)} advertisers)"
        print(f"{report_type:<12} {sum(r.rows for r in mine):>10}  {status}")
    for warning in dict.fromkeys(w for r in results for w in r.warnings):
        print(f"warning: {warning}")
    total_rows = sum(r.rows for r in results)
    failed = sum(not r.ok for r in results)
    print(f"Total: {total_rows} rows, {requests} requests, {failed} failed reports")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
