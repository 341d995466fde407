"""The Claude Code fast path (`scan_file`: decoding, records and the merge of a call's streaming
snapshots fused into one loop) equals the plain path (each candidate line through `parse_line`,
then `merge_records`).

On every fixture file, on tools/diff_ccusage.py's randomized histories (every trap it writes), on
tools/bench_scan.py's sessions, on hand-written traps (usage, ids and keys inside content and tool
results, escapes, progress lines, duplicates, damage) and on random mutations of them: the same
records, state, resume offset and counted skips either way.
"""
import json
import random
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES
from nomira.sources.scan import UNFINISHED, LineScan, ScanStats
from nomira.sources import claude_code

TOOLS = Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))
import bench_scan  # noqa: E402
import diff_ccusage  # noqa: E402

LONG = "x" * 3000  # content much longer than the fields


def plain_scan(path: Path, start: int = 0) -> tuple:
    """scan_file the plain way: LineScan, parse_line per line, merge_records after."""
    stats = ScanStats(files=1)
    records, state = [], {}
    scan = LineScan(path, claude_code.MARKERS, start)
    end = None
    for line in scan:
        stats.candidates += 1
        one = ScanStats()
        rec = claude_code.parse_line(line, one)
        if scan.tail_start is not None and one.malformed:
            end = scan.tail_start
            stats.skip(UNFINISHED)
            continue
        stats.merge(one)
        if rec is not None:
            records.append(rec)
            if "cwd" not in state and (cwd := claude_code._cwd(line)):
                state["cwd"] = cwd
            if "branch" not in state and (branch := claude_code._cwd(line, b'"gitBranch":"')):
                state["branch"] = branch
    merged = claude_code.merge_records([], records)
    if len(merged) < len(records):
        stats.skip("duplicate_call", len(records) - len(merged))
    if end is None:
        end = scan.end_offset + (0 if scan.tail_start is None else path.stat().st_size - scan.tail_start)
    stats.bytes = end - start
    return merged, state, end, stats.as_dict()


def assert_same_file(path: Path) -> int:
    """The fast and the plain scan of `path` agree; returns how many records they found."""
    records, state, end, stats = claude_code.scan_file(path)
    fast = (records, state, end, stats.as_dict())
    assert fast == plain_scan(path), path
    return len(records)


def assert_same(lines: list[bytes], folder: Path, per_file: int = 1) -> int:
    """Each group of `per_file` lines as one file (a last group without its final newline too)."""
    folder.mkdir(parents=True, exist_ok=True)
    found = 0
    for n, i in enumerate(range(0, len(lines), per_file)):
        f = folder / f"{n}.jsonl"
        f.write_bytes(b"\n".join(lines[i:i + per_file]) + (b"\n" if n % 5 else b""))
        found += assert_same_file(f)
    return found


def candidates(root: Path) -> list[bytes]:
    return [line for f in sorted(root.rglob("*.jsonl")) for line in LineScan(f, claude_code.MARKERS)]


def _d(o) -> str:
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


