"""Inverted dropout during ``fit``, as it works today: each hidden layer's activation is
wrapped in :class:`Dropped` for the duration of a fit (:func:`dropped_layers`), and the
engine draws each batch's masks.

This is the one place that swaps something into the model's own layers; a ``dropout``
layer in the step graph (traced, explained, checked) is to replace it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from glassnet.activations import Activation
from glassnet.errors import GlassnetError
from glassnet.layers import Dense
from glassnet.network import Network

Array = np.ndarray


class Dropped(Activation):
    """A hidden layer's activation with inverted dropout while training: a = f(z)·mask,
    mask_ij = 1/(1 − p) with probability 1 − p, else 0 (drawn per batch by the engine);
    da/dz = f'(z)·mask.  With no mask set (validation, prediction) it is f itself."""

    elementwise = True

    def __init__(self, base: Activation, p: float) -> None:
        if not base.elementwise:
            raise GlassnetError(
                "expected an elementwise hidden activation for dropout",
                got=base.name,
                field="dropout",
            )
        self.base, self.p = base, p
        self.name = base.name  # type: ignore[misc]
        self.options = base.options
        self.mask: Array | None = None

    def draw(self, rng: np.random.Generator, m: int, n: int, dtype: np.dtype) -> None:
        keep = rng.random((m, n)) >= self.p
        self.mask = keep.astype(dtype) / dtype.type(1 - self.p)

    def forward(self, z: Array, out: Array | None = None) -> Array:
        a = self.base.forward(z, out=out)
        if self.mask is None:
            return a
        if out is None:
            return a * self.mask  # a may be z itself (identity): not scaled in place
        a *= self.mask
        return a

    def derivative(self, z: Array, a: Array) -> Array:
        # from z (a is the dropped output): f'(z), then the mask
        d = self.base.derivative(z, self.base.forward(z))
        return d if self.mask is None else d * self.mask

    def backward(self, z: Array, a: Array, dL_da: Array, out: Array | None = None) -> Array:
        return np.multiply(dL_da, self.derivative(z, a), out=out)

    def describe(self) -> str:
        return self.base.describe()

    def to_dict(self) -> dict[str, object]:
        return self.base.to_dict()


def check_dropout(p: object) -> float:
    """A dropout rate in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
        raise GlassnetError("expected a rate in [0, 1)", got=repr(p), field="dropout")
    return float(p)


@contextmanager
def dropped_layers(net: Network, rate: float) -> Iterator[list[tuple[Dropped, int]]]:
    """Within the block, every hidden layer's activation wrapped in :class:`Dropped`
    (none when ``rate`` is 0), yielded with its layer's width (for the masks); the
    originals are put back on the way out, also after an error."""
    rate = check_dropout(rate)
    saved: list[tuple[Dense, Activation]] = []
    wrappers: list[tuple[Dropped, int]] = []
    try:
        if rate > 0:
            for layer in net.dense_layers("dropout in fit")[:-1]:
                saved.append((layer, layer.activation))
                wrapper = Dropped(layer.activation, rate)
                layer.activation = wrapper
                wrappers.append((wrapper, layer.n_out))
        yield wrappers
    finally:
        for layer, base in saved:
            layer.activation = base
