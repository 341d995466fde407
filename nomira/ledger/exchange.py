"""Export files: usage-only events as one JSON document, and reading them back (for /import)."""
from __future__ import annotations

from datetime import datetime, timezone

from nomira.ledger.wire import SCHEMA_VERSION, SchemaError, assert_no_content, batch_day_zone, loads


EXPORT_FORMAT = 1  # the file's own layout (`nomira_export`); its events are wire events of SCHEMA_VERSION


def export_document(events: list[dict], day_zone: str | None = None) -> dict:
    """`day_zone`: the exporting machine's IANA zone, which files its developers' calls under their own
    days where the file is imported (as a shipped batch's does); None: not said (UTC days)."""
    return {"nomira_export": EXPORT_FORMAT, "schema_version": SCHEMA_VERSION,
            "exported_at": datetime.now(timezone.utc).isoformat(), **({"day_zone": day_zone} if day_zone else {}),
            "events": events}


def parse_export(data: bytes | str) -> list[dict]:
    """Validated events of an export file; SchemaError names the first bad field (and event index)."""
    return read_export(data)[0]


def read_export(data: bytes | str) -> tuple[list[dict], str | None]:
    """(validated events, the day zone they were exported from or None) of an export file."""
    zone = None
    try:
        doc = loads(data)
    except ValueError as exc:
        raise SchemaError("file", f"not JSON ({exc})") from exc
    if isinstance(doc, list):
        events = doc
    elif isinstance(doc, dict) and isinstance(doc.get("events"), list):
        unknown = set(doc) - {"nomira_export", "schema_version", "exported_at", "day_zone", "events"}
        if unknown:
            raise SchemaError(sorted(unknown)[0], "not in the export format (allowlist)")
        for field, known in (("nomira_export", EXPORT_FORMAT), ("schema_version", SCHEMA_VERSION)):
            value = doc.get(field, known)
            if type(value) is not int or not 1 <= value <= known:  # (a newer Nomira's file: its meaning unknown here)
                raise SchemaError(field, f"must be an integer from 1 to {known}: written by a newer Nomira? "
                                         "upgrade this collector")
        events = doc["events"]
        zone = batch_day_zone({"day_zone": doc.get("day_zone")})[0]
    else:
        raise SchemaError("file", "expected an object with an 'events' list")
    for i, e in enumerate(events):
        try:
            assert_no_content(e)
        except SchemaError as exc:
            raise SchemaError(f"events[{i}].{exc.field}", exc.reason) from exc
    return events, zone
