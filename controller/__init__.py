"""The domain of tiktok-ads-api: TikTok Ads reports and entities into BigQuery.

Four rooms, each importing only the ones below it (``tests/test_layout.py`` holds this):

    api/        the HTTP contract: the routes (a Flask Blueprint), the request and response
                models, the OpenAPI document generated from them
    (root)      the composition: ``pipeline`` (one /run of reports), ``accounts_pipeline``
                (discovery, account info, entity history), ``extraction`` and ``scheduling``
                (one run's pages), ``reconciliation``, ``planning`` (/plan), ``settlement``,
                ``entity_csv``, ``settings`` (what only the domain can check at start),
                ``views/`` (the analysts' views: ``definitions`` as data, ``sql`` made from
                them, ``refresh_views`` over what the raw dataset holds)
    tiktok/     the wire: client, errors and retries, rate limiter, HTTP gate, page reader
                (``reader`` and ``native/``), origins, 40067 sizing, accounts, entities, the
                client factory; nothing of BigQuery
    reports/    what to ask TikTok for, as data: spec types and the seed four (``catalog``),
                metric types and families (``metrics``), what TikTok refuses (``rules``),
                ``prebuilt``, ``custom``, ``registry``; imports nothing else of controller

The rule: ``api.routes`` → root → ``tiktok`` → ``reports``. ``api.models`` (the contract)
imports only ``reports``, so the root may answer in its types. ``database`` and ``config``
import nothing of ``controller``: table names come in as arguments. No import circle anywhere.
"""
