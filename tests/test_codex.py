"""Codex rollouts: cumulative totals diffed, repeats skipped, resets, fallback model, allowance."""
import pytest
from conftest import FIXTURES
from nomira.sources import codex
from nomira.sources.registry import collect

CODEX = FIXTURES / "codex"


def calls():
    return collect(("codex",), [CODEX])


def test_cumulative_totals_become_per_call_usage():
    evs = [e for e in calls().events if e.model == "gpt-5-codex"]
    got = [(e.tokens.reported_input, e.tokens.cache_read, e.tokens.input, e.tokens.output, e.tokens.reasoning)
           for e in evs]
    assert got == [
        (1000, 800, 200, 100, 40),   # first snapshot
        (2000, 1200, 800, 200, 60),  # delta 3000-1000 etc.; the repeated total in between is not a call
        (500, 100, 400, 50, 0),      # counter reset: last_token_usage is the call
    ]


def test_repeats_and_resets_are_reported():
    c = calls()
    assert c.stats.skipped["repeated_total"] == 1
    assert c.stats.skipped["counter_reset_uses_last"] == 1
    assert c.stats.malformed == 1


def test_missing_turn_context_falls_back_and_flags():
    e = [e for e in calls().events if e.session_id.endswith("000000000002")][0]
    assert (e.model, e.model_is_fallback, e.project) == ("gpt-5", True, "billing")


def test_latest_allowance_snapshot():
    as_of, a = codex.latest_allowance(calls().states["codex"])
    assert as_of == "2025-11-03T09:19:00.000Z"
    assert (a.primary_used_percent, a.primary_window_minutes, a.secondary_used_percent) == (25.0, 300, 3.5)
    assert a.plan_type == "plus"


def test_forked_copy_counts_once(fixture_copy):
    src = next((fixture_copy / "codex").rglob("rollout-2025-11-03*.jsonl"))
    fork = src.with_name("rollout-2025-11-03T10-00-00-0199a3b2-7c4d-7e10-9f21-00000000ffff.jsonl")
    fork.write_bytes(src.read_bytes())
    evs = collect(("codex",), [fixture_copy / "codex"]).events
    assert len(evs) == 4  # same as without the fork


def test_subagent_replay_burst_skipped(tmp_path):
    import json
    keys = ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens"]

    def tc(ts, total, last):
        return json.dumps({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": {
            "total_token_usage": dict(zip(keys, total)), "last_token_usage": dict(zip(keys, last))}}})
    meta = json.dumps({"timestamp": "2025-11-05T10:00:00.000Z", "type": "session_meta", "payload": {
        "id": "sub", "cwd": "/w/p", "source": {"subagent": {"thread_spawn": {"parent_thread_id": "p"}}}}})
    ctx = json.dumps({"timestamp": "2025-11-05T10:00:00.000Z", "type": "turn_context", "payload": {"model": "gpt-5"}})
    lines = [meta, ctx,
             tc("2025-11-05T10:00:00.100Z", (100, 0, 10, 0, 110), (100, 0, 10, 0, 110)),
             tc("2025-11-05T10:00:00.200Z", (300, 0, 30, 0, 330), (200, 0, 20, 0, 220)),
             tc("2025-11-05T10:00:07.000Z", (1300, 0, 80, 0, 1380), (1000, 0, 50, 0, 1050))]
    f = tmp_path / "rollout-2025-11-05T10-00-00-sub.jsonl"
    f.write_text("\n".join(lines) + "\n")
    evs = collect(("codex",), [f]).events
    assert [(e.tokens.reported_input, e.tokens.output) for e in evs] == [(1000, 50)]


