"""Incremental scan cache: appended lines picked up, rewritten files re-read, totals equal."""
import json
import os
import shutil

import pytest

from conftest import FIXTURES
from nomira.cli import main
from nomira.sources.scan import LineScan


def report(capsys, *args):
    assert main(["--json", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


ASSISTANT = ('{"type":"assistant","timestamp":"2025-11-05T10:00:00.000Z","sessionId":"s","version":"2.0.37",'
             '"requestId":"req_%s","message":{"id":"msg_%s","model":"claude-sonnet-4-5-20250929",'
             '"usage":{"input_tokens":%d,"output_tokens":%d,"cache_read_input_tokens":0,'
             '"cache_creation_input_tokens":0}}}\n')


@pytest.fixture
def hist(tmp_path):
    dst = tmp_path / "claude"
    shutil.copytree(FIXTURES / "claude", dst)
    return dst


def session_file(hist):
    return next(hist.rglob("7c1d2e3f-*.jsonl"))


def test_cache_and_no_cache_equal(capsys, hist):
    cold = report(capsys, "--path", hist)
    warm = report(capsys, "--path", hist)
    fresh = report(capsys, "--path", hist, "--no-cache")
    assert cold == warm == fresh


def test_appended_lines_picked_up(capsys, hist):
    before = report(capsys, "--path", hist)["totals"]
    f = session_file(hist)
    with open(f, "a") as fh:
        fh.write(ASSISTANT % ("N1", "N1", 1000, 100))
    after = report(capsys, "--path", hist)
    assert after["totals"]["calls"] == before["calls"] + 1
    assert after["totals"]["cost_usd"] == pytest.approx(before["cost_usd"] + (1000 * 3 + 100 * 15) / 1e6)
    assert after == report(capsys, "--path", hist, "--no-cache")


def test_append_of_later_streaming_snapshot_replaces_earlier(capsys, hist):
    f = session_file(hist)
    with open(f, "a") as fh:
        fh.write(ASSISTANT % ("S", "S", 10, 1))
    first = report(capsys, "--path", hist)["totals"]
    with open(f, "a") as fh:
        fh.write(ASSISTANT % ("S", "S", 10, 500))
    second = report(capsys, "--path", hist)["totals"]
    assert second["calls"] == first["calls"]
    assert second["tokens"]["output"] == first["tokens"]["output"] + 499


def test_rewritten_or_truncated_file_is_reread(capsys, hist):
    report(capsys, "--path", hist)
    f = session_file(hist)
    lines = f.read_text().splitlines(keepends=True)
    f.write_text(lines[0])  # shrank: the second call is gone
    r = report(capsys, "--path", hist)
    assert r == report(capsys, "--path", hist, "--no-cache")
    # rewritten in place with the same size but other content before the old offset
    data = f.read_bytes()
    f.write_bytes(data.replace(b'"output_tokens":500', b'"output_tokens":900'))
    os.utime(f, ns=(1, 1))
    r2 = report(capsys, "--path", hist)
    assert r2["totals"]["tokens"]["output"] == r["totals"]["tokens"]["output"] + 400
    assert r2 == report(capsys, "--path", hist, "--no-cache")


def test_rewritten_in_place_far_from_its_end_is_reread(capsys, hist):
    """The same size, a newer mtime, a change more than the signature's 256 bytes before the end: no
    append happened, so the file is read whole again (resuming at its end read nothing: the old figures
    stayed, run after run)."""
    f = session_file(hist)
    with open(f, "a") as fh:
        for i in range(6):
            fh.write(ASSISTANT % (f"F{i}", f"F{i}", 20, 100 + i))
    before = report(capsys, "--path", hist)
    data = f.read_bytes()
    at = data.index(b'"output_tokens":100,')
    assert len(data) - at > 1024
    f.write_bytes(data[:at] + b'"output_tokens":900,' + data[at + len(b'"output_tokens":100,'):])
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after = report(capsys, "--path", hist)
    assert after["totals"]["tokens"]["output"] == before["totals"]["tokens"]["output"] + 800
    assert after == report(capsys, "--path", hist, "--no-cache")


def test_partial_last_line_is_not_lost(capsys, hist):
    f = session_file(hist)
    line = ASSISTANT % ("P", "P", 7, 7)
    with open(f, "a") as fh:
        fh.write(line[:40])  # the writer is mid-line
    r1 = report(capsys, "--path", hist)
    with open(f, "a") as fh:
        fh.write(line[40:])
    r2 = report(capsys, "--path", hist)
    assert r2["totals"]["calls"] == r1["totals"]["calls"] + 1
    assert r2 == report(capsys, "--path", hist, "--no-cache")


def test_codex_append_resumes_cumulative_state(capsys, fixture_copy):
    codex = fixture_copy / "codex"
    before = report(capsys, "--path", codex)["totals"]
    f = next(codex.rglob("rollout-2025-11-03*.jsonl"))
    keys = ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens"]
    tc = {"timestamp": "2025-11-03T09:30:00.000Z", "type": "event_msg", "payload": {"type": "token_count", "info": {
        "total_token_usage": dict(zip(keys, (1500, 300, 80, 0, 1580))),
        "last_token_usage": dict(zip(keys, (1000, 200, 30, 0, 1030)))}}}
    with open(f, "a") as fh:
        fh.write(json.dumps(tc) + "\n")
    after = report(capsys, "--path", codex)
    # delta from the last total (500,100,50): 1000 input, 200 cached, 30 output
    assert after["totals"]["cost_usd"] == pytest.approx(before["cost_usd"] + (800 * 1.25 + 200 * 0.125 + 30 * 10) / 1e6)
    assert after == report(capsys, "--path", codex, "--no-cache")


def test_cache_from_other_version_is_rebuilt(capsys, hist, monkeypatch):
    report(capsys, "--path", hist)
    from nomira.sources import scancache
    monkeypatch.setattr(scancache, "FORMAT_TAG", "0.0.0/other")
    assert report(capsys, "--path", hist) == report(capsys, "--path", hist, "--no-cache")


def test_linescan_long_lines_and_offsets(tmp_path):
    f = tmp_path / "x.jsonl"
    big = b'{"a":"' + b"x" * 50_000 + b'"}'
    f.write_bytes(big + b'\n{"usage":1}\n' + big + b'\n{"usage":2}')
    scan = LineScan(f, (b'"usage":',), chunk_size=1024)
    assert list(scan) == [b'{"usage":1}', b'{"usage":2}']
    assert scan.end_offset == len(big) * 2 + 2 + len(b'{"usage":1}\n')
    assert scan.tail_start == scan.end_offset
    resumed = LineScan(f, (b'"usage":',), start=len(big) + 1, chunk_size=1024)
    assert list(resumed) == [b'{"usage":1}', b'{"usage":2}']


def test_parallel_scan_equals_serial(capsys, tmp_path, monkeypatch):
    from nomira.sources import scan
    from nomira.demo import write_demo
    from test_prefold import assert_same
    root = write_demo(tmp_path / "demo")
    serial = report(capsys, "--path", root, "--no-cache")
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    assert_same(report(capsys, "--path", root, "--no-cache"), serial)  # (the workers' folds: floats summed in another order)


def test_unfinished_line_counted_every_run_until_finished(capsys, hist):
    f = session_file(hist)
    line = ASSISTANT % ("Q", "Q", 7, 7)
    with open(f, "a") as fh:
        fh.write(line[:-30])  # includes the usage marker but is cut mid-object
    r1 = report(capsys, "--path", hist, "--no-cache")
    assert r1["scan"]["skipped"]["unfinished_last_line"] == 1
    assert report(capsys, "--path", hist) == r1
    assert report(capsys, "--path", hist) == r1


def test_a_finished_line_is_counted_once(capsys, hist):
    """A run that met the last line half-written, then the line finished: the cached run's scan counts
    (candidate lines) are the whole read's, the half line not counted a second time."""
    f = session_file(hist)
    line = ASSISTANT % ("Q", "Q", 7, 7)
    with open(f, "a") as fh:
        fh.write(line[:-30])
    report(capsys, "--path", hist)
    with open(f, "a") as fh:
        fh.write(line[-30:])
    assert report(capsys, "--path", hist) == report(capsys, "--path", hist, "--no-cache")


@pytest.mark.parametrize("next_line", ["glued", "on_its_own"])
def test_a_last_line_without_its_newline_is_read_as_a_whole_read_does(capsys, hist, next_line):
    """A last line complete but without its newline (a writer stopped between the two), then more
    written: glued to it, a whole read sees one line (its first object), on a new line two; the cached
    run, which counted the line, reads the file whole again and agrees."""
    f = session_file(hist)
    with open(f, "a") as fh:
        fh.write(ASSISTANT.rstrip("\n") % ("T", "T", 5, 500))
    first = report(capsys, "--path", hist)
    assert first == report(capsys, "--path", hist, "--no-cache")
    with open(f, "a") as fh:
        fh.write(("" if next_line == "glued" else "\n") + ASSISTANT % ("U", "U", 5, 3000))
    truth = report(capsys, "--path", hist, "--no-cache")
    assert truth["totals"]["tokens"]["output"] - first["totals"]["tokens"]["output"] == \
        {"glued": 0, "on_its_own": 3000}[next_line]
    assert report(capsys, "--path", hist) == truth


def test_file_vanishing_mid_run_is_counted_not_fatal(tmp_path, monkeypatch):
    from nomira.sources.scan import scan_files
    from nomira.sources import claude_code
    f = tmp_path / "gone.jsonl"
    f.write_text(ASSISTANT % ("G", "G", 1, 1))
    real = claude_code.scan_file

    def vanish(path, start=0, state=None):
        os.unlink(path)
        return real(path, start, state)
    monkeypatch.setattr(claude_code, "scan_file", vanish)
    out = scan_files(claude_code, [f])
    assert [s.skipped for *_r, s in out] == [{"unreadable_file:FileNotFoundError": 1}]
    missing = scan_files(claude_code, [tmp_path / "never-there.jsonl"])
    assert missing[-1][3].skipped == {"unreadable_file:FileNotFoundError": 1}


def test_entries_read_a_batch_at_a_time(capsys, hist, monkeypatch):
    """A warm run reads its cached entries in batches (one query each), in scan order, with the same
    result as reading them one by one and as no cache at all."""
    from nomira.sources import scancache
    truth = report(capsys, "--path", hist, "--no-cache")
    assert report(capsys, "--path", hist) == truth  # every entry cached
    queries = []
    real_call = scancache._Fetch.__call__

    def one_by_one(self):
        queries.append(self.ready is None)
        return real_call(self)
    monkeypatch.setattr(scancache._Fetch, "__call__", one_by_one)
    monkeypatch.setattr(scancache, "PREFETCH_FILES", 2)  # batches of two: several batches, one left over
    db = scancache.ScanCache(scancache.default_path())
    db.db.execute("DELETE FROM outputs")  # (else the finished output answers without reading entries)
    db.close()
    assert report(capsys, "--path", hist) == truth
    assert len(queries) >= 3 and queries.count(True) <= 1  # (a lone last entry may be read by itself)


def test_a_cache_another_process_holds_for_writing_is_read_not_written_and_nothing_fails(hist, tmp_path):
    """Another process holds the cache's write lock past the wait: this run's scan still answers, and
    the same as without a cache, its writes are off (the next run reads those files again); a run after
    the lock is let go writes them. (The write lock is taken as the transaction begins: one that had
    read first failed at once, "database is locked", when another process committed meanwhile.)"""
    import sqlite3

    from nomira.sources import scancache
    from nomira.sources.registry import collect
    path = tmp_path / "cache" / "scan.sqlite"
    scancache.ScanCache(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    cache = scancache.ScanCache(path)
    cache.db.execute("PRAGMA busy_timeout=50")

    def totals(c):
        return sorted((e.message_id, e.tokens.input, e.tokens.output) for e in c.events)
    want = totals(collect(("claude",), [hist]))
    assert totals(collect(("claude",), [hist], cache=cache)) == want
    assert cache.load("claude") == {}  # (nothing written)
    holder.execute("ROLLBACK")
    holder.close()
    assert totals(collect(("claude",), [hist], cache=cache)) == want
    assert cache.load("claude")
    cache.close()
