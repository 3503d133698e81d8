"""The Rasa project: data validation, test stories, NLU cross-validation, and a real multi-turn
conversation over REST with the knowledge service, the action server and Rasa running.

Slow: they need the Rasa environment (make rasa-env) and the trained model (make train); `make test`
provides both.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import SLACK_SECRET, TEAMS_APP_ID, TEAMS_ISSUER, TEAMS_TENANT, FakeMicrosoft, custom_of, rest_headers

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
MODEL = ROOT / "var" / "rasa" / "models" / "bot.tar.gz"
REPORTS = ROOT / "var" / "reports"
ENV = {"RASA_CACHE_DIRECTORY": str(ROOT / "var" / "rasa" / "cache"), **os.environ, "RASA_TELEMETRY_ENABLED": "false",
       "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}

pytestmark = pytest.mark.slow


def rasa(*args: str, timeout: int = 1800, launched: bool = False) -> subprocess.CompletedProcess:
    """Rasa's CLI; ``launched``: through bot/launch.py, as the server runs it, so a model loads with
    bot/fastload.py (15 CPU-s instead of 57; tests/test_fastload.py checks that it predicts exactly what Rasa's
    own loader does)."""
    if not RASA.exists():
        pytest.fail(f"Rasa is not installed at {RASA}: run `make rasa-env`")
    command = [str(RASA.parent / "python"), "-m", "bot.launch"] if launched else [str(RASA)]
    return subprocess.run([*command, *args], cwd=BOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def need_model() -> None:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train`")


def test_rasa_data_validate():
    result = rasa("data", "validate", "--domain", "domain.yml", "--data", "data")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    warnings = [line for line in output.splitlines() if "UserWarning" in line]
    # Forms ask with utter_ask_<slot>, and action_small_talk sends the small-talk replies: the validator
    # sees neither in stories or rules. Those must really be used by the action; nothing else may warn.
    from actions.actions import ActionSmallTalk

    by_action = set(ActionSmallTalk.RESPONSES.values())
    unexpected = [w for w in warnings if not re.search(r"The utterance '(utter_ask_\w+|"
                                                        + "|".join(sorted(by_action)) + r")' is not used", w)]
    assert not unexpected, unexpected
    domain = (BOT / "domain.yml").read_text(encoding="utf-8")
    assert all(f"\n  {name}:" in domain for name in by_action)  # the action names responses that exist


def test_stories_pass_without_prediction_errors(tmp_path):
    need_model()
    result = rasa("test", "core", "--model", str(MODEL), "--stories", "tests/test_stories.yml",
                  "--fail-on-prediction-errors", "--out", str(tmp_path / "core"), launched=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads((tmp_path / "core" / "story_report.json").read_text())
    assert report["accuracy"] == 1.0


E5_CHECK = """
import json
from rasa.engine.graph import ExecutionContext
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from bot.components.e5 import E5Featurizer

featurizer = E5Featurizer({**E5Featurizer.get_default_config(), "alias": "e5"}, ExecutionContext(None, "e5"))
tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
texts = ["Vad är ett idéburet offentligt partnerskap?", "What is an idea-driven public partnership?",
         "Vad blir vädret i morgon?", "x" * 200000, "x" * 500]
messages = [Message(data={"text": t}) for t in texts]
tokenizer.process(messages)
featurizer.process(messages)
out = []
for m in messages:
    sequence, sentence = m.get_dense_features("text")
    out.append({"sequence": sequence is not None, "sentence": sentence.features[0].tolist()})
exact = E5Featurizer({**E5Featurizer.get_default_config(), "alias": "e5", "precision": "float32"},
                     ExecutionContext(None, "e5"))
graphs = [featurizer.model.session._model_path, exact.model.session._model_path]
try:
    E5Featurizer.validate_config({**E5Featurizer.get_default_config(), "precision": "int4"})
    refused = False
except ValueError:
    refused = True
print(json.dumps({"out": out, "float32": [exact.sentence_feature(t)[0].tolist() for t in texts[:3]],
                  "graphs": graphs, "refused": refused}))
