"""The settings only the domain can judge, checked once at start.

``config`` reads and types the environment but imports nothing of ``controller``; a value
whose validity is domain knowledge (the metric family names of ``TIKTOK_METRIC_FAMILIES``)
is checked here by every entry point, with the same message ``config`` gives its own errors.
"""

from __future__ import annotations

import dataclasses

from config.settings import Settings, SettingsError
from controller.reports.metrics import check_family_names


def checked(settings: Settings) -> Settings:
    """``settings`` with the family names normalised (``core`` first); SettingsError naming
    the variable and the unknown names otherwise."""
    names = settings.tiktok_metric_families
    if names is None:
        return settings
    try:
        families = check_family_names(names)
    except ValueError as exc:
        shown = ",".join(names)
        raise SettingsError(
            f"invalid configuration: TIKTOK_METRIC_FAMILIES={shown!r}: {exc}"
        ) from None
    return dataclasses.replace(settings, tiktok_metric_families=families)
