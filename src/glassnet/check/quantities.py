"""The quantities a worksheet can write, and the right values they are marked against.

The lowest module of :mod:`glassnet.check`: reading a worksheet, making an exercise,
evaluating a person's working and printing a report all need the step's quantities —
their names, shapes and order — and nothing here needs any of them, so check's modules
import one way (quantities ← exercise ← worksheet; quantities ← mistakes ← steps ←
marking ← report).

A quantity is a key ``(kind, layer)`` of the step graph (:mod:`glassnet.step`), plus
``("output", 0)``, the last layer's ``a`` under its other name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from glassnet.activations import Activation
from glassnet.losses import Loss
from glassnet.notation import quantity_name
from glassnet.spec import Spec
from glassnet.step import (
    ALIASES,
    LAYER_LEAVES,
    LAYER_QUANTITIES,
    STEP_LEAVES,
    STEP_QUANTITIES,
    Key,
    StepGraph,
    step_inputs,
    step_order,
)
from glassnet.trace import Trace

if TYPE_CHECKING:
    from glassnet.nodes import Alternative

Array = np.ndarray

__all__ = [
    "LAYER_KINDS",
    "STEP_KINDS",
    "UNBATCHED",
    "Context",
    "Key",
    "expected_shape",
    "inputs_of",
    "key_name",
    "order",
]

# The step graph's quantities (and output, a_L's other name), not a list of our own.
LAYER_KINDS: tuple[str, ...] = (*LAYER_LEAVES, *LAYER_QUANTITIES)
STEP_KINDS: tuple[str, ...] = (*STEP_LEAVES, *STEP_QUANTITIES, *ALIASES)
#: Kinds without a batch axis.
UNBATCHED: frozenset[str] = frozenset({"W", "b", "dW", "db", "W_new", "b_new", "loss"})


def key_name(key: Key) -> str:
    """Our name of a quantity: ("dW", 3) -> "dW3", ("da_dz", 2) -> "da2_dz2"."""
    kind, layer = key
    return quantity_name(kind, 0 if kind in STEP_KINDS else layer)


def expected_shape(spec: Spec, key: Key) -> tuple[int, ...]:
    """Full shape (batch axis included) of a quantity of ``spec``'s step."""
    kind, layer = key
    if layer and (kind not in LAYER_KINDS or not spec.network.layers[layer - 1].dense_like):
        # Another layer type's quantity, or an optimiser's: the shape its trace has.
        return _traced_shapes(spec)[key]
    batch = spec.x.shape[0]
    sizes = spec.network.sizes
    if kind == "x":
        return (batch, sizes[0])
    if kind in ("y", "loss_terms", "output"):
        return (batch, sizes[-1])
    if kind == "loss":
        return ()
    n_in, n_out = sizes[layer - 1], sizes[layer]
    if kind in ("W", "dW", "W_new"):
        return (n_in, n_out)
    if kind in ("b", "db", "b_new"):
        return (n_out,)
    if kind == "da_dz" and not spec.network.layers[layer - 1].activation.elementwise:
        return (batch, n_out, n_out)
    return (batch, n_out)


def _traced_shapes(spec: Spec) -> dict[Key, tuple[int, ...]]:
    """Every quantity's shape in ``spec``'s traced step (made once per spec object)."""
    got = _SHAPES.get(id(spec))
    if got is None or got[0] is not spec:
        trace = spec.trace()
        assert trace.graph is not None
        shapes = {k: np.shape(trace.value(k)) for k in trace.graph.order()}
        got = _SHAPES[id(spec)] = (spec, shapes)
        if len(_SHAPES) > 64:  # a bounded memo: a class's worksheets share few specs
            _SHAPES.pop(next(iter(_SHAPES)))
    return got[1]


_SHAPES: dict[int, tuple[Spec, dict[Key, tuple[int, ...]]]] = {}


def inputs_of(key: Key, graph: int | StepGraph) -> list[Key]:
    """The quantities ``key`` is computed from (empty for given ones); ``output`` is a_L
    under its other name, so it is "computed" from a_L.  ``graph``: the step graph, or
    the number of layers of a dense network under plain gradient descent."""
    n_layers = graph if isinstance(graph, int) else graph.n_layers
    if key[0] == "output":
        return [("a", n_layers)]
    if isinstance(graph, int):
        return step_inputs(key, n_layers)
    return graph.inputs(key) if graph.has(key) else []


def order(graph: int | StepGraph) -> list[Key]:
    """Every quantity a worksheet can write, inputs first (the step graph's order, with
    ``output`` — a_L's other name — right after a_L's layer).  ``graph``: the step graph,
    or the number of layers of a dense network under plain gradient descent."""
    n_layers = graph if isinstance(graph, int) else graph.n_layers
    keys = step_order(n_layers) if isinstance(graph, int) else graph.order()
    at = keys.index(("a", n_layers)) + 1
    return [*keys[:at], ("output", 0), *keys[at:]]


