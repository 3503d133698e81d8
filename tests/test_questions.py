"""Example questions (knowledge/questions/*.jsonl): parsing, matching to paragraphs, their effect
on search, and the checks that keep an index in step with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.documents import KnowledgeError
from index.questions import load_questions, match_questions
from index.search import SearchEngine
from index.store import REBUILD_HINT, IndexCorruptError, IndexMismatchError, build_index, collect_paragraphs, load_index

from conftest import CORPUS_DIR


def _paragraph_id(knowledge: Path, needle: str) -> str:
    return next(p.paragraph_id for p in collect_paragraphs(knowledge)[1] if needle in p.text)


def _write(knowledge: Path, lines: list[dict | str], name: str = "exempel.jsonl") -> Path:
    folder = knowledge / "questions"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l, ensure_ascii=False) for l in lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "expected an object"),
        ('{"question": "Vad är IOP?"}', "paragraph_id is missing"),
        ('{"paragraph_id": "iop-1", "question": "  "}', "question is missing or empty"),
        ('{"paragraph_id": "iop-1", "question": "Vad är IOP?", "lang": "de"}', "lang must be"),
    ],
)
def test_a_bad_line_is_reported_with_file_and_line(tiny_knowledge, line, message):
    path = _write(tiny_knowledge, [{"paragraph_id": "iop-1", "question": "Vad är IOP?"}, line])
    with pytest.raises(KnowledgeError, match=message) as err:
        load_questions(tiny_knowledge)
    assert f"{path}:2" in str(err.value)


def test_examples_are_matched_to_paragraphs_and_orphans_kept_apart(tiny_knowledge):
    pid = _paragraph_id(tiny_knowledge, "sanktioner")
    _write(tiny_knowledge, [
        {"paragraph_id": pid, "question": "Kan vi  få böter?", "lang": "sv"},
        {"paragraph_id": pid, "question": "kan vi få BÖTER?"},  # the same question again: kept once
        "",
        {"paragraph_id": "iop-0000000000", "question": "Ett stycke som inte finns"},
    ])
    questions = load_questions(tiny_knowledge)
    assert [q.question for q in questions][0] == "Kan vi få böter?"  # whitespace normalised
    ids = [p.paragraph_id for p in collect_paragraphs(tiny_knowledge)[1]]
    matched = match_questions(questions, ids)
    assert [q.question for q in matched.kept] == ["Kan vi få böter?"] and matched.owners == [ids.index(pid)]
    assert [q.paragraph_id for q in matched.orphans] == ["iop-0000000000"]
    assert matched.orphans[0].source.endswith("exempel.jsonl:4")


def test_an_example_question_finds_a_paragraph_that_shares_no_word_with_the_query(tiny_settings, fake_embedder):
    query = "Får vi böter om vi slarvar?"
    pid = _paragraph_id(tiny_settings.knowledge_dir, "sanktioner")
    build_index(tiny_settings.knowledge_dir, tiny_settings.index_dir, fake_embedder)
    without = SearchEngine.load(tiny_settings, fake_embedder).search(query, 3)
    assert not without.hits or without.hits[0].paragraph_id != pid

    _write(tiny_settings.knowledge_dir, [{"paragraph_id": pid, "question": "Kan kommunen ge oss böter om vi slarvar?"}])
    report = build_index(tiny_settings.knowledge_dir, tiny_settings.index_dir, fake_embedder)
    assert report.questions == 1 and report.orphan_questions == []
    engine = SearchEngine.load(tiny_settings, fake_embedder)
    assert engine.index.manifest.question_count == 1
    result = engine.search(query, 3)
    assert result.hits[0].paragraph_id == pid
    assert "böter" not in result.hits[0].text  # the paragraph is returned as written, not with its examples
    # the example only adds: other searches still find their paragraphs
    assert "ramavtal" in engine.search("ramavtal leverantörer", 1).hits[0].text


def test_question_weight_zero_ignores_the_examples(tiny_settings, fake_embedder):
    pid = _paragraph_id(tiny_settings.knowledge_dir, "sanktioner")
    _write(tiny_settings.knowledge_dir, [{"paragraph_id": pid, "question": "Kan kommunen ge oss böter om vi slarvar?"}])
    build_index(tiny_settings.knowledge_dir, tiny_settings.index_dir, fake_embedder)
    engine = SearchEngine.load(tiny_settings, fake_embedder)
    dense, examples, _ = engine.semantic_scores("Kan kommunen ge oss böter om vi slarvar?")
    position = [p.paragraph_id for p in engine.index.paragraphs].index(pid)
    assert examples[position] == pytest.approx(1.0, abs=1e-5)
    assert all(examples[i] == -1.0 for i in range(len(examples)) if i != position)  # paragraphs without examples
    off = SearchEngine(engine.index, fake_embedder, tiny_settings.model_copy(update={"question_weight": 0.0}))
    assert off.fuse(dense, dense * 0, examples).tolist() == off.fuse(dense, dense * 0).tolist()


def test_changed_examples_make_the_index_out_of_date(tiny_index):
    pid = _paragraph_id(tiny_index.knowledge_dir, "sanktioner")
    load_index(tiny_index.index_dir, "fake-embedder", tiny_index.knowledge_dir)  # in step
    _write(tiny_index.knowledge_dir, [{"paragraph_id": pid, "question": "Kan vi få böter?"}])
    with pytest.raises(IndexMismatchError) as err:
        load_index(tiny_index.index_dir, "fake-embedder", tiny_index.knowledge_dir)
    assert REBUILD_HINT in str(err.value)


@pytest.mark.parametrize("name", ["questions.faiss", "questions.json"])
def test_corrupt_or_missing_question_files_are_named(tiny_index, name):
    path = tiny_index.index_dir / name
    path.write_bytes(b"\x00garbage\xff" * 3)
    with pytest.raises(IndexCorruptError) as err:
        load_index(tiny_index.index_dir, "fake-embedder")
    assert name in str(err.value) and REBUILD_HINT in str(err.value)
    path.unlink()
    with pytest.raises(IndexCorruptError, match=name):
        load_index(tiny_index.index_dir, "fake-embedder")


def test_questions_json_pointing_outside_the_index_is_refused(tiny_settings, fake_embedder):
    pid = _paragraph_id(tiny_settings.knowledge_dir, "sanktioner")
    _write(tiny_settings.knowledge_dir, [{"paragraph_id": pid, "question": "Kan vi få böter?"}])
    build_index(tiny_settings.knowledge_dir, tiny_settings.index_dir, fake_embedder)
    (tiny_settings.index_dir / "questions.json").write_text('{"owners": [999]}', encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="questions.faiss"):
        load_index(tiny_settings.index_dir, "fake-embedder")


def test_every_shipped_example_names_a_paragraph_of_the_shipped_documents():
    questions = load_questions(CORPUS_DIR)
    paragraphs = collect_paragraphs(CORPUS_DIR)[1]
    matched = match_questions(questions, [p.paragraph_id for p in paragraphs])
    assert not matched.orphans, [q.source for q in matched.orphans[:5]]
    assert len(matched.kept) >= 1000
    covered = {p.paragraph_id for p in paragraphs} & {q.paragraph_id for q in matched.kept}
    assert len(covered) >= 0.85 * len(paragraphs)
    english = sum(q.lang == "en" for q in matched.kept) / len(matched.kept)
    assert 0.15 <= english <= 0.40  # people ask in English too
