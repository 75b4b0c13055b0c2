"""TikTok Ads → BigQuery, daily at 08:00 UTC, through the tiktok-ads-api Cloud Run service.

The DAG only orchestrates: the service extracts the reports from TikTok and loads BigQuery.
A run replaces the days D-3..D-1 of its run day D (weekly, the attribution window D-28..D-1)
with `if_exists: "replace"`, so a retry, a rerun or an overlapping backfill rewrites the
same rows instead of duplicating them.

`validate_config` → `prepare_payload` → `call_cloud_run_api` (mapped: one POST /run per
batch of advertisers, or per backfill unit, in the `tiktok_ads_api` pool) →
`validate_result`. A run conf `{"start_date": ..., "end_date": ...}` (the DAG's params: the
trigger form) makes it a backfill of any length, planned into units with the service's
POST /plan. Runs on Airflow 3 and 2.10; needs only `requests` and `google-auth`.

This file shows the workflow; the rules live in the `tiktok_ads/` package beside it
(Airflow-free, listed in `.airflowignore`). **Deploy** the folder, then grant the
environment's service account `roles/run.invoker` on the service (the calls carry a Google
identity token whose audience is the service root URL):
`gcloud composer environments storage dags import --environment ENV --location REGION --source dags/`

The Variables, the pool, backfills and the failure table: dags/README.md.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

try:  # Airflow 3
    from airflow.sdk import Param, Variable, dag, get_current_context, task
    from airflow.sdk.exceptions import AirflowFailException
    from airflow.sdk.log import mask_secret

    _VARIABLE_DEFAULT_KW = "default"
    # validate_result runs once every call is done and one succeeded: a failed backfill
    # unit must not hide the summary of the others.
    _SUMMARY_TRIGGER = "all_done_min_one_success"
except ImportError:  # Airflow 2.x (2.10 on Cloud Composer 2)
    from airflow.decorators import dag, task
    from airflow.exceptions import AirflowFailException
    from airflow.models import Variable
    from airflow.models.param import Param
    from airflow.operators.python import get_current_context
    from airflow.utils.log.secrets_masker import mask_secret

    _VARIABLE_DEFAULT_KW = "default_var"
    _SUMMARY_TRIGGER = "all_success"  # Airflow 2: a failed unit leaves validate_result out

# dags/ is on sys.path in Airflow; the package is Airflow-free (tiktok_ads/__init__.py).
from tiktok_ads import backfill, fanout, results, windows
from tiktok_ads.config import (
    AUTO,
    CONF_SCHEMA,
    CONFIG_VARIABLES,
    DEFAULT_SETTLEMENT_DAYS,
    DISCOVER_ALL,
    POOL,
    TOKEN_VAR,
    Config,
    ConfigError,
    parse_conf,
    parse_config,
    unknown_report_types,
)
from tiktok_ads.errors import PermanentError
from tiktok_ads.fanout import CallRequest
from tiktok_ads.service import ServiceClient, discovered_ids

log = logging.getLogger(__name__)

DAG_ID = "tiktok_ads_to_bigquery"
SCHEDULE = "0 8 * * *"
_Task = TypeVar("_Task", bound=Callable[..., Any])


def fail_fast(function: _Task) -> _Task:
    """The package's ``PermanentError`` (bad config, a 4xx) fails the task without retry."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except PermanentError as exc:
            raise AirflowFailException(str(exc)) from exc

    return run  # type: ignore[return-value]


def get_variable(name: str) -> str | None:
    """A Variable's text, or None when unset (the default keyword differs on Airflow 2 and 3)."""
    value = Variable.get(name, **{_VARIABLE_DEFAULT_KW: None})
    text = None if value is None else str(value).strip()
    return text or None


def service_client(service_url: str) -> ServiceClient:
    """The service on behalf of the access token, read here (in the task that calls) only."""
    token = get_variable(TOKEN_VAR)
    if token is None:
        raise AirflowFailException(f"{TOKEN_VAR}: missing (required)")
    return ServiceClient(service_url, token, mask=mask_secret)


