"""`nomira blocks --live`: redraws in place on a terminal, prints once when piped, Ctrl-C exits 0."""
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nomira.commands.live import CLEAR, refresh

ROOT = Path(__file__).parent.parent


def test_blocks_live_prints_once_when_not_a_tty():
    r = subprocess.run([sys.executable, "-m", "nomira", "blocks", "--live", "--interval", "0.5", "--path",
                        "tests/fixtures/claude"], capture_output=True, cwd=ROOT, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"})
    out = r.stdout.decode()
    assert r.returncode == 0 and out.count("Block start") == 1 and CLEAR not in out


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_refresh_redraws_until_ctrl_c():
    renders, sleeps = [], []

    def render():
        renders.append(1)
        return f"frame {len(renders)}"

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt
    stream = Tty()
    assert refresh(render, 2.0, stream, sleep) == 0
    out = stream.getvalue()
    assert len(renders) == 3 and sleeps == [2.0, 2.0, 2.0]
    assert out.count(CLEAR) == 3 and "frame 3" in out and "Ctrl-C to exit" in out and "Traceback" not in out


def test_ctrl_c_during_a_render_exits_cleanly():
    def render():
        raise KeyboardInterrupt
    assert refresh(render, 1.0, Tty(), lambda s: None) == 0


def test_ctrl_c_on_a_real_terminal_exits_zero_without_traceback():
    import pty
    import select
    import signal
    import time
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "nomira", "blocks", "--live", "--interval", "0.5", "--path",
                          "tests/fixtures/claude"], stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"})
    os.close(slave)
    poll = select.poll()  # not select(): a long suite's descriptors can pass FD_SETSIZE (1024)
    poll.register(master, select.POLLIN)
    seen, deadline = b"", time.monotonic() + 30
    try:
        while seen.count(b"Block start") < 2 and time.monotonic() < deadline:  # two frames drawn
            if poll.poll(500):
                seen += os.read(master, 65536)
        p.send_signal(signal.SIGINT)
        # keep reading while it exits, as a terminal does (a pty nobody drains can fill and block a write)
        deadline, closed = time.monotonic() + 30, False
        while p.poll() is None and time.monotonic() < deadline:
            if closed or not poll.poll(200):
                time.sleep(0.05)
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other end closed: it is exiting
                closed = True
                continue
            closed = not chunk
            seen += chunk
        if p.poll() is None:  # where it hangs (faulthandler's dump on SIGABRT), for the failure message
            p.send_signal(signal.SIGABRT)
            time.sleep(1)
            while not closed and poll.poll(200):
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
            pytest.fail("no exit 30 s after Ctrl-C:\n" + seen[-4000:].decode(errors="replace"))
        rc = p.returncode
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    assert seen.count(b"Block start") >= 2 and CLEAR.encode() in seen
    assert rc == 0 and b"Traceback" not in seen


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # (no traceback printed either)
def test_ctrl_c_swallowed_by_a_finalizer_still_ends_the_loop():
    """A Ctrl-C that lands while a finalizer runs during a render (Python prints and drops the
    KeyboardInterrupt raised there) still ends the redraw after that frame: the handler notes it.
    Seen once in a loaded full suite: `blocks --live` kept redrawing for 30 s after Ctrl-C."""
    import gc
    import signal

    class Collected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))  # (Python code after the signal: its handler runs here, inside __del__)

    renders = []

    def render():
        renders.append(1)
        if len(renders) == 2:
            x = Collected()
            x.cycle = x
            del x
            gc.collect()
        if len(renders) > 5:
            pytest.fail("still redrawing after Ctrl-C")
        return "frame"

    before = signal.getsignal(signal.SIGINT)
    assert refresh(render, 0.0, Tty(), lambda s: None) == 0
    assert len(renders) == 2 and signal.getsignal(signal.SIGINT) is before
