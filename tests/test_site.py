"""The public site: figures regenerated from the demo history without a diff, self-contained pages
whose links resolve, and headless Chromium at 390 px and 1280 px with no horizontal overflow
(screenshots kept under tests/output/)."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_browser import CHROMIUM, OUTPUT
from test_docs import check_links

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
PAGES = ("index.html", "deck.html")
WIDTHS = (390, 1280)


def test_site_figures_regenerate_without_a_diff():
    p = subprocess.run([sys.executable, "tools/gen_site.py", "--check"], cwd=ROOT, capture_output=True, text=True,
                       timeout=240)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    for name in PAGES:
        text = (SITE / name).read_text()
        regions = re.findall(r"<!-- gen:([\w-]+) -->(.*?)<!-- /gen:\1 -->", text, re.S)
        assert len(regions) >= 6 and all(body.strip() for _, body in regions), name


def _site_copy(tmp_path: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tools"))
    import build_docs
    site = tmp_path / "site"
    site.mkdir()
    for name in PAGES:
        shutil.copy(SITE / name, site / name)
    shutil.copytree(SITE / "brand", site / "brand")  # the logo and favicon the pages load
    _pages, broken = build_docs.build(site / "docs")
    assert broken == []
    return site


def test_pages_are_self_contained_and_every_link_resolves(tmp_path):
    site = _site_copy(tmp_path)
    assert check_links(site, [site / n for n in PAGES] + sorted((site / "docs").glob("*.html"))) == []
    for name in PAGES:
        text = (site / name).read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text.split("<tbody>")[0]), name  # nothing fetched
        assert "@import" not in text and "url(" not in text, name


pytestmark_browser = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                        reason="Debian's chromium is not installed (.ci/run installs it)")
KEYS = {"ArrowRight": 39, "ArrowLeft": 37, "Home": 36, "End": 35}
WIDEST = "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert CHROMIUM, "chromium must be installed in CI"
    from test_browser import Browser  # the dashboard test's DevTools client
    tmp = tmp_path_factory.mktemp("site")
    site = _site_copy(tmp)
    b = Browser(tmp / "profile")
    try:
        yield b, site
    finally:
        b.close()


def _press(b, key):
    for kind in ("rawKeyDown", "keyUp"):
        b.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": KEYS[key]})


@pytestmark_browser
@pytest.mark.parametrize("width", WIDTHS)
def test_landing_page_in_chromium_has_no_horizontal_overflow(browser, width):
    b, site = browser
    b.open((site / "index.html").as_uri(), width)
    assert b.js("window.innerWidth") == width
    assert b.js(WIDEST) <= width
    assert b.js("[...document.querySelectorAll('svg .bar')].filter(e => e.getBoundingClientRect().width).length") >= 10
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / f"site-index-{width}.png"
    b.screenshot(shot, width)
    assert shot.stat().st_size > 30_000


@pytestmark_browser
@pytest.mark.parametrize("width", WIDTHS)
def test_deck_in_chromium_moves_by_keyboard_without_horizontal_overflow(browser, width):
    b, site = browser
    b.open((site / "deck.html").as_uri(), width)
    active = "document.querySelector('.slide.active').id"
    n = b.js("document.querySelectorAll('.slide').length")
    assert n >= 8 and b.js(active) == "s1"
    OUTPUT.mkdir(exist_ok=True)
    seen, widest = [], 0
    for i in range(1, n + 1):
        seen.append(b.js(active))
        widest = max(widest, b.js(WIDEST))
        _press(b, "ArrowRight")
    assert seen == [f"s{i}" for i in range(1, n + 1)]
    assert b.js(active) == f"s{n}"  # past the last slide: stays there
    assert b.js("location.hash") == f"#s{n}"
    _press(b, "ArrowLeft")
    assert b.js(active) == f"s{n - 1}"
    _press(b, "Home")
    assert b.js(active) == "s1"
    assert widest <= width, f"deck at {width}px is {widest}px wide"
    b.screenshot(OUTPUT / f"site-deck-{width}-slide1.png", width)
    for _ in range(7):
        _press(b, "ArrowRight")
    assert b.js(active) == "s8"  # the slide of figures
    b.screenshot(OUTPUT / f"site-deck-{width}-slide8.png", width)
    assert (OUTPUT / f"site-deck-{width}-slide8.png").stat().st_size > 15_000


@pytestmark_browser
def test_rendered_docs_fit_a_phone(browser):
    b, site = browser
    wide = {}
    for page in sorted((site / "docs").glob("*.html")):
        b.open(page.as_uri(), 390)
        if b.js(WIDEST) > 390:
            wide[page.name] = b.js(WIDEST)
    assert wide == {}
