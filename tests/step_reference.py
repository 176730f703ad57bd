"""The fast step's test data and its float64 reference, shared by test_fast_step.py,
test_parallel.py and test_kernels.py.

:func:`against_float64_step` writes one step out in plain float64 NumPy (no glassnet
code): z, ReLU, softmax, (p − y)/m, the chain rule, W − lr·(dW + λ·W), b − lr·db; and
checks a float32 step of glassnet's (built by the caller) against it within float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import glassnet as gn


def data(rows: int, n_in: int, n_out: int, dtype: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, n_in)).astype(dtype)
    Y = rng.random(size=(rows, n_out)).astype(dtype)
    Y /= Y.sum(axis=1, keepdims=True)  # rows summing to 1: every loss applies
    return X, Y


def against_float64_step(make_step: Callable[[Any, Any, Any, float], Any], wd: float = 0.0) -> None:
    """``make_step(net, X, Y, lr)`` returns the step under test (called with row indices:
    (p, loss value)) for a float32 5-8-3 ReLU/softmax network, batch 33 of 64 rows, SGD
    with learning rate lr and weight decay ``wd``."""
    X, Y = data(64, 5, 3, "float32", seed=7)
    net = gn.mlp([5, 8, 3], seed=2, dtype="float32")
    W1, b1, W2, b2 = (p.astype(np.float64) for p in net.parameters())
    idx = np.arange(64)[::-1][:33]
    x, y = X[idx].astype(np.float64), Y[idx].astype(np.float64)
    z1 = x @ W1 + b1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ W2 + b2
    e = np.exp(z2 - z2.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    d2 = (p - y) / len(idx)
    d1 = (d2 @ W2.T) * (z1 > 0)
    lr = 0.5
    expected = [
        W1 - lr * (x.T @ d1 + wd * W1),
        b1 - lr * d1.sum(0),
        W2 - lr * (a1.T @ d2 + wd * W2),
        b2 - lr * d2.sum(0),
    ]
    p_got, value = make_step(net, X, Y, lr)(idx)
    np.testing.assert_allclose(p_got, p, rtol=1e-5, atol=1e-6)
    assert value == pytest.approx(float(-(y * np.log(p)).sum() / len(idx)), rel=1e-5)
    for got, want in zip(net.parameters(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
