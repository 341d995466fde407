"""Fuzzing /ingest and /v1/usage/events in-process (issue 11): never a 5xx, never a row outside the allowlist."""
import io
import json
import random
from datetime import datetime, timedelta, timezone
from wsgiref.util import setup_testing_defaults

import pytest

from nomira.ledger import store
from nomira.commands.serve import make_app
from nomira.ledger.wire import (ALLOWANCE_FIELDS, ID_FIELDS, MAX_COUNT, TAG_FIELDS, TOKEN_FIELDS, TOP_FIELDS, SchemaError,
                         assert_no_content)

MODELS = ["claude-opus-4-5-20251101", "gpt-5.1-codex", "openrouter/anthropic/claude-3.5-sonnet", "gemini-2.5-pro",
          "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-haiku-4-5-20251001", "gpt-5-codex"]
LABELS = ["shop", "-home-ana-src-shop", "billing-api", "Ana García", "prod", "checkout-v2", "acme.com"]
HOSTILE_STRINGS = ["/etc/passwd", "~/.ssh/id_rsa", "id_rsa", ".bashrc", "Q3 plan.docx", "C:\\Users\\ana\\x.txt",
                   "a\u2215b", "a\uff0fb", "x\x00y", "x\x0by", "x\x0cy", "x\x85y", "x\u2028y", "x\u2029y",
                   "\x1b[31mred\x1b[0m", "abc\u202egnp.exe", "iso\u2066late", "line\nbreak", "tab\tx", "x" * 5000,
                   "please summarise the attached contract for me", "../../secret", "\ud800", "", " "]
HOSTILE_NUMBERS = [-1, 2 ** 63 - 1, 2 ** 63, 2 ** 64, 10 ** 13, MAX_COUNT + 1, -0.5, 1.5, 1e308, True, False]
HOSTILE_STAMPS = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59Z", "3000-01-01",
                  "2019-12-31T23:59:59Z", "yesterday", "2025-02-30T00:00:00Z", "2025-11-03T14:22:07" + "9" * 100]
RAW_CONSTANTS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


def request(app, method, path, body=b"", token=None):
    """One request through the WSGI app, as wsgiref would hand it over; (status, body)."""
    env = {"REQUEST_METHOD": method, "PATH_INFO": path.split("?")[0], "QUERY_STRING": path.partition("?")[2],
           "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
           "REMOTE_ADDR": "127.0.0.1", **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {})}
    setup_testing_defaults(env)
    env["HTTP_HOST"], env["SERVER_NAME"] = "127.0.0.1:8787", "127.0.0.1"
    seen = []
    out = b"".join(app(env, lambda status, headers, exc_info=None: seen.append(status)))
    return int(seen[0].split()[0]), out


def call(app, path, body: bytes, token):
    return request(app, "POST", path, body, token)


def get(app, path, token=None):
    return request(app, "GET", path, token=token)


def valid_event(rng: random.Random, now: datetime) -> dict:
    at = now - timedelta(seconds=rng.randint(0, 400 * 86400))
    e = {"schema_version": 1, "source": rng.choice(["claude_code", "codex", "opencode"]),
         "provider": rng.choice(["anthropic", "openai", "google"]), "model": rng.choice(MODELS),
         "occurred_at": at.isoformat(), "regime": rng.choice(["api", "subscription"]),
         "tokens": {t: rng.randint(0, 200_000) for t in rng.sample(TOKEN_FIELDS, rng.randint(1, len(TOKEN_FIELDS)))},
         "cost_usd": rng.choice([None, 0, round(rng.uniform(0, 5), 6)]), "cost_source": "bundled:2026-11-24",
         "tags": {t: rng.choice(LABELS) for t in rng.sample(["developer", "project", "feature", "env"], 2)},
         "message_id": f"msg_{rng.getrandbits(64):016x}", "is_sidechain": rng.random() < 0.1}
    if rng.random() < 0.3:
        e["allowance"] = {"primary_used_percent": round(rng.uniform(0, 100), 1), "primary_window_minutes": 300}
    if rng.random() < 0.2:
        e["tags"]["tenant"] = "acme"
    return e


