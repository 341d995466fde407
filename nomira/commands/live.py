"""Redraw a report in place every few seconds (`blocks --live`), like claude-monitor.

On a terminal: clear, draw, wait, repeat until Ctrl-C, which exits 0 without a traceback.
Not on a terminal (a pipe, a file, a CI log): print once and return, so a script never hangs.
"""
from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Callable

CLEAR = "\033[H\033[2J"


def refresh(render: Callable[[], str], interval: float, stream=None, sleep=time.sleep) -> int:
    stream = stream or sys.stdout
    if not (hasattr(stream, "isatty") and stream.isatty()):
        stream.write(render())
        stream.flush()
        return 0
    stopped: list[int] = []
    previous, hook = _catch_ctrl_c(stopped), sys.unraisablehook
    sys.unraisablehook = lambda u: None if isinstance(u.exc_value, KeyboardInterrupt) else hook(u)
    try:
        while not stopped:
            text = render()
            stream.write(f"{CLEAR}{text}\nupdated {datetime.now():%H:%M:%S}, every {interval:g} s; "
                         "Ctrl-C to exit\n")
            stream.flush()
            if not stopped:
                sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        sys.unraisablehook = hook
        if previous is not None:
            import signal
            signal.signal(signal.SIGINT, previous)
    stream.write("\n")
    stream.flush()
    return 0


def _catch_ctrl_c(stopped: list):
    """Ctrl-C noted in `stopped` as well as raised: a KeyboardInterrupt raised while a finalizer runs
    (a generator or connection collected during a render) is dropped by Python (printed with a
    traceback, which `refresh`'s unraisable hook keeps off the screen), and the loop, which checks
    `stopped`, ends anyway. The handler it replaced, or None (not the main thread)."""
    import signal

    def on_ctrl_c(signum, frame):
        stopped.append(signum)
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGINT, on_ctrl_c)
    except ValueError:  # (not the main thread: Python's own handling stays)
        return None
