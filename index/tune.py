"""Query-side tuning: teach the query encoder how people ask about *these* paragraphs.

The paragraphs stay embedded by the stock model (their vectors never move). A copy of the model's
transformer layers is trained so that each example question of knowledge/questions/ lands nearest
its own paragraph among *all* paragraphs (softmax over every paragraph vector, so every other
paragraph is a negative). Questions, English ones included, are then encoded by the tuned copy; the
word embeddings stay shared and frozen, so the copy costs the layers only (~85 MB).

Measured on question sets written from personas, never used here (README, Evaluation): search
hit@3 rose from 0.60 to 0.69 (210 questions) and from 0.62 to 0.76 (80 held-out questions); the
semantic score alone from 0.41 to 0.60. Tuning both towers (paragraphs too) was no better and took
five times as long.

Nothing here imports Rasa or FastAPI; torch is imported only when tuning or loading runs.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

LAYERS_FILE = "query_layers.safetensors"
PRECISIONS = ("float32", "bfloat16")
# CPU flags of native bfloat16 arithmetic (oneDNN uses them): without them bfloat16 is emulated and slower.
BFLOAT16_FLAGS = {"avx512_bf16", "amx_bf16"}


def native_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes in bfloat16 natively (read from ``cpuinfo``'s flags: no torch import)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(BFLOAT16_FLAGS & set(line.partition(":")[2].split()))
    return False


@dataclass(frozen=True)
class TuningConfig:
    epochs: int = 3
    learning_rate: float = 3e-5
    batch_size: int = 32
    scale: float = 50.0  # inverse temperature of the softmax over paragraphs
    seed: int = 0
    # The lowest layers stay as in the stock model: their output for every question is computed once
    # (no dropout) and only the layers above are trained, which saves their forward and backward pass
    # in every step. Off by default: 6 frozen layers tuned in 265 s instead of 419 s, but moved the
    # quotes (dev answer text holding the gold 0.74 -> 0.66; README, First start).
    frozen_layers: int = 0
    # "bfloat16": the forward and backward passes run under bfloat16 autocast (the weights, the
    # optimizer and the loss stay float32). Where the CPU multiplies bfloat16 natively (avx512_bf16,
    # amx_bf16) a step takes ~0.6 of float32's time; Settings.tuning() picks it there by default.
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")

    def digest(self) -> str:
        fields = asdict(self)
        for name, default in (("frozen_layers", 0), ("precision", "float32")):
            if fields[name] == default:  # as before the field existed: indexes built then stay up to date
                del fields[name]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TuningReport:
    questions: int
    steps: int
    seconds: float
    first_loss: float
    last_loss: float


def trainable_state(model) -> dict:
    """The tensors tuning changes: everything of the transformer except its (frozen) embeddings."""
    encoder = model[0].auto_model
    return {name: t for name, t in encoder.state_dict().items() if not name.startswith("embeddings.")}


def query_copy(model):
    """A copy of a sentence-transformers model sharing the original's word embeddings and tokenizer
    (neither is copied: the copy costs the transformer layers only)."""
    import copy

    embeddings = model[0].auto_model.embeddings
    shared = [embeddings, getattr(model[0], "tokenizer", None)]  # the tokenizer's 250k vocabulary too (~300 MB)
    clone = copy.deepcopy(model, memo={id(o): o for o in shared if o is not None})
    clone.eval()
    return clone


def tune_queries(
    model,
    questions: list[str],
    owners: list[int],
    passage_vectors: np.ndarray,
    config: TuningConfig,
    query_prompt: str,
    progress: Callable[[str], None] = lambda _msg: None,
):
    """Returns (tuned copy of ``model``, report). ``owners[i]`` is the row of ``passage_vectors``
    that question ``i`` asks about."""
    import torch

    if len(questions) != len(owners) or not questions:
        raise ValueError("tuning needs example questions, each with the paragraph it asks about")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    tuned = query_copy(model)
    encoder = tuned[0].auto_model
    layers = encoder.encoder.layer
    if not 0 <= config.frozen_layers < len(layers):
        raise ValueError(f"frozen_layers must be between 0 and {len(layers) - 1}, not {config.frozen_layers}")
    for p in encoder.embeddings.parameters():
        p.requires_grad = False
    for layer in layers[:config.frozen_layers]:
        for p in layer.parameters():
            p.requires_grad = False
    params = [p for p in tuned.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)
    batch = min(config.batch_size, len(questions))
    per_epoch = len(questions) // batch
    total = max(1, config.epochs * per_epoch)
    warmup = 0.1 * total + 1
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / total)
    )
    targets = torch.from_numpy(np.ascontiguousarray(passage_vectors, dtype=np.float32))
    start = time.perf_counter()
    texts = [query_prompt + q for q in questions]
    lower = FrozenLower(tuned, config.frozen_layers) if config.frozen_layers else None
    if lower is not None:
        progress(f"tuning the query encoder: the lowest {config.frozen_layers} of {len(layers)} layers once")
    inputs = lower.states(texts) if lower is not None else texts  # per question: hidden states, or its text
    pairs = list(zip(range(len(questions)), owners))
    losses: list[float] = []
    tuned.train()
    try:
        for epoch in range(config.epochs):
            for chunk in _batches(pairs, batch, rng, key=lambda p: len(questions[p[0]])):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.precision == "bfloat16"):
                    if lower is not None:
                        embedded = lower.upper([inputs[i] for i, _ in chunk])
                    else:
                        embedded = tuned(tuned.preprocess([inputs[i] for i, _ in chunk]))["sentence_embedding"]
                vectors = torch.nn.functional.normalize(embedded.float(), dim=-1)
                loss = torch.nn.functional.cross_entropy(vectors @ targets.T * config.scale,
                                                         torch.tensor([o for _, o in chunk]))
                loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                losses.append(float(loss.detach()))
            progress(f"tuning the query encoder: epoch {epoch + 1}/{config.epochs}, loss {np.mean(losses[-per_epoch:]):.2f}")
    finally:
        tuned.eval()
    for p in tuned.parameters():
        p.requires_grad = False
    window = max(1, len(losses) // 10)  # mean loss of the first and the last tenth of the steps
    report = TuningReport(len(questions), len(losses), round(time.perf_counter() - start, 1),
                          round(float(np.mean(losses[:window])), 4), round(float(np.mean(losses[-window:])), 4))
    return tuned, report


class FrozenLower:
    """The split forward pass of a sentence-transformers BERT model whose lowest ``frozen`` layers do
    not change: ``states`` runs them once per text (eval mode, no gradient) and keeps each text's
    hidden states without padding; ``upper`` pads a batch of them and runs the remaining layers and
    the pooling. In eval mode ``upper(states(texts))`` equals the model's own sentence embedding."""

    def __init__(self, model, frozen: int, batch_size: int = 64):
        self.model, self.frozen, self.batch_size = model, frozen, batch_size
        self.encoder = model[0].auto_model

    def states(self, texts: list[str]) -> list:
        import torch

        out = []
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.no_grad():  # not inference_mode: the states feed the trained layers' autograd
                for start in range(0, len(texts), self.batch_size):
                    features = self.model.preprocess(texts[start:start + self.batch_size])
                    keep = {k: v for k, v in features.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
                    hidden = self.encoder(**keep, output_hidden_states=True).hidden_states[self.frozen]
                    for row, n in zip(hidden, features["attention_mask"].sum(dim=1).tolist()):
                        out.append(row[:n].clone())  # right padding: the text's own tokens come first
        finally:
            self.encoder.train(was_training)
        return out

    def upper(self, states: list):
        import torch
        from transformers.masking_utils import create_bidirectional_mask

        hidden = torch.nn.utils.rnn.pad_sequence(states, batch_first=True)
        mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(t), dtype=torch.long) for t in states], batch_first=True)
        attention = create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in self.encoder.encoder.layer[self.frozen:]:
            hidden = layer(hidden, attention)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        features = {"token_embeddings": hidden, "attention_mask": mask}
        for module in list(self.model)[1:]:  # pooling (and normalization)
            features = module(features)
        return features["sentence_embedding"]


