"""Fit and check the coverage model (full / partial / none) on marked questions.

    python -m assistant.calibrate fit     [--data FILE ...]   # cross-validate, then fit on all and save
    python -m assistant.calibrate check   [--data FILE ...]   # the shipped model's verdicts against the marking

Marked questions are JSON Lines with ``question`` and one of: ``marking`` (answered | partly | not),
``coverage`` (full | partial | none) or ``covered`` (true | false); a line with ``gold`` but none of
these counts as answered. The defaults are the project's own sets in tests/data/: questions written
persona-first and marked against the documents afterwards, the no-answer calibration set
(off-topic questions) and questions written from paragraphs. Cross-validation is stratified 5-fold;
it prints the 3×3 table of marking against verdict, so the figures are for questions the model
did not see.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.settings import PROJECT_ROOT

from .coverage import MODEL_PATH, CoverageFeatures, CoverageModel, decide
from .evaluate import truth_of
from .payload import COVERAGES

DATA = PROJECT_ROOT / "tests" / "data"
DEFAULT_SETS = [DATA / "answers_persona.jsonl", DATA / "no_answer_calibration.jsonl", DATA / "search_fresh_author.jsonl",
                DATA / "small_talk.jsonl"]
OFF_TOPIC_SETS = {"no_answer_calibration.jsonl", "small_talk.jsonl"}
OFF_TOPIC_DECLINED = 0.95
C = 1.0


@dataclass(frozen=True)
class Marked:
    question: str
    coverage: str
    source: str


def load(paths: list[Path]) -> list[Marked]:
    out = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out.append(Marked(row["question"], truth_of(row), path.name))
    return out


def features_of(samples: list[Marked]) -> np.ndarray:
    from index.search import SearchEngine

    from .answer import Answerer
    from .settings import get_assistant_settings

    settings = get_assistant_settings()
    answerer = Answerer(SearchEngine.load(settings), settings, model=_placeholder())
    rows = []
    for s in samples:
        _, _, features, _ = answerer.assess(s.question)
        rows.append(features.vector())
    return np.vstack(rows)


def _placeholder() -> CoverageModel:
    """A model that is never asked: assess() needs one, fitting needs only the features."""
    n = len(CoverageFeatures.names())
    return CoverageModel(list(COVERAGES), CoverageFeatures.names(), [0.0] * n, [1.0] * n,
                         [[0.0] * n for _ in COVERAGES], [0.0] * len(COVERAGES))


def _estimator():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight="balanced", max_iter=2000))


def table(y_true: list[str], y_pred: list[str]) -> str:
    lines = ["marking \\ verdict   full  partial  none   n"]
    for t in COVERAGES:
        row = [sum(1 for a, b in zip(y_true, y_pred) if a == t and b == p) for p in COVERAGES]
        lines.append(f"{t:18s} {row[0]:5d} {row[1]:8d} {row[2]:5d} {sum(row):4d}")
    return "\n".join(lines)


def report(samples: list[Marked], predicted: list[str]) -> None:
    truth = [s.coverage for s in samples]
    print(table(truth, predicted))
    for source in sorted({s.source for s in samples}):
        idx = [i for i, s in enumerate(samples) if s.source == source]
        full = [i for i in idx if truth[i] == "full"]
        none = [i for i in idx if truth[i] == "none"]
        parts = [f"{source}: n={len(idx)}"]
        if full:
            parts.append(f"answerable given full/partial {sum(predicted[i] != 'none' for i in full)}/{len(full)}")
        if none:
            parts.append(f"not answered given full {sum(predicted[i] == 'full' for i in none)}/{len(none)}, "
                         f"none {sum(predicted[i] == 'none' for i in none)}/{len(none)}")
        print("  " + "; ".join(parts))


def choose_none_min(samples: list[Marked], probabilities: list[dict[str, float]]) -> float:
    """The highest bar for declining at which cross-validated predictions still decline at least
    ``OFF_TOPIC_DECLINED`` of the off-topic questions and small talk (sets without gold spans whose
    questions are all outside the domain): declining a domain question costs the user an answer."""
    off_topic = [i for i, s in enumerate(samples) if s.coverage == "none" and s.source in OFF_TOPIC_SETS]
    best = 0.0
    for bar in np.arange(0.0, 0.951, 0.025):
        declined = sum(decide(probabilities[i], float(bar)) == "none" for i in off_topic)
        if off_topic and declined / len(off_topic) >= OFF_TOPIC_DECLINED:
            best = float(bar)
    return round(best, 3)


def fit(samples: list[Marked], x: np.ndarray, save: Path | None) -> CoverageModel:
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray([s.coverage for s in samples])
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=1)
    proba = cross_val_predict(_estimator(), x, y, cv=cv, method="predict_proba")
    classes = sorted(set(y))
    probabilities = [dict(zip(classes, map(float, row))) for row in proba]
    none_min = choose_none_min(samples, probabilities)
    print(f"5-fold cross-validation (each question judged by a model that did not see it), none_min {none_min}:")
    report(samples, [decide(p, none_min) for p in probabilities])
    pipe = _estimator().fit(x, y)
    scaler, lr = pipe.steps[0][1], pipe.steps[1][1]
    model = CoverageModel(list(lr.classes_), CoverageFeatures.names(), scaler.mean_.tolist(), scaler.scale_.tolist(),
                          lr.coef_.tolist(), lr.intercept_.tolist(), none_min)
    print("coefficients (standardised features):")
    for name, column in zip(CoverageFeatures.names(), np.asarray(lr.coef_).T):
        print(f"  {name:16s} " + " ".join(f"{c}={v:+.2f}" for c, v in zip(lr.classes_, column)))
    if save:
        save.write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
        print(f"saved {save}")
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["fit", "check"])
    ap.add_argument("--data", type=Path, nargs="+", default=DEFAULT_SETS)
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    args = ap.parse_args(argv)
    samples = load(args.data)
    x = features_of(samples)
    if args.command == "fit":
        fit(samples, x, args.out)
        return 0
    model = CoverageModel.load(args.out)
    predicted = [model.verdict(CoverageFeatures(*row)).coverage for row in x]
    report(samples, predicted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
