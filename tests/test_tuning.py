"""Query-side tuning (index/tune.py) with the real model on the tiny corpus (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.settings import Settings
from index.store import IndexCorruptError, IndexMismatchError, build_index, collect_paragraphs, read_manifest
from index.tune import LAYERS_FILE, TuningConfig

pytestmark = pytest.mark.slow

QUESTIONS = {  # keyword of the paragraph -> questions people might send about it
    "partnerskap": ["vi är en förening, kan vi samarbeta med kommunen utan att lämna anbud?",
                    "Can a non-profit team up with the municipality without a tender?"],
    "reserver": ["kan kommunen ge uppdraget bara till sociala företag?",
                 "can a contract be kept for work-integration enterprises only"],
    "direktupphandl": ["hur mycket får kommunen köpa för utan att annonsera?",
                       "what is the limit for buying without a tender?"],
}


@pytest.fixture(scope="module")
def tuned_index(tmp_path_factory) -> tuple[Settings, object]:
    from index.embed import SentenceTransformerEmbedder

    from conftest import TINY_DOCS, TINY_MANIFEST
    import textwrap

    root = tmp_path_factory.mktemp("tuning")
    knowledge = root / "knowledge"
    knowledge.mkdir()
    for name, text in TINY_DOCS.items():
        (knowledge / name).write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    (knowledge / "manifest.toml").write_text(TINY_MANIFEST, encoding="utf-8")
    _, paragraphs = collect_paragraphs(knowledge)
    lines = []
    for key, questions in QUESTIONS.items():
        owner = next(p for p in paragraphs if key in p.text.lower())
        lines += [json.dumps({"paragraph_id": owner.paragraph_id, "question": q,
                              "lang": "en" if q[0].isupper() and " the " in q else "sv"}) for q in questions]
    (knowledge / "questions").mkdir()
    (knowledge / "questions" / "tiny.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = Settings(knowledge_dir=knowledge, index_dir=root / "index")
    embedder = SentenceTransformerEmbedder(settings)
    build_index(knowledge, settings.index_dir, embedder, tuning=TuningConfig(epochs=4, batch_size=2, learning_rate=1e-4))
    return settings, embedder


def test_tuning_is_recorded_and_lowers_the_loss(tuned_index):
    settings, _ = tuned_index
    manifest = read_manifest(settings.index_dir)
    tuning = manifest.query_tuning
    assert tuning is not None and tuning.file == LAYERS_FILE and (settings.index_dir / LAYERS_FILE).is_file()
    assert tuning.questions == sum(len(q) for q in QUESTIONS.values()) and tuning.steps == 4 * 3
    assert tuning.last_loss < tuning.first_loss


def test_a_loaded_index_queries_with_the_tuned_layers_and_keeps_paragraph_vectors(tuned_index):
    from index.embed import SentenceTransformerEmbedder
    from index.search import SearchEngine

    settings, builder = tuned_index
    stock = SentenceTransformerEmbedder(settings)
    engine = SearchEngine.load(settings, SentenceTransformerEmbedder(settings))
    question = ["kan vi som förening jobba ihop med regionen?"]
    loaded = engine.embedder.encode_queries(question)
    np.testing.assert_allclose(loaded, builder.encode_queries(question), atol=1e-5)  # saved == trained
    assert float(loaded[0] @ stock.encode_queries(question)[0]) < 0.9999  # not the stock query encoder
    stock_bert, tuned_bert = engine.embedder.model, engine.embedder._query_model
    assert tuned_bert[0].auto_model.embeddings is stock_bert[0].auto_model.embeddings  # shared, not copied:
    assert tuned_bert[0].tokenizer is stock_bert[0].tokenizer  # the copy costs ~90 MB, not ~470 MB
    texts = [p.text for p in engine.index.paragraphs[:3]]
    np.testing.assert_allclose(engine.embedder.encode_passages(texts), stock.encode_passages(texts), atol=1e-5)


def test_tuned_questions_find_their_paragraph(tuned_index):
    from index.embed import SentenceTransformerEmbedder
    from index.search import SearchEngine

    settings, _ = tuned_index
    engine = SearchEngine.load(settings, SentenceTransformerEmbedder(settings))
    for key, questions in QUESTIONS.items():
        for q in questions:
            dense, _, _ = engine.semantic_scores(q)
            assert key in engine.index.paragraphs[int(np.argmax(dense))].text.lower(), q


def test_a_damaged_or_missing_layers_file_names_the_file(tuned_index, tmp_path):
    import shutil

    from index.embed import SentenceTransformerEmbedder
    from index.search import SearchEngine

    settings, _ = tuned_index
    copy = tmp_path / "index"
    shutil.copytree(settings.index_dir, copy)
    broken = settings.model_copy(update={"index_dir": copy})
    layers = copy / LAYERS_FILE
    data = bytearray(layers.read_bytes())
    data[-10] ^= 0xFF
    layers.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=LAYERS_FILE):
        SearchEngine.load(broken, SentenceTransformerEmbedder(broken))
    layers.unlink()
    with pytest.raises(IndexCorruptError, match=f"{LAYERS_FILE} is missing.*index build"):
        SearchEngine.load(broken, SentenceTransformerEmbedder(broken))


def test_an_embedder_that_cannot_load_the_layers_is_refused(tuned_index):
    from index.search import SearchEngine

    from conftest import FakeEmbedder

    settings, _ = tuned_index
    fake = FakeEmbedder()
    fake.name = settings.model  # same name, but no tuned query side
    fake.dimension = 384
    with pytest.raises(IndexMismatchError, match="QUERY_TUNING_EPOCHS=0"):
        SearchEngine.load(settings, fake)


def test_tuning_off_builds_no_layers(tuned_index, tmp_path):
    settings, builder = tuned_index
    index_dir = tmp_path / "plain"
    build_index(settings.knowledge_dir, index_dir, builder, tuning=None)
    assert read_manifest(index_dir).query_tuning is None and not (index_dir / LAYERS_FILE).exists()


def test_settings_turn_tuning_off_with_zero_epochs():
    assert Settings(query_tuning_epochs=0).tuning() is None
    assert Settings(query_tuning_epochs=2, query_tuning_precision="float32").tuning() == TuningConfig(epochs=2)
    assert TuningConfig(epochs=2).digest() != TuningConfig(epochs=3).digest()
    assert Settings(query_tuning_frozen_layers=6, query_tuning_precision="float32").tuning() == TuningConfig(frozen_layers=6)
    assert TuningConfig(frozen_layers=6).digest() != TuningConfig().digest()
    # No frozen layers digests as before the setting existed: indexes built then are not rebuilt.
    import hashlib

    before = {"epochs": 3, "learning_rate": 3e-5, "batch_size": 32, "scale": 50.0, "seed": 0}
    assert TuningConfig().digest() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]


def test_bfloat16_tuning_is_chosen_where_the_cpu_computes_it_natively(tmp_path, monkeypatch):
    from index import tune

    flags = tmp_path / "cpuinfo"
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert tune.native_bfloat16(flags)
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\nbugs\t: avx512_bf16\n")
    assert not tune.native_bfloat16(flags)  # only the flags line counts
    assert not tune.native_bfloat16(tmp_path / "missing")
    monkeypatch.setattr(tune, "native_bfloat16", lambda: True)
    assert Settings().tuning().precision == "bfloat16"
    assert Settings(query_tuning_precision="float32").tuning().precision == "float32"
    monkeypatch.setattr(tune, "native_bfloat16", lambda: False)
    assert Settings().tuning().precision == "float32"
    assert Settings(query_tuning_precision="bfloat16").tuning().precision == "bfloat16"  # asked for: emulated
    assert TuningConfig(precision="bfloat16").digest() != TuningConfig().digest()
    with pytest.raises(ValueError, match="precision"):
        TuningConfig(precision="float16")


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_tuning_computes_in_the_configured_precision_and_keeps_float32_weights(tuned_index, precision):
    import torch

    from index.tune import trainable_state, tune_queries

    _, embedder = tuned_index
    questions = [q for qs in QUESTIONS.values() for q in qs]
    owners = [i for i, qs in enumerate(QUESTIONS.values()) for _ in qs]
    targets = embedder.encode_passages(list(QUESTIONS))
    seen = set()
    original_forward = torch.nn.Linear.forward

    def recording(self, x):
        out = original_forward(self, x)
        if torch.is_grad_enabled():
            seen.add(out.dtype)
        return out

    torch.nn.Linear.forward = recording
    try:
        tuned, report = tune_queries(embedder.model, questions, owners, targets,
                                     TuningConfig(epochs=4, batch_size=2, learning_rate=1e-4, precision=precision),
                                     "query: ")
    finally:
        torch.nn.Linear.forward = original_forward
    assert seen == {getattr(torch, precision)}
    assert {t.dtype for t in trainable_state(tuned).values()} == {torch.float32}
    assert report.last_loss < report.first_loss


def test_tuning_needs_matching_questions_and_owners():
    from index.tune import tune_queries

    with pytest.raises(ValueError):
        tune_queries(None, ["q"], [], np.zeros((1, 4), dtype=np.float32), TuningConfig(), "query: ")


def test_the_split_forward_pass_equals_the_models_own(tuned_index):
    """Frozen-layer tuning trains on hidden states computed once per question; in eval mode they
    must give exactly the model's own sentence embeddings, whatever the split and the padding."""
    import torch

    from index.tune import FrozenLower, query_copy

    _, embedder = tuned_index
    model = query_copy(embedder.model)
    texts = ["query: hej", "query: Hur hög är direktupphandlingsgränsen för en kommun som köper tjänster?",
             "query: can a contract be reserved for work-integration enterprises"]
    with torch.no_grad():
        expected = model(model.preprocess(texts))["sentence_embedding"]
        for frozen in (1, 6, 11):
            lower = FrozenLower(model, frozen)
            states = lower.states(texts)
            assert [len(s) for s in states] == model.preprocess(texts)["attention_mask"].sum(dim=1).tolist()
            assert torch.allclose(lower.upper(states), expected, atol=1e-5), frozen
            assert torch.allclose(lower.upper(states[1:2]), expected[1:2], atol=1e-5)  # alone: no padding


