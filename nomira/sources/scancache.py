"""Incremental scan cache: per file, what was parsed and where to resume.

One SQLite file under `$XDG_CACHE_HOME/nomira/`. Per file it keeps size, mtime,
the byte offset parsed to, a signature of the bytes just before that offset, the
parser's state and the usage records parsed so far. A second run re-reads nothing
for an unchanged file and only the appended bytes of a grown one; a file that
shrank, or whose last SIG_BYTES before the offset changed (rewritten), is re-read whole. An edit
further back in a file that also grew is not seen (agents only append; `--no-cache` reads all).
A cache written by another Nomira version or record format is dropped, never misread, and so is
a damaged one: SQLite's corruption errors and a checksum of every entry and output (SQLite does
not checksum its pages: a flipped byte in a record would otherwise be read as a token count)
raise `CacheDamaged`, and the caller discards the file and reads every log again.

It also keeps finished report outputs keyed by the exact inputs (every file's
size and mtime, the arguments, the price table, the version), so a run with
nothing new skips the work entirely: each in a file of its own beside the database
(`<cache>-outputs/<key>`), its length and checksum in the database.
"""
from __future__ import annotations

import marshal
import os
import sys
from zlib import crc32

from nomira import __version__
from nomira.digests import sha1, sha256

RECORD_FORMAT = 6  # 3: each entry and output with its checksum; 4: and the file's kept fold; 5: folds of several
# keys; 6: outputs in files beside the database (`ScanCache.put_output`)
SIG_BYTES = 256
QUICK_FORMAT = 4  # 3: the output's length and checksum in the head; 4: the checks packed by folder (`_pack_checks`)


PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # nomira/


def code_digest(*parts: str) -> str:
    """Digest of Nomira's own source files under `parts` (their names, sizes and mtimes): a cache
    written by other code (an upgrade without a version bump, a local edit) is never read as current."""
    h = sha1()()
    for part in parts:
        whole = part in (".", "")
        prefix = part + os.sep
        for rel, size, mtime_ns in _code():
            if whole or rel == part or rel.startswith(prefix):
                h.update(f"{rel}:{size}:{mtime_ns}".encode())
    return h.hexdigest()[:16]


_CODE: list[tuple[str, int, int]] | None = None


def _code() -> list[tuple[str, int, int]]:
    """(path under the package, size, mtime_ns) of each of Nomira's .py files, sorted: stated once a
    run (the record format, the outputs' key and the replay's checks all read it)."""
    global _CODE
    if _CODE is None:
        root = PACKAGE_ROOT
        found: list[tuple[str, int, int]] = []
        folders = [("", root)]
        while folders:
            rel, folder = folders.pop()
            with os.scandir(folder) as entries:
                for e in entries:
                    if e.name.endswith(".py") and e.is_file():
                        st = e.stat()
                        found.append((rel + e.name, st.st_size, st.st_mtime_ns))
                    elif e.is_dir(follow_symlinks=False) and e.name != "__pycache__":
                        folders.append((rel + e.name + os.sep, e.path))
        _CODE = sorted(found)
    return _CODE


# Records depend on the parsers; outputs (below) on all of the code. Computed on first use (a run
# that replays a finished output never needs it); a test may set it.
FORMAT_TAG: str | None = None


def format_tag() -> str:
    global FORMAT_TAG
    if FORMAT_TAG is None:
        FORMAT_TAG = (f"{__version__}/{RECORD_FORMAT}/marshal{marshal.version}/py{sys.version_info[:2]}/"
                      f"{code_digest('sources', os.path.join('ledger', 'events.py'))}")
    return FORMAT_TAG


class CacheDamaged(Exception):
    """The scan cache file is damaged: its caller discards it (`discard`) and reads every file."""

    def __init__(self, path, reason: str) -> None:
        super().__init__(f"the scan cache {path} is damaged ({reason})")
        self.path = path


def damage(path, exc: Exception) -> CacheDamaged | None:
    """`CacheDamaged` for an SQLite error that says the file is corrupt or not a database, or a value
    the module cannot read (a changed type: no SQLite code), else None (a busy, full or read-only
    cache is not damaged: it is left alone)."""
    import sqlite3

    from nomira.ledger.engine import damaged  # (the store's test: only on an error path)
    if damaged(exc) or (getattr(exc, "sqlite_errorcode", None) is None
                        and type(exc) in (sqlite3.OperationalError, sqlite3.DatabaseError)):
        return CacheDamaged(path, " ".join(str(exc).split()) or "corrupt")
    return None


