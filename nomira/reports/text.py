"""The Stage 0 report as terminal text."""
from __future__ import annotations

import re
import textwrap
from datetime import datetime, timezone

from nomira.reports.aggregate import MONEY_COLUMN
from nomira.reports.render import Style, pct, priced_usd, short_id, table, tokens, usd
from nomira.sources import compressed

# The two cache figures, named apart: money (report) and tokens (--compare).
CACHE_SHARE = "Cache share"  # share of the money that went to cache reads and writes
CACHE_REUSE = "Cache reuse"  # share of prompt tokens served from the cache
SOURCE_NAMES = {"claude_code": "Claude Code", "codex": "Codex", "opencode": "OpenCode"}
SOURCE_NAMES.update({"gemini_cli": "Gemini CLI", "qwen_code": "Qwen Code", "amp": "Amp", "copilot_cli": "Copilot CLI",
                     "goose": "Goose", "kimi_cli": "Kimi CLI", "droid": "Factory Droid", "pi": "Pi", "cline": "Cline",
                     "roo_code": "Roo Code", "kilo_code": "Kilo Code", "crush": "Crush"})
SOURCE_NAMES.update({"openhands": "OpenHands CLI", "aider": "Aider", "zed": "Zed Agent", "kilo_cli": "Kilo CLI", "mux": "Mux", "gptme": "gptme", "mistral_vibe": "Mistral Vibe", "openclaw": "OpenClaw",
                     "oh_my_pi": "Oh My Pi", "prime_agent": "Prime Agent", "hermes": "Hermes Agent", "lmstudio": "LM Studio", "kimi_code": "Kimi Code", "zoo_code": "Zoo Code", "poolside": "Poolside"})  # issue 27 agents
SOURCE_NAMES.update({"qclaw": "QClaw", "kimi_work": "Kimi Work", "mimocode": "MiMo Code", "icodemate": "IcodeMate",
                     "openclaude": "OpenClaude", "claude_cowork": "Claude Cowork", "traex": "TraeX", "shelley": "Shelley", "zcode": "ZCode", "posit_assistant": "Posit Assistant", "qoder": "Qoder", "vscode_copilot": "VS Code Copilot", "grok": "Grok Build", "senpi": "Senpi"})
SOURCE_NAMES.update({"augure_code": "Augure Code", "augure_desktop": "Augure Desktop", "evener": "Evener", "workbuddy": "WorkBuddy", "opencodereview": "Open Code Review", "codebuddy": "CodeBuddy"})  # issue 27, s27d
SOURCE_NAMES.update({"fx": "fx", "cherry_studio": "Cherry Studio", "reasonix": "Reasonix", "muse": "Muse Code", "cherry_studio_pi": "Cherry Studio (pi)",
                     "commandcode": "Command Code", "trae_agent": "Trae Agent"})  # issue 27, s27e
SOURCE_NAMES.update({"unsloth_studio": "Unsloth Studio", "jcode": "Jcode", "kimchi": "Kimchi", "gajae_code": "Gajae Code",
                     "antigravity_cli": "Antigravity CLI",
                     "visualstudio_copilot": "Visual Studio Copilot", "deepseek_harness": "DeepSeek Harness", "aside": "Aside"})  # issue 27, s27c
_STYLED = re.compile(r"^(\033\[[0-9;]*m)(.*)(\033\[0m)$")


