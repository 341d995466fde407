"""Codex rollouts Codex compressed a week on (`rollout-*.jsonl.zst`): the same calls as the plain file,
found by the default walk and by --path, counted once beside a plain copy, counted as skipped (never
dropped) without a decoder, and read as soon as one is installed (the cache does not keep the skip)."""
import os
import shutil

from conftest import FIXTURES, zstd_compress
from test_codex import _rollout_lines
from nomira.sources import codex, compressed
from nomira.sources.registry import collect


def _compress_all(root):
    for f in sorted(root.rglob("rollout-*.jsonl")):
        f.with_name(f.name + ".zst").write_bytes(zstd_compress(f.read_bytes()))
        f.unlink()


def _calls(c):
    return sorted((e.session_id, e.model, e.project, e.occurred_at, e.tokens, e.model_is_fallback, e.allowance)
                  for e in c.events)


def test_compressed_rollouts_are_the_plain_ones(isolated_env, run_json):
    plain = collect(("codex",), [FIXTURES / "codex"])
    home = isolated_env / ".codex"
    shutil.copytree(FIXTURES / "codex", home)
    _compress_all(home)
    assert [p.name.endswith(".jsonl.zst") for p in codex.find_files(codex.default_paths())] == [True, True]
    found = collect(("codex",))
    given = collect(("codex",), [home])
    assert _calls(found) == _calls(given) == _calls(plain) and len(plain.events) == 4
    for c in (found, given):
        assert (c.stats.skipped, c.stats.malformed) == (plain.stats.skipped, plain.stats.malformed)
    assert run_json()["totals"] == run_json("--path", FIXTURES / "codex")["totals"]
    assert run_json()["totals"] == run_json("--no-cache")["totals"]  # (the second run served from the cache)


def test_a_rollout_both_plain_and_compressed_counts_once(isolated_env):
    home = isolated_env / ".codex"
    shutil.copytree(FIXTURES / "codex", home)
    for f in sorted(home.rglob("rollout-*.jsonl")):  # (caught while Codex compresses it)
        f.with_name(f.name + ".zst").write_bytes(zstd_compress(f.read_bytes()))
    assert [p.suffix for p in codex.find_files(codex.default_paths())] == [".jsonl", ".jsonl"]
    assert _calls(collect(("codex",))) == _calls(collect(("codex",), [FIXTURES / "codex"]))


def test_without_a_decoder_counted_then_read_once_one_is_installed(isolated_env, run_json, monkeypatch):
    home = isolated_env / ".codex"
    shutil.copytree(FIXTURES / "codex", home)
    _compress_all(home)
    with monkeypatch.context() as m:
        m.setattr(compressed, "_stdlib", lambda: None)
        m.setattr(compressed, "_zstandard", lambda: None)
        for _ in range(2):  # (cold, then from the cache)
            r = run_json()
            assert r["totals"]["calls"] == 0
            assert r["scan"]["skipped"] == {compressed.ZSTD_MISSING: 2}
    r = run_json()
    assert r["totals"] == run_json("--path", FIXTURES / "codex")["totals"] and r["totals"]["calls"] == 4
    assert compressed.ZSTD_MISSING not in r["scan"]["skipped"]


