"""Price feeds and overrides against a local fake feed server; provenance; exact decimal parsing."""
import json
import random
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nomira.cli import main
from nomira.ledger.events import TokenCounts, UsageEvent
from nomira.pricing import feed
from nomira.pricing.engine import Pricer
from nomira.pricing.feed import resolved
from nomira.reports.aggregate import Tally

LITELLM = {
    "sample_spec": {"input_cost_per_token": 0},
    "claude-opus-4-7": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 6e-06,
                        "output_cost_per_token": 3e-05, "cache_read_input_token_cost": 6e-07,
                        "cache_creation_input_token_cost": 7.5e-06,
                        "cache_creation_input_token_cost_above_1hr": 1.2e-05},
    "claude-feedonly-9": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 2e-06,
                          "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 2e-07,
                          "cache_creation_input_token_cost": 2.5e-06,
                          "cache_creation_input_token_cost_above_1hr": 4e-06},
}
OPENROUTER = {"data": [
    {"id": "openai/gpt-9-mini", "name": "GPT-9 mini", "pricing": {"prompt": "0.0000004", "completion": "0.0000016",
                                                                  "input_cache_read": "0.0000001"}},
    {"id": "anthropic/claude-opus-4.7", "pricing": {"prompt": "0.000005", "completion": "0.000025"}},
]}


class FeedServer:
    def __init__(self):
        self.hits = {"/litellm.json": 0, "/models": 0}
        self.up = True
        srv = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
                body = json.dumps(LITELLM if self.path == "/litellm.json" else OPENROUTER).encode()
                self.send_response(200 if srv.up else 503)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feeds(monkeypatch):
    s = FeedServer()
    monkeypatch.setenv("NOMIRA_LITELLM_URL", s.base + "/litellm.json")
    monkeypatch.setenv("NOMIRA_OPENROUTER_URL", s.base + "/models")
    yield s
    s.close()


def event(model, **tok):
    tok.setdefault("reported_input", tok.get("input", 0))
    return UsageEvent("claude_code", "anthropic", model, datetime(2026, 11, 20, tzinfo=timezone.utc), "s", "p",
                      TokenCounts(**tok))


