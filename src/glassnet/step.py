"""One training step, defined once: a graph of named quantities, each with its inputs and
the rule that computes it from them — and every rule is a plugin's own code.

The graph is **composed from plugins**: each layer declares the nodes of its forward and
backward pass (:meth:`glassnet.layers.Layer.nodes`), the loss its terms and gradient, the
optimiser each parameter's update and its state (:meth:`update_nodes`).  Every view walks
this graph.  :mod:`glassnet.trace` evaluates every node; :mod:`glassnet.check` evaluates
the same graph with a person's written values put in for their nodes (that is what
"follows" means) and with alternative rules swapped in for the mistake catalogue;
:mod:`glassnet.explain` meets the quantities in :meth:`StepGraph.order`.

A quantity is a key ``(kind, layer)``: per layer l = 1..L the kinds its layer declares;
for the whole step (layer 0) ``loss_terms`` and ``loss``; the leaves ``x``, ``y`` (layer
0) and each layer's parameters and constants are given, not computed.  ``output`` is
another name of ``a_L`` — the same node (:func:`canonical`).

For a dense layer under plain gradient descent (the seed's step):

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
W_new      W, dW                   the optimiser's rule (SGD: W − lr·dW)
b_new      b, db                   the same (or b itself, when biases are fixed)
=========  ======================  ==========================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from glassnet.activations import Activation, get_activation
from glassnet.errors import GlassnetError
from glassnet.losses import Loss, batch_mean
from glassnet.nodes import Key, NodeDecl, Rule, leaf
from glassnet.optim import sgd_update

if TYPE_CHECKING:
    from glassnet.layers import Layer

Array = np.ndarray

__all__ = [
    "ALIASES",
    "LAYER_LEAVES",
    "LAYER_QUANTITIES",
    "LEAVES",
    "STEP_LEAVES",
    "STEP_QUANTITIES",
    "Key",
    "Rule",
    "StepGraph",
    "UpdateRule",
    "canonical",
    "leaves_of",
    "step_inputs",
    "step_order",
]

#: The per-layer quantities a dense layer's step computes under plain gradient descent,
#: in the order a derivation meets them (other layers and optimisers declare their own).
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
#: A dense step's given quantities: the input, the target, each layer's parameters.
LEAVES: frozenset[str] = frozenset({"x", "y", "W", "b"})
STEP_LEAVES: tuple[str, ...] = ("x", "y")
LAYER_LEAVES: tuple[str, ...] = ("W", "b")
#: Other names of nodes.
ALIASES: tuple[str, ...] = ("output",)


class UpdateRule(Protocol):
    """What the graph asks of an optimiser (see :mod:`glassnet.optimizers`)."""

    lr: float

    def update_nodes(
        self, param: str, layer: int, *, t: int, decay: bool, fixed: bool = False
    ) -> list[NodeDecl]: ...


class _PlainSGD:
    """Plain gradient descent, p − lr·dp: the graph's update when no optimiser is named."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def update_nodes(
        self, param: str, layer: int, *, t: int, decay: bool, fixed: bool = False
    ) -> list[NodeDecl]:
        lr = self.lr
        ins = ((param, layer), ("d" + param, layer))
        if fixed:
            return [NodeDecl(param + "_new", layer, ins, lambda v: v[0].copy(), "update")]
        return [
            NodeDecl(param + "_new", layer, ins, lambda v: sgd_update(v[0], v[1], lr), "update")
        ]


