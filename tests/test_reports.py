"""Time reports, compare, plans, forensics and the optimizer on fixtures, against hand arithmetic."""
from datetime import datetime, timedelta, timezone

import pytest

from conftest import FIXTURES
from nomira.ledger.events import TokenCounts, UsageEvent
from nomira.pricing import load_bundled
from nomira.pricing.engine import Pricer
from nomira.reports import periods
from test_cli import A1, A2, B1, CX, CX_FALLBACK, S1

BOTH = ["--path", FIXTURES / "claude", "--path", FIXTURES / "codex"]
TOOLS = FIXTURES / "claude_tools"
# claude_tools calls (Sonnet 4.5: in 3 / out 15 / read 0.30 / 5m write 3.75 per MTok)
T1 = (10 * 3 + 100 * 15 + 20000 * 3.75) / 1e6
T2 = (5 * 3 + 200 * 15 + 20000 * 0.3 + 1000 * 3.75) / 1e6
T3 = (5 * 3 + 100 * 15 + 21500 * 3.75) / 1e6
T4 = (5 * 3 + 50 * 15 + 21500 * 0.3) / 1e6


def test_daily_utc(run_json):
    r = run_json("daily", *BOTH, "--timezone", "UTC")
    days = {d["date"]: d for d in r["daily"]}
    assert sorted(days) == ["2025-11-03", "2025-11-04"]
    assert days["2025-11-03"]["cost_usd"] == pytest.approx(A1 + A2 + S1 + CX)
    assert days["2025-11-04"]["cost_usd"] == pytest.approx(B1 + CX_FALLBACK)
    assert r["totals"]["cost_usd"] == pytest.approx(A1 + A2 + S1 + CX + B1 + CX_FALLBACK)
    models = {m["model"] for m in days["2025-11-03"]["models"]}
    assert {"claude-sonnet-4-5-20250929", "gpt-5-codex", "claude-opus-9-9"} <= models


def test_daily_groups_by_timezone(run_json):
    # UTC+14: the Claude calls of 11-03 14:2x UTC fall on 11-04 local; Codex 09:15 UTC stays on 11-03;
    # the fallback Codex call of 11-04 10:01 UTC falls on 11-05
    r = run_json("daily", *BOTH, "--timezone", "Pacific/Kiritimati")
    days = {d["date"]: d["cost_usd"] for d in r["daily"]}
    assert days == {"2025-11-03": pytest.approx(CX), "2025-11-04": pytest.approx(A1 + A2 + S1 + B1),
                    "2025-11-05": pytest.approx(CX_FALLBACK)}


def test_since_until(run_json):
    r = run_json("daily", *BOTH, "--timezone", "UTC", "--since", "20251104", "--until", "2025-11-04")
    assert [d["date"] for d in r["daily"]] == ["2025-11-04"]
    r = run_json(*BOTH, "--timezone", "UTC", "--until", "20251103")
    assert r["totals"]["cost_usd"] == pytest.approx(A1 + A2 + S1 + CX)


def test_monthly_value_vs_plan(run_json):
    r = run_json("monthly", *BOTH, "--timezone", "UTC")
    (month,) = r["monthly"]
    assert month["month"] == "2025-11"
    vs = month["value_vs_plan"]
    assert vs["claude_code"]["plan"] == "claude-max-20x"
    assert vs["claude_code"]["multiple"] == pytest.approx((A1 + A2 + S1 + B1) / 200)
    assert vs["codex"]["multiple"] == pytest.approx((CX + CX_FALLBACK) / 20)
    r = run_json("monthly", *BOTH, "--timezone", "UTC", "--plan", "claude-pro", "--plan-price", "50")
    assert r["monthly"][0]["value_vs_plan"]["claude_code"]["multiple"] == pytest.approx((A1 + A2 + S1 + B1) / 50)