def test_frozen_layers_stay_stock_and_the_layers_above_learn(tuned_index):
    from index.tune import trainable_state, tune_queries

    _, embedder = tuned_index
    questions = [q for qs in QUESTIONS.values() for q in qs]
    owners = [i for i, qs in enumerate(QUESTIONS.values()) for _ in qs]
    targets = embedder.encode_passages(list(QUESTIONS))  # three stand-in "paragraphs"
    stock = {k: v.clone() for k, v in trainable_state(embedder.model).items()}
    tuned, report = tune_queries(embedder.model, questions, owners, targets,
                                 TuningConfig(epochs=4, batch_size=2, learning_rate=1e-4, frozen_layers=8), "query: ")
    state = trainable_state(tuned)
    changed = {k for k, v in state.items() if not (v == stock[k]).all()}
    layer = lambda k: int(k.split(".")[2]) if k.startswith("encoder.layer.") else None  # noqa: E731
    assert changed and all(layer(k) is None or layer(k) >= 8 for k in changed), sorted(changed)[:5]
    assert {layer(k) for k in changed} >= {8, 9, 10, 11}
    assert report.steps == 4 * 3 and report.last_loss < report.first_loss


def test_frozen_layers_must_leave_a_layer_to_tune(tuned_index):
    from index.tune import tune_queries

    _, embedder = tuned_index
    with pytest.raises(ValueError, match="frozen_layers"):
        tune_queries(embedder.model, ["q"], [0], np.zeros((1, 384), dtype=np.float32),
                     TuningConfig(frozen_layers=12), "query: ")