"""


def test_e5_featurizer_gives_dense_features_inside_rasa():
    """The NLU's pretrained features (bot/components/e5.py) in Rasa's own environment: a normalised
    sentence vector (no token-level features: they made DIET worse); a Swedish question and its English twin are closer than
    an unrelated question; a 200,000-character message is cut before the model sees it."""
    import numpy as np

    result = subprocess.run([str(ROOT / ".venv-rasa" / "bin" / "python"), "-c", E5_CHECK], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    sv, en, weather, huge, cut = (np.asarray(o["sentence"]) for o in data["out"])
    for o in data["out"]:
        assert o["sequence"] is False and len(o["sentence"]) == 384
    assert abs(float(np.linalg.norm(sv)) - 1.0) < 1e-4
    assert float(sv @ en) > float(sv @ weather) + 0.05
    assert np.allclose(huge, cut)  # only the first max_chars (500) characters reach the model
    # The default graph is the int8 one; its vectors stay close to float32's (not the same graph).
    assert [Path(g).name for g in data["graphs"]] == ["model.int8.onnx", "model.onnx"]
    for a, b in zip((sv, en, weather), data["float32"]):
        assert 0.98 <= float(a @ np.asarray(b)) < 0.99999
    assert data["refused"]


def test_nlu_on_held_out_examples():
    """The NLU trained on 80 % of bot/data/nlu.yml (a fixed random split per intent) and tested on the
    other 20 %: one training, where 3-fold cross-validation took three (the slowest step of CI; the
    cross-validated figures in the README come from `make nlu-report`). The report is kept in
    var/reports/nlu-split (and in CI logs)."""
    out = REPORTS / "nlu-split"
    split = out / "data"
    result = rasa("data", "split", "nlu", "--nlu", "data/nlu.yml", "--training-fraction", "0.8",
                  "--random-seed", "1", "--out", str(split))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    train, test = split / "training_data.yml", split / "test_data.yml"
    assert train.exists() and test.exists(), sorted(p.name for p in split.iterdir())
    result = rasa("train", "nlu", "--nlu", str(train), "--config", "config.yml", "--out", str(out / "model"),
                  "--fixed-model-name", "nlu", timeout=3600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    result = rasa("test", "nlu", "--nlu", str(test), "--model", str(out / "model" / "nlu.tar.gz"),
                  "--out", str(out / "report"), timeout=1800, launched=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    intents = json.loads((out / "report" / "intent_report.json").read_text())
    weighted = intents["weighted avg"]["f1-score"]
    print(f"NLU held-out 20 % intent F1: weighted {weighted:.3f}, macro {intents['macro avg']['f1-score']:.3f}")
    for name, row in sorted(intents.items()):
        if isinstance(row, dict) and "f1-score" in row and name not in ("weighted avg", "macro avg", "micro avg"):
            print(f"  {name:16s} F1 {row['f1-score']:.3f}  (n={row['support']})")
    # 3-fold cross-validation measured 0.771 (2026-11-30); below 0.70 the training data broke
    assert weighted >= 0.70
    entities_file = out / "report" / "DIETClassifier_report.json"
    if entities_file.exists():
        entities = json.loads(entities_file.read_text())
        print(f"NLU held-out entity F1 (DIET): weighted {entities['weighted avg']['f1-score']:.3f}")


# -- a real conversation (the stack and the fakes are fixtures in conftest.py) ------------------
def say(stack, sender: str, message: str) -> list[dict]:
    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/rest/webhook"
    response = httpx.post(url, json={"sender": sender, "message": message}, headers=rest_headers(), timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_multi_turn_conversation_over_rest(stack):
    from assistant.inbox import Inbox

    me = "e2e-" + uuid.uuid4().hex[:8]
    greeting = say(stack, me, "Hej!")
    assert custom_of(greeting) is None and "Hej" in greeting[0]["text"]

    answer = custom_of(say(stack, me, "Vad är ett idéburet offentligt partnerskap?"))
    assert answer["answered"] is True and 1 <= len(answer["citations"]) <= 3
    first = answer["citations"][0]
    assert {"paragraph_id", "doc_id", "title", "year", "section", "page", "text", "score"} <= set(first)
    assert "partnerskap" in first["text"].lower()
    assert first["quote"] in answer["text"] and "[1]" in answer["text"]

    source = custom_of(say(stack, me, "visa källan"))
    assert source["citations"][0]["paragraph_id"] == first["paragraph_id"]
    assert source["citations"][0]["text"] == first["text"]

    more = custom_of(say(stack, me, "fler"))
    assert more["answered"] is True
    assert not {c["paragraph_id"] for c in more["citations"]} & {c["paragraph_id"] for c in answer["citations"]}

    english = custom_of(say(stack, me, "What is a reserved contract?"))
    assert english["answered"] is True and english["language"] == "en"
    assert english["text"].startswith("The documents say")

    thanks = say(stack, me, "tack!")
    assert custom_of(thanks) is None

    weather = custom_of(say(stack, me, "Hur blir vädret i Stockholm i helgen?"))
    assert weather["answered"] is False and weather["coverage"] == "none" and weather["citations"] == []
    assert "så jag vill inte gissa" in weather["text"]

    ask_contact = say(stack, me, "ja")
    assert "e-postadress" in ask_contact[-1]["text"]
    summary = say(stack, me, "anna.andersson@example.se")
    assert "anna.andersson@example.se" in summary[0]["text"] and summary[0]["text"].startswith("Det här skickas")
    confirmation = say(stack, me, "Skicka")
    assert "anna.andersson@example.se" in confirmation[0]["text"]
    [request] = [r for r in Inbox(stack.settings.inbox_db).handoffs() if r.sender_id == "rest:" + me]
    assert request.question == "Hur blir vädret i Stockholm i helgen?"


def test_threshold_check_over_rest(stack):
    """A question with an amount is answered and the check offered; the button starts the check with that amount."""
    me = "e2e-" + uuid.uuid4().hex[:8]
    first = say(stack, me, "Vi ska köpa städtjänster för 650 000 kr, måste det annonseras?")
    custom = custom_of(first)
    assert custom and custom["citations"], first  # an answer, not a form prompt
    buttons = [b for m in first for b in m.get("buttons") or []]
    assert {"title": "Kolla ett belopp mot gränserna", "payload": "/check_amount"} in buttons
    reply = say(stack, me, "/check_amount")
    for answer in ("tjänster", "en kommun"):  # the form asks only for what it does not know
        if custom_of(reply):
            break
        assert "belopp" not in " ".join(m.get("text") or "" for m in reply).lower()  # the amount came along
        reply = say(stack, me, answer)
    result = custom_of(reply)
    assert result and result["answered"] is True
    assert "650 000 kr" in result["text"] and "586 907 kr" in result["text"] and "(2019)" in result["text"]
    assert "vartannat år" in result["text"]


def test_the_amount_check_reads_big_amounts_answers_questions_and_can_be_cancelled(stack):
    """Found by a helper trying the chat as users would (session 26): "kolla 1 500 000 kr" got the contact
    reply (a phone number), "1 500 000" was compared as 500 000 kr, a question typed in the check was taken
    as its answer, and "avbryt" was asked again (or, at the buyer, completed the check)."""
    def texts_of(replies):
        return " ".join(m.get("text") or "" for m in replies)

    me = "e2e-" + uuid.uuid4().hex[:8]
    reply = say(stack, me, "kolla 1 500 000 kr")
    assert "slags köp" in texts_of(reply) and "kontaktuppgift" not in texts_of(reply), reply
    assert "Avbryt" in [b["title"] for m in reply for b in m.get("buttons") or []]
    reply = say(stack, me, "vad räknas som tjänster i bilaga 2?")
    assert custom_of(reply) and custom_of(reply)["citations"], reply  # answered from the documents ...
    assert "slags köp" in reply[-1]["text"]  # ... and the check asks again
    reply = say(stack, me, "avbryt")
    assert "avbryter" in texts_of(reply) and not custom_of(reply), reply
    assert custom_of(say(stack, me, "Vad är ett ramavtal?"))["citations"]  # the check is over

    me = "e2e-" + uuid.uuid4().hex[:8]
    reply = say(stack, me, "/check_amount")
    for answer in ("1 500 000", "tjänster", "en kommun"):
        assert not custom_of(reply), reply
        reply = say(stack, me, answer)
    assert "1 500 000 kr" in custom_of(reply)["text"], reply


def test_a_request_for_a_person_starts_the_hand_over(stack):
    """"kan nån kontakta mig" was searched and answered "not in the documents"; a hand-over began with
    "Jag har inte skickat något än. Välj ”Skicka till personalen” …" before there was anything to send."""
    reply = say(stack, "e2e-" + uuid.uuid4().hex[:8], "kan nån kontakta mig")
    text = " ".join(m.get("text") or "" for m in reply)
    assert "skicka din fråga vidare till en person" in text and "inte skickat något" not in text, reply
    assert reply[-1]["text"].startswith("Vad gäller din fråga?")


@pytest.mark.parametrize("question, coverage", [
    ("Vad är ett idéburet offentligt partnerskap?", "full"),
    ("Hur blir vädret i Stockholm i helgen?", "none"),
    # A tax procedure the documents never describe: declined, or, when the NLU is confident it is an
    # IOP question (the domain hedge, actions.DOMAIN_CONFIDENCE), the IOP quotes with the missing
    # F-skattsedel said first; never a full answer.
    ("Hur fyller man i en F-skattsedel hos Skatteverket när man startar ett IOP?", "none|partial"),
    ("Måste en förening ha F-skattsedel för att teckna IOP med kommunen?", "partial"),
    # Known regression of the tuned query encoder (2026-11-30): a weather question naming Umeå, one of the
    # project municipalities of document 003, gets Umeå quotes ("partial", and "full" since the encoder
    # was tuned on the situation-style examples too). The off-topic set stays at 39 of 40 declined
    # in-process. Strict: this fails once it is fixed.
    pytest.param("Vad blir det för väder i Umeå på lördag?", "none",
                 marks=pytest.mark.xfail(strict=True, reason="corpus place names pull off-topic questions to partial")),
])
def test_each_verdict_over_rest(stack, question, coverage):
    me = "e2e-" + uuid.uuid4().hex[:8]
    replies = say(stack, me, question)
    custom = custom_of(replies)
    assert custom["coverage"] in coverage.split("|"), custom["text"]
    coverage = custom["coverage"]
    buttons = [b["payload"] for m in replies for b in m.get("buttons") or []]
    if "F-skattsedel" in question:
        assert "F-skattsedel" in custom["text"].split(".")[0], custom["text"]  # what is missing comes first
    if coverage == "none":
        assert custom["answered"] is False and custom["citations"] == [] and "/request_human" in buttons
    elif coverage == "partial":
        assert custom["text"].startswith("Dokumenten tar inte upp") and custom["citations"]
        assert "/request_human" in buttons
    else:
        assert custom["citations"] and custom["missing"] == [] and "tar inte upp" not in custom["text"]


@pytest.mark.parametrize("message", ["ok", "nej", "jaha"])
def test_a_message_no_rule_covers_gets_one_reply(stack, message):
    """"ok" as a first message is read as affirm with nothing pending: no rule covers it, so Rasa's core
    fallback runs action_answer. Before it ended the turn itself, nothing predicted action_listen after
    it and Rasa ran it ten times: ten replies, and ten searches for one message."""
    replies = say(stack, "e2e-" + uuid.uuid4().hex[:8], message)
    assert len([m for m in replies if m.get("text")]) == 1, replies
    # ... and it is acknowledged with what can be asked, not searched and declined as "not in the documents"
    assert not [m for m in replies if m.get("custom")], replies
    assert "Vad vill du veta?" in replies[0]["text"], replies


def test_a_question_that_mentions_talking_to_someone_is_answered(stack):
    me = "e2e-" + uuid.uuid4().hex[:8]
    replies = say(stack, me, "Vem ska jag prata med på kommunen om ett idéburet offentligt partnerskap?")
    custom = custom_of(replies)
    assert custom and custom["citations"], replies  # not "Vad vill du fråga en person om?"
    assert "/request_human" in [b["payload"] for m in replies for b in m.get("buttons") or []]


@pytest.mark.parametrize("message", [
    "Thanks! One more thing: can a municipality reserve a contract for social enterprises only?",
    "We lost a tender. Can we ask to see the winning bid and the evaluation?",
    "idéburen organisation definition",
])
def test_small_talk_words_or_a_bare_phrase_never_replace_the_answer(stack, message):
    """Whatever the NLU reads (thank, goodbye, inform), a message that asks something gets an answer
    with a verdict: never only "Varsågod!", "Goodbye…" or the amount form's first question."""
    replies = say(stack, "e2e-" + uuid.uuid4().hex[:8], message)
    custom = custom_of(replies)
    assert custom and custom["coverage"] in ("full", "partial", "none"), replies
    assert not any("uppskattade värdet" in (m.get("text") or "") for m in replies)