def test_monthly_api_regime_has_no_plan_comparison(run_json):
    r = run_json("monthly", *BOTH, "--regime", "api")
    assert "value_vs_plan" not in r["monthly"][0] and r["value_label"] == "Cost"


def test_session_report(run_json):
    r = run_json("session", "--path", FIXTURES / "claude")
    rows = {s["session_id"]: s for s in r["session"]}
    assert rows["3f9a6c2e-8b1d-4e7f-a0c4-5d6e7f8a9b0c"]["cost_usd"] == pytest.approx(A1 + A2 + S1)
    assert rows["7c1d2e3f-0000-4000-8000-000000000002"]["cost_usd"] == pytest.approx(B1)


def ev(at: datetime, output: int, model="claude-sonnet-4-5-20250929"):
    return UsageEvent("claude_code", "anthropic", model, at, "s", "p", TokenCounts(input=1000, output=output,
                                                                                  reported_input=1000))


def test_blocks_across_5h_boundary():
    t0 = datetime(2025, 11, 6, 10, 30, tzinfo=timezone.utc)
    events = [ev(t0, 100), ev(t0 + timedelta(hours=3, minutes=30), 100),  # 14:00, same block
              ev(t0 + timedelta(hours=4, minutes=40), 100),  # 15:10: past 10:00+5h -> new block at 15:00
              ev(t0 + timedelta(hours=10, minutes=30), 100)]  # 21:00: new block
    pricer = Pricer(load_bundled())
    bl = periods.blocks(((e, pricer(e)) for e in events), timezone.utc)
    assert [b.start.strftime("%H:%M") for b in bl] == ["10:00", "15:00", "21:00"]
    assert [b.tally.calls for b in bl] == [2, 1, 1]
    call = (1000 * 3 + 100 * 15) / 1e6
    assert bl[0].tally.total_usd == pytest.approx(2 * call)


def test_a_call_at_the_window_end_is_in_it_as_ccusage_counts():
    """A call exactly 5 h after the window's start, or exactly 5 h after the last call, stays in the window
    (ccusage 20's blocks.rs: a new one only when `since_start > duration || since_last > duration`);
    a millisecond later opens a new one."""
    t0 = datetime(2025, 11, 6, 10, 0, tzinfo=timezone.utc)
    ms = timedelta(milliseconds=1)
    pricer = Pricer(load_bundled())
    for later, expected in ((timedelta(hours=5), [2]), (timedelta(hours=5) + ms, [1, 1])):
        bl = periods.blocks(((e, pricer(e)) for e in [ev(t0, 100), ev(t0 + later, 100)]), timezone.utc)
        assert [b.tally.calls for b in bl] == expected
    t1 = t0 + timedelta(minutes=30)  # a gap of exactly 5 h is no gap; the window's end still is one
    bl = periods.blocks(((e, pricer(e)) for e in [ev(t0, 1), ev(t1, 1), ev(t1 + timedelta(hours=5), 1)]), timezone.utc)
    assert [b.tally.calls for b in bl] == [2, 1]


def test_active_block_burn_rate_and_projection():
    start = datetime(2025, 11, 6, 10, 0, tzinfo=timezone.utc)
    events = [ev(start + timedelta(minutes=10), 100), ev(start + timedelta(minutes=40), 100)]
    pricer = Pricer(load_bundled())
    (b,) = periods.blocks(((e, pricer(e)) for e in events), timezone.utc)
    now = start + timedelta(minutes=60)
    assert b.is_active(now) and not b.is_active(start + timedelta(hours=5, minutes=1))
    burn = b.burn(now)
    cost = 2 * (1000 * 3 + 100 * 15) / 1e6
    assert burn["cost_per_hour_usd"] == pytest.approx(cost / 30 * 60)  # 30 active minutes
    assert burn["remaining_minutes"] == pytest.approx(240)
    assert burn["projected_cost_usd"] == pytest.approx(cost + cost / 30 * 240)


