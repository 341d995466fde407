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
