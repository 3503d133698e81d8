"""Custom actions over a tiny index (fake embedder): fresh trackers and a CollectingDispatcher per test."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import actions as A
from assistant.coverage import CoverageFeatures, CoverageModel
from assistant.inbox import Inbox
from assistant.runtime import Runtime, set_runtime
from assistant.settings import AssistantSettings

BOT_DIR = Path(__file__).resolve().parent.parent / "bot"
CITATION_KEYS = {"paragraph_id", "doc_id", "title", "year", "section", "page", "text", "score"}

NEWER_THRESHOLDS = """
# Nya belopp

Direktupphandlingsgränsen är 700 000 kronor år 2025 för varor och tjänster.

Bilaga 2 omfattar sociala tjänster och andra särskilda tjänster. Direktupphandlingsgränsen för dessa tjänster
är 8 109 450 kronor år 2025 och höjs till 8 513 250 kronor år 2026.
"""


@pytest.fixture
def runtime(tmp_path, tiny_knowledge, fake_embedder):
    """A runtime over the tiny corpus plus a 2025 document whose limit disagrees with the 2019 one."""
    from index.search import SearchEngine
    from index.store import build_index

    (tiny_knowledge / "nya.md").write_text(NEWER_THRESHOLDS.strip() + "\n", encoding="utf-8")
    with (tiny_knowledge / "manifest.toml").open("a", encoding="utf-8") as f:
        f.write('\n[[documents]]\nid = "nya"\nfile = "nya.md"\ntitle = "Nya belopp"\nyear = 2025\n')
    settings = AssistantSettings(
        knowledge_dir=tiny_knowledge, index_dir=tmp_path / "index", model="fake-embedder",
        model_cache_dir=tmp_path / "models", inbox_db=tmp_path / "inbox.sqlite3",
    )
    build_index(settings.knowledge_dir, settings.index_dir, fake_embedder)
    rt = Runtime(settings, SearchEngine.load(settings, fake_embedder), coverage_model=rule_model())
    set_runtime(rt)
    yield rt
    set_runtime(None)


def rule_model() -> CoverageModel:
    """A transparent coverage model for the tiny corpus (the shipped one is fitted on the real model's
    scales): full when the best paragraph holds the question's words and none is missing, partial
    when it holds them but a specific word is missing, none when it does not hold them."""
    names = CoverageFeatures.names()
    weights = {"full": {"top_share": 10.0, "missing_any": -10.0}, "partial": {"top_share": 10.0}, "none": {}}
    coef = [[weights[c].get(n, 0.0) for n in names] for c in ("full", "partial", "none")]
    return CoverageModel(["full", "partial", "none"], names, [0.0] * len(names), [1.0] * len(names), coef,
                         [-3.0, -6.0, 0.0])


def tracker(text: str, intent: str = "ask_question", confidence: float = 0.9, slots: dict | None = None,
            entities: list | None = None, events: list | None = None, active_loop: str | None = None) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": entities or []}
    all_slots = {"language": None, "last_question": None, "answered": None, "cited_ids": None, "shown_ids": None,
                 "amount": None, "purchase_kind": None, "buyer_kind": None, "handoff_question": None,
                 "handoff_contact": None, "handoff_confirm": None, "handoff_cancelled": None,
                 "handoff_contact_offer": None, "requested_slot": None, **(slots or {})}
    user_event = {"event": "user", "text": text, "parse_data": latest}
    return Tracker("user-1", all_slots, latest, [*(events or []), user_event], False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


def run(action, t: Tracker, domain: dict | None = None) -> tuple[list[dict], dict]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, domain or {}))
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


# -- answers ---------------------------------------------------------------------------------------
def test_answer_quotes_and_cites_the_best_paragraph(runtime):
    messages, slots = run(A.ActionAnswer(), tracker("Vad är ett idéburet offentligt partnerskap?", "ask_iop"))
    assert len(messages) == 1
    message = messages[0]
    custom = message["custom"]
    assert custom["answered"] is True
    citations = custom["citations"]
    assert 1 <= len(citations) <= 3
    assert CITATION_KEYS <= set(citations[0])
    assert citations[0]["doc_id"] == "iop" and citations[0]["year"] == 2024
    assert [c["number"] for c in citations] == list(range(1, len(citations) + 1))
    # The quoted sentence is in the answer, marked, and taken from the cited paragraph.
    assert citations[0]["quote"] in message["text"] and "[1]" in message["text"]
    assert citations[0]["quote"].rstrip(" …") in citations[0]["text"]
    assert "Handbok om IOP (2024)" in message["text"]
    assert "\n\n" not in message["text"]  # REST would split the message
    # Channels that render the citations themselves get the answer without its source list.
    body = custom["body"]
    assert "Källor:" in message["text"] and "Källor:" not in body and "Handbok om IOP (2024)\n" not in body
    assert citations[0]["quote"] in body and "[1]" in body and "visa källan" in body
    assert body == message["text"].split("\nKällor:\n")[0] + "\n" + message["text"].splitlines()[-1]
    assert slots["answered"] is True and slots["cited_ids"] == [c["paragraph_id"] for c in citations]
    assert slots["last_question"] == "Vad är ett idéburet offentligt partnerskap?"


def test_a_slow_search_does_not_hold_other_users_actions(runtime, monkeypatch):
    """The action server has one event loop: a search run on it would hold every other user's
    action. Here the first user's search waits until the second user's search has started; run on
    the loop, the second could never start and the first would give up."""
    import threading

    real = runtime.answerer.answer
    second_started = threading.Event()
    waited: list[bool] = []

    def answer(question, lang, **options):
        if question.startswith("Vad är ett idéburet"):
            waited.append(second_started.wait(timeout=5))
        else:
            second_started.set()
        return real(question, lang, **options)

    monkeypatch.setattr(runtime.answerer, "answer", answer)

    async def both():
        return await asyncio.gather(
            A.ActionAnswer().run(CollectingDispatcher(), tracker("Vad är ett idéburet offentligt partnerskap?"), {}),
            A.ActionAnswer().run(CollectingDispatcher(), tracker("Vad är en reserverad upphandling?"), {}),
        )

    first, second = asyncio.run(both())
    assert waited == [True]
    assert any(e.get("name") == "answered" for e in first) and any(e.get("name") == "answered" for e in second)


def test_english_question_gets_english_framing_and_swedish_quotes(runtime):
    messages, _ = run(A.ActionAnswer(), tracker("What is an idéburet offentligt partnerskap (IOP)?", "ask_iop",
                                                slots={"language": "en"}))
    text = messages[0]["text"]
    assert text.startswith("The documents say (quoted in Swedish")
    assert "Sources:" in text and messages[0]["custom"]["language"] == "en"
    assert messages[0]["custom"]["citations"][0]["quote"] in text


def test_unrelated_question_is_not_answered_and_is_logged(runtime):
    messages, slots = run(A.ActionAnswer(), tracker("Vem vann fotbolls-VM i Qatar?", "nlu_fallback", 0.2))
    message = messages[0]
    assert message["custom"] == {
        "answered": False, "coverage": "none", "missing": ["fotbolls-VM", "Qatar"], "citations": [], "language": "sv",
        "text": message["text"], "body": message["text"],
    }
    # It declines, names what it did not find and offers a person; no quotes are presented as an answer.
    assert "tar inte upp ”fotbolls-VM” eller ”Qatar”" in message["text"] and "person" in message["text"]
    assert "”" not in message["text"].split("Jag kan svara")[1].replace("”prata med en person”", "")
    assert message["buttons"] == [{"title": "Prata med en person", "payload": "/request_human"}]
    assert slots["answered"] is False and slots["cited_ids"] == []
    logged = runtime.inbox.unanswered()
    assert [u.question for u in logged] == ["Vem vann fotbolls-VM i Qatar?"]


def test_partial_answer_says_first_what_the_documents_do_not_cover(runtime):
    messages, slots = run(A.ActionAnswer(), tracker("Måste idéburna organisationer ha F-skatt i ett partnerskap?", "ask_iop"))
    message = messages[0]
    custom = message["custom"]
    assert custom["coverage"] == "partial" and custom["answered"] is True and custom["missing"] == ["F-skatt"]
    assert message["text"].startswith("Dokumenten tar inte upp ”F-skatt”. Det närmaste de säger:")
    assert custom["citations"] and custom["citations"][0]["doc_id"] == "iop"
    assert {"title": "Prata med en person", "payload": "/request_human"} in message["buttons"]


def test_a_full_answer_names_nothing_missing(runtime):
    messages, _ = run(A.ActionAnswer(), tracker("Vad är ett idéburet offentligt partnerskap?", "ask_iop"))
    custom = messages[0]["custom"]
    assert custom["coverage"] == "full" and custom["missing"] == [] and "tar inte upp" not in messages[0]["text"]
    assert "buttons" not in messages[0] or not messages[0]["buttons"]


def test_invalid_question_gets_a_clear_message(runtime):
    messages, slots = run(A.ActionAnswer(), tracker("?!", "nlu_fallback", 0.1))
    assert messages[0]["custom"]["answered"] is False and messages[0]["custom"]["coverage"] == "none"
    assert "inga ord" in messages[0]["text"]


def test_sentence_units_keep_abbreviations_and_split_bullets():
    from index.paragraphs import sentence_units

    parts = sentence_units("Första meningen. Andra meningen t.ex. med förkortning. • punkt ett • punkt två")
    assert parts == ["Första meningen.", "Andra meningen t.ex. med förkortning.", "• punkt ett", "• punkt två"]


# -- follow-ups ------------------------------------------------------------------------------------
def test_more_results_pages_without_repeating(runtime):
    runtime.settings.max_citations = 1
    _, first = run(A.ActionAnswer(), tracker("upphandling ramavtal direktupphandling", "ask_question"))
    seen = list(first["shown_ids"])
    for _ in range(20):
        messages, slots = run(A.ActionMoreResults(), tracker("fler", "more_results", slots={
            "last_question": first["last_question"], "shown_ids": seen}))
        custom = messages[0]["custom"]
        if not custom["answered"]:
            assert "inga fler" in messages[0]["text"]
            break
        new = [c["paragraph_id"] for c in custom["citations"]]
        assert not set(new) & set(seen)
        seen = slots["shown_ids"]
    else:
        pytest.fail("the tiny corpus should run out of relevant paragraphs")


def test_show_source_after_an_unanswered_question(runtime):
    messages, _ = run(A.ActionShowSource(), tracker("visa källan", "show_source", slots={
        "last_question": "Vem vann VM?", "cited_ids": []}))
    assert "Ställ en fråga först" in messages[0]["text"]


def test_show_source_gives_the_whole_paragraph_with_context(runtime):
    _, slots = run(A.ActionAnswer(), tracker("Vad beskriver överenskommelsen om avtalstid?", "ask_iop"))
    cited = slots["cited_ids"]
    messages, _ = run(A.ActionShowSource(), tracker("visa källan", "show_source", slots={"cited_ids": cited}))
    custom = messages[0]["custom"]
    paragraph = runtime.engine.paragraph(cited[0]).paragraph
    assert custom["answered"] is True and custom["citations"][0]["paragraph_id"] == cited[0]
    assert custom["citations"][0]["text"] == paragraph.text
    assert paragraph.text[:60] in messages[0]["text"].replace("\n", " ")


def test_show_source_by_number_and_out_of_range(runtime):
    _, slots = run(A.ActionAnswer(), tracker("upphandling", "ask_question"))
    cited = slots["cited_ids"]
    messages, _ = run(A.ActionShowSource(), tracker(f"visa källa {len(cited)}", "show_source",
                                                    slots={"cited_ids": cited}))
    assert messages[0]["custom"]["citations"][0]["paragraph_id"] == cited[-1]
    messages, _ = run(A.ActionShowSource(), tracker("visa källa 9", "show_source", slots={"cited_ids": cited}))
    assert "ingen källa [9]" in messages[0]["text"]


def test_changed_question_swaps_the_entity_of_the_same_type():
    previous = "Kan en stiftelse ingå IOP?"
    old = [{"entity": "org_kind", "start": 7, "end": 16, "value": "stiftelse"}]
    message = "och om vi är en ideell förening?"
    new = [{"entity": "org_kind", "start": 16, "end": 31, "value": "ideell_forening"}]
    assert A.changed_question(previous, old, message, new) == "Kan en ideell förening ingå IOP?"


def test_changed_question_leaves_out_the_greeting_and_situation_of_the_previous_message():
    """"what about services?" after "Hi, I'm an advisor at Coompanion helping a client. What is reserved
    procurement?" searched (and showed) the greeting and the introduction too."""
    previous = "Hi, I'm an advisor at Coompanion helping a client. What is reserved procurement?"
    assert A.changed_question(previous, [], "what about services?", []) == "What is reserved procurement – services?"
    # A sentence holding the swapped detail stays: it is the condition the question depends on.
    previous = "Hej! Vi är en stiftelse i Gävle. Kan vi teckna IOP med kommunen?"
    old = [{"entity": "org_kind", "start": previous.index("stiftelse"), "end": previous.index("stiftelse") + 9}]
    message = "och om vi är en ideell förening?"
    new = [{"entity": "org_kind", "start": message.index("ideell"), "end": len(message) - 1}]
    assert A.changed_question(previous, old, message, new) == "Vi är en ideell förening i Gävle. Kan vi teckna IOP med kommunen?"
    # Without a question sentence nothing is left out.
    assert A.changed_question("Berätta om IOP. Vi är en stiftelse", [], "och för regioner?", []) == (
        "Berätta om IOP. Vi är en stiftelse – regioner?")