def test_restart_that_still_grows_uses_last(tmp_path):
    """A restarted counter can exceed the old total in every field; the delta is then smaller than
    the last call itself, which a real delta never is."""
    import json
    keys = ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens"]

    def tc(ts, total, last):
        return json.dumps({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": {
            "total_token_usage": dict(zip(keys, total)), "last_token_usage": dict(zip(keys, last))}}})
    ctx = json.dumps({"timestamp": "2025-11-05T10:00:00.000Z", "type": "turn_context", "payload": {"model": "gpt-5"}})
    f = tmp_path / "rollout-2025-11-05T10-00-00-x.jsonl"
    f.write_text("\n".join([ctx, tc("2025-11-05T10:00:01.000Z", (32052, 5173, 1348, 192, 33400),
                                    (32052, 5173, 1348, 192, 33400)),
                            tc("2025-11-05T10:09:05.000Z", (47575, 33347, 2608, 2203, 50183),
                               (47575, 33347, 2608, 2203, 50183))]) + "\n")
    c = collect(("codex",), [f])
    assert [(e.tokens.reported_input, e.tokens.cache_read, e.tokens.output) for e in c.events] == [
        (32052, 5173, 1348), (47575, 33347, 2608)]
    assert c.stats.skipped["counter_reset_uses_last"] == 1


def test_subagent_replay_of_one_line_skipped(tmp_path):
    """A parent with one call before it spawned a sub-agent: the sub-agent's file replays that one
    token line in its spawn second (the session_meta's), which is no call of its own."""
    import json
    keys = ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens"]

    def tc(ts, total, last):
        return json.dumps({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": {
            "total_token_usage": dict(zip(keys, total)), "last_token_usage": dict(zip(keys, last))}}})

    def meta(ts, id_, source):
        return json.dumps({"timestamp": ts, "type": "session_meta", "payload": {
            "id": id_, "timestamp": ts, "cwd": "/w/p", "originator": "codex_cli_rs", "source": source}})
    ctx = json.dumps({"timestamp": "2025-11-05T09:59:00.000Z", "type": "turn_context", "payload": {"model": "gpt-5"}})
    parent = tmp_path / "rollout-2025-11-05T09-59-00-p.jsonl"
    parent.write_text("\n".join([meta("2025-11-05T09:59:00.000Z", "p", "cli"), ctx,
                                 tc("2025-11-05T09:59:30.000Z", (100, 0, 10, 0, 110), (100, 0, 10, 0, 110))]) + "\n")
    child = tmp_path / "rollout-2025-11-05T10-00-00-sub.jsonl"
    spawn = {"subagent": {"thread_spawn": {"parent_thread_id": "p", "depth": 1}}}
    child.write_text("\n".join([meta("2025-11-05T10:00:00.010Z", "sub", spawn), ctx,
                                tc("2025-11-05T10:00:00.020Z", (100, 0, 10, 0, 110), (100, 0, 10, 0, 110)),
                                tc("2025-11-05T10:00:07.000Z", (1100, 0, 60, 0, 1160), (1000, 0, 50, 0, 1050))]) + "\n")
    c = collect(("codex",), [tmp_path])
    assert sorted((e.session_id, e.tokens.reported_input, e.tokens.output) for e in c.events) == [
        ("p", 100, 10), ("sub", 1000, 50)]
    assert c.stats.skipped["subagent_replay"] == 1
    # A sub-agent whose first call is its own (no replay: the first token line is seconds after the spawn).
    child.write_text("\n".join([meta("2025-11-05T10:00:00.010Z", "sub", spawn), ctx,
                                tc("2025-11-05T10:00:05.000Z", (700, 0, 70, 0, 770), (700, 0, 70, 0, 770))]) + "\n")
    c = collect(("codex",), [tmp_path])
    assert sorted((e.session_id, e.tokens.reported_input) for e in c.events) == [("p", 100), ("sub", 700)]


