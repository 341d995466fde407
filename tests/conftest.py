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