def test_conversation_survives_a_rasa_restart(stack):
    me = "e2e-" + uuid.uuid4().hex[:8]
    answer = custom_of(say(stack, me, "Vad är ett ramavtal?"))
    assert answer["answered"] is True
    rasa_process = next(p for p in stack.processes if p.name == "rasa")
    rasa_process.stop()
    rasa_process.start(stack.settings.log_dir)
    import time

    deadline = time.monotonic() + 400
    while not rasa_process.ready():
        assert rasa_process.alive(), rasa_process.tail()
        assert time.monotonic() < deadline, "Rasa did not come back"
        time.sleep(1)
    source = custom_of(say(stack, me, "visa källa 2"))  # needs the citations remembered before the restart
    assert source["citations"][0]["paragraph_id"] == answer["citations"][1]["paragraph_id"]


def slack_event(text: str, user: str = "U123", channel: str = "D456") -> bytes:
    return json.dumps({
        "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": uuid.uuid4().hex,
        "event": {"type": "message", "channel_type": "im", "channel": channel, "user": user, "text": text,
                  "ts": "1700000000.000100", "event_ts": "1700000000.000100"},
    }).encode()


def slack_headers(body: bytes, secret: str = SLACK_SECRET, timestamp: int | None = None) -> dict:
    import hashlib
    import hmac
    import time

    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def test_slack_signed_event_becomes_a_reply_with_citation_blocks(stack, fake_slack):
    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/slack/webhook"
    before = len(fake_slack.posts)
    body = slack_event("Vad är ett ramavtal?")
    response = httpx.post(url, content=body, headers=slack_headers(body), timeout=60)
    assert response.status_code == 200, response.text
    import time

    deadline = time.monotonic() + 30  # Rasa answers Slack in a background task, after the 200
    while len(fake_slack.posts) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    posts = fake_slack.posts[before:]
    assert posts, "no message was posted to the Slack API"
    post = posts[-1]
    assert post["path"].endswith("/chat.postMessage") and post["auth"] == "Bearer xoxb-test-token"
    payload = post["payload"]
    assert payload["channel"] == "D456"
    blocks = payload["blocks"]
    assert blocks[0]["type"] == "section" and "ramavtal" in blocks[0]["text"]["text"].lower()
    contexts = [b for b in blocks if b["type"] == "context"]
    assert 1 <= len(contexts) <= 3
    assert contexts[0]["elements"][0]["text"].startswith("*[1]* ")
    assert "Källor:" not in blocks[0]["text"]["text"]  # the sources are blocks, not a text list