def _batches(pairs: list, batch: int, rng: random.Random, key) -> list[list]:
    """One epoch's batches: shuffled, then grouped by length within windows of eight batches so
    little time goes to padding (the loss is over every paragraph, so which questions share a batch
    does not matter); the batch order is shuffled again. Leftovers that do not fill a batch wait.
    ``key`` gives a pair's length."""
    order = pairs[:]
    rng.shuffle(order)
    usable = len(order) // batch * batch
    out: list[list] = []
    for start in range(0, usable, 8 * batch):
        window = sorted(order[start:min(start + 8 * batch, usable)], key=key)
        out.extend(window[i:i + batch] for i in range(0, len(window), batch))
    rng.shuffle(out)
    return out


def save_layers(model, path: Path) -> str:
    """Writes the tuned tensors; returns their sha256 (recorded in the manifest)."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in trainable_state(model).items()}, str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_layers(model, path: Path):
    """A query copy of ``model`` with the tensors of ``path`` (written by ``save_layers``)."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    tuned = query_copy(model)
    expected = set(trainable_state(tuned))
    if set(state) != expected:
        raise ValueError(f"{path} does not hold the layers of this model ({len(state)} tensors, expected {len(expected)})")
    tuned[0].auto_model.load_state_dict(state, strict=False)
    for p in tuned.parameters():
        p.requires_grad = False
    return tuned
