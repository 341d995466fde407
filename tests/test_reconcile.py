"""Invoice reconciliation: bill parsers, cost-API clients (loopback fakes), windows, adjustments, page."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from nomira.ledger import store
from nomira.reconcile import ledger
from nomira.reconcile.bills import BillFormatError, merge, parse_file
from nomira.reconcile.windows import DEFAULT_TOLERANCES, Tolerance, compare, parse_tolerance, reconcile

# --- bill exports ---

MESSY_CSV = '''\ufeffDate,Model,Workspace,"Cost (USD)",Currency,Input Tokens,Output Tokens
2026-11-03,claude-sonnet-4-5-20250929,"Acme, Inc.","$1,234.50",USD,"1,000",500
11/04/2026,claude-opus-4-7,Default,12.5,usd,10,5
"Nov 5, 2026",claude-opus-4-7,Default,3.00,EUR,1,1
2026-11-05T00:00:00Z,claude-opus-4-7,Default,"(1.25)",USD,,
06.11.2026,claude-opus-4-7,Default,2,GBP,,
Total,,,"$1,248.75",,,
2026-11-07,claude-opus-4-7,Default,twelve,USD,,
,,,,,,
'''


def test_csv_quoted_commas_dates_currencies_and_garbage():
    r = parse_file(MESSY_CSV.encode(), "bill.csv")
    lines = {(ln.day, ln.model): ln for ln in r.lines}
    assert lines[("2026-11-03", "claude-sonnet-4-5")].account == "Acme, Inc."  # quoted comma kept in one cell
    assert lines[("2026-11-03", "claude-sonnet-4-5")].cost_usd == 1234.50
    assert lines[("2026-11-03", "claude-sonnet-4-5")].tokens == 1500
    assert lines[("2026-11-04", "claude-opus-4-7")].cost_usd == 12.5  # US month/day, lower-case currency
    assert lines[("2026-11-05", "claude-opus-4-7")].cost_usd == -1.25  # a credit in parentheses
    assert {ln.provider for ln in r.lines} == {"anthropic"}  # inferred from the model names
    assert r.skipped_currency == {"EUR": 1, "GBP": 1}  # skipped and reported, never converted
    assert r.garbage == 2 and r.garbage_samples == ["bill.csv:7: unreadable date 'Total'",
                                                    "bill.csv:8: unreadable amount 'twelve'"]
    assert r.blank == 1 and r.rows == 8


def test_csv_aliases_cents_no_currency_and_provider_required():
    text = "usage_date_utc,amount_cents,project_id\n2026-11-03,1234.5,proj_1\n2026-11-03,100,proj_1\n"
    with_provider = parse_file(text.encode(), "o.csv", provider="openai")
    assert [(ln.provider, ln.account, ln.cost_usd) for ln in merge(with_provider.lines)] == [
        ("openai", "proj_1", pytest.approx(13.345))]
    assert with_provider.notes == ["no currency column: amounts read as USD"]
    unknown = parse_file(text.encode(), "o.csv")  # no model, no provider column, no --provider
    assert unknown.lines == [] and unknown.garbage == 2 and "provider unknown" in unknown.garbage_samples[0]
    with pytest.raises(BillFormatError, match="no date column"):
        parse_file(b"model,cost\nx,1\n", "x.csv")


def test_json_flat_rows_and_saved_api_documents():
    rows = [{"date": "2026-11-03", "model": "gpt-4o-2024-08-06, input", "cost": 1.5, "currency": "usd",
             "num_model_requests": 4},
            {"date": "2026-11-03", "model": "gpt-4o-2024-08-06, output", "cost": "0.5", "currency": "USD"},
            {"date": "not a day", "cost": 1}]
    r = parse_file(json.dumps(rows).encode(), "rows.json", provider="openai")
    assert [(ln.model, ln.cost_usd, ln.requests) for ln in merge(r.lines)] == [("gpt-4o", 2.0, 4)]
    assert r.garbage == 1
    saved = {"data": [{"starting_at": "2026-11-03T00:00:00Z", "ending_at": "2026-11-04T00:00:00Z",
                       "results": [{"amount": "123.45", "currency": "USD", "model": "claude-opus-4-7",
                                    "workspace_id": None}]}], "has_more": False, "next_page": None}
    r = parse_file(json.dumps(saved).encode(), "cost_report.json")
    assert [(ln.provider, ln.account, ln.cost_usd) for ln in r.lines] == [("anthropic", "default", 1.2345)]


# --- tolerances ---

@pytest.mark.parametrize("dim,billed,inside,outside", [
    ("cost", 10.0, 9.90, 9.89),          # 1% of $10 = $0.10
    ("cost", 2.0, 1.95, 1.949),          # floor $0.05 beats 1% of $2
    ("tokens", 100_000, 99_000, 98_999),  # 1% = 1,000
    ("tokens", 5_000, 4_800, 4_799),     # floor 200
    ("requests", 1_000, 990, 989),       # 1% = 10
    ("requests", 50, 47, 46),            # floor 3
])
def test_tolerance_edges(dim, billed, inside, outside):
    other = {"cost": None, "tokens": None, "requests": None}
    est = {"cost": 0.0, "tokens": 0, "requests": 0}
    for value, expected in ((inside, "within"), (outside, "over")):
        status, reasons = compare({**other, dim: billed}, {**est, dim: value}, DEFAULT_TOLERANCES)
        assert status == expected, (value, reasons)
        assert bool(reasons) == (expected == "over")
    # above the bill is symmetric
    assert compare({**other, dim: billed}, {**est, dim: 2 * billed - inside}, DEFAULT_TOLERANCES)[0] == "within"


def test_tolerances_are_configurable():
    assert parse_tolerance("2%,0.10") == Tolerance(0.02, 0.10)
    assert parse_tolerance("5%") == Tolerance(0.05, 0.0)
    with pytest.raises(ValueError):
        parse_tolerance("lots")
    tight = {**DEFAULT_TOLERANCES, "cost": parse_tolerance("0%,0.001")}
    assert compare({"cost": 10.0, "tokens": None, "requests": None}, {"cost": 9.99, "tokens": 0, "requests": 0},
                   tight)[0] == "over"


# --- windows, missing days, adjustments ---

def ev(i, day, cost, model="claude-opus-4-7", developer="ana", regime="api", provider="anthropic",
       source="claude_code", tenant=None):
    tags = {"developer": developer, "project": "shop", **({"tenant": tenant} if tenant else {})}
    return {"schema_version": 1, "source": source, "provider": provider, "model": model,
            "occurred_at": f"{day}T10:00:00Z", "tokens": {"input": 100, "output": 50}, "cost_usd": cost,
            "cost_source": "bundled:2026-11-24", "regime": regime, "tags": tags, "message_id": f"msg_{i}"}


@pytest.fixture
def db(store_target):
    return store.open_db(store_target)


def bill(db, rows, tenant="", name="bill.csv"):
    text = "date,model,cost,currency\n" + "".join(f"{d},{m},{c},USD\n" for d, m, c in rows)
    parsed = parse_file(text.encode(), name, provider="anthropic")
    return ledger.save_lines(db, tenant, "anthropic", f"import:{name}", merge(parsed.lines), parsed.summary())


def test_missing_day_classification_names_silent_developers(db):
    store.ingest(db, [ev(1, "2026-11-01", 1.0, developer="ana"), ev(2, "2026-11-01", 1.0, developer="bo",
                                                                     source="codex"),
                      ev(3, "2026-11-02", 2.0, developer="ana"),
                      ev(4, "2026-11-04", 3.0, developer="ana"),
                      ev(5, "2026-11-03", 9.0, regime="subscription"),
                      ev(6, "2026-11-03", 0.5, regime="mixed", source="codex")])  # mixed: by its source
    bill(db, [("2026-11-02", "claude-opus-4-7", 2.0), ("2026-11-03", "claude-opus-4-7", 5.0),
              ("2026-11-05", "claude-opus-4-7", 1.0)])
    r = reconcile(db, record=False)
    classes = {d["day"]: d for d in r["missing_days"]}
    assert classes["2026-11-03"]["class"] == "billed_not_observed"  # subscription usage does not count...
    # ...but ana did ship that day (on her plan): only bo's codex went silent
    assert classes["2026-11-03"]["silent"] == [{"developer": "bo", "source": "codex"}]
    assert classes["2026-11-05"]["silent"] == [{"developer": "ana", "source": "claude_code"},
                                               {"developer": "ana", "source": "codex"},
                                               {"developer": "bo", "source": "codex"}]
    assert classes["2026-11-04"]["class"] == "observed_not_billed"  # inside the bill's span: an import gap
    assert classes["2026-11-05"]["class"] == "billed_not_observed"
    assert "2026-11-01" not in classes and "2026-11-02" not in classes
    assert {w["day"]: w.get("silent") for w in r["windows"]}["2026-11-02"] is None  # observed and within
    assert r["since"] == "2026-11-02" and r["until"] is None  # from the first billed day by default
    assert r["totals"]["estimated_unbilled_usd"] == 3.0  # the 11-04 gap (11-01 is before the first bill)
    assert r["excluded_subscription"] == [{"tenant": "", "provider": "anthropic", "calls": 2, "value_usd": 9.5}]
    assert any("--regime api" in s for s in r["next_steps"])
    assert r["unrecorded_adjustments"] == 2 and r["adjustments"] == []  # record=False writes nothing


def test_bills_meet_the_calls_of_their_utc_day_whatever_zone_filed_them(db):
    """A call at 01:30 UTC from a laptop in New York is filed under its developer's day (the day before);
    the bill charges it on its UTC day: one window, within, no adjustment, nobody silent."""
    call = dict(ev(1, "2026-03-29", 0.5), occurred_at="2026-03-29T01:30:00Z")
    store.ingest_batch(db, [call], None, "America/New_York")
    assert db.execute("SELECT day FROM events").fetchone()[0] == "2026-03-28"  # (the developer's day)
    bill(db, [("2026-03-29", "claude-opus-4-7", 0.5)])
    r = reconcile(db, record=False)
    assert [(w["day"], w["status"]) for w in r["windows"]] == [("2026-03-29", "within")], r["windows"]
    assert r["missing_days"] == [] and r["unrecorded_adjustments"] == 0


def test_a_day_billed_again_at_another_grouping_replaces_it(db):
    """A day's total, then the same day per model (or an account spelled in another case): one bill,
    the later import's, never both; another day and another account stay."""
    def csv(db, text, name, account=None):
        parsed = parse_file(text.encode(), name, provider="anthropic", **({"account": account} if account else {}))
        return ledger.save_lines(db, "", "anthropic", f"import:{name}", merge(parsed.lines), parsed.summary())

    def billed():
        return sorted((ln["day"], ln["account"], ln["model"], ln["cost_usd"]) for ln in ledger.bill_lines(db, None))
    csv(db, "date,cost,currency\n2026-03-29,10.00,USD\n2026-03-30,3.00,USD\n", "total.csv")
    csv(db, "date,model,cost,currency\n2026-03-29,claude-opus-4-1,6.00,USD\n2026-03-29,claude-sonnet-4-5,4.00,USD\n",
        "models.csv")
    assert billed() == [("2026-03-29", "default", "claude-opus-4-1", 6.0), ("2026-03-29", "default", "claude-sonnet-4-5", 4.0),
                        ("2026-03-30", "default", "", 3.0)]
    csv(db, "date,workspace,model,cost,currency\n2026-03-29,Default,claude-opus-4-1,6.00,USD\n"
            "2026-03-29,Default,claude-sonnet-4-5,4.00,USD\n2026-03-29,lab,claude-opus-4-1,1.00,USD\n", "ws.csv")
    assert sum(c for d, _a, _m, c in billed() if d == "2026-03-29") == 11.0  # (10 of Default, 1 of lab)
    # another account's lines on the same day are kept, and said: they may be the same spend under another name
    saved = csv(db, "date,model,cost,currency\n2026-03-29,claude-opus-4-1,6.00,USD\n", "again.csv", account="wrk_9")
    assert saved["other_accounts"] == [{"account": "Default", "source": "import:ws.csv"},
                                       {"account": "lab", "source": "import:ws.csv"}]


