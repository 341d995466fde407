"""`nomira cursor fetch` against a fake Cursor Admin API on loopback: pagination, auth, rate limits,
server errors, token-based and request-priced rows, unknown models; events equal what is expected."""
import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nomira.ledger import store
from nomira.cli import main
from nomira.sources import cursor_admin as ca

KEY = "key_0123456789abcdef"
DEV, SAM = "developer@company.com", "sam@company.com"
# Rows in the Admin API's shape (docs.cursor.com admin-api example, plus the newer kind/chargedCents
# fields and counts sent as numeric strings, as some responses do).
ROWS = [
    {"timestamp": "1750979225854", "model": "claude-4-opus", "kindLabel": "Usage-based", "maxMode": True,
     "requestsCosts": 5, "isTokenBasedCall": True,
     "tokenUsage": {"inputTokens": 126, "outputTokens": 450, "cacheWriteTokens": 6112, "cacheReadTokens": 11964,
                    "totalCents": 20.18232}, "isFreeBugbot": False, "userEmail": DEV},
    {"timestamp": "1750979173824", "model": "claude-4-opus", "kindLabel": "Usage-based", "maxMode": True,
     "requestsCosts": 10, "isTokenBasedCall": False, "isFreeBugbot": False, "userEmail": DEV},
    {"timestamp": "1750950000000", "model": "gpt-5", "kind": "Usage-based", "isTokenBasedCall": True,
     "isChargeable": True, "chargedCents": 2.1,
     "tokenUsage": {"inputTokens": "914", "outputTokens": "120", "cacheWriteTokens": "0", "cacheReadTokens": "30000",
                    "totalCents": 1.9}, "userEmail": DEV},
    {"timestamp": "1750850000000", "model": "composer-1", "kind": "Usage-based", "isTokenBasedCall": False,
     "requestsCosts": 1, "chargedCents": 4.0, "userEmail": SAM},
    {"timestamp": "1750960000000", "model": "claude-4.5-sonnet-thinking", "kindLabel": "Included in Business",
     "isTokenBasedCall": True, "tokenUsage": {"inputTokens": 10, "outputTokens": 20, "cacheWriteTokens": 0,
                                             "cacheReadTokens": 0, "totalCents": 0.5}, "userEmail": DEV},
    {"model": "gpt-5", "kindLabel": "Usage-based", "userEmail": DEV},  # no timestamp: counted, skipped
]
DAILY = [{"date": 1750896000000, "email": DEV, "isActive": True, "chatRequests": 3, "mostUsedModel": "gpt-5"},
         {"date": 1750896000000, "email": SAM, "isActive": True, "chatRequests": 1},
         {"date": 1750809600000, "email": "x@company.com", "isActive": False}]


def expected(developer=lambda email: email):
    def ev(at, model, provider, tokens, cost, source, regime, email):
        return {"schema_version": 1, "source": "cursor", "provider": provider, "model": model, "occurred_at": at,
                "tokens": dict(zip(("input", "output", "cache_read", "cache_write_5m", "cache_write_1h",
                                    "reasoning"), (*tokens, 0, 0))),
                "cost_usd": cost, "cost_source": source, "regime": regime,
                "tags": {"developer": developer(email), "project": ""}, "session_id": "", "request_id": None,
                "is_sidechain": False, "model_is_fallback": False, "modifiers": {}}
    return [
        ev("2025-06-26T23:07:05.854000+00:00", "cursor/claude-4-opus", "anthropic", (126, 450, 11964, 6112),
           pytest.approx(0.2018232), "cursor:totalCents", "api", DEV),
        ev("2025-06-26T23:06:13.824000+00:00", "cursor/claude-4-opus", "anthropic", (0, 0, 0, 0), None,
           "cursor:request-priced", "api", DEV),
        ev("2025-06-26T15:00:00+00:00", "gpt-5", "openai", (914, 120, 30000, 0), pytest.approx(0.021),
           "cursor:chargedCents", "api", DEV),
        ev("2025-06-25T11:13:20+00:00", "cursor/composer-1", "cursor", (0, 0, 0, 0), pytest.approx(0.04),
           "cursor:request-priced:chargedCents", "api", SAM),
        ev("2025-06-26T17:46:40+00:00", "cursor/claude-4.5-sonnet-thinking", "anthropic", (10, 20, 0, 0),
           pytest.approx(0.005), "cursor:totalCents", "subscription", DEV),
    ]


