"""Pipes widened to 1 MB where Linux allows it: the scan workers' result pipes, the fold's second half,
and standard output when a long report goes into a pipe (imported alone by a replayed report, which
starts nothing else)."""
from __future__ import annotations

PIPE_BYTES = 1 << 20


def widen(fd: int) -> None:
    """A pipe of 1 MB where Linux allows it (64 KB by default); nothing for a descriptor that is not
    a pipe. A worker's result pipe: with thousands of small files a worker filled 64 KB (~90 files'
    results) whenever the parent was busy writing the cache, and waited (hundreds of context
    switches a run); about 4% of a cold run's wall on 6,386 files. Standard output piped to a
    reader: a 7 MB report went in 107 writes, each waiting for the reader (8 ms of a 30 ms write)."""
    try:
        import fcntl
    except ImportError:  # (Windows)
        return
    command = getattr(fcntl, "F_SETPIPE_SZ", None)  # (Linux only)
    if command is None:
        return
    try:
        if fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) < PIPE_BYTES:  # (never shrunk: the reader may have widened it)
            fcntl.fcntl(fd, command, PIPE_BYTES)
    except OSError:  # (not a pipe; above /proc/sys/fs/pipe-max-size: the default stays)
        pass