def test_changed_question_adds_a_detail_the_question_lacked():
    assert A.changed_question("Vad är IOP?", [], "och om det gäller en region?", []) == "Vad är IOP – en region?"
    new = [{"entity": "buyer_kind", "start": 11, "end": 17, "value": "region"}]
    assert A.changed_question("Vad är IOP?", [], "och för en region då?", new) == "Vad är IOP – region?"


def test_change_detail_re_asks_with_the_new_detail(runtime):
    first = tracker("Får en upphandlande myndighet reservera rätten att delta för sociala företag?", "ask_reserved")
    _, slots = run(A.ActionAnswer(), first)
    messages, new_slots = run(A.ActionChangeDetail(), tracker(
        "och om det gäller ett ramavtal?", "change_detail", slots=slots, events=first.events))
    assert messages[0]["text"].startswith("Jag sökte på: ”Får en upphandlande myndighet")
    assert "ramavtal" in new_slots["last_question"]
    assert messages[0]["custom"]["answered"] is True


def test_feedback_is_stored_with_the_question_and_citations(runtime):
    messages, _ = run(A.ActionFeedback(), tracker("👎", "feedback_bad", slots={
        "last_question": "Vad är IOP?", "cited_ids": ["iop-1", "iop-2"]}))
    assert "sparat" in messages[0]["text"]
    [row] = runtime.inbox.feedback()
    assert (row.rating, row.question, row.paragraph_ids) == ("bad", "Vad är IOP?", ["iop-1", "iop-2"])
    assert row.reason is None


