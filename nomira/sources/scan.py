"""Streaming line scanner shared by every line-based source.

Agent logs are mostly tool results that carry no usage, and some single lines are
megabytes. The scanner reads a file in binary chunks, finds the few lines that hold
a marker (e.g. `"usage":`) with a bytes search before any JSON parsing, and hands
only those lines on. Memory is bounded by the chunk size plus the longest line,
never by the file or the history.
"""
from __future__ import annotations

import importlib
import marshal
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from nomira.sources import compressed

CHUNK = 4 << 20
UNFINISHED = "unfinished_last_line"  # counted in the run that sees it, re-read (not cached) after


@dataclass(slots=True)
class ScanStats:
    """What a scan saw, so bad input is counted and reported, never silently dropped. (Made and
    merged once per file: thousands of times in a run of many small files.)"""

    files: int = 0
    bytes: int = 0
    candidates: int = 0
    malformed: int = 0
    skipped: dict = field(default_factory=dict)
    unreadable: list = field(default_factory=list)  # paths of files that could not be read

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def merge(self, other: "ScanStats") -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.candidates += other.candidates
        self.malformed += other.malformed
        if other.skipped:
            mine = self.skipped
            for k, v in other.skipped.items():
                mine[k] = mine.get(k, 0) + v
        if other.unreadable:
            self.unreadable += other.unreadable

    @classmethod
    def from_dict(cls, d: dict) -> "ScanStats":
        g = d.get
        return cls(g("files", 0), g("bytes", 0), g("candidate_lines", 0), g("malformed_lines", 0),
                   dict(g("skipped", ())), list(g("unreadable", ())))

    def as_dict(self) -> dict:
        return {
            "files": self.files, "bytes": self.bytes,
            "candidate_lines": self.candidates, "malformed_lines": self.malformed,
            "skipped": dict(sorted(self.skipped.items())),
            "unreadable": list(self.unreadable),
        }


class LineScan:
    """Iterate the lines of `path` from byte `start` that contain a marker.

    After iteration, `end_offset` is the offset just past the last complete
    (newline-terminated) line, which is where an incremental re-scan resumes. A
    final line without a newline is still yielded (it may be a complete last line);
    `tail_start` then marks where it began, so a caller that fails to parse it can
    resume from there once the writer finishes it.
    """

    def __init__(self, path: str | os.PathLike, markers: tuple[bytes, ...], start: int = 0,
                 chunk_size: int = CHUNK):
        self.path = path
        self.start = start
        self.chunk_size = chunk_size
        self.end_offset = start
        self.tail_start: int | None = None
        self.bytes_read = 0
        self._markers = None
        if len(markers) == 1:
            self._search = markers[0]
            self._rx = None
        else:
            self._rx = re.compile(b"|".join(re.escape(m) for m in markers))
            if len({m[:1] for m in markers}) > 1 and not any(b"\n" in m for m in markers):  # no common first
                self._markers = tuple(markers)  # byte: the regex tries nearly every byte (Aider's prose: 2x a find)

    def _find(self, buf: bytes, pos: int) -> int:
        if self._rx is None:
            return buf.find(self._search, pos)
        m = self._rx.search(buf, pos)
        return m.start() if m else -1

    def __iter__(self) -> Iterator[bytes]:
        global _LAST_READ, _LAST_STATED
        rx, search = self._rx, self._search if self._rx is None else None
        find = self._find
        # the descriptor itself (no file object: thousands of small files), whole chunks, no buffer
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            if self.start:
                os.lseek(fd, self.start, os.SEEK_SET)
            base = self.start  # file offset of the pending partial line (or of the next chunk)
            pending = b""  # the start of a line the previous chunks did not finish
            # a small file in one read of its size (a 4 MB read allocates 4 MB), and a short read
            # up to the size is the end: one read per file instead of two
            st = os.fstat(fd)
            size = st.st_size
            if not self.start:  # (before any read: what the file was when it was read whole)
                _LAST_STATED = (os.fspath(self.path), size, st.st_mtime_ns)
            want = min(self.chunk_size, max(size - self.start, 0) + 1)
            while True:
                chunk = os.read(fd, want)
                if not chunk:
                    break
                self.bytes_read += len(chunk)
                _LAST_READ = (os.fspath(self.path), base + len(pending), chunk)
                # the chunk is searched where it lies: only the line the previous chunk left
                # unfinished is joined (a copy of that line, not of the chunk)
                pos = 0
                if pending:
                    first_nl = chunk.find(b"\n")
                    if first_nl < 0:  # a line longer than the chunk: keep reading it
                        pending += chunk
                        if len(chunk) < want and base + len(pending) >= size:
                            break
                        want = self.chunk_size
                        continue
                    line = pending + chunk[:first_nl]
                    if find(line, 0) >= 0:
                        yield line
                    base += len(line) + 1
                    pending = b""
                    pos = first_nl + 1
                last_nl = chunk.rfind(b"\n")
                if last_nl >= pos:
                    if rx is None:
                        cfind = chunk.find
                        i = cfind(search, pos)
                        while 0 <= i < last_nl:
                            line_end = cfind(b"\n", i)
                            yield chunk[chunk.rfind(b"\n", 0, i) + 1:line_end]
                            i = cfind(search, line_end)
                    elif self._markers is None:
                        i = find(chunk, pos)
                        while 0 <= i < last_nl:
                            line_end = chunk.find(b"\n", i)
                            yield chunk[chunk.rfind(b"\n", 0, i) + 1:line_end]
                            i = find(chunk, line_end)
                    else:  # every place of each marker by bytes.find, in order: the lines the regex finds
                        cfind, hits = chunk.find, []
                        for m in self._markers:
                            i = cfind(m, pos, last_nl)
                            while i >= 0:
                                hits.append(i)
                                i = cfind(m, i + 1, last_nl)
                        line_end = -1
                        for i in sorted(hits):
                            if i > line_end:  # (a marker in a line already yielded: skipped)
                                line_end = cfind(b"\n", i)
                                yield chunk[chunk.rfind(b"\n", 0, i) + 1:line_end]
                    base += last_nl + 1 - pos
                    pos = last_nl + 1
                pending = chunk[pos:]
                if len(chunk) < want and base + len(pending) >= size:
                    break
                want = self.chunk_size
            self.end_offset = base
            if pending.strip() and find(pending, 0) >= 0:
                self.tail_start = base
                yield pending.rstrip(b"\r")
        finally:
            os.close(fd)


