"""Real outputs validate against docs/schemas/; money carries integer micro-dollars beside dollars."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jsonschema_lite import errors, load, validate
from nomira.ledger import wire
from nomira.reports.money import micros, with_micros

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
PATHS = ["--path", str(FIXTURES / "claude"), "--path", str(FIXTURES / "codex")]


def cli(*argv, env_home):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **{k: str(env_home / k) for k in
                                                     ("XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME")}}
    r = subprocess.run([sys.executable, "-m", "nomira", *argv], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def test_micros_rule():
    assert micros(0.0285) == 28500 and micros(1.5) == 1_500_000 and micros(None) is None
    assert micros(0.0000005) == 0 and micros(0.0000015) == 2  # halves to even
    # float-addition noise either side of a half micro-dollar gives one integer (summation order)
    assert micros(31.4007915 + 1e-14) == micros(31.4007915 - 1e-14) == 31400792
    doc = with_micros({"cost_usd": 1.25, "x": [{"budget_usd": None}], "cost_by_type_usd": {"input": 0.5},
                       "usd_per_call": 3.0})
    assert doc["cost_micro_usd"] == 1_250_000 and doc["x"][0]["budget_micro_usd"] is None
    assert doc["cost_by_type_micro_usd"] == {"input": 500_000} and "usd_per_call_micro" not in json.dumps(doc)
    assert with_micros(dict(doc)) == doc  # idempotent: no *_micro_micro_usd


def test_report_json_validates_and_micros_match(tmp_path):
    doc = json.loads(cli("report", "--json", *PATHS, env_home=tmp_path))
    validate(doc, "report.schema.json")
    assert list(doc)[0] == "schema_version" and doc["schema_version"] == 1
    for row in [doc["totals"], *doc["models"], *doc["sessions"]]:
        assert row["cost_micro_usd"] == micros(row["cost_usd"]) and abs(row["cost_micro_usd"] - row["cost_usd"] * 1e6) <= 0.5
        assert row["cost_by_type_micro_usd"] == {k: micros(v) for k, v in row["cost_by_type_usd"].items()}
    assert doc["totals"]["cost_micro_usd"] > 0
    # a break of the contract is caught: a removed key, a dollar figure turned into a string
    broken = dict(doc, totals={k: v for k, v in doc["totals"].items() if k != "cost_micro_usd"})
    assert errors(broken, load("report.schema.json"), load("report.schema.json"))
    broken = dict(doc, totals=dict(doc["totals"], cost_usd="1.00"))
    assert errors(broken, load("report.schema.json"), load("report.schema.json"))


@pytest.mark.parametrize("argv", [["daily"], ["monthly"], ["session"], ["blocks"], ["report", "--compare"]])
def test_other_report_outputs_carry_schema_version_and_micros(tmp_path, argv):
    doc = json.loads(cli(*argv, "--json", *PATHS, env_home=tmp_path))
    assert doc["schema_version"] == 1
    text = json.dumps(doc)
    assert text.count('_usd"') >= 2 * text.count('_micro_usd"') > 0


def test_export_events_validate(tmp_path):
    out = tmp_path / "events.json"
    cli("export", str(out), *PATHS, env_home=tmp_path)
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 1 and doc["events"]
    for e in doc["events"]:
        validate(e, "event.schema.json")
    validate({"events": doc["events"][:3]}, "usage-events-request.schema.json")
    validate(doc["events"][0], "usage-events-request.schema.json")
    assert errors(dict(doc["events"][0], prompt="hi"), load("event.schema.json"), load("event.schema.json"))


def test_event_schema_is_the_wire_allowlist():
    schema = load("event.schema.json")
    assert set(schema["properties"]) == set(wire.TOP_FIELDS)
    assert schema["required"] == list(wire.REQUIRED)
    assert set(schema["properties"]["tags"]["properties"]) == set(wire.WIRE_TAGS)
    assert set(schema["properties"]["tokens"]["properties"]) == set(wire.TOKEN_FIELDS)
    assert set(schema["properties"]["allowance"]["properties"]) == set(wire.ALLOWANCE_FIELDS)


def test_usage_events_answers_validate(tmp_path):
    from nomira.commands.serve import make_app
    from test_collector import Client, ev
    from wsgiref.simple_server import make_server
    import threading
    app = make_app(tmp_path / "c.db", "127.0.0.1")
    httpd = make_server("127.0.0.1", 0, app)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        c = Client(f"http://127.0.0.1:{httpd.server_port}")
        batch = {"events": [ev(1), ev(2)]}
        validate(batch, "usage-events-request.schema.json")
        status, body = c.post("/v1/usage/events", batch)
        assert status == 200
        validate(body, "usage-events-response.schema.json")
        status, body = c.post("/v1/usage/events", ev(3))
        assert status == 200 and body["schema_version"] == 1
        validate(body, "usage-events-response.schema.json")
        status, text = c.get("/index.json?period=all")
        page = json.loads(text)
        assert page["schema_version"] == 1 and page["kpis"]["value_micro_usd"] == micros(page["kpis"]["value_usd"])
    finally:
        httpd.shutdown()
        httpd.server_close()