def assistant(content, usage=None, **top) -> dict:
    usage = usage or {"input_tokens": 3, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 500,
                      "cache_creation": {"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 6},
                      "output_tokens": 42, "service_tier": "standard"}
    d = {"parentUuid": "p", "isSidechain": False, "userType": "external", "cwd": "/home/ana/src/shop",
         "sessionId": "3f9a6c2e", "version": "2.0.37", "gitBranch": "main",
         "message": {"id": "msg_T1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                     "content": content, "stop_reason": None, "stop_sequence": None, "usage": usage},
         "requestId": "req_T1", "type": "assistant", "uuid": "u1", "timestamp": "2025-11-03T14:22:07.913Z"}
    d.update(top)
    return d


def traps() -> list[bytes]:
    """Hand-written lines, each one a way a field could be taken from the wrong place."""
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {
        "file_path": "/tmp/a.json", "content": LONG,
        "usage": {"input_tokens": 999}, "message": {"id": "msg_FAKE", "usage": {"input_tokens": 999}},
        "model": "fake", "requestId": "req_FAKE", "timestamp": "1999-01-01T00:00:00Z"}}
    escaped = 'say \\"usage\\":{\\"input_tokens\\":999}} and "message":{"id":"msg_FAKE" \\\\ end\\\\'
    lines = [
        assistant([{"type": "text", "text": LONG}]),
        assistant([tool_use]),
        assistant([{"type": "text", "text": escaped + LONG}]),
        assistant([{"type": "text", "text": "ünïcødé ✓ 𝄞 \u2028 \u00a0" + LONG}]),
        assistant([{"type": "thinking", "thinking": LONG, "signature": "EqQBCkYIBxgCKkA" * 50}]),
        assistant([{"type": "text", "text": LONG + "\\"}]),
        assistant([{"type": "text", "text": LONG}], model_extra=1),
    ]
    out = [_d(d) for d in lines]
    # message first at the top level, and last (the FORMATS.md order)
    d = assistant([{"type": "text", "text": LONG}])
    msg = d.pop("message")
    out.append(_d({"message": msg, **d}))
    out.append(_d({**d, "message": msg}))
    # members after usage, and a duplicate usage after it
    out.append(_d(assistant([{"type": "text", "text": LONG}]))[:-len('"requestId":"req_T1","type":"assistant",'
                                                                    '"uuid":"u1","timestamp":"2025-11-03T14:22:07.913Z"}') - 2]
               + ',"context_management":null},"requestId":"req_T1","timestamp":"2025-11-03T14:22:07.913Z"}')
    base = _d(assistant([{"type": "text", "text": LONG}]))
    out.append(base.replace('"usage":{', '"usage":{"output_tokens":1},"usage":{', 1))
    out.append(base.replace('}},"requestId"', '},"usage":null},"requestId"'))
    # duplicate keys the decoder lets win: in the content span, before and after the message
    out.append(base.replace('"stop_reason":null', '"stop_reason":null,"model":"claude-opus-4-7","id":"msg_DUP"'))
    out.append(base.replace('"stop_reason":null', '"stop_reason":null,"requestId":"x"'))
    out.append(base.replace('"requestId":"req_T1"', '"requestId":"req_T1","message":0'))
    out.append(base.replace('"requestId":"req_T1"', '"requestId":"req_T1","timestamp":"2025-12-01T00:00:00Z"'))
    out.append('{"message":"hi",' + base[1:])
    # a Task tool result (user line) carrying its own usage, after a message without usage
    out.append(_d({"parentUuid": "p", "isSidechain": False, "cwd": "/w", "sessionId": "s", "version": "2.0.37",
                   "type": "user", "message": {"role": "user", "content": [
                       {"tool_use_id": "toolu_1", "type": "tool_result", "content": LONG}]},
                   "uuid": "u2", "timestamp": "2025-11-03T14:22:08.000Z", "toolUseResult": {
                       "status": "completed", "prompt": "p", "content": [{"type": "text", "text": LONG}],
                       "totalDurationMs": 5, "totalTokens": 9, "usage": {"input_tokens": 999, "output_tokens": 1}}}))
    # a progress line nesting a sub-agent's assistant entry, with and without content
    rng = random.Random(3)
    entry = json.loads(_d(assistant([{"type": "text", "text": LONG}], isSidechain=True)))
    out.append(diff_ccusage.progress_line(rng, "s", entry))
    entry["message"].pop("content")
    out.append(diff_ccusage.progress_line(rng, "s", entry))
    out.append(diff_ccusage.progress_line(rng, "s", entry).replace('"toolUseID"', '"data":{},"toolUseID"'))
    # not what JSON.stringify writes: pretty JSON, whitespace, damage of every kind
    out.append(json.dumps(assistant([{"type": "text", "text": LONG}])))
    out.append(base.replace(LONG, LONG[:100] + "\x01" + LONG[100:]))
    out.append(base.replace(LONG, LONG[:100] + "\\q" + LONG[100:]))
    out.append(base.replace(LONG, LONG[:100] + "\\u12" + LONG[100:]))
    out.append(base.replace('"stop_reason":null', '"stop_reason":nul'))
    out.append(base.replace('"stop_reason":null', '"stop_reason":null\\\\'))
    out.append(base.replace('"stop_reason":null', '"stop_reason":[null'))
    out.append(base.replace('"stop_reason":null', '"stop_reason":"a" "b"'))
    out.append(base[:len(base) // 2])
    out.append(base[:-1])
    out.append(base + base)
    out.append(base + " trailing")
    out.append(" " + base)
    out.append(base.replace('"timestamp":"2025-11-03T14:22:07.913Z"', '"timestamp":"yesterday"'))
    out.append(base.replace('"version":"2.0.37"', '"version":"dev"'))
    out.append(base.replace('"claude-sonnet-4-5-20250929"', '"<synthetic>"'))
    out.append(base.replace('"sessionId":"3f9a6c2e"', '"sessionId":""'))
    # what follows the message value: the end, nothing, an empty member, whitespace, a bare value
    upto = base[:base.index(',"requestId"')]
    out += [upto + "}", upto, upto + ",}", upto + ', "requestId":"r"}', upto + ',"requestId"}', upto + " }"]
    # members closed early, a first `,"message":` inside a nested value, whitespace around members
    out.append('{"parentUuid":"p"}x' + base[base.index(',"message":'):])
    out.append('{"a":{"b":1' + base[base.index(',"message":'):].replace('},"requestId"', '}},"requestId"', 1))
    out.append('{ "parentUuid" : "p" ,"message":' + base[base.index(',"message":') + 11:])
    out.append('{"parentUuid":"p","a":1}x' + base[base.index(',"message":'):])
    out.append('{"parentUuid":"p"}"a":1' + base[base.index(',"message":'):])
    # the first member repeated among the members after it (the later one wins)
    out.append('{"isSidechain":true,' + base[1:])
    out.append('{"version":"dev",' + base[1:])
    out.append('{"version":"dev","timestamp":"2025-11-03T14:22:07.913Z",' + upto[1:] + '}')
    lines = [x.encode() for x in out]
    lines.append(base.replace(LONG, LONG[:100] + "é" + LONG[100:]).encode().replace("é".encode(), b"\xc3("))
    return lines


def test_fixtures_and_bench_sessions(tmp_path):
    files = [f for root in (FIXTURES / "claude", FIXTURES / "claude_tools") for f in sorted(root.rglob("*.jsonl"))]
    bench_scan.write_session(tmp_path / "s.jsonl", random.Random(1), "s", 40, big_every=7)
    found = sum(assert_same_file(f) for f in files + [tmp_path / "s.jsonl"])
    assert found >= 45


@pytest.mark.parametrize("seed", range(8))
def test_randomized_histories(tmp_path, seed):
    rng = random.Random(seed)
    diff_ccusage.claude_history(tmp_path, rng, without_request_id=0.2)
    files = sorted(tmp_path.rglob("*.jsonl"))
    assert sum(assert_same_file(f) for f in files) > 0


def test_traps(tmp_path):
    lines = traps()
    assert assert_same(lines, tmp_path / "one") >= 10  # each line alone
    assert assert_same(lines, tmp_path / "all", len(lines)) >= 1  # all in one file: merged as one call
    # each after a line that differs only in its first member (parentUuid chains lines), and after
    # itself twice (the middle one never the unfinished last line): the template path
    lead = lines[0].replace(b'"parentUuid":"p"', b'"parentUuid":"u-0"')
    assert assert_same([x for line in lines for x in (lead, line)], tmp_path / "after", 2) >= 10
    assert assert_same([x for line in lines for x in (line, line, line)], tmp_path / "thrice", 3) >= 10
    # the same call logged twice, the later snapshot with more tokens / as a sidechain replay / with `speed`
    base = lines[0].decode()
    more = base.replace('"output_tokens":42', '"output_tokens":43')
    side = base.replace('"isSidechain":false', '"isSidechain":true').replace('"output_tokens":42', '"output_tokens":99')
    fast = base.replace('"service_tier"', '"speed":"fast","service_tier"')
    later = fast.replace('"2025-11-03T14:22:07.913Z"', '"2025-11-03T14:22:09.000Z"')
    for pair in ((base, more), (more, base), (side, base), (base, side), (base, fast), (fast, base), (fast, later)):
        assert assert_same([x.encode() for x in pair], tmp_path / "pairs", 2) == 1


def test_mutations(tmp_path):
    """Random damage to the trap lines: the fast scan still agrees with the plain one."""
    rng = random.Random(21)
    pool = traps()
    pieces = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\x00", b'"usage":{', b'"id":', b"\xff", b"0", b"\n"]
    lines = []
    for _ in range(1500):
        line = bytearray(rng.choice(pool))
        for _k in range(rng.randint(1, 3)):
            i = rng.randrange(len(line))
            if rng.random() < 0.8:  # mostly where the structure is, not inside the long texts
                i = line.find(rng.choice(b'{}[],:"\\'), i)
                i = i if i >= 0 else len(line) - 1
            op = rng.random()
            if op < 0.4:
                line[i:i] = rng.choice(pieces)
            elif op < 0.7:
                del line[i:i + rng.randint(1, 4)]
            else:
                j = rng.randrange(len(line))
                line[i:i + 1] = line[j:j + rng.randint(1, 30)]
        lines.append(bytes(line))
    assert_same(lines, tmp_path, 25)


VALUES = [None, 0, -1, 7, 5000, 1.5, True, False, "", "x", "2.0.37", "2025-11-03T14:22:07.913Z", [], [1], {}, {"a": 1}]
FIELDS = [("timestamp",), ("version",), ("requestId",), ("sessionId",), ("isSidechain",), ("message",),
          ("message", "id"), ("message", "model"), ("message", "usage"), ("message", "usage", "input_tokens"),
          ("message", "usage", "output_tokens"), ("message", "usage", "cache_read_input_tokens"),
          ("message", "usage", "cache_creation_input_tokens"), ("message", "usage", "cache_creation"),
          ("message", "usage", "cache_creation", "ephemeral_1h_input_tokens"),
          ("message", "usage", "cache_creation", "ephemeral_5m_input_tokens"), ("message", "usage", "speed"),
          ("message", "usage", "service_tier"), ("message", "usage", "inference_geo")]


def test_field_types(tmp_path):
    """Every field the record reads, set to a value of every JSON type (and removed): the inline record
    of the fast path takes what `_record` takes and leaves the rest to it."""
    lines = []
    for path in FIELDS:
        for value in [*VALUES, KeyError]:
            d = assistant([{"type": "text", "text": "hi"}])
            obj = d
            for k in path[:-1]:
                obj = obj[k]
            if value is KeyError:
                obj.pop(path[-1], None)
            else:
                obj[path[-1]] = value
            lines.append(_d(d).encode())
    assert assert_same(lines, tmp_path / "one") >= 100
    assert assert_same(lines, tmp_path / "all", len(lines)) >= 1
    lead = _d(assistant([{"type": "text", "text": "hi"}], parentUuid="u-0")).encode()
    assert assert_same([x for line in lines for x in (lead, line)], tmp_path / "after", 2) >= 100


def _count(v) -> int:
    return v if type(v) is int and v > 0 else 0  # (a bool is not a count)


def test_a_records_fields_are_what_the_usage_says():
    """`_fields` (every call's record, written for speed) against the rule written plainly, on random
    usages of every shape: no record when a count is there (not null) and not an int from 0 to
    MAX_COUNT (a string, a fraction, a bool, a negative, too large: the line is counted and skipped);
    else counts the ints, 0 when absent; the cache write total from
    `cache_creation_input_tokens`, else the split's two parts; the 1h part capped at the total; labels
    strings else None; `costUSD` a finite number else None."""
    import math
    values = [None, 0, 3, -5, 10**12, 10**12 + 1, 10**400, 1.5, float("inf"), float("nan"), True, False, "7", "fast", "", [], {},
              {"ephemeral_1h_input_tokens": 5}, {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 9},
              {"ephemeral_1h_input_tokens": -1, "ephemeral_5m_input_tokens": True}]
    keys = ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
            "cache_creation", "speed", "service_tier", "inference_geo"]
    rng = random.Random(7)
    for _ in range(20000):
        usage = {k: rng.choice(values) for k in keys if rng.random() < 0.7}
        d = {k: rng.choice(values) for k in ("costUSD", "isSidechain") if rng.random() < 0.5}
        split = usage.get("cache_creation") if type(usage.get("cache_creation")) is dict else {}
        total = _count(usage.get("cache_creation_input_tokens")) or (
            _count(split.get("ephemeral_1h_input_tokens")) + _count(split.get("ephemeral_5m_input_tokens")))
        one_hour = min(_count(split.get("ephemeral_1h_input_tokens")), total)
        cost = d.get("costUSD")
        counts = [usage.get(k) for k in keys[:4]] + [split.get("ephemeral_1h_input_tokens"),
                                                      split.get("ephemeral_5m_input_tokens")]
        if any(v is not None and not (type(v) is int and 0 <= v <= 10**12) for v in counts):
            assert claude_code._fields("t", "m", "r", "x", d, usage) is None, (usage, d)
            continue
        want = ["t", "m", "r", "x", _count(usage.get("input_tokens")), _count(usage.get("output_tokens")),
                _count(usage.get("cache_read_input_tokens")), total - one_hour, one_hour, d.get("isSidechain") is True,
                *(usage.get(k) if type(usage.get(k)) is str else None for k in ("speed", "service_tier", "inference_geo")),
                float(cost) if type(cost) is float and math.isfinite(cost) or type(cost) is int and abs(cost) <= 10**12
                else None]
        got = claude_code._fields("t", "m", "r", "x", d, usage)
        assert got == want and [type(v) for v in got] == [type(v) for v in want], (usage, d)
