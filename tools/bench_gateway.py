#!/usr/bin/env python3
"""Benchmark the metering gateway on loopback: what it adds to a call, direct vs through the gateway.

A fake Anthropic upstream (its own process) answers `/v1/messages` with a JSON message, or with an SSE
stream of `--events` events `--gap-ms` apart. The gateway runs as `python -m nomira gateway` (its own
process, recording into a temporary store). Clients are threads in this process on keep-alive
connections, 1 and 50 at once; direct and gateway rounds alternate so drift hits both alike.

    python tools/bench_gateway.py --requests 400 --concurrency 1 10 50 --best-of 3 [--workers 2]

Per mode it prints p50/p99 of the whole call and of time to first byte (TTFB: request sent -> first body
bytes read), direct and through the gateway, and the difference of the percentiles; the gateway's CPU time
per call and per relayed chunk (exact process time from its counters, all workers; the figure that does not
depend on how loaded the machine is), and the 1-minute load average while the row ran. `--json` also lists
every try's added total and TTFB p50 (`--best-of` keeps the try with the least added total p50). `--aa` runs
the same rounds with both sides calling the upstream directly: the "added" it prints is the bench's own noise
floor on this machine at this load.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

UPSTREAM = r'''
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
EVENTS, GAP = int(sys.argv[1]), float(sys.argv[2]) / 1000
MODEL = "claude-sonnet-4-5-20250929"
def ev(name, data):
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
START = ev("message_start", {"type": "message_start", "message": {"id": "msg_bench", "type": "message",
    "role": "assistant", "content": [], "model": MODEL, "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 25, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0,
              "output_tokens": 1}}})
DELTA = ev("content_block_delta", {"type": "content_block_delta", "index": 0,
    "delta": {"type": "text_delta", "text": "lorem ipsum dolor sit amet " * 4}})
END = ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
    "usage": {"output_tokens": 15}}) + ev("message_stop", {"type": "message_stop"})
JSON = json.dumps({"id": "msg_bench_json", "type": "message", "role": "assistant", "model": MODEL,
    "content": [{"type": "text", "text": "lorem ipsum " * 40}], "stop_reason": "end_turn",
    "usage": {"input_tokens": 25, "output_tokens": 15}}).encode()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        if not body.get("stream"):
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(JSON)))
            self.end_headers()
            self.wfile.write(JSON)
            return
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        t0 = time.monotonic()
        for i, chunk in enumerate([START] + [DELTA] * EVENTS + [END]):
            # event i leaves at t0 + i * GAP, as a remote API's would: a relative sleep after each write
            # would start late whenever the receiver (client or gateway) took this core first, and so
            # charge the receiver's CPU to the stream's length on a shared loopback box
            if i and GAP:
                time.sleep(max(0.0, t0 + i * GAP - time.monotonic()))
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")
class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def client(port: int, n: int, stream: bool, out: list, barrier: threading.Barrier) -> None:
    body = json.dumps({"model": "claude-sonnet-4-5-20250929", "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    headers = {"Content-Type": "application/json", "x-api-key": "sk-bench", "anthropic-version": "2023-06-01",
               "X-Nomira-Developer": "bench"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/v1/messages", body=body, headers=headers)  # warm the connection
    conn.getresponse().read()
    barrier.wait()
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/v1/messages", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read1(65536)
        t1 = time.perf_counter()
        resp.read()
        out.append((t1 - t0, time.perf_counter() - t0))
    conn.close()


def run(port: int, concurrency: int, total: int, stream: bool) -> list[tuple[float, float]]:
    out: list = []
    per = max(1, total // concurrency)
    barrier = threading.Barrier(concurrency, timeout=60)
    threads = [threading.Thread(target=client, args=(port, per, stream, out, barrier)) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def cpu_seconds(port: int) -> float:
    """The gateway's own user + system CPU time (all its workers), from its counters: process_time() is exact,
    where /proc's tick-sampled times overcharge a process that wakes on timer ticks (the upstream's gaps)."""
    time.sleep(0.25)  # each worker publishes its CPU time at least every 0.2 s
    return json.loads(_get(port, "/__nomira/metrics"))["cpu_s"]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def measure(args, up_port: int, gw_port: int, stream: bool, c: int) -> dict:
    side = {"direct": [], "gateway": []}
    cpu = 0.0
    load = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, port in (("direct", up_port), ("gateway", up_port if args.aa else gw_port)):
            before = cpu_seconds(gw_port) if name == "gateway" else 0.0
            side[name] += run(port, c, max(c, args.requests // args.rounds), stream)
            cpu += cpu_seconds(gw_port) - before if name == "gateway" else 0.0
    calls = len(side["gateway"]) + args.rounds * c  # each client's warm-up call goes through the gateway too
    chunks = args.events + 2 if stream else 1
    row = {"mode": "stream" if stream else "json", "concurrency": c, "calls": len(side["gateway"]),
           "gateway_cpu_us_per_call": round(cpu * 1e6 / calls), "gateway_cpu_us_per_chunk": round(cpu * 1e6 / calls / chunks),
           "load_1min": round((load + os.getloadavg()[0]) / 2, 2)}
    for name, samples in side.items():
        for i, what in ((0, "ttfb"), (1, "total")):
            values = [s[i] * 1000 for s in samples]
            row[f"{name}_{what}_p50_ms"] = round(pct(values, 50), 3)
            row[f"{name}_{what}_p99_ms"] = round(pct(values, 99), 3)
    for what in ("ttfb", "total"):
        for q in ("p50", "p99"):
            row[f"added_{what}_{q}_ms"] = round(row[f"gateway_{what}_{q}_ms"] - row[f"direct_{what}_{q}_ms"], 3)
    return row


def show(row: dict) -> str:
    return (f"{row['mode']:6} x{row['concurrency']:<3} calls {row['calls']:5}  total p50 {row['direct_total_p50_ms']:8.3f} -> "
            f"{row['gateway_total_p50_ms']:8.3f} ms ({row['added_total_p50_ms']:+.3f}), p99 "
            f"{row['direct_total_p99_ms']:8.3f} -> {row['gateway_total_p99_ms']:8.3f} ({row['added_total_p99_ms']:+.3f})"
            f"  |  TTFB p50 {row['direct_ttfb_p50_ms']:7.3f} -> {row['gateway_ttfb_p50_ms']:7.3f} "
            f"({row['added_ttfb_p50_ms']:+.3f}), p99 {row['direct_ttfb_p99_ms']:7.3f} -> {row['gateway_ttfb_p99_ms']:7.3f} "
            f"({row['added_ttfb_p99_ms']:+.3f})  |  gateway CPU {row['gateway_cpu_us_per_call']} us/call, "
            f"{row['gateway_cpu_us_per_chunk']} us/chunk  |  load {row['load_1min']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=400, help="calls per mode and concurrency, per side")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--events", type=int, default=20, help="content events per streamed response")
    ap.add_argument("--gap-ms", type=float, default=10.0, help="upstream pause between streamed events")
    ap.add_argument("--rounds", type=int, default=4, help="alternating direct/gateway rounds")
    ap.add_argument("--best-of", type=int, default=1, metavar="N",
                    help="measure each row N times, keep the one with the least added p50 (noise only adds)")
    ap.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    ap.add_argument("--modes", nargs="+", default=["json", "stream"], choices=["json", "stream"])
    ap.add_argument("--aa", action="store_true",
                    help="A/A check: the 'gateway' side calls the upstream directly too, so 'added' is the bench's "
                         "own noise and bias (expect about 0)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nomira-bench-gw-"))
    up = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(args.events), str(args.gap_ms)], stdout=subprocess.PIPE,
                          text=True)
    up_port = int(up.stdout.readline())
    gw_port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_STATE_HOME=str(tmp / "state"), HOME=str(tmp))
    gw = subprocess.Popen([sys.executable, "-m", "nomira", "gateway", "--port", str(gw_port), "--quiet",
                           "--upstream-anthropic", f"http://127.0.0.1:{up_port}", "--db", str(tmp / "gw.db"),
                           "--max-connections", "512", "--workers", str(args.workers)], cwd=ROOT, env=env,
                          stderr=subprocess.DEVNULL)
    results = []
    load = os.getloadavg()
    try:
        wait_listening(gw_port)
        for mode in args.modes:
            for c in args.concurrency:
                tries = [measure(args, up_port, gw_port, mode == "stream", c) for _ in range(args.best_of)]
                row = min(tries, key=lambda r: r["added_total_p50_ms"])
                row["tries_added_total_p50_ms"] = [r["added_total_p50_ms"] for r in tries]
                row["tries_added_ttfb_p50_ms"] = [r["added_ttfb_p50_ms"] for r in tries]
                results.append(row)
                if not args.json:
                    print(show(row), flush=True)
        metrics = json.loads(_get(gw_port, "/__nomira/metrics"))
    finally:
        gw.terminate()
        up.terminate()
        gw.wait(20)
        up.wait(10)
    meta = {"cpus": os.cpu_count(), "workers": args.workers, "load_before": load, "load_after": os.getloadavg(),
            "events": args.events, "gap_ms": args.gap_ms}
    if args.json:
        print(json.dumps({"results": results, "gateway_metrics": metrics, **meta}, indent=1))
    else:
        print(f"gateway counters: {json.dumps(metrics)}\n{os.cpu_count()} CPUs, {args.workers} gateway workers, "
              f"load average {' '.join(f'{x:.2f}' for x in load)} before, "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} after")
    return 0


def _get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    body = conn.getresponse().read().decode()
    conn.close()
    return body


if __name__ == "__main__":
    sys.exit(main())
