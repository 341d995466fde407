"""`nomira mcp`: a Model Context Protocol server on stdio (read-only tools over the reports).

Transport (MCP "stdio"): one JSON-RPC message per line on stdin, one per line on stdout; nothing
else is ever written to stdout (the reports' notes go to stderr). Ends at end of input.
"""
from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(name, p) -> None:
    p.add_argument("--db", type=Path, default=None,
                   help="also serve a store's team usage (by developer) as the team_usage tool")
    p.set_defaults(func=cmd_mcp)


def base_argv(args) -> list[str]:
    """The input options `nomira mcp` was given, passed on to every report a tool runs."""
    out = [a for p in args.path or [] for a in ("--path", str(p))]
    if args.source != "all":
        out += ["--source", args.source]
    if args.timezone:
        out += ["--timezone", args.timezone]
    if args.regime != "auto":
        out += ["--regime", args.regime]
    for k in ("since", "until"):
        if getattr(args, k):
            out += [f"--{k}", getattr(args, k)]
    if args.no_cache:
        out.append("--no-cache")
    if args.demo:
        from nomira.cli import demo_history
        out = ["--path", str(demo_history(__import__("os").environ)), *out]
    return out


def cmd_mcp(args) -> int:
    from nomira.mcp.protocol import Server
    from nomira.mcp.tools import make_tools
    server = Server(make_tools(base_argv(args), args.db))
    out = sys.stdout
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        reply = server.handle_line(line)
        if reply is not None:
            out.write(reply + "\n")
            out.flush()
    return 0
