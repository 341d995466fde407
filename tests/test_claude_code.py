"""Claude Code transcripts: dedup, cache TTL split, malformed lines, sub-agents."""
from pathlib import Path

import pytest

from conftest import FIXTURES
from nomira.sources.scan import ScanStats
from nomira.sources import claude_code
from nomira.sources.registry import collect

CLAUDE = FIXTURES / "claude"


def events():
    return collect(("claude",), [CLAUDE]).events


def test_streaming_snapshots_and_resumed_copies_count_once():
    by_id = {}
    for e in events():
        by_id.setdefault(e.message_id, []).append(e)
    assert sorted(by_id) == ["msg_A1", "msg_A2", "msg_B1", "msg_S1", "msg_U1"]
    assert all(len(v) == 1 for v in by_id.values())
    # the last (largest) streaming snapshot is kept, not the first
    assert by_id["msg_A1"][0].tokens.output == 300


def test_sidechain_replay_keeps_parent_line():
    a2 = [e for e in events() if e.message_id == "msg_A2"][0]
    assert a2.is_sidechain is False
    assert a2.tokens.cache_read == 1000  # not the replay's 60000


def test_cache_write_split_by_ttl():
    by_id = {e.message_id: e for e in events()}
    assert (by_id["msg_A1"].tokens.cache_write_5m, by_id["msg_A1"].tokens.cache_write_1h) == (1000, 0)
    assert (by_id["msg_A2"].tokens.cache_write_5m, by_id["msg_A2"].tokens.cache_write_1h) == (0, 2000)
    # no split logged (older builds): all writes are 5m
    assert (by_id["msg_S1"].tokens.cache_write_5m, by_id["msg_S1"].tokens.cache_write_1h) == (300, 0)


def test_subagent_file_belongs_to_parent_session():
    s1 = [e for e in events() if e.message_id == "msg_S1"][0]
    assert s1.session_id == "3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c"
    assert s1.project == "shop"  # the label of the cwd its lines logged
    assert s1.is_sidechain


def test_malformed_and_synthetic_lines_are_counted_not_fatal():
    c = collect(("claude",), [CLAUDE])
    assert c.stats.malformed == 1
    assert c.stats.skipped["synthetic"] == 1
    assert c.stats.files == 4


def test_tool_result_mentioning_usage_is_not_a_call():
    assert all(e.tokens.input != 999 for e in events())


def test_dedup_without_request_id_uses_message_id(tmp_path):
    line = ('{"type":"assistant","timestamp":"2025-11-03T14:22:07.913Z","sessionId":"s","version":"2.0.1",'
            '"message":{"id":"msg_X","model":"claude-sonnet-4-5","usage":{"input_tokens":1,"output_tokens":%d}}}')
    f = tmp_path / "s.jsonl"
    f.write_text("\n".join([line % 5, line % 50, line % 7]) + "\n")
    evs = collect(("claude",), [f]).events
    assert len(evs) == 1 and evs[0].tokens.output == 50


def test_non_semver_version_and_empty_ids_skipped():
    """An empty requestId is none logged (a third-party endpoint): message.id alone names the call,
    which was billed (ccusage drops it). An empty message.id leaves nothing to name it by."""
    stats = ScanStats()
    base = ('{"type":"assistant","timestamp":"2025-11-03T14:22:07.913Z","version":"%s","requestId":"%s",'
            '"message":{"id":"%s","model":"claude-sonnet-4-5","usage":{"input_tokens":1,"output_tokens":1}}}')
    assert claude_code.parse_line((base % ("banana", "r", "m")).encode(), stats) is None
    assert claude_code.parse_line((base % ("2.0.1", "r", "")).encode(), stats) is None
    rec = claude_code.parse_line((base % ("2.0.1", "", "m")).encode(), stats)
    assert rec[claude_code.MSG_ID] == "m" and rec[claude_code.REQ_ID] is None
    assert claude_code.parse_line((base % ("2.0.1", "r", "m")).encode(), stats) is not None
    assert stats.skipped == {"bad_version": 1, "empty_id": 1}


