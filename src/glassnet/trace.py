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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.layers import Cache
from glassnet.losses import Loss, is_fused_pair

if TYPE_CHECKING:
    from glassnet.network import Network
    from glassnet.preprocess import Preprocessed

Array = np.ndarray

#: The per-layer quantities, in the order a derivation meets them.
LAYER_FIELDS: tuple[str, ...] = (
    "z",
    "a",
    "da_dz",
    "dL_da",
    "delta",
    "dW",
    "db",
    "W_new",
    "b_new",
)


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

    def layer(self, index: int) -> LayerTrace:
        """Layer ``index``, numbered from 1."""
        return self.layers[index - 1]

    def to_dict(self) -> dict[str, Any]:
        """The JSON schema of ``glassnet step --json`` (see docs/json.md)."""
        d = {
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
        if self.preprocessing is not None:  # only for a model with stored preprocessing
            d["preprocessing"] = self.preprocessing.to_dict()
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def explain(self, format: str = "md", **options: Any) -> str:
        """The worked derivation of this step (see :func:`glassnet.explain.explain`)."""
        from glassnet.explain import explain

        return explain(self, format=format, **options)

    # In a notebook a trace displays itself as its derivation.
    def _repr_markdown_(self) -> str:
        return self.explain("md")

    def _repr_html_(self) -> str:
        from glassnet.explain.model import build
        from glassnet.explain.render_html import render_html_fragment

        return render_html_fragment(build(self))


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


def sgd_update(param: Array, grad: Array, lr: float) -> Array:
    """Plain gradient descent, ``param − lr·grad`` (any shape): the step's update rule,
    kept here so the checker applies exactly the rule the trace records."""
    return param - lr * grad


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
    r: Callable[[Array], Array] = (
        (lambda v: v) if round_to is None else (lambda v: np.round(v, round_to))
    )
    net64 = net.copy(np.float64)
    if round_to is not None:
        x = r(x)
        for layer in net64.layers:
            layer.W, layer.b = r(layer.W), r(layer.b)

    # Forward: each layer's own forward rule; rounding (if any) between the two halves.
    xs, zs, as_ = [], [], []
    a = x
    for layer in net64.layers:
        xs.append(a)
        z = r(layer.pre_activation(a))
        a = r(layer.activation.forward(z))
        zs.append(z)
        as_.append(a)
    p = as_[-1]
    terms = r(loss_obj.terms(p, y))
    loss_value = float(r(np.asarray(terms.sum() / p.shape[0])))

    # Backward: the reverse loop; each layer's local derivative is recorded and delta
    # is its vector-Jacobian product with dL/da (the full Jacobian for softmax).
    n = len(net64.layers)
    dL_das: list[Array] = [None] * n  # type: ignore[list-item]
    records: list[tuple[Array, Array, Array, Array]] = [None] * n  # type: ignore[list-item]
    dL_da = r(loss_obj.grad(p, y))
    for index in range(n - 1, -1, -1):
        layer = net64.layers[index]
        dL_das[index] = dL_da
        da_dz = r(layer.activation.derivative(zs[index], as_[index]))
        delta = r(layer.activation.vjp(da_dz, dL_da))
        g = layer.backward_from_delta(
            Cache(xs[index], zs[index], as_[index]), delta, need_dx=index > 0
        )
        records[index] = (da_dz, delta, r(g.dW), r(g.db))
        if g.dx is not None:
            dL_da = r(g.dx)

    layers = []
    for index, layer in enumerate(net64.layers):
        da_dz, delta, dW, db = records[index]
        W_new = r(sgd_update(layer.W, dW, lr))
        b_new = r(sgd_update(layer.b, db, lr)) if update_bias else layer.b.copy()
        act = layer.activation.to_dict()
        layers.append(
            LayerTrace(
                index=index + 1,
                activation=str(act.pop("name")),
                activation_options=act,
                x=xs[index],
                W=layer.W,
                b=layer.b,
                z=zs[index],
                a=as_[index],
                da_dz=da_dz,
                dL_da=dL_das[index],
                delta=delta,
                dW=dW,
                db=db,
                W_new=W_new,
                b_new=b_new,
            )
        )
    shortcut = (p - y) / p.shape[0] if is_fused_pair(net64.output_activation, loss_obj) else None
    return Trace(
        x=x,
        y=y,
        loss_name=loss_obj.name,
        lr=lr,
        update_bias=update_bias,
        loss=loss_value,
        loss_terms=terms,
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
        everything.extend(getattr(lt, name).ravel() for name in _CHECKED)
    if np.isfinite(np.concatenate(everything)).all():
        return trace
    for lt in trace.layers:
        for name in ("z", "a"):
            _require_finite(getattr(lt, name), lt.index, name)
    _require_finite(trace.loss_terms, None, "loss")
    for lt in reversed(trace.layers):
        for name in ("dL_da", "da_dz", "delta", "dW", "db", "W_new", "b_new"):
            _require_finite(getattr(lt, name), lt.index, name)
    return trace


#: Every recorded per-layer quantity that must stay finite.
_CHECKED = ("z", "a", "dL_da", "da_dz", "delta", "dW", "db", "W_new", "b_new")


def _require_finite(v: Array, layer: int | None, name: str) -> None:
    if not np.isfinite(v).all():
        raise GlassnetError(
            "expected a step whose numbers stay finite in float64 "
            "(inputs, weights or learning rate far too large)",
            got="overflow to inf or NaN",
            layer=layer,
            field=name,
        )
