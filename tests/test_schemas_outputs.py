"""Every command's `--json` output validates against its schema in docs/schemas/ (issue 28).

In-process runs on the small fixtures (and the pinned demo history where the fixtures leave a list
empty); each schema also rejects a wrong document, so the check can fail."""
import copy
import json

import pytest

from jsonschema_lite import errors, load, validate
from nomira.reports.money import micros

from conftest import FIXTURES

PATHS = ["--path", str(FIXTURES / "claude"), "--path", str(FIXTURES / "codex")]
DEMO_NOW = "2026-12-04T15:00:00Z"  # tools/demo_env.py's pinned end of the demo history


@pytest.fixture
def out(capsys):
    from nomira.cli import main

    def run(*argv, status=0):
        capsys.readouterr()
        rc = main([*map(str, argv)])
        text = capsys.readouterr().out
        assert rc == status, text
        return json.loads(text)
    return run


@pytest.fixture(autouse=True)
def release():
    """main() turns the cyclic collector off; collect after each test so the stores and caches the
    in-process commands opened are closed, not left as open descriptors for later tests."""
    yield
    import gc
    gc.collect()


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setenv("NOMIRA_DEMO_NOW", DEMO_NOW)
    monkeypatch.setenv("TZ", "UTC")


def rejects(doc, name):
    schema = load(name)
    return bool(errors(doc, schema, schema))


