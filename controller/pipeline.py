"""One /run: extract every (advertiser, report type) from TikTok and load it into BigQuery.

The composition point of the service: the TikTok client and the extraction know nothing of
BigQuery, the warehouse knows nothing of TikTok, and this module wires them. Per table the
rows of all advertisers stream into one local Parquet file and then into ONE load job and
ONE transaction, so a run costs the same number of BigQuery jobs whatever the number of
advertisers. Only advertisers whose report came back complete are written (or, with
``replace``, swapped in); a failed one keeps its previous rows.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from config.settings import Settings
from config.version import SERVICE_VERSION
from controller import reconciliation
from controller.api.models import (
    RUN_FAILED,
    RUN_OK,
    RUN_PARTIAL,
    ItemOutcome,
    ReconciliationDifference,
    RunLogOutcome,
    RunRequest,
    RunResponse,
    RunStatus,
    SkippedAdvertiser,
)
from controller.extraction import Extraction, ItemResult
from controller.reports import registry
from controller.reports.catalog import ReportSpec, arrow_schema
from controller.reports.gmv_max import GMV_MAX_REPORTS
from controller.tiktok.accounts import Account, read_info
from controller.tiktok.client import TikTokClient, TikTokError
from controller.tiktok.factory import build_client, request_concurrency, request_limiter
from controller.tiktok.gmv_max import (
    Discovered,
    discover_stores,
    refuses_the_account,
    tt_shop_spend,
)
from controller.views import refresh_after_run
from database.bigquery import BigQueryWarehouse, TableDefinition, WarehouseError, make_client
from database.run_log import RUN_LOG_TABLE, RunLogRow, ensure_run_log, write_run_log

log = logging.getLogger(__name__)


def table_definition(spec: ReportSpec) -> TableDefinition:
    return TableDefinition(
        name=spec.table,
        schema=arrow_schema(spec),
        partition_field="date",
        clustering_fields=("_advertiser_id", spec.id_dimension),
        key_field="_advertiser_id",
    )


def replace_window(spec: ReportSpec, start: date, end: date) -> dict[str, date]:
    """The ``date`` range ``replace`` swaps per advertiser: the run's window for daily and
    hourly reports; every date for a lifetime report, replaced whole on each run."""
    if spec.lifetime:
        return {"start": date.min, "end": date.max}
    return {"start": start, "end": end}


def warehouse_for(settings: Settings, project_id: str, dataset_id: str) -> BigQueryWarehouse:
    """The dataset's warehouse as the settings configure it (one place for every route)."""
    client = make_client(
        project_id, location=settings.bq_location, emulator_host=settings.bigquery_emulator_host
    )
    return BigQueryWarehouse(
        client,
        dataset_id,
        location=settings.bq_location,
        commit_retries=settings.bq_commit_retries,
    )


def fill_currency(table: pa.Table, currency: str | None) -> pa.Table:
    """The account's currency where a report row has none (TikTok's ``-`` loads as null)."""
    if currency is None or "currency" not in table.column_names:
        return table
    column = table["currency"]
    if column.null_count == 0:
        return table
    index = table.column_names.index("currency")
    return table.set_column(index, table.field(index), pc.fill_null(column, currency))


def learn_currencies(
    client: TikTokClient,
    specs: list[ReportSpec],
    advertiser_ids: list[str],
    currencies: dict[str, str],
    *,
    deadline: float | None = None,
) -> None:
    """Add to ``currencies`` the account currency of the advertisers of reports TikTok serves
    without one (GMV Max), from the account info (one request per 100 advertisers), unless
    already known. An account whose info is unreadable keeps a null currency; its report
    still loads."""
    if not any("currency" in spec.filled for spec in specs):
        return
    missing = [a for a in advertiser_ids if a not in currencies]
    if not missing:
        return
    accounts = [Account(advertiser_id, None) for advertiser_id in missing]
    read_info(client, accounts, deadline=deadline)
    for account in accounts:
        currency = (account.info or {}).get("currency")
        if currency:
            currencies[account.advertiser_id] = str(currency)


