"""Help for hub staff answering a person: the assistant's best cited paragraphs for the question and a
draft reply made of their quotes and sources, in the conversation's language; staff names; the
citations a staff reply carries into the user's chat (the same payload contract as the bot's answers).

Free of FastAPI and Rasa: the knowledge service's inbox calls it with its own SearchEngine (through
:class:`assistant.answer.Answerer`, the code the bot answers with), so the paragraphs staff see are the
ones the assistant would cite.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from .answer import Answerer, Citation
from .language import ENGLISH, LANGUAGES, SWEDISH, detect_language
from .payload import AnswerPayload, CitationPayload, answer_payload, citation_place
from .quotes import shorten

MAX_NAME_CHARS = 60
MAX_ATTACHED = 5  # citations one staff reply may carry
NAME_PUNCTUATION = frozenset(" -'’.")


class StaffNameError(ValueError):
    """A staff name that cannot be shown to users; the message is for the staff (Swedish)."""


def staff_name(value: object) -> str:
    """A staff member's name as users will see it: 1–60 characters of letters, spaces, hyphens,
    apostrophes and full stops, with at least one letter; spacing collapsed. No markup, digits, e-mail
    addresses or control characters (the name is shown in every user's chat the staff member answers)."""
    if not isinstance(value, str):
        raise StaffNameError("Ange ditt namn.")
    if any(unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") for c in value):
        raise StaffNameError("Namnet innehåller otillåtna tecken.")
    name = " ".join(value.split())
    if not name:
        raise StaffNameError("Ange ditt namn.")
    if len(name) > MAX_NAME_CHARS:
        raise StaffNameError(f"Namnet är för långt (högst {MAX_NAME_CHARS} tecken).")
    letters = 0
    for c in name:
        if unicodedata.category(c).startswith("L"):
            letters += 1
        elif c not in NAME_PUNCTUATION:
            raise StaffNameError("Namnet får bara innehålla bokstäver, mellanslag, bindestreck, apostrof och punkt.")
    if not letters:
        raise StaffNameError("Namnet måste innehålla bokstäver.")
    return name


def conversation_language(stored: str | None, question: str) -> str:
    """The language to draft in: the one stored with the conversation, else the question's."""
    return stored if stored in LANGUAGES else detect_language(question)


TEXTS = {
    SWEDISH: {
        "hello": "Hej!", "intro": "Tack för din fråga. Så här står det i dokumenten:",
        "partial": "Dokumenten tar inte upp {missing}, men det här är det närmaste de säger:",
        "none": "Tack för din fråga. Dokumenten jag har svarar inte på den direkt, så här är mitt svar:",
        "sources": "Källor:", "bye": "Hör gärna av dig om något är oklart.",
    },
    ENGLISH: {
        "hello": "Hello!", "intro": "Thank you for your question. This is what the documents say:",
        "partial": "The documents do not cover {missing}, but this is the closest they say:",
        "none": "Thank you for your question. The documents I have do not answer it directly, so here is my answer:",
        "sources": "Sources:", "bye": "Do get in touch if anything is unclear.",
    },
}


@dataclass(frozen=True)
class Draft:
    """The assistant's help for one question: its verdict, its citations and a reply to edit."""

    question: str
    language: str
    coverage: str  # full | partial | none (the assistant's own verdict on the question)
    citations: list[Citation] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    text: str = ""

    def citation(self, paragraph_id: str) -> Citation | None:
        return next((c for c in self.citations if c.paragraph_id == paragraph_id), None)


def draft_text(language: str, coverage: str, citations: Sequence[Citation], missing: Sequence[str],
               link: Callable[[str], str]) -> str:
    """Greeting, the quotes with their numbers, the sources (title, year, section, page, link), a close."""
    t = TEXTS[language if language in TEXTS else SWEDISH]
    lines = [t["hello"], ""]
    if not citations:
        lines += [t["none"], "", "", t["bye"]]
        return "\n".join(lines)
    if coverage == "partial" and missing:
        lines.append(t["partial"].format(missing=", ".join(f"”{m}”" for m in missing)))
    else:
        lines.append(t["intro"])
    lines.append("")
    for c in citations:
        lines += [f"”{c.quote}” [{c.number}]", ""]
    lines.append(t["sources"])
    for c in citations:
        lines.append(f"[{c.number}] {citation_place(asdict(c), language)} – {link(c.paragraph_id)}")
    lines += ["", t["bye"]]
    return "\n".join(lines)


class DraftMaker:
    """Drafts replies with a loaded search engine, through the bot's own answer code. Drafts are kept
    ``ttl`` seconds per (question, language): the inbox page shows several at once and the reply form
    asks again for the citations it attaches. Thread-safe."""

    def __init__(self, answerer: Answerer, ttl: float = 60.0, size: int = 256):
        self.answerer = answerer
        self.ttl, self.size = ttl, size
        self._cache: OrderedDict[tuple[str, str], tuple[float, Draft]] = OrderedDict()
        self._lock = threading.Lock()

    def draft(self, question: str, language: str, link: Callable[[str], str]) -> Draft:
        key = (question, language)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit and now - hit[0] < self.ttl:
                self._cache.move_to_end(key)
                cached = hit[1]
                return Draft(cached.question, cached.language, cached.coverage, cached.citations, cached.missing,
                             draft_text(language, cached.coverage, cached.citations, cached.missing, link))
        # domain_hint: staff asked a person's question; show the nearest paragraphs even when the
        # assistant itself would decline (staff judge whether they answer it)
        answer = self.answerer.answer(question, language, domain_hint=True)
        citations = list(answer.citations) if answer.reason == "answered" else []
        draft = Draft(question, language, answer.coverage if citations else "none", citations, list(answer.missing),
                      draft_text(language, answer.coverage, citations, answer.missing, link))
        with self._lock:
            self._cache[key] = (now, draft)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return draft

    def attached(self, draft: Draft, paragraph_ids: Sequence[str]) -> list[CitationPayload]:
        """The citations a staff reply carries, in the order given: a paragraph of the draft with its quote and
        its number [n] (the draft's text refers to it), or any other paragraph of the index with its opening,
        numbered after the draft's; unknown ids are left out."""
        out: list[CitationPayload] = []
        engine = self.answerer.engine
        extra = max((c.number for c in draft.citations), default=0)
        for pid in dict.fromkeys(paragraph_ids):  # each once, in order
            if len(out) >= MAX_ATTACHED:
                break
            cited = draft.citation(pid)
            if cited is None:
                context = engine.paragraph(pid, 0)
                if context is None:
                    continue
                extra += 1
                cited = Citation.from_hit(extra, context.paragraph, shorten(context.paragraph.text))
            payload = cited.payload()
            payload["score"] = 0.0
            out.append(payload)
        return out


def staff_payload(text: str, language: str, citations: list[CitationPayload]) -> AnswerPayload:
    """``custom`` of a staff reply in the user's chat: the bot answers' contract, so channels that render
    citation cards for answers render the staff reply's too."""
    return answer_payload(answered=True, coverage="full", citations=citations, language=language, text=text,
                          body=text)