def test_slack_refuses_unsigned_or_wrongly_signed_requests(stack, fake_slack):
    import time

    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/slack/webhook"
    before = len(fake_slack.posts)
    body = slack_event("Vad är IOP?")
    unsigned = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    wrong = httpx.post(url, content=body, headers=slack_headers(body, secret="not-the-secret"), timeout=30)
    stale = httpx.post(url, content=body, headers=slack_headers(body, timestamp=int(time.time()) - 3600), timeout=30)
    tampered = httpx.post(url, content=body.replace(b"IOP", b"LOU"), headers=slack_headers(body), timeout=30)
    for r in (unsigned, wrong, stale, tampered):
        assert r.status_code == 400 and "signed" in r.text
    time.sleep(3)  # nothing may arrive later either
    assert len(fake_slack.posts) == before


def teams_activity(fake: FakeMicrosoft, text: str) -> dict:
    return {"type": "message", "id": "activity-" + uuid.uuid4().hex[:6], "serviceUrl": fake.url,
            "channelId": "msteams", "from": {"id": "29:user-" + uuid.uuid4().hex[:6], "name": "Anna"},
            "recipient": {"id": "28:" + TEAMS_APP_ID, "name": "Upphandlingsassistenten"},
            "conversation": {"id": "a:conversation-1", "tenantId": TEAMS_TENANT}, "text": text}


