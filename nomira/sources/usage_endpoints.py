"""The agents' own usage endpoints, asked with the login the agent saved locally (opt-in: `limits --fetch`).

- Claude Code: `GET https://api.anthropic.com/api/oauth/usage` with `Authorization: Bearer
  <claudeAiOauth.accessToken>` from `~/.claude/.credentials.json` (or $CLAUDE_CONFIG_DIR) and
  `anthropic-beta: oauth-2025-04-20`. Answers `{five_hour|seven_day|seven_day_opus|...:
  {utilization (0-100), resets_at (ISO-8601)}}`. Undocumented by Anthropic (it is what Claude
  Code's /usage calls); the shape is the one several public clients agree on.
- Codex: `GET https://chatgpt.com/backend-api/wham/usage` with `Authorization: Bearer
  <tokens.access_token>` and `ChatGPT-Account-Id: <tokens.account_id>` from `~/.codex/auth.json`
  (or $CODEX_HOME), as codex-rs/backend-client does for /status. Answers `{plan_type, rate_limit:
  {primary_window|secondary_window: {used_percent, limit_window_seconds, reset_at (unix s)}}}`.

The credential is read from the agent's file for the one request, sent only to that provider's
host, and never stored, logged, printed or put in an event. The base URL can be pointed elsewhere
for tests (NOMIRA_CLAUDE_USAGE_BASE, NOMIRA_CODEX_USAGE_BASE), but only at a loopback host: a
login is never sent to a third party.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlsplit

from nomira.ledger.events import parse_timestamp
from nomira.ledger.limits import LimitSnapshot, from_claude_windows

CLAUDE_BASE = "https://api.anthropic.com"
CODEX_BASE = "https://chatgpt.com/backend-api"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_TRIES = 3
MAX_DELAY = 8.0


class FetchError(Exception):
    """One line for the user: what failed and what to do. Never contains a credential."""


class NoLogin(FetchError):
    """The agent has no saved subscription login here (not installed, or an API-key login)."""


def _base(env: Mapping[str, str], var: str, default: str) -> str:
    base = env.get(var)
    if not base:
        return default
    if urlsplit(base).hostname not in LOOPBACK:
        raise FetchError(f"{var} must point at a loopback host (a saved login is only sent to its provider)")
    return base.rstrip("/")


def _read_json(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FetchError(f"cannot read {path}: {getattr(exc, 'strerror', None) or 'not JSON'}") from None
    return doc if isinstance(doc, dict) else None


def claude_credentials_path(env: Mapping[str, str]) -> Path:
    from nomira.sources.paths import claude_config_dir
    return claude_config_dir(env) / ".credentials.json"


def codex_auth_path(env: Mapping[str, str]) -> Path:
    from nomira.sources.paths import codex_home
    return codex_home(env) / "auth.json"


def _saved_login(path: Path, section: str, key: str) -> tuple[dict | None, str | None]:
    """(the login's section, its access token) from an agent's credential file, or (None, None)."""
    doc = _read_json(path)
    block = doc.get(section) if doc else None
    token = block.get(key) if isinstance(block, dict) else None
    return (block, token) if isinstance(token, str) and token else (None, None)


def _get(url: str, headers: dict, what: str, relogin: str, sleep: Callable[[float], None],
         timeout: float) -> dict:
    """GET JSON; 429 and 5xx back off (Retry-After honoured, capped) for at most MAX_TRIES tries."""
    import urllib.error
    import urllib.request
    for attempt in range(MAX_TRIES):
        retry_after = None
        try:
            req = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                doc = json.loads(resp.read())
            if not isinstance(doc, dict):
                raise FetchError(f"{what} answered something other than a JSON object")
            return doc
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise FetchError(f"{what} refused the saved login (HTTP {exc.code}): it has expired or "
                                 f"lacks the scope; {relogin}") from None
            if exc.code != 429 and exc.code < 500:
                raise FetchError(f"{what} answered HTTP {exc.code}") from None
            problem = f"HTTP {exc.code}"
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
        except (urllib.error.URLError, OSError) as exc:
            problem = f"no connection ({getattr(exc, 'reason', exc)})"
        except ValueError:
            raise FetchError(f"{what} answered something other than JSON") from None
        if attempt == MAX_TRIES - 1:
            break
        try:
            delay = float(retry_after) if retry_after is not None else 2.0 ** attempt
        except ValueError:
            delay = 2.0 ** attempt
        sleep(min(max(delay, 0.0), MAX_DELAY))
    raise FetchError(f"{what}: {problem} after {MAX_TRIES} tries; try again later")


def fetch_claude(env: Mapping[str, str] = os.environ, now: datetime | None = None,
                 sleep: Callable[[float], None] = time.sleep, timeout: float = 10.0) -> list[LimitSnapshot]:
    now = now or datetime.now(timezone.utc)
    path = claude_credentials_path(env)
    oauth, token = _saved_login(path, "claudeAiOauth", "accessToken")
    if token is None:
        raise NoLogin(f"Claude Code: no saved claude.ai login in {path} (API-key users have no "
                         "subscription limits; on macOS the login is in the Keychain, which Nomira does not read)")
    expires = oauth.get("expiresAt")
    if isinstance(expires, (int, float)) and not isinstance(expires, bool) and expires / 1000 <= now.timestamp():
        at = datetime.fromtimestamp(expires / 1000, timezone.utc)
        raise FetchError(f"Claude Code: the saved login expired at {at:%Y-%m-%d %H:%M} UTC; "
                         "run `claude` once to refresh it, then retry")
    url = _base(env, "NOMIRA_CLAUDE_USAGE_BASE", CLAUDE_BASE) + "/api/oauth/usage"
    body = _get(url, {"Authorization": f"Bearer {token}", "anthropic-beta": "oauth-2025-04-20"},
                "Claude usage endpoint", "run `claude` once to sign in again", sleep, timeout)
    return from_claude_windows(body, now, "api", resets_parser=parse_timestamp)


def fetch_codex(env: Mapping[str, str] = os.environ, now: datetime | None = None,
                sleep: Callable[[float], None] = time.sleep, timeout: float = 10.0) -> list[LimitSnapshot]:
    now = now or datetime.now(timezone.utc)
    path = codex_auth_path(env)
    tokens, token = _saved_login(path, "tokens", "access_token")
    if token is None:
        raise NoLogin(f"Codex: no saved ChatGPT login in {path} (an API-key login has no plan limits)")
    headers = {"Authorization": f"Bearer {token}"}
    if isinstance(tokens.get("account_id"), str) and tokens["account_id"]:
        headers["ChatGPT-Account-Id"] = tokens["account_id"]
    url = _base(env, "NOMIRA_CODEX_USAGE_BASE", CODEX_BASE) + "/wham/usage"
    body = _get(url, headers, "Codex usage endpoint", "run `codex login` to sign in again", sleep, timeout)
    return codex_windows(body, now)


def codex_windows(body: dict, now: datetime) -> list[LimitSnapshot]:
    from nomira.ledger.limits import _epoch, _number
    rl = body.get("rate_limit") if isinstance(body.get("rate_limit"), dict) else {}
    out = []
    for key, window in (("primary_window", "primary"), ("secondary_window", "secondary")):
        w = rl.get(key)
        used = _number(w.get("used_percent")) if isinstance(w, dict) else None
        if used is None:
            continue
        secs = _number(w.get("limit_window_seconds"))
        minutes = int((secs + 59) // 60) if secs and secs > 0 else None  # rounded up, as Codex does
        out.append(LimitSnapshot("codex", window, used, minutes, _epoch(w.get("reset_at")), "api", now))
    return out


FETCHERS = {"claude": fetch_claude, "codex": fetch_codex}
