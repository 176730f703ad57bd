"""The derivation of any step graph: every quantity, in the graph's order, with the rule
its plugin writes in symbols, the value it took, and the plugin's "why".

:mod:`.sections` writes the seed's kind of page — a dense network under plain gradient
descent, unit by unit, with the numbers put into every rule.  A step with other layers
(batch or layer normalisation, dropout) or another optimiser (momentum, Adam) is written
here instead, a quantity at a time as a matrix: nothing in this module knows a layer
type, an optimiser or a loss by name; it asks the graph for its nodes and each node's
plugin for its symbols, words and why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.explain.document import Collapsed, Document, Equation, Para, Section, Table
from glassnet.mathtree import Dots, Matrix, Node, Num, Sym, row
from glassnet.nodes import Key
from glassnet.optimizers.base import default_symbol
from glassnet.step import StepGraph
from glassnet.trace import Trace

#: How a kind is written: a Greek letter or a hat where textbooks write one.  Subscripts
#: carry the layer's number.  (The one vocabulary: z, a, delta, dW, db … by their names.)
_BASES: dict[str, str] = {
    "gamma": "γ",
    "beta": "β",
    "mean": "μ",
    "var": "σ²",
    "x_hat": "x̂",
    "delta": "δ",
}

#: The phases a derivation walks, with their section titles.
_PARTS: tuple[tuple[str, str], ...] = (
    ("leaf", "The given values"),
    ("forward", "The forward pass"),
    ("loss", "The error"),
    ("backward", "The backward pass"),
    ("update", "The update"),
)


def symbol(key: Key) -> Sym:
    """The symbol of a quantity: its kind (or its Greek letter) with the layer as a
    subscript; the step's own quantities (x, y, E) without one."""
    kind, layer = key
    if kind == "loss":
        return Sym("E")
    base = _BASES.get(kind, kind)
    if kind.startswith("d") and kind[1:] in _BASES:
        base = "d" + _BASES[kind[1:]]
    if kind.endswith("_new"):
        inner = kind.removesuffix("_new")
        return Sym(_BASES.get(inner, inner), ((str(layer), "num"),) if layer else (), prime=True)
    return Sym(base, ((str(layer), "num"),) if layer else ())


def _matrix(v: np.ndarray, fmt: Callable[[float], str], limit: int) -> Node:
    """A value as a bracketed matrix (a vector as one row), wide ones elided."""
    a = np.atleast_2d(np.asarray(v, dtype=float))
    if a.ndim > 2:  # a Jacobian per sample: shown for the first sample
        a = a[0]
    rows = []
    for r in range(min(a.shape[0], limit)):
        cells: list[Node] = [
            Num(float(a[r, c]), fmt(float(a[r, c]))) for c in range(min(a.shape[1], limit))
        ]
        if a.shape[1] > limit:
            cells.append(Dots("h"))
        rows.append(tuple(cells))
    if a.shape[0] > limit:
        rows.append((Dots("v"),))
    return Matrix(tuple(rows))


def _owner(graph: StepGraph, key: Key) -> Any:
    """The plugin that declared ``key``: the optimiser for the update's quantities and
    its state, else its layer's — a layer's input gradient ``dL_da`` is the layer
    above's —, or the loss's (layer 0)."""
    if graph.update_of(key) is not None:
        return graph.optimizer
    if key[1] == 0 or key == ("dL_da", graph.n_layers):
        return graph.loss
    owner = graph.owner(key) if graph.has(key) else key[1]
    return graph.layers[(owner or key[1]) - 1]


def _rule(graph: StepGraph, key: Key) -> Node | None:
    """The rule of ``key`` in symbols, from the plugin that owns it (None if it has none)."""
    update = graph.update_of(key)
    if update is not None:
        # The optimiser writes its rules per parameter, from its inputs' symbols.
        param, decay, fixed = update
        writer_of = getattr(graph.optimizer, "symbols", None)
        if writer_of is None or graph.is_leaf(key):
            return None
        # (its own symbols for its quantities: m_{W1,t}, m̂_{W1}, W′1, …; an optimiser
        # that writes no rule for this quantity says so with an error: no symbols then)
        try:
            return writer_of(key[0], param, key[1], None, t=graph.t, decay=decay, fixed=fixed)  # type: ignore[no-any-return]
        except GlassnetError:
            return None
    owner = _owner(graph, key)
    if owner is graph.loss:
        return None  # a loss writes its rules per output (explain/sections.py); values here
    ins = [symbol(k) for k in graph.inputs(key)]
    writer = getattr(owner, "symbols", None)
    if writer is None:
        return None
    try:
        node = writer(key[0], ins)
    except (TypeError, KeyError, IndexError):
        # A plugin that writes its rules another way (or not for this kind).
        return None
    return node if isinstance(node, Node) else None