def test_a_single_call_block_has_no_rate_yet():
    """One call (or calls of one instant) spans no time: no rate and no projection (a floor of a minute
    made one $0.23 call a $14/h rate and a $70 projection)."""
    start = datetime(2025, 11, 6, 10, 0, tzinfo=timezone.utc)
    pricer = Pricer(load_bundled())
    (b,) = periods.blocks([(e, pricer(e)) for e in [ev(start + timedelta(minutes=10), 100)] * 2], timezone.utc)
    assert b.is_active(start + timedelta(minutes=13)) and b.burn(start + timedelta(minutes=13)) is None


def test_blocks_are_made_over_the_whole_timeline_then_kept_by_their_start():
    """--since/--until keep the windows that start in the range; the calls before it still fix them: a
    call at 23:10 opens the 23:00 window, the next day's 00:20 call belongs to it."""
    from datetime import date
    t0 = datetime(2026, 3, 2, 23, 10, tzinfo=timezone.utc)
    pricer = Pricer(load_bundled())
    pairs = [(e, pricer(e)) for e in (ev(t0, 100), ev(t0 + timedelta(minutes=70), 100))]
    assert periods.blocks(pairs, timezone.utc, since=date(2026, 3, 3)) == []
    (b,) = periods.blocks(pairs, timezone.utc, until=date(2026, 3, 2))
    assert b.start == datetime(2026, 3, 2, 23, 0, tzinfo=timezone.utc) and b.tally.calls == 2


def test_each_agents_windows_apart():
    """Claude Code's 5-hour windows and Codex's run apart: a Codex call at 08:31 opens no window for the
    Claude calls of 10:20 and 14:40 (together, the 08:00 window took the first and the second opened 14:00)."""
    import dataclasses
    day = datetime(2026, 6, 1, tzinfo=timezone.utc)
    claude = [ev(day + timedelta(hours=10, minutes=20), 100), ev(day + timedelta(hours=14, minutes=40), 100)]
    codex = dataclasses.replace(ev(day + timedelta(hours=8, minutes=31), 100), source="codex", provider="openai",
                                model="gpt-5-codex")
    pricer = Pricer(load_bundled())
    bl = periods.blocks([(e, pricer(e)) for e in [codex, *claude]], timezone.utc)
    assert [(b.source, b.start.strftime("%H:%M"), b.tally.calls) for b in bl] == [
        ("codex", "08:00", 1), ("claude_code", "10:00", 2)]


def test_compare_by_project_headline(run_json):
    """Claude Code and Codex both worked in /home/ana/src/shop: one project row, not two."""
    r = run_json("--compare", "--by-project", *BOTH)
    rows = {row["name"]: row for row in r["rows"]}
    shop = A1 + A2 + S1 + B1 + CX
    assert set(rows) == {"shop", "billing"}
    assert rows["shop"]["cost_usd"] == pytest.approx(shop)
    assert rows["shop"]["calls"] == 5 + 3  # 5 Claude calls (one unpriced) + 3 Codex calls
    assert rows["billing"]["cost_usd"] == pytest.approx(CX_FALLBACK)
    assert r["headline"].startswith(f"project shop spent {shop / CX_FALLBACK:.1f}× more than project billing")


def test_one_label_per_cwd_across_agents_and_in_shipped_events(run_json, tmp_path):
    """The label is the same in every agent's rows and on the wire; totals do not depend on it."""
    report = run_json(*BOTH, "--path", FIXTURES / "opencode")
    assert {s["project"] for s in report["sessions"]} == {"shop", "billing", "old"}
    assert report["totals"]["cost_usd"] > 0
    out = tmp_path / "events.json"
    from nomira.cli import main
    assert main(["export", str(out), *map(str, BOTH), "--developer", "ana"]) == 0
    import json
    tags = {e["tags"]["project"] for e in json.loads(out.read_text())["events"]}
    assert tags == {"shop", "billing"}


