"""The query encoder as an ONNX graph, run by ONNX Runtime when searching.

``python -m index build`` exports the encoder that questions go through (the tuned copy of
index/tune.py, else the stock model) into the index folder, with its tokenizer:

    query_encoder.onnx        input_ids, attention_mask -> last hidden states (float32)
    query_encoder.int8.onnx   the same with its matrix multiplications in int8 (onnx_export.quantize_int8)
    query_tokenizer.json      the model's fast tokenizer

At search time ``OnnxQueryEncoder`` tokenizes, runs the graph and mean-pools exactly as
sentence-transformers does (the vectors agree with torch's to cosine 1.0000), so the serving
processes (knowledge service, action server) never import torch. Measured on this 2-core machine,
one short question, side by side: torch 52–170 ms (2 threads, loaded machine), ONNX Runtime 16 ms on
one thread. ``ASSISTANT_QUERY_PRECISION`` chooses the graph: int8 (default) is about 3× faster
again (10 tokens: 10 ms -> 3 ms, one thread) with vectors at cosine 0.996–0.999 of float32's, and
retrieval on the question sets within ±1–3 questions either way (README, Load); float32 is exact.

Nothing here imports torch except ``export_query_encoder`` (build time).
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np
from pydantic import BaseModel

ENCODER_FILE = "query_encoder.onnx"
INT8_FILE = "query_encoder.int8.onnx"
TOKENIZER_FILE = "query_tokenizer.json"


class QueryEncoder(BaseModel):
    """The exported query encoder, as the index manifest records it."""

    file: str
    tokenizer: str
    sha256: str
    prompt: str
    max_tokens: int
    dimension: int
    int8_file: str | None = None  # the int8 graph, when the build wrote one
    int8_sha256: str | None = None

    def graphs(self) -> list[tuple[str, str]]:
        """(file, sha256) of every graph the build wrote: float32, then int8 where there is one."""
        return [(self.file, self.sha256)] + ([(self.int8_file, self.int8_sha256 or "")] if self.int8_file else [])

    def graph(self, precision: str) -> str:
        """The graph file for ``precision`` ("int8" or "float32"): float32 where the build wrote no int8 graph."""
        return self.int8_file if precision == "int8" and self.int8_file else self.file


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_query_encoder(model, prompt: str, folder: Path) -> QueryEncoder:
    """Write ``model`` (a sentence-transformers model: transformer, mean pooling, normalisation)
    as query_encoder.onnx, its int8 twin and query_tokenizer.json in ``folder``."""
    from .onnx_export import quantize_int8, write_last_hidden_state

    transformer = model[0]
    pooling = model[1] if len(model) > 1 else None
    if not getattr(pooling, "pooling_mode_mean_tokens", True):
        raise ValueError("only mean-pooling models can be exported as a query encoder")
    target = folder / ENCODER_FILE
    write_last_hidden_state(transformer.auto_model.eval(), target)
    quantize_int8(target, folder / INT8_FILE)
    transformer.tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
    return QueryEncoder(
        file=ENCODER_FILE, tokenizer=TOKENIZER_FILE, sha256=file_sha256(target), prompt=prompt,
        max_tokens=int(model.max_seq_length), dimension=int(model.get_embedding_dimension()),
        int8_file=INT8_FILE, int8_sha256=file_sha256(folder / INT8_FILE),
    )


def copy_query_encoder(graph: Path, tokenizer: Path, prompt: str, max_tokens: int, dimension: int,
                       folder: Path) -> QueryEncoder:
    """Copy an already exported stock graph, its int8 twin (``model.int8.onnx`` beside it: onnx_export) and
    its tokenizer into ``folder`` as the query encoder: what ``export_query_encoder`` would write for the
    untuned model, without torch and the ~17 s export."""
    import shutil

    from .onnx_export import INT8_FILE as MODEL_INT8_FILE

    for source, name in ((graph, ENCODER_FILE), (graph.parent / MODEL_INT8_FILE, INT8_FILE), (tokenizer, TOKENIZER_FILE)):
        target = folder / name
        target.unlink(missing_ok=True)  # never write through an earlier link into the model folder
        try:
            # One file system: a link, no copy. Safe because neither side is ever written in place: the export
            # replaces its files (os.replace), a build writes a new index folder, and loading checks each sha256.
            os.link(source, target)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            shutil.copyfile(source, target)
    return QueryEncoder(
        file=ENCODER_FILE, tokenizer=TOKENIZER_FILE, sha256=file_sha256(folder / ENCODER_FILE), prompt=prompt,
        max_tokens=max_tokens, dimension=dimension, int8_file=INT8_FILE, int8_sha256=file_sha256(folder / INT8_FILE),
    )


class OnnxTextEncoder:
    """Runs an exported e5 graph (input_ids, attention_mask -> last hidden states) with its tokenizer
    and mean-pools exactly as sentence-transformers does. Texts are encoded longest first in batches,
    so each batch pads to nearly its own length; the vectors come back in the order given."""

    def __init__(self, graph: Path, tokenizer: Path, max_tokens: int, threads: int = 1):
        self.graph, self.tokenizer_file, self.max_tokens, self._threads = Path(graph), Path(tokenizer), max_tokens, threads
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort
                    from tokenizers import Tokenizer

                    tokenizer = Tokenizer.from_file(str(self.tokenizer_file))
                    tokenizer.enable_truncation(self.max_tokens)
                    tokenizer.no_padding()
                    options = ort.SessionOptions()
                    options.intra_op_num_threads = self._threads
                    options.inter_op_num_threads = 1
                    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                    session = ort.InferenceSession(str(self.graph), options, providers=["CPUExecutionProvider"])
                    self._tokenizer = tokenizer  # before the session: callers test the session alone
                    self._session = session
        return self._session, self._tokenizer

    def encode(self, texts: list[str], prompt: str = "", batch_size: int = 32,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """L2-normalised float32 vectors of ``prompt + text`` for each text; ``progress(n)`` after each batch."""
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch([prompt + t for t in texts])
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        out: np.ndarray | None = None
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            summed = (hidden * mask[..., None]).sum(axis=1)
            vectors = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
            if progress:
                progress(len(rows))
        if out is None:
            raise ValueError("nothing to encode")
        return out


class OnnxQueryEncoder:
    """Encodes questions with the exported graph: an ``Embedder`` for the query side only."""

    def __init__(self, folder: Path, exported: QueryEncoder, name: str, threads: int = 1,
                 precision: str = "float32"):
        self.name = name
        self._exported = exported
        self.graph_file = exported.graph(precision)
        self._encoder = OnnxTextEncoder(Path(folder) / self.graph_file, Path(folder) / exported.tokenizer,
                                        exported.max_tokens, threads)

    @property
    def dimension(self) -> int:
        return self._exported.dimension

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encoder.encode(texts, self._exported.prompt)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        raise NotImplementedError("the ONNX query encoder only encodes questions; passages are embedded at build time")
