"""A history's deduplication and fold in two processes at once, split by session.

After the cold scan of many small files the parent deduplicated, priced and folded every call
and made every session's row alone (0.34 s of 22,290 calls in 6,386 sessions) while the other
core idled: a scan worker's fold of each whole file costs more than it saves there (a fixed
~40 us a file). Here the parent forks once and each process takes the files of half the
sessions. A half is exact when no call is in both: every copy of a call shares its dedup key (the
source's `partition_key`), so sessions whose files share a key are kept on one side (the
connected sessions of `sides`), and each side deduplicates exactly what the whole would. Each
side can then finish what depends only on its sessions (a session's row), and the caller
merges what spans both (totals, models). Only sources whose files' events are their own records
deduplicated (`PREFOLD`) are split; every other source's files stay on the parent's side.

The child sends its result as marshal's values through a pipe, after its length. If it fails in
any way (an error, a signal, a value marshal does not take, a result cut short), the parent
computes that side itself: the result never depends on the child.
"""
from __future__ import annotations

import atexit
import gc
import marshal
import os
import signal
import struct

from nomira.sources.pipes import widen

MIN_RECORDS = 8192  # below, one process folds in less time than a fork and the merge take


def usable() -> bool:
    return hasattr(os, "fork") and os.name == "posix"


PARENT_SHARE = 0.55  # of the records, for side 0 (the parent's): the child's side runs slower (its
# first write to each page it shares with the parent copies the page), and the parent has the merge after


class Linked:
    """The sessions of one source's files and the calls that link them, built file by file as the scan
    hands the files on (their records are then in the processor's cache: 25 ms for 6,386 files
    afterwards, most of it waiting for memory), for `sides`."""

    def __init__(self, key, session_of) -> None:
        self.key, self.session_of = key, session_of
        self.root: dict[str, str] = {}
        self.owner: dict = {}  # a call's key -> the first session holding it
        self.units: list[str] = []  # each file's session, in order
        self.weights: list[int] = []

    def find(self, u: str) -> str:
        root = self.root
        while root[u] != u:
            root[u] = u = root[root[u]]
        return u

    def add(self, path: str, records: list) -> None:
        u = self.session_of(path)
        self.units.append(u)
        self.weights.append(len(records) + 1)
        if u not in self.root:
            self.root[u] = u
        keys = set(map(self.key, records))
        keys.discard(None)
        owner = self.owner
        if owner.keys().isdisjoint(keys):  # (a file's calls its own: set operations, no loop in Python)
            owner.update(dict.fromkeys(keys, u))
            return
        for k in keys:  # (a resumed session's copies, a sub-agent file's calls)
            v = owner.setdefault(k, u)
            if v is not u and v != u:
                a, b = self.find(u), self.find(v)
                if a != b:
                    self.root[b] = a

    def sides(self) -> list[int]:
        """0 or 1 for each file added, in order: the files of one session, and of sessions sharing a
        call's key, on one side; side 0 about `PARENT_SHARE` of the records."""
        find = self.find
        roots = [find(u) for u in self.units]
        weight: dict[str, int] = {}
        for r, w in zip(roots, self.weights):
            weight[r] = weight.get(r, 0) + w
        load = [0.0, 0.0]
        side: dict[str, int] = {}
        share = (PARENT_SHARE, 1.0 - PARENT_SHARE)
        for r, w in weight.items():  # (first-seen order: the same split on every run of the same history)
            s = side[r] = 0 if (load[0] + w) / share[0] <= (load[1] + w) / share[1] else 1
            load[s] += w
        return [side[r] for r in roots]


def sides(items: list[tuple[str, list, dict]], key, session_of) -> list[int]:
    """`Linked.sides` of (path, records, state) items of one source, in order."""
    linked = Linked(key, session_of)
    for path, records, _state in items:
        linked.add(path, records)
    return linked.sides()


_LENGTH = struct.Struct("<Q")
_EXITING: list[int] = []  # children that sent their result whole and were still exiting
_AT_EXIT: list[bool] = []  # whether `reap` is registered to run at exit (cli._exit_now, which skips it, reaps)


def both(fn) -> tuple:
    """(fn(0), fn(1)), fn(1) computed in a forked process while this one computes fn(0); its result
    marshal's values."""
    reap()
    r, w = os.pipe()
    widen(w)  # (a result of megabytes: a few writes, not one per 64 KB)
    gc.freeze()  # (a collection in either process would otherwise copy every page it walks)
    try:
        pid = os.fork()
    except OSError:
        gc.unfreeze()
        os.close(r)
        os.close(w)
        return fn(0), fn(1)
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(r)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            payload = marshal.dumps(fn(1))
            with os.fdopen(w, "wb") as out:
                out.write(_LENGTH.pack(len(payload)))
                out.write(payload)
            code = 0
        except BaseException:  # noqa: BLE001 - the parent computes this side itself
            pass
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    other = None
    try:
        mine = fn(0)
        while True:
            data = os.read(r, 1 << 20)
            if not data:
                break
            chunks.append(data)
        data = b"".join(chunks)
        if len(data) >= _LENGTH.size and _LENGTH.unpack_from(data)[0] == len(data) - _LENGTH.size:
            try:
                other = (marshal.loads(memoryview(data)[_LENGTH.size:]),)
            except (ValueError, EOFError, TypeError):
                other = None
    finally:
        os.close(r)
        if other is None:
            os.waitpid(pid, 0)
        elif os.waitpid(pid, os.WNOHANG)[0] == 0:
            if not _EXITING and not _AT_EXIT:
                atexit.register(reap, True)
                _AT_EXIT.append(True)
            _EXITING.append(pid)  # (its result is whole: not waited for while the kernel frees its memory)
        gc.unfreeze()
    return mine, (other[0] if other is not None else fn(1))


def reap(wait: bool = False) -> None:
    """Children of earlier calls that have exited since (a long-lived process, e.g. the tests); at exit,
    all of them (`wait`: by then long gone; waited for, their CPU is counted in this process's)."""
    for pid in list(_EXITING):
        try:
            if os.waitpid(pid, 0 if wait else os.WNOHANG)[0] != 0:
                _EXITING.remove(pid)
        except ChildProcessError:
            _EXITING.remove(pid)