def test_a_cut_short_rollout_keeps_the_calls_before_the_cut(tmp_path):
    tc, meta, ctx = _rollout_lines()
    text = meta("2026-03-10T09:00:00.000Z", "cut") + ctx("2026-03-10T09:00:00.000Z") + "".join(
        tc(f"2026-03-10T{9 + i // 60:02d}:{i % 60:02d}:30.000Z", (1000 * (i + 1), 0, 50 * (i + 1), 0, 1050 * (i + 1)),
           (1000, 0, 50, 0, 1050)) + f'{{"timestamp":"x","type":"response_item","payload":{{"pad":"{os.urandom(2000).hex()}"}}}}\n'
        for i in range(100))  # (content that does not compress: the cut falls past the first 128 KiB blocks)
    frame = zstd_compress(text.encode())
    f = tmp_path / "rollout-2026-03-10T09-00-00-cut.jsonl.zst"
    f.write_bytes(frame)
    assert len(collect(("codex",), [f]).events) == 100
    f.write_bytes(frame[:len(frame) * 2 // 3])
    c = collect(("codex",), [f])
    assert 0 < len(c.events) < 100 and c.stats.skipped[compressed.ZSTD_BAD] == 1
    f.write_bytes(b"not zstd at all")
    c = collect(("codex",), [f])
    assert c.events == [] and c.stats.skipped[compressed.ZSTD_BAD] == 1


def test_a_fork_of_a_compressed_parent_skips_its_copy(tmp_path):
    tc, meta, ctx = _rollout_lines()
    old = tmp_path / "sessions" / "2026" / "03" / "01"
    new = tmp_path / "sessions" / "2026" / "03" / "10"
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    parent = meta("2026-03-01T09:00:00.000Z", "par") + ctx("2026-03-01T09:00:00.000Z") + \
        tc("2026-03-01T09:00:30.000Z", (10000, 0, 500, 100, 10500), (10000, 0, 500, 100, 10500))
    fork = meta("2026-03-10T09:05:00.100Z", "frk", forked_from_id="par", source="cli") + \
        meta("2026-03-10T09:05:00.101Z", "par") + ctx("2026-03-10T09:05:00.102Z") + \
        tc("2026-03-10T09:05:00.103Z", (10000, 0, 500, 100, 10500), (10000, 0, 500, 100, 10500)) + \
        tc("2026-03-10T09:06:40.000Z", (23000, 8000, 800, 150, 23800), (13000, 8000, 300, 50, 13300))
    (old / "rollout-2026-03-01T09-00-00-par.jsonl.zst").write_bytes(zstd_compress(parent.encode()))
    (new / "rollout-2026-03-10T09-05-00-frk.jsonl").write_text(fork)
    c = collect(("codex",), [tmp_path])
    assert sorted((e.session_id, e.tokens.reported_input) for e in c.events) == [("frk", 13000), ("par", 10000)]
    assert c.stats.skipped["copied_from_parent"] == 1


def test_a_compressed_sub_agents_replay_burst_is_skipped(tmp_path):
    tc, meta, ctx = _rollout_lines()
    spawn = {"subagent": {"thread_spawn": {"parent_thread_id": "p", "depth": 1}}}
    text = meta("2025-11-05T10:00:00.000Z", "sub", source=spawn) + ctx("2025-11-05T10:00:00.000Z") + \
        tc("2025-11-05T10:00:00.100Z", (100, 0, 10, 0, 110), (100, 0, 10, 0, 110)) + \
        tc("2025-11-05T10:00:00.200Z", (300, 0, 30, 0, 330), (200, 0, 20, 0, 220)) + \
        tc("2025-11-05T10:00:07.000Z", (1300, 0, 80, 0, 1380), (1000, 0, 50, 0, 1050))
    f = tmp_path / "rollout-2025-11-05T10-00-00-sub.jsonl.zst"
    f.write_bytes(zstd_compress(text.encode()))
    assert [(e.tokens.reported_input, e.tokens.output) for e in collect(("codex",), [f]).events] == [(1000, 50)]
    f.with_suffix("").write_text(text)
    f.unlink()
    assert [(e.tokens.reported_input, e.tokens.output) for e in collect(("codex",), [f.with_suffix("")]).events] \
        == [(1000, 50)]


def test_a_line_longer_than_the_cap_is_passed_over_and_lines_across_blocks_are_whole(tmp_path, monkeypatch):
    """A small compressed file can decode to gigabytes: a line past `MAX_LINE` (a tool's output, never a
    usage line) is passed over without being held; lines spanning the decoder's blocks come out whole."""
    tc, meta, ctx = _rollout_lines()
    pad = '{"timestamp":"x","type":"response_item","payload":{"output":"%s"}}\n'
    text = (meta("2026-03-10T09:00:00.000Z", "big") + ctx("2026-03-10T09:00:00.000Z")
            + tc("2026-03-10T09:00:30.000Z", (1000, 0, 50, 0, 1050), (1000, 0, 50, 0, 1050))
            + pad % ("token_count " * 40_000)
            + tc("2026-03-10T09:01:30.000Z", (3000, 0, 100, 0, 3100), (2000, 0, 50, 0, 2050)))
    f = tmp_path / "rollout-2026-03-10T09-00-00-big.jsonl.zst"
    f.write_bytes(zstd_compress(text.encode()))
    monkeypatch.setattr(compressed, "BLOCK", 4096)
    whole = list(compressed.lines(f))
    assert b"".join(whole) == text.encode() and len(whole) == 5
    monkeypatch.setattr(compressed, "MAX_LINE", 100_000)
    assert len(list(compressed.lines(f))) == 4
    c = collect(("codex",), [f])
    assert [(e.tokens.reported_input, e.tokens.output) for e in c.events] == [(1000, 50), (2000, 50)]
    assert c.stats.malformed == 0
