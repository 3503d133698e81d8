"""Rasa custom actions: the thin rasa-sdk adapter. Each reads the tracker, calls :mod:`assistant`
and dispatches.

Every message carrying an answer (or an honest "the documents do not cover this") has ``custom`` of
the type :class:`assistant.payload.AnswerPayload`. A message that asks something is always answered
first: the amount check and the hand-over start only when the user asks for them (a button, or a
short unambiguous request); otherwise the answer offers them as buttons.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker, ValidationAction
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from assistant import handoff, texts
from assistant.answer import Answer, Citation, message
from assistant.inbox import InboxLimited
from assistant.language import LANGUAGES, SWEDISH, detect_language
from assistant.payload import is_answer
from assistant.runtime import get_runtime
from assistant.thresholds import BUYER_KINDS, PURCHASE_KINDS, assess, describe, parse_amount, per_year
from index.paragraphs import sentence_units
from index.query import ACRONYMS

log = logging.getLogger(__name__)

# Intents that ask about the assistant's topics; with this confidence the NLU's word hedges a
# "none" verdict into "partial" (see Answerer.answer). Out-of-scope verdicts never decline on their own.
# The bar: of the 60 off-topic and small-talk questions in tests/data, the NLU (with the e5 sentence
# feature) gives a domain intent to two, at 0.91 (hedged either way) and 0.42; 0.5 hedges no more of them.
DOMAIN_INTENTS = frozenset({"ask_question", "ask_iop", "ask_reserved", "ask_framework", "ask_threshold", "check_amount"})
DOMAIN_CONFIDENCE = 0.5
STANDALONE_WORDS = 9  # a "change detail" message this long is a question of its own
ENTITY_TYPES = ("org_kind", "purchase_kind", "buyer_kind", "amount", "year")


# -- tracker helpers -----------------------------------------------------------------------------
def domain_hint(tracker: Tracker) -> bool:
    intent = tracker.latest_message.get("intent") or {}
    return intent.get("name") in DOMAIN_INTENTS and float(intent.get("confidence") or 0.0) >= DOMAIN_CONFIDENCE


def page_language(tracker: Tracker) -> str | None:
    """The web chat page's interface language sent with the message ("sv"/"en"; guard.allowed_metadata)."""
    lang = (tracker.latest_message.get("metadata") or {}).get("lang")
    return lang if lang in LANGUAGES else None


def language(tracker: Tracker) -> str:
    text = tracker.latest_message.get("text") or ""
    if tracker.get_slot("language") or text.startswith("/"):  # a button payload ("/request_human") is no English
        return tracker.get_slot("language") or page_language(tracker) or SWEDISH
    return detect_language(handoff.without_contacts(text), page_language(tracker))


# A short, unambiguous request (not a question about something else): "kolla ett belopp",
# "prata med en person", "talk to a human". Bounded patterns on a length-capped text.
EXPLICIT_CHARS = 80
BARE_DETAIL_WORDS = 4
_CHECK_REQUEST = re.compile(
    r"^\s{0,5}(?:(?:kan|could|can) (?:du|you) |please |snälla |jag vill |i want to |i'd like to )?"
    r"(?:kolla|kontrollera|jämför|jamfor|räkna|rakna|testa|check|compare|test)\b", re.IGNORECASE)
# An explicit request for a person, after an "ok", "ja" or "hej" if any: "prata med en person", "kan jag prata
# med nån", "Ja, prata med en person" (the button's title typed), "kan nån kontakta mig", "ring mig istället".
_HUMAN_REQUEST = re.compile(
    r"^\s{0,5}(?:(?:ok|okej|ja|jo|hej|nej|yes|hi|hello)[,.!]?\s{1,3})?(?:"
    r"(?:(?:kan|får|could|can|may) (?:jag|i) |jag vill (?:gärna )?|jag skulle vilja |i want (?:to )?|i'd like to "
    r"|i would like to |please |snälla |låt mig )?"
    r"(?:få |get to )?(?:prata|tala|snacka|chatta|talk|speak|chat)\s(?:med|with|to)\s(?:en |a |någon|nån|someone|somebody|)"
    r"\s{0,2}(?:person|människa|manniska|handläggare|rådgivare|human|real person|advisor|adviser|staff|någon|nån|someone"
    r"|somebody|)"
    r"|(?:(?:kan|skulle|could|can|will|would) (?:någon|nån|ni|du|en person|en rådgivare|someone|somebody|you|a person"
    r"|an advisor) )?(?:kontakta|ringa|ring|mejla|maila|contact|call|email|e-mail|phone) (?:mig|me)"
    # ... and nothing after it but "istället", "tillbaka", "tack" (not "inte", "the answer", a name)
    r"(?:\s{1,3}(?:istället|istallet|tillbaka|gärna|snälla|tack|instead|back|please|asap))?\s{0,3}[.!?]{0,3}\s{0,3}$"
    # "i need help from a real human", "is there a person I can ask", or the word alone ("human", "människa")
    r"|(?:(?:i need|jag behöver|jag vill ha) (?:help from|hjälp (?:av|från)) |(?:is there|finns det) )?"
    r"(?:a |an |any |en |någon |nån )?(?:real |riktig |levande )?"
    r"(?:human|agent|person|människa|manniska|handläggare|rådgivare|adviser|advisor)"
    r"(?: (?:i|jag) (?:can|could|kan) (?:ask|talk to|speak to|fråga|prata med))?"
    r"(?:\s{1,3}(?:please|tack|snälla))?\s{0,3}[.!?]{0,3}\s{0,3}$)",
    re.IGNORECASE)
_MENTIONS_PERSON = re.compile(r"\b(?:prata|tala|talk|speak|kontakta|contact|vända mig|turn to)\b", re.IGNORECASE)
MAX_QUESTION_SCAN = 2000
# Words that open a question about something ("vad kostar …", "how do we …"): a message opening with one is
# never a bare request or a bare detail. QUESTION_WORDS adds the words that make a longer message a question
# wherever they stand (small talk that asks something).
INTERROGATIVES = ("vem", "vilken", "vilka", "vad", "var", "när", "hur", "who", "which", "what", "where", "when", "how")
QUESTION_WORDS = frozenset(INTERROGATIVES) | frozenset((
    "vilket", "varför", "kan", "får", "måste", "bör", "ska", "why", "can", "could", "may", "must", "should", "do",
    "does", "is", "are"))