def test_project_label_collisions_take_the_parent():
    from nomira.sources.project import labels_for
    labels = labels_for(["/home/ana/src/shop", "/work/shop", "/home/ana/src/billing", "/a/x/api", "/b/x/api", "/"])
    assert labels == {"/home/ana/src/shop": "shop (src)", "/work/shop": "shop (work)",
                      "/home/ana/src/billing": "billing", "/a/x/api": "api (a-x)", "/b/x/api": "api (b-x)",
                      "/": "root"}
    assert labels_for(["C:\\Users\\ana\\shop"]) == {"C:\\Users\\ana\\shop": "shop"}
    assert labels_for(reversed(list(labels))) == labels  # order-free: the same history, the same labels


def test_pinned_labels_stay_unless_another_directory_holds_them(isolated_env):
    """A directory shipped under a label keeps it; a pin another directory's label holds now, a pin of
    a directory not in the history and a pin that is no label (a path, too long) are not applied; an
    unreadable pins file is no pins."""
    from nomira import dirs
    from nomira.sources.project import keep_pins, labels_for, pin, pinned
    labels = labels_for(["/a/shop", "/b/shop", "/c/api"])
    assert labels == {"/a/shop": "shop (a)", "/b/shop": "shop (b)", "/c/api": "api"}
    assert keep_pins(labels, {"/a/shop": "shop", "/gone/x": "x"}) == {**labels, "/a/shop": "shop"}
    assert keep_pins(labels, {"/a/shop": "api"}) == labels  # (held by /c/api)
    assert keep_pins(labels, {"/a/shop": "shop", "/b/shop": "shop"}) == {**labels, "/a/shop": "shop"}
    assert keep_pins(labels, {"/a/shop": "a/shop", "/b/shop": "x" * 65}) == labels
    # (in path order: /a's pin is held by /b then, /b's is free)
    assert keep_pins(labels, {"/a/shop": "shop (b)", "/b/shop": "shop"}) == {**labels, "/b/shop": "shop"}
    import os
    pin(os.environ, {"/a/shop": "shop"})
    pin(os.environ, {"/a/shop": "shop (a)", "/b/shop": "shop (b)"})  # (an earlier pin stays)
    assert pinned(os.environ) == {"/a/shop": "shop", "/b/shop": "shop (b)"}
    dirs.pinned_labels(os.environ).write_text("{not json")
    assert pinned(os.environ) == {}


def test_forensics_finds_cache_rebuild(run_json):
    r = run_json("forensics", "--path", TOOLS)
    rb = r["cache_rebuilds"]
    assert rb["count"] == 1
    assert rb["cache_write_usd"] == pytest.approx(21500 * 3.75 / 1e6)
    assert rb["top"][0]["gap_minutes"] == pytest.approx(28)
    assert r["total_cost_usd"] == pytest.approx(T1 + T2 + T3 + T4)


def test_forensics_session_turns(run_json):
    r = run_json("forensics", "--path", TOOLS, "--session", "5e55a0b1")
    assert [t["cost_usd"] for t in r["turns"]] == [pytest.approx(x) for x in (T1, T2, T3, T4)]
    assert [t["flags"] for t in r["turns"]] == [[], [], ["cache_rebuild"], []]


R, W, O, IN = 0.3e-6, 3.75e-6, 15e-6, 3e-6  # Sonnet 4.5 per token: cache read, 5m write, output, input


