"""Several Rasa replicas on real PostgreSQL and Redis, behind HAProxy (service/cluster.py), slow.

Started once for this module: a real PostgreSQL (tracker store and inbox) and Redis (lock store,
socket.io messages) from the session fixtures, one action server, two Rasa replicas of the trained
model and HAProxy in front of them. Each replica loads its model in about 100 CPU-seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import RASA_MODEL, WEBCHAT_SECRET, custom_of, free_ports, rasa_api_headers

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster(infra_dir, postgres_server, redis_server):
    if not RASA_MODEL.exists():
        pytest.fail(f"no trained model at {RASA_MODEL}: run `make train`")
    from service.cluster import Cluster, ClusterSettings

    balancer_port, port = free_ports(2)
    settings = ClusterSettings(
        cluster_dir=infra_dir / "cluster", cluster_replicas=2, cluster_action_servers=1, cluster_knowledge=False,
        rasa_port=balancer_port, port=port, start_timeout=600, webchat_secret=WEBCHAT_SECRET,
        tracker_url=postgres_server.create_database("cluster_rasa"),
        inbox_db=postgres_server.create_database("cluster_inbox"),
        redis_url=redis_server.url(1),
        messages_per_minute=0,
    )
    c = Cluster(settings)
    c.start()
    yield c
    c.stop()


def busy_sessions(cluster) -> int:
    """Requests HAProxy's REST backend is serving right now."""
    import csv

    rows = csv.DictReader(httpx.get(cluster.stats_url, timeout=2).text.lstrip("# ").splitlines())
    return sum(int(r["scur"] or 0) for r in rows if r["pxname"] == "rasa" and r["svname"] == "BACKEND")


def say(url: str, sender: str, message: str) -> list[dict]:
    response = httpx.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": message}, timeout=90)
    assert response.status_code == 200, response.text
    return response.json()


def tracker_events(cluster, url: str, conversation: str) -> list[dict]:
    response = httpx.get(f"{url}/conversations/{conversation}/tracker", params={"include_events": "ALL"},
                         headers=rasa_api_headers(cluster, conversation, role="admin"), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["events"]


def test_the_cluster_uses_postgresql_redis_and_two_replicas(cluster, postgres_server):
    assert [p.name for p in cluster.replicas()] == ["rasa-1", "rasa-2"]
    assert all(p.alive() for p in cluster.processes)
    me = "cluster-" + uuid.uuid4().hex[:8]
    say(cluster.replica_urls[0], me, "Hej!")
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_server.url("cluster_rasa"), poolclass=sa.NullPool)
    with engine.connect() as db:
        stored = db.execute(sa.text("SELECT COUNT(*) FROM events WHERE sender_id = :s"), {"s": "rest:" + me}).scalar()
    assert stored > 0  # the conversation is in PostgreSQL, not a replica's own SQLite file
    # Nothing secret on any command line (ps shows them to every local user).
    for p in cluster.processes:
        cmdline = Path(f"/proc/{p.popen.pid}/cmdline").read_bytes().decode(errors="replace")
        for secret in (postgres_server.password, cluster.settings.rasa_api_token.get_secret_value(), WEBCHAT_SECRET):
            assert secret not in cmdline, p.name


def test_a_conversation_alternating_between_replicas_keeps_its_context(cluster):
    from assistant.inbox import Inbox

    a, b = cluster.replica_urls
    me = "cluster-" + uuid.uuid4().hex[:8]
    answer = custom_of(say(a, me, "Vad är ett idéburet offentligt partnerskap?"))
    assert answer["answered"] is True and answer["citations"]
    source = custom_of(say(b, me, "visa källan"))  # the citations of the answer given by the other replica
    assert source["citations"][0]["paragraph_id"] == answer["citations"][0]["paragraph_id"]
    more = custom_of(say(a, me, "fler"))  # the paging state written by the other replica
    assert more["answered"] is True
    assert not {c["paragraph_id"] for c in more["citations"]} & {c["paragraph_id"] for c in answer["citations"]}
    weather = custom_of(say(b, me, "Hur blir vädret i Stockholm i helgen?"))
    assert weather["coverage"] == "none"
    ask_contact = say(a, me, "ja")  # accepts the offer the other replica made: the hand-over form starts
    assert "e-postadress" in ask_contact[-1]["text"]
    summary = say(b, me, "anna.andersson@example.se")  # the form continues on the other replica
    assert "anna.andersson@example.se" in summary[0]["text"]
    confirmation = say(a, me, "Skicka")  # and is confirmed on the first one
    assert "anna.andersson@example.se" in confirmation[0]["text"] and "ärende" in confirmation[0]["text"]
    # The request is in the inbox on PostgreSQL, with the question asked two turns earlier.
    [request] = [r for r in Inbox(cluster.settings.inbox_db).handoffs() if r.sender_id == "rest:" + me]
    assert request.question == "Hur blir vädret i Stockholm i helgen?"


