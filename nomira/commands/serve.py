"""`nomira serve` (alias `--serve`): the collector over wsgiref, hardened for an untrusted network.

- A bounded pool of worker threads serves requests; a connection holds no worker until
  its first bytes arrive (idle sockets wait in one selector), so idle connections cannot
  starve `/healthz`. Open connections are capped; the oldest idle one is dropped first.
- Every socket has a timeout; the listen backlog is 128.
- A client that disconnects early costs one request, never the process (SIGPIPE ignored).
- When a response leaves part of the request body unread (413, 401 before the body...),
  the connection is half-closed and the rest discarded for a bounded time, so the client
  reads the answer instead of a connection reset.
"""
from __future__ import annotations

import errno
import queue
import selectors
import signal
import socket
import sys
import threading
import time
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from nomira import dirs
from nomira.ledger.engine import db_arg, redact

WORKERS = 16
IDLE_TIMEOUT = 30.0  # seconds a connection may stay silent before its request starts
HEADER_TIMEOUT = 10.0  # seconds to send the request line and headers, however slowly they drip in
SOCKET_TIMEOUT = 15.0  # per blocking read/write once a request is being served
MAX_CONNECTIONS = 1024  # parked (idle) connections beyond this drop the oldest
LINGER_SECONDS, LINGER_BYTES = 2.0, 64 << 20


def add_arguments(name, p) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--db", type=db_arg, default=None,
                   help="store: an SQLite file (default $XDG_DATA_HOME/nomira/nomira.db) or a postgresql:// URL "
                        "(pip install 'nomira[postgres]'); several collectors may share one PostgreSQL database")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host name clients use to reach this collector (repeatable; also NOMIRA_ALLOWED_HOSTS, "
                        "comma-separated); other Host headers get 421 (DNS rebinding)")
    p.add_argument("--behind-proxy", action="store_true",
                   help="trust X-Forwarded-Proto/-For from a reverse proxy (Secure cookies, per-client login limits)")
    p.add_argument("--workers", type=int, default=WORKERS,
                   help=f"request worker threads, and at most as many store connections (default {WORKERS})")
    from nomira.commands.prune import add_retention_arguments
    add_retention_arguments(p)  # the daily prune's policy
    p.add_argument("--hash-developer", action="store_true",
                   help="store developer names and account ids as keyed hashes from now on (kept by the store; "
                        "see docs/PRIVACY.md)")
    p.set_defaults(func=cmd_serve)