def test_optimizer_attributes_known_cost_to_known_file(run_json):
    # T1 (prompt 20010, all written) is "(no tool)"; its 100 output tokens go half to Read t1, half to Bash t2.
    # T2 (prompt 21005 = 20000 read + 5 in + 1000 written) grew by 995: t1 and t2 (results unlinked) 497.5 each,
    # priced at T2's uncached rate; T2's 200 output -> Read t3.
    t2_rate = (5 * IN + 1000 * W) / 1005
    # T3 (prompt 21505, nothing cached: a rebuild) grew by 500 -> t3; all priced at T3's uncached rate.
    t3_rate = (5 * IN + 21500 * W) / 21505
    # T4 (21500 read + 5 input) adds nothing: layers t1, t2 and 495 of t3 read; t3's last 5 at the input rate.
    t1 = 50 * O + 497.5 * t2_rate + 497.5 * t3_rate + 497.5 * R
    bash = 50 * O + 497.5 * t2_rate + 497.5 * t3_rate + 497.5 * R
    t3 = 200 * O + 500 * t3_rate + 495 * R + 5 * IN
    t4 = 100 * O  # its output; its result never reached a later prompt
    r = run_json("optimize", "--path", TOOLS)
    (f,) = r["files"]
    assert f["path"] == "/src/app.py" and f["reads"] == 3
    assert f["cost_usd"] == pytest.approx(t1 + t3 + t4)
    assert f["saving_estimate_usd"] == pytest.approx(t3 + t4)  # pinned: only the first read stays
    tools = {t["tool"]: t for t in r["tools"]}
    assert tools["Bash"]["cost_usd"] == pytest.approx(bash)
    assert tools["(no tool)"]["cost_usd"] == pytest.approx(T1 + T2 + T3 + T4 - t1 - t3 - t4 - bash)
    assert r["total_cost_usd"] == pytest.approx(T1 + T2 + T3 + T4)


CONTEXT = FIXTURES / "claude_context"


def test_a_file_read_twice_into_a_huge_context_outranks_one_read_often(run_json):
    r = run_json("optimize", "--path", CONTEXT)
    big, small = r["files"]
    # small.py, 4 reads of 100 tokens: each its call's output, one 100-token write, then a read per later call
    assert small["path"] == "/src/small.py" and small["reads"] == 4
    s1, s2, s3, s4 = (100 * O + 100 * W + later * 100 * R for later in (5, 4, 3, 1))
    assert small["cost_usd"] == pytest.approx(s1 + s2 + s3 + s4)
    assert small["saving_estimate_usd"] == pytest.approx(s2 + s3 + s4)
    # big.py, 2 reads of 50,000 tokens: written once each, the first then read by two calls
    b1, b2 = 100 * O + 50000 * W + 2 * 50000 * R, 100 * O + 50000 * W
    assert big["path"] == "/src/big.py" and big["reads"] == 2
    assert big["cost_usd"] == pytest.approx(b1 + b2) and big["saving_estimate_usd"] == pytest.approx(b2)
    assert big["cost_usd"] > 40 * small["cost_usd"]
    assert any(a.startswith("/src/big.py") and f"${b2:.2f}" in a for a in r["recommendations"])


def test_codex_shell_reads_are_attributed_like_claude_reads(run_json):
    # gpt-5-codex: input 1.25, cached input 0.125, output 10 per MTok. Call 1 (1000 in, 50 out) ran a
    # `sed -n` read and `pytest`: half its output each. Call 2 (3000 in, 1000 of them cached) grew by 2000,
    # split 3:1 by the outputs' sizes (3000 and 1000 characters), all at the uncached input rate.
    r = run_json("optimize", "--path", FIXTURES / "codex_tools")
    (f,) = r["files"]
    assert f["path"] == "src/app.py" and f["reads"] == 1
    assert f["cost_usd"] == pytest.approx(25 * 10e-6 + 1500 * 1.25e-6)
    tools = {t["tool"]: t for t in r["tools"]}
    assert tools["shell"]["cost_usd"] == pytest.approx(25 * 10e-6 + 500 * 1.25e-6)
    assert r["total_cost_usd"] == pytest.approx(1000 * 1.25e-6 + 50 * 10e-6 + 2000 * 1.25e-6 + 1000 * 0.125e-6
                                                + 20 * 10e-6)


