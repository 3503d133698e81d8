"""The answering logic on the tiny corpus with the fake embedder: the quote that answers, a quote
per part of a two-part question, what the documents do not cover, and the coverage verdict."""

from __future__ import annotations

import pytest

from assistant.answer import Answerer
from assistant.coverage import CoverageFeatures, CoverageModel
from assistant.quotes import question_parts, quote_parts
from assistant.settings import AssistantSettings
from assistant.terms import TermAnalyzer

EXTRA = """
# Samverkan

Kommunen och föreningen möts två gånger per år. Parterna bidrar båda med resurser och tar gemensamt
ansvar för verksamheten. Ingen part får ekonomisk vinning av samarbetet.
"""


def rule_model() -> CoverageModel:
    names = CoverageFeatures.names()
    weights = {"full": {"top_share": 10.0, "missing_any": -10.0}, "partial": {"top_share": 10.0}, "none": {}}
    coef = [[weights[c].get(n, 0.0) for n in names] for c in ("full", "partial", "none")]
    return CoverageModel(["full", "partial", "none"], names, [0.0] * len(names), [1.0] * len(names), coef,
                         [-3.0, -6.0, 0.0])


@pytest.fixture
def answerer(tmp_path, tiny_knowledge, fake_embedder):
    from index.search import SearchEngine
    from index.store import build_index

    (tiny_knowledge / "samverkan.md").write_text(EXTRA.strip() + "\n", encoding="utf-8")
    settings = AssistantSettings(knowledge_dir=tiny_knowledge, index_dir=tmp_path / "index", model="fake-embedder",
                                 model_cache_dir=tmp_path / "models", inbox_db=tmp_path / "inbox.sqlite3")
    build_index(settings.knowledge_dir, settings.index_dir, fake_embedder)
    return Answerer(SearchEngine.load(settings, fake_embedder), settings, rule_model())


def test_the_quote_is_the_sentence_that_answers_not_the_first(answerer):
    answer = answerer.answer("Vem tar ansvar för verksamheten och bidrar med resurser?")
    assert answer.coverage == "full"
    lead = answer.citations[0]
    assert lead.quote.startswith("Parterna bidrar båda med resurser")
    assert not lead.text.startswith(lead.quote)  # the paragraph opens with another sentence
    assert answer.text.splitlines()[0].startswith("”Parterna bidrar båda med resurser")


def test_every_citation_quotes_its_own_paragraph(answerer):
    for question in ("Vad är ett ramavtal?", "Får man reservera en upphandling för sociala företag?",
                     "Vad står i överenskommelsen om avtalstid?", "upphandling ramavtal direktupphandling IOP"):
        answer = answerer.answer(question)
        assert answer.citations, question
        for c in answer.citations:
            for part in quote_parts(c.quote):
                assert part in " ".join(c.text.split()), (question, c.number)


def test_a_two_part_question_gets_a_quote_for_each_part(answerer):
    question = "Vad är ett ramavtal och när får man göra en direktupphandling utan annonsering?"
    assert len(question_parts(question)) == 2
    answer = answerer.answer(question)
    quoted = " ".join(c.quote for c in answer.citations if c.number in answer.lead)
    assert "ramavtal är ett avtal" in quoted and "586 907" in quoted


def test_a_figure_question_quotes_the_sentence_with_the_figure(answerer):
    answer = answerer.answer("Hur mycket får en direktupphandling vara värd?")
    assert "586 907" in answer.citations[0].quote


def test_words_no_paragraph_uses_are_named_as_missing(answerer):
    analysis = answerer.terms.analyse("Behöver vi F-skatt och GDPR-avtal för ett partnerskap?", english=False)
    assert analysis.missing_names() == ["F-skatt", "GDPR-avtal"]
    assert "partnerskap" not in [t.surface for t in analysis.missing]
    # Compounds of known words, diacritics left out and English through the glossary are not missing.
    assert not answerer.terms.analyse("direktupphandlingsannonsering for sociala foretag", english=False).missing
    assert not answerer.terms.analyse("Is there a framework agreement for direct award?", english=True).missing


def test_terms_ignore_chat_framing_and_numbers():
    analyzer = TermAnalyzer(["Ett ramavtal är ett avtal om villkor."])
    analysis = analyzer.analyse("Hej! Jag undrar, snälla, vad är ett ramavtal 2025 för 700 000 kr?", english=False)
    assert [t.surface for t in analysis.informative] == ["ramavtal"]


