"""Advertiser discovery and account info (docs/tiktok_api_beyond.md §7).

Discovery lists the advertisers a token has been granted (``/oauth2/advertiser/get/``, which
wants the developer app's ``app_id`` and ``secret`` in the query string), then reads each
one's account info (``/advertiser/info/``, 100 ids per call) to tell which can be read:
only ``STATUS_ENABLE`` accounts run; closed, disabled, limited or pending ones are listed
with the reason. An account the token lost since the last run simply is not listed any
more; one TikTok refuses with 40001 is skipped with TikTok's words.

Knows the TikTok client and nothing of BigQuery.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa

from controller.tiktok.client import TikTokApiError, TikTokClient, TikTokError

# The account-info table (TKT010): one row per advertiser per UTC day seen.
ADVERTISER_INFO = "advertiser_info"  # its name in /run's report_types
INFO_TABLE = "TKT010_TIKTOK_ADS_ADVERTISER_INFO"
_TS = pa.timestamp("us", tz="UTC")
INFO_SCHEMA = pa.schema(
    [
        ("advertiser_id", pa.string()),
        ("name", pa.string()),
        ("company", pa.string()),
        ("status", pa.string()),
        ("currency", pa.string()),
        ("timezone", pa.string()),
        ("display_timezone", pa.string()),
        ("timezone_iana", pa.string()),
        ("country", pa.string()),
        ("role", pa.string()),
        ("balance", pa.float64()),
        ("create_time", _TS),
        ("date", pa.date32()),
        ("_advertiser_id", pa.string()),
        ("_extracted_at", _TS),
        ("_report_type", pa.string()),
    ]
)


log = logging.getLogger(__name__)

DISCOVERY_PATH = "oauth2/advertiser/get/"
INFO_PATH = "advertiser/info/"
INFO_BATCH = 100  # ids per /advertiser/info/ call (Airbyte's batch; the maximum is undocumented)
ACTIVE_STATUS = "STATUS_ENABLE"
INFO_FIELDS = (
    "advertiser_id",
    "name",
    "company",
    "status",
    "currency",
    "timezone",
    "display_timezone",
    "country",
    "create_time",
    "balance",
    "role",
)
STATUS_REASONS = {
    "STATUS_DISABLE": "account closed (STATUS_DISABLE)",
    "STATUS_LIMIT": "account limited by TikTok (STATUS_LIMIT)",
}
_OFFSET = re.compile(r"^(?:GMT|UTC)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$")


class DiscoveryError(Exception):
    """Discovery could not list the advertisers (credentials refused, TikTok down...)."""


@dataclass
class Account:
    """One advertiser the token reaches, with its account info (None when unreadable)."""

    advertiser_id: str
    name: str | None
    info: dict[str, Any] | None = None
    reason: str | None = None  # why it is skipped; None when it is active

    @property
    def active(self) -> bool:
        return self.reason is None

    @property
    def status(self) -> str | None:
        return (self.info or {}).get("status")

    def summary(self) -> dict[str, Any]:
        """What GET /advertisers and the /run response show of an account."""
        info = self.info or {}
        return {
            "advertiser_id": self.advertiser_id,
            "name": info.get("name") or self.name,
            "status": info.get("status"),
            "currency": info.get("currency"),
            "timezone": info.get("timezone"),
            "timezone_iana": iana_zone(info.get("timezone"), info.get("display_timezone")),
            "active": self.active,
            "reason": self.reason,
        }


def iana_zone(timezone: str | None, display_timezone: str | None = None) -> str | None:
    """The account's zone as an IANA name.

    TikTok's ``timezone`` is either a Region/City name or a GMT-offset form (``Etc/GMT-8``,
    ``GMT+08:00``); ``display_timezone`` is always Region/City. A valid Region/City
    ``timezone`` is kept, then ``display_timezone``, then an offset form becomes the
    equivalent ``Etc/GMT∓N`` (POSIX signs: UTC+8 is ``Etc/GMT-8``); fractional offsets have
    no IANA ``Etc`` name and give None.
    """
    for candidate in (timezone, display_timezone):
        if candidate and "/" in candidate and not candidate.startswith("Etc/"):
            try:
                ZoneInfo(candidate)
                return candidate
            except (ZoneInfoNotFoundError, ValueError):
                continue
    if not timezone:
        return None
    if timezone.startswith("Etc/"):
        try:
            ZoneInfo(timezone)
            return timezone
        except (ZoneInfoNotFoundError, ValueError):
            return None
    match = _OFFSET.match(timezone.strip())
    if not match:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if minutes or hours > 14:
        return None
    if hours == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"


def discover(
    client: TikTokClient,
    app_id: str,
    app_secret: str,
    *,
    deadline: float | None = None,
) -> list[Account]:
    """Every advertiser the token was granted, with account info and a reason when skipped."""
    try:
        page = client.get(
            DISCOVERY_PATH, {"app_id": app_id, "secret": app_secret}, paged=False, deadline=deadline
        )
    except TikTokApiError as exc:
        if exc.code in (40101, 40000):
            raise DiscoveryError(
                f"TikTok refused the app credentials (TIKTOK_APP_ID / TIKTOK_APP_SECRET): "
                f"{exc.code} {exc.message}; check the app secret was not reset"
            ) from None
        raise DiscoveryError(f"advertiser discovery failed: {exc.detail}") from None
    except TikTokError as exc:
        raise DiscoveryError(f"advertiser discovery failed: {exc.detail}") from None
    granted = {
        str(row["advertiser_id"]): row.get("advertiser_name")
        for row in page.rows
        if isinstance(row, dict) and row.get("advertiser_id")
    }
    accounts = [Account(advertiser_id, name) for advertiser_id, name in granted.items()]
    read_info(client, accounts, deadline=deadline)
    log.info(
        "advertisers discovered",
        extra={
            "fields": {
                "granted": len(accounts),
                "active": sum(a.active for a in accounts),
                "skipped": [
                    {"advertiser_id": a.advertiser_id, "reason": a.reason}
                    for a in accounts
                    if not a.active
                ],
            }
        },
    )
    return accounts


def read_info(
    client: TikTokClient, accounts: list[Account], *, deadline: float | None = None
) -> None:
    """Fill each account's info (100 per call) and mark the ones that cannot run."""
    for first in range(0, len(accounts), INFO_BATCH):
        batch = accounts[first : first + INFO_BATCH]
        try:
            rows = _info_rows(client, [a.advertiser_id for a in batch], deadline)
        except TikTokApiError as exc:
            if exc.code != 40001 or len(batch) == 1:
                for account in batch:
                    account.reason = f"account info unreadable: {exc.detail}"
                continue
            for account in batch:  # one refused account must not hide the others
                read_info(client, [account], deadline=deadline)
            continue
        except TikTokError as exc:
            for account in batch:
                account.reason = f"account info unreadable: {exc.detail}"
            continue
        by_id = {str(row.get("advertiser_id")): row for row in rows if isinstance(row, dict)}
        for account in batch:
            account.info = by_id.get(account.advertiser_id)
            if account.info is None:
                account.reason = "TikTok returned no account info for it"
            elif account.status != ACTIVE_STATUS:
                account.reason = STATUS_REASONS.get(
                    str(account.status), f"account not active ({account.status})"
                )


