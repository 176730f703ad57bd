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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations import Activation, get_activation
from glassnet.errors import GlassnetError
from glassnet.losses import Loss, fused_delta_ok
from glassnet.step import LAYER_QUANTITIES, LEAVES, Key, StepGraph, leaves_of, step_order

if TYPE_CHECKING:
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


@dataclass
class LayerTrace:
    """Everything one layer computed in a step (see the module docstring for shapes)."""

    index: int
    activation: str
    x: Array
    W: Array
    b: Array
    z: Array
    a: Array
    da_dz: Array
    dL_da: Array
    delta: Array
    dW: Array
    db: Array
    W_new: Array
    b_new: Array
    activation_options: dict[str, Any] = field(default_factory=dict)

    @property
    def act(self) -> Activation:
        """The layer's activation object (its rules, symbols and words)."""
        return get_activation(self.activation, **self.activation_options)

    @property
    def jacobian(self) -> bool:
        """True when ``da_dz`` is a full Jacobian (softmax)."""
        return self.da_dz.ndim == 3

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index, "activation": self.activation}
        if self.activation_options:
            d["activation_options"] = dict(self.activation_options)
        d["W"] = self.W.tolist()
        d["b"] = self.b.tolist()
        for name in LAYER_FIELDS:
            d[name] = getattr(self, name).tolist()
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
        return getattr(self.layer(lyr), kind)  # type: ignore[no-any-return]

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
                    {
                        "index": lt.index,
                        "W": lt.W.tolist(),
                        "b": lt.b.tolist(),
                        "z": lt.z.tolist(),
                        "a": lt.a.tolist(),
                    }
                    for lt in a.layers
                ],
            }
        if self.preprocessing is not None:  # only for a model with stored preprocessing
            d["preprocessing"] = self.preprocessing.to_dict()
        return d

    def _step_dict(self) -> dict[str, Any]:
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


def graph_of(net: Network, loss: Loss, lr: float, update_bias: bool) -> StepGraph:
    """The step graph of ``net`` under ``loss`` and ``lr``."""
    acts = tuple(layer.activation for layer in net.layers)
    return StepGraph(acts, loss, lr, update_bias)


def _trace_step_unchecked(
    net: Network,
    x: Array,
    y: Array,
    *,
    loss: str | Loss,
    lr: float,
    update_bias: bool = True,
    round_to: int | None = None,
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
    graph = graph_of(net, loss_obj, lr, update_bias)
    params = [(layer.W.astype(np.float64), layer.b.astype(np.float64)) for layer in net.layers]
    each = None
    if round_to is not None:
        # Hand mode is the same evaluation with the input, the weights and every number
        # computed rounded before anything uses them (the target is taken as written).
        def each(v: Array) -> Array:
            return np.round(v, round_to)

        x = each(x)
        params = [(each(W), each(b)) for W, b in params]
    values = graph.evaluate(leaves_of(params, x, y), each=each)
    return record(graph, values, round_to=round_to)


def record(graph: StepGraph, values: dict[Key, Array], *, round_to: int | None = None) -> Trace:
    """A :class:`Trace` of the step graph's evaluated ``values``."""
    layers = []
    for lyr, act in enumerate(graph.activations, start=1):
        d = act.to_dict()
        name = str(d.pop("name"))
        layers.append(
            LayerTrace(
                index=lyr,
                activation=name,
                activation_options=d,
                x=values[("x", 0)] if lyr == 1 else values[("a", lyr - 1)],
                W=values[("W", lyr)],
                b=values[("b", lyr)],
                **{kind: values[(kind, lyr)] for kind in LAYER_QUANTITIES},
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
) -> Trace:
    """Run one step of ``net`` on (x, y) in float64 and record every intermediate.

    The network itself is not changed (see :meth:`Network.step` for that).  A step whose
    numbers overflow float64 (weights or inputs near 1e308) is refused with a
    :class:`GlassnetError` naming the first layer and quantity that stopped being finite.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        trace = _trace_step_unchecked(
            net, x, y, loss=loss, lr=lr, update_bias=update_bias, round_to=round_to
        )
    # One check over every number first (a single NumPy call, fast); only if it fails,
    # the search in step order for the first layer and quantity that overflowed.
    everything = [trace.loss_terms.ravel()]
    for lt in trace.layers:
        everything.extend(getattr(lt, name).ravel() for name in LAYER_QUANTITIES)
    if np.isfinite(np.concatenate(everything)).all():
        return trace
    for kind, lyr in step_order(len(trace.layers)):
        if kind not in LEAVES and kind != "loss":
            name = "loss" if kind == "loss_terms" else kind
            _require_finite(trace.value((kind, lyr)), lyr or None, name)
    return trace


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
) -> Trace:
    """``steps`` gradient-descent steps in a row, each traced from the previous one's
    W_new and b_new: the first step's trace, holding the later ones in ``later`` and,
    with ``after``, the step from the last updated weights in ``after`` (its forward
    pass and loss are the error after the update).  ``net`` is not changed."""
    from glassnet.layers import Dense
    from glassnet.network import Network

    first = trace_step(net, x, y, loss=loss, lr=lr, update_bias=update_bias, round_to=round_to)
    traces = [first]
    for _ in range(steps - 1 + int(after)):
        prev = traces[-1]
        moved = Network(
            [
                Dense(lt.W_new, lt.b_new, layer.activation)
                for layer, lt in zip(net.layers, prev.layers, strict=True)
            ]
        )
        traces.append(
            trace_step(moved, x, y, loss=loss, lr=lr, update_bias=update_bias, round_to=round_to)
        )
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
    """:func:`trace_step`, then the recorded update applied to ``net`` itself (W ← W_new,
    b ← b_new, in the network's dtype).  Returns the trace."""
    tr = trace_step(net, x, y, loss=loss, lr=lr, update_bias=update_bias, round_to=round_to)
    for layer, lt in zip(net.layers, tr.layers, strict=True):
        layer.W = lt.W_new.astype(layer.W.dtype)
        layer.b = lt.b_new.astype(layer.b.dtype)
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