def test_a_rating_with_nothing_asked_yet_is_not_stored(runtime):
    # "sup" as a first message was read as feedback_good (0.56): thanked "vad bra att det hjälpte" and stored
    # as a rating of no question in the staff inbox.
    messages, _ = run(A.ActionFeedback(), tracker("👍", "feedback_good"))
    assert messages[0]["text"].startswith("Okej! Vad vill du veta?")
    messages, _ = run(A.ActionFeedback(), tracker("sup", "feedback_good"))
    assert "hjälpte" not in messages[0]["text"] and "sparat" not in messages[0]["text"]
    greeted = [{"event": "user", "text": "Hej", "parse_data": {"intent": {"name": "greet"}}}]
    messages, _ = run(A.ActionFeedback(), tracker("👍", "feedback_good", events=greeted))  # a greeting is no answer
    assert messages[0]["text"].startswith("Okej! Vad vill du veta?")
    assert runtime.inbox.feedback() == []
    # A rating button (a payload) is a rating whatever it was under.
    messages, _ = run(A.ActionFeedback(), tracker("/feedback_good", "feedback_good"))
    assert "hjälpte" in messages[0]["text"] and len(runtime.inbox.feedback()) == 1
    # After a question, a typed 👍 is a rating of it.
    run(A.ActionFeedback(), tracker("👍", "feedback_good", slots={"last_question": "Vad är IOP?"}))
    assert [r.question for r in runtime.inbox.feedback()] == [None, "Vad är IOP?"]


@pytest.mark.parametrize("reason,stored", [("outdated", "outdated"), ("wrong_source", "wrong_source"),
                                           ("<script>", None), (["x"], None)])
def test_feedback_keeps_the_web_chats_reason_for_a_thumbs_down(runtime, reason, stored):
    # the rated answer is in the conversation (the question and paragraphs are checked against it)
    asked = [{"event": "user", "text": "Vad är IOP?"},
             {"event": "bot", "text": "IOP är …", "data": {"custom": {
                 "answered": True, "coverage": "full", "missing": [], "language": "sv", "text": "IOP är …",
                 "body": "IOP är …", "citations": [{"number": 1, "paragraph_id": "iop-1"}]}}}]
    t = tracker("/feedback_bad", "feedback_bad", events=asked)
    t.latest_message["metadata"] = {"feedback_for": {"question": "Vad är IOP?", "paragraph_ids": ["iop-1"],
                                                     "reason": reason}}
    run(A.ActionFeedback(), t)
    [row] = runtime.inbox.feedback()
    assert (row.rating, row.question, row.paragraph_ids, row.reason) == ("bad", "Vad är IOP?", ["iop-1"], stored)


def test_feedback_counts_against_the_web_chat_client_over_its_conversations(runtime):
    """The channel's client tag (metadata) reaches the inbox: a client rating from new conversations
    is stopped at its own limit, and is still thanked."""
    from dataclasses import replace as with_limits

    runtime.__dict__["inbox"] = Inbox(runtime.settings.inbox_db,
                                      with_limits(runtime.settings.inbox_limits(), feedback_per_client_hour=2))
    for n in range(3):
        t = tracker("/feedback_bad", "feedback_bad", slots={"last_question": "Vad är IOP?", "cited_ids": ["iop-1"]})
        t.sender_id = f"web:{n}"
        t.latest_message["metadata"] = {"client": "tag-a"}
        messages, _ = run(A.ActionFeedback(), t)
        assert messages and messages[0]["text"]  # thanked either way
    assert [f.sender_id for f in runtime.inbox.feedback()] == ["web:0", "web:1"]


def test_unanswered_questions_count_against_the_web_chat_client_over_its_conversations(runtime):
    from dataclasses import replace as with_limits

    runtime.__dict__["inbox"] = Inbox(runtime.settings.inbox_db,
                                      with_limits(runtime.settings.inbox_limits(), unanswered_per_client_hour=1))
    for n, client in enumerate(["tag-a", "tag-a", "tag-b"]):
        t = tracker("Vem vann fotbolls-VM i Qatar?", "nlu_fallback", 0.2)
        t.sender_id = f"web:{n}"
        t.latest_message["metadata"] = {"client": client}
        messages, _ = run(A.ActionAnswer(), t)
        assert messages[0]["custom"]["coverage"] == "none"  # answered (declined) either way
    assert [u.sender_id for u in runtime.inbox.unanswered()] == ["web:0", "web:2"]


def test_feedback_takes_its_question_from_the_tracker_not_from_the_client(runtime):
    def answer_event(text, ids):
        custom = {"answered": True, "coverage": "full", "missing": [], "language": "sv", "text": text, "body": text,
                  "citations": [{"number": n + 1, "paragraph_id": i} for n, i in enumerate(ids)]}
        return {"event": "bot", "text": text, "data": {"custom": custom}}

    history = [{"event": "user", "text": "Vad är IOP?"}, answer_event("IOP är …", ["iop-1", "iop-2"]),
               {"event": "user", "text": "Vad är LOU?"}, answer_event("LOU är …", ["lou-1"])]

    def rate(metadata):
        latest = {"text": "/feedback_bad", "intent": {"name": "feedback_bad", "confidence": 1.0}, "entities": [],
                  "metadata": metadata}
        slots = {"language": "sv", "last_question": "Vad är LOU?", "cited_ids": ["lou-1"]}
        t = Tracker("web:abc", slots, latest, [*history, {"event": "user", "text": "/feedback_bad",
                                                          "parse_data": latest, "metadata": metadata}],
                    False, None, {}, "action_listen")
        run(A.ActionFeedback(), t)
        row = runtime.inbox.feedback()[-1]  # the newest
        return row.question, row.paragraph_ids

    # A made-up question and paragraphs from the client: the conversation's last question and its citations.
    assert rate({"feedback_for": {"question": '=HYPERLINK("http://evil.example")', "paragraph_ids": ["x-1"]}}) == (
        "Vad är LOU?", ["lou-1"])
    # The web chat's 👎 on the earlier answer: its question is the user's own, its paragraphs were cited.
    assert rate({"feedback_for": {"question": "Vad är IOP?", "paragraph_ids": ["iop-2", "evil-9"]}}) == (
        "Vad är IOP?", ["iop-2"])
    assert rate({}) == ("Vad är LOU?", ["lou-1"])
    assert rate({"feedback_for": "nonsense"}) == ("Vad är LOU?", ["lou-1"])


# -- thresholds ------------------------------------------------------------------------------------
def test_threshold_form_validates_the_amount(runtime):
    form = A.ValidateThresholdForm()
    dispatcher = CollectingDispatcher()
    t = tracker("ungefär 1,2 miljoner", "inform", active_loop="threshold_form")
    assert asyncio.run(form.validate_amount("1,2 miljoner", dispatcher, t, {})) == {"amount": 1_200_000.0}
    # The NLU tagged "500 000" of "1 500 000" as the amount: the message's own number counts.
    for text in ("1 500 000", "2 300 000", "12 000 000"):
        t = tracker(text, "inform", active_loop="threshold_form")
        assert asyncio.run(form.validate_amount(text[2:], dispatcher, t, {})) == {"amount": float(text.replace(" ", ""))}
    t = tracker("/check_amount", "check_amount", active_loop="threshold_form")  # from the button: the slot's value
    assert asyncio.run(form.validate_amount(650_000.0, dispatcher, t, {})) == {"amount": 650_000.0}
    t = tracker("vet inte", "inform", active_loop="threshold_form")
    assert asyncio.run(form.validate_amount("vet inte", dispatcher, t, {})) == {"amount": None}
    assert "belopp" in dispatcher.messages[-1]["text"]
    assert asyncio.run(form.validate_purchase_kind("det är sociala tjänster", dispatcher, t, {})) == {
        "purchase_kind": "bilaga2"}
    assert asyncio.run(form.validate_buyer_kind("kommunen", dispatcher, t, {})) == {"buyer_kind": "kommun"}


