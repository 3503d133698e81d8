"""The Redis lock store the Rasa replicas share (bot/lock_store.py), against a real Redis (slow).

Each "replica" is a lock store object with its own Redis connection, as in separate processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import asyncio, json, os, sys, threading
from rasa.core.lock_store import RedisLockStore
from bot.lock_store import AtomicRedisLockStore

cls = {"atomic": AtomicRedisLockStore, "rasa": RedisLockStore}[sys.argv[1]]
from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import read_endpoint_config
if cls is AtomicRedisLockStore:  # as Rasa builds it from bot/endpoints.yml
    stores = [LockStore.create(read_endpoint_config("bot/endpoints.yml", "lock_store")) for _ in range(8)]
    assert all(type(s) is AtomicRedisLockStore for s in stores)
else:
    stores = [cls(host="127.0.0.1", port=int(os.environ["REDIS_PORT"]), db=2, password=os.environ["REDIS_PASSWORD"])
              for _ in range(8)]
out = {}

# 1. Eight replicas take a ticket for one conversation at the same moment.
start = threading.Barrier(len(stores))
tickets = []
def take(store):
    start.wait()
    tickets.append(store.issue_ticket("conv-1"))
threads = [threading.Thread(target=take, args=(s,)) for s in stores]
[t.start() for t in threads]; [t.join() for t in threads]
out["tickets"] = sorted(tickets)
out["queued"] = len(stores[0].get_lock("conv-1").tickets)
for t in tickets:
    stores[0].cleanup("conv-1", t)
out["left"] = stores[0].get_lock("conv-1") is not None

# 2. Eight replicas each process one message of one conversation: at most one at a time.
inside, most = [0], [0]
guard = threading.Lock()
async def turn(store):
    async with store.lock("conv-2", wait_time_in_seconds=0.01):
        with guard:
            inside[0] += 1; most[0] = max(most[0], inside[0])
        await asyncio.sleep(0.05)
        with guard:
            inside[0] -= 1
start2 = threading.Barrier(len(stores))
def run(store):
    start2.wait()
    asyncio.run(turn(store))
threads = [threading.Thread(target=run, args=(s,)) for s in stores]
[t.start() for t in threads]; [t.join() for t in threads]
out["most_at_once"] = most[0]
out["conv2_left"] = stores[0].get_lock("conv-2") is not None
print(json.dumps(out))
"""


def lock_env(redis_server) -> dict:
    from service.rasa_stores import store_env

    return {**os.environ, "PYTHONPATH": str(ROOT), "RASA_TELEMETRY_ENABLED": "false",
           "REDIS_PORT": str(redis_server.port), "REDIS_PASSWORD": redis_server.password,
           "ASSISTANT_ACTION_ENDPOINT": "http://127.0.0.1:9/webhook", "ASSISTANT_TRACKER_DIALECT": "sqlite",
           "ASSISTANT_TRACKER_DB": "unused.db", **store_env(None, redis_server.url(2))}


def run(redis_server, kind: str) -> dict:
    done = subprocess.run([str(ROOT / ".venv-rasa" / "bin" / "python"), "-c", SCRIPT, kind], capture_output=True,
                          text=True, env=lock_env(redis_server), cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_replicas_taking_tickets_at_once_get_distinct_ones_and_run_one_at_a_time(redis_server):
    out = run(redis_server, "atomic")
    assert out["tickets"] == list(range(8)) and out["queued"] == 8
    assert out["left"] is False  # the last cleanup removed the lock
    assert out["most_at_once"] == 1 and out["conv2_left"] is False


HOLDER = """
import asyncio, os, sys, time
from bot.lock_store import AtomicRedisLockStore
store = AtomicRedisLockStore(host="127.0.0.1", port=int(os.environ["REDIS_PORT"]), db=2,
                             password=os.environ["REDIS_PASSWORD"], ticket_lifetime=3)
async def main(conversation, hold):
    async with store.lock(conversation, wait_time_in_seconds=0.05):
        print("held", time.time(), flush=True)
        await asyncio.sleep(hold)
    print("released", time.time(), flush=True)
asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


def holder(redis_server, conversation: str, hold: float) -> subprocess.Popen:
    """Another replica: takes the conversation's lock (tickets of 3 s) and holds it ``hold`` seconds; prints
    "held <time>" and "released <time>"."""
    return subprocess.Popen([str(ROOT / ".venv-rasa" / "bin" / "python"), "-c", HOLDER, conversation, str(hold)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lock_env(redis_server),
                            cwd=ROOT)


def stamp(process: subprocess.Popen, word: str) -> float:
    line = process.stdout.readline()
    assert line.startswith(word), process.stderr.read()[-3000:]
    return float(line.split()[1])


def test_a_live_holder_keeps_its_turn_past_the_ticket_lifetime(redis_server):
    """The first replica works 8 s, more than twice its 3 s ticket: the second waits for all of it."""
    first = holder(redis_server, "conv-alive", 8)
    stamp(first, "held")
    second = holder(redis_server, "conv-alive", 0)
    released = stamp(first, "released")
    assert stamp(second, "held") >= released
    for p in (first, second):
        p.wait(30)


def test_the_lock_of_a_killed_replica_lapses_within_the_ticket_lifetime(redis_server):
    """kill -9 of the replica holding a conversation's lock: another gets it within 3 s (the ticket's
    lifetime), not after Rasa's 60 s."""
    import signal
    import time

    first = holder(redis_server, "conv-dead", 600)
    stamp(first, "held")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    killed = time.time()
    second = holder(redis_server, "conv-dead", 0)
    waited = stamp(second, "held") - killed
    second.wait(30)
    assert waited < 3 + 1.5, waited
