"""Unpriced is never zero: a call without a confirmed rate for a token type it uses is unpriced, with why."""
import json
from datetime import datetime, timezone

from nomira.cli import main
from nomira.ledger.events import TokenCounts, UsageEvent
from nomira.pricing.engine import Pricer, unpriced_reason
from nomira.pricing.table import load_bundled


def ev(model, provider="other", **tokens):
    return UsageEvent(source="claude_code", provider=provider, model=model,
                      occurred_at=datetime(2026, 11, 3, tzinfo=timezone.utc), session_id="s", project="p",
                      tokens=TokenCounts(**tokens))


def test_input_price_without_cache_write_price_is_unpriced_with_that_reason():
    pricer = Pricer(load_bundled())
    table = load_bundled()
    g = table.lookup("gemini-2.5-pro").base
    assert g.input and g.output and g.cache_write_5m is None  # the premise: rates, but none for cache writes
    plain = pricer(ev("gemini-2.5-pro", input=1000, output=100))
    assert plain is not None and plain.total_usd > 0  # without cache writes it is priced
    writes = ev("gemini-2.5-pro", input=1000, output=100, cache_write_5m=5000)
    assert pricer(writes) is None
    assert unpriced_reason(writes) == "no cache-write price"
    one_hour = ev("deepseek-chat", cache_write_1h=10, input=5)
    assert pricer(one_hour) is None and unpriced_reason(one_hour) == "no 1-hour cache-write price"
    for label in ("auto", "default", "openrouter/auto"):
        assert pricer(ev(label, input=5)) is None
        assert unpriced_reason(ev(label, input=5)).startswith("generic routing label")
    unknown = ev("no-such-model-9", input=1)
    assert pricer(unknown) is None and unpriced_reason(unknown).startswith("unknown model")


def test_published_provider_rules_still_price_and_say_unverified():
    pricer = Pricer(load_bundled())
    opus41 = load_bundled().lookup("claude-opus-4-1-20250805").base
    assert opus41.cache_write_1h is None
    c = pricer(ev("claude-opus-4-1-20250805", "anthropic", input=10, cache_write_1h=1_000_000))
    assert c is not None and c.cache_write_1h_usd == 2 * opus41.input and not c.verified  # Anthropic's 2x rule
    gpt = pricer(ev("gpt-5", "openai", input=10, cache_read=1000, output=5))
    assert gpt is not None and gpt.verified


LINES = [  # Claude Code transcript lines (as in tests/fixtures/claude), one per model
    ("msg_P1", "claude-sonnet-4-5-20250929", {"input_tokens": 10, "output_tokens": 20}),
    ("msg_P2", "gemini-2.5-pro", {"input_tokens": 10, "output_tokens": 20, "cache_creation_input_tokens": 3000,
                                  "cache_creation": {"ephemeral_5m_input_tokens": 3000,
                                                     "ephemeral_1h_input_tokens": 0}}),
    ("msg_P3", "gemini-2.5-pro", {"input_tokens": 10, "output_tokens": 20}),
    ("msg_P4", "auto", {"input_tokens": 10, "output_tokens": 20}),
]


def history(tmp_path):
    folder = tmp_path / "projects" / "-home-ana-src-shop"
    folder.mkdir(parents=True)
    rows = []
    for i, (mid, model, usage) in enumerate(LINES):
        rows.append(json.dumps({
            "parentUuid": None, "isSidechain": False, "userType": "external", "cwd": "/home/ana/src/shop",
            "sessionId": "5a5a5a5a-0000-4000-8000-000000000001", "version": "2.0.37", "type": "assistant",
            "uuid": f"u{i}", "timestamp": f"2025-11-0{(3, 4, 4, 5)[i]}T10:0{i}:00.000Z", "requestId": f"req_{mid}",
            "message": {"id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
                        "usage": usage}}))
    (folder / "5a5a5a5a-0000-4000-8000-000000000001.jsonl").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_every_report_says_unpriced_and_why(tmp_path, capsys):
    root = str(history(tmp_path))
    assert main(["report", "--path", root, "--json", "--no-cache"]) == 0
    doc = json.loads(capsys.readouterr().out)
    models = {m["model"]: m for m in doc["models"]}
    assert models["gemini-2.5-pro"]["unpriced_reasons"] == {"no cache-write price": 1}
    assert models["gemini-2.5-pro"]["priced"] and models["gemini-2.5-pro"]["unpriced_calls"] == 1
    assert models["auto"]["unpriced_reasons"] == {
        "generic routing label (the model that served it is not named)": 1} and not models["auto"]["priced"]
    assert doc["totals"]["unpriced_calls"] == 2
    assert main(["report", "--path", root, "--no-cache", "--wide"]) == 0
    text = capsys.readouterr().out
    auto_row = next(line for line in text.splitlines() if line.startswith("auto "))
    assert "unpriced" in auto_row and "$0.00" not in auto_row
    flat = " ".join(text.split())  # prose lines wrap at the terminal width
    assert "gemini-2.5-pro: 1 of 2 calls unpriced" in flat and "no cache-write price (1 call)" in flat
    assert "2 unpriced calls not in the total" in flat
    assert main(["daily", "--path", root, "--no-cache", "--wide"]) == 0
    daily = capsys.readouterr().out
    assert "* 2 unpriced calls" in daily and "generic routing label" in " ".join(daily.split())
    day4 = next(line for line in daily.splitlines() if line.startswith("2025-11-04"))
    assert day4.rstrip().endswith("*")  # a priced call and an unpriced one that day
    day5 = next(line for line in daily.splitlines() if line.startswith("2025-11-05"))
    assert day5.rstrip().endswith("unpriced")
    assert main(["session", "--path", root, "--json", "--no-cache"]) == 0
    s = json.loads(capsys.readouterr().out)["session"][0]
    assert s["unpriced_reasons"] == {"generic routing label (the model that served it is not named)": 1,
                                     "no cache-write price": 1}


