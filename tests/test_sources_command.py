"""`nomira sources`: every known source, found or not, on a home holding every agent's fixtures at its
default location; and `nomira --json` over that home prices every call whose model is in the bundled table."""
import json
import shutil

import pytest

import test_sources_claude_forks as forks
import test_sources_crush as crush
import test_sources_goose as goose
import test_sources_hermes as hermes
import test_sources_kilo as kilo
import test_sources_shelley as shelley
import test_sources_unsloth as unsloth
import test_sources_zcode as zcode
import test_sources_zed as zed
from conftest import FIXTURES
from nomira.cli import main
from nomira.sources.registry import SOURCES

# fixture folder -> where the agent keeps it under $HOME (XDG dirs as conftest sets them)
LAYOUT = {"claude": ".claude", "codex": ".codex", "opencode": ".local/share/opencode", "gemini/.gemini": ".gemini",
          "qwen/.qwen": ".qwen", "amp": ".local/share/amp", "copilot": ".copilot", "kimi/.kimi": ".kimi",
          "droid": ".factory", "pi/sessions": ".pi/agent/sessions", "cline/Code": ".config/Code",
          "openhands": ".openhands", "aider": "src", "mux": ".mux", "gptme": ".local/share/gptme", "vibe": ".vibe", "openclaw": ".openclaw",
          "pi/sessions#omp": ".omp/agent/sessions", "pi/sessions#prime": ".prime/agent/sessions",
          "lmstudio": ".lmstudio", "kimi/.kimi#code": ".kimi-code",
          "poolside": ".local/state/poolside"}
LAYOUT.update({"openclaw#qclaw": ".qclaw",
               "kimi/.kimi#work": ".config/kimi-desktop/daimon-share/daimon/runtime/kimi-code/home",
               "openclaude": ".openclaude", "codex/sessions#traex": ".trae/cli/sessions",
               "posit": ".posit/assistant", "openclaude/projects#qoder": ".qoder/projects"})
LAYOUT["vscode_copilot/Code"] = ".config/Code"
LAYOUT["grok/.grok"] = ".grok"
LAYOUT["pi/sessions#senpi"] = ".senpi/agent/sessions"
LAYOUT["codex/sessions#augure"] = ".augure/sessions"  # s27d
LAYOUT["evener"] = ".local/state/evener"
LAYOUT["workbuddy/.workbuddy"] = ".workbuddy"
LAYOUT["opencodereview/.opencodereview"] = ".opencodereview"
LAYOUT["copilot_otel/.copilot"] = ".copilot"
LAYOUT["codebuddy/.codebuddy"] = ".codebuddy"
LAYOUT["fx"] = ".fx"  # issue 27, s27e
LAYOUT["cherry_studio/CherryStudio"] = ".config/CherryStudio"
LAYOUT["reasonix/.reasonix"] = ".reasonix"
LAYOUT["muse"] = ".local/share/muse"
LAYOUT["commandcode/.commandcode"] = ".commandcode"
LAYOUT["trae_agent/work"] = "work"
LAYOUT["pi/sessions/--home-ana-src-shop--#cherry_pi"] = ".config/CherryStudio/Data/Agents/.pi/sessions"
LAYOUT["jcode"] = ".jcode"  # issue 27, s27c
LAYOUT["kimchi"] = ".config/kimchi"
LAYOUT["gjc"] = ".gjc"
LAYOUT["antigravity_cli/antigravity-cli"] = ".gemini/antigravity-cli"
LAYOUT["visualstudio_copilot"] = ".cache/VSGitHubCopilotLogs"
LAYOUT["dsh"] = ".dsh"
LAYOUT["aside"] = ".aside"
OPT_IN = {"NOMIRA_AIDER_PATHS": "src"}  # sources that read nothing unasked
OPT_IN["NOMIRA_TRAE_AGENT_PATHS"] = "work"


def populate(home, monkeypatch):
    for var, rel in OPT_IN.items():
        monkeypatch.setenv(var, str(home / rel))
    for src, dst in LAYOUT.items():
        shutil.copytree(FIXTURES / src.split("#")[0], home / dst, dirs_exist_ok=True)
    goose.make_db(home / ".local" / "share" / "goose" / "sessions")
    crush.make_project(home)
    hermes.make_db(home / ".hermes")
    kilo.make_db(home / ".local" / "share" / "kilo")
    zed.make_db(home / ".local" / "share" / "zed" / "threads")
    kilo.make_db(home / ".local" / "share" / "mimocode", "mimocode.db")
    kilo.make_db(home / ".local" / "share" / "icodemate", "icodemate.db")
    shelley.make_db(home / ".config" / "shelley")
    zcode.make_db(home / ".zcode" / "cli" / "db")
    hermes.make_db(home / ".augure-desktop")  # s27d: Augure Desktop keeps Hermes' state.db
    forks.cowork_home(home / ".config" / "Claude" / "local-agent-mode-sessions")
    unsloth.make_db(home / ".unsloth" / "studio")  # issue 27, s27c
    return home


