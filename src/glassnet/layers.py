"""The dense layer: ``z = x @ W + b``, ``a = f(z)``, and its chain rule.

``W`` has shape (n_in, n_out), so ``W[i, j]`` connects input i to unit j — the
seed's W_ij with i the "from" index and j the "to" index.  Rows of ``x`` are
samples; one sample is a batch of one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from glassnet.activations import Activation, get_activation
from glassnet.errors import GlassnetError

Array = np.ndarray


# -- the dense layer's maths, as pure functions ---------------------------------------------
# Dense, the step graph (glassnet.step) and the training loop all call these, so each
# rule of the layer is written once.  ``out=`` writes into a given array (the training
# loop's buffers) with the same operations, so the same numbers.


def linear(x: Array, W: Array, b: Array, out: Array | None = None) -> Array:
    """z = x @ W + b: (batch, n_in) @ (n_in, n_out) + (n_out,) -> (batch, n_out)."""
    z = np.matmul(x, W, out=out)
    z += b
    return z


def weight_grad(x: Array, delta: Array, out: Array | None = None) -> Array:
    """dW = xᵀ·delta: (batch, n_in)ᵀ @ (batch, n_out) -> (n_in, n_out), summed over samples."""
    return np.matmul(x.T, delta, out=out)


def bias_grad(delta: Array, out: Array | None = None) -> Array:
    """db = Σ_samples delta: (batch, n_out) -> (n_out,)."""
    return np.add.reduce(delta, axis=0, out=out)  # np.sum's reduce, without its wrapper


def input_grad(delta: Array, W: Array, out: Array | None = None) -> Array:
    """dL/dx = delta·Wᵀ: (batch, n_out) @ (n_out, n_in) -> (batch, n_in); each input
    gathers the deltas of every unit it feeds."""
    return np.matmul(delta, W.T, out=out)


class Cache(NamedTuple):
    """What forward keeps for backward: input x (batch, n_in), z and a (batch, n_out)."""

    x: Array
    z: Array
    a: Array


class Grads(NamedTuple):
    """What backward returns: dL/dx (batch, n_in) or None, dW (n_in, n_out), db (n_out,),
    and delta = dL/dz (batch, n_out)."""

    dx: Array | None
    dW: Array
    db: Array
    delta: Array


class Buffers(NamedTuple):
    """Arrays one layer writes into on the training fast path, allocated once per
    ``fit`` for the largest batch (a smaller last batch uses the first rows): z, a and
    delta (batch, n_out), dx (batch, n_in) or None for the first layer, dW and db."""

    z: Array
    a: Array
    delta: Array
    dx: Array | None
    dW: Array
    db: Array


class Dense:
    """A fully connected layer with its activation.

    >>> layer = Dense(np.array([[1.0, -1.0]]), np.zeros(2), "relu")
    >>> a, cache = layer.forward(np.array([[2.0]]))
    >>> a.tolist()
    [[2.0, 0.0]]
    """

    def __init__(self, W: Array, b: Array, activation: str | Activation = "identity") -> None:
        W = np.asarray(W)
        b = np.asarray(b)
        if W.ndim != 2:
            raise GlassnetError(
                "expected a matrix (n_in, n_out)", got=f"shape {W.shape}", field="weights"
            )
        if b.shape != (W.shape[1],):
            raise GlassnetError(
                f"expected {W.shape[1]} biases (one per unit)", got=f"shape {b.shape}", field="bias"
            )
        self.W = W
        self.b = b
        self.activation = get_activation(activation)

    @property
    def n_in(self) -> int:
        return int(self.W.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.W.shape[1])

    def forward(self, x: Array, out: Buffers | None = None) -> tuple[Array, Cache]:
        """a = f(x @ W + b); returns a (batch, n_out) and the cache backward needs.

        With ``out`` (the training loop's buffers) z and a are written into them
        instead of new arrays — the same operations, so the same numbers."""
        m = x.shape[0]
        z = linear(x, self.W, self.b, out=None if out is None else out.z[:m])
        a = self.activation.forward(z, out=None if out is None else out.a[:m])
        return a, Cache(x, z, a)

    def backward(
        self, cache: Cache, dL_da: Array, *, need_dx: bool = True, out: Buffers | None = None
    ) -> Grads:
        """Chain rule through the activation, then through x @ W + b."""
        m = dL_da.shape[0]
        delta = self.activation.backward(
            cache.z, cache.a, dL_da, out=None if out is None else out.delta[:m]
        )
        return self.backward_from_delta(cache, delta, need_dx=need_dx, out=out)

    def backward_from_delta(
        self, cache: Cache, delta: Array, *, need_dx: bool = True, out: Buffers | None = None
    ) -> Grads:
        """Given delta = dL/dz: dW = xᵀ·delta, db = Σ_samples delta, dL/dx = delta·Wᵀ.
        With ``out``, the results are written into the layer's buffers."""
        if out is None:
            dx = input_grad(delta, self.W) if need_dx else None
            return Grads(dx, weight_grad(cache.x, delta), bias_grad(delta), delta)
        dx = None
        if need_dx and out.dx is not None:
            dx = input_grad(delta, self.W, out=out.dx[: delta.shape[0]])
        return Grads(dx, weight_grad(cache.x, delta, out=out.dW), bias_grad(delta, out.db), delta)

    def buffers(self, batch: int, *, need_dx: bool = True) -> Buffers:
        """Fresh :class:`Buffers` for batches of up to ``batch`` rows."""
        rows = (batch, self.n_out)
        dtype = self.W.dtype
        return Buffers(
            z=np.empty(rows, dtype),
            a=np.empty(rows, dtype),
            delta=np.empty(rows, dtype),
            dx=np.empty((batch, self.n_in), dtype) if need_dx else None,
            dW=np.empty_like(self.W),
            db=np.empty_like(self.b),
        )

    def __repr__(self) -> str:
        return f"Dense({self.n_in} -> {self.n_out}, {self.activation.describe()})"