_QUESTION_WORD = re.compile(r"^\s{0,5}(?:" + "|".join(INTERROGATIVES) + r")\b", re.IGNORECASE)


def explicit_request(text: str, pattern: re.Pattern[str]) -> bool:
    """A button payload, or a short message that is the request itself and no question about something else."""
    text = (text or "").strip()
    if text.startswith("/"):
        return True
    if len(text) > EXPLICIT_CHARS or _QUESTION_WORD.match(text):
        return False
    return bool(pattern.match(text))


SMALL_TALK_WORDS = 7  # a greeting, thanks or goodbye this long that asks something is a question
SMALL_TALK_LONG = 12  # ... and longer than this, it is a question whatever it looks like


# Words that address the assistant itself ("vad är du", "vem har byggt dig", "is this an AI"): a short
# question with one of them is small talk about the assistant, not a question about the documents' topics.
ADDRESSING_WORDS = frozenset((
    "du", "dig", "dej", "din", "ditt", "dina", "ni", "er", "you", "your", "yours", "yourself", "u", "this", "detta",
    "bot", "boten", "botten", "robot", "roboten", "ai", "chatbot", "chattbot", "chatbotten", "chattboten", "chatgpt",
    "gpt", "assistent", "assistenten", "assistant", "människa", "manniska", "human", "person", "dator", "computer",
    "machine", "chatt", "chatten", "chat", "någon", "nagon", "anyone", "anybody", "someone", "somebody"))
# "vad bra!", "how nice", "what a relief": an interrogative followed by one of these opens an exclamation.
EXCLAMATION_WORDS = frozenset((
    "bra", "kul", "roligt", "snällt", "snallt", "skönt", "skont", "trevligt", "fint", "härligt", "harligt", "najs",
    "intressant", "spännande", "spannande", "synd", "tråkigt", "trakigt", "tydligt", "smart", "perfekt", "konstigt",
    "nice", "great", "cool", "good", "lovely", "awesome", "interesting", "helpful", "kind", "a", "an"))
GREETING_WORDS = frozenset(("hej", "hejsan", "hallå", "halla", "tjena", "tjenare", "tja", "tack", "hello", "hi", "hey",
                            "thanks", "thank", "god", "morgon", "good", "morning", "goodbye", "hejdå", "hejda",
                            "välkommen", "welcome"))

# Verbs long enough to pass for a topic that only ask what something means ("vad betyder det?").
MEANING_WORDS = frozenset(("betyder", "innebär", "inneber", "fungerar", "menar", "menas", "means", "meaning"))
# A polite request to explain ("kan du förklara …", "could you tell me …"): what follows is what is asked.
_POLITE = frozenset(("kan du", "kan ni", "skulle du", "skulle ni", "can you", "could you", "would you"))
_POLITE_VERBS = frozenset(("förklara", "forklara", "berätta", "beratta", "säga", "saga", "beskriva", "sammanfatta",
                           "explain", "tell", "describe", "summarize", "summarise", "clarify"))
_LEGAL_PERSON = frozenset(("juridisk", "juridiska", "fysisk", "fysiska", "legal", "natural"))  # "juridisk person"
TOPIC_CHARS = 7  # a word this long is a topic ("ramavtal", "juridisk", "framework"); "läget", "going" are not
_STRIP = ",.!?:;\"'()”“’»«…？"


# Replies that carry nothing to search for ("ok", "jaha", "nej", "mm", "okay"): with nothing pending
# (no rule covers them), they get an acknowledgement, never a search and a "not in the documents" reply.
ACKNOWLEDGEMENT_WORDS = frozenset((
    "ok", "okej", "okey", "okay", "oki", "ja", "jaa", "jo", "japp", "jepp", "jaha", "jahaa", "aha", "ah", "aa", "mm",
    "mmm", "hm", "hmm", "nej", "nä", "näe", "nää", "nix", "nja", "visst", "absolut", "precis", "toppen", "kanon",
    "fint", "bra", "tack", "yes", "yeah", "yep", "no", "nope", "nah", "sure", "fine", "right", "alright", "cool", "oh",
    "thanks", "👍", "👌", "🙂", "😊"))
ACKNOWLEDGEMENT_MAX_WORDS = 3
THANKS_WORDS = frozenset(("tack", "tackar", "thanks", "thank", "thx"))


def acknowledgement_only(text: str) -> bool:
    """A message of at most ``ACKNOWLEDGEMENT_MAX_WORDS`` words, each a bare yes, no, "ok" or thanks ("ok", "Jaha.",
    "nej tack", "OK!"). Punctuation only, a payload, or any other word ("ja, IOP") is not one."""
    text = (text or "").strip()
    if text.startswith("/") or len(text) > EXPLICIT_CHARS:
        return False
    words = [w for w in _words(text) if w]
    return 0 < len(words) <= ACKNOWLEDGEMENT_MAX_WORDS and all(w in ACKNOWLEDGEMENT_WORDS for w in words)


def _words(text: str) -> list[str]:
    return [w.strip(_STRIP).lower() for w in text[:MAX_QUESTION_SCAN].split()]


def _topic_word(raw: str, word: str) -> bool:
    """Whether a word of a short message names something the documents could be about: an acronym
    ("ESPD", "LOV", "iop") or a word of at least ``TOPIC_CHARS`` letters that is no greeting or filler.
    Short everyday words ("läget", "går", "händer", "up", "going") never count: "hur är läget?" is small talk."""
    if not word or word in GREETING_WORDS or word in MEANING_WORDS or word in QUESTION_WORDS or word in _POLITE_VERBS:
        return False
    letters = raw.strip(_STRIP)
    return (len(letters) >= 2 and letters.isalpha() and letters.isupper()) or word in ACRONYMS or len(word) >= TOPIC_CHARS


