"""Paragraphs of the real corpus: size, sections and ids that survive rebuilds."""

from __future__ import annotations

import shutil
from pathlib import Path

from index.paragraphs import MAX_CHARS, build_paragraphs, split_sentences
from index.store import collect_paragraphs

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


def test_corpus_paragraphs_are_quotable_and_sectioned():
    docs, paragraphs = collect_paragraphs(KNOWLEDGE)
    assert {d.doc_id for d in docs} == {"000", "001", "002", "003", "004"}
    assert len(paragraphs) > 300
    assert max(len(p.text) for p in paragraphs) <= MAX_CHARS
    assert all(len(p.text.split()) >= 3 for p in paragraphs)
    with_section = sum(1 for p in paragraphs if p.section)
    assert with_section / len(paragraphs) > 0.9
    ids = [p.paragraph_id for p in paragraphs]
    assert len(ids) == len(set(ids))


def test_links_are_not_searchable_and_link_only_footnotes_are_dropped():
    from index.paragraphs import searchable_text
    from index.store import passage_text

    _, paragraphs = collect_paragraphs(KNOWLEDGE)
    assert all(len(searchable_text(p.text).split()) >= 3 for p in paragraphs)
    assert not any(p.text.startswith("Not.") and len(searchable_text(p.text).split()) < 4 for p in paragraphs)
    assert all("http" not in passage_text(p) for p in paragraphs)
    assert any("http" in p.text for p in paragraphs)  # quoted text keeps its links


def test_thresholds_from_both_documents_stay_findable():
    _, paragraphs = collect_paragraphs(KNOWLEDGE)
    by_doc = {}
    for p in paragraphs:
        by_doc.setdefault(p.doc_id, []).append(p.text)
    assert any("586 907 kr" in t for t in by_doc["000"])
    assert any("8 109 450" in t for t in by_doc["001"])
    assert any("8 513 250" in t for t in by_doc["001"])


def test_ids_are_stable_across_rebuilds_and_unaffected_by_other_documents(tmp_path):
    first = {p.paragraph_id: p.text for p in collect_paragraphs(KNOWLEDGE)[1]}
    second = {p.paragraph_id: p.text for p in collect_paragraphs(KNOWLEDGE)[1]}
    assert first == second

    copy = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, copy)
    path = next(copy.glob("003_*.txt"))
    path.write_text(path.read_text(encoding="utf-8") + "\n\nEtt nytt stycke som lagts till i slutet av rapporten om kommuner.\n", encoding="utf-8")
    changed = collect_paragraphs(copy)[1]
    untouched = {p.paragraph_id for p in changed if p.doc_id != "003"}
    assert untouched == {pid for pid in first if not pid.startswith("003-")}
    # paragraphs of the edited document that did not change keep their ids too
    kept_003 = {p.paragraph_id for p in changed if p.doc_id == "003"}
    assert len(kept_003 & set(first)) >= len([pid for pid in first if pid.startswith("003-")]) - 1


def test_a_list_stays_with_the_line_that_introduces_it():
    _, paragraphs = collect_paragraphs(KNOWLEDGE)
    umea = next(p for p in paragraphs if "Coompanion är sammankallande" in p.text)
    assert umea.text.startswith("I Umeå har projektet bidragit till")


def test_a_long_list_repeats_its_intro_in_each_part():
    from index.clean import Block

    items = [Block("text", f"> Punkt {i}: kommunen har genomfört en insats för sociala företag inom område {i} med goda resultat.", None) for i in range(30)]
    blocks = [Block("heading", "Resultat", None), Block("text", "I Umeå har projektet bidragit till", None), *items]
    paragraphs = build_paragraphs("x", blocks)
    assert len(paragraphs) >= 2
    assert all(p.text.startswith("I Umeå har projektet bidragit till\n>") for p in paragraphs)
    assert sum(p.text.count("> Punkt") for p in paragraphs) == 30


def test_long_text_is_split_at_sentence_ends():
    from index.clean import Block

    sentence = "Kommunen kan reservera upphandlingar för sociala företag med fokus på arbetsintegration. "
    blocks = [Block("heading", "Reserverade kontrakt", None), Block("text", sentence * 40, 3)]
    paragraphs = build_paragraphs("x", blocks)
    assert len(paragraphs) >= 3
    assert all(len(p.text) <= MAX_CHARS for p in paragraphs)
    assert all(p.text.endswith(".") for p in paragraphs)
    assert all(p.section == "Reserverade kontrakt" and p.page == 3 for p in paragraphs)


def test_split_sentences_keeps_abbreviations_and_numbers_together():
    parts = split_sentences("Gränsen är 586 907 kr. Enligt 19 kap. 25 a § LOU får man reservera. Det gäller 2025.")
    assert parts[0] == "Gränsen är 586 907 kr."
    assert len(parts) == 3