def micros_match(obj):
    """Every *_micro_usd integer is its *_usd decimal by money.micros, at any depth."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k.endswith("_micro_usd") and isinstance(v, (int, type(None))):
                assert v == micros(obj[k[:-len("_micro_usd")] + "_usd"]), k
            micros_match(v)
    elif isinstance(obj, list):
        for x in obj:
            micros_match(x)


REPORTS = [(["daily"], "daily.schema.json", "daily"), (["monthly"], "monthly.schema.json", "monthly"),
           (["session"], "session.schema.json", "session"), (["blocks"], "blocks.schema.json", "blocks"),
           (["--compare"], "compare.schema.json", "rows"), (["optimize"], "optimize.schema.json", "tools"),
           (["forensics"], "forensics.schema.json", "cache_rebuilds")]


@pytest.mark.parametrize("argv,schema,key", REPORTS, ids=[r[1].split(".")[0] for r in REPORTS])
@pytest.mark.parametrize("source", ["fixtures", "demo"])
def test_report_outputs_validate(out, demo, argv, schema, key, source):
    doc = out(*argv, "--json", *(PATHS if source == "fixtures" else ["--demo"]))
    validate(doc, schema)
    assert list(doc)[0] == "schema_version" and doc[key]
    micros_match(doc)
    # a break of the contract is caught: a required key removed, a dollar figure as a string
    broken = copy.deepcopy(doc)
    del broken[key]
    assert rejects(broken, schema)
    broken = dict(doc, schema_version="1")
    assert rejects(broken, schema)


def test_money_as_string_is_rejected(out):
    doc = out("daily", "--json", *PATHS)
    doc["daily"][0]["models"][0]["cost_micro_usd"] = "1425"
    assert rejects(doc, "daily.schema.json")
    doc = out("optimize", "--json", *PATHS)
    doc["tools"][0]["cost_micro_usd"] = 1.5
    assert rejects(doc, "optimize.schema.json")


def test_limits_sources_doctor_prices_spool_validate(out):
    doc = out("limits", "--json", *PATHS)
    validate(doc, "limits.schema.json")
    assert doc["limits"] and doc["limits"][0]["agent"] == "codex"
    assert rejects(dict(doc, limits=[dict(doc["limits"][0], used_percent="25%")]), "limits.schema.json")
    doc = out("sources", "--json")
    validate(doc, "sources.schema.json")
    assert rejects(dict(doc, extra=1), "sources.schema.json")  # a closed document
    doc = out("doctor", "--json", *PATHS)
    validate(doc, "doctor.schema.json")
    assert rejects(dict(doc, checks=[dict(doc["checks"][0], status="green")]), "doctor.schema.json")
    for argv in (["prices"], ["prices", "claude-sonnet-4-5"], ["prices", "no-such-model-x"]):
        validate(out(*argv, "--json"), "prices.schema.json")
    assert rejects({"schema_version": 1}, "prices.schema.json")
    doc = out("spool", "status", "--json")
    validate(doc, "spool-status.schema.json")
    assert rejects({k: v for k, v in doc.items() if k != "pending_events"}, "spool-status.schema.json")


def test_budget_outputs_validate(out):
    assert out("budget", "list", "--json") == {"schema_version": 1, "budgets": [], "alerts": []}
    from nomira.cli import main
    assert main(["budget", "set", "all-month", "--usd", "0.01", "--window", "month"]) == 0
    assert main(["budget", "set", "shop-day", "--project", "shop", "--usd", "5", "--window", "day"]) == 0
    for action in ("list", "check"):
        doc = out("budget", action, "--json", *PATHS)
        validate(doc, "budget.schema.json")
        assert len(doc["budgets"]) == 2
        micros_match(doc)
    assert rejects(dict(doc, budgets=[dict(doc["budgets"][0], spent_micro_usd=0.5)]), "budget.schema.json")


def test_reconcile_report_validates(out, tmp_path):
    from nomira.cli import main
    from nomira.ledger import store
    from test_reconcile import ev
    doc = out("reconcile", "report", "--json", "--db", tmp_path / "empty.db")
    validate(doc, "reconcile-report.schema.json")
    db = store.open_db(tmp_path / "r.db")
    store.ingest(db, [ev(1, "2026-11-03", 1.0), ev(2, "2026-11-03", 2.0), ev(3, "2026-11-04", 0.5)])
    db.close()
    bill = tmp_path / "bill.csv"
    bill.write_text("date,model,cost\n2026-11-03,claude-opus-4-7,3.00\n2026-11-04,claude-opus-4-7,0.90\n")
    assert main(["reconcile", "import", str(bill), "--db", str(tmp_path / "r.db")]) == 0
    doc = out("reconcile", "report", "--json", "--db", tmp_path / "r.db")
    validate(doc, "reconcile-report.schema.json")
    assert doc["daily"] and doc["totals"]["reconciled_micro_usd"] > 0
    micros_match(doc)
    assert rejects(dict(doc, totals={}), "reconcile-report.schema.json")


def test_export_document_validates(capsys, tmp_path):
    from nomira.cli import main
    assert main(["export", str(tmp_path / "events.json"), *PATHS]) == 0
    doc = json.loads((tmp_path / "events.json").read_text())
    validate(doc, "export.schema.json")
    assert doc["events"]
    assert rejects(dict(doc, events=[dict(doc["events"][0], prompt="hi")]), "export.schema.json")
    assert rejects(dict(doc, exported_at=None), "export.schema.json")


def test_every_schema_is_listed_and_loads():
    from jsonschema_lite import SCHEMAS
    readme = (SCHEMAS / "README.md").read_text()
    names = sorted(p.name for p in SCHEMAS.glob("*.schema.json"))
    assert len(names) >= 20
    for name in names:
        assert f"[{name}]({name})" in readme, name
        assert load(name)["$id"].endswith("/" + name)


def test_forensics_session_turns_validate(out):
    doc = out("forensics", "--json", "--session", "3f9a", *PATHS)
    validate(doc, "forensics-session.schema.json")
    assert doc["turns"] and list(doc)[0] == "schema_version"
    micros_match(doc)
    assert rejects(dict(doc, turns=[dict(doc["turns"][0], tokens=None)]), "forensics-session.schema.json")


def test_ship_import_prune_validate(out, tmp_path):
    db = tmp_path / "s.db"
    doc = out("ship", "--json", "--db", db, *PATHS)
    validate(doc, "ship.schema.json")
    assert doc["accepted"] > 0 and list(doc)[0] == "schema_version"
    assert rejects({k: v for k, v in doc.items() if k not in ("accepted", "deduped")}, "ship.schema.json")
    assert main_export(tmp_path / "events.json") == 0
    doc = out("import", tmp_path / "events.json", "--json", "--db", db)
    validate(doc, "import.schema.json")
    assert doc["accepted"] == 0 and doc["deduped"] > 0
    assert rejects(dict(doc, accepted=-1), "import.schema.json")
    doc = out("prune", "--json", "--db", db)
    validate(doc, "prune.schema.json")
    assert rejects(dict(doc, dry_run="no"), "prune.schema.json")
    doc = out("replay", "--json", "--db", db)
    validate(doc, "replay.schema.json")
    assert doc["replayed"] > 0
    assert rejects({k: v for k, v in doc.items() if k != "replayed"}, "replay.schema.json")


def main_export(path):
    from nomira.cli import main
    return main(["export", str(path), *PATHS])


def test_ship_to_a_collector_validates(out, tmp_path):
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from nomira.commands.serve import make_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass
    httpd = make_server("127.0.0.1", 0, make_app(tmp_path / "c.db", "127.0.0.1"), handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        doc = out("ship", "--json", "--remote", f"http://127.0.0.1:{httpd.server_port}", *PATHS)
    finally:
        httpd.shutdown()
        httpd.server_close()
    validate(doc, "ship.schema.json")
    assert doc["delivered"] > 0 and doc["error"] is None
    assert rejects(dict(doc, delivered="5"), "ship.schema.json")


def test_hooks_outputs_validate(out, isolated_env):
    db = isolated_env / "h.db"
    for argv in (["status"], ["install", "--db", db], ["status"], ["uninstall"]):
        doc = out("hooks", *argv, "--json")
        validate(doc, "hooks.schema.json")
        assert list(doc)[0] == "schema_version" and len(doc["agents"]) == 3
    assert doc["action"] == "uninstall" and all(a["changed"] for a in doc["agents"])
    assert rejects(dict(doc, agents=[{"agent": "claude", "path": "x"}]), "hooks.schema.json")
    assert rejects(dict(doc, action="remove"), "hooks.schema.json")


def test_tenant_and_migrate_outputs_validate(out, tmp_path):
    db = tmp_path / "t.db"
    doc = out("tenant", "create", "acme", "--json", "--db", db)
    validate(doc, "tenant-create.schema.json")
    assert list(doc)[0] == "schema_version" and doc["tenant"] == "acme"
    assert rejects(dict(doc, api_key=None), "tenant-create.schema.json")
    rows = out("tenant", "list", "--json", "--db", db)
    validate(rows, "tenant-list.schema.json")
    assert rows[0]["name"] == "acme" and rows[0]["keys"] == 1
    assert rejects({"tenants": rows}, "tenant-list.schema.json")
    assert rejects([dict(rows[0], keys="1")], "tenant-list.schema.json")
    assert out("ship", "--json", "--db", db, *PATHS)["accepted"] > 0
    doc = out("migrate", "--json", "--from", db, "--to", tmp_path / "copy.db")
    validate(doc, "migrate.schema.json")
    assert doc["verified"] is True and doc["copied"]["events"] > 0 and doc["copied"]["tenants"] == 1
    micros_match(doc)
    assert rejects(dict(doc, verified="yes"), "migrate.schema.json")
    assert rejects({k: v for k, v in doc.items() if k != "copied"}, "migrate.schema.json")


def test_cursor_fetch_validates(out, tmp_path, monkeypatch):
    from test_cursor import FakeCursor, KEY
    from nomira.sources import cursor_admin as ca
    fake = FakeCursor()  # the fake Cursor Admin API on loopback
    monkeypatch.setenv("NOMIRA_CURSOR_ADMIN_KEY", KEY)
    monkeypatch.setenv("NOMIRA_CURSOR_API", fake.url)
    monkeypatch.setattr(ca, "PAGE_SIZE", 2)
    try:
        doc = out("cursor", "fetch", "--from", "2025-06-25", "--to", "2025-06-27", "--json", "--db", tmp_path / "c.db")
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()
    validate(doc, "cursor-fetch.schema.json")
    assert list(doc)[0] == "schema_version" and doc["accepted"] == 5 and doc["cursor"]["pages"] == 3
    split = doc["cursor"]["cost_by_type_estimated"]
    assert split["gpt-5"]["by_type_usd"] and split["cursor/claude-4-opus"]["by_type_usd"] is None
    micros_match(doc)
    assert rejects(dict(doc, cursor=dict(doc["cursor"], window={"from": "25 June"})), "cursor-fetch.schema.json")
    assert rejects({k: v for k, v in doc.items() if k != "new_events"}, "cursor-fetch.schema.json")  # the ship part


def test_reconcile_import_validates(out, tmp_path):
    bill = tmp_path / "bill.csv"
    bill.write_text("date,model,cost\n2026-11-03,claude-opus-4-7,3.00\nbad,row\n2026-11-04,claude-opus-4-7,0.90\n")
    for inserted in (2, 0):  # a second import of the same lines replaces them
        doc = out("reconcile", "import", bill, "--json", "--db", tmp_path / "r.db")
        validate(doc, "reconcile-import.schema.json")
        assert list(doc)[0] == "schema_version" and doc["inserted"] == inserted and doc["garbage"] == 1
    assert doc["replaced"] == 2 and doc["source"] == "import:bill.csv"
    assert rejects(dict(doc, garbage_samples="bill.csv:3"), "reconcile-import.schema.json")
    assert rejects({k: v for k, v in doc.items() if k != "import_id"}, "reconcile-import.schema.json")


def test_spool_drop_retry_validate(out):
    for argv, schema in ((["drop"], "spool-drop"), (["drop", "--pending"], "spool-drop"), (["retry"], "spool-retry"),
                         (["retry", "--remote", "http://127.0.0.1:9"], "spool-retry")):
        doc = out("spool", *argv, "--json")
        validate(doc, f"{schema}.schema.json")
        assert list(doc)[0] == "schema_version"
    assert doc["delivered"] == 0 and doc["error"] is None  # nothing queued: nothing sent
    assert rejects(dict(doc, requeued=-1), "spool-retry.schema.json")
    assert rejects({"schema_version": 1, "dropped_dead_letters": 0, "dropped": 3}, "spool-drop.schema.json")


def test_capture_summary_validates(capsys, tmp_path):
    import sys
    from nomira.cli import main
    from test_capture import FAKES
    fake = [sys.executable, str(FAKES / "fake_claude.py"), "-p", "fix it", "--output-format", "json"]
    docs = []
    for argv in (fake, [sys.executable, "-c", "pass"]):  # usage found; none found
        capsys.readouterr()
        assert main(["capture", "--db", str(tmp_path / "c.db"), "--json", "--", *argv]) == 0
        docs.append(json.loads(capsys.readouterr().err.strip().splitlines()[-1]))
        validate(docs[-1], "capture.schema.json")
        assert list(docs[-1])[0] == "schema_version"
    found, none = docs
    assert found["events"] == 2 and found["delivery"]["accepted"] == 2 and found["tokens"]["cache_write_1h"] == 316
    assert none["events"] == 0 and none["delivery"] is None
    assert rejects(dict(found, delivery={"accepted": 2}), "capture.schema.json")
    assert rejects(dict(found, tokens=dict(found["tokens"], input="2828")), "capture.schema.json")
