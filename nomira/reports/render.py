"""Terminal rendering: aligned tables that fit the terminal, colour only when wanted."""
from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from typing import Sequence

WIDTH = 80


def use_color(stream=sys.stdout, env=os.environ) -> bool:
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


class Style:
    def __init__(self, color: bool, width: int | None = WIDTH):
        self.color = color
        self.width = width  # None: as wide as the content (--wide)

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, t: str) -> str:
        return self._wrap("1", t)

    def dim(self, t: str) -> str:
        return self._wrap("2", t)

    def warn(self, t: str) -> str:
        return self._wrap("33", t)


def usd(x: float | None) -> str:
    x = x or 0.0
    if abs(x) < 0.01 and x:
        return f"${x:.4f}"
    return f"${x:,.2f}"


def priced_usd(x: float, calls: int, unpriced_calls: int) -> str:
    """A money cell that never shows unpriced calls as $0: "unpriced" when no call had a price,
    "$1.23*" when some had none (their reasons are listed under the table)."""
    if calls and unpriced_calls >= calls:
        return "unpriced"
    return usd(x) + ("*" if unpriced_calls else "")


def tokens(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def pct(x: float | None) -> str:
    return f"{(x or 0) * 100:.1f}%"


_DATE_SUFFIX = re.compile(r"-(?:20\d{6}|20\d\d-\d\d-\d\d)(?=$|[\s,)])")
SESSION_ID_CHARS = 8


def short_model(text: str) -> str:
    """Model names without their date suffix (family and version kept): claude-sonnet-4-5-20250929
    -> claude-sonnet-4-5, gpt-5-1-codex-2025-11-13 -> gpt-5-1-codex."""
    return _DATE_SUFFIX.sub("", text)


def short_id(session_id: str) -> str:
    """A session id as every table shows it: 8 characters. UUIDv7 ids (Codex) start with a
    timestamp shared by sessions a minute apart, so those show their random tail instead."""
    s = str(session_id)
    if len(s) == 36 and s[14:15] == "7" and s.count("-") == 4:
        return s[-SESSION_ID_CHARS:]
    return s[:SESSION_ID_CHARS]


def session_matches(session_id: str, typed: str) -> bool:
    """Whether `typed` (a shown short id, or any prefix) names `session_id`."""
    return session_id.startswith(typed) or (short_id(session_id) == typed)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str, max_width: int | None = None,
          style: Style | None = None, shorten: Sequence[int] = (), optional: Sequence[int] = ()) -> str:
    """Rows aligned per `align` ('l'/'r' per column) within the width (`max_width`, else the
    style's: the terminal's, None for no limit). Nothing is ever clipped: when the table is too
    wide, model names in `shorten` columns lose their date suffix, then `optional` columns are
    left out (in that order, with a note), then text columns wrap onto continuation lines."""
    width = max_width if max_width is not None else (style.width if style is not None else WIDTH)
    rows = [[str(c) for c in r] for r in rows]
    headers = [str(h) for h in headers]
    keep = list(range(len(headers)))

    def needed(cols, rs, floor):
        """Width of `cols` with text columns narrowed to `floor` (0: at their natural width)."""
        ws = [max(len(r[i]) for r in [headers, *rs]) for i in cols]
        ws = [min(w, floor) if floor and align[i] == "l" and i not in shorten else w for i, w in zip(cols, ws)]
        return sum(ws) + 2 * (len(cols) - 1)
    if width is not None and needed(keep, rows, 0) > width and shorten:
        rows = _shortened(rows, shorten)
    dropped = []
    for i in optional:  # before text wraps to a ribbon, leave out what matters least
        if width is None or needed(keep, rows, COMFORT) <= width:
            break
        keep.remove(i)
        dropped.append(headers[i])
    headers = [headers[i] for i in keep]
    rows = [[r[i] for i in keep] for r in rows]
    align = "".join(align[i] for i in keep)
    names = {n for n, i in enumerate(keep) if i in shorten}  # model names wrap last
    cols = len(headers)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(cols)]
    overflow = 0 if width is None else sum(widths) + 2 * (cols - 1) - width
    # Narrow the widest text column a character at a time (bounded by the overflow): first down to
    # its longest word, so words stay whole, then (model names last) down to MIN_TEXT.
    words = [max([MIN_TEXT, *(len(c.strip()) for r in [headers, *rows] for c in _CHUNK.findall(r[i]))])
             for i in range(cols)]
    for floors in (words, [MIN_TEXT] * cols):
        while overflow > 0:
            i = max((i for i in range(cols) if align[i] == "l" and widths[i] > floors[i]),
                    key=lambda i: (i not in names, widths[i]), default=None)
            if i is None:
                break
            widths[i] -= 1
            overflow -= 1
    lines = []
    for n, r in enumerate([headers, *rows]):
        cells = [_wrap(r[i], widths[i]) for i in range(cols)]
        for k in range(max(len(c) for c in cells)):
            parts = []
            for i in range(cols):
                cell = cells[i][k] if k < len(cells[i]) else ""
                parts.append(cell.ljust(widths[i]) if align[i] == "l" else cell.rjust(widths[i]))
            line = "  ".join(parts).rstrip()
            lines.append(style.bold(line) if (style and n == 0) else line)
    if dropped:
        note = textwrap.fill(f"({', '.join(dropped)} left out to fit {width} columns; --wide shows them)", width)
        lines += [style.dim(n) if style else n for n in note.split("\n")]
    return "\n".join(lines)


