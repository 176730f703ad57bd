"""The engine seam: what the epoch loop asks of whatever runs one training step.

The loop (:func:`~glassnet.training.loop.run_epochs`) owns everything that is the same
for every engine — the rows' order and the random stream, the running loss and
accuracy, validation, divergence and its restore, callbacks.  A :class:`StepEngine`
owns one batch's gather, forward, loss, backward and optimiser update, and where the
weights live while it trains.  :class:`NumpyEngine` is today's fast step
(:mod:`glassnet.parallel`: plain, or in two halves on two cores).

Another engine (PyTorch, for a GPU) implements the same four methods and needs nothing
named: the loss gives its terms on tensors (:meth:`Loss.torch_terms`,
:meth:`Loss.torch_value`, with row weights), the optimiser its hyperparameters
(``optimizer.config()``), the data arrives whole at :meth:`StepEngine.begin` (inputs,
targets and row weights, to put on the device once), with the dropout rate and the
random stream the masks are drawn from.

Contract, per fit::

    engine.begin(net, loss, optimizer, rows, batch_size=..., rng=..., dropout=...)
    for each epoch:
        for each batch (row indices idx of rows.X):
            p, value = engine.step(idx)     # weights updated only if value is finite
        engine.sync()                       # net's arrays current: validation, callbacks
    engine.end()                            # always, also after an error
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from glassnet.losses import Loss, fused_delta_ok
from glassnet.network import Network
from glassnet.optim import Optimizer
from glassnet.parallel import train_step
from glassnet.training.batches import Batches, Rows
from glassnet.training.dropout import check_dropout, dropped_layers

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from glassnet.parallel import TrainStep
    from glassnet.training.dropout import Dropped

Array = np.ndarray


class StepEngine(ABC):
    """Runs one training step per batch for the epoch loop (see the module docstring)."""

    @abstractmethod
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
        """Before the first batch of a fit.  ``data``: inputs X (n, n_in), targets Y
        (n, n_out) in the network's dtype and row weights (n,) or None; ``batch_size``
        the largest batch :meth:`step` will get; ``rng`` the fit's stream (dropout masks
        are drawn from it, batch by batch, in the loop's order); ``dropout`` the rate on
        hidden layers (0: none)."""

    @abstractmethod
    def step(self, idx: Array) -> tuple[Array, float]:
        """One step on rows ``idx`` (m,) of the data: returns the output p (m, n_out), a
        NumPy array valid until the next call, and the batch's (weighted) mean loss.
        The weights and the optimiser's state change only when that loss is finite."""

    def sync(self) -> None:  # noqa: B027 (optional hook: nothing to do by default)
        """Make the network's parameters and the optimiser's state current (the loop
        calls it at each epoch's end, before validation, callbacks and its snapshot).
        An engine that trains the network's own arrays in place has nothing to do."""

    def end(self) -> None:  # noqa: B027 (optional hook: nothing to do by default)
        """After the last batch, also after an error or an interrupt: release what
        :meth:`begin` took.  It does not write weights back (:meth:`sync` does): after
        a divergence the loop has restored them."""


class NumpyEngine(StepEngine):
    """The NumPy step on the network's own arrays, updated in place: gather into buffers
    allocated once, forward, loss, backward, update — on one core, or as two halves on
    two (:func:`glassnet.parallel.train_step` chooses per fit).

    Softmax + cross-entropy takes the fused output delta (p − y)/batch when
    :func:`~glassnet.losses.fused_delta_ok` proves it equal for every target row, and
    never with row weights.  Dropout wraps the hidden activations for the fit
    (:func:`~glassnet.training.dropout.dropped_layers`) and draws each batch's masks."""

    def __init__(self) -> None:
        self._step: TrainStep | None = None
        self._dropout: AbstractContextManager[list[tuple[Dropped, int]]] | None = None
        self._masks: list[tuple[Dropped, int]] = []
        self._rng: np.random.Generator | None = None
        self._dtype = np.dtype(np.float64)

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
        # Fused output delta only where proved equal, and never with row weights.
        fused = data.weights is None and fused_delta_ok(net.output_activation, loss, data.Y)
        n_train = data.rows.shape[0]
        batches = Batches(net, data, batch_size)
        self._rng, self._dtype = rng, net.dtype
        rate = check_dropout(dropout)
        # Gather, forward, backward and update of one batch, in batches' buffers: on one
        # core or two (glassnet.parallel chooses; dropout and row weights keep the plain
        # step).
        self._step = train_step(
            net,
            data.X,
            data.Y,
            loss,
            optimizer,
            fused=fused,
            batch_size=min(batch_size, n_train),
            plain_only=rate > 0,
            batches=batches,
            epoch_rows=n_train,
            weights=data.weights,
        )
        # Last, once nothing else can fail: the wrappers stay in the model's own layers
        # until end() (the step reads each layer's activation when it runs).
        self._dropout = dropped_layers(net, rate)
        self._masks = self._dropout.__enter__()

    def step(self, idx: Array) -> tuple[Array, float]:
        step = self._step
        assert step is not None, "begin() first"
        if not self._masks:  # the hot path: one call, nothing else per batch
            return step(idx)
        rng = self._rng
        assert rng is not None
        for wrapper, n_out in self._masks:
            wrapper.draw(rng, idx.shape[0], n_out, self._dtype)
        try:
            return step(idx)
        finally:
            for wrapper, _ in self._masks:  # validation and callbacks see the whole network
                wrapper.mask = None

    def end(self) -> None:
        # Dropping the step puts back BLAS's threads if a halves epoch was cut short.
        self._step = None
        self._masks = []
        if self._dropout is not None:
            context, self._dropout = self._dropout, None
            context.__exit__(None, None, None)