def discard(path) -> None:
    """Remove a damaged cache file with its journal files and stored outputs (a derived cache: the logs
    are the truth; a process still reading it keeps its own open copy)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(f"{path}{suffix}")
        except OSError:
            pass
    if os.path.isdir(f"{path}{OUTPUTS}"):
        import shutil
        shutil.rmtree(f"{path}{OUTPUTS}", ignore_errors=True)


OUTPUTS = "-outputs"  # the folder of the stored outputs: the cache file's path and this
KEEP_OUTPUTS = 16


def entry_check(size: int, mtime_ns: int, offset: int, sig: bytes, blob: bytes) -> int:
    """The checksum an entry is stored with, over everything a later run trusts it for."""
    return crc32(blob, crc32(sig, crc32(f"{size}:{mtime_ns}:{offset}".encode())))


def fold_check(size: int, mtime_ns: int, offset: int, sig: bytes, fold_key: str, fold: bytes) -> int:
    """The checksum a kept fold is stored with: over its file's identity, its key and itself."""
    return crc32(fold, crc32(fold_key.encode(), entry_check(size, mtime_ns, offset, sig, b"")))


class KeptFold:
    """A whole file's fold (the report's, a period report's) kept beside its entry
    (`ScanCache.kept_folds`): (parser state, stats, hashes of its records' dedup keys, (the fold, what
    its own deduplication counted) or None: no fold is made of this file), as the scan worker that
    read the file made them (`sources.prefold`). A warm run uses it instead of the file's records
    when the file is unchanged; the records are read only if the audit sends the file the long way."""

    __slots__ = ("entry", "blob")

    def __init__(self, entry: "Entry", blob: bytes) -> None:
        self.entry, self.blob = entry, blob

    @staticmethod
    def pack(state: dict, stats: dict, hashes: bytes, fold) -> bytes:
        """What `data` reads back. Raises ValueError for a fold of values marshal does not take."""
        return marshal.dumps((state, stats, hashes, fold))

    def data(self) -> tuple:
        return _decoded(self.blob, self.entry.fetch.path, 4, "a kept fold", "a fold")

    def unpack(self) -> list:
        """The file's records (from its entry: the file goes the long way)."""
        return self.entry.data()[0]


class Entry:
    """One file's scan: where it stopped, and its (records, parser state, stats) as a marshal blob,
    decoded only when the file is used, so a cache of a large history costs little memory."""

    __slots__ = ("size", "mtime_ns", "offset", "sig", "blob", "fetch", "check")

    def __init__(self, size: int, mtime_ns: int, offset: int, sig: bytes, blob: bytes | None = None,
                 fetch=None, check: int | None = None) -> None:
        self.size, self.mtime_ns, self.offset, self.sig = size, mtime_ns, offset, sig
        self.blob = blob
        self.fetch = fetch  # reads the blob from the cache file when first needed
        self.check = check  # of an entry read from the file: its stored checksum

    def data(self) -> tuple[list, dict, dict]:
        if self.blob is not None:  # (made by this run)
            return marshal.loads(self.blob)
        blob = self.fetch()
        if entry_check(self.size, self.mtime_ns, self.offset, self.sig, blob) != self.check:
            raise CacheDamaged(self.fetch.path, "an entry does not match its checksum")
        return _decoded(blob, self.fetch.path, 3, "an entry", "a scan")


def _decoded(blob: bytes, path, n: int, what: str, kind: str) -> tuple:
    """A stored blob's tuple of `n` values, or `CacheDamaged` (`what` does not decode / is not `kind`)."""
    try:
        data = marshal.loads(blob)
    except (ValueError, EOFError, TypeError) as exc:
        raise CacheDamaged(path, f"{what} does not decode: {exc}") from None
    if type(data) is not tuple or len(data) != n:
        raise CacheDamaged(path, f"{what} is not {kind}")
    return data


def signature(path: str | Path, offset: int) -> bytes:
    """Hash of the bytes just before `offset`: detects a file rewritten in place."""
    return sha1()(bytes_before(path, offset)).digest()


def bytes_before(path: str | Path, offset: int) -> bytes:
    """The SIG_BYTES bytes (fewer at the file's start) a signature is made of."""
    start = max(0, offset - SIG_BYTES)
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(offset - start)


