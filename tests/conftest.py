import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
# Location overrides of the agents added by issue 22 (the agents' own and ccusage's).
AGENT_ENV = ("GEMINI_CLI_HOME", "GEMINI_DATA_DIR", "OPENCODE_DATA_DIR", "QWEN_RUNTIME_DIR", "QWEN_HOME",
             "QWEN_DATA_DIR", "AMP_DATA_DIR", "COPILOT_HOME", "GOOSE_PATH_ROOT", "APPDATA", "KIMI_SHARE_DIR", "KIMI_DATA_DIR", "FACTORY_HOME_OVERRIDE",
             "DROID_SESSIONS_DIR", "PI_AGENT_DIR",
             "PI_CODING_AGENT_DIR", "PI_CODING_AGENT_SESSION_DIR", "CLINE_DATA_DIR", "CLINE_DIR",
             "CRUSH_GLOBAL_DATA", "LOCALAPPDATA")
AGENT_ENV += ("OPENHANDS_CONVERSATIONS_DIR", "OPENHANDS_PERSISTENCE_DIR", "NOMIRA_AIDER_PATHS", "AIDER_CHAT_HISTORY_FILE", "ZED_DIR", "KILO_DIR", "MUX_ROOT", "GPTME_LOGS_HOME", "VIBE_HOME", "OPENCLAW_DIR", "OMP_DIR",
              "PRIME_AGENT_SESSION_DIR", "HERMES_HOME", "LM_STUDIO_CONVERSATIONS_DIR", "POOLSIDE_DIR", "VSCODE_COPILOT_DIR", "GROK_DIR", "SENPI_CODING_AGENT_SESSION_DIR", "SENPI_CODING_AGENT_DIR")  # issue 27 agents
AGENT_ENV += ("QCLAW_DIR", "KIMI_WORK_DIR", "MIMOCODE_DIR", "ICODEMATE_DIR", "OPENCLAUDE_PROJECTS_DIR",
              "OPENCLAUDE_CONFIG_DIR", "COWORK_DIR", "TRAEX_SESSIONS_DIR", "SHELLEY_DIR", "ZCODE_DIR", "POSIT_ASSISTANT_DIR", "QODER_PROJECTS_DIR")
AGENT_ENV += ("AUGURE_CODE_SESSIONS_DIR", "AUGURE_DESKTOP_DIR", "EVENER_STATE_DIR", "WORKBUDDY_PROJECTS_DIR", "OPENCODEREVIEW_DIR",
              "COPILOT_OTEL_FILE_EXPORTER_PATH", "CODEBUDDY_DIR")  # issue 27, s27d
AGENT_ENV += ("FX_SESSIONS_DIR", "USERPROFILE", "CHERRY_STUDIO_CLAUDE_DIR", "REASONIX_STATE_HOME", "REASONIX_HOME", "MUSE_SESSIONS_DIR", "CHERRY_STUDIO_PI_DIR", "COMMANDCODE_PROJECTS_DIR", "NOMIRA_TRAE_AGENT_PATHS")  # issue 27, s27e

AGENT_ENV += ("UNSLOTH_STUDIO_HOME", "STUDIO_HOME", "JCODE_HOME", "KIMCHI_CODING_AGENT_DIR", "GJC_CODING_AGENT_DIR", "GJC_CONFIG_DIR", "ANTIGRAVITY_CLI_DIR",
              "VISUALSTUDIO_COPILOT_DIR", "DSH_HOME", "DEEPSEEK_HARNESS_SESSIONS_DIR", "XUM_ROOT", "ASIDE_DIR")  # issue 27, s27c


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Tests never read the real ~/.claude or ~/.codex, nor write to the real XDG dirs."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"),
                     ("XDG_STATE_HOME", ".local/state"), ("XDG_DATA_HOME", ".local/share")):
        monkeypatch.setenv(var, str(home / sub))
    for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "NOMIRA_HOME", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    for var in AGENT_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return home


@pytest.fixture
def fixture_copy(tmp_path):
    """A private copy of tests/fixtures, for tests that modify files."""
    dst = tmp_path / "fx"
    shutil.copytree(FIXTURES, dst)
    return dst


@pytest.fixture
def run_json(capsys):
    from nomira.cli import main

    def run(*args):
        capsys.readouterr()  # only this command's output
        rc = main(["--json", *map(str, args)])
        out = capsys.readouterr().out
        assert rc == 0
        return json.loads(out)
    return run


@pytest.fixture
def stored_events():
    """The wire events a store received, in order (its raw_events bodies), once nomira.track's
    background writer has written what it queued."""
    import sys

    from nomira.ledger import store

    def read(path):
        if "nomira.integrations.tracking" in sys.modules:
            sys.modules["nomira.integrations.tracking"].flush(10)
        db = store.open_db(path)
        try:
            return [json.loads(b) for (b,) in db.execute("SELECT body FROM raw_events ORDER BY id")]
        finally:
            db.close()
    return read


@pytest.fixture
def collector(tmp_path, monkeypatch):
    """A real collector on loopback (open ingest, bound to localhost): (url, path of its store)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from nomira.commands.serve import ThreadingWSGIServer, make_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass
    monkeypatch.delenv("NOMIRA_INGEST_TOKEN", raising=False)
    path = tmp_path / "collector.db"
    httpd = make_server("127.0.0.1", 0, make_app(path, "127.0.0.1"), server_class=ThreadingWSGIServer,
                        handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", path
    httpd.shutdown()
    httpd.server_close()


# --- PostgreSQL: one throwaway cluster per session, a fresh schema per test ---

@pytest.fixture(scope="session")
def pg_cluster():
    import sys
    import warnings

    from pg_cluster import CannotStart, Cluster
    try:
        import psycopg  # noqa: F401
        cluster = Cluster.start()
    except (ImportError, CannotStart) as exc:
        msg = f"POSTGRESQL TESTS SKIPPED: {exc} (pip install 'psycopg[binary]'; apt-get install postgresql)"
        print("\n" + "!" * 78 + f"\n{msg}\n" + "!" * 78, file=sys.__stderr__, flush=True)
        warnings.warn(msg)
        pytest.skip(msg)
    yield cluster
    cluster.stop()


_schemas = iter(range(1, 1 << 30))


@pytest.fixture
def pg_url(pg_cluster):
    """A postgresql:// URL whose tables live in a schema of their own (the cluster goes at the end)."""
    name = f"t{next(_schemas)}"
    pg_cluster.admin(f"CREATE SCHEMA {name}")
    yield pg_cluster.url(schema=name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path):
    """The store a test runs against: an SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return tmp_path / "collector.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def local_utc(monkeypatch):
    """This machine's local time is UTC: for agents that log naive local timestamps."""
    import time
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def no_zstd(monkeypatch):
    """A Python without a zstd decoder (before 3.14, without the zstandard package)."""
    from nomira.sources import compressed
    monkeypatch.setattr(compressed, "_stdlib", lambda: None)
    monkeypatch.setattr(compressed, "_zstandard", lambda: None)


def zstd_compress(data: bytes) -> bytes:
    """A zstd frame of `data` (Python 3.14's codec, else the zstandard package of the test extra)."""
    try:
        from compression import zstd
        return zstd.compress(data)
    except ImportError:
        import zstandard
        return zstandard.ZstdCompressor().compress(data)
