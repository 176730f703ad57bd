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

A file read in batches (:func:`glassnet.stream.fit_stream`) refills ``rows``' arrays in
place with each window of the file and calls ``engine.reload()`` before the window's
steps.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from glassnet.kernels import check_choice, wanted
from glassnet.losses import Loss, fused_delta_ok
from glassnet.network import Network
from glassnet.optim import Optimizer
from glassnet.optimizers.flat import FlatParameters
from glassnet.parallel import train_step
from glassnet.training.batches import Batches, Rows
from glassnet.training.dropout import check_dropout, with_dropout

if TYPE_CHECKING:
    from glassnet.parallel import TrainStep

Array = np.ndarray


class StepEngine(ABC):
    """Runs one training step per batch for the epoch loop (see the module docstring)."""

    #: This process's rank in a data-parallel run, 0 when training alone: every
    #: process trains the same weights, and only rank 0 writes files and progress.
    rank: int = 0
    #: A sharded data-parallel step (``glassnet train --stream --shards``): the sizes of
    #: every process's part of the next batch, in rank order, this process's being the
    #: rows it passes to :meth:`step` (each process holds only its own rows).  None:
    #: every process holds the whole batch (or there is one process).
    parts: list[int] | None = None

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

    def plan(self, work: int) -> None:  # noqa: B027 (optional hook: nothing by default)
        """Before :meth:`begin`: how long the fit is, as the numbers its element-wise
        passes walk (training rows × epochs × the layers' widths), for an engine whose
        choices depend on it (the NumPy engine's compiled kernels)."""

    def reload(self) -> None:  # noqa: B027 (optional hook: nothing to do by default)
        """The arrays of the data given to :meth:`begin` were overwritten in place (the
        next window of a file read in batches, :mod:`glassnet.stream`): an engine that
        copied them (onto a device) copies them again.  The NumPy engine reads them in
        place and has nothing to do."""

    def sync(self) -> None:  # noqa: B027 (optional hook: nothing to do by default)
        """Make the network's parameters and the optimiser's state current (the loop
        calls it at each epoch's end, before validation, callbacks and its snapshot).
        An engine that trains the network's own arrays in place has nothing to do."""

    def end(self) -> None:  # noqa: B027 (optional hook: nothing to do by default)
        """After the last batch, also after an error or an interrupt: release what
        :meth:`begin` took.  It does not write weights back (:meth:`sync` does): after
        a divergence the loop has restored them."""


