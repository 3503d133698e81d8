"""Calibrate and check the no-answer decision.

    python -m actions.calibrate [--questions tests/data/no_answer_calibration.jsonl] [--dev ../shared/eval/dev.jsonl]
    python -m actions.calibrate --chat http://127.0.0.1:5005/webhooks/rest/webhook

Offline, it computes the search evidence (best BM25 score, best cosine) of questions the documents
cover and questions they do not (weather, tax, recipes, football, other public services…), prints
how many of each the configured thresholds answer, and searches the threshold grid: for messages
the NLU could not place, the lowest thresholds that answer none of the uncovered questions; for
recognised domain questions, those that answer at most 5 % of them. With --chat it sends the
questions through Rasa and counts answered/cited replies, plus greetings that must not cite.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.search import Evidence

from .answer import Prior, Thresholds
from .settings import PROJECT_ROOT, get_action_settings

DEFAULT_QUESTIONS = PROJECT_ROOT / "tests" / "data" / "no_answer_calibration.jsonl"
SMALL_TALK = ["hej", "Hello!", "tack så mycket", "thanks", "hej då"]


@dataclass(frozen=True)
class Sample:
    question: str
    covered: bool
    evidence: Evidence | None = None


def load_questions(path: Path, dev: Path | None) -> list[Sample]:
    samples = [Sample(d["question"], bool(d["covered"])) for d in map(json.loads, path.open(encoding="utf-8"))
               if d]
    if dev:
        samples += [Sample(json.loads(line)["question"], True) for line in dev.open(encoding="utf-8") if line.strip()]
    return samples


def rate(samples: list[Sample], t: Thresholds, covered: bool) -> tuple[int, int]:
    group = [s for s in samples if s.covered == covered]
    return sum(t.covers(s.evidence) for s in group), len(group)


def grid(samples: list[Sample], max_false: float) -> Thresholds:
    """Lowest-recall-loss thresholds whose share of uncovered questions answered is ≤ ``max_false``."""
    best, best_key = None, None
    for lexical in np.arange(1.0, 12.01, 0.25):
        for dense in np.arange(0.80, 0.951, 0.005):
            t = Thresholds(float(lexical), float(dense))
            wrong, n_out = rate(samples, t, False)
            if wrong > max_false * n_out:
                continue
            right, _ = rate(samples, t, True)
            key = (right, -wrong, -lexical, -dense)
            if best_key is None or key > best_key:
                best, best_key = t, key
    return best


def offline(args: argparse.Namespace) -> int:
    from index.search import SearchEngine

    settings = get_action_settings()
    engine = SearchEngine.load(settings)
    samples = [Sample(s.question, s.covered, engine.search(s.question, 1).evidence)
               for s in load_questions(args.questions, args.dev)]
    n_in, n_out = sum(s.covered for s in samples), sum(not s.covered for s in samples)
    print(f"{n_in} covered and {n_out} uncovered questions")
    from .answer import Answerer

    answerer = Answerer(engine, settings)
    for prior in Prior:
        t = answerer.thresholds(prior)
        right, _ = rate(samples, t, True)
        wrong, _ = rate(samples, t, False)
        print(f"configured {prior.value:13s} BM25 ≥ {t.lexical:5.2f} or cosine ≥ {t.dense:.3f}: "
              f"answers {right}/{n_in} covered, {wrong}/{n_out} uncovered")
    for name, max_false in (("other (0 % uncovered)", 0.0), ("domain (≤ 5 % uncovered)", 0.05)):
        t = grid(samples, max_false)
        right, _ = rate(samples, t, True)
        wrong, _ = rate(samples, t, False)
        print(f"grid optimum {name}: BM25 ≥ {t.lexical:.2f} or cosine ≥ {t.dense:.3f}: "
              f"answers {right}/{n_in} covered, {wrong}/{n_out} uncovered")
    if args.verbose:
        for s in sorted(samples, key=lambda s: s.evidence.lexical_max):
            print(f"{'IN ' if s.covered else 'OUT'} bm25 {s.evidence.lexical_max:6.2f} cos {s.evidence.dense_max:.3f} "
                  f"{s.question[:80]}")
    return 0


def chat(args: argparse.Namespace) -> int:
    import httpx

    def ask(message: str) -> tuple[bool, int]:
        replies = httpx.post(args.chat, json={"sender": "calibrate-" + uuid.uuid4().hex[:10], "message": message},
                             timeout=60).json()
        customs = [m["custom"] for m in replies if isinstance(m.get("custom"), dict)]
        answered = any(c.get("answered") for c in customs)
        return answered, sum(len(c.get("citations") or []) for c in customs)

    samples = load_questions(args.questions, None)
    out = {"covered_answered": 0, "covered": 0, "uncovered_answered": 0, "uncovered_cited": 0, "uncovered": 0}
    for s in samples:
        answered, cited = ask(s.question)
        key = "covered" if s.covered else "uncovered"
        out[key] += 1
        out[f"{key}_answered"] += answered
        if not s.covered:
            out["uncovered_cited"] += bool(cited)
            if answered:
                print(f"answered although uncovered: {s.question}", file=sys.stderr)
    out["small_talk_cited"] = sum(bool(ask(m)[1]) for m in SMALL_TALK)
    out["small_talk"] = len(SMALL_TALK)
    print(json.dumps(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    ap.add_argument("--dev", type=Path, help="more covered questions (JSON Lines with 'question')")
    ap.add_argument("--chat", help="Rasa REST webhook: check the decision end to end")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    return chat(args) if args.chat else offline(args)


if __name__ == "__main__":
    sys.exit(main())
