"""Bill formats -> daily bill lines per provider/account/day (and model where the bill has it).

Reads console CSV exports, flat JSON rows, and the providers' cost/usage API documents
(saved to a file, or straight from `fetch`). Neither console documents its CSV columns, so
CSV headers are matched against the aliases below (case, spaces and punctuation ignored);
docs/RECONCILE.md lists them. Only USD rows are kept: any other currency is skipped and
counted, never converted. A row that cannot be read is counted with its line number.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache

from nomira.ledger.events import provider_for_model
from nomira.pricing.table import candidate_keys

PROVIDERS = ("anthropic", "openai")

# normalized header -> field; the first alias present wins
ALIASES = {
    "day": ("date", "day", "usage_date", "usage_date_utc", "date_utc", "start_date", "start_time", "starting_at",
            "bucket_start", "bucket_start_time", "period_start", "timestamp"),
    "cost": ("cost_usd", "cost", "amount_usd", "amount", "amount_value", "total_cost", "total_cost_usd",
             "cost_amount", "spend", "usd"),
    "cents": ("amount_cents", "cost_cents", "cents"),
    "currency": ("currency", "amount_currency", "cost_currency"),
    "model": ("model", "model_name", "model_id", "line_item"),
    "account": ("account", "account_id", "workspace_id", "workspace", "workspace_name", "project_id", "project",
                "project_name", "organization_id", "organization", "org_id"),
    "provider": ("provider", "vendor"),
    "tokens": ("total_tokens", "tokens"),
    "requests": ("requests", "num_model_requests", "request_count", "num_requests"),
}
# summed when there is no total column (OpenAI's input_cached_tokens is inside input_tokens: not listed)
TOKEN_PARTS = ("input_tokens", "uncached_input_tokens", "prompt_tokens", "output_tokens", "completion_tokens",
               "cache_read_input_tokens", "cache_read_tokens", "cache_creation_input_tokens", "cache_write_tokens",
               "cache_creation_ephemeral_5m_input_tokens", "cache_creation_ephemeral_1h_input_tokens")
_DAY_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%b %d, %Y", "%B %d, %Y", "%d %b %Y",
                "%d %B %Y", "%Y%m%d", "%m/%d/%y")
_THOUSANDS = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")
SAMPLES = 5


class BillFormatError(ValueError):
    """The file as a whole cannot be read as a bill."""


@dataclass(frozen=True)
class BillLine:
    provider: str
    account: str
    day: str  # YYYY-MM-DD, UTC
    model: str  # normalized (model_key), "" when the bill has no model
    cost_usd: float | None = None
    tokens: int | None = None
    requests: int | None = None
    row_ref: str = ""


@dataclass
class ParseReport:
    rows: int = 0
    lines: list[BillLine] = field(default_factory=list)
    skipped_currency: dict[str, int] = field(default_factory=dict)
    garbage: int = 0
    garbage_samples: list[str] = field(default_factory=list)
    blank: int = 0
    notes: list[str] = field(default_factory=list)

    def bad(self, where: str, why: str) -> None:
        self.garbage += 1
        if len(self.garbage_samples) < SAMPLES:
            self.garbage_samples.append(f"{where}: {why}")

    def summary(self) -> dict:
        return {"rows": self.rows, "lines": len(self.lines), "skipped_currency": self.skipped_currency,
                "garbage": self.garbage, "garbage_samples": self.garbage_samples, "blank": self.blank,
                "notes": self.notes}


@lru_cache(maxsize=4096)
def model_key(model: str | None) -> str:
    """One spelling per model (lower case, no provider prefix or date suffix), shared with events."""
    m = (model or "").split(",")[0].strip().lower()  # OpenAI line items read "gpt-4o-2024-08-06, input"
    if not m:
        return ""
    # the price table's own spellings (a newer table pairs each with what it leaves unpriced)
    keys = [k[0] if isinstance(k, tuple) else k for k in candidate_keys(m)]
    return min(keys, key=lambda k: (len(k), k))


def parse_day(value) -> str | None:
    """A UTC day from the spellings exports use; None when unreadable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, int) and 19000101 <= value <= 29991231:  # (20261103: a date, not 1970's seconds)
            return parse_day(str(value))
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, timezone.utc).date().isoformat()
        except (ValueError, OverflowError, OSError):
            return None
    t = str(value or "").strip()
    if not t:
        return None
    if t.isdigit() and len(t) >= 9:
        return parse_day(int(t))
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
        return (dt.astimezone(timezone.utc) if dt.tzinfo else dt).date().isoformat()
    except (ValueError, OverflowError):  # (9999-12-31T23:59-05:00 is past the last UTC day)
        pass
    for fmt in _DAY_FORMATS:
        try:
            return datetime.strptime(t, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def parse_money(value) -> tuple[float | None, str | None]:
    """(amount, currency or None): numbers, "$1,234.50", "(3.10)", {value|amount, currency}."""
    if isinstance(value, dict):
        inner = value.get("value", value.get("amount"))
        amount, cur = parse_money(inner)
        return amount, (str(value.get("currency") or "").upper() or cur or None)
    if isinstance(value, bool) or value is None:
        return None, None
    if isinstance(value, (int, float)):
        return (float(value) if math.isfinite(value) else None), None
    t = str(value).strip()
    cur = None
    m = re.match(r"^([A-Za-z]{3})\s+(.*)$", t) or re.match(r"^(.*?)\s+([A-Za-z]{3})$", t)
    if m:
        a, b = m.groups()
        cur, t = (a, b) if len(a) == 3 and a.isalpha() else (b, a)
    negative = t.startswith("(") and t.endswith(")")
    t = t.strip("()").replace("US$", "").replace("$", "").strip()
    if t.startswith("-"):
        negative, t = not negative, t[1:]
    if "," in t:
        if not _THOUSANDS.match(t):
            return None, cur
        t = t.replace(",", "")
    try:
        amount = float(t)
    except ValueError:
        return None, cur
    if not math.isfinite(amount):
        return None, cur
    return (-amount if negative else amount), (cur.upper() if cur else None)


def _int(value) -> int | None:
    """A count a bill can hold (0 to 10^15; a refund's negative count and `1e30` are none)."""
    if value in (None, ""):
        return None
    try:
        n = int(float(str(value).replace(",", "")))
    except (ValueError, OverflowError):
        return None
    return n if 0 <= n <= 10 ** 15 else None


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def _provider(explicit: str | None, column: str | None, model: str) -> str | None:
    for p in (explicit, (column or "").strip().lower()):
        if p in PROVIDERS:
            return p
    guess = provider_for_model(model) if model else "other"
    return guess if guess in PROVIDERS else None


# --- CSV and flat JSON rows ---

def parse_rows(rows, header: list[str], where, report: ParseReport, provider: str | None, account: str | None):
    cols = {_norm(h): i for i, h in enumerate(header)}
    pick = {f: next((cols[a] for a in names if a in cols), None) for f, names in ALIASES.items()}
    parts = [cols[p] for p in TOKEN_PARTS if p in cols]
    if pick["day"] is None:
        raise BillFormatError(f"no date column (looked for: {', '.join(ALIASES['day'])})")
    if pick["cost"] is None and pick["cents"] is None and pick["tokens"] is None and not parts:
        raise BillFormatError(f"no amount or token column (looked for: {', '.join(ALIASES['cost'])})")
    if pick["currency"] is None and (pick["cost"] is not None or pick["cents"] is not None):
        report.notes.append("no currency column: amounts read as USD")

    def cell(row, f):
        i = pick[f]
        value = row[i] if i is not None and i < len(row) else None
        return value.strip() if isinstance(value, str) else value

    def read(n, row) -> None:
        if not any(str(c).strip() for c in row if c is not None):
            report.blank += 1
            return
        ref = f"{where}:{n}"
        day = parse_day(cell(row, "day"))
        if day is None:
            report.bad(ref, f"unreadable date {cell(row, 'day')!r}")
            return
        currency = (cell(row, "currency") or "USD").upper()
        cost = tokens = None
        raw = cell(row, "cost") if pick["cost"] is not None else cell(row, "cents")
        if raw not in (None, ""):
            cost, cur = parse_money(raw)
            currency = cur or currency
            if cost is None:
                report.bad(ref, f"unreadable amount {raw!r}")
                return
            if pick["cost"] is None:
                cost /= 100
        if currency != "USD":
            report.skipped_currency[currency] = report.skipped_currency.get(currency, 0) + 1
            return
        if pick["tokens"] is not None:
            tokens = _int(cell(row, "tokens"))
        elif parts:
            values = [_int(row[i]) if i < len(row) else None for i in parts]
            tokens = sum(v for v in values if v) if any(v is not None for v in values) else None
        requests = _int(cell(row, "requests")) if pick["requests"] is not None else None
        if cost is None and tokens is None and requests is None:
            report.blank += 1
            return
        model = model_key(cell(row, "model"))
        prov = _provider(provider, cell(row, "provider"), model)
        if prov is None:
            report.bad(ref, "provider unknown (pass --provider anthropic|openai)")
            return
        acct = account or str(cell(row, "account") or "") or "default"
        report.lines.append(BillLine(prov, acct, day, model, cost, tokens, requests, ref))

    for n, row in rows:
        report.rows += 1
        try:
            read(n, row)
        except (TypeError, AttributeError, ValueError, OverflowError) as exc:  # (a cell of no shape a bill has)
            report.bad(f"{where}:{n}", f"unreadable row ({type(exc).__name__})")


def parse_csv(text: str, name: str, provider: str | None = None, account: str | None = None) -> ParseReport:
    report = ParseReport()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = None
    for n, row in enumerate(reader, 1):
        if any(c.strip() for c in row):
            header = (n, row)
            break
    if header is None:
        raise BillFormatError("empty file")
    start, cols = header
    parse_rows(((start + i, r) for i, r in enumerate(reader, 1)), cols, name, report, provider, account)
    return report


# --- JSON: flat rows or the providers' API documents ---

def parse_json(doc, name: str, provider: str | None = None, account: str | None = None) -> ParseReport:
    if isinstance(doc, dict) and isinstance(doc.get("data"), list) and any(
            isinstance(b, dict) and "results" in b for b in doc["data"]):
        report = ParseReport()
        for b in (b for b in doc["data"] if isinstance(b, dict)):
            api_page(b, name, report, account)
        return report
    rows = doc.get("data", doc.get("rows")) if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise BillFormatError("JSON is neither a list of bill rows nor a cost/usage API response")
    report = ParseReport()
    if not rows:
        return report
    header = sorted({k for r in rows for k in r})
    parse_rows(((i, [r.get(k) for k in header]) for i, r in enumerate(rows, 1)), header, name, report, provider,
               account)
    return report


def api_page(bucket: dict, where: str, report: ParseReport, account: str | None = None) -> None:
    """One time bucket of any of the four endpoints, told apart by its fields.

    Anthropic buckets carry `starting_at` (RFC 3339) and cost `amount` in cents as a decimal
    string; OpenAI buckets carry `start_time` (unix s) and `amount: {value (USD), currency}`.
    """
    anthropic = "starting_at" in bucket
    prov = "anthropic" if anthropic else "openai"
    day = parse_day(bucket.get("starting_at") if anthropic else bucket.get("start_time"))
    for i, r in enumerate(bucket.get("results") or []):
        report.rows += 1
        ref = f"{where} {day} #{i}"
        if not isinstance(r, dict) or day is None:
            report.bad(ref, "not a result object" if day else "bucket without a start")
            continue
        acct = account or str((r.get("workspace_id") if anthropic else r.get("project_id")) or "") or "default"
        model = model_key(r.get("model") or r.get("line_item"))
        if "amount" in r:
            cost, cur = parse_money(r["amount"])
            cur = (r.get("currency") or cur or "USD").upper()
            if cost is None:
                report.bad(ref, f"unreadable amount {r['amount']!r}")
                continue
            if cur != "USD":
                report.skipped_currency[cur] = report.skipped_currency.get(cur, 0) + 1
                continue
            report.lines.append(BillLine(prov, acct, day, model, cost / 100 if anthropic else cost, None, None, ref))
        elif anthropic and ("uncached_input_tokens" in r or "output_tokens" in r):
            cc = r.get("cache_creation") or {}
            tokens = sum(_int(v) or 0 for v in (r.get("uncached_input_tokens"), r.get("cache_read_input_tokens"),
                                                 cc.get("ephemeral_5m_input_tokens"),
                                                 cc.get("ephemeral_1h_input_tokens"), r.get("output_tokens")))
            report.lines.append(BillLine(prov, acct, day, model, None, tokens, None, ref))
        elif not anthropic and ("input_tokens" in r or "num_model_requests" in r):
            tokens = (_int(r.get("input_tokens")) or 0) + (_int(r.get("output_tokens")) or 0)
            report.lines.append(BillLine(prov, acct, day, model, None, tokens, _int(r.get("num_model_requests")),
                                         ref))
        else:
            report.bad(ref, "result has neither an amount nor token counts")


def parse_file(data: bytes, name: str, provider: str | None = None, account: str | None = None) -> ParseReport:
    text = data.decode("utf-8-sig", "replace")
    if text.lstrip()[:1] in ("{", "["):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise BillFormatError(f"not valid JSON: {exc if isinstance(exc, ValueError) else 'nested too deep'}") \
                from None
        return parse_json(doc, name, provider, account)
    return parse_csv(text, name, provider, account)


def merge(lines: list[BillLine]) -> list[BillLine]:
    """Sum lines that share provider/account/day/model (token-type rows, cost + usage documents)."""
    out: dict[tuple, BillLine] = {}
    for ln in lines:
        key = (ln.provider, ln.account, ln.day, ln.model)
        old = out.get(key)
        if old is None:
            out[key] = ln
            continue
        add = lambda a, b: b if a is None else a if b is None else a + b  # noqa: E731
        refs = old.row_ref.split("; ")
        ref = old.row_ref if len(refs) >= SAMPLES else f"{old.row_ref}; {ln.row_ref}"
        out[key] = replace(old, cost_usd=add(old.cost_usd, ln.cost_usd), tokens=add(old.tokens, ln.tokens),
                           requests=add(old.requests, ln.requests), row_ref=ref)
    return sorted(out.values(), key=lambda b: (b.provider, b.account, b.day, b.model))