_LAST_READ: tuple | None = None  # (path as str, file offset, bytes) of the last chunk a LineScan read
_LAST_STATED: tuple | None = None  # (path as str, size, mtime_ns) of the file a LineScan last opened at 0


MID_LINE = b""  # the signature of an end that is not a line's: no file's bytes hash to it


def end_signature(path, end: int) -> bytes:
    """scancache.signature(path, end), from the bytes the scan just read when it holds them
    (no second open and read of each file); `MID_LINE` when the scan stopped after a last line that
    had no newline: a later write may continue that line, and a whole read would then see one line
    where a resumed read sees two, so such a file is never resumed (`_plan`), it is read whole."""
    global _SIG
    if _SIG is None:  # imported once, not per file
        from nomira.digests import sha1
        from nomira.sources.scancache import SIG_BYTES, bytes_before
        _SIG = (SIG_BYTES, bytes_before, sha1())
    sig_bytes, bytes_before, sha1 = _SIG
    start = max(0, end - sig_bytes)
    last = _LAST_READ
    if last is not None and last[0] == os.fspath(path) and last[1] <= start \
            and end <= last[1] + len(last[2]):  # (a source may pass a Path or a str)
        before = last[2][start - last[1]:end - last[1]]
    else:
        before = bytes_before(path, end)
    if before and before[-1] != 10:  # (b"\n")
        return MID_LINE
    return sha1(before).digest()


_SIG = None  # (scancache.SIG_BYTES, scancache.bytes_before, sha1)


def scan_json_lines(path, start: int, state: dict, markers: tuple[bytes, ...],
                    visit) -> tuple[list[list], dict, int, ScanStats]:
    """scan_file for an append-only JSONL log: each line holding a marker goes, parsed, to
    `visit(obj, state, stats) -> records | None` (None when the line is not a JSON object); bad
    lines are counted; an unfinished last line is left for the next run, which resumes from the
    returned offset with `state`."""
    stats = ScanStats(files=1)
    records: list[list] = []
    scan = LineScan(path, markers, start)
    end = None
    loads = _line_loads()
    for line in scan:
        stats.candidates += 1
        try:
            d = loads(line)
        except (ValueError, RecursionError):  # (RecursionError: nesting deeper than the decoder goes)
            if scan.tail_start is not None:  # the writer is mid-line: resume here next time
                end = scan.tail_start
                stats.skip(UNFINISHED)
            else:
                stats.malformed += 1
            continue
        _take(d, state, stats, visit, records)
    if end is None:
        end = scan.end_offset if scan.tail_start is None else os.path.getsize(path)
    stats.bytes = end - start
    return records, state, end, stats