def test_verdicts_follow_the_model(answerer):
    assert answerer.answer("Vad är ett ramavtal?").coverage == "full"
    partial = answerer.answer("Måste vi ha F-skatt för ett ramavtal?")
    assert partial.coverage == "partial" and partial.missing == ["F-skatt"] and partial.citations
    none = answerer.answer("Vem vann Melodifestivalen?")
    assert none.coverage == "none" and not none.citations and not none.answered


def test_the_shipped_model_loads_and_matches_the_features():
    from assistant.coverage import default_model

    model = default_model()
    assert model.features == CoverageFeatures.names() and sorted(model.classes) == ["full", "none", "partial"]
    p = model.probabilities(CoverageFeatures(*([0.5] * len(CoverageFeatures.names()))))
    assert abs(sum(p.values()) - 1.0) < 1e-9


def test_a_model_fitted_on_other_features_is_refused(tmp_path):
    import json

    from assistant.coverage import MODEL_PATH

    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    data["features"] = data["features"][:-1]
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="refit with: python -m assistant.calibrate fit"):
        CoverageModel.load(bad)


def constant_model(coverage: str) -> CoverageModel:
    names = CoverageFeatures.names()
    classes = ["full", "partial", "none"]
    return CoverageModel(classes, names, [0.0] * len(names), [1.0] * len(names), [[0.0] * len(names)] * 3,
                         [5.0 if c == coverage else 0.0 for c in classes])


def test_a_named_missing_term_caps_the_verdict_at_partial(answerer):
    always_full = Answerer(answerer.engine, answerer.settings, constant_model("full"))
    assert always_full.answer("Vad är ett ramavtal?").coverage == "full"
    capped = always_full.answer("Måste vi ha F-skatt för ett ramavtal?")
    assert capped.coverage == "partial" and capped.missing == ["F-skatt"]
    assert capped.text.startswith("Dokumenten tar inte upp ”F-skatt”.")


def test_a_confident_domain_question_is_hedged_not_declined(answerer):
    always_none = Answerer(answerer.engine, answerer.settings, constant_model("none"))
    assert always_none.answer("Vad är ett ramavtal?").coverage == "none"
    hedged = always_none.answer("Vad är ett ramavtal?", domain_hint=True)
    assert hedged.coverage == "partial" and hedged.citations
    assert hedged.text.startswith("Dokumenten svarar inte direkt på det här. Det närmaste de säger:")


def test_none_needs_its_bar_and_falls_back_to_partial():
    from assistant.coverage import decide

    assert decide({"full": 0.2, "partial": 0.3, "none": 0.5}, 0.4) == "none"
    assert decide({"full": 0.2, "partial": 0.3, "none": 0.5}, 0.6) == "partial"
    assert decide({"full": 0.5, "partial": 0.3, "none": 0.2}, 0.6) == "full"


def test_a_sentence_that_points_back_is_quoted_with_the_one_before():
    """"Direktupphandlingsgränsen för dessa tjänster är 8 109 450 kronor" quoted alone read as the general limit;
    the sentence before says that "dessa tjänster" are the bilaga 2 services."""
    from index.search import Hit, ScoredSentence, SearchResult

    from assistant.quotes import QuotePicker, joined

    sentences = ("Bilaga 2 omfattar sociala tjänster och andra särskilda tjänster.",
                 "Direktupphandlingsgränsen för dessa tjänster är 8 109 450 kronor år 2025 och höjs år 2026.",
                 "Ramavtal är vanliga.", "Avtalen löper i fyra år.")
    hit = Hit("p1", "d", "T", 2025, None, None, " ".join(sentences), 1.0)
    scored = tuple(ScoredSentence(t, i, 0.5) for i, t in enumerate(sentences))
    result = SearchResult("vad är direktupphandlingsgränsen?", [hit], 1.0, sentences={"p1": scored})
    picker = QuotePicker(TermAnalyzer([hit.text]))
    quote = picker.quote_of(result, hit, scored[1], 1.0)
    assert quote.text == f"{sentences[0]} {sentences[1]}" and quote.position == 0 and quote.last == 1
    # A short sentence is quoted with the next; a quote holding a sentence already quoted is left out.
    short = picker.quote_of(result, hit, scored[2], 0.9)
    assert short.text == f"{sentences[2]} {sentences[3]}" and short.last == 3
    again = picker.quote_of(result, hit, scored[3], 0.8)
    assert joined([again, short, quote]) == f"{sentences[0]} {sentences[1]} … {sentences[2]} {sentences[3]}"
    # A quote that only partly overlaps the one before adds the sentences after it (it was left out whole).
    from assistant.quotes import Quote

    first, second = Quote("p1", f"{sentences[0]} {sentences[1]}", 0, 1.0, 1), Quote("p1", f"{sentences[1]} {sentences[2]}", 1, 0.9, 2)
    assert joined([first, second], scored) == f"{sentences[0]} {sentences[1]} … {sentences[2]}"