class FakeCursor:
    """The two team endpoints, paginated by the request's page/pageSize; failure modes on demand."""

    def __init__(self):
        self.rows, self.daily, self.requests = list(ROWS), list(DAILY), []
        self.fail = {}  # path -> (status, body) for every request
        self.rate_limited = 0  # answer this many requests with 429 first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != "Basic " + base64.b64encode(f"{KEY}:".encode()).decode():
                    return self.reply(401, {"error": "Invalid API key"})
                if outer.rate_limited:
                    outer.rate_limited -= 1
                    return self.reply(429, {"error": "Too many requests, retry later"}, {"Retry-After": "0"})
                if self.path in outer.fail:
                    return self.reply(*outer.fail[self.path])
                if self.path == "/teams/daily-usage-data":
                    return self.reply(200, {"data": outer.daily, "period": {"startDate": body["startDate"],
                                                                           "endDate": body["endDate"]}})
                page, size = body.get("page", 1), body.get("pageSize", 10)
                chunk = outer.rows[(page - 1) * size:page * size]
                pages = max(1, -(-len(outer.rows) // size))
                return self.reply(200, {"totalUsageEventsCount": len(outer.rows), "usageEvents": chunk,
                                        "pagination": {"numPages": pages, "currentPage": page, "pageSize": size,
                                                       "hasNextPage": page < pages, "hasPreviousPage": page > 1},
                                        "period": {"startDate": body["startDate"], "endDate": body["endDate"]}})

            def reply(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def cursor(monkeypatch):
    fake = FakeCursor()
    monkeypatch.setenv("NOMIRA_CURSOR_ADMIN_KEY", KEY)
    monkeypatch.setenv("NOMIRA_CURSOR_API", fake.url)
    monkeypatch.delenv("NOMIRA_DEVELOPER_HASH_KEY", raising=False)
    monkeypatch.setattr(ca, "PAGE_SIZE", 2)
    monkeypatch.setattr(ca, "MAX_WAIT", 0.0)  # backoff without waiting
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


def fetch(capsys, *extra, rc=0):
    capsys.readouterr()
    code = main(["cursor", "fetch", "--from", "2025-06-25", "--to", "2025-06-27", "--json", *map(str, extra)])
    out, err = capsys.readouterr()
    assert code == rc, err
    return (json.loads(out) if out else None), err


def test_fetch_paginates_and_stores_expected_events(cursor, stored_events, tmp_path, capsys):
    out, _ = fetch(capsys, "--db", tmp_path / "team.db")
    events = stored_events(tmp_path / "team.db")
    assert [{k: v for k, v in e.items() if k != "message_id"} for e in events] == expected()
    assert len({e["message_id"] for e in events}) == 5
    pages = [b["page"] for p, b, _ in cursor.requests if p == "/teams/filtered-usage-events"]
    assert pages == [1, 2, 3]  # 6 rows, 2 a page, until hasNextPage is false
    s = out["cursor"]
    assert (s["rows"], s["token_rows"], s["request_priced_rows"], s["skipped_rows"]) == (6, 3, 2, 1)
    assert (s["request_priced_without_dollars"], s["request_units_without_dollars"]) == (1, 10)
    assert s["unknown_models"] == ["cursor/claude-4-opus", "cursor/claude-4.5-sonnet-thinking", "cursor/composer-1"]
    assert s["charged_usd"] == pytest.approx(0.2018232 + 0.021 + 0.04 + 0.005)
    assert (s["active_developer_days"], s["developer_days_with_events"]) == (2, 1)  # sam's event is a day early
    split = s["cost_by_type_estimated"]
    assert split["gpt-5"]["estimated"] is True
    assert sum(split["gpt-5"]["by_type_usd"].values()) == pytest.approx(0.021)
    assert split["cursor/claude-4-opus"]["by_type_usd"] is None  # unknown model: no split invented
    assert out["accepted"] == 5
    again, _ = fetch(capsys, "--db", tmp_path / "team.db")  # same window again: nothing new
    assert again["new_events"] == 0 and len(stored_events(tmp_path / "team.db")) == 5


def test_basic_auth_and_request_bodies(cursor, tmp_path, capsys):
    fetch(capsys, "--db", tmp_path / "team.db")
    path, body, auth = cursor.requests[0]
    assert auth == "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    assert body == {"startDate": 1750809600000, "endDate": 1751068800000, "page": 1, "pageSize": 2}
    assert ("/teams/daily-usage-data", {"startDate": 1750809600000, "endDate": 1751068800000}) in \
        [(p, b) for p, b, _ in cursor.requests]


def test_401_is_an_error_with_cursors_message(cursor, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NOMIRA_CURSOR_ADMIN_KEY", "key_wrong")
    _, err = fetch(capsys, "--db", tmp_path / "team.db", "--developer-from", "hash", rc=2)
    assert "HTTP 401" in err and "Invalid API key" in err and "Traceback" not in err
    assert not (tmp_path / "team.db").exists()


def test_429_backs_off_then_succeeds_or_gives_up(cursor, tmp_path, capsys):
    cursor.rate_limited = 2
    out, _ = fetch(capsys, "--db", tmp_path / "team.db")
    assert out["cursor"]["retries"] == 2 and out["accepted"] == 5
    cursor.rate_limited = 100
    _, err = fetch(capsys, "--db", tmp_path / "other.db", rc=2)
    assert f"rate limited after {ca.MAX_RETRIES + 1} tries: Too many requests, retry later" in err
    assert 100 - cursor.rate_limited == ca.MAX_RETRIES + 1  # bounded
    assert not (tmp_path / "other.db").exists()


def test_500_on_either_endpoint_is_never_an_empty_success(cursor, tmp_path, capsys):
    cursor.fail["/teams/filtered-usage-events"] = (500, {"error": {"message": "internal", "code": "internal"}})
    _, err = fetch(capsys, "--db", tmp_path / "team.db", rc=2)
    assert "HTTP 500" in err and "internal" in err
    cursor.fail = {"/teams/daily-usage-data": (500, {"message": "daily usage unavailable"})}
    _, err = fetch(capsys, "--db", tmp_path / "team.db", rc=2)
    assert "daily usage unavailable" in err and not (tmp_path / "team.db").exists()
    cursor.fail = {"/teams/filtered-usage-events": (200, {"code": "internal"})}  # an error envelope, status 200
    _, err = fetch(capsys, "--db", tmp_path / "team.db", rc=2)
    assert "no usageEvents list" in err


def test_developer_hash_with_configured_key(cursor, stored_events, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NOMIRA_DEVELOPER_HASH_KEY", "team-secret")
    fetch(capsys, "--db", tmp_path / "team.db", "--developer-from", "hash")
    digest = lambda email: "dev-" + hmac.new(b"team-secret", email.encode(), hashlib.sha256).hexdigest()[:16]  # noqa
    assert [{k: v for k, v in e.items() if k != "message_id"} for e in stored_events(tmp_path / "team.db")] == \
        expected(digest)
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("team.db*"))
    assert b"company.com" not in blob


def test_developer_hash_key_kept_per_store(cursor, stored_events, tmp_path, capsys):
    fetch(capsys, "--db", tmp_path / "a.db", "--developer-from", "hash")
    fetch(capsys, "--db", tmp_path / "a.db", "--developer-from", "name")
    tags = [e["tags"]["developer"] for e in stored_events(tmp_path / "a.db")]
    assert tags[0].startswith("dev-") and tags[5] == "developer"  # name: the local part
    db = store.open_db(tmp_path / "a.db")
    key = db.execute("SELECT value FROM settings WHERE key = 'developer_hash_key'").fetchone()[0]
    assert tags[0] == "dev-" + hmac.new(key.encode(), DEV.encode(), hashlib.sha256).hexdigest()[:16]


def test_remote_goes_through_the_spool(cursor, capsys, collector):
    url, collector_db = collector
    out, _ = fetch(capsys, "--remote", url)
    assert out["delivered"] == 5 and out["error"] is None
    db = store.open_db(collector_db)
    assert db.execute("SELECT COUNT(*), SUM(cost_usd) FROM events WHERE source = 'cursor'").fetchone() == \
        (5, pytest.approx(0.2018232 + 0.021 + 0.04 + 0.005))


def test_source_cursor_says_what_to_run_and_alias(capsys, monkeypatch):
    assert main(["--source", "cursor"]) == 2
    err = capsys.readouterr().err
    assert "no reliable per-call token counts" in err and "nomira cursor fetch" in err
    monkeypatch.delenv("NOMIRA_CURSOR_ADMIN_KEY", raising=False)
    assert main(["--cursor-fetch"]) == 2
    assert "NOMIRA_CURSOR_ADMIN_KEY" in capsys.readouterr().err