MIN_TEXT = 10  # text columns wrap down to this
COMFORT = 16  # ... but optional columns go first while text would be narrower than this


def _shortened(rows: list[list[str]], cols: Sequence[int]) -> list[list[str]]:
    """`short_model` in `cols`, except where two different names would then read the same."""
    short: dict[str, str] = {}
    for r in rows:
        for i in cols:
            short.setdefault(r[i], short_model(r[i]))
    seen: dict[str, set] = {}
    for full, s in short.items():
        seen.setdefault(s, set()).add(full)
    return [[short[c] if i in cols and len(seen[short[c]]) == 1 else c for i, c in enumerate(r)] for r in rows]


# 2026-11-24 05:00 and 4-5-20250929 stay whole
_CHUNK = re.compile(r"(?:[^\s,-]|(?<=\d)[- ](?=\d))+[,-]?\s*|[\s,-]+")


def _wrap(text: str, width: int) -> list[str]:
    """A cell on as many lines as it needs, broken after spaces, commas or hyphens (model names
    break between family and version), never cut short."""
    if len(text) <= width:
        return [text]
    body = text.lstrip(" └")
    pad = " " * min(len(text) - len(body), width // 2)
    lines, line = [], text[:len(text) - len(body)]
    for chunk in _CHUNK.findall(body):
        while len(chunk) > width - len(pad):  # a single word wider than the column: split it
            if line.strip():
                lines.append(line.rstrip())
                line = pad
            room = width - len(line)
            lines.append(line + chunk[:room])
            chunk, line = chunk[room:], pad
        if len(line) + len(chunk.rstrip()) > width and line.strip():
            lines.append(line.rstrip())
            line = pad
        line += chunk
    if line.strip():
        lines.append(line.rstrip())
    return lines


def fill(text: str, style: Style | None, **kw) -> str:
    """Prose wrapped to the output width (80 when tables are unlimited)."""
    return textwrap.fill(text, width=(style.width if style is not None else None) or WIDTH, **kw)


def render_json(doc: dict) -> str:
    """JSON for scripts, readable and fast: one top-level key per line, one row per line for lists.

    `json.dumps(indent=...)` falls back to CPython's pure-Python encoder (seconds for thousands
    of sessions); each piece here goes through the C encoder.
    """
    from nomira.reports.money import stamp
    doc = stamp(doc)  # schema_version, and micro-dollars beside the dollars
    dumps = json.dumps
    row = _row_encoder()  # one encoder for the thousands of rows (json.dumps makes one per call)
    out = ["{"]  # one join at the end: no intermediate copies of a long sessions list
    for i, (key, value) in enumerate(doc.items()):
        out.append(",\n " if i else "\n ")
        out.append(dumps(key))
        if isinstance(value, EncodedRows):  # rows already stamped and encoded (summary.session_rows)
            if value.rows:  # (pieces of the one join: a 7 MB list copied once, not four times)
                rows = value.rows
                out.append(": [\n  ")
                out.extend(piece for text in rows for piece in (text, ",\n  "))
                out[-1] = "\n ]"
            else:
                out.append(": []")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(": [\n  ")
            for j, v in enumerate(value):
                if j:
                    out.append(",\n  ")
                out.append(row(v))
            out.append("\n ]")
        else:
            out.append(": ")
            out.append(dumps(value))
    out.append("\n}\n")
    return "".join(out)


class EncodedRows:
    """Rows of a list already stamped and encoded, one JSON text each, as `render_json` would have
    written the dicts (money.stamp skips them: not a dict nor a list)."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[str]) -> None:
        self.rows = rows


def _row_encoder():
    """json.dumps with its default settings, for dicts, made once (the C encoder when there is one)."""
    from json import encoder
    make = getattr(encoder, "c_make_encoder", None)
    if make is None:
        return json.dumps
    d = json.JSONEncoder()  # the defaults json.dumps uses: ", " and ": ", ASCII, NaN allowed, circularity checked
    encode = make({}, d.default, encoder.encode_basestring_ascii, None, d.key_separator, d.item_separator,
                  False, False, True)
    join = "".join
    return lambda v: join(encode(v, 0))
