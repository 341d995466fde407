"""Write the figures in site/index.html and site/deck.html from the product run on the demo history.

    python tools/gen_site.py           # rewrite every <!-- gen:NAME --> ... <!-- /gen:NAME --> region
    python tools/gen_site.py --check   # exit 1 (with a diff) when a page differs from a fresh run

The prose around the markers is hand-written and says nothing numeric; every figure, chart and
sample between them comes from `nomira ... --json` (and one text report) on the demo history,
with the inputs pinned by tools/demo_env.py, so the pages never drift from the product.
"""
from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_env import ROOT, DemoEnv, write_or_check  # noqa: E402

from nomira.cli import SOURCE_CHOICES  # noqa: E402
from nomira.collector.markup import esc  # noqa: E402
from nomira.collector import svg  # noqa: E402
from nomira.reports.render import pct, short_model, tokens, usd  # noqa: E402
from nomira.reports.text import SOURCE_NAMES  # noqa: E402
from nomira.ledger import wire  # noqa: E402
from build_docs import PALETTE  # noqa: E402

PAGES = [ROOT / "site" / "index.html", ROOT / "site" / "deck.html"]
MARKER = re.compile(r"(<!-- gen:([\w-]+) -->|/\* gen:([\w-]+) \*/)(.*?)(<!-- /gen:\2 -->|/\* /gen:\3 \*/)", re.S)
# Rules both pages share (their own layout rules follow in each page): one definition, written in.
BASE_CSS = "\n" + PALETTE + """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
a{color:var(--accent)}
code{font:.88em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);padding:.1em .3em;
border-radius:4px;overflow-wrap:anywhere}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(9.5rem,1fr));gap:.8rem;margin:1.4rem 0 .6rem}
.kpi{background:var(--soft);border:1px solid var(--line);border-radius:10px;padding:.8rem 1rem}
.kpi b{display:block;font-size:1.6rem;line-height:1.2}
.kpi span{color:var(--muted);font-size:.9rem}
.note{color:var(--muted);font-size:.88rem}
svg.chart{display:block;height:auto}
svg .bar{fill:var(--accent2)}
svg .axis,svg .label,svg .value{font-size:12px;fill:var(--muted);font-family:system-ui,sans-serif}
svg .base{stroke:var(--line)}
ul.fields{list-style:none;padding:0;margin:.8rem 0}
ul.fields li{margin:.35rem 0}
ul.fields b{display:inline-block;min-width:4.2rem;color:var(--muted);font-weight:600}
svg text{fill:var(--muted);font-size:12px}
svg .grid{stroke:var(--line)}
svg .hit{fill:transparent}
svg .axis-title{font-weight:600}
.chart-box svg{display:block;width:100%;height:auto}
.chart-box svg.hbar{max-width:640px}
.chart-box .n{display:none}
@media (max-width:640px){.chart-box .w{display:none}.chart-box .n{display:block}}
"""
TERMINAL_COLUMNS = 78
TOKEN_LABELS = {"input": "input", "output": "output", "cache_read": "cache read",
                "cache_write_5m": "cache write 5 min", "cache_write_1h": "cache write 1 h"}


def measure() -> dict:
    """What the pages show, from the product's own output."""
    with DemoEnv() as env:
        def doc(*argv):
            r = env.run(["nomira", *argv, "--json"])
            if r.status:
                raise SystemExit(f"nomira {' '.join(argv)} --json failed: {r.stderr.strip()}")
            return json.loads(r.stdout)
        report, daily = doc("report"), doc("daily")
        text = env.run(["nomira"], extra_env={"COLUMNS": str(TERMINAL_COLUMNS)}).stdout
    return {"report": report, "daily": daily["daily"], "terminal": text}


