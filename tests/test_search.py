"""Hybrid search on a tiny corpus with the fake embedder, and query handling."""

from __future__ import annotations

import pytest

from index.glossary import looks_english, swedish_terms
from index.lexical import Analyzer, fold
from index.query import QueryRewriter
from index.search import QueryError


def test_search_returns_ranked_hits_with_document_facts(tiny_engine):
    result = tiny_engine.search("Vad är ett ramavtal?", 3)
    assert result.hits and result.took_ms >= 0
    top = result.hits[0]
    assert "Ett ramavtal är ett avtal" in top.text
    assert top.doc_id == "troskel" and top.title == "Trösklar och ramavtal" and top.year == 2019
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    assert len(result.hits) <= 3


def test_missing_diacritics_still_find_the_paragraph(tiny_engine):
    result = tiny_engine.search("reservera for sociala foretag arbetsmarknaden", 2)
    assert result.hits[0].doc_id == "reserverat"


def test_english_question_reaches_swedish_text(tiny_engine):
    result = tiny_engine.search("What is a framework agreement?", 2)
    assert result.english
    # the keyword side gets the Swedish term (the fake embedder knows no English)
    rq = tiny_engine.rewriter.rewrite("What is a framework agreement?")
    scores = tiny_engine.lexical_scores(rq.lexical)
    assert "Ett ramavtal är ett avtal" in tiny_engine.index.paragraphs[int(scores.argmax())].text


def test_compound_parts_match(tiny_engine):
    # "direktupphandlingen" is not in the text, its parts are
    result = tiny_engine.search("direktupphandlingen", 1)
    assert "direktupphandling" in result.hits[0].text


@pytest.mark.parametrize("query,k", [("", 5), ("   ", 5), ("?!", 5), ("x" * 501, 5), ("IOP", 0), ("IOP", 51)])
def test_bad_queries_are_refused_with_a_message(tiny_engine, query, k):
    with pytest.raises(QueryError) as err:
        tiny_engine.search(query, k)
    assert str(err.value)


def test_paragraph_context_has_neighbours_from_the_same_document(tiny_engine):
    hit = tiny_engine.search("överenskommelsen avtalstid vision", 1).hits[0]
    ctx = tiny_engine.paragraph(hit.paragraph_id, 1)
    assert ctx.paragraph.paragraph_id == hit.paragraph_id
    assert all(n.doc_id == hit.doc_id for n in ctx.before + ctx.after)
    assert ctx.before  # the IOP handbook has text before its "Avtalet" section
    assert tiny_engine.paragraph("nope-123") is None


def test_fold_and_analyzer():
    assert fold("företag idéburen") == "foretag ideburen"
    analyzer = Analyzer({"direktupphandling", "grans"})
    assert analyzer.terms("Företagen") == analyzer.terms("foretagen")
    assert set(analyzer.compound_parts("direktupphandlingsgrans")) == {"direktupphandling", "grans"}


def test_language_detection_and_glossary():
    assert looks_english("Can a non-profit get a contract reserved for it?")
    assert not looks_english("får kommunen köpa utan annonsering?")
    assert not looks_english("iop vs upphandling?")
    terms = swedish_terms("Is there a threshold for direct awards under a framework agreement?")
    assert "ramavtal" in terms and "direktupphandling" in terms and "tröskelvärde" in terms


def test_query_rewriter_restores_diacritics_and_chat_words():
    rw = QueryRewriter(["Sociala företag kan få reserverade kontrakt.", "Det fungerar för idéburna organisationer."])
    rq = rw.rewrite("hur funkar det for sociala foretag, finns det nan regel?")
    assert "sociala företag" in rq.dense and "fungerar" in rq.dense
    assert "för sociala" in rq.dense and "någon regel" in rq.dense
    rq = rw.rewrite("iop vs upphandling?")
    assert "idéburet offentligt partnerskap" in rq.lexical and not rq.english


def test_acronyms_are_upper_cased_for_the_case_sensitive_model():
    rw = QueryRewriter(["IOP och LOU."])
    rq = rw.rewrite("gäller lou för iop?")
    assert "LOU" in rq.dense and "IOP" in rq.dense
    assert rw.rewrite("about the eu threshold").dense == "about the EU threshold"


