"""`nomira gateway`: the metering reverse proxy (see docs/GATEWAY.md: it sees prompts in transit)."""
from __future__ import annotations

import gc
import os
import signal
import sys
import time
from pathlib import Path

from nomira import dirs
from nomira.cli import UserError

DEFAULT_UPSTREAMS = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com"}


def add_arguments(name, p) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8788)
    p.add_argument("--upstream-anthropic", default=DEFAULT_UPSTREAMS["anthropic"], metavar="URL",
                   help=f"Anthropic API origin (default {DEFAULT_UPSTREAMS['anthropic']})")
    p.add_argument("--upstream-openai", default=DEFAULT_UPSTREAMS["openai"], metavar="URL",
                   help=f"OpenAI API origin (default {DEFAULT_UPSTREAMS['openai']})")
    p.add_argument("--db", type=Path, default=None, help="SQLite store (default $XDG_DATA_HOME/nomira/nomira.db)")
    p.add_argument("--remote", metavar="URL", help="send events to a collector (through an on-disk spool)")
    p.add_argument("--token", default=os.environ.get("NOMIRA_TOKEN"), help="collector API key ($NOMIRA_TOKEN)")
    p.add_argument("--max-connections", type=int, default=256, help="client connections served at once")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait on the upstream (default 600)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes sharing the port (default 1; each is one event loop on one core, so "
                        "use about one per free core)")
    p.add_argument("--quiet", action="store_true", help="no per-call log line")
    p.set_defaults(func=cmd_gateway)


def make_gateway(args, env=os.environ, log=sys.stderr, listener=None, metrics=None, worker: int = 0):
    """(server, destination) for these arguments; the caller serves it, then calls `close(server)`.

    With several workers each calls this after the fork, on the shared `listener` and its row of the shared
    `metrics`; worker 0 alone delivers the spool."""
    from nomira.gateway.proxy import Gateway, GatewayServer
    from nomira.gateway.record import Metrics, Recorder, SpoolSink, StoreSink
    from nomira.gateway.upstream import Upstream
    from nomira.pricing.engine import Pricer
    from nomira.pricing.feed import resolved
    try:
        upstreams = {"anthropic": Upstream.parse(args.upstream_anthropic),
                     "openai": Upstream.parse(args.upstream_openai)}
        pricer = Pricer(resolved(env))
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if args.remote and args.db:
        raise UserError("--db and --remote are exclusive: record into a local store or send to a collector")
    metrics = metrics or Metrics()
    if args.remote:
        from nomira.ledger.ship import http_post
        spool_dir = dirs.state_home(env) / "gateway-spool"
        try:
            post = http_post(args.remote, args.token, timeout=10.0)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        sink = SpoolSink(spool_dir, post, metrics, deliver=worker == 0)
        destination = f"{args.remote} (spool {spool_dir})"
        others = sink.others() if worker == 0 else 0
        metrics.set("spool_batches_other_destination", others)
        if others:
            print(f"nomira gateway: {others} spooled batches are for another collector or key; they stay in "
                  f"{spool_dir / 'pending'} and are not sent to {args.remote}", file=log)
    else:
        db_path = args.db or dirs.default_db(env)
        sink, destination = StoreSink(db_path), str(db_path)
    recorder = Recorder(sink, metrics, pricer)
    gateway = Gateway(upstreams, recorder, metrics, log=None if args.quiet else log, timeout=args.timeout)
    try:
        server = GatewayServer((args.host, args.port), gateway, max_threads=args.max_connections, listener=listener)
    except OSError as exc:
        recorder.close()
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    return server, destination


def close(server, timeout: float = 10.0) -> None:
    """Stop accepting, let calls in flight finish (the loop runs on here, `serve_forever` having returned), write
    the last events."""
    server.drain(timeout)
    server.gateway.recorder.close(timeout)


