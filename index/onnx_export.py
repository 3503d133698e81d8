"""Export the embedding model to ONNX, for the Rasa NLU (its environment has no torch).

    python -m index export-onnx      # writes <model folder>/onnx/model.onnx and model.int8.onnx (idempotent)

The ONNX graph maps ``input_ids`` and ``attention_mask`` to the last hidden states; the reader
(bot/components/e5.py, with onnxruntime and the model folder's tokenizer.json) pools them itself.
Written to a temporary file and moved into place, so a half-written model is never read.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

ONNX_FOLDER = "onnx"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"  # its matrix multiplications in int8 (quantize_int8)
DONE_MARKER = "export.json"
OPSET = 17


def onnx_path(model_dir: Path) -> Path:
    return Path(model_dir) / ONNX_FOLDER / ONNX_FILE


def _stamp(model_dir: Path) -> dict:
    weights = model_dir / "model.safetensors"
    stat = weights.stat()
    return {"weights_bytes": stat.st_size, "weights_mtime": int(stat.st_mtime), "opset": OPSET, "int8": INT8_FILE}


def write_last_hidden_state(encoder, target: Path) -> None:
    """Write ``encoder`` (a Hugging Face transformer) to ``target`` as an ONNX graph mapping
    ``input_ids`` and ``attention_mask`` to the last hidden states; atomically (temporary file, then
    a rename), so a half-written graph is never read."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        example = torch.ones((1, 8), dtype=torch.long)
        axes = {0: "batch", 1: "tokens"}
        with torch.no_grad():
            torch.onnx.export(
                LastHiddenState(encoder), (example, example), tmp, input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"], opset_version=OPSET, dynamo=False,
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            )
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def quantize_int8(source: Path, target: Path) -> None:
    """Write ``source`` with its matrix multiplications in int8 (dynamic quantisation, one scale per
    output channel) to ``target``, atomically. Only ``MatMul``: the word embeddings (a ``Gather``) and
    the layer norms stay float32, which keeps e5's vectors at cosine 0.996-0.999 of the float32
    graph's; quantising every operator with one scale per tensor moved them to 0.89-0.92."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fd, tmp = tempfile.mkstemp(prefix=".int8.", suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        quantize_dynamic(str(source), tmp, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                         per_channel=True)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def export(model_dir: Path, force: bool = False) -> Path:
    """Export the Hugging Face model in ``model_dir`` (a sentence-transformers folder) to ONNX."""
    model_dir = Path(model_dir)
    target = onnx_path(model_dir)
    marker = target.parent / DONE_MARKER
    stamp = _stamp(model_dir)
    try:
        if not force and target.exists() and (target.parent / INT8_FILE).exists() \
                and json.loads(marker.read_text(encoding="utf-8")) == stamp:
            return target
    except (OSError, json.JSONDecodeError):
        pass
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir)).eval()
    write_last_hidden_state(model, target)
    quantize_int8(target, target.parent / INT8_FILE)
    marker.write_text(json.dumps(stamp), encoding="utf-8")
    return target