@dag(
    dag_id=DAG_ID,
    description="TikTok Ads reports → BigQuery through the tiktok-ads-api Cloud Run service",
    schedule=SCHEDULE,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 0},
    params={key: Param(None, **schema) for key, schema in CONF_SCHEMA.items()},
    tags=["tiktok", "bigquery", "cloud-run"],
    doc_md=__doc__,
)
def tiktok_ads_to_bigquery() -> None:
    @task(retries=0, multiple_outputs=False)
    def validate_config(**context: Any) -> Config:
        """Every Variable and the run conf checked at once; one message names each problem."""
        config, problems = parse_config({name: get_variable(name) for name in CONFIG_VARIABLES})
        if get_variable(TOKEN_VAR) is None:  # checked, never kept
            problems.insert(1, f"{TOKEN_VAR}: missing (required)")
        try:
            conf = parse_conf(context["dag_run"].conf)
        except ConfigError as exc:
            problems.append(f"run conf: {exc}")
            conf = None
        if conf and conf.get("report_types"):
            unknown = unknown_report_types({**config, "report_types": conf["report_types"]})
            if unknown:
                problems.append(f"run conf: unknown report types {unknown}")
        if problems:
            raise AirflowFailException("invalid configuration: " + "; ".join(problems))
        config["conf"] = conf  # a backfill: planned into units (tiktok_ads/backfill.py)
        config["conf_window"] = conf["window"] if conf else None
        log.info("configuration: %s", {k: v for k, v in config.items() if k != "advertiser_ids"})
        warning = fanout.rate_share_warning(config["app_qps"], config["parallel_batches"])
        if warning:
            log.warning(warning)
        if config["advertiser_ids"] == DISCOVER_ALL:
            log.info("advertisers: every one the token was granted (discovered at prepare_payload)")
        else:
            log.info("%d advertisers", len(config["advertiser_ids"]))
        return config

    @task(retries=0, multiple_outputs=False)
    @fail_fast
    def prepare_payload(config: Config, **context: Any) -> list[CallRequest]:
        """The run's window and one request per batch; the budget is split across batches."""
        if config.get("conf"):
            return plan_backfill(config, context)
        span_days = None
        if config["conf_window"]:
            start, end = (date.fromisoformat(day) for day in config["conf_window"])
        else:
            start, end, span_days = windows.scheduled_window(windows.run_day(context), config)
        if config["advertiser_ids"] == DISCOVER_ALL:
            config = {**config, "advertiser_ids": discover(config["service_url"], context)}
        if span_days and config["settlement_days"] == AUTO and not config["conf_window"]:
            days = ServiceClient(config["service_url"], mask=mask_secret).settlement_days(
                config["project_id"], config["dataset_id"], config["advertiser_ids"],
                DEFAULT_SETTLEMENT_DAYS,
            )  # fmt: skip
            requests_ = fanout.build_auto_settlement(config, windows.run_day(context), days)
        else:
            requests_ = fanout.build_requests(config, start, end, span_days)
        if not requests_:
            log.warning("no active advertiser to run")
            return []
        log.info(
            "%s window %s..%s, %d POSTs, %s QPS / %s QPM each",
            "settlement" if span_days else "run", start, end, len(requests_),
            requests_[0]["payload"]["max_qps"], requests_[0]["payload"]["max_qpm"],
        )  # fmt: skip
        return requests_

    def plan_backfill(config: Config, context: Mapping[str, Any]) -> list[CallRequest]:
        """The backfill's units: sized by POST /plan, minus what a run of this conf loaded."""
        conf = config["conf"] or {}
        if not conf.get("advertiser_ids") and config["advertiser_ids"] == DISCOVER_ALL:
            conf = {**conf, "advertiser_ids": discover(config["service_url"], context)}
        state = backfill.parse_state(get_variable(backfill.state_name(config, config["conf"])))
        client = service_client(config["service_url"])
        units, sampled = backfill.plan_backfill(
            config, conf, client, config["parallel_batches"], state
        )
        estimated = sum(u["unit"]["estimated_requests"] for u in units)
        log.info(
            "backfill %s..%s: %d items sampled, %d units to run (%d estimated requests, "
            "~%.0f s at %s QPS), %s QPS / %s QPM each",
            *conf["window"], sampled, len(units), estimated, estimated / config["app_qps"],
            config["app_qps"], units[0]["payload"]["max_qps"] if units else "-",
            units[0]["payload"]["max_qpm"] if units else "-",
        )  # fmt: skip
        return units

    def discover(service_url: str, context: Mapping[str, Any]) -> list[str]:
        """Active advertisers from the service; skipped and lost ones logged as warnings."""
        ti = context["ti"]
        try:  # the previous run's list, to report accounts whose access was removed
            previous = ti.xcom_pull(
                task_ids="prepare_payload", key="discovered", include_prior_dates=True
            )
        except Exception:  # an XCom backend without history: nothing to compare
            previous = None
        found = service_client(service_url).advertisers()
        active, warnings = discovered_ids(found, previous)
        for warning in warnings:
            log.warning("advertiser not run: %s", warning)
        ti.xcom_push(key="discovered", value=active)
        log.info("%d advertisers discovered and active, %d not run", len(active), len(warnings))
        return active

    @task(
        retries=2,
        multiple_outputs=False,  # one XCom per batch, not one per key
        retry_delay=timedelta(minutes=5),
        pool=POOL,  # its slots: the POSTs in flight (TIKTOK_MAX_PARALLEL_BATCHES)
        execution_timeout=timedelta(minutes=20),
        map_index_template="{{ batch_label }}",
    )
    @fail_fast
    def call_cloud_run_api(request: CallRequest) -> dict[str, Any]:
        """POST one batch; the access token joins the payload here and is never returned."""
        context = get_current_context()
        context["batch_label"] = request["label"]  # the mapped instance's name
        client = service_client(request["service_url"])
        if "unit" in request:  # a backfill unit: split and posted again until done
            post = backfill.unit_post(client, request)
            outcome = backfill.run_unit(request["label"], request["payload"], post, log.info)
            summary = outcome.to_json()
            context["ti"].xcom_push(key="unit_outcome", value=summary)
            if summary["failures"]:
                raise AirflowFailException(
                    f"{request['label']}: {len(summary['failures'])} failure(s): "
                    + "; ".join(summary["failures"])
                )
            return summary
        summary = client.run_batch(request["payload"], request["label"])
        summary["missing"] = results.missing_pairs(request["payload"], summary["results"])
        log.info(
            "%s: HTTP %d, %s, %d rows, %d errors (request_id %s)",
            summary["label"], summary["http_status"], summary["status"],
            summary["total_inserted_rows"], summary["errors_count"], summary["request_id"],
        )  # fmt: skip
        return summary

    @task(retries=0, multiple_outputs=False, trigger_rule=_SUMMARY_TRIGGER)
    def validate_result(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """Fail the run when any report failed, listing each failed advertiser/report pair;
        for a backfill, list every unit (rows, requests, seconds, status) and the totals."""
        ti = get_current_context()["ti"]
        requests_ = ti.xcom_pull(task_ids="prepare_payload") or []
        if requests_ and "unit" in requests_[0]:
            return summarize_backfill(ti, requests_)
        summaries = [s for s in summaries if s]
        if len(summaries) < len(requests_):
            raise AirflowFailException(
                f"{len(requests_) - len(summaries)} of {len(requests_)} batch(es) failed "
                "(see call_cloud_run_api); clear them to run them again"
            )
        outcome = results.check_results(summaries)
        for table, rows in outcome["rows_by_table"].items():
            log.info("%s: %d rows", table, rows)
        if outcome["failures"]:
            raise AirflowFailException(
                f"{len(outcome['failures'])} report(s) failed: " + "; ".join(outcome["failures"])
            )
        log.info("%d batches, %d rows", outcome["batches"], outcome["total_inserted_rows"])
        return outcome

    def summarize_backfill(ti: Any, requests_: list[CallRequest]) -> dict[str, Any]:
        """Every unit's outcome logged and recorded in the resume state; fails if any failed."""
        outcomes = [
            ti.xcom_pull(task_ids="call_cloud_run_api", key="unit_outcome", map_indexes=index)
            for index in range(len(requests_))
        ]
        summary = results.backfill_summary(outcomes, [r["label"] for r in requests_])
        for unit in summary["units"]:
            failures = ("; " + "; ".join(unit["failures"])) if unit["failures"] else ""
            log.info("%s: %s, %d rows, %d requests, %.1f s%s", unit["label"], unit["status"],
                     unit["rows"], unit["requests"], unit["seconds"], failures)  # fmt: skip
        log.info(
            "backfill: %d units, %d rows, %d requests, %.1f unit-seconds; %d unit(s) not done",
            len(summary["units"]), summary["total_rows"], summary["total_requests"],
            summary["total_seconds"], len(summary["failed_units"]),
        )  # fmt: skip
        config = ti.xcom_pull(task_ids="validate_config")
        name = backfill.state_name(config, config["conf"])
        state = backfill.parse_state(get_variable(name))
        for outcome in outcomes:
            if outcome:
                backfill.record_done(state, outcome)
        Variable.set(name, json.dumps(state))
        if summary["failed_units"]:
            raise AirflowFailException(
                f"{len(summary['failed_units'])} unit(s) not done: "
                + "; ".join(summary["failed_units"])
                + " (clear their call_cloud_run_api tasks, or trigger the same conf, to resume)"
            )
        return summary

    requests_ = prepare_payload(validate_config())
    validate_result(call_cloud_run_api.expand(request=requests_))


tiktok_ads_to_bigquery()