def test_subagent_file_read_while_codex_writes_its_burst(tmp_path):
    """A sub-agent file scanned through the cache at every moment of its writing (nothing but its
    session_meta yet, the burst's first line only, then the rest and a call of its own) counts the
    same as the whole file read once: a file whose first lines do not decide the burst yet is read
    whole again, not resumed with the first scan's verdict."""
    import json
    import os
    import time

    from nomira.sources import scancache
    keys = ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens"]

    def tc(ts, total, last):
        return json.dumps({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": {
            "total_token_usage": dict(zip(keys, total)), "last_token_usage": dict(zip(keys, last))}}}) + "\n"
    meta = json.dumps({"timestamp": "2025-11-05T10:00:00.010Z", "type": "session_meta", "payload": {
        "id": "sub", "timestamp": "2025-11-05T10:00:00.010Z", "cwd": "/w/p", "originator": "codex_cli_rs",
        "source": {"subagent": {"thread_spawn": {"parent_thread_id": "p", "depth": 1}}}}}) + "\n"
    ctx = json.dumps({"timestamp": "2025-11-05T10:00:00.010Z", "type": "turn_context", "payload": {"model": "gpt-5"}}) + "\n"
    stages = [meta + ctx,  # (the burst is a second after the spawn: only its second line makes it one)
              tc("2025-11-05T10:00:01.100Z", (100, 0, 10, 0, 110), (100, 0, 10, 0, 110)),
              tc("2025-11-05T10:00:01.200Z", (300, 0, 30, 0, 330), (200, 0, 20, 0, 220))
              + tc("2025-11-05T10:00:09.000Z", (1300, 0, 80, 0, 1380), (1000, 0, 50, 0, 1050))]
    f = tmp_path / "rollout-2025-11-05T10-00-00-sub.jsonl"
    cache = scancache.ScanCache(tmp_path / "cache" / "scan.sqlite")
    written = ""
    for i, part in enumerate(stages):
        written += part
        f.write_text(written)
        os.utime(f, ns=(time.time_ns(), time.time_ns() + i))
        got = [(e.tokens.reported_input, e.tokens.output) for e in collect(("codex",), [f], cache=cache).events]
        assert got == [(e.tokens.reported_input, e.tokens.output) for e in collect(("codex",), [f]).events], i
    assert got == [(1000, 50)]
    again = collect(("codex",), [f], cache=cache)
    assert [(e.tokens.reported_input, e.tokens.output) for e in again.events] == [(1000, 50)]
    cache.close()


def _rollout_lines():
    import json
    keys = ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens"]

    def tc(ts, total, last, written=None):
        t, l_ = dict(zip(keys, total)), dict(zip(keys, last))
        if written is not None:
            t["cache_write_input_tokens"], l_["cache_write_input_tokens"] = written
        return json.dumps({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": {
            "total_token_usage": t, "last_token_usage": l_}}}) + "\n"

    def meta(ts, id_, **extra):
        return json.dumps({"timestamp": ts, "type": "session_meta", "payload": {
            "id": id_, "timestamp": ts, "cwd": "/w/p", "originator": "codex_cli_rs", **extra}}) + "\n"

    def ctx(ts, model="gpt-5.2-codex"):
        return json.dumps({"timestamp": ts, "type": "turn_context", "payload": {"cwd": "/w/p", "model": model}}) + "\n"
    return tc, meta, ctx


