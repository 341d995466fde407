"""Every error a user can hit is one line on stderr naming the thing and what to do; never a traceback."""
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES

ROOT = Path(__file__).resolve().parent.parent


def nomira(*args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "NOMIRA_DEBUG"}
    env.update({"PYTHONPATH": str(ROOT), **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "nomira", *map(str, args)], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def one_line(r, status: int, *words: str) -> str:
    lines = r.stderr.strip("\n").split("\n")
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1 and lines[0].startswith("nomira: "), r.stderr
    assert r.returncode == status, (r.returncode, r.stderr)
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture
def not_sqlite(tmp_path):
    p = tmp_path / "notes.db"
    p.write_text("these are my notes, not a database\n")
    return p


@pytest.fixture
def corrupt_sqlite(tmp_path):
    """Starts like SQLite, then garbage: passes the header check, fails when opened."""
    p = tmp_path / "corrupt.db"
    p.write_bytes(b"SQLite format 3\x00" + b"\xff\x00garbage" * 500)
    return p


COMMANDS_WITH_A_STORE = [["tenant", "list"], ["tenant", "create", "acme"], ["replay"], ["import", "EVENTS"],
                         ["ship", "--path", FIXTURES / "claude"], ["serve", "--port", "0"]]


@pytest.mark.parametrize("argv,kind", [(a, "not_sqlite") for a in COMMANDS_WITH_A_STORE]
                         + [(a, "corrupt_sqlite") for a in COMMANDS_WITH_A_STORE[1:]])
def test_bad_db_is_one_line(argv, kind, request, tmp_path):
    db = request.getfixturevalue(kind)
    events = tmp_path / "events.json"
    events.write_text('{"events": []}')
    argv = [str(events) if a == "EVENTS" else a for a in argv]
    one_line(nomira(*argv, "--db", db), 1, str(db.name), "--db")


@pytest.mark.parametrize("argv", [["replay"], ["tenant", "list"]])
def test_read_commands_never_create_a_store(argv, tmp_path):
    db = tmp_path / "typo.db"
    one_line(nomira(*argv, "--db", db), 1, "no store at", "--db")
    assert not db.exists()


def test_store_in_a_missing_folder(tmp_path):
    one_line(nomira("tenant", "create", "acme", "--db", tmp_path / "nope" / "t.db"), 1, "no folder", "nope")


def test_creating_commands_still_create(tmp_path):
    db = tmp_path / "new.db"
    r = nomira("tenant", "create", "acme", "--db", db)
    assert r.returncode == 0 and db.exists()
    assert nomira("tenant", "list", "--db", db).stdout.startswith("acme")


def test_export_to_missing_folder(tmp_path):
    one_line(nomira("export", tmp_path / "nope" / "events.json", "--path", FIXTURES / "claude"), 1,
             "no folder", "nope")


def test_serve_on_a_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        one_line(nomira("serve", "--db", tmp_path / "s.db", "--port", port), 1, f"127.0.0.1:{port}", "--port")


def test_serve_on_an_address_the_machine_lacks(tmp_path):
    # TEST-NET-1 (RFC 5737): never assigned to a local interface
    one_line(nomira("serve", "--db", tmp_path / "s.db", "--host", "192.0.2.1", "--port", "0"), 1,
             "192.0.2.1", "--host")


def test_impossible_day_names_the_flag():
    one_line(nomira("--since", "20261345"), 2, "--since 20261345", "YYYYMMDD")
    one_line(nomira("daily", "--until", "2026-02-30"), 2, "--until 2026-02-30")


def test_since_after_until():
    one_line(nomira("--since", "20261105", "--until", "20261101"), 2, "--since 20261105", "--until 20261101")


def test_unknown_timezone():
    one_line(nomira("-z", "Mars/Olympus"), 2, "--timezone Mars/Olympus")


def test_misspelt_command_gets_a_suggestion():
    one_line(nomira("dialy"), 2, "did you mean daily?")
    one_line(nomira("--json", "monthyl"), 2, "did you mean monthly?")


def test_flags_a_command_ignores_are_usage_errors():
    for argv in (["tenant", "list", "--since", "20260101"], ["replay", "--breakdown"], ["serve", "--json"],
                 ["daily", "--compare"], ["prices", "--path", "x"]):
        r = nomira(*argv)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (argv, r.stderr)
        assert r.stderr.startswith(f"usage: nomira {argv[0]}") and "does not take" in r.stderr, r.stderr


def test_help_lists_only_the_flags_a_command_uses():
    tenant = nomira("tenant", "--help").stdout
    assert "--db" in tenant and "--since" not in tenant and "--regime" not in tenant
    serve = nomira("serve", "--help").stdout
    assert "--port" in serve and "--json" not in serve and "--path" not in serve
    daily = nomira("daily", "--help").stdout
    assert "--since" in daily and "--wide" in daily and "--db" not in daily


def test_unexpected_errors_are_one_line_unless_debugging(tmp_path):
    # a Claude transcript whose parent folder is a file path lookalike is fine; force a crash instead:
    crash = tmp_path / "sitecustomize.py"
    crash.write_text("import nomira.commands.report as r\n"
                     "def boom(args):\n    raise RuntimeError('kaboom')\n"
                     "r.cmd_report = boom\n"
                     "orig = r.add_arguments\n"
                     "def add(name, p):\n    orig(name, p)\n    p.set_defaults(func=boom)\n"
                     "r.add_arguments = add\n")
    extra = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    r = nomira("--path", FIXTURES / "claude", env_extra=extra)
    one_line(r, 1, "RuntimeError: kaboom", "NOMIRA_DEBUG=1")
    r = nomira("--path", FIXTURES / "claude", env_extra={**extra, "NOMIRA_DEBUG": "1"})
    assert r.returncode == 1 and "Traceback" in r.stderr and "kaboom" in r.stderr


def test_no_usage_names_the_places_and_filters(tmp_path):
    (tmp_path / "empty").mkdir()
    line = one_line(nomira("--path", tmp_path / "empty"), 0, str(tmp_path / "empty"), "0 files")
    assert "--demo" in line
    line = one_line(nomira("daily", "--path", FIXTURES / "claude", "--since", "20300101"), 0,
                    str(FIXTURES / "claude"), "--since 20300101")
    home = tmp_path / "h"
    r = nomira(env_extra={"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                          "XDG_DATA_HOME": str(home / ".local/share"), "CLAUDE_CONFIG_DIR": "",
                          "CODEX_HOME": "", "OPENCODE_DATA_DIR": ""})
    line = one_line(r, 0, "Claude Code", "Codex", "OpenCode")


LOCKING = """
import builtins, os
_open, _scandir = builtins.open, os.scandir
def locked(p):
    return "LOCKED" in os.fspath(p)
def open_(file, *a, **k):
    if isinstance(file, (str, bytes, os.PathLike)) and locked(file):
        raise PermissionError(13, "Permission denied", os.fspath(file))
    return _open(file, *a, **k)
def scandir(p="."):
    if locked(p):
        raise PermissionError(13, "Permission denied", os.fspath(p))
    return _scandir(p)
_os_open = os.open
def os_open(p, *a, **k):  # the scanner reads through descriptors
    if isinstance(p, (str, bytes, os.PathLike)) and locked(p):
        raise PermissionError(13, "Permission denied", os.fspath(p))
    return _os_open(p, *a, **k)
builtins.open, os.scandir, os.open = open_, scandir, os_open
"""


def test_unreadable_files_and_folders_are_counted_and_named(tmp_path, fixture_copy):
    """Files and folders the user may not read (simulated: the tests may run as root) are named."""
    import json
    root = fixture_copy / "claude"
    full = json.loads(nomira("--json", "--no-cache", "--path", root).stdout)
    shop = root / "projects" / "-home-ana-src-shop"
    locked_file = (shop / "7c1d2e3f-0000-4000-8000-000000000002.jsonl").rename(shop / "LOCKED-7c1d.jsonl")
    locked_dir = (shop / "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c").rename(shop / "LOCKED")
    (tmp_path / "sitecustomize.py").write_text(LOCKING)
    r = nomira("--json", "--no-cache", "--path", root, env_extra={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    line = one_line(r, 0, "2 unreadable", str(locked_file), str(locked_dir))
    doc = json.loads(r.stdout)
    assert doc["scan"]["unreadable"] == [str(locked_dir), str(locked_file)], line
    assert doc["totals"]["calls"] < full["totals"]["calls"]


def test_demo_reuses_one_folder_and_says_how_to_use_it(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = nomira("--demo", "--json", env_extra=env)
    second = nomira("--demo", "--json", env_extra=env)
    folder = tmp_path / "cache" / "nomira" / "demo"
    assert first.stderr == second.stderr and f"--path {folder}" in first.stderr
    assert len(list((folder / "codex").rglob("*.jsonl"))) == 3  # regenerated, not accumulated
    assert first.returncode == 0 and '"calls"' in first.stdout


def test_optimize_takes_labels_and_dash_values_and_says_its_scope():
    tools = FIXTURES / "claude_tools"
    ok = nomira("optimize", "--path", tools, "--project", "tools")
    assert ok.returncode == 0 and "OpenCode tool calls are not attributed yet" in ok.stdout
    one_line(nomira("optimize", "--path", tools, "--project", "-home-ana-src-tools"), 2,
             "--project -home-ana-src-tools", "projects: tools")
    assert nomira("optimize", "--path", tools, "--project=tools").stdout == ok.stdout
    one_line(nomira("optimize", "--path", FIXTURES / "opencode"), 0, "Claude Code or Codex usage")


@pytest.mark.parametrize("command", [(), ("daily",)])
def test_a_closed_standard_output_is_one_line(isolated_env, command):
    """`nomira >&-`: said in one line, not an 'unexpected error', and no replay is tried instead."""
    env = {k: v for k, v in os.environ.items() if k != "NOMIRA_DEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    for _ in range(2):  # (the second run could find a replay: it must not write to nowhere either)
        r = subprocess.run([sys.executable, "-m", "nomira", *command, "--json", "--path", str(FIXTURES / "claude")],
                           cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, timeout=60,
                           preexec_fn=lambda: os.close(1))  # (the child's standard output closed)
        one_line(r, 1, "standard output is closed")
