"""Days and timezones as users type them: cheap to import (the CLI needs them on every run)."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo


def local_tz(name: str | None) -> tzinfo:
    """An IANA zone by name (in any case, as ccusage takes it), or the machine's local zone (no name, or
    "local")."""
    if not name or name.lower() == "local":
        return machine_zone()
    if name.upper() == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        spelled = _zone_spelled(name)
        if spelled:
            return ZoneInfo(spelled)
        raise ValueError(f"unknown timezone: {name}") from exc


def _zone_spelled(name: str) -> str | None:
    """The tz database's own spelling of `name` typed in another case ("america/los_angeles")."""
    from zoneinfo import available_timezones
    wanted = name.lower()
    return next((z for z in sorted(available_timezones()) if z.lower() == wanted), None)


class SystemZone(tzinfo):
    """The zone the C library applies to this process's clock: a POSIX `$TZ` rule ("PST8PDT,M3.2.0,M11.1.0",
    "CET-1CEST,M3.5.0"), its summer time included, where no tz database name gives one. Each offset is
    the system's for that instant (`time.localtime`), not today's for the whole history."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fromutc(self, dt: datetime) -> datetime:
        import time
        offset = time.localtime((dt.replace(tzinfo=None) - _EPOCH_NAIVE).total_seconds()).tm_gmtoff
        wall = (dt + timedelta(seconds=offset)).replace(fold=0)
        return wall if wall.utcoffset() == timedelta(seconds=offset) else wall.replace(fold=1)  # (a repeated hour)

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        """The offset in force at the wall time `dt`: of a repeated hour's two, the first unless `dt.fold`;
        in a skipped hour, the offset before the change unless `dt.fold` (Python's rule for its zones)."""
        if dt is None:
            return None
        import time
        wall = (dt.replace(tzinfo=None) - _EPOCH_NAIVE).total_seconds()
        before, after = (time.localtime(wall - 86_400).tm_gmtoff, time.localtime(wall + 86_400).tm_gmtoff)
        valid = sorted({o for o in (before, after) if time.localtime(wall - o).tm_gmtoff == o}, reverse=True)
        if not valid:
            chosen = after if dt.fold else before
        else:
            chosen = valid[-1] if dt.fold and len(valid) > 1 else valid[0]
        return timedelta(seconds=chosen)

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        import time
        if dt is None:
            return self.label
        wall = (dt.replace(tzinfo=None) - _EPOCH_NAIVE).total_seconds()
        return time.localtime(wall - self.utcoffset(dt).total_seconds()).tm_zone

    def __repr__(self) -> str:
        return f"SystemZone({self.label!r})"

    def __str__(self) -> str:
        return self.label


_EPOCH_NAIVE = datetime(1970, 1, 1)


def machine_zone(env=None) -> tzinfo:
    """The machine's zone with its rules, not today's offset: a history spans changes of the clock (a
    call at 00:30 on a summer night in Berlin is that day's, not the day before's at winter's +01:00).
    Its name from `$TZ`, /etc/timezone or the /etc/localtime link, else the /etc/localtime file itself;
    the C library's own zone (`SystemZone`) when none gives a zone that agrees with the system's clock now
    (a POSIX `$TZ` rule such as "CET-1CEST,M3.5.0", a system without a tz database)."""
    import os
    now = datetime.now().astimezone()
    system = SystemZone((os.environ if env is None else env).get("TZ") or "localtime")
    try:
        from zoneinfo import ZoneInfo
        name, _where = local_zone_name(env)
        if name and _ZONE_NAME.fullmatch(name) and name not in _NOT_ZONES:
            zone = ZoneInfo(name)
        elif name is None:
            with open("/etc/localtime", "rb") as fh:
                zone = ZoneInfo.from_file(fh, key="localtime")
        else:
            return system
    except Exception:  # noqa: BLE001 - (no tz database, an unreadable file: the C library's zone)
        return system
    return zone if zone.utcoffset(now.replace(tzinfo=None)) == now.utcoffset() else system


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
