"""The library behind the tiktok_ads_to_bigquery workflow, importable without a scheduler.

Deployed beside the workflow file (``dags/.airflowignore`` keeps the scheduler from parsing
it as workflows). Nothing here imports Airflow: errors are plain exceptions (``errors``)
that the workflow file maps to Airflow's, and Variables are read by the workflow file and
passed in as text, so every rule here is tested in the fast tier.

config    Variables and run conf → a validated ``Config``
windows   the run day, the daily and settlement windows, their spans
fanout    batches, the rate budget, one request per POST /run
service   ``ServiceClient``: every call to the Cloud Run service (auth, timeouts, errors)
results   the service's answers → task outcomes and the run's verdict
backfill  units planned from POST /plan, split when unfinished, resumable
"""
