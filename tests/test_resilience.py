"""Issue 10, "never an empty reply" and per-sender message rates, against a real Rasa (slow).

Rasa runs with the trained model and the assistant's channels, but its action endpoint points at a
port nobody listens on (the action server is down). Fast tests of the same behaviour, without Rasa:
tests/test_boundaries.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from conftest import RASA_MODEL, REST_TOKEN, WEBCHAT_SECRET, free_ports, rasa_api_headers, rest_headers

ROOT = Path(__file__).resolve().parent.parent
FALLBACK_SV = "Något gick fel hos mig – försök igen om en stund, eller be att få prata med en person."
FALLBACK_EN = "Something went wrong on my side – please try again in a moment, or ask to talk to a person."
PER_MINUTE = 4


@pytest.fixture(scope="module")
def rasa_without_actions(tmp_path_factory):
    """Only Rasa (REST and web chat), its action server down, at most PER_MINUTE messages per sender."""
    if not RASA_MODEL.exists():
        pytest.fail(f"no trained model at {RASA_MODEL}: run `make train`")
    from service.stack import Stack, StackSettings

    var = tmp_path_factory.mktemp("no-actions")
    port, closed_port, rasa_port = free_ports(3)
    stack = Stack(StackSettings(port=port, actions_port=closed_port, rasa_port=rasa_port,
                                tracker_db=str(var / "tracker.db"), inbox_db=var / "inbox.sqlite3",
                                log_dir=var / "log", start_timeout=400, rest_token=REST_TOKEN,
                                webchat_secret=WEBCHAT_SECRET, messages_per_minute=PER_MINUTE))
    rasa = next(p for p in stack.processes if p.name == "rasa")
    rasa.start(stack.settings.log_dir)
    deadline = time.monotonic() + stack.settings.start_timeout
    try:
        while not rasa.ready():
            if not rasa.alive():
                pytest.fail(f"Rasa stopped while starting:\n{rasa.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"Rasa not ready:\n{rasa.tail()}")
            time.sleep(0.5)
        yield stack
    finally:
        rasa.stop()


def rest(stack, sender: str, text: str) -> httpx.Response:
    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/rest/webhook"
    return httpx.post(url, json={"sender": sender, "message": text}, headers=rest_headers(), timeout=120)


def events(stack, sender_id: str) -> list[dict]:
    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/conversations/{quote(sender_id, safe=':')}/tracker"
    r = httpx.get(url, params={"include_events": "ALL"}, headers=rasa_api_headers(stack, sender_id), timeout=30)
    assert r.status_code == 200, r.text
    return r.json().get("events", [])


@pytest.mark.slow
def test_a_dead_action_server_gets_a_clear_reply_not_an_empty_one(rasa_without_actions):
    stack = rasa_without_actions
    r = rest(stack, "fallback-sv", "Vad är ett idéburet offentligt partnerskap?")
    assert r.status_code == 200 and r.json() == [{"recipient_id": "rest:fallback-sv", "text": FALLBACK_SV}]
    r = rest(stack, "fallback-en", "What is an idea-based public partnership and how do we sign one?")
    assert r.status_code == 200 and r.json() == [{"recipient_id": "rest:fallback-en", "text": FALLBACK_EN}]

    # The tracker: the turn is rewound (its failed action does not count as an answer) and the reply that
    # was actually sent is recorded.
    log = events(stack, "rest:fallback-sv")
    kinds = [e["event"] for e in log]
    user_at = max(i for i, k in enumerate(kinds) if k == "user")
    after = log[user_at + 1:]
    bots = [e for e in after if e["event"] == "bot"]
    assert [b["text"] for b in bots] == [FALLBACK_SV] and bots[0]["metadata"].get("assistant_fallback") is True
    assert [e["event"] for e in after].index("rewind") < [e["event"] for e in after].index("bot")
    # ... and the turn ends listening, as every Rasa turn does: the rewind took back the listen before the
    # message, and without a new one the next message of this conversation got no answer even with the
    # action server back (tests/test_supervision.py, kill -9 of the action server, asks on the same sender).
    assert (after[-1]["event"], after[-1].get("name")) == ("action", "action_listen")

    # The web chat (socket.io) gets the same message instead of silence.
    script = ("import asyncio, json, sys; sys.path.insert(0, 'tests'); from channel_probe import webchat; "
              f"print(json.dumps(asyncio.run(webchat({stack.settings.rasa_port}, ['Vad är IOP?']))))")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(ROOT / ".venv-rasa" / "bin" / "python"), "-c", script], capture_output=True, text=True,
                          timeout=180, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[{"text": FALLBACK_SV}]]


@pytest.mark.slow
def test_rest_messages_are_rate_limited_per_sender(rasa_without_actions):
    stack = rasa_without_actions
    statuses = [rest(stack, "rate", f"fråga {i}").status_code for i in range(PER_MINUTE + 1)]
    assert statuses == [200] * PER_MINUTE + [429]
    limited = rest(stack, "rate", "en till")
    assert limited.status_code == 429 and "Vänta en minut" in limited.json()[0]["text"]
    assert rest(stack, "rate-other", "fråga").status_code == 200  # another sender is not affected
    texts = [e.get("text") for e in events(stack, "rest:rate") if e["event"] == "user"]
    assert texts == [f"fråga {i}" for i in range(PER_MINUTE)]  # the refused ones never reached Rasa
