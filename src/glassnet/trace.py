"""The trace: every number of one training step, kept where a person can read it.

:func:`trace_step` runs forward, loss, backward and the gradient-descent update in
float64 through the layers' own code and records, for every layer l = 1..L:

=========  ==================  =====================================================
name       shape               meaning
=========  ==================  =====================================================
x          (batch, n_in)       the layer's input (a of layer l−1; the sample for l=1)
W, b       (n_in, n_out),(n,)  parameters before the update
z          (batch, n_out)      pre-activation x @ W + b
a          (batch, n_out)      activation f(z)
da_dz      (batch, n) or       local derivative; the full Jacobian (batch, n, n),
           (batch, n, n)       J[s, i, j] = da_i/dz_j, for softmax
dL_da      (batch, n_out)      dL/da (for l < L: the sum over every unit of layer l+1)
delta      (batch, n_out)      dL/dz = dL_da · da_dz (a vector-Jacobian product)
dW, db     like W, b           xᵀ·delta, Σ_samples delta
W_new      like W              W − lr·dW
b_new      like b              b − lr·db (or b, when biases are fixed)
=========  ==================  =====================================================

and for the step: ``loss``, ``loss_terms`` (batch, n_out) with
``loss = loss_terms.sum() / batch``, ``output`` (= a of layer L), ``x``, ``y``.

With ``round_to=K`` every intermediate is rounded to K decimals before the next
computation uses it — a careful hand calculation, done by the engine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations import Activation, get_activation
from glassnet.errors import GlassnetError
from glassnet.losses import Loss, fused_delta_ok
from glassnet.step import LAYER_QUANTITIES, Key, StepGraph, UpdateRule, network_leaves

if TYPE_CHECKING:
    from glassnet.layers import Layer
    from glassnet.network import Network

Array = np.ndarray

#: The per-layer quantities, in the order a derivation meets them (the step graph's).
LAYER_FIELDS: tuple[str, ...] = LAYER_QUANTITIES


@dataclass
class Preprocessed:
    """A step's first part, when it starts from raw rows: ``x = (raw − mean) / scale``,
    recorded in a :class:`Trace` so every view shows it.  It lives here, with the rest of
    what a trace records, so the trace needs nothing from the library above it;
    :meth:`glassnet.preprocess.Preprocessing.record` makes one."""

    raw: Array
    mean: Array
    scale: Array
    x: Array

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": "x = (raw - mean) / scale",
            "raw_input": self.raw.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "input": self.x.tolist(),
        }


class LayerTrace:
    """Everything one layer computed in a step, by kind (see the module docstring for a
    dense layer's shapes): ``lt.z``, ``lt.dW``, ``lt.W_new`` or ``lt.value("x_hat")``.

    ``kinds`` lists the layer's recorded quantities in the order a derivation meets
    them: its given ones (parameters, constants, an optimiser's earlier state), what its
    forward and backward compute, then the update's."""

    def __init__(
        self,
        index: int,
        layer: Layer,
        x: Array,
        values: dict[str, Array],
        kinds: Sequence[str],
        forward: Sequence[str] = (),
    ) -> None:
        self.index = index
        self.layer = layer
        self.type = layer.type
        act = layer.activation.to_dict()
        self.activation = str(act.pop("name"))
        self.activation_options: dict[str, Any] = act
        self.x = x
        self.values = values
        self.kinds = tuple(kinds)
        self._forward = frozenset(forward)

    def __getattr__(self, name: str) -> Array:
        # Only called for names that are not attributes: the layer's quantities.
        values = self.__dict__.get("values")
        if values is not None and name in values:
            return values[name]  # type: ignore[no-any-return]
        raise AttributeError(f"layer {self.__dict__.get('index')} recorded no {name!r}")

    def value(self, kind: str) -> Array:
        """The recorded quantity ``kind`` of this layer."""
        return self.values[kind]

    def has(self, kind: str) -> bool:
        return kind in self.values

    def forward_kinds(self) -> list[str]:
        """The layer's parameters and constants, then what its forward pass computed (a
        dense layer: W, b, z, a) — what "the error after the update" shows."""
        given = [*self.layer.params, *self.layer.constants]
        return given + [k for k in self.layer.kinds() if k in self._forward]

    @property
    def act(self) -> Activation:
        """The layer's activation object (its rules, symbols and words)."""
        return get_activation(self.activation, **self.activation_options)

    @property
    def jacobian(self) -> bool:
        """True when ``da_dz`` is a full Jacobian (softmax)."""
        return "da_dz" in self.values and self.values["da_dz"].ndim == 3

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index, "type": self.type, "activation": self.activation}
        if self.activation_options:
            d["activation_options"] = dict(self.activation_options)
        for name in self.kinds:
            d[name] = self.values[name].tolist()
        return d


@dataclass
class Trace:
    """One recorded step of a network.  ``layers[0]`` is layer 1."""

    x: Array
    y: Array
    loss_name: str
    lr: float
    update_bias: bool
    loss: float
    loss_terms: Array
    output: Array
    layers: list[LayerTrace]
    round_to: int | None = None
    #: For softmax + cross-entropy: (p − y)/batch, which delta_L must equal.
    output_delta_shortcut: Array | None = None
    #: When ``x`` came from raw rows through a model's stored preprocessing (a spec's
    #: ``model = "..."``): the raw rows and the rule, shown as the step's first part.
    preprocessing: Preprocessed | None = None
    #: Steps 2, 3, ... of a spec's ``steps = N`` (each from the previous one's W_new, b_new).
    later: list[Trace] = field(default_factory=list)
    #: With ``after = true``: the next step from the last updated weights, of which the
    #: forward pass and the loss are "the error after the update".
    after: Trace | None = None
    #: The step graph this trace evaluated (its order, its rules, its plugins).
    graph: StepGraph | None = field(default=None, repr=False, compare=False)

    def layer(self, index: int) -> LayerTrace:
        """Layer ``index``, numbered from 1."""
        return self.layers[index - 1]

    @property
    def loss_change(self) -> float | None:
        """E′ − E: the error after the update minus the error before (None without an
        ``after`` pass)."""
        return None if self.after is None else float(self.after.loss) - float(self.loss)

    def value(self, key: Key) -> Array:
        """The recorded value of a step-graph quantity ``(kind, layer)``, e.g.
        ``("dW", 3)``, ``("loss", 0)``, ``("output", 0)``."""
        kind, lyr = key
        if kind in ("x", "y", "loss_terms", "output"):
            return getattr(self, kind)  # type: ignore[no-any-return]
        if kind == "loss":
            return np.asarray(self.loss)
        return self.layer(lyr).value(kind)

    def to_dict(self) -> dict[str, Any]:
        """The JSON schema of ``glassnet step --json`` (see docs/json.md); ``steps`` and
        ``after`` only when the spec asks for them."""
        d = self._step_dict()
        if self.later:
            d["steps"] = [t._step_dict() for t in self.later]
        if self.after is not None:
            a = self.after
            d["after"] = {
                "loss": float(a.loss),
                "loss_terms": a.loss_terms.tolist(),
                "output": a.output.tolist(),
                "layers": [
                    {"index": lt.index, **{k: lt.value(k).tolist() for k in lt.forward_kinds()}}
                    for lt in a.layers
                ],
            }
        if self.preprocessing is not None:  # only for a model with stored preprocessing
            d["preprocessing"] = self.preprocessing.to_dict()
        return d

    def _step_dict(self) -> dict[str, Any]:
        d = self._plain_dict()
        config = getattr(self.graph.optimizer, "config", None) if self.graph else None
        if config is not None:  # a named optimiser: its settings and this step's number
            # (the in-place counter and the epoch schedule are fit's, not this step's)
            d["optimizer"] = {k: v for k, v in config().items() if k not in ("t", "schedule")}
            d["t"] = self.graph.t  # type: ignore[union-attr]
        return d

    def _plain_dict(self) -> dict[str, Any]:
        return {
            "loss": float(self.loss),
            "loss_name": self.loss_name,
            "loss_terms": self.loss_terms.tolist(),
            "output": self.output.tolist(),
            "input": self.x.tolist(),
            "target": self.y.tolist(),
            "lr": self.lr,
            "update_bias": self.update_bias,
            "round_to": self.round_to,
            "layers": [lt.to_dict() for lt in self.layers],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _as_float64(v: Array, what: str) -> Array:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 1:
        v = v[None, :]
    if not np.isfinite(v).all():
        raise GlassnetError("expected finite numbers", got="NaN or inf", field=what)
    return v


def _check_lr(lr: float) -> float:
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not np.isfinite(lr) or lr <= 0:
        raise GlassnetError("expected a positive finite number", got=repr(lr), field="lr")
    return float(lr)


def graph_of(
    net: Network,
    loss: Loss,
    lr: float,
    update_bias: bool,
    *,
    optimizer: UpdateRule | None = None,
    t: int = 1,
) -> StepGraph:
    """The step graph of ``net`` under ``loss``, ``lr`` and the optimiser (plain
    gradient descent when None); ``t`` is the step's number, from 1."""
    return StepGraph(
        loss=loss, lr=lr, update_bias=update_bias, layers=net.layers, optimizer=optimizer, t=t
    )


def _trace_step_unchecked(
    net: Network,
    x: Array,
    y: Array,
    *,
    loss: str | Loss,
    lr: float,
    update_bias: bool = True,
    round_to: int | None = None,
    optimizer: UpdateRule | None = None,
    state: dict[Key, Array] | None = None,
    t: int = 1,
) -> Trace:
    """The step itself, without the finiteness check (see :func:`trace_step`)."""
    lr = _check_lr(lr)
    loss_obj = net.check_loss(loss)
    x = net.check_input(_as_float64(x, "input"))
    y = net.check_target(_as_float64(y, "target"), loss_obj, x.shape[0])
    if round_to is not None and (not isinstance(round_to, int) or not 0 <= round_to <= 15):
        raise GlassnetError(
            "expected a whole number of decimals from 0 to 15", got=repr(round_to), field="round"
        )
    graph = graph_of(net, loss_obj, lr, update_bias, optimizer=optimizer, t=t)

    def f64(v: Array) -> Array:
        return np.asarray(v, dtype=np.float64)

    leaves = network_leaves(net.layers, x, y, cast=f64)
    leaves.update({k: f64(v) for k, v in (state or {}).items()})
    each = None
    if round_to is not None:
        # Hand mode is the same evaluation with the input, the weights and every number
        # computed rounded before anything uses them (the target is taken as written).
        def each(v: Array) -> Array:
            return np.round(v, round_to)

        leaves = {k: v if k == ("y", 0) else each(v) for k, v in leaves.items()}
    values = graph.evaluate(leaves, each=each)
    return record(graph, values, round_to=round_to)


def record(graph: StepGraph, values: dict[Key, Array], *, round_to: int | None = None) -> Trace:
    """A :class:`Trace` of the step graph's evaluated ``values``."""
    layers = []
    for lyr, layer in enumerate(graph.layers, start=1):
        # (a first layer declares no input gradient: dx_hat of a first batch norm)
        own = [k for k in layer.kinds() if graph.has((k, lyr))]
        given = [k for k in graph.layer_kinds(lyr) if graph.is_leaf((k, lyr))]
        updates = [k for k in graph.layer_kinds(lyr) if graph.decl((k, lyr)).phase == "update"]
        kinds = [*given, *own, *updates]
        layers.append(
            LayerTrace(
                index=lyr,
                layer=layer,
                x=values[("x", 0)] if lyr == 1 else values[("a", lyr - 1)],
                values={k: values[(k, lyr)] for k in kinds},
                kinds=kinds,
                forward=[k for k in own if graph.decl((k, lyr)).phase == "forward"],
            )
        )
    y = values[("y", 0)]
    p = values[("a", graph.n_layers)]
    shortcut = (
        (p - y) / p.shape[0] if fused_delta_ok(graph.act(graph.n_layers), graph.loss, y) else None
    )
    return Trace(
        x=values[("x", 0)],
        y=y,
        loss_name=graph.loss.name,
        lr=graph.lr,
        update_bias=graph.update_bias,
        loss=float(values[("loss", 0)]),
        loss_terms=values[("loss_terms", 0)],
        output=p,
        layers=layers,
        round_to=round_to,
        output_delta_shortcut=shortcut,
        graph=graph,
    )


def trace_step(
    net: Network,
    x: Array,
    y: Array,
    *,
    loss: str | Loss,
    lr: float,
    update_bias: bool = True,
    round_to: int | None = None,
    optimizer: UpdateRule | None = None,
    state: dict[Key, Array] | None = None,
    t: int = 1,
) -> Trace:
    """Run one step of ``net`` on (x, y) in float64 and record every intermediate.

    ``optimizer``: the update rule (plain gradient descent with ``lr`` when None);
    ``state``: its state before this step (zeros when left out) and ``t`` the step's
    number, from 1.  The network itself is not changed (see :func:`apply_step`).  A step
    whose numbers overflow float64 (weights or inputs near 1e308) is refused with a
    :class:`GlassnetError` naming the first layer and quantity that stopped being finite.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        trace = _trace_step_unchecked(
            net,
            x,
            y,
            loss=loss,
            lr=lr,
            update_bias=update_bias,
            round_to=round_to,
            optimizer=optimizer,
            state=state,
            t=t,
        )
    # One check over every number first (a single NumPy call, fast); only if it fails,
    # the search in step order for the first layer and quantity that overflowed.
    everything = [trace.loss_terms.ravel()]
    for lt in trace.layers:
        everything.extend(v.ravel() for v in lt.values.values())
    if np.isfinite(np.concatenate(everything)).all():
        return trace
    graph = trace.graph
    assert graph is not None
    for kind, lyr in graph.order():
        if not graph.is_leaf((kind, lyr)) and kind != "loss":
            name = "loss" if kind == "loss_terms" else kind
            _require_finite(trace.value((kind, lyr)), lyr or None, name)
    return trace


def _next_step(net: Network, prev: Trace) -> tuple[Network, dict[Key, Array]]:
    """The network and optimiser state after ``prev``'s update: each parameter p takes
    p_new, and each state the optimiser carries moves to the next step's leaf."""
    from glassnet.network import Network

    graph = prev.graph
    assert graph is not None
    layers = []
    state: dict[Key, Array] = {}
    carried = getattr(graph.optimizer, "carried", None)
    for lyr, (layer, lt) in enumerate(zip(net.layers, prev.layers, strict=True), start=1):
        # Parameters take their updated values; a constant the forward pass moves (batch
        # normalisation's running statistics) takes its new value too.
        moved = {p: lt.value(p + "_new") for p in layer.params}
        moved.update({c: lt.value(c + "_new") for c in layer.constants if lt.has(c + "_new")})
        layers.append(layer.with_leaves(moved))
        if carried is None:
            continue
        for p in layer.params:
            for computed, leaf_kind in carried(p):
                if lt.has(computed):
                    state[(leaf_kind, lyr)] = lt.value(computed)
    return Network(layers), state


def trace_steps(
    net: Network,
    x: Array,
    y: Array,
    *,
    loss: str | Loss,
    lr: float,
    update_bias: bool = True,
    round_to: int | None = None,
    steps: int = 1,
    after: bool = False,
    optimizer: UpdateRule | None = None,
) -> Trace:
    """``steps`` steps in a row, each traced from the previous one's updated parameters
    and optimiser state (its step number t one more): the first step's trace, holding
    the later ones in ``later`` and, with ``after``, the step from the last updated
    weights in ``after`` (its forward pass and loss are the error after the update).
    ``net`` is not changed."""
    options: dict[str, Any] = {
        "loss": loss,
        "lr": lr,
        "update_bias": update_bias,
        "round_to": round_to,
        "optimizer": optimizer,
    }
    first = trace_step(net, x, y, **options)
    traces = [first]
    for t in range(2, steps + int(after) + 1):
        moved, state = _next_step(net, traces[-1])
        traces.append(trace_step(moved, x, y, state=state, t=t, **options))
    first.later = traces[1:steps]
    first.after = traces[steps] if after else None
    return first


def apply_step(
    net: Network,
    x: Array,
    y: Array,
    *,
    loss: str | Loss,
    lr: float,
    update_bias: bool = True,
    round_to: int | None = None,
) -> Trace:
    """:func:`trace_step`, then the recorded update applied to ``net`` itself (each
    parameter p ← p_new, in the network's dtype).  Returns the trace."""
    tr = trace_step(net, x, y, loss=loss, lr=lr, update_bias=update_bias, round_to=round_to)
    for layer, lt in zip(net.layers, tr.layers, strict=True):
        for p in layer.params:
            old = getattr(layer, p)
            setattr(layer, p, lt.value(p + "_new").astype(old.dtype))
    return tr


def _require_finite(v: Array, layer: int | None, name: str) -> None:
    if not np.isfinite(v).all():
        raise GlassnetError(
            "expected a step whose numbers stay finite in float64 "
            "(inputs, weights or learning rate far too large)",
            got="overflow to inf or NaN",
            layer=layer,
            field=name,
        )
