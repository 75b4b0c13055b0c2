"""One /run with accounts and objects: discovery, account info, entity history, then reports.

Composes ``controller.tiktok.accounts`` (discovery, account info), ``controller.tiktok.entities`` (the
entity readers) and ``database.history`` (SCD2 tables) around the report pipeline
(``controller.pipeline.Run``), which it calls unchanged for the report types:

1. ``"advertiser_ids": "all"``: discovery lists the granted advertisers and their account
   info; active ones run, the others are listed in ``skipped_advertisers`` with the reason.
2. ``advertiser_info`` → TKT010 (one row per advertiser and UTC day seen, replaced per
   advertiser and day); ``campaigns``/``adgroups``/``ads`` → TKT011..TKT013 history, one
   load job and one transaction per table.
3. The report types, for the same advertisers; where a report row has no currency, the
   account's currency (when account info was read in this run) fills it.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from config.settings import Settings
from controller.api.models import (
    RUN_FAILED,
    RUN_OK,
    ItemOutcome,
    RunResponse,
    RunStatus,
    SkippedAdvertiser,
)
from controller.pipeline import Run, RunPlan, run_response
from controller.reports import registry
from controller.tiktok.accounts import (
    ADVERTISER_INFO,
    INFO_SCHEMA,
    INFO_TABLE,
    Account,
    DiscoveryError,
    discover,
    info_record,
    read_info,
)
from controller.tiktok.entities import ENTITIES, EntityReader, EntityResult, EntitySpec
from controller.tiktok.factory import build_client, request_limiter
from controller.views import refresh_after_run
from database.bigquery import BigQueryWarehouse, TableDefinition, WarehouseError
from database.history import HistoryDefinition, HistoryTables

log = logging.getLogger(__name__)

# Fields of a report run's response that are not about its items, kept in the combined one.
REPORT_EXTRAS = {"reconciliation", "run_log"}
INFO_DEFINITION = TableDefinition(
    name=INFO_TABLE,
    schema=INFO_SCHEMA,
    partition_field="date",
    clustering_fields=("_advertiser_id",),
    description="TikTok account info: one row per advertiser per UTC day seen (replaced per day).",
)


def history_definition(spec: EntitySpec) -> HistoryDefinition:
    return HistoryDefinition(spec.table, spec.schema, spec.id_field, spec.view)


def destination(report_type: str) -> str:
    if report_type == ADVERTISER_INFO:
        return INFO_TABLE
    if report_type in ENTITIES:
        return ENTITIES[report_type].table
    return registry.get(report_type).table


@dataclass
class Discovery:
    """The advertisers a run covers: ids to run, accounts read, and the skipped ones."""

    advertiser_ids: list[str]
    accounts: list[Account]
    skipped: list[SkippedAdvertiser]


class AccountsRun:
    """Executes a validated /run that discovers advertisers or asks for entity types."""

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
        self.request = plan.request
        self._deadline: float | None = None  # the run's (monotonic seconds), set by execute
        self._entity_tables_changed = False
        self._run = Run(
            settings, plan, warehouse_factory=warehouse_factory, stop_requested=stop_requested
        )

    def execute(self) -> RunResponse:
        started = time.monotonic()
        deadline = started + self.settings.run_deadline_seconds
        self._deadline = deadline
        work_deadline = deadline - min(60.0, self.settings.run_deadline_seconds * 0.25)
        extracted_at = datetime.now(UTC)
        request, settings = self.request, self.settings
        limiter = request_limiter(settings, request.max_qps, request.max_qpm)
        client = build_client(settings, self.plan.access_token, limiter)
        outcomes: list[ItemOutcome] = []
        try:
            try:
                found = self._advertisers(client, work_deadline)
            except DiscoveryError as exc:
                log.error("advertiser discovery failed", extra={"fields": {"error": str(exc)}})
                return self._finish([], [], started, failure=str(exc))
            if request.entity_kinds and found.advertiser_ids:
                outcomes += self._entities(client, found, extracted_at, work_deadline)
        finally:
            client.close()
        if self._entity_tables_changed:  # the report part below refreshes for its own tables
            refresh_after_run(
                settings,
                self._run._warehouse_factory,
                request.project_id,
                request.dataset_id,
                deadline=deadline,
            )
        currencies = {
            a.advertiser_id: a.info["currency"]
            for a in found.accounts
            if a.info and a.info.get("currency")
        }
        if request.report_kinds and found.advertiser_ids:
            narrowed = request.model_copy(
                update={
                    "advertiser_ids": found.advertiser_ids,
                    "report_types": request.report_kinds,
                    "with_gmv_max": request.gmv_max_added(),
                }
            )
            # The reports get what is left of the run's deadline, not a fresh one: the
            # request as a whole must end within Cloud Run's timeout.
            remaining = max(1.0, deadline - time.monotonic())
            self._run.settings = dataclasses.replace(settings, run_deadline_seconds=remaining)
            self._run.plan = RunPlan(
                narrowed,
                self.plan.access_token,
                self.plan.start,
                self.plan.end,
                self.plan.request_id,
            )
            self._run.currencies = currencies
            reports = self._run.execute()
            outcomes += reports.results
            # What the report run adds beside its items (reconciliation, run log) is kept.
            extra = {k: getattr(reports, k) for k in REPORT_EXTRAS & set(RunResponse.model_fields)}
            return self._finish(outcomes, found.skipped, started).model_copy(update=extra)
        return self._finish(outcomes, found.skipped, started)

    # ------------------------------------------------------------------ advertisers
    def _advertisers(self, client, deadline: float) -> Discovery:
        request, settings = self.request, self.settings
        if request.discover:
            accounts = discover(
                client,
                settings.tiktok_app_id or "",
                settings.tiktok_app_secret or "",
                deadline=deadline,
            )
            skipped = [
                SkippedAdvertiser(
                    advertiser_id=a.advertiser_id,
                    name=(a.info or {}).get("name") or a.name,
                    status=a.status,
                    reason=a.reason or "",
                )
                for a in accounts
                if not a.active
            ]
            ids = [a.advertiser_id for a in accounts if a.active]
            return Discovery(ids, accounts, skipped)
        ids = list(request.advertiser_ids)
        accounts = [Account(advertiser_id, None) for advertiser_id in ids]
        if ADVERTISER_INFO in request.entity_kinds:
            read_info(client, accounts, deadline=deadline)
        return Discovery(ids, accounts if ADVERTISER_INFO in request.entity_kinds else [], [])

    # ------------------------------------------------------------------ entities
    def _entities(
        self, client, found: Discovery, extracted_at: datetime, deadline: float
    ) -> list[ItemOutcome]:
        request = self.request
        kinds = request.entity_kinds
        try:
            warehouse = self._run._warehouse_factory(request.project_id, request.dataset_id)
            warehouse.deadline = self._deadline
            warehouse.ensure_dataset()
            history = HistoryTables(warehouse)
            changed = False
            if ADVERTISER_INFO in kinds:
                changed |= warehouse.ensure_table(INFO_DEFINITION)
            for kind in kinds:
                if kind in ENTITIES:
                    changed |= history.ensure(history_definition(ENTITIES[kind]))
            self._entity_tables_changed = changed
        except Exception as exc:
            reason = (
                str(exc) if isinstance(exc, WarehouseError) else f"BigQuery setup failed: {exc}"
            )
            log.error("warehouse setup failed", extra={"fields": {"error": reason}})
            return [
                self._outcome(adv, kind, 0, reason)
                for kind in kinds
                for adv in found.advertiser_ids
            ]
        outcomes: list[ItemOutcome] = []
        if ADVERTISER_INFO in kinds:
            outcomes += self._account_info(warehouse, found, extracted_at)
        specs = [ENTITIES[k] for k in kinds if k in ENTITIES]
        if specs:
            outcomes += self._histories(
                client, history, specs, found.advertiser_ids, extracted_at, deadline
            )
        return outcomes

    def _account_info(
        self, warehouse: BigQueryWarehouse, found: Discovery, extracted_at: datetime
    ) -> list[ItemOutcome]:
        day = extracted_at.date()
        seen = [a for a in found.accounts if a.info is not None]  # closed accounts too
        missing = [a for a in found.accounts if a.info is None]
        outcomes = [
            self._outcome(a.advertiser_id, ADVERTISER_INFO, 0, a.reason or "no account info")
            for a in missing
        ]
        if not seen:
            return outcomes
        rows = [info_record(a, day.isoformat(), extracted_at) for a in seen]
        for row in rows:
            row["date"] = day
        table = pa.Table.from_pylist(rows, schema=INFO_SCHEMA)
        with tempfile.TemporaryDirectory(prefix="tiktok-info-") as workdir:
            writer = warehouse.open_writer(INFO_DEFINITION, Path(workdir))
            writer.write(table)
            path = writer.close()
            try:
                warehouse.commit(
                    INFO_DEFINITION,
                    path,
                    key_values=[a.advertiser_id for a in seen],
                    start=day,
                    end=day,
                    mode="replace",
                )
                error = None
            except Exception as exc:
                error = str(exc) if isinstance(exc, WarehouseError) else f"load failed: {exc}"
        log.info(
            "account info loaded" if error is None else "account info load failed",
            extra={"fields": {"table": INFO_TABLE, "rows": len(rows), "error": error}},
        )
        outcomes += [self._outcome(a.advertiser_id, ADVERTISER_INFO, 1, error) for a in seen]
        return outcomes

    def _histories(
        self,
        client,
        history: HistoryTables,
        specs: list[EntitySpec],
        advertiser_ids: list[str],
        extracted_at: datetime,
        deadline: float,
    ) -> list[ItemOutcome]:
        outcomes: list[ItemOutcome] = []
        with tempfile.TemporaryDirectory(prefix="tiktok-entities-") as workdir:
            writers = {
                spec.report_type: history.open_writer(history_definition(spec), Path(workdir))
                for spec in specs
            }
            reader = EntityReader(
                client,
                extracted_at=extracted_at,
                workers=self.settings.tiktok_concurrency,
                deadline=deadline,
            )
            results = reader.run(
                advertiser_ids,
                specs,
                lambda spec, _adv, table: writers[spec.report_type].write(table),
            )
            for spec in specs:
                path = writers[spec.report_type].close()
                outcomes += self._commit_history(history, spec, path, results, extracted_at)
        return outcomes

    def _commit_history(
        self,
        history: HistoryTables,
        spec: EntitySpec,
        path: Path,
        results: list[EntityResult],
        extracted_at: datetime,
    ) -> list[ItemOutcome]:
        mine = [r for r in results if r.report_type == spec.report_type]
        ok = [r for r in mine if r.ok]
        error = None
        added: dict[str, int] = {}
        closed = 0
        if ok:
            try:
                added, closed = history.commit(
                    history_definition(spec),
                    path,
                    key_values=[r.advertiser_id for r in ok],
                    observed_at=extracted_at,
                )
            except Exception as exc:
                error = str(exc) if isinstance(exc, WarehouseError) else f"load failed: {exc}"
        log.info(
            "history loaded" if error is None else "history load failed",
            extra={
                "fields": {
                    "table": spec.table,
                    "objects_read": sum(r.rows for r in ok),
                    "requests": sum(r.requests for r in mine),
                    "versions_added": sum(added.values()),
                    "versions_closed": closed,
                    "error": error,
                }
            },
        )
        # inserted_rows: the history rows (new versions) this run added for the advertiser.
        outcomes = []
        for result in mine:
            failure = "; ".join(result.errors) or error
            rows = added.get(result.advertiser_id, 0)
            outcome = self._outcome(result.advertiser_id, spec.report_type, rows, failure)
            outcomes.append(outcome.model_copy(update={"warnings": list(result.warnings)}))
        return outcomes

    # ------------------------------------------------------------------ response
    def _outcome(
        self, advertiser_id: str, report_type: str, rows: int, error: str | None
    ) -> ItemOutcome:
        return ItemOutcome(
            advertiser_id=advertiser_id,
            report_type=report_type,
            destination_table=f"{self.request.dataset_id}.{destination(report_type)}",
            inserted_rows=rows if error is None else 0,
            status="success" if error is None else "error",
            error=error,
        )

    def _finish(
        self,
        outcomes: list[ItemOutcome],
        skipped: list[SkippedAdvertiser],
        started: float,
        failure: str | None = None,
    ) -> RunResponse:
        verdict: tuple[RunStatus, str] | None = None
        if failure is not None:
            verdict = (RUN_FAILED, failure)
        elif not outcomes:
            discovered = skipped or self.request.discover
            verdict = (RUN_OK, "no active advertiser to run" if discovered else "nothing to run")
        return run_response(self.plan, outcomes, started, skipped=skipped, verdict=verdict)


def list_advertisers(settings: Settings, access_token: str) -> list[dict[str, Any]]:
    """GET /advertisers: every advertiser the token reaches, with status and why skipped."""
    limiter = request_limiter(settings, None, None)
    client = build_client(settings, access_token, limiter)
    try:
        deadline = time.monotonic() + settings.run_deadline_seconds
        accounts = discover(
            client,
            settings.tiktok_app_id or "",
            settings.tiktok_app_secret or "",
            deadline=deadline,
        )
    finally:
        client.close()
    return [a.summary() for a in accounts]
