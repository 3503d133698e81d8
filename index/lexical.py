"""Lexical side of the search: Swedish analysis (stemming, diacritic folding, compound parts) + BM25.

Text and queries go through the same analyser: lower-case, split into words, drop stop words,
Snowball-stem (Swedish), then fold diacritics so "foretag" finds "företag". Long compounds also
index their known parts ("direktupphandlingsgränsen" -> "direktupphandling", "gräns") so a query
for one part finds the compound, and adjacent stems are indexed as pairs (phrases).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
MIN_PART = 4
EXTRA_STOPWORDS = {
    "kan", "ska", "får", "vill", "finns", "också", "även", "eller", "samt", "hur", "vad", "vilka", "vilken",
    "vilket", "varför", "när", "nån", "något", "någon", "några", "nåt", "the", "a", "an", "of", "to", "in",
    "and", "or", "is", "are", "what", "how", "why", "can", "do", "does", "we", "our", "for", "it", "that",
    "be", "on", "with", "as", "by", "if", "there", "their", "they", "this", "you", "i", "me", "my", "vi", "oss",
}


def fold(text: str) -> str:
    """Strip diacritics: "företag" -> "foretag", "idéburen" -> "ideburen"."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_SWEDISH

    words = set(STOPWORDS_SWEDISH) | EXTRA_STOPWORDS
    return frozenset(words | {fold(w) for w in words})


class _Stemmer:
    """PyStemmer is not thread-safe; one instance per thread."""

    _local = threading.local()

    @classmethod
    def get(cls):
        stemmer = getattr(cls._local, "stemmer", None)
        if stemmer is None:
            import Stemmer

            stemmer = cls._local.stemmer = Stemmer.Stemmer("swedish")
        return stemmer


def words(text: str) -> list[str]:
    stop = _stopwords()
    return [w for w in WORD_RE.findall(text.lower()) if w not in stop and (len(w) > 1 or w.isdigit())]


def stems(tokens: list[str]) -> list[str]:
    return [fold(s) for s in _Stemmer.get().stemWords(tokens)]


class Analyzer:
    """Turns text into index terms; knows the corpus vocabulary for compound splitting."""

    def __init__(self, vocabulary: set[str] | frozenset[str] = frozenset()):
        self.vocabulary = frozenset(vocabulary)

    def compound_parts(self, term: str) -> list[str]:
        """Split a long stemmed term into two known vocabulary terms, if possible."""
        if len(term) < 2 * MIN_PART + 1 or not self.vocabulary:
            return []
        best: list[str] = []
        for cut in range(MIN_PART, len(term) - MIN_PART + 1):
            head, tail = term[:cut], term[cut:]
            head_options = [head, head[:-1]] if head.endswith("s") and len(head) > MIN_PART else [head]
            for h in head_options:
                if h in self.vocabulary and tail in self.vocabulary:
                    if not best or len(h) + len(tail) > len(best[0]) + len(best[1]):
                        best = [h, tail]
        return best

    def terms(self, text: str) -> list[str]:
        """Stems, the known parts of compound stems, and adjacent-stem pairs ("social_foretag")
        so that multiword terms weigh more when they occur together."""
        base = stems(words(text))
        out = list(base)
        for term in base:
            out.extend(self.compound_parts(term))
        out.extend(f"{a}_{b}" for a, b in zip(base, base[1:]))
        return out


def build_vocabulary(texts: list[str]) -> set[str]:
    """Stemmed terms that occur in the corpus as words of their own (compound-splitting targets)."""
    vocab: set[str] = set()
    for text in texts:
        vocab.update(t for t in stems(words(text)) if len(t) >= MIN_PART)
    return vocab


class LexicalIndex:
    """BM25 (bm25s) over analysed paragraph texts."""

    def __init__(self, retriever, analyzer: Analyzer):
        self.retriever = retriever
        self.analyzer = analyzer

    @classmethod
    def build(cls, texts: list[str]) -> "LexicalIndex":
        import bm25s

        analyzer = Analyzer(build_vocabulary(texts))
        corpus_terms = [analyzer.terms(t) or ["\u2205"] for t in texts]
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index(corpus_terms, show_progress=False)
        return cls(retriever, analyzer)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every paragraph for the query (zeros when no term matches)."""
        terms = [t for t in self.analyzer.terms(query) if t in self.retriever.vocab_dict]
        n = int(self.retriever.scores["num_docs"])
        if not terms:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(terms), dtype=np.float32)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(directory), show_progress=False)
        (directory / "vocabulary.txt").write_text("\n".join(sorted(self.analyzer.vocabulary)), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        import bm25s

        retriever = bm25s.BM25.load(str(directory), show_progress=False, verbosity=0)
        vocab_file = directory / "vocabulary.txt"
        vocab = set(vocab_file.read_text(encoding="utf-8").split("\n")) if vocab_file.exists() else set()
        return cls(retriever, Analyzer(vocab - {""}))