def test_adjustments_once_survive_replay_and_total_equals_bill(db):
    store.ingest(db, [ev(1, "2026-11-02", 1.00), ev(2, "2026-11-02", 1.00), ev(3, "2026-11-03", 4.00),
                      ev(4, "2026-11-03", 1.00, model="claude-sonnet-4-5")])
    bill(db, [("2026-11-02", "claude-opus-4-7", 2.03),            # within: $0.03 <= $0.05
              ("2026-11-03", "claude-opus-4-7", 5.00),            # over: +$1.00
              ("2026-11-03", "claude-sonnet-4-5-20250929", 1.00)])  # within, date suffix normalized
    store.ingest(db, [ev(5, "2026-10-30", 0.5, developer="cy", source="opencode")])
    first = reconcile(db)
    over = next(w for w in first["windows"] if w["status"] == "over")
    assert over["silent"] == [{"developer": "cy", "source": "opencode"}]  # billed above the estimate: who was quiet
    assert first["recorded"] == {"created": 1, "updated": 0, "unchanged": 0, "withdrawn": 0}
    assert first["counts"] == {"within": 2, "over": 1}
    (adj,) = first["adjustments"]
    assert adj["day"] == "2026-11-03" and adj["model"] == "claude-opus-4-7"
    assert adj["cost_usd"] == pytest.approx(1.0) and "cost over tolerance" in adj["reason"]
    line = next(ln for ln in ledger.bill_lines(db, "") if ln["day"] == "2026-11-03" and ln["model"] ==
                "claude-opus-4-7")
    assert adj["bill_line_ids"] == [line["id"]] and adj["bill_ref"] == "import:bill.csv bill.csv:3"

    def check(report):
        t = report["totals"]
        billed = 2.03 + 5.00 + 1.00
        assert t["reconciled_usd"] == pytest.approx(billed)
        assert t["estimated_billed_usd"] + t["adjustments_usd"] + t["within_tolerance_usd"] == pytest.approx(billed)
        over = next(w for w in report["windows"] if w["status"] == "over")
        assert over["estimated_usd"] + over["adjustment_usd"] == pytest.approx(over["billed_usd"])
        assert all(w["basis"] == "reconciled" for w in report["windows"])
    check(first)
    events_before = store.canonical_rows(db)
    again = reconcile(db)
    assert again["recorded"] == {"created": 0, "updated": 0, "unchanged": 1, "withdrawn": 0}
    assert len(ledger.adjustments(db, None)) == 1  # appears once
    store.replay(db)
    assert store.canonical_rows(db) == events_before  # events never edited
    assert ledger.adjustments(db, None) == first["adjustments"]  # survives replay
    check(reconcile(db))
    # late events close the gap: the adjustment is withdrawn, not duplicated
    store.ingest(db, [ev(9, "2026-11-03", 1.00)])
    assert reconcile(db)["recorded"]["withdrawn"] == 1 and ledger.adjustments(db, None) == []


