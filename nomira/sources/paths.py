"""Where the agents keep their logs (environment in, paths out), and walking those folders."""
from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Mapping

from nomira.dirs import _home


def claude_roots(env: Mapping[str, str] = os.environ) -> list[Path]:
    """Claude Code data roots: CLAUDE_CONFIG_DIR (comma list) or XDG config + ~/.claude."""
    if env.get("CLAUDE_CONFIG_DIR"):
        candidates = [Path(p.strip()).expanduser() for p in env["CLAUDE_CONFIG_DIR"].split(",") if p.strip()]
    else:
        xdg_config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else _home(env) / ".config"
        candidates = [xdg_config / "claude", _home(env) / ".claude"]
    roots = []
    for c in candidates:
        projects = c if c.name == "projects" else c / "projects"
        if projects.is_dir() and projects.resolve() not in [r.resolve() for r in roots]:
            roots.append(projects)
    return roots


def codex_roots(env: Mapping[str, str] = os.environ) -> list[Path]:
    """Codex session folders: CODEX_HOME (comma list) or ~/.codex; sessions/ and archived_sessions/."""
    homes = [Path(p.strip()).expanduser() for p in env.get("CODEX_HOME", "").split(",") if p.strip()]
    if not homes:
        homes = [_home(env) / ".codex"]
    return [h / sub for h in homes for sub in ("sessions", "archived_sessions") if (h / sub).is_dir()]


def claude_config_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where Claude Code keeps its settings and login: the first $CLAUDE_CONFIG_DIR, else ~/.claude."""
    dirs = [p.strip() for p in env.get("CLAUDE_CONFIG_DIR", "").split(",") if p.strip()]
    return Path(dirs[0]).expanduser() if dirs else _home(env) / ".claude"


def codex_home(env: Mapping[str, str] = os.environ) -> Path:
    """Where Codex keeps config.toml and auth.json: the first $CODEX_HOME, else ~/.codex."""
    homes = [p.strip() for p in env.get("CODEX_HOME", "").split(",") if p.strip()]
    return Path(homes[0]).expanduser() if homes else _home(env) / ".codex"


UNREADABLE: list[str] = []  # folders a walk could not list, for the report to name (never silently dropped)
WALKED: dict[str, list[str]] = {}  # root -> every folder a walk under it listed (a replay watches them)


def walk_files(root: Path, keep) -> list[Path]:
    """Files under `root` (recursively, links not followed) whose name `keep(name, parent)` accepts,
    sorted by path. os.scandir, not pathlib: histories hold thousands of files."""
    folders: dict[str, Path] = {}  # (a Path per folder, each file's made from it: a third of the cost)
    paths = []
    for p in walk_paths(root, keep):
        folder, _, name = p.rpartition(os.sep)
        parent = folders.get(folder)
        if parent is None:
            parent = folders[folder] = Path(folder or os.sep)  # ("" is the root's: "/x")
        paths.append(parent / name)
    return paths


def walk_paths(root: str | Path, keep) -> list[str]:
    """`walk_files` as sorted path strings, for a caller that needs no Path (the status line)."""
    out: list[str] = []
    stack = [str(root)]
    walked = WALKED[stack[0]] = []
    while stack:
        top = stack.pop()
        walked.append(top)
        try:
            with os.scandir(top) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file() and keep(entry.name, top):
                            out.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            UNREADABLE.append(top)
            continue
    out.sort()
    return out


def paths_under(root: str | Path, keep) -> list[str]:
    """`files_under` as path strings (a Path per file cost more than the walk itself: 13-25 ms for
    6,400 files, on every run)."""
    return [str(root)] if os.path.isfile(root) else walk_paths(root, keep)


def files_under(root: Path, keep) -> list[Path]:
    """`root` itself when it is a file (given explicitly, so kept as is), else `walk_files`."""
    root = Path(root)
    return [root] if root.is_file() else walk_files(root, keep)