def test_an_empty_request_id_is_none_logged_and_its_snapshots_count_once(tmp_path):
    line = ('{"type":"assistant","timestamp":"2025-11-03T14:22:0%d.913Z","sessionId":"s","requestId":"",'
            '"message":{"id":"msg_nr","model":"claude-sonnet-4-5","usage":{"input_tokens":1000,"output_tokens":%d}}}')
    f = tmp_path / "s.jsonl"
    f.write_text("\n".join([line % (1, 1), line % (2, 300), line % (3, 40)]) + "\n")
    evs = collect(("claude",), [f]).events
    assert [(e.message_id, e.tokens.output) for e in evs] == [("msg_nr", 300)]


def test_a_whole_float_count_is_that_count(tmp_path):
    """JSON has one number type: `12.0` is the count 12 (the call was dropped, as ccusage drops it);
    a fraction is no count and the line is counted and skipped."""
    line = ('{"type":"assistant","timestamp":"2025-11-03T14:22:0%d.913Z","sessionId":"s","requestId":"r%d",'
            '"message":{"id":"m%d","model":"claude-sonnet-4-5","usage":{"input_tokens":%s,"output_tokens":50,'
            '"cache_read_input_tokens":1e3,"cache_creation_input_tokens":100.0,'
            '"cache_creation":{"ephemeral_5m_input_tokens":60.0,"ephemeral_1h_input_tokens":40}}}}')
    f = tmp_path / "s.jsonl"
    f.write_text("\n".join([line % (1, 1, 1, "12.0"), line % (2, 2, 2, "12.5")]) + "\n")
    c = collect(("claude",), [f])
    assert [(e.tokens.input, e.tokens.cache_read, e.tokens.cache_write_5m, e.tokens.cache_write_1h)
            for e in c.events] == [(12, 1000, 60, 40)]
    assert all(type(v) is int for v in (c.events[0].tokens.input, c.events[0].tokens.cache_read))
    assert c.stats.skipped == {"bad_token_count": 1}


@pytest.mark.parametrize("path,expected", [
    ("/h/.claude/projects/-home-a-shop/abc.jsonl", ("abc", "-home-a-shop")),
    ("/h/.claude/projects/-home-a-shop/abc/subagents/agent-1.jsonl", ("abc", "-home-a-shop")),
    ("/tmp/logs/xyz.jsonl", ("xyz", "logs")),
])
def test_file_identity(path, expected):
    assert claude_code.file_identity(Path(path)) == expected


def test_default_roots_from_claude_config_dir(tmp_path, monkeypatch):
    (tmp_path / "a" / "projects").mkdir(parents=True)
    (tmp_path / "b" / "projects").mkdir(parents=True)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{tmp_path / 'a'},{tmp_path / 'b'}")
    import os
    assert claude_code.default_paths(os.environ) == [tmp_path / "a" / "projects", tmp_path / "b" / "projects"]


def _progress_line(msg_id, req_id, usage, ts="2026-03-10T06:00:01.000Z", sidechain=True):
    """A parent-transcript `progress` line carrying a sub-agent's assistant entry (Claude Code 2.x)."""
    import json
    nested = {"type": "assistant", "timestamp": ts, "requestId": req_id, "isSidechain": sidechain,
              "uuid": "n-" + msg_id, "message": {"model": "claude-haiku-4-5-20251001", "id": msg_id, "type": "message",
                                                  "role": "assistant", "content": [], "usage": usage}}
    return json.dumps({"parentUuid": "p", "isSidechain": False, "userType": "external", "cwd": "/home/ana/src/shop",
                       "sessionId": "sess-p", "version": "2.1.3", "type": "progress",
                       "data": {"type": "agent_progress", "agentId": "a1b2", "message": nested},
                       "toolUseID": "agent_msg_1", "parentToolUseID": "toolu_1", "uuid": "u-" + msg_id,
                       "timestamp": "2026-03-10T06:00:01.001Z"}, separators=(",", ":"))


