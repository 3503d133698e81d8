"""Issue 10, proof: fast tests for the security boundaries, without a running Rasa.

Each test here fails when its boundary is removed (checked by planting the bug, see the README's
security section): the Slack signature check, the Teams audience and serviceurl checks (through the
channel's webhook, so a bug in the route counts too), the staff inbox's token/session check on every
staff route, and HTML escaping on the paragraph page /p/{id}.

The Slack and Teams channels import Rasa, which lives in its own environment (.venv-rasa): they run
there in a subprocess (tests/channel_probe.py mounts the channel's blueprint on a bare Sanic app on a
local port; ``on_new_message`` only records what would have reached Rasa).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"


def probe(cases: dict) -> dict:
    """Run tests/channel_probe.py in Rasa's environment with ``cases``; its JSON result."""
    if not RASA_PYTHON.exists():
        pytest.fail(f"Rasa is not installed at {RASA_PYTHON.parent.parent}: run `make rasa-env`")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(RASA_PYTHON), str(ROOT / "tests" / "channel_probe.py")], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- Slack: the signature ---------------------------------------------------------------------------
SLACK_SECRET = "boundary-signing-secret"


def slack_event(text: str) -> str:
    return json.dumps({
        "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": uuid.uuid4().hex,
        "event": {"type": "message", "channel_type": "im", "channel": "D456", "user": "U123", "text": text,
                  "ts": "1700000000.000100", "event_ts": "1700000000.000100"},
    })


def slack_headers(body: str, secret: str = SLACK_SECRET, timestamp: int | None = None,
                  signature: str | None = None) -> dict:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body.encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature if signature is not None else "v0=" + mac}


def test_slack_webhook_processes_only_correctly_signed_fresh_events():
    path = "/webhooks/slack/webhook"
    cases = {name: slack_event(name) for name in ("signed", "wrong-secret", "no-signature", "stale", "tampered",
                                                  "empty-signature")}
    requests = [
        {"path": path, "body": cases["signed"], "headers": slack_headers(cases["signed"])},
        {"path": path, "body": cases["wrong-secret"], "headers": slack_headers(cases["wrong-secret"], "not-the-secret")},
        {"path": path, "body": cases["no-signature"], "headers": {"Content-Type": "application/json"}},
        {"path": path, "body": cases["stale"], "headers": slack_headers(cases["stale"], timestamp=int(time.time()) - 3600)},
        # signed for another body (the attacker swaps the text, keeps the headers)
        {"path": path, "body": cases["tampered"], "headers": slack_headers(cases["signed"])},
        {"path": path, "body": cases["empty-signature"], "headers": slack_headers(cases["empty-signature"], signature="")},
    ]
    out = probe({"channel": "slack", "credentials": {"slack_token": "xoxb-test", "slack_signing_secret": SLACK_SECRET,
                                                      "api_base_url": "http://127.0.0.1:9/api/"},
                 "requests": requests})
    statuses = [r["status"] for r in out["responses"]]
    assert statuses == [200, 400, 400, 400, 400, 400], statuses
    # Only the signed event reached Rasa, in its own slack: conversation.
    assert [(m["text"], m["sender_id"]) for m in out["messages"]] == [("signed", "slack:T1:U123")]


# -- Teams: audience, serviceurl, signature, through the webhook --------------------------------------
def teams_activity(service_url: str, text: str = "hej", user: str = "29:user") -> dict:
    return {"type": "message", "id": "act-1", "serviceUrl": service_url, "text": text,
            "from": {"id": user}, "recipient": {"id": "28:bot"}, "conversation": {"id": "conv-1"},
            "channelId": "msteams"}


