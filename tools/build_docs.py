"""Render README.md and docs/*.md into styled, self-contained HTML under site/docs/ (standard library only).

    python tools/build_docs.py            # writes site/docs/*.html; exit 1 on a broken internal link

The Markdown the docs use, and only that: ATX headings (GitHub-style ids, so `#nomira-report` links
work), paragraphs, `-`/`*`/`1.` lists with indented continuations and nesting, pipe tables (`\\|` for a
literal bar), fenced and indented code, block quotes, rules, `code`, **bold**, *emphasis*, [links](X.md)
and <https://autolinks>. Everything else is text: raw HTML in a document is escaped, never passed through.
Links between documents are rewritten to the rendered pages (`X.md#part` -> `X.html#part`, README ->
index.html); a relative link to anything not rendered, or to a heading that does not exist, is an error.
"""
from __future__ import annotations

import html
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
OUT = ROOT / "site" / "docs"

# The one palette of the docs, the landing page and the deck (tools/gen_site.py writes it into those).
PALETTE = (":root{--ink:#1b2330;--muted:#5b6676;--line:#dfe3ea;--bg:#ffffff;--soft:#f5f7fa;--accent:#0f6e5c;"
           "--accent2:#3b6fd8;--code:#f2f4f7;--term:#0f1720}")
CSS = PALETTE + """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.6 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
a{color:var(--accent)}
header.top{display:flex;gap:1rem;align-items:center;padding:.7rem 1.2rem;border-bottom:1px solid var(--line)}
header.top a.brand{font-weight:700;text-decoration:none;color:var(--ink);font-size:1.1rem}
header.top a.brand b{color:var(--accent)}
.wrap{display:flex;max-width:78rem;margin:0 auto}
nav.side{flex:0 0 14rem;padding:1.2rem 1rem;border-right:1px solid var(--line);font-size:.93rem}
nav.side ul{list-style:none;margin:0;padding:0}
nav.side li{margin:.15rem 0}
nav.side a{text-decoration:none;color:var(--muted)}
nav.side a[aria-current]{color:var(--ink);font-weight:600}
main{flex:1;min-width:0;padding:1.2rem 2rem 4rem;overflow-wrap:break-word}
h1,h2,h3,h4{line-height:1.25;margin:1.6em 0 .5em}
h1{margin-top:.4em;font-size:2rem}
h2{padding-bottom:.2em;border-bottom:1px solid var(--line)}
h2 a.anchor,h3 a.anchor{visibility:hidden;text-decoration:none;margin-left:.3em;color:var(--muted)}
h2:hover a.anchor,h3:hover a.anchor{visibility:visible}
code{font:.88em/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--code);padding:.1em .3em;
border-radius:4px;overflow-wrap:anywhere}
pre{background:var(--code);padding:.8rem 1rem;border-radius:6px;overflow-x:auto;line-height:1.4}
pre code{background:none;padding:0;overflow-wrap:normal;font-size:.85em}
.table{overflow-x:auto;margin:1rem 0}
table{border-collapse:collapse;font-size:.93rem}
th,td{border:1px solid var(--line);padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:var(--soft)}
blockquote{margin:1rem 0;padding:.2rem 1rem;border-left:4px solid var(--line);color:var(--muted)}
li>p{margin:.2em 0}
hr{border:0;border-top:1px solid var(--line);margin:2rem 0}
footer{color:var(--muted);font-size:.85rem;margin-top:3rem}
@media (max-width:760px){.wrap{display:block}nav.side{border-right:0;border-bottom:1px solid var(--line)}
nav.side ul{display:flex;flex-wrap:wrap;gap:.2rem .9rem}main{padding:1rem}h1{font-size:1.6rem}}
"""


@dataclass
class Page:
    source: Path
    name: str  # output file name
    title: str = ""
    ids: set[str] = field(default_factory=set)
    links: list[tuple[str, int]] = field(default_factory=list)  # (href, line) for the link check


FIRST = ("USER-GUIDE", "DEPLOY", "PRIVACY", "SECURITY")  # the rest of docs/ follows alphabetically


def pages() -> list[Page]:
    docs = sorted(DOCS.glob("*.md"), key=lambda p: (FIRST.index(p.stem) if p.stem in FIRST else len(FIRST), p.stem))
    return [Page(ROOT / "README.md", "index.html"), *(Page(p, p.stem + ".html") for p in docs)]


def nav_label(page: Page) -> str:
    return "Overview" if page.name == "index.html" else page.source.stem.replace("-", " ").capitalize()


def slug(text: str, used: set[str]) -> str:
    """GitHub's heading id: lower case, punctuation dropped, spaces to hyphens, -1/-2 for repeats."""
    base = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
    s, n = base, 0
    while s in used:
        n += 1
        s = f"{base}-{n}"
    used.add(s)
    return s


def plain(md: str) -> str:
    """A heading's text as GitHub slugs it: markup and link targets gone."""
    md = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", md)
    return re.sub(r"[`*_]", "", md)