def test_a_fork_stamps_its_copy_of_the_parent_anew_and_counts_it_once(tmp_path):
    """`codex fork` writes the parent's history into the new rollout with the time it copied it: the
    copied token lines are the parent's calls (same running total and last usage), counted under the
    parent; the fork's own call after them is the fork's. Without the parent's file the copy counts once."""
    tc, meta, ctx = _rollout_lines()
    day = tmp_path / "sessions" / "2026" / "03" / "10"
    day.mkdir(parents=True)
    parent = meta("2026-03-10T09:00:00.000Z", "par") + ctx("2026-03-10T09:00:00.000Z") + \
        tc("2026-03-10T09:00:30.000Z", (10000, 0, 500, 100, 10500), (10000, 0, 500, 100, 10500)) + \
        tc("2026-03-10T09:01:30.000Z", (22000, 8000, 900, 150, 22900), (12000, 8000, 400, 50, 12400))
    fork = meta("2026-03-10T09:05:00.100Z", "frk", forked_from_id="par", source="cli") + \
        meta("2026-03-10T09:05:00.101Z", "par") + ctx("2026-03-10T09:05:00.102Z") + \
        tc("2026-03-10T09:05:00.103Z", (10000, 0, 500, 100, 10500), (10000, 0, 500, 100, 10500)) + \
        tc("2026-03-10T09:05:00.104Z", (22000, 8000, 900, 150, 22900), (12000, 8000, 400, 50, 12400)) + \
        ctx("2026-03-10T09:06:00.000Z") + \
        tc("2026-03-10T09:06:40.000Z", (35000, 18000, 1200, 200, 36200), (13000, 10000, 300, 50, 13300))
    (day / "rollout-2026-03-10T09-00-00-par.jsonl").write_text(parent)
    (day / "rollout-2026-03-10T09-05-00-frk.jsonl").write_text(fork)
    c = collect(("codex",), [tmp_path])
    assert sorted((e.session_id, e.tokens.reported_input, e.tokens.output) for e in c.events) == [
        ("frk", 13000, 300), ("par", 10000, 500), ("par", 12000, 400)]
    assert c.stats.skipped["copied_from_parent"] == 2
    (day / "rollout-2026-03-10T09-00-00-par.jsonl").unlink()  # (the parent's file gone: the copy is all there is)
    c = collect(("codex",), [tmp_path])
    assert sorted((e.session_id, e.tokens.reported_input) for e in c.events) == [
        ("frk", 10000), ("frk", 12000), ("frk", 13000)]


def test_a_sub_agents_copy_across_a_second_boundary_and_unrelated_equal_calls(tmp_path):
    """A thread_spawn sub-agent whose copy of its parent's lines straddles a second (written at .999
    and .001): both copies are the parent's; two sessions that merely start with calls of equal usage
    are not copies of each other (neither names the other as its parent): both count."""
    tc, meta, ctx = _rollout_lines()
    day = tmp_path / "sessions" / "2026" / "03" / "10"
    day.mkdir(parents=True)
    spawn = {"subagent": {"thread_spawn": {"parent_thread_id": "par", "depth": 1}}}
    (day / "rollout-2026-03-10T09-00-00-par.jsonl").write_text(
        meta("2026-03-10T09:00:00.000Z", "par") + ctx("2026-03-10T09:00:00.000Z") +
        tc("2026-03-10T09:00:30.000Z", (10000, 0, 500, 100, 10500), (10000, 0, 500, 100, 10500)) +
        tc("2026-03-10T09:01:30.000Z", (22000, 8000, 900, 150, 22900), (12000, 8000, 400, 50, 12400)))
    (day / "rollout-2026-03-10T09-05-00-sub.jsonl").write_text(
        meta("2026-03-10T09:05:00.995Z", "sub", source=spawn) + ctx("2026-03-10T09:05:00.996Z", "gpt-5.1-codex-mini") +
        tc("2026-03-10T09:05:00.999Z", (10000, 0, 500, 100, 10500), (10000, 0, 500, 100, 10500)) +
        tc("2026-03-10T09:05:01.001Z", (22000, 8000, 900, 150, 22900), (12000, 8000, 400, 50, 12400)) +
        tc("2026-03-10T09:05:09.000Z", (26000, 10000, 1100, 250, 27100), (4000, 2000, 200, 100, 4200)))
    (day / "rollout-2026-03-10T10-00-00-other.jsonl").write_text(
        meta("2026-03-10T10:00:00.000Z", "other") + ctx("2026-03-10T10:00:00.000Z") +
        tc("2026-03-10T10:00:30.000Z", (10000, 0, 500, 100, 10500), (10000, 0, 500, 100, 10500)))
    c = collect(("codex",), [tmp_path])
    assert sorted((e.session_id, e.tokens.reported_input, e.tokens.output) for e in c.events) == [
        ("other", 10000, 500), ("par", 10000, 500), ("par", 12000, 400), ("sub", 4000, 200)]


