"""Feature maps on an explain page: a 4-D quantity (batch, channels, height, width) —
or a kernel (out, in, kh, kw) — drawn as small grids of its numbers, and each of its
numbers written out as the sum it is, when the plugin that computes it says which
recorded numbers that sum reads (:meth:`glassnet.layers.base.Layer.written`).

Nothing here knows a layer type: the plugin gives, for one index, the recorded numbers
(quantity and index) its sum, product or maximum reads; this module looks each up in
the trace, writes the rule in symbols and with the numbers put in, and draws the cells
the first position reads on the input's grid (its window, the next position's window —
the stride — and the padding's zeros).  The result is the trace's own number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from glassnet.explain.document import Block, Calculation, Collapsed, Elided, Grid, Grids
from glassnet.layers.base import At, Written
from glassnet.mathtree import PLUS, TIMES, Const, Frac, Func, Node, Num, Paren, Row, Sym, Text, join
from glassnet.nodes import Key
from glassnet.step import StepGraph
from glassnet.trace import Trace

#: At most this many numbers of one quantity are written out (the first open, the rest
#: folded); at most this many maps of one quantity are drawn.
MAX_WRITTEN = 48
MAX_MAPS = 8
#: ... and the written-out numbers of one quantity hold at most this many terms in all
#: (a wide kernel's sums are long: fewer of them are written).
MAX_TERMS = 600


def is_map(value: Any) -> bool:
    """True for a quantity drawn as grids: four axes (a batch of feature maps, or a
    kernel)."""
    return np.ndim(value) == 4


def quantity_name(key: Key) -> str:
    """The name of a quantity as the studio and worksheets write it: z1, dL_da2, x."""
    kind, layer = key
    return f"{kind}{layer}" if layer else kind


def _index_text(index: Sequence[int]) -> str:
    return ",".join(str(i) for i in index)


class _Reader:
    """Looks up the numbers a plugin's :class:`Written` reads, and names them."""

    def __init__(self, trace: Trace, graph: StepGraph, symbol: Callable[[Key], Sym]) -> None:
        self.trace, self.graph, self.symbol = trace, graph, symbol
        self.single = int(np.shape(trace.x)[0]) == 1  # a batch of one: no sample index

    def shown(self, key: Key, index: tuple[int, ...]) -> tuple[int, ...]:
        """The index as the page writes it: without the sample axis in a batch of one."""
        if self.single and self.graph.batched(key):
            return index[1:]
        return index

    def sym(self, key: Key, index: tuple[int, ...], value: float | None) -> Sym:
        base = self.symbol(key)
        at = _index_text(self.shown(key, index))
        return Sym(base.base, base.sub, at, base.prime, value)

    def factor(self, at: At) -> Node:
        if at.key is None:
            return Const("0")  # a padding cell
        v = float(np.asarray(self.trace.value(at.key))[at.index])
        return self.sym(at.key, at.index, v)


def _rule(r: _Reader, w: Written) -> Node:
    """The written-out number in symbols (each symbol carries its value)."""
    if not w.terms:
        return Const("0")
    # a product of one factor is that factor
    items: list[Node] = [
        r.factor(term[0]) if len(term) == 1 else join([r.factor(f) for f in term], TIMES)
        for term in w.terms
    ]
    if w.largest:
        parts: list[Node] = []
        for k, item in enumerate(items):
            if k:
                parts.append(Text(", "))
            parts.append(item)
        return Func("max", Row(tuple(parts)))
    total: Node = join(items, PLUS) if len(items) > 1 else items[0]
    if w.divide != 1:
        # 1/4 · (a + b + c + d): the sum in parentheses may wrap, a fraction bar not
        share = Frac(Const("1"), Const(str(w.divide)))
        total = join([share, Paren(total) if len(items) > 1 else total], TIMES)
    return total


def _substituted(node: Node, fmt: Callable[[float], str]) -> Node:
    from glassnet.mathtree import substitute

    return substitute(node, fmt)