class EarlyCommits:
    """Commit a report as soon as every advertiser of it succeeded, while the run goes on.

    A run's requests used to stop at the end of extraction while its reports were committed
    one after the other: in a backfill unit that is rate budget left idle. A report whose items
    all succeeded has no request left in flight, so its file is complete and its commit can
    run beside the extraction of the others (one commit at a time, on one thread). A report
    with a failed item waits for the end of the run as before: a request of a failed item may
    still be writing to its file.
    """

    def __init__(
        self,
        specs: list[ReportSpec],
        items: list[tuple[str, ReportSpec]],
        commit: Callable[[ReportSpec, list[ItemResult]], None],
    ) -> None:
        self._specs = {spec.report_type: spec for spec in specs}
        self._left = Counter(spec.report_type for _, spec in items)
        self._done: dict[str, list[ItemResult]] = {name: [] for name in self._specs}
        self._commit = commit
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="commit")
        self._futures: dict[str, Future[None]] = {}
        self._closed = False

    def item_done(self, result: ItemResult) -> None:
        log_item(result)
        name = result.report_type
        with self._lock:
            self._done[name].append(result)
            self._left[name] -= 1
            if self._closed or self._left[name] or not all(r.ok for r in self._done[name]):
                return
            spec, results = self._specs[name], list(self._done[name])
            self._futures[name] = self._pool.submit(self._commit, spec, results)

    def wait(self) -> set[str]:
        """The report types committed (or whose commit failed and marked them) so far."""
        with self._lock:
            self._closed = True
            futures = dict(self._futures)
        self._pool.shutdown(wait=True)
        for future in futures.values():
            future.result()  # _commit reports its own failures; anything else is a bug
        return set(futures)


def log_item(result: ItemResult) -> None:
    log.info(
        "report extracted" if result.ok else "report failed",
        extra={
            "fields": {
                "advertiser_id": result.advertiser_id,
                "report_type": result.report_type,
                "rows": result.rows,
                "requests": result.requests,
                "status": result.status,
            }
        },
    )


@dataclass
class RunPlan:
    request: RunRequest
    access_token: str
    start: date
    end: date
    request_id: str