def test_teams_single_tenant_reply_with_adaptive_card(stack, fake_microsoft):
    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/botframework/webhook"
    before = len(fake_microsoft.activities)
    activity = teams_activity(fake_microsoft, "<at>Upphandlingsassistenten</at> Vad är reserverad upphandling?")
    response = httpx.post(url, json=activity, headers={"Authorization": f"Bearer {fake_microsoft.token()}"},
                          timeout=60)
    assert response.status_code == 200, response.text
    # The outgoing token came from the tenant's endpoint, with the app's credentials.
    request = fake_microsoft.token_requests[-1]
    assert request["path"] == f"/{TEAMS_TENANT}/oauth2/v2.0/token"
    assert request["form"]["client_id"] == TEAMS_APP_ID and request["form"]["client_secret"] == "teams-client-secret"
    assert request["form"]["grant_type"] == "client_credentials"
    replies = fake_microsoft.activities[before:]
    assert replies and all(r["auth"] == "Bearer fake-access-token" for r in replies)
    assert replies[-1]["path"] == "/v3/conversations/a:conversation-1/activities"
    card = replies[-1]["activity"]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    body = card["content"]["body"]
    assert "reserv" in body[0]["text"].lower()
    assert "Källor:" not in body[0]["text"]  # the sources are the card's containers, not a text list
    containers = [b for b in body if b["type"] == "Container"]
    assert 1 <= len(containers) <= 3 and containers[0]["items"][0]["text"].startswith("[1] ")