def test_reimport_replaces_lines_and_tenants_are_separate(db):
    assert bill(db, [("2026-11-02", "claude-opus-4-7", 2.0)])["inserted"] == 1
    assert bill(db, [("2026-11-02", "claude-opus-4-7", 3.0)])["replaced"] == 1
    bill(db, [("2026-11-02", "claude-opus-4-7", 7.0)], tenant="acme")
    assert [ln["cost_usd"] for ln in ledger.bill_lines(db, "")] == [3.0]
    store.ingest(db, [ev(1, "2026-11-02", 7.0)], tenant="acme")
    r = reconcile(db, tenant="acme")
    assert r["counts"] == {"within": 1} and r["totals"]["reconciled_usd"] == 7.0


# --- the providers' cost APIs, from a fake server on loopback ---

ANTHROPIC_KEY, OPENAI_KEY = "sk-ant-admin01-test-key-do-not-log", "sk-admin-test-key-do-not-log"


def day_ts(day):
    from datetime import datetime, timezone
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())


def a_bucket(day, results):
    return {"starting_at": f"{day}T00:00:00Z", "ending_at": f"{day}T23:59:59Z", "results": results}


def o_bucket(day, results):
    return {"object": "bucket", "start_time": day_ts(day), "end_time": day_ts(day) + 86400, "results": results}


