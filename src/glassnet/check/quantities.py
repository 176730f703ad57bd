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
from typing import Protocol

import numpy as np

from glassnet.activations import Activation
from glassnet.losses import Loss, get_loss
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


def inputs_of(key: Key, n_layers: int) -> list[Key]:
    """The quantities ``key`` is computed from (empty for x, y, W, b); ``output`` is a_L
    under its other name, so it is "computed" from a_L."""
    if key[0] == "output":
        return [("a", n_layers)]
    return step_inputs(key, n_layers)


def order(n_layers: int) -> list[Key]:
    """Every quantity a worksheet can write, inputs first (the step graph's order, with
    ``output`` — a_L's other name — right after a_L's layer)."""
    keys = step_order(n_layers)
    at = keys.index(("a", n_layers)) + 1
    return [*keys[:at], ("output", 0), *keys[at:]]


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

    @classmethod
    def from_spec(cls, spec: Spec) -> Context:
        """The step graph of ``spec`` and the right values of its step."""
        trace = spec.trace()
        graph = StepGraph(
            tuple(layer.activation for layer in spec.network.layers),
            get_loss(spec.loss),
            spec.lr,
            spec.update_bias,
        )
        right = {key: trace.value(key) for key in order(graph.n_layers)}
        return cls(graph=graph, batch=int(trace.x.shape[0]), right=right, trace=trace)

    @classmethod
    def from_worksheet(cls, sheet: HasSpec) -> Context:
        """The context of the spec a worksheet was written for."""
        return cls.from_spec(sheet.spec)
