"""Screenshot the team dashboard on the demo history, for the README's first screen.

    python tools/gen_screenshot.py     # writes docs/img/dashboard.png (headless Chromium; < 200 KB)

Two developers ship the demo history (Claude Code as `ana`, Codex as `bob`) into a fresh store; the
collector serves it on loopback; Chromium, driven as tests/test_browser.py drives it, captures the
home page at 1200 px. The history ends now, so the 7-day trend is full whenever this is run. The PNG
is not checked byte for byte (fonts and anti-aliasing differ between machines); the figures in the
README are (tools/gen_figures.py).
"""
from __future__ import annotations

import base64
import os
import sys
import tempfile
import threading
from pathlib import Path
from wsgiref.simple_server import make_server

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

OUT = ROOT / "docs" / "img" / "dashboard.png"
WIDTH, HEIGHT = 1200, 1180
LIMIT = 200_000


def main() -> int:
    from test_browser import CHROMIUM, Browser, Quiet  # the one DevTools client
    from nomira.cli import main as cli
    from nomira.commands.serve import ThreadingWSGIServer, make_app
    from nomira.demo import write_demo
    if not CHROMIUM:
        print("gen_screenshot: chromium is not installed", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="nomira-shot-") as tmp:
        tmp = Path(tmp)
        os.environ.update(HOME=str(tmp), XDG_CACHE_HOME=str(tmp / "c"), XDG_DATA_HOME=str(tmp / "d"),
                          XDG_STATE_HOME=str(tmp / "s"), XDG_CONFIG_HOME=str(tmp / "cfg"), TZ="UTC")
        for k in ("NOMIRA_DASHBOARD_PASSWORD", "NOMIRA_INGEST_TOKEN", "NOMIRA_DEMO_NOW"):
            os.environ.pop(k, None)
        demo = write_demo(tmp / "demo")
        db = tmp / "team.db"
        for folder, dev in (("claude", "ana"), ("codex", "bob")):
            if cli(["ship", "--path", str(demo / folder), "--db", str(db), "--developer", dev]) != 0:
                return 1
        app = make_app(db, "127.0.0.1")
        httpd = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=Quiet)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        browser = Browser(tmp / "profile")
        try:
            browser.open(f"http://127.0.0.1:{httpd.server_port}/?period=7d", WIDTH)
            browser.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT,
                                                               "deviceScaleFactor": 1, "mobile": False})
            data = base64.b64decode(browser.send("Page.captureScreenshot", {
                "format": "png", "clip": {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT, "scale": 1}})["data"])
        finally:
            browser.close()
            httpd.shutdown()
            httpd.server_close()
    if len(data) > LIMIT:
        print(f"gen_screenshot: {len(data):,} bytes, over the {LIMIT:,} limit", file=sys.stderr)
        return 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(data)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
