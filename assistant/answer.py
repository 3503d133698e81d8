"""Answers with citations and a coverage verdict.

Everything the user reads as a fact is a quoted sentence of a cited paragraph; the framing around
the quotes is the only text this package writes itself. Each answer carries a verdict:

- full: the documents answer; the reply leads with the sentence(s) that answer, then supporting quotes;
- partial: they answer part of it or something close; the reply says first what they do not say;
- none: they do not; the reply declines, names what was not found and offers a person, with no quotes.

An answer cites at most ``max_citations`` paragraphs, numbered [1], [2], … in the order quoted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property

from index.query import question_focus
from index.search import Evidence, Hit, QueryError, SearchEngine, SearchResult

from . import texts
from .coverage import CoverageFeatures, CoverageModel, Verdict, default_model
from .language import SWEDISH
from .payload import AnswerPayload, CitationPayload, Coverage, answer_payload
from .quotes import Quote, QuotePicker, asks_figure, joined, shorten
from .settings import AssistantSettings
from .terms import TermAnalysis, TermAnalyzer

CANDIDATES = 6  # paragraphs whose sentences compete for the quotes
NEIGHBOUR_SHARE = 0.5  # a neighbour paragraph's words count half towards covering the question


@dataclass(frozen=True)
class Citation(Hit):
    """A search hit as cited in an answer: its number [n] and the sentence(s) quoted from it."""

    number: int = 0
    quote: str = ""

    @classmethod
    def from_hit(cls, number: int, hit: Hit, quote: str) -> "Citation":
        return cls(**asdict(hit), number=number, quote=quote)

    def payload(self) -> CitationPayload:
        return CitationPayload(**asdict(self))  # type: ignore[typeddict-item]


@dataclass(frozen=True)
class Answer:
    question: str
    language: str
    coverage: Coverage
    text: str
    body: str
    citations: list[Citation] = field(default_factory=list)
    lead: list[int] = field(default_factory=list)  # citation numbers of the lead quote(s)
    missing: list[str] = field(default_factory=list)
    evidence: Evidence = field(default_factory=Evidence)
    verdict: Verdict | None = None
    reason: str = "answered"  # answered | not_covered | invalid | no_more

    @property
    def answered(self) -> bool:
        return self.coverage != "none"

    def custom(self, prefix: str | None = None) -> AnswerPayload:
        """``custom`` of the bot message, each text after ``prefix`` when one is given."""
        def lead(s: str) -> str:
            return f"{prefix}\n{s}" if prefix else s

        return answer_payload(answered=self.answered, coverage=self.coverage, missing=self.missing,
                              citations=[c.payload() for c in self.citations], language=self.language,
                              text=lead(self.text), body=lead(self.body))

    @property
    def paragraph_ids(self) -> list[str]:
        return [c.paragraph_id for c in self.citations]


def message(language: str, text: str, coverage: Coverage = "full", citations: list[Citation] | None = None,
            body: str | None = None) -> AnswerPayload:
    """``custom`` for a message that is not a search answer (a full paragraph, a threshold check)."""
    return answer_payload(answered=coverage != "none", coverage=coverage, citations=[c.payload() for c in citations or []],
                          language=language, text=text, body=body)


class Answerer:
    """Turns a question into an :class:`Answer` using a loaded :class:`SearchEngine`."""

    def __init__(self, engine: SearchEngine, settings: AssistantSettings, model: CoverageModel | None = None):
        self.engine = engine
        self.settings = settings
        self._model = model

    @cached_property
    def model(self) -> CoverageModel:
        return self._model or default_model()

    @cached_property
    def terms(self) -> TermAnalyzer:
        return TermAnalyzer([p.text for p in self.engine.index.paragraphs], restore=self.engine.rewriter.restorer.restore)

    @cached_property
    def picker(self) -> QuotePicker:
        return QuotePicker(self.terms)

    # -- the coverage verdict --------------------------------------------------------------------
    def _paragraph_terms(self, paragraph_id: str) -> set[str]:
        i = self.engine.position(paragraph_id)
        return self.terms.paragraph_terms[i] if i is not None else set()

    def _share_with_neighbours(self, analysis: TermAnalysis, paragraph_id: str) -> float:
        i = self.engine.position(paragraph_id)
        if i is None:
            return 0.0
        own = analysis.share_in(self.terms.paragraph_terms[i])
        around = set()
        for j in (i - 1, i + 1):
            if self.engine.same_document(i, j):
                around |= self.terms.paragraph_terms[j]
        return own + NEIGHBOUR_SHARE * (analysis.share_in(self.terms.paragraph_terms[i] | around) - own)

    def features(self, result: SearchResult, analysis: TermAnalysis, hits: list[Hit]) -> CoverageFeatures:
        top = analysis.share_in(self._paragraph_terms(hits[0].paragraph_id)) if hits else 0.0
        best = max((self._share_with_neighbours(analysis, h.paragraph_id) for h in hits[:3]), default=0.0)
        return CoverageFeatures.of(result.evidence, analysis, top, best, result.english)

    def assess(self, question: str) -> tuple[SearchResult, TermAnalysis, CoverageFeatures, Verdict]:
        """Search and judge coverage without composing a reply (calibration and tests)."""
        result = self.engine.search(question, min(self.settings.max_k, CANDIDATES))
        analysis = self.terms.analyse(result.query, result.english)
        features = self.features(result, analysis, result.hits)
        return result, analysis, features, self.model.verdict(features)

    def missing_names(self, result: SearchResult, analysis: TermAnalysis) -> list[str]:
        """What the reply names as not in the documents: the specific words of what is asked. In a long
        message that tells its situation first, that is its question sentence(s) (``question_focus``):
        "cykelreparationer" in "Vi är ett kooperativ som gör cykelreparationer i Gävle … Får vi kontakta
        förvaltningarna själva?" is the asker's context, and the reply opened with "Dokumenten tar inte upp
        ”cykelreparationer”" before the passage that answers."""
        focus = question_focus(result.query)
        return (self.terms.analyse(focus, result.english) if focus else analysis).missing_names()

    # -- answers ---------------------------------------------------------------------------------
    def answer(self, question: str, language: str = SWEDISH, skip: frozenset[str] = frozenset(),
               domain_hint: bool = False) -> Answer:
        """Answer ``question``; ``skip`` leaves out paragraphs already shown ("fler"). ``domain_hint``:
        the NLU is confident the message asks about the assistant's topics, so a "none" verdict is
        hedged as "partial" (the nearest quotes, with what is missing said first) rather than declined."""
        n = self.settings.max_citations
        limit = self.engine.settings.max_query_chars
        # A chatty message longer than the search takes (the chat accepts more) is searched as its question
        # sentence(s), or its end, where the question usually is: a 630-character message was refused.
        query = question if len(question) <= limit else (question_focus(question) or question)[-limit:].strip()
        try:
            result = self.engine.search(query, min(self.settings.max_k, CANDIDATES + len(skip)))
        except QueryError as exc:
            text = str(exc) if language == SWEDISH else texts.query_refused_en()
            return Answer(question, language, "none", text, text, reason="invalid")
        analysis = self.terms.analyse(result.query, result.english)
        features = self.features(result, analysis, result.hits)
        verdict = self.model.verdict(features)
        missing = self.missing_names(result, analysis)
        if verdict.coverage == "none" and domain_hint:
            verdict = Verdict("partial", verdict.probabilities)
        if verdict.coverage == "full" and missing:
            # The question names something no paragraph mentions ("F-skatt", "GDPR-avtal"): whatever
            # else the documents say, they do not answer that part, and the reply must say so first.
            verdict = Verdict("partial", verdict.probabilities)
        if verdict.coverage == "none" or not result.hits:
            # Declined: whatever the whole message names that no paragraph mentions is worth saying.
            named = missing or analysis.missing_names()
            text = texts.not_covered(language, named)
            return Answer(question, language, "none", text, text, missing=named, evidence=result.evidence,
                          verdict=verdict, reason="not_covered")
        candidates = [h for h in result.hits if h.paragraph_id not in skip][:CANDIDATES]
        if not candidates:
            text = texts.no_more_results(language)  # nothing further to quote: answered=False ends the paging
            return Answer(question, language, "none", text, text, evidence=result.evidence, verdict=verdict,
                          reason="no_more")
        # Citations keep the search's rank order; the quotes that answer lead the text, whichever [n] they are.
        cited = candidates[:n]
        ranked = self.picker.scored(result, cited, analysis, asks_figure(result.query))  # once per answer
        quotes = self.picker.best_per_paragraph(result, cited, ranked)
        lead = max(quotes.values(), key=lambda q: q.score)
        leads = [lead, *self.picker.second_quote(result, ranked, lead),
                 *self.picker.part_quotes(result, cited, result.query, result.english, lead)]
        lead_quotes: dict[str, list[Quote]] = {}
        for q in leads:
            lead_quotes.setdefault(q.paragraph_id, []).append(q)
        citations = []
        for number, hit in enumerate(cited, 1):
            own = lead_quotes.get(hit.paragraph_id, [])
            if not own:  # a supporting citation: its best sentence, and the next best when nearly as good
                best = quotes[hit.paragraph_id]
                own = [best, *self.picker.second_quote(result, ranked, best)]
            quote = joined(own, result.sentences.get(hit.paragraph_id, ()))
            citations.append(Citation.from_hit(number, hit, quote))
        lead_numbers = [c.number for c in citations if c.paragraph_id in lead_quotes]
        coverage: Coverage = verdict.coverage
        follow_up = not skip
        text = texts.compose_answer(language, coverage, citations, lead_numbers, missing, follow_up=follow_up)
        body = texts.compose_answer(language, coverage, citations, lead_numbers, missing, follow_up=follow_up,
                                    sources=False)
        return Answer(question, language, coverage, text, body, citations, lead_numbers, missing if coverage == "partial" else [],
                      result.evidence, verdict)

    def quote_paragraph(self, hit: Hit, number: int = 1) -> Citation:
        return Citation.from_hit(number, hit, shorten(hit.text, 1500))
