"""toml_lite.loads equals tomllib.loads (the same document, or the same error) on agents' configs and on
random documents built from TOML's pieces, valid and not."""
import random
import tomllib

import pytest

from conftest import FIXTURES
from nomira.sources import toml_lite

PIECES = ['[models."work-gpt"]', "[providers.openai-work]", "[a]", "[a.b]", "[ a . b ]", '[""]', "[[arr]]", "[a.x]",
          'default_model = "work-gpt"', 'model = "gpt-4.1"', "max_context_size = 1047576", "x = 1", "x = 2",
          "b = true", "b = false", "a = 3", 'api_key = ""', 'name = "caf\u00e9 \\"q\\""', "f = 1.5", "n = 007",
          "n = -0", "n = +1", "d = 2025-11-08", "arr = [1, 2]", "t = {x = 1}", "dotted.key = 1", "s = 'lit'",
          "# a comment", "", "   ", 'k = "v" # trailing', "k2 = 5 # c", "bad line", 'q = "tab\there"',
          "\u00e9 = 1", "x=1", 'tools = ["save", "shell"]', "e = []", 'm = [1, "a,]", true,]', "bad = [1 2]",
          "nest = [[1]]", 'w = [ "x" , ]', "c = [1,,2]", "c = [,]", "c = [05]", "c = [-1, 0]", "[a] # c", "x = 99999999999999999999", "b = True", 'z = "a\x01"', "\r"]


def _both(text):
    try:
        want = ("ok", tomllib.loads(text))
    except tomllib.TOMLDecodeError:
        want = ("error", None)
    try:
        got = ("ok", toml_lite.loads(text))
    except tomllib.TOMLDecodeError:
        got = ("error", None)
    return got, want


def test_random_documents_read_as_tomllib_reads_them():
    rnd = random.Random(27)
    plain = 0
    for _ in range(4000):
        text = "\n".join(rnd.choice(PIECES) for _ in range(rnd.randrange(0, 9)))
        got, want = _both(text)
        assert got == want, text
        plain += toml_lite._plain(text) is not None
    assert plain > 300  # (the subset is read here often enough for the comparison to mean something)


@pytest.mark.parametrize("path", sorted(FIXTURES.rglob("*.toml")), ids=str)
def test_fixture_configs(path):
    text = path.read_text()
    assert toml_lite.loads(text) == tomllib.loads(text)
    with open(path, "rb") as fh:
        assert toml_lite.load(fh) == tomllib.loads(text)


def test_kimi_config_read_without_tomllib():
    text = '''default_model = "work-gpt"\n\n[models."work-gpt"]\nprovider = "openai-work"\nmodel = "gpt-4.1"
max_context_size = 1047576\n\n[providers.openai-work]\ntype = "openai_legacy"\napi_key = ""\n'''
    assert toml_lite._plain(text) == tomllib.loads(text)
