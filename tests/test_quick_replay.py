"""A finished output replayed before the pipeline starts, only while nothing it depended on changed."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES
from nomira import dirs
from nomira.sources import behind, scancache

ROOT = Path(__file__).resolve().parent.parent


def nomira(*args: str) -> str:
    p = subprocess.run([sys.executable, "-m", "nomira", *args], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert p.returncode == 0, p.stderr
    behind.wait(str(dirs.cache_home()))  # (its cache writes, done after it answered, are read here)
    return p.stdout


def age(*roots: Path) -> None:
    """Every file and folder under `roots` as if written an hour ago (a replay is stored only
    when nothing it depends on changed around the run)."""
    old = time.time() - 3600
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for name in files:
                os.utime(os.path.join(dirpath, name), (old, old))
        for dirpath, dirs, _files in os.walk(root, topdown=False):
            os.utime(dirpath, (old, old))


@pytest.fixture
def claude_home(isolated_env, monkeypatch):
    """The Claude fixtures at ~/.claude/projects, the scan cache folder made, everything aged."""
    shutil.copytree(FIXTURES / "claude" / "projects", isolated_env / ".claude" / "projects")
    (isolated_env / ".cache" / "nomira").mkdir(parents=True)
    age(isolated_env)
    return isolated_env


def replayed(home: Path, *args: str) -> tuple[str, bool]:
    """(output, whether it was replayed): the scan cache is removed first, so a run that did the work
    recreates it."""
    db = dirs.cache_home() / "scan.sqlite"
    scancache.discard(db)  # (the database, its journals and its stored outputs)
    out = nomira(*args)
    return out, not db.exists()


def test_nothing_new_is_replayed(claude_home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value")
    first = nomira("--json", "--source", "claude")
    kept = os.listdir(scancache.quick_dir(os.environ))
    assert kept
    for name in kept:  # the invocation is kept as a digest: the environment never reaches the disk
        assert b"sk-ant-secret-value" not in (Path(scancache.quick_dir(os.environ)) / name).read_bytes()
    out, quick = replayed(claude_home, "--json", "--source", "claude")
    assert quick and out == first
    out, quick = replayed(claude_home, "--json", "--source", "claude", "--since", "20250101")
    assert not quick  # another command line is another output


def _session_line(msg_id: str, output_tokens: int) -> str:
    return json.dumps({"type": "assistant", "timestamp": "2025-11-04T10:00:00.000Z", "sessionId": "n",
                       "version": "2.0.37", "requestId": f"req_{msg_id}", "cwd": "/home/ana/src/shop",
                       "message": {"id": msg_id, "model": "claude-sonnet-4-5-20250929", "usage": {
                           "input_tokens": 10, "output_tokens": output_tokens}}}) + "\n"


@pytest.mark.parametrize("change", ["append", "new_file", "new_project", "new_root", "timezone", "prices"])
def test_any_change_is_read(claude_home, monkeypatch, change):
    args = ("daily", "--json", "--source", "claude")
    nomira(*args)
    assert replayed(claude_home, *args)[1]
    projects = claude_home / ".claude" / "projects"
    shop = projects / "-home-ana-src-shop"
    if change == "append":
        with open(next(shop.glob("*.jsonl")), "a") as fh:
            fh.write(_session_line("msg_NEW", 7))
    elif change == "new_file":
        (shop / "new.jsonl").write_text(_session_line("msg_NEW", 7))
    elif change == "new_project":
        (projects / "-home-ana-src-new").mkdir()
        (projects / "-home-ana-src-new" / "new.jsonl").write_text(_session_line("msg_NEW", 7))
    elif change == "new_root":  # Claude Code's XDG location appears next to ~/.claude
        (claude_home / ".config" / "claude" / "projects" / "p").mkdir(parents=True)
        (claude_home / ".config" / "claude" / "projects" / "p" / "n.jsonl").write_text(_session_line("msg_NEW", 7))
    elif change == "timezone":
        monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    elif change == "prices":  # a price override file appears
        cfg = dirs.config_home()
        cfg.mkdir(parents=True)
        (cfg / "prices.toml").write_text('[models."claude-sonnet-4-5-20250929"]\ninput = 100.0\noutput = 100.0\n'
                                         'cache_read = 1.0\ncache_write_5m = 1.0\ncache_write_1h = 1.0\n')
    out, quick = replayed(claude_home, *args)
    assert not quick
    assert out == nomira(*args, "--no-cache")


def test_damaged_replay_file_is_not_replayed(claude_home):
    """A replay file cut short or with a changed byte runs the report instead (the output's length
    and checksum are in its head)."""
    first = nomira("--json", "--source", "claude")
    folder = Path(scancache.quick_dir(os.environ))
    (stored,) = folder.iterdir()
    whole = stored.read_bytes()
    for damaged in (whole[:-40], whole[:-40] + bytes([whole[-40] ^ 1]) + whole[-39:],
                    b"\xff" * 8 + whole[8:], b"\x00" * 8 + whole[8:], b"garbage"):  # (a head no read takes)
        stored.write_bytes(damaged)
        out, quick = replayed(claude_home, "--json", "--source", "claude")
        assert out == first and not quick


def _pipe_size(fd: int) -> int | None:
    import fcntl
    return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) if hasattr(fcntl, "F_GETPIPE_SZ") else None


@pytest.mark.skipif(sys.platform != "linux", reason="pipe sizes are Linux's")
def test_a_long_report_widens_its_pipe_and_arrives_whole(claude_home, tmp_path_factory):
    """A report longer than a pipe holds (64 KB) is written into the pipe widened to 1 MB, worked out
    and replayed alike, and the reader gets all of it, equal to the report written to a file."""
    shop = claude_home / ".claude" / "projects" / "-home-ana-src-shop"
    for i in range(150):  # about 1 KB of JSON a session row
        (shop / f"s{i:03}.jsonl").write_text(_session_line(f"msg_long{i}", 5 + i).replace('"n"', f'"s{i}"'))
    age(claude_home)
    args = [sys.executable, "-m", "nomira", "--json", "--source", "claude"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(tmp_path_factory.mktemp("out") / "out.json", "w+") as fh:  # (a file: nothing to widen)
        assert subprocess.run(args + ["--no-cache"], cwd=ROOT, env=env, stdout=fh, timeout=120).returncode == 0
        fh.seek(0)
        expected = fh.read()
    assert len(expected) > 1 << 16
    db = dirs.cache_home() / "scan.sqlite"
    for run in ("worked out", "replayed"):
        if run == "replayed":  # (a replay starts no scan: the scan cache is not made again)
            behind.wait(str(dirs.cache_home()))
            assert os.listdir(scancache.quick_dir(os.environ))
            scancache.discard(db)
        r, w = os.pipe()
        try:
            before = _pipe_size(r)
            p = subprocess.Popen(args, cwd=ROOT, env=env, stdout=w)
            os.close(w)
            w = None
            chunks = []
            while chunk := os.read(r, 1 << 16):
                chunks.append(chunk)
            assert p.wait(timeout=120) == 0
            assert b"".join(chunks).decode() == expected, run
            with open("/proc/sys/fs/pipe-max-size") as fh:
                assert _pipe_size(r) == (1 << 20 if int(fh.read()) >= 1 << 20 else before), run
        finally:
            os.close(r)
            if w is not None:
                os.close(w)
    assert not db.exists()


def test_the_folders_discovery_listed_are_the_folders_a_replay_watches(claude_home, monkeypatch):
    """The replay's checks take the folders from the run's own walk (`paths.WALKED`) instead of
    listing them again: the same checks, sub-agent folders and a cache kept under a root included."""
    from nomira.sources import paths, registry
    projects = claude_home / ".claude" / "projects"
    (projects / "-home-ana-src-shop" / "s1" / "subagents").mkdir(parents=True)
    (projects / "-home-ana-src-shop" / "s1" / "subagents" / "a.jsonl").write_text(_session_line("msg_sub", 3))
    monkeypatch.setenv("XDG_CACHE_HOME", str(projects / "cache-here"))
    (projects / "cache-here" / "nomira" / "quick").mkdir(parents=True)
    monkeypatch.setattr(scancache, "RECENT_NS", -(1 << 62))  # (nothing counts as changed during the run)
    paths.WALKED.clear()
    found = registry.discover(["claude", "codex"], None, os.environ)
    files = [(p, size, mtime) for _s, p, size, mtime in registry.fingerprint(found)]
    roots = [str(r) for name in ("claude", "codex") for r in registry.SOURCES[name].default_paths(os.environ)]
    assert set(paths.WALKED) == {str(projects)}
    watched = scancache.quick_checks(files, roots, [], os.environ, time.time_ns(), paths.WALKED)
    assert watched == scancache.quick_checks(files, roots, [], os.environ, time.time_ns())
    folders = {p for p, size, _m in watched if size == scancache.FOLDER}
    assert str(projects / "-home-ana-src-shop" / "s1" / "subagents") in folders
    assert not any(f.startswith(str(projects / "cache-here" / "nomira")) for f in folders)  # (its own cache)


@pytest.mark.parametrize("by_fd", [True, False])
def test_packed_checks_see_what_the_paths_saw(tmp_path, monkeypatch, by_fd):
    """The checks as a replay reads them (grouped by folder, stated through the folder's descriptor
    or by whole path where the system has no `dir_fd`): unchanged paths pass, an absent path that
    stays absent passes, and each kind of change fails."""
    if not by_fd:
        monkeypatch.setattr(os, "supports_dir_fd", set())
    (tmp_path / "a").mkdir()
    log, other = tmp_path / "a" / "s.jsonl", tmp_path / "b.jsonl"
    log.write_text("x\n")
    other.write_text("yy\n")

    def checks():
        st, so, sd = log.stat(), other.stat(), (tmp_path / "a").stat()
        return [(str(log), st.st_size, st.st_mtime_ns), (str(tmp_path / "a"), scancache.FOLDER, sd.st_mtime_ns),
                (str(other), so.st_size, so.st_mtime_ns), (str(tmp_path / "gone" / "x"), scancache.ABSENT, 0),
                (str(tmp_path / "a" / "new.jsonl"), scancache.ABSENT, 0), ("/", scancache.FOLDER, os.stat("/").st_mtime_ns)]

    def unchanged(kept):
        folders, counts, names, sizes, mtimes = scancache._pack_checks(kept)
        return scancache._unchanged(folders, counts, names.split("\0"), memoryview(sizes).cast("q"),
                                    memoryview(mtimes).cast("q"))

    kept = checks()
    assert unchanged(kept)
    with log.open("a") as fh:  # appended: size and time
        fh.write("more\n")
    assert not unchanged(kept)
    kept = checks()
    (tmp_path / "a" / "new.jsonl").write_text("")  # appeared where nothing was
    assert not unchanged(kept)
    (tmp_path / "a" / "new.jsonl").unlink()
    kept = checks()
    assert unchanged(kept)
    other.unlink()  # gone
    assert not unchanged(kept)
    other.write_text("yy\n")
    kept = checks()
    shutil.rmtree(tmp_path / "a")  # a whole folder gone
    assert not unchanged(kept)


def test_a_replay_without_a_thread_to_start_reads_in_line(monkeypatch):
    """Where no thread can be started (a process at its limit), the replay's read is done in line,
    not a crash and not a wait on a lock nobody releases."""
    import _thread

    def refuse(*_a):
        raise RuntimeError("can't start new thread")
    monkeypatch.setattr(_thread, "start_new_thread", refuse)
    ran = []
    done = scancache._start(ran.append, 1)
    assert ran == [1] and done.acquire(timeout=1)


@pytest.mark.parametrize("served_by", ["replay", "stored_output"])
@pytest.mark.parametrize("change", ["new_step", "rewritten_step"])
def test_an_opencode_legacy_step_is_an_input(isolated_env, change, served_by):
    """A legacy message's step-finish parts are read with the message, whose own file does not change
    when a step is added or rewritten: the part files are inputs all the same, so neither the stored
    output nor the replay serves the report from before."""
    root = isolated_env / ".local" / "share" / "opencode"
    shutil.copytree(FIXTURES / "opencode" / "storage", root / "storage")
    (isolated_env / ".cache" / "nomira").mkdir(parents=True)
    parts = root / "storage" / "part" / "msg_L1"
    parts.mkdir(parents=True, exist_ok=True)
    step = {"id": "prt_a", "type": "step-finish", "reason": "tool-calls", "cost": 0,
            "tokens": {"input": 100, "output": 300, "reasoning": 0, "cache": {"read": 0, "write": 0}}}
    (parts / "prt_a.json").write_text(json.dumps(step))
    age(isolated_env)
    args = ("--json", "--source", "opencode")
    before = json.loads(nomira(*args))["totals"]["tokens"]["output"]
    if change == "new_step":
        (parts / "prt_b.json").write_text(json.dumps(dict(step, id="prt_b", tokens=dict(step["tokens"], output=7000))))
    else:  # (in place, the folder's time kept)
        (parts / "prt_a.json").write_text(json.dumps(dict(step, tokens=dict(step["tokens"], output=900))))
    age(parts)  # (the message files and their folders as they were)
    if served_by == "stored_output":  # (no replay: the scan cache's stored output is looked up)
        shutil.rmtree(scancache.quick_dir(os.environ))
    cached = json.loads(nomira(*args))["totals"]
    expected = json.loads(nomira(*args, "--no-cache"))["totals"]
    assert cached == expected and cached["tokens"]["output"] == before + {"new_step": 7000, "rewritten_step": 600}[change]
    out, quick = replayed(isolated_env, *args)
    assert quick and json.loads(out)["totals"] == expected
