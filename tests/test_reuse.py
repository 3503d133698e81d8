"""A rebuild takes the vectors of texts the previous index already holds, where the same encoders made them
(index/store.py PreviousVectors): the background query tuning of a first start and documents added later
embed only what is new. Fake embedder, tiny corpus."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from conftest import FakeEmbedder
from index.store import build_index, collect_paragraphs, read_manifest


class CountingEmbedder(FakeEmbedder):
    """The fake embedder with encoder ids, recording every text it is asked to embed."""

    def __init__(self, passage_id: str | None = "passages-v1", query_id: str | None = "queries-v1"):
        self.ids = {"passage": passage_id, "query": query_id}
        self.passages: list[str] = []
        self.queries: list[str] = []

    def encoder_id(self, kind: str) -> str | None:
        return self.ids[kind]

    def encode_passages(self, texts, show_progress=False):
        self.passages += texts
        return super().encode_passages(texts)

    def encode_queries(self, texts):
        self.queries += texts
        return super().encode_queries(texts)


@pytest.fixture
def knowledge(tiny_knowledge):
    _, paragraphs = collect_paragraphs(tiny_knowledge)
    rows = [{"paragraph_id": p.paragraph_id, "question": f"fråga {i} om {p.text.split()[0]}?", "lang": "sv"}
            for i, p in enumerate(paragraphs)]
    (tiny_knowledge / "questions").mkdir()
    (tiny_knowledge / "questions" / "tiny.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                                            encoding="utf-8")
    return tiny_knowledge


def vectors(index_dir, name):
    index = faiss.read_index(str(index_dir / name))
    return index.reconstruct_n(0, index.ntotal)


def test_an_unchanged_rebuild_embeds_nothing_and_gives_the_same_vectors(knowledge, tmp_path):
    index_dir = tmp_path / "index"
    first = CountingEmbedder()
    build_index(knowledge, index_dir, first)
    assert first.passages and first.queries
    before = {name: vectors(index_dir, name) for name in ("dense.faiss", "sentences.faiss", "questions.faiss")}
    again = CountingEmbedder()
    messages = []
    build_index(knowledge, index_dir, again, progress=messages.append)
    assert again.passages == [] and again.queries == []
    assert any("taken from the previous index" in m for m in messages)
    for name, old in before.items():
        np.testing.assert_array_equal(vectors(index_dir, name), old)
    manifest = read_manifest(index_dir)
    assert (manifest.passage_encoder_id, manifest.question_encoder_id) == ("passages-v1", "queries-v1")


def test_an_added_document_is_the_only_thing_embedded(knowledge, tmp_path):
    index_dir = tmp_path / "index"
    build_index(knowledge, index_dir, CountingEmbedder())
    (knowledge / "nytt.md").write_text("# Sociala klausuler\n\nEn social klausul ställer krav på sysselsättning i "
                                       "kontraktet. Den används i större upphandlingar.\n", encoding="utf-8")
    added = CountingEmbedder()
    build_index(knowledge, index_dir, added)
    assert added.passages and all("klausul" in t or "upphandlingar" in t for t in added.passages)
    assert added.queries == []
    # the same vectors, in the same places, as a build from nothing
    fresh_dir = tmp_path / "fresh"
    build_index(knowledge, fresh_dir, CountingEmbedder())
    for name in ("dense.faiss", "sentences.faiss", "questions.faiss"):
        np.testing.assert_array_equal(vectors(index_dir, name), vectors(fresh_dir, name))


@pytest.mark.parametrize("changed", ["passage", "query"])
def test_another_encoder_embeds_everything_again(knowledge, tmp_path, changed):
    index_dir = tmp_path / "index"
    build_index(knowledge, index_dir, CountingEmbedder())
    other = CountingEmbedder(**{f"{changed}_id": "v2"})
    build_index(knowledge, index_dir, other)
    n = read_manifest(index_dir)
    if changed == "passage":
        assert len(other.passages) == n.paragraph_count + n.sentence_count and other.queries == []
    else:
        assert len(other.queries) == n.question_count and other.passages == []


def test_no_encoder_id_means_no_reuse(knowledge, tmp_path):
    """A tuned query side has no id (it differs from build to build), nor has an embedder without ids."""
    index_dir = tmp_path / "index"
    build_index(knowledge, index_dir, CountingEmbedder(query_id=None))
    again = CountingEmbedder(query_id=None)
    build_index(knowledge, index_dir, again)
    assert len(again.queries) == read_manifest(index_dir).question_count and again.passages == []
    plain = FakeEmbedder()
    build_index(knowledge, index_dir, plain)  # no encoder_id at all
    assert read_manifest(index_dir).passage_encoder_id is None


def test_a_damaged_previous_index_is_embedded_again_not_trusted(knowledge, tmp_path):
    index_dir = tmp_path / "index"
    build_index(knowledge, index_dir, CountingEmbedder())
    (index_dir / "sentences.json").write_text("{broken", encoding="utf-8")
    meta = json.loads((index_dir / "questions.json").read_text(encoding="utf-8"))
    again = CountingEmbedder()
    build_index(knowledge, index_dir, again)
    assert len(again.passages) == read_manifest(index_dir).paragraph_count + read_manifest(index_dir).sentence_count
    assert meta["texts"]  # the questions' texts are stored beside their vectors, for the next build


class TunableEmbedder(CountingEmbedder):
    """Tuning changes the query side: after it the embedder has no query id and gives other vectors."""

    def __init__(self):
        super().__init__()
        self.tuned = False

    def encoder_id(self, kind: str) -> str | None:
        return None if kind == "query" and self.tuned else self.ids[kind]

    def tune_queries(self, questions, owners, passage_vectors, config, progress=None):
        from types import SimpleNamespace

        self.tuned = True
        return SimpleNamespace(questions=len(questions), steps=1, seconds=0.0, first_loss=1.0, last_loss=0.5)

    def save_query_layers(self, path):
        path.write_bytes(b"layers")
        return "0" * 64

    def use_query_layers(self, path):
        pass

    def encode_queries(self, texts):
        return -super().encode_queries(texts) if self.tuned else super().encode_queries(texts)


def test_the_tuning_after_a_deferred_build_embeds_every_question_again_but_no_paragraph(knowledge, tmp_path):
    """The background tuning of a first start: the paragraphs and sentences come from the untuned index, the
    example questions are embedded again with the tuned encoder (found by the reviewer: they were taken from
    the untuned index, so searches compared tuned questions with stock example vectors)."""
    from index.tune import TuningConfig

    index_dir = tmp_path / "index"
    build_index(knowledge, index_dir, CountingEmbedder())  # --defer-tuning
    untuned = vectors(index_dir, "questions.faiss")
    tuned = TunableEmbedder()
    build_index(knowledge, index_dir, tuned, tuning=TuningConfig(epochs=1))
    assert tuned.passages == [] and len(tuned.queries) == read_manifest(index_dir).question_count
    np.testing.assert_array_equal(vectors(index_dir, "questions.faiss"), -untuned)
    assert read_manifest(index_dir).question_encoder_id is None