def _info_rows(client: TikTokClient, ids: list[str], deadline: float | None) -> list[Any]:
    page = client.get(
        INFO_PATH,
        {"advertiser_ids": ids, "fields": list(INFO_FIELDS)},
        advertiser_id=ids[0] if len(ids) == 1 else "-",
        paged=False,
        deadline=deadline,
    )
    return list(page.rows)


def info_record(account: Account, day: str, extracted_at: datetime) -> dict[str, Any]:
    """One TKT010 row: the account as seen on ``day`` (UTC)."""
    info = account.info or {}
    created = info.get("create_time")
    return {
        "advertiser_id": account.advertiser_id,
        "name": info.get("name") or account.name,
        "company": info.get("company"),
        "status": info.get("status"),
        "currency": info.get("currency"),
        "timezone": info.get("timezone"),
        "display_timezone": info.get("display_timezone"),
        "timezone_iana": iana_zone(info.get("timezone"), info.get("display_timezone")),
        "country": info.get("country"),
        "role": info.get("role"),
        "balance": _float(info.get("balance")),
        "create_time": (
            datetime.fromtimestamp(int(created), UTC)
            if isinstance(created, int | float) or (isinstance(created, str) and created.isdigit())
            else None
        ),
        "date": day,
        "_advertiser_id": account.advertiser_id,
        "_extracted_at": extracted_at,
        "_report_type": "advertiser_info",
    }


def _float(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None
