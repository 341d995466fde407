"""An agent's SQLite database, read without ever locking or writing it.

Opened `file:...?mode=ro` (no journal, no lock held beyond a read). A database in WAL
mode whose `-shm` cannot be created or mapped read-only makes that fail; then the
database and its `-wal` are copied to a temporary folder and the copy is read
(copy-on-read), so the running agent is never blocked either way.
"""
from __future__ import annotations

import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    path = Path(path)
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        with tempfile.TemporaryDirectory(prefix="nomira-ro-") as tmp:
            copy = Path(tmp) / path.name
            shutil.copyfile(path, copy)
            for suffix in ("-wal",):
                side = path.with_name(path.name + suffix)
                if side.is_file():
                    shutil.copyfile(side, copy.with_name(copy.name + suffix))
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


def columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}  # noqa: S608 - a constant name