def _marker_kind(line: str) -> str | None:
    """"ol" or "ul" for a list item line (a new kind of marker starts a new list), else None."""
    m = re.match(r"^\s*([-*+]|\d+[.)])\s+", line)
    return None if not m else "ol" if m.group(1)[0].isdigit() else "ul"


class Renderer:
    def __init__(self, page: Page, by_source: dict[Path, Page]):
        self.page, self.by_source = page, by_source
        self.line = 0

    # --- inline -----------------------------------------------------------------
    TOKENS = re.compile(r"(`+)(.+?)\1|\[((?:`[^`]*`|[^\]])+)\]\(([^)\s]+)\)|<(https?://[^>\s]+)>")

    def inline(self, text: str) -> str:
        """Code spans, links and autolinks left to right; emphasis in the text between them."""
        out, pos = [], 0
        for m in self.TOKENS.finditer(text):
            out.append(self._emph(html.escape(text[pos:m.start()], quote=False)))
            if m.group(1):
                code = m.group(2).strip() or m.group(2)
                out.append(f"<code>{html.escape(code, quote=False)}</code>")
            elif m.group(3):
                out.append(f'<a href="{html.escape(self.href(m.group(4)))}">{self.inline(m.group(3))}</a>')
            else:
                url = html.escape(m.group(5))
                out.append(f'<a href="{url}">{url}</a>')
            pos = m.end()
        out.append(self._emph(html.escape(text[pos:], quote=False)))
        return "".join(out)

    @staticmethod
    def _emph(text: str) -> str:
        text = re.sub(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", r"<strong>\1</strong>", text)
        text = re.sub(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])", r"<em>\1</em>", text)
        return re.sub(r"(?<!\w)_(?=\S)([^_]+?)(?<=\S)_(?!\w)", r"<em>\1</em>", text)

    def href(self, target: str) -> str:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            return target  # http(s), mailto
        path, _, frag = target.partition("#")
        if not path:
            self.page.links.append((f"{self.page.name}#{frag}", self.line))
            return f"#{frag}"
        resolved = (self.page.source.parent / path).resolve()
        dest = self.by_source.get(resolved)
        name = dest.name if dest else f"MISSING:{path}"
        self.page.links.append((name + (f"#{frag}" if frag else ""), self.line))
        return name + (f"#{frag}" if frag else "")

    # --- blocks -----------------------------------------------------------------
    def blocks(self, lines: list[str], base_line: int = 0) -> str:
        out, i = [], 0
        para: list[str] = []
        para_at = [0]

        def flush():
            if para:
                self.line = para_at[0]
                out.append(f"<p>{self.inline(' '.join(s.strip() for s in para))}</p>")
                para.clear()
        while i < len(lines):
            line = lines[i]
            self.line = base_line + i + 1
            stripped = line.strip()
            fence = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
            if fence:
                flush()
                mark, lang = fence.group(1), fence.group(2)
                j = i + 1
                while j < len(lines) and not lines[j].strip().startswith(mark):
                    j += 1
                code = "\n".join(lines[i + 1:j])
                cls = f' class="language-{lang}"' if lang else ""
                out.append(f"<pre><code{cls}>{html.escape(code, quote=False)}</code></pre>")
                i = j + 1
                continue
            if not stripped:
                flush()
                i += 1
                continue
            head = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
            if head:
                flush()
                level, text = len(head.group(1)), head.group(2)
                ident = slug(plain(text), self.page.ids)
                if level == 1 and not self.page.title:
                    self.page.title = plain(text)
                anchor = (f'<a class="anchor" href="#{ident}" aria-label="link to this section">#</a>'
                          if level > 1 else "")
                out.append(f'<h{level} id="{ident}">{self.inline(text)}{anchor}</h{level}>')
                i += 1
                continue
            if stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\s*\|?\s*:?-{3,}", lines[i + 1]):
                flush()
                j = i + 2
                while j < len(lines) and lines[j].strip().startswith("|"):
                    j += 1
                out.append(self.table(lines[i], lines[i + 2:j]))
                i = j
                continue
            if re.match(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$", line) and not para:
                out.append("<hr>")
                i += 1
                continue
            if stripped.startswith(">"):
                flush()
                j = i
                while j < len(lines) and lines[j].strip().startswith(">"):
                    j += 1
                inner = [re.sub(r"^\s*>\s?", "", s) for s in lines[i:j]]
                out.append(f"<blockquote>{self.blocks(inner, base_line + i)}</blockquote>")
                i = j
                continue
            item = re.match(r"^(\s*)([-*+]|\d+[.)])\s+", line)
            if item and (not para or not line.startswith(" ")):
                flush()
                j = self._list_end(lines, i, len(item.group(1)))
                out.append(self.list(lines[i:j], base_line + i))
                i = j
                continue
            if line.startswith("    ") and not para:
                j = i
                while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                    j += 1
                while j > i and not lines[j - 1].strip():
                    j -= 1
                code = "\n".join(s[4:] for s in lines[i:j])
                out.append(f"<pre><code>{html.escape(code, quote=False)}</code></pre>")
                i = j
                continue
            if not para:
                para_at[0] = self.line
            para.append(line)
            i += 1
        flush()
        return "\n".join(out)

    @staticmethod
    def _list_end(lines: list[str], start: int, indent: int) -> int:
        """The line after the list starting at `start`: it ends at a blank line followed by text that is
        neither indented under it nor another item, or at any other block at its own indent."""
        j = start + 1
        while j < len(lines):
            s = lines[j]
            if not s.strip():
                nxt = next((t for t in lines[j + 1:] if t.strip()), None)
                if nxt is None:
                    return j
                ind = len(nxt) - len(nxt.lstrip())
                if ind > indent or (ind == indent and _marker_kind(nxt) == _marker_kind(lines[start])):
                    j += 1
                    continue
                return j
            ind = len(s) - len(s.lstrip())
            if ind <= indent and re.match(r"^\s*(#{1,6}\s|```|~~~|\|)", s):
                return j
            j += 1
        return j

    def list(self, lines: list[str], base_line: int) -> str:
        first = re.match(r"^(\s*)([-*+]|\d+[.)])\s+", lines[0])
        indent = len(first.group(1))
        ordered = first.group(2)[0].isdigit()
        items: list[list[str]] = []
        item_lines: list[int] = []
        for n, s in enumerate(lines):
            m = re.match(r"^(\s*)([-*+]|\d+[.)])\s+", s)
            if m and len(m.group(1)) == indent:
                items.append([s[m.end():]])
                item_lines.append(n)
                continue
            items[-1].append(s)
        tag = "ol" if ordered else "ul"
        start = ""
        if ordered:
            number = int(re.match(r"\s*(\d+)", lines[0]).group(1))
            start = f' start="{number}"' if number != 1 else ""
        rendered = []
        for body, n in zip(items, item_lines):
            # continuation lines are dedented to the item's content column (at most 4 spaces)
            rest = []
            for s in body[1:]:
                k = min(len(s) - len(s.lstrip()), indent + 4)
                rest.append(s[k:] if s.strip() else "")
            inner = self.blocks([body[0], *rest], base_line + n)
            if inner.startswith("<p>") and inner.count("<p>") == 1:
                inner = inner[3:].replace("</p>", "", 1)
            rendered.append(f"<li>{inner}</li>")
        return f"<{tag}{start}>" + "".join(rendered) + f"</{tag}>"

    def table(self, header: str, rows: list[str]) -> str:
        def cells(row: str) -> list[str]:
            row = row.strip()
            row = row[1:] if row.startswith("|") else row
            row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
            return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)]
        head = "".join(f"<th>{self.inline(c)}</th>" for c in cells(header))
        body = "".join("<tr>" + "".join(f"<td>{self.inline(c)}</td>" for c in cells(r)) + "</tr>" for r in rows)
        return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def layout(page: Page, body: str, all_pages: list[Page]) -> str:
    nav = "".join(
        f'<li><a href="{p.name}"{" aria-current=page" if p is page else ""}>{html.escape(nav_label(p))}</a></li>'
        for p in all_pages)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(page.title)} · Nomira docs</title>
