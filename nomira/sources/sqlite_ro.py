"""An agent's SQLite database, read without ever locking or writing it.

Opened `file:...?mode=ro` (no journal, no lock held beyond a read). A database in WAL
mode whose `-shm` cannot be created or mapped read-only makes that fail, and so does one
in rollback-journal mode a writer holds locked (after `BUSY_S`); then the database and its
`-wal` or `-journal` are copied to a temporary folder and the copy is read (copy-on-read:
a hot journal rolls the copy back to the last commit), so the running agent is never
blocked and its history never reads as empty.
"""
from __future__ import annotations

import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from nomira.sources.scan import ScanStats

BUSY_S = 0.5  # how long a read waits on a writer's lock before it reads a copy instead


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    path = Path(path)
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=BUSY_S)
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        with tempfile.TemporaryDirectory(prefix="nomira-ro-") as tmp:
            copy = Path(tmp) / path.name
            _copy_still(path, copy)
            db = sqlite3.connect(copy)
            try:
                yield db
            finally:
                db.close()
        return
    try:
        yield db
    finally:
        db.close()


SIDES = ("-wal", "-journal")  # (a writer's hot journal: the copy opens rolled back to the last commit)


def _stamps(path: Path) -> list:
    out = []
    for p in (path, *(path.with_name(path.name + s) for s in SIDES)):
        try:
            st = p.stat()
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return out


def _copy_still(path: Path, copy: Path, tries: int = 3) -> None:
    """The database and its -wal or -journal copied as one: again when the writer changed any of them
    while they were copied (its pages and its journal from two moments would not make one state)."""
    for _ in range(tries):
        before = _stamps(path)
        for old in [copy, *(copy.with_name(copy.name + s) for s in SIDES)]:
            old.unlink(missing_ok=True)
        shutil.copyfile(path, copy)
        for suffix in SIDES:
            try:
                shutil.copyfile(path.with_name(path.name + suffix), copy.with_name(copy.name + suffix))
            except FileNotFoundError:  # (none, or gone with a commit: the stamps below tell)
                pass
        if _stamps(path) == before:
            return


def columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}  # noqa: S608 - a constant name


def find_db(roots: Iterable[Path], name: str) -> list[Path]:
    """The database `name` in each root (or a root that is the file), and its -wal: fingerprinted,
    never parsed, so a cached report notices rows committed to the WAL only."""
    out = [p for r in roots for p in ([Path(r)] if Path(r).is_file() else [Path(r) / name, Path(r) / (name + "-wal")])]
    return sorted({p for p in out if p.is_file()}, key=str)


def scan_db(path: Path, parse: Callable[[sqlite3.Connection, ScanStats], list[list]]) -> tuple[list[list], dict, int,
                                                                                          ScanStats]:
    """scan_file for a call-record source kept in SQLite: read whole each time (end offset 0), the
    -wal skipped, an unreadable database counted, never fatal; the records' cwds for project labels."""
    path = Path(path)
    stats = ScanStats(files=1, bytes=path.stat().st_size)
    if path.name.endswith("-wal"):
        return [], {}, 0, stats
    try:
        with connect(path) as db:
            records = parse(db, stats)
    except sqlite3.Error as exc:
        stats.skip(f"unreadable_db:{type(exc).__name__}")
        records = []
    from nomira.sources.calls import CWD
    return records, {"cwds": sorted({r[CWD] for r in records if r[CWD]})}, 0, stats
