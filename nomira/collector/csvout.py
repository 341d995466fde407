"""The `.csv` twin of a dashboard table: same rows, raw numbers, safe to open in a spreadsheet."""
from __future__ import annotations

import csv
import io

from nomira.ledger.wire import TOKEN_FIELDS

COLUMNS = ("calls", *TOKEN_FIELDS, "tokens", "cache_reuse", "cost_usd", "unpriced_calls", "usd_per_call")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str:
    """A text cell a spreadsheet will not run as a formula (OWASP CSV injection: prefix `'`).
    Numbers are written as numbers: a negative count stays a number, not text."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(int(value))
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def table(first: str, rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([first, *columns])
    for r in rows:
        w.writerow([cell(r["name"]), *(cell(r.get(c)) for c in columns)])
    return out.getvalue()
