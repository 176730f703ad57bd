"""One training step, defined once: a graph of named quantities, each with its inputs and
the rule that computes it from them — and every rule is the engine's own code.

Every view walks this graph.  :mod:`glassnet.trace` evaluates every node;
:mod:`glassnet.check` evaluates the same graph with a person's written values put in for
their nodes (that is what "follows" means) and with alternative rules swapped in for the
mistake catalogue; :mod:`glassnet.explain` meets the quantities in :meth:`StepGraph.order`.

A quantity is a key ``(kind, layer)``: per layer l = 1..L the kinds of
:data:`LAYER_QUANTITIES`; for the whole step (layer 0) ``loss_terms`` and ``loss``; the
leaves ``x``, ``y`` (layer 0) and ``W``, ``b`` (per layer) are given, not computed.
``output`` is another name of ``a_L`` — the same node (:func:`canonical`).

=========  ======================  ==========================================
kind       inputs                  rule
=========  ======================  ==========================================
z          x (or a of l−1), W, b   :func:`~glassnet.layers.linear`
a          z                       the activation's ``forward``
loss_terms a_L, y                  the loss's ``terms``
loss       loss_terms              their sum, :func:`~glassnet.losses.batch_mean`
dL_da      a_L, y  (l = L)         the loss's ``grad``
           delta, W of l+1         :func:`~glassnet.layers.input_grad`
da_dz      z, a                    the activation's ``derivative``
delta      dL_da, da_dz            the activation's ``vjp``
dW         x (or a of l−1), delta  :func:`~glassnet.layers.weight_grad`
db         delta                   :func:`~glassnet.layers.bias_grad`
W_new      W, dW                   :func:`~glassnet.optim.sgd_update`
b_new      b, db                   the same (or b itself, when biases are fixed)
=========  ======================  ==========================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from glassnet.activations import Activation
from glassnet.layers import bias_grad, input_grad, linear, weight_grad
from glassnet.losses import Loss, batch_mean
from glassnet.optim import sgd_update

Array = np.ndarray
#: A quantity of the step: (kind, layer); layer 0 for the whole step's quantities.
Key = tuple[str, int]
Rule = Callable[[Sequence[Array]], Array]

#: The per-layer quantities a step computes, in the order a derivation meets them.
LAYER_QUANTITIES: tuple[str, ...] = (
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
#: The whole step's computed quantities (``output`` is a name of a_L, not a node).
STEP_QUANTITIES: tuple[str, ...] = ("loss_terms", "loss")
#: Given, never computed: the input, the target, each layer's parameters.
LEAVES: frozenset[str] = frozenset({"x", "y", "W", "b"})
STEP_LEAVES: tuple[str, ...] = ("x", "y")
LAYER_LEAVES: tuple[str, ...] = ("W", "b")
#: Other names of nodes.
ALIASES: tuple[str, ...] = ("output",)


@dataclass(frozen=True)
class StepGraph:
    """The rules of one gradient-descent step of a network: its activations (layer 1
    first), loss, learning rate and whether biases are updated."""

    activations: tuple[Activation, ...]
    loss: Loss
    lr: float
    update_bias: bool = True

    @property
    def n_layers(self) -> int:
        return len(self.activations)

    def act(self, layer: int) -> Activation:
        """The activation of ``layer`` (numbered from 1)."""
        return self.activations[layer - 1]

    # -- structure ---------------------------------------------------------------------
    def canonical(self, key: Key) -> Key:
        """The node a key names (see :func:`canonical`)."""
        return canonical(key, self.n_layers)

    def inputs(self, key: Key) -> list[Key]:
        """The quantities ``key`` is computed from (see :func:`step_inputs`)."""
        return step_inputs(key, self.n_layers)

    def order(self) -> list[Key]:
        """Every node, inputs before what they feed (see :func:`step_order`)."""
        return step_order(self.n_layers)

    def consumers(self, key: Key) -> list[Key]:
        """The nodes computed directly from ``key``."""
        key = self.canonical(key)
        return [k for k in self.order() if key in self.inputs(k)]

    def downstream(self, key: Key) -> set[Key]:
        """Every node whose value depends on ``key`` (not ``key`` itself)."""
        key = self.canonical(key)
        found: set[Key] = set()
        for k in self.order():
            if any(i == key or i in found for i in self.inputs(k)):
                found.add(k)
        return found

    # -- the rules ---------------------------------------------------------------------
    def compute(self, key: Key, ins: Sequence[Array]) -> Array:
        """The right rule for ``key`` applied to its inputs (in :meth:`inputs` order)."""
        kind, lyr = self.canonical(key)
        if kind == "z":
            return linear(ins[0], ins[1], ins[2])
        if kind == "a":
            return self.act(lyr).forward(ins[0])
        if kind == "loss_terms":
            return self.loss.terms(ins[0], ins[1])
        if kind == "loss":
            return batch_mean(ins[0].sum(), ins[0].shape[0])
        if kind == "dL_da":
            if lyr == self.n_layers:
                return self.loss.grad(ins[0], ins[1])
            return input_grad(ins[0], ins[1])
        if kind == "da_dz":
            return self.act(lyr).derivative(ins[0], ins[1])
        if kind == "delta":
            return self.act(lyr).vjp(ins[1], ins[0])
        if kind == "dW":
            return weight_grad(ins[0], ins[1])
        if kind == "db":
            return bias_grad(ins[0])
        if kind == "W_new":
            return sgd_update(ins[0], ins[1], self.lr)
        if kind == "b_new":
            return sgd_update(ins[0], ins[1], self.lr) if self.update_bias else ins[0].copy()
        raise KeyError(f"{key} is a leaf or unknown: it is given, not computed")

    def evaluate(
        self,
        leaves: Mapping[Key, Array],
        *,
        given: Mapping[Key, Array] | None = None,
        rules: Mapping[Key, Rule] | None = None,
        each: Callable[[Array], Array] | None = None,
        upto: Key | None = None,
    ) -> dict[Key, Array]:
        """Every node's value, in :meth:`order`.

        ``leaves``: x, y and each layer's W and b.  ``given``: values that stand for
        their nodes instead of being computed (a person's written numbers).  ``rules``:
        replacements for the right rule of some nodes (a mistake).  ``each``: applied to
        every value, leaves included, before anything uses it (hand rounding).
        ``upto``: stop once that node is known.
        """
        given = given or {}
        rules = rules or {}
        keep = each or (lambda v: v)
        values: dict[Key, Array] = {}
        for key in self.order():
            if key in given:
                values[key] = given[key]
            elif key[0] in LEAVES:
                values[key] = leaves[key]
            else:
                ins = [values[k] for k in self.inputs(key)]
                rule = rules.get(key)
                values[key] = keep(rule(ins) if rule is not None else self.compute(key, ins))
            if key == upto:
                break
        return values


def canonical(key: Key, n_layers: int) -> Key:
    """The node a key names: ``("output", 0)`` is ``("a", L)``; others are themselves."""
    return ("a", n_layers) if key[0] == "output" else key


def step_inputs(key: Key, n_layers: int) -> list[Key]:
    """The quantities ``key`` is computed from in an ``n_layers`` step (empty for leaves)."""
    kind, lyr = canonical(key, n_layers)
    L = n_layers
    prev: Key = ("x", 0) if lyr == 1 else ("a", lyr - 1)
    if kind == "dL_da":
        return [("a", L), ("y", 0)] if lyr == L else [("delta", lyr + 1), ("W", lyr + 1)]
    table: dict[str, list[Key]] = {
        "z": [prev, ("W", lyr), ("b", lyr)],
        "a": [("z", lyr)],
        "loss_terms": [("a", L), ("y", 0)],
        "loss": [("loss_terms", 0)],
        "da_dz": [("z", lyr), ("a", lyr)],
        "delta": [("dL_da", lyr), ("da_dz", lyr)],
        "dW": [prev, ("delta", lyr)],
        "db": [("delta", lyr)],
        "W_new": [("W", lyr), ("dW", lyr)],
        "b_new": [("b", lyr), ("db", lyr)],
    }
    return list(table.get(kind, []))


def step_order(n_layers: int) -> list[Key]:
    """Every node of an ``n_layers`` step, inputs before what they feed, in the order a
    derivation meets them: leaves, the forward pass, the error, the backward pass
    (layer L first), then the updates."""
    L = n_layers
    keys: list[Key] = [(k, 0) for k in STEP_LEAVES]
    for lyr in range(1, L + 1):
        keys += [(k, lyr) for k in LAYER_LEAVES]
    for lyr in range(1, L + 1):
        keys += [("z", lyr), ("a", lyr)]
    keys += [(k, 0) for k in STEP_QUANTITIES]
    for lyr in range(L, 0, -1):
        keys += [(k, lyr) for k in ("dL_da", "da_dz", "delta", "dW", "db")]
    for lyr in range(1, L + 1):
        keys += [("W_new", lyr), ("b_new", lyr)]
    return keys


def leaves_of(layers: Sequence[tuple[Array, Array]], x: Array, y: Array) -> dict[Key, Array]:
    """The leaves of a step: x, y and each layer's (W, b), layer 1 first."""
    leaves: dict[Key, Array] = {("x", 0): x, ("y", 0): y}
    for lyr, (W, b) in enumerate(layers, start=1):
        leaves[("W", lyr)] = W
        leaves[("b", lyr)] = b
    return leaves