def test_a_typo_is_no_word_the_documents_lack():
    """"Dokumenten tar inte upp ”ideel” eller ”anonsera”" told a user typing fast that the documents lack what
    they cover; a word one letter from a corpus word, and rare in Swedish, counts as that word. Real words the
    corpus does not use are still missing, and an English glossary term in a Swedish message is looked up."""
    terms = TermAnalyzer(["En ideell förening får annonsera upphandlingen.", "Idéburen organisation och IOP.",
                          "Det råder brist på bilagor.", "Ett ideal."])
    analysis = terms.analyse("far en ideel forening anonsera?", english=False)
    assert analysis.missing == ()
    assert terms.analyse("ideel", english=False).terms[0].keys == ("ideell",)  # not "ideal": the commoner one
    # A wrong letter is no slip: "frister" is not "brist", "inlagor" not "bilagor" (two letters off).
    assert [t.surface for t in terms.analyse("frister och inlagor", english=False).missing] == ["frister", "inlagor"]
    assert [t.surface for t in terms.analyse("Vilken är fristen för överprövning?", False).missing] == [
        "fristen", "överprövning"]
    assert terms.analyse("kan en non-profit vara med?", False).missing == ()


def test_what_is_named_as_missing_comes_from_what_is_asked():
    """"Dokumenten tar inte upp ”Skellefteå” eller ”frustrerade”": a long message's context, and English words
    that only open a sentence ("Now", "Many", "Isn't"), were named as what the documents do not cover."""
    terms = TermAnalyzer(["Kommunen får reservera upphandlingen.", "Idéburen organisation och IOP."])
    assert terms.analyse("Many clients ask. Now, isn't IOP for everyone? Where do we start?", english=True).missing == ()
    assert [t.surface for t in terms.analyse("Is GDPR part of it?", english=True).missing] == ["GDPR"]
    from index.query import question_focus

    message = ("Vi är ett kooperativ som gör cykelreparationer i Skellefteå och vi är lite frustrerade just nu. "
               "Får kommunen reservera upphandlingen för oss?")
    focus = question_focus(message)
    assert focus == "Får kommunen reservera upphandlingen för oss?"
    assert terms.analyse(focus, english=False).missing_names() == []
    assert "cykelreparationer" in terms.analyse(message, english=False).missing_names()


def test_an_answer_names_what_the_question_lacks_not_its_context(answerer):
    message = ("Vi är ett kooperativ som gör cykelreparationer i Skellefteå och har funderat länge på det här. "
               "Hur ofta möts kommunen och föreningen i ett partnerskap?")
    answer = answerer.answer(message)
    assert answer.missing == [] and "cykelreparationer" not in answer.text
    asked = answerer.answer("Vi är ett kooperativ i Skellefteå och har funderat länge på det här med avtal. "
                            "Behöver vi F-skatt för ett partnerskap med kommunen?")
    assert "F-skatt" in asked.text


def test_a_message_longer_than_the_search_takes_is_searched_as_its_question(answerer):
    """A 630-character English message was refused in Swedish ("Frågan är för lång")."""
    context = "We are a small association and we have been thinking about this for a long time. " * 8
    answer = answerer.answer(context + "How often do the municipality and the association meet in a partnership?",
                             "en")
    assert len(answer.question) > answerer.engine.settings.max_query_chars
    assert answer.reason != "invalid" and "för lång" not in answer.text
    refused = answerer.answer("?!", "en")
    assert refused.reason == "invalid" and refused.text.startswith("There is nothing in that message")
