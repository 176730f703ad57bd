"""tanh(z), its derivative 1 − a² from the output."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from glassnet.activations.base import Activation, Array, register

if TYPE_CHECKING:
    from glassnet.mathtree import Node


@register
class Tanh(Activation):
    name = "tanh"
    words = "tanh"
    derivative_words = "tanh's derivative, from its output: 1 − tanh(x)²."
    torch_name = "Tanh"
    onnx_op = "Tanh"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        return np.tanh(z, out=out)

    def derivative(self, z: Array, a: Array) -> Array:
        return 1 - a * a

    def rule(self, z: Node, zs: list[Node] | None = None) -> Node:
        from glassnet.mathtree import Func

        return Func("tanh", z, tex=r"\tanh")

    def derivative_rule(self, z: Node, a: Node) -> Node:
        from glassnet.mathtree import MINUS, Const, Pow, row

        return row(Const("1"), MINUS, Pow(a, "2"))

    def circuit_text(self, z: str) -> str | None:
        return f"tanh({z})"

    def numpy_code(self, z: str) -> str:
        return f"np.tanh({z})"

    def numpy_derivative_code(self, z: str, a: str) -> str:
        return f"1 - {a} ** 2"

    def why(self) -> str:
        """Why the derivative is what it is (a short derivation, for explain)."""
        return (
            "tanh z = (e^z − e^(−z))/(e^z + e^(−z)).  The quotient rule gives "
            "((e^z + e^(−z))² − (e^z − e^(−z))²)/(e^z + e^(−z))² = 1 − tanh² z: the "
            "derivative from the output alone."
        )
