"""The hand-over to a person, end to end through a real Rasa, action server and knowledge service: consent
text, summary, confirm / change / cancel, typos that do not cancel, the conversation's language kept,
and the staff reply delivered to Slack and Teams users (against local fakes of their APIs).

Slow: they need the Rasa environment and the trained model, like tests/test_bot.py.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from conftest import STAFF_TOKEN, TEAMS_APP_ID, TEAMS_TENANT, rest_headers

pytestmark = pytest.mark.slow


def say(stack, sender: str, message: str) -> list[dict]:
    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/rest/webhook"
    response = httpx.post(url, json={"sender": sender, "message": message}, headers=rest_headers(), timeout=90)
    assert response.status_code == 200, response.text
    assert response.json(), f"no reply to {message!r}"
    return response.json()


def text_of(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def buttons_of(messages: list[dict]) -> list[str]:
    return [b["title"] for m in messages for b in m.get("buttons") or []]


def requests_of(stack, sender_id: str):
    from assistant.inbox import Inbox

    return [r for r in Inbox(stack.settings.inbox_db).handoffs() if r.sender_id == sender_id]


def staff_reply(stack, request_id: int, text: str, author: str = "Karin") -> dict:
    url = f"http://{stack.settings.host}:{stack.settings.port}/api/inbox/requests/{request_id}/reply"
    response = httpx.post(url, json={"text": text, "author": author},
                          headers={"Authorization": f"Bearer {STAFF_TOKEN}"}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_consent_summary_change_and_confirm_over_rest(stack):
    me = "handover-" + uuid.uuid4().hex[:8]
    weather = say(stack, me, "Hur blir vädret i Stockholm i helgen?")
    assert "så jag vill inte gissa" in text_of(weather)

    start = say(stack, me, "ja")
    consent, ask = start[0]["text"], start[-1]["text"]
    # Consent before any contact detail is asked for: what is stored, who reads it, how long, when a reply comes.
    for part in ("din fråga", "den här konversationen", "kontaktuppgiften", "personalen på navet",
                 "högst 12 månader", "inom två arbetsdagar"):
        assert part in consent, part
    assert ask.startswith("Hur når vi dig?") and buttons_of(start) == ["Avbryt"]

    # Typos are asked again with what is expected; none of them cancels.
    for typo in ("inte en adress", "jon@", "070-12"):
        again = say(stack, me, typo)
        assert "namn@exempel.se" in text_of(again) and buttons_of(again) == ["Avbryt"], (typo, again)
        assert "avbrutit" not in text_of(again)

    summary = say(stack, me, "anna.andersson@example.se")
    text = text_of(summary)
    # Swedish stays Swedish after an e-mail address (its words once switched the chat to English).
    assert text.startswith("Det här skickas till personalen"), text
    assert "Fråga: ”Hur blir vädret i Stockholm i helgen?”" in text and "Kontakt: anna.andersson@example.se" in text
    assert buttons_of(summary) == ["Skicka till personalen", "Ändra frågan", "Ändra kontaktuppgiften", "Avbryt"]
    assert requests_of(stack, "rest:" + me) == []  # nothing is stored before the summary is confirmed

    change = say(stack, me, "Ändra kontaktuppgiften")
    assert "i stället" in text_of(change)
    summary = say(stack, me, "070-123 45 67")
    assert "Kontakt: 070-123 45 67" in text_of(summary)
    question = say(stack, me, "Ändra frågan")
    assert "Vad gäller din fråga?" in text_of(question)
    summary = say(stack, me, "Kan vi få hjälp att skriva ett IOP-avtal med kommunen?")
    assert "Fråga: ”Kan vi få hjälp att skriva ett IOP-avtal med kommunen?”" in text_of(summary)
    assert requests_of(stack, "rest:" + me) == []

    sent = text_of(say(stack, me, "Skicka"))
    [request] = requests_of(stack, "rest:" + me)
    assert (request.question, request.contact, request.language) == (
        "Kan vi få hjälp att skriva ett IOP-avtal med kommunen?", "070-123 45 67", "sv")
    assert sent.startswith("Skickat!") and f"ärende {request.id}" in sent and "inom två arbetsdagar" in sent


def test_english_conversation_gets_every_hand_over_text_in_english(stack):
    me = "handover-en-" + uuid.uuid4().hex[:8]
    say(stack, me, "What is a framework agreement?")
    start = say(stack, me, "I would like to talk to a person")
    assert start[0]["text"].startswith("I can pass your question on to a person")
    assert "within two working days" in start[0]["text"] and buttons_of(start) == ["Cancel"]
    again = say(stack, me, "jon@")
    assert "name@example.com" in text_of(again)
    summary = text_of(say(stack, me, "anna.andersson@exempel.se"))  # a Swedish-looking address
    assert summary.startswith("This is what will be sent"), summary
    assert "Question: “What is a framework agreement?”" in summary
    sent = text_of(say(stack, me, "Send to the staff"))  # the button
    [request] = requests_of(stack, "rest:" + me)
    assert sent.startswith("Sent.") and f"reference {request.id}" in sent and "ärende" not in sent
    assert request.language == "en"


def test_cancel_is_explicit_and_a_later_email_is_not_taken_for_a_question(stack):
    me = "handover-cancel-" + uuid.uuid4().hex[:8]
    say(stack, me, "Vad är ett ramavtal?")
    say(stack, me, "prata med en person")
    assert "namn@exempel.se" in text_of(say(stack, me, "nej"))  # "nej" is not a cancel
    cancelled = text_of(say(stack, me, "avbryt"))
    assert "inget skickades" in cancelled and requests_of(stack, "rest:" + me) == []

    after = say(stack, me, "anna@example.se")
    assert not any(isinstance(m.get("custom"), dict) for m in after), after  # no search answer
    assert "avbröt förfrågan" in text_of(after) and "Ja, prata med en person" in buttons_of(after)
    # Taking the offer starts again with the consent text and that address already in the summary.
    again = say(stack, me, "/request_human")
    assert "Jag kan skicka din fråga vidare" in again[0]["text"]
    assert "Kontakt: anna@example.se" in text_of(again) and "Skicka till personalen" in buttons_of(again)
    say(stack, me, "Skicka")
    [request] = requests_of(stack, "rest:" + me)
    assert request.contact == "anna@example.se" and request.question == "Vad är ett ramavtal?"


# -- staff replies in Slack and Teams -------------------------------------------------------------
def wait_for(records: list, count: int, predicate, seconds: float = 60) -> list:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [r for r in records[count:] if predicate(r)]
        if found:
            return found
        time.sleep(0.2)
    return []


def test_a_slack_user_gets_the_staff_reply_in_slack(stack, fake_slack):
    from test_bot import slack_event, slack_headers

    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/slack/webhook"
    user, channel = "U" + uuid.uuid4().hex[:8].upper(), "D" + uuid.uuid4().hex[:8].upper()

    def slack_says(text: str, expect: str) -> str:
        count = len(fake_slack.posts)
        body = slack_event(text, user=user, channel=channel)
        assert httpx.post(url, content=body, headers=slack_headers(body), timeout=60).status_code == 200
        posts = wait_for(fake_slack.posts, count, lambda p: p["payload"].get("channel") == channel
                         and expect in str(p["payload"].get("text") or p["payload"].get("blocks")))
        assert posts, f"no Slack post with {expect!r} after {text!r}: {fake_slack.posts[count:]}"
        return str(posts[-1]["payload"])

    slack_says("prata med en person", "Vad gäller din fråga?")  # nothing asked before: the question first
    slack_says("Kan vi skriva ett IOP med kommunen om läxhjälp?", "Hur når vi dig?")
    summary = slack_says("anna@example.se", "Det här skickas till personalen")
    assert "anna@example.se" in summary
    slack_says("Skicka", "Skickat!")
    sender_id = f"slack:T1:{user}"
    [request] = requests_of(stack, sender_id)

    count = len(fake_slack.posts)
    out = staff_reply(stack, request.id, "Hej Anna! Ja, ni kan ingå ett IOP för läxhjälp. <!channel>", "Karin")
    assert out["delivered_to"] == "slack" and out["delivery_error"] is None
    posts = wait_for(fake_slack.posts, count, lambda p: p["payload"].get("channel") == channel, seconds=10)
    assert posts, "the staff reply did not reach Slack"
    text = posts[-1]["payload"]["text"]
    assert "Svar från Karin" in text and "ni kan ingå ett IOP för läxhjälp" in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text  # no @channel ping from a reply
    assert posts[-1]["auth"] == "Bearer xoxb-test-token"


def test_a_teams_user_gets_the_staff_reply_in_teams(stack, fake_microsoft):
    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/botframework/webhook"
    user = "29:user-" + uuid.uuid4().hex[:8]
    conversation = "a:handover-" + uuid.uuid4().hex[:8]

    def teams_says(text: str, expect: str) -> str:
        count = len(fake_microsoft.activities)
        activity = {"type": "message", "id": "activity-" + uuid.uuid4().hex[:6], "serviceUrl": fake_microsoft.url,
                    "channelId": "msteams", "from": {"id": user, "name": "Anna"},
                    "recipient": {"id": "28:" + TEAMS_APP_ID, "name": "Upphandlingsassistenten"},
                    "conversation": {"id": conversation, "tenantId": TEAMS_TENANT}, "text": text}
        response = httpx.post(url, json=activity, headers={"Authorization": f"Bearer {fake_microsoft.token()}"},
                              timeout=90)
        assert response.status_code == 200, response.text
        found = wait_for(fake_microsoft.activities, count, lambda a: conversation in a["path"]
                         and expect in str(a["activity"]), seconds=30)
        assert found, f"no Teams reply with {expect!r} after {text!r}"
        return str(found[-1]["activity"])

    teams_says("talk to a person please", "What is your question?")
    teams_says("Can an IOP with the municipality cover homework help?", "How can we reach you?")
    teams_says("anna@example.com", "This is what will be sent")
    teams_says("Send", "Sent.")
    [request] = requests_of(stack, f"teams:{user}")

    count = len(fake_microsoft.activities)
    out = staff_reply(stack, request.id, "Hi Anna, yes: an IOP can cover homework help.", "Karin")
    assert out["delivered_to"] == "teams" and out["delivery_error"] is None
    [delivered] = wait_for(fake_microsoft.activities, count, lambda a: conversation in a["path"], seconds=10)
    assert delivered["path"] == f"/v3/conversations/{conversation}/activities"
    assert delivered["auth"] == "Bearer fake-access-token"
    activity = delivered["activity"]
    assert activity["recipient"]["id"] == user and activity["from"]["id"] == "28:" + TEAMS_APP_ID
    assert activity["text"].startswith("Reply from Karin (staff)")  # the conversation's language: English
    assert "an IOP can cover homework help" in activity["text"]


def test_delivery_needs_a_token_for_that_conversation_and_role(stack):
    from service.rasa_api import rasa_api_jwt

    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/staff_reply/deliver"
    secret = stack.settings.rasa_api_token.get_secret_value()
    body = {"sender_id": "slack:T1:UVICTIM", "text": "hej", "author": "x"}
    cases = {
        "no token": {},
        "transcript token (role user)": {"Authorization": f"Bearer {rasa_api_jwt(secret, 'slack:T1:UVICTIM')}"},
        "other conversation": {"Authorization": f"Bearer {rasa_api_jwt(secret, 'slack:T1:UOTHER', 'staff_reply')}"},
        "other secret": {"Authorization": f"Bearer {rasa_api_jwt('x' * 32, 'slack:T1:UVICTIM', 'staff_reply')}"},
        "expired": {"Authorization": f"Bearer {rasa_api_jwt(secret, 'slack:T1:UVICTIM', 'staff_reply', now=0)}"},
    }
    for name, headers in cases.items():
        response = httpx.post(url, json=body, headers=headers, timeout=30)
        assert response.status_code == 401, (name, response.status_code, response.text)
    good = {"Authorization": f"Bearer {rasa_api_jwt(secret, 'slack:T1:UNOBODY', 'staff_reply')}"}
    response = httpx.post(url, json={**body, "sender_id": "slack:T1:UNOBODY"}, headers=good, timeout=30)
    assert response.status_code == 404  # no such conversation: nothing is sent anywhere
    web = {"Authorization": f"Bearer {rasa_api_jwt(secret, 'web:abc', 'staff_reply')}"}
    assert httpx.post(url, json={**body, "sender_id": "web:abc"}, headers=web, timeout=30).status_code == 404
