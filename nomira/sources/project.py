"""One project label per working directory, whichever agent worked there.

Claude Code, Codex and OpenCode all log the real working directory (`cwd`); the label is
its last folder name, so `~/src/shop` is `shop` in every agent's rows, locally and in
shipped events. Two different directories with the same name are told apart by as many
parent folders as it takes (`shop (ana)`, `shop (work)`), decided over every directory
in the history, so the rule is deterministic. Once shipped, a directory's label is pinned
(`pinned`): a second `shop` appearing later is told apart, the first keeps `shop`, so a team's
store never finds one project under two names. A label never holds a path separator: the wire
schema rejects path-like tags.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Mapping

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


def assign(states: Iterable[dict], merge_worktrees: bool = False,
           pins: Mapping[str, str] | None = None) -> dict[str, str]:
    """Give every per-file parser state (`cwd`: one directory, `cwds`: several) the history's labels;
    with `merge_worktrees`, a git worktree's directories get their main checkout's label; `pins`: the
    labels directories were shipped under (`keep_pins`)."""
    states = list(states)
    cwds: set[str] = set()
    for st in states:
        if st.get("cwd"):
            cwds.add(st["cwd"])
        cwds.update(st.get("cwds") or ())
    if merge_worktrees:
        main = {c: main_checkout(c) or c for c in cwds}
        merged = labels_for(main.values())
        labels = {c: merged[m] for c, m in main.items()}
    else:
        labels = labels_for(cwds)
    if pins:
        labels = keep_pins(labels, pins)
    for st in states:
        st["labels"] = labels
    return labels


MAX_UP = 64  # parent folders searched for a .git entry


def main_checkout(cwd: str) -> str | None:
    """The main checkout's directory (the same subfolder of it) when `cwd` is inside a linked git
    worktree, else None. A worktree's `.git` is a file `gitdir: <main>/.git/worktrees/<name>`
    (git-worktree(1)); read here, on this machine, and never shipped: only the label is."""
    here = Path(cwd)
    if not here.is_absolute():
        return None
    for depth, folder in enumerate([here, *here.parents][:MAX_UP]):
        dot_git = folder / ".git"
        try:
            if dot_git.is_dir():
                return None  # a main checkout (or a plain repository)
            if not dot_git.is_file():
                continue
            with open(dot_git, encoding="utf-8", errors="replace") as fh:
                text = fh.read(4096)
        except OSError:
            return None
        m = re.match(r"gitdir:\s*(.+)", text.strip())
        if not m:
            return None
        gitdir = Path(m.group(1).strip())
        if not gitdir.is_absolute():  # worktree.useRelativePaths
            gitdir = Path(os.path.normpath(folder / gitdir))
        parts = gitdir.parts
        if len(parts) < 4 or parts[-3] != ".git" or parts[-2] != "worktrees":
            return None  # a submodule (.git/modules/...) or a separate git dir: not a worktree
        rest = here.parts[len(here.parts) - depth:] if depth else ()
        return str(Path(*parts[:-3], *rest))
    return None


def keep_pins(labels: dict[str, str], pins: Mapping[str, str]) -> dict[str, str]:
    """`labels` with each pinned directory's earlier label, where no other directory holds it now
    (pins taken in path order: the outcome does not depend on the file's order)."""
    out = dict(labels)
    owner = {lab: cwd for cwd, lab in out.items()}
    for cwd, lab in sorted(pins.items()):
        if cwd not in out or out[cwd] == lab or lab in owner or not is_label(lab):
            continue
        del owner[out[cwd]]
        out[cwd], owner[lab] = lab, cwd
    return out


def is_label(value) -> bool:
    return type(value) is str and 0 < len(value) <= MAX and not _SEP.search(value)


def pinned(env: Mapping[str, str]) -> dict[str, str]:
    """The labels directories were shipped under ({} when none were, or the file is unreadable: labels
    are then decided afresh, as before any ship)."""
    import json
    from nomira import dirs
    try:
        doc = json.loads(dirs.pinned_labels(env).read_bytes())
    except (OSError, ValueError):
        return {}
    pins = doc.get("labels") if isinstance(doc, dict) else None
    if not isinstance(pins, dict):
        return {}
    return {cwd: lab for cwd, lab in pins.items() if type(cwd) is str and is_label(lab)}


def pin(env: Mapping[str, str], labels: Mapping[str, str]) -> None:
    """Keep `labels` (a shipped history's: cwd -> label) as pins beside the earlier ones; the file is
    rewritten only when one is new, whole (a temporary file renamed over it)."""
    import json
    import os
    from nomira import dirs
    old = pinned(env)
    new = {**{c: lab for c, lab in labels.items() if is_label(lab)}, **old}  # (an earlier pin stays)
    if new == old:
        return
    path = dirs.pinned_labels(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"version": 1, "labels": dict(sorted(new.items()))}, indent=0))
    os.replace(tmp, path)
