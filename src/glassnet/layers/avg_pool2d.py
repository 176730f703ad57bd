"""Average pooling: each ``size``×``size`` window of each channel passes on its mean,
and on the way back each of its cells gets the window's δ divided by size².

::

    a[s,c,i,j] = (1/size²) Σ_p Σ_q x[s, c, i·stride + p, j·stride + q]
    dL/dx      = each dL/da[s,c,i,j]/size² added to every cell of its window
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
class AvgPool2d(Pool2d):
    """Average pooling over ``size``×``size`` windows moved by ``stride``.

    >>> pool = AvgPool2d((1, 2, 2), size=2)
    >>> pool.predict(np.array([[[[1.0, 3.0], [2.0, 0.0]]]])).tolist()
    [[[[1.5]]]]
    """

    type = "avg_pool2d"
    words = "average pooling: each window passes on its mean, and δ/size² goes back to each cell"
    torch_name = "AvgPool2d"

    def kinds(self) -> tuple[str, ...]:
        return ("a", "dL_da")

    def mean(self, x: Array) -> Array:
        """(batch, C, H, W) -> (batch, C, oh, ow), each window's mean."""
        return self.cells(x).mean(axis=0)

    def spread(self, dL_da: Array) -> Array:
        """dL/dx: each window's δ/size² added to each of its cells."""
        n, c = dL_da.shape[:2]
        k = self.size
        share = dL_da / (k * k)
        cells = np.broadcast_to(share[..., None, None], (*share.shape, k, k))
        return scatter_windows(cells, (n, c, *self.chw[1:]), self.stride)

    def predict(self, x: Array) -> Array:
        return self.mean(x)

    def nodes(self, layer: int, x: Key, *, first: bool) -> list[NodeDecl]:
        k = layer
        decls = [NodeDecl("a", k, (x,), lambda v: self.mean(v[0]), "forward")]
        if not first:
            decls.append(
                NodeDecl("dL_da", k - 1, (("dL_da", k),), lambda v: self.spread(v[0]), "backward")
            )
        return decls

    def alternatives(self, layer: int) -> dict[str, dict[Key, Alternative]]:
        """Named wrong rules check can swap in, run on the person's own numbers: the
        window's sum passed on instead of its mean, and the window's δ given to each of
        its cells whole (not divided by size²)."""
        area = self.size * self.size
        k = layer
        alts: dict[str, dict[Key, Alternative]] = {
            "avg_pool_sum_not_mean": {("a", k): lambda v: self.mean(v[0]) * area},
        }
        if layer > 1:
            alts["avg_pool_gradient_not_divided"] = {
                ("dL_da", k - 1): lambda v: self.spread(v[0]) * area
            }
        return alts

    def onnx_nodes(
        self, helper: object, numpy_helper: object, x: str, z: str, prefix: str
    ) -> tuple[list[object], list[object]]:
        node = helper.make_node(  # type: ignore[attr-defined]
            "AveragePool",
            [x],
            [z],
            name=f"avgpool{prefix}",
            kernel_shape=[self.size, self.size],
            strides=[self.stride, self.stride],
        )
        return [node], []

    def written(
        self, kind: str, layer: int, index: tuple[int, ...], *, x: Key, value: Any
    ) -> Written | None:
        """a[s,c,i,j] as its window's sum over size²; the input's dL_da[s,c,h,w] as the
        sum of the δ of each window holding that cell, over size²."""
        if len(index) != 4:
            return None
        s, c, r, q = index
        k2 = self.size * self.size
        if kind == "a":
            return Written(tuple((At(x, (s, c, h, w)),) for h, w in self.window(r, q)), divide=k2)
        if kind == "dL_da" and layer > 1:
            return Written(
                tuple((At(("dL_da", layer), (s, c, i, j)),) for i, j in self.covering(r, q)),
                divide=k2,
            )
        return None

    # -- a notebook's recomputing code (see Layer.notebook_forward) ------------------------
    def notebook_forward(self, layer: int, x: str) -> list[str] | None:
        """Window by window: the mean of its size² cells."""
        k = layer
        return [
            *self.notebook_grid(k, x),
            f"a{k} = np.zeros(({x}.shape[0], {x}.shape[1], oh{k}, ow{k}))",
            f"for s, c, i, j in np.ndindex(a{k}.shape):",
            f"    top, left = i * stride{k}, j * stride{k}",
            f"    window = {x}[s, c, top : top + size{k}, left : left + size{k}]",
            f"    a{k}[s, c, i, j] = window.sum() / size{k}**2",
            f"a{k} = r(a{k})",
        ]

    def notebook_backward(self, layer: int, x: str, *, first: bool) -> list[str] | None:
        """Each window's dL/da divided by size², added to every cell of the window."""
        if first:
            return []
        k = layer
        return [
            f"dL_da{k - 1} = np.zeros_like({x})",
            f"for s, c, i, j in np.ndindex(dL_da{k}.shape):",
            f"    top, left = i * stride{k}, j * stride{k}",
            f"    dL_da{k - 1}[s, c, top : top + size{k}, left : left + size{k}] += "
            f"dL_da{k}[s, c, i, j] / size{k}**2",
            f"dL_da{k - 1} = r(dL_da{k - 1})",
        ]

    def symbols(self, kind: str, ins: Sequence[Node]) -> Node | None:
        return None

    def why(self, kind: str) -> str:
        if kind == "dL_da":
            return (
                "Each cell enters its window's mean with weight 1/size², so each gets that "
                "share of the window's δ."
            )
        return ""
