"""Shared fixtures: a fake embedder with tiny vectors, a tiny corpus and indexes in tmp_path."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import numpy as np
import pytest

from index.lexical import stems, words
from index.settings import Settings

CORPUS_DIR = Path(__file__).resolve().parent.parent / "knowledge"


class FakeEmbedder:
    """Deterministic bag-of-stems vectors (32 dims): texts sharing words are similar."""

    name = "fake-embedder"
    dimension = 32

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for term in stems(words(text)):
            h = int(hashlib.md5(term.encode()).hexdigest(), 16)
            v[h % self.dimension] += 1.0 if (h >> 8) % 2 else -1.0
        n = np.linalg.norm(v)
        if n == 0:
            v[0] = 1.0
            return v
        return v / n

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._one(t) for t in texts])

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return np.stack([self._one(t) for t in texts])


TINY_DOCS = {
    "iop.md": """
        # Idéburet offentligt partnerskap

        Ett idéburet offentligt partnerskap (IOP) är en samverkansform mellan offentlig sektor och
        idéburna organisationer. Parterna bidrar båda med resurser och tar gemensamt ansvar.

        IOP används när en samhällsutmaning inte kan lösas genom en vanlig upphandling, och
        överenskommelsen saknar sanktioner.

        ## Avtalet

        Överenskommelsen beskriver bakgrund, vision, avtalstid och hur parterna kliver ur samarbetet.
        """,
    "troskel.txt": """
        DIREKTUPPHANDLING

        Om en upphandling berör ett belopp under 586 907 kr är det möjligt att göra en så kallad
        direktupphandling utan krav på annonsering.

        Ett ramavtal är ett avtal mellan en upphandlande myndighet och en eller flera leverantörer
        för att fastställa villkoren för senare tilldelning av kontrakt under en given tidsperiod.
        """,
    "reserverat.md": """
        # Reserverade kontrakt

        En upphandlande myndighet får reservera rätten att delta i en upphandling för sociala
        företag vars huvudsakliga syfte är social och yrkesmässig integration av personer med
        funktionsnedsättning eller som har svårt att komma in på arbetsmarknaden.
        """,
}

TINY_MANIFEST = """
[[documents]]
id = "iop"
file = "iop.md"
title = "Handbok om IOP"
publisher = "Testförlaget"
year = 2024

[[documents]]
id = "troskel"
file = "troskel.txt"
title = "Trösklar och ramavtal"
year = 2019
"""


@pytest.fixture
def tiny_knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    for name, text in TINY_DOCS.items():
        (folder / name).write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    (folder / "manifest.toml").write_text(TINY_MANIFEST, encoding="utf-8")
    return folder


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def tiny_settings(tmp_path: Path, tiny_knowledge: Path) -> Settings:
    return Settings(
        knowledge_dir=tiny_knowledge, index_dir=tmp_path / "index", model="fake-embedder",
        model_cache_dir=tmp_path / "models",
    )


@pytest.fixture
def tiny_index(tiny_settings: Settings, fake_embedder: FakeEmbedder) -> Settings:
    from index.store import build_index

    build_index(tiny_settings.knowledge_dir, tiny_settings.index_dir, fake_embedder)
    return tiny_settings


@pytest.fixture
def tiny_engine(tiny_index: Settings, fake_embedder: FakeEmbedder):
    from index.search import SearchEngine

    return SearchEngine.load(tiny_index, fake_embedder)
