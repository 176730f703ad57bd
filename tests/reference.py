"""An independent float64 reference for a dense network's loss, written plainly.

It shares no code with glassnet: activations and losses are spelled out from their
textbook definitions, so finite differences over it check glassnet's backward pass
against maths, not against itself.
"""

from __future__ import annotations

import math

import numpy as np


def activation(name: str, z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    if name == "identity":
        return z
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z))
    if name == "softmax":
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    if name == "elu":  # Clevert et al. (2016), alpha = 1
        return np.where(z > 0, z, np.exp(z) - 1.0)
    if name == "gelu":  # Hendrycks & Gimpel (2016): z times the normal CDF
        cdf = np.array([0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in z.ravel()])
        return z * cdf.reshape(z.shape)
    raise ValueError(name)


def loss(name: str, p: np.ndarray, y: np.ndarray) -> float:
    """Batch mean of the per-sample loss."""
    batch, n = p.shape
    if name == "cross_entropy":
        per = -(y * np.log(p)).sum(axis=1)
    elif name == "binary_cross_entropy":
        per = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(axis=1)
    elif name == "mse":
        per = ((p - y) ** 2).sum(axis=1) / n
    elif name == "half_sse":
        per = 0.5 * ((y - p) ** 2).sum(axis=1)
    else:
        raise ValueError(name)
    return float(per.sum() / batch)


def forward(Ws, bs, acts, x):
    """Every layer's (z, a) for weights Ws[l] (n_in, n_out), biases bs[l], activations acts[l]."""
    out = []
    a = x
    for W, b, act in zip(Ws, bs, acts, strict=True):
        z = a @ W + b
        a = activation(act, z)
        out.append((z, a))
    return out


def total_loss(Ws, bs, acts, x, y, loss_name: str) -> float:
    return loss(loss_name, forward(Ws, bs, acts, x)[-1][1], y)


def finite_difference_grads(Ws, bs, acts, x, y, loss_name: str, eps: float = 1e-6):
    """Central differences (L(θ+ε) − L(θ−ε)) / 2ε for every weight and bias."""
    grads = []
    for params in (Ws, bs):
        for P in params:
            G = np.zeros_like(P)
            for pos in np.ndindex(P.shape):
                old = P[pos]
                P[pos] = old + eps
                up = total_loss(Ws, bs, acts, x, y, loss_name)
                P[pos] = old - eps
                down = total_loss(Ws, bs, acts, x, y, loss_name)
                P[pos] = old
                G[pos] = (up - down) / (2 * eps)
            grads.append(G)
    n = len(Ws)
    return grads[:n], grads[n:]
