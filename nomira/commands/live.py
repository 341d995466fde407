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
    try:
        while True:
            text = render()
            stream.write(f"{CLEAR}{text}\nupdated {datetime.now():%H:%M:%S}, every {interval:g} s; "
                         "Ctrl-C to exit\n")
            stream.flush()
            sleep(interval)
    except KeyboardInterrupt:
        stream.write("\n")
        stream.flush()
        return 0
