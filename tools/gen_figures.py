"""Write every figure of the whitepaper, the one-pager, the brand guide and the README's first screen
from Nomira run on the demo history.

    python tools/gen_figures.py           # rewrite each <!-- fig:NAME -->...<!-- /fig --> region
    python tools/gen_figures.py --check   # exit 1, with a diff, when any region differs from a fresh run
    python tools/gen_figures.py --print   # the figures, one per line

Inputs are pinned so a run is reproducible anywhere: the demo's end (NOMIRA_DEMO_NOW), the clock the
report reads (frozen at the same instant in the child process), a fresh HOME and XDG folders (no
feeds, overrides or caches), TZ=UTC, COLUMNS=100, NO_COLOR. The prose around the markers says
nothing numeric; tests/test_figures.py runs --check, so CI fails when prose drifts from the product.
"""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's nomira, whether or not one is installed
sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_env import write_or_check  # noqa: E402

DEMO_NOW = "2026-12-04T15:00:00Z"  # the same instant tools/demo_env.py pins (issue 18)
COLUMNS = 100
TARGETS = ["README.md", "docs/WHITEPAPER.md", "docs/ONE-PAGER.md", "docs/BRAND.md", "site/one-pager.html"]
MARKER = re.compile(r"<!-- fig:([\w-]+) -->(.*?)<!-- /fig -->", re.S)


def pinned_env(home: Path) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8", "TZ": "UTC",
            "COLUMNS": str(COLUMNS), "NO_COLOR": "1", "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0",
            "NOMIRA_DEMO_NOW": DEMO_NOW, "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local/share"), "XDG_STATE_HOME": str(home / ".local/state"),
            "XDG_CONFIG_HOME": str(home / ".config")}