@pytest.mark.parametrize("text", ["ok kan jag prata med nån", "kan nån kontakta mig", "ring mig istället",
                                  "Ja, prata med en person", "can someone contact me?", "kan du ringa mig?",
                                  "i want talk with human", "i need help from a real human",
                                  "is there a person I can ask", "human", "Människa!"])
def test_a_request_for_a_person_starts_the_hand_over_whatever_the_nlu_read(runtime, text):
    """These were read as questions, searched, and answered "not in the documents"."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(A.ActionAnswer().run(dispatcher, tracker(text, "ask_question"), {}))
    assert not dispatcher.messages[0]["custom"] and "person" in dispatcher.messages[0]["text"]  # consent, no answer
    assert {"event": "followup", "name": "human_form", "timestamp": None} in events
    assert {"event": "followup", "name": "action_listen", "timestamp": None} not in events
    # An explicit check of an amount starts the check the same way, whatever the NLU read.
    events = asyncio.run(A.ActionAnswer().run(CollectingDispatcher(), tracker("kolla 1 500 000 kr", "nlu_fallback"), {}))
    assert {"event": "followup", "name": "threshold_form", "timestamp": None} in events
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"} == {"threshold_check": True,
                                                                               "amount": 1_500_000.0}
    # A refusal or anything after "ring mig" is no request (the review found "nej, ring mig inte" starting it).
    for text in ("nej, ring mig inte", "ok, kontakta mig inte", "call me Anna", "email me the answer",
                 "finns det en person som ansvarar för IOP på kommunen?", "human rights in procurement?"):
        assert not A.explicit_request(text, A._HUMAN_REQUEST), text
    # Read as a greeting, a request for a person is one all the same.
    events = asyncio.run(A.ActionSmallTalk().run(CollectingDispatcher(), tracker("hej kan nån kontakta mig", "greet"), {}))
    assert {"event": "followup", "name": "human_form", "timestamp": None} in events
    # A question that mentions someone to talk to is still answered.
    messages, _ = run(A.ActionAnswer(), tracker("vem ska jag prata med på kommunen om IOP?", "ask_question"))
    assert messages[0]["custom"].get("coverage")


THRESHOLD_DOMAIN = {"forms": {"threshold_form": {"required_slots": ["amount", "purchase_kind", "buyer_kind"]}}}


@pytest.mark.parametrize("text", ["avbryt", "Avbryt!", "cancel", "sluta", "glöm det", "stop"])
def test_the_amount_check_is_cancelled_by_an_explicit_cancel(runtime, text):
    """"avbryt" was taken as the answer: asked again at the amount (a loop with no way out but "nej"), and
    at the buyer it completed the check, which compared the amount with the limits."""
    form = A.ValidateThresholdForm()
    t = tracker(text, "inform", slots={"requested_slot": "buyer_kind", "amount": 1_500_000.0,
                                       "purchase_kind": "bilaga2"}, active_loop="threshold_form")
    t.events.append({"event": "slot", "name": "buyer_kind", "value": text, "timestamp": None})
    dispatcher = CollectingDispatcher()
    events = asyncio.run(form.run(dispatcher, t, THRESHOLD_DOMAIN))
    assert [m["response"] for m in dispatcher.messages] == ["utter_cancelled"]
    assert {"event": "active_loop", "name": None, "timestamp": None} in events
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert slots == {"amount": None, "purchase_kind": None, "buyer_kind": None, "requested_slot": None}
    # ... and the check that the rules run after the form compares nothing.
    messages, _ = run(A.ActionCheckThreshold(), tracker(text, "inform", slots=slots))
    assert messages == []


def test_a_question_typed_in_the_amount_check_is_answered_and_the_check_asks_again(runtime):
    """The question was read as the buyer ("region") and the check compared the amount for a region."""
    form = A.ValidateThresholdForm()
    question = "vänta, vad är skillnaden mellan en kommun och en region här?"
    before = [{"event": "slot", "name": "amount", "value": 900_000.0, "timestamp": None},
              {"event": "slot", "name": "purchase_kind", "value": "tjanster", "timestamp": None}]
    t = tracker(question, "ask_question", events=before, active_loop="threshold_form",
                slots={"requested_slot": "buyer_kind", "amount": 900_000.0, "purchase_kind": "tjanster",
                       "buyer_kind": "region"})
    t.events.append({"event": "slot", "name": "buyer_kind", "value": "region", "timestamp": None})
    dispatcher = CollectingDispatcher()
    events = asyncio.run(form.run(dispatcher, t, THRESHOLD_DOMAIN))
    assert len(dispatcher.messages) == 1 and "coverage" in dispatcher.messages[0]["custom"]  # an answer
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert slots["buyer_kind"] is None and "amount" not in slots  # asked again; the amount stays
    assert not [e for e in events if e.get("event") in ("followup", "active_loop")]  # the check goes on
    # A detail, even an unsure or chatty one, is an answer ("var" is also "was"; "kan vara" is no question).
    for detail in ("en kommun?", "tjänster?", "ca 1,5 miljoner?", "det är en kommun", "1 500 000",
                   "det var 500 000 kr", "budgeten var 2 miljoner", "kan vara tjänster", "ska köpa varor",
                   "varor, vad annars?", "kan du kolla 700 000 kr?"):
        assert not A.question_in_form(detail), detail
    for asked in ("vad är IOP?", "var ligger gränsen?", "kan vi reservera den för sociala företag?"):
        assert A.question_in_form(asked), asked
    # A request for a person typed in the check ends it and starts the hand-over.
    t = tracker("kan jag prata med en person?", "ask_question", active_loop="threshold_form",
                slots={"requested_slot": "amount"})
    dispatcher = CollectingDispatcher()
    events = asyncio.run(form.run(dispatcher, t, THRESHOLD_DOMAIN))
    assert {"event": "active_loop", "name": None, "timestamp": None} in events
    assert {"event": "followup", "name": "human_form", "timestamp": None} in events
    assert "person" in dispatcher.messages[0]["text"]


def test_a_yearly_amount_is_checked_as_written_and_says_the_documents_do_not_say_how_it_counts(runtime):
    """"check 300 000 kr per year for 3 years" was called "under the direct award limit" with no word on it."""
    events = [{"event": "user", "text": "check 300 000 kr per year for 3 years", "parse_data": {}}]
    slots = {"amount": 300_000.0, "purchase_kind": "tjanster", "buyer_kind": "kommun", "language": "en"}
    messages, _ = run(A.ActionCheckThreshold(), tracker("municipality", "inform", slots=slots, events=events))
    custom = messages[0]["custom"]
    assert messages[0]["text"].startswith("You gave the amount per year") and custom["coverage"] == "partial"
    messages, _ = run(A.ActionCheckThreshold(), tracker("municipality", "inform", slots=slots, events=[
        {"event": "user", "text": "check 300 000 kr", "parse_data": {}}]))
    assert "per year" not in messages[0]["text"] and messages[0]["custom"]["coverage"] == "full"
    # Typed in English: the Annex 2 kind and a sum in millions.
    assert A._keyword_value("Social and other specific services", A._PURCHASE_WORDS) == "bilaga2"
    form, dispatcher = A.ValidateThresholdForm(), CollectingDispatcher()
    t = tracker("Social and other specific services", "inform", active_loop="threshold_form")
    assert asyncio.run(form.validate_purchase_kind("tjanster", dispatcher, t, {})) == {"purchase_kind": "bilaga2"}
    from assistant.thresholds import parse_amount

    assert parse_amount("check 1.2 million kronor") == 1_200_000 and parse_amount("2 million SEK") == 2_000_000


def test_threshold_check_shows_each_conflicting_figure_with_source_and_year(runtime):
    t = tracker("tjänster", "inform", slots={"amount": 650_000.0, "purchase_kind": "tjanster", "buyer_kind": "kommun"})
    messages, slots = run(A.ActionCheckThreshold(), t)
    text, custom = messages[0]["text"], messages[0]["custom"]
    assert "över direktupphandlingsgränsen på 586 907 kr" in text  # the 2019 document
    assert custom["coverage"] == "full"
    assert "under direktupphandlingsgränsen 2025 på 700 000 kr" in text  # the 2025 document
    assert "olika belopp" in text and "vartannat år" in text
    assert "(2019)" in text and "(2025)" in text
    assert {c["doc_id"] for c in custom["citations"]} == {"troskel", "nya"}
    assert custom["answered"] is True and slots["amount"] is None
    assert "Källor:" in text and "Källor:" not in custom["body"] and text.startswith(custom["body"])
    # The newer figure comes first.
    assert text.index("700 000 kr") < text.index("586 907 kr")


@pytest.mark.parametrize("amount, side", [(586_906.0, "under"), (586_907.0, "exakt på"), (586_908.0, "över")])
def test_an_amount_at_the_limit_is_not_under_it(runtime, amount, side):
    """The 2019 text allows direct award *under* 586 907 kr: that amount itself is not under it."""
    t = tracker("x", "inform", slots={"amount": amount, "purchase_kind": "varor", "buyer_kind": "kommun"})
    messages, _ = run(A.ActionCheckThreshold(), t)
    assert f"{side} direktupphandlingsgränsen på 586 907 kr" in messages[0]["text"]


def test_threshold_check_for_bilaga2_uses_its_own_limits(runtime):
    t = tracker("x", "inform", slots={"amount": 8_300_000.0, "purchase_kind": "bilaga2", "buyer_kind": "region"},)
    messages, _ = run(A.ActionCheckThreshold(), t)
    text = messages[0]["text"]
    assert "under direktupphandlingsgränsen 2026 på 8 513 250 kr" in text
    assert "över direktupphandlingsgränsen 2025 på 8 109 450 kr" in text
    assert "586 907" not in text and "inga särskilda belopp för en region" in text


# -- a person --------------------------------------------------------------------------------------
def test_hand_over_starts_with_the_consent_text_and_the_last_question(runtime):
    messages, slots = run(A.ActionStartHandoff(), tracker("ja", "affirm", slots={
        "last_question": "Vad är IOP?", "handoff_confirm": "send", "handoff_cancelled": True}))
    [consent] = messages
    text = consent["text"]
    # What is stored, who reads it, how long, when to expect a reply (the settings' texts).
    for part in ("din fråga", "den här konversationen", "kontaktuppgiften", "personalen på navet eller kommunen",
                 "högst 12 månader", "inom två arbetsdagar", "avbryta"):
        assert part in text, part
    assert slots == {"handoff_question": "Vad är IOP?", "handoff_contact": None, "handoff_confirm": None,
                     "handoff_cancelled": None, "handoff_contact_offer": None}


def test_consent_texts_come_from_the_settings(runtime, monkeypatch):
    monkeypatch.setattr(runtime.settings, "handoff_reply_time_en", "within one hour")
    monkeypatch.setattr(runtime.settings, "handoff_staff_en", "the Falun hub")
    messages, _ = run(A.ActionRouteHuman(), tracker("talk to a human", "request_human", slots={"language": "en"}))
    assert "within one hour" in messages[0]["text"] and "the Falun hub" in messages[0]["text"]
    assert "Swedish" not in messages[0]["text"] and "konversation" not in messages[0]["text"]


def validate(form, slot: str, value: str, requested: str, lang: str = "sv") -> tuple[dict, list[dict]]:
    dispatcher = CollectingDispatcher()
    t = tracker(value, "inform", active_loop="human_form", slots={"requested_slot": requested, "language": lang})
    return asyncio.run(getattr(form, f"validate_{slot}")(value, dispatcher, t, {})), dispatcher.messages


def test_a_typo_is_asked_again_and_only_an_explicit_cancel_cancels(runtime):
    form = A.ValidateHumanForm()
    for typo in ("inte en adress", "jon@", "070-12", "nej", "no", "vet inte"):
        result, _ = validate(form, "handoff_contact", typo, "handoff_contact")
        assert result == {"handoff_contact": None}, typo  # asked again, not cancelled
    assert validate(form, "handoff_contact", "mejla anna@example.se tack", "handoff_contact")[0] == {
        "handoff_contact": "anna@example.se"}
    assert validate(form, "handoff_contact", "070-123 45 67", "handoff_contact")[0] == {
        "handoff_contact": "070-123 45 67"}
    for cancel in ("avbryt", "Avbryt", "cancel", "Cancel!", "/deny", "glöm det"):
        result, _ = validate(form, "handoff_contact", cancel, "handoff_contact")
        assert result == {"handoff_contact": None, "handoff_cancelled": True, "requested_slot": None}, cancel
        result, _ = validate(form, "handoff_question", cancel, "handoff_question")
        assert result["handoff_cancelled"] is True and result["requested_slot"] is None


def test_the_re_ask_explains_what_is_expected_and_offers_cancel(runtime):
    ask = A.ActionAskHandoffContact()
    first, _ = run(ask, tracker("/request_human", "request_human", slots={"requested_slot": None}))
    again, _ = run(ask, tracker("jon@", "inform", slots={"requested_slot": "handoff_contact"}))
    english, _ = run(ask, tracker("jon@", "inform", slots={"requested_slot": "handoff_contact", "language": "en"}))
    assert first[0]["text"].startswith("Hur når vi dig?")
    assert "namn@exempel.se" in again[0]["text"] and "070-123 45 67" in again[0]["text"]
    assert "inte skickat något" in again[0]["text"]
    assert again[0]["buttons"] == [{"title": "Avbryt", "payload": "Avbryt"}]
    assert "name@example.com" in english[0]["text"] and english[0]["buttons"] == [{"title": "Cancel",
                                                                                    "payload": "Cancel"}]


def test_the_summary_shows_what_is_sent_with_its_choices(runtime):
    messages, _ = run(A.ActionAskHandoffConfirm(), tracker("anna@example.se", "inform", slots={
        "handoff_question": "Hur skriver vi ett IOP-avtal?", "handoff_contact": "anna@example.se"}))
    text = messages[0]["text"]
    assert "Fråga: ”Hur skriver vi ett IOP-avtal?”" in text and "Kontakt: anna@example.se" in text
    assert "konversationen följer med" in text
    assert [b["title"] for b in messages[0]["buttons"]] == ["Skicka till personalen", "Ändra frågan",
                                                            "Ändra kontaktuppgiften", "Avbryt"]
    messages, _ = run(A.ActionAskHandoffConfirm(), tracker("anna@example.se", "inform", slots={
        "language": "en", "handoff_question": "How do we write an IOP agreement?", "handoff_contact": "anna@example.se"}))
    assert messages[0]["text"].startswith("This is what will be sent")
    assert [b["title"] for b in messages[0]["buttons"]] == ["Send to the staff", "Change the question",
                                                            "Change the contact", "Cancel"]


def test_the_summary_choices(runtime):
    form = A.ValidateHumanForm()
    confirm = "handoff_confirm"
    assert validate(form, confirm, "Skicka", confirm)[0] == {"handoff_confirm": "send"}
    assert validate(form, confirm, "Send", confirm, "en")[0] == {"handoff_confirm": "send"}
    assert validate(form, confirm, "ja", confirm)[0] == {"handoff_confirm": "send"}
    assert validate(form, confirm, "Ändra frågan", confirm)[0] == {"handoff_confirm": None, "handoff_question": None}
    assert validate(form, confirm, "Ändra kontaktuppgiften", confirm)[0] == {"handoff_confirm": None,
                                                                              "handoff_contact": None}
    assert validate(form, confirm, "Avbryt", confirm)[0]["handoff_cancelled"] is True
    # A new address written at the summary replaces the old one (and the summary is shown again).
    assert validate(form, confirm, "nej, det är bo@example.se", confirm)[0] == {"handoff_confirm": None,
                                                                                 "handoff_contact": "bo@example.se"}
    result, messages = validate(form, confirm, "hmm vet inte", confirm)
    assert result == {"handoff_confirm": None} and "inte skickat något" in messages[0]["text"]
    result, messages = validate(form, confirm, "nej", confirm, "en")  # "no" is not a cancel either
    assert result == {"handoff_confirm": None} and "not sent anything" in messages[0]["text"]
    # "nej förresten, ta min mejl istället: …" (six words with the address) was refused at the summary.
    assert validate(form, confirm, "nej förresten, ta min mejl istället: per@example.se", confirm)[0] == {
        "handoff_confirm": None, "handoff_contact": "per@example.se"}
    # When the form starts, its emptied slots are validated too: no "choose Send" before there is a summary.
    result, messages = validate(form, confirm, None, None)
    assert result == {"handoff_confirm": None} and messages == []


def test_handoff_is_stored_only_when_confirmed_and_then_called_sent(runtime):
    slots = {"last_question": "Hur skriver vi ett IOP-avtal?", "handoff_contact": "anna@example.se"}
    messages, events = run(A.ActionSubmitHandoff(), tracker("Avbryt", "deny", slots={**slots, "handoff_cancelled": True}))
    assert runtime.inbox.handoffs() == [] and "inget skickades" in messages[0]["text"]
    # Neither confirmed nor cancelled (the form ended some other way): nothing is stored or claimed either.
    messages, _ = run(A.ActionSubmitHandoff(), tracker("Skicka", "affirm", slots=slots))
    assert runtime.inbox.handoffs() == [] and "Skickat" not in messages[0]["text"]
    assert events == {"handoff_question": None, "handoff_contact": None, "handoff_confirm": None,
                      "handoff_cancelled": True}
    messages, events = run(A.ActionSubmitHandoff(), tracker("Skicka", "affirm", slots={
        **slots, "handoff_confirm": "send"}))
    [request] = runtime.inbox.handoffs()
    assert (request.question, request.contact, request.status) == ("Hur skriver vi ett IOP-avtal?",
                                                                  "anna@example.se", "open")
    text = messages[0]["text"]
    assert f"ärende {request.id}" in text and "inom två arbetsdagar" in text and "anna@example.se" in text
    assert events == {"handoff_question": None, "handoff_contact": None, "handoff_confirm": None,
                      "handoff_cancelled": None}


def test_hand_overs_count_against_the_web_chat_client_over_its_conversations(runtime):
    from dataclasses import replace as with_limits

    runtime.__dict__["inbox"] = Inbox(runtime.settings.inbox_db,
                                      with_limits(runtime.settings.inbox_limits(), handoffs_per_client_hour=1))
    slots = {"last_question": "Hur skriver vi ett IOP-avtal?", "handoff_contact": "anna@example.se",
             "handoff_confirm": "send"}
    texts = []
    for n in range(2):
        t = tracker("Skicka", "affirm", slots=slots)
        t.sender_id = f"web:{n}"
        t.latest_message["metadata"] = {"client": "tag-a"}
        messages, _ = run(A.ActionSubmitHandoff(), t)
        texts.append(messages[0]["text"])
    assert [r.sender_id for r in runtime.inbox.handoffs()] == ["web:0"]
    assert "Skickat" in texts[0] and "Skickat" not in texts[1]  # the second is told, not claimed sent


def test_english_hand_over_texts_stay_english(runtime):
    slots = {"language": "en", "last_question": "How do we write an IOP agreement?",
             "handoff_contact": "anna@example.se", "handoff_confirm": "send"}
    messages, _ = run(A.ActionSubmitHandoff(), tracker("Send", "affirm", slots=slots))
    assert messages[0]["text"].startswith("Sent.") and "within two working days" in messages[0]["text"]
    assert "ärende" not in messages[0]["text"]
    # The e-mail address's words ("example") do not switch a Swedish chat to English, nor the reverse.
    language = A.ValidateSlotMappings()
    assert asyncio.run(language.extract_language(CollectingDispatcher(), tracker(
        "anna.andersson@example.se", slots={"language": "sv"}), {})) == {"language": "sv"}
    assert asyncio.run(language.extract_language(CollectingDispatcher(), tracker(
        "anna@exempel.se", slots={"language": "en"}), {})) == {"language": "en"}
    # During the hand-over the language is kept ("yes" in a Swedish one stays Swedish).
    t = tracker("yes", active_loop="human_form", slots={"language": "sv"})
    assert asyncio.run(language.extract_language(CollectingDispatcher(), t, {})) == {}


def test_a_button_click_takes_the_pages_language_when_the_conversation_has_none(runtime):
    def click(slots=None, lang="en"):
        t = tracker("/request_human", "request_human", slots=slots)
        t.latest_message["metadata"] = {"lang": lang}
        return t

    language = A.ValidateSlotMappings()
    assert asyncio.run(language.extract_language(CollectingDispatcher(), click(), {})) == {"language": "en"}
    assert asyncio.run(language.extract_language(CollectingDispatcher(), click({"language": "sv"}), {})) == {}
    assert asyncio.run(language.extract_language(CollectingDispatcher(), click(lang="de"), {})) == {}
    messages, _ = run(A.ActionRouteHuman(), click())
    assert messages[0]["text"].startswith("I can pass your question on")
    messages, _ = run(A.ActionRouteHuman(), click({"language": "sv"}))  # the conversation's language wins
    assert messages[0]["text"].startswith("Jag kan skicka")


def test_a_bare_email_is_never_searched_as_a_question(runtime):
    # Whatever the NLU reads into a bare address, each action a typed message can reach answers it as
    # contact details: no search, no stored rating, no small talk, no "more results" or source.
    for action, intent in ((A.ActionAnswer(), "inform"), (A.ActionStartThresholdCheck(), "check_amount"),
                           (A.ActionChangeDetail(), "change_detail"), (A.ActionFeedback(), "feedback_bad"),
                           (A.ActionFeedback(), "feedback_good"), (A.ActionSmallTalk(), "greet"),
                           (A.ActionSmallTalk(), "thank"), (A.ActionMoreResults(), "more_results"),
                           (A.ActionShowSource(), "show_source")):
        messages, slots = run(action, tracker("anna@example.se", intent, slots={
            "handoff_cancelled": True, "last_question": "Vad är IOP?", "cited_ids": ["000-001"]}))
        [message] = messages
        assert "custom" not in message or not message["custom"], action.name()
        assert "avbröt förfrågan" in message["text"] and "inget har skickats" in message["text"]
        assert {"title": "Ja, prata med en person", "payload": "/request_human"} in message["buttons"]
        assert slots["handoff_contact_offer"] == "anna@example.se" and slots["answered"] is False
    messages, _ = run(A.ActionAnswer(), tracker("070-123 45 67", "inform", slots={"language": "en"}))
    assert "looks like contact details (070-123 45 67)" in messages[0]["text"]
    # Taking the offer starts the hand-over with that contact already filled in.
    _, slots = run(A.ActionStartHandoff(), tracker("/request_human", "request_human", slots={
        "handoff_contact_offer": "anna@example.se"}))
    assert slots["handoff_contact"] == "anna@example.se" and slots["handoff_contact_offer"] is None


def test_a_bare_ok_or_no_with_nothing_pending_is_acknowledged_not_searched(runtime, monkeypatch):
    # "ok", "jaha" or "nej" as a first message reach action_answer as Rasa's core fallback (no rule
    # covers affirm/deny with nothing pending): they got a search and "not in the documents".
    searched = []
    real = A.answer_off_loop
    monkeypatch.setattr(A, "answer_off_loop", lambda *a, **k: searched.append(a) or real(*a, **k))
    for text, intent in (("ok", "affirm"), ("OK!", "affirm"), ("Jaha.", "ask_question"), ("nej tack", "deny"),
                         ("mm", "nlu_fallback")):
        messages, slots = run(A.ActionAnswer(), tracker(text, intent))
        [message] = messages
        assert "Vad vill du veta?" in message["text"] and "ramavtal" in message["text"], text
        assert not message.get("custom") and slots == {}, text
    messages, _ = run(A.ActionAnswer(), tracker("nej", "deny", slots={"last_question": "Vad är IOP?"}))
    assert messages[0]["text"] == "Okej. Fråga gärna något annat när du vill."
    messages, _ = run(A.ActionAnswer(), tracker("okay", "affirm", slots={"language": "en"}))
    assert messages[0]["text"].startswith("OK! What would you like to know?")
    # Read as thanks or a greeting (the session-26 NLU read "ok" as thank: "Varsågod!"), the same; thanks stay thanks.
    for text, intent in (("ok", "thank"), ("jaha", "greet")):
        messages, _ = run(A.ActionSmallTalk(), tracker(text, intent))
        assert "Vad vill du veta?" in messages[0]["text"], text
    messages, _ = run(A.ActionSmallTalk(), tracker("tack", "thank"))
    assert messages[0]["response"] == "utter_thank"
    assert searched == []
    # Anything else in the message is a question.
    for text in ("Ja, vad är ett idéburet offentligt partnerskap?", "ok iop", "nej, reserverad upphandling"):
        messages, slots = run(A.ActionAnswer(), tracker(text, "affirm"))
        assert messages[0].get("custom") and "answered" in slots, text
    assert len(searched) == 3


# -- every message ---------------------------------------------------------------------------------
def test_language_slot_follows_the_user(runtime):
    action = A.ValidateSlotMappings()
    assert asyncio.run(action.extract_language(CollectingDispatcher(), tracker("What is a framework agreement?"),
                                               {})) == {"language": "en"}
    assert asyncio.run(action.extract_language(CollectingDispatcher(), tracker("ok", slots={"language": "en"}),
                                               {})) == {"language": "en"}
    assert asyncio.run(action.extract_language(CollectingDispatcher(), tracker("/request_human"), {})) == {}


def test_domain_and_actions_agree():
    """Every custom action the domain lists exists in the action package, and the other way round."""
    from rasa_sdk import Action
    from rasa_sdk.executor import ActionExecutor

    domain = yaml.safe_load((BOT_DIR / "domain.yml").read_text(encoding="utf-8"))
    implemented = {cls().name() for cls in vars(A).values()
                   if isinstance(cls, type) and issubclass(cls, Action) and cls.__module__ == A.__name__
                   and not inspect.isabstract(cls)}
    assert set(domain["actions"]) == implemented
    # ... and the action server registers exactly these: an abstract base (TypedMessageAction) is skipped,
    # a concrete class without a name would stop the server at start.
    executor = ActionExecutor()
    executor.register_package(A.__name__)
    assert set(executor.actions) == implemented
    for slot in ("last_question", "answered", "cited_ids", "shown_ids", "language"):
        assert slot in domain["slots"]


def test_inbox_keeps_rows_across_instances(tmp_path):
    path = tmp_path / "sub" / "inbox.sqlite3"
    Inbox(path).add_handoff("u", "fråga", "a@b.se", "sv")
    Inbox(path).add_unanswered("u", "väder?", "sv", 0.7, 1.2)
    assert [h.question for h in Inbox(path).handoffs("open")] == ["fråga"]
    assert Inbox(path).unanswered()[0].lexical_max == 1.2


def test_a_question_with_an_amount_is_answered_and_the_check_offered(runtime):
    action = A.ActionStartThresholdCheck()
    messages, slots = run(action, tracker("vi köper för 650 000 kr, krävs annonsering vid direktupphandling?", "check_amount"))
    assert slots["threshold_check"] is False
    assert messages[0]["custom"]["answered"] is True and messages[0]["custom"]["citations"]
    assert {"title": "Kolla ett belopp mot gränserna", "payload": "/check_amount"} in messages[0]["buttons"]
    messages, slots = run(action, tracker("Hur stort får ett köp vara innan det blir en vanlig upphandling?",
                                          "check_amount"))
    assert slots["threshold_check"] is False and messages[0]["custom"]["answered"] is True


def test_the_check_starts_on_an_explicit_request_and_takes_the_amount_along(runtime):
    action = A.ActionStartThresholdCheck()
    messages, slots = run(action, tracker("kolla ett belopp", "check_amount"))
    assert slots == {"threshold_check": True} and messages == []
    messages, slots = run(action, tracker("kolla 700 000 kr", "check_amount"))
    assert slots == {"threshold_check": True, "amount": 700_000.0} and messages == []
    messages, slots = run(action, tracker("/check_amount", "check_amount", slots={
        "last_question": "vi köper tjänster för 650 000 kr, måste vi annonsera?"}))
    assert slots == {"threshold_check": True, "amount": 650_000.0} and messages == []


def test_hand_over_starts_only_when_asked_for(runtime):
    action = A.ActionRouteHuman()
    sv, en = "Jag kan skicka din fråga vidare", "I can pass your question on"
    for request, consent in (("prata med en person", sv), ("kan jag få prata med en riktig människa?", sv),
                             ("talk to a human please", en), ("/request_human", sv),
                             ("I would like to talk to a person", en), ("jag skulle vilja prata med en person", sv)):
        messages, slots = run(action, tracker(request, "request_human"))
        assert slots["handoff_requested"] is True and slots["handoff_confirm"] is None, request
        assert [m["text"].startswith(consent) for m in messages] == [True], request
    messages, slots = run(action, tracker("vem ska jag prata med på kommunen om idéburet offentligt partnerskap?",
                                          "request_human"))
    assert slots["handoff_requested"] is False and messages[0]["custom"]["citations"]
    assert {"title": "Prata med en person", "payload": "/request_human"} in messages[0]["buttons"]


def test_a_long_message_read_as_a_changed_detail_is_answered_as_its_own_question(runtime):
    question = "Vad beskriver överenskommelsen i ett idéburet offentligt partnerskap om avtalstid och hur man kliver ur?"
    messages, slots = run(A.ActionChangeDetail(), tracker(question, "change_detail", slots={
        "last_question": "Får en upphandlande myndighet reservera rätten att delta?"}))
    assert slots["last_question"] == question and not messages[0]["text"].startswith("Jag sökte på")


def test_a_first_message_misread_as_a_follow_up_is_answered(runtime):
    question = "Vad beskriver överenskommelsen om avtalstid?"
    for action in (A.ActionMoreResults(), A.ActionShowSource()):
        messages, slots = run(action, tracker(question, "more_results", 0.5))
        assert messages[0]["custom"]["answered"] is True
        assert slots["last_question"] == question
    # ... but "fler" or "visa källan" as a first message has nothing to page or show (it was searched and
    # answered "not in the documents").
    for action, command in ((A.ActionMoreResults(), "fler"), (A.ActionShowSource(), "visa källan"),
                            (A.ActionShowSource(), "Visa källa 2!"), (A.ActionMoreResults(), "more please")):
        messages, slots = run(action, tracker(command, "more_results", 0.9))
        assert messages[0]["text"].startswith(("Ställ en fråga först", "Ask me a question first")), command
        assert "custom" not in messages[0] or not messages[0]["custom"]
        assert "last_question" not in slots
    assert not A.bare_command("visa källan för IOP-avtal") and not A.bare_command("fler " * 30)


def test_a_question_read_as_inform_is_answered_not_a_form_prompt(runtime):
    action = A.ActionStartThresholdCheck()
    messages, slots = run(action, tracker("Får idéburna organisationer ingå ett partnerskap med kommunen?", "inform"))
    assert slots["threshold_check"] is False and messages[0]["custom"]["citations"]
    for detail in ("700 000 kr", "tjänster", "en kommun"):
        messages, slots = run(action, tracker(detail, "inform"))
        assert slots["threshold_check"] is True and messages == [], detail


def test_a_question_that_mentions_talking_to_someone_offers_a_person(runtime):
    messages, _ = run(A.ActionAnswer(), tracker("Vem ska jag prata med om ett idéburet offentligt partnerskap?", "ask_iop"))
    assert messages[0]["custom"]["citations"]
    assert {"title": "Prata med en person", "payload": "/request_human"} in messages[0]["buttons"]


# -- small talk that asks something, and details that are no amount ---------------------------------
@pytest.mark.parametrize("text, asks", [
    ("Hej!", False), ("Hej, hur mår du?", False), ("Tack så mycket för hjälpen!", False), ("hejdå", False),
    ("Tack! Hur länge får ett IOP pågå enligt dokumenten?", True),
    ("We lost a tender. Can we ask to see the winning bid and the evaluation?", True),
    ("Hello, I run a small cooperative in Mora and we wonder about reserved contracts", True),
    ("/greet", False),
    # short: a question naming a topic (an acronym or a long word) is a question whatever the NLU says
    ("vad är ESPD", True), ("Vad är ESPD, tack", True), ("Hej, vad är IOP?", True), ("Tack! Vad är ESPD?", True),
    ("what is a framework agreement", True), ("direktupphandlingsgräns?", True), ("kan du förklara IOP", True),
    ("could you explain reserved contracts", True), ("IOP, vad är det?", True),
    ("vad är en juridisk person?", True),
    # ... but not one that speaks to the assistant, an exclamation, or one that names nothing
    ("vad är du", False), ("vem är du?", False), ("are you a bot?", False), ("is this an AI?", False),
    ("hur funkar den här chatten", False), ("hallå, är det någon där?", False), ("är det en person som svarar?", False), ("kan du förklara dig", False),
    ("vad bra!", False), ("how nice", False), ("what a relief", False), ("vad?", False), ("hur då?", False),
    ("ok?", False), ("Hej, hur då?", False), ("tack, vad?", False), ("?", False), ("vad ?", False),
    # everyday greetings that ask nothing about the documents
    ("hur är läget?", False), ("Tjena, läget?", False), ("hur går det?", False), ("allt bra?", False),
    ("vad händer?", False), ("what's up?", False), ("how's it going?", False), ("what's new?", False),
    ("god morgon, hur står det till?", False), ("Vad snabbt!", False), ("kan du berätta ett skämt?", False),
    ("vad betyder det?", False),
])
def test_small_talk_that_asks_something_is_a_question(text, asks):
    assert A.asks_something(text) is asks


@pytest.mark.parametrize("text, intent, asks", [
    ("what kind of questions can you answer", "bot_challenge", False),
    ("vilka frågor kan jag ställa till dig", "bot_challenge", False),
    ("Kan du förklara för mig vad ett ramavtal är?", "bot_challenge", True),
    ("Tack! Kan du säga hur länge ett IOP får pågå?", "thank", True),
])
def test_a_question_to_the_assistant_read_as_bot_challenge_stays_small_talk(text, intent, asks):
    assert A.asks_something(text, intent) is asks


def test_a_short_question_read_as_bot_challenge_is_answered(runtime):
    messages, slots = run(A.ActionSmallTalk(), tracker("vad är ett idéburet offentligt partnerskap", "bot_challenge"))
    assert "coverage" in messages[0]["custom"] and slots["last_question"]
    messages, slots = run(A.ActionSmallTalk(), tracker("vad är du?", "bot_challenge"))
    assert messages[0]["response"] == "utter_iamabot" and slots == {}


def test_a_goodbye_that_asks_something_is_answered_and_a_plain_one_is_not(runtime):
    question = "Thanks, bye! One more thing though: what is an idéburet offentligt partnerskap?"
    messages, slots = run(A.ActionSmallTalk(), tracker(question, "goodbye"))
    assert messages[0]["custom"]["answered"] is True and slots["last_question"] == question
    messages, slots = run(A.ActionSmallTalk(), tracker("Tack, hej då!", "goodbye"))
    assert messages == [{"response": "utter_goodbye", **{k: v for k, v in messages[0].items() if k != "response"}}]
    assert slots == {}


def test_a_bare_detail_starts_the_amount_check_only_when_the_check_asks_for_it(runtime):
    _, slots = run(A.ActionStartThresholdCheck(), tracker("700 000 kr", "inform"))
    assert slots["threshold_check"] is True and slots["amount"] == 700_000.0
    messages, slots = run(A.ActionStartThresholdCheck(), tracker("idéburen organisation definition", "inform"))
    assert slots["threshold_check"] is False and messages[0]["custom"]["answered"] in (True, False)


def test_a_thumbs_down_offers_a_person_as_a_button(runtime):
    t = tracker("/feedback_bad", "feedback_bad", slots={"last_question": "Vad är IOP?", "cited_ids": ["iop-1"]})
    messages, _ = run(A.ActionFeedback(), t)
    assert messages[0]["buttons"] == [{"title": "Prata med en person", "payload": "/request_human"}]
    t = tracker("/feedback_good", "feedback_good", slots={"last_question": "Vad är IOP?", "language": "en"})
    messages, _ = run(A.ActionFeedback(), t)
    assert messages[0]["buttons"] == [] and "glad" in messages[0]["text"]
