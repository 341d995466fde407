"""Folds made where a file is read, and the audit that says which of them stand.

After a cold scan of a large history the parent had everything left to do alone: unpack each
file's records, route them to partitions, read them back, deduplicate, price and fold, while
the other core idled. A scan worker that also folds the file it just read (`scan.PREFOLD`)
moves that work into the parallel part. A file's fold stands only when deduplicating the
whole history could not change it: none of its calls' dedup keys (the source's
`partition_key`) appears in another file of the source. The parent
checks that on 63-bit hashes of the keys (a collision only sends a file the long way; calls that
meet only within the file were deduplicated by the worker as the parent would), the same in every
process and run: a kept fold's hashes, made in an earlier run, meet this run's (Python's `hash` of a
str is seeded per process: a file reused from the cache and one read now never matched, and a call
both held was counted twice); every
other file (and all of them once `AUDIT_MAX` keys are exceeded, or when the caller wants the
events themselves) goes through `Partitions` as before, in path order, so deduplication
decides exactly what it decided before. Memory: 8 bytes a call for the hashes, the set of
hashes up to `AUDIT_MAX`, each file's small fold, and the packed records in a temporary file.
"""
from __future__ import annotations

import marshal
import tempfile
from array import array
from zlib import adler32, crc32

from nomira.sources.partition import _pread
from nomira.sources.scan import Packed, ScanStats, events_of

AUDIT_MAX = 1 << 19  # distinct keys held for the audit (about 30 MB); past it, every file the long way
HOLD_BYTES = 8 << 20  # packed records held in memory; the rest waits in a temporary file
MIN_CALLS = 16  # a file with fewer calls is folded by the parent: a fold's fixed cost (~40 us) weighs more
# A source whose files average less is read as before (records to the parent as they come, folded
# after): its files would mostly be under MIN_CALLS, and the parent, holding them back until
# the audit, would do their routing after the scan instead of during it.
MIN_AVERAGE_BYTES = 128 << 10


def _hash(key) -> int:
    """A key's 63-bit hash, the same in every process and run (CRC-32 and Adler-32 of its UTF-8)."""
    b = (key if type(key) is str else repr(key)).encode("utf-8", "surrogatepass")
    return (crc32(b) << 31) ^ adler32(b)


def hook(task):
    """The function scan workers run on each whole file (`scan.run_jobs(prefold=...)`): (state,
    hashes of the records' dedup keys, (task(the file's events), what the file's own deduplication
    counted), or None below `MIN_CALLS`, when a record has no key or when `task` returns None).
    `task` returns values marshal takes (the worker sends them with the file's scan result)."""

    def prefold(module, path, records, state):
        hashes, keyless = _hashes(module, records)
        if keyless or len(records) < MIN_CALLS:
            return state, hashes, None  # (its keys still audited: another file's fold may meet them)
        stats = ScanStats()
        events = list(events_of(module, [(path, records, state)], stats))
        folded = task(events)
        return state, hashes, None if folded is None else (folded, stats.skipped)
    return prefold


def _hashes(module, records) -> tuple[bytes, bool]:
    """(hashes of the records' dedup keys, whether a record has none: such a file is not foldable,
    but its keys are audited all the same)."""
    key = module.partition_key
    keys = [key(r) for r in records]
    keyless = None in keys
    if keyless:
        keys = [k for k in keys if k is not None]
    return array("q", map(_hash, keys)).tobytes(), keyless


class Held:
    """One source's files as the workers returned them, in path order, until the fold decides.
    `parts`: where the files that go the long way go; those without a fold that come before any
    file with one go there at once (nothing before them waits: path order holds), so a history
    whose files get no fold is routed while it is read, as without folds."""

    def __init__(self, module, parts=None) -> None:
        self.module = module
        self.parts = parts
        # [path, state, fold or None, hashes, records: packed, a list, a KeptFold or (offset, length) spilled]
        self.files: list[list] = []
        self.seen: set[int] | None = set()  # None once past AUDIT_MAX
        self.dups: set[int] = set()
        self.spill = None
        self.size = 0  # of the spill file
        self.held = 0  # bytes of packed records in memory

    def add(self, path: str, records, state: dict, folded: tuple) -> None:
        """`records`: a `Packed` (read this run), a `scancache.KeptFold` (reused: read from the
        cache only if the file goes the long way) or a list. `folded`: (hashes of the records' keys,
        None when they were not made; the file's fold or None)."""
        hashes, fold = folded
        now = fold is None and not self.files and self.parts is not None  # (nothing held before it)
        if now:
            records = records if type(records) is list else records.unpack()
        if hashes is None:
            hashes = _hashes(self.module, records if type(records) is list else records.unpack())[0]
        if now:
            self.parts.add(path, records, state)
        else:
            if type(records) is Packed:
                records = records.blob
                self.held += len(records)
            elif type(records) is list:
                self.held += 64 * len(records)  # (about what they take packed)
            self.files.append([path, state, fold, hashes, records])
            if self.held > HOLD_BYTES:
                self._spill()
        seen = self.seen
        if seen is None:
            return
        own = array("q")
        own.frombytes(hashes)
        mine = set(own)  # (a key twice in the file alone: its own dedup, the same in the worker)
        common = seen.intersection(mine) if len(mine) < len(seen) else mine.intersection(seen)
        if common:
            self.dups |= common
        seen |= mine
        if len(seen) > AUDIT_MAX:
            self.seen = None
            self.dups = set()

    def _spill(self) -> None:
        """The packed records held in memory to the temporary file."""
        if self.spill is None:
            self.spill = tempfile.TemporaryFile(prefix="nomira-held-")
        for f in self.files:
            blob = f[4]
            if type(blob) is list:
                blob = marshal.dumps((blob,))  # (read back as a packed file's: records first)
            if type(blob) is bytes:
                self.spill.write(blob)
                f[4] = (self.size, len(blob))
                self.size += len(blob)
        self.held = 0

    def settle(self, parts, everything: bool = False) -> list[tuple[str, dict, object]]:
        """Send the files whose folds do not stand (all of them with `everything`) to `parts`, in
        path order; the others' (path, state, (fold, what their deduplication counted))."""
        standing = []
        audited = self.seen is not None and not everything
        dups = self.dups
        if self.spill is not None:
            self.spill.flush()
        fd = self.spill.fileno() if self.spill is not None else -1
        for path, state, fold, hashes, blob in self.files:
            if audited and fold is not None:
                if not dups:
                    standing.append((path, state, fold))
                    continue
                own = array("q")
                own.frombytes(hashes)
                if dups.isdisjoint(own):
                    standing.append((path, state, fold))
                    continue
            if type(blob) is tuple:
                offset, length = blob
                blob = _pread(self.spill, fd, length, offset)
            if type(blob) is bytes:
                records = marshal.loads(blob)[0]
            elif type(blob) is list:
                records = blob
            else:  # (a kept fold's file: its records from the cache)
                records = blob.unpack()
            parts.add(path, records, state)
        self.close()
        return standing

    def close(self) -> None:
        self.files = []
        self.seen = None
        if self.spill is not None:
            self.spill.close()
            self.spill = None
