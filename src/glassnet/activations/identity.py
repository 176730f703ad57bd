"""The identity: a = z (a linear output layer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from glassnet.activations.base import Activation, Array, register

if TYPE_CHECKING:
    from glassnet.mathtree import Node


@register
class Identity(Activation):
    name = "identity"
    words = "the identity (the output is the input)"
    derivative_words = "The identity passes derivatives through unchanged: its derivative is 1."
    onnx_op = "Identity"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        if out is None:
            return z.copy()
        np.copyto(out, z)
        return out

    def derivative(self, z: Array, a: Array) -> Array:
        return np.ones_like(z)

    def backward(self, z: Array, a: Array, dL_da: Array, out: Array | None = None) -> Array:
        if out is None:
            return dL_da.copy()
        if out is not dL_da:
            np.copyto(out, dL_da)
        return out

    def rule(self, z: Node, zs: list[Node] | None = None) -> Node:
        return z

    def derivative_rule(self, z: Node, a: Node) -> Node:
        from glassnet.mathtree import Const

        return Const("1")

    def circuit_text(self, z: str) -> str | None:
        return z  # a = z: no gate

    def numpy_code(self, z: str) -> str:
        return z

    def numpy_derivative_code(self, z: str, a: str) -> str:
        return f"np.ones_like({z})"

    def why(self) -> str:
        """Why the derivative is what it is (a short derivation, for explain)."""
        return "a = z, so ∂a/∂z = 1: the derivative passes through unchanged."