def test_two_messages_at_once_on_two_replicas_are_processed_one_after_the_other(cluster):
    """The Redis lock store: both turns are complete in the tracker, one after the other, nothing lost
    or interleaved (with a lock per process, both replicas would load and save the tracker at once)."""
    a, b = cluster.replica_urls
    me = "cluster-" + uuid.uuid4().hex[:8]
    say(a, me, "Hej!")
    questions = {a: "Vad är ett ramavtal?", b: "Vad är reserverad upphandling?"}
    start = threading.Barrier(2)
    replies: dict[str, list] = {}

    def ask(url: str) -> None:
        start.wait()
        replies[url] = say(url, me, questions[url])

    threads = [threading.Thread(target=ask, args=(u,)) for u in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(custom_of(replies[u]) and custom_of(replies[u])["answered"] for u in (a, b)), replies
    events = tracker_events(cluster, a, "rest:" + me)
    turns = [e for e in events if e["event"] in ("user", "action") and
             (e["event"] == "user" or e["name"] == "action_listen")]
    users = [e["text"] for e in turns if e["event"] == "user"]
    assert sorted(users[-2:]) == sorted(questions.values()) and len(users) == 3
    # user, …, action_listen, user, …, action_listen: each turn ends before the next begins.
    kinds = [e["event"] if e["event"] == "user" else "listen" for e in turns]
    assert kinds[-4:] == ["user", "listen", "user", "listen"], kinds
    # Each turn's answer cites what its own question was about.
    bots = []
    current = None
    for e in events:
        if e["event"] == "user":
            current = e["text"]
        elif e["event"] == "bot" and isinstance((e.get("data") or {}).get("custom"), dict):
            bots.append((current, e["data"]["custom"]["text"]))
    assert [q for q, _ in bots[-2:]] == users[-2:]


def test_an_answer_sent_by_one_replica_reaches_a_web_chat_socket_held_by_another(cluster):
    """python-socketio's Redis manager: replica 2 emits to the room of a socket connected to replica 1."""
    port_a = int(cluster.replica_urls[0].rsplit(":", 1)[1])
    script = ("import asyncio, sys; sys.path.insert(0, 'tests'); from channel_probe import webchat_listen; "
              f"asyncio.run(webchat_listen({port_a}, 60, 'Hej!'))")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    listener = subprocess.Popen([str(ROOT / ".venv-rasa" / "bin" / "python"), "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        first = json.loads(listener.stdout.readline() or "{}")
        assert "session_id" in first, listener.stderr.read()[-3000:]
        conversation = f"web:{first['session_id']}"

        def next_event(timeout: float) -> dict:
            got: dict = {}
            reader = threading.Thread(target=lambda: got.update(json.loads(listener.stdout.readline() or "{}")),
                                      daemon=True)
            reader.start()
            reader.join(timeout)
            return got.get("bot_uttered") or {}

        assert "Hej" in next_event(60).get("text", "")  # the greeting, from replica 1 (the conversation exists)
        response = httpx.post(f"{cluster.replica_urls[1]}/conversations/{conversation}/execute",
                              params={"output_channel": "socketio"}, json={"name": "utter_iamabot"},
                              headers=rasa_api_headers(cluster, conversation, role="admin"), timeout=60)
        assert response.status_code == 200, response.text
        assert "Jag är en chattbot" in next_event(30).get("text", "")  # emitted on replica 2
    finally:
        listener.kill()
        listener.wait()


def test_kill_9_of_a_replica_mid_conversation_and_the_next_turn_continues(cluster):
    """Last in this module: it leaves one replica dead. Two conversations each have a message in flight
    through the balancer (one on each replica) when replica 1 is killed: both get their answer (the
    balancer sends the dropped request to replica 2, which waits for the dead replica's lock ticket to
    lapse), within 30 s, and the next turns continue both conversations from PostgreSQL."""
    balancer = cluster.balancer_url
    people = ["cluster-" + uuid.uuid4().hex[:8] for _ in range(2)]
    answers = {me: custom_of(say(balancer, me, "Vad är ett ramavtal?")) for me in people}
    assert all(a["answered"] and len(a["citations"]) >= 2 for a in answers.values())
    in_flight: dict[str, list] = {}
    threads = [threading.Thread(target=lambda me=me: in_flight.update({me: say(balancer, me, "Vad är IOP?")}))
               for me in people]
    for t in threads:
        t.start()
    # Kill while both messages are in progress at the replicas (HAProxy's current sessions), not after a
    # fixed pause: answers now take ~0.15 s, so a 0.3 s pause killed after both were answered, and the
    # next turn raced the dying process instead (a request the kernel accepts while a killed process
    # is torn down gets 502).
    deadline = time.monotonic() + 10
    while busy_sessions(cluster) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    victim = cluster.replicas()[0]
    os.killpg(victim.popen.pid, signal.SIGKILL)
    killed = time.monotonic()
    for t in threads:
        t.join(120)
    assert all(custom_of(in_flight[me])["answered"] for me in people), in_flight  # nothing lost, no error
    assert time.monotonic() - killed < 30
    for me in people:  # needs the citations of the answer given across the kill
        last = custom_of(in_flight[me])
        source = custom_of(say(balancer, me, "visa källa 2"))
        assert source["citations"][0]["paragraph_id"] == last["citations"][1]["paragraph_id"]
    assert not victim.alive()