def test_cache_writes_in_input_priced_at_the_write_rate(tmp_path):
    """`cache_write_input_tokens` (gpt-5.6 on bill writing the cache) is part of `input_tokens`, as the
    cached tokens are: the rest is uncached input. gpt-5.6: $4 input, $0.40 cached, $5 cache write,
    $20 output per MTok."""
    tc, meta, ctx = _rollout_lines()
    f = tmp_path / "rollout-2026-03-10T09-00-00-w.jsonl"
    f.write_text(meta("2026-03-10T09:00:00.000Z", "w") + ctx("2026-03-10T09:00:00.000Z", "gpt-5.6") +
                 tc("2026-03-10T09:00:30.000Z", (100000, 0, 1000, 0, 101000), (100000, 0, 1000, 0, 101000),
                    written=(60000, 60000)) +
                 tc("2026-03-10T09:01:30.000Z", (230000, 100000, 3000, 0, 233000), (130000, 100000, 2000, 0, 132000),
                    written=(70000, 10000)))
    evs = collect(("codex",), [f]).events
    assert [(e.tokens.input, e.tokens.cache_read, e.tokens.cache_write_5m, e.tokens.reported_input) for e in evs] == [
        (40000, 0, 60000, 100000), (20000, 100000, 10000, 130000)]
    from nomira.pricing import load_bundled, price_event
    got = sum(price_event(e, load_bundled()).total_usd for e in evs)
    assert got == pytest.approx((60000 * 4 + 100000 * 0.4 + 70000 * 5 + 3000 * 20) / 1e6)  # uncached, cached, written, out


def test_a_forks_own_call_equal_to_its_parents_later_call_counts(tmp_path):
    """After `codex fork` both sessions may send the same next prompt from the same total: the fork's own
    call then equals the parent's next call in usage, but it was made after the fork, and a copy is only
    of a call made before it: both count."""
    tc, meta, ctx = _rollout_lines()
    day = tmp_path / "sessions" / "2026" / "03" / "10"
    day.mkdir(parents=True)
    first = tc("2026-03-10T09:00:30.000Z", (10000, 0, 500, 100, 10500), (10000, 0, 500, 100, 10500))
    same_next = ((22000, 8000, 900, 150, 22900), (12000, 8000, 400, 50, 12400))
    (day / "rollout-2026-03-10T09-00-00-par.jsonl").write_text(
        meta("2026-03-10T09:00:00.000Z", "par") + ctx("2026-03-10T09:00:00.000Z") + first +
        tc("2026-03-10T09:06:30.000Z", *same_next))
    (day / "rollout-2026-03-10T09-05-00-frk.jsonl").write_text(
        meta("2026-03-10T09:05:00.100Z", "frk", forked_from_id="par") + meta("2026-03-10T09:05:00.101Z", "par") +
        ctx("2026-03-10T09:05:00.102Z") + first.replace("09:00:30.000Z", "09:05:00.103Z") +
        ctx("2026-03-10T09:06:00.000Z") + tc("2026-03-10T09:06:40.000Z", *same_next))
    c = collect(("codex",), [tmp_path])
    assert sorted((e.session_id, e.tokens.reported_input) for e in c.events) == [
        ("frk", 12000), ("par", 10000), ("par", 12000)]
    assert c.stats.skipped["copied_from_parent"] == 1


def test_a_sub_agents_first_call_refreshed_in_its_second_is_no_burst(tmp_path):
    """A sub-agent that copies nothing: its first call's token line, then a rate-limit refresh repeating
    the same total within the same second. A repeated total is no second line of a replay burst: the
    call counts once, and so does the next."""
    tc, meta, ctx = _rollout_lines()
    spawn = {"subagent": {"thread_spawn": {"parent_thread_id": "par", "depth": 1}}}
    f = tmp_path / "rollout-2026-03-10T09-05-00-sub.jsonl"
    call = ((8000, 0, 300, 50, 8300), (8000, 0, 300, 50, 8300))
    f.write_text(meta("2026-03-10T09:05:10.000Z", "sub", source=spawn) + ctx("2026-03-10T09:05:10.001Z") +
                 tc("2026-03-10T09:05:14.200Z", *call) + tc("2026-03-10T09:05:14.800Z", *call) +
                 tc("2026-03-10T09:05:30.000Z", (20000, 6000, 700, 100, 20700), (12000, 6000, 400, 50, 12400)))
    c = collect(("codex",), [f])
    assert [e.tokens.reported_input for e in c.events] == [8000, 12000]
    assert c.stats.skipped["repeated_total"] == 1 and "subagent_replay" not in c.stats.skipped


