"""The parts a step graph is composed from: a quantity's key and a node's declaration.

Plugins (layers, optimisers, the loss) declare the nodes they add to a training step;
:mod:`glassnet.step` composes them into one graph and evaluates it.  This module holds
only the vocabulary they share, so plugins need not import the graph.

A quantity is a key ``(kind, layer)``: layers are numbered from 1; layer 0 holds the
whole step's quantities (``x``, ``y``, ``loss_terms``, ``loss``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from glassnet.errors import GlassnetError

Array = np.ndarray
#: A quantity of the step: (kind, layer); layer 0 for the whole step's quantities.
Key = tuple[str, int]
#: A node's rule: its input values (in the declared order) -> its value.
Rule = Callable[[Sequence[Array]], Array]
#: A plugin's wrong rule for one node (:meth:`Layer.alternatives`): one rule, or its
#: variants by name in words ("stride + 1", "stride − 1"), each tried on its own.
Alternative = Rule | Mapping[str, Rule]
#: Where a node sits in the step, in the order a derivation meets them.
Phase = Literal["leaf", "forward", "loss", "backward", "update"]


@dataclass(frozen=True)
class NodeDecl:
    """One quantity of the step: its key, the keys it is computed from, its rule.

    A leaf (``phase="leaf"``) is given, not computed: ``inputs`` is empty and ``rule``
    is None.  ``initial`` makes a leaf optional: the value it takes when nobody gives
    it (an optimiser's state before its first step: zeros shaped like a parameter),
    computed from the values of ``inputs`` (for leaves, the keys it is shaped after).
    """

    kind: str
    layer: int
    inputs: tuple[Key, ...]
    rule: Rule | None
    phase: Phase
    initial: Rule | None = None

    @property
    def key(self) -> Key:
        return (self.kind, self.layer)


def leaf(
    kind: str, layer: int, *, initial: Rule | None = None, like: Sequence[Key] = ()
) -> NodeDecl:
    """A given quantity (optionally with a default computed from the ``like`` keys)."""
    return NodeDecl(kind, layer, tuple(like), None, "leaf", initial)


def zeros_like_first(ins: Sequence[Array]) -> Array:
    """The default of an optimiser's state: zeros shaped like the parameter."""
    return np.zeros_like(ins[0])


def evaluate_nodes(
    decls: Sequence[NodeDecl],
    leaves: Mapping[Key, Array],
    *,
    given: Mapping[Key, Array] | None = None,
    rules: Mapping[Key, Rule] | None = None,
    each: Callable[[Array], Array] | None = None,
    upto: Key | None = None,
) -> dict[Key, Array]:
    """Every node's value, in the order of ``decls`` (inputs before what they feed): the
    one evaluation loop of every graph glassnet walks — a training step
    (:meth:`glassnet.step.StepGraph.evaluate`) and an expression's circuit
    (:mod:`glassnet.graphs`) — so "a person's numbers", "a mistaken rule" and "hand
    rounding" mean the same in both.

    ``leaves``: the given quantities (a leaf with a declared ``initial`` may be left out:
    it starts at that default).  ``given``: values that stand for their nodes instead of
    being computed (a person's written numbers).  ``rules``: replacements for the right
    rule of some nodes (a mistake).  ``each``: applied to every computed value before
    anything uses it (hand rounding).  ``upto``: stop once that node is known.
    """
    given = given or {}
    rules = rules or {}
    keep = each or (lambda v: v)
    values: dict[Key, Array] = {}
    for d in decls:
        key = d.key
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
