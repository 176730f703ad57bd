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


def random_trace(
    hidden: str,
    out: str,
    loss: str,
    batch: int,
    seed: int,
    round_to: int | None = None,
    sizes: tuple[int, ...] = (3, 4, 3),
):
    """One traced step of a small random network: ``hidden`` then ``out`` activations,
    weights ~ N(0, 0.8²), biases ~ N(0, 0.1²), inputs ~ N(0, 1), targets fit for ``loss``."""
    import glassnet as gn
    from glassnet.layers import Dense

    rng = np.random.default_rng(seed)
    layers = [
        Dense(rng.normal(size=(a, b)) * 0.8, rng.normal(size=b) * 0.1, act)
        for a, b, act in zip(sizes[:-1], sizes[1:], (hidden, out), strict=True)
    ]
    x = rng.normal(size=(batch, sizes[0]))
    y = random_targets(rng, loss, batch, sizes[-1])
    return gn.trace_step(gn.Network(layers), x, y, loss=loss, lr=0.5, round_to=round_to)


# Matt Mazur, "A Step by Step Backpropagation Example" (2015), the network of
# tests/test_published_example.py.
MAZUR = """
loss = "half_sse"
lr = 0.5
update_bias = false
input = [0.05, 0.10]
target = [0.01, 0.99]

[[layers]]
weights = [[0.15, 0.25], [0.20, 0.30]]
bias = [0.35, 0.35]
activation = "sigmoid"

[[layers]]
weights = [[0.40, 0.50], [0.45, 0.55]]
bias = [0.60, 0.60]
activation = "sigmoid"
"""
