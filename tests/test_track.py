"""nomira.track(): priced, validated, stored or spooled to a collector; never raises into the caller."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nomira
from nomira.ledger import store
from nomira.integrations import tracking
from nomira.pricing.engine import Pricer
from nomira.pricing.feed import resolved
from nomira.ledger.wire import from_wire

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_tracking(tmp_path, monkeypatch):
    monkeypatch.setenv("NOMIRA_DB", str(tmp_path / "apps.db"))
    monkeypatch.delenv("NOMIRA_REMOTE", raising=False)
    monkeypatch.delenv("NOMIRA_TOKEN", raising=False)
    tracking.reset()
    yield
    tracking.reset()


def test_track_prices_and_stores_locally(tmp_path, stored_events):
    usage = {"input_tokens": 12, "output_tokens": 340, "cache_read_input_tokens": 9000,
             "cache_creation_input_tokens": 700,
             "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 500}}
    event = nomira.track("anthropic", "claude-sonnet-4-5", usage, developer="ana", feature="search",
                         message_id="msg_01abc")
    assert event is not None
    rows = stored_events(tmp_path / "apps.db")
    assert len(rows) == 1 and rows[0] == event
    assert rows[0]["tokens"] == {"input": 12, "output": 340, "cache_read": 9000, "cache_write_5m": 200,
                                 "cache_write_1h": 500, "reasoning": 0}
    expected = Pricer(resolved())(from_wire(event)).total_usd
    assert rows[0]["cost_usd"] == pytest.approx(expected) and expected > 0
    assert rows[0]["tags"]["developer"] == "ana" and rows[0]["tags"]["feature"] == "search"
    assert (rows[0]["source"], rows[0]["regime"], rows[0]["message_id"]) == ("sdk", "api", "msg_01abc")
    assert tracking.stats()["tracked"] == 1


def test_two_identical_calls_are_two_events(tmp_path):
    for _ in range(2):
        nomira.track("openai", "gpt-5", {"prompt_tokens": 10, "completion_tokens": 2})
    tracking.flush(10)
    db = store.open_db(tmp_path / "apps.db")
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2


def test_token_counts_and_unknown_model_unpriced(tmp_path):
    event = nomira.track("acme", "acme-llm-9", {"input": 100, "output": 5, "cache_read": 50})
    assert event["tokens"]["input"] == 100 and event["tokens"]["cache_read"] == 50
    assert event["cost_usd"] is None and event["provider"] == "acme"


def test_content_is_refused_counted_and_logged_never_raised(tmp_path, isolated_env, stored_events):
    assert nomira.track("openai", "gpt-5", {"prompt_tokens": 1}, prompt="tell me a secret") is None
    assert nomira.track("openai", "gpt-5", object()) is not None  # no usage: a zero event, not a crash
    assert nomira.track("openai", "gpt-5", {"prompt_tokens": 1}, project="/home/ana/src/shop") is None
    assert tracking.stats()["errors"] == 2
    text = (isolated_env / ".local/state/nomira/track.log").read_text()
    assert "tags.prompt" in text and "tags.project" in text and "secret" not in text
    assert len(stored_events(tmp_path / "apps.db")) == 1


def test_store_failure_is_swallowed(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("NOMIRA_DB", str(blocker / "sub" / "x.db"))  # a parent that is a file
    assert nomira.track("openai", "gpt-5", {"prompt_tokens": 1}) is not None  # queued; the writer fails
    assert nomira.track("openai", "gpt-5", {"prompt_tokens": 2}) is not None
    assert tracking.flush(10)["errors"] == 2


def test_remote_goes_through_the_spool_to_a_collector(tmp_path, monkeypatch, isolated_env, collector):
    url, collector_db = collector
    monkeypatch.setenv("NOMIRA_REMOTE", url)
    event = nomira.track("openai", "gpt-5", {"prompt_tokens": 2006, "completion_tokens": 300,
                                              "prompt_tokens_details": {"cached_tokens": 1920}},
                         developer="ana", message_id="chatcmpl-1")
    s = tracking.flush(10)
    assert s["delivered"] == 1 and s["errors"] == 0
    db = store.open_db(collector_db)
    assert db.execute("SELECT message_id, input, cache_read, cost_usd FROM events").fetchall() == [
        ("chatcmpl-1", 86, 1920, pytest.approx(event["cost_usd"]))]
    assert not list((isolated_env / ".local/state/nomira/spool/pending").glob("batch-*"))
    assert not (tmp_path / "apps.db").exists()


def test_remote_down_keeps_the_event_durable(monkeypatch, isolated_env):
    monkeypatch.setenv("NOMIRA_REMOTE", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setitem(tracking.FLUSH_OPTIONS, "base_delay", 0.0)
    assert nomira.track("openai", "gpt-5", {"prompt_tokens": 5}) is not None
    s = tracking.flush(10)
    assert s["delivered"] == 0 and s["errors"] >= 1 and s["pending_batches"] == 1
    assert len(list((isolated_env / ".local/state/nomira/spool/pending").glob("batch-*"))) == 1


def test_import_nomira_stays_cheap():
    code = "import sys, nomira; print(sorted(m for m in sys.modules if m.startswith('nomira')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout
    assert out.strip() == "['nomira']"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_tracks_with_its_own_writer(tmp_path, stored_events):
    assert nomira.track("openai", "gpt-5", {"prompt_tokens": 1}, message_id="parent") is not None
    tracking.flush(10)
    pid = os.fork()
    if pid == 0:  # child: a pre-fork server's worker
        ok = nomira.track("openai", "gpt-5", {"prompt_tokens": 2}, message_id="child") is not None
        os._exit(0 if ok and tracking.flush(10)["errors"] == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [e["message_id"] for e in stored_events(tmp_path / "apps.db")] == ["parent", "child"]
