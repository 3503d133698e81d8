"""What a question asks about, in terms the corpus can be checked against.

A question's informative words are checked against the corpus vocabulary (Swedish stems with
diacritics folded, compound parts, hyphenated words as written, the English glossary): a specific
word that no paragraph uses ("F-skatt", "GDPR", "moms") is strong evidence that the documents do not
answer the question, and it is what the reply names as missing ("Dokumenten tar inte upp F-skatt").
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from index.glossary import GLOSSARY
from index.lexical import MIN_PART, Analyzer, fold, stems, words

# Words, hyphenated words kept whole ("F-skatt", "IOP-avtal"); bounded, so nothing can backtrack.
TOKEN_RE = re.compile(r"[^\W_]{1,40}(?:-[^\W_]{1,40}){0,4}", re.UNICODE)
MAX_QUESTION_CHARS = 2000
# Words this common in their language say nothing specific when the corpus lacks them…
COMMON_ZIPF = 4.4
# …and words this common ("tar", "göra", "take") say nothing about the topic at all.
VERY_COMMON_ZIPF = 5.3
# A missing word is named to the user ("Dokumenten tar inte upp …") when it looks like a term.
NAMEABLE_ZIPF = 3.0
NAMEABLE_LENGTH = 11
# A word rarer than this that the corpus lacks is likely a typo ("ideel", "anonsera", "upphandlig"): when a
# corpus stem of at least TYPO_LENGTH letters is one letter away (left out, added, wrong or swapped), the
# word counts as that one. Real words the documents do not use ("fristen", "GDPR", "moms") are commoner.
TYPO_ZIPF = 2.0
TYPO_LENGTH = 5
MIN_INFLECTED = 6  # stems at least this long may match another inflection of the same word …
MAX_ENDING = 3  # … that differs by at most this many final letters
# Chat framing: words that ask, greet or hedge rather than name a topic.
FRAMING = frozenset(fold(w) for w in """
hej hejsan hallå tjena tack snälla undrar undra fråga frågor frågan fundera funderar funderingar
vet veta förstår förstå förklara berätta hjälp hjälpa behöver behov tänker tänkt typ liksom alltså asså
ju väl nog bara egentligen exakt ungefär precis kanske gärna lite mycket jätte rätt riktigt bra dålig
någon något några allt alla annan andra samma sådan sådana sätt grej grejen grejer saker sak
hi hello hey thanks thank please wonder wondering question questions ask asking know understand explain
help need needs want wants think thinking maybe just really actually exactly basically kind sort
something anything everything someone anyone thing things way ways stuff lot lots bit quite
""".split())


@dataclass(frozen=True)
class QuestionTerm:
    surface: str  # as the user wrote it
    keys: tuple[str, ...]  # stems to look up (folded)
    known: bool  # the corpus uses it (or its parts, or its glossary translation)
    zipf: float  # how common the word is in its language (0 = unknown)
    weight: float  # idf in the corpus (unknown words get the maximum)

    @property
    def informative(self) -> bool:
        return self.zipf < VERY_COMMON_ZIPF

    @property
    def nameable(self) -> bool:
        s = self.surface
        return ("-" in s or s[:1].isupper() or len(s) >= NAMEABLE_LENGTH or self.zipf < NAMEABLE_ZIPF)

    @property
    def is_missing(self) -> bool:
        """A specific word no paragraph uses: absence of a common word means little."""
        return not self.known and self.zipf < COMMON_ZIPF


@dataclass(frozen=True)
class TermAnalysis:
    terms: tuple[QuestionTerm, ...]

    @property
    def informative(self) -> tuple[QuestionTerm, ...]:
        return tuple(t for t in self.terms if t.informative)

    @property
    def missing(self) -> tuple[QuestionTerm, ...]:
        """Specific words no paragraph uses: what the documents do not cover."""
        return tuple(t for t in self.terms if t.informative and t.is_missing)

    @property
    def missing_share(self) -> float:
        informative = self.informative
        return len(self.missing) / len(informative) if informative else 0.0

    def missing_names(self, limit: int = 3) -> list[str]:
        """The missing words worth naming to the user: terms (names and acronyms, hyphenated or long
        compounds, rare words), not everyday verbs or adjectives the documents happen not to use."""
        seen: list[str] = []
        for t in self.missing:
            if not t.nameable:
                continue
            if t.surface.lower() not in (s.lower() for s in seen):
                seen.append(t.surface)
        return seen[:limit]

    def share_in(self, paragraph_terms: set[str]) -> float:
        """Idf-weighted share of the informative known terms that ``paragraph_terms`` holds."""
        known = [t for t in self.informative if t.known]
        total = sum(t.weight for t in known)
        if not total:
            return 0.0
        found = sum(t.weight for t in known if any(k in paragraph_terms for k in t.keys))
        return found / total


@lru_cache(maxsize=50_000)
def _zipf(word: str, lang: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, lang)


def _glossary_words() -> dict[str, list[str]]:
    """English word -> the Swedish words of every glossary entry it is part of."""
    out: dict[str, list[str]] = {}
    for english, swedish in GLOSSARY.items():
        for w in english.split():
            out.setdefault(w, []).extend(swedish.split())
    return out


class TermAnalyzer:
    """Built once from the paragraphs' texts (not from example questions: only what a paragraph says counts)."""

    def __init__(self, paragraph_texts: Iterable[str], restore=None):
        texts = list(paragraph_texts)
        self.paragraph_terms: list[set[str]] = []
        df: Counter[str] = Counter()
        raw: set[str] = set()
        for text in texts:
            tokens = [t.lower() for t in TOKEN_RE.findall(text)]
            raw.update(fold(t) for t in tokens)
            terms = set(stems(words(text)))
            terms.update(fold(t.replace("-", "")) for t in tokens if "-" in t)
            self.paragraph_terms.append(terms)
            df.update(terms)
        self.vocabulary = frozenset(df)
        self._sorted = sorted(self.vocabulary)
        self.raw_words = frozenset(raw)
        self._splitter = Analyzer(frozenset(t for t in self.vocabulary if len(t) >= MIN_PART))
        n = max(1, len(texts))
        self.idf = {t: math.log(1 + n / c) for t, c in df.items()}
        self.max_idf = math.log(1 + n)
        self._restore = restore or (lambda w: w)
        self._glossary = _glossary_words()
        self._deletions: dict[str, list[str]] | None = None  # built on the first typo

    def _near(self, key: str) -> str | None:
        """The corpus stem ``key`` is a slip of: one letter left out, one too many, or two neighbours
        swapped ("ideel" for "ideell", "anonser" for "annonser"); the most used one when several are. A
        wrong letter does not count: "frist" is not "brist", nor "inlag" "bilag". None when there is none."""
        if len(key) < TYPO_LENGTH or len(key) > 40:
            return None
        if self._deletions is None:
            index: dict[str, list[str]] = {}
            for term in self._sorted:
                if len(term) >= TYPO_LENGTH:
                    for i in range(len(term)):
                        index.setdefault(term[:i] + term[i + 1:], []).append(term)
            self._deletions = index
        found = set(self._deletions.get(key, ()))  # a letter left out of ``key``
        for i in range(len(key)):
            shorter = key[:i] + key[i + 1:]
            if shorter in self.vocabulary and len(shorter) >= TYPO_LENGTH:
                found.add(shorter)  # a letter too many
        for i in range(len(key) - 1):
            swapped = key[:i] + key[i + 1] + key[i] + key[i + 2:]
            if swapped != key and swapped in self.vocabulary:
                found.add(swapped)
        return min(found, key=lambda t: (self.idf.get(t, self.max_idf), t)) if found else None

    def stem(self, word: str) -> str:
        return stems([word.lower()])[0]

    def _inflected(self, key: str) -> bool:
        """Whether the corpus has the word in another inflection the stemmer does not unify
        ("tröskelvärden" -> "troskelvard", but "tröskelvärdena" -> "troskelvarden"): a vocabulary
        term that extends ``key`` by at most a few letters, or that ``key`` extends."""
        if len(key) < MIN_INFLECTED:
            return False
        i = bisect.bisect_left(self._sorted, key)
        if i < len(self._sorted) and self._sorted[i].startswith(key) and len(self._sorted[i]) - len(key) <= MAX_ENDING:
            return True
        return any(key[:-n] in self.vocabulary for n in range(1, MAX_ENDING + 1) if len(key) - n >= MIN_INFLECTED)

    def _known(self, key: str) -> bool:
        if key in self.vocabulary or self._inflected(key):
            return True
        parts = self._splitter.compound_parts(key)
        return bool(parts) and all(p in self.vocabulary or self._inflected(p) for p in parts)

    def _term(self, surface: str, english: bool) -> QuestionTerm:
        low = surface.lower()
        if english:
            zipf = _zipf(low, "en")
            key = self.stem(low)
            if fold(low) in self.raw_words:  # acronyms, names, loanwords the documents use as they are
                return QuestionTerm(surface, (key,), True, zipf, self.idf.get(key, self.max_idf))
            swedish = self._glossary.get(low)
            if swedish:
                keys = tuple(stems([w.lower() for w in swedish]))
                known = any(self._known(k) for k in keys)
                return QuestionTerm(surface, keys, known, zipf, max(self.idf.get(k, 0.0) for k in keys) or self.max_idf)
            # An English word with no glossary entry cannot be checked against Swedish text: it counts only
            # when it looks like a term ("GDPR", "F-tax", "Skatteverket"), not as an ordinary word.
            if "-" in surface or surface[:1].isupper():
                if "-" not in surface and zipf >= COMMON_ZIPF:  # "Now", "Many", "Should" opening a sentence
                    return QuestionTerm(surface, (key,), False, VERY_COMMON_ZIPF, self.max_idf)
                return QuestionTerm(surface, (key,), False, 0.0, self.max_idf)
            return QuestionTerm(surface, (key,), False, VERY_COMMON_ZIPF, self.max_idf)
        restored = self._restore(low)
        if "-" in restored and low in self._glossary:  # "non-profit" in a Swedish message
            return self._term(surface, english=True)
        if "-" in restored:
            parts = [p for p in restored.split("-") if p]
            whole = fold("".join(parts))
            if min(len(p) for p in parts) == 1 or whole in self.vocabulary:  # "F-skatt", "A-kassa": one word
                return QuestionTerm(surface, (whole,), whole in self.vocabulary, 0.0, self.idf.get(whole, self.max_idf))
            keys = tuple(self.stem(p) for p in parts)
            known = all(self._known(k) for k in keys)
            return QuestionTerm(surface, keys, known, 0.0, max(self.idf.get(k, self.max_idf) for k in keys))
        key = self.stem(restored)
        known = self._known(key)
        if not known and low in self._glossary:  # an English word in a mixed or short message
            return self._term(surface, english=True)
        zipf = _zipf(restored, "sv")
        if not known and zipf < TYPO_ZIPF:
            near = self._near(key)  # "ideel" is "ideell": not a word the documents lack
            if near is not None:
                return QuestionTerm(surface, (near,), True, zipf, self.idf.get(near, self.max_idf))
        return QuestionTerm(surface, (key,), known, zipf, self.idf.get(key, self.max_idf))

    def analyse(self, question: str, english: bool) -> TermAnalysis:
        from index.lexical import _stopwords

        stop = _stopwords()
        out: list[QuestionTerm] = []
        text = question[:MAX_QUESTION_CHARS]
        for match in TOKEN_RE.finditer(text):
            token = match.group(0)
            if text[match.end():match.end() + 1] in ("'", "’") and english:
                continue  # "Isn't", "don't", "what's": the contraction's first half is no term
            low = token.lower()
            if low in stop or fold(low) in FRAMING or low.isdigit() or (len(low) < 2) or (len(low) < 3 and "-" not in low):
                continue
            if any(c.isdigit() for c in low):  # amounts, years, paragraph numbers: not topic words
                continue
            out.append(self._term(token, english))
        return TermAnalysis(tuple(out))
