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

    def pre_activation(self, x: Array) -> Array:
        """z = x @ W + b, (batch, n_in) -> (batch, n_out)."""
        z = x @ self.W
        z += self.b
        return z

    def forward(self, x: Array, out: Buffers | None = None) -> tuple[Array, Cache]:
        """a = f(x @ W + b); returns a (batch, n_out) and the cache backward needs.

        With ``out`` (the training loop's buffers) z and a are written into them
        instead of new arrays — the same operations, so the same numbers."""
        if out is None:
            z = self.pre_activation(x)
            a = self.activation.forward(z)
            return a, Cache(x, z, a)
        m = x.shape[0]
        z = np.matmul(x, self.W, out=out.z[:m])
        z += self.b
        a = self.activation.forward_into(z, out.a[:m])
        return a, Cache(x, z, a)

    def backward(
        self, cache: Cache, dL_da: Array, *, need_dx: bool = True, out: Buffers | None = None
    ) -> Grads:
        """Chain rule through the activation, then through x @ W + b."""
        if out is None:
            delta = self.activation.backward(cache.z, cache.a, dL_da)
        else:
            delta = self.activation.backward_into(
                cache.z, cache.a, dL_da, out.delta[: dL_da.shape[0]]
            )
        return self.backward_from_delta(cache, delta, need_dx=need_dx, out=out)

    def backward_from_delta(
        self, cache: Cache, delta: Array, *, need_dx: bool = True, out: Buffers | None = None
    ) -> Grads:
        """Given delta = dL/dz: dW = xᵀ·delta, db = Σ_samples delta, dL/dx = delta·Wᵀ.
        With ``out``, the results are written into the layer's buffers."""
        if out is None:
            dW = cache.x.T @ delta
            db = delta.sum(axis=0)
            dx = delta @ self.W.T if need_dx else None
            return Grads(dx, dW, db, delta)
        dW = np.matmul(cache.x.T, delta, out=out.dW)
        db = np.add.reduce(delta, axis=0, out=out.db)  # np.sum's reduce, without its wrapper
        dx = None
        if need_dx and out.dx is not None:
            dx = np.matmul(delta, self.W.T, out=out.dx[: delta.shape[0]])
        return Grads(dx, dW, db, delta)

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
