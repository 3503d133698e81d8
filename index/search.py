"""Hybrid search: semantic (FAISS over e5 embeddings) and lexical (BM25) rankings, fused."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .embed import Embedder, SentenceTransformerEmbedder
from .glossary import looks_english, swedish_terms
from .settings import Settings, get_settings
from .store import LoadedIndex, StoredParagraph, load_index

RRF_K = 60


class QueryError(ValueError):
    """The query cannot be searched; the message says why, in terms a user understands."""


@dataclass(frozen=True)
class Hit:
    paragraph_id: str
    doc_id: str
    title: str
    year: int | None
    section: str | None
    page: int | None
    text: str
    score: float


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    took_ms: float
    english: bool = False


@dataclass(frozen=True)
class ParagraphContext:
    paragraph: Hit
    before: list[Hit] = field(default_factory=list)
    after: list[Hit] = field(default_factory=list)


def normalize_query(query: str) -> str:
    return re.sub(r"\s+", " ", query).strip()


class SearchEngine:
    """Loads the index and the model once; ``search`` is thread-safe."""

    def __init__(self, index: LoadedIndex, embedder: Embedder, settings: Settings):
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self._docs = {d.doc_id: d for d in index.manifest.documents}
        self._by_id = {p.paragraph_id: i for i, p in enumerate(index.paragraphs)}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, settings: Settings | None = None, embedder: Embedder | None = None, check_corpus: bool = True) -> "SearchEngine":
        settings = settings or get_settings()
        embedder = embedder or SentenceTransformerEmbedder(settings)
        index = load_index(settings.index_dir, embedder.name, settings.knowledge_dir if check_corpus else None)
        engine = cls(index, embedder, settings)
        if embedder.dimension != index.manifest.dimension:
            from .store import REBUILD_HINT, IndexMismatchError

            raise IndexMismatchError(
                f"{settings.index_dir / 'dense.faiss'} holds {index.manifest.dimension}-dimensional vectors but "
                f"{embedder.name} gives {embedder.dimension}; rebuild with: {REBUILD_HINT}"
            )
        return engine

    # -- helpers -----------------------------------------------------------------------------
    def _hit(self, i: int, score: float) -> Hit:
        p: StoredParagraph = self.index.paragraphs[i]
        doc = self._docs.get(p.doc_id)
        return Hit(
            paragraph_id=p.paragraph_id, doc_id=p.doc_id, title=doc.title if doc else p.doc_id,
            year=doc.year if doc else None, section=p.section, page=p.page, text=p.text, score=round(float(score), 6),
        )

    def validate(self, query: str, k: int) -> str:
        q = normalize_query(query or "")
        if not q:
            raise QueryError("Frågan är tom. Skriv en fråga, till exempel ”Vad är IOP?”.")
        if len(q) > self.settings.max_query_chars:
            raise QueryError(f"Frågan är för lång ({len(q)} tecken, högst {self.settings.max_query_chars}). Korta ned den.")
        if not any(c.isalnum() for c in q):
            raise QueryError("Frågan innehåller inga ord att söka på.")
        if not 1 <= k <= self.settings.max_k:
            raise QueryError(f"k måste vara mellan 1 och {self.settings.max_k}.")
        return q

    def dense_scores(self, query: str) -> np.ndarray:
        """Best cosine similarity of each paragraph's units to the query (-1 for unseen)."""
        vector = self.embedder.encode_queries([query])
        n_units = self.index.dense.ntotal
        depth = min(n_units, max(self.settings.candidates * 4, 200))
        sims, ids = self.index.dense.search(vector, depth)
        scores = np.full(len(self.index.paragraphs), -1.0, dtype=np.float32)
        owners = self.index.owners[ids[0][ids[0] >= 0]]
        np.maximum.at(scores, owners, sims[0][ids[0] >= 0])
        return scores

    def lexical_scores(self, query: str, english: bool) -> np.ndarray:
        lexical_query = query
        if english:
            lexical_query = f"{query} {swedish_terms(query)}"
        return self.index.lexical.scores(lexical_query)

    def fuse(self, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        """Weighted reciprocal-rank fusion of the two rankings (top candidates of each)."""
        n = len(dense)
        c = min(self.settings.candidates, n)
        fused = np.zeros(n, dtype=np.float64)
        d_order = np.argsort(-dense)[:c]
        fused[d_order] += self.settings.dense_weight / (RRF_K + np.arange(1, len(d_order) + 1))
        lex_pos = np.flatnonzero(lexical > 0)
        l_order = lex_pos[np.argsort(-lexical[lex_pos])][:c]
        fused[l_order] += self.settings.lexical_weight / (RRF_K + np.arange(1, len(l_order) + 1))
        return fused

    # -- public API ----------------------------------------------------------------------------
    def search(self, query: str, k: int = 5) -> SearchResult:
        start = time.perf_counter()
        q = self.validate(query, k)
        english = looks_english(q)
        dense = self.dense_scores(q)
        lexical = self.lexical_scores(q, english)
        fused = self.fuse(dense, lexical)
        order = np.argsort(-fused, kind="stable")[:k]
        hits = [self._hit(int(i), fused[i]) for i in order if fused[i] > 0]
        return SearchResult(q, hits, round((time.perf_counter() - start) * 1000, 2), english)

    def paragraph(self, paragraph_id: str, neighbours: int = 1) -> ParagraphContext | None:
        i = self._by_id.get(paragraph_id)
        if i is None:
            return None
        doc_id = self.index.paragraphs[i].doc_id
        before = [self._hit(j, 0.0) for j in range(max(0, i - neighbours), i) if self.index.paragraphs[j].doc_id == doc_id]
        after = [
            self._hit(j, 0.0) for j in range(i + 1, min(len(self.index.paragraphs), i + 1 + neighbours))
            if self.index.paragraphs[j].doc_id == doc_id
        ]
        return ParagraphContext(self._hit(i, 0.0), before, after)

    def documents(self):
        return list(self.index.manifest.documents)
