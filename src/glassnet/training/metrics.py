"""Prediction and evaluation on the network's own inputs (already preprocessed): the
chunked forward pass, classes from outputs, the loss and accuracy over rows."""

from __future__ import annotations

import numpy as np

from glassnet.losses import Loss
from glassnet.network import Network
from glassnet.training.inputs import CHUNK, check_data, prepare_targets
from glassnet.training.state import default_loss

Array = np.ndarray


def forward_chunked(net: Network, X: Array) -> Array:
    """The output layer's values (n, n_out) for checked inputs X, in chunks of
    :data:`CHUNK` rows."""
    out = np.empty((X.shape[0], net.sizes[-1]), dtype=net.dtype)
    for start in range(0, X.shape[0], CHUNK):
        xb = np.asarray(X[start : start + CHUNK], dtype=net.dtype)
        out[start : start + xb.shape[0]] = net.forward(xb)
    return out


def classes_from_output(net: Network, p: Array) -> Array:
    """Predicted classes from outputs p (the output activation's
    :meth:`~glassnet.activations.Activation.classes`): argmax for softmax, p ≥ 0.5 for
    sigmoid."""
    return net.output_activation.classes(p)


def evaluate_rows(
    net: Network, X: Array, Y: Array, labels: Array | None, rows: Array, loss: Loss
) -> dict[str, float]:
    """Mean loss (and accuracy) over ``rows`` of (X, Y), one chunked forward pass."""
    total, correct = 0.0, 0
    for start in range(0, rows.shape[0], CHUNK):
        idx = rows[start : start + CHUNK]
        xb = np.take(X, idx, axis=0).astype(net.dtype, copy=False)
        p = net.forward(xb)
        total += loss.value(p, Y[idx]) * idx.shape[0]
        if labels is not None:
            correct += int(np.count_nonzero(classes_from_output(net, p) == labels[idx]))
    logs = {"loss": total / rows.shape[0]}
    if labels is not None:
        logs["accuracy"] = correct / rows.shape[0]
    return logs


def evaluate(
    net: Network, X: object, y: object, loss: str | Loss | None = None
) -> dict[str, float]:
    """``{"loss": ..., "accuracy": ...}`` (accuracy for classification) on (X, y)."""
    X = check_data(net, X)
    loss_obj = net.check_loss(loss or default_loss(net))
    Y, labels = prepare_targets(net, y, loss_obj, X.shape[0])
    return evaluate_rows(net, X, Y, labels, np.arange(X.shape[0]), loss_obj)


def confusion_matrix(labels: Array, predicted: Array, n_classes: int) -> Array:
    """C[i, j] = number of samples of class i predicted as class j."""
    return np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
