"""Generated docs never drift: the user guide regenerates without a diff; `--help` works for every command."""
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(*args, timeout=240):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_user_guide_regenerates_without_a_diff():
    p = _tool("tools/gen_guide.py", "--check")
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]


def test_user_guide_covers_every_command():
    from nomira.cli import COMMANDS
    guide = (ROOT / "docs" / "USER-GUIDE.md").read_text()
    for name, (_module, _help, example) in COMMANDS.items():
        assert f"## nomira {name}\n" in guide and f"$ nomira {name} --help\n" in guide, name
        assert example in guide, name


# --- tools/build_docs.py -------------------------------------------------------------------------

def _build_docs():
    sys.path.insert(0, str(ROOT / "tools"))
    import build_docs
    return build_docs


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.srcs = set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag in ("link", "script", "img") and (a.get("href") or a.get("src")):
            self.srcs.append(a.get("href") or a.get("src"))


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text())
    return p


def check_links(root: Path, pages) -> list[str]:
    """Every relative href in `pages` (HTML files under `root`) names an existing file and, with a
    #fragment, an element id in it; nothing is loaded from another host, only the site's own files."""
    parsed, broken = {}, []
    for page in pages:
        info = parsed.setdefault(page, _parse(page))
        # a page may load only its own files (the brand's logo and favicon), never anything from elsewhere
        broken += [f"{page.name}: loads {s}" for s in info.srcs
                   if "://" in s or s.startswith("//") or not (page.parent / s.split("#")[0]).is_file()]
        for href in info.hrefs:
            if href.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, frag = href.partition("#")
            target = (page.parent / path).resolve() if path else page
            if not target.is_file() or root.resolve() not in target.parents:
                broken.append(f"{page.name}: {href} (no such file)")
                continue
            if frag and frag not in parsed.setdefault(target, _parse(target)).ids:
                broken.append(f"{page.name}: {href} (no such id)")
    return broken


def test_build_docs_renders_every_document_with_working_links(tmp_path):
    bd = _build_docs()
    site = tmp_path / "site"
    pages, broken = bd.build(site / "docs")
    assert broken == []
    import shutil
    shutil.copytree(ROOT / "site" / "brand", site / "brand")  # the logo and favicon the pages load
    names = {p.name for p in pages}
    assert {"index.html", "USER-GUIDE.html", "DEPLOY.html", "PRIVACY.html", "CONTRIBUTING.html",
            "ARCHITECTURE.html", "SECURITY.html"} <= names
    assert {f"{p.stem}.html" for p in (ROOT / "docs").glob("*.md")} <= names
    (site / "index.html").write_text("<p>landing</p>")  # the docs' header links up to the landing page
    html_files = sorted((site / "docs").glob("*.html"))
    assert len(html_files) == len(pages)
    assert check_links(site, html_files) == []
    guide = (site / "docs" / "USER-GUIDE.html").read_text()
    assert guide.count('href="#nomira-') >= 15 and '<h2 id="nomira-report">' in guide


def test_markdown_features(tmp_path):
    bd = _build_docs()
    page = bd.Page(tmp_path / "X.md", "X.html")
    md = """# Title *one*

Text with `a <b> code` and **bold**, a_snake_name, [self](#sub-part) and <https://example.com>.
<script>alert(1)</script>

## Sub: part

| a | b |
|---|---|
| `x\\|y` | p\\|q |

- one
  continued
  - nested
- two

1. first
2. second

```python
if a < b:
    pass
```

    indented <code>
"""
    out = bd.Renderer(page, {}).blocks(md.splitlines())
    assert '<h1 id="title-one">Title <em>one</em></h1>' in out
    assert "<code>a &lt;b&gt; code</code>" in out and "<strong>bold</strong>" in out
    assert "a_snake_name" in out and "&lt;script&gt;" in out and "<script>" not in out
    assert '<a href="#sub-part">self</a>' in out and '<a href="https://example.com">' in out
    assert '<h2 id="sub-part">' in out
    assert "<td><code>x|y</code></td><td>p|q</td>" in out
    assert "<ul><li>one continued\n<ul><li>nested</li></ul></li><li>two</li></ul>" in out
    assert "<ol><li>first</li><li>second</li></ol>" in out
    assert '<pre><code class="language-python">if a &lt; b:\n    pass</code></pre>' in out
    assert "<pre><code>indented &lt;code&gt;</code></pre>" in out
    assert page.links == [("X.html#sub-part", 3)]


# --- docs/PRIVACY.md is the allowlist ----------------------------------------------------------

def _fields_under(heading: str) -> set[str]:
    text = (ROOT / "docs" / "PRIVACY.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {line.split("`")[1] for line in rows}


def test_privacy_page_lists_exactly_the_wire_allowlist():
    from nomira.ledger import wire
    nested = {"tokens": wire.TOKEN_FIELDS, "tags": wire.WIRE_TAGS, "allowance": wire.ALLOWANCE_FIELDS,
              "modifiers": wire.MODIFIER_FIELDS}
    expected = set(wire.TOP_FIELDS) | {f"{k}.{v}" for k, vs in nested.items() for v in vs}
    assert _fields_under("What a usage event carries") == expected
    limit = set(wire.LIMIT_FIELDS) | {f"tags.{t}" for t in wire.LIMIT_TAGS}
    assert _fields_under("What a limit snapshot carries") == limit
    # and the enforcement the page describes: a key outside the list is refused by name
    event = {"schema_version": 1, "source": "api", "provider": "openai", "model": "gpt-5",
             "occurred_at": "2026-11-20T10:00:00+00:00", "tokens": {"input": 1}}
    wire.assert_no_content(dict(event, modifiers={m: "x" for m in nested["modifiers"]}))
    for extra in ({"prompt": "hi"}, {"tags": {"repo_url": "x"}}, {"tokens": {"input": 1, "text": 2}}):
        try:
            wire.assert_no_content({**event, **extra})
        except wire.SchemaError as exc:
            assert exc.field in ("prompt", "tags.repo_url", "tokens.text")
        else:
            raise AssertionError(f"{extra} was accepted")
