"""Muse Code session.jsonl: model_completed events, cached tokens taken out of input, reasoning inside output;
sub-agent transcripts read on their own and the parent's child-usage aggregates not counted; a replayed event and a
copied session count once; Meta's models unpriced, never guessed."""
import shutil
from datetime import datetime, timezone

import pytest

from conftest import FIXTURES
from nomira.sources import muse
from nomira.sources.registry import collect

MU = FIXTURES / "muse"
SID = "01a0b7d1-b7af-7de2-8369-4f4815ae1d72"
GPT5 = ((12000 - 8000) * 1.25 + 900 * 10 + 8000 * 0.125) / 1e6  # gpt-5: 1.25 / 10 / 0.125 read (bundled table)


def at(micros):
    return datetime.fromtimestamp(micros / 1e6, timezone.utc).isoformat()


def test_totals_by_hand(run_json):
    c = collect(("muse",), [MU])
    got = sorted((e.occurred_at.isoformat(), e.session_id[-4:], e.model, e.provider, e.project, e.tokens.input,
                  e.tokens.output, e.tokens.cache_read, e.tokens.reasoning, e.tokens.reported_input) for e in c.events)
    assert got == [
        (at(1789790455896395), "1d72", "muse-spark-1.3-contributor", "meta", "atlas", 26964 - 5105, 379, 5105, 278,
         26964),
        (at(1789790470250000), "8293", "muse-spark-1.3", "other", "unknown", 1847 - 1792, 98, 1792, 0, 1847),  # sub-agent
        (at(1789790522500000), "1d72", "gpt-5", "openai", "atlas", 12000 - 8000, 900, 8000, 400, 12000)]
    assert c.stats.malformed == 1  # the cut event
    assert c.stats.skipped["duplicate_call"] == 1  # the replayed event
    r = run_json("--path", MU)
    assert r["sources"] == ["muse"] and r["totals"]["calls"] == 3
    assert r["totals"]["cost_usd"] == pytest.approx(GPT5, abs=1e-12)
    assert sorted(m["model"] for m in r["models"] if not m["priced"]) == ["muse-spark-1.3", "muse-spark-1.3-contributor"]


def test_default_locations_and_copy_counts_once(isolated_env, monkeypatch, tmp_path):
    assert muse.default_paths() == []
    shutil.copytree(MU / "sessions", isolated_env / ".local" / "share" / "muse" / "sessions")
    assert muse.default_paths() == [isolated_env / ".local" / "share" / "muse" / "sessions"]  # XDG_DATA_HOME's
    assert len(collect(("muse",)).events) == 3
    monkeypatch.delenv("XDG_DATA_HOME")
    assert muse.default_paths() == [isolated_env / ".local" / "share" / "muse" / "sessions"]
    shutil.copytree(MU / "sessions", tmp_path / "copy")
    monkeypatch.setenv("MUSE_SESSIONS_DIR", f"{isolated_env / '.local' / 'share' / 'muse' / 'sessions'},{tmp_path / 'copy'}")
    c = collect(("muse",))
    assert len(c.events) == 3 and c.stats.skipped["duplicate_call"] == 1 + 4


def test_appended_events_resume_with_the_sessions_metadata(tmp_path):
    src = MU / "sessions" / "2026" / "09" / "18" / SID / "session.jsonl"
    data = src.read_bytes()
    cut = data.index(b'"sequence":291')
    cut = data.rindex(b"\n", 0, cut) + 1
    live = tmp_path / "muse" / "sessions" / SID / "session.jsonl"
    live.parent.mkdir(parents=True)
    live.write_bytes(data[:cut])
    recs, state, end, _ = muse.scan_file(live)
    live.write_bytes(data)
    more, _state, _end, _ = muse.scan_file(live, end, state)
    assert recs + more == muse.scan_file(src)[0]
    assert [(r[3], r[4]) for r in more] == [("gpt-5", "openai")]  # the model switch read before the cut