def a_cost(amount, token_type, model="claude-opus-4-7", workspace=None):
    return {"amount": amount, "currency": "USD", "workspace_id": workspace, "description": None, "cost_type": "tokens",
            "context_window": "0-200k", "model": model, "service_tier": "standard", "token_type": token_type}


PAGES = {
    "/v1/organizations/cost_report": [
        {"data": [a_bucket("2026-11-03", [a_cost("150.00", "uncached_input_tokens"),
                                          a_cost("50.5", "output_tokens"),
                                          a_cost("99.5", "output_tokens", "claude-sonnet-4-5-20250929", "wrkspc_1")])],
         "has_more": True, "next_page": "page_MjAyNi0xMS0wNA=="},
        {"data": [a_bucket("2026-11-04", [a_cost("1000", "output_tokens")])], "has_more": False, "next_page": None}],
    "/v1/organizations/usage_report/messages": [
        {"data": [a_bucket("2026-11-03", [{
            "uncached_input_tokens": 1000, "cache_creation": {"ephemeral_1h_input_tokens": 0,
                                                              "ephemeral_5m_input_tokens": 200},
            "cache_read_input_tokens": 3000, "output_tokens": 500, "server_tool_use": {"web_search_requests": 0},
            "api_key_id": None, "workspace_id": None, "model": "claude-opus-4-7", "service_tier": None,
            "context_window": None}])], "has_more": False, "next_page": None}],
    "/v1/organization/costs": [
        {"object": "page", "data": [o_bucket("2026-11-03", [
            {"object": "organization.costs.result", "amount": {"value": 1.5, "currency": "usd"},
             "line_item": "gpt-5-codex, input", "project_id": "proj_1"},
            {"object": "organization.costs.result", "amount": {"amount": "0.25", "currency": "usd"},
             "line_item": "gpt-5-codex, output", "project_id": "proj_1"}])],
         "has_more": True, "next_page": "page_2"},
        {"object": "page", "data": [o_bucket("2026-11-03", [
            {"object": "organization.costs.result", "amount": 0.5, "line_item": "gpt-5-codex, cached input",
             "project_id": "proj_1"},
            {"object": "organization.costs.result", "amount": {"value": 2.0, "currency": "eur"},
             "line_item": "gpt-5-codex, input", "project_id": "proj_2"}])], "has_more": False, "next_page": None}],
    "/v1/organization/usage/completions": [
        {"object": "page", "data": [o_bucket("2026-11-03", [
            {"object": "organization.usage.completions.result", "input_tokens": 5000, "output_tokens": 700,
             "input_cached_tokens": 4000, "input_audio_tokens": 0, "output_audio_tokens": 0,
             "num_model_requests": 12, "project_id": "proj_1", "user_id": None, "api_key_id": None,
             "model": "gpt-5-codex", "batch": None}])], "has_more": False, "next_page": None}],
}