class CollectorServer(WSGIServer):
    """WSGIServer with a bounded worker pool fed by a readiness selector."""

    request_queue_size = 128
    daemon_threads = True

    def __init__(self, server_address, handler_class, bind_and_activate=True, workers: int = WORKERS,
                 idle_timeout: float = IDLE_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
                 header_timeout: float = HEADER_TIMEOUT):
        self.workers, self.idle_timeout = max(1, workers), idle_timeout
        self.max_connections = min(max_connections, _fd_budget() - self.workers)
        self.header_timeout = header_timeout
        self.reading: dict[socket.socket, float] = {}  # connections reading headers -> deadline
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.parked: dict[socket.socket, tuple] = {}  # socket -> (client address, deadline), oldest first
        self.park_lock = threading.Lock()
        self.wake_r, self.wake_w = socket.socketpair()
        self.stopping = False
        self.threads: list[threading.Thread] = []
        super().__init__(server_address, handler_class, bind_and_activate)

    def server_activate(self):
        super().server_activate()
        self.threads = [threading.Thread(target=self._worker, daemon=True, name=f"nomira-worker-{i}")
                        for i in range(self.workers)]
        self.threads.append(threading.Thread(target=self._waiter, daemon=True, name="nomira-idle"))
        for t in self.threads:
            t.start()

    def process_request(self, request, client_address):
        """Park the connection until it is readable; a worker takes it from there."""
        dropped = []
        with self.park_lock:
            self.parked[request] = (client_address, time.monotonic() + self.idle_timeout)
            while len(self.parked) > self.max_connections:
                oldest = next(iter(self.parked))
                self.parked.pop(oldest)
                dropped.append(oldest)
        for sock in dropped:
            self.close_request(sock)
        self._wake()

    def reading_headers(self, sock, started: bool) -> None:
        """A worker reads a request's headers under a whole deadline (no slow drip holds it)."""
        with self.park_lock:
            if started:
                self.reading[sock] = time.monotonic() + self.header_timeout
            else:
                self.reading.pop(sock, None)

    def _wake(self):
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def _waiter(self):
        sel = selectors.DefaultSelector()
        sel.register(self.wake_r, selectors.EVENT_READ)
        watched: set = set()
        while not self.stopping:
            with self.park_lock:
                current = dict(self.parked)
            for sock in current.keys() - watched:
                try:
                    sel.register(sock, selectors.EVENT_READ)
                    watched.add(sock)
                except (ValueError, OSError):
                    with self.park_lock:
                        self.parked.pop(sock, None)
            for sock in watched - current.keys():  # dropped for the cap
                sel.unregister(sock)
                watched.discard(sock)
            now = time.monotonic()
            deadline = min((d for _, d in current.values()), default=now + 1.0)
            for key, _ in sel.select(timeout=max(0.0, min(deadline - now, 1.0))):
                sock = key.fileobj
                if sock is self.wake_r:
                    try:
                        self.wake_r.recv(4096)
                    except OSError:
                        pass
                    continue
                sel.unregister(sock)
                watched.discard(sock)
                with self.park_lock:
                    entry = self.parked.pop(sock, None)
                if entry is not None:
                    self.jobs.put((sock, entry[0]))
            now = time.monotonic()
            with self.park_lock:
                expired = [s for s, (_, d) in self.parked.items() if d <= now]
                for s in expired:
                    self.parked.pop(s)
                slow = [s for s, d in self.reading.items() if d <= now]
                for s in slow:
                    self.reading.pop(s)
            for s in slow:
                try:
                    s.shutdown(socket.SHUT_RDWR)  # the worker's blocked read returns; it drops the request
                except OSError:
                    pass
            for s in expired:
                if s in watched:
                    sel.unregister(s)
                    watched.discard(s)
                self.close_request(s)
        sel.close()

    def _worker(self):
        while True:
            job = self.jobs.get()
            if job is None:
                return
            sock, addr = job
            try:
                sock.settimeout(SOCKET_TIMEOUT)
                self.finish_request(sock, addr)
            except Exception:
                self.handle_error(sock, addr)
            finally:
                self.shutdown_request(sock)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, TimeoutError)):  # the client went away or stalled: not our error
            return
        sys.stderr.write(f"nomira serve: {client_address[0]}: {type(exc).__name__} while handling a request\n")

    def server_close(self):
        self.stopping = True
        self._wake()
        for _ in range(self.workers):
            self.jobs.put(None)
        super().server_close()
        with self.park_lock:
            parked, self.parked = list(self.parked), {}
        for s in parked:
            self.close_request(s)
        for t in self.threads:
            t.join(timeout=2)
        self.wake_r.close()
        self.wake_w.close()


def _fd_budget(reserve: int = 64) -> int:
    """Connections we may hold open: under the process's file limit, so accept() never fails
    with EMFILE (serve_forever would spin on a listening socket it cannot accept from)."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < 4096 and (hard == resource.RLIM_INFINITY or hard > soft):
            soft = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    except (ImportError, ValueError, OSError):
        return 256
    return max(32, (soft if soft != resource.RLIM_INFINITY else 1 << 20) - reserve)


ThreadingWSGIServer = CollectorServer  # the name tests and embedders used before


class CollectorHandler(WSGIRequestHandler):
    """Hands the app the raw request target (RAW_URI, as gunicorn does) and lingers after early answers."""

    timeout = SOCKET_TIMEOUT

    def get_environ(self):
        env = super().get_environ()
        env["RAW_URI"] = self.path
        env["nomira.connection"] = self.state  # wsgiref hands the app a copy of env, but this same dict
        return env

    def handle(self):
        """WSGIRequestHandler.handle, with the header deadline around reading the request."""
        self.state = {}
        watch = getattr(self.server, "reading_headers", None)
        if watch:
            watch(self.connection, True)
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                return
            if not self.parse_request():
                return
        finally:
            if watch:
                watch(self.connection, False)
        handler = ServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=False)
        handler.request_handler = self
        handler.run(self.server.get_app())
        if self.state.get("unread_body"):
            self.linger()

    def linger(self):
        """Half-close, then discard what the client still sends (bounded), so it can read our answer."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            end, left = time.monotonic() + LINGER_SECONDS, LINGER_BYTES
            while left > 0:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def log_message(self, fmt, *args):
        sys.stderr.write("nomira serve: %s - %s\n" % (self.address_string(), fmt % args))


