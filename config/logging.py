"""Structured logging: one JSON object per line on stdout, as Cloud Logging on Cloud Run reads it.

Each line has ``severity``, ``message``, ``time``, the request id of the /run it belongs to
(a context variable, copied into worker threads by the extraction) and the structured
``fields`` passed as ``extra={"fields": {...}}``. Secrets registered with
``register_secret`` are masked in every line, a last line of defence behind the rule that
tokens are never logged in the first place.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from datetime import UTC, datetime

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it would appear in a log line."""
    if value and len(value) >= 6:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    for secret in tuple(_secrets):
        if secret in text:
            text = text.replace(secret, "***")
    return text


# Loggers of the HTTP stack that may print a request's URL (urllib3 logs every request line at
# DEBUG: discovery's URL carries the app secret, which TikTok wants in the query string).
HTTP_LOGGERS = ("urllib3", "urllib3.connectionpool", "urllib3.util.retry", "requests")


class RedactingFilter(logging.Filter):
    """Masks registered secrets in a record before any handler sees it.

    Set on the HTTP stack's own loggers (a logger's filters run where the record is made),
    so even a handler other than ours, e.g. a test's or a debugger's, never gets the secret.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_REDACTING_FILTER = RedactingFilter()


def install_redaction() -> None:
    """Put the redacting filter on the HTTP stack's loggers (idempotent)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTING_FILTER not in logger.filters:
            logger.addFilter(_REDACTING_FILTER)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry, default=str).decode())


def configure_logging(level: str = "INFO") -> None:
    """Install the JSON handler on the root logger once (idempotent)."""
    install_redaction()
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "google", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
