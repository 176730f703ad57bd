"""Max pooling: each ``size``×``size`` window of each channel passes on its largest
value, and on the way back its δ goes to that one cell only — the ``argmax`` routing.

::

    argmax[s,c,i,j] = the flat index h·W + w, in its input map, of the window's largest
                      cell (the first one, reading the window row by row, on a tie —
                      as PyTorch picks it)
    a[s,c,i,j]      = x[s, c].flat[argmax[s,c,i,j]]
    dL/dx[s,c]      = Σ over the windows whose arg-max is that cell of dL/da[s,c,i,j]
                      (0 for every cell that was no window's maximum)

``argmax`` is a node of the step of its own (int64), so the routing is recorded with
the numbers it routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.layers.base import At, Pool2d, Written, register_layer, scatter_windows
from glassnet.nodes import Alternative, Key, NodeDecl

if TYPE_CHECKING:
    from glassnet.mathtree import Node

Array = np.ndarray


@register_layer
class MaxPool2d(Pool2d):
    """Max pooling over ``size``×``size`` windows moved by ``stride``.

    >>> pool = MaxPool2d((1, 2, 2), size=2)
    >>> pool.predict(np.array([[[[1.0, 3.0], [2.0, 0.0]]]])).tolist()
    [[[[3.0]]]]
    """

    type = "max_pool2d"
    words = "max pooling: each window passes on its largest value, and δ goes back to that cell"
    torch_name = "MaxPool2d"

    def kinds(self) -> tuple[str, ...]:
        return ("argmax", "a", "dL_da")

    def argmax(self, x: Array, *, last: bool = False) -> Array:
        """Each window's arg-max as a flat index into its channel's H·W input map:
        (batch, C, H, W) -> (batch, C, oh, ow), int64.  ``last``: the last of tied
        maxima instead of the first (a mistake check can name, not the layer's rule)."""
        cells = self.cells(x)
        # the first maximum, reading the window row by row: a later cell takes over only
        # when strictly larger (NumPy's argmax over the first axis is the same rule, but
        # transposes the whole stack first — several times slower on large maps)
        best = cells[0].copy()
        local = np.zeros(best.shape, dtype=np.intp)
        for r in range(1, len(cells)):
            larger = cells[r] >= best if last else cells[r] > best
            np.maximum(best, cells[r], out=best)
            local[larger] = r
        # window cell r = (p, q) sits at p·W + q from its window's top-left corner,
        # which sits at i·stride·W + j·stride
        k, s, w = self.size, self.stride, self.chw[2]
        _, oh, ow = self.out_shape
        offsets = np.array([p * w + q for p in range(k) for q in range(k)], dtype=np.int64)
        corners = np.arange(oh)[:, None] * (s * w) + np.arange(ow)[None, :] * s
        return offsets[local] + corners

    def index_range(self, kind: str) -> int | None:
        """``argmax`` holds flat indices into a channel's input map: 0 to H·W − 1."""
        return self.chw[1] * self.chw[2] if kind == "argmax" else None

    @staticmethod
    def _indices(argmax: Array) -> Array:
        """The arg-max as whole indices: a worksheet's are read as numbers (5.0), the
        worksheet reader has made sure they are whole and in range."""
        if np.issubdtype(argmax.dtype, np.integer):
            return argmax
        return np.rint(argmax).astype(np.int64)

    def gather(self, x: Array, argmax: Array) -> Array:
        """a = x at each window's arg-max: (batch, C, H, W) -> (batch, C, oh, ow)."""
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        idx = self._indices(argmax).reshape(n, c, -1)
        return np.take_along_axis(flat, idx, axis=2).reshape(argmax.shape)

    def route(self, dL_da: Array, argmax: Array) -> Array:
        """dL/dx: each window's δ added to its arg-max cell, every other cell 0:
        (batch, C, oh, ow) -> (batch, C, H, W)."""
        n, c = dL_da.shape[:2]
        h, w = self.chw[1:]
        out = np.zeros((n, c, h * w), dtype=dL_da.dtype)
        idx = self._indices(argmax).reshape(n, c, -1)
        if self.stride >= self.size:
            # windows do not overlap: no cell is two windows' maximum, one scatter
            np.put_along_axis(out, idx, dL_da.reshape(n, c, -1), axis=2)
        else:
            s_idx, c_idx = np.indices(idx.shape)[:2]
            np.add.at(out, (s_idx, c_idx, idx), dL_da.reshape(n, c, -1))
        return out.reshape(n, c, h, w)

    def predict(self, x: Array) -> Array:
        return self.gather(x, self.argmax(x))

    def nodes(self, layer: int, x: Key, *, first: bool) -> list[NodeDecl]:
        k = layer
        decls = [
            NodeDecl("argmax", k, (x,), lambda v: self.argmax(v[0]), "forward"),
            NodeDecl("a", k, (x, ("argmax", k)), lambda v: self.gather(v[0], v[1]), "forward"),
        ]
        if not first:
            decls.append(
                NodeDecl(
                    "dL_da",
                    k - 1,
                    (("dL_da", k), ("argmax", k)),
                    lambda v: self.route(v[0], v[1]),
                    "backward",
                )
            )
        return decls

    def alternatives(self, layer: int) -> dict[str, dict[Key, Alternative]]:
        """Named wrong rules check can swap in, run on the person's own numbers: the
        window's δ sent to every cell of the window; or to the wrong cell — the last of
        tied maxima (the arg-max node: a ReLU's zeros tie), the window's top-left cell,
        or the arg-max's place in its window read with row and column swapped."""
        if layer == 1:
            return {}
        k, size, s, w = layer, self.size, self.stride, self.chw[2]
        _, oh, ow = self.out_shape
        shape = self.chw

        def every_cell(v: Sequence[Array]) -> Array:
            d = v[0]
            cells = np.broadcast_to(d[..., None, None], (*d.shape, size, size))
            return scatter_windows(cells, (d.shape[0], *shape), s)

        corners = np.arange(oh)[:, None] * (s * w) + np.arange(ow)[None, :] * s

        def top_left(v: Sequence[Array]) -> Array:
            return self.route(v[0], np.broadcast_to(corners, v[1].shape))

        def swapped(v: Sequence[Array]) -> Array | None:
            local = self._indices(v[1]) - corners  # p·W + q within the window
            p, q = local // w, local % w
            if size == 1 or np.array_equal(p, q):
                return None
            return self.route(v[0], corners + q * w + p)

        return {
            "max_pool_gradient_to_every_cell": {("dL_da", k - 1): every_cell},
            "max_pool_gradient_to_wrong_cell": {
                ("argmax", k): {
                    "the last of tied maxima": lambda v: self.argmax(v[0], last=True),
                    "the window's top-left cell": lambda v: np.broadcast_to(
                        corners, (*v[0].shape[:2], oh, ow)
                    ),
                },
                ("dL_da", k - 1): {
                    "the window's top-left cell": top_left,
                    "the arg-max's row and column swapped in its window": swapped,  # type: ignore[dict-item]
                },
            },
        }

    def onnx_nodes(
        self, helper: object, numpy_helper: object, x: str, z: str, prefix: str
    ) -> tuple[list[object], list[object]]:
        node = helper.make_node(  # type: ignore[attr-defined]
            "MaxPool",
            [x],
            [z],
            name=f"maxpool{prefix}",
            kernel_shape=[self.size, self.size],
            strides=[self.stride, self.stride],
        )
        return [node], []

    def written(
        self, kind: str, layer: int, index: tuple[int, ...], *, x: Key, value: Any
    ) -> Written | None:
        """a[s,c,i,j] as the largest of its window's cells; the input's dL_da[s,c,h,w]
        as the sum of the δ of each window whose recorded arg-max is that cell (none: 0)."""
        if len(index) != 4:
            return None
        s, c, r, q = index
        if kind == "a":
            return Written(
                tuple((At(x, (s, c, h, w)),) for h, w in self.window(r, q)), largest=True
            )
        if kind == "dL_da" and layer > 1:
            flat = r * self.chw[2] + q
            argmax = value(("argmax", layer))
            return Written(
                tuple(
                    (At(("dL_da", layer), (s, c, i, j)),)
                    for i, j in self.covering(r, q)
                    if int(argmax[s, c, i, j]) == flat
                )
            )
        return None

    # -- a notebook's recomputing code (see Layer.notebook_forward) ------------------------
    def notebook_forward(self, layer: int, x: str) -> list[str] | None:
        """Window by window: the largest cell (the first, read row by row, on a tie)
        and its flat index h·width + w in its channel's input map."""
        k = layer
        return [
            *self.notebook_grid(k, x),
            f"argmax{k} = np.zeros(({x}.shape[0], {x}.shape[1], oh{k}, ow{k}), dtype=int)",
            f"a{k} = np.zeros(({x}.shape[0], {x}.shape[1], oh{k}, ow{k}))",
            f"for s, c, i, j in np.ndindex(a{k}.shape):",
            f"    top, left = i * stride{k}, j * stride{k}",
            f"    window = {x}[s, c, top : top + size{k}, left : left + size{k}]",
            "    # np.argmax reads the window row by row and keeps the first maximum",
            "    i_max, j_max = np.unravel_index(np.argmax(window), window.shape)",
            f"    argmax{k}[s, c, i, j] = (top + i_max) * width{k} + (left + j_max)",
            f"    a{k}[s, c, i, j] = window[i_max, j_max]",
            f"argmax{k}, a{k} = r(argmax{k}), r(a{k})",
        ]

    def notebook_backward(self, layer: int, x: str, *, first: bool) -> list[str] | None:
        """Each window's dL/da added to its arg-max cell; every other cell gets 0."""
        if first:
            return []
        k = layer
        return [
            f"dL_da{k - 1} = np.zeros_like({x})",
            f"for s, c, i, j in np.ndindex(argmax{k}.shape):",
            f"    h, w = divmod(int(argmax{k}[s, c, i, j]), width{k})",
            f"    dL_da{k - 1}[s, c, h, w] += dL_da{k}[s, c, i, j]",
            f"dL_da{k - 1} = r(dL_da{k - 1})",
        ]

    def symbols(self, kind: str, ins: Sequence[Node]) -> Node | None:
        return None

    def why(self, kind: str) -> str:
        if kind == "dL_da":
            return (
                "The maximum depends on its own cell only (a small change to any other "
                "cell leaves it), so the window's δ goes to the arg-max cell and the "
                "others get 0."
            )
        return ""