def test_teams_refuses_requests_that_are_not_signed_by_the_bot_framework(stack, fake_microsoft):
    import jwt
    import time

    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/botframework/webhook"
    before = len(fake_microsoft.activities)
    activity = teams_activity(fake_microsoft, "Vad är IOP?")
    unsigned = jwt.encode({"iss": TEAMS_ISSUER, "aud": TEAMS_APP_ID, "exp": int(time.time()) + 600}, None,
                          algorithm="none")
    bad = {
        "no header": {},
        "not bearer": {"Authorization": "Basic abc"},
        "unsigned": {"Authorization": f"Bearer {unsigned}"},
        "other key": {"Authorization": f"Bearer {fake_microsoft.token(key=fake_microsoft.other_key)}"},
        "unknown kid": {"Authorization": f"Bearer {fake_microsoft.token(kid='nope')}"},
        "other app": {"Authorization": f"Bearer {fake_microsoft.token(aud='someone-else')}"},
        "other issuer": {"Authorization": f"Bearer {fake_microsoft.token(iss='https://evil.example')}"},
        "expired": {"Authorization": f"Bearer {fake_microsoft.token(exp=int(time.time()) - 3600)}"},
        "other service": {"Authorization": f"Bearer {fake_microsoft.token(serviceurl='https://evil.example')}"},
        "no serviceurl": {"Authorization": f"Bearer {fake_microsoft.token(serviceurl=None)}"},
    }
    for name, headers in bad.items():
        response = httpx.post(url, json=activity, headers=headers, timeout=30)
        assert response.status_code == 401, (name, response.status_code, response.text)
    assert len(fake_microsoft.activities) == before



def test_slack_retries_of_one_event_are_answered_once(stack, fake_slack):
    import time

    url = f"http://{stack.settings.rasa_host}:{stack.settings.rasa_port}/webhooks/slack/webhook"
    before = len(fake_slack.posts)
    body = slack_event("Vad är ett ramavtal?", user="U-retry")
    first = httpx.post(url, content=body, headers=slack_headers(body), timeout=60)
    assert first.status_code == 200, first.text
    # Slack thought the first delivery failed and sends the same event again (a new signature each time).
    for n, reason in ((1, "http_error"), (2, "connection_failed")):
        retry = httpx.post(url, content=body, headers={**slack_headers(body), "X-Slack-Retry-Num": str(n),
                                                       "X-Slack-Retry-Reason": reason}, timeout=60)
        assert retry.status_code == 200 and retry.headers.get("x-slack-no-retry") == "1"
    deadline = time.monotonic() + 30
    while len(fake_slack.posts) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(5)  # a duplicate answer would arrive in this time
    answers = [p for p in fake_slack.posts[before:] if p["payload"].get("channel") == "D456"]
    assert len(answers) == 1, answers
    # Another event from the same user is a new message, not a retry.
    other = slack_event("Vad är IOP?", user="U-retry")
    count = len(fake_slack.posts)
    assert httpx.post(url, content=other, headers=slack_headers(other), timeout=60).headers.get("x-slack-no-retry") is None
    deadline = time.monotonic() + 30
    while len(fake_slack.posts) == count and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(fake_slack.posts) > count
