"""Flatten: one sample's feature maps (C, H, W) read row by row into one vector of
C·H·W numbers, as ``nn.Flatten`` and ``x.reshape(batch, -1)`` do, so a dense layer can
follow a convolution; on the way back δ is folded into the maps' shape again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations import Activation
from glassnet.errors import GlassnetError
from glassnet.layers.base import Layer, check_fields, identity, register_layer, whole
from glassnet.nodes import Key, NodeDecl
from glassnet.specvalues import LayerContext

if TYPE_CHECKING:
    from glassnet.mathtree import Node

Array = np.ndarray


@register_layer
class Flatten(Layer):
    """(batch, *shape) -> (batch, prod(shape)), row by row.

    >>> Flatten((1, 2, 2)).predict(np.arange(4.0).reshape(1, 1, 2, 2)).tolist()
    [[0.0, 1.0, 2.0, 3.0]]
    """

    type = "flatten"
    input_rank = None
    explained = False
    shown_by = frozenset({"explain", "check", "the studio"})
    takes_activation = False
    torch_name = "Flatten"
    words = "flatten: the feature maps read row by row into one vector"
    spec_fields = frozenset({"type"})

    def __init__(self, in_shape: Sequence[int]) -> None:
        if not isinstance(in_shape, list | tuple) or not in_shape:
            raise GlassnetError("expected a shape", got=repr(in_shape)[:40], field="in_shape")
        self.shape = tuple(whole(e, "in_shape", 1) for e in in_shape)
        self.activation = identity()

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def n_in(self) -> int:
        return int(np.prod(self.shape))

    @property
    def n_out(self) -> int:
        return self.n_in

    def kinds(self) -> tuple[str, ...]:
        return ("a", "dL_da")

    def predict(self, x: Array) -> Array:
        return x.reshape(x.shape[0], -1)

    def nodes(self, layer: int, x: Key, *, first: bool) -> list[NodeDecl]:
        k, shape = layer, self.shape
        decls = [NodeDecl("a", k, (x,), lambda v: v[0].reshape(v[0].shape[0], -1), "forward")]
        if not first:
            decls.append(
                NodeDecl(
                    "dL_da",
                    k - 1,
                    (("dL_da", k),),
                    lambda v: v[0].reshape(v[0].shape[0], *shape),
                    "backward",
                )
            )
        return decls

    # -- a notebook's recomputing code (see Layer.notebook_forward) ------------------------
    def notebook_forward(self, layer: int, x: str) -> list[str] | None:
        """Each sample's maps read row by row (channel, then row, then column)."""
        k = layer
        return [f"a{k} = r({x}.reshape({x}.shape[0], -1))  # one row of numbers per sample"]

    def notebook_backward(self, layer: int, x: str, *, first: bool) -> list[str] | None:
        """dL/da folded back into the maps' shape, in the same order."""
        if first:
            return []
        k = layer
        return [f"dL_da{k - 1} = r(dL_da{k}.reshape({x}.shape))"]

    def with_leaves(self, values: Mapping[str, Array]) -> Flatten:
        return Flatten(self.shape)

    def copy(self, dtype: Any = None) -> Flatten:
        return Flatten(self.shape)

    @classmethod
    def from_spec(cls, table: Mapping[str, Any], n_in: int, ctx: LayerContext) -> Flatten:
        check_fields(table, cls.spec_fields, "flatten")
        return Flatten(ctx.in_shape or (n_in,))

    def to_spec(self) -> dict[str, Any]:
        return {}

    def config(self) -> dict[str, Any]:
        return {"in_shape": list(self.shape)}

    def arrays(self) -> dict[str, Array]:
        return {}

    @classmethod
    def from_file(
        cls,
        config: Mapping[str, Any],
        arrays: Mapping[str, Array],
        *,
        activation: Activation | None = None,
    ) -> Flatten:
        return Flatten(config["in_shape"])

    @classmethod
    def file_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        shape = config.get("in_shape")
        if not isinstance(shape, list) or not 1 <= len(shape) <= 8:
            raise GlassnetError("expected a shape", got=repr(shape)[:40], field="in_shape")
        for e in shape:
            whole(e, "in_shape", 1)
        return {}

    def torch_data(self) -> tuple[dict[str, Any], dict[str, Array]]:
        return {"type": "Flatten"}, {}

    @classmethod
    def torch_data_of(cls, module: Any) -> tuple[dict[str, Any], dict[str, Array]]:
        return {"type": "Flatten", "start_dim": module.start_dim, "end_dim": module.end_dim}, {}

    @classmethod
    def from_torch_data(cls, arch: Mapping[str, Any], tensors: Mapping[str, Array]) -> Flatten:
        return cls.from_torch_shaped(arch, tensors, None)

    @classmethod
    def from_torch_shaped(
        cls,
        arch: Mapping[str, Any],
        tensors: Mapping[str, Array],
        in_shape: tuple[int, ...] | None,
    ) -> Flatten:
        """``nn.Flatten()`` as it comes (start_dim 1, end_dim −1: everything but the
        batch axis), after a module whose output shape is known."""
        if (arch.get("start_dim", 1), arch.get("end_dim", -1)) != (1, -1):
            raise GlassnetError(
                "expected Flatten(start_dim=1, end_dim=-1)",
                got=f"start_dim={arch.get('start_dim')}, end_dim={arch.get('end_dim')}",
                field="Flatten",
            )
        if in_shape is None:
            raise GlassnetError(
                "expected the input's shape before a Flatten (input_shape=...)",
                got="none",
                field="Flatten",
            )
        return Flatten(in_shape)

    def onnx_nodes(
        self, helper: Any, numpy_helper: Any, x: str, z: str, prefix: str
    ) -> tuple[list[Any], list[Any]]:
        return [helper.make_node("Flatten", [x], [z], name=f"flatten{prefix}", axis=1)], []

    def describe(self) -> str:
        return f"flatten({'×'.join(map(str, self.shape))} -> {self.n_out})"

    def symbols(self, kind: str, ins: Sequence[Node]) -> Node | None:
        return None

    def why(self, kind: str) -> str:
        if kind == "dL_da":
            return "Flattening only moves numbers, so δ moves back to where each came from."
        return ""

    def __repr__(self) -> str:
        return f"Flatten({self.describe()})"