def fragments(m: dict) -> dict[str, str]:
    r, t = m["report"], m["report"]["totals"]
    cache_blind = t["naive_cost_usd"]
    agents = sorted({SOURCE_NAMES.get(n, n) for n in _source_names()}, key=str.lower)
    scan = r["scan"]
    kpis = [(usd(t["cost_usd"]), "API-equivalent value"), (f"{t['calls']:,}", "calls"),
            (tokens(t["tokens"]["total"]), "tokens"), (pct(t["cache_share_of_cost"]), "of it on the cache"),
            (usd(cache_blind), "what a cache-blind tool shows")]
    days = [(d["date"], d["cost_usd"]) for d in m["daily"]]
    models = [(x["model"], x["cost_usd"] or 0.0, short_model(x["model"])) for x in r["models"]]
    by_type = [(TOKEN_LABELS[k], v, TOKEN_LABELS[k]) for k, v in t["cost_by_type_usd"].items()]
    lines = m["terminal"].rstrip("\n").split("\n")
    return {
        "base-css": BASE_CSS,
        "kpis": "".join(f'<div class="kpi"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for v, k in kpis),
        "cache-headline": (f"On the demo history, <b>{esc(pct(t['cache_share_of_cost']))}</b> of "
                           f"{esc(usd(t['cost_usd']))} went on cache reads and writes. A tool that prices only "
                           f"input and output tokens shows <b>{esc(usd(cache_blind))}</b>: "
                           f"{t['cost_usd'] / cache_blind:.1f}&times; too low."),
        "terminal": f'<pre class="term"><span class="prompt">$ nomira --demo</span>\n'
                    f'{esc(chr(10).join(lines))}</pre>',
        "daily-chart": str(svg.bar_chart(days, "API-equivalent value per day, demo history")),
        "models-chart": _hbars(models, "value by model"),
        "type-chart": _hbars(by_type, "value by token type"),
        "dedup": (f"On the demo history: {scan['skipped'].get('duplicate_call', 0):,} duplicate call records "
                  f"merged (streaming snapshots, resumed sessions, sub-agent copies) and "
                  f"{scan['skipped'].get('repeated_total', 0):,} repeated Codex totals skipped, "
                  f"{scan['malformed_lines']:,} malformed lines: {t['calls']:,} calls, each counted once."),
        "agents": esc(", ".join(agents)) + f" ({len(agents)} log readers)",
        "fields": _fields(),
        "demo-note": (f"Figures: <code>nomira</code> on its demo history ({scan['files']} files, "
                      f"{esc(t['first'][:10])} to {esc(t['last'][:10])}), bundled price table of "
                      f"{esc(r['price_table'])}; written by <code>tools/gen_site.py</code>."),
    }


def _hbars(rows: list[tuple[str, float, str]], title: str) -> str:
    """(full name, value, short label) rows, drawn by the dashboard's own chart code. Its row shape
    grew a short label (and charts a phone width) with the responsive dashboard: both are served."""
    if "unit" in inspect.signature(svg.hbar_chart).parameters:
        return str(svg.responsive(svg.hbar_chart, [(full, v, None, short) for full, v, short in rows], title))
    return str(svg.hbar_chart([(short, v, None) for _full, v, short in rows], title))


def _source_names() -> list[str]:
    """Every agent `--source all` reads, by the name the reports use."""
    from nomira.sources.registry import SOURCES
    return [SOURCES[n].NAME for n in SOURCE_CHOICES["all"]]


def _fields() -> str:
    groups = [("tokens", wire.TOKEN_FIELDS), ("tags", wire.TAG_FIELDS), ("ids", wire.ID_FIELDS)]
    top = [f for f in wire.TOP_FIELDS if f not in ("tokens", "tags", *wire.ID_FIELDS)]
    out = [f'<li><b>event</b> {" ".join(f"<code>{esc(f)}</code>" for f in top)}</li>']
    out += [f'<li><b>{esc(g)}</b> {" ".join(f"<code>{esc(f)}</code>" for f in fs)}</li>' for g, fs in groups]
    return '<ul class="fields">' + "".join(out) + "</ul>"


def apply(page: str, frags: dict[str, str]) -> str:
    def fill(m):
        name = m.group(2) or m.group(3)
        if name not in frags:
            raise SystemExit(f"gen_site: unknown marker gen:{name}")
        return f"{m.group(1)}{frags[name]}{m.group(5)}"
    return MARKER.sub(fill, page)


def main(argv: list[str]) -> int:
    frags, check = fragments(measure()), "--check" in argv
    stale = [write_or_check(p, apply(p.read_text(), frags), check, "tools/gen_site.py") for p in PAGES]
    return 1 if any(stale) and check else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