def _interrupt(signum, frame):
    """The first SIGTERM / SIGINT stops serving; later ones (Ctrl-C reaches the workers and the parent passes
    it on too) are ignored so they cannot cut the last writes short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def cmd_gateway(args) -> int:
    if args.workers > 1:
        return _prefork(args)
    server, destination = make_gateway(args)
    _banner(args, server.server_address, destination)
    _stop_signals()
    _run(server)
    return 0


def _stop_signals() -> None:
    signal.signal(signal.SIGTERM, _interrupt)  # `docker stop`, systemd: finish and record, like Ctrl-C
    signal.signal(signal.SIGINT, _interrupt)
    if hasattr(signal, "SIGPIPE"):  # the CLI dies quietly on SIGPIPE; a server must not die when a client leaves
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def _run(server) -> None:
    """Serve until SIGTERM / Ctrl-C, then let calls in flight finish and record."""
    from nomira.commands.serve import gc_enable
    gc_enable()
    gc.freeze()  # what start-up made lives as long as the process: a full collection (3.5 ms here) skips it
    # The recorder thread prices and writes in batches while the loop relays: with the default 5 ms switch
    # interval a relay waiting for the interpreter lock could wait that long; 0.5 ms bounds it.
    sys.setswitchinterval(0.0005)

    def stop(signum, frame):  # the loop notices at once and returns; no exception cuts into a relayed call
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.request_stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        close(server)


def _banner(args, address, destination: str, workers: int = 1) -> None:
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("!" * 78 + f"\nWARNING: the gateway on {args.host} relays full prompts and API keys for anyone who "
              "can reach it.\nRun it only inside your own network, behind TLS (see docs/GATEWAY.md).\n" + "!" * 78,
              file=sys.stderr)
    host, port = address[:2]
    print(f"nomira: metering gateway on http://{host}:{port}/ (Anthropic -> {args.upstream_anthropic}, "
          f"OpenAI -> {args.upstream_openai}; usage-only events -> {destination}; "
          f"counters at /__nomira/metrics{f'; {workers} worker processes' if workers > 1 else ''})",
          file=sys.stderr, flush=True)


def _prefork(args) -> int:
    """N worker processes on one listening socket, each a whole gateway (event loop, recorder) with its own GIL.

    The parent binds, makes the shared counter table and forks before any thread exists; it then only waits,
    restarts a worker that died, and passes SIGTERM / Ctrl-C on (each worker finishes and records its calls).
    """
    import socket

    from nomira.gateway.record import Metrics
    from nomira.gateway.upstream import Upstream
    if not hasattr(os, "fork"):
        raise UserError("--workers needs a POSIX system (fork); run one gateway per port instead")
    try:
        for url in (args.upstream_anthropic, args.upstream_openai):
            Upstream.parse(url)
        if args.remote:
            from nomira.ledger.ship import ingest_url
            ingest_url(args.remote)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if args.remote and args.db:
        raise UserError("--db and --remote are exclusive: record into a local store or send to a collector")
    try:
        listener = socket.create_server((args.host, args.port), backlog=128,
                                        family=socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    listener.setblocking(False)
    if not args.remote:  # create or migrate the store once, before the workers open it side by side
        from nomira.ledger import store
        store.open_db(args.db or dirs.default_db()).close()
    table = Metrics.shared_table(args.workers)
    destination = f"{args.remote} (spool)" if args.remote else str(args.db or dirs.default_db())
    _banner(args, listener.getsockname(), destination, args.workers)
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)
        for pid in list(workers):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    workers: dict[int, int] = {}
    for n in range(args.workers):
        workers[_fork_worker(args, listener, table, n)] = n
    restarts: list[float] = []
    while workers:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        n = workers.pop(pid, None)
        if n is None or stopping:
            continue
        restarts = [t for t in restarts if time.monotonic() - t < 10] + [time.monotonic()]
        if len(restarts) > 5:  # failing at start-up: do not spin
            print("nomira gateway: workers keep failing; stopping", file=sys.stderr)
            stop(signal.SIGTERM, None)
            continue
        print(f"nomira gateway: worker {n} exited (status {status}); starting it again", file=sys.stderr)
        workers[_fork_worker(args, listener, table, n)] = n
    listener.close()
    return 1 if len(restarts) > 5 else 0


def _fork_worker(args, listener, table, n: int) -> int:
    stops = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # a stop signal waits until the worker has its own handler
    pid = os.fork()
    if pid:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        return pid
    code = 1
    try:
        from nomira.gateway.record import Metrics
        _stop_signals()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        _run(make_gateway(args, listener=listener, metrics=Metrics(table, n, args.workers), worker=n)[0])
        code = 0
    except KeyboardInterrupt:  # stopped while starting
        code = 0
    except BaseException as exc:  # noqa: BLE001 - one line, never a traceback, and the parent restarts us
        print(f"nomira gateway: worker {n} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        sys.stderr.flush()
        os._exit(code)
