"""Terminal rendering: aligned tables that fit 80 columns, colour only when wanted."""
from __future__ import annotations

import json
import os
import sys
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


def tokens(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def pct(x: float | None) -> str:
    return f"{(x or 0) * 100:.1f}%"


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str, max_width: int = WIDTH,
          style: Style | None = None) -> str:
    """Render rows; `align` has one of 'l'/'r' per column. The widest text columns shrink to fit."""
    cols = len(headers)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(cols)]
    overflow = sum(widths) + 2 * (cols - 1) - max_width
    while overflow > 0:
        i = max((i for i in range(cols) if align[i] == "l"), key=lambda i: widths[i], default=None)
        if i is None or widths[i] <= 12:
            break
        cut = min(overflow, widths[i] - 12)
        widths[i] -= cut
        overflow -= cut
    lines = []
    for n, r in enumerate([headers, *rows]):
        cells = []
        for i in range(cols):
            cell = clip(str(r[i]), widths[i])
            cells.append(cell.ljust(widths[i]) if align[i] == "l" else cell.rjust(widths[i]))
        line = "  ".join(cells).rstrip()
        lines.append(style.bold(line) if (style and n == 0) else line)
    return "\n".join(lines)


def render_json(doc: dict) -> str:
    """JSON for scripts, readable and fast: one top-level key per line, one row per line for lists.

    `json.dumps(indent=...)` falls back to CPython's pure-Python encoder (seconds for thousands
    of sessions); each piece here goes through the C encoder.
    """
    dumps = json.dumps
    out = ["{"]  # one join at the end: no intermediate copies of a long sessions list
    for i, (key, value) in enumerate(doc.items()):
        out.append(",\n " if i else "\n ")
        out.append(dumps(key))
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(": [\n  ")
            for j, v in enumerate(value):
                if j:
                    out.append(",\n  ")
                out.append(dumps(v))
            out.append("\n ]")
        else:
            out.append(": ")
            out.append(dumps(value))
    out.append("\n}\n")
    return "".join(out)
