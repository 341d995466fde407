"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb in a temp dir, a unix socket
in that dir, a free port, fsync off. As root it runs as the `postgres` user (initdb refuses
root), through runuser or setpriv. Stopped and deleted by `stop()`."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

DB = "nomira"


class CannotStart(RuntimeError):
    pass


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return versions[-1] if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, root: Path, port: int, as_user: list[str]):
        self.root, self.port, self.as_user = root, port, as_user
        self.data, self.socket_dir = root / "data", root

    @classmethod
    def start(cls, extra: tuple[str, ...] = (), durable: bool = False) -> "Cluster":
        """durable=False (tests): fsync and synchronous commit off; True (benchmarks): PostgreSQL's defaults."""
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not pg_ctl:
            raise CannotStart("initdb/pg_ctl not found (apt-get install postgresql)")
        as_user: list[str] = []
        root = Path(tempfile.mkdtemp(prefix="nomira-pg-"))
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(root, ignore_errors=True)
                raise CannotStart("running as root and no `postgres` user to run the cluster as") from None
            os.chown(root, pw.pw_uid, pw.pw_gid)
            if shutil.which("runuser"):
                as_user = ["runuser", "-u", "postgres", "--"]
            elif shutil.which("setpriv"):
                as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]
            else:
                raise CannotStart("running as root without runuser or setpriv to drop to `postgres`")
        c = cls(root, _free_port(), as_user)
        env = dict(os.environ, LC_ALL="C")
        r = subprocess.run([*as_user, initdb, "-D", str(c.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                            "--no-locale", "--no-sync"], capture_output=True, text=True, env=env, timeout=120)
        if r.returncode:
            c.remove()
            raise CannotStart(f"initdb failed: {(r.stderr or r.stdout).strip()[-300:]}")
        fast = "" if durable else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        opts = (f"-p {c.port} -k {c.socket_dir} -c listen_addresses='' {fast}-c max_connections=200 "
                + " ".join(extra))
        r = subprocess.run([*as_user, pg_ctl, "-D", str(c.data), "-l", str(root / "log"), "-o", opts, "-w", "-t", "60",
                            "start"], capture_output=True, text=True, env=env, timeout=90)
        if r.returncode:
            log = (root / "log").read_text(errors="replace")[-400:] if (root / "log").exists() else r.stderr
            c.remove()
            raise CannotStart(f"pg_ctl start failed: {log.strip()}")
        c.admin(f"CREATE DATABASE {DB}", db="postgres")
        return c

    def url(self, db: str = DB, schema: str | None = None) -> str:
        url = f"postgresql://postgres@/{db}?host={quote(str(self.socket_dir), safe='')}&port={self.port}"
        return url + (f"&options={quote(f'-csearch_path={schema}', safe='')}" if schema else "")

    @property
    def pid(self) -> int:
        """The postmaster's pid (its backends are its children): benchmarks add up their CPU time."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def admin(self, sql: str, db: str = DB) -> None:
        import psycopg
        with psycopg.connect(self.url(db), autocommit=True) as conn:
            conn.execute(sql)

    def stop(self) -> None:
        pg_ctl = _binary("pg_ctl")
        subprocess.run([*self.as_user, pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


if __name__ == "__main__":  # start one by hand: prints its URL, stops on Enter
    c = Cluster.start()
    print(c.url(), flush=True)
    try:
        input()
    finally:
        c.stop()
