"""Example questions saved by staff (knowledge/questions/staff.jsonl): the store (validation,
de-duplication, the one file it writes, parallel writers), the index staying current when the file
changes, and the running engine's example-question channel growing live (fake embedder, tmp_path)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from index import search as search_module
from index.questions import (STAFF_FILE, StaffQuestionError, StaffQuestions, load_questions, question_key,
                             questions_hash)
from index.search import SearchEngine
from index.store import build_index, collect_paragraphs, load_index

QUERY = "Får vi böter om vi slarvar?"  # shares no word with the paragraph about sanctions


def _pid(knowledge: Path, needle: str) -> str:
    return next(p.paragraph_id for p in collect_paragraphs(knowledge)[1] if needle in p.text)


# -- the store ---------------------------------------------------------------------------------------
def test_a_saved_example_is_one_line_in_the_format_of_the_other_files(tiny_knowledge):
    store = StaffQuestions(tiny_knowledge)
    example, written = store.add("iop-1", "  Kan vi få\n böter?  ", "sv")
    assert written and example.question == "Kan vi få böter?"
    assert store.path == tiny_knowledge / "questions" / STAFF_FILE
    lines = store.path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"paragraph_id": "iop-1", "question": "Kan vi få böter?", "lang": "sv"}]
    assert [(q.paragraph_id, q.question, q.lang) for q in load_questions(tiny_knowledge)] == [("iop-1", "Kan vi få böter?", "sv")]


def test_the_same_example_is_stored_once(tiny_knowledge):
    store = StaffQuestions(tiny_knowledge)
    assert store.add("iop-1", "Kan vi få böter?", "sv")[1]
    assert not store.add("iop-1", "kan vi  FÅ böter?", "sv")[1]  # case and spacing do not make a new one
    assert store.add("iop-2", "Kan vi få böter?", "sv")[1]  # another paragraph: a new example
    assert len(store.read()) == 2


@pytest.mark.parametrize("pid, question, lang, message", [
    ("", "Vad är IOP?", "sv", "Stycket"),
    ("x" * 101, "Vad är IOP?", "sv", "Stycket"),
    (None, "Vad är IOP?", "sv", "Stycket"),
    ("iop-1", "   ", "sv", "tom"),
    ("iop-1", "a" * 501, "sv", "för lång"),
    ("iop-1", "Vad\x00är IOP?", "sv", "otillåtna"),
    ("iop-1", "Vad \ud800 IOP?", "sv", "otillåtna"),
    ("iop-1", "Vad är IOP?", "de", "sv eller en"),
])
def test_bad_examples_are_refused_with_a_message_and_nothing_is_written(tiny_knowledge, pid, question, lang, message):
    store = StaffQuestions(tiny_knowledge)
    with pytest.raises(StaffQuestionError, match=message):
        store.add(pid, question, lang)
    assert not store.path.exists()


def test_quotes_and_newlines_cannot_start_a_second_record(tiny_knowledge):
    store = StaffQuestions(tiny_knowledge)
    store.add("iop-1", 'Vad "är" IOP?\n{"paragraph_id": "evil", "question": "x"}', "sv")
    records = [json.loads(line) for line in store.path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 1 and records[0]["paragraph_id"] == "iop-1"


def test_a_symlink_in_place_of_the_file_is_not_followed(tiny_knowledge, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n", encoding="utf-8")
    (tiny_knowledge / "questions").mkdir()
    (tiny_knowledge / "questions" / STAFF_FILE).symlink_to(outside)
    with pytest.raises(OSError):
        StaffQuestions(tiny_knowledge).add("iop-1", "Vad är IOP?", "sv")
    assert outside.read_text(encoding="utf-8") == "keep\n"


def test_a_last_line_without_its_newline_stays_whole(tiny_knowledge):
    store = StaffQuestions(tiny_knowledge)
    store.path.parent.mkdir()
    store.path.write_text('{"paragraph_id": "iop-1", "question": "Hand-edited"}', encoding="utf-8")
    store.add("iop-1", "Vad är IOP?", "sv")
    assert [q.question for q in load_questions(tiny_knowledge)] == ["Hand-edited", "Vad är IOP?"]


def test_parallel_writers_in_threads_and_processes_lose_nothing(tiny_knowledge):
    stores = [StaffQuestions(tiny_knowledge), StaffQuestions(tiny_knowledge)]  # two "processes"' objects
    errors = []

    def write(n: int) -> None:
        try:
            for i in range(20):
                stores[n % 2].add("iop-1", f"Fråga {n}-{i}", "sv")
                stores[(n + 1) % 2].add("iop-1", f"fråga {n}-{i}", "sv")  # the same again: never twice
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    questions = [q.question for q in load_questions(tiny_knowledge)]
    assert len(questions) == 120 and len({q.casefold() for q in questions}) == 120


def test_a_process_writing_at_the_same_time_is_waited_for(tiny_knowledge):
    """fcntl.flock excludes another process's writer (here: a child process holding the lock)."""
    import fcntl

    store = StaffQuestions(tiny_knowledge)
    store.add("iop-1", "Först", "sv")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: hold the lock for 0.5 s
        with open(store.path, "a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            os.write(write, b"x")
            time.sleep(0.5)
            f.write(json.dumps({"paragraph_id": "iop-1", "question": "Barnet"}) + "\n")
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)
        os._exit(0)
    os.read(read, 1)
    start = time.monotonic()
    store.add("iop-1", "Föräldern", "sv")
    waited = time.monotonic() - start
    os.waitpid(pid, 0)
    assert waited > 0.3
    assert [q.question for q in load_questions(tiny_knowledge)] == ["Först", "Barnet", "Föräldern"]