def build_generic(
    trace: Trace,
    *,
    fmt: Callable[[float], str],
    digits: int,
    title: str | None = None,
    max_units: int = 4,
    max_samples: int = 2,
) -> Document:
    """The derivation of ``trace``'s step, a quantity at a time (see the module);
    feature maps as grids, their numbers written out one by one (:mod:`.maps`)."""
    from glassnet.explain.maps import is_map, map_grids, routing, written_blocks

    graph = trace.graph
    assert graph is not None, "a trace records the graph it evaluated"
    layers = Table(
        "The layers",
        ("layer", "type", "what it does"),
        [(str(i), layer.describe(), layer.words) for i, layer in enumerate(graph.layers, 1)],
    )
    intro = Section(title or "One training step, every quantity", 1, "g-intro")
    intro.blocks += [
        Para(
            (
                "Every quantity of the step in the order it is computed: the given values, "
                "the forward pass, the error, the backward pass (from the last layer down) "
                "and the update. Each shows its rule and the value it took; matrices list "
                "one row per sample.",
            )
        ),
        layers,
        Para((f"The error: {graph.loss.name}. Learning rate {trace.lr:g}.",)),
    ]
    sections = [intro]
    explained: set[tuple[type, str]] = set()
    for phase, heading in _PARTS:
        keys = [k for k in graph.order() if graph.decl(k).phase == phase]
        if not keys:
            continue
        sec = Section(heading, 2, "g-" + phase)
        for key in keys:
            update = graph.update_of(key)
            lhs = symbol(key) if update is None else default_symbol(key[0], update[0], key[1])
            value = trace.value(key)
            sides: list[Node] = [lhs]
            rule = _rule(graph, key)
            if rule is not None:
                sides.append(rule)
            owner = _owner(graph, key)
            one_by_one = written_blocks(trace, graph, key, symbol, fmt, max_samples)
            if is_map(value) or one_by_one:
                # feature maps (or a kernel): the rule, the maps drawn as grids; then
                # each number as the sum it is, with the plugin's why open beside it
                if is_map(value):
                    if len(sides) > 1:
                        sec.blocks.append(Equation(tuple(sides)))
                    sec.blocks += map_grids(
                        trace, graph, key, fmt, max_samples, routing(trace, graph, key)
                    )
                else:
                    sec.blocks.append(Equation((*sides, _matrix(value, fmt, max_units))))
                why = getattr(owner, "why", None)
                text = why(key[0]) if why is not None and one_by_one else ""
                if text:
                    sec.blocks.append(Para((text,)))
                sec.blocks += one_by_one
                continue
            sides.append(_matrix(value, fmt, max_units))
            sec.blocks.append(Equation(tuple(sides)))
            why = getattr(owner, "why", None)
            text = ""
            update = graph.update_of(key)
            if why is not None and update is not None:
                text = why(key[0], update[0])  # an optimiser's why is per parameter
            elif owner is graph.loss:
                # the loss says why its derivative is what it is, beside dE/da_L
                text = owner.why() if key == ("dL_da", graph.n_layers) else ""
            elif why is not None:
                text = why(key[0])
            if text and (type(owner), key[0]) not in explained:
                explained.add((type(owner), key[0]))
                sec.blocks.append(Collapsed(f"why {key[0]} is computed this way", [Para((text,))]))
        sections.append(sec)
    summary = Section("The error before and after", 2, "g-summary")
    parts: list[str | Node] = [row(Sym("E"), " = "), f" {fmt(trace.loss)}"]
    if trace.after is not None:
        parts += [". After the update: E′ = ", fmt(trace.after.loss)]
    summary.blocks.append(Para(tuple(parts)))
    sections.append(summary)
    return Document(
        title=title or "One training step",
        trace=trace,
        digits=digits,
        round_to=trace.round_to,
        fmt=fmt,
        sections=sections,
    )


def needs_generic(trace: Trace) -> bool:
    """True when the step is not the seed's kind (dense layers, plain gradient descent),
    so the unit-by-unit page of :mod:`.sections` cannot write it."""
    graph = trace.graph
    if graph is None:
        return False
    plain = all(layer.dense_like for layer in graph.layers)
    stateful = any(
        graph.is_leaf(k)
        and k[0] not in ("x", "y")
        and k[1] > 0
        and k[0] not in graph.layers[k[1] - 1].params
        for k in graph.order()
    )
    update_only_new = all(
        k[0].endswith("_new") for k in graph.order() if graph.decl(k).phase == "update"
    )
    return not (plain and not stateful and update_only_new)


__all__: Sequence[str] = ("build_generic", "needs_generic", "symbol")
