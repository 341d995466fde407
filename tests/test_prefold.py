"""Files folded by the scan workers that read them (nomira/sources/prefold.py).

The report a forked pool makes (workers fold whole files, the parent audits the dedup keys and
folds the rest) must be the report the parent makes alone, up to the order floats are summed in:
every count, label, row and micro-dollar equal, every dollar figure within 1e-12 relative. On
tools/diff_ccusage.py's randomized histories (resumed sessions copying calls, sub-agent replays
under new request ids, progress lines nesting a sub-agent's calls, calls without a request id,
unfinished lines), with directories whose names clash (the label is the history's, which a worker
cannot know), with a time window, with every key colliding, past the audit's limit, and when a
worker's fold fails.
"""
import json
import random
import sys
from pathlib import Path

import pytest

from nomira.cli import main
from nomira.sources import prefold, scan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import diff_ccusage  # noqa: E402

CWDS = {"-w-p1": "/a/app", "-w-p2": "/b/app", "-w-p3": "/c/other"}  # two labels "app (a)", "app (b)"


def report(capsys, *args) -> dict:
    assert main(["--json", "--source", "claude", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


def reference(capsys, monkeypatch, root, target, name: str, off, on, *args) -> dict:
    """The report made without the cache while `target.name` is `off` (a path the test's is compared
    with), `on` again after."""
    monkeypatch.setattr(target, name, off)
    try:
        return report(capsys, "--path", root, "--no-cache", *args)
    finally:
        monkeypatch.setattr(target, name, on)


def assert_same(a, b, where="") -> None:
    """Equal, floats up to summation order."""
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15), where
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b and type(a) is type(b), where


def history(root: Path, seed: int) -> Path:
    diff_ccusage.claude_history(root, random.Random(seed), without_request_id=0.2)
    for folder, cwd in CWDS.items():
        for f in (root / "projects" / folder).rglob("*.jsonl") if (root / "projects" / folder).is_dir() else ():
            f.write_text(f.read_text().replace('"cwd":"/w/p"', f'"cwd":"{cwd}"'))
    return root


@pytest.fixture
def settled(monkeypatch):
    """Forces the scan pool on small histories, has every file folded by its worker (unless a test
    says otherwise); counts the folds that stood and the files sent on."""
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(prefold, "MIN_CALLS", 0)
    monkeypatch.setattr(prefold, "MIN_AVERAGE_BYTES", 0)
    counts = {"standing": 0, "sent": 0}
    real = prefold.Held.settle

    def settle(self, parts, everything=False):
        files = len(self.files)
        standing = real(self, parts, everything)
        counts["standing"] += len(standing)
        counts["sent"] += files - len(standing)
        return standing
    monkeypatch.setattr(prefold.Held, "settle", settle)
    return counts


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("min_calls", [0, prefold.MIN_CALLS])
def test_workers_folds_equal_the_parents(capsys, tmp_path, monkeypatch, settled, seed, min_calls):
    monkeypatch.setattr(prefold, "MIN_CALLS", min_calls)  # (0: every file folded by its worker)
    root = history(tmp_path / "h", seed)
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 1 << 40)
    alone = report(capsys, "--path", root, "--no-cache")
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    assert_same(report(capsys, "--path", root, "--no-cache"), alone)
    assert_same(report(capsys, "--path", root), alone)  # cold, with the cache written as it goes
    assert_same(report(capsys, "--path", root), alone)  # warm: from the cache, no worker folds
    assert settled["standing"] > 0


def test_duplicates_across_files_go_the_long_way(capsys, tmp_path, settled):
    """Seeds whose resumed sessions and sub-agent replays share calls with other files: those files
    are deduplicated in the parent, the others stand (a fold that stood for them would count a call
    twice: the totals would differ)."""
    sent = 0
    for seed in range(8):
        root = history(tmp_path / f"h{seed}", seed)
        report(capsys, "--path", root, "--no-cache")
        sent += settled["sent"]
    assert sent > 0 and settled["standing"] > 0


def test_clashing_directory_names_get_the_historys_labels(capsys, tmp_path, settled):
    root = history(tmp_path / "h", 3)
    got = report(capsys, "--path", root, "--no-cache")
    assert {"app (a)", "app (b)"} <= {r["project"] for r in got["sessions"]}
    assert "app" not in {r["project"] for r in got["sessions"]}


