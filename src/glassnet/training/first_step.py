"""``--check-first-step``: an engine's first step compared with the step graph's.

:class:`FirstStepCheck` wraps any :class:`StepEngine` (the torch engine, on a GPU or
under torchrun).  At the first batch it copies the network, the optimiser and the random
stream, runs the step graph — the traced step's own rules
(:meth:`Network.graph_gradients`, what ``glassnet step`` records and ``explain`` writes
out), on the training view with the same dropout masks and row weights — then the
optimiser's own in-place update, and compares the wrapped engine's loss, parameters
and moved constants with it.  A difference beyond float rounding stops the fit with a
one-line :class:`GlassnetError` naming the quantity and the difference, after putting
the network and optimiser back as they were before the step.
"""

from __future__ import annotations

import copy

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.losses import Loss
from glassnet.network import Network
from glassnet.optim import Optimizer
from glassnet.training.batches import Rows
from glassnet.training.dropout import with_dropout
from glassnet.training.engine import StepEngine

Array = np.ndarray

#: Agreement asked for, in units of the dtype's machine epsilon, relative to the
#: largest magnitude of each compared array (at least 1): float rounding through a
#: step's sums over a batch, not a wrong rule (a wrong rule is off by far more).
ULPS = 1000


class FirstStepCheck(StepEngine):
    """``inner``'s steps, the first compared with the step graph's (module docstring).

    After the first step, ``difference`` holds the largest difference found, relative
    to the compared array's scale, and ``tolerance`` the bound it was held to.

    >>> model.fit(X, y, engine=FirstStepCheck(TorchEngine("cuda")))  # doctest: +SKIP
    """

    def __init__(self, inner: StepEngine) -> None:
        self.inner = inner
        self.rank = inner.rank
        self.difference: float | None = None
        self.tolerance: float | None = None
        self._reference: (
            tuple[Network, Loss, Optimizer, Rows, np.random.Generator, float] | None
        ) = None

    def plan(self, work: int) -> None:
        self.inner.plan(work)

    def begin(
        self,
        net: Network,
        loss: Loss,
        optimizer: Optimizer,
        data: Rows,
        *,
        batch_size: int,
        rng: np.random.Generator,
        dropout: float,
    ) -> None:
        self._reference = (net, loss, optimizer, data, rng, dropout)
        self.inner.begin(
            net, loss, optimizer, data, batch_size=batch_size, rng=rng, dropout=dropout
        )

    def step(self, idx: Array) -> tuple[Array, float]:
        ref = self._reference
        if ref is None:
            return self.inner.step(idx)
        self._reference = None
        net, loss, live, data, rng, rate = ref
        # Copies taken now, as the inner engine is about to step: the same weights,
        # optimiser (its rate for this epoch included) and random stream (the loop has
        # shuffled; the dropout masks come next).
        before = [
            {k: np.array(getattr(layer, k)) for k in (*layer.params, *layer.constants)}
            for layer in net.layers
        ]
        saved = (live.state_arrays(), live.t)
        weights = None if data.weights is None else data.weights[idx]
        mine, value = reference_step(
            net, data.X[idx], data.Y[idx], loss, live, rng=rng, dropout=rate, weights=weights
        )
        p, theirs = self.inner.step(idx)
        self.inner.sync()  # the inner engine's values into the network, to compare
        self.tolerance = ULPS * float(np.finfo(net.dtype).eps)
        worst, where = largest_difference(net, mine)
        if not abs(theirs - value) / max(1.0, abs(value)) <= worst:
            worst, where = abs(theirs - value) / max(1.0, abs(value)), "the loss"
        self.difference = worst
        if not worst <= self.tolerance:
            # Put the network and optimiser back as they were before this step.
            for layer, arrays in zip(net.layers, before, strict=True):
                for name, array in arrays.items():
                    getattr(layer, name)[...] = array
            live.load_state_arrays(saved[0], net.parameters())
            live.t = saved[1]
            raise GlassnetError(
                f"expected the first step to equal the step graph's (glassnet step, "
                f"explain) within {self.tolerance:.1e} (float rounding)",
                got=f"a relative difference of {worst:.3e} in {where}",
                field="check-first-step",
            )
        return p, theirs

    def reload(self) -> None:
        self.inner.reload()

    def sync(self) -> None:
        self.inner.sync()

    def end(self) -> None:
        self._reference = None
        self.inner.end()


def reference_step(
    net: Network,
    X: Array,
    Y: Array,
    loss: Loss,
    optimizer: Optimizer,
    *,
    rng: np.random.Generator | None = None,
    dropout: float = 0.0,
    weights: Array | None = None,
) -> tuple[Network, float]:
    """One step of the step graph from ``net``'s values, on copies: a copy of ``net``
    after the step (parameters updated by a copy of ``optimizer``, moved constants
    moved) and the batch's loss.  X (m, n_in), Y (m, n_out), weights (m,) or None;
    dropout masks drawn from a copy of ``rng``.  Nothing given is changed."""
    mine, ours = net.copy(), copy.deepcopy(optimizer)
    view = with_dropout(mine, dropout)
    _, value, grads = view.graph_gradients(
        X, Y, loss, rng=None if rng is None else copy.deepcopy(rng), weights=weights
    )
    ours.step(view.parameters(), grads)
    return mine, value


def largest_difference(got: Network, want: Network) -> tuple[float, str]:
    """The largest difference between two networks' parameters and constants, each
    relative to the largest magnitude of ``want``'s array (at least 1), and where it
    is ("W of layer 2"); NaN counts as the largest."""
    worst, where = 0.0, "nothing"
    for lyr, (a, b) in enumerate(zip(got.layers, want.layers, strict=True), start=1):
        for name in (*a.params, *a.constants):
            x, y = getattr(a, name), getattr(b, name)
            scale = max(1.0, float(np.max(np.abs(y), initial=0.0)))
            diff = float(np.max(np.abs(x - y), initial=0.0)) / scale
            if not diff <= worst:
                worst, where = diff, f"{name} of layer {lyr}"
    return worst, where
