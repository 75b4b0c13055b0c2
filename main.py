"""tiktok-ads-api's WSGI app: the factory that wires settings, logging and the routes.

``main:app`` is the WSGI entry gunicorn serves (see Dockerfile); ``python main.py`` runs the
same app locally on ``PORT``. Every route lives in ``controller/api/routes.py`` (the HTTP
contract); this module only builds the app, so nothing happens at import time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask

from config.allocators import tune_allocators
from config.logging import configure_logging, register_secret
from config.settings import Settings, get_settings
from config.version import SERVICE_VERSION
from controller.api.routes import EXTENSION, MAX_BODY_BYTES, Service, api
from controller.reports import registry
from controller.reports.custom import CustomReportError
from controller.settings import checked as checked_settings

__version__ = SERVICE_VERSION

log = logging.getLogger("tiktok_ads_api")

# Set when the process receives SIGTERM (gunicorn.conf.py): runs stop starting new work.
shutdown_requested = threading.Event()


def load_custom_reports(settings: Settings) -> None:
    """Custom report definitions are read once, at start: one TikTok would refuse stops the
    service here, with a message naming the report and the field, not at its first run."""
    try:
        loaded = registry.load_custom_file(settings.tiktok_custom_reports_file)
    except CustomReportError as exc:
        log.critical("invalid custom report definition: %s", exc)
        raise
    if loaded:
        log.info(
            "custom reports loaded",
            extra={"fields": {"report_types": [spec.report_type for spec in loaded]}},
        )


def create_app(
    settings: Settings | None = None,
    *,
    warehouse_factory: Callable[..., Any] | None = None,
) -> Flask:
    """Build the app; tests pass their own settings (simulator URL, emulator endpoint)."""
    settings = checked_settings(settings or get_settings())
    configure_logging(settings.log_level)
    tune_allocators()  # a long run's peak memory must not grow with its length
    register_secret(settings.tiktok_access_token)
    register_secret(settings.tiktok_app_secret)  # TikTok wants it in a query string
    load_custom_reports(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider has it
    app.extensions[EXTENSION] = Service(settings, warehouse_factory, shutdown_requested)
    app.register_blueprint(api)
    return app


def __getattr__(name: str) -> Any:
    """``main:app`` for gunicorn, built on first access (nothing happens at import time)."""
    if name == "app":
        built = globals()["app"] = create_app()  # cached: __getattr__ runs once
        return built
    raise AttributeError(name)


def serve() -> None:
    settings = get_settings()
    create_app(settings).run(host="0.0.0.0", port=settings.port, threaded=True)


if __name__ == "__main__":
    serve()
