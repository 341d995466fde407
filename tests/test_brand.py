"""Brand (issue 26): one palette source, the logo and favicon in the dashboard and in site/brand/."""
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

from nomira.collector import brand
from test_collector import server  # noqa: F401 - the shared fixture

ROOT = Path(__file__).resolve().parent.parent


def test_dashboard_serves_the_logo_as_favicon_and_in_its_header(server):
    c, _ = server()
    status, html = c.get("/")
    assert status == 200
    icon = re.search(r'<link rel="icon" type="image/svg\+xml" href="data:image/svg\+xml,([^"]+)">', html)
    assert icon, "no SVG favicon in the dashboard's <head>"
    served = unquote(icon.group(1).replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&"))
    assert served == brand.MARK_SVG == (ROOT / "site/brand/favicon.svg").read_text().strip()
    header = html.split("<header>", 1)[1].split("</header>", 1)[0]
    assert 'class="brand"><img src="data:image/svg+xml,' in header and "Nomira</b>" in header


def test_dashboard_colours_come_from_the_palette():
    from nomira.collector.pages import CSS
    root = CSS.split("@media", 1)[0]
    for name, value in brand.DASHBOARD_LIGHT.items():
        assert f"--{name}:{value}" in root
    dark = CSS.split("@media (prefers-color-scheme:dark)", 1)[1].split("}}", 1)[0]
    for name, value in brand.DASHBOARD_DARK.items():
        assert f"--{name}:{value}" in dark
    # no colour literal in the dashboard's variables that the palette does not name
    used = set(re.findall(r"--[\w-]+:(#[0-9a-f]{3,6})", root + dark))
    assert used <= set(brand.COLOURS.values()) | set(brand.DASHBOARD_LIGHT.values())


def test_site_brand_files_match_the_palette_source():
    p = subprocess.run([sys.executable, "tools/gen_brand.py", "--check"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    css = (ROOT / "site/brand/palette.css").read_text()
    assert f"--accent:{brand.SITE['accent']}" in css and "Nomira" in (ROOT / "site/brand/logo.svg").read_text()


def test_brand_check_fails_when_a_file_drifts(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_brand
    finally:
        sys.path.remove(str(ROOT / "tools"))
    monkeypatch.setattr(gen_brand, "OUT", tmp_path)
    assert gen_brand.main([]) == 0 and gen_brand.main(["--check"]) == 0
    (tmp_path / "palette.css").write_text(":root{--accent:#000}\n")
    assert gen_brand.main(["--check"]) == 1
