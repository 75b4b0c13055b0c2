"""How a metric's values are typed in the warehouse (shared by the catalog and the families)."""

from __future__ import annotations

from enum import StrEnum


class MetricType(StrEnum):
    INT = "INT64"
    FLOAT = "FLOAT64"
    STRING = "STRING"
