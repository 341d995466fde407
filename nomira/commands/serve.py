"""`nomira serve` (alias `--serve`): the collector over wsgiref with a thread per request."""
from __future__ import annotations

import errno
import sys
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from nomira import paths


def add_arguments(name, p) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--db", type=Path, default=None, help="SQLite store (default $XDG_DATA_HOME/nomira/nomira.db)")
    p.set_defaults(func=cmd_serve)


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("nomira serve: %s - %s\n" % (self.address_string(), fmt % args))


def startup_warnings(config) -> list[str]:
    warnings = []
    if not config.local_only:
        if not config.dashboard_password:
            warnings.append(f"WARNING: bound to {config.host} with no NOMIRA_DASHBOARD_PASSWORD: the dashboard "
                            "accepts tenant API keys only; set a password for an admin view.")
        if not config.ingest_token:
            warnings.append("WARNING: exposed beyond localhost; ingest requires tenant API keys "
                            "(`nomira tenant create NAME`) since NOMIRA_INGEST_TOKEN is not set.")
    return warnings


def make_app(db_path, host: str):
    from nomira.collector.app import App
    from nomira.collector.auth import Config
    return App(db_path, Config.from_env(host))


def cmd_serve(args) -> int:
    db_path = args.db or paths.default_db()
    app = make_app(db_path, args.host)
    gc_enable()
    try:
        httpd = make_server(args.host, args.port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler)
    except OSError as exc:
        from nomira.cli import Failure
        reason = exc.strerror or str(exc)
        hint = ("pick another --port or stop the server using it" if exc.errno == errno.EADDRINUSE
                else "use an address of this machine, e.g. --host 127.0.0.1 or --host 0.0.0.0")
        raise Failure(f"cannot listen on {args.host}:{args.port}: {reason} ({hint})") from exc
    for w in startup_warnings(app.config):
        print("!" * 78 + f"\n{w}\n" + "!" * 78, file=sys.stderr)
    print(f"nomira: collector on http://{args.host}:{httpd.server_port}/ (store {db_path})", file=sys.stderr)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


def gc_enable() -> None:
    import gc
    gc.enable()  # the CLI disables it for short runs; a server is long-lived