def test_progress_nested_subagent_calls_count_once(tmp_path):
    """A sub-agent call seen only in a progress line counts; one seen there and in the sub-agent
    file counts once; the nested entry's own timestamp is the call's time."""
    proj = tmp_path / "projects" / "-home-ana-src-shop"
    (proj / "sess-p" / "subagents").mkdir(parents=True)
    only = {"input_tokens": 20, "output_tokens": 2, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    both = {"input_tokens": 40, "output_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100}
    (proj / "sess-p.jsonl").write_text(
        _progress_line("msg_only", "req_only", only) + "\n"
        + _progress_line("msg_both", "req_both", dict(both, output_tokens=1), ts="2026-03-10T06:00:05.000Z") + "\n")
    (proj / "sess-p" / "subagents" / "agent-a1b2.jsonl").write_text(
        '{"isSidechain":true,"sessionId":"sess-p","version":"2.1.3","type":"assistant",'
        '"timestamp":"2026-03-10T06:00:05.000Z","requestId":"req_both","message":{"id":"msg_both",'
        '"model":"claude-haiku-4-5-20251001","role":"assistant","content":[],"usage":'
        + __import__("json").dumps(both, separators=(",", ":")) + '}}\n')
    evs = {e.message_id: e for e in collect(("claude",), [tmp_path / "projects"]).events}
    assert sorted(evs) == ["msg_both", "msg_only"]
    assert evs["msg_only"].tokens.input == 20 and evs["msg_only"].occurred_at.isoformat() == "2026-03-10T06:00:01+00:00"
    assert evs["msg_only"].session_id == "sess-p" and evs["msg_only"].is_sidechain
    assert evs["msg_both"].tokens.output == 9  # the complete copy, once


@pytest.mark.parametrize("progress_first", [True, False])
def test_a_progress_copys_early_snapshot_loses_to_the_sub_agent_files_final_one(tmp_path, progress_first):
    """One request (same message.id and requestId) seen in a `progress` line whose nested entry is not
    marked a sidechain, with the first streaming snapshot only, and in the sub-agent's file (a
    sidechain) with the final one: the final snapshot is the call (ccusage 20.0.24 keeps the progress
    copy's, ranking the parent's line before the size), and the call is the parent's (not a sidechain),
    whichever file is read first and whether the files are read whole or through the cache."""
    from nomira.sources import scancache
    proj = tmp_path / "projects" / "-home-ana-src-shop"
    (proj / "sess-p" / "subagents").mkdir(parents=True)
    final = {"input_tokens": 40, "output_tokens": 3316, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100}
    progress = _progress_line("msg_sub", "req_sub", dict(final, output_tokens=1), sidechain=False) + "\n"
    sub_line = ('{"isSidechain":true,"sessionId":"sess-p","version":"2.1.3","type":"assistant",'
                '"timestamp":"2026-03-10T06:00:09.000Z","requestId":"req_sub","message":{"id":"msg_sub",'
                '"model":"claude-haiku-4-5-20251001","role":"assistant","content":[],"usage":%s}}\n')
    (proj / ("a.jsonl" if progress_first else "z.jsonl")).write_text(progress)
    (proj / "sess-p" / "subagents" / "agent-a1b2.jsonl").write_text(
        sub_line % __import__("json").dumps(dict(final, output_tokens=1)) + sub_line % __import__("json").dumps(final))
    cache = scancache.ScanCache(tmp_path / "cache.sqlite")
    for run in (lambda: collect(("claude",), [tmp_path / "projects"]),
                lambda: collect(("claude",), [tmp_path / "projects"], cache=cache),
                lambda: collect(("claude",), [tmp_path / "projects"], cache=cache)):
        (e,) = run().events
        assert (e.tokens.output, e.is_sidechain, e.occurred_at.isoformat()) == (3316, False, "2026-03-10T06:00:09+00:00")
    # (the same, both copies in one file: merged as the file is read)
    (proj / "sess-p" / "subagents" / "agent-a1b2.jsonl").write_text(
        progress + sub_line % __import__("json").dumps(final) + progress)
    (proj / ("a.jsonl" if progress_first else "z.jsonl")).unlink()
    (e,) = collect(("claude",), [tmp_path / "projects"]).events
    assert (e.tokens.output, e.is_sidechain) == (3316, False)
    cache.close()


def test_a_progress_entry_without_its_own_time_is_dated_by_its_line(tmp_path):
    import json
    line = json.loads(_progress_line("msg_nt", "req_nt", {"input_tokens": 20, "output_tokens": 2}))
    del line["data"]["message"]["timestamp"]
    f = tmp_path / "sess-p.jsonl"
    f.write_text(json.dumps(line, separators=(",", ":")) + "\n")
    evs = collect(("claude",), [f]).events
    assert [(e.message_id, e.occurred_at.isoformat()) for e in evs] == [("msg_nt", "2026-03-10T06:00:01.001000+00:00")]


def test_find_files_sorted_once_across_roots(tmp_path):
    """One root: the walk's own sorted list; several (overlapping) roots: every file once, sorted by path."""
    names = ["b/z.jsonl", "a/y.jsonl", "a/subagents/x.jsonl", "c.jsonl", "b/notes.txt", "a-b/w.jsonl"]
    for n in names:
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / n).write_text("")
    every = sorted(str(tmp_path / n) for n in names if n.endswith(".jsonl"))  # (path strings: no Path per file)
    assert claude_code.find_files([tmp_path]) == every
    assert claude_code.find_files(iter([tmp_path / "a", tmp_path, tmp_path / "b"])) == every
    assert claude_code.find_files([tmp_path / "b", tmp_path / "a"]) == [str(tmp_path / "a" / "subagents" / "x.jsonl"),
                                                                        str(tmp_path / "a" / "y.jsonl"),
                                                                        str(tmp_path / "b" / "z.jsonl")]


def test_logged_cost_kept_beside_never_billed(tmp_path, isolated_env, capsys):
    """Older Claude Code logged its own estimate (`costUSD`). ccusage's default mode bills it; Nomira
    prices the tokens and shows the agent's figure beside, per model (the kept snapshot's only)."""
    import json
    from nomira.cli import main

    def line(msg, out, cost, uuid):
        d = {"parentUuid": "p", "isSidechain": False, "userType": "external", "cwd": "/home/x/shop",
             "sessionId": "s1", "version": "1.0.30", "type": "assistant", "uuid": uuid,
             "timestamp": "2025-11-05T10:00:00.000Z", "requestId": f"req_{msg}",
             "message": {"id": f"msg_{msg}", "type": "message", "role": "assistant",
                         "model": "claude-sonnet-4-5-20250929", "content": [],
                         "usage": {"input_tokens": 1000, "output_tokens": out, "cache_read_input_tokens": 0,
                                   "cache_creation_input_tokens": 0}}}
        if cost is not None:
            d["costUSD"] = cost
        return json.dumps(d, separators=(",", ":")) + "\n"
    proj = tmp_path / "projects" / "-home-x-shop"
    proj.mkdir(parents=True)
    (proj / "s1.jsonl").write_text(
        line("A", 10, 4.0, "u1") + line("A", 1000, 5.0, "u2")  # two snapshots: the kept one's figure
        + line("B", 1000, None, "u3")  # no figure
        + line("C", 1000, True, "u4") + line("D", 1000, "2.5", "u5")  # not a number: none
        + line("E", 1000, 0.25, "u6"))
    assert main(["--json", "--path", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["calls"] == 5
    assert report["totals"]["cost_usd"] == pytest.approx(5 * (1000 * 3 + 1000 * 15) / 1e6)  # the tokens, priced
    (model,) = report["models"]
    assert model["agent_cost_usd"] == pytest.approx(5.25)
    assert main(["--path", str(tmp_path)]) == 0
    assert "the agent's own estimate is $5.25" in capsys.readouterr().out


def test_logged_cost_that_is_not_a_finite_number_is_none():
    stats = ScanStats()
    base = ('{"type":"assistant","timestamp":"2025-11-05T10:00:00.000Z","sessionId":"s","version":"1.0.30",'
            '"requestId":"req_1","message":{"id":"msg_1","model":"claude-sonnet-4-5-20250929",'
            '"usage":{"input_tokens":1,"output_tokens":1}},"costUSD":%s}')
    got = [claude_code.parse_line((base % v).encode(), stats)[claude_code.AGENT_COST]
           for v in ("NaN", "Infinity", "-Infinity", "true", '"1.5"', "null", "2", "0.5")]
    assert got == [None, None, None, None, None, None, 2.0, 0.5]


def test_server_side_compaction_iterations_are_billed(tmp_path):
    """With Anthropic's server-side compaction the usage lists each sampling iteration and its top-level
    counts are the message's alone: the compaction iteration's tokens (billed) are added; a message
    iteration repeats the top level and is not added again; a bad count in one skips the line."""
    import json
    def line(mid, usage):
        return json.dumps({"type": "assistant", "sessionId": "s", "cwd": "/w/p", "requestId": f"req_{mid}",
                           "timestamp": "2026-11-02T10:00:00.000Z", "version": "2.1.90",
                           "message": {"id": mid, "model": "claude-opus-4-7", "role": "assistant", "usage": usage}})
    top = {"input_tokens": 23000, "output_tokens": 1000, "cache_read_input_tokens": 500, "cache_creation_input_tokens": 0}
    compaction = {"type": "compaction", "input_tokens": 180000, "output_tokens": 3500, "cache_read_input_tokens": 40000,
                  "cache_creation_input_tokens": 2000, "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                                                          "ephemeral_1h_input_tokens": 2000}}
    message = dict(top, type="message")
    f = tmp_path / "s.jsonl"
    f.write_text("\n".join([line("msg_a", dict(top, iterations=[compaction, message])),
                            line("msg_b", dict(top, iterations=[dict(compaction, output_tokens="lots"), message])),
                            line("msg_c", top)]) + "\n")
    c = collect(("claude",), [f])
    got = {e.message_id: (e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write_5m,
                          e.tokens.cache_write_1h) for e in c.events}
    assert got == {"msg_a": (203000, 4500, 40500, 0, 2000), "msg_c": (23000, 1000, 500, 0, 0)}
    assert c.stats.skipped["bad_token_count"] == 1


def test_fast_mode_calls_listed_apart_as_ccusage_names_them(tmp_path, run_json):
    """A model's fast-mode calls (6x on Opus 4.6) are a row of their own, `<model>-fast`, in the report,
    `daily --breakdown` and blocks; the model itself prices them."""
    import json
    def line(mid, speed=None):
        usage = {"input_tokens": 1000, "output_tokens": 100, **({"speed": speed} if speed else {})}
        return json.dumps({"type": "assistant", "sessionId": "s", "cwd": "/w/p", "requestId": f"req_{mid}",
                           "timestamp": "2026-03-02T10:00:00.000Z", "version": "2.1.90",
                           "message": {"id": mid, "model": "claude-opus-4-6", "role": "assistant", "usage": usage}})
    proj = tmp_path / "projects" / "-w-p"
    proj.mkdir(parents=True)
    (proj / "s.jsonl").write_text("\n".join([line("msg_a"), line("msg_b", "fast")]) + "\n")
    standard = (1000 * 5 + 100 * 25) / 1e6
    r = run_json("--path", tmp_path / "projects")
    assert {m["model"]: m["cost_usd"] for m in r["models"]} == pytest.approx(
        {"claude-opus-4-6": standard, "claude-opus-4-6-fast": 6 * standard})
    d = run_json("daily", "--breakdown", "--path", tmp_path / "projects", "--timezone", "UTC")
    assert sorted(m["model"] for m in d["daily"][0]["models"]) == ["claude-opus-4-6", "claude-opus-4-6-fast"]


def test_an_advisors_calls_are_its_models_and_a_fallback_is_not_added(tmp_path):
    """Claude Code's /advisor: the executor's line lists the advisor's iteration (`advisor_message`, its
    own model), billed at the advisor model's rates and not in the top-level counts: a call of its own
    under that model, counted once across streamed snapshots and a resumed copy. A `fallback_message`
    iteration is the attempt the top level already is: not added."""
    import json
    def line(mid, out, iterations, ts="2026-06-25T10:00:00.000Z"):
        usage = {"input_tokens": 2, "output_tokens": out, "cache_read_input_tokens": 50000,
                 "cache_creation_input_tokens": 1000, "iterations": iterations}
        return json.dumps({"type": "assistant", "sessionId": "s", "cwd": "/w/p", "requestId": f"req_{mid}",
                           "timestamp": ts, "version": "2.1.90", "advisorModel": "claude-opus-4-7",
                           "message": {"id": mid, "model": "claude-sonnet-4-6", "role": "assistant", "usage": usage}})
    advisor = {"type": "advisor_message", "model": "claude-opus-4-7", "input_tokens": 100000, "output_tokens": 1000,
               "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    message = {"type": "message", "input_tokens": 2, "output_tokens": 400}
    fallback = {"type": "fallback_message", "model": "claude-opus-4-8", "input_tokens": 5000, "output_tokens": 300}
    proj = tmp_path / "projects" / "-w-p"
    proj.mkdir(parents=True)
    (proj / "a.jsonl").write_text("\n".join([line("msg_a", 10, [message, advisor, message]),
                                             line("msg_a", 400, [message, advisor, message]),
                                             line("msg_f", 300, [fallback, dict(message, output_tokens=300)],
                                                  "2026-06-25T11:00:00.000Z")]) + "\n")
    (proj / "b.jsonl").write_text(line("msg_a", 400, [message, advisor, message]) + "\n")  # (a resumed copy)
    evs = collect(("claude",), [tmp_path / "projects"]).events
    got = sorted((e.model, e.message_id, e.tokens.input, e.tokens.output) for e in evs)
    assert got == [("claude-opus-4-7", "msg_a:advisor:0", 100000, 1000), ("claude-sonnet-4-6", "msg_a", 2, 400),
                   ("claude-sonnet-4-6", "msg_f", 2, 300)]


def test_a_kept_fold_meets_the_calls_of_a_file_read_in_a_later_run(tmp_path):
    """Two large transcripts sharing calls (a session and its sub-agent's copy): each file's fold is kept
    in the cache with the hashes of its calls' keys; a later run (another process, another hash seed)
    reads one anew and reuses the other's fold. The hashes must meet across runs, or the shared calls
    count twice (they did: Python's str hash is seeded per process)."""
    import json
    import os
    import subprocess
    import sys
    pad = "x" * 9000  # (files of 20+ calls averaging over prefold.MIN_AVERAGE_BYTES: folded where read)
    def line(mid, sidechain=False, minute=0):
        return json.dumps({"type": "assistant", "sessionId": "s", "cwd": "/w/p", "requestId": f"req_{mid}",
                           "isSidechain": sidechain, "timestamp": f"2026-06-01T10:{minute:02d}:00.000Z",
                           "version": "2.1.90",
                           "message": {"id": f"msg_{mid}", "model": "claude-sonnet-4-5-20250929", "role": "assistant",
                                       "content": [{"type": "text", "text": pad}],
                                       "usage": {"input_tokens": 100, "output_tokens": 10 + minute}}}) + "\n"
    proj = tmp_path / "claude" / "projects" / "-w-p"
    sub = proj / "s" / "subagents"
    sub.mkdir(parents=True)
    main_file = proj / "s.jsonl"
    main_file.write_text("".join(line(f"m{i}", minute=i) for i in range(24)))
    (sub / "agent-a.jsonl").write_text("".join(line(f"a{i}", True, i) for i in range(22)) + line("m3", True, 3)
                                       + line("m4", True, 4))
    env = dict(os.environ, CLAUDE_CONFIG_DIR=str(tmp_path / "claude"), HOME=str(tmp_path),
               XDG_CACHE_HOME=str(tmp_path / "cache"), TZ="UTC")

    def calls(seed, *extra):
        out = subprocess.run([sys.executable, "-m", "nomira", "--json", "--source", "claude", *extra],
                             env=dict(env, PYTHONHASHSEED=str(seed)), capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout)["totals"]["calls"]
    assert calls(1) == calls(1, "--no-cache") == 46  # (24 + 22: the two copies are the parent's calls)
    with open(main_file, "a") as fh:
        fh.write(line("m24", minute=24))  # (this file read anew, the sub-agent's fold reused)
    assert calls(2) == calls(2, "--no-cache") == 47
    assert calls(3, "--wide") == 47  # (the stored output not replayed: the kept folds again)


def test_a_bom_leading_spaces_and_bytes_not_utf8_in_a_string_do_not_lose_the_call(tmp_path):
    """The usage of such a line is intact and the call was billed (each was counted malformed and
    dropped); a line cut short is still malformed."""
    line = ('{"type":"assistant","timestamp":"2025-11-03T14:22:0%d.913Z","sessionId":"s","requestId":"r%d",'
            '"message":{"id":"m%d","model":"claude-sonnet-4-5","content":[{"type":"text","text":"%s"}],'
            '"usage":{"input_tokens":100,"output_tokens":10}}}')
    f = tmp_path / "s.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + (line % (1, 1, 1, "a")).encode() + b"\n"
                  + b"  " + (line % (2, 2, 2, "b")).encode() + b"\n"
                  + (line % (3, 3, 3, "c")).encode().replace(b'"text":"c"', b'"text":"\xff\xfe"') + b"\n"
                  + (line % (4, 4, 4, "d")).encode()[:-6] + b"\n")
    c = collect(("claude",), [f])
    assert sorted(e.message_id for e in c.events) == ["m1", "m2", "m3"]
    assert c.stats.malformed == 1
