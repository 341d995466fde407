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

The child sends its result as marshal's values through a pipe. If it fails in any way (an
error, a signal, a value marshal does not take), the parent computes that side itself:
the result never depends on the child.
"""
from __future__ import annotations

import gc
import marshal
import os
import signal

MIN_RECORDS = 8192  # below, one process folds in less time than a fork and the merge take


def usable() -> bool:
    return hasattr(os, "fork") and os.name == "posix"


def sides(items: list[tuple[str, list, dict]], key, session_of) -> list[int]:
    """0 or 1 for each (path, records, state) item of one source, in order: the files of one session,
    and of sessions sharing a call's key, on one side; the sides about even in records."""
    root: dict[str, str] = {}
    owner: dict = {}  # a call's key -> the first session holding it

    def find(u: str) -> str:
        while root[u] != u:
            root[u] = u = root[root[u]]
        return u
    units = []
    for path, records, _state in items:
        u = session_of(path)
        units.append(u)
        if u not in root:
            root[u] = u
        for rec in records:
            k = key(rec)
            if k is None:
                continue
            v = owner.setdefault(k, u)
            if v != u:
                a, b = find(u), find(v)
                if a != b:
                    root[b] = a
    weight: dict[str, int] = {}
    for u, (_p, records, _s) in zip(units, items):
        r = find(u)
        weight[r] = weight.get(r, 0) + len(records) + 1
    load = [0, 0]
    side: dict[str, int] = {}
    for r, w in weight.items():  # (first-seen order: the same split on every run of the same history)
        s = side[r] = 0 if load[0] <= load[1] else 1
        load[s] += w
    return [side[find(u)] for u in units]


def both(fn) -> tuple:
    """(fn(0), fn(1)), fn(1) computed in a forked process while this one computes fn(0); its result
    marshal's values."""
    r, w = os.pipe()
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
                out.write(payload)
            code = 0
        except BaseException:  # noqa: BLE001 - the parent computes this side itself
            pass
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    try:
        mine = fn(0)
        while True:
            data = os.read(r, 1 << 20)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
        gc.unfreeze()
    other = None
    if status == 0 and chunks:
        try:
            other = (marshal.loads(b"".join(chunks)),)
        except (ValueError, EOFError, TypeError):
            other = None
    return mine, (other[0] if other is not None else fn(1))
