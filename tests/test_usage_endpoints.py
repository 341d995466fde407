"""The agents' usage endpoints against a fake server on 127.0.0.1 (responses in the shapes the real
endpoints answer: Claude's /api/oauth/usage as public clients record it, Codex's /wham/usage as
codex-rs/backend-client decodes it)."""
import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nomira.sources.usage_endpoints import MAX_DELAY, MAX_TRIES, FetchError, fetch_claude, fetch_codex

NOW = datetime(2026, 1, 28, 5, 0, tzinfo=timezone.utc)
CLAUDE_BODY = {
    "five_hour": {"utilization": 61.0, "resets_at": "2026-01-28T07:59:59.571404+00:00"},
    "seven_day": {"utilization": 22.0, "resets_at": "2026-02-03T09:59:59.571468+00:00"},
    "seven_day_opus": None,
    "extra_usage": {"is_enabled": False, "monthly_limit": None, "used_credits": None, "utilization": None},
}
CODEX_BODY = {
    "plan_type": "pro",
    "rate_limit": {"allowed": True, "limit_reached": False,
                   "primary_window": {"used_percent": 8, "limit_window_seconds": 18000,
                                      "reset_after_seconds": 6625, "reset_at": 1769588349},
                   "secondary_window": {"used_percent": 15, "limit_window_seconds": 604800,
                                        "reset_after_seconds": 54618, "reset_at": 1769596280}},
    "credits": None,
}
TOKEN = "sk-ant-oat01-test-only-token"


class Fake:
    """A scripted usage endpoint: a queue of (status, headers, body) answers; records requests."""

    def __init__(self, answers):
        self.answers, self.requests = list(answers), []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body = fake.answers.pop(0) if len(fake.answers) > 1 else fake.answers[0]
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    servers = []

    def start(*answers):
        servers.append(Fake(answers))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


def claude_env(home, url, expires_ms=int(NOW.timestamp() * 1000) + 3_600_000):
    (home / ".claude").mkdir(exist_ok=True)
    (home / ".claude" / ".credentials.json").write_text(json.dumps({"claudeAiOauth": {
        "accessToken": TOKEN, "refreshToken": "r", "expiresAt": expires_ms, "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max"}}))
    return {"HOME": str(home), "NOMIRA_CLAUDE_USAGE_BASE": url}


def test_claude_success(fake, isolated_env):
    srv = fake((200, {}, CLAUDE_BODY))
    snaps = fetch_claude(claude_env(isolated_env, srv.url), NOW, sleep=lambda s: None)
    assert [(s.window, s.used_percent, s.window_minutes, s.source) for s in snaps] == [
        ("five_hour", 61.0, 300, "api"), ("seven_day", 22.0, 10080, "api")]
    assert snaps[0].resets_at == datetime(2026, 1, 28, 7, 59, 59, 571404, tzinfo=timezone.utc)
    path, headers = srv.requests[0]
    assert path == "/api/oauth/usage"
    assert headers["authorization"] == f"Bearer {TOKEN}" and headers["anthropic-beta"] == "oauth-2025-04-20"


def test_claude_expired_credential_is_a_clear_message_and_sends_nothing(fake, isolated_env):
    srv = fake((200, {}, CLAUDE_BODY))
    env = claude_env(isolated_env, srv.url, expires_ms=int(NOW.timestamp() * 1000) - 60_000)
    with pytest.raises(FetchError, match=r"expired at 2026-01-28 04:59 UTC; run `claude` once") as exc:
        fetch_claude(env, NOW, sleep=lambda s: None)
    assert TOKEN not in str(exc.value) and srv.requests == []


def test_claude_rejected_login(fake, isolated_env):
    srv = fake((401, {}, {"error": {"type": "authentication_error", "message": "OAuth token has expired."}}))
    with pytest.raises(FetchError, match=r"refused the saved login \(HTTP 401\).*run `claude` once") as exc:
        fetch_claude(claude_env(isolated_env, srv.url), NOW, sleep=lambda s: None)
    assert TOKEN not in str(exc.value)