# -- the exported query encoder (index/onnx_query.py) ----------------------------------------------

def test_the_build_exports_the_tuned_query_encoder_and_search_uses_it(tuned_index):
    from index.embed import SentenceTransformerEmbedder
    from index.onnx_query import ENCODER_FILE, OnnxQueryEncoder
    from index.search import SearchEngine

    settings, builder = tuned_index
    exported = read_manifest(settings.index_dir).query_encoder
    assert exported is not None and exported.file == ENCODER_FILE and exported.prompt == "query: "
    settings = settings.model_copy(update={"query_precision": "float32"})
    engine = SearchEngine.load(settings)  # the default runtime: ONNX
    assert isinstance(engine.embedder, OnnxQueryEncoder) and engine.embedder.graph_file == ENCODER_FILE
    # A short and a long question in one batch: padding must not change either vector.
    questions = ["kan vi som förening jobba ihop med regionen?",
                 "Vi är ett arbetsintegrerande socialt företag med tolv anställda och undrar hur mycket "
                 "kommunen får köpa av oss utan att annonsera, och om det finns andra vägar in."]
    np.testing.assert_allclose(engine.embedder.encode_queries(questions), builder.encode_queries(questions), atol=2e-4)
    np.testing.assert_allclose(engine.embedder.encode_queries(questions[:1]), builder.encode_queries(questions[:1]),
                               atol=2e-4)
    torch_engine = SearchEngine.load(settings, SentenceTransformerEmbedder(settings))
    for key, qs in QUESTIONS.items():
        for q in qs:
            assert [h.paragraph_id for h in engine.search(q, 5).hits] == \
                [h.paragraph_id for h in torch_engine.search(q, 5).hits], q


