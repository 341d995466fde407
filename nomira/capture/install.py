"""`nomira hooks install|uninstall|status`: edit the agents' own configuration, safely.

Every edit is idempotent (installing twice changes nothing), leaves everything that is not
ours untouched (other hooks, settings, comments of config.toml), is reversible (uninstall
removes exactly what install added, and restores a chained Codex notify program), and backs
the file up before changing it. A file we cannot parse is refused, never rewritten.

- Claude Code: `settings.json` `hooks.<Stop|SubagentStop|SessionEnd>[] = {"hooks": [{"type":
  "command", "command": "... hook claude", "timeout": 10}]}` (no `matcher`: these events take none).
- Codex: top-level `notify = [...]` in `config.toml`. Codex runs one notify program; when the user
  already has one we chain it (`... hook codex --then <their argv>`: we run it with the payload
  after recording ours) instead of replacing it, and uninstall puts theirs back.
- OpenCode: the plugin file `nomira.ts` in `$XDG_CONFIG_HOME/opencode/plugins/`.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Mapping

from nomira.sources import paths

CLAUDE_EVENTS = ("Stop", "SubagentStop", "SessionEnd")
AGENTS = ("claude", "codex", "opencode")
PLUGIN_MARKER = "nomira-opencode-plugin"
HOOK_TIMEOUT_S = 10


class ConfigError(Exception):
    """A config file we will not rewrite (unparseable, or not shaped as the agent documents it)."""


def hook_argv(agent: str) -> list[str]:
    """How the agent should call us: the `nomira` script when installed, else this interpreter."""
    exe = shutil.which("nomira")
    return [exe, "hook", agent] if exe else [sys.executable, "-m", "nomira", "hook", agent]


# --- paths ---

def claude_settings(env: Mapping[str, str] = os.environ) -> Path:
    return paths.claude_config_dir(env) / "settings.json"


def codex_config(env: Mapping[str, str] = os.environ) -> Path:
    return paths.codex_home(env) / "config.toml"


def opencode_plugin(env: Mapping[str, str] = os.environ) -> Path:
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path(env.get("HOME") or Path.home()) \
        / ".config"
    return base / "opencode" / "plugins" / "nomira.ts"


# --- Claude Code settings.json (pure) ---

def _is_ours_claude(hook) -> bool:
    return isinstance(hook, dict) and isinstance(hook.get("command"), str) and "nomira" in hook["command"] \
        and hook["command"].rstrip().endswith("hook claude")


def claude_install(doc: dict, command: str) -> bool:
    """Add our hook to each event unless one is there already; True when `doc` changed."""
    hooks = doc.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ConfigError("settings.json `hooks` is not an object")
    changed = False
    for event in CLAUDE_EVENTS:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise ConfigError(f"settings.json `hooks.{event}` is not a list")
        if any(_is_ours_claude(h) for g in groups if isinstance(g, dict) for h in g.get("hooks") or []):
            continue
        groups.append({"hooks": [{"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}]})
        changed = True
    return changed


def claude_uninstall(doc: dict) -> bool:
    """Remove our hook entries only; groups and events left empty by that go too."""
    hooks = doc.get("hooks")
    if not isinstance(hooks, dict):
        return False
    changed = False
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept_groups = []
        for g in groups:
            inner = g.get("hooks") if isinstance(g, dict) else None
            if isinstance(inner, list) and any(_is_ours_claude(h) for h in inner):
                changed = True
                inner = [h for h in inner if not _is_ours_claude(h)]
                if not inner:
                    continue
                g = dict(g, hooks=inner)
            kept_groups.append(g)
        if changed and not kept_groups:
            del hooks[event]
        else:
            hooks[event] = kept_groups
    if changed and not hooks:
        del doc["hooks"]
    return changed


def claude_installed(doc: dict) -> list[str]:
    hooks = doc.get("hooks") if isinstance(doc.get("hooks"), dict) else {}
    return [e for e, groups in hooks.items() if isinstance(groups, list) and any(
        _is_ours_claude(h) for g in groups if isinstance(g, dict) for h in g.get("hooks") or [])]


# --- Codex config.toml (pure, line-preserving) ---

def _is_ours_codex(notify) -> bool:
    if not isinstance(notify, list):
        return False
    head = notify[:notify.index("--then")] if "--then" in notify else notify
    return head[-2:] == ["hook", "codex"] and any("nomira" in str(a) for a in head)


def _notify_span(lines: list[str]) -> tuple[int, int] | None:
    """The lines of the top-level `notify = ...` (an array may span lines); None when absent."""
    for i, line in enumerate(lines):
        s = line.lstrip()
        if s.startswith("["):
            return None  # tables began: a later `notify` belongs to a table
        if re.match(r"notify\s*=", s):
            for j in range(i, len(lines)):
                try:
                    tomllib.loads("".join(lines[i:j + 1]))
                    return i, j + 1
                except tomllib.TOMLDecodeError:
                    continue
            raise ConfigError("config.toml: cannot find the end of `notify = ...`")
    return None


def _toml_array(items: list[str]) -> str:
    return "notify = [" + ", ".join(json.dumps(a) for a in items) + "]\n"


def codex_set_notify(text: str, notify: list[str] | None) -> str:
    """`text` with the top-level notify replaced (None: removed); everything else kept byte for byte."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config.toml is not valid TOML ({exc}); not changed") from None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    span = _notify_span(lines)
    new = [] if notify is None else [_toml_array(notify)]
    if span is not None:
        lines[span[0]:span[1]] = new
    elif new:
        at = next((i for i, l in enumerate(lines) if l.lstrip().startswith("[")), len(lines))
        lines[at:at] = new
    out = "".join(lines)
    after = tomllib.loads(out)
    expected = {k: v for k, v in before.items() if k != "notify"}
    if notify is not None:
        expected["notify"] = notify
    if after != expected:  # never write a file that means something else
        raise ConfigError("config.toml could not be edited safely; not changed")
    return out


