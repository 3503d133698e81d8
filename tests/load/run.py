"""``make loadtest``: chat and search throughput, latency and CPU per request at several concurrencies.

    python tests/load/run.py [--levels 1,10,20,40] [--seconds 30] [--kinds chat,search]

Needs a running stack (``make run`` in another terminal). For each kind and concurrency level it runs
Locust headless (tests/load/locustfile.py) and reads its CSV statistics; CPU is the user+system time
the serving processes (found by the ports they listen on: Rasa, action server, knowledge service)
spent during the run, divided by the requests served. Prints one Markdown table (README, Scaling out).

The stack's per-sender and per-address rate limits are not what this measures: run the stack for
a load test with them raised, e.g. ``ASSISTANT_MESSAGES_PER_MINUTE=0`` (see README, Configuration).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import psutil

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    kind: str
    users: int
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    cpu_per_request: float | None


def listening_pids(ports: list[int]) -> dict[int, int]:
    """port -> pid of the process listening on it (where one is)."""
    found = {}
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in ports and c.pid:
            found[c.laddr.port] = c.pid
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            for proc in [p, *p.children(recursive=True)]:
                t = proc.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def run_level(kind: str, users: int, seconds: int, env: dict[str, str], pids: list[int]) -> Row:
    user_class = {"chat": "ChatUser", "search": "SearchUser"}[kind]
    with tempfile.TemporaryDirectory() as tmp:
        prefix = str(Path(tmp) / "stats")
        before = cpu_seconds(pids)
        cmd = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), user_class, "--headless",
               "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s", "--csv", prefix,
               "--only-summary", "--loglevel", "ERROR", "--stop-timeout", "30"]
        subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        spent = cpu_seconds(pids) - before
        with open(prefix + "_stats.csv", encoding="utf-8") as f:
            total = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    n, failures = int(total["Request Count"]), int(total["Failure Count"])
    return Row(kind, users, n, failures, float(total["Requests/s"]), float(total["50%"] or 0),
               float(total["95%"] or 0), round(spent / n, 3) if n and pids else None)


def table(rows: list[Row]) -> str:
    out = ["| kind | users | requests | errors | req/s | p50 ms | p95 ms | CPU-s per request |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cpu = f"{r.cpu_per_request:.3f}" if r.cpu_per_request is not None else "–"
        out.append(f"| {r.kind} | {r.users} | {r.requests} | {r.failures} | {r.rps:.1f} | {r.p50:.0f} | {r.p95:.0f} | {cpu} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chat-url", default=os.environ.get("LOADTEST_CHAT_URL", "http://127.0.0.1:5005"))
    ap.add_argument("--search-url", default=os.environ.get("LOADTEST_SEARCH_URL", "http://127.0.0.1:8000"))
    ap.add_argument("--actions-port", type=int, default=int(os.environ.get("ASSISTANT_ACTIONS_PORT", "5055")))
    ap.add_argument("--levels", default="1,10,20,40")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--kinds", default="chat,search")
    args = ap.parse_args(argv)
    chat_port, search_port = urlparse(args.chat_url).port or 80, urlparse(args.search_url).port or 80
    found = listening_pids([chat_port, search_port, args.actions_port])
    if chat_port not in found and search_port not in found:
        print(f"Nothing listens on {args.chat_url} or {args.search_url}: start the stack with `make run` first.",
              file=sys.stderr)
        return 1
    env = {**os.environ, "LOADTEST_CHAT_URL": args.chat_url, "LOADTEST_SEARCH_URL": args.search_url}
    rows = []
    for kind in args.kinds.split(","):
        # CPU of everything a request of this kind passes through.
        ports = [chat_port, args.actions_port] if kind == "chat" else [search_port]
        pids = sorted({found[p] for p in ports if p in found})
        for users in (int(x) for x in args.levels.split(",")):
            row = run_level(kind, users, args.seconds, env, pids)
            rows.append(row)
            print(f"{kind:6s} {users:3d} users: {row.rps:6.1f} req/s, p50 {row.p50:.0f} ms, p95 {row.p95:.0f} ms, "
                  f"{row.failures} errors", flush=True)
            time.sleep(2)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
