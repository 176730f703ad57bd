"""The sigmoid 1 / (1 + e^-z), its derivative a(1 − a) from the output."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from glassnet.activations.base import Activation, Array, register

if TYPE_CHECKING:
    from glassnet.mathtree import Node


@register
class Sigmoid(Activation):
    name = "sigmoid"
    words = "the sigmoid 1/(1 + e^−x)"
    derivative_words = (
        "The sigmoid's derivative is best written with its own output: σ′(x) = σ(x)(1 − σ(x))."
    )
    torch_name = "Sigmoid"
    onnx_op = "Sigmoid"
    output_kind = "probabilities"

    def classes(self, p: Array) -> Array:
        # Each output is its own yes/no: 1 from p ≥ 0.5 (one output: labels (batch,)).
        hit = (p >= 0.5).astype(np.int64)
        return hit[:, 0] if hit.shape[1] == 1 else hit

    def labels_from_targets(self, Y: Array) -> Array | None:
        # One 0/1 output is a binary label; several sigmoids are multi-label targets.
        if Y.shape[1] == 1 and np.isin(Y, (0, 1)).all():
            return Y[:, 0].astype(np.int64)
        return None

    def forward(self, z: Array, out: Array | None = None) -> Array:
        # exp of -|z| never overflows; pick the algebraically equal form per sign.
        e = np.exp(-np.abs(z))
        a = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)
        if out is None:
            return a
        np.copyto(out, a)
        return out

    def derivative(self, z: Array, a: Array) -> Array:
        return a * (1 - a)

    def rule(self, z: Node, zs: list[Node] | None = None) -> Node:
        from glassnet.mathtree import MINUS, PLUS, Const, Exp, Frac, row

        one = Const("1")
        return Frac(one, row(one, PLUS, Exp(row(MINUS, z))))

    def derivative_rule(self, z: Node, a: Node) -> Node:
        from glassnet.mathtree import MINUS, TIMES, Const, Paren, row

        return row(a, TIMES, Paren(row(Const("1"), MINUS, a)))

    def circuit_text(self, z: str) -> str | None:
        return f"sigmoid({z})"

    def numpy_code(self, z: str) -> str:
        return f"1 / (1 + np.exp(-{z}))"

    def numpy_derivative_code(self, z: str, a: str) -> str:
        return f"{a} * (1 - {a})"

    def why(self) -> str:
        """Why the derivative is what it is (a short derivation, for explain)."""
        return (
            "σ(z) = 1/(1 + e^(−z)) = (1 + e^(−z))^(−1).  The chain rule gives "
            "σ′(z) = −(1 + e^(−z))^(−2) · (−e^(−z)) = e^(−z)/(1 + e^(−z))², which splits as "
            "1/(1 + e^(−z)) · e^(−z)/(1 + e^(−z)) = σ(z) · (1 − σ(z)), because "
            "e^(−z)/(1 + e^(−z)) = 1 − 1/(1 + e^(−z)).  So the derivative needs only the output."
        )