class ScanCache:
    """The cache file. A file SQLite finds damaged when it is opened is replaced by a new one at once
    (said on stderr); damage found later raises `CacheDamaged` from the call that met it."""

    def __init__(self, path):
        import sqlite3
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            damaged = damage(path, exc)
            if damaged is None:
                raise
            if getattr(self, "db", None) is not None:
                self.db.close()
            discard(path)
            print(f"nomira: {damaged}; replaced it with a new one (this run reads every file)", file=sys.stderr)
            self._open()

    def _open(self) -> None:
        import sqlite3
        path = self.path
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
        # (a new file only) a file's records are a 1-50 KB blob: in 4 KB pages each is a chain of
        # overflow pages; 16 KB pages write a cold 1 GB history's 20 MB of entries in 60% of the CPU
        self.db.execute("PRAGMA page_size=16384")
        self.db.execute("PRAGMA journal_mode=WAL")
        # no fsync, not even when the last connection copies the log into the file: that wait was
        # 30 ms of a cold run's end; a power cut mid-copy leaves damage that the checksums or SQLite
        # find, and a damaged cache is replaced (the logs are the truth)
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self.db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row is None or row[0] != format_tag():
            for table in ("files", "outputs", "folds", "fold_keys"):
                self.db.execute(f"DROP TABLE IF EXISTS {table}")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (format_tag(),))
        self.db.execute("""CREATE TABLE IF NOT EXISTS files (
            source TEXT, path TEXT, size INTEGER, mtime_ns INTEGER, offset INTEGER, sig BLOB, data BLOB,
            checksum INTEGER, PRIMARY KEY (source, path))""")
        # a whole file's fold by a report (`KeptFold`), for the file as its entry was (size .. sig),
        # under the key of what else the fold depends on; the newest KEEP_KEYS keys are kept
        self.db.execute("""CREATE TABLE IF NOT EXISTS folds (
            source TEXT, path TEXT, fold_key TEXT, size INTEGER, mtime_ns INTEGER, offset INTEGER, sig BLOB,
            fold BLOB, fold_check INTEGER, PRIMARY KEY (source, path, fold_key))""")
        self.db.execute("CREATE TABLE IF NOT EXISTS fold_keys (fold_key TEXT PRIMARY KEY, used INTEGER)")
        self.db.execute("CREATE TABLE IF NOT EXISTS outputs (key TEXT PRIMARY KEY, length INTEGER, checksum INTEGER)")

    def run(self, fn, *args):
        """fn(*args), an SQLite error met after opening raised as `CacheDamaged` when the file is."""
        import sqlite3
        try:
            return fn(*args)
        except sqlite3.DatabaseError as exc:
            raise (damage(self.path, exc) or exc) from None

    def load(self, source: str) -> dict[str, Entry]:
        rows = self.run(lambda: self.db.execute("SELECT path, size, mtime_ns, offset, sig, checksum FROM files "
                                                "WHERE source=?", (source,)).fetchall())
        return {path: Entry(size, mtime_ns, offset, sig, fetch=_Fetch(self, source, path), check=check)
                for path, size, mtime_ns, offset, sig, check in rows}

    def has_entries(self, source: str) -> bool:
        return self.run(lambda: self.db.execute("SELECT 1 FROM files WHERE source=? LIMIT 1", (source,)).fetchone()
                        ) is not None

    def kept_folds(self, source: str, fold_key: str, entries: dict[str, Entry]) -> dict[str, "KeptFold"]:
        """The folds kept for `entries` (path -> the entry this run reuses) under `fold_key`: each
        stands for its file only while the file is the entry's (same size, mtime, end and signature)."""
        rows = self.run(lambda: self.db.execute(
            "SELECT path, size, mtime_ns, offset, sig, fold, fold_check FROM folds WHERE source=? AND fold_key=?",
            (source, fold_key)).fetchall())
        out = {}
        for path, size, mtime_ns, offset, sig, fold, check in rows:
            e = entries.get(path)
            if e is None or (e.size, e.mtime_ns, e.offset, e.sig) != (size, mtime_ns, offset, sig):
                continue
            if type(fold) is not bytes or fold_check(size, mtime_ns, offset, sig, fold_key, fold) != check:
                raise CacheDamaged(self.path, "a kept fold does not match its checksum")
            out[path] = KeptFold(e, fold)
        return out

    spool: "Spool | None" = None  # (set: this run's writes are made after it has answered, `defer`)

    def writer(self, source: str) -> "CacheWriter | SpooledWriter":
        return CacheWriter(self, source) if self.spool is None else SpooledWriter(self.spool, source)

    def defer(self) -> "Spool":
        """From now on, keep this run's writes in a `Spool` instead of making them (reads are unchanged)."""
        if self.spool is None:
            self.spool = Spool(self.path)
        return self.spool

    def replay(self, spool: "Spool") -> None:
        """Make the writes a run kept in `spool`, in their order; a writer the run never closed or committed
        (it failed mid-way) is rolled back, as its transaction would have been."""
        w = None
        for op in spool.ops():
            kind = op[0]
            if kind == "open":
                if w is not None:
                    self.run(self.db.execute, "ROLLBACK")
                w = CacheWriter(self, op[1])
            elif kind == "rows":
                for path, size, mtime_ns, offset, sig, blob in op[1]:
                    w.put(path, Entry(size, mtime_ns, offset, sig, blob))
                for path, fold_key, size, mtime_ns, offset, sig, fold in op[2]:
                    w.put_fold(path, Entry(size, mtime_ns, offset, sig), fold_key, fold)
            elif kind == "commit":
                w.commit()
                w = None
            elif kind == "close":
                w.live.update(op[1])
                w.keys.update(op[2])
                w.close()
                w = None
        if w is not None:
            self.run(self.db.execute, "ROLLBACK")

    def _output_path(self, key: str) -> str:
        return os.path.join(f"{self.path}{OUTPUTS}", key)

    def get_output(self, key: str) -> bytes | None:
        row = self.run(lambda: self.db.execute("SELECT length, checksum FROM outputs WHERE key=?", (key,)).fetchone())
        if row is None:
            return None
        try:
            with open(self._output_path(key), "rb") as fh:
                output = fh.read()
        except OSError:  # (removed since: only a shortcut, the run does the work)
            return None
        if type(row[0]) is not int or len(output) != row[0] or crc32(output) != row[1]:
            raise CacheDamaged(self.path, "a stored output does not match its checksum")
        return output

    def put_output(self, key: str, output: bytes, checksum: int | None = None) -> None:
        """Keep `output` (its `crc32` when the caller has it) under `key`, the newest KEEP_OUTPUTS kept. A
        file of its own, not a row: a report of thousands of sessions is megabytes, which SQLite wrote
        to its log and again into the database (15-25 ms of a cold run of 6,386 small files, against 2
        ms for a file); the row keeps its length and checksum. In two steps, so a command can write the
        file after it has answered (`behind`): the row, then the file (a row whose file is missing is a
        miss, never damage)."""
        kept = self.name_output(key, len(output), crc32(output) if checksum is None else checksum)
        self.write_output(key, output, kept)

    def name_output(self, key: str, length: int, checksum: int) -> set[str]:
        """The row of an output about to be written (`write_output`): the keys of the outputs kept."""
        def put():
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?)", (key, length, checksum))
            self.db.execute("DELETE FROM outputs WHERE rowid NOT IN "
                            f"(SELECT rowid FROM outputs ORDER BY rowid DESC LIMIT {KEEP_OUTPUTS})")
            kept = {k for (k,) in self.db.execute("SELECT key FROM outputs")}
            self.db.execute("COMMIT")
            return kept
        return self.run(put)

    def write_output(self, key: str, output: bytes, kept: set[str]) -> None:
        """The file of an output `name_output` named, written whole or not at all, and the files of the
        outputs no longer kept removed. No SQLite: it may run in a forked child."""
        folder = f"{self.path}{OUTPUTS}"
        path = self._output_path(key)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(folder, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(output)
            os.replace(tmp, path)
        except OSError:  # (a full disk, a read-only cache folder: only the next run's shortcut is lost)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return
        _prune_outputs(folder, kept)

    def close(self) -> None:
        self.db.close()

    def drop(self) -> None:
        """Close and remove the file (damaged: the next run makes a new one)."""
        self.close()
        discard(self.path)


class Spool:
    """A command line's cache writes, kept while it runs and made after it has answered (`behind`).

    Writing a cold run's entries into SQLite as the scan went cost the parent 45-55 ms of CPU on 6,386
    small files (checksums, `executemany`, SQLite's pages and log) while the two scan workers needed
    both cores; 0.2 s on 1 GB. The entries now go, marshalled, into an unnamed file in the cache's
    folder (a few ms: memory stays flat, and a killed run leaves nothing behind), and a forked child
    (after the command has closed its own connection: none may cross a fork) replays them into the
    database with a connection of its own, then runs `later` (the output's row and files)."""

    def __init__(self, cache_path) -> None:
        self.cache_path = cache_path
        self.file = os.fdopen(_unnamed_file(os.path.dirname(cache_path)), "w+b")
        self.later: list = []  # fn(cache): each given the child's own ScanCache, after the replay
        self.broken = False  # (a write failed: a full disk; this run's entries are not kept, its output is)

    def add(self, op: tuple) -> None:
        if self.broken:
            return
        try:
            marshal.dump(op, self.file)
        except OSError:
            self.broken = True

    def ops(self):
        fh = self.file
        fh.flush()
        fh.seek(0)
        while True:
            try:
                yield marshal.load(fh)
            except EOFError:
                return

    def pending(self) -> bool:
        return bool(self.later) or (not self.broken and self.file.tell() > 0)

    def finish(self) -> None:
        """The writes made, with a connection of this process's own."""
        cache = ScanCache(self.cache_path)
        try:
            for fn in self.later:
                fn(cache)
            if not self.broken:
                cache.replay(self)
        finally:
            cache.close()
            self.file.close()


def _unnamed_file(folder: str) -> int:
    """A file no other process can open and none is left of (`tempfile` costs an import of 2-3 ms)."""
    if hasattr(os, "O_TMPFILE"):
        try:
            return os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
        except OSError:  # (a file system without unnamed files)
            pass
    name = os.path.join(folder, f"spool.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.unlink(name)
    return fd


class SpooledWriter:
    """`CacheWriter`'s calls kept in a `Spool`: a batch of rows at a time, the checksums left to the replay."""

    BATCH_BYTES = 1 << 20

    def __init__(self, spool: Spool, source: str) -> None:
        self.spool, self.source = spool, source
        self.live: set[str] = set()
        self.keys: set[str] = set()
        self.rows: list[tuple] = []
        self.folds: list[tuple] = []
        self.held = 0
        spool.add(("open", source))

    def keep(self, path: str) -> None:
        self.live.add(path)

    def put(self, path: str, e: Entry, fold: tuple[str, bytes] | None = None) -> None:
        self.live.add(path)
        self.rows.append((path, e.size, e.mtime_ns, e.offset, e.sig, e.blob))
        self.held += len(e.blob)
        if fold is not None:
            self.put_fold(path, e, *fold)
        if self.held >= self.BATCH_BYTES:
            self._flush()

    def put_fold(self, path: str, e: Entry, fold_key: str, fold: bytes) -> None:
        self.folds.append((path, fold_key, e.size, e.mtime_ns, e.offset, e.sig, fold))
        self.held += len(fold)
        self.keys.add(fold_key)

    def _flush(self) -> None:
        if self.rows or self.folds:
            self.spool.add(("rows", self.rows, self.folds))
        self.rows, self.folds, self.held = [], [], 0

    def commit(self) -> None:
        self._flush()
        self.spool.add(("commit",))

    def close(self) -> None:
        self._flush()
        self.spool.add(("close", list(self.live), list(self.keys)))


def _prune_outputs(folder: str, kept: set[str]) -> None:
    """Remove the stored outputs the database no longer names (and another run's leftovers: a write an
    hour old that never finished)."""
    import time
    try:
        with os.scandir(folder) as entries:
            for e in entries:
                if e.name in kept:
                    continue
                if e.name.endswith(".tmp"):
                    try:
                        if time.time() - e.stat().st_mtime < 3600:
                            continue  # (another run writing it now)
                    except OSError:
                        continue
                try:
                    os.unlink(e.path)
                except OSError:
                    pass
    except OSError:
        pass


class _Fetch:
    """Reads one entry's blob when it is first needed (and names the cache file if that fails), or
    hands over the one `prefetch` read with others."""

    __slots__ = ("cache", "source", "file", "ready")

    def __init__(self, cache: ScanCache, source: str, file: str) -> None:
        self.cache, self.source, self.file = cache, source, file
        self.ready: bytes | None = None

    @property
    def path(self):
        return self.cache.path

    def __call__(self) -> bytes:
        blob = self.ready
        if blob is not None:
            self.ready = None
            return blob
        db = self.cache.db
        row = self.cache.run(lambda: db.execute("SELECT data FROM files WHERE source=? AND path=?",
                                                (self.source, self.file)).fetchone())
        if row is None or type(row[0]) is not bytes:
            raise CacheDamaged(self.cache.path, "an entry has no data")
        return row[0]


PREFETCH_FILES, PREFETCH_BYTES = 256, 32 << 20  # entries read in one query, and their files' bytes at most


def prefetch(entries: list[Entry], start: int = 0) -> int:
    """Read the blobs of `entries` from `start` on (those a scan uses next, in order) in one query: one
    query per entry was most of a warm run's reading of thousands of small files' entries (82 against
    26 ms for 6,386). Returns how many of `entries` it covered; each blob is kept by its entry's
    fetcher until used, so at most one batch is held."""
    batch: list[_Fetch] = []
    size = 0
    n = 0
    for i in range(start, len(entries)):
        e = entries[i]
        if n and (n >= PREFETCH_FILES or size >= PREFETCH_BYTES):
            break
        n += 1
        size += e.size
        f = e.fetch
        if e.blob is None and type(f) is _Fetch and f.ready is None:
            batch.append(f)
    if len(batch) > 1 and all(f.cache is batch[0].cache and f.source == batch[0].source for f in batch):
        cache, source = batch[0].cache, batch[0].source
        query = f"SELECT path, data FROM files WHERE source=? AND path IN ({','.join('?' * len(batch))})"
        got = dict(cache.run(lambda: cache.db.execute(query, (source, *(f.file for f in batch))).fetchall()))
        for f in batch:
            blob = got.get(f.file)
            if type(blob) is bytes:
                f.ready = blob  # (a missing or odd one: its own read says so)
    return n


def default_path(env=os.environ):
    from nomira.dirs import cache_home
    return cache_home(env) / "scan.sqlite"


def output_key(parts: list, files: list[tuple[str, str, int, int]]) -> str:
    """The key of an output made from `files` ((source, path, size, mtime_ns), the fingerprint) with
    `parts` (everything else it depends on). The file list is hashed as marshal's bytes, version 2
    (no back-references, so equal lists give equal bytes): a repr per file cost twice as much."""
    h = sha256(repr((format_tag(), code_digest("."), parts)).encode())
    h.update(marshal.dumps(files, 2))
    return h.hexdigest()


KEEP_KEYS = 8  # fold keys whose folds are kept (the report, daily, monthly, session, and with a time window or two)


class CacheWriter:
    """Writes a source's changed entries as they stream in (one transaction), then prunes
    files that no longer exist: no entry is held in memory longer than its write.

    The transaction takes the write lock as it begins (IMMEDIATE): a deferred one that had read (a
    kept entry's blob) could not write after another process committed meanwhile ("database is
    locked" at once, not after a wait). Another process holding the lock past the wait (10 s) turns
    this run's writes off: the next run reads those files again; the command never fails for it."""

    BATCH, BATCH_BYTES = 256, 1 << 20  # rows held for one executemany (thousands of small files)

    def __init__(self, cache: ScanCache, source: str):
        self.cache, self.db, self.source, self.live = cache, cache.db, source, set()
        self.rows: list[tuple] = []
        self.folds: list[tuple] = []
        self.keys: set[str] = set()  # the fold keys this run used or wrote under
        self.held = 0
        self.off = False
        self._run = cache.run
        self._write(self.db.execute, "BEGIN IMMEDIATE")

    def _write(self, fn, *args):
        """`cache.run(fn, *args)`, or nothing once the writes are off (the lock not had)."""
        import sqlite3
        if self.off:
            return None
        try:
            return self._run(fn, *args)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            self.off = True
            self.rows, self.folds, self.held = [], [], 0
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            return None

    def keep(self, path: str) -> None:
        self.live.add(path)

    def put(self, path: str, e: Entry, fold: tuple[str, bytes] | None = None) -> None:
        """`fold`: (fold key, the file's `KeptFold` data), for a file read whole and folded."""
        if self.off:
            return
        self.live.add(path)
        self.rows.append((self.source, path, e.size, e.mtime_ns, e.offset, e.sig, e.blob,
                          entry_check(e.size, e.mtime_ns, e.offset, e.sig, e.blob)))
        self.held += len(e.blob)
        if fold is not None:
            self.put_fold(path, e, *fold)
        if len(self.rows) >= self.BATCH or self.held >= self.BATCH_BYTES:
            self._flush()

    def put_fold(self, path: str, e: Entry, fold_key: str, fold: bytes) -> None:
        """Keep a file's fold under `fold_key`, for the file as `e` is."""
        if self.off:
            return
        self.folds.append((self.source, path, fold_key, e.size, e.mtime_ns, e.offset, e.sig, fold,
                           fold_check(e.size, e.mtime_ns, e.offset, e.sig, fold_key, fold)))
        self.held += len(fold)
        self.keys.add(fold_key)

    def _flush(self) -> None:
        if self.rows:
            self._write(self.db.executemany, "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?)", self.rows)
        if self.folds:
            self._write(self.db.executemany, "INSERT OR REPLACE INTO folds VALUES (?,?,?,?,?,?,?,?,?)", self.folds)
        self.rows, self.folds, self.held = [], [], 0

    def commit(self) -> None:
        """Keep what was written without pruning: for a caller that scanned only some files."""
        self._flush()
        self._write(self.db.execute, "COMMIT")

    def close(self) -> None:
        self._flush()
        stale = [p for (p,) in self._write(lambda: list(self.db.execute("SELECT path FROM files WHERE source=?",
                                                                             (self.source,)))) or ()
                 if p not in self.live]
        for table in ("files", "folds"):
            self._write(self.db.executemany, f"DELETE FROM {table} WHERE source=? AND path=?",
                        [(self.source, p) for p in stale])
        self._keep_newest_keys()
        self._write(self.db.execute, "COMMIT")

    def _keep_newest_keys(self) -> None:
        """The keys written under now count as the newest; folds under all but the newest KEEP_KEYS go
        (a key changes with the code, the rates in force or the time window: last week's are dead)."""
        import time
        now = time.time_ns()
        for key in sorted(self.keys):
            self._write(self.db.execute, "INSERT OR REPLACE INTO fold_keys VALUES (?, ?)", (key, now))
        old = [k for (k,) in self._write(lambda: list(self.db.execute(
            "SELECT fold_key FROM fold_keys ORDER BY used DESC, fold_key LIMIT -1 OFFSET ?", (KEEP_KEYS,)))) or ()]
        for key in old:
            self._write(self.db.execute, "DELETE FROM folds WHERE fold_key=?", (key,))
            self._write(self.db.execute, "DELETE FROM fold_keys WHERE fold_key=?", (key,))


# --- a finished output replayed before the pipeline starts -----------------------------------
#
# A run with nothing new should cost little more than starting Python: before importing the
# sources, the parser or SQLite, `main` looks up the exact invocation (arguments, environment,
# working directory, terminal, local zone, UTC day) and checks the paths its output depended on:
# every input file (size, mtime), every folder under the agents' roots (mtime: an added or removed
# file changes it), the folders new agent data would appear in (home, XDG config and data, the
# agents' location variables, and their sub-folders), the price files and Nomira's own code.
# Any difference, and the normal run decides.

ABSENT, FOLDER = -1, -2  # in place of a size: the path did not exist / only its mtime counts
LOCATION_VARS = ("APPDATA", "LOCALAPPDATA")
NOT_LOCATIONS = ("XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "XDG_STATE_HOME")
QUICK_KEEP = 32
SHELL_NOISE = ("_", "OLDPWD")  # set by the shell on every command or cd, read by nothing here
RECENT_NS = 1_000_000_000  # file times lag the clock by a tick: changed this close to the start counts as after


def quick_dir(env) -> str:
    """`dirs.cache_home(env) / "quick"`, without importing pathlib."""
    if env.get("NOMIRA_HOME"):
        base = os.path.join(env["NOMIRA_HOME"], "cache")
    else:
        base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nomira", "quick")


def quick_key(argv: list[str], env) -> tuple[str, str]:
    """(file name, digest of the invocation): the name finds the file, the digest must match. Only
    a digest is written: the environment may hold secrets."""
    import time
    try:
        size = tuple(os.get_terminal_size(1))
    except (OSError, ValueError):
        size = None
    day = time.strftime("%Y-%m-%d", time.gmtime())  # price feeds expire by the day
    ident = repr((QUICK_FORMAT, __version__, sys.version, os.path.abspath(__file__), os.getcwd(), list(argv),
                  sorted(kv for kv in env.items() if kv[0] not in SHELL_NOISE), os.isatty(1), size, getattr(sys.stdout, "encoding", None), time.tzname,
                  time.timezone, time.altzone, day))
    digest = sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:20], digest


def quick_replay(argv: list[str], env) -> memoryview | None:
    """The output (UTF-8) stored for this exact invocation, if nothing it depended on changed. The
    output is read and checksummed by a second thread while this one `stat`s the paths (both wait on
    the system, not the interpreter: on 6,386 small files that hid 6 of the replay's 19 ms)."""
    try:
        name, ident = quick_key(argv, env)
        with open(os.path.join(quick_dir(env), name), "rb", buffering=0) as fh:
            n = int.from_bytes(fh.read(8), "little")
            stored, folders, counts, names, sizes, mtimes, length, check = marshal.loads(fh.read(n))
            if stored != ident:
                return None
            output = bytearray(length)
            verdict: list[bool] = []
            done = _start(_read_checked, fh, output, check, verdict)
            try:
                fresh = _unchanged(folders, counts, names.split("\0"), memoryview(sizes).cast("q"),
                                   memoryview(mtimes).cast("q"))
            finally:
                done.acquire()  # (the reader finished with the file before it is closed)
        return memoryview(output) if fresh and verdict == [True] else None  # (damaged: run)
    except (OSError, ValueError, EOFError, TypeError, MemoryError, OverflowError):  # (a length no read takes)
        return None


def _start(work, *args):
    """`work(*args)` in a thread of its own; the lock returned is released when it ends (`_thread`,
    not `threading`: a replay imports as little as it can)."""
    import _thread
    done = _thread.allocate_lock()
    done.acquire()

    def run():
        try:
            work(*args)
        finally:
            done.release()
    try:
        _thread.start_new_thread(run, ())
    except RuntimeError:  # (no thread to be had: the work is done here, before the caller's)
        run()
    return done


def _read_checked(fh, output: bytearray, check: int, verdict: list) -> None:
    """The rest of `fh` into `output`; True into `verdict` when it filled it exactly with `check`'s bytes."""
    try:
        view, got = memoryview(output), 0
        while got < len(output):
            step = fh.readinto(view[got:])
            if not step:
                break
            got += step
        verdict.append(got == len(output) and not fh.read(1) and crc32(output) == check)
    except (OSError, ValueError):
        verdict.append(False)


def _unchanged(folders: list[str], counts: list[int], names: list[str], sizes, mtimes) -> bool:
    """Every checked path as it was: each folder's names `stat`ed through the folder's descriptor
    where the system allows it (no path walked again per file: about a tenth faster)."""
    stat, by_fd = os.stat, os.stat in os.supports_dir_fd
    start = 0
    for folder, count in zip(folders, counts):
        end = start + count
        fd = None
        if by_fd:
            try:
                fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            except OSError:
                pass  # (gone, or not a folder: each name is stated by its whole path, and fails)
        try:
            for name, size, mtime_ns in zip(names[start:end], sizes[start:end], mtimes[start:end]):
                try:
                    st = stat(name, dir_fd=fd) if fd is not None else stat(os.path.join(folder, name))
                except OSError:
                    if size == ABSENT:
                        continue
                    return False
                if size == ABSENT or st.st_mtime_ns != mtime_ns or (size != FOLDER and st.st_size != size):
                    return False
        finally:
            if fd is not None:
                os.close(fd)
        start = end
    return True


def _pack_checks(checks: list[tuple]) -> tuple:
    """(folders, counts, names joined by NUL, sizes, mtimes as int64 bytes): the checks grouped by
    folder in a form a replay loads in a fraction of the time 6,000 tuples take."""
    from array import array
    groups: dict[str, list] = {}
    for path, size, mtime in checks:
        folder, name = os.path.split(path)
        if not name:  # ("/" or a path ending in a separator)
            folder, name = path, "."
        groups.setdefault(folder, []).append((name, size, mtime))
    rows = [row for group in groups.values() for row in group]
    return (list(groups), [len(g) for g in groups.values()], "\0".join(r[0] for r in rows),
            array("q", [r[1] for r in rows]).tobytes(), array("q", [r[2] for r in rows]).tobytes())


def quick_checks(files: list[tuple[str, int, int]], roots: list[str], extra: list[str], env,
                 started_ns: int, walked: dict | None = None) -> list[tuple] | None:
    """What an output depends on: `files` as (path, size, mtime_ns) stated before they were read,
    every folder under `roots`, the folders new agent data would appear in, and `extra` paths.
    None when a folder changed since about `started_ns` (the run may have missed what changed it).
    `walked`: root -> the folders the run's discovery listed under it (`paths.WALKED`), not listed again."""
    if any(mtime >= started_ns - RECENT_NS for _p, _size, mtime in files):
        return None  # being written: another write in the same clock tick would not show
    checks = [(p, size, mtime) for p, size, mtime in files]
    own = os.path.dirname(quick_dir(env))
    folders: set[str] = set()
    stack = []
    for root in map(str, roots):
        listed = (walked or {}).get(root)
        if listed is None:
            stack.append(root)
        else:
            folders.update(f for f in listed if not f.startswith(own))
    while stack:
        top = stack.pop()
        if top in folders or top.startswith(own):
            continue
        folders.add(top)
        try:
            with os.scandir(top) as it:
                stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
    home = env.get("HOME") or os.path.expanduser("~")
    bases = [home, env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"),
             env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")]
    for name, value in env.items():
        if name in NOT_LOCATIONS or not (name.endswith(("_DIR", "_HOME", "_ROOT")) or name in LOCATION_VARS):
            continue
        bases.extend(v.strip() for part in value.split(",") for v in part.split(os.pathsep)
                     if os.path.isabs(v.strip()))
    for base in bases:
        folders.add(base)
        try:
            with os.scandir(base) as it:
                folders.update(e.path for e in it if e.is_dir(follow_symlinks=False) and not
                               (e.path == own or own.startswith(e.path + os.sep)))
        except OSError:
            continue
    for path in [*sorted(folders), *extra]:
        try:
            st = os.stat(path)
        except OSError:
            checks.append((path, ABSENT, 0))
            continue
        if st.st_mtime_ns >= started_ns - RECENT_NS:
            return None
        checks.append((path, FOLDER if path in folders else st.st_size, st.st_mtime_ns))
    return checks


def quick_store(argv: list[str], env, checks: list[tuple], output: bytes, checksum: int | None = None) -> None:
    """Keep `output` (UTF-8; `checksum`: its crc32, when the caller has it) for this invocation, written
    whole or not at all, after the digest and the checks (no copy of the output is made); the oldest go
    past QUICK_KEEP."""
    folder = quick_dir(env)
    os.makedirs(folder, exist_ok=True)
    name, ident = quick_key(argv, env)
    path = os.path.join(folder, name)
    tmp = f"{path}.{os.getpid()}.tmp"
    head = marshal.dumps((ident, *_pack_checks(checks), len(output), crc32(output) if checksum is None else checksum))
    with open(tmp, "wb") as fh:
        fh.write(len(head).to_bytes(8, "little"))
        fh.write(head)
        fh.write(output)
    os.replace(tmp, path)
    kept = sorted(os.scandir(folder), key=lambda e: e.stat().st_mtime_ns)
    for e in kept[:-QUICK_KEEP]:
        try:
            os.unlink(e.path)
        except OSError:
            pass


def package_sources() -> list[str]:
    """Nomira's own source files (a replayed output was made by this code)."""
    return [os.path.join(PACKAGE_ROOT, rel) for rel, _size, _mtime in _code()]
