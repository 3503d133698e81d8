"""The query encoder as an ONNX graph, run by ONNX Runtime when searching.

``python -m index build`` exports the encoder that questions go through (the tuned copy of
index/tune.py, else the stock model) into the index folder, with its tokenizer:

    query_encoder.onnx     input_ids, attention_mask -> last hidden states (float32, not quantised)
    query_tokenizer.json   the model's fast tokenizer

At search time ``OnnxQueryEncoder`` tokenizes, runs the graph and mean-pools exactly as
sentence-transformers does (the vectors agree with torch's to cosine 1.0000), so the serving
processes (knowledge service, action server) never import torch. Measured on this 2-core machine,
one short question, side by side: torch 52–170 ms (2 threads, loaded machine), ONNX Runtime 16 ms on
one thread. An int8 (dynamically quantised) graph was 3× faster again but moved the vectors to
cosine 0.89–0.92 of the originals, so it is not used.

Nothing here imports torch except ``export_query_encoder`` (build time).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
from pydantic import BaseModel

ENCODER_FILE = "query_encoder.onnx"
TOKENIZER_FILE = "query_tokenizer.json"


class QueryEncoder(BaseModel):
    """The exported query encoder, as the index manifest records it."""

    file: str
    tokenizer: str
    sha256: str
    prompt: str
    max_tokens: int
    dimension: int


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_query_encoder(model, prompt: str, folder: Path) -> QueryEncoder:
    """Write ``model`` (a sentence-transformers model: transformer, mean pooling, normalisation)
    as query_encoder.onnx + query_tokenizer.json in ``folder``."""
    from .onnx_export import write_last_hidden_state

    transformer = model[0]
    pooling = model[1] if len(model) > 1 else None
    if not getattr(pooling, "pooling_mode_mean_tokens", True):
        raise ValueError("only mean-pooling models can be exported as a query encoder")
    target = folder / ENCODER_FILE
    write_last_hidden_state(transformer.auto_model.eval(), target)
    transformer.tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
    return QueryEncoder(
        file=ENCODER_FILE, tokenizer=TOKENIZER_FILE, sha256=file_sha256(target), prompt=prompt,
        max_tokens=int(model.max_seq_length), dimension=int(model.get_embedding_dimension()),
    )


class OnnxQueryEncoder:
    """Encodes questions with the exported graph: an ``Embedder`` for the query side only."""

    def __init__(self, folder: Path, exported: QueryEncoder, name: str, threads: int = 1):
        self.name = name
        self._folder = Path(folder)
        self._exported = exported
        self._threads = threads
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return self._exported.dimension

    def _load(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort
                    from tokenizers import Tokenizer

                    tokenizer = Tokenizer.from_file(str(self._folder / self._exported.tokenizer))
                    tokenizer.enable_truncation(self._exported.max_tokens)
                    tokenizer.no_padding()
                    options = ort.SessionOptions()
                    options.intra_op_num_threads = self._threads
                    options.inter_op_num_threads = 1
                    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                    self._session = ort.InferenceSession(str(self._folder / self._exported.file), options,
                                                         providers=["CPUExecutionProvider"])
                    self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch([self._exported.prompt + t for t in texts])
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = 1
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
        vectors = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        raise NotImplementedError("the ONNX query encoder only encodes questions; passages are embedded at build time")
