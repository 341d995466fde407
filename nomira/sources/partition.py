"""Scanned records held for deduplication in bounded memory, spilled to disk by dedup key.

Cross-file deduplication has to see every call before it can emit one, so a history's
records must wait somewhere. Small histories wait in memory. Past `budget` records they
are split into `PARTS` partitions by a key every copy of a call shares (the source's
`partition_key`) and written to one temporary file; partitions are then deduplicated a
group at a time. All copies of a call land in one partition, in scan order, so each group
decides exactly what deduplicating the whole history at once would, and peak memory
follows `budget`, not the history.
"""
from __future__ import annotations

import marshal
import os
import sys
import zlib
from array import array
from typing import Callable

PARTS = 128
BUDGET = 32768  # records held in memory (waiting, or one group being deduplicated)


def _pread(fh, fd: int, length: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, length, offset)
    fh.seek(offset)  # no pread (Windows): groups are then only read in this process
    return fh.read(length)


class Partitions:
    """Per-file (path, records, state) items in, groups of items out (each a list, scan order kept)."""

    def __init__(self, key: Callable[[list], str | None], budget: int = BUDGET, parts: int = PARTS) -> None:
        self.key, self.budget, self.parts = key, budget, parts
        self.files: list[tuple[str, dict]] = []  # (path, state), indexed by the items
        self.held: list[tuple[int, list]] = []  # (file index, records) not yet routed
        self.held_records = 0
        self.spill = None  # temporary file once the budget is exceeded
        self.size = 0
        self.blobs: list[list[tuple[int, int]]] = [[] for _ in range(parts)]  # (offset, length)
        self.counts = [0] * parts

    def add(self, path: str, records: list, state: dict) -> None:
        self.files.append((path, state))
        if records:
            self.held.append((len(self.files) - 1, records))
            self.held_records += len(records)
        if self.held_records > self.budget:
            self._route()

    def _route(self) -> None:
        """Write the held records to disk, each partition as (records, their file indexes)."""
        if self.spill is None:
            import tempfile  # (only a history past the budget spills)
            try:
                self.spill = tempfile.TemporaryFile(prefix="nomira-spill-")
            except OSError as exc:  # no writable temp dir: correct results, unbounded memory
                print(f"nomira: cannot spill to a temporary file ({exc}); holding the history in memory",
                      file=sys.stderr)
                self.budget = sys.maxsize
                return
        key, parts = self.key, self.parts
        recs: list[list] = [[] for _ in range(parts)]
        idxs = [array("I") for _ in range(parts)]
        crc32 = zlib.crc32
        for idx, records in self.held:
            for rec in records:
                k = key(rec)
                p = 0 if k is None else crc32(k.encode("utf-8", "surrogatepass")) % parts
                recs[p].append(rec)
                idxs[p].append(idx)
        self.held, self.held_records = [], 0
        for p in range(parts):
            if recs[p]:
                blob = marshal.dumps((recs[p], idxs[p].tobytes()))
                self.blobs[p].append((self.size, len(blob)))
                self.spill.write(blob)
                self.size += len(blob)
                self.counts[p] += len(recs[p])

    @property
    def records(self) -> int:
        return self.held_records + sum(self.counts)

    def weight(self, group: list[int] | None) -> int:
        """The records of a group `plan` returned."""
        return self.held_records if group is None else sum(self.counts[p] for p in group)

    def plan(self) -> list[list[int] | None]:
        """The groups to read: whole partitions of about `budget` records at most (one group,
        `None`, when nothing was spilled). Call once every file has been added."""
        if self.spill is None:
            return [None]
        self._route()
        self.spill.flush()
        groups: list[list[int]] = [[]]
        size = 0
        for p in range(self.parts):
            if groups[-1] and size + self.counts[p] > self.budget:
                groups.append([])
                size = 0
            groups[-1].append(p)
            size += self.counts[p]
        return groups

    def read(self, group: list[int] | None) -> list[tuple[str, list, dict]]:
        """A group's records as per-file (path, records, state) items, scan order kept per file.

        Reads with pread, so worker processes sharing the file never race on its offset."""
        files = self.files
        if group is None:
            return [(files[i][0], recs, files[i][1]) for i, recs in self.held]
        out = []
        fd = self.spill.fileno()
        for p in group:
            for offset, length in self.blobs[p]:
                recs, raw = marshal.loads(_pread(self.spill, fd, length, offset))
                idxs = array("I")
                idxs.frombytes(raw)
                start = 0
                for i in range(1, len(recs) + 1):
                    if i == len(recs) or idxs[i] != idxs[start]:
                        path, state = files[idxs[start]]
                        out.append((path, recs[start:i], state))
                        start = i
        return out

    def close(self) -> None:
        self.held = []
        if self.spill is not None:
            self.spill.close()
