"""Shared test helpers: every activation, every loss with the outputs it applies to."""

from __future__ import annotations

import numpy as np

HIDDEN = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "elu", "gelu")
#: Every loss with the output activations it applies to.
LOSS_OUTPUTS = {
    "cross_entropy": ("softmax",),
    "binary_cross_entropy": ("sigmoid", "softmax"),
    "mse": HIDDEN,
    "half_sse": HIDDEN,
}
COMBOS = [(loss, out) for loss, outs in LOSS_OUTPUTS.items() for out in outs]


def random_targets(rng: np.random.Generator, loss: str, batch: int, n_out: int) -> np.ndarray:
    if loss == "cross_entropy":
        y = rng.random((batch, n_out)) + 0.1
        return y / y.sum(axis=1, keepdims=True)  # soft labels: rows sum to 1
    if loss == "binary_cross_entropy":
        return rng.random((batch, n_out))
    return rng.normal(size=(batch, n_out))