def written_blocks(
    trace: Trace,
    graph: StepGraph,
    key: Key,
    symbol: Callable[[Key], Sym],
    fmt: Callable[[float], str],
    max_samples: int,
) -> list[Block]:
    """Each number of ``key`` as the sum it is (the first written out, the others
    folded), and the first one's window drawn on the grid it reads; [] when its plugin
    does not write it out."""
    owner = graph.owner(key)
    if owner == 0:
        return []
    layer = graph.layers[owner - 1]
    x: Key = ("x", 0) if owner == 1 else ("a", owner - 1)
    value = np.asarray(trace.value(key))

    def written(index: tuple[int, ...]) -> Written | None:
        return layer.written(key[0], owner, index, x=x, value=trace.value)

    indices = [
        tuple(int(e) for e in i)
        for i in np.ndindex(*value.shape)
        if not graph.batched(key) or i[0] < max_samples
    ]
    if not indices or written(indices[0]) is None:
        return []
    # A routing (max pooling) sends δ to some cells only: write out first a cell that
    # gets one, not a 0.
    got = next((i for i in indices[:MAX_WRITTEN] if (w := written(i)) and w.terms), None)
    if got is not None and got != indices[0]:
        indices.remove(got)
        indices.insert(0, got)
    r = _Reader(trace, graph, symbol)
    calcs: list[Block] = []
    terms = 0
    for index in indices[:MAX_WRITTEN]:
        w = written(index)
        if w is None:
            continue
        terms += len(w.terms)
        if calcs and terms > MAX_TERMS:
            break
        rule = _rule(r, w)
        lhs = r.sym(key, index, None)
        result = float(value[index])
        calcs.append(Calculation(lhs, rule, _substituted(rule, fmt), Num(result, fmt(result))))
    blocks: list[Block] = [calcs[0]]
    picture = _window_picture(r, key, indices, written, fmt)
    if picture is not None:
        blocks.append(picture)
    rest = calcs[1:]
    if len(indices) > len(calcs):
        rest.append(
            Elided(
                f"… and {len(indices) - len(calcs)} more, each by the same rule "
                "(their values are in the grids above)"
            )
        )
    if rest:
        n = sum(isinstance(b, Calculation) for b in rest)
        blocks.append(Collapsed(f"{n} more like it: the other positions, the same rule", rest))
    return blocks


def written_number(
    trace: Trace,
    graph: StepGraph,
    key: Key,
    index: tuple[int, ...],
    symbol: Callable[[Key], Sym],
    fmt: Callable[[float], str],
) -> Calculation | None:
    """The number of ``key`` at ``index`` (the full index, the sample first where it has
    one) as the sum it is — the same block :func:`written_blocks` writes for it — or
    None when its plugin does not write it out.  The studio's one-number derivation."""
    owner = graph.owner(key)
    if owner == 0:
        return None
    layer = graph.layers[owner - 1]
    x: Key = ("x", 0) if owner == 1 else ("a", owner - 1)
    w = layer.written(key[0], owner, index, x=x, value=trace.value)
    if w is None:
        return None
    r = _Reader(trace, graph, symbol)
    rule = _rule(r, w)
    result = float(np.asarray(trace.value(key))[index])
    return Calculation(
        r.sym(key, index, None), rule, _substituted(rule, fmt), Num(result, fmt(result))
    )


def _window_picture(
    r: _Reader,
    key: Key,
    indices: list[tuple[int, ...]],
    written: Callable[[tuple[int, ...]], Written | None],
    fmt: Callable[[float], str],
) -> Grids | None:
    """The map the first number reads, its window marked — and the window of the number
    after it along the row (the stride) — with the padding's zeros drawn around it."""
    first = written(indices[0])
    if first is None:
        return None
    # the map read: the first batched feature-map factor (the input, or δ)
    # (the last such factor of a product: the input x beside W in z and beside δ in dW)
    # (the last such factor of a product, at the same place in every product: the
    # input x beside W in z and beside δ in dW, where a padding 0 stands in for it)
    source, place = None, 0
    whole = [t for t in first.terms if all(f.key is not None for f in t)]
    for term in whole or first.terms:
        maps = [
            k
            for k, f in enumerate(term)
            if f.key is not None and r.graph.batched(f.key) and is_map(r.trace.value(f.key))
        ]
        if maps:
            source, place = term[maps[-1]], maps[-1]
            break
    if source is None or source.key is None:
        return None
    src_key, (s, c) = source.key, source.index[:2]

    def cells_of(w: Written | None) -> set[tuple[int, int]]:
        out = set()
        for term in w.terms if w is not None else ():
            f = term[place] if place < len(term) else None
            if f is not None and f.key in (src_key, None) and f.index[:2] == (s, c):
                out.add((f.index[2], f.index[3]))
        return out

    read = cells_of(first)
    # the next position along the row (same sample and channel), when there is one
    nxt: set[tuple[int, int]] = set()
    after = (*indices[0][:-1], indices[0][-1] + 1)
    if after in indices:
        nxt = cells_of(written(after))
    m = np.asarray(r.trace.value(src_key))[s, c]
    h, w = m.shape
    pad = max([0] + [max(-a, -b, a - h + 1, b - w + 1) for a, b in read | nxt])
    rows = []
    marks: dict[tuple[int, int], str] = {}
    for a in range(-pad, h + pad):
        line = []
        for b in range(-pad, w + pad):
            inside = 0 <= a < h and 0 <= b < w
            line.append(fmt(float(m[a, b])) if inside else "0")
            mark = ""
            if (a, b) in read and (a, b) in nxt:
                mark = "both"
            elif (a, b) in read:
                mark = "read"
            elif (a, b) in nxt:
                mark = "next"
            elif not inside:
                mark = "pad"
            if mark:
                marks[(a + pad, b + pad)] = mark
        rows.append(tuple(line))
    lhs = quantity_name(key)
    first_at = _index_text(r.shown(key, indices[0]))
    legend = [f"bold: the cells {lhs}[{first_at}] reads"]
    if nxt:
        next_at = _index_text(r.shown(key, after))
        shift = min(b for _, b in nxt) - min(b for _, b in read)
        legend.append(
            f"underlined: the cells {lhs}[{next_at}] reads (bold and underlined: both) — "
            f"the window moves {shift} cell{'s' if shift != 1 else ''} along"
        )
    if pad:
        legend.append(f"the {pad}-cell border of 0s in italics is the padding")
    grid = Grid(
        f"{quantity_name(src_key)}, channel {c}" + ("" if r.single else f", sample {s}"),
        tuple(rows),
        marks,
        quantity_name(src_key),
        (s, c),
        pad,
    )
    return Grids(f"Where {lhs}[{first_at}] reads its numbers", [grid], "; ".join(legend) + ".")


