"""Incremental scan cache: per file, what was parsed and where to resume.

One SQLite file under `$XDG_CACHE_HOME/nomira/`. Per file it keeps size, mtime,
the byte offset parsed to, a signature of the bytes just before that offset, the
parser's state and the usage records parsed so far. A second run re-reads nothing
for an unchanged file and only the appended bytes of a grown one; a file that
shrank, or whose bytes before the offset changed (rewritten), is re-read whole.
A cache written by another Nomira version or record format is dropped, never misread.

It also keeps finished report outputs keyed by the exact inputs (every file's
size and mtime, the arguments, the price table, the version), so a run with
nothing new skips the work entirely.
"""
from __future__ import annotations

import hashlib
import marshal
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nomira import __version__

RECORD_FORMAT = 2
SIG_BYTES = 256


def code_digest(*parts: str) -> str:
    """Digest of Nomira's own source files under `parts`: a cache written by other code
    (an upgrade without a version bump, a local edit) is never read as current."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha1()
    for part in parts:
        base = root / part
        for f in sorted(base.rglob("*.py")) if base.is_dir() else [base]:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


# records depend on the parsers; outputs (below) on all of the code
FORMAT_TAG = (f"{__version__}/{RECORD_FORMAT}/marshal{marshal.version}/py{sys.version_info[:2]}/"
              f"{code_digest('sources', 'scan.py', 'events.py')}")


@dataclass
class Entry:
    """One file's scan: where it stopped, and its (records, parser state, stats) as a marshal blob,
    decoded only when the file is used, so a cache of a large history costs little memory."""

    size: int
    mtime_ns: int
    offset: int
    sig: bytes
    blob: bytes | None = None
    fetch: Callable[[], bytes] | None = None  # reads the blob from the cache file when first needed

    def data(self) -> tuple[list, dict, dict]:
        return marshal.loads(self.blob if self.blob is not None else self.fetch())


def signature(path: str | Path, offset: int) -> bytes:
    """Hash of the bytes just before `offset`: detects a file rewritten in place."""
    start = max(0, offset - SIG_BYTES)
    with open(path, "rb") as fh:
        fh.seek(start)
        return hashlib.sha1(fh.read(offset - start)).digest()


class ScanCache:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self.db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row is None or row[0] != FORMAT_TAG:
            self.db.execute("DROP TABLE IF EXISTS files")
            self.db.execute("DROP TABLE IF EXISTS outputs")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT_TAG,))
        self.db.execute("""CREATE TABLE IF NOT EXISTS files (
            source TEXT, path TEXT, size INTEGER, mtime_ns INTEGER, offset INTEGER, sig BLOB, data BLOB,
            PRIMARY KEY (source, path))""")
        self.db.execute("CREATE TABLE IF NOT EXISTS outputs (key TEXT PRIMARY KEY, output BLOB)")

    def load(self, source: str) -> dict[str, Entry]:
        out = {}
        for path, size, mtime_ns, offset, sig in self.db.execute(
                "SELECT path, size, mtime_ns, offset, sig FROM files WHERE source=?", (source,)):
            out[path] = Entry(size, mtime_ns, offset, sig, fetch=self._fetcher(source, path))
        return out

    def _fetcher(self, source: str, path: str) -> Callable[[], bytes]:
        return lambda: self.db.execute("SELECT data FROM files WHERE source=? AND path=?",
                                       (source, path)).fetchone()[0]

    def writer(self, source: str) -> "CacheWriter":
        return CacheWriter(self.db, source)

    def get_output(self, key: str) -> bytes | None:
        row = self.db.execute("SELECT output FROM outputs WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put_output(self, key: str, output: bytes) -> None:
        self.db.execute("BEGIN")
        self.db.execute("INSERT OR REPLACE INTO outputs VALUES (?, ?)", (key, output))
        self.db.execute("DELETE FROM outputs WHERE rowid NOT IN "
                        "(SELECT rowid FROM outputs ORDER BY rowid DESC LIMIT 16)")
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


def default_path(env=os.environ) -> Path:
    from nomira.paths import cache_home
    return cache_home(env) / "scan.sqlite"


def output_key(parts: list, files: list[tuple[str, str, int, int]]) -> str:
    h = hashlib.sha256(repr((FORMAT_TAG, code_digest("."), parts)).encode())
    for f in files:
        h.update(repr(f).encode())
    return h.hexdigest()


class CacheWriter:
    """Writes a source's changed entries as they stream in (one transaction), then prunes
    files that no longer exist: no entry is held in memory longer than its write."""

    def __init__(self, db: sqlite3.Connection, source: str):
        self.db, self.source, self.live = db, source, set()
        self.db.execute("BEGIN")

    def keep(self, path: str) -> None:
        self.live.add(path)

    def put(self, path: str, e: Entry) -> None:
        self.live.add(path)
        self.db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", (
            self.source, path, e.size, e.mtime_ns, e.offset, e.sig, e.blob))

    def commit(self) -> None:
        """Keep what was written without pruning: for a caller that scanned only some files."""
        self.db.execute("COMMIT")

    def close(self) -> None:
        stale = [p for (p,) in self.db.execute("SELECT path FROM files WHERE source=?", (self.source,))
                 if p not in self.live]
        self.db.executemany("DELETE FROM files WHERE source=? AND path=?", [(self.source, p) for p in stale])
        self.db.execute("COMMIT")