def test_time_window(capsys, tmp_path, monkeypatch, settled):
    root = history(tmp_path / "h", 5)
    window = ("--since", "20261112", "--until", "20261113")
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 1 << 40)
    alone = report(capsys, "--path", root, "--no-cache", *window)
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    assert_same(report(capsys, "--path", root, "--no-cache", *window), alone)
    assert settled["standing"] > 0


@pytest.mark.parametrize("fault", ["every key collides", "past the audit's limit", "the fold fails", "held on disk"])
def test_faults_fall_back_to_the_parent(capsys, tmp_path, monkeypatch, settled, fault):
    root = history(tmp_path / "h", 6)
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 1 << 40)
    alone = report(capsys, "--path", root, "--no-cache")
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    if fault == "every key collides":
        monkeypatch.setattr(prefold, "_hash", lambda key: 7)
    elif fault == "past the audit's limit":
        monkeypatch.setattr(prefold, "AUDIT_MAX", 3)
    elif fault == "held on disk":  # (not a fault: the records past HOLD_BYTES wait in a file)
        monkeypatch.setattr(prefold, "HOLD_BYTES", 1000)
        assert_same(report(capsys, "--path", root, "--no-cache"), alone)
        assert settled["standing"] > 0 and settled["sent"] > 0
        return
    else:
        from nomira.reports import summary

        def broken(folded):
            raise RuntimeError("a bug in a worker's fold")
        monkeypatch.setattr(summary, "pack", broken)
    assert_same(report(capsys, "--path", root, "--no-cache"), alone)
    assert settled["standing"] == 0
    # (with no fold at all, no file waits for the audit: each goes the long way as it is read)
    assert settled["sent"] > 0 if fault != "the fold fails" else settled["sent"] == 0


def test_a_call_twice_in_one_file_is_counted_as_the_parent_counts_it(capsys, tmp_path, monkeypatch, settled):
    """A sub-agent replay in the same file (same message id, another request id, sidechain): the
    worker's own deduplication keeps one and counts the other, as the parent does."""
    root = history(tmp_path / "h", 1)
    rng = random.Random(9)
    f = next((root / "projects").rglob("*.jsonl"))
    line = json.loads(next(ln for ln in f.read_text().splitlines() if '"requestId":"req_' in ln and "<synthetic>" not in ln))
    line.update(isSidechain=True, requestId="req_replay1")
    line["message"]["usage"]["cache_read_input_tokens"] += 5
    with open(f, "a") as fh:
        fh.write(json.dumps(line) + "\n" + diff_ccusage.claude_line(rng, "x", diff_ccusage.datetime(2026, 11, 11), "msg_own",
                                                                     "req_own", "claude-haiku-4-5-20251001",
                                                                     {"input_tokens": 1, "output_tokens": 2}) + "\n")
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 1 << 40)
    alone = report(capsys, "--path", root, "--no-cache")
    assert alone["scan"]["skipped"].get("duplicate_call")
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    assert_same(report(capsys, "--path", root, "--no-cache"), alone)


def test_a_file_with_a_call_without_id_is_still_audited(capsys, tmp_path, monkeypatch, settled):
    """A file that cannot be folded where it is read (a call logged without message.id) still has
    its other calls' keys audited: the resumed copy of one of them in another file must not stand
    (it would count that call twice)."""
    rng = random.Random(3)
    project = tmp_path / "h" / "projects" / "-w-p1"
    project.mkdir(parents=True)
    t = diff_ccusage.datetime(2026, 11, 11, 9, tzinfo=diff_ccusage.timezone.utc)
    usage = {"input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 300}
    shared = diff_ccusage.claude_line(rng, "s1", t, "msg_shared", "req_shared", "claude-sonnet-4-5-20250929", usage)
    no_id = json.loads(diff_ccusage.claude_line(rng, "s1", t, "x", "req_x", "claude-sonnet-4-5-20250929", usage))
    del no_id["message"]["id"]
    (project / "s1.jsonl").write_text(shared + "\n" + json.dumps(no_id) + "\n")
    (project / "s2.jsonl").write_text(shared.replace('"s1"', '"s2"') + "\n")
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 1 << 40)
    alone = report(capsys, "--path", tmp_path / "h", "--no-cache")
    assert alone["totals"]["calls"] == 2
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    assert_same(report(capsys, "--path", tmp_path / "h", "--no-cache"), alone)


