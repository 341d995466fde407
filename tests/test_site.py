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

from test_browser import CHROMIUM, FLAGS, OUTPUT
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
    from chromium_cdp import Chromium
    tmp = tmp_path_factory.mktemp("site")
    site = _site_copy(tmp)
    with Chromium(CHROMIUM, FLAGS, str(tmp / "profile")) as c:
        yield c, site


def _press(c, key):
    for kind in ("rawKeyDown", "keyUp"):
        c.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=KEYS[key])


@pytestmark_browser
@pytest.mark.parametrize("width", WIDTHS)
def test_landing_page_in_chromium_has_no_horizontal_overflow(browser, width):
    c, site = browser
    c.open((site / "index.html").as_uri(), width, 900)
    assert c.evaluate("window.innerWidth") == width
    assert c.evaluate(WIDEST) <= width
    assert c.evaluate("document.querySelectorAll('svg.chart .bar').length") >= 10  # charts drawn
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / f"site-index-{width}.png"
    c.screenshot(shot, full_height=True)
    assert shot.stat().st_size > 30_000


@pytestmark_browser
@pytest.mark.parametrize("width", WIDTHS)
def test_deck_in_chromium_moves_by_keyboard_without_horizontal_overflow(browser, width):
    c, site = browser
    c.open((site / "deck.html").as_uri(), width, 844 if width < 600 else 800)
    active = "document.querySelector('.slide.active').id"
    n = c.evaluate("document.querySelectorAll('.slide').length")
    assert n >= 8 and c.evaluate(active) == "s1"
    OUTPUT.mkdir(exist_ok=True)
    seen, widest = [], 0
    for i in range(1, n + 1):
        seen.append(c.evaluate(active))
        widest = max(widest, c.evaluate(WIDEST))
        if i in (1, 8):
            c.screenshot(OUTPUT / f"site-deck-{width}-slide{i}.png")
        _press(c, "ArrowRight")
    assert seen == [f"s{i}" for i in range(1, n + 1)]
    assert c.evaluate(active) == f"s{n}"  # past the last slide: stays there
    assert c.evaluate("location.hash") == f"#s{n}"
    _press(c, "ArrowLeft")
    assert c.evaluate(active) == f"s{n - 1}"
    _press(c, "Home")
    assert c.evaluate(active) == "s1"
    assert widest <= width, f"deck at {width}px is {widest}px wide"
    assert (OUTPUT / f"site-deck-{width}-slide8.png").stat().st_size > 15_000


@pytestmark_browser
def test_rendered_docs_fit_a_phone(browser):
    c, site = browser
    wide = {}
    for page in sorted((site / "docs").glob("*.html")):
        c.open(page.as_uri(), 390, 844)
        if c.evaluate(WIDEST) > 390:
            wide[page.name] = c.evaluate(WIDEST)
    assert wide == {}