def test_attributed_shares_sum_to_each_calls_cost():
    from nomira.reports.optimizer import SUBAGENT, Owner, split_calls
    from nomira.sources.tool_calls import tool_uses
    from nomira.sources.registry import collect
    pricer = Pricer(load_bundled())
    files = sorted(CONTEXT.rglob("*.jsonl")) + sorted(TOOLS.rglob("*.jsonl"))
    events = collect(("claude",), files).events
    uses, sizes = tool_uses({"claude": files})
    seen = 0
    for event, usd, split in split_calls(((e, pricer(e)) for e in events), uses, sizes):
        assert sum(split.values()) == pytest.approx(usd, rel=1e-12), event.message_id
        seen += 1
    assert seen == 11
    # a turn's growth splits by result size; a sub-agent's call goes whole to the Task that spawned it
    t0 = datetime(2025, 11, 8, tzinfo=timezone.utc)

    def ev(i, cr, cw, side=False):
        return UsageEvent("claude_code", "anthropic", "claude-sonnet-4-5-20250929", t0 + timedelta(minutes=i), "s",
                          "p", TokenCounts(0, 10, cr, cw, 0, 0, 0), f"m{i}", f"r{i}", side)
    calls = [ev(0, 0, 1000), ev(1, 1000, 400), ev(2, 0, 500, side=True), ev(3, 1400, 0)]
    uses = {("m0", "r0"): [("a", "Read", "/a"), ("b", "Read", "/b")], ("m1", "r1"): [("t", "Task", None)]}
    out = list(split_calls(((e, pricer(e)) for e in calls), uses, {"a": 300, "b": 100}))
    second = out[1][2]
    assert second[Owner("a", "Read", "/a")] == pytest.approx(300 * W)  # its output went to the Task
    assert second[Owner("b", "Read", "/b")] == pytest.approx(100 * W)
    assert out[2][2] == {Owner("t", "Task", None): pytest.approx(500 * W + 10 * O)}
    assert SUBAGENT not in out[2][2]


def test_text_tables_fit_80_columns(capsys):
    from nomira.cli import main
    for cmd in ("daily", "monthly", "session", "blocks", "forensics", "optimize"):
        assert main([cmd, "--path", str(FIXTURES / "claude"), "--path", str(TOOLS), "--breakdown"]
                    if cmd == "daily" else [cmd, "--path", str(FIXTURES / "claude"), "--path", str(TOOLS)]) == 0
        out = capsys.readouterr().out
        assert max(len(line) for line in out.splitlines()) <= 80, cmd
        assert "\033[" not in out


def test_every_command_is_documented():
    from pathlib import Path

    from nomira.cli import COMMANDS
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name in COMMANDS:
        assert f"nomira {name}" in readme or name == "report", name


def test_project_labels_survive_spilling_and_forked_folds():
    from nomira.sources.registry import collect
    expect = {("claude_code", "shop"), ("claude_code", "tools"), ("claude_code", "ctx"), ("claude_code", "mcp"), ("codex", "billing"),
              ("codex", "shop"), ("codex", "cx"),
              ("opencode", "old"), ("opencode", "shop")}
    c = collect(("claude", "codex", "opencode"), [FIXTURES], budget=2)  # every record spilled to disk
    assert c.fold(lambda evs: {(e.source, e.project) for e in evs}, lambda a, b: a | b, workers=2) == expect


MCP = FIXTURES / "claude_mcp"


