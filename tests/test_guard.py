"""Identity and limits without a running Rasa: signed web chat sessions, channel-prefixed sender ids,
the REST channel's access rule, message and metadata caps, the staff-messages route (TestClient),
the web service's body limit, and the channel file the launcher writes."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from assistant import guard

SECRET = "s" * 40


# -- signed web chat sessions ---------------------------------------------------------------------
def test_issued_session_verifies_and_renews_with_the_same_id():
    s = guard.issue_session(SECRET, days=30)
    assert len(s.session_id) == 32 and s.sender_id == "web:" + s.session_id
    assert s.expires_at > time.time() + 29 * 86400
    assert guard.verify_session(s.token, SECRET) == s
    renewed = guard.issue_session(SECRET, session_id=s.session_id)
    assert renewed.session_id == s.session_id and guard.verify_session(renewed.token, SECRET)
    assert guard.issue_session(SECRET).session_id != s.session_id


def test_forged_tampered_expired_and_malformed_tokens_are_refused():
    s = guard.issue_session(SECRET)
    other = guard.issue_session(SECRET)
    sid, expires, sig = s.token.split(".")
    forged = [
        s.session_id,  # the bare id, as the old page kept it
        f"{other.session_id}.{expires}.{sig}",  # someone else's id with my signature
        f"{sid}.{int(expires) + 86400}.{sig}",  # extended expiry
        f"{sid}.{expires}.{sig[:-2]}AA",
        guard.issue_session("another-secret-of-enough-length").token,
        guard.issue_session(SECRET, days=1, now=time.time() - 2 * 86400).token,  # expired
        "", "..", "a.b.c", "é" * 40, f"{sid}.{expires}.{sig}é", None, 12, ["x"], "x" * 10_000,
    ]
    for token in forged:
        assert guard.verify_session(token, SECRET) is None, token


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError):
        guard.issue_session("short")


# -- sender ids -----------------------------------------------------------------------------------
def test_sender_ids_carry_their_channel():
    assert guard.sender(guard.SLACK, "T1", "U123") == "slack:T1:U123"
    assert guard.sender(guard.TEAMS, "29:abc") == "teams:29:abc"
    assert guard.sender(guard.REST, "web:abc") == "rest:web:abc"  # a REST sender cannot name a web chat
    assert guard.channel_of("web:abc") == "web" and guard.channel_of("U123") is None
    with pytest.raises(ValueError):
        guard.sender("sms", "1")


# -- the REST channel's credential ----------------------------------------------------------------
TOKEN = "t" * 32


@pytest.mark.parametrize("token, auth, allow, peer, headers, ok", [
    (TOKEN, f"Bearer {TOKEN}", False, "203.0.113.9", {}, True),
    (TOKEN, f"bearer {TOKEN}", True, "127.0.0.1", {}, True),
    (TOKEN, None, True, "127.0.0.1", {}, False),  # with a token, even this machine needs it
    (TOKEN, "Bearer wrong", True, "127.0.0.1", {}, False),
    (TOKEN, f"Bearer {TOKEN}é", False, "127.0.0.1", {}, False),  # non-ASCII: refused, not a TypeError
    (TOKEN, f"Basic {TOKEN}", False, "127.0.0.1", {}, False),
    (None, None, True, "127.0.0.1", {}, True),  # make run's default: Rasa on 127.0.0.1, eval tools work
    (None, None, True, "::1", {}, True),
    (None, None, True, "10.0.0.5", {}, False),
    (None, None, True, "127.0.0.1", {"x-forwarded-for": "203.0.113.9"}, False),  # a proxy on this machine
    (None, None, True, "127.0.0.1", {"forwarded": "for=203.0.113.9"}, False),
    (None, None, False, "127.0.0.1", {}, False),  # Rasa listens beyond this machine: a token is required
])
def test_rest_access_rule(token, auth, allow, peer, headers, ok):
    refused = guard.rest_access_refused(token, auth, allow, peer, headers)
    assert (refused is None) is ok, refused


def test_loopback_addresses():
    assert guard.is_loopback("127.0.0.1") and guard.is_loopback("::1") and guard.is_loopback("localhost")
    assert not guard.is_loopback("0.0.0.0") and not guard.is_loopback("192.168.1.2") and not guard.is_loopback("")


# -- message and metadata caps --------------------------------------------------------------------
def test_message_caps_and_refusals_in_the_users_language():
    assert guard.check_message("Vad är IOP?") is None
    assert guard.check_message("x" * 2000) is None
    long_sv = guard.check_message("Vad gäller för upphandling? " * 10_000)
    assert long_sv.reason == "too_long" and long_sv.language == "sv" and "för långt" in long_sv.text
    long_en = guard.check_message("What is the limit for a direct award and how does it work? " * 4000)
    assert long_en.reason == "too_long" and long_en.language == "en" and "too long" in long_en.text
    assert guard.check_message("x" * 200_000).language == "sv"  # Swedish unless clearly English
    assert guard.check_message("Hej", limit=2).reason == "too_long"
    assert guard.check_message(12345).reason == "not_text"
    assert guard.check_message(None).reason == "not_text"
    assert guard.check_message({"text": "x"}).reason == "not_text"
    assert guard.check_message("Hej \ud800").reason == "bad_unicode"
    assert guard.check_message("   \n").reason == "empty"
    assert guard.check_message("").reason == "empty"


def test_the_language_guess_is_fast_on_hostile_input():
    for text in ("a" * 100_000, "the " * 25_000, "å" * 100_000, " " * 100_000, "<http://" * 12_500):
        start = time.perf_counter()
        guard.check_message(text)
        assert time.perf_counter() - start < 0.05


def test_metadata_over_the_cap_is_dropped():
    small = {"feedback_for": {"question": "Vad är IOP?", "paragraph_ids": ["004-abc"]}}
    assert guard.cap_metadata(small) == small
    assert guard.cap_metadata(json.dumps(small)) == small
    assert guard.cap_metadata({"x": "y" * 5000}) == {}
    assert guard.cap_metadata("z" * 100_000) == {}
    assert guard.cap_metadata("{not json") == {}
    assert guard.cap_metadata(["a", "list"]) == {}
    assert guard.cap_metadata(None) == {}


# -- the web service: staff replies only for the holder of the session's token --------------------
@pytest.fixture
def web(tiny_index, fake_embedder, tmp_path):
    from index.search import SearchEngine
    from service.app import create_app
    from service.settings import ServiceSettings

    settings = ServiceSettings(**tiny_index.model_dump(), inbox_db=tmp_path / "inbox.sqlite3",
                               webchat_secret=SECRET, max_body_bytes=64_000)
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as c:
        yield c, settings


def test_staff_messages_need_the_sessions_signed_token(web):
    from assistant.inbox import Inbox

    client, settings = web
    mine, theirs = guard.issue_session(SECRET), guard.issue_session(SECRET)
    inbox = Inbox(settings.inbox_db)
    inbox.add_staff_message(theirs.sender_id, "Lisa", "Hej! Här är ditt personnummer …")
    inbox.add_staff_message(mine.sender_id, "Lisa", "Hej, jag ringer dig.")
    inbox.add_staff_message(theirs.session_id, "Lisa", "stored under a bare id")
    path = f"/api/webchat/{theirs.session_id}/staff-messages"

    def get(path, token=None, scheme="Bearer"):
        return client.get(path, headers={"Authorization": f"{scheme} {token}"} if token else {})

    assert get(path).status_code == 401  # the session id alone is not enough
    assert get(path, theirs.session_id).status_code == 401
    assert get(path, mine.token).status_code == 403  # my valid token, their chat
    sid, expires, sig = theirs.token.split(".")
    other = "B" if sig.endswith("A") else "A"  # a changed last character, whatever the signature ends with
    assert get(path, f"{sid}.{expires}.{sig[:-1]}{other}").status_code == 401  # forged
    expired = guard.issue_session(SECRET, days=1, session_id=theirs.session_id, now=time.time() - 3 * 86400)
    assert get(path, expired.token).status_code == 401
    assert get(path, theirs.token, scheme="Basic").status_code == 401
    assert client.get(path, headers={"Authorization": ("Bearer " + "é" * 30).encode()}).status_code == 401  # not 500
    ok = get(path, theirs.token)
    assert ok.status_code == 200
    assert [m["text"] for m in ok.json()["messages"]] == ["Hej! Här är ditt personnummer …"]
    mine_ok = get(f"/api/webchat/{mine.session_id}/staff-messages", mine.token).json()["messages"]
    assert [m["text"] for m in mine_ok] == ["Hej, jag ringer dig."]
    assert get(path + f"?after={2**70}", theirs.token).status_code == 422  # not a 500


def test_staff_messages_are_off_without_a_secret(tiny_index, fake_embedder):
    from index.search import SearchEngine
    from service.app import create_app
    from service.settings import ServiceSettings

    settings = ServiceSettings(**tiny_index.model_dump())
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as c:
        token = guard.issue_session(SECRET)
        r = c.get(f"/api/webchat/{token.session_id}/staff-messages", headers={"Authorization": f"Bearer {token.token}"})
        assert r.status_code == 503


def test_oversize_request_bodies_are_refused_early(web):
    client, _ = web
    r = client.post("/api/search", content=b'{"query": "' + b"a" * 100_000 + b'"}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "högst" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"a" * 10_000

    r = client.post("/api/search", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.post("/api/search", json={"query": "ramavtal"}).status_code == 200


# -- the launcher: channel file, secrets only in the environment ----------------------------------
def stack_settings(tmp_path, **overrides):
    from service.stack import StackSettings

    return StackSettings(log_dir=tmp_path / "log", **overrides)


def test_channel_file_has_no_plain_rest_channel_and_no_secrets(tmp_path):
    import yaml

    from service.stack import Stack, write_credentials

    stack = Stack(stack_settings(tmp_path, slack_bot_token="xoxb-secret-bot-token", slack_signing_secret="shh-" * 5,
                                 teams_app_id="app", teams_app_password="teams-secret-value"))
    s = stack.settings
    assert s.webchat_secret is not None and len(s.webchat_secret.get_secret_value()) >= 32  # generated per run
    assert s.rest_token is None  # Rasa on 127.0.0.1: REST from this machine without a token
    text = write_credentials(s).read_text(encoding="utf-8")
    channels = yaml.safe_load(text)
    assert "rest" not in channels
    rest = channels["bot.connectors.rest.GuardedRestInput"]
    assert rest["allow_loopback_without_token"] is True and "token" not in rest
    webchat = channels["bot.connectors.webchat.WebChatInput"]
    assert webchat["session_secret"] == "${ASSISTANT_WEBCHAT_SECRET}"
    assert channels.pop("bot.connectors.health.HealthInput") == {}  # /health/*: takes no messages
    # Staff replies out to Slack/Teams: no user messages in; its secret comes from the environment.
    assert channels.pop("bot.connectors.staff_reply.StaffReplyInput") == {}
    for block in channels.values():
        assert block["max_message_chars"] == 2000 and block["max_metadata_bytes"] == 4096
    for secret in (s.webchat_secret, s.rasa_api_token):
        assert secret.get_secret_value() not in text
    assert "xoxb-secret-bot-token" not in text and "teams-secret-value" not in text
    rasa = next(p for p in stack.processes if p.name == "rasa")
    assert s.webchat_secret.get_secret_value() not in " ".join(rasa.command)
    assert rasa.env["ASSISTANT_WEBCHAT_SECRET"] == s.webchat_secret.get_secret_value()
    assert rasa.env["SANIC_REQUEST_MAX_SIZE"] == str(s.max_body_bytes)
    service = next(p for p in stack.processes if p.name == "knowledge-service")
    assert service.env["ASSISTANT_WEBCHAT_SECRET"] == s.webchat_secret.get_secret_value()


def test_rest_needs_a_token_when_rasa_listens_beyond_this_machine(tmp_path):
    import yaml

    from service.stack import Stack, write_credentials

    s = Stack(stack_settings(tmp_path, rasa_host="0.0.0.0")).settings
    assert s.rest_token is not None  # generated: REST is closed to anyone without it
    rest = yaml.safe_load(write_credentials(s).read_text())["bot.connectors.rest.GuardedRestInput"]
    assert rest["token"] == "${ASSISTANT_REST_TOKEN}" and rest["allow_loopback_without_token"] is False
    configured = Stack(stack_settings(tmp_path, rest_token="r" * 32)).settings
    rest = yaml.safe_load(write_credentials(configured).read_text())["bot.connectors.rest.GuardedRestInput"]
    assert rest["token"] == "${ASSISTANT_REST_TOKEN}" and rest["allow_loopback_without_token"] is False