def _take(d, state: dict, stats: ScanStats, visit, records: list) -> None:
    """A parsed line's records (`visit`'s), or a malformed line counted: JSON that is not an object."""
    got = visit(d, state, stats) if isinstance(d, dict) else None
    if got is None and not isinstance(d, dict):
        stats.malformed += 1
    elif got:
        records.extend(got)


def scan_compressed_lines(path, state: dict, markers: tuple[bytes, ...],
                          visit) -> tuple[list[list], dict, int, ScanStats]:
    """scan_file for a zstd-compressed JSONL log (`compressed.lines`), read whole each time it changes:
    as `scan_json_lines`, with the file's size as the end offset (an unchanged file is served from the
    cache; `_plan` never resumes one part-way). Without a decoder the file is counted
    `compressed.ZSTD_MISSING` and its end offset is 0, so it is read once a decoder is installed; a
    damaged frame is counted `compressed.ZSTD_BAD`, the calls before it kept."""
    stats = ScanStats(files=1, bytes=os.path.getsize(path))
    records: list[list] = []
    lines = compressed.lines(path)
    if lines is None:
        stats.skip(compressed.ZSTD_MISSING)
        return records, state, 0, stats
    loads = _line_loads()
    try:
        for line in lines:
            if not any(m in line for m in markers):
                continue
            stats.candidates += 1
            try:
                d = loads(line)
            except (ValueError, RecursionError):
                stats.malformed += 1
                continue
            _take(d, state, stats, visit, records)
    except Exception:  # noqa: BLE001 - zstd's and the decoder's own errors: a damaged file is counted, never fatal
        stats.skip(compressed.ZSTD_BAD)
    return records, state, stats.bytes, stats


def events_of(module, per_file, stats: ScanStats):
    """`module.events_from_files`, without an event whose token counts no call can have (a count past
    `MAX_COUNT`, negative or not an integer: `implausible_token_count`, counted and skipped, never
    priced) or without a time (`no_timestamp`). Claude Code, Codex and OpenCode check both as they read
    them (`COUNTS_CHECKED`)."""
    events = module.events_from_files(per_file, stats)
    if getattr(module, "COUNTS_CHECKED", False):
        return events
    return _plausible_only(events, stats)


def _plausible_only(events, stats: ScanStats):
    from nomira.ledger.events import plausible, usable_time
    for e in events:
        if not usable_time(e.occurred_at):
            stats.skip("no_timestamp")
        elif plausible(e.tokens):
            yield e
        else:
            stats.skip("implausible_token_count")


def _line_loads():
    """json.loads for one JSONL line, without its per-call detour (encoding sniffing, two
    wrappers, a whitespace regex) on the common line, `{...}` in UTF-8: the C scanner on the
    decoded text, whole line consumed. Any other line goes through json.loads itself, so the
    result and the error are always json.loads's (issue 27: 15,000 lines of 60 sources)."""
    import json
    loads, scan_once = json.loads, json.JSONDecoder().scan_once

    def line_loads(line: bytes):
        if line[:1] == b"{" and line[-1:] == b"}" and line[1:2] != b"\x00":
            try:
                s = line.decode("utf-8", "surrogatepass")
                obj, end = scan_once(s, 0)
            except (ValueError, StopIteration):
                return loads(line)
            if end == len(s):
                return obj
        return loads(line)
    return line_loads


# --- scanning many files: incremental cache and worker processes -------------------

PARALLEL_MIN_BYTES = 32 << 20


def _merge(module, old: list, new: list, stats: ScanStats) -> list:
    merged = module.merge_records(old, new)
    if len(old) + len(new) > len(merged):
        stats.skip("duplicate_call", len(old) + len(new) - len(merged))
    return merged


PREFOLD = None  # in a scan worker: fn(module, path, records, state) -> marshal's values, or None