def test_cost_by_mcp_server_skill_and_subagent_type(run_json):
    # Sonnet 4.5, no input. M1 (10000 written) calls github and linear: 50 output each, the prompt "(no tool)".
    # M2 (10000 read, 400 written): the growth splits 300:100 by result size (300 and 100 characters); Skill pdf.
    # M3 (10400 read, 200 written): the growth -> pdf; its output -> Task Explore. M4, the sub-agent's own call
    # (1000 written, 100 out), goes whole to that Task. M5 (10600 read) adds nothing: every layer read once more.
    github = 50 * O + 300 * W + 2 * 300 * R
    linear = 50 * O + 100 * W + 2 * 100 * R
    pdf = 100 * O + 200 * W + 200 * R
    explore = 100 * O + 1000 * W + 100 * O
    total = 5 * 100 * O + (10000 + 400 + 200 + 1000) * W + (10000 + 10400 + 10600) * R
    for by, expect, none, calls in (
            ("mcp-server", {"github": github, "linear": linear}, "(no MCP server)", {"github": 1, "linear": 1}),
            ("skill", {"pdf": pdf}, "(no skill)", {"pdf": 1}),
            ("subagent", {"Explore": explore}, "(no sub-agent)", {"Explore": 2})):
        r = run_json("optimize", "--path", MCP, "--by", by)
        assert r["schema_version"] == 1 and r["dimension"] == by
        assert r["total_cost_usd"] == pytest.approx(total)
        rows = {x["name"]: x for x in r["rows"]}
        assert set(rows) == {*expect, none} and r["rows"][-1]["name"] == none
        for name, usd in expect.items():
            assert rows[name]["cost_usd"] == pytest.approx(usd), (by, name)
            assert rows[name]["cost_micro_usd"] == round(usd * 1e6)
            assert rows[name]["calls"] == calls[name]
        assert rows[none]["cost_usd"] == pytest.approx(total - sum(expect.values()))
        assert sum(x["share_of_cost"] for x in r["rows"]) == pytest.approx(1)
    assert run_json("optimize", "--path", MCP, "--by", "mcp-server")["rows"][0]["cost_micro_usd"] == 2055


def test_mcp_server_from_tool_names():
    from nomira.reports.dimensions import mcp_server, value
    from nomira.reports.optimizer import SUBAGENT, Owner
    assert mcp_server("mcp__github__create_issue") == "github"
    assert mcp_server("mcp__claude_ai_Gmail__search__threads") == "claude_ai_Gmail"
    assert [mcp_server(t) for t in ("Read", "mcp__github", "mcp____x", "mcp__github__", "shell")] == [None] * 5
    assert value("skill", Owner("a", "Skill", None)) == "(type not logged)"
    assert value("subagent", SUBAGENT) == "(type not logged)" and value("skill", Owner("b", "Read", "/a")) is None


def test_optimize_by_table_and_no_paths_in_events(capsys):
    from nomira.cli import main
    from nomira.sources.registry import collect
    assert main(["optimize", "--path", str(MCP), "--by", "mcp-server"]) == 0
    out = capsys.readouterr().out
    assert "MCP server" in out and "github" in out and "(no MCP server)" in out
    events = collect(("claude",), sorted(MCP.rglob("*.jsonl"))).events
    assert len(events) == 5 and not any("github" in repr(e) or "Explore" in repr(e) or "pdf" in repr(e)
                                        for e in events)


def test_codex_mcp_tool_calls_are_attributed_to_their_server(run_json, tmp_path):
    # Codex names an MCP tool for the model mcp__<server>__<tool> (codex-rs MCP_TOOL_NAME_PREFIX "mcp", "__"):
    # the codex_tools rollout with its `pytest` call made an MCP call instead; the figures of the test above.
    (src,) = sorted((FIXTURES / "codex_tools").rglob("*.jsonl"))
    out = tmp_path / src.relative_to(FIXTURES / "codex_tools")
    out.parent.mkdir(parents=True)
    lines = [ln.replace('"name":"shell"', '"name":"mcp__github__create_issue"') if '"call_id":"call_test"' in ln
             and '"function_call"' in ln else ln for ln in src.read_text().splitlines()]
    out.write_text("\n".join(lines) + "\n")
    r = run_json("optimize", "--path", tmp_path, "--by", "mcp-server")
    rows = {x["name"]: x for x in r["rows"]}
    assert rows["github"]["cost_usd"] == pytest.approx(25 * 10e-6 + 500 * 1.25e-6) and rows["github"]["uses"] == 1
    assert rows["github"]["cost_usd"] + rows["(no MCP server)"]["cost_usd"] == pytest.approx(r["total_cost_usd"])