QuietHandler = CollectorHandler


def startup_warnings(config) -> list[str]:
    warnings = []
    if not config.local_only:
        if not config.dashboard_password:
            warnings.append(f"WARNING: bound to {config.host} with no NOMIRA_DASHBOARD_PASSWORD: the dashboard "
                            "accepts tenant API keys only; set a password for an admin view.")
        if not config.ingest_token:
            warnings.append("WARNING: exposed beyond localhost; ingest requires tenant API keys "
                            "(`nomira tenant create NAME`) since NOMIRA_INGEST_TOKEN is not set.")
        if not config.allowed_hosts:
            warnings.append("NOTE: no --allowed-host/NOMIRA_ALLOWED_HOSTS: any Host header is served.")
    return warnings


def make_app(db_path, host: str, allowed_hosts=(), behind_proxy: bool = False, local=None,
             db_pool: int = WORKERS):
    """`local`: a LocalHistory, or True for this machine's own when the collector serves only it.
    `db_pool`: store connections this process may hold (serve: --workers)."""
    from nomira.collector.app import App
    from nomira.collector.auth import Config
    from nomira.collector.local import LocalHistory
    config = Config.from_env(host, allowed_hosts=allowed_hosts, behind_proxy=behind_proxy)
    config.db_pool = db_pool
    if local is True:
        local = LocalHistory() if config.local_only and not behind_proxy else None
    return App(db_path, config, local or None)


def make_collector_server(host: str, port: int, app, workers: int = WORKERS) -> CollectorServer:
    class Server(CollectorServer):
        def __init__(self, addr, handler):
            super().__init__(addr, handler, workers=workers)
    return make_server(host, port, app, server_class=Server, handler_class=CollectorHandler)


def cmd_serve(args) -> int:
    # The CLI restores SIGPIPE's default so reports piped into `head` end quietly; a server
    # must instead see a closed client connection as an error on that one request.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    from nomira.ledger import retention, store
    from nomira.commands.prune import retention_days
    raw_days, events_days = retention_days(args)  # a bad setting is refused before anything starts
    db_path = args.db or dirs.default_db()
    app = make_app(db_path, args.host, args.allowed_host, args.behind_proxy, local=True, db_pool=max(1, args.workers))
    if args.hash_developer:
        if store.enable_identifier_hashing(app.db):
            print("nomira: developer names and account ids are stored hashed from now on", file=sys.stderr)
    gc_enable()
    try:
        httpd = make_collector_server(args.host, args.port, app, args.workers)
    except OSError as exc:
        from nomira.cli import Failure
        reason = exc.strerror or str(exc)
        hint = ("pick another --port or stop the server using it" if exc.errno == errno.EADDRINUSE
                else "use an address of this machine, e.g. --host 127.0.0.1 or --host 0.0.0.0")
        raise Failure(f"cannot listen on {args.host}:{args.port}: {reason} ({hint})") from exc
    for w in startup_warnings(app.config):
        print("!" * 78 + f"\n{w}\n" + "!" * 78, file=sys.stderr)
    print(f"nomira: collector on http://{args.host}:{httpd.server_port}/ (store {redact(db_path)})", file=sys.stderr,
          flush=True)
    if app.history is not None:  # read this machine's transcripts now, not on the first project page
        print("nomira: serving this machine only: project pages include the optimizer from its transcripts",
              file=sys.stderr, flush=True)
        threading.Thread(target=app.history.project_paths, daemon=True).start()
    stop_prune = threading.Event()
    threading.Thread(target=retention.prune_loop, args=(db_path, raw_days, events_days, stop_prune),
                     name="nomira-retention", daemon=True).start()
    threading.Thread(target=store.fold_loop, args=(db_path, stop_prune), name="nomira-fold", daemon=True).start()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop_prune.set()
        httpd.server_close()
    return 0


def gc_enable() -> None:
    import gc
    gc.enable()  # the CLI disables it for short runs; a server is long-lived