def short_topic_question(text: str) -> bool:
    """A short message that asks about something other than the assistant ("vad är ESPD", "Hej, vad är
    IOP?", "what is a framework agreement"): it opens with an interrogative (after a greeting or thanks,
    if any), carries a question mark or is a polite request to explain; it names a topic (an acronym or
    a long word: :func:`_topic_word`, so "hur är läget?" stays small talk); it does not speak to or about
    the assistant ("vad är du", "vem har byggt dig", "det här", "are you a bot?"); and it is no
    exclamation ("vad bra!", "how nice")."""
    text = (text or "").strip()
    if text.startswith("/"):
        return False
    raw = text[:MAX_QUESTION_SCAN].split()
    words = _words(text)
    if not words or len(words) >= SMALL_TALK_WORDS:
        return False
    # The question part starts after a leading greeting or thanks that ends with punctuation ("Tack! Vad är …").
    start = 0 if words[0] in INTERROGATIVES else next((i + 1 for i, w in enumerate(raw[:3]) if w[-1] in ",.!:;"), 0)
    asked, polite = _polite_request_body(words[start:])
    if addresses_assistant(asked):
        return False
    interrogative = bool(asked) and asked[0] in INTERROGATIVES
    if interrogative and len(asked) > 1 and asked[1] in EXCLAMATION_WORDS:
        return False
    if not any(_topic_word(r, w) for r, w in zip(raw, words)):
        return False  # "vad?", "hur är läget?", "what's up?": nothing the documents could be about
    return interrogative or polite or "?" in text or "？" in text


def addresses_assistant(words: list[str]) -> bool:
    """Whether the (lower-cased) words speak to or about the assistant: "du", "you", "boten", "det här"
    ("person" only when it is no "juridisk person", "legal person")."""
    for before, word in zip(["", *words], words):
        if word in ADDRESSING_WORDS and not (word == "person" and before in _LEGAL_PERSON):
            return True
    return any(a in ("det", "den") and b in ("här", "har") for a, b in zip(words, words[1:]))


def _polite_request_body(words: list[str]) -> tuple[list[str], bool]:
    """``words`` without a leading polite request to explain ("kan du förklara (för mig)", "could you tell
    me"), and whether there was one: what follows it is what the message asks about."""
    if len(words) > 2 and " ".join(words[:2]) in _POLITE and words[2] in _POLITE_VERBS:
        rest = words[3:]
        if rest[:2] in (["för", "mig"], ["för", "oss"]):
            rest = rest[2:]
        elif rest[:1] in (["me"], ["us"], ["mig"], ["oss"]):
            rest = rest[1:]
        return rest, True
    return words, False


def asks_something(text: str, intent: str | None = None) -> bool:
    """Whether a message the NLU read as small talk (greet, thank, goodbye, "are you a bot") asks
    something: at least ``SMALL_TALK_WORDS`` words with a question mark or a question word ("Tack! Hur
    länge får ett IOP pågå?"), simply long ("We lost a tender. Can we ask to see the winning bid?"), or
    a short question about something other than the assistant (:func:`short_topic_question`: "vad är
    ESPD"). "Hej, hur mår du?", "vad är du?" and "vad bra!" stay small talk, and so does a question
    the NLU read as ``bot_challenge`` that speaks to the assistant ("what kind of questions can you
    answer") unless it is long."""
    text = (text or "").strip()
    if text.startswith("/"):
        return False
    words = text[:MAX_QUESTION_SCAN].split()
    if len(words) > SMALL_TALK_LONG:
        return True
    if len(words) < SMALL_TALK_WORDS:
        return short_topic_question(text)
    if intent == "bot_challenge" and addresses_assistant(_polite_request_body(_words(text))[0]):
        return False
    return "?" in text or any(w.strip(",.!:;").lower() in QUESTION_WORDS for w in words)


def check_detail(text: str) -> bool:
    """Whether ``text`` names something the amount check asks for: an amount, a kind of purchase or of buyer."""
    return (parse_amount(text) is not None or _keyword_value(text, _PURCHASE_WORDS) is not None
            or _keyword_value(text, _BUYER_WORDS) is not None)


def bare_detail(text: str) -> bool:
    """A message that only states a detail for the check ("700 000 kr", "tjänster", "en kommun")."""
    text = text.strip()
    return (len(text) <= EXPLICIT_CHARS and len(text.split()) <= BARE_DETAIL_WORDS and "?" not in text
            and not _QUESTION_WORD.match(text))


def offers(answer: Answer, question: str, intent: str | None) -> list[dict]:
    """Buttons offered with an answer: the amount check when the question names an amount or the
    NLU heard a request for it, a person when the documents do not (fully) answer."""
    en = answer.language != SWEDISH
    buttons = []
    if intent == "check_amount" or parse_amount(question) is not None:
        buttons.append({"title": "Check an amount against the limits" if en else "Kolla ett belopp mot gränserna",
                        "payload": "/check_amount"})
    if answer.coverage != "full" or intent == "request_human" or _MENTIONS_PERSON.search(question[:EXPLICIT_CHARS * 10]):
        buttons.append({"title": "Talk to a person" if en else "Prata med en person", "payload": "/request_human"})
    return buttons


def dispatch_answer(dispatcher: CollectingDispatcher, answer: Answer, prefix: str | None = None,
                    buttons: list[dict] | None = None) -> None:
    custom = answer.custom(prefix)
    dispatcher.utter_message(text=custom["text"], buttons=buttons or [], json_message=dict(custom))


async def answer_off_loop(question: str, lang: str, **options: Any) -> Answer:
    """The answer to ``question``, worked out on a thread: the search (ONNX Runtime, FAISS, BM25; they
    release the GIL) must not hold the action server's one event loop, where every other user's
    action waits."""
    return await asyncio.to_thread(get_runtime().answerer.answer, question, lang, **options)


def answer_events(answer: Answer, question: str) -> list[EventType]:
    return [
        SlotSet("last_question", question),
        SlotSet("answered", answer.answered),
        SlotSet("cited_ids", answer.paragraph_ids),
        SlotSet("shown_ids", answer.paragraph_ids),
        SlotSet("handoff_cancelled", None),  # a cancelled request is in the past once a new question is answered
    ]


def client_of(tracker: Tracker) -> str | None:
    """The opaque tag of the web chat client's address that the channel put in the message's metadata
    (guard.client_tag; a client cannot set it), for the inbox's per-client limits; None elsewhere."""
    tag = (tracker.latest_message.get("metadata") or {}).get("client")
    return tag if isinstance(tag, str) and 0 < len(tag) <= 64 else None