def nomira(env: dict, *args: str) -> str:
    """`nomira ARGS` in a child process whose clock reads DEMO_NOW; its stdout."""
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--run", *args], env=env, cwd=env["HOME"],
                       capture_output=True, text=True, timeout=120)
    if p.returncode:
        raise SystemExit(f"nomira {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def recount(demo: Path) -> dict:
    """An independent re-read of the demo files, sharing no code with nomira: Claude Code calls by
    (message.id, requestId) with the last snapshot's usage; Codex turns as differences between
    distinct cumulative totals."""
    claude_lines, calls = 0, {}
    for f in sorted((demo / "claude").rglob("*.jsonl")):
        for line in f.read_text().splitlines():
            d = json.loads(line)
            usage = (d.get("message") or {}).get("usage") if d.get("type") == "assistant" else None
            if usage:
                claude_lines += 1
                calls[d["message"]["id"], d["requestId"]] = usage
    tokens = sum(u["input_tokens"] + u["output_tokens"] + u["cache_creation_input_tokens"]
                 + u["cache_read_input_tokens"] for u in calls.values())
    codex_lines, turns = 0, 0
    for f in sorted((demo / "codex").rglob("*.jsonl")):
        last = None
        for line in f.read_text().splitlines():
            p = json.loads(line).get("payload", {})
            if p.get("type") == "token_count":
                codex_lines += 1
                total = p["info"]["total_token_usage"]
                if total != last:
                    turns += 1
                last = total
        tokens += last["input_tokens"] + last["output_tokens"] if last else 0
    return {"usage_lines": claude_lines + codex_lines, "calls": len(calls) + turns, "tokens": tokens}


def usd(x: float) -> str:
    return f"${x:,.2f}"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def short_tokens(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def figures() -> dict[str, str]:
    from nomira.ledger import wire
    from nomira.cli import SOURCE_CHOICES
    from nomira.collector import brand
    from nomira.pricing.table import load_bundled

    with tempfile.TemporaryDirectory(prefix="nomira-figures-") as tmp:
        env = pinned_env(Path(tmp))
        report = json.loads(nomira(env, "--demo", "--json"))
        text = nomira(env, "--demo")
        demo = Path(tmp) / ".cache" / "nomira" / "demo"
        raw = recount(demo)
    t = report["totals"]
    cache_usd = t["cost_by_type_usd"]["cache_read"] + t["cost_by_type_usd"]["cache_write_5m"] \
        + t["cost_by_type_usd"]["cache_write_1h"]
    table = load_bundled()
    providers = defaultdict(int)
    unverified = 0
    for key in table.models:
        entry = table.models.raw(key)
        providers[entry.get("provider", "other")] += 1
        unverified += entry.get("verified") is False
    skipped = report["scan"]["skipped"]
    f = {
        "demo_value": usd(t["cost_usd"]),
        "demo_calls": f"{t['calls']:,}",
        "demo_sessions": f"{len(report['sessions']):,}",
        "demo_tokens": short_tokens(t["tokens"]["total"]),
        "demo_days": str((date.fromisoformat(t["last"][:10]) - date.fromisoformat(t["first"][:10])).days + 1),
        "demo_models": str(len(report["models"])),
        "demo_files": f"{report['scan']['files']:,}",
        "cache_share": pct(t["cache_share_of_cost"]),
        "cache_usd": usd(cache_usd),
        "cache_read_token_share": pct(t["tokens"]["cache_read"] / t["tokens"]["total"]),
        "cache_blind": usd(t["naive_cost_usd"]),
        "cache_blind_share": pct(t["naive_cost_usd"] / t["cost_usd"]),
        "cache_blind_factor": f"{t['cost_usd'] / t['naive_cost_usd']:.1f}x",
        "output_usd": usd(t["cost_by_type_usd"]["output"]),
        "dup_records": f"{skipped.get('duplicate_call', 0):,}",
        "repeated_totals": f"{skipped.get('repeated_total', 0):,}",
        "malformed": f"{report['scan']['malformed_lines']:,}",
        "raw_usage_lines": f"{raw['usage_lines']:,}",
        "raw_calls": f"{raw['calls']:,}",
        "raw_tokens": f"{raw['tokens']:,}",
        "nomira_tokens": f"{t['tokens']['total']:,}",
        "recount_diff": f"{t['tokens']['total'] - raw['tokens']:,} tokens, {t['calls'] - raw['calls']:,} calls",
        "price_models": f"{len(table.models):,}",
        "price_providers": f"{len(providers):,}",
        "price_unverified": f"{unverified:,}",
        "price_date": table.generated,
        "price_feed": " ".join(table.feed_source.split()[:2]),  # "litellm 1.110.2"
        "sources_read": str(len(SOURCE_CHOICES["all"])),
        "wire_fields": str(len(wire.TOP_FIELDS)),
        "wire_tags": str(len(wire.TAG_FIELDS)),
        "terminal_report": text.rstrip("\n"),
        "brand_site_palette": "| token | colour |\n|---|---|\n" + "\n".join(
            f"| `--{k}` | `{v}` |" for k, v in brand.SITE.items()),
    }
    return f


BLOCKS = {"terminal_report", "brand_site_palette"}  # multi-line: on their own lines between the markers


def render(name: str, value: str, html_page: bool) -> str:
    if name == "terminal_report":
        return ("\n<pre class=\"term\">" + html.escape(value) + "</pre>\n") if html_page else \
            "\n```text\n" + value + "\n```\n"
    if name in BLOCKS:
        return "\n" + value + "\n"
    return html.escape(value) if html_page else value


def fill(text: str, figs: dict[str, str], html_page: bool, where: str) -> str:
    def one(m: re.Match) -> str:
        if m.group(1) not in figs:
            raise SystemExit(f"{where}: unknown figure {m.group(1)!r} (known: {', '.join(sorted(figs))})")
        return f"<!-- fig:{m.group(1)} -->{render(m.group(1), figs[m.group(1)], html_page)}<!-- /fig -->"
    return MARKER.sub(one, text)


def main(argv: list[str]) -> int:
    figs = figures()
    if "--print" in argv:
        for k, v in figs.items():
            print(f"{k}: {v}" if "\n" not in v else f"{k}:\n{v}")
        return 0
    check = "--check" in argv
    stale = False
    for rel in TARGETS:
        path = ROOT / rel
        if not path.exists():
            continue
        old = path.read_text()
        stale |= write_or_check(path, fill(old, figs, rel.endswith(".html"), rel), check, "tools/gen_figures.py")
    if check and not stale:
        print(f"figures up to date in {', '.join(TARGETS)}")
    return 1 if check and stale else 0


def _run_frozen(args: list[str]) -> int:
    """The child: datetime.now answers DEMO_NOW (isinstance checks still hold), then nomira's CLI."""
    from demo_env import freeze_clock
    freeze_clock(os.environ.get("NOMIRA_DEMO_NOW", DEMO_NOW))
    from nomira.cli import main as cli
    return cli(args)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        sys.exit(_run_frozen(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