@pytest.fixture
def fake_api():
    seen, failures = [], {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            seen.append((url.path, query, {k.lower(): v for k, v in self.headers.items()}))
            if url.path in failures:
                status, body = failures[url.path]
                return self.reply(status, body)
            anthropic = url.path.startswith("/v1/organizations/")
            ok = (self.headers.get("x-api-key") == ANTHROPIC_KEY and self.headers.get("anthropic-version")
                  if anthropic else self.headers.get("Authorization") == f"Bearer {OPENAI_KEY}")
            if not ok:
                return self.reply(401, {"type": "error", "error": {"type": "authentication_error",
                                                                   "message": "invalid x-api-key"}})
            pages = PAGES[url.path]
            page = query.get("page", [None])[0]
            index = 0 if page is None else next(i + 1 for i, p in enumerate(pages) if p["next_page"] == page)
            self.reply(200, pages[index])

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", seen, failures
    httpd.shutdown()
    httpd.server_close()


def run_cli(capsys, *args):
    from nomira.cli import main
    capsys.readouterr()
    rc = main([*map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_fetch_anthropic_pages_groups_and_cents(fake_api, tmp_path, monkeypatch, capsys):
    base, seen, _ = fake_api
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)
    dbp = tmp_path / "t.db"
    rc, out, err = run_cli(capsys, "--reconcile-fetch", "--provider", "anthropic", "--base-url", base, "--since",
                           "20261103", "--until", "20261104", "--db", dbp, "--json")
    assert rc == 0, err
    assert json.loads(out)["lines"] == 3
    cost_calls = [q for path, q, _ in seen if path.endswith("cost_report")]
    assert len(cost_calls) == 2 and cost_calls[1]["page"] == ["page_MjAyNi0xMS0wNA=="]  # followed next_page
    assert cost_calls[0]["starting_at"] == ["2026-11-03T00:00:00Z"] and cost_calls[0]["ending_at"] == [
        "2026-11-05T00:00:00Z"] and cost_calls[0]["bucket_width"] == ["1d"]
    assert cost_calls[0]["group_by[]"] == ["workspace_id", "description"]
    assert all(h.get("anthropic-version") == "2023-06-01" for _, _, h in seen)
    db = store.open_db(dbp)
    got = {(ln["account"], ln["day"], ln["model"]): (ln["cost_usd"], ln["tokens"]) for ln in ledger.bill_lines(db, "")}
    assert got == {("default", "2026-11-03", "claude-opus-4-7"): (pytest.approx(2.005), 4700),  # cents -> dollars
                   ("wrkspc_1", "2026-11-03", "claude-sonnet-4-5"): (pytest.approx(0.995), None),
                   ("default", "2026-11-04", "claude-opus-4-7"): (pytest.approx(10.0), None)}
    assert ANTHROPIC_KEY.encode() not in dbp.read_bytes()  # never stored


def test_fetch_openai_amount_shapes_currency_and_requests(fake_api, tmp_path, monkeypatch, capsys):
    base, seen, _ = fake_api
    monkeypatch.setenv("OPENAI_ADMIN_KEY", OPENAI_KEY)
    dbp = tmp_path / "t.db"
    rc, out, err = run_cli(capsys, "reconcile", "fetch", "--provider", "openai", "--base-url", base, "--since",
                           "20261103", "--until", "20261103", "--db", dbp, "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["skipped_currency"] == {"EUR": 1}
    costs = [q for path, q, _ in seen if path.endswith("/costs")]
    assert costs[0]["start_time"] == [str(day_ts("2026-11-03"))] and costs[0]["end_time"] == [
        str(day_ts("2026-11-04"))] and costs[0]["group_by"] == ["project_id", "line_item"]
    assert costs[1]["page"] == ["page_2"]
    (line,) = ledger.bill_lines(store.open_db(dbp), "")
    assert (line["provider"], line["account"], line["model"]) == ("openai", "proj_1", "gpt-5-codex")
    assert line["cost_usd"] == pytest.approx(2.25)  # {value}, {amount} and a bare number, all dollars
    assert (line["tokens"], line["requests"]) == (5700, 12)  # input_tokens already includes cached


@pytest.mark.parametrize("provider,path,status,body,expect", [
    ("anthropic", "/v1/organizations/cost_report", 401,
     {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
     "HTTP 401: invalid x-api-key (authentication_error)"),
    ("openai", "/v1/organization/costs", 500,
     {"error": {"message": f"upstream failed for key {OPENAI_KEY}", "type": "server_error", "code": None}},
     "HTTP 500: upstream failed for key [key] (server_error)"),
])
def test_fetch_errors_surface_the_provider_body_without_the_key(fake_api, tmp_path, monkeypatch, capsys, provider,
                                                                 path, status, body, expect):
    base, _, failures = fake_api
    failures[path] = (status, body)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_ADMIN_KEY", OPENAI_KEY)
    rc, out, err = run_cli(capsys, "reconcile", "fetch", "--provider", provider, "--base-url", base,
                           "--db", tmp_path / "t.db")
    assert rc == 2 and expect in err and err.count("\n") == 1  # one line, no traceback
    assert ANTHROPIC_KEY not in err and OPENAI_KEY not in err


def test_fetch_never_follows_a_redirect_with_the_key(fake_api, tmp_path, monkeypatch, capsys):
    base, seen, failures = fake_api
    failures["/v1/organization/costs"] = (302, {})
    monkeypatch.setenv("OPENAI_ADMIN_KEY", OPENAI_KEY)
    rc, _, err = run_cli(capsys, "reconcile", "fetch", "--provider", "openai", "--base-url", base,
                         "--db", tmp_path / "t.db")
    assert rc == 2 and "HTTP 302" in err
    assert [path for path, _, _ in seen] == ["/v1/organization/costs"]  # /elsewhere never asked


def test_fetch_needs_the_key_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    rc, _, err = run_cli(capsys, "reconcile", "fetch", "--provider", "openai", "--db", tmp_path / "t.db")
    assert rc == 2 and "OPENAI_ADMIN_KEY" in err


def test_help(capsys):
    from nomira.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["reconcile", "--help"])
    assert exc.value.code == 0 and "--cost-tolerance" in capsys.readouterr().out


def test_cli_import_and_report(tmp_path, capsys):
    f = tmp_path / "bill.csv"
    f.write_text(MESSY_CSV)
    dbp = tmp_path / "t.db"
    rc, _, err = run_cli(capsys, "--reconcile-import", f, "--db", dbp)
    assert rc == 0 and "skipped 1 row(s) in EUR" in err and "2 unreadable row(s)" in err
    rc, out, _ = run_cli(capsys, "reconcile", "--db", dbp)
    assert rc == 0 and "reconciled (billed days)  $1,245.75" in out and "Subscription usage is excluded" in out
    assert "import:bill.csv" in out and "skipped rows 1 in EUR, 1 in GBP (not converted); 2 unreadable" in out
    rc, out, _ = run_cli(capsys, "reconcile", "--db", dbp, "--json")
    assert json.loads(out)["counts"] == {"billed_not_observed": 3}


# --- the /reconcile page ---

def get(app, path, token=None):
    import io
    route, _, query = path.partition("?")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": route, "QUERY_STRING": query, "wsgi.input": io.BytesIO(),
               "REMOTE_ADDR": "127.0.0.1", **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {})}
    got = {}
    body = b"".join(app(environ, lambda status, headers: got.update(status=status, headers=dict(headers))))
    return int(got["status"].split()[0]), got["headers"], body.decode()


def test_page_tenant_scoping_escaping_and_twins(store_target, monkeypatch):
    from nomira.commands.serve import make_app
    monkeypatch.delenv("NOMIRA_DASHBOARD_PASSWORD", raising=False)
    monkeypatch.delenv("NOMIRA_INGEST_TOKEN", raising=False)
    dbp = store_target
    db = store.open_db(dbp)
    key_a, key_z = store.create_tenant(db, "acme"), store.create_tenant(db, "zeta")
    store.ingest(db, [ev(1, "2026-11-03", 4.0)], tenant="acme")
    store.ingest(db, [ev(2, "2026-11-03", 1.0)], tenant="zeta")
    for tenant, account, cost in (("acme", "<script>alert(1)</script>", 5.0), ("zeta", "=HYPERLINK(\"x\")", 1.0)):
        text = f'date,model,account,cost\n2026-11-03,claude-opus-4-7,"{account.replace(chr(34), 2 * chr(34))}",{cost}\n'
        parsed = parse_file(text.encode(), "b.csv", provider="anthropic")
        ledger.save_lines(db, tenant, "anthropic", "import:b.csv", merge(parsed.lines), parsed.summary())
    app = make_app(dbp, "127.0.0.1")
    _, _, text = get(app, "/reconcile.json?period=all", key_a)  # no run yet: says what to do, reads no events
    assert json.loads(text)["windows"] == [] and "Run `nomira reconcile`" in json.loads(text)["next_steps"][0]
    reconcile(db)  # the run the page shows: every tenant, acme's adjustment recorded

    status, _, html = get(app, "/reconcile?period=all&tenant=zeta", key_a)  # asks for zeta, gets acme
    assert status == 200
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "HYPERLINK" not in html and "zeta" not in html
    assert "Reconciled (billed days)" in html and "Estimated (billed days)" in html
    assert "Subscription usage is excluded" in html
    status, _, text = get(app, "/reconcile.json?period=all", key_a)
    doc = json.loads(text)
    assert {w["tenant"] for w in doc["windows"]} == {"acme"}
    assert doc["totals"]["reconciled_usd"] == 5.0 and doc["windows"][0]["adjustment_usd"] == pytest.approx(1.0)
    status, headers, text = get(app, "/reconcile.csv?period=all", key_z)
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    rows = text.splitlines()
    assert rows[0].startswith("tenant,provider,day") and len(rows) == 2
    assert "zeta" in rows[1] and "'=HYPERLINK" in rows[1] and "acme" not in text  # formula neutralized
    # the admin (open localhost, no password) sees both tenants; the home card links the page
    _, _, text = get(app, "/reconcile.json?period=all")
    assert {w["tenant"] for w in json.loads(text)["windows"]} == {"acme", "zeta"}
    assert json.loads(text)["unrecorded_adjustments"] == 0  # zeta is within tolerance
    _, _, home = get(app, "/?period=all", key_a)
    assert "Invoice reconciliation" in home and 'href="/reconcile?period=all"' in home
    assert "Reconciled (billed): $5.00 over 1 day(s); 1 adjustment(s)" in home
    assert get(app, "/reconcile", None)[0] == 200 and get(app, "/reconcile.xml")[0] == 404
    # a later event or import marks the stored run stale, until the next run
    store.ingest(db, [ev(3, "2026-11-03", 1.0)], tenant="acme")
    doc = json.loads(get(app, "/reconcile.json?period=all", key_a)[2])
    assert doc["stale"] == ["1 event(s) arrived after this run"] and doc["next_steps"][0].startswith("Run `nomira")
    reconcile(db, tenant="acme")  # a newer run for acme only: acme's view uses it, the withdrawn adjustment too
    doc = json.loads(get(app, "/reconcile.json?period=all", key_a)[2])
    assert doc["stale"] == [] and doc["counts"] == {"within": 1} and doc["adjustments"] == []


def test_migration_on_an_old_store_and_empty_import(tmp_path, capsys):
    path = tmp_path / "old.db"
    old = store.open_db(path, migrate_upto=6)  # the shape before reconciliation (today's ingest needs 0010)
    old.close()
    db = store.open_db(path)
    store.ingest(db, [ev(1, "2026-11-03", 1.0)])
    assert "0009_reconcile" in {r[0] for r in db.execute("SELECT name FROM _nomira_migrations")}
    assert ledger.bill_lines(db, None) == [] and len(store.canonical_rows(db)) == 1
    f = tmp_path / "eur.csv"
    f.write_text("date,model,cost,currency\n2026-11-03,claude-opus-4-7,3.00,EUR\n")
    rc, _, err = run_cli(capsys, "reconcile", "import", f, "--db", path)
    assert rc == 2 and "no USD bill lines in 1 row(s)" in err and "EUR" in err


def test_hostile_values_are_counted_not_crashing():
    text = ("date,model,cost,tokens\n999999999999999999999,claude-opus-4-7,1,1\n2026-11-03,claude-opus-4-7,nan,1\n"
            "2026-11-03,claude-opus-4-7,1e400,2\n2026-11-04,claude-opus-4-7,1,inf\n")
    r = parse_file(text.encode(), "x.csv")
    assert r.garbage == 3 and [(ln.day, ln.cost_usd, ln.tokens) for ln in r.lines] == [("2026-11-04", 1.0, None)]
    doc = {"data": [{"starting_at": "2026-11-03T00:00:00Z",
                     "results": [{"amount": None}, {"amount": {"value": "x"}}, "str", {"foo": 1}]},
                    {"start_time": "nope", "results": [{"amount": 1}]}]}
    r = parse_file(json.dumps(doc).encode(), "x.json")
    assert r.lines == [] and r.garbage == 5 and r.rows == 5


def test_rows_of_no_shape_a_bill_has_are_counted_not_an_error():
    """A date past the last UTC day, a count no bill holds (1e30, negative), a number or a list where a
    name belongs: the row is counted unreadable and the rest of the file imported; a JSON number date
    20261103 is that day (not 1970's seconds); JSON nested past the parser's depth is a format error."""
    rows = [{"date": "9999-12-31T23:59:59-05:00", "model": "m", "cost": 1},
            {"date": "2026-11-03", "model": "claude-opus-4-7", "cost": 1, "tokens": 1e30},
            {"date": "2026-11-03", "model": "claude-opus-4-7", "cost": 1, "currency": 5},
            {"date": "2026-11-03", "provider": 5, "cost": 1},
            {"date": "2026-11-03", "model": ["a"], "cost": 1},
            {"date": 20261104, "model": "claude-opus-4-7", "cost": 2, "tokens": -5}]
    r = parse_file(json.dumps(rows).encode(), "x.json", provider="anthropic")
    assert [(ln.day, ln.cost_usd, ln.tokens) for ln in r.lines] == [("2026-11-03", 1.0, None), ("2026-11-04", 2.0, None)]
    assert r.garbage == 4 and r.rows == 6
    with pytest.raises(BillFormatError):
        parse_file(b"[" * 100_000, "deep.json")
