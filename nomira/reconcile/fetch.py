"""The providers' cost and usage Admin APIs -> bill lines (parsed by bills.api_page).

Anthropic: GET /v1/organizations/cost_report and /usage_report/messages (`x-api-key` admin
key, `anthropic-version`), RFC 3339 `starting_at`/`ending_at`, `group_by[]`, daily buckets.
OpenAI: GET /v1/organization/costs and /usage/completions (Bearer admin key), unix
`start_time`/`end_time`, `group_by`. Both page with `has_more`/`next_page` -> `page`.
The key travels only in a request header: never stored, logged or put in an error message.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlencode

from nomira import __version__
from nomira.reconcile.bills import ParseReport, api_page

BASE = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com"}
ANTHROPIC_VERSION = "2023-06-01"
MAX_PAGES = 500  # a cursor that never ends is a provider bug, not a reason to loop forever
TIMEOUT = 60
_KEYLIKE = re.compile(r"sk-(?:ant-)?(?:admin|proj|api)[A-Za-z0-9_\-]*")


class FetchError(Exception):
    """An HTTP or protocol error, with the provider's own message (any key scrubbed)."""


def scrub(text: str, key: str) -> str:
    text = text.replace(key, "[key]") if key else text
    return _KEYLIKE.sub("[key]", text)


def _error_message(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)"
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):  # Anthropic {"type":"error","error":{type,message}}; OpenAI {"error":{message,type,code}}
        kind = err.get("type") or err.get("code")
        return f"{err.get('message') or text[:300]}" + (f" ({kind})" if kind else "")
    return text[:300]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would resend the admin key to wherever it points: treat it as the error it is."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def get_json(url: str, headers: dict, key: str) -> dict:
    req = urllib.request.Request(url, headers={**headers, "User-Agent": f"nomira/{__version__}"})
    where = url.split("?", 1)[0]
    try:
        with _OPENER.open(req, timeout=TIMEOUT) as r:
            body = r.read()
    except urllib.error.HTTPError as exc:
        raise FetchError(scrub(f"{where}: HTTP {exc.code}: {_error_message(exc.read())}", key)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(scrub(f"{where}: {reason}", key)) from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise FetchError(f"{where}: response is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise FetchError(f"{where}: unexpected response (no data list)")
    return doc


def pages(base: str, path: str, params: list[tuple[str, str]], headers: dict, key: str):
    """Every page's buckets, following `next_page` while `has_more`."""
    cursor = None
    for _ in range(MAX_PAGES):
        query = params + ([("page", cursor)] if cursor else [])
        doc = get_json(f"{base}{path}?{urlencode(query)}", headers, key)
        yield from (b for b in doc["data"] if isinstance(b, dict))
        if not doc.get("has_more"):
            return
        nxt = doc.get("next_page")
        if not nxt or nxt == cursor:
            raise FetchError(f"{path}: has_more without a new next_page")
        cursor = nxt
    raise FetchError(f"{path}: more than {MAX_PAGES} pages")


def _requests(provider: str, since: date, until: date) -> tuple[dict, list[tuple[str, list]]]:
    start = datetime.combine(since, time(), timezone.utc)
    end = datetime.combine(until + timedelta(days=1), time(), timezone.utc)  # until is inclusive
    if provider == "anthropic":
        span = [("starting_at", start.strftime("%Y-%m-%dT%H:%M:%SZ")),
                ("ending_at", end.strftime("%Y-%m-%dT%H:%M:%SZ")), ("bucket_width", "1d"), ("limit", "31")]
        return {"anthropic-version": ANTHROPIC_VERSION}, [
            ("/v1/organizations/cost_report", span + [("group_by[]", "workspace_id"), ("group_by[]", "description")]),
            ("/v1/organizations/usage_report/messages",
             span + [("group_by[]", "workspace_id"), ("group_by[]", "model")])]
    span = [("start_time", str(int(start.timestamp()))), ("end_time", str(int(end.timestamp()))),
            ("bucket_width", "1d")]
    return {}, [("/v1/organization/costs", span + [("limit", "180"), ("group_by", "project_id"),
                                                   ("group_by", "line_item")]),
                ("/v1/organization/usage/completions", span + [("limit", "31"), ("group_by", "project_id"),
                                                               ("group_by", "model")])]


def fetch(provider: str, key: str, since: date, until: date, base_url: str | None = None,
          account: str | None = None) -> ParseReport:
    """Daily cost (and token/request) lines for [since, until], UTC days."""
    headers, calls = _requests(provider, since, until)
    headers = {**headers, **({"x-api-key": key} if provider == "anthropic" else {"Authorization": f"Bearer {key}"})}
    base = (base_url or BASE[provider]).rstrip("/")
    report = ParseReport()
    for path, params in calls:
        for bucket in pages(base, path, params, headers, key):
            api_page(bucket, path.rsplit("/", 1)[-1], report, account)
    return report
