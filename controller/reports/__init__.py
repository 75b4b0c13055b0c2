"""Report definitions as data: the four seed tables, the prebuilt audience, hourly and
lifetime reports, and the custom reports a deployment declares in a JSON file.

One definition (``controller.reports.catalog.ReportSpec``) names the report, its table, data level,
TikTok report type (BASIC or AUDIENCE), breakdown dimensions, granularity (day, hour or
lifetime) and metric families; the request loop, typing, schema, splitting and loading are
written once and driven by it. ``registry`` is where every part of the service looks a
report up by name.
"""
