"""A network is a list of dense layers; its backward pass is a reverse loop.

Two paths share the layer code:

- :func:`glassnet.trace.trace_step` — one step in float64 through the step graph
  (:mod:`glassnet.step`), recording every intermediate in a
  :class:`~glassnet.trace.Trace` (what explain and check read);
- :meth:`Network.loss_and_grads` — the same forward and backward without recording,
  optionally with the fused softmax + cross-entropy gradient; training uses it.

Training, prediction on raw rows and saving are :class:`glassnet.model.Model`'s (a
subclass): the engine holds layers and maths only.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations import Activation
from glassnet.errors import GlassnetError
from glassnet.init import explicit_weights, init_weights
from glassnet.layers import Buffers, Cache, Dense, Grads, Layer
from glassnet.losses import Loss, get_loss

if TYPE_CHECKING:  # numpy.typing is only needed by the type checker, not at startup
    from numpy.typing import DTypeLike

Array = np.ndarray


class Network:
    """A stack of layers (:mod:`glassnet.layers`), numbered from 1.

    >>> net = mlp([2, 3, 1], hidden="tanh", output="sigmoid", seed=0, dtype="float64")
    >>> net.forward(np.zeros((4, 2))).shape
    (4, 1)
    """

    def __init__(self, layers: Sequence[Layer]) -> None:
        if not layers:
            raise GlassnetError("expected at least one layer", got="none", field="layers")
        for index, (prev, nxt) in enumerate(itertools.pairwise(layers), start=2):
            if nxt.in_shape != prev.out_shape and (
                len(nxt.in_shape) > 1 or len(prev.out_shape) > 1
            ):
                raise GlassnetError(
                    f"expected an input of shape {_shape_words(prev.out_shape)} "
                    f"(layer {index - 1}'s output)",
                    got=_shape_words(nxt.in_shape),
                    layer=index,
                    field="type",
                )
            if nxt.n_in != prev.n_out:
                raise GlassnetError(
                    f"expected weights with {prev.n_out} rows (layer {index - 1} has "
                    f"{prev.n_out} units)",
                    got=f"{nxt.n_in} rows",
                    layer=index,
                    field="weights",
                )
        self.layers: list[Layer] = list(layers)
        #: The step graph :meth:`graph_gradients` evaluates, with what it was made for.
        self._graph_cache: tuple[tuple[int, ...], Any, Any] | None = None

    # -- shape -------------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        """[n_in, n_1, ..., n_L]."""
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """The input's shape and each layer's output shape, one sample's (no batch axis):
        [(n_in,), (n_1,), ...] for a dense network, (channels, height, width) for feature
        maps."""
        return [tuple(self.layers[0].in_shape)] + [tuple(x.out_shape) for x in self.layers]

    @property
    def shape_text(self) -> str:
        """:attr:`shapes` in a line: "64-100-10" for a dense network, "1×8×8-16×8×8-…-10"
        with feature maps (a CNN's title, where :attr:`sizes` would flatten them)."""
        return "-".join(_shape_words(shape) for shape in self.shapes)

    @property
    def dtype(self) -> np.dtype:
        return next((p.dtype for p in self.parameters()), np.dtype(np.float64))

    @property
    def all_dense(self) -> bool:
        """True when every layer is a dense layer with an activation: the training fast
        path (buffers, the fused output delta, the two-thread halves) needs that."""
        return all(layer.dense_like for layer in self.layers)

    @property
    def output_activation(self) -> Activation:
        return self.layers[-1].activation

    def dense_layers(self, what: str) -> list[Dense]:
        """The layers, each a :class:`Dense` — for ``what`` (a file format, an export, the
        training fast path), which only dense layers reach so far; another layer type is
        a :class:`GlassnetError` naming it, never a silent wrong answer."""
        for index, layer in enumerate(self.layers, start=1):
            if not isinstance(layer, Dense):
                raise GlassnetError(
                    f"expected dense layers only for {what}",
                    got=layer.type,
                    layer=index,
                    field="type",
                )
        return self.layers  # type: ignore[return-value]

    def require_explained(self, what: str) -> None:
        """Refuse, naming the first such layer, a network with a layer ``what`` (a view:
        explain, check, the studio) cannot show yet (:attr:`Layer.explained` False) —
        one clear line instead of a traceback or a page with wrong numbers."""
        for index, layer in enumerate(self.layers, start=1):
            if not layer.explained and what not in layer.shown_by:
                others = "".join(f", 'glassnet {v}'" for v in sorted(layer.shown_by))
                raise GlassnetError(
                    f"expected layers {what} can show (it does not show {layer.type} "
                    f"layers yet; 'glassnet step', 'glassnet gradcheck'{others} do)",
                    got=layer.type,
                    layer=index,
                    field="type",
                )

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Network([{inner}])"

    # -- checks ------------------------------------------------------------------------
    def check_loss(self, loss: str | Loss) -> Loss:
        """The loss object, after checking it applies to this network's output."""
        loss_obj = get_loss(loss)
        act = self.output_activation
        if not loss_obj.accepts_output(act):
            raise GlassnetError(
                f"expected {loss_obj.output_words} for {loss_obj.name}",
                got=act.name,
                layer=len(self.layers),
                field="activation",
            )
        return loss_obj

    def check_input(self, x: Array, what: str = "input") -> Array:
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[None, :]
        shape = self.layers[0].in_shape
        if len(shape) > 1:
            if x.shape[1:] != shape:
                raise GlassnetError(
                    f"expected samples of shape {_shape_words(shape)} (the first layer's "
                    f"input: [batch]{''.join(f'[{n}]' for n in shape)})",
                    got=f"shape {x.shape}",
                    field=what,
                )
            return x
        if x.ndim != 2 or x.shape[1] != self.layers[0].n_in:
            raise GlassnetError(
                f"expected rows of {self.layers[0].n_in} numbers (the first layer's inputs)",
                got=f"shape {x.shape}",
                field=what,
            )
        return x

    def check_target(self, y: Array, loss: Loss, batch: int) -> Array:
        y = np.asarray(y)
        if y.ndim == 1:
            y = y[None, :]
        n_out = self.layers[-1].n_out
        if y.shape != (batch, n_out):
            raise GlassnetError(
                f"expected {batch} row(s) of {n_out} numbers (one per output)",
                got=f"shape {y.shape}",
                field="target",
            )
        if loss.probabilities and ((y < 0) | (y > 1)).any():
            raise GlassnetError(
                f"expected targets in [0, 1] for {loss.name}",
                got=f"values from {y.min():g} to {y.max():g}",
                field="target",
            )
        return y

    # -- the fast path -----------------------------------------------------------------
    def forward(self, x: Array) -> Array:
        """The output a_L (batch, n_out) for inputs x (batch, n_in)."""
        a = x
        for layer in self.layers:
            a = layer.predict(a)
        return a

    def forward_train(self, x: Array) -> Array:
        """The output a_L of the training-mode forward pass (what the traced step computes:
        batch normalisation with the batch's statistics, dropout with its mask)."""
        a = x
        for layer in self.layers:
            a = layer.forward_train(a)
        return a

    def forward_caches(self, x: Array, buffers: Sequence[Buffers] | None = None) -> list[Cache]:
        """Forward pass keeping every layer's cache (x, z, a); with ``buffers`` (one per
        layer, from :meth:`buffers`) z and a are written into them."""
        caches = []
        a = x
        for index, layer in enumerate(self.dense_layers("the training fast path")):
            a, cache = layer.forward(a, buffers[index] if buffers is not None else None)
            caches.append(cache)
        return caches

    def backward(
        self,
        caches: list[Cache],
        dL_da: Array | None = None,
        *,
        delta: Array | None = None,
        buffers: Sequence[Buffers] | None = None,
    ) -> list[Grads]:
        """The reverse loop.  Start from dL/da_L, or from delta_L when it is known
        (the fused softmax + cross-entropy gradient).  Returns Grads per layer, in order;
        with ``buffers`` they are views of those buffers."""
        grads: list[Grads] = [None] * len(self.layers)  # type: ignore[list-item]
        dense = self.dense_layers("the training fast path")
        for index in range(len(dense) - 1, -1, -1):
            layer, cache = dense[index], caches[index]
            out = buffers[index] if buffers is not None else None
            need_dx = index > 0
            if delta is not None:
                g = layer.backward_from_delta(cache, delta, need_dx=need_dx, out=out)
                delta = None
            else:
                g = layer.backward(cache, dL_da, need_dx=need_dx, out=out)  # type: ignore[arg-type]
            grads[index] = g
            dL_da = g.dx
        return grads

    def backward_step(
        self,
        caches: list[Cache],
        dL_da: Array | None = None,
        *,
        delta: Array | None = None,
        buffers: Sequence[Buffers],
        steppers: Sequence[Any] | None,
        alpha: float,
        beta: float,
        kernels: Sequence[Any] | None = None,
    ) -> None:
        """The reverse loop of :meth:`backward` with an optimiser update of the linear
        form p ← β·p + α·g (plain SGD, :meth:`Optimizer.linear_update`) done inside it,
        layer by layer (:meth:`Dense.backward_step`): each layer's dL/dx is formed with
        its old W before W moves.  ``steppers``: each layer's
        :meth:`Dense.weight_stepper` on these buffers; None: no update, only every
        layer's delta (in ``buffers``), for a caller that updates afterwards.  No
        gradient is kept.  ``kernels``: per layer, the activation's compiled
        ``backward(z, dL_da, delta, db)`` (:meth:`Activation.fused_kernels`) or None
        (the NumPy passes): delta and Σ delta in one pass."""
        dense = self.dense_layers("the training fast path")
        for index in range(len(dense) - 1, -1, -1):
            layer, cache, out = dense[index], caches[index], buffers[index]
            db_ready = False
            if delta is None:
                assert dL_da is not None, "dL_da or delta"
                m = cache.z.shape[0]
                kernel = kernels[index] if kernels is not None else None
                if kernel is not None:
                    delta = out.delta[:m]
                    kernel(cache.z, dL_da, delta, out.db)
                    db_ready = True
                else:
                    delta = layer.activation.backward(cache.z, cache.a, dL_da, out=out.delta[:m])
            dL_da = layer.backward_step(
                cache,
                delta,
                out,
                alpha,
                beta,
                need_dx=index > 0,
                weight_step=steppers[index] if steppers is not None else None,
                db_ready=db_ready,
            )
            delta = None

    def buffers(self, batch: int) -> list[Buffers]:
        """Per-layer :class:`~glassnet.layers.Buffers` for batches of up to ``batch`` rows
        (the first layer gets no dx: nothing needs dL/dx of the data)."""
        dense = self.dense_layers("the training fast path")
        return [layer.buffers(batch, need_dx=i > 0) for i, layer in enumerate(dense)]

    def forward_backward(
        self,
        x: Array,
        y: Array,
        loss: str | Loss,
        *,
        fused: bool = False,
        buffers: Sequence[Buffers] | None = None,
        weights: Array | None = None,
    ) -> tuple[Array, float, list[Grads]]:
        """Output p (batch, n_out), loss value and every layer's gradients, without a trace.

        With ``fused`` — which the caller sets from :func:`~glassnet.losses.fused_delta_ok`
        on all its targets, once — delta_L = (p − y)/batch directly: the product of dL/dp
        and the softmax Jacobian, simplified (tested equal).
        With ``buffers`` (see :meth:`buffers`; the training loop's) every intermediate
        and gradient is written into them instead of new arrays: the same operations in
        the same order, so the same numbers, without allocating.
        With ``weights`` (batch,), row s counts w_s times in the loss and its gradient
        (:meth:`Loss.value`, :meth:`Loss.grad`); never with ``fused``, which is derived
        for equal weights.
        """
        loss_obj = get_loss(loss)
        caches = self.forward_caches(x, buffers)
        p = caches[-1].a
        value = loss_obj.value(p, y, weights)
        if fused:
            if buffers is None:
                delta = (p - y) / p.shape[0]
            else:
                delta = np.subtract(p, y, out=buffers[-1].delta[: p.shape[0]])
                delta /= p.shape[0]
            grads = self.backward(caches, delta=delta, buffers=buffers)
        else:
            grads = self.backward(caches, loss_obj.grad(p, y, weights), buffers=buffers)
        return p, value, grads

    def loss_and_grads(
        self,
        x: Array,
        y: Array,
        loss: str | Loss,
        *,
        fused: bool = False,
        buffers: Sequence[Buffers] | None = None,
    ) -> tuple[float, list[Grads]]:
        """Loss value and every layer's gradients, without a trace (see forward_backward)."""
        _, value, grads = self.forward_backward(x, y, loss, fused=fused, buffers=buffers)
        return value, grads

    def graph_gradients(
        self,
        x: Array,
        y: Array,
        loss: str | Loss,
        *,
        rng: np.random.Generator | None = None,
        weights: Array | None = None,
    ) -> tuple[Array, float, list[Array]]:
        """Output p, loss value and every parameter's gradient (aligned with
        :meth:`parameters`) for any network, by evaluating the step graph — the traced
        step's own rules, in the network's dtype, without recording — up to the end of
        the backward pass.  For the layers the buffered fast path does not take
        (normalisation, dropout); ``rng`` draws what a layer draws anew for each batch
        (dropout's mask).  A constant the forward pass moves (batch normalisation's
        running statistics) takes its new value, as one training step moves it.
        ``weights`` (batch,): row weights, as the loss's own weighted terms and gradient
        standing in for its nodes' rules (the evaluator's alternative rules)."""
        from glassnet.nodes import Key
        from glassnet.step import StepGraph, network_leaves

        loss_obj = get_loss(loss)
        # The graph's rules close over the layers, their activations and the loss, not
        # over the arrays (those are leaves): one graph serves every batch while they
        # stay the same objects.
        key = (id(loss_obj), *(id(x) for layer in self.layers for x in (layer, layer.activation)))
        cached = self._graph_cache
        if cached is None or cached[0] != key:
            graph = StepGraph(loss=loss_obj, lr=1.0, layers=self.layers)
            last: Key = [k for k in graph.order() if graph.decl(k).phase != "update"][-1]
            cached = self._graph_cache = (key, graph, last)
        _, graph, last = cached
        leaves = network_leaves(self.layers, x, y)
        for lyr, layer in enumerate(self.layers, start=1):
            for name, v in layer.draw(rng, x.shape[0]).items():
                leaves[(name, lyr)] = v.astype(x.dtype, copy=False)
        rules = {}
        if weights is not None:
            w, L = weights, len(self.layers)
            rules = {
                ("loss_terms", 0): lambda v: loss_obj.terms(v[0], v[1]) * w[:, None],
                ("dL_da", L): lambda v: loss_obj.grad(v[0], v[1], weights=w),
            }
        values = graph.evaluate(leaves, rules=rules, upto=last)
        grads = []
        for lyr, layer in enumerate(self.layers, start=1):
            grads += [values[("d" + p, lyr)] for p in layer.params]
            for c in layer.constants:
                moved = values.get((c + "_new", lyr))
                if moved is not None:
                    setattr(layer, c, moved.astype(getattr(layer, c).dtype, copy=False))
        return values[("a", len(self.layers))], float(values[("loss", 0)]), grads

    def parameters(self) -> list[Array]:
        """``[W1, b1, W2, b2, ...]`` — the arrays optimisers update in place (each layer's
        parameters in its declared order)."""
        return [p for layer in self.layers for p in layer.parameters()]

    def copy(self, dtype: DTypeLike | None = None) -> Network:
        """A deep copy, optionally cast to ``dtype``."""
        return Network([layer.copy(dtype) for layer in self.layers])


def _shape_words(shape: Sequence[int]) -> str:
    """(2, 3, 3) as "2×3×3" (channels × height × width), (5,) as "5"."""
    return "×".join(str(n) for n in shape)


def mlp(
    sizes: Sequence[int],
    *,
    hidden: str | Activation = "relu",
    output: str | Activation = "softmax",
    init: str | Sequence[Any] = "he",
    seed: int | None = 0,
    dtype: str = "float32",
) -> Network:
    """A multilayer perceptron with layer sizes ``[n_in, n_1, ..., n_L]``.

    Hidden layers use ``hidden``, the last uses ``output``; weights from ``init`` (a name
    from :mod:`glassnet.init`) drawn with ``numpy.random.default_rng(seed)``, biases zero;
    or ``init`` given as arrays, one W (or (W, b) pair) per layer.
    """
    sizes = list(sizes)
    if len(sizes) < 2 or any(not isinstance(n, int | np.integer) or n < 1 for n in sizes):
        raise GlassnetError(
            "expected at least two positive whole sizes [n_in, ..., n_out]",
            got=repr(sizes),
            field="sizes",
        )
    from glassnet.limits import check_fits  # before allocating: sizes may be a typo

    n_params = sum(int(a) * int(b) + int(b) for a, b in itertools.pairwise(sizes))
    check_fits(n_params * np.dtype(dtype).itemsize, "the weights", field="sizes")
    given = [] if isinstance(init, str) else explicit_weights(init, sizes, dtype)
    rng = np.random.default_rng(seed)
    layers = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
        act = output if index == len(sizes) - 1 else hidden
        if isinstance(init, str):
            W = init_weights(init, int(n_in), int(n_out), rng, dtype)
            b = np.zeros(int(n_out), dtype=dtype)
        else:
            W, b = given[index - 1]
        layers.append(Dense(W, b, act))
    return Network(layers)
