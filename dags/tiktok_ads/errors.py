"""The two kinds of failure a task can meet, without depending on Airflow.

The workflow file maps ``PermanentError`` to ``AirflowFailException`` (no retry: a wrong
Variable or a rejected request fails the same way the next time); any other exception,
``ServiceUnavailable`` included, is left to the task's retries. Error texts pass through
``scrub`` before they can reach XCom, which Airflow never masks.
"""

from __future__ import annotations

ERROR_TEXT_LIMIT = 300


class PermanentError(Exception):
    """Retrying cannot help: the task should fail at once."""


class ConfigError(PermanentError, ValueError):
    """One value is missing or malformed; the message says what is expected."""


class ServiceRejected(PermanentError):
    """The service refused the request (a 4xx other than 408/429): fix it, do not retry."""


class ServiceUnavailable(RuntimeError):
    """A failure worth retrying: 5xx, 408/429, unreadable body, or a run where all failed."""


def scrub(text: str | None, secret: str) -> str | None:
    """Error text fit for XCom: the secret removed (defence in depth) and bounded in size."""
    if text is None:
        return None
    text = text.replace(secret, "***") if secret else text
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"
