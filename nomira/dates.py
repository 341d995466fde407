"""Days and timezones as users type them: cheap to import (the CLI needs them on every run)."""
from __future__ import annotations

from datetime import date, datetime, timezone, tzinfo


def local_tz(name: str | None) -> tzinfo:
    """An IANA zone by name, or the machine's local zone."""
    if not name:
        return datetime.now().astimezone().tzinfo or timezone.utc
    if name.upper() == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone: {name}") from exc


def parse_day(text: str) -> date:
    """YYYYMMDD or YYYY-MM-DD."""
    t = text.replace("-", "")
    if len(t) != 8 or not t.isdigit():
        raise ValueError(f"not a date (YYYYMMDD): {text}")
    return date(int(t[:4]), int(t[4:6]), int(t[6:]))
