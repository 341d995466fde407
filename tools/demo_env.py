"""Run nomira on the demo history with every input pinned, so generated docs never drift.

Pinned: the demo's end (NOMIRA_DEMO_NOW, honoured by nomira/demo.py), the clock the reports
read (datetime.now is frozen at the same instant in the child process), HOME and the XDG
folders (/tmp/nomira-docs-home, emptied first and taken under a lock: no feeds, overrides,
caches or stores), TZ=UTC, COLUMNS=100, NO_COLOR. Agents' folders point at the demo history, so commands run as their examples read.

    python tools/demo_env.py nomira ARGS...   # (internal) run one command under the frozen clock
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_NOW = "2026-12-04T15:00:00Z"  # after the bundled price table's date: `doctor` shows a real age
COLUMNS = 100
TIMEOUT = 60
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's nomira, whether or not one is installed


@dataclass
class Result:
    argv: list[str]
    status: int
    stdout: str
    stderr: str
    timed_out: bool = False


class DemoEnv:
    """A temp HOME holding the demo history; `run` executes `nomira ...` there, output with the
    temp folder shown as `~`."""

    def __init__(self):
        # One fixed folder, taken under a lock: a path that a table wraps must wrap the same way on
        # every run and machine, so it cannot hold a random name (runs wait for each other instead).
        base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
        self._lock = open(base / "nomira-docs.lock", "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.home = base / "nomira-docs-home"
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(mode=0o700)
        self.demo = self.home / ".cache" / "nomira" / "demo"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "USER": "dev",
            "LOGNAME": "dev", "LANG": "C.UTF-8", "TZ": "UTC", "COLUMNS": str(COLUMNS), "LINES": "40",
            "NO_COLOR": "1", "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0", "NOMIRA_DEMO_NOW": DEMO_NOW,
            "XDG_CACHE_HOME": str(self.home / ".cache"), "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_STATE_HOME": str(self.home / ".local/state"), "XDG_CONFIG_HOME": str(self.home / ".config"),
            "CLAUDE_CONFIG_DIR": str(self.demo / "claude"), "CODEX_HOME": str(self.demo / "codex"),
        }
        self.work = self.home / "work"  # the current directory: export/import files land here
        self.work.mkdir()
        from nomira.demo import reference_now, write_demo
        write_demo(self.demo, now=reference_now(self.env))

    def run(self, argv: list[str], stdin: str | None = None, extra_env: dict | None = None) -> Result:
        assert argv[0] == "nomira", argv
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
        try:
            p = subprocess.run(cmd, cwd=self.work, env={**self.env, **(extra_env or {})}, input=stdin,
                               capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return Result(argv, -1, "", "", timed_out=True)
        return Result(argv, p.returncode, self.clean(p.stdout), self.clean(p.stderr))

    def helps(self) -> dict[str, str]:
        """`nomira --help` ("") and every `nomira COMMAND --help`, from one process (as argparse prints them)."""
        p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--helps"], cwd=self.work, env=self.env,
                           capture_output=True, text=True, timeout=TIMEOUT)
        if p.returncode:
            raise SystemExit(f"nomira --help failed: {p.stderr.strip()}")
        return {k: self.clean(v) for k, v in json.loads(p.stdout).items()}

    def clean(self, text: str) -> str:
        return re.sub(r"[ \t]+\n", "\n", text.replace(str(self.home), "~"))

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        self._lock.close()  # releases the lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_or_check(path: Path, text: str, check: bool, tool: str) -> bool:
    """Write `text` to `path`, or with `check` print a diff when they differ. True when `path` was stale."""
    import difflib
    old = path.read_text() if path.exists() else ""
    name = Path(os.path.relpath(path, ROOT)).as_posix()
    if old == text:
        print(f"{name} is up to date")
        return False
    if check:
        sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True), name,
                                                   "regenerated", n=1))
        print(f"\n{name} is stale: run python {tool}", file=sys.stderr)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {name}")
    return True


def freeze_clock(iso: str) -> None:
    """datetime.now/utcnow/today answer `iso` from here on; isinstance checks still hold."""
    import datetime as dt
    real = dt.datetime
    at = real.fromisoformat(iso.replace("Z", "+00:00"))

    class Meta(type):
        def __instancecheck__(cls, obj):
            return isinstance(obj, real)

        def __subclasscheck__(cls, sub):
            return issubclass(sub, real)

    class FrozenDateTime(real, metaclass=Meta):
        @classmethod
        def now(cls, tz=None):
            return at.astimezone(tz) if tz is not None else at.astimezone().replace(tzinfo=None)

        @classmethod
        def utcnow(cls):
            return at.astimezone(dt.timezone.utc).replace(tzinfo=None)

        @classmethod
        def today(cls):
            return cls.now()

    dt.datetime = FrozenDateTime


def _all_helps() -> dict[str, str]:
    from nomira.cli import COMMANDS, build_parser
    out = {"": build_parser().format_help()}
    for name in COMMANDS:
        out[name] = build_parser(name).selected.format_help()
    return out


if __name__ == "__main__":
    freeze_clock(os.environ.get("NOMIRA_DEMO_NOW", DEMO_NOW))
    if sys.argv[1:] == ["--helps"]:
        print(json.dumps(_all_helps()))
        sys.exit(0)
    sys.argv = sys.argv[1:]
    from nomira.cli import main
    sys.exit(main(sys.argv[1:]))
