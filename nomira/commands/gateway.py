"""`nomira gateway`: the metering reverse proxy (see docs/GATEWAY.md: it sees prompts in transit)."""
from __future__ import annotations

import os
import signal
import sys
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
    p.add_argument("--quiet", action="store_true", help="no per-call log line")
    p.set_defaults(func=cmd_gateway)


def make_gateway(args, env=os.environ, log=sys.stderr):
    """(server, destination) for these arguments; the caller serves it, then calls `close(server)`."""
    from nomira.gateway.proxy import Gateway, GatewayServer
    from nomira.gateway.upstream import Upstream
    from nomira.gateway.record import Metrics, Recorder, SpoolSink, StoreSink
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
    metrics = Metrics()
    if args.remote:
        from nomira.ledger.ship import http_post
        spool_dir = dirs.state_home(env) / "gateway-spool"
        try:
            post = http_post(args.remote, args.token, timeout=10.0)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        sink = SpoolSink(spool_dir, post, metrics)
        destination = f"{args.remote} (spool {spool_dir})"
        others = sink.others()
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
        server = GatewayServer((args.host, args.port), gateway, max_threads=args.max_connections)
    except OSError as exc:
        recorder.close()
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    return server, destination


def close(server, timeout: float = 10.0) -> None:
    """Stop accepting, let calls in flight finish recording, write the last events."""
    server.server_close()
    gateway = server.RequestHandlerClass.gateway
    gateway.settle(timeout)
    gateway.recorder.close(timeout)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_gateway(args) -> int:
    from nomira.commands.serve import gc_enable
    server, destination = make_gateway(args)
    gc_enable()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("!" * 78 + f"\nWARNING: the gateway on {args.host} relays full prompts and API keys for anyone who "
              "can reach it.\nRun it only inside your own network, behind TLS (see docs/GATEWAY.md).\n" + "!" * 78,
              file=sys.stderr)
    host, port = server.server_address[:2]
    print(f"nomira: metering gateway on http://{host}:{port}/ (Anthropic -> {args.upstream_anthropic}, "
          f"OpenAI -> {args.upstream_openai}; usage-only events -> {destination}; "
          f"counters at /__nomira/metrics)", file=sys.stderr)
    signal.signal(signal.SIGTERM, _interrupt)  # `docker stop`, systemd: finish and record, like Ctrl-C
    if hasattr(signal, "SIGPIPE"):  # the CLI dies quietly on SIGPIPE; a server must not die when a client leaves
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        close(server)
    return 0
