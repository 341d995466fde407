"""Generated docs never drift: the user guide regenerates without a diff; `--help` works for every command."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(*args, timeout=240):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_top_level_help_lists_every_command():
    # a `%` in a command's one-line help once made `nomira --help` itself fail
    from nomira.cli import COMMANDS
    p = _tool("-m", "nomira", "--help", timeout=60)
    assert p.returncode == 0, p.stderr
    assert all(f"    {name}" in p.stdout for name in COMMANDS)


def test_user_guide_regenerates_without_a_diff():
    p = _tool("tools/gen_guide.py", "--check")
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]


def test_user_guide_covers_every_command():
    from nomira.cli import COMMANDS
    guide = (ROOT / "docs" / "USER-GUIDE.md").read_text()
    for name, (_module, _help, example) in COMMANDS.items():
        assert f"## nomira {name}\n" in guide and f"$ nomira {name} --help\n" in guide, name
        assert example in guide, name
