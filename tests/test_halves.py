"""The JSON report of a history folded in two processes, split by session (nomira/sources/halves.py).

It must be the report one process makes, up to the order floats are summed in (every count, label,
row, row order and micro-dollar equal): on tools/diff_ccusage.py's randomized histories, whose
resumed sessions copy calls into other sessions' files (those sessions must stay on one side, or a
call would count once in each half), whose sub-agent files belong to their parent's session, with
clashing directory names and a time window; cold, written to the cache, and after a change; and
when the child fails or dies, whose half the parent then makes itself.
"""
import itertools
import json
import os
import signal

import pytest

from nomira.cli import main
from nomira.reports import summary
from nomira.sources import claude_code, halves
from test_prefold import assert_same, history, reference, report

SEEDS = range(8)


@pytest.fixture
def split(monkeypatch):
    """Every history split (two cores, any size); counts the splits."""
    monkeypatch.setattr(halves, "MIN_RECORDS", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    counts = {"both": 0}
    real = halves.both

    def both(fn):
        counts["both"] += 1
        return real(fn)
    monkeypatch.setattr(halves, "both", both)
    return counts


def alone(capsys, monkeypatch, root, *args) -> dict:
    """The report made by one process (the reference)."""
    return reference(capsys, monkeypatch, root, halves, "MIN_RECORDS", 1 << 60, 0, *args)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_halves_report_is_one_processs(capsys, tmp_path, monkeypatch, split, seed):
    root = history(tmp_path / "h", seed)
    want = alone(capsys, monkeypatch, root)
    assert split["both"] == 0
    assert_same(report(capsys, "--path", root, "--no-cache"), want)
    assert_same(report(capsys, "--path", root), want)  # cold, the cache written as it goes
    first = sorted(root.rglob("*.jsonl"))[0]
    first.write_text(first.read_text())  # (same bytes, new mtime: the stored output is stale)
    assert_same(report(capsys, "--path", root), want)  # from the cache's records
    assert split["both"] == 3
    if seed == 3:  # (a seed with both clashing folders)
        assert {"app (a)", "app (b)"} <= {r["project"] for r in want["sessions"]}


def test_a_sub_agent_file_sharing_no_call_with_its_session_is_on_its_side(capsys, tmp_path, monkeypatch, split):
    """Sub-agent files whose calls are all their own (no progress line repeats them): their session's
    row is one row, made on one side."""
    root = history(tmp_path / "h", 1)
    mains = [f for f in sorted(root.rglob("*.jsonl")) if "subagents" not in f.parts][:12]
    for n, f in enumerate(mains):
        lines = [ln for ln in f.read_text().splitlines() if '"usage"' in ln and '"msg_' in ln][:3]
        sub = f.with_suffix("") / "subagents" / f"agent-a{n}.jsonl"
        sub.parent.mkdir(parents=True, exist_ok=True)
        sub.write_text("".join(ln.replace('"msg_', '"msg_sub').replace('"req_', '"req_sub')
                               .replace('"isSidechain":false', '"isSidechain":true') + "\n" for ln in lines))
    want = alone(capsys, monkeypatch, root)
    sessions = [(r["session_id"], r["project"]) for r in want["sessions"]]
    assert len(sessions) == len(set(sessions))
    assert_same(report(capsys, "--path", root, "--no-cache"), want)


def test_a_time_window(capsys, tmp_path, monkeypatch, split):
    root = history(tmp_path / "h", 5)
    window = ("--since", "20261112", "--until", "20261113")
    assert_same(report(capsys, "--path", root, "--no-cache", *window), alone(capsys, monkeypatch, root, *window))
    assert split["both"] == 1


def test_sessions_sharing_a_call_stay_on_one_side():
    p = "/h/projects/-w-p1/"
    rec = [None] * 14

    def call(msg):
        r = list(rec)
        r[claude_code.MSG_ID] = msg
        return r
    items = [(p + "a.jsonl", [call("m1"), call("m2")], {}),
             (p + "a/subagents/agent-1.jsonl", [call("m9")], {}),  # (a's sub-agent: a's session)
             (p + "b.jsonl", [call("m3")], {}),
             (p + "c.jsonl", [call("m4"), call("m2")], {}),  # (c resumed a: a call of a's)
             (p + "d.jsonl", [call(None), call("m5")], {}),
             (p + "e.jsonl", [call("m6"), call("m7")], {})]
    got = halves.sides(items, claude_code.partition_key, claude_code.file_session)
    assert got[0] == got[1] == got[3]
    assert set(got) == {0, 1}  # (both used: a's group on one side, the rest on the other)
    assert got[2] == got[4] == got[5] != got[0]


def test_a_late_link_joins_groups_already_apart():
    """A call shared by two groups each already joined (c links a and b only after both have others)."""
    p = "/h/projects/-w-p1/"

    def call(msg):
        r = [None] * 14
        r[claude_code.MSG_ID] = msg
        return r
    items = [(p + "a.jsonl", [call("m1")], {}), (p + "x.jsonl", [call("m1"), call("m2")], {}),
             (p + "b.jsonl", [call("m3")], {}), (p + "y.jsonl", [call("m3"), call("m4")], {}),
             (p + "c.jsonl", [call("m2"), call("m4")], {})]
    got = halves.sides(items, claude_code.partition_key, claude_code.file_session)
    assert len(set(got)) == 1


@pytest.mark.parametrize("fault", ["raises", "killed", "not marshal's"])
def test_the_parent_makes_the_half_of_a_child_that_fails(fault):
    parent = os.getpid()

    def fn(side):
        if os.getpid() != parent:
            if fault == "raises":
                raise RuntimeError("a bug in the child")
            if fault == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            return object()
        return ["side", side]
    assert halves.both(fn) == (["side", 0], ["side", 1])


def test_a_report_whose_child_fails_is_the_same(capsys, tmp_path, monkeypatch, split):
    root = history(tmp_path / "h", 2)
    want = alone(capsys, monkeypatch, root)
    parent, real = os.getpid(), summary.half

    def half(priced):
        if os.getpid() != parent:
            raise RuntimeError("a bug in the child's half")
        return real(priced)
    monkeypatch.setattr(summary, "half", half)
    assert_same(report(capsys, "--path", root, "--no-cache"), want)
    assert split["both"] == 1


def test_a_files_session_is_the_one_its_identity_gives():
    """claude_code.file_session (fast, for every file at once) equals file_identity's session on every
    path shape: sub-agent folders at every depth, names like the folder, no folder, relative paths."""
    shapes = ["", "a", "subagents", "x.jsonl", "projects", "s.jsonl", "subagents.jsonl", ".jsonl"]
    for k in range(1, 6):
        for combo in itertools.product(shapes, repeat=k):
            path = os.sep.join(combo)
            assert claude_code.file_session(path) == claude_code.file_identity(path)[0], path


def period(capsys, command, *args) -> dict:
    assert main([command, "--json", "--source", "claude", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("command,seed", [("daily", 0), ("daily", 3), ("monthly", 4), ("session", 6)])
def test_a_period_report_folded_in_two_is_one_processs(capsys, tmp_path, monkeypatch, split, command, seed):
    """`daily`, `monthly` and `session` fold both halves at once too (`Run.fold(whole=...)`): a day's or a
    month's tallies are the two sides' merged; equal to one process's, cold, from the cache, after a
    change, in another zone, with a time window and with --breakdown."""
    root = history(tmp_path / "h", seed)
    extra = [("--timezone", "Asia/Kolkata"), ("--breakdown",), ("--since", "20261110")]
    for args in [(), *extra]:
        monkeypatch.setattr(halves, "MIN_RECORDS", 1 << 60)
        want = period(capsys, command, "--path", root, "--no-cache", *args)
        monkeypatch.setattr(halves, "MIN_RECORDS", 0)
        before = split["both"]
        assert_same(period(capsys, command, "--path", root, "--no-cache", *args), want)
        assert split["both"] == before + 1
    want = period(capsys, command, "--path", root, "--no-cache")
    assert want[command] and want["totals"]["calls"] > 0
    assert_same(period(capsys, command, "--path", root), want)  # cold, the cache written as it goes
    first = sorted(root.rglob("*.jsonl"))[0]
    first.write_text(first.read_text())  # (same bytes, new mtime: the stored output is stale)
    assert_same(period(capsys, command, "--path", root), want)


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_the_split_made_as_the_files_come_is_the_one_made_after(capsys, tmp_path, monkeypatch, split, seed):
    """`Linked`, fed by the scan file by file, splits the history as `sides` of every file at once does;
    the report uses it (a `sides` that raises is never called) and is one process's."""
    from nomira.sources import registry
    root = history(tmp_path / "h", seed)
    want = alone(capsys, monkeypatch, root)
    made = []
    real_in_two = registry.Collected.in_two

    def in_two(self, fn, workers):
        for mod, parts in self._pending:
            items = parts.read(None)
            linked = self._links[id(parts)]
            assert len(linked.units) == len(items)
            made.append((linked.sides(), real_sides(items, mod.partition_key, mod.file_session)))
        return real_in_two(self, fn, workers)
    real_sides = halves.sides

    def no_sides(*a):
        raise AssertionError("the split was made again after the scan")
    monkeypatch.setattr(registry.Collected, "in_two", in_two)
    monkeypatch.setattr(halves, "sides", no_sides)
    assert_same(report(capsys, "--path", root, "--no-cache"), want)
    assert made and all(a == b and set(a) == {0, 1} for a, b in made)


@pytest.mark.parametrize("command,fold,seed", [("daily", "daily", 2), ("session", "sessions", 3)])
def test_a_period_report_whose_child_fails_is_the_same(capsys, tmp_path, monkeypatch, split, command, fold, seed):
    """A child whose fold fails (`daily`'s; `session --json`'s rows, made in each half's process by
    `periods.session_half`): the parent makes that half itself."""
    from nomira.reports import periods
    root = history(tmp_path / "h", seed)
    monkeypatch.setattr(halves, "MIN_RECORDS", 1 << 60)
    want = period(capsys, command, "--path", root, "--no-cache")
    monkeypatch.setattr(halves, "MIN_RECORDS", 0)
    parent, real = os.getpid(), getattr(periods, fold)

    def failing(*args):
        if os.getpid() != parent:
            raise RuntimeError("a bug in the child's half")
        return real(*args)
    monkeypatch.setattr(periods, fold, failing)
    got = period(capsys, command, "--path", root, "--no-cache")
    assert_same(got, want)
    assert split["both"] == 1 and len(got[command]) > 1