def codex_install_notify(current, ours: list[str]) -> list[str] | None:
    """The notify to write (None: leave as is)."""
    if _is_ours_codex(current):
        return None
    if current is None or current == []:
        return ours
    if isinstance(current, list) and all(isinstance(a, str) for a in current):
        return [*ours, "--then", *current]
    raise ConfigError("config.toml `notify` is not a list of strings; not changed")


def codex_uninstall_notify(current) -> tuple[bool, list[str] | None]:
    """(changed, notify to write: the chained program restored, or None to remove the key)."""
    if not _is_ours_codex(current):
        return False, current
    if "--then" in current:
        rest = current[current.index("--then") + 1:]
        return True, rest or None
    return True, None


# --- OpenCode plugin ---

def plugin_text(url: str, token: str | None, developer: str) -> str:
    """The plugin template with its endpoint filled in (JSON literals: no injection into the code)."""
    template = resources.files("nomira.capture").joinpath("opencode_plugin.ts").read_text()
    return (template.replace('"__NOMIRA_URL__"', json.dumps(url))
            .replace('"__NOMIRA_TOKEN__"', json.dumps(token or ""))
            .replace('"__NOMIRA_DEVELOPER__"', json.dumps(developer)))


# --- file I/O with backups ---

def backup(path: Path) -> Path | None:
    if not path.exists():
        return None
    dst = path.with_name(f"{path.name}.nomira-backup-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    shutil.copy2(path, dst)
    return dst


def write_text(path: Path, text: str, mode: int | None = None) -> Path | None:
    """Back the old file up, then replace it atomically; returns the backup path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = backup(path)
    tmp = path.with_name(f".{path.name}.nomira-tmp")
    tmp.write_text(text)
    if mode is not None:
        os.chmod(tmp, mode)
    elif saved is not None:
        shutil.copymode(saved, tmp)
    os.replace(tmp, path)
    return saved


def read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text() or "{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); not changed") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a JSON object; not changed")
    return doc


def read_toml(path: Path) -> tuple[str, dict]:
    text = path.read_text() if path.exists() else ""
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); not changed") from None


# --- the three operations, per agent ---

def install(agent: str, env: Mapping[str, str], plugin: dict | None = None) -> dict:
    if agent == "claude":
        path = claude_settings(env)
        doc = read_json(path)
        changed = claude_install(doc, shlex.join(hook_argv("claude")))
        saved = write_text(path, json.dumps(doc, indent=2) + "\n") if changed else None
    elif agent == "codex":
        path = codex_config(env)
        text, doc = read_toml(path)
        notify = codex_install_notify(doc.get("notify"), hook_argv("codex"))
        changed = notify is not None
        saved = write_text(path, codex_set_notify(text, notify)) if changed else None
    else:
        path = opencode_plugin(env)
        text = plugin_text(**(plugin or {}))
        old = path.read_text() if path.exists() else None
        if old is not None and PLUGIN_MARKER not in old:
            raise ConfigError(f"{path} exists and is not Nomira's plugin; not changed")
        changed = old != text
        saved = write_text(path, text, 0o600) if changed else None  # it may hold the collector key
        if saved is not None:
            saved.unlink()  # an old copy of our own plugin (and key) is not worth keeping
            saved = None
    return {"agent": agent, "path": str(path), "changed": changed, "backup": str(saved) if saved else None}


def uninstall(agent: str, env: Mapping[str, str]) -> dict:
    saved = None
    if agent == "claude":
        path = claude_settings(env)
        doc = read_json(path)
        changed = claude_uninstall(doc)
        if changed:
            saved = write_text(path, json.dumps(doc, indent=2) + "\n")
    elif agent == "codex":
        path = codex_config(env)
        text, doc = read_toml(path)
        changed, notify = codex_uninstall_notify(doc.get("notify"))
        if changed:
            saved = write_text(path, codex_set_notify(text, notify))
    else:
        path = opencode_plugin(env)
        changed = path.exists() and PLUGIN_MARKER in path.read_text()
        if changed:
            path.unlink()
    return {"agent": agent, "path": str(path), "changed": changed, "backup": str(saved) if saved else None}


def status(agent: str, env: Mapping[str, str]) -> dict:
    if agent == "claude":
        path = claude_settings(env)
        events = claude_installed(read_json(path))
        return {"agent": agent, "path": str(path), "installed": events == list(CLAUDE_EVENTS), "events": events}
    if agent == "codex":
        path = codex_config(env)
        notify = read_toml(path)[1].get("notify")
        chained = notify[notify.index("--then") + 1:] if _is_ours_codex(notify) and "--then" in notify else None
        return {"agent": agent, "path": str(path), "installed": _is_ours_codex(notify), "chained": chained}
    path = opencode_plugin(env)
    return {"agent": agent, "path": str(path), "installed": path.exists() and PLUGIN_MARKER in path.read_text()}
