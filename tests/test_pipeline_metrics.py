"""Pipeline health in /metrics (issue 17): dedup rate, parse-failure rate, per-source drop rate,
reconciliation delta rate, next to the ingest lag."""
import pytest

from nomira.reconcile import ledger
from test_collector import ev, server  # noqa: F401 (the collector fixture)


def series(text: str) -> dict:
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def test_metrics_pipeline_series(server):  # noqa: F811
    c, app = server()
    c.post("/ingest", {"events": [ev(1), ev(1), ev(2, source="codex")]})  # 2 new, 1 duplicate
    c.post("/ingest", {"events": [ev(3, source="codex"), dict(ev(4, source="codex"), text="x")]})  # 400: both drop
    c.call("POST", "/ingest", raw=b"{not json")  # 400
    m = series(c.get("/metrics")[1])
    for w in ("5m", "process"):  # everything happened just now: both windows agree
        assert float(m[f'nomira_ingest_dedup_rate{{window="{w}"}}']) == pytest.approx(1 / 3)
        assert float(m[f'nomira_ingest_parse_failure_rate{{window="{w}"}}']) == pytest.approx(2 / 3)
        assert float(m[f'nomira_source_drop_rate{{source="claude_code",window="{w}"}}']) == 0.0
        assert float(m[f'nomira_source_drop_rate{{source="codex",window="{w}"}}']) == pytest.approx(2 / 3)
    assert m['nomira_source_events_total{source="codex"}'] == "3"
    assert m['nomira_source_dropped_total{source="codex"}'] == "2"
    assert m["nomira_reconcile_delta_rate"] == "nan"  # no reconcile run stored yet
    assert float(m["nomira_ingest_lag_seconds"]) > 0
    # the store's view of the last 5 minutes (every process): 3 raw events, one a duplicate, received
    # long after they occurred (the fixture's calls are dated in the past)
    assert m["nomira_store_recent_raw_events"] == "3"
    assert float(m["nomira_store_recent_dedup_rate"]) == pytest.approx(1 / 3)
    assert float(m['nomira_ingest_delay_seconds{quantile="1"}']) >= float(m['nomira_ingest_delay_seconds{quantile="0.5"}']) > 0
    ledger.save_run(app.db, "*", "2025-11-01", "2025-11-30", {"built": {"windows": [
        {"billed_usd": 10.0, "estimated_usd": 9.0}, {"billed_usd": 5.0, "estimated_usd": 4.0},
        {"billed_usd": None, "estimated_usd": 3.0}]}})
    m = series(c.get("/metrics")[1])
    assert float(m["nomira_reconcile_delta_rate"]) == pytest.approx(2 / 15)


def test_windowed_counts_forget_after_five_minutes_in_bounded_memory():
    from nomira.collector.health import SLOTS, Metrics
    now = [1000.0]
    m = Metrics(clock=lambda: now[0])
    m.add(ingest_events=2, ingest_deduped=1)
    m.source([{"source": "codex"}], dropped=True)
    now[0] += 200
    m.add(ingest_events=1)
    snap = m.snapshot()
    assert snap["5m"]["ingest_events"] == 3 and snap["5m"][("dropped", "codex")] == 1
    now[0] += 150  # the first adds are 350 s old: out of the window, still in the process totals
    snap = m.snapshot()
    assert snap["5m"]["ingest_events"] == 1 and snap["5m"]["ingest_deduped"] == 0
    assert snap["5m"][("dropped", "codex")] == 0 and snap["process"][("dropped", "codex")] == 1
    assert snap["process"]["ingest_events"] == 3
    for _ in range(10_000):  # a day of steady traffic keeps at most SLOTS buckets
        now[0] += 9
        m.add(ingest_requests=1)
    assert len(m.w.slots) <= SLOTS
    assert m.snapshot()["5m"]["ingest_requests"] in (33, 34) and m.snapshot()["process"]["ingest_requests"] == 10_000
    for i in range(500):  # hostile source names: bounded labels
        m.source([{"source": f"s{i}"}], dropped=False)
    assert len(m.sources) <= 66


def test_doctor_pipeline_rates(isolated_env, capsys, monkeypatch):
    from datetime import datetime, timezone

    from nomira import dirs
    from nomira.ledger import store
    from nomira.cli import main
    from test_doctor import healthy, run
    from test_ledger import call
    healthy(isolated_env)
    _, doc = run(capsys)
    pipe = next(c for c in doc["checks"] if c["name"] == "pipeline")["data"]
    claude = next(c for c in doc["checks"] if c["name"] == "source claude")["data"]
    lines = claude["usage_lines"] + claude["malformed_lines"]
    assert claude["malformed_lines"] >= 1  # the fixtures' deliberate bad line
    assert pipe["source_drop_rate"] == {"claude": pytest.approx(claude["malformed_lines"] / lines)}
    assert pipe["parse_failure_rate"] == pytest.approx(claude["malformed_lines"] / lines)
    assert pipe["spool_depth"] == 0 and pipe["store"] is None
    db = store.open_db(dirs.default_db())
    store.ingest(db, [call(), call(), call(message_id="msg_other", occurred_at="2025-11-03T14:00:00Z")])
    ledger.save_run(db, "*", None, None, {"built": {"windows": [{"billed_usd": 4.0, "estimated_usd": 5.0}]}})
    db.close()
    before = datetime.now(timezone.utc)
    _, doc = run(capsys)
    pipe = next(c for c in doc["checks"] if c["name"] == "pipeline")["data"]
    assert pipe["dedup_rate"] == pytest.approx(1 / 3) and pipe["reconcile_delta_rate"] == pytest.approx(0.25)
    newest = datetime(2025, 11, 3, 14, 0, tzinfo=timezone.utc)  # the newest raw row's call
    after = datetime.now(timezone.utc)
    assert (before - newest).total_seconds() <= pipe["ingest_lag_seconds"] <= (after - newest).total_seconds()
    assert main(["doctor"]) == 0 and "pipeline" in capsys.readouterr().out