# -- the index stays current ----------------------------------------------------------------------------
def test_the_staff_file_does_not_make_the_index_out_of_date(tiny_index):
    before = questions_hash(tiny_index.knowledge_dir)
    StaffQuestions(tiny_index.knowledge_dir).add(_pid(tiny_index.knowledge_dir, "sanktioner"), "Kan vi få böter?", "sv")
    assert questions_hash(tiny_index.knowledge_dir) == before
    load_index(tiny_index.index_dir, "fake-embedder", tiny_index.knowledge_dir)  # no IndexMismatchError


# -- the running engine -----------------------------------------------------------------------------------
def test_an_added_example_changes_the_next_search_without_a_rebuild(tiny_index, fake_embedder):
    pid = _pid(tiny_index.knowledge_dir, "sanktioner")
    engine = SearchEngine.load(tiny_index, fake_embedder)
    before = engine.search(QUERY, 3)
    assert not before.hits or before.hits[0].paragraph_id != pid
    count = engine.example_count
    assert engine.add_example_questions([(pid, QUERY)]) == 1
    assert engine.example_count == count + 1
    after = engine.search(QUERY, 3)
    assert after.hits[0].paragraph_id == pid
    assert after.evidence.example_max == pytest.approx(1.0, abs=1e-5)
    assert "ramavtal" in engine.search("ramavtal leverantörer", 1).hits[0].text  # others unchanged
    # the same example again, or one for a paragraph the index does not hold: nothing added
    assert engine.add_example_questions([(pid, QUERY.upper()), ("iop-0000000000", "Vad?")]) == 0
    assert engine.example_count == count + 1


def test_another_process_s_engine_picks_the_file_up(tiny_index, fake_embedder, monkeypatch):
    """The action server's engine: the knowledge service writes the file, this engine notices the change
    at its next search (at most one look per STAFF_CHECK_SECONDS)."""
    pid = _pid(tiny_index.knowledge_dir, "sanktioner")
    engine = SearchEngine.load(tiny_index, fake_embedder)
    monkeypatch.setattr(search_module, "STAFF_CHECK_SECONDS", 0.0)
    assert engine.search(QUERY, 3).hits[0].paragraph_id != pid
    StaffQuestions(tiny_index.knowledge_dir).add(pid, QUERY, "sv")
    assert engine.search(QUERY, 3).hits[0].paragraph_id == pid
    count = engine.example_count
    engine.search(QUERY, 3)
    assert engine.example_count == count  # unchanged file: not read again, nothing added twice


def test_the_file_is_looked_at_at_most_once_a_second(tiny_index, fake_embedder):
    pid = _pid(tiny_index.knowledge_dir, "sanktioner")
    engine = SearchEngine.load(tiny_index, fake_embedder)
    engine.search("ramavtal", 1)
    StaffQuestions(tiny_index.knowledge_dir).add(pid, QUERY, "sv")
    assert engine.search(QUERY, 3).hits[0].paragraph_id != pid  # within the second: not yet
    time.sleep(search_module.STAFF_CHECK_SECONDS + 0.05)
    assert engine.search(QUERY, 3).hits[0].paragraph_id == pid


def test_an_engine_started_later_takes_the_file_in_at_load(tiny_index, fake_embedder):
    pid = _pid(tiny_index.knowledge_dir, "sanktioner")
    StaffQuestions(tiny_index.knowledge_dir).add(pid, QUERY, "sv")
    engine = SearchEngine.load(tiny_index, fake_embedder)  # a restart: the index is still valid
    assert engine.example_count == 1
    assert engine.search(QUERY, 3).hits[0].paragraph_id == pid


def test_a_rebuild_embeds_the_file_and_the_engine_does_not_add_it_twice(tiny_index, fake_embedder):
    pid = _pid(tiny_index.knowledge_dir, "sanktioner")
    StaffQuestions(tiny_index.knowledge_dir).add(pid, QUERY, "sv")
    report = build_index(tiny_index.knowledge_dir, tiny_index.index_dir, fake_embedder)
    assert report.questions == 1
    manifest = load_index(tiny_index.index_dir, "fake-embedder", tiny_index.knowledge_dir).manifest
    assert manifest.staff_question_keys == [question_key(pid, QUERY)]
    engine = SearchEngine.load(tiny_index, fake_embedder)
    assert engine.example_count == 1
    StaffQuestions(tiny_index.knowledge_dir).add(pid, "Och om vi slarvar igen?", "sv")
    engine.refresh_staff_questions(force=True)
    assert engine.example_count == 2  # only the new line


def test_a_broken_staff_file_never_fails_a_search(tiny_index, fake_embedder):
    engine = SearchEngine.load(tiny_index, fake_embedder)
    path = StaffQuestions(tiny_index.knowledge_dir).path
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b'{"paragraph_id": 1}\n\xff\xfe garbage\n{not json\n')
    assert engine.refresh_staff_questions(force=True) == 0
    assert engine.search("ramavtal", 1).hits


def test_searches_in_other_threads_run_while_examples_are_added(tiny_index, fake_embedder):
    pid = _pid(tiny_index.knowledge_dir, "sanktioner")
    engine = SearchEngine.load(tiny_index, fake_embedder)
    stop, errors, searches = threading.Event(), [], [0]

    def searcher() -> None:
        while not stop.is_set():
            try:
                result = engine.search(QUERY, 3)
                assert result.hits
                searches[0] += 1
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
                return

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    adders = [threading.Thread(target=lambda n=n: [engine.add_example_questions([(pid, f"Fråga {n} {i}")])
                                                   for i in range(25)]) for n in range(3)]
    for t in adders:
        t.start()
    for t in adders:
        t.join()
    stop.set()
    for t in threads:
        t.join()
    assert errors == [] and searches[0] > 0
    assert engine.example_count == 75
    assert engine.index.question_owners == [engine.position(pid)] * 75
