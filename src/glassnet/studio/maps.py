"""The studio for a step with feature maps (a CNN: conv2d, pooling, flatten, then dense
layers): which quantity a name stands for, one number's derivation and its links.

The page shows such a step as ``glassnet explain`` writes it (explain's generic
document: each 4-D quantity as grids of its numbers, every cell carrying ``data-q`` and
``data-i``); a click on a cell asks for that number alone.  Nothing here computes maths
or knows a layer type: a number's inputs are what its plugin's
:meth:`~glassnet.layers.base.Layer.written` says the number reads (the same terms explain
writes out), or, for a number its plugin does not write out, read from the step graph's
shapes — the same index of an input of the same shape (an activation, an update), the
same place of an input reshaped (flatten), or the dense rules of
:class:`~glassnet.studio.entries.EntryGraph` for a dense layer.  An input related to the
number in no such way (max pooling's ``argmax`` reads its whole window) is named in
``whole``, never guessed number by number.

Indexes here are full: the sample first wherever a quantity has one (as explain's grid
cells write them, ``data-i="0,0,1,2"``), also for a batch of one.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.studio.requests import StudioError, kind_of, parse_index

if TYPE_CHECKING:
    from glassnet.nodes import Key
    from glassnet.spec import Spec
    from glassnet.trace import Trace

Index = tuple[int, ...]
Entry = tuple["Key", Index]

#: A CNN on the page has at most this many samples: explain writes each kernel entry's
#: gradient as a sum over every sample and position (a batch of 32 16×16 maps made a
#: 4.5 MB page, its first dW alone 6,272 products), and the page shows one sample's maps.
MAX_MAP_BATCH = 8
#: One consumer quantity is searched number by number only up to this many candidates
#: (a wider one is named in ``whole`` instead): a request stays well under a second.
MAX_CANDIDATES = 4096


def is_maps(spec: Spec) -> bool:
    """True for a step whose input is feature maps (batch, channels, height, width)."""
    return int(np.ndim(spec.x)) == 4


def names(trace: Trace) -> dict[str, Key]:
    """Every quantity of the step by the name the page writes (explain's grids' names:
    ``x``, ``z1``, ``argmax2``, ``dL_da2``, ``da_dz4``, ``W4_new`` is ``W_new4``), with
    ``output`` for a_L."""
    from glassnet.explain.maps import quantity_name

    graph = trace.graph
    assert graph is not None, "a trace records the graph it evaluated"
    out = {quantity_name(k): k for k in graph.order()}
    out["output"] = ("a", graph.n_layers)
    return out


def resolve(trace: Trace, quantity: Any, index: Any) -> tuple[str, Key, Index]:
    """The request's quantity and index -> (its name, its key, the full index); 422 for a
    name that is no quantity of this step or an index outside it."""
    from glassnet.explain.maps import quantity_name

    if not isinstance(quantity, str) or len(quantity) > 40:
        raise StudioError(
            "expected a quantity name such as z1 or dL_da2", got=kind_of(quantity), field="quantity"
        )
    known = names(trace)
    key = known.get(quantity)
    if key is None:
        raise StudioError(
            f"expected a quantity of this step ({', '.join(sorted(known)[:12])}, …)",
            got=quantity,
            field="quantity",
        )
    idx = parse_index(index) or ()
    shape = np.shape(trace.value(key))
    if len(idx) != len(shape) or not all(0 <= i < n for i, n in zip(idx, shape, strict=True)):
        raise StudioError(
            f"expected an index of {quantity} within its shape {tuple(shape)} (the sample first)",
            got=",".join(map(str, idx)) or "none",
            field="index",
        )
    return quantity_name(key), key, idx


def _shape(trace: Trace, key: Key) -> Index:
    return tuple(int(e) for e in np.shape(trace.value(key)))


def inputs(trace: Trace, key: Key, index: Index) -> tuple[list[Entry], list[Key]]:
    """The numbers the number ``key[index]`` is computed from, and the input quantities
    it reads whole (see the module docstring)."""
    graph = trace.graph
    assert graph is not None
    if graph.is_leaf(key):
        return [], []
    owner = graph.owner(key)
    found: list[Entry] = []
    if owner:
        layer = graph.layers[owner - 1]
        x: Key = ("x", 0) if owner == 1 else ("a", owner - 1)
        w = layer.written(key[0], owner, index, x=x, value=trace.value)
        if w is not None:
            seen: dict[Entry, None] = {}  # (in order, each once)
            for term in w.terms:
                if any(f.key is None for f in term):
                    continue  # a product with a padding 0: it reads no number of the step
                for f in term:
                    if f.key is not None:
                        seen[(f.key, f.index)] = None
            found = list(seen)
            done = {k for k, _ in found}
            # what the routing was decided by sits beside it at the same place (a max
            # pool's a[s,c,i,j] reads its argmax[s,c,i,j] too)
            for k in graph.inputs(key):
                if k not in done and _shape(trace, k) == _shape(trace, key):
                    found.append((k, index))
            return found, []
        if layer.dense_like:
            return _dense_inputs(trace, key, index), []
    whole: list[Key] = []
    mine = _shape(trace, key)
    for k in graph.inputs(key):
        theirs = _shape(trace, k)
        if theirs == mine:
            found.append((k, index))
        elif (
            graph.batched(k)
            and graph.batched(key)
            and theirs[:1] == mine[:1]
            and math.prod(theirs[1:]) == math.prod(mine[1:])
        ):
            # the same numbers in another shape (flatten): the same place, row by row
            flat = int(np.ravel_multi_index(index[1:], mine[1:]))
            place = np.unravel_index(flat, theirs[1:])
            found.append((k, (index[0], *(int(e) for e in place))))
        elif key[0] == "loss" and k[1] == 0:
            found += [(k, tuple(int(e) for e in i)) for i in np.ndindex(*theirs)]
        else:
            whole.append(k)
    return found, whole


def _dense_inputs(trace: Trace, key: Key, index: Index) -> list[Entry]:
    """A dense layer's number: the studio's dense rules (:class:`EntryGraph`), with the
    layers before it counted as their flattened sizes."""
    from glassnet.studio.entries import EntryGraph, kind_of

    graph = trace.graph
    assert graph is not None
    layers = graph.layers
    eg = EntryGraph(
        (layers[0].n_in, *(layer.n_out for layer in layers)),
        int(np.shape(trace.x)[0]),
        frozenset(
            k
            for k, layer in enumerate(layers, start=1)
            if layer.dense_like and not layer.activation.elementwise
        ),
    )
    from glassnet.check.worksheet import key_name

    out: list[Entry] = []
    for name, idx in eg.inputs((key_name(key), index)):
        k = kind_of(name)
        out.append((("a", graph.n_layers) if k[0] == "output" else k, idx))
    return out


def consumers(trace: Trace, key: Key, index: Index) -> tuple[list[Entry], list[Key]]:
    """The numbers computed from ``key[index]``: :func:`inputs` inverted over the
    quantities the step graph feeds from ``key`` (the same sample where both have one),
    and the quantities too wide to search (named whole)."""
    graph = trace.graph
    assert graph is not None
    out: list[Entry] = []
    whole: list[Key] = []
    entry = (key, index)
    for other in graph.consumers(key):
        shape = _shape(trace, other)
        if graph.batched(other) and graph.batched(key) and shape:
            cands = [(index[0], *i) for i in np.ndindex(*shape[1:])]
        else:
            cands = list(np.ndindex(*shape))
        if len(cands) > MAX_CANDIDATES:
            whole.append(other)
            continue
        for c in cands:
            idx = tuple(int(e) for e in c)
            got, wide = inputs(trace, other, idx)
            if entry in set(got):
                out.append((other, idx))
            elif key in wide and other not in whole:
                whole.append(other)  # it reads this quantity whole (see inputs)
    return out, whole


def links(spec: Spec, quantity: Any, index: Any) -> dict[str, Any]:
    """``/api/links`` for a step with feature maps: ``{quantity, index, inputs,
    consumers, whole}`` with full indexes (see the module docstring)."""
    from glassnet.explain.maps import quantity_name

    trace = spec.trace()
    name, key, idx = resolve(trace, quantity, index)

    def page(entries: list[Entry]) -> list[list[str]]:
        return [[quantity_name(k), ",".join(map(str, i))] for k, i in entries]

    ins, wide_in = inputs(trace, key, idx)
    outs, wide_out = consumers(trace, key, idx)
    return {
        "quantity": name,
        "index": ",".join(map(str, idx)),
        "inputs": page(ins),
        "consumers": page(outs),
        "whole": [quantity_name(k) for k in (*wide_in, *wide_out)],
    }


def derivation(trace: Trace, quantity: Any, index: Any, digits: int) -> dict[str, Any]:
    """One number's derivation as explain writes it: the sum it is, written out with its
    numbers (the block explain's page writes for that position), with its plugin's why;
    a number its plugin does not write out gets its quantity's rule in symbols and its
    value; a given number says so."""
    from glassnet.explain.document import Equation, Para
    from glassnet.explain.generic import _owner, _rule, symbol
    from glassnet.explain.maps import written_number
    from glassnet.explain.render_html import block_html
    from glassnet.explain.symbols import number_format

    graph = trace.graph
    assert graph is not None
    name, key, idx = resolve(trace, quantity, index)
    fmt = number_format(digits, trace.round_to)
    value = np.asarray(trace.value(key))[idx]
    at = ",".join(map(str, idx))
    shown = f"{name}[{at}]" if at else name
    number = str(int(value)) if value.dtype.kind in "iu" else fmt(float(value))
    if graph.is_leaf(key):
        html = (
            f'<p class="given">{escape(shown)} = {escape(number)}: given, an input of the '
            "step, not computed from anything.</p>"
        )
        return {"html": html, "quantity": name, "index": list(idx)}
    blocks: list[Any] = []
    calc = written_number(trace, graph, key, idx, symbol, fmt)
    if calc is not None:
        blocks.append(calc)
    else:
        rule = _rule(graph, key)
        if rule is not None:
            blocks.append(Equation((symbol(key), rule)))
        blocks.append(Para((f"{shown} = {number}",)))
    owner = _owner(graph, key)
    why = getattr(owner, "why", None)
    text = ""
    if why is not None and graph.update_of(key) is None and owner is not graph.loss:
        try:
            text = why(key[0])
        except TypeError:  # a plugin whose why takes more (an optimiser's, per parameter)
            text = ""
    if text:
        blocks.append(Para((text,)))
    return {
        "html": "\n".join(block_html(b) for b in blocks),
        "quantity": name,
        "index": list(idx),
    }


def refuse(spec: Spec, what: str) -> None:
    """Practice, training and the gradient check are for dense networks: a step with
    feature maps is refused in one line (422) naming its first layer that is not dense."""
    if is_maps(spec):
        spec.network.dense_layers(what)
        raise StudioError(f"expected dense layers only for {what}", got="feature maps")


__all__ = ["consumers", "derivation", "inputs", "is_maps", "links", "names", "refuse", "resolve"]