def test_teams_webhook_refuses_wrong_audience_serviceurl_and_signature():
    from conftest import TEAMS_APP_ID, FakeMicrosoft

    fake = FakeMicrosoft()
    path = "/webhooks/botframework/webhook"

    def req(token, service_url=None, text="hej"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return {"path": path, "json": teams_activity(service_url or fake.url, text), "headers": headers}

    try:
        requests = [
            req(fake.token(), text="rätt"),
            req(fake.token(aud="some-other-bot-app-id"), text="annan mottagare"),
            req(fake.token(aud=None), text="ingen mottagare"),
            req(fake.token(), service_url="https://evil.example", text="annan tjänst"),
            req(fake.token(serviceurl=None), text="utan serviceurl"),
            req(fake.token(key=fake.other_key), text="fel nyckel"),
            req(fake.token(iss="https://evil.example"), text="fel utfärdare"),
            req(fake.token(exp=int(time.time()) - 3600), text="utgången"),
            req(None, text="ingen token"),
        ]
        out = probe({"channel": "teams", "credentials": {
            "app_id": TEAMS_APP_ID, "app_password": "x", "tenant_id": "t", "login_url": fake.url,
            "openid_configuration_url": fake.url + "/openid"}, "requests": requests})
    finally:
        fake.server.shutdown()
    statuses = [r["status"] for r in out["responses"]]
    assert statuses == [200] + [401] * 8, list(zip(statuses, [r["body"] for r in out["responses"]]))
    assert [(m["text"], m["sender_id"]) for m in out["messages"]] == [("rätt", "teams:29:user")]
    bodies = [r["body"] for r in out["responses"]]
    assert "audience" in bodies[1].lower() and "aud" in bodies[2].lower()
    assert bodies[3] == "Token was issued for another service URL." and bodies[4] == "Token has no serviceurl claim."


TEAMS_VALIDATOR = r"""
import asyncio, json, sys
from bot.connectors.teams import JwtValidator

case = json.load(sys.stdin)

async def main():
    validator = JwtValidator(case["app_id"], case["openid"])
    print(json.dumps([await validator.validate(f"Bearer {t}", case["service_url"]) for t in case["tokens"]]))

asyncio.run(main())
"""


def test_teams_validator_checks_the_audience():
    from conftest import TEAMS_APP_ID, FakeMicrosoft

    fake = FakeMicrosoft()
    try:
        cases = {"app_id": TEAMS_APP_ID, "openid": fake.url + "/openid", "service_url": fake.url,
                 "tokens": [fake.token(), fake.token(aud="another-app"), fake.token(aud=[TEAMS_APP_ID + "x"])]}
        env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(ROOT)}
        done = subprocess.run([str(RASA_PYTHON), "-c", TEAMS_VALIDATOR], input=json.dumps(cases), capture_output=True,
                              text=True, timeout=120, cwd=ROOT, env=env)
    finally:
        fake.server.shutdown()
    assert done.returncode == 0, done.stderr[-2000:]
    good, other, listed = json.loads(done.stdout.strip().splitlines()[-1])
    assert good is None
    assert other and "audience" in other.lower() and listed and "audience" in listed.lower()


# -- the staff inbox: every staff route needs the token or a live session ----------------------------
STAFF = "boundary-staff-token-0123456789"


@pytest.fixture
def service(tiny_index, fake_embedder, tmp_path):
    from fastapi.testclient import TestClient

    from index.search import SearchEngine
    from service.app import create_app
    from service.settings import ServiceSettings

    def make(engine_hook=None, **overrides):
        settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3",
                                      "inbox_token": STAFF, "rasa_url": "http://127.0.0.1:9", **overrides})

        def factory():
            engine = SearchEngine.load(settings, fake_embedder)
            if engine_hook:
                engine_hook(engine)
            return engine

        return TestClient(create_app(settings, engine_factory=factory)), settings

    return make


STAFF_ROUTES = [("GET", "/api/inbox/requests", None), ("GET", "/api/inbox/requests/1", None),
                ("POST", "/api/inbox/requests/1/reply", {"json": {"text": "Hej!"}}),
                ("GET", "/api/inbox/gaps", None), ("GET", "/api/inbox/gaps.csv", None),
                ("POST", "/inbox/requests/1/reply", {"data": {"text": "Hej!", "author": "x"}})]