class NumpyEngine(StepEngine):
    """The NumPy step on the network's own arrays, updated in place, in one of two ways
    chosen per fit:

    - **the buffered fast path** for dense networks (every layer ``dense_like``) without
      dropout: gather into buffers allocated once, forward, loss, backward, update — on
      one core, or as two halves on two (:func:`glassnet.parallel.train_step` chooses).
      Softmax + cross-entropy takes the fused output delta (p − y)/batch when
      :func:`~glassnet.losses.fused_delta_ok` proves it equal for every target row, and
      never with row weights.
    - **the step graph** for any other network — normalisation layers, or dropout
      (:func:`~glassnet.training.dropout.with_dropout`: dropout layers in a training view
      that shares the model's layers): :meth:`Network.graph_gradients` evaluates the
      traced step's own rules without recording, then the optimiser updates in place.

    On both, the parameters are laid end to end for the fit
    (:class:`~glassnet.optimizers.flat.FlatParameters`: one buffer per dtype, each
    layer's W, b, γ, β a view of it, the gradients likewise) and the optimiser updates
    them all at once (:meth:`Optimizer.step_flat`; the same numbers as parameter by
    parameter).  Plain SGD's update folded into the multiplies needs no layout; a
    convolutional network's own step updates parameter by parameter.  ``flat=False``
    keeps every parameter its own array, stepped one by one (the reference the tests
    and ``bench/step_time.py`` compare the flat step with).
    """

    def __init__(self, kernels: str = "auto", *, flat: bool = True) -> None:
        #: ``"auto"``, ``"numpy"`` or ``"numba"``: whether the fast step's element-wise
        #: passes run as compiled kernels (:mod:`glassnet.kernels`), decided per fit by
        #: :meth:`plan` (``"auto"``: numba installed and the fit long enough).
        self.kernels = check_choice(kernels)
        self.use_kernels = self.kernels == "numba"  # (without plan: a fit of unknown length)
        self.flat = flat
        self._step: TrainStep | None = None
        self._graph: tuple[Network, Loss, Optimizer, Rows, FlatParameters | None] | None = None
        self._rng: np.random.Generator | None = None

    def plan(self, work: int) -> None:
        self.use_kernels = wanted(self.kernels, work)

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
        self._step, self._graph = None, None
        self._begin(net, loss, optimizer, data, batch_size=batch_size, rng=rng, dropout=dropout)
        if self.kernels == "numba" and not getattr(self._step, "kernels", False):
            # Asked for by name and not run: said, not silently ignored (the numbers are
            # NumPy's passes', the same to rounding).
            warnings.warn(
                "kernels='numba' asked, but this fit's step has no compiled kernels to run "
                "(they run in plain SGD's folded step on dense layers without dropout): "
                "NumPy's passes run instead",
                UserWarning,
                stacklevel=4,
            )

    def _begin(
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
        rate = check_dropout(dropout)
        self._rng = rng
        if rate == 0 and not net.all_dense:
            # convolutional networks: their own buffered step (glassnet/training/conv_step.py)
            from glassnet.training.conv_step import conv_step_for

            fast = conv_step_for(
                net,
                data.X,
                data.Y,
                loss,
                optimizer,
                fused=data.weights is None and fused_delta_ok(net.output_activation, loss, data.Y),
                batch_size=batch_size,
                weights=data.weights,
            )
            if fast is not None:
                self._step = fast  # type: ignore[assignment]
                return
        if rate > 0 or not net.all_dense:
            view = with_dropout(net, rate)
            # The view shares the model's layers: laying them out lays the model's.
            flat = (
                FlatParameters.of_layers(view.layers, optimizer.flat_layout) if self.flat else None
            )
            self._graph = (view, loss, optimizer, data, flat)
            return
        # Fused output delta only where proved equal, and never with row weights.
        fused = data.weights is None and fused_delta_ok(net.output_activation, loss, data.Y)
        n_train = data.rows.shape[0]
        batches = Batches(net, data, batch_size)
        # Gather, forward, backward and update of one batch, in batches' buffers: on one
        # core or two (glassnet.parallel chooses; row weights keep the plain step).
        self._step = train_step(
            net,
            data.X,
            data.Y,
            loss,
            optimizer,
            fused=fused,
            batch_size=min(batch_size, n_train),
            batches=batches,
            epoch_rows=n_train,
            weights=data.weights,
            flat=self.flat,
            kernels=self.use_kernels,
        )

    def step(self, idx: Array) -> tuple[Array, float]:
        step = self._step
        if step is not None:  # the hot path: one call, nothing else per batch
            return step(idx)
        assert self._graph is not None, "begin() first"
        view, loss, optimizer, data, flat = self._graph
        weights = None if data.weights is None else data.weights[idx]
        p, value, grads = view.graph_gradients(
            data.X[idx], data.Y[idx], loss, rng=self._rng, weights=weights
        )
        if not math.isfinite(value):
            return p, value
        if flat is not None:
            flat.refresh()  # a parameter a callback replaced: its values copied in
            if flat.load_grads(grads):
                optimizer.step_flat(flat)
                return p, value
        optimizer.step(view.parameters(), grads, scratch_grads=True)
        return p, value

    def end(self) -> None:
        # Dropping the step puts back BLAS's threads if a halves epoch was cut short.
        self._step = None
        self._graph = None