class Run:
    """Executes one validated /run request."""

    def __init__(
        self,
        settings: Settings,
        plan: RunPlan,
        *,
        warehouse_factory: Callable[[str, str], BigQueryWarehouse] | None = None,
        stop_requested: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self._warehouse_factory = warehouse_factory or self._default_warehouse
        self._stop_requested = stop_requested
        self._started_at = datetime.now(UTC)
        self._finished_at: dict[str, datetime] = {}  # report type -> when its commit ended
        # advertiser id -> the account's currency (from account info, when this run read it):
        # fills report rows TikTok sent without one.
        self.currencies: dict[str, str] = {}
        # Whether this run created a table or added a column: the views are made again then.
        self.tables_changed = False

    def _read_tt_shop(
        self,
        client: TikTokClient,
        results: list[ItemResult],
        reconciler: reconciliation.Reconciler,
        deadline: float,
    ) -> None:
        """TikTok's TT_SHOP spend per GMV Max campaign and day, the cross-check of TKT050,
        for each advertiser whose ``gmv_max_campaign`` read succeeded with rows or stores.
        If TikTok does not serve it (it may retire TT_SHOP), the item says so and loads."""
        for result in results:
            if result.report_type != reconciliation.GMV_MAX or not result.ok:
                continue
            if result.requests == 0:  # no store: nothing to cross-check
                continue
            try:
                spend, requests = tt_shop_spend(
                    client, result.advertiser_id, self.plan.start, self.plan.end, deadline=deadline
                )
            except (TikTokError, TimeoutError) as exc:
                result.warnings.append(f"TT_SHOP cross-check not read: {exc}")
                continue
            reconciler.add_tt_shop(result.advertiser_id, spend)
            log.info(
                "TT_SHOP spend read for the GMV Max cross-check",
                extra={"fields": {"advertiser_id": result.advertiser_id, "requests": requests}},
            )

    def _add_gmv_max(
        self,
        client: TikTokClient,
        specs: list[ReportSpec],
        items: list[tuple[str, ReportSpec]],
        deadline: float,
    ) -> Discovered:
        """Add the GMV Max reports to a run of the default set (or ``with_gmv_max``), unless
        the deployment turned them off (``TIKTOK_GMV_MAX=off``): for the advertisers with a
        usable TikTok Shop store, and those whose store list TikTok refuses (40001, a lost
        permission: reported like a revoked account). The others get no GMV Max item (the
        store list costs one request of the app's tier per advertiser). Returns what was discovered."""
        request = self.plan.request
        if not (self.settings.tiktok_gmv_max and request.gmv_max_added()):
            return {}
        added = [s for s in GMV_MAX_REPORTS.values() if s.report_type not in request.report_types]
        if not added:
            return {}
        stores = discover_stores(
            client,
            list(request.advertiser_ids),
            workers=self.settings.tiktok_concurrency,
            deadline=deadline,
        )
        # A store to read, or a refusal of GMV Max itself (its permission revoked, a fault
        # that outlived its retries): its GMV Max items then fail with TikTok's words, like a
        # revoked account's reports, so a Shop whose spend could not be asked for is never
        # silent. A refusal of the advertiser as a whole is told by its other reports.
        shops = [
            adv
            for adv in request.advertiser_ids
            if (found := stores.get(adv))
            and not (isinstance(found, TikTokError) and refuses_the_account(found))
        ]
        if shops:
            specs += added
            items += [(adv, spec) for spec in added for adv in shops]
        return stores

    def _default_warehouse(self, project_id: str, dataset_id: str) -> BigQueryWarehouse:
        return warehouse_for(self.settings, project_id, dataset_id)

    def execute(self) -> RunResponse:
        request, settings = self.plan.request, self.settings
        started = time.monotonic()
        deadline = started + settings.run_deadline_seconds
        # Keep time to commit what was extracted: extraction stops starting work before that.
        extraction_deadline = deadline - min(60.0, settings.run_deadline_seconds * 0.25)
        specs = [registry.get(name) for name in request.report_types]
        items = [(adv, spec) for spec in specs for adv in request.advertiser_ids]
        limiter = request_limiter(settings, request.max_qps, request.max_qpm)
        concurrency = request_concurrency(settings, limiter)
        client = build_client(settings, self.plan.access_token, limiter, concurrency)
        stores = self._add_gmv_max(client, specs, items, extraction_deadline)
        results: list[ItemResult]
        self._started_at = datetime.now(UTC)
        warehouse: BigQueryWarehouse | None = None
        try:
            warehouse = self._warehouse_factory(request.project_id, request.dataset_id)
            # A BigQuery outage must not hold the request past its deadline: retries stop there.
            warehouse.deadline = deadline
            warehouse.ensure_dataset()
            for spec in specs:
                self.tables_changed |= warehouse.ensure_table(table_definition(spec))
        except Exception as exc:  # no credentials, no such project, BigQuery down...
            reason = (
                str(exc) if isinstance(exc, WarehouseError) else f"BigQuery setup failed: {exc}"
            )
            log.error("warehouse setup failed", extra={"fields": {"error": reason}})
            client.close()
            results = [
                ItemResult(adv, spec.report_type, "error", error=reason) for adv, spec in items
            ]
            return self._finish(warehouse, results, {}, started)

        learn_currencies(
            client, specs, request.advertiser_ids, self.currencies, deadline=extraction_deadline
        )
        inserted: dict[tuple[str, str], int] = {}
        reconciler = reconciliation.Reconciler()  # day sums of the streamed pages, per level
        with tempfile.TemporaryDirectory(prefix="tiktok-run-") as workdir:
            writers = {
                spec.report_type: warehouse.open_writer(table_definition(spec), Path(workdir))
                for spec in specs
            }

            def sink(spec: ReportSpec, advertiser_id: str, table: pa.Table) -> None:
                table = fill_currency(table, self.currencies.get(advertiser_id))
                writers[spec.report_type].write(table)
                reconciler.add(spec.report_type, advertiser_id, table)

            def commit(spec: ReportSpec, spec_results: list[ItemResult]) -> None:
                path = writers[spec.report_type].close()
                self._commit(warehouse, spec, path, spec_results, inserted)
                self._finished_at[spec.report_type] = datetime.now(UTC)

            early = EarlyCommits(specs, items, commit)
            extraction = Extraction(
                client,
                items,
                self.plan.start,
                self.plan.end,
                sink=sink,
                workers=concurrency,
                extracted_at=datetime.now(UTC),
                deadline=extraction_deadline,
                families=request.metric_families or settings.tiktok_metric_families,
                row_bound=settings.tiktok_chunk_row_bound,
                on_item_done=early.item_done,
                stop_requested=self._stop_requested,
                stores=stores,
            )
            try:
                results = extraction.run()
                self._read_tt_shop(client, results, reconciler, extraction_deadline)
            finally:
                client.close()
                committed = early.wait()
            for spec in specs:
                if spec.report_type not in committed:
                    commit(spec, [r for r in results if r.report_type == spec.report_type])
        differences = reconciler.differences(inserted)  # committed reports only
        reconciliation.report(differences, results)
        response = self._finish(warehouse, results, inserted, started, differences)
        if self.tables_changed:
            refresh_after_run(
                settings,
                self._warehouse_factory,
                request.project_id,
                request.dataset_id,
                deadline=deadline,
            )
        return response

    def _finish(
        self,
        warehouse: BigQueryWarehouse | None,
        results: list[ItemResult],
        inserted: dict[tuple[str, str], int],
        started: float,
        differences: list[reconciliation.Difference] | None = None,
    ) -> RunResponse:
        """The response, once the run log has its rows (or the reason it has not)."""
        differences = differences or []
        response = self._response(results, inserted, started)
        response.reconciliation = [ReconciliationDifference(**d.as_dict()) for d in differences]
        response.run_log = self._write_run_log(warehouse, results, response, differences)
        return response

    def _write_run_log(
        self,
        warehouse: BigQueryWarehouse | None,
        results: list[ItemResult],
        response: RunResponse,
        differences: list[reconciliation.Difference],
    ) -> RunLogOutcome:
        """Append one row per item to the run log; a failure is reported, never raised."""
        plan, now = self.plan, datetime.now(UTC)
        requests = {(r.advertiser_id, r.report_type): r.requests for r in results}
        rows = [
            RunLogRow(
                request_id=plan.request_id,
                advertiser_id=item.advertiser_id,
                report_type=item.report_type,
                destination_table=item.destination_table,
                start_date=plan.start,
                end_date=plan.end,
                if_exists=plan.request.if_exists,
                status=item.status,
                rows=item.inserted_rows,
                requests=requests.get((item.advertiser_id, item.report_type), 0),
                rate_budget=item.rate_budget,
                error=item.error,
                warnings=list(item.warnings),
                reconciliation=reconciliation.for_item(
                    differences, item.advertiser_id, item.report_type
                ),
                started_at=self._started_at,
                finished_at=self._finished_at.get(item.report_type, now),
                service_version=SERVICE_VERSION,
            )
            for item in response.results
        ]
        table = f"{plan.request.dataset_id}.{RUN_LOG_TABLE}"
        if warehouse is None:
            error = "BigQuery setup failed: the run log could not be written"
            return RunLogOutcome(table=table, status="failed", rows=0, error=error)
        try:
            ensure_run_log(warehouse)
            with tempfile.TemporaryDirectory(prefix="tiktok-runlog-") as workdir:
                written = write_run_log(warehouse, rows, Path(workdir))
        except Exception as exc:  # the log must never fail the run it describes
            error = str(exc) if isinstance(exc, WarehouseError) else f"{RUN_LOG_TABLE}: {exc}"
            log.error("run log not written", extra={"fields": {"error": error}})
            return RunLogOutcome(table=table, status="failed", rows=0, error=error)
        return RunLogOutcome(table=table, status="written", rows=written)

    def _commit(
        self,
        warehouse: BigQueryWarehouse,
        spec: ReportSpec,
        path: Path,
        results: list[ItemResult],
        inserted: dict[tuple[str, str], int],
    ) -> None:
        """One load job + one transaction for the table; failures mark its items failed."""
        ok = [r for r in results if r.report_type == spec.report_type and r.ok]
        if not ok:
            return
        request = self.plan.request
        try:
            rows = warehouse.commit(
                table_definition(spec),
                path,
                key_values=[r.advertiser_id for r in ok],
                **replace_window(spec, self.plan.start, self.plan.end),
                mode=request.if_exists,
            )
        except Exception as exc:  # WarehouseError, or a transport error it did not wrap
            reason = (
                str(exc) if isinstance(exc, WarehouseError) else f"{spec.table}: load failed: {exc}"
            )
            log.error("load failed", extra={"fields": {"table": spec.table, "error": reason}})
            for result in ok:
                result.status, result.error = "error", reason
            return
        expected = sum(r.rows for r in ok)
        if rows != expected:
            log.warning(
                "row count mismatch",
                extra={"fields": {"table": spec.table, "loaded": rows, "extracted": expected}},
            )
        for result in ok:
            inserted[(result.advertiser_id, result.report_type)] = result.rows
        log.info(
            "table loaded",
            extra={"fields": {"table": spec.table, "rows": rows, "mode": request.if_exists}},
        )

    def _response(
        self, results: list[ItemResult], inserted: dict[tuple[str, str], int], started: float
    ) -> RunResponse:
        dataset = self.plan.request.dataset_id
        outcomes = [
            ItemOutcome(
                advertiser_id=r.advertiser_id,
                report_type=r.report_type,
                destination_table=f"{dataset}.{registry.get(r.report_type).table}",
                inserted_rows=inserted.get((r.advertiser_id, r.report_type), 0),
                requests=r.requests,
                rate_budget=r.budget,
                status="success" if r.ok else "error",
                error=None if r.ok else r.error,
                warnings=r.warnings,
            )
            for r in results
        ]
        return run_response(self.plan, outcomes, started)


def run_response(
    plan: RunPlan,
    outcomes: list[ItemOutcome],
    started: float,
    *,
    skipped: list[SkippedAdvertiser] | None = None,
    verdict: tuple[RunStatus, str] | None = None,
) -> RunResponse:
    """A run's answer and its "run finished" log line, for report and entity runs alike.

    The status is judged by the items (Ok, partial_success, error) unless ``verdict`` (status,
    message) was decided before them, e.g. discovery failed or there was nothing to run.
    """
    errors = sum(o.status == "error" for o in outcomes)
    total = sum(o.inserted_rows for o in outcomes)
    status: RunStatus
    if verdict is not None:
        status, message = verdict
    elif errors == 0:
        status, message = RUN_OK, f"loaded {total} rows from {len(outcomes)} reports"
    elif errors < len(outcomes):
        status = RUN_PARTIAL
        message = f"loaded {total} rows; {errors} of {len(outcomes)} reports failed"
    else:
        status, message = RUN_FAILED, f"all {len(outcomes)} reports failed"
    fields: dict[str, Any] = {
        "status": status,
        "total_inserted_rows": total,
        "errors_count": errors,
    }
    if skipped:
        message += f"; {len(skipped)} advertiser(s) skipped (see skipped_advertisers)"
    if skipped is not None:
        fields["skipped_advertisers"] = len(skipped)
    fields["seconds"] = round(time.monotonic() - started, 3)
    log.info("run finished", extra={"fields": fields})
    return RunResponse(
        status=status,
        message=message,
        request_id=plan.request_id,
        start_date=plan.start,
        end_date=plan.end,
        total_inserted_rows=total,
        results=outcomes,
        errors_count=errors,
        skipped_advertisers=skipped or [],
    )
