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
from typing import TYPE_CHECKING

import numpy as np

from glassnet.layers.base import Pool2d, register_layer
from glassnet.nodes import Key, NodeDecl

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

    def argmax(self, x: Array) -> Array:
        """Each window's arg-max as a flat index into its channel's H·W input map:
        (batch, C, H, W) -> (batch, C, oh, ow), int64."""
        cells = self.cells(x)
        # the first maximum, reading the window row by row: a later cell takes over only
        # when strictly larger (NumPy's argmax over the first axis is the same rule, but
        # transposes the whole stack first — several times slower on large maps)
        best = cells[0].copy()
        local = np.zeros(best.shape, dtype=np.intp)
        for r in range(1, len(cells)):
            larger = cells[r] > best
            np.maximum(best, cells[r], out=best)
            local[larger] = r
        # window cell r = (p, q) sits at p·W + q from its window's top-left corner,
        # which sits at i·stride·W + j·stride
        k, s, w = self.size, self.stride, self.chw[2]
        _, oh, ow = self.out_shape
        offsets = np.array([p * w + q for p in range(k) for q in range(k)], dtype=np.int64)
        corners = np.arange(oh)[:, None] * (s * w) + np.arange(ow)[None, :] * s
        return offsets[local] + corners

    def gather(self, x: Array, argmax: Array) -> Array:
        """a = x at each window's arg-max: (batch, C, H, W) -> (batch, C, oh, ow)."""
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        return np.take_along_axis(flat, argmax.reshape(n, c, -1), axis=2).reshape(argmax.shape)

    def route(self, dL_da: Array, argmax: Array) -> Array:
        """dL/dx: each window's δ added to its arg-max cell, every other cell 0:
        (batch, C, oh, ow) -> (batch, C, H, W)."""
        n, c = dL_da.shape[:2]
        h, w = self.chw[1:]
        out = np.zeros((n, c, h * w), dtype=dL_da.dtype)
        idx = argmax.reshape(n, c, -1)
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