def test_a_history_of_small_files_is_folded_by_the_parent(capsys, tmp_path, monkeypatch, settled):
    root = history(tmp_path / "h", 2)
    monkeypatch.setattr(prefold, "MIN_AVERAGE_BYTES", 1 << 30)
    report(capsys, "--path", root, "--no-cache")
    assert settled == {"standing": 0, "sent": 0}  # (no file held back for the audit)


def test_every_source_at_once(capsys, tmp_path, monkeypatch, settled):
    """Claude Code's files folded by the workers beside Codex's, which the parent folds."""
    root = history(tmp_path / "h", 4)
    diff_ccusage.codex_history(tmp_path / "codex", random.Random(4))
    args = ("--source", "all", "--path", root, "--path", tmp_path / "codex", "--no-cache")
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 1 << 40)
    alone = json.loads((main(["--json", *map(str, args)]), capsys.readouterr().out)[1])
    assert {"claude_code", "codex"} <= set(alone["sources"])
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    assert_same(json.loads((main(["--json", *map(str, args)]), capsys.readouterr().out)[1]), alone)
    assert settled["standing"] > 0


def test_a_file_gone_before_it_is_read_is_counted(capsys, tmp_path, monkeypatch, settled):
    """A file found, then gone before the workers read it (a session deleted meanwhile): counted as
    unreadable in a run whose files are held for the audit, as in any other run (it was a crash:
    the held files' loop unpacked five values from the tuple that reports the lost files)."""
    from nomira.sources import claude_code
    root = history(tmp_path / "h", 2)
    ghost = str(root / "projects" / "-w-p1" / "gone.jsonl")
    real = claude_code.find_files
    monkeypatch.setattr(claude_code, "find_files", lambda roots: sorted([*real(roots), ghost]))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(root))
    got = report(capsys, "--no-cache")
    assert got["scan"]["skipped"].get("unreadable_file:FileNotFoundError") == 1
    assert settled["standing"] > 0


@pytest.mark.parametrize("first", ["without a fold", "with a fold"])
def test_files_without_a_fold_keep_path_order_with_the_held_ones(capsys, tmp_path, monkeypatch, settled, first):
    """A file without a fold (here: under MIN_CALLS) that comes before every held file goes the long
    way as it is read; one after a held file waits for it. Either way the files reach deduplication in
    path order: the same call logged alike in both files (a tie) is the first file's, as in one process."""
    monkeypatch.setattr(prefold, "MIN_CALLS", 5)
    line = ('{"type":"assistant","timestamp":"2026-11-11T10:%02d:00.000Z","sessionId":"x","version":"2.0.37",'
            '"cwd":"/w/%s","requestId":"req_%s","message":{"id":"msg_%s","model":"claude-sonnet-4-5-20250929",'
            '"usage":{"input_tokens":%d,"output_tokens":7}}}\n')
    few = "".join(line % (i, "few", f"f{i}", f"f{i}", 10 + i) for i in range(3)) + line % (9, "few", "same", "same", 99)
    many = "".join(line % (i, "many", f"m{i}", f"m{i}", 20 + i) for i in range(10)) + line % (9, "many", "same", "same", 99)
    names = ("a", "b") if first == "without a fold" else ("b", "a")
    root = tmp_path / "h"
    for name, text in zip(names, (few, many)):
        (root / "projects" / f"-w-{name}").mkdir(parents=True)
        (root / "projects" / f"-w-{name}" / f"{name}.jsonl").write_text(text)
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 1 << 40)
    alone = report(capsys, "--path", root, "--no-cache")
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    pooled = report(capsys, "--path", root, "--no-cache")
    assert_same(pooled, alone)
    assert {r["session_id"]: r["calls"] for r in pooled["sessions"]} == (  # (the shared call: a's)
        {"a": 4, "b": 10} if first == "without a fold" else {"a": 11, "b": 3})