<style>{CSS.strip()}</style></head>
<body>
<header class="top"><a class="brand" href="../index.html">N<b>o</b>mira</a><span>documentation</span></header>
<div class="wrap"><nav class="side" aria-label="documents"><ul>{nav}</ul></nav>
<main>
{body}
<footer>Rendered from <code>{html.escape(page.source.relative_to(ROOT).as_posix())}</code> by
<code>tools/build_docs.py</code>.</footer>
</main></div>
</body></html>
"""


def build(out: Path = OUT) -> tuple[list[Page], list[str]]:
    """Render every page; return the pages and the broken links (empty when all resolve)."""
    all_pages = pages()
    by_source = {p.source.resolve(): p for p in all_pages}
    bodies = {}
    for p in all_pages:
        bodies[p.name] = Renderer(p, by_source).blocks(p.source.read_text().splitlines())
        p.title = p.title or p.source.stem
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.html"):
        if old.name not in bodies:
            old.unlink()
    for p in all_pages:
        (out / p.name).write_text(layout(p, bodies[p.name], all_pages))
    ids = {p.name: p.ids for p in all_pages}
    broken = []
    for p in all_pages:
        for href, line in p.links:
            name, _, frag = href.partition("#")
            where = f"{p.source.relative_to(ROOT)}:{line}"
            if name not in ids:
                broken.append(f"{where}: link to {name.removeprefix('MISSING:')}, which is not a rendered document")
            elif frag and frag not in ids[name]:
                broken.append(f"{where}: link to {href}: no such heading")
    return all_pages, broken


def main() -> int:
    all_pages, broken = build()
    for b in broken:
        print(f"build_docs: {b}", file=sys.stderr)
    print(f"build_docs: {len(all_pages)} pages in {OUT.relative_to(ROOT)}, "
          f"{sum(len(p.links) for p in all_pages)} internal links, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
