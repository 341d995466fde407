"""A finished report's cache writes, done after the command has answered.

Storing a cold run's output for the next run (the output file, the replay's file with the stats of
every folder it depended on) took 20-50 ms after the report was written, on a run of 6,386 small
files, and writing the scan's entries into SQLite 45-55 ms of the parent's CPU while the workers
needed both cores; the command ended only then. A command line's process now keeps those writes
(`scancache.Spool`), writes its output, closes its database connection (none may cross a fork) and
forks a child for the writes, then ends: the child holds the cache folder's writer lock (`flock`,
taken before the fork, so no later run can start before it is held) until it is done, opening a
connection of its own, and every run waits for that lock (`wait`, at most WAIT_S) before it reads
the cache. POSIX only; elsewhere, and when the fork fails, the writes are done before the command ends.
"""
from __future__ import annotations

import os

LOCK = "writing.lock"  # in the cache folder (`dirs.cache_home`)
WAIT_S = 5.0  # a run waits this long at most for an earlier run's writes, then goes on without them
LIFE_S = 60  # a writer still writing after this long is ended (SIGALRM): a run never waits on it again


def lock_path(cache_folder: str) -> str:
    return os.path.join(cache_folder, LOCK)


def wait(cache_folder: str) -> None:
    """Return once no earlier run is still writing into `cache_folder` (or after WAIT_S)."""
    try:
        fd = os.open(lock_path(cache_folder), os.O_RDONLY)
    except OSError:  # (no run ever wrote behind: nothing to wait for)
        return
    try:
        import fcntl
        import time
        deadline = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                now = time.monotonic()
                deadline = deadline or now + WAIT_S
                if now >= deadline:
                    return  # (a writer stuck on a slow disk: the run reads what is there)
                time.sleep(0.002)
    except (ImportError, OSError):
        return
    finally:
        os.close(fd)


def run(work, cache_folder: str) -> bool:
    """work() in a forked child holding the writer lock of `cache_folder`, this process free to end at
    once; False (nothing done) where that cannot be: no fork, no lock. Standard output and error must
    be flushed first: the child's are /dev/null (a reader of this process's pipe sees its end when this
    process ends, not when the child does), so the child's errors are not shown: it writes only a
    cache, which a later run rebuilds if it is missing."""
    if not hasattr(os, "fork") or os.getpid() == 1:  # (a container's first process: its end ends them all)
        return False
    try:
        import fcntl
        os.makedirs(cache_folder, exist_ok=True)
        fd = os.open(lock_path(cache_folder), os.O_RDWR | os.O_CREAT, 0o600)
    except (ImportError, OSError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # (another run's writes, if any, finish first)
        pid = os.fork()
    except OSError:
        os.close(fd)
        return False
    if pid != 0:
        os.close(fd)  # (the lock stays with the child's copy of the descriptor)
        return True
    code = 1
    try:  # the child: never returns
        null = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # (a Ctrl-C meant for the shell's next command)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(LIFE_S)  # a writer stuck for any reason ends, and with it its lock
        work()
        code = 0
    except BaseException:  # noqa: BLE001 - only a cache: the next run does the work
        pass
    finally:
        os._exit(code)
