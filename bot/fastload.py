"""Load Rasa's TensorFlow models (DIET, TED) without tracing a training step: Rasa ready in seconds, not a minute.

Rasa 3.6 rebuilds each model at load time by *training it on one example* (``RasaModel.load`` →
``model.fit``) so that its variables exist before the saved weights are read. ``fit`` traces the
whole training step into a TensorFlow graph, gradients and the entity CRF loss included, and throws
the graph away: measured with py-spy on this machine, 45 of the 55 s Rasa spent loading the model
(DIET 35 s, TED 10 s; the e5 ONNX featurizer and the rest about 5 s).

:func:`install` replaces that step: one eager forward pass of the same loss on the same example
creates the same variables (no graph, no gradients), then the saved weights are read over them
exactly as before, and the prediction graph is traced on the prediction example as Rasa does. The
weights after loading are the saved ones either way (``fit``'s one update step is overwritten by
``load_weights``), so the model predicts the same: tests/test_fastload.py compares intent
rankings, entities and the dialogue's action predictions of both loaders on the training data.
The prediction graph is traced without AutoGraph (see below). Fine-tuning (``finetune_mode``)
keeps Rasa's own path.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Text

logger = logging.getLogger(__name__)


def install() -> None:
    """Patch ``rasa.utils.tensorflow.models.RasaModel.load`` (idempotent)."""
    import tensorflow as tf
    from rasa.utils import train_utils
    from rasa.utils.tensorflow import models
    from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
    from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
    from rasa.utils.tensorflow.model_data import RasaModelData

    if getattr(models.RasaModel.load, "assistant_fastload", False):
        return
    rasa_load = models.RasaModel.load.__func__

    def load(cls: type, model_file_name: Text, model_data_example: RasaModelData,
             predict_data_example: Optional[RasaModelData] = None, finetune_mode: bool = False,
             *args: Any, **kwargs: Any) -> "models.RasaModel":
        if finetune_mode:
            return rasa_load(cls, model_file_name, model_data_example, predict_data_example, finetune_mode,
                             *args, **kwargs)
        model = cls(*args, **kwargs)
        config = kwargs.get("config", {})
        model.compile(optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
                      run_eagerly=config.get(RUN_EAGERLY))
        batch_in, _ = RasaBatchDataGenerator(model_data_example, batch_size=1, shuffle=False)[0]
        model._training = True  # noqa: SLF001 - as train_step sets it: the layers build their training parts
        model.batch_loss(tuple(tf.convert_to_tensor(x) for x in batch_in))
        model._training = None  # noqa: SLF001
        # The optimizer's slots in the checkpoint have no variables here (nothing is trained): partial.
        status = model.load_weights(model_file_name)
        if status is not None:
            status.expect_partial()
        if predict_data_example:
            # Rasa's prediction graph, with the signature Rasa gives it, traced without AutoGraph: the
            # prediction code branches on Python values only (tf.cond where it branches on tensors), so
            # AutoGraph's source rewriting only costs time (12.6 → 7.6 CPU-s for the whole load here).
            (generator, _) = train_utils.create_data_generators(model_data=predict_data_example, batch_sizes=1,
                                                                 epochs=1, shuffle=False)
            first = next(iter(generator))[0]
            model._tf_predict_step = tf.function(model.predict_step, autograph=False,  # noqa: SLF001
                                                 input_signature=model._dynamic_signature(first))  # noqa: SLF001
            model.run_inference(predict_data_example)  # traces the prediction graph, as Rasa does
        logger.debug("loaded %s without a training step", cls.__name__)
        return model

    load.assistant_fastload = True  # type: ignore[attr-defined]
    models.RasaModel.load = classmethod(load)
