"""Streaming line scanner shared by every line-based source.

Agent logs are mostly tool results that carry no usage, and some single lines are
megabytes. The scanner reads a file in binary chunks, finds the few lines that hold
a marker (e.g. `"usage":`) with a bytes search before any JSON parsing, and hands
only those lines on. Memory is bounded by the chunk size plus the longest line,
never by the file or the history.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterator

CHUNK = 1 << 20


@dataclass
class ScanStats:
    """What a scan saw, so bad input is counted and reported, never silently dropped."""

    files: int = 0
    bytes: int = 0
    lines: int = 0
    candidates: int = 0
    malformed: int = 0
    skipped: dict = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def merge(self, other: "ScanStats") -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.lines += other.lines
        self.candidates += other.candidates
        self.malformed += other.malformed
        for k, v in other.skipped.items():
            self.skip(k, v)

    def as_dict(self) -> dict:
        return {
            "files": self.files, "bytes": self.bytes, "lines": self.lines,
            "candidate_lines": self.candidates, "malformed_lines": self.malformed,
            "skipped": dict(sorted(self.skipped.items())),
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
        self.lines = 0
        if len(markers) == 1:
            marker = markers[0]
            self._search = lambda buf, pos: buf.find(marker, pos)
        else:
            rx = re.compile(b"|".join(re.escape(m) for m in markers))

            def search(buf: bytes, pos: int) -> int:
                m = rx.search(buf, pos)
                return m.start() if m else -1
            self._search = search

    def __iter__(self) -> Iterator[bytes]:
        search = self._search
        with open(self.path, "rb") as fh:
            fh.seek(self.start)
            base = self.start  # file offset of buf[0]
            buf = b""
            while True:
                chunk = fh.read(self.chunk_size)
                if not chunk:
                    break
                self.bytes_read += len(chunk)
                self.lines += chunk.count(b"\n")
                buf = buf + chunk if buf else chunk
                last_nl = buf.rfind(b"\n")
                if last_nl < 0:
                    continue  # a line longer than the chunk: keep reading it
                pos = 0
                while True:
                    i = search(buf, pos)
                    if i < 0 or i > last_nl:
                        break
                    line_start = buf.rfind(b"\n", 0, i) + 1
                    line_end = buf.find(b"\n", i)
                    yield buf[line_start:line_end]
                    pos = line_end + 1
                base += last_nl + 1
                buf = buf[last_nl + 1:]
            self.end_offset = base
            if buf.strip():
                self.lines += 1
                if search(buf, 0) >= 0:
                    self.tail_start = base
                    yield buf.rstrip(b"\r")
