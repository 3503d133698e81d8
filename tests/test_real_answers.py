"""The answering logic over the project's real index and model (slow): floors that fail when
retrieval, the shipped coverage model or the twin-language behaviour break."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.quotes import quote_parts

DATA = Path(__file__).resolve().parent / "data"
pytestmark = pytest.mark.slow


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def holds(gold: str, passage: str, k: int = 12) -> bool:
    from assistant.evaluate import holds as score_holds

    return score_holds(gold, passage, k)


@pytest.fixture(scope="module")
def answerer():
    from assistant.answer import Answerer
    from assistant.settings import get_assistant_settings
    from index.search import SearchEngine

    settings = get_assistant_settings()
    return Answerer(SearchEngine.load(settings), settings)


def test_search_recall_floor_on_questions_written_from_paragraphs(answerer):
    items = rows("search_fresh_author.jsonl")
    found = sum(any(any(holds(g, h.text) for g in it["gold"]) for h in answerer.engine.search(it["question"], 5).hits)
                for it in items)
    print(f"fresh-author search hit@5 {found / len(items):.3f}")
    assert found / len(items) >= 0.80  # measured 0.85 (2026-11-22) and after sentence embeddings


def test_shipped_coverage_model_on_the_marked_persona_questions(answerer):
    """The production verdicts (assistant/coverage_model.json): a refit or a feature change that makes
    answerable questions declined, or unanswerable ones answered in full, fails here."""
    items = rows("answers_persona.jsonl")
    verdicts = [answerer.assess(it["question"])[3].coverage for it in items]
    answerable = [v for it, v in zip(items, verdicts) if it["marking"] != "not"]
    unanswerable = [v for it, v in zip(items, verdicts) if it["marking"] == "not"]
    kept = sum(v != "none" for v in answerable) / len(answerable)
    full = sum(v == "full" for v in unanswerable) / len(unanswerable)
    print(f"persona set: answerable full/partial {kept:.3f}, not answered given full {full:.3f}")
    assert kept >= 0.90 and full <= 0.20


def test_off_topic_questions_are_declined(answerer):
    items = [it for it in rows("no_answer_calibration.jsonl") if not it["covered"]]
    declined = sum(answerer.answer(it["question"]).coverage == "none" for it in items)
    assert declined / len(items) >= 0.95


def test_english_questions_cite_what_their_swedish_twins_cite(answerer):
    same = 0
    pairs = rows("twins.jsonl")
    for pair in pairs:
        sv = answerer.answer(pair["sv"], "sv")
        en = answerer.answer(pair["en"], "en")
        assert sv.citations and en.citations, pair
        same += bool(set(sv.paragraph_ids[:3]) & set(en.paragraph_ids[:3]))
    print(f"twins sharing a top-3 citation: {same}/{len(pairs)}")
    assert same >= len(pairs) - 1


def test_quotes_come_from_their_own_paragraph_on_the_real_corpus(answerer):
    for it in rows("answers_persona.jsonl")[:60]:
        answer = answerer.answer(it["question"], it["lang"])
        for c in answer.citations:
            for part in quote_parts(c.quote):
                assert part in " ".join(c.text.split()), (it["id"], c.number)
