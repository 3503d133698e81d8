"""The coverage verdict: do the documents answer this question fully, partly, or not at all?

Signals that generalise, not rules for single questions: the question's specific words that no
paragraph uses, the share of its informative words the best paragraphs hold, the best semantic
similarity to a paragraph, to a single sentence and to an example question, the best BM25 score,
and whether the question is English (English words are checked through the glossary, so absent
words mean less). A multinomial logistic regression over these, fitted on marked questions with
``python -m assistant.calibrate fit`` (cross-validated), decides; its coefficients live in
``coverage_model.json`` beside this file, so the verdict needs numpy only.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.search import Evidence

from .payload import COVERAGES, Coverage
from .terms import TermAnalysis

MODEL_PATH = Path(__file__).with_name("coverage_model.json")


@dataclass(frozen=True)
class CoverageFeatures:
    dense_max: float
    sentence_max: float
    example_max: float
    lexical_log: float  # log(1 + best BM25 score)
    missing_share: float  # share of informative words no paragraph uses
    missing_any: float  # 1 when at least one specific word is missing
    top_share: float  # idf-weighted share of the known informative words in the best paragraph
    best_share: float  # the same, the best of the cited paragraphs and their neighbours
    informative_log: float  # log(1 + number of informative words): short messages say little
    english: float

    @classmethod
    def of(cls, evidence: Evidence, terms: TermAnalysis, top_share: float, best_share: float,
           english: bool) -> "CoverageFeatures":
        return cls(
            dense_max=evidence.dense_max, sentence_max=evidence.sentence_max, example_max=evidence.example_max,
            lexical_log=math.log1p(max(0.0, evidence.lexical_max)), missing_share=terms.missing_share,
            missing_any=1.0 if terms.missing else 0.0, top_share=top_share, best_share=best_share,
            informative_log=math.log1p(len(terms.informative)), english=1.0 if english else 0.0,
        )

    def vector(self) -> np.ndarray:
        return np.asarray(list(asdict(self).values()), dtype=np.float64)

    @staticmethod
    def names() -> list[str]:
        return list(CoverageFeatures.__dataclass_fields__)


@dataclass(frozen=True)
class Verdict:
    coverage: Coverage
    probabilities: dict[str, float]


class CoverageModel:
    """Standardised features → softmax over (full, partial, none)."""

    def __init__(self, classes: list[str], features: list[str], mean: list[float], scale: list[float],
                 coef: list[list[float]], intercept: list[float], none_min: float = 0.0):
        if features != CoverageFeatures.names():
            raise ValueError(f"{MODEL_PATH} was fitted on features {features}, the code computes "
                             f"{CoverageFeatures.names()}; refit with: python -m assistant.calibrate fit")
        if sorted(classes) != sorted(COVERAGES):
            raise ValueError(f"{MODEL_PATH} must have the classes {COVERAGES}")
        self.classes = classes
        self.features = features
        self.mean = np.asarray(mean)
        self.scale = np.asarray(scale)
        self.coef = np.asarray(coef)
        self.intercept = np.asarray(intercept)
        # Declining costs the user an answer: "none" only when its probability reaches this (and is the
        # largest); otherwise the better of full and partial. Chosen by calibration, see assistant.calibrate.
        self.none_min = none_min

    def probabilities(self, features: CoverageFeatures) -> dict[str, float]:
        z = (features.vector() - self.mean) / self.scale
        logits = self.coef @ z + self.intercept
        e = np.exp(logits - logits.max())
        p = e / e.sum()
        return {c: float(v) for c, v in zip(self.classes, p)}

    def verdict(self, features: CoverageFeatures) -> Verdict:
        p = self.probabilities(features)
        return Verdict(decide(p, self.none_min), p)

    def to_json(self) -> dict:
        return {"classes": self.classes, "features": self.features, "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "coef": self.coef.tolist(), "intercept": self.intercept.tolist(),
                "none_min": self.none_min}

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> "CoverageModel":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(data["classes"], data["features"], data["mean"], data["scale"], data["coef"], data["intercept"],
                       float(data.get("none_min", 0.0)))
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is missing or unreadable ({exc}); refit with: python -m assistant.calibrate fit") from exc


def decide(p: dict[str, float], none_min: float) -> Coverage:
    """The verdict from class probabilities: "none" needs ``none_min`` and the top probability."""
    best = max(p, key=p.get)
    if best == "none" and p["none"] >= none_min:
        return "none"
    return "full" if p["full"] >= p["partial"] else "partial"


@lru_cache(maxsize=1)
def default_model() -> CoverageModel:
    return CoverageModel.load()