def _job(args: tuple) -> tuple[str, tuple, bytes]:
    """Scan one file (in a worker when there are several): (path, (where it stopped, its stats, the
    signature of the bytes before that point, the file's prefold or None, its (size, mtime_ns) as the
    scan opened it or None), the cache entry's data). The data is made once, here: the parent writes
    it to the cache as it is and decodes it for the records (of a prefolded file, only when its calls
    meet another file's). The rest are plain values, sent in the worker's one frame for the file."""
    global _LAST_READ, _LAST_STATED
    name, path, start, state, prefold, *stat = args
    module = sys.modules.get(name) or importlib.import_module(name)  # (a dict lookup per file, not the import machinery)
    _LAST_READ = _LAST_STATED = None
    try:
        records, state, end, stats = module.scan_file(path, start, state)
        sig = end_signature(path, end)
    except OSError as exc:  # vanished or unreadable since discovery: counted, never fatal
        stats = ScanStats(files=1, unreadable=[path])
        stats.skip(f"unreadable_file:{type(exc).__name__}")
        return path, (start, stats.as_dict(), None, None, None), marshal.dumps(([], state or {}, {}))
    except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError, RecursionError) as exc:
        # a parser met content it did not expect (its bad lines are counted where it knows them):
        # this file is counted as skipped, the rest of the history is still read
        stats = ScanStats(files=1)
        stats.skip(f"unparsable_file:{type(exc).__name__}")
        return path, (start, stats.as_dict(), None, None, None), marshal.dumps(([], state or {}, {}))
    stated = None  # (a job planned without a stat: the file's size and mtime when the scan opened it, before
    if stat and stat[0]:  # reading; none when the source's scan did not open it with a LineScan at 0)
        last = _LAST_STATED
        if last is not None and last[0] == os.fspath(path):
            stated = last[1:]
    if not getattr(module, "MERGED", False):
        records = _merge(module, [], records, stats)
    folded = None
    if prefold and PREFOLD is not None:
        try:
            folded = PREFOLD(module, path, records, state)
        except Exception:  # noqa: BLE001 - the parent folds the file itself (and meets any error there)
            folded = None
    if folded is not None:
        try:
            marshal.dumps(folded)
        except ValueError:  # a prefold of values marshal does not take: the parent folds the file
            folded = None
    stats = stats.as_dict()
    return path, (end, stats, sig, folded, stated), marshal.dumps((records, state, entry_stats(stats)))


def entry_stats(stats: dict) -> dict:
    """A file's stats as its cache entry keeps them: without the unfinished last line, counted (and read
    again) by the run that meets it, not by a run that reuses the entry."""
    unfinished = stats["skipped"].get(UNFINISHED)
    if not unfinished:
        return stats
    return dict(stats, candidate_lines=stats["candidate_lines"] - unfinished,
                skipped={k: v for k, v in stats["skipped"].items() if k != UNFINISHED})


def _plan(files: list[Path], entries: dict, stats: ScanStats, known: dict | None = None,
          later: bool = False) -> tuple[list, dict]:
    """Split files into reused cache entries and (path, start, state, previous entry, (size, mtime_ns))
    jobs. `known`: (size, mtime_ns) by path, stated by the caller before anything was read. `later`: a
    file without an entry is not stated here (its job's (size, mtime_ns) is None): the worker's scan
    states it as it opens it (`_job`)."""
    from nomira.sources.scancache import signature
    jobs, reused = [], {}
    known = known or {}
    for f in files:
        key = str(f)
        st = known.get(key)
        if st is None and later and key not in entries:
            jobs.append((key, 0, None, None, None))
            continue
        if st is None:
            try:
                s = os.stat(key)
            except OSError as exc:
                stats.skip(f"unreadable_file:{type(exc).__name__}")
                stats.unreadable.append(key)
                continue
            st = (s.st_size, s.st_mtime_ns)
        e = entries.get(key)
        if e is not None and e.size == st[0] and e.mtime_ns == st[1] and e.offset == e.size:
            reused[key] = e
        elif e is not None and 0 < e.offset < st[0] and not compressed.is_compressed(key) \
                and signature(key, e.offset) == e.sig:
            # (grown past where the scan stopped: an append. A file no longer than that whose mtime
            # changed was rewritten in place, maybe far from its end, and a compressed log's new
            # frames resume no line: read whole)
            jobs.append((key, e.offset, e.data()[1], e, st))
        else:
            jobs.append((key, 0, None, None, st))
    return jobs, reused


