"""Hybrid search: semantic (FAISS over e5 embeddings) and lexical (BM25) rankings, fused."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .embed import Embedder, QueryTunable, SentenceTransformerEmbedder
from .onnx_query import OnnxQueryEncoder
from .paragraphs import Paragraph
from .query import QueryRewriter, question_focus
from .questions import StaffQuestions, question_key
from .settings import Settings, get_settings
from .store import REBUILD_HINT, DocumentInfo, IndexMismatchError, LoadedIndex, load_index


log = logging.getLogger(__name__)
STAFF_CHECK_SECONDS = 1.0  # how often a search looks at the staff examples file (one stat call)


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
class Evidence:
    """How strongly the corpus answers the query at all, on absolute scales (unlike hit scores,
    which are rescaled per query): the best cosine similarity of the semantic search and the
    best raw BM25 score. The assistant's no-answer decision is calibrated on these."""

    dense_max: float = 0.0
    lexical_max: float = 0.0
    example_max: float = 0.0  # best cosine to an example question (0 without examples)
    sentence_max: float = 0.0  # best cosine to any single sentence of the corpus


@dataclass(frozen=True)
class ScoredSentence:
    """A sentence of a hit's paragraph with its cosine similarity to the query."""

    text: str
    position: int  # its place among the paragraph's sentences
    similarity: float


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    took_ms: float
    english: bool = False
    evidence: Evidence = field(default_factory=Evidence)
    sentences: dict[str, tuple[ScoredSentence, ...]] = field(default_factory=dict)  # per hit paragraph id


@dataclass(frozen=True)
class ParagraphContext:
    paragraph: Hit
    before: list[Hit] = field(default_factory=list)
    after: list[Hit] = field(default_factory=list)


def _rescale(scores: np.ndarray, depth: int) -> np.ndarray:
    if len(scores) == 0:
        return scores.astype(np.float64)
    top = float(scores.max())
    floor = float(np.partition(scores, -min(depth, len(scores)))[-min(depth, len(scores))])
    if top <= 0 and floor <= 0 and top == floor:
        return np.zeros(len(scores))
    return np.clip((scores - floor) / (top - floor + 1e-9), 0.0, 1.0)


def _similarities(index, vectors: np.ndarray) -> np.ndarray:
    """Every query vector's inner product with every vector of a FAISS index (exact), in the index's
    order: shape (queries, index size); -1 where FAISS returns no id. Through FAISS rather than numpy:
    a numpy (OpenBLAS) product left BLAS threads spinning against torch's on 2 cores and tripled the
    time of every search."""
    out = np.full((len(vectors), index.ntotal), -1.0, dtype=np.float32)
    sims, ids = index.search(vectors, index.ntotal)
    for row, (s, i) in enumerate(zip(sims, ids)):
        valid = i >= 0
        out[row, i[valid]] = s[valid]
    return out


def _top(scores: np.ndarray) -> float:
    return round(float(scores.max()), 6) if len(scores) else 0.0


def normalize_query(query: str) -> str:
    return re.sub(r"\s+", " ", query).strip()