def write_transcript(path, model):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "type": "assistant", "timestamp": "2026-11-20T10:00:00.000Z", "sessionId": "s1", "version": "2.0.37",
        "requestId": f"req_{model}", "message": {"id": f"msg_{model}", "model": model, "usage": {
            "input_tokens": 1000, "output_tokens": 1000, "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0}}}) + "\n")


def test_fresh_feed_used_with_provenance(feeds, tmp_path, run_json):
    assert main(["prices", "--update"]) == 0
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    write_transcript(tmp_path / "a.jsonl", "claude-opus-4-7")
    write_transcript(tmp_path / "b.jsonl", "claude-feedonly-9")
    write_transcript(tmp_path / "c.jsonl", "gpt-9-mini")
    r = run_json("--path", tmp_path)
    models = {m["model"]: m for m in r["models"]}
    assert models["claude-opus-4-7"]["rate_source"] == f"litellm:{today}"
    assert models["claude-opus-4-7"]["cost_usd"] == pytest.approx((1000 * 6 + 1000 * 30) / 1e6)
    assert models["claude-feedonly-9"]["cost_usd"] == pytest.approx((1000 * 2 + 1000 * 10) / 1e6)  # feed only
    assert models["gpt-9-mini"]["rate_source"] == f"openrouter:{today}"
    assert models["gpt-9-mini"]["cost_usd"] == pytest.approx((1000 * 0.4 + 1000 * 1.6) / 1e6)


def test_fresh_cache_not_refetched_stale_cache_refreshed(feeds):
    now = datetime.now(timezone.utc)
    feed.update(now=now)
    assert feeds.hits["/litellm.json"] == 1
    feed.update(now=now + timedelta(hours=1))
    assert feeds.hits["/litellm.json"] == 1  # fresh for 24 hours
    status = feed.update(now=now + timedelta(hours=25))
    assert feeds.hits["/litellm.json"] == 2 and status["litellm"].startswith("updated")


def test_network_down_keeps_last_good_cache(feeds):
    now = datetime.now(timezone.utc)
    feed.update(now=now - timedelta(hours=30))
    before = (feed.cache_dir() / "litellm.json").read_text()
    feeds.up = False
    status = feed.update(now=now)
    assert "fetch failed" in status["litellm"] and "keeping the cache" in status["litellm"]
    assert (feed.cache_dir() / "litellm.json").read_text() == before
    # the kept cache is stale: the bundled table applies, and `prices` says so
    assert resolved().lookup("claude-opus-4-7").rate_source.startswith("bundled:")


def test_override_wins_over_feed_and_bundled(feeds, isolated_env):
    feed.update()
    cfg = isolated_env / ".config" / "nomira"
    cfg.mkdir(parents=True)
    (cfg / "prices.toml").write_text('[models."claude-opus-4-7"]\ninput = 1.0\noutput = 2.0\ncache_read = 0.1\n'
                                     'cache_write_5m = 1.25\ncache_write_1h = 2.0\n')
    price = resolved().lookup("claude-opus-4-7-20260416")
    assert price.rate_source == "override" and price.base.input == 1.0
    c = Pricer(resolved())(event("claude-opus-4-7", input=1_000_000, output=1_000_000))
    assert c.total_usd == pytest.approx(3.0) and c.rate_source == "override"


def test_bad_override_file_is_a_clear_error(isolated_env, capsys, tmp_path):
    cfg = isolated_env / ".config" / "nomira"
    cfg.mkdir(parents=True)
    (cfg / "prices.json").write_text('{"models": {"x": {"input": 1}}}')
    write_transcript(tmp_path / "a.jsonl", "claude-opus-4-7")
    assert main(["--path", str(tmp_path)]) == 2
    assert "needs at least input and output" in capsys.readouterr().err


def test_openrouter_decimal_strings_no_float_drift_over_1m_calls():
    models = feed.openrouter_models({"data": [{"id": "x/m", "pricing": {
        "prompt": "0.00000015", "completion": "0.0000006", "input_cache_read": "0.000000075"}}]})
    assert models["m"]["input"] == 0.15 and models["m"]["cache_read"] == 0.075
    from nomira.pricing.table import PriceTable, model_price_from_dict
    table = PriceTable({"m": model_price_from_dict("m", dict(models["m"], provider="openai"))})
    pricer, tally, exact = Pricer(table), Tally(), Decimal(0)
    rng = random.Random(5)
    rates = {"input": Decimal("0.00000015"), "output": Decimal("0.0000006"), "cache_read": Decimal("0.000000075")}
    ev = event("m")
    for _ in range(1_000_000):
        i, o, c = rng.randint(0, 20000), rng.randint(0, 3000), rng.randint(0, 200000)
        ev.tokens = TokenCounts(input=i, output=o, cache_read=c)
        tally.add(ev, pricer(ev))
        exact += i * rates["input"] + o * rates["output"] + c * rates["cache_read"]
    assert abs(Decimal(repr(tally.total_usd)) - exact) < Decimal("1e-6")


def test_prices_command_and_diff(feeds, capsys):
    assert main(["prices", "--update", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["update"]) == {"litellm", "openrouter"}
    assert main(["prices", "--diff", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    rows = {(r["model"], r["feed"]) for r in d["diff"]}
    assert ("claude-opus-4-7", "litellm") in rows  # feed says 6.0, bundled 5.0
    assert main(["prices", "claude-feedonly-9", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)["model"]
    assert m["rate_source"].startswith("litellm:") and m["rates"]["input"]["usd_per_mtok"] == 2.0
    assert main(["prices", "gpt-99-unknown", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["rate_source"] is None


def test_reprice_never_duplicates_events(feeds, tmp_path, capsys):
    write_transcript(tmp_path / "logs" / "a.jsonl", "claude-opus-4-7")
    db = tmp_path / "s.db"
    assert main(["ship", "--path", str(tmp_path / "logs"), "--db", str(db)]) == 0
    assert main(["prices", "--update"]) == 0  # new rates: the same call, re-priced
    assert main(["ship", "--path", str(tmp_path / "logs"), "--db", str(db), "--no-cache"]) == 0
    import sqlite3
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1


def test_prices_names_a_token_type_without_a_published_rate(capsys):
    """A model whose table has no cache-write rate (Qwen3 Coder Plus): said in words, not a crash."""
    from nomira.cli import main
    assert main(["prices", "qwen3-coder-plus"]) == 0
    out = capsys.readouterr().out
    assert "cache_write_5m  no published rate" in out and "input           $1.0000 / MTok" in out
