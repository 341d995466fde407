"""Kimi CLI sessions: `~/.kimi/sessions/<work dir hash>/<session id>/wire.jsonl` (v0.64+).

Format (MoonshotAI/kimi-cli wire protocol; ccusage `adapter/kimi`): one JSON object per
line, `{timestamp (epoch seconds, float), message: {type, payload}}`. A `StatusUpdate`
payload carries `token_usage {input_other, output, input_cache_read,
input_cache_creation}` and `message_id` (the provider's response id) for one API call.
`input_other` is the uncached input; reads and writes are separate counts (Anthropic
terms). The same StatusUpdate may be written more than once for a turn.

Model: the wire log does not name it. The configured default stands in and the call
is flagged `model_assumed`: `default_model` in `config.toml` (the `model` of its
`[models."<name>"]` table when set, else the name's last segment), or `config.json`
in older builds. Kimi models are not in the bundled price table today: unpriced.

Dedup key: (session, message_id); a line without an id is keyed by its timestamp and
counts. Project: the session folder's parent is md5 of the work dir (`<kaos>_<md5>`
for non-local KAOS); `kimi.json` `work_dirs[].path` resolves it. `KIMI_SHARE_DIR` moves
`~/.kimi` (Kimi CLI's own override); `KIMI_DATA_DIR` (ccusage's) is honoured too.

Regime: subscription by default: the default sign-in is a Kimi membership (the
`kimi-for-coding` model on a plan's quota); with a Moonshot API key the figures are
the bill (`--regime api`).
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from nomira.sources.scan import ScanStats, scan_json_lines
from nomira.sources import calls
from nomira.sources.calls import events_from_files, merge_records, partition_key  # noqa: F401

NAME = "kimi_cli"
MARKERS = (b'"StatusUpdate"',)
WIRE = "wire.jsonl"


def default_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    roots = calls.env_paths(env, "KIMI_DATA_DIR")
    if roots is None:
        roots = [Path(env["KIMI_SHARE_DIR"]).expanduser() if env.get("KIMI_SHARE_DIR") else calls.home(env) / ".kimi"]
    return [r / "sessions" for r in roots if (r / "sessions").is_dir()]


def claims(name: str, parent: str) -> bool:
    return name == WIRE


def find_files(roots: Iterable[Path]) -> list[Path]:
    return calls.find_claimed(roots, claims)


@lru_cache(maxsize=16)
def _config(share_dir: str, _mtimes: tuple) -> tuple[str | None, dict[str, str]]:
    """(default model, work dir hash -> path) from the share dir's config and kimi.json."""
    model = None
    try:
        from nomira.sources import toml_lite  # (tomllib's results, without its import for a plain config)
        cfg = toml_lite.loads(Path(share_dir, "config.toml").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        try:
            cfg = json.loads(Path(share_dir, "config.json").read_bytes())
        except (OSError, ValueError):
            cfg = {}
    if isinstance(cfg, dict):
        name = cfg.get("default_model") or cfg.get("model")
        if isinstance(name, str) and name:
            table = (cfg.get("models") or {}).get(name) if isinstance(cfg.get("models"), dict) else None
            inner = table.get("model") if isinstance(table, dict) else None
            model = inner if isinstance(inner, str) and inner else name.rsplit("/", 1)[-1]
    dirs: dict[str, str] = {}
    try:
        state = json.loads(Path(share_dir, "kimi.json").read_bytes())
    except (OSError, ValueError):
        state = {}
    for wd in calls.listed(calls.dig(state, "work_dirs")):
        if isinstance(wd, dict) and isinstance(wd.get("path"), str):
            h = hashlib.md5(wd["path"].encode()).hexdigest()  # noqa: S324 - Kimi's own folder naming
            kaos = wd.get("kaos") or "local"
            dirs[h if kaos == "local" else f"{kaos}_{h}"] = wd["path"]
    return model, dirs


def _share_config(path: Path) -> tuple[str | None, dict[str, str]]:
    share = path.parents[3] if len(path.parents) > 3 else path.parent
    mtimes = []
    for name in ("config.toml", "config.json", "kimi.json"):
        try:
            mtimes.append(os.stat(share / name).st_mtime_ns)
        except OSError:
            mtimes.append(None)
    return _config(str(share), tuple(mtimes))


def _visit(d: dict, state: dict, stats: ScanStats) -> list[list] | None:
    msg = d.get("message")
    if not isinstance(msg, dict) or msg.get("type") != "StatusUpdate" or not isinstance(msg.get("payload"), dict):
        return None
    u = msg["payload"].get("token_usage")
    if not isinstance(u, dict):
        return None
    ts = calls.stamp(stats, d.get("timestamp"))
    if ts is None:
        return None
    inp, out = calls.count(u.get("input_other")), calls.count(u.get("output"))
    cr, cw = calls.count(u.get("input_cache_read")), calls.count(u.get("input_cache_creation"))
    if not (inp or out or cr or cw):
        return None
    mid = msg["payload"].get("message_id")
    session = state["session"]
    key = f"{session}:{mid}" if isinstance(mid, str) and mid else f"{session}:{ts}:{inp}:{out}:{cr}:{cw}"
    return [calls.record(NAME, ts, key, session, state["model"] or "unknown", input=inp, output=out, cache_read=cr,
                         cache_write=cw, cwd=state["cwd"], model_assumed=True)]


def scan_file(path: Path, start: int = 0, state: dict | None = None) -> tuple[list[list], dict, int, ScanStats]:
    path = Path(path)
    if not state:
        model, dirs = _share_config(path)
        state = {"session": path.parent.name, "model": model, "cwd": dirs.get(path.parent.parent.name)}
    return scan_json_lines(path, start, dict(state), MARKERS, _visit)
