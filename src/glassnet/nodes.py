"""The parts a step graph is composed from: a quantity's key and a node's declaration.

Plugins (layers, optimisers, the loss) declare the nodes they add to a training step;
:mod:`glassnet.step` composes them into one graph and evaluates it.  This module holds
only the vocabulary they share, so plugins need not import the graph.

A quantity is a key ``(kind, layer)``: layers are numbered from 1; layer 0 holds the
whole step's quantities (``x``, ``y``, ``loss_terms``, ``loss``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Array = np.ndarray
#: A quantity of the step: (kind, layer); layer 0 for the whole step's quantities.
Key = tuple[str, int]
#: A node's rule: its input values (in the declared order) -> its value.
Rule = Callable[[Sequence[Array]], Array]
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