def test_429_backs_off_then_succeeds(fake, isolated_env):
    srv = fake((429, {"Retry-After": "3"}, {}), (429, {}, {}), (200, {}, CLAUDE_BODY))
    slept = []
    snaps = fetch_claude(claude_env(isolated_env, srv.url), NOW, sleep=slept.append)
    assert len(snaps) == 2 and len(srv.requests) == 3
    assert slept == [3.0, 2.0]  # Retry-After honoured, else exponential (1, 2, ...)


def test_429_gives_up_after_bounded_tries(fake, isolated_env):
    srv = fake((429, {"Retry-After": "999"}, {}))
    slept = []
    t0 = time.monotonic()
    with pytest.raises(FetchError, match=rf"HTTP 429 after {MAX_TRIES} tries"):
        fetch_claude(claude_env(isolated_env, srv.url), NOW, sleep=slept.append)
    assert len(srv.requests) == MAX_TRIES and slept == [MAX_DELAY] * (MAX_TRIES - 1)
    assert time.monotonic() - t0 < 5


def test_codex_success(fake, isolated_env):
    srv = fake((200, {}, CODEX_BODY))
    (isolated_env / ".codex").mkdir()
    (isolated_env / ".codex" / "auth.json").write_text(json.dumps({
        "OPENAI_API_KEY": None, "tokens": {"id_token": "x", "access_token": "codex-test-token",
                                           "refresh_token": "r", "account_id": "acct-1"},
        "last_refresh": "2026-01-27T10:00:00Z"}))
    env = {"HOME": str(isolated_env), "NOMIRA_CODEX_USAGE_BASE": srv.url}
    snaps = fetch_codex(env, NOW, sleep=lambda s: None)
    assert [(s.window, s.used_percent, s.window_minutes) for s in snaps] == [("primary", 8.0, 300),
                                                                          ("secondary", 15.0, 10080)]
    assert snaps[0].resets_at == datetime.fromtimestamp(1769588349, timezone.utc)
    path, headers = srv.requests[0]
    assert path == "/wham/usage" and headers["chatgpt-account-id"] == "acct-1"
    assert headers["authorization"] == "Bearer codex-test-token"


def test_missing_login_and_foreign_override(isolated_env):
    with pytest.raises(FetchError, match="no saved ChatGPT login"):
        fetch_codex({"HOME": str(isolated_env)}, NOW)
    env = claude_env(isolated_env, "https://evil.example.com")
    with pytest.raises(FetchError, match="loopback"):
        fetch_claude(env, NOW)


def test_limits_fetch_command_stores_snapshots_not_the_token(fake, isolated_env, monkeypatch, capsys):
    from nomira.cli import main
    srv = fake((200, {}, CLAUDE_BODY))
    claude_env(isolated_env, srv.url, expires_ms=int(time.time() * 1000) + 3_600_000)
    monkeypatch.setenv("NOMIRA_CLAUDE_USAGE_BASE", srv.url)
    assert main(["limits", "--fetch", "--json", "--source", "claude"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["window"] for r in doc["limits"]] == ["five_hour", "seven_day"]
    state = (isolated_env / ".local/state/nomira/limits.json").read_text()
    assert "five_hour" in state and TOKEN not in state
    assert main(["limits", "--source", "claude"]) == 0  # later, without --fetch: from the state file
    assert "Claude 5-hour" in capsys.readouterr().out


def test_fetch_all_skips_an_agent_without_a_login(fake, isolated_env, monkeypatch, capsys):
    from nomira.cli import main
    srv = fake((200, {}, CLAUDE_BODY))
    claude_env(isolated_env, srv.url, expires_ms=int(time.time() * 1000) + 3_600_000)
    monkeypatch.setenv("NOMIRA_CLAUDE_USAGE_BASE", srv.url)
    assert main(["limits", "--fetch", "--json"]) == 0  # no Codex login here: noted, not an error
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"] == [] and "no saved ChatGPT login" in doc["skipped"][0]
    assert main(["limits", "--fetch", "--source", "codex"]) == 1  # asked for Codex alone: an error
    assert "no saved ChatGPT login" in capsys.readouterr().err