def spec_graph(spec: Spec) -> StepGraph:
    """The step graph of ``spec`` (made once per spec object)."""
    got = _GRAPHS.get(id(spec))
    if got is None or got[0] is not spec:
        got = _GRAPHS[id(spec)] = (spec, spec.graph())
        if len(_GRAPHS) > 64:
            _GRAPHS.pop(next(iter(_GRAPHS)))
    return got[1]


_GRAPHS: dict[int, tuple[Spec, StepGraph]] = {}


def layer_kinds(graph: StepGraph) -> list[tuple[str, ...]]:
    """Each layer's kinds a worksheet may write, layer 1 first (the graph's)."""
    return [tuple(graph.layer_kinds(lyr)) for lyr in range(1, graph.n_layers + 1)]


class HasSpec(Protocol):
    """Anything that carries the spec it was written for (a worksheet)."""

    @property
    def spec(self) -> Spec: ...


@dataclass
class Context:
    """What every evaluation of one worksheet shares: the step graph and the right
    values (from the engine's trace, float64, unrounded)."""

    graph: StepGraph
    batch: int
    right: dict[Key, Array]
    trace: Trace

    @property
    def activations(self) -> list[Activation]:
        return list(self.graph.activations)

    @property
    def loss(self) -> Loss:
        return self.graph.loss

    @property
    def lr(self) -> float:
        return self.graph.lr

    @property
    def update_bias(self) -> bool:
        return self.graph.update_bias

    @property
    def n_layers(self) -> int:
        return self.graph.n_layers

    def act(self, lyr: int) -> Activation:
        return self.graph.act(lyr)

    def is_leaf(self, key: Key) -> bool:
        """True for a given quantity of the step (x, y, parameters, an optimiser's earlier
        state, a dropout mask); ``output`` is a_L, computed."""
        return key[0] != "output" and self.graph.has(key) and self.graph.is_leaf(key)

    def batched(self, key: Key) -> bool:
        """True when ``key`` has a row per sample (``output`` as a_L)."""
        return key[0] == "output" or self.graph.batched(key)

    def catalogue_applies(self, key: Key) -> bool:
        """Whether the mistake catalogue's rules (written for a dense layer under plain
        gradient descent, the seed's step) may stand for ``key``'s rule: for the loss's
        quantities, and for the nodes of dense layers under plain gradient descent.
        Other plugins name their own mistakes (:meth:`plugin_mistakes`)."""
        if key[0] == "output":
            return True
        if self.graph.update_of(key) is not None:
            return not getattr(self.graph.optimizer, "state_names", ()) and not any(
                k[0].startswith("g_") for k in self.graph.inputs(key)
            )
        owner = self.graph.owner(key)
        return owner == 0 or self.graph.layers[owner - 1].dense_like

    def plugin_alternatives(self) -> dict[str, dict[Key, Alternative]]:
        """The mistakes the step's plugins declare, as alternative rules by name (batch
        norm's naive backward, dropout without its scale, Adam without bias correction,
        a convolution's flipped kernel, ...), each mapping the nodes it replaces to its
        wrong rule (or to the rule's variants by name)."""
        found: dict[str, dict[Key, Alternative]] = {}
        graph = self.graph
        for lyr, layer in enumerate(graph.layers, start=1):
            alternatives = getattr(layer, "alternatives", None)
            if alternatives is not None:
                for name, rules in alternatives(lyr).items():
                    found.setdefault(name, {}).update(rules)
        opt_alternatives = getattr(graph.optimizer, "alternatives", None)
        if opt_alternatives is not None:
            seen: set[tuple[str, int]] = set()
            for key in graph.order():
                update = graph.update_of(key)
                if update is None or (update[0], key[1]) in seen:
                    continue
                seen.add((update[0], key[1]))
                param, decay, fixed = update
                for name, rules in opt_alternatives(
                    param, key[1], t=graph.t, decay=decay, fixed=fixed
                ).items():
                    found.setdefault(name, {}).update(rules)
        return found

    @classmethod
    def from_spec(cls, spec: Spec) -> Context:
        """The step graph of ``spec`` and the right values of its step."""
        trace = spec.trace()
        graph = trace.graph
        assert graph is not None  # a trace records the graph it evaluated
        right = {key: trace.value(key) for key in order(graph)}
        return cls(graph=graph, batch=int(trace.x.shape[0]), right=right, trace=trace)

    @classmethod
    def from_worksheet(cls, sheet: HasSpec) -> Context:
        """The context of the spec a worksheet was written for."""
        return cls.from_spec(sheet.spec)