def test_compare_and_optimize_count_unpriced_calls(tmp_path, capsys):
    root = str(history(tmp_path))
    assert main(["report", "--path", root, "--compare", "--by-project", "--json", "--no-cache"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert row["unpriced_calls"] == 2 and row["calls"] == 4
    assert row["usd_per_call"] == row["cost_usd"] / 2  # per priced call: an unpriced call is not a $0 call
    assert main(["report", "--path", root, "--compare", "--by-project", "--no-cache", "--wide"]) == 0
    assert "*" in next(line for line in capsys.readouterr().out.splitlines() if line.startswith(row["name"]))
    assert main(["optimize", "--path", root, "--json", "--no-cache"]) == 0
    assert json.loads(capsys.readouterr().out)["unpriced_calls"] == 2


def test_a_modifier_without_a_rate_is_said_in_every_period_report(tmp_path, capsys):
    """A call logged with a modifier the table publishes no rate for (fast mode on Haiku 4.5, data residency
    on Opus 4.5) is priced at the standard rates, and daily, monthly and session say so, in their rows and
    under the table, as the report does per model; a plain call's row says nothing."""
    proj = tmp_path / "projects" / "-w-shop"
    proj.mkdir(parents=True)

    def line(i, day, model, **extra):
        usage = {"input_tokens": 1000, "output_tokens": 1000, "cache_read_input_tokens": 0,
                 "cache_creation_input_tokens": 0, **extra}
        return json.dumps({"type": "assistant", "sessionId": "s1", "timestamp": f"2026-03-0{day}T10:00:00.000Z",
                           "requestId": f"req_{i}", "cwd": "/w/shop", "isSidechain": False, "version": "2.1.3",
                           "message": {"id": f"msg_{i}", "model": model, "role": "assistant", "type": "message",
                                       "content": [], "usage": usage}}, separators=(",", ":"))
    (proj / "s1.jsonl").write_text("\n".join([
        line(1, 1, "claude-haiku-4-5-20251001", speed="fast"), line(2, 2, "claude-opus-4-5-20251101", inference_geo="us"),
        line(3, 3, "claude-haiku-4-5-20251001")]) + "\n")
    root = str(tmp_path / "projects")
    assert main(["daily", "--path", root, "--json", "--no-cache", "-z", "UTC"]) == 0
    days = {d["date"]: d for d in json.loads(capsys.readouterr().out)["daily"]}
    assert [days[d]["unpriced_modifiers"] for d in sorted(days)] == [["speed=fast"], ["inference_geo=us"], []]
    assert days["2026-03-01"]["models"][0]["unpriced_modifiers"] == ["speed=fast"]
    assert days["2026-03-01"]["unpriced_calls"] == 0 and days["2026-03-01"]["cost_usd"] > 0
    for command, key in (("monthly", "monthly"), ("session", "session")):
        assert main([command, "--path", root, "--json", "--no-cache", "-z", "UTC"]) == 0
        (row,) = json.loads(capsys.readouterr().out)[key]
        assert row["unpriced_modifiers"] == ["inference_geo=us", "speed=fast"]
    assert main(["daily", "--path", root, "--no-cache", "-z", "UTC"]) == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert "modifier not priced, those calls at the standard rates: inference_geo=us (1), speed=fast (1)" in flat
    assert main(["blocks", "--path", root, "--no-cache", "-z", "UTC"]) == 0
    assert "modifier not priced, those calls at the standard rates: inference_geo=us (1), speed=fast (1)" in " ".join(
        capsys.readouterr().out.split())
    assert main(["report", "--path", root, "--json", "--no-cache"]) == 0
    models = {m["model"]: m["unpriced_modifiers"] for m in json.loads(capsys.readouterr().out)["models"]}
    assert sorted(models.values()) == [[], ["inference_geo=us"], ["speed=fast"]]  # (the fast calls: a label of their own)