def iter_scan(module, files: list[Path], entries: dict | None = None, workers: int = 1, progress=None,
              writer=None, known: dict | None = None) -> Iterator[tuple[Path, list, dict, ScanStats]]:
    """Yield (path string, records, state, stats) per file, in path order, resuming from cache `entries`.

    Files stream through one at a time, so a caller that keeps only what it needs holds no
    history in memory. With a cache `writer`, each file's new entry is written as it passes.
    Path order makes cross-file dedup ties the same with or without the cache. `known`: each
    file's (size, mtime_ns) when the caller already stated it.
    """
    planned = Planned(module, files, entries, known)
    results, pool = run_jobs(planned.args, planned.sizes, workers)
    try:
        yield from iter_planned(planned, results, progress, writer)
    finally:
        if pool is not None:
            pool.terminate()


class Planned:
    """One source's files split into reused cache entries and `_job` arguments (path order), so
    several sources' jobs can share one pool of workers (`run_jobs`, then `iter_planned` each).

    `prefold` (see `ask_prefold` and `use_kept`): files come with folds made where they were read, or
    kept from an earlier run, for `prefold.Held` to audit."""

    def __init__(self, module, files: list[Path], entries: dict | None = None, known: dict | None = None,
                 later: bool = False):
        self.module = module
        self.lost = ScanStats()
        later = later and getattr(module, "STATED_BY_SCAN", False)
        input_only = getattr(module, "input_only", None)  # (files only stated: the output key's inputs)
        if input_only is not None:
            files = [f for f in files if not input_only(str(f))]
        self.jobs, self.reused = _plan(sorted(files, key=str), entries or {}, self.lost, known, later)
        # (size, mtime_ns) of each file as it was before it was read: stated here, or by the worker (`later`)
        self.stated: dict[str, tuple] = {k: st for k, _s, _st, _e, st in self.jobs if st is not None}
        self.stated.update((k, (e.size, e.mtime_ns)) for k, e in self.reused.items())
        self.guess = guess = _typical_size(self.jobs) if later else 0
        self.sizes = [st[0] - start if st is not None else guess for _k, start, _s, _e, st in self.jobs]  # bytes to read
        self.todo_bytes = sum(self.sizes)
        self.unstated = 0  # jobs planned without a stat whose worker could not state the file either
        self.prefold = False
        self.kept: dict = {}  # path -> scancache.KeptFold of a reused file
        self.fold_key: str | None = None  # under which the folds made in this run are kept
        self.fold_here = None  # the workers' fold function, for the files no worker folded (`use_kept`)
        self.args = [(module.__name__, key, start, state, False, st is None)
                     for key, start, state, _e, st in self.jobs]

    def ask_prefold(self) -> bool:
        """Have the workers fold each file they read whole (a fold of part of a file would not be the
        file's: a resumed file's records go the long way, as do a reused file's without a kept fold)."""
        whole = [start == 0 for _k, start, *_r in self.jobs]
        if any(whole):
            self.prefold = True
            self.args = [(*a[:4], w, *a[5:]) for a, w in zip(self.args, whole)]
        return self.prefold

    def use_kept(self, kept: dict, fold_key: str, fold_here=None) -> None:
        """`kept`: the reused files' folds kept under `fold_key` (`ScanCache.kept_folds`), used instead
        of their records; the folds the workers make of whole files this run are kept under it too.
        `fold_here(module, path, records, state)` (`prefold.hook`): folds, in this process, every
        other file read whole or reused, so that each is kept (a reused file would otherwise never
        get a fold again once the key changed, e.g. the next day's prices)."""
        self.fold_key = fold_key
        self.kept = kept
        self.fold_here = fold_here
        if kept or fold_here is not None:
            self.prefold = True

    def bytes_per_file(self) -> float:
        """The source's files' average size (reused and read): below `prefold.MIN_AVERAGE_BYTES` a file's
        fold costs more than it saves."""
        sizes = [e.size for e in self.reused.values()] + [st[0] if st is not None else self.guess
                                                           for *_r, st in self.jobs]
        return sum(sizes) / len(sizes) if sizes else 0.0


SAMPLE = 32  # files stated to guess the size of files planned without a stat


