"""Escape by default: every value goes through `esc`; only `Markup` (trusted fragments) skips it."""
from __future__ import annotations

import html


class Markup(str):
    """A fragment this code built itself from escaped parts; never wrap user data in it directly."""


def esc(value) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts) -> Markup:
    return Markup("".join(esc(p) for p in parts))


def tag(name: str, body="", **attrs) -> Markup:
    a = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None)
    return Markup(f"<{name}{a}>{esc(body)}</{name}>")