def hostile_value(rng: random.Random):
    kind = rng.randrange(7)
    if kind == 0:
        return rng.choice(HOSTILE_STRINGS)
    if kind == 1:
        return rng.choice(HOSTILE_NUMBERS)
    if kind == 2:
        return rng.choice([None, [], {}, [1, 2], {"a": 1}, "1", 1])
    if kind == 3:
        return rng.choice(HOSTILE_STAMPS)
    if kind == 4:
        nested = "x"
        for _ in range(rng.randint(2, 60)):
            nested = [nested] if rng.random() < 0.5 else {"k": nested}
        return nested
    if kind == 5:
        return "".join(chr(rng.choice([rng.randint(0, 0x20), rng.randint(0x7f, 0x9f), rng.randint(0x2000, 0x206f),
                                       rng.randint(0x20, 0x7e), rng.randint(0xfff0, 0xffff)])) for _ in range(8))
    return rng.choice(["rm -rf /", {"role": "user", "content": "secret plans"}, "/home/ana/src/shop/main.py"])


def targeted(rng: random.Random, field: str):
    """A hostile value of the kind `field` expects (more likely to reach deep validation) or anything."""
    if rng.random() < 0.4:
        return hostile_value(rng)
    if field == "occurred_at":
        return rng.choice(HOSTILE_STAMPS)
    if field in (*TOKEN_FIELDS, "cost_usd", *ALLOWANCE_FIELDS):
        return rng.choice([*HOSTILE_NUMBERS, 10 ** 7 + 1, -1e-9])
    return rng.choice(HOSTILE_STRINGS)


def mutate(rng: random.Random, e: dict) -> dict:
    e = json.loads(json.dumps(e))
    where = rng.randrange(7)
    if where == 0:  # a top-level field: known or not
        key = rng.choice([*TOP_FIELDS, "prompt", "content", "messages", "path", "cwd", "text"])
        e[key] = targeted(rng, key)
    elif where == 1:
        key = rng.choice([*TOKEN_FIELDS, "completion_text", "total"])
        e["tokens"][key] = targeted(rng, key)
    elif where == 2:
        e["tags"][rng.choice([*TAG_FIELDS, "prompt", "file"])] = targeted(rng, "tag")
    elif where == 3:
        e[rng.choice(ID_FIELDS)] = targeted(rng, "id")
    elif where == 4:
        key = rng.choice([*ALLOWANCE_FIELDS, "plan_type"])
        e["allowance"] = {key: targeted(rng, key)}
    elif where == 5:
        key = rng.choice(["occurred_at", "cost_usd", "model"])
        e[key] = targeted(rng, key)
    else:
        del e[rng.choice(["schema_version", "source", "provider", "model", "occurred_at", "tokens"])]
    return e


def body_for(rng: random.Random, now: datetime) -> tuple[bytes, bool]:
    """(request body, whether every event in it is valid by construction)."""
    shape = rng.random()
    if shape < 0.06:  # not the documented envelope at all
        return rng.choice([b"", b"null", b"42", b'"events"', b"{", b"\xff\xfe\x00", b'{"events": 5}',
                           b'{"events": [1, "x", null]}', b"[" * 50_000 + b"]" * 50_000,
                           b'{"events": [' + b"{" * 3000 + b"}" * 3000 + b"]}"]), False
    events = [valid_event(rng, now) for _ in range(rng.randint(1, 4))]
    clean = rng.random() < 0.35
    if not clean:
        i = rng.randrange(len(events))
        events[i] = mutate(rng, events[i])
    doc = {"events": events} if rng.random() < 0.85 else events
    text = json.dumps(doc)
    if not clean and rng.random() < 0.1:  # literals Python's json would otherwise accept
        text = text.replace('"cost_usd": ', f'"cost_usd": {rng.choice(RAW_CONSTANTS)}, "x": ', 1)
    return text.encode("utf-8", "surrogatepass"), clean


