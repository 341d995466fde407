"""One project label per working directory, whichever agent worked there.

Claude Code, Codex and OpenCode all log the real working directory (`cwd`); the label is
its last folder name, so `~/src/shop` is `shop` in every agent's rows, locally and in
shipped events. Two different directories with the same name are told apart by as many
parent folders as it takes (`shop (ana)`, `shop (work)`), decided over every directory
in the history, so the rule is deterministic. A label never holds a path separator:
the wire schema rejects path-like tags.
"""
from __future__ import annotations

import re
from typing import Iterable

MAX = 64  # the wire schema's tag limit
_SEP = re.compile(r"[/\\]+")


def _folders(cwd: str) -> list[str]:
    return [p for p in _SEP.split(cwd) if p and p != "."] or ["root"]


def basename(cwd: str) -> str:
    return _folders(cwd)[-1][:MAX]


def labels_for(cwds: Iterable[str]) -> dict[str, str]:
    """cwd -> label for every directory of a history; same names get their parents added."""
    by_name: dict[str, list[str]] = {}
    for cwd in sorted(set(cwds)):
        by_name.setdefault(basename(cwd), []).append(cwd)
    out: dict[str, str] = {}
    for name, group in by_name.items():
        if len(group) == 1:
            out[group[0]] = name
            continue
        depth = 1
        while True:
            labels = {c: _with_parents(c, depth) for c in group}
            longest = max(len(_folders(c)) for c in group)
            if len(set(labels.values())) == len(group) or depth >= longest:
                break
            depth += 1
        out.update(labels)
    return out


def _with_parents(cwd: str, depth: int) -> str:
    folders = _folders(cwd)
    parents = "-".join(folders[-1 - depth:-1]) or "root"
    name = folders[-1]
    return f"{name} ({parents[-(MAX - len(name) - 3):]})" if len(name) + 3 < MAX else name[:MAX]


def label(cwd: str | None, labels: dict[str, str] | None, fallback: str = "unknown") -> str:
    """The label of `cwd` in this history (its folder name when labels were not assigned)."""
    if not cwd:
        return fallback
    return (labels or {}).get(cwd) or basename(cwd)


def assign(states: Iterable[dict]) -> dict[str, str]:
    """Give every per-file parser state (`cwd`: one directory, `cwds`: several) the history's labels."""
    states = list(states)
    cwds: set[str] = set()
    for st in states:
        if st.get("cwd"):
            cwds.add(st["cwd"])
        cwds.update(st.get("cwds") or ())
    labels = labels_for(cwds)
    for st in states:
        st["labels"] = labels
    return labels
