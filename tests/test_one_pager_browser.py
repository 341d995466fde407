"""The one-pager (issue 26) fits a phone and a desktop in a real browser, prints on A4 and Letter
without spilling sideways, and the dashboard's logo actually renders. Reuses tests/test_browser.py's
DevTools client."""
import base64
import re
import threading
from pathlib import Path
from wsgiref.simple_server import make_server

from nomira.commands.serve import ThreadingWSGIServer, make_app
from test_browser import CHROMIUM, OUTPUT, Browser, Quiet, pytestmark  # noqa: F401 - the skip rule too

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "site" / "one-pager.html"
MEASURE = """(() => ({scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
  logo: (() => { const r = document.querySelector('header svg.logo').getBoundingClientRect();
                 return r.width > 40 && r.height > 10; })(),
  kpis: [...document.querySelectorAll('.kpi b')].map(b => b.textContent),
  external: [...document.querySelectorAll('link[rel=stylesheet],script[src],img[src^=http]')].length,
  wide: [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right >
                                                     document.documentElement.clientWidth + 1).length}))()"""


def test_one_pager_fits_390_and_1280_and_prints(tmp_path):
    assert CHROMIUM, "chromium must be installed in CI"
    OUTPUT.mkdir(exist_ok=True)
    browser = Browser(tmp_path / "profile")
    try:
        seen = {}
        for width in (390, 1280):
            browser.open(PAGE.as_uri(), width)
            seen[width] = m = browser.js(MEASURE)
            shot = OUTPUT / f"one-pager-{width}.png"
            browser.screenshot(shot, width)
            assert shot.stat().st_size > 5_000
            assert m["innerWidth"] == width and m["scrollWidth"] <= width and not m["wide"], (width, m)
            assert m["logo"] and m["external"] == 0, (width, m)
            assert len(m["kpis"]) == 4 and all(k.strip() for k in m["kpis"]), m
        pdfs = {}
        for paper, (w, h) in {"a4": (8.27, 11.69), "letter": (8.5, 11.0)}.items():
            browser.send("Emulation.setEmulatedMedia", {"media": "print"})
            printed = browser.js("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            pdf = browser.send("Page.printToPDF", {"paperWidth": w, "paperHeight": h, "printBackground": True,
                                                   "preferCSSPageSize": False}, timeout=60)
            pdfs[paper] = base64.b64decode(pdf["data"])
            (OUTPUT / f"one-pager-{paper}.pdf").write_bytes(pdfs[paper])
            assert printed, paper
        browser.send("Emulation.setEmulatedMedia", {"media": ""})
    finally:
        browser.close()
    for paper, data in pdfs.items():  # a one-pager: one sheet of A4 and of Letter
        assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", data)) == 1, paper


def test_dashboard_logo_renders_in_the_browser(tmp_path, monkeypatch):
    assert CHROMIUM, "chromium must be installed in CI"
    monkeypatch.delenv("NOMIRA_DASHBOARD_PASSWORD", raising=False)
    app = make_app(tmp_path / "team.db", "127.0.0.1")
    httpd = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(f"http://127.0.0.1:{httpd.server_port}/", 390)
        img = browser.js("(() => { const i = document.querySelector('header .brand img');"
                         "return [i.complete, i.naturalWidth, i.getBoundingClientRect().width]; })()")
        icon = browser.js("document.querySelector('link[rel=icon]').href.slice(0, 26)")
    finally:
        browser.close()
        httpd.shutdown()
        httpd.server_close()
    assert img[0] and img[1] > 0 and img[2] >= 16, img  # decoded, not a broken-image box
    assert icon == "data:image/svg+xml,%3Csvg "