def log_unanswered(tracker: Tracker, answer: Answer) -> None:
    if answer.reason != "not_covered":
        return
    try:
        get_runtime().inbox.add_unanswered(tracker.sender_id, answer.question, answer.language,
                                           answer.evidence.dense_max, answer.evidence.lexical_max,
                                           client=client_of(tracker))
    except InboxLimited as exc:
        log.warning("unanswered question not stored: %s", exc)
    except Exception:  # the user still gets the answer; staff lose one row
        log.exception("could not store an unanswered question")


# -- answers -------------------------------------------------------------------------------------
class TypedMessageAction(Action, metaclass=abc.ABCMeta):
    """An action a typed message can reach. Whatever the NLU read into it, a message that is only an
    e-mail address or phone number gets the contact reply (:func:`contact_reply`) and nothing else: no
    search, no stored rating, no small talk. Subclasses answer everything else in :meth:`respond`.
    Abstract, so rasa-sdk's action server does not register it as an action of its own."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        contact = contact_reply(dispatcher, tracker)
        if contact is not None:
            return [*contact, *self.after_contact()]
        return await self.respond(dispatcher, tracker, domain)

    def after_contact(self) -> list[EventType]:
        """Events that follow the contact reply (what :meth:`respond` would otherwise have set)."""
        return []

    @abc.abstractmethod
    async def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        """The reply to a message that is not only contact details."""


class ActionAnswer(TypedMessageAction):
    """Answer the latest message from the documents, or say that they do not cover it."""

    def name(self) -> str:
        return "action_answer"

    # An answer always ends the turn, after a contact reply too. This action is also Rasa's core fallback
    # (bot/config.yml): when no rule covers the message ("ok" read as affirm with nothing pending),
    # nothing else predicts action_listen after it, and Rasa ran it again, ten times, sending ten replies.
    def after_contact(self) -> list[EventType]:
        return [FollowupAction("action_listen")]

    async def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        listen = self.after_contact()
        question = (tracker.latest_message.get("text") or "").strip()
        if asks_for_person(question):
            # "kan nån kontakta mig", "ok kan jag prata med nån": whatever the NLU read, the request for a
            # person starts the hand-over (until session 26 these were searched and "not in the documents").
            return begin_handoff(dispatcher, tracker)
        amount = parse_amount(question) if explicit_request(question, _CHECK_REQUEST) else None
        if amount is not None and amount >= 100:
            # "kolla 1 500 000 kr" read as nlu_fallback was searched: the request starts the check all the same.
            return [SlotSet("threshold_check", True), SlotSet("amount", float(amount)), FollowupAction("threshold_form")]
        if acknowledgement_only(question):  # "ok", "jaha", "nej" with nothing pending: nothing to search for
            lang = language(tracker)
            dispatcher.utter_message(text=texts.acknowledged(lang, asked_before=bool(tracker.get_slot("last_question"))))
            return listen
        answer = await answer_off_loop(question, language(tracker), domain_hint=domain_hint(tracker))
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        dispatch_answer(dispatcher, answer, buttons=offers(answer, question, intent))
        log_unanswered(tracker, answer)
        return [*answer_events(answer, question), *listen]


# "visa källan", "visa källa 2", "fler", "more", "show the source": a bare paging or source command. As a first
# message it has nothing to page or show (until session 26 it was searched: "not in the documents").
_BARE_COMMAND = re.compile(
    r"^\s{0,5}(?:(?:visa|show|ge mig|give me|se)\s{1,3})?(?:(?:the|mer|fler|more)\s{1,3})?"
    r"(?:källan|källa|källor|källorna|kallan|kalla|source|sources|fler|mer|more|fler svar|more results)"
    r"(?:\s{1,3}(?:nr\s{0,2})?[1-9])?\s{0,3}(?:tack|please)?[\s.!]{0,5}$", re.IGNORECASE)


def bare_command(text: str) -> bool:
    """A paging or source command and nothing else ("fler", "visa källa 2", "show the source")."""
    return len(text or "") <= EXPLICIT_CHARS and bool(_BARE_COMMAND.match(text or ""))


class ActionMoreResults(TypedMessageAction):
    """"fler": the next paragraphs for the last question, skipping those already shown."""

    def name(self) -> str:
        return "action_more_results"

    async def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        question = tracker.get_slot("last_question")
        if not question:  # a first message cannot ask for more: the NLU misread a question, unless it only says "fler"
            if bare_command(tracker.latest_message.get("text") or ""):
                dispatcher.utter_message(text=texts.nothing_asked_yet(lang))
                return []
            return await ActionAnswer().run(dispatcher, tracker, domain)
        shown = list(tracker.get_slot("shown_ids") or [])
        answer = await answer_off_loop(question, lang, skip=frozenset(shown))
        dispatch_answer(dispatcher, answer)
        if not answer.answered:
            return []
        return [SlotSet("cited_ids", answer.paragraph_ids), SlotSet("shown_ids", shown + answer.paragraph_ids)]


class ActionShowSource(TypedMessageAction):
    """"visa källan [n]": the whole cited paragraph with its neighbours for context."""

    def name(self) -> str:
        return "action_show_source"

    async def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        cited = list(tracker.get_slot("cited_ids") or [])
        if not cited:
            if not tracker.get_slot("last_question") and not bare_command(tracker.latest_message.get("text") or ""):
                return await ActionAnswer().run(dispatcher, tracker, domain)  # nothing to show: a misread question
            dispatcher.utter_message(text=texts.nothing_asked_yet(lang))
            return []
        m = re.search(r"\b([1-9])\b", tracker.latest_message.get("text") or "")
        number = int(m.group(1)) if m else 1
        if number > len(cited):
            dispatcher.utter_message(text=texts.no_such_source(lang, number, len(cited)))
            return []
        context = get_runtime().engine.paragraph(cited[number - 1], neighbours=1)
        if context is None:  # the index was rebuilt since the answer
            dispatcher.utter_message(text=texts.nothing_asked_yet(lang))
            return []
        runtime = get_runtime()
        citation = runtime.answerer.quote_paragraph(context.paragraph, number)
        before = context.before[-1].text[-300:] if context.before else None
        after = context.after[0].text[:300] if context.after else None
        text = texts.full_paragraph(lang, citation, before, after)
        dispatcher.utter_message(text=text, json_message=dict(message(lang, text, "full", [citation])))
        return []


_FOLLOW_UP_LEAD = re.compile(
    r"^\s*(?:och|men|än|samma fråga(?: men)?|what|and|but|same question(?: but)?)?\s*"
    r"(?:om|if|för|for|about)?\s*(?:det|it)?\s*(?:gäller|is|are|was)?\s*", re.IGNORECASE)


def changed_question(previous: str, previous_entities: list[dict], message: str, entities: list[dict]) -> str:
    """The previous question with the detail of the follow-up swapped in.

    An entity of a type the previous question had replaces it ("ideell förening" for "stiftelse");
    otherwise the follow-up's words are added to the previous question.
    """
    question = previous
    added, swapped = [], []
    for entity in entities:
        if entity.get("entity") not in ENTITY_TYPES or entity.get("start") is None:
            continue
        surface = message[entity["start"]:entity["end"]]
        old = next((e for e in previous_entities if e.get("entity") == entity["entity"] and e.get("start") is not None),
                   None)
        if old is not None:
            question = question.replace(previous[old["start"]:old["end"]], surface, 1)
            swapped.append(surface)
        else:
            added.append(surface)
    if not entities or not any(e.get("entity") in ENTITY_TYPES for e in entities):
        rest = _FOLLOW_UP_LEAD.sub("", message).strip(" ?.!")
        added = [rest] if rest else []
    # Of a previous message that greeted or told its situation first ("Hej! Jag är rådgivare på Coompanion.
    # Vad är reserverad upphandling?"), the question sentences are kept, and any sentence with the swapped
    # detail: the search and the "Jag söker på: …" line carried the greeting along.
    sentences = sentence_units(question)
    if len(sentences) > 1 and any("?" in s for s in sentences):
        kept = [s for s in sentences if "?" in s or any(w in s for w in swapped)]
        question = " ".join(kept)
    if added:
        question = f"{question.rstrip(' ?.!')} – {' '.join(added)}?"
    return question


class ActionChangeDetail(Action):
    """"och om vi är en ideell förening?": the previous question again, with the changed detail."""

    def name(self) -> str:
        return "action_change_detail"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        previous = tracker.get_slot("last_question")
        message_text = tracker.latest_message.get("text") or ""
        if not previous or len(message_text.split()) >= STANDALONE_WORDS or handoff.contact_only(message_text):
            # a question of its own, or contact details, not a detail of the last question
            return await ActionAnswer().run(dispatcher, tracker, domain)
        previous_entities: list[dict] = []
        for event in reversed(tracker.events):
            if event.get("event") == "user" and event.get("text") == previous:
                previous_entities = (event.get("parse_data") or {}).get("entities") or []
                break
        message = tracker.latest_message.get("text") or ""
        question = changed_question(previous, previous_entities, message, tracker.latest_message.get("entities") or [])
        answer = await answer_off_loop(question, lang)
        dispatch_answer(dispatcher, answer, prefix=texts.changed_question(lang, question),
                        buttons=offers(answer, question, None))
        log_unanswered(tracker, answer)
        return answer_events(answer, question)


FEEDBACK_REASONS = ("wrong_source", "not_answered", "outdated")  # what the web chat's 👎 asks


def feedback_target(tracker: Tracker) -> tuple[str | None, list[str]]:
    """The question and cited paragraphs a 👍/👎 is about, taken from the conversation's tracker.

    The web chat's buttons on an earlier answer name it in the message's metadata (``feedback_for``),
    but the client only selects: its question counts only when it is one of this conversation's own
    user messages, and its paragraph ids only those the assistant cited in this conversation. Otherwise
    the question is the conversation's last user message before the rating (then the ``last_question``
    slot), and the paragraphs the last answer cited.
    """
    events = list(tracker.events or [])
    user_texts = [str(e.get("text") or "").strip() for e in events if e.get("event") == "user"]
    asked = [t for t in user_texts[:-1] if t and not t.startswith("/")]  # the last one is the rating itself
    cited: set[str] = set(map(str, tracker.get_slot("cited_ids") or []))
    for e in events:
        if e.get("event") == "bot":
            custom = (e.get("data") or {}).get("custom")
            if is_answer(custom):
                cited.update(str(c.get("paragraph_id")) for c in custom["citations"] if isinstance(c, dict))
    target = (tracker.latest_message.get("metadata") or {}).get("feedback_for")
    target = target if isinstance(target, dict) else {}
    claimed = target.get("question")
    if isinstance(claimed, str) and claimed.strip() in asked:
        question = claimed.strip()
    else:
        question = (asked[-1] if asked else None) or tracker.get_slot("last_question")
    claimed_ids = target.get("paragraph_ids")
    ids = [str(i) for i in claimed_ids if str(i) in cited] if isinstance(claimed_ids, list) else []
    return question, ids or list(tracker.get_slot("cited_ids") or [])


class ActionFeedback(TypedMessageAction):
    """👍/👎 on the last answer: stored for hub staff with the question and the cited paragraphs."""

    def name(self) -> str:
        return "action_feedback"

    async def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        clicked = (tracker.latest_message.get("text") or "").startswith("/")  # a rating button on a reply
        if not clicked and not tracker.get_slot("last_question"):
            # typed before any answer ("sup", "👍" after a greeting): nothing to rate
            return await ActionAnswer().respond(dispatcher, tracker, domain)
        good = (tracker.latest_message.get("intent") or {}).get("name") == "feedback_good"
        question, ids = feedback_target(tracker)
        target = (tracker.latest_message.get("metadata") or {}).get("feedback_for")
        target = target if isinstance(target, dict) else {}
        reason = target.get("reason") if target.get("reason") in FEEDBACK_REASONS and not good else None
        try:
            get_runtime().inbox.add_feedback(tracker.sender_id, "good" if good else "bad", question,
                                             [str(i) for i in ids][:10], reason, client=client_of(tracker))
        except InboxLimited as exc:  # a flood of ratings: thanked, not stored
            log.warning("feedback not stored: %s", exc)
        except Exception:
            log.exception("could not store feedback")
        lang = language(tracker)
        person = [] if good else [{"title": "Prata med en person" if lang == SWEDISH else "Talk to a person",
                                   "payload": "/request_human"}]
        dispatcher.utter_message(text=texts.feedback_thanks(lang, good), buttons=person)
        return []


# -- thresholds ----------------------------------------------------------------------------------
_PURCHASE_WORDS = {
    "bilaga2": ("bilaga 2", "bilaga2", "sociala tjänst", "sociala och andra", "särskilda tjänst", "annex 2",
                "annex ii", "social service", "social and other", "specific service", "vård", "omsorg", "hälsovård",
                "socialtjänst", "utbildning"),
    "byggentreprenad": ("bygg", "entreprenad", "construction", "works"),
    "varor": ("vara", "varor", "produkt", "goods", "supplies", "products"),
    "tjanster": ("tjänst", "tjanst", "service"),
}
_BUYER_WORDS = {
    "statlig_myndighet": ("statlig", "myndighet", "government", "agency", "state"),
    "region": ("region", "landsting"),
    "kommun": ("kommun", "municipal", "council"),
}


def _keyword_value(text: str, table: dict[str, tuple[str, ...]]) -> str | None:
    low = text.lower()
    for value, words in table.items():
        if any(w in low for w in words):
            return value
    return None


THRESHOLD_SLOTS = ("amount", "purchase_kind", "buyer_kind")


def question_in_form(text: str) -> bool:
    """Whether a message typed while the amount check waits for a detail asks something instead ("vad är
    IOP?", "vänta, vad är skillnaden mellan en kommun och en region här?", "kan vi reservera den?"): at
    least three words, opening with an interrogative ("var", also "was", only with a question mark), or with
    a question mark and a question word among the first three. An answer stays an answer, unsure or chatty
    ("tjänster?", "ca 1,5 miljoner?", "det var 500 000 kr", "kan vara tjänster", "varor, vad annars?"), and
    so does a request for the check itself ("kan du kolla 700 000 kr?")."""
    text = (text or "").strip()
    if text.startswith("/") or explicit_request(text, _CHECK_REQUEST):
        return False
    words = [w for w in _words(text) if w]
    if len(words) < 3:
        return False
    asked = "?" in text or "？" in text
    if words[0] in INTERROGATIVES and (words[0] != "var" or asked):
        return True
    if not asked or not (words[0] in QUESTION_WORDS or any(w in INTERROGATIVES for w in words[:3])):
        return False
    # A short message with a detail the check asks for is that detail, whatever else it says.
    return not (len(words) <= BARE_DETAIL_WORDS + 1 and check_detail(text))


def _slot_before_message(tracker: Tracker, slot: str) -> Any:
    """The slot's value before the latest user message set anything from it."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen_user = True
        elif seen_user and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


class ValidateThresholdForm(FormValidationAction):
    """The amount check's answers. An explicit cancel ("avbryt", "sluta", "cancel") ends the check with
    nothing compared; a question typed instead of an answer is answered from the documents, and the check
    then asks its question again (until session 26 "avbryt" and questions were taken as answers: asked
    again and again at the amount, or read as the buyer and the check compared the amount for a region)."""

    def name(self) -> str:
        return "validate_threshold_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        # Ending the check: its slots emptied and the loop deactivated (action_check_threshold then compares nothing).
        end_check = [*(SlotSet(slot, None) for slot in THRESHOLD_SLOTS), SlotSet("requested_slot", None), ActiveLoop(None)]
        if handoff.is_cancel(text):
            dispatcher.utter_message(response="utter_cancelled")
            return end_check
        if asks_for_person(text):
            # "kan jag prata med en person?" typed in the check (read as a question, not request_human): the
            # check ends and the hand-over starts, as the request would anywhere else.
            return [*end_check, *begin_handoff(dispatcher, tracker)]
        if tracker.get_slot("requested_slot") in THRESHOLD_SLOTS and question_in_form(text):
            answered = await ActionAnswer().run(dispatcher, tracker, domain)
            kept = [e for e in answered if e.get("event") == "slot" and e.get("name") not in THRESHOLD_SLOTS]
            # What the question's words put into the check's slots is undone; the check asks again.
            undone = [SlotSet(slot, _slot_before_message(tracker, slot)) for slot in tracker.slots_to_validate()
                      if slot in THRESHOLD_SLOTS]
            return [*kept, *undone, SlotSet(tracker.get_slot("requested_slot"), None)]
        return await super().run(dispatcher, tracker, domain)

    async def validate_amount(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> dict[str, Any]:
        # The message's own words first: the NLU's amount entity can be part of the number (of "1 500 000"
        # it tagged "500 000", and the check compared 500 000 kr). A button payload has no words to read.
        text = tracker.latest_message.get("text") or ""
        amount = None if text.startswith("/") else parse_amount(text)
        if amount is None:
            amount = value if isinstance(value, (int, float)) else parse_amount(str(value or ""))
        if amount is None or amount < 100:
            dispatcher.utter_message(text=texts.invalid_amount(language(tracker)))
            return {"amount": None}
        return {"amount": float(amount)}

    async def validate_purchase_kind(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: DomainDict) -> dict[str, Any]:
        # The message's own words first, as for the amount: of "Social and other specific services" the NLU
        # tagged "services", and the check compared ordinary services' limits.
        text = tracker.latest_message.get("text") or ""
        typed = None if text.startswith("/") else _keyword_value(text, _PURCHASE_WORDS)
        kind = typed or (value if value in PURCHASE_KINDS else _keyword_value(str(value or ""), _PURCHASE_WORDS))
        if kind is None:  # the form asks again, with its buttons
            dispatcher.utter_message(text=texts.invalid_purchase_kind(language(tracker)))
        return {"purchase_kind": kind}

    async def validate_buyer_kind(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: DomainDict) -> dict[str, Any]:
        kind = value if value in BUYER_KINDS or value == "annan" else _keyword_value(str(value or ""), _BUYER_WORDS)
        if kind is None:
            kind = "annan"  # the documents give no figures per buyer anyway; do not block the check on it
        return {"buyer_kind": kind}


class ActionSmallTalk(TypedMessageAction):
    """Greetings, thanks, goodbyes and "are you a bot": the short reply, unless the message also asks
    something (see :func:`asks_something`), which is then answered first, as every question is."""

    RESPONSES = {"greet": "utter_greet", "thank": "utter_thank", "goodbye": "utter_goodbye",
                 "bot_challenge": "utter_iamabot"}

    def name(self) -> str:
        return "action_small_talk"

    async def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        text = tracker.latest_message.get("text") or ""
        if asks_something(text, intent) or asks_for_person(text):
            return await ActionAnswer().run(dispatcher, tracker, domain)
        if acknowledgement_only(text) and not set(_words(text)) & THANKS_WORDS:
            # "ok", "jaha" read as thanks or a greeting: acknowledged (ActionAnswer), not "Varsågod!"
            return await ActionAnswer().run(dispatcher, tracker, domain)
        dispatcher.utter_message(response=self.RESPONSES.get(intent, "utter_greet"))
        return []


class ActionStartThresholdCheck(TypedMessageAction):
    """check_amount: the form starts only on an explicit request (the button, or "kolla 700 000 kr");
    a question that mentions an amount or the limits is answered from the documents, with the check
    offered as a button. From the button, an amount in the last question fills the form's first slot."""

    def name(self) -> str:
        return "action_start_threshold_check"

    def after_contact(self) -> list[EventType]:
        return [SlotSet("threshold_check", False)]

    async def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        # A bare detail starts the check only when it is one the check asks for ("700 000 kr", "tjänster",
        # "en kommun"): "idéburen organisation definition" is a question, answered like any other.
        if explicit_request(text, _CHECK_REQUEST) or (intent == "inform" and bare_detail(text) and check_detail(text)):
            events: list[EventType] = [SlotSet("threshold_check", True)]  # the rules continue with threshold_form
            # From the button the amount is the last question's; otherwise the request's own ("kolla 700 000 kr").
            amount = parse_amount((tracker.get_slot("last_question") or "") if text.startswith("/") else text)
            if amount is not None and amount >= 100:
                events.append(SlotSet("amount", float(amount)))
            return events
        events = await ActionAnswer().run(dispatcher, tracker, domain)
        return [*events, SlotSet("threshold_check", False)]


class ActionRouteHuman(Action):
    """request_human: the hand-over starts only on an explicit request ("prata med en person", the
    button); a question that mentions talking to someone ("vem ska jag prata med på kommunen?") is
    answered, with a person offered as a button."""

    def name(self) -> str:
        return "action_route_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        if explicit_request(tracker.latest_message.get("text") or "", _HUMAN_REQUEST):
            # The rules continue with human_form.
            return [*start_handoff(dispatcher, tracker), SlotSet("handoff_requested", True)]
        events = await ActionAnswer().run(dispatcher, tracker, domain)
        return [*events, SlotSet("handoff_requested", False)]


def amount_source(tracker: Tracker, amount: float) -> str:
    """The message the checked amount was read from: the latest user message (or the last question, when the
    check began from its button) that states this amount; "" when none does."""
    texts_seen = [str(e.get("text") or "") for e in reversed(tracker.events) if e.get("event") == "user"][:12]
    for text in [*texts_seen, str(tracker.get_slot("last_question") or "")]:
        if text and not text.startswith("/") and parse_amount(text) == amount:
            return text
    return ""


class ActionCheckThreshold(Action):
    """Compare the amount with every threshold figure the documents state, quoting each rule and year."""

    def name(self) -> str:
        return "action_check_threshold"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        if tracker.get_slot("amount") is None:
            return []  # the check was cancelled (ValidateThresholdForm): nothing to compare
        lang = language(tracker)
        runtime = get_runtime()
        buyer = tracker.get_slot("buyer_kind")
        amount = float(tracker.get_slot("amount"))
        assessment = assess(amount, tracker.get_slot("purchase_kind"),
                            buyer if buyer in BUYER_KINDS else None, runtime.threshold_rules)
        citations: list[Citation] = []
        numbers: dict[str, int] = {}
        engine = runtime.engine
        for rule in assessment.rules:
            context = engine.paragraph(rule.paragraph_id, neighbours=0)
            if context is None:
                continue
            numbers[rule.paragraph_id] = len(citations) + 1
            citations.append(Citation.from_hit(len(citations) + 1, context.paragraph, rule.sentence))
        body = describe(assessment, numbers, lang)
        yearly = per_year(amount_source(tracker, amount))
        if yearly:  # the documents do not say how a yearly sum counts against the limits: said first, and partial
            body = f"{texts.yearly_amount(lang)}\n{body}"
        text = f"{body}\n{texts.sources_block(citations, lang)}" if citations else body
        coverage = ("partial" if yearly else "full") if citations else "none"
        custom = message(lang, text, coverage, citations, body)
        dispatcher.utter_message(text=text, json_message=dict(custom))
        return [SlotSet("amount", None), SlotSet("cited_ids", [c.paragraph_id for c in citations]),
                SlotSet("answered", bool(citations))]


# -- asking for a person -------------------------------------------------------------------------
# The hand-over: consent text (what is stored, who reads it, how long, when to expect a reply), the
# question (the last one asked, or asked for), the contact, then a summary with send / change / cancel.
# Only an explicit cancel cancels; only a confirmed summary is stored, and only a stored one is called sent.
_EMAIL, _PHONE, CONTACT_CHARS = handoff.EMAIL, handoff.PHONE, handoff.CONTACT_CHARS
HANDOFF_SLOTS = ("handoff_question", "handoff_contact", "handoff_confirm")


def start_handoff(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """The consent text, and the form's slots set for a new request: the question is the last one asked
    (if any), a contact the user just wrote (offered with "is this your contact?") comes along."""
    lang = language(tracker)
    dispatcher.utter_message(text=texts.handoff_consent(lang, get_runtime().settings.handoff_terms(lang)))
    return [SlotSet("handoff_question", tracker.get_slot("last_question") or None),
            SlotSet("handoff_contact", tracker.get_slot("handoff_contact_offer") or None),
            SlotSet("handoff_confirm", None), SlotSet("handoff_cancelled", None),
            SlotSet("handoff_contact_offer", None)]


def asks_for_person(text: str) -> bool:
    """A typed message (no button payload) that explicitly asks for a person (``_HUMAN_REQUEST``)."""
    return not text.startswith("/") and explicit_request(text, _HUMAN_REQUEST)


def begin_handoff(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """From an action the rules do not follow with the form (the NLU did not read request_human): the consent
    text, the form's slots, and the form next."""
    return [*start_handoff(dispatcher, tracker), SlotSet("handoff_requested", True), FollowupAction("human_form")]


def cancel_handoff() -> dict[str, Any]:
    """What a form validation returns on an explicit cancel: the form ends (requested slot none) and
    action_submit_handoff, which the rules run next, says that nothing was sent."""
    return {"handoff_cancelled": True, "requested_slot": None}


class ActionStartHandoff(Action):
    """Yes to the offer of a person (after an unanswered question): the consent text, then the form."""

    def name(self) -> str:
        return "action_start_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        return start_handoff(dispatcher, tracker)


class ValidateHumanForm(FormValidationAction):
    def name(self) -> str:
        return "validate_human_form"

    async def validate_handoff_question(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                        domain: DomainDict) -> dict[str, Any]:
        text = str(value or "").strip()
        if handoff.is_cancel(text):
            return {"handoff_question": None, **cancel_handoff()}
        return {"handoff_question": text if len(text) >= 3 else None}

    async def validate_handoff_contact(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> dict[str, Any]:
        text = str(value or "")
        if handoff.is_cancel(text):
            return {"handoff_contact": None, **cancel_handoff()}
        # Nothing valid: the slot stays empty and the form asks again (action_ask_handoff_contact explains).
        return {"handoff_contact": handoff.find_contact(text)}

    async def validate_handoff_confirm(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> dict[str, Any]:
        text = str(value or "")
        chosen = handoff.choice(text)
        if chosen == handoff.CANCEL:
            return {"handoff_confirm": None, **cancel_handoff()}
        if chosen == handoff.SEND:
            return {"handoff_confirm": handoff.SEND}
        if chosen == handoff.CHANGE_QUESTION:  # the form asks for the question again, then shows the summary
            return {"handoff_confirm": None, "handoff_question": None}
        if chosen == handoff.CHANGE_CONTACT:
            return {"handoff_confirm": None, "handoff_contact": None}
        contact = handoff.contact_only(text)
        if contact:  # a new address written straight at the summary: taken, and the summary shown again
            return {"handoff_confirm": None, "handoff_contact": contact}
        if tracker.get_slot("requested_slot") == "handoff_confirm":
            # Only at the summary: when the form starts, its emptied slots are validated too, and a request for
            # a person began with "Jag har inte skickat något än. Välj ”Skicka till personalen” …" (no summary yet).
            dispatcher.utter_message(text=texts.handoff_choose(language(tracker)))
        return {"handoff_confirm": None}


class ActionAskHandoffQuestion(Action):
    def name(self) -> str:
        return "action_ask_handoff_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        dispatcher.utter_message(text=texts.handoff_ask_question(lang), buttons=[texts.cancel_button(lang)])
        return []


class ActionAskHandoffContact(Action):
    """The request for a contact; asked again (the form's requested slot is already the contact) it says
    what was wrong and what is expected."""

    def name(self) -> str:
        return "action_ask_handoff_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        requested = tracker.get_slot("requested_slot")
        text = texts.handoff_ask_contact(lang, again=requested == "handoff_contact",
                                         changing=requested == "handoff_confirm")
        dispatcher.utter_message(text=text, buttons=[texts.cancel_button(lang)])
        return []


class ActionAskHandoffConfirm(Action):
    """The summary of what will be sent, with send / change the question / change the contact / cancel."""

    def name(self) -> str:
        return "action_ask_handoff_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        question = tracker.get_slot("handoff_question") or tracker.get_slot("last_question") or ""
        dispatcher.utter_message(text=texts.handoff_summary(lang, question, tracker.get_slot("handoff_contact") or ""),
                                 buttons=texts.handoff_summary_buttons(lang))
        return []


class ActionSubmitHandoff(Action):
    """After the form: stored only when the summary was confirmed; the user is told it was sent only
    after the write succeeded. A cancelled form says that nothing was sent."""

    def name(self) -> str:
        return "action_submit_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = language(tracker)
        clear = [SlotSet(s, None) for s in HANDOFF_SLOTS]
        if tracker.get_slot("handoff_confirm") != handoff.SEND:
            dispatcher.utter_message(text=texts.handoff_cancelled(lang))
            return [*clear, SlotSet("handoff_cancelled", True)]
        question = tracker.get_slot("handoff_question") or tracker.get_slot("last_question") or ""
        contact = tracker.get_slot("handoff_contact")
        try:
            reference = get_runtime().inbox.add_handoff(tracker.sender_id, question, contact, lang,
                                                        client=client_of(tracker))
        except InboxLimited as exc:
            log.warning("hand-over refused: %s", exc)
            dispatcher.utter_message(text=texts.handoff_limited(lang))
            return clear
        except Exception:  # the user must know the request did not reach anyone
            log.exception("could not store a hand-over request")
            dispatcher.utter_message(text=texts.handoff_failed(lang))
            return clear
        dispatcher.utter_message(text=texts.handoff_sent(lang, contact, reference,
                                                         get_runtime().settings.handoff_terms(lang)))
        return [*clear, SlotSet("handoff_cancelled", None)]


def contact_reply(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType] | None:
    """A message that is only an e-mail address or phone number is no question for the documents: the
    user is told what it looks like (and that a cancelled request was not sent) and offered a person,
    with that contact kept for the request. None when the message is something else."""
    text = tracker.latest_message.get("text") or ""
    contact = handoff.contact_only(text)
    if contact is None:
        return None
    lang = language(tracker)
    dispatcher.utter_message(text=texts.contact_without_request(lang, contact, bool(tracker.get_slot("handoff_cancelled"))),
                             buttons=texts.contact_offer_buttons(lang))
    # "answered: false" makes "ja"/"nej" answer this offer, as after an unanswered question (bot/data/rules.yml).
    return [SlotSet("handoff_contact_offer", contact), SlotSet("handoff_cancelled", None), SlotSet("answered", False)]


# -- every message -------------------------------------------------------------------------------
class ValidateSlotMappings(ValidationAction):
    """Runs after every user message: keeps the ``language`` slot (sv/en) up to date."""

    def name(self) -> str:
        return "action_validate_slot_mappings"

    async def extract_language(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> dict[str, Any]:
        text = tracker.latest_message.get("text") or ""
        previous = tracker.get_slot("language")
        if text.startswith("/"):  # a button payload says nothing about the language; the page's may
            lang = page_language(tracker)
            return {"language": lang} if lang and not previous else {}
        if previous and (tracker.active_loop or {}).get("name") == "human_form":
            return {}  # a hand-over is finished in the language it began in ("ok", "yes", a name, a number)
        # An e-mail address's or phone number's words ("anna@example.se") say nothing of the language.
        return {"language": detect_language(handoff.without_contacts(text), previous or page_language(tracker))}