def map_grids(
    trace: Trace,
    graph: StepGraph,
    key: Key,
    fmt: Callable[[float], str],
    max_samples: int,
    routed: Callable[[tuple[int, ...]], bool] | None = None,
) -> list[Block]:
    """``key``'s value drawn as grids: one per channel (per kernel for a kernel) of the
    first ``max_samples`` samples.  ``routed``: marks the cells that receive a δ (a
    routing such as max pooling's, where the other cells get none)."""
    value = np.asarray(trace.value(key))
    batched = graph.batched(key)
    single = int(np.shape(trace.x)[0]) == 1
    name = quantity_name(key)
    grids = []
    n_first = min(value.shape[0], max_samples) if batched else value.shape[0]
    pairs = [(s, c) for s in range(n_first) for c in range(value.shape[1])]
    for s, c in pairs[:MAX_MAPS]:
        m = value[s, c]
        marks = {}
        if routed is not None:
            marks = {
                (a, b): "arg"
                for a in range(m.shape[0])
                for b in range(m.shape[1])
                if routed((s, c, a, b))
            }
        cells = tuple(
            tuple(
                str(int(m[a, b])) if m.dtype.kind in "iu" else fmt(float(m[a, b]))
                for b in range(m.shape[1])
            )
            for a in range(m.shape[0])
        )
        if batched:
            label = f"channel {c}" if single else f"sample {s}, channel {c}"
        else:
            label = f"kernel [{s},{c}]"
        grids.append(Grid(label, cells, marks, name, (s, c)))
    shape = "×".join(str(e) for e in value.shape[1:] if batched) or "×".join(
        str(e) for e in value.shape
    )
    caption = f"{name}: {shape}" + (
        " (one grid per output and input channel)" if not batched else ""
    )
    legend = ""
    if routed is not None:
        legend = (
            "Marked ▲ in bold: the cells a window's δ is routed to (its arg-max); every "
            "other cell gets 0."
        )
    blocks: list[Block] = [Grids(caption, grids, legend)]
    if len(pairs) > MAX_MAPS:
        blocks.append(Elided(f"… {len(pairs) - MAX_MAPS} more maps not drawn"))
    return blocks


def routing(trace: Trace, graph: StepGraph, key: Key) -> Callable[[tuple[int, ...]], bool] | None:
    """For a gradient its plugin routes (some cells get no term at all — max pooling's
    arg-max): which cells get one; None when every cell does."""
    owner = graph.owner(key)
    if owner == 0 or key[0] != "dL_da":
        return None
    layer = graph.layers[owner - 1]
    x: Key = ("x", 0) if owner == 1 else ("a", owner - 1)
    value = np.asarray(trace.value(key))
    got: dict[tuple[int, ...], bool] = {}
    for i in np.ndindex(*value.shape[:1], *value.shape[1:]):
        index = tuple(int(e) for e in i)
        w = layer.written(key[0], owner, index, x=x, value=trace.value)
        if w is None or w.largest:
            return None
        got[index] = bool(w.terms)
    if all(got.values()):
        return None
    return lambda index: got.get(tuple(index), False)


__all__ = [
    "is_map",
    "map_grids",
    "quantity_name",
    "routing",
    "written_blocks",
    "written_number",
]
