"""Training, one module per job:

===============  ============================================================================
``state``        :class:`TrainState` and :class:`History` (what a second ``fit`` continues
                 from, and its file form)
``trainable``    :class:`TrainableNetwork`: what training needs of a network beyond its
                 maths; resolving the loss, optimiser and seed a ``fit`` continues with
``inputs``       checks of X and y; targets and class labels
``batches``      :class:`Rows`, the validation split, the buffers a batch is gathered into
``weights``      row weights from ``sample_weight`` and ``class_weight``
``dropout``      dropout during ``fit``: dropout layers in a training view of the network
``engine``       the seam: :class:`StepEngine` (one batch's step) and :class:`NumpyEngine`
``torch_engine`` :class:`TorchEngine`: the step in PyTorch, on a device (torch optional)
``first_step``   :class:`FirstStepCheck`: an engine's first step against the step graph's
``loop``         :func:`run_epochs` and :func:`fit`
``callbacks``    :class:`Callback`, :class:`EarlyStopping`, :class:`Checkpoint`,
                 :class:`ProgressBar`
``metrics``      prediction and evaluation on the network's own inputs
===============  ============================================================================

Dependencies point one way: ``network`` ← ``training`` ← ``model``; nothing here imports
the model (callbacks and ``fit`` take a :class:`TrainableNetwork`, which the model is).
Every name other modules import from ``glassnet.training`` is re-exported here.
"""

from __future__ import annotations

from glassnet.training.batches import Batches, Rows, split_indices
from glassnet.training.callbacks import Callback, Checkpoint, EarlyStopping, ProgressBar
from glassnet.training.dropout import check_dropout, with_dropout
from glassnet.training.engine import NumpyEngine, StepEngine
from glassnet.training.first_step import FirstStepCheck
from glassnet.training.inputs import CHUNK, check_data, check_finite, prepare_targets
from glassnet.training.loop import ENGINES, fit, resolve_engine, run_epochs
from glassnet.training.metrics import (
    classes_from_output,
    confusion_matrix,
    evaluate,
    evaluate_rows,
    forward_chunked,
)
from glassnet.training.state import (
    History,
    TrainState,
    default_loss,
    positive_int,
    shuffle_rng,
)
from glassnet.training.trainable import TrainableNetwork, resolve_loss, resolve_state
from glassnet.training.weights import row_weights, training_weights

__all__ = [
    "CHUNK",
    "ENGINES",
    "Batches",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "FirstStepCheck",
    "History",
    "NumpyEngine",
    "ProgressBar",
    "Rows",
    "StepEngine",
    "TrainState",
    "TrainableNetwork",
    "check_data",
    "check_dropout",
    "check_finite",
    "classes_from_output",
    "confusion_matrix",
    "default_loss",
    "evaluate",
    "evaluate_rows",
    "fit",
    "forward_chunked",
    "positive_int",
    "prepare_targets",
    "resolve_engine",
    "resolve_loss",
    "resolve_state",
    "row_weights",
    "run_epochs",
    "shuffle_rng",
    "split_indices",
    "training_weights",
    "with_dropout",
]