def render_report(report: dict, style: Style, max_sessions: int = 20, now: datetime | None = None) -> str:
    label = report["value_label"]
    tot = report["totals"]
    out = []
    names = " + ".join(SOURCE_NAMES.get(s, s) for s in report["sources"]) or "no usage found"
    note = {"subscription": "subscription usage, not a bill", "api": "billed at API rates"}.get(
        report["regime"], "subscription agents at API-equivalent value, not a bill; other usage billed at API rates")
    out.append(style.bold(f"Nomira · {names} · {label}"))
    out.append(style.dim(f"({note})"))
    out.append("")
    sessions = report["sessions"]
    if sessions:
        shown = sorted(sessions, key=lambda r: -r["cost_usd"])[:max_sessions]
        rows = [[short_id(s["session_id"]), s["project"], str(s["calls"]), tokens(s["tokens"]["total"]),
                 priced_usd(s["cost_usd"], s["calls"], s["unpriced_calls"]), pct(s["cache_share_of_cost"])]
                for s in shown]
        out.append(table(["Session", "Project", "Calls", "Tokens", MONEY_COLUMN[report["regime"]], CACHE_SHARE],
                         rows, "llrrrr", style=style, optional=(5, 2)))
        if len(sessions) > len(shown):
            out.append(style.dim(f"… {len(sessions) - len(shown)} more sessions (use --json for all)"))
        out.append("")
    by_type = tot["cost_by_type_usd"]
    out.append(style.bold(f"Total {label}: {priced_usd(tot['cost_usd'], tot['calls'], tot['unpriced_calls'])}")
               + f"  over {tot['calls']} calls, {tokens(tot['tokens']['total'])} tokens"
               + (f" (* {tot['unpriced_calls']} unpriced calls not in the total)" if tot["unpriced_calls"] else ""))
    out.append(f"  input {usd(by_type['input'])} · output {usd(by_type['output'])} · cache read "
               f"{usd(by_type['cache_read'])} · cache write 5m {usd(by_type['cache_write_5m'])}"
               f" · 1h {usd(by_type['cache_write_1h'])}")
    out.append(f"  {CACHE_SHARE.lower()} (of {label} on cache reads and writes): {pct(tot['cache_share_of_cost'])}"
               f" · a cache-blind tool would have shown {usd(tot['naive_cost_usd'])}")
    if tot["sidechain_cost_usd"]:
        out.append(f"  sub-agents (sidechains): {usd(tot['sidechain_cost_usd'])}")
    for line in report.get("budget_lines") or ():
        out.append(style.warn(f"! {line}") if "threshold reached" in line else f"  {line}")
    out.append("")
    models = report["models"]
    if models:
        rows = []
        for m in models:
            src = m["rate_source"] or "UNPRICED"
            flag = "" if m["verified"] else " (unverified)" if m["priced"] else ""
            rows.append([m["model"] + (" (assumed)" if m["model_assumed"] else ""), str(m["calls"]),
                         tokens(m["tokens"]["total"]), priced_usd(m["cost_usd"], m["calls"], m["unpriced_calls"]),
                         src + flag])
        out.append(table(["Model", "Calls", "Tokens", MONEY_COLUMN[report["regime"]], "Rates"], rows, "lrrrl",
                         style=style, shorten=(0,)))
        out.append("")
    for m in models:
        if m["unpriced_calls"]:
            why = "; ".join(f"{r} ({n} call{'s' * (n != 1)})" for r, n in m["unpriced_reasons"].items())
            out.append(style.warn(f"! {m['model']}: {m['unpriced_calls']} of {m['calls']} calls unpriced, not "
                                  f"guessed and not counted as $0: {why}"))
        if m["unpriced_modifiers"]:
            out.append(style.warn(f"! {m['model']}: modifier not priced: {', '.join(m['unpriced_modifiers'])}"))
        if m["model_assumed"]:
            out.append(style.warn(f"! {m['model']}: some calls logged no model (Codex's fallback, or the agent's "
                                  f"configured default); priced as {m['model']}"))
        if m.get("agent_cost_usd") is not None:  # (e.g. older Claude Code's costUSD, which ccusage's auto mode bills)
            out.append(style.dim(f"  {m['model']}: the agent's own estimate is {usd(m['agent_cost_usd'])} "
                                 f"(shown beside; the value above prices the tokens)"))
    allowance = report.get("allowance")
    if allowance:
        a = allowance
        parts = []
        for key in ("primary", "secondary"):
            if a.get(f"{key}_used_percent") is not None:
                win = a.get(f"{key}_window_minutes")
                parts.append(f"{_window(win)} window {a[f'{key}_used_percent']:.1f}% used")
        out.append(f"Codex allowance as of {age(a.get('as_of'), now)}: " + ", ".join(parts))
    for f in report.get("found_without_tokens") or []:
        n = f["sessions"]
        out.append(style.warn(f"! {f['source']}: {n} session{'s' if n != 1 else ''} found without token data "
                              f"(not priced); {f['use_instead'] or 'no local usage to read'}"))
    scan = report["scan"]
    skipped = scan["skipped"]
    if skipped.get(compressed.ZSTD_MISSING):
        n = skipped[compressed.ZSTD_MISSING]
        out.append(style.warn(f"! {n} compressed log{'s' if n != 1 else ''} not read (no zstd decoder here); "
                              f"{compressed.TO_READ}"))
    out.append(style.dim(
        f"Scanned {scan['files']} files, {scan['bytes'] / 1e6:.1f} MB; {scan['malformed_lines']} malformed lines "
        f"skipped; {skipped.get('duplicate_call', 0)} duplicate call records merged"
        + (f"; other skips: {', '.join(f'{k}={v}' for k, v in skipped.items() if k != 'duplicate_call')}"
           if len(skipped) > ('duplicate_call' in skipped) else "")))
    width = style.width or 80
    return "\n".join(_fit(line, width) for block in out for line in block.split("\n"))


LOST = ("bad_", "no_timestamp", "empty_id", "unreadable", "unparsable", "implausible")  # skips that lose a call


def lost_note(scan: dict) -> str | None:
    """One line for the period reports, which show no scan footer: the lines and files read but not
    counted because they could not be (malformed, a bad count or time, unreadable), else None. What
    dedup drops on purpose (copies, repeats, replays) is not a loss and not named here."""
    lost = {k: v for k, v in scan["skipped"].items() if k.startswith(LOST)}
    if not (scan["malformed_lines"] or lost):
        return None
    parts = [f"{scan['malformed_lines']} malformed lines"] if scan["malformed_lines"] else []
    parts += [f"{k}={v}" for k, v in sorted(lost.items())]
    note = f"! not counted: {', '.join(parts)} (every skip: --json, \"scan\")"
    if lost.get(compressed.ZSTD_MISSING):
        note += f"; compressed logs: {compressed.TO_READ}"
    return note


def _fit(line: str, width: int = 80) -> str:
    """Wrap prose lines to the terminal width; tables are already sized to it."""
    styled = _STYLED.match(line)
    start, text, end = styled.groups() if styled else ("", line, "")
    if len(text) <= width or "\033[" in text:
        return line
    indent = " " * (len(text) - len(text.lstrip()) + 2)
    return "\n".join(start + part + end for part in textwrap.wrap(text, width=width, subsequent_indent=indent))


def age(as_of: str | None, now: datetime | None = None) -> str:
    """How old a snapshot is, as people say it: "3 h ago" (its timestamp when unreadable)."""
    try:
        then = datetime.fromisoformat(str(as_of).replace("Z", "+00:00"))
    except ValueError:
        return str(as_of or "?")
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    minutes = max(0, int(((now or datetime.now(timezone.utc)) - then).total_seconds() // 60))
    if minutes < 1:
        return "just now"
    if minutes < 90:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{round(minutes / 60)} h ago"
    return f"{round(minutes / 1440)} days ago"


def _window(minutes) -> str:
    if not minutes:
        return "?"
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d" if minutes != 10080 else "weekly"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"