def test_questions_go_through_the_int8_graph_by_default_close_to_float32(tuned_index):
    from index.onnx_query import INT8_FILE, OnnxQueryEncoder
    from index.search import SearchEngine

    settings, builder = tuned_index
    exported = read_manifest(settings.index_dir).query_encoder
    assert exported.int8_file == INT8_FILE and exported.int8_sha256 != exported.sha256
    int8, exact = SearchEngine.load(settings), SearchEngine.load(settings.model_copy(update={"query_precision": "float32"}))
    assert isinstance(int8.embedder, OnnxQueryEncoder) and int8.embedder.graph_file == INT8_FILE
    questions = [q for qs in QUESTIONS.values() for q in qs]
    a, b = int8.embedder.encode_queries(questions), exact.embedder.encode_queries(questions)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() >= 0.98 and cosines.max() < 0.99999, cosines  # close, and not the float32 graph itself
    agree = sum(int8.search(q, 3).hits[0].paragraph_id == exact.search(q, 3).hits[0].paragraph_id for q in questions)
    assert agree >= len(questions) - 1


def test_a_damaged_int8_graph_is_refused_with_the_rebuild_command(tuned_index, tmp_path):
    import shutil

    from index.onnx_query import INT8_FILE
    from index.search import SearchEngine
    from index.store import IndexCorruptError

    settings, _ = tuned_index
    copy = tmp_path / "index"
    shutil.copytree(settings.index_dir, copy)
    with open(copy / INT8_FILE, "r+b") as f:
        f.seek(-16, 2)
        f.write(b"\0" * 16)
    with pytest.raises(IndexCorruptError, match=r"query_encoder\.int8\.onnx does not match.*python -m index build"):
        SearchEngine.load(settings.model_copy(update={"index_dir": copy}))


def test_query_runtime_torch_keeps_the_torch_model(tuned_index):
    from index.embed import SentenceTransformerEmbedder
    from index.search import SearchEngine

    settings, _ = tuned_index
    engine = SearchEngine.load(settings.model_copy(update={"query_runtime": "torch"}))
    assert isinstance(engine.embedder, SentenceTransformerEmbedder) and engine.embedder._query_model is not None


def test_searching_does_not_import_torch(tuned_index):
    import os
    import subprocess
    import sys

    settings, _ = tuned_index
    script = ("import sys\nfrom index.search import SearchEngine\nengine = SearchEngine.load()\n"
              "hits = engine.search('hur mycket får kommunen köpa utan annons?', 3).hits\n"
              "assert hits, 'no hits'\nprint('torch' in sys.modules, type(engine.embedder).__name__)\n")
    env = {**os.environ, "ASSISTANT_INDEX_DIR": str(settings.index_dir),
           "ASSISTANT_KNOWLEDGE_DIR": str(settings.knowledge_dir)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["False", "OnnxQueryEncoder"]


def test_a_damaged_or_missing_onnx_encoder_names_the_file(tuned_index, tmp_path):
    import shutil

    from index.onnx_query import ENCODER_FILE, TOKENIZER_FILE
    from index.search import SearchEngine

    settings, _ = tuned_index
    copy = tmp_path / "index"
    shutil.copytree(settings.index_dir, copy)
    broken = settings.model_copy(update={"index_dir": copy})
    graph = copy / ENCODER_FILE
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=f"{ENCODER_FILE} does not match.*index build"):
        SearchEngine.load(broken)
    (copy / TOKENIZER_FILE).unlink()
    with pytest.raises(IndexCorruptError, match=f"{TOKENIZER_FILE} is missing.*index build"):
        SearchEngine.load(broken)


def test_an_untuned_build_links_the_stock_graphs_and_needs_no_torch(tuned_index, tmp_path):
    """A build without tuning (`make run`'s first build) takes the model folder's exported graphs as its query
    encoder, embeds everything with ONNX Runtime, and its searches give the stock model's query vectors."""
    from index.embed import SentenceTransformerEmbedder
    from index.onnx_export import onnx_path
    from index.onnx_query import file_sha256
    from index.search import SearchEngine

    settings, _ = tuned_index
    plain = settings.model_copy(update={"index_dir": tmp_path / "untuned"})
    builder = SentenceTransformerEmbedder(plain)
    build_index(plain.knowledge_dir, plain.index_dir, builder, tuning=None)
    assert builder._model is None  # torch never loaded
    manifest = read_manifest(plain.index_dir)
    graph = onnx_path(builder._folder())
    assert manifest.query_encoder.sha256 == file_sha256(graph)
    linked = (plain.index_dir / manifest.query_encoder.file).stat()
    if linked.st_dev == graph.stat().st_dev:  # one file system: a link, not a copy
        assert linked.st_ino == graph.stat().st_ino
    engine = SearchEngine.load(plain.model_copy(update={"query_precision": "float32"}))
    question = ["kan vi som förening jobba ihop med regionen?"]
    torch_stock = SentenceTransformerEmbedder(settings.model_copy(update={"build_runtime": "torch"}))
    np.testing.assert_allclose(engine.embedder.encode_queries(question), torch_stock.encode_queries(question), atol=1e-4)
