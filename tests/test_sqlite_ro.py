"""Agents' SQLite stores are read without a lock; when read-only opening fails (a WAL store whose
shared memory cannot be mapped), a copy of the database and its WAL is read instead."""
import sqlite3

import pytest

from nomira.sources import sqlite_ro


@pytest.fixture
def wal_db(tmp_path):
    """A WAL database whose last rows live only in the -wal (the agent still has it open)."""
    path = tmp_path / "agent.db"
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE t (n INTEGER)")
    writer.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    writer.commit()
    assert (tmp_path / "agent.db-wal").stat().st_size > 0
    yield path
    writer.close()


def test_read_only_open_sees_committed_wal_rows(wal_db):
    with sqlite_ro.connect(wal_db) as db:
        assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (5,)


def test_copy_on_read_when_read_only_open_fails(wal_db, monkeypatch):
    real = sqlite3.connect
    opened = []

    def connect(target, *a, **kw):
        opened.append(str(target))
        if kw.get("uri"):
            raise sqlite3.OperationalError("unable to open database file")  # as with an unmappable -shm
        return real(target, *a, **kw)
    monkeypatch.setattr(sqlite_ro.sqlite3, "connect", connect)
    with sqlite_ro.connect(wal_db) as db:
        assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (5,)  # the -wal was copied too
    assert len(opened) == 2 and "nomira-ro-" in opened[1]
    assert not any("nomira-ro-" in p for p in map(str, wal_db.parent.iterdir()))  # the copy is gone