def _typical_size(jobs: list) -> int:
    """The mean size of up to SAMPLE files planned without a stat, spread over them (for the workers'
    runs, and whether files are large enough to be folded where they are read): 0.1 ms, not a stat each."""
    unstated = [k for k, _s, _st, _e, st in jobs if st is None]
    if not unstated:
        return 0
    sizes = []
    for key in unstated[::max(1, len(unstated) // SAMPLE)][:SAMPLE]:
        try:
            sizes.append(os.stat(key).st_size)
        except OSError:
            continue
    return sum(sizes) // len(sizes) if sizes else 1 << 16


def pooled(args: list, todo_bytes: int, workers: int) -> bool:
    """Whether `run_jobs` reads in worker processes: several cores, several files and
    `PARALLEL_MIN_BYTES` to read."""
    return workers > 1 and len(args) > 1 and todo_bytes >= PARALLEL_MIN_BYTES


def run_jobs(args: list, sizes: list[int], workers: int, prefold=None):
    """(`_job` results in the order of `args`, the pool to terminate or None): in worker processes
    when `pooled` (`sizes`: the bytes each job reads), else one after another, as they are
    consumed. `prefold(module, path, records, state)`: run by the workers (forked: they inherit it)
    on each file a plan marked."""
    global PREFOLD
    if pooled(args, sum(sizes), workers):
        workers = min(workers, len(args))
        from nomira.sources import workers as forked
        if forked.usable():
            PREFOLD = prefold
            try:
                pool = forked.Forked(_job, args, workers, forked.guided(sizes, workers))
            finally:
                PREFOLD = None  # (the parent folds what it reads itself)
            return iter(pool), pool  # in order, each run of files to the first free worker
        import multiprocessing
        chunk = max(1, len(args) // (workers * 16))  # thousands of small files: fewer round trips
        pool = multiprocessing.get_context("spawn").Pool(workers)  # (Windows: no fork)
        return pool.imap(_job, args, chunk), pool
    return map(_job, args), None


def iter_planned(planned: Planned, results, progress=None,
                 writer=None) -> Iterator[tuple[Path, list, dict, ScanStats]]:
    """iter_scan of a planned source whose jobs' results are the next len(planned.args) of `results`.
    Of a `planned.prefold` source: (path, records, state, stats, (hashes of the records' dedup keys
    or None, the file's fold or None)), the records a `Packed` (read whole this run), a
    `scancache.KeptFold` (reused with its kept fold) or a list."""
    from nomira.sources.scancache import Entry, KeptFold, prefetch
    module, jobs, reused, lost, kept = planned.module, planned.jobs, planned.reused, planned.lost, planned.kept
    held, fold_key, fold_here = planned.prefold, planned.fold_key, planned.fold_here
    unfolded = ((None, None),) if held else ()  # (no hashes, no fold: what a held file without them gets)
    by_key = {j[0]: j for j in jobs}
    if progress:
        progress.start(len(jobs), planned.todo_bytes)
    results = _tracked(results, progress, by_key, planned.guess)
    in_order = [reused[k] for k in sorted(reused) if k not in kept]  # (read a batch at a time, as they come)
    if writer is not None and fold_key is not None:
        writer.keys.add(fold_key)  # (in use: its folds are kept while it is among the newest keys)
    used = fetched = 0
    try:
        for key in sorted([*reused, *by_key]):
            if key in reused:
                if writer is not None:
                    writer.keep(key)
                k = kept.get(key)
                if k is not None:  # (its records stay in the cache unless the audit wants them)
                    state, stats, hashes, fold = k.data()
                    yield key, k, state, ScanStats.from_dict(stats), (hashes, fold)
                    continue
                if used == fetched:
                    fetched += prefetch(in_order, used)
                used += 1
                records, state, stats = reused[key].data()
                if fold_here is None or reused[key].offset != reused[key].size:
                    yield (key, records, state, ScanStats.from_dict(stats)) + unfolded
                    continue
                state, hashes, fold, keep = _fold_here(fold_here, module, key, records, state, stats)
                if keep is not None and writer is not None:
                    writer.put_fold(key, reused[key], fold_key, keep)
                yield key, records, state, ScanStats.from_dict(stats), (hashes, fold)
                continue
            meta, blob = next(results)
            end, stats, sig, folded, stated = meta
            _k, start, _s, prev, st = by_key[key]
            if st is None:  # (planned without a stat: the worker's, made as it opened the file to read it)
                st = stated
                if st is not None:
                    planned.stated[key] = tuple(st)
                elif sig is not None:  # (not stated before it was read: no entry, nor an output, is kept of it)
                    planned.unstated += 1
            if held and start == 0:  # (read whole: no previous entry to merge with)
                if sig is None:
                    lost.merge(ScanStats.from_dict(stats))
                    continue
                keep = hashes = fold = None
                if folded is None:  # (read here, or the worker's fold failed)
                    records, state, _persisted = marshal.loads(blob)
                    if fold_here is not None and st is not None and end == st[0]:
                        state, hashes, fold, keep = _fold_here(fold_here, module, key, records, state, stats)
                else:
                    state, hashes, fold = folded
                    if fold_key is not None and st is not None and end == st[0]:  # (ended cleanly: reusable)
                        keep = KeptFold.pack(state, stats, hashes, fold)  # (None too: no fold, no second try)
                if writer is not None and st is not None:
                    writer.put(key, Entry(st[0], st[1], end, sig, blob), None if keep is None else (fold_key, keep))
                yield key, Packed(blob), state, ScanStats.from_dict(stats), (hashes, fold)
                continue
            records, state, _persisted = marshal.loads(blob)
            if prev is not None:
                prev_records, _prev_state, prev_stats = prev.data()  # (once: each read is a query and a checksum)
                merged = ScanStats.from_dict(prev_stats)
                merged.merge(ScanStats.from_dict(stats))
                merged.files = 1
                records = _merge(module, prev_records, records, merged)
                stats = merged.as_dict()
                blob = None
            if sig is None:  # gone or unreadable: report what was read, cache nothing
                lost.merge(ScanStats.from_dict(stats))
                continue
            if writer is not None and st is not None:
                if blob is None:
                    blob = marshal.dumps((records, state, entry_stats(stats)))
                writer.put(key, Entry(st[0], st[1], end, sig, blob))
            yield (key, records, state, ScanStats.from_dict(stats)) + unfolded
    finally:
        if progress:
            progress.done()
    if lost.skipped:
        yield ("(unreadable)", [], {}, lost) + unfolded


def _fold_here(fold_here, module, path: str, records: list, state: dict, stats: dict) -> tuple:
    """(state, hashes, fold or None, the fold's `KeptFold` data or None): `fold_here` of a file in this
    process, as a worker makes it (a fold that fails, or is not marshal's values, is left to the
    parent's own fold, as a worker's). A file `fold_here` makes no fold of keeps that (a `KeptFold`
    of None), so a later run sends it the long way without trying again."""
    from nomira.sources.scancache import KeptFold
    try:
        state, hashes, fold = fold_here(module, path, records, state)
        return state, hashes, fold, KeptFold.pack(state, stats, hashes, fold)
    except Exception:  # noqa: BLE001 - the long way then, where any error shows
        return state, None, None, None


def scan_files(module, files: list[Path], entries: dict | None = None, workers: int = 1,
               progress=None) -> list[tuple[Path, list, dict, ScanStats]]:
    """All files at once (tests, small inputs): [(path, records, state, stats)]."""
    return list(iter_scan(module, files, entries, workers, progress))


def _tracked(results, progress, by_key, guess: int = 0):
    for key, meta, blob in results:
        if progress:
            st = by_key[key][4]
            progress.step(st[0] - by_key[key][1] if st is not None else guess)  # (a job planned without a stat: the guess)
        yield meta, blob


class Packed:
    """A file's records as the worker packed them (the cache entry's data), unpacked only if used."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def unpack(self) -> list:
        return marshal.loads(self.blob)[0]


class Progress:
    """Files and MB done, with the rate, on stderr; only when stderr is a terminal."""

    def __init__(self, label: str, stream=None, min_bytes: int = 64 << 20):
        stream = sys.stderr if stream is None else stream  # today's stderr, not the one at import time
        self.label, self.stream, self.min_bytes = label, stream, min_bytes
        self.enabled = hasattr(stream, "isatty") and stream.isatty()

    def start(self, files: int, total: int) -> None:
        self.files, self.total, self.n, self.bytes, self.t0 = files, total, 0, 0, time.perf_counter()
        self.enabled = self.enabled and total >= self.min_bytes

    def step(self, nbytes: int) -> None:
        self.n += 1
        self.bytes += nbytes
        if self.enabled:
            rate = self.bytes / 1e6 / max(time.perf_counter() - self.t0, 1e-6)
            self.stream.write(f"\r{self.label}: {self.n}/{self.files} files, {self.bytes / 1e6:.0f}/"
                              f"{self.total / 1e6:.0f} MB ({rate:.0f} MB/s)")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()
