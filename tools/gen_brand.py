"""Write site/brand/ (logo, favicon, palette.css, palette.json) from nomira/collector/brand.py, and the
inline palette and logo of self-contained pages (`/* brand:palette */`, `<!-- brand:logo -->` regions).

    python tools/gen_brand.py           # rewrite the files
    python tools/gen_brand.py --check   # exit 1, with a diff, when a file differs from brand.py

brand.py is the one source of the palette: the dashboard reads it directly; the site, the docs and
the deck read these files (or inline palette.css), so both sides change together.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's nomira

from nomira.collector import brand  # noqa: E402
from demo_env import write_or_check  # noqa: E402  (one writer for every generator)

OUT = ROOT / "site" / "brand"
# Self-contained pages carry the palette and the logo inline, between these markers.
PAGES = [ROOT / "site" / "one-pager.html"]
INLINE = re.compile(r"(/\* brand:palette \*/|<!-- brand:logo -->)(.*?)(/\* /brand:palette \*/|<!-- /brand:logo -->)", re.S)


def inline(text: str) -> str:
    """A page with its palette and logo regions rewritten from brand.py."""
    def one(m: re.Match) -> str:
        body = ("\n" + brand.site_css()) if m.group(1).startswith("/*") else \
            brand.LOGO_SVG.replace("<svg ", '<svg class="logo" ', 1)
        return m.group(1) + body + m.group(3)
    return INLINE.sub(one, text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = [write_or_check(OUT / name, text, check, "tools/gen_brand.py") for name, text in brand.files().items()]
    stale += [write_or_check(page, inline(page.read_text()), check, "tools/gen_brand.py")
              for page in PAGES if page.exists()]
    return 1 if check and any(stale) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
