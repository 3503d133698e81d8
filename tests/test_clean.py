"""Cleaning of extracted PDF text, on excerpts of the real corpus (knowledge/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from index import lexicon
from index.clean import clean_pages, join_lines, repair_inline, tidy

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


def excerpt(doc: str, first_line: int, last_line: int) -> str:
    """Lines first..last (1-based, inclusive) of the corpus file whose name starts with ``doc``."""
    path = next(KNOWLEDGE.glob(f"{doc}_*.txt"))
    return "\n".join(path.read_text(encoding="utf-8").split("\n")[first_line - 1 : last_line])


def cleaned(text: str) -> str:
    return "\n\n".join(b.text for b in clean_pages([(None, text)]))


def test_broken_lines_are_joined_into_one_paragraph():
    text = cleaned(excerpt("000", 3, 8))
    assert "\n" not in text
    assert "har ett femtiotal intervjuer genomförts med sociala företag och offentliga aktörer." in text
    assert text.startswith("Inom ramen för projektet")


def test_words_split_with_hyphen_at_line_end_are_repaired():
    text = cleaned(excerpt("004", 2, 14))
    assert "förtroendekapital" in text
    assert "plattform för samarbete" in text
    assert "förtroende- kapital" not in text and "samar- bete" not in text


def test_words_split_without_hyphen_at_line_end_are_repaired():
    text = cleaned(excerpt("003", 2, 8))
    assert "socialt företagande" in text
    assert "rekryteringen" in text
    assert "lösningen på långtidsarbetslösheten" in text


def test_real_word_pairs_across_lines_are_not_glued():
    text = cleaned(excerpt("000", 49, 53))
    assert "intervjuunderlag fram för sociala företag" in text
    assert "framför" not in text


@pytest.mark.parametrize(
    "left,right",
    [("en", "del"), ("fram", "för"), ("till", "exempel"), ("bland", "annat"), ("sociala", "företag"), ("det", "är"),
     ("kan", "ske"), ("hela", "tiden"), ("små", "företag"), ("i", "dag"), ("var", "för")],
)
def test_should_join_keeps_word_pairs_apart(left, right):
    assert not lexicon.should_join(left, right, at_line_end=True)
    assert not lexicon.should_join(left, right, at_line_end=False)


def test_words_split_inside_a_line_are_repaired():
    assert repair_inline("det samhälls nyttiga målet") == "det samhällsnyttiga målet"
    assert repair_inline("besluts processer") == "beslutsprocesser"
    assert repair_inline("Projektet har fnans i erats av ESF") == "Projektet har finansierats av ESF"


def test_dropped_fi_ligature_is_repaired_in_corpus_text():
    text = cleaned(excerpt("003", 218, 228))
    assert "definieras" in text
    assert "defnieras" not in text
    assert repair_inline("det fnns en defnition") == "det finns en definition"
    # words that merely contain an f are left alone
    assert repair_inline("ofta haft syfte efter") == "ofta haft syfte efter"


def test_page_numbers_and_running_headers_are_dropped():
    out = cleaned(excerpt("002", 180, 200))
    assert "Upphandlingsmyndigheten | Alternativa finansiella instrument" not in out
    assert "\n8\n" not in f"\n{out}\n"
    assert "https://" not in out
    assert "Ett möjligt sätt att bemöta välfärdsutmaningar" in out


def test_chart_residue_is_dropped():
    out = cleaned(excerpt("000", 294, 316))
    assert "33%" not in out
    assert "Nej mindre bra Ja tillfredsställande" not in out
    assert "kunskap hos beställaren" in out


def test_suspended_hyphen_and_abbreviation_hyphen_are_kept():
    assert join_lines(["alternativa finansierings-", "och samverkansformer"]) == "alternativa finansierings- och samverkansformer"
    assert join_lines(["ta hänsyn till EU-", "regler och vända sig"]) == "ta hänsyn till EU-regler och vända sig"


def test_tidy_removes_footnote_markers_and_restores_dropped_hyphens():
    assert tidy("styrs demokratiskt i besluts processer.5 Nästa") == "styrs demokratiskt i besluts processer. Nästa"
    assert tidy("Redan 2011 presenterade EUkommissionen") == "Redan 2011 presenterade EU-kommissionen"


def test_headings_become_sections_not_text():
    blocks = clean_pages([(None, excerpt("000", 33, 47))])
    headings = [b.text for b in blocks if b.kind == "heading"]
    assert "1.1 BAKGRUND OCH SYFTE" in headings
    assert all(not b.text.startswith("1.1 BAKGRUND") for b in blocks if b.kind == "text")


def test_double_spaced_extraction_keeps_paragraphs_whole():
    text = cleaned(excerpt("001", 1, 60))
    assert "I en tid där samhällsutmaningar blir alltmer komplexa och omfattande, är det avgörande att vi använder alla tillgängliga verktyg" in text


def test_footnotes_are_kept_as_their_own_paragraphs():
    blocks = clean_pages([(None, excerpt("003", 305, 325))])
    notes = [b for b in blocks if b.kind == "footnote"]
    assert any("EU:s definition kräver till exempel en demokratisk organisation och inflytande" in b.text for b in notes)


def test_numbered_step_headings_are_sections_but_numbered_lists_stay_lists():
    blocks = clean_pages([(None, (KNOWLEDGE / next(KNOWLEDGE.glob("004_*.txt")).name).read_text(encoding="utf-8"))])
    headings = [b.text for b in blocks if b.kind == "heading"]
    assert "5. Utforma avtal" in headings
    # wrapped over three lines in the source
    assert "1. Identifiera en samhällsutmaning som kräver samarbete mellan idéburen aktör eller civilsamhället och offentlig sektor" in headings
    assert "IOP-processen i sju steg:" not in headings  # a line introducing a list is not a heading
    steps = clean_pages([(None, "Processen:\n1. Identifiera en utmaning\n2. Formulera mål\n3. Skissa ett ramverk\n")])
    assert all(b.kind == "text" for b in steps)


def test_a_short_question_between_paragraphs_is_a_heading():
    text = "IOP bygger på tillit mellan parterna.\nHur fungerar IOP?\nParterna identifierar en samhällsutmaning tillsammans.\n"
    blocks = clean_pages([(None, text)])
    assert [b.kind for b in blocks] == ["text", "heading", "text"]
    assert blocks[1].text == "Hur fungerar IOP?"


def test_a_title_wrapped_over_two_short_lines_is_one_heading():
    text = ("Rekommendation från UDD gällande\nsocialt hållbar upphandling\n"
            "På politisk nivå betraktas offentlig upphandling som ett av flera möjliga verktyg för att uppnå mål i samhället.\n")
    blocks = clean_pages([(None, text)])
    assert blocks[0].kind == "heading"
    assert blocks[0].text == "Rekommendation från UDD gällande socialt hållbar upphandling"


def test_contents_pages_are_dropped_but_numbered_lists_and_following_headings_kept():
    toc = "Innehåll\n7 Sammanfattning\n22 Argument och initiala perspektiv\n24 De sociala företagen\n32 Intern samverkansstruktur\n"
    assert clean_pages([(None, toc)]) == []
    text = excerpt("000", 176, 186)
    blocks = clean_pages([(None, text)])
    assert any(b.kind == "heading" and b.text == "2.3.2 TIDSPERIOD/LÄNGD" for b in blocks)
    assert any("Ockelbo, Region Dalarna, Mora" in b.text and b.kind != "heading" for b in blocks)
    assert any("Nästan hälften av avtalen" in b.text for b in blocks)


def test_a_recurring_full_width_line_is_text_not_a_running_header():
    text = (KNOWLEDGE / next(KNOWLEDGE.glob("003_*.txt")).name).read_text(encoding="utf-8")
    blocks = clean_pages([(None, text)])
    assert any(
        b.text.startswith("Kommuner och regioner som vill ta tillvara den resurs som de sociala företagen kan utgöra "
                          "rekommenderas att utveckla regionala forum") for b in blocks
    )
