"""Answers with citations: search the index, quote the best sentences, say so when the corpus is silent.

Everything the user reads as a fact is a quoted sentence of a cited paragraph; the framing text
around the quotes is the only thing this module writes itself. An answer cites at most
``max_citations`` paragraphs, in the search's rank order, numbered [1], [2], …
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import Enum
from functools import cached_property

from index.search import Evidence, Hit, QueryError, SearchEngine

from . import texts
from .language import SWEDISH
from .settings import ActionSettings

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"”'(\[]?[A-ZÅÄÖÉ0-9•–-])")
_BULLET = re.compile(r"\s(?=[•▪●]\s)")
QUOTE_CHARS = 420
SHORT_SENTENCE = 90
SECOND_QUOTE_RATIO = 0.75


class Prior(str, Enum):
    """What the NLU made of the message, which sets how much evidence an answer needs."""

    DOMAIN = "domain"
    OTHER = "other"
    OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class Citation(Hit):
    """A search hit as cited in an answer: its number [n] and the sentence quoted from it."""

    number: int = 0
    quote: str = ""

    @classmethod
    def from_hit(cls, number: int, hit: Hit, quote: str) -> "Citation":
        return cls(**asdict(hit), number=number, quote=quote)

    def payload(self) -> dict:
        """The citation as channels receive it in ``custom.citations``."""
        return asdict(self)


def message_payload(answered: bool, citations: list[Citation], language: str, text: str, body: str | None = None) -> dict:
    """``custom`` of a bot message. ``text`` is the whole answer, source list included, for plain
    channels (REST); ``body`` is the same answer without the plain-text source list, for channels
    that render ``citations`` themselves (web chat, Slack, Teams)."""
    return {
        "answered": answered,
        "citations": [c.payload() for c in citations],
        "language": language,
        "text": text,
        "body": text if body is None else body,
    }


@dataclass(frozen=True)
class Answer:
    question: str
    language: str
    answered: bool
    text: str
    citations: list[Citation] = field(default_factory=list)
    evidence: Evidence = field(default_factory=Evidence)
    reason: str = "answered"  # answered | not_covered | invalid
    body: str | None = None  # the text without its source list (None: the same as text)

    def custom(self, prefix: str | None = None) -> dict:
        """``custom`` of the bot message: answered flag, citations in citation order, text and body,
        each after ``prefix`` when one is given."""
        def lead(s: str) -> str:
            return f"{prefix}\n{s}" if prefix else s

        body = None if self.body is None else lead(self.body)
        return message_payload(self.answered, self.citations, self.language, lead(self.text), body)

    @property
    def paragraph_ids(self) -> list[str]:
        return [c.paragraph_id for c in self.citations]


@dataclass(frozen=True)
class Thresholds:
    lexical: float
    dense: float

    def covers(self, evidence: Evidence) -> bool:
        return evidence.lexical_max >= self.lexical or evidence.dense_max >= self.dense


def split_sentences(text: str) -> list[str]:
    parts: list[str] = []
    for chunk in _BULLET.split(text):
        parts.extend(s.strip() for s in _SENTENCE_END.split(chunk) if s.strip())
    return parts


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:–-")
    return cut + " …"


class Answerer:
    """Turns a question into an :class:`Answer` using a loaded :class:`SearchEngine`."""

    def __init__(self, engine: SearchEngine, settings: ActionSettings):
        self.engine = engine
        self.settings = settings
        self.analyzer = engine.index.lexical.analyzer

    # -- the no-answer decision -------------------------------------------------------------------
    def thresholds(self, prior: Prior) -> Thresholds:
        s = self.settings
        return {
            Prior.DOMAIN: Thresholds(s.domain_lexical_min, s.domain_dense_min),
            Prior.OTHER: Thresholds(s.other_lexical_min, s.other_dense_min),
            Prior.OUT_OF_SCOPE: Thresholds(s.out_of_scope_lexical_min, s.out_of_scope_dense_min),
        }[prior]

    # -- sentence choice ------------------------------------------------------------------------
    @cached_property
    def _idf(self) -> dict[str, float]:
        df: Counter[str] = Counter()
        paragraphs = self.engine.index.paragraphs
        for p in paragraphs:
            df.update(set(self.analyzer.terms(p.text)))
        n = len(paragraphs)
        return {t: math.log(1 + n / c) for t, c in df.items()}

    def _query_terms(self, question: str) -> set[str]:
        rewritten = self.engine.rewriter.rewrite(question)
        return set(self.analyzer.terms(rewritten.lexical)) | set(self.analyzer.terms(question))

    def _sentence_score(self, sentence: str, terms: set[str]) -> float:
        idf = self._idf
        found = set(self.analyzer.terms(sentence)) & terms
        return sum(idf.get(t, 0.0) for t in found)

    def best_quote(self, hit: Hit, terms: set[str]) -> tuple[str, float]:
        """The sentence of the paragraph that shares the most (rare) words with the question, plus the
        next one when it is short (a definition often continues); the paragraph's opening otherwise."""
        sentences = split_sentences(hit.text) or [hit.text]
        scores = [self._sentence_score(s, terms) for s in sentences]
        best = max(range(len(sentences)), key=lambda i: (scores[i], -i))
        quote = sentences[best]
        if len(quote) < SHORT_SENTENCE and best + 1 < len(sentences):
            quote = f"{quote} {sentences[best + 1]}"
        return shorten(quote), scores[best]

    # -- answers ------------------------------------------------------------------------------------
    def answer(self, question: str, language: str = SWEDISH, prior: Prior = Prior.DOMAIN,
               skip: frozenset[str] = frozenset(), offset: int = 0) -> Answer:
        """Answer ``question``. ``skip``/``offset`` page through further results ("fler")."""
        n = self.settings.max_citations
        try:
            result = self.engine.search(question, min(self.settings.max_k, n + offset + len(skip)))
        except QueryError as exc:
            return Answer(question, language, False, str(exc), reason="invalid")
        if not self.thresholds(prior).covers(result.evidence) or not result.hits:
            return Answer(question, language, False, texts.not_covered(language), evidence=result.evidence,
                          reason="not_covered")
        hits = [h for h in result.hits if h.paragraph_id not in skip][offset: offset + n]
        if not hits:
            return Answer(question, language, False, texts.no_more_results(language), evidence=result.evidence,
                          reason="no_more")
        terms = self._query_terms(result.query)
        citations = []
        for number, hit in enumerate(hits, 1):
            quote, _ = self.best_quote(hit, terms)
            citations.append(Citation.from_hit(number, hit, quote))
        # Quote the runner-up too when it scores close to the best paragraph; the rest are "see also".
        quoted = 1 + sum(1 for h in hits[1:2] if h.score >= SECOND_QUOTE_RATIO * hits[0].score)
        follow_up = offset == 0 and not skip
        text = texts.compose_answer(language, citations, quoted, follow_up=follow_up)
        body = texts.compose_answer(language, citations, quoted, follow_up=follow_up, sources=False)
        return Answer(question, language, True, text, citations, result.evidence, body=body)

    def quote_paragraph(self, hit: Hit, number: int = 1) -> Citation:
        return Citation.from_hit(number, hit, shorten(hit.text, 1500))
