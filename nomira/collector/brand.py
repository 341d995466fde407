"""The brand's one source of truth: palette, type stacks, logo and favicon.

The dashboard's CSS variables are generated from here, and `tools/gen_brand.py` writes the same
values into site/brand/ (palette.css, palette.json, logo.svg, favicon.svg) for the site, the docs
and the deck, so a colour is changed in one place. docs/BRAND.md says how each is used.
"""
from __future__ import annotations

import json
from urllib.parse import quote

# Named brand colours; every token below refers to one of these.
COLOURS = {
    "ink": "#1b2230", "ink-dark": "#0b0e13", "slate": "#4f5968", "mist": "#dfe3e9", "paper": "#f5f6f8",
    "white": "#fff", "blue": "#2f5fc4", "blue-deep": "#1f4fae", "blue-sky": "#cfe0ff", "sky": "#7aa2e8",
    "green": "#6cbf8c", "green-deep": "#1e6b35", "amber": "#e0a040", "grey": "#9aa3af", "red": "#a4231b",
    "red-strong": "#b3261e", "focus": "#f0a000",
    # dark theme
    "night": "#11151c", "night-card": "#1a2029", "night-fg": "#e6e9ee", "night-muted": "#a9b2bf",
    "night-line": "#2d3541", "night-grid": "#252c36", "night-blue": "#6f9cf0", "night-link": "#9cbcff",
    "night-red": "#ff8a80", "night-green": "#7fd69b", "night-input": "#4f76bd", "night-output": "#8fb3ff",
    "night-read": "#4f9d6d", "night-write": "#c98f2e",
}
C = COLOURS

# The dashboard's tokens (nomira serve), light and dark (prefers-color-scheme); AA contrast.
DASHBOARD_LIGHT = {
    "bg": C["paper"], "card": C["white"], "fg": C["ink"], "muted": C["slate"], "line": C["mist"],
    "grid": "#eceff3", "accent": C["blue"], "link": C["blue-deep"], "head": C["ink"], "head-fg": C["white"],
    "head-link": C["blue-sky"], "err": C["red"], "ok": C["green-deep"], "focus": C["focus"],
    "s-input": C["sky"], "s-output": C["blue"], "s-cache_read": C["green"], "s-cache_write": C["amber"],
    "s-unsplit": C["grey"], "plan": C["red-strong"], "on-accent": C["white"],
}
DASHBOARD_DARK = {
    "bg": C["night"], "card": C["night-card"], "fg": C["night-fg"], "muted": C["night-muted"],
    "line": C["night-line"], "grid": C["night-grid"], "accent": C["night-blue"], "link": C["night-link"],
    "head": C["ink-dark"], "head-link": C["night-link"], "err": C["night-red"], "ok": C["night-green"],
    "s-input": C["night-input"], "s-output": C["night-output"], "s-cache_read": C["night-read"],
    "s-cache_write": C["night-write"], "plan": C["night-red"], "on-accent": C["ink-dark"],
}
# The site's, the docs' and the deck's tokens (the names tools/build_docs.py and site/*.html use).
SITE = {
    "ink": C["ink"], "muted": C["slate"], "line": C["mist"], "bg": C["white"], "soft": C["paper"],
    "accent": C["blue-deep"], "accent2": C["blue"], "code": "#f2f4f7", "term": C["ink-dark"],
    "term-fg": C["night-fg"], "ok": C["green-deep"], "warn": C["amber"],
}

FONT_SANS = 'system-ui,-apple-system,"Segoe UI",Roboto,sans-serif'
FONT_MONO = "ui-monospace,SFMono-Regular,Menlo,Consolas,monospace"

# The mark: a ledger-blue tile with an N whose diagonal is a rising tally line.
MARK_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" width="32" height="32">'
            f'<rect width="32" height="32" rx="7" fill="{C["blue"]}"/>'
            f'<path d="M9.5 23V9.5L22.5 22.5V9" fill="none" stroke="{C["white"]}" stroke-width="3.4" '
            'stroke-linecap="round" stroke-linejoin="round"/>'
            f'<circle cx="22.5" cy="9" r="2.4" fill="{C["amber"]}"/></svg>')
# The logo: the mark and the word, in the system sans (no external font).
LOGO_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 132 32" width="132" height="32" '
            'role="img" aria-label="Nomira">'
            + MARK_SVG.split(">", 1)[1].rsplit("</svg>", 1)[0]
            + f'<text x="40" y="23" font-family=\'{FONT_SANS}\' font-size="20" font-weight="700" '
            f'fill="{C["ink"]}">Nomira</text></svg>')


def _vars(tokens: dict) -> str:
    return ";".join(f"--{k}:{v}" for k, v in tokens.items())


def dashboard_css() -> str:
    """The dashboard's `:root` variables, light then dark."""
    return (":root{" + _vars(DASHBOARD_LIGHT) + ";color-scheme:light dark}\n"
            "@media (prefers-color-scheme:dark){:root{" + _vars(DASHBOARD_DARK) + "}}\n")


def site_css() -> str:
    """The site's `:root` variables (site/brand/palette.css)."""
    return ":root{" + _vars(SITE) + f";--sans:{FONT_SANS};--mono:{FONT_MONO}}}\n"


def data_url(svg: str) -> str:
    """An SVG as a data: URL, so a page needs no second request (and works from file://)."""
    return "data:image/svg+xml," + quote(svg, safe=" :/=,'\"()-.;")


def palette_json() -> str:
    return json.dumps({"colours": COLOURS, "dashboard": {"light": DASHBOARD_LIGHT, "dark": DASHBOARD_DARK},
                       "site": SITE, "fonts": {"sans": FONT_SANS, "mono": FONT_MONO}}, indent=2) + "\n"


def files() -> dict[str, str]:
    """site/brand/ as it must be: name -> content."""
    return {"logo.svg": LOGO_SVG + "\n", "favicon.svg": MARK_SVG + "\n", "palette.css": site_css(),
            "palette.json": palette_json()}
