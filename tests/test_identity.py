"""Issue 10 (high): nobody can read, steer or stall another person's chat — against the real stack
(knowledge service, action server, Rasa with every channel; fixtures in conftest.py).

- web chat: sessions are issued and signed by the server and bound to the socket; a second socket
  that names another session (bare id, forged or expired token, or a session id in the message) can
  neither read nor post into it; staff replies need the session's own token;
- REST: a bearer token, a sender, text; conversation rest:<sender>;
- Slack and Teams: conversations slack:<team>:<user> and teams:<user>;
- in every channel, a 200,000-character message gets a refusal and never reaches Rasa's NLU.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from conftest import REST_TOKEN, WEBCHAT_SECRET, rasa_api_headers, rest_headers

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
HUGE = "Vad gäller för upphandling av städtjänster? " * 4600  # ~200,000 characters


def rasa_url(stack, path: str) -> str:
    return f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}{path}"


def user_texts(stack, sender_id: str) -> list[str]:
    """What Rasa recorded from the user in one conversation (its HTTP API, with the stack's token)."""
    r = httpx.get(rasa_url(stack, f"/conversations/{quote(sender_id, safe=':')}/tracker"),
                  headers=rasa_api_headers(stack, sender_id), timeout=30)
    assert r.status_code == 200, r.text
    return [e.get("text") or "" for e in r.json().get("events", []) if e.get("event") == "user"]


# -- REST -----------------------------------------------------------------------------------------
def rest(stack, body, headers=None, **kwargs) -> httpx.Response:
    return httpx.post(rasa_url(stack, "/webhooks/rest/webhook"), headers=rest_headers() if headers is None else headers,
                      timeout=60, **({"json": body} if body is not None else kwargs))


def test_rest_needs_its_token(stack):
    me = "id-" + uuid.uuid4().hex[:8]
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {REST_TOKEN}"}):
        r = rest(stack, {"sender": me, "message": "Vad är IOP?"}, headers=headers)
        assert r.status_code == 401 and "ASSISTANT_REST_TOKEN" in r.json()["error"], (headers, r.text)
    assert user_texts(stack, "rest:" + me) == []


def test_rest_conversations_are_prefixed_and_need_a_sender(stack):
    me = "id-" + uuid.uuid4().hex[:8]
    replies = rest(stack, {"sender": me, "message": "Hej!"}).json()
    assert replies and all(m["recipient_id"] == "rest:" + me for m in replies)
    assert user_texts(stack, "rest:" + me) == ["Hej!"] and user_texts(stack, me) == []
    for body in ({"message": "Vad är IOP?"}, {"sender": "", "message": "Hej"}, {"sender": 42, "message": "Hej"},
                 {"sender": "x" * 500, "message": "Hej"}):
        r = rest(stack, body)
        assert r.status_code == 400 and "sender" in r.json()["error"], (body, r.text)
    assert user_texts(stack, "default") == []  # no shared conversation for requests without a sender


def test_rest_bad_messages_get_400_with_a_message(stack):
    me = "id-" + uuid.uuid4().hex[:8]
    for body in ({"sender": me, "message": 12345}, {"sender": me, "message": ""}, {"sender": me},
                 {"sender": me, "message": ["Vad", "är", "IOP"]}):
        r = rest(stack, body)
        assert r.status_code == 400 and len(r.json()["error"]) > 10, (body, r.text)
    surrogate = rest(stack, None, content=b'{"sender": "%s", "message": "Hej \\ud800"}' % me.encode(),
                     headers={**rest_headers(), "Content-Type": "application/json"})
    assert surrogate.status_code == 400 and "läsa" in surrogate.json()["error"]
    for raw in (b"{not json", b"[1, 2]"):
        r = rest(stack, None, content=raw, headers={**rest_headers(), "Content-Type": "application/json"})
        assert r.status_code == 400, r.text
    assert user_texts(stack, "rest:" + me) == []


def test_rest_overlong_message_is_refused_before_the_nlu(stack):
    me = "id-" + uuid.uuid4().hex[:8]
    start = time.perf_counter()
    r = rest(stack, {"sender": me, "message": HUGE})
    took = time.perf_counter() - start
    assert r.status_code == 200
    [reply] = r.json()
    assert "för långt" in reply["text"] and "2 000" in reply["text"] and reply["recipient_id"] == "rest:" + me
    assert took < 5, took  # DIET never saw it (whole, it took 24 s and 12 GB)
    english = rest(stack, {"sender": me, "message": "What is the threshold for a direct award? " * 5000}).json()
    assert "too long" in english[0]["text"]
    assert user_texts(stack, "rest:" + me) == []  # nothing reached the tracker either
    # Metadata over the cap is dropped, the message itself goes through.
    rest(stack, {"sender": me, "message": "Hej!", "metadata": {"blob": "x" * 20_000}})
    r = httpx.get(rasa_url(stack, f"/conversations/rest:{me}/tracker"),
                  headers=rasa_api_headers(stack, f"rest:{me}"), timeout=30)
    [user] = [e for e in r.json()["events"] if e.get("event") == "user"]
    assert user["text"] == "Hej!" and "blob" not in json.dumps(user.get("metadata") or {})


def test_oversize_bodies_are_refused_by_rasa(stack):
    r = rest(stack, None, content=b'{"sender": "x", "message": "' + b"a" * 1_100_000 + b'"}',
             headers={**rest_headers(), "Content-Type": "application/json"})
    assert r.status_code == 413


# -- Slack and Teams ------------------------------------------------------------------------------
def slack_post(stack, text: str, user: str):
    from test_bot import slack_event, slack_headers

    body = slack_event(text, user=user)
    r = httpx.post(rasa_url(stack, "/webhooks/slack/webhook"), content=body, headers=slack_headers(body), timeout=60)
    assert r.status_code == 200, r.text


def wait_for(condition, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    return condition()


def test_slack_conversations_are_prefixed_and_overlong_messages_refused(stack, fake_slack):
    user = "U" + uuid.uuid4().hex[:8].upper()
    before = len(fake_slack.posts)
    slack_post(stack, "Vad är ett ramavtal?", user)
    assert wait_for(lambda: user_texts(stack, f"slack:T1:{user}") == ["Vad är ett ramavtal?"])
    assert user_texts(stack, user) == []  # the bare member id is no conversation
    assert wait_for(lambda: len(fake_slack.posts) > before)
    before = len(fake_slack.posts)
    slack_post(stack, HUGE[:39_000], user)  # Slack cuts messages at 40,000 characters
    assert wait_for(lambda: any("för långt" in (p["payload"].get("text") or "") for p in fake_slack.posts[before:]))
    time.sleep(1)
    assert user_texts(stack, f"slack:T1:{user}") == ["Vad är ett ramavtal?"]


def test_teams_conversations_are_prefixed_and_overlong_messages_refused(stack, fake_microsoft):
    from test_bot import teams_activity

    url = rasa_url(stack, "/webhooks/botframework/webhook")
    headers = {"Authorization": f"Bearer {fake_microsoft.token()}"}
    activity = teams_activity(fake_microsoft, "Vad är reserverad upphandling?")
    user = activity["from"]["id"]
    assert httpx.post(url, json=activity, headers=headers, timeout=60).status_code == 200
    assert user_texts(stack, f"teams:{user}") == ["Vad är reserverad upphandling?"]
    assert user_texts(stack, user) == []
    before = len(fake_microsoft.activities)
    long = {**activity, "id": "activity-long", "text": "<at>Bot</at> " * 10 + HUGE}
    start = time.perf_counter()
    assert httpx.post(url, json=long, headers=headers, timeout=60).status_code == 200
    assert time.perf_counter() - start < 5
    replies = [a["activity"] for a in fake_microsoft.activities[before:]]
    assert replies and "för långt" in replies[-1]["text"] and replies[-1]["recipient"]["id"] == user
    assert user_texts(stack, f"teams:{user}") == ["Vad är reserverad upphandling?"]


# -- web chat over socket.io (a client in Rasa's environment, which has python-socketio) ----------
SOCKET_CLIENT = r"""
import asyncio, json, os, time
import socketio
from assistant import guard

URL, SECRET = os.environ["RASA_URL"], os.environ["WEBCHAT_SECRET"]


class Client:
    def __init__(self):
        self.sio = socketio.AsyncClient(reconnection=False)
        self.bot, self.confirms, self.required = asyncio.Queue(), asyncio.Queue(), asyncio.Queue()
        self.sio.on("bot_uttered", handler=self.bot.put_nowait)
        self.sio.on("session_confirm", handler=self.confirms.put_nowait)
        self.sio.on("session_required", handler=self.required.put_nowait)

    async def connect(self):
        await self.sio.connect(URL, transports=["polling"])
        return self

    async def session(self, payload):
        await self.sio.emit("session_request", payload)
        return await asyncio.wait_for(self.confirms.get(), 30)

    async def say(self, message, **extra):
        await self.sio.emit("user_uttered", {"message": message, **extra})

    async def replies(self, wait=60.0, quiet=2.0):
        out = []
        try:
            out.append(await asyncio.wait_for(self.bot.get(), wait))
            while True:
                out.append(await asyncio.wait_for(self.bot.get(), quiet))
        except asyncio.TimeoutError:
            return out


async def main():
    out = {}
    a = await Client().connect()
    first = out["a"] = await a.session({})
    b = await Client().connect()
    out["b_bare_id"] = await b.session({"token": first["session_id"]})
    sid, expires, sig = first["token"].split(".")
    out["b_forged"] = await b.session({"token": f"{sid}.{int(expires) + 86400}.{sig}"})
    expired = guard.issue_session(SECRET, days=1, session_id=first["session_id"], now=time.time() - 3 * 86400)
    out["b_expired"] = await b.session({"token": expired.token})
    # b names a's session in every field it could
    await b.say("Vad är ett ramavtal? (från b)", session_id=first["session_id"], sender="web:" + first["session_id"],
                sender_id="web:" + first["session_id"])
    out["b_replies"] = await b.replies()
    out["a_got_during_b"] = await a.replies(wait=3)
    again = await Client().connect()
    out["a_again"] = await again.session({"token": first["token"]})
    start = time.perf_counter()
    await a.say("Vad gäller för upphandling av städtjänster? " * 4600)
    out["a_huge"] = await a.replies(wait=30, quiet=1)
    out["a_huge_seconds"] = time.perf_counter() - start
    await a.say("What is the threshold for a direct award? " * 5000)
    out["a_huge_en"] = await a.replies(wait=30, quiet=1)
    for name, message in (("a_number", 12345), ("a_empty", "   "), ("a_surrogate", "Hej \ud800")):
        await a.say(message)
        out[name] = await a.replies(wait=30, quiet=1)
    await a.say("Hej!", customData={"blob": "x" * 20000})
    out["a_hello"] = await a.replies()
    c = await Client().connect()  # never asks for a session
    await c.say("Vad är IOP? (från c)", session_id=first["session_id"])
    out["c_required"] = await asyncio.wait_for(c.required.get(), 30)
    out["c_replies"] = await c.replies(wait=10, quiet=1)
    print(json.dumps(out), flush=True)
    # Each polling client's disconnect sends its close packet at once, then waits for its pending long
    # poll to come back (up to the 25 s ping interval: 55 s for the four one after the other). Nothing
    # is checked after this point, so the four close side by side and are not waited for past 5 s.
    await asyncio.wait([asyncio.ensure_future(client.sio.disconnect()) for client in (a, b, again, c)], timeout=5)


asyncio.run(main())
"""


def test_web_chat_sessions_are_issued_signed_and_bound_to_the_socket(stack):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RASA_URL": rasa_url(stack, ""), "WEBCHAT_SECRET": WEBCHAT_SECRET}
    result = subprocess.run([str(ROOT / ".venv-rasa" / "bin" / "python"), "-c", SOCKET_CLIENT], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    a = out["a"]
    assert len(a["session_id"]) == 32 and a["token"].startswith(a["session_id"] + ".")
    assert a["expires_at"] > time.time() + 29 * 86400
    # A bare id, a forged token and an expired one each get a new session, never a's.
    for name in ("b_bare_id", "b_forged", "b_expired"):
        assert out[name]["session_id"] != a["session_id"], name
    b_sender = "web:" + out["b_expired"]["session_id"]
    # b's message went into b's own conversation; a saw nothing and a's conversation holds nothing of b.
    assert out["b_replies"] and any("ramavtal" in (r.get("text") or "").lower() for r in out["b_replies"])
    assert out["a_got_during_b"] == []
    assert user_texts(stack, b_sender) == ["Vad är ett ramavtal? (från b)"]
    # a's token, sent again (a reload), keeps a's conversation, with a renewed expiry.
    assert out["a_again"]["session_id"] == a["session_id"] and out["a_again"]["expires_at"] >= a["expires_at"]
    # Over-long, not text, empty, bad unicode: a clear reply, nothing reaches Rasa.
    [huge] = out["a_huge"]
    assert "för långt" in huge["text"] and out["a_huge_seconds"] < 5
    assert "too long" in out["a_huge_en"][0]["text"]
    assert "läsa" in out["a_number"][0]["text"] and "läsa" in out["a_surrogate"][0]["text"]
    assert "tomt" in out["a_empty"][0]["text"]
    assert out["a_hello"]  # an ordinary message still works after the refusals
    assert user_texts(stack, "web:" + a["session_id"]) == ["Hej!"]
    r = httpx.get(rasa_url(stack, f"/conversations/web:{a['session_id']}/tracker"),
                  headers=rasa_api_headers(stack, "web:" + a["session_id"]), timeout=30)
    assert "blob" not in json.dumps([e.get("metadata") for e in r.json()["events"] if e.get("event") == "user"])
    # A socket without a session is told so and posts nowhere.
    assert out["c_required"] == {} and "Ladda om sidan" in out["c_replies"][0]["text"]
    assert "Vad är IOP? (från c)" not in json.dumps(user_texts(stack, "web:" + a["session_id"]))

    # Staff replies for a reach a only: b's valid token is not enough, nor a's bare session id.
    from assistant.inbox import Inbox

    Inbox(stack.settings.inbox_db).add_staff_message("web:" + a["session_id"], "Lisa", "Hej, jag ringer dig.")
    web = f"http://{stack.settings.host}:{stack.settings.port}/api/webchat/{a['session_id']}/staff-messages"
    assert httpx.get(web, timeout=10).status_code == 401
    assert httpx.get(web, headers={"Authorization": f"Bearer {a['session_id']}"}, timeout=10).status_code == 401
    assert httpx.get(web, headers={"Authorization": f"Bearer {out['b_expired']['token']}"},
                     timeout=10).status_code == 403
    mine = httpx.get(web, headers={"Authorization": f"Bearer {a['token']}"}, timeout=10)
    assert mine.status_code == 200 and [m["text"] for m in mine.json()["messages"]] == ["Hej, jag ringer dig."]