def test_every_staff_route_needs_the_token_or_a_live_session(service):
    from assistant.inbox import Inbox

    client, settings = service()
    inbox = Inbox(settings.inbox_db)
    inbox.add_handoff("web:victim", "Min hemliga fråga", "victim@example.se", "sv")
    inbox.add_unanswered("web:victim", "Obesvarad hemlig fråga", "sv", None, None)
    wrong = [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Bearer " + STAFF[:-1]},
             {"Authorization": "Bearer " + STAFF + "x"}, {"Authorization": "Basic " + STAFF},
             {"Authorization": STAFF}, {"Cookie": "inbox_session=forged-session-value"},
             {"Cookie": "inbox_session=" + hashlib.sha256(("inbox:" + STAFF).encode()).hexdigest()},
             {"Cookie": "inbox_session=" + STAFF}]
    with client:
        for method, path, body in STAFF_ROUTES:
            for headers in wrong:
                client.cookies.clear()
                r = client.request(method, path, headers=headers, **(body or {}))
                assert r.status_code in (401, 429), (method, path, headers, r.status_code)
                assert "hemlig" not in r.text and "victim@example.se" not in r.text
        # The page itself shows the login form only, never the requests.
        client.cookies.clear()
        page = client.get("/inbox", headers={"Authorization": "Bearer wrong"})
        assert page.status_code in (401, 429) and "hemlig" not in page.text and 'action="/inbox/login"' in page.text
        assert inbox.staff_messages("web:victim") == []  # no reply went through
    # With the token, and with a session from logging in, the same routes answer (so the refusals above
    # are the check at work, not a broken route).
    fresh, _ = service(inbox_db=settings.inbox_db.with_name("inbox2.sqlite3"))
    Inbox(settings.inbox_db.with_name("inbox2.sqlite3")).add_handoff("web:victim", "Min hemliga fråga", "v@example.se",
                                                                      "sv")
    with fresh:
        assert fresh.get("/api/inbox/requests", headers={"Authorization": f"Bearer {STAFF}"}).status_code == 200
        login = fresh.post("/inbox/login", data={"token": STAFF}, follow_redirects=False)
        assert login.status_code == 303
        cookie = login.cookies["inbox_session"]
        fresh.cookies.clear()
        r = fresh.get("/inbox", cookies={"inbox_session": cookie})
        assert r.status_code == 200 and "Min hemliga fråga" in r.text
        assert fresh.get("/api/inbox/gaps.csv", cookies={"inbox_session": cookie}).status_code == 200


def test_the_inbox_is_closed_without_a_configured_token(service):
    client, _ = service(inbox_token=None)
    with client:
        for method, path, body in STAFF_ROUTES:
            r = client.request(method, path, headers={"Authorization": "Bearer "}, **(body or {}))
            assert r.status_code == 503, (method, path, r.status_code)
        assert client.post("/inbox/login", data={"token": ""}, follow_redirects=False).status_code in (422, 503)


# -- the paragraph page: everything from the documents is escaped -----------------------------------
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_paragraph_page_escapes_document_text(service):
    def poison(engine):
        real = engine.paragraph

        def paragraph(paragraph_id, neighbours=1):
            ctx = real(paragraph_id, neighbours)
            if ctx is None:
                return None
            hostile = lambda h: replace(h, title=h.title + HOSTILE, text=h.text + HOSTILE,  # noqa: E731
                                        section=(h.section or "") + HOSTILE)
            return replace(ctx, paragraph=replace(hostile(ctx.paragraph), paragraph_id=ctx.paragraph.paragraph_id),
                           # neighbours on both sides (the tiny index's documents are short)
                           before=[hostile(h) for h in ctx.before or [ctx.paragraph]],
                           after=[hostile(h) for h in ctx.after or [ctx.paragraph]])

        engine.paragraph = paragraph

    client, _ = service(engine_hook=poison)
    with client:
        engine = client.app.state.engine_holder.get()
        r = client.get(f"/p/{engine.index.paragraphs[1].paragraph_id}")
        assert r.status_code == 200
        assert "<script>" not in r.text and "<img" not in r.text
        assert r.text.count("&lt;script&gt;") >= 6  # title, heading, meta, before, cited, after
        assert "&lt;script&gt;" in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text
        # the id in the URL, when unknown, is not echoed raw either
        missing = client.get("/p/" + "%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        assert missing.status_code == 404 and "<script>alert(1)" not in missing.text