def test_a_line_with_only_its_last_usage_is_not_counted_again_by_the_next_total(tmp_path):
    """A token line without a running total between two with one: its call is `last_token_usage`, and
    the next total's difference holds it too: counted once (it was counted twice, +71% here)."""
    import json
    tc, meta, ctx = _rollout_lines()
    keys = ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens"]
    last_only = json.dumps({"timestamp": "2026-03-10T09:01:00.000Z", "type": "event_msg", "payload": {
        "type": "token_count", "info": {"last_token_usage": dict(zip(keys, (20000, 1000, 800, 0, 20800)))}}}) + "\n"
    f = tmp_path / "rollout-2026-03-10T09-00-00-lo.jsonl"
    f.write_text(meta("2026-03-10T09:00:00.000Z", "lo") + ctx("2026-03-10T09:00:00.000Z")
                 + tc("2026-03-10T09:00:30.000Z", (10000, 8000, 500, 200, 10500), (10000, 8000, 500, 200, 10500))
                 + last_only
                 + tc("2026-03-10T09:02:00.000Z", (33000, 9000, 1400, 200, 34400), (3000, 0, 100, 0, 3100)))
    evs = collect(("codex",), [f]).events
    assert [(e.tokens.reported_input, e.tokens.cache_read, e.tokens.output) for e in evs] == [
        (10000, 8000, 500), (20000, 1000, 800), (3000, 0, 100)]


@pytest.mark.parametrize("second, counted", [
    ("2026-03-10T09:05:01.020Z", [(9000, 400)]),  # 70 ms into the next clock second: still the burst
    ("2026-03-10T09:05:01.950Z", [(9000, 400)]),  # 1 s after the first copy: still the burst (ccusage 20.0.24)
    ("2026-03-10T09:05:02.500Z", [(12000, 700), (9000, 400)]),  # 1.55 s: the sub-agent's own call
])
def test_a_sub_agents_replay_burst_is_its_first_lines_within_a_second(tmp_path, second, counted):
    """Without the parent's file, the copies are told by time: token lines within a second of the first
    one (a burst started late in a second ran into the next, and its tail was counted)."""
    tc, meta, ctx = _rollout_lines()
    spawn = {"subagent": {"thread_spawn": {"parent_thread_id": "gone", "depth": 1}}}
    f = tmp_path / "rollout-2026-03-10T09-05-00-sub.jsonl"
    f.write_text(meta("2026-03-10T09:05:00.900Z", "sub", source=spawn) + ctx("2026-03-10T09:05:00.920Z")
                 + tc("2026-03-10T09:05:00.950Z", (10000, 8000, 500, 200, 10500), (10000, 8000, 500, 200, 10500))
                 + tc(second, (22000, 17000, 1200, 500, 23200), (12000, 9000, 700, 300, 12700))
                 + tc("2026-03-10T09:06:00.000Z", (31000, 22000, 1600, 500, 32600), (9000, 5000, 400, 0, 9400)))
    evs = collect(("codex",), [f]).events
    assert [(e.tokens.reported_input, e.tokens.output) for e in evs] == counted