def test_fusion_is_the_weighted_sum_of_rank_rescaled_scores(tiny_engine):
    """Hand-made scores: each retriever's best maps to 1, its depth-th best to 0, then the weights apply."""
    import numpy as np

    engine = tiny_engine
    engine.settings = replace_settings(engine.settings, dense_weight=0.5, lexical_weight=0.5, question_weight=0.25,
                                       dense_depth=3, lexical_depth=3)
    dense = np.array([0.9, 0.8, 0.7, 0.1])
    lexical = np.array([0.0, 10.0, 5.0, 0.0])
    examples = np.array([0.5, 0.5, 0.9, -1.0])
    fused = engine.fuse(dense, lexical, examples)
    # dense rescaled: (s - 0.7) / 0.2 -> 1, .5, 0, 0 ; lexical: (s - 0) / 10 -> 0, 1, .5, 0 ; examples: (s-.5)/.4
    assert np.allclose(fused, [0.5 * 1 + 0, 0.5 * 0.5 + 0.5 * 1, 0.5 * 0.5 + 0.25 * 1, 0.0], atol=1e-6)
    engine.settings = replace_settings(engine.settings, lexical_weight=0.0)
    assert np.allclose(engine.fuse(dense, lexical, examples), [0.5, 0.25, 0.25, 0.0], atol=1e-6)


def replace_settings(settings, **changes):
    return settings.model_copy(update=changes)


def test_search_reports_each_hit_sentences_with_their_similarity(tiny_engine):
    result = tiny_engine.search("Vad är ett ramavtal?", 3)
    top = result.hits[0]
    sentences = result.sentences[top.paragraph_id]
    assert [s.position for s in sentences] == list(range(len(sentences)))
    assert all(s.text in top.text for s in sentences)
    best = max(sentences, key=lambda s: s.similarity)
    assert "ramavtal är ett avtal" in best.text
    assert result.evidence.sentence_max == pytest.approx(best.similarity, abs=1e-5)
    assert set(result.sentences) == {h.paragraph_id for h in result.hits}


def test_question_focus_is_the_question_sentence_of_a_long_message():
    from index.query import question_focus

    long = ("Hej! Vi är en liten förening i Gävle som driver ett café där folk som stått långt från jobb får "
            "arbeta. Kommunen vill köpa tjänster av oss. Kan vi ingå ett IOP i stället? Och hur lång tid tar det?")
    assert question_focus(long) == "Kan vi ingå ett IOP i stället? Och hur lång tid tar det?"
    assert question_focus("Vad är IOP? Och reserverad upphandling?") is None  # short: searched as it is
    no_mark = "Vi är ett kooperativ med tolv anställda och har aldrig lämnat anbud förut. " * 2 + "Berätta om ramavtal"
    assert question_focus(no_mark) == "Berätta om ramavtal"  # no question mark: the last sentence
    one = "Kan en kommun reservera en upphandling för sociala företag och i så fall hur går det till när man " \
          "vill att bara arbetsintegrerande företag ska kunna lämna anbud på uppdraget?"
    assert question_focus(one) is None  # nothing but the question


def test_a_long_message_is_searched_as_the_mean_of_message_and_focus(tiny_engine):
    import numpy as np

    from index.query import question_focus

    message = ("Jag jobbar på ett socialt företag med caféverksamhet och vi har länge funderat på samarbete med "
               "kommunen kring arbetsträning och praktik. Vad gäller för direktupphandling?")
    focus = question_focus(message)
    assert focus == "Vad gäller för direktupphandling?"
    both = tiny_engine.semantic_scores(message, focus)
    alone = [tiny_engine.semantic_scores(t) for t in (message, focus)]
    for i in range(3):
        np.testing.assert_allclose(both[i], (alone[0][i] + alone[1][i]) / 2, atol=1e-6)
    seen = []
    original = tiny_engine.semantic_scores
    tiny_engine.semantic_scores = lambda query, focus=None: seen.append(focus) or original(query, focus)
    tiny_engine.search(message, 1)
    tiny_engine.search("Vad gäller för direktupphandling?", 1)
    assert seen == [focus, None]  # search passes the focus of a long message, none for a short one
