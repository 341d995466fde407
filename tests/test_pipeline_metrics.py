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
    assert float(m["nomira_ingest_dedup_rate"]) == pytest.approx(1 / 3)
    assert float(m["nomira_ingest_parse_failure_rate"]) == pytest.approx(2 / 3)
    assert float(m['nomira_source_drop_rate{source="claude_code"}']) == 0.0
    assert float(m['nomira_source_drop_rate{source="codex"}']) == pytest.approx(2 / 3)
    assert m["nomira_reconcile_delta_rate"] == "nan"  # no reconcile run stored yet
    assert float(m["nomira_ingest_lag_seconds"]) > 0
    ledger.save_run(app.db, "*", "2025-11-01", "2025-11-30", {"built": {"windows": [
        {"billed_usd": 10.0, "estimated_usd": 9.0}, {"billed_usd": 5.0, "estimated_usd": 4.0},
        {"billed_usd": None, "estimated_usd": 3.0}]}})
    m = series(c.get("/metrics")[1])
    assert float(m["nomira_reconcile_delta_rate"]) == pytest.approx(2 / 15)


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
