"""Scan workers as plain forked processes and pipes.

`multiprocessing.Pool` cost the parent of a cold scan about 0.1 s of CPU on a 2-core machine
(its import, three handler threads, pickling every result through a queue) while it had nothing
else to do, and that CPU was taken from the two workers reading the files. Here each worker is
a fork of the parent (it inherits the modules, the price table and `scan.PREFOLD`), takes runs
of job indexes from one shared pipe (dynamic: a worker stuck on a large file does not hold the
others up) and writes each result, framed, to a pipe of its own; the parent reads the frames as
they come and hands the results on in the order of the jobs. POSIX only (`usable()`).
"""
from __future__ import annotations

import marshal
import os
import select
import signal
import struct

from nomira.sources.pipes import widen

_TASK = struct.Struct("<II")  # first job index, jobs in the run
_FRAME = struct.Struct("<IBI")  # job index, kind, payload length
RESULT, ERROR = 0, 1
READ = 1 << 20


class WorkerError(RuntimeError):
    """A job raised in a worker (its traceback is the message), or a worker died."""


def usable() -> bool:
    return hasattr(os, "fork") and os.name == "posix"


MAX_RUNS = 4096  # every run is written at once: 32 KB at most, within a pipe's buffer


def guided(sizes: list[int], workers: int) -> list[tuple[int, int]]:
    """Runs of consecutive jobs (first, count), each about a 2*workers-th of the bytes not yet handed
    out: long runs first (few round trips), single files at the end, so the workers finish together
    (runs of a fixed number of files left one worker reading a last run of 30 MB alone on 1 GB)."""
    total = left = sum(sizes)
    floor = max(1 << 20, total // (MAX_RUNS // 2))
    runs: list[tuple[int, int]] = []
    i, n = 0, len(sizes)
    while i < n:
        target, j, got = max(left // (2 * workers), floor), i, 0
        while j < n and (j == i or got < target):
            got += sizes[j]
            j += 1
        runs.append((i, j - i))
        left -= got
        i = j
    return runs


class Forked:
    """fn(args[i]) for every i, computed by `workers` forked processes, yielded in order of i, each
    worker taking the next of `runs` (first, count, e.g. `guided`) when it is free. Results
    are marshal's values. `terminate()` stops the workers (always call it)."""

    def __init__(self, fn, args: list, workers: int, runs: list[tuple[int, int]]) -> None:
        self.args, self.pids, self.fds = args, [], []
        assert len(runs) <= MAX_RUNS and sum(c for _f, c in runs) == len(args)
        task_r, task_w = os.pipe()
        try:
            for _ in range(workers):
                r, w = os.pipe()
                widen(w)
                pid = os.fork()
                if pid == 0:  # the worker: never returns
                    os.close(r)
                    os.close(task_w)
                    for fd in self.fds:
                        os.close(fd)
                    _work(fn, args, task_r, w)
                os.close(w)
                self.pids.append(pid)
                self.fds.append(r)
            os.write(task_w, b"".join(_TASK.pack(first, count) for first, count in runs))
        except BaseException:
            self.terminate()
            raise
        finally:
            os.close(task_r)
            os.close(task_w)

    def __iter__(self):
        done: dict[int, object] = {}
        buffers = {fd: bytearray() for fd in self.fds}
        live = list(self.fds)
        want = 0
        while want < len(self.args):
            while want in done:
                yield done.pop(want)
                want += 1
            if want == len(self.args):
                break
            if not live:
                raise WorkerError("a scan worker stopped before finishing its files")
            ready, _, _ = select.select(live, [], [])
            for fd in ready:
                data = os.read(fd, READ)
                if not data:
                    live.remove(fd)
                    continue
                buf = buffers[fd]
                buf += data
                pos = 0
                while len(buf) - pos >= _FRAME.size:
                    index, kind, size = _FRAME.unpack_from(buf, pos)
                    end = pos + _FRAME.size + size
                    if len(buf) < end:
                        break
                    with memoryview(buf) as view, view[pos + _FRAME.size:end] as payload:
                        if kind == ERROR:
                            raise WorkerError(str(payload, "utf-8", "replace"))
                        done[index] = marshal.loads(payload)
                    pos = end
                del buf[:pos]

    def terminate(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
        self.pids = []


def _work(fn, args: list, tasks: int, out: int) -> None:
    """A worker's life: runs of jobs from `tasks` until it is empty, each result framed to `out`."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent reports it, the worker just ends
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with os.fdopen(out, "wb", buffering=READ) as w:
            while True:
                run = os.read(tasks, _TASK.size)
                if not run:
                    break
                first, count = _TASK.unpack(run)
                for i in range(first, first + count):
                    try:
                        payload = marshal.dumps(fn(args[i]))
                        kind = RESULT
                    except Exception:  # noqa: BLE001 - the parent raises it, with the worker's traceback
                        import traceback  # (only then: 3 ms of every pooled run's start)
                        payload = traceback.format_exc().encode("utf-8", "replace")
                        kind = ERROR
                    w.write(_FRAME.pack(i, kind, len(payload)))
                    w.write(payload)
                    if kind == ERROR:
                        w.flush()
                        code = 1
                        return
                w.flush()
    except BaseException:  # noqa: BLE001 - a broken pipe (the parent is gone) or a signal: just end
        code = 1
    finally:
        os._exit(code)
