"""Days and timezones as users type them: cheap to import (the CLI needs them on every run)."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone, tzinfo


def local_tz(name: str | None) -> tzinfo:
    """An IANA zone by name, or the machine's local zone."""
    if not name:
        return machine_zone()
    if name.upper() == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone: {name}") from exc


def machine_zone(env=None) -> tzinfo:
    """The machine's zone with its rules, not today's offset: a history spans changes of the clock (a
    call at 00:30 on a summer night in Berlin is that day's, not the day before's at winter's +01:00).
    Its name from `$TZ`, /etc/timezone or the /etc/localtime link, else the /etc/localtime file itself;
    today's offset when none gives a zone that agrees with the system's clock now (a POSIX `$TZ` rule
    such as "CET-1CEST,M3.5.0", a system without a tz database)."""
    now = datetime.now().astimezone()
    fixed = now.tzinfo or timezone.utc
    try:
        from zoneinfo import ZoneInfo
        name, _where = local_zone_name(env)
        if name and _ZONE_NAME.fullmatch(name) and name not in _NOT_ZONES:
            zone = ZoneInfo(name)
        elif name is None:
            with open("/etc/localtime", "rb") as fh:
                zone = ZoneInfo.from_file(fh, key="localtime")
        else:
            return fixed
    except Exception:  # noqa: BLE001 - (no tz database, an unreadable file: the offset the clock has now)
        return fixed
    return zone if zone.utcoffset(now.replace(tzinfo=None)) == now.utcoffset() else fixed


def parse_day(text: str) -> date:
    """YYYYMMDD or YYYY-MM-DD."""
    t = text.replace("-", "")
    if len(t) != 8 or not t.isdigit():
        raise ValueError(f"not a date (YYYYMMDD): {text}")
    return date(int(t[:4]), int(t[4:6]), int(t[6:]))


# Day zones (issue 28): the IANA name a collector pins per developer to file calls under days.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9][A-Za-z0-9_+\-]*){0,3}")  # no path, no `..`
_NOT_ZONES = {"localtime", "posixrules", "Factory"}  # files in the tz database that are no place's zone


def zone_name(name) -> str:
    """`name` if it is an IANA zone this Python knows ("Europe/Paris", "UTC"); ValueError says why not
    (without echoing the value: a collector answers with it)."""
    if not isinstance(name, str) or len(name) > 64 or not _ZONE_NAME.fullmatch(name) or name in _NOT_ZONES:
        raise ValueError("not an IANA timezone name (such as Europe/Paris or UTC)")
    if name != "UTC":
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError("not a timezone this system's tz database knows") from None
    return name


def local_zone_name(env=None) -> tuple[str | None, str]:
    """(the IANA name of this machine's zone or None, where it was read): `$TZ`, then /etc/timezone,
    then the /etc/localtime link. Not validated (the caller says what to do with a bad one)."""
    import os
    env = os.environ if env is None else env
    tz = (env.get("TZ") or "").lstrip(":")
    if tz:
        return _after_zoneinfo(tz) if tz.startswith("/") else tz, "$TZ"
    try:
        with open("/etc/timezone") as fh:
            name = fh.readline().strip()
        if name:
            return name, "/etc/timezone"
    except OSError:
        pass
    try:
        return _after_zoneinfo(os.path.realpath("/etc/localtime")), "/etc/localtime"
    except OSError:
        return None, "nowhere"


def _after_zoneinfo(path: str) -> str | None:
    """"Europe/Paris" from /usr/share/zoneinfo/Europe/Paris (or macOS's /var/db/timezone/zoneinfo/...)."""
    _, sep, name = path.partition("zoneinfo/")
    return name or None if sep else None