class StepGraph:
    """The rules of one training step of a network: its layers (layer 1 first), loss,
    learning rate, whether biases are updated, the optimiser and the step's number t
    (from 1; Adam's bias correction reads it).

    ``StepGraph(activations, loss, lr, update_bias)`` is the graph of dense layers with
    those activations under plain gradient descent (the structure alone: the rules do
    not read the weights, which are leaves).
    """

    def __init__(
        self,
        activations: Sequence[Activation | str] | None = None,
        loss: Loss | None = None,
        lr: float | None = None,
        update_bias: bool = True,
        *,
        layers: Sequence[Layer] | None = None,
        optimizer: UpdateRule | None = None,
        t: int = 1,
    ) -> None:
        if loss is None:
            raise GlassnetError("expected a loss", got="none", field="loss")
        if layers is None:
            from glassnet.layers import Dense

            if activations is None:
                raise GlassnetError("expected layers or activations", got="neither")
            # Placeholder weights: a dense layer's nodes read only its activation.
            layers = [Dense(np.zeros((1, 1)), np.zeros(1), get_activation(a)) for a in activations]
        self.layers: tuple[Layer, ...] = tuple(layers)
        self.loss = loss
        if optimizer is None:
            if lr is None:
                raise GlassnetError("expected a learning rate", got="none", field="lr")
            optimizer = _PlainSGD(lr)
        self.optimizer = optimizer
        self.lr = float(optimizer.lr if lr is None else lr)
        self.update_bias = update_bias
        self.t = t
        #: For each optimiser node and state leaf: (the parameter it updates, whether
        #: weight decay applies to it, whether it is held fixed).
        self._update_of: dict[Key, tuple[str, bool, bool]] = {}
        self._decls: dict[Key, NodeDecl] = {}
        for decl in self._compose():
            if decl.key in self._decls:
                raise GlassnetError(
                    "expected each quantity declared once", got=f"{decl.key} twice", field="layers"
                )
            self._decls[decl.key] = decl
        self._order = list(self._decls)

    # -- composition -------------------------------------------------------------------
    def _compose(self) -> list[NodeDecl]:
        L = len(self.layers)
        loss = self.loss
        leaves = [leaf("x", 0), leaf("y", 0)]
        forward: list[NodeDecl] = []
        backward: list[NodeDecl] = []
        update: list[NodeDecl] = []
        per_layer: list[list[NodeDecl]] = []
        for lyr, layer in enumerate(self.layers, start=1):
            leaves += [leaf(name, lyr) for name in (*layer.params, *layer.constants)]
            x: Key = ("x", 0) if lyr == 1 else ("a", lyr - 1)
            decls = layer.nodes(lyr, x, first=lyr == 1)
            forward += [d for d in decls if d.phase == "forward"]
            per_layer.append([d for d in decls if d.phase == "backward"])
            for name in layer.params:
                fixed = not self.update_bias and name in layer.biases
                decay = name in layer.decayed
                for d in self.optimizer.update_nodes(name, lyr, t=self.t, decay=decay, fixed=fixed):
                    (leaves if d.phase == "leaf" else update).append(d)
                    self._update_of[d.key] = (name, decay, fixed)
        aL: Key = ("a", L)
        losses = [
            NodeDecl("loss_terms", 0, (aL, ("y", 0)), lambda v: loss.terms(v[0], v[1]), "loss"),
            NodeDecl(
                "loss",
                0,
                (("loss_terms", 0),),
                lambda v: batch_mean(v[0].sum(), v[0].shape[0]),
                "loss",
            ),
        ]
        backward.append(
            NodeDecl("dL_da", L, (aL, ("y", 0)), lambda v: loss.grad(v[0], v[1]), "backward")
        )
        for decls in reversed(per_layer):
            backward += decls
        return leaves + forward + losses + backward + update

    # -- structure ---------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def activations(self) -> tuple[Activation, ...]:
        """Each layer's activation, layer 1 first."""
        return tuple(layer.activation for layer in self.layers)

    def act(self, layer: int) -> Activation:
        """The activation of ``layer`` (numbered from 1)."""
        return self.layers[layer - 1].activation

    def canonical(self, key: Key) -> Key:
        """The node a key names (see :func:`canonical`)."""
        return canonical(key, self.n_layers)

    def decl(self, key: Key) -> NodeDecl:
        """The declaration of the node ``key`` names."""
        found = self._decls.get(self.canonical(key))
        if found is None:
            raise KeyError(f"{key} is not a quantity of this step")
        return found

    def update_of(self, key: Key) -> tuple[str, bool, bool] | None:
        """For a node or state leaf of the optimiser: (the parameter it updates, whether
        weight decay applies, whether the parameter is held fixed); None otherwise."""
        return self._update_of.get(self.canonical(key))

    def owner(self, key: Key) -> int:
        """The layer whose plugin declared ``key`` (0: the step's own, or the loss's):
        a layer's ``dL_da`` is declared by the layer above it (its input's gradient),
        the last one's by the loss."""
        kind, lyr = self.canonical(key)
        if kind == "dL_da" and lyr > 0:
            return lyr + 1 if lyr < self.n_layers else 0
        return lyr

    def batched(self, key: Key) -> bool:
        """True when ``key``'s value has the batch axis first (one row per sample)."""
        kind, lyr = self.canonical(key)
        if lyr == 0:
            return kind != "loss"
        if key in self._update_of:
            return False  # an optimiser's quantities are shaped like their parameter
        layer = self.layers[lyr - 1]
        derived = {d for p in layer.params for d in (p, "d" + p, p + "_new")}
        return kind not in derived and kind not in layer.unbatched

    def carries(self) -> list[tuple[Key, Key]]:
        """What one step hands to the next: (a quantity computed this step, the leaf it
        becomes in the next) — each parameter's ``_new``, a constant the step moves
        (``running_mean_new``), the optimiser's state (``m_W`` → ``m_W_prev``)."""
        out: list[tuple[Key, Key]] = []
        carried = getattr(self.optimizer, "carried", None)
        for lyr, layer in enumerate(self.layers, start=1):
            for p in layer.params:
                out.append(((p + "_new", lyr), (p, lyr)))
                if carried is not None:
                    out += [((c, lyr), (leaf_kind, lyr)) for c, leaf_kind in carried(p)]
            for c in layer.constants:
                if (c + "_new", lyr) in self._decls:
                    out.append(((c + "_new", lyr), (c, lyr)))
        return [(c, n) for c, n in out if c in self._decls and n in self._decls]

    def has(self, key: Key) -> bool:
        return self.canonical(key) in self._decls

    def is_leaf(self, key: Key) -> bool:
        """True for a given quantity (x, y, parameters, an optimiser's earlier state)."""
        return self.decl(key).phase == "leaf"

    def inputs(self, key: Key) -> list[Key]:
        """The quantities ``key`` is computed from (empty for leaves)."""
        d = self.decl(key)
        return [] if d.phase == "leaf" else list(d.inputs)

    def order(self) -> list[Key]:
        """Every node, inputs before what they feed, in the order a derivation meets them:
        leaves, the forward pass, the error, the backward pass (layer L first), then the
        updates."""
        return list(self._order)

    def layer_kinds(self, layer: int) -> list[str]:
        """The kinds of ``layer``'s nodes, in :meth:`order`."""
        return [k for k, lyr in self._order if lyr == layer]

    def consumers(self, key: Key) -> list[Key]:
        """The nodes computed directly from ``key``."""
        key = self.canonical(key)
        return [k for k in self._order if key in self.inputs(k)]

    def downstream(self, key: Key) -> set[Key]:
        """Every node whose value depends on ``key`` (not ``key`` itself)."""
        key = self.canonical(key)
        found: set[Key] = set()
        for k in self._order:
            if any(i == key or i in found for i in self.inputs(k)):
                found.add(k)
        return found

    # -- the rules ---------------------------------------------------------------------
    def compute(self, key: Key, ins: Sequence[Array]) -> Array:
        """The right rule for ``key`` applied to its inputs (in :meth:`inputs` order)."""
        d = self.decl(key)
        if d.rule is None:
            raise KeyError(f"{key} is a leaf: it is given, not computed")
        return d.rule(ins)

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

        ``leaves``: x, y and each layer's parameters (an optimiser's earlier state may be
        left out: it starts at its declared default, zeros).  ``given``: values that
        stand for their nodes instead of being computed (a person's written numbers).
        ``rules``: replacements for the right rule of some nodes (a mistake).  ``each``:
        applied to every computed value before anything uses it (hand rounding).
        ``upto``: stop once that node is known.
        """
        given = given or {}
        rules = rules or {}
        keep = each or (lambda v: v)
        values: dict[Key, Array] = {}
        for key in self._order:
            d = self._decls[key]
            if key in given:
                values[key] = given[key]
            elif d.phase == "leaf":
                if key in leaves:
                    values[key] = leaves[key]
                elif d.initial is not None:
                    values[key] = d.initial([values[k] for k in d.inputs])
                else:
                    raise GlassnetError(
                        "expected a value for every given quantity", got=f"none for {key}"
                    )
            else:
                ins = [values[k] for k in d.inputs]
                rule = rules.get(key)
                assert d.rule is not None
                values[key] = keep(rule(ins) if rule is not None else d.rule(ins))
            if key == upto:
                break
        return values


def canonical(key: Key, n_layers: int) -> Key:
    """The node a key names: ``("output", 0)`` is ``("a", L)``; others are themselves."""
    return ("a", n_layers) if key[0] == "output" else key


@lru_cache(maxsize=64)
def _dense_graph(n_layers: int) -> StepGraph:
    from glassnet.losses import get_loss

    return StepGraph(("identity",) * n_layers, get_loss("mse"), 1.0, True)


def step_inputs(key: Key, n_layers: int) -> list[Key]:
    """The quantities ``key`` is computed from in an ``n_layers`` dense step under plain
    gradient descent (empty for leaves and unknown keys)."""
    graph = _dense_graph(n_layers)
    return graph.inputs(key) if graph.has(key) else []


def step_order(n_layers: int) -> list[Key]:
    """Every node of an ``n_layers`` dense step under plain gradient descent, inputs
    before what they feed (see :meth:`StepGraph.order`)."""
    return _dense_graph(n_layers).order()


def leaves_of(layers: Sequence[tuple[Array, Array]], x: Array, y: Array) -> dict[Key, Array]:
    """The leaves of a dense step: x, y and each layer's (W, b), layer 1 first."""
    leaves: dict[Key, Array] = {("x", 0): x, ("y", 0): y}
    for lyr, (W, b) in enumerate(layers, start=1):
        leaves[("W", lyr)] = W
        leaves[("b", lyr)] = b
    return leaves


def network_leaves(
    layers: Sequence[Layer], x: Array, y: Array, cast: Any = None
) -> dict[Key, Array]:
    """The leaves of any network's step: x, y and each layer's parameters and constants
    (cast by ``cast``, e.g. to float64, when given)."""
    f = cast or (lambda v: v)
    leaves: dict[Key, Array] = {("x", 0): x, ("y", 0): y}
    for lyr, layer in enumerate(layers, start=1):
        for name, v in layer.leaf_values().items():
            leaves[(name, lyr)] = f(v)
    return leaves