class SearchEngine:
    """Loads the index and the model once; ``search`` is thread-safe.

    The example-question channel can grow while the engine runs (``add_example_questions``; the staff
    inbox's saved examples, read from knowledge/questions/staff.jsonl by ``refresh_staff_questions``, which
    every search calls at most once a second). Growing it is copy-on-write: a new FAISS index and owner
    array are built aside and swapped in as one tuple, so a search in another thread reads either the old
    pair or the new one, never a half-written index; writers take a lock."""

    def __init__(self, index: LoadedIndex, embedder: Embedder, settings: Settings):
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self._docs = {d.doc_id: d for d in index.manifest.documents}
        self._by_id = {p.paragraph_id: i for i, p in enumerate(index.paragraphs)}
        self.rewriter = QueryRewriter([p.text for p in index.paragraphs])
        self._examples = (index.questions, np.asarray(index.question_owners, dtype=np.int64))
        self._examples_lock = threading.Lock()
        self._example_keys = set(index.manifest.staff_question_keys)  # staff examples the channel holds
        self.staff_questions = StaffQuestions(settings.knowledge_dir)
        self._staff_seen: tuple | None = None  # (inode, size, mtime) of the staff file last read
        self._staff_checked = 0.0
        self._staff_lock = threading.Lock()
        self._sentences_of: dict[int, list[int]] = {}
        for j, owner in enumerate(index.sentence_owners):
            self._sentences_of.setdefault(owner, []).append(j)

    @classmethod
    def load(cls, settings: Settings | None = None, embedder: Embedder | None = None, check_corpus: bool = True) -> "SearchEngine":
        settings = settings or get_settings()
        index = load_index(settings.index_dir, embedder.name if embedder else settings.model,
                           settings.knowledge_dir if check_corpus else None)
        if embedder is None:
            if settings.query_runtime == "onnx" and index.query_encoder is not None:
                # Questions go through the exported graph (tuned layers included): no torch here.
                embedder = OnnxQueryEncoder(index.path, index.manifest.query_encoder, settings.model,
                                            settings.onnx_threads, settings.query_precision)
            else:
                embedder = SentenceTransformerEmbedder(settings)
        if index.query_layers is not None and not isinstance(embedder, OnnxQueryEncoder):
            if not isinstance(embedder, QueryTunable):
                raise IndexMismatchError(
                    f"{index.query_layers} holds a tuned query encoder that {embedder.name} cannot load; "
                    f"rebuild with ASSISTANT_QUERY_TUNING_EPOCHS=0: {REBUILD_HINT}"
                )
            embedder.use_query_layers(index.query_layers)
        engine = cls(index, embedder, settings)
        if embedder.dimension != index.manifest.dimension:
            raise IndexMismatchError(
                f"{settings.index_dir / 'dense.faiss'} holds {index.manifest.dimension}-dimensional vectors but "
                f"{embedder.name} gives {embedder.dimension}; rebuild with: {REBUILD_HINT}"
            )
        engine.refresh_staff_questions(force=True)
        engine.search("Vad är ett idéburet offentligt partnerskap och en reserverad upphandling?", 1)  # warm-up
        return engine

    # -- example questions added while running ------------------------------------------------
    @property
    def example_count(self) -> int:
        return int(self._examples[0].ntotal) if self._examples[0] is not None else 0

    def add_example_questions(self, examples: list[tuple[str, str]]) -> int:
        """Add (paragraph id, question) pairs to the example-question channel, embedded as the build embeds
        them; pairs whose paragraph is not in the index, or that the channel already holds (as a staff
        example), are skipped. Returns how many were added. Thread-safe (see the class)."""
        import faiss

        with self._examples_lock:
            new, keys = [], set()
            for paragraph_id, question in examples:
                position = self._by_id.get(paragraph_id)
                key = question_key(paragraph_id, question)
                if position is None or key in self._example_keys or key in keys:
                    continue
                keys.add(key)
                new.append((position, " ".join(question.split())))
            if not new:
                return 0
            vectors = np.ascontiguousarray(self.embedder.encode_queries([q for _, q in new]), dtype=np.float32)
            old, owners = self._examples
            grown = faiss.IndexFlatIP(vectors.shape[1])
            if old is not None and old.ntotal:
                grown.add(old.reconstruct_n(0, old.ntotal))
            grown.add(vectors)
            owners = np.concatenate([owners, np.asarray([p for p, _ in new], dtype=np.int64)])
            self._examples = (grown, owners)  # one assignment: searches see the old pair or the new one
            self._example_keys |= keys
            self.index.questions, self.index.question_owners = grown, owners.tolist()
            return len(new)

    def refresh_staff_questions(self, force: bool = False) -> int:
        """Take in the staff examples file's new lines (written by the staff inbox, possibly in another
        process). Looks at the file at most once every STAFF_CHECK_SECONDS unless ``force``, and reads it
        only when its size, time or inode changed. Never raises: a search must not fail because of it."""
        now = time.monotonic()
        if not force and now - self._staff_checked < STAFF_CHECK_SECONDS:
            return 0
        if not self._staff_lock.acquire(blocking=force):
            return 0  # another thread is reading it right now
        try:
            self._staff_checked = now
            try:
                st = self.staff_questions.path.stat()
            except OSError:
                return 0
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
            if seen == self._staff_seen:
                return 0
            added = self.add_example_questions([(q.paragraph_id, q.question) for q in self.staff_questions.read()])
            self._staff_seen = seen
            if added:
                log.info("%d example question(s) from %s added to the running search", added, self.staff_questions.path)
            return added
        except Exception:  # noqa: BLE001 - logged; the search goes on with the examples it has
            log.exception("could not read %s", self.staff_questions.path)
            return 0
        finally:
            self._staff_lock.release()

    # -- helpers -----------------------------------------------------------------------------
    def _hit(self, i: int, score: float) -> Hit:
        p: Paragraph = self.index.paragraphs[i]
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

    def semantic_scores(self, query: str, focus: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every paragraph: the cosine similarity of the query to the paragraph, and to the
        closest of the paragraph's example questions (-1 for a paragraph without examples); and the
        query's cosine to every sentence. With a ``focus`` (the question sentence of a long message,
        see ``question_focus``) each is the mean of the message's and the focus's similarity; both
        are embedded in one call. Exact search: the corpus is small."""
        vectors = self.embedder.encode_queries([query, focus] if focus else [query])
        s_index = self.index.sentence_index
        sentences = _similarities(s_index, vectors).mean(axis=0) if s_index is not None and s_index.ntotal \
            else np.zeros(0, dtype=np.float32)
        paragraph = _similarities(self.index.dense, vectors)
        examples = np.full_like(paragraph, -1.0)
        questions, owners = self._examples  # read once: the channel may be swapped meanwhile
        if questions is not None and questions.ntotal:
            for row, sims in zip(examples, _similarities(questions, vectors)):
                np.maximum.at(row, owners, sims)
        return paragraph.mean(axis=0), examples.mean(axis=0), sentences

    def lexical_scores(self, query: str) -> np.ndarray:
        return self.index.lexical.scores(query)

    def fuse(self, dense: np.ndarray, lexical: np.ndarray, examples: np.ndarray | None = None) -> np.ndarray:
        """Weighted sum of the scores, each rescaled per query so that its best paragraph scores 1
        and its n-th best (n = the fusion depth) scores 0. Rescaling by rank depth rather than by
        min/max keeps one retriever's long tail of weak scores from flattening the other. The
        example-question similarity is rescaled like the paragraph similarity."""
        s = self.settings
        fused = s.dense_weight * _rescale(dense, s.dense_depth) + s.lexical_weight * _rescale(lexical, s.lexical_depth)
        if examples is not None and s.question_weight > 0:
            fused = fused + s.question_weight * _rescale(examples, s.dense_depth)
        return fused

    # -- public API ----------------------------------------------------------------------------
    def search(self, query: str, k: int = 5) -> SearchResult:
        start = time.perf_counter()
        q = self.validate(query, k)
        self.refresh_staff_questions()
        rq = self.rewriter.rewrite(q)
        focus = question_focus(q)
        (dense, examples, sentence_sims) = self.semantic_scores(rq.dense, self.rewriter.rewrite(focus).dense if focus else None)
        lexical = self.lexical_scores(rq.lexical)
        fused = self.fuse(dense, lexical, examples)
        order = [int(i) for i in np.argsort(-fused, kind="stable")[:k] if fused[i] > 0]
        hits = [self._hit(i, fused[i]) for i in order]
        evidence = Evidence(
            dense_max=_top(dense), lexical_max=_top(lexical), example_max=max(0.0, _top(examples)),
            sentence_max=_top(sentence_sims),
        )
        sentences = {
            self.index.paragraphs[i].paragraph_id: tuple(
                ScoredSentence(self.index.sentences[j], n, round(float(sentence_sims[j]), 6))
                for n, j in enumerate(self._sentences_of.get(i, []))
            )
            for i in order
        } if len(sentence_sims) else {}
        return SearchResult(q, hits, round((time.perf_counter() - start) * 1000, 2), rq.english, evidence, sentences)

    def position(self, paragraph_id: str) -> int | None:
        """The paragraph's place in the index (None for an unknown id)."""
        return self._by_id.get(paragraph_id)

    def same_document(self, i: int, j: int) -> bool:
        """Whether position ``j`` exists and holds a paragraph of the same document as position ``i``."""
        paragraphs = self.index.paragraphs
        return 0 <= j < len(paragraphs) and paragraphs[j].doc_id == paragraphs[i].doc_id

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

    def documents(self) -> list[DocumentInfo]:
        return list(self.index.manifest.documents)
