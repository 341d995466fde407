"""Aider (opt-in): the `.aider.chat.history.md` Aider appends in each repository it works in.

Format (Aider-AI/aider `aider/io.py` `append_chat_history`, `coders/base_coder.py`
`get_announcements`, `calculate_and_show_tokens_and_cost`, `utils.format_tokens`): a
Markdown log. Each run starts with `# aider chat started at YYYY-MM-DD HH:MM:SS` (local
time); tool output is blockquoted (`> ...`): the announcement `> Model: <name> with <fmt>
edit format` (`Main model:` when a weak model is set; repeated after `/model`), and after
each reply `> Tokens: 12k sent, 1.2k cache write, 8.0k cache hit, 512 received. Cost:
$0.04 message, $0.12 session.` (the `Cost:` part is on its own line when both cache
figures are shown, and absent when Aider has no price for the model).

Why opt-in: the history holds no call times (every call of a run is dated at the run's
start), and token counts are rounded for display (`format_tokens`: 1.2k below 10k,
whole thousands above), so the figures are approximate to +-0.5%. "sent" is LiteLLM's
prompt total, which already includes cache reads and writes, to which Aider adds the
cache writes again: uncached input is taken as `sent - cache hit - cache write`
(UNCONFIRMED per provider; an upper bound if the writes were added twice). Aider's own
message cost (2 significant decimals) is kept beside the computed one.

Locations: no default (a history sits in each repository): `NOMIRA_AIDER_PATHS` (files or
folders, comma-separated, walked for the history) and Aider's own `AIDER_CHAT_HISTORY_FILE`;
or `--path`. Dedup key: (history file's folder, run start, reply number in the run).
Project: the folder holding the history (the repository).

Regime: API. Aider calls the provider with the user's key: the figures are the bill.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import UNFINISHED, LineScan, ScanStats
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "aider"
HISTORY = ".aider.chat.history.md"
PLACES = "opt-in: NOMIRA_AIDER_PATHS (folders holding .aider.chat.history.md) or AIDER_CHAT_HISTORY_FILE"
# the lines `_visit` acts on, spelled as `_START`/`_MODEL` begin them ("odel: " alone matched
# at every "o" of the prose around them: a third of the scan's time)
MARKERS = (b"# aider chat started at ", b"> Model: ", b"> Main model: ", b"Tokens: ", b"Cost: $")
_START = re.compile(r"^# aider chat started at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
_MODEL = re.compile(r"^> (?:Main model|Model): (\S+)")
_N = r"([\d][\d,]*(?:\.\d+)?k?)"
_TOKENS = re.compile(rf"Tokens: {_N} sent(?:, {_N} cache write)?(?:, {_N} cache hit)?(?:, {_N} cached)?, "
                     rf"{_N} received\.")
_COST = re.compile(r"Cost: \$([\d.]+) (?:message|request), \$([\d.]+) session")


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "NOMIRA_AIDER_PATHS") or []
    if env.get("AIDER_CHAT_HISTORY_FILE"):
        roots.append(Path(env["AIDER_CHAT_HISTORY_FILE"]).expanduser())
    return calls.existing(roots)


def claims(name: str, parent: str) -> bool:
    return name == HISTORY


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


def _tokens(text: str | None) -> int:
    if not text:
        return 0
    text = text.replace(",", "")
    try:
        return int(round(float(text[:-1]) * 1000)) if text.endswith("k") else int(float(text))
    except ValueError:
        return 0


def _run_id(state: dict) -> str:
    return hashlib.sha256(f"{state['cwd']}\0{state['start']}".encode()).hexdigest()[:16]


def _visit(line: str, state: dict, stats: ScanStats, out: list) -> None:
    m = _START.match(line)
    if m:
        state.update(start=calls.iso_local(m.group(1)), n=0, model=None, last=None)
        return
    m = _MODEL.match(line)
    if m:
        state["model"] = m.group(1)
        return
    cost = _COST.search(line)
    if "Tokens: " in line:
        stats.candidates += 1
        t = _TOKENS.search(line)
        if t is None:
            if "Tokens: unknown" not in line:  # llm-command runs say so: nothing to count
                stats.malformed += 1
            return
        if state.get("start") is None:
            stats.skip("no_timestamp")
            return
        sent, cw, hit, cached, received = (_tokens(g) for g in t.groups())
        hit = hit or cached
        state["n"] += 1
        run = _run_id(state)
        rec = calls.record(NAME, state["start"], f"{run}:{state['n']}", run, state.get("model"),
                           input=max(sent - hit - cw, 0), output=received, cache_read=hit, cache_write=cw,
                           reported_input=sent, cwd=state["cwd"])
        out.append(rec)
        state["last"] = len(out) - 1
    if cost and state.get("last") is not None and state["last"] < len(out):
        out[state["last"]][calls.AGENT_COST] = calls.money(float(cost.group(1)))
        state["last"] = None


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    state = dict(state) if state else {"cwd": str(path.resolve().parent), "start": None, "n": 0, "model": None}
    state["last"] = None
    stats = ScanStats(files=1)
    out: list[list] = []
    scan = LineScan(path, MARKERS, start)
    end = None
    for raw in scan:
        line = raw.decode("utf-8", "replace").rstrip()
        if scan.tail_start is not None and "Tokens: " in line and not line.rstrip().endswith((".", "session.")):
            end = scan.tail_start  # Aider is mid-line: read it whole next time
            stats.candidates += 1  # (a candidate, as in every line source: `scan.entry_stats` takes it back)
            stats.skip(UNFINISHED)
            continue
        _visit(line, state, stats, out)
    if end is None:
        end = scan.end_offset if scan.tail_start is None else os.path.getsize(path)
    stats.bytes = end - start
    return out, state, end, stats