def new_app(db_path):
    """The collector as `nomira serve` builds it, bound to localhost, with one tenant key."""
    a = make_app(db_path, "127.0.0.1")
    return a, store.create_tenant(a.db, "acme")


@pytest.fixture(scope="module")
def app(tmp_path_factory):  # shared by the cases that store nothing
    return new_app(tmp_path_factory.mktemp("fuzz") / "rejects.db")


@pytest.mark.parametrize("event_over,field", [
    ({"occurred_at": "0001-01-01T00:00:00+05:00"}, "occurred_at"),
    ({"occurred_at": "9999-12-31T23:59:59-05:00"}, "occurred_at"),
    ({"tokens": {"input": 2 ** 63}}, "tokens.input"),
    ({"tokens": {"input": 2 ** 63 - 1}}, "tokens.input"),
    ({"cost_usd": -5.0}, "cost_usd"),
    ({"model": "/home/ana/.ssh/id_rsa"}, "model"),
    ({"session_id": "what the user typed"}, "session_id"),
    ({"tags": {"project": "evil\u202etxt.exe"}}, "tags.project"),
])
def test_bad_values_are_400_naming_the_field(app, event_over, field):
    a, key = app
    e = dict(valid_event(random.Random(1), datetime.now(timezone.utc)), **event_over)
    for path in ("/ingest", "/v1/usage/events"):
        status, out = call(a, path, json.dumps({"events": [e]}).encode(), key)
        assert status == 400 and json.loads(out)["field"] == f"events[0].{field}"


@pytest.mark.parametrize("raw", [b'{"events": [{"cost_usd": NaN}]}', b'{"events": [{"cost_usd": Infinity}]}',
                                 b"[" * 100_000 + b"]" * 100_000, b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b"}"],
                         ids=["nan", "infinity", "nested-100k", "nested-in-events"])
def test_nan_literals_and_deep_nesting_are_400(app, raw):
    a, key = app
    status, out = call(a, "/ingest", raw, key)
    assert status == 400 and json.loads(out)["status"] == "error"


def test_fuzz_ingest_never_5xx_never_a_row_outside_the_allowlist(store_target):
    a, key = new_app(store_target)
    rng = random.Random(20261202)
    now = datetime.now(timezone.utc)
    statuses, accepted = {}, 0
    for i in range(1500):
        body, clean = body_for(rng, now)
        status, out = call(a, "/ingest" if i % 2 else "/v1/usage/events", body, key)
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, (status, out[:300], body[:300])
        if clean:
            assert status == 200, (out[:300], body[:300])
        if status == 200:
            accepted += json.loads(out)["accepted"]
        else:
            assert json.loads(out)["status"] == "error"
    assert statuses.get(200, 0) > 400 and statuses.get(400, 0) > 400  # both paths really exercised
    db = a.db
    cols = {d[0] for d in db.execute("SELECT * FROM events LIMIT 0").description}
    assert cols == set(store.EVENT_COLUMNS)
    bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM raw_events")]
    assert bodies and len(db.execute("SELECT dedup_key FROM events").fetchall()) == accepted
    for e in bodies:  # every stored event is one the schema accepts, as stored
        assert_no_content(e, now=now)
        assert e["tags"].get("tenant") == "acme"  # the key's tenant, forced
    low, high = "2020-01-01", (now + timedelta(days=1)).isoformat()
    assert db.execute(f"SELECT COUNT(*) FROM events WHERE occurred_at < ? OR occurred_at > ? OR cost_usd < 0 OR "
                      f"{' OR '.join(f'{t} < 0 OR {t} > {MAX_COUNT}' for t in TOKEN_FIELDS)}",
                      (low, high)).fetchone() == (0,)
    assert get(a, "/healthz")[0] == 200
    status, out = get(a, "/api/summary?period=all", key)
    assert status == 200 and json.loads(out)["kpis"]["calls"] == accepted


def test_schema_rejects_surrogates():
    with pytest.raises(SchemaError):
        assert_no_content(dict(valid_event(random.Random(2), datetime.now(timezone.utc)),
                               tags={"project": "x\ud800"}))
