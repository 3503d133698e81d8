"""Staff replies to Slack and Teams users: the inbox asks Rasa to deliver them (service/rasa_api.py,
bot/connectors/staff_reply.py). Fast: a fake Rasa on a real local port stands in; the real Rasa with
fake Slack and Teams APIs is in tests/test_handover.py."""

from __future__ import annotations

import json

import jwt
import pytest
from conftest import JsonHandler, serve
from test_hardening import bearer, inbox_app  # noqa: F401 (fixture)

SECRET = "rasa-api-secret-0123456789abcdefghij"


class FakeRasaDelivery:
    """Rasa's /webhooks/staff_reply/deliver: records each call, answers with ``status``."""

    def __init__(self, status: int = 200):
        calls = self.calls = []
        fake = self
        self.status = status

        class Handler(JsonHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.read_body() or b"{}")
                calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if fake.status == 200:
                    self.reply_json({"delivered": True, "channel": body["sender_id"].split(":")[0]})
                else:
                    self.reply_json({"detail": "slack did not accept the reply"}, fake.status)

        self.server, self.url = serve(Handler)


@pytest.fixture
def fake_rasa():
    rasa = FakeRasaDelivery()
    yield rasa
    rasa.server.shutdown()


def test_slack_and_teams_replies_go_to_rasa_with_a_token_for_that_conversation_only(fake_rasa):
    from service.rasa_api import deliver_staff_reply

    assert deliver_staff_reply(fake_rasa.url, SECRET, "slack:T1:U1", "Karin", "Hej!") == "slack"
    assert deliver_staff_reply(fake_rasa.url, SECRET, "teams:29:abc", "Karin", "Hi!") == "teams"
    for sender in ("web:0123", "rest:x"):  # web chats fetch replies themselves; REST has no user to reach
        assert deliver_staff_reply(fake_rasa.url, SECRET, sender, "Karin", "Hej!") is None
    assert len(fake_rasa.calls) == 2
    for call, sender in zip(fake_rasa.calls, ("slack:T1:U1", "teams:29:abc")):
        assert call["path"] == "/webhooks/staff_reply/deliver"
        assert call["body"]["sender_id"] == sender and call["body"]["author"] == "Karin"
        claims = jwt.decode(call["auth"].split()[1], SECRET, algorithms=["HS256"])
        assert claims["user"] == {"username": sender, "role": "staff_reply"}  # not the transcripts' role


def test_a_refused_delivery_is_an_error_not_a_success(fake_rasa):
    from service.rasa_api import DeliveryError, deliver_staff_reply

    fake_rasa.status = 502
    with pytest.raises(DeliveryError, match="502 slack did not accept"):
        deliver_staff_reply(fake_rasa.url, SECRET, "slack:T1:U1", "Karin", "Hej!")
    with pytest.raises(DeliveryError, match="unreachable"):
        deliver_staff_reply("http://127.0.0.1:9", SECRET, "slack:T1:U1", "Karin", "Hej!")
    with pytest.raises(DeliveryError, match="secret"):
        deliver_staff_reply(fake_rasa.url, None, "slack:T1:U1", "Karin", "Hej!")


def test_the_inbox_reply_says_where_it_went_and_when_it_did_not_arrive(inbox_app, fake_rasa):  # noqa: F811
    from assistant.inbox import Inbox

    client, settings = inbox_app(rasa_url=fake_rasa.url, rasa_api_token=SECRET)
    inbox = Inbox(settings.inbox_db)
    slack = inbox.add_handoff("slack:T1:U1", "Får vi ingå IOP?", "anna@example.se", "sv")
    web = inbox.add_handoff("web:0123", "Får vi ingå IOP?", "bo@example.se", "sv")
    with client:
        out = client.post(f"/api/inbox/requests/{slack}/reply", json={"text": "Ja!", "author": "Karin"},
                          headers=bearer()).json()
        assert out["delivered_to"] == "slack" and out["delivery_error"] is None
        assert fake_rasa.calls[-1]["body"] == {"sender_id": "slack:T1:U1", "author": "Karin", "text": "Ja!"}
        out = client.post(f"/api/inbox/requests/{web}/reply", json={"text": "Ja!", "author": "Karin"},
                          headers=bearer()).json()
        assert out["delivered_to"] is None and out["delivery_error"] is None and len(fake_rasa.calls) == 1
        fake_rasa.status = 502
        out = client.post(f"/api/inbox/requests/{slack}/reply", json={"text": "Igen", "author": "Karin"},
                          headers=bearer()).json()
        assert out["delivered_to"] is None and "502" in out["delivery_error"]
    # The reply is stored either way (staff see it in the conversation, and can tell the user otherwise).
    assert [m.text for m in inbox.staff_messages("slack:T1:U1")] == ["Ja!", "Igen"]
