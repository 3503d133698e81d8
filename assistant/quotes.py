"""Which sentences to quote: the ones that answer, chosen by meaning as well as words.

Every sentence of the index has its own embedding (built with the index), so the search reports each
candidate sentence's cosine to the question. A sentence's score mixes that similarity (rescaled
among the candidates of this question), the idf-weighted share of the question's informative words
it holds, and the strength of its paragraph; a question asking for a figure ("hur mycket", "what is
the limit") prefers sentences that state one. A two-part question gets the best sentence for each
part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.lexical import stems, words
from index.search import Hit, ScoredSentence, SearchResult

from .terms import TermAnalysis, TermAnalyzer

SEMANTIC_WEIGHT = 0.5
LEXICAL_WEIGHT = 0.35
PARAGRAPH_WEIGHT = 0.15
FIGURE_BONUS = 0.15
SHORT_SENTENCE = 90  # a sentence this short is quoted with the next one (definitions often continue)
QUOTE_CHARS = 420

_FIGURE_QUESTION = re.compile(
    r"\b(?:hur (?:mycket|stor|stora|höga?|länge|många)|vilket belopp|belopp|gräns(?:en|värde)?|tröskelvärde\w{0,3}"
    r"|kronor|kr|procent|how (?:much|high|long|many)|limit|threshold\w{0,1}|amount|percent)\b",
    re.IGNORECASE,
)
_HAS_FIGURE = re.compile(r"\d")
# Where a two-part question turns to its second part: "…? och när …", ", och hur …", "…, and when …".
_PART_BREAK = re.compile(
    r"\?\s+|[,;]?\s+(?:och|samt|men|and|but)\s+(?=(?:när|hur|vad|vilka|vilken|vilket|varför|kan|får|måste|ska|finns"
    r"|when|how|what|which|why|can|may|must|should|is|are|does|do)\b)",
    re.IGNORECASE,
)
# A sentence with one of these words points back to the one before ("Bilaga 2 omfattar sociala tjänster …
# Direktupphandlingsgränsen för dessa tjänster är 8 109 450 kronor"): quoted alone, "dessa tjänster" read as
# every purchase, and the bilaga 2 limit as the general one. Such a sentence is quoted with the one before.
_POINTS_BACK = re.compile(
    r"\b(?:dessa|denna|detta|sådana|sådan|sådant|ovanstående|nämnda|these|those|such)\b", re.IGNORECASE)
MIN_PART_CHARS = 12
SECOND_SENTENCE_RATIO = 0.6


@dataclass(frozen=True)
class Quote:
    paragraph_id: str
    text: str  # what is quoted (one sentence, or two when the first is short)
    position: int  # the first sentence's place in its paragraph
    score: float
    end: int = -1  # the last sentence's place (-1: the first's)

    @property
    def last(self) -> int:
        return max(self.position, self.end)

    def covers(self, position: int) -> bool:
        return self.position <= position <= self.last


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    for mark in ("”", '"'):  # a quotation mark whose partner lies outside the sentence
        if text.count(mark) % 2:
            text = text[:-1].rstrip() if text.endswith(mark) else text[1:].lstrip() if text.startswith(mark) else text
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:–-")
    return cut + " …"


def question_parts(question: str) -> list[str]:
    """The parts of a two- (or more-) part question; one part for an ordinary question."""
    parts = [p.strip(" ,;?") for p in _PART_BREAK.split(question[:2000])]
    parts = [p for p in parts if len(p) >= MIN_PART_CHARS]
    return parts if len(parts) > 1 else [question]


def asks_figure(question: str) -> bool:
    return bool(_FIGURE_QUESTION.search(question[:2000]))


class QuotePicker:
    def __init__(self, terms: TermAnalyzer):
        self.terms = terms

    def _lexical(self, sentence: str, analysis: TermAnalysis) -> float:
        return analysis.share_in(set(stems(words(sentence))))

    def scored(self, result: SearchResult, hits: list[Hit], analysis: TermAnalysis,
               figure: bool) -> list[tuple[Hit, ScoredSentence, float]]:
        """Every sentence of ``hits`` with its combined score, best first."""
        rows = [(h, s) for h in hits for s in result.sentences.get(h.paragraph_id, ())]
        if not rows:
            return []
        sims = [s.similarity for _, s in rows]
        lo, hi = min(sims), max(sims)
        top_paragraph = max(h.score for h in hits) or 1.0
        out = []
        for hit, sentence in rows:
            semantic = (sentence.similarity - lo) / (hi - lo) if hi > lo else 1.0
            score = (SEMANTIC_WEIGHT * semantic + LEXICAL_WEIGHT * self._lexical(sentence.text, analysis)
                     + PARAGRAPH_WEIGHT * hit.score / top_paragraph)
            if figure and _HAS_FIGURE.search(sentence.text):
                score += FIGURE_BONUS
            out.append((hit, sentence, score))
        out.sort(key=lambda row: -row[2])
        return out

    def quote_of(self, result: SearchResult, hit: Hit, sentence: ScoredSentence, score: float) -> Quote:
        text = sentence.text
        following = result.sentences.get(hit.paragraph_id, ())
        position = end = sentence.position
        if len(text) < SHORT_SENTENCE and position + 1 < len(following):
            text, end = f"{text} {following[position + 1].text}", position + 1
        if 0 < position < len(following) and _POINTS_BACK.search(sentence.text[:QUOTE_CHARS]):
            before = following[position - 1].text
            if len(before) + len(text) < QUOTE_CHARS:  # never at the price of cutting the sentence that answers
                text, position = f"{before} {text}", position - 1
        return Quote(hit.paragraph_id, shorten(text), position, score, end)

    def best_per_paragraph(self, result: SearchResult, hits: list[Hit],
                           ranked: list[tuple[Hit, ScoredSentence, float]]) -> dict[str, Quote]:
        """The best quote of each hit's paragraph; ``ranked`` is :meth:`scored` for these hits."""
        best: dict[str, Quote] = {}
        for hit, sentence, score in ranked:
            if hit.paragraph_id not in best:
                best[hit.paragraph_id] = self.quote_of(result, hit, sentence, score)
        for hit in hits:  # a paragraph without sentence vectors (never in a built index) quotes its opening
            best.setdefault(hit.paragraph_id, Quote(hit.paragraph_id, shorten(hit.text), 0, 0.0))
        return best

    def second_quote(self, result: SearchResult, ranked: list[tuple[Hit, ScoredSentence, float]],
                     lead: Quote) -> list[Quote]:
        """The lead paragraph's next-best sentence in ``ranked`` (:meth:`scored`) when it scores nearly
        as well (an answer often takes two sentences that are not next to each other)."""
        for h, sentence, score in ranked:
            if h.paragraph_id != lead.paragraph_id or lead.covers(sentence.position):
                continue
            if score >= SECOND_SENTENCE_RATIO * lead.score:
                return [self.quote_of(result, h, sentence, score)]
            return []
        return []

    def part_quotes(self, result: SearchResult, hits: list[Hit], question: str, english: bool,
                    lead: Quote) -> list[Quote]:
        """For a two-part question, the best quote for each further part that the lead does not already give."""
        parts = question_parts(question)
        if len(parts) < 2:
            return []
        out: list[Quote] = []
        taken = [lead]
        for part in parts:
            analysis = self.terms.analyse(part, english)
            if not analysis.informative:
                continue
            ranked = self.scored(result, hits, analysis, asks_figure(part))
            if not ranked:
                continue
            hit, sentence, score = ranked[0]
            if any(q.paragraph_id == hit.paragraph_id and q.covers(sentence.position) for q in taken):
                continue
            quote = self.quote_of(result, hit, sentence, score)
            taken.append(quote)
            out.append(quote)
        return out


def joined(quotes: list[Quote], sentences: tuple[ScoredSentence, ...] = ()) -> str:
    """The quotes of one paragraph in reading order, joined by " … ", a sentence never twice (the excerpt
    repeated "Avtalslängden varierar …" on both sides of the "…"): of a quote that overlaps the one before,
    only the sentences after it are added (from ``sentences``, the paragraph's, by position)."""
    out: list[Quote] = []
    for q in sorted(quotes, key=lambda q: (q.position, -q.last)):
        if out and q.position <= out[-1].last:
            if q.last > out[-1].last and len(sentences) > q.last:
                rest = " ".join(s.text for s in sentences[out[-1].last + 1:q.last + 1])
                out.append(Quote(q.paragraph_id, shorten(rest), out[-1].last + 1, q.score, q.last))
            continue
        out.append(q)
    # A shortened quote ends in "…" already: one mark between two pieces, not "… …".
    return " … ".join([*(q.text.removesuffix(" …") for q in out[:-1]), *(q.text for q in out[-1:])])


def quote_parts(quote: str) -> list[str]:
    """The verbatim pieces of a quote: the sentences joined by " … ", without a shortening "…"."""
    return [p for p in (part.strip() for part in re.split(r"\s*…\s*", quote)) if p]