def sources_json(capsys, *args):
    capsys.readouterr()
    assert main(["sources", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_source_listed_and_found(isolated_env, capsys, monkeypatch):
    populate(isolated_env, monkeypatch)
    doc = sources_json(capsys)
    rows = {r["source"]: r for r in doc["sources"]}
    assert set(rows) == set(SOURCES)  # every known source has a row
    missing = [k for k, r in rows.items() if not r["found"]]
    assert missing == []
    for k, r in rows.items():
        assert r["files"] >= 1 and r["looked_in"], k
        assert (r["calls"] >= 1) or k == "crush", k
    assert rows["crush"]["use_instead"] and any("no_token_data" in p for p in rows["crush"]["problems"])
    assert rows["openhands"]["calls"] == 4 and rows["openhands"]["sessions"] == 2
    assert "2 malformed" in rows["openhands"]["problems"]
    capsys.readouterr()
    assert main(["clients", "--no-color", "--wide"]) == 0  # the alias, as text
    out = capsys.readouterr().out
    assert f"{len(SOURCES)} of {len(SOURCES)} found" in out and "OpenHands CLI" in out


def test_empty_home_says_where_it_looked_and_names_opaque_agents(isolated_env, capsys):
    (isolated_env / ".codeium" / "windsurf").mkdir(parents=True)
    doc = sources_json(capsys)
    assert not any(r["found"] for r in doc["sources"])
    assert all(r["looked_in"] and r["looked_in"][0] for r in doc["sources"])
    assert [o["source"] for o in doc["unreadable_sources"]] == ["windsurf"]
    assert doc["unreadable_sources"][0]["reason"]
    known = {o["source"]: o for o in doc["known_unreadable"]}  # where it looked for each, seen or not
    assert known["windsurf"]["seen"] and not known["kiro"]["seen"] and known["kiro"]["looked_in"]


def test_report_over_the_home_prices_known_models_and_lists_the_rest(isolated_env, run_json, monkeypatch):
    from nomira.pricing.table import load_bundled
    populate(isolated_env, monkeypatch)
    r = run_json()
    table = load_bundled()
    assert set(r["sources"]) >= {"openhands", "claude_code", "codex", "opencode", "gemini_cli", "cline"}
    from nomira.reports.local_models import REASON
    for m in r["models"]:
        known = table.lookup(m["model"]) is not None
        local = m["provider"] == "local" and not known  # local models: $0 with the reason, never unpriced
        assert m["priced"] is (known or local), m["model"]
        assert (m["cost_usd"] > 0) if known and m["tokens"]["total"] else True, m["model"]
        assert (m["rate_source"] == REASON and m["cost_usd"] == 0) if local else True, m["model"]
    assert any(not m["priced"] for m in r["models"])  # e.g. OpenHands' local qwen2.5-coder
    assert r["totals"]["cost_usd"] == pytest.approx(sum(m["cost_usd"] for m in r["models"]), abs=1e-9)


def test_small_sources_scanned_in_one_pool_match_one_by_one(isolated_env, monkeypatch, tmp_path):
    """Many agents, few files each: every source's files read in one pool of workers, through the
    cache, the same calls (and one pool forked, not one per source)."""
    import nomira.sources.registry as sources
    from nomira.sources import scan, scancache, workers
    from nomira.cli import SOURCE_CHOICES
    populate(isolated_env, monkeypatch)
    every = SOURCE_CHOICES["all"]

    def calls(c):
        return sorted((e.source, e.session_id, e.message_id or "", e.tokens.total) for e in c.events)
    alone = calls(sources.collect(every, workers=1))
    monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
    forks = []
    real = workers.Forked.__init__
    monkeypatch.setattr(workers.Forked, "__init__", lambda self, *a: forks.append(1) or real(self, *a))
    cache = scancache.ScanCache(tmp_path / "scan.sqlite")
    cold = sources.collect(every, workers=2, cache=cache)
    assert len(forks) == 1
    assert calls(cold) == alone  # cold: workers fill the cache
    assert calls(sources.collect(every, workers=2, cache=cache)) == alone  # warm: served from it
    assert calls(sources.collect(every, workers=1, cache=cache)) == alone