def test_a_fork_of_a_sub_agent_skips_its_copies_of_the_sub_agents_replay(tmp_path):
    """A fork of a sub-agent thread copies the sub-agent's whole file, its replay of its own parent's
    lines too: those are the grandparent's calls, not the fork's (they counted again, +42% of a day)."""
    tc, meta, ctx = _rollout_lines()
    day = tmp_path / "sessions" / "2026" / "03" / "10"
    day.mkdir(parents=True)
    spawn = {"subagent": {"thread_spawn": {"parent_thread_id": "par", "depth": 1}}}
    p1 = ((10000, 0, 500, 100, 10500), (10000, 0, 500, 100, 10500))
    p2 = ((22000, 8000, 900, 150, 22900), (12000, 8000, 400, 50, 12400))
    s1 = ((30000, 14000, 1200, 150, 31200), (8000, 6000, 300, 0, 8300))
    f1 = ((41000, 24000, 1500, 150, 42500), (11000, 10000, 300, 0, 11300))
    (day / "rollout-2026-03-10T09-00-00-par.jsonl").write_text(
        meta("2026-03-10T09:00:00.000Z", "par") + ctx("2026-03-10T09:00:00.000Z")
        + tc("2026-03-10T09:00:30.000Z", *p1) + tc("2026-03-10T09:01:30.000Z", *p2))
    (day / "rollout-2026-03-10T09-02-00-sub.jsonl").write_text(
        meta("2026-03-10T09:02:00.000Z", "sub", source=spawn) + ctx("2026-03-10T09:02:00.000Z")
        + tc("2026-03-10T09:02:00.100Z", *p1) + tc("2026-03-10T09:02:00.200Z", *p2)
        + tc("2026-03-10T09:02:40.000Z", *s1))
    (day / "rollout-2026-03-10T09-05-00-frk.jsonl").write_text(
        meta("2026-03-10T09:05:00.100Z", "frk", forked_from_id="sub", source="cli") + ctx("2026-03-10T09:05:00.102Z")
        + tc("2026-03-10T09:05:00.103Z", *p1) + tc("2026-03-10T09:05:00.104Z", *p2)
        + tc("2026-03-10T09:05:00.105Z", *s1) + tc("2026-03-10T09:06:00.000Z", *f1))
    c = collect(("codex",), [tmp_path])
    assert sorted((e.session_id, e.tokens.reported_input) for e in c.events) == [
        ("frk", 11000), ("par", 10000), ("par", 12000), ("sub", 8000)]
    assert c.stats.skipped["copied_from_parent"] == 3


def test_a_sub_agents_own_first_calls_under_a_second_apart_are_not_a_replay(tmp_path):
    """The copy of the parent's lines is written as the sub-agent is spawned: two calls of its own,
    minutes after the spawn and under a second apart, are its calls (with or without the parent's
    file), not a replay burst (ccusage 20.0.24 drops them)."""
    tc, meta, ctx = _rollout_lines()
    day = tmp_path / "sessions" / "2026" / "03" / "10"
    day.mkdir(parents=True)
    spawn = {"subagent": {"thread_spawn": {"parent_thread_id": "par", "depth": 1}}}
    parent = day / "rollout-2026-03-10T10-00-00-par.jsonl"
    parent.write_text(meta("2026-03-10T10:00:00.000Z", "par") + ctx("2026-03-10T10:00:00.000Z") +
                      tc("2026-03-10T10:00:30.000Z", (6000, 9000, 800, 0, 6800), (6000, 9000, 800, 0, 6800)))
    (day / "rollout-2026-03-10T10-03-00-sub.jsonl").write_text(
        meta("2026-03-10T10:03:00.000Z", "sub", source=spawn) + ctx("2026-03-10T10:03:00.001Z") +
        tc("2026-03-10T10:05:40.000Z", (20000, 30000, 2000, 50, 22000), (20000, 30000, 2000, 50, 22000)) +
        tc("2026-03-10T10:05:40.555Z", (38000, 52000, 4500, 100, 42500), (18000, 22000, 2500, 50, 20500)))
    for _ in range(2):
        c = collect(("codex",), [tmp_path])
        assert sorted((e.session_id, e.tokens.reported_input, e.tokens.output) for e in c.events
                      if e.session_id == "sub") == [("sub", 18000, 2500), ("sub", 20000, 2000)]
        assert "subagent_replay" not in c.stats.skipped
        parent.unlink(missing_ok=True)
