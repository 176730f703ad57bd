"""ELU (Clevert et al., 2016): z for z > 0, α(e^z − 1) otherwise (α = 1 unless set).

Its derivative is 1 for z > 0 and α·e^z otherwise — α at exactly 0, as PyTorch takes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from glassnet.activations.base import Activation, Array, register
from glassnet.errors import GlassnetError

if TYPE_CHECKING:
    from glassnet.mathtree import Node


@register
class ELU(Activation):
    name = "elu"
    defaults: ClassVar[dict[str, float]] = {"alpha": 1.0}
    words = "ELU, x for x > 0 and α(e^x − 1) otherwise"
    derivative_words = "ELU's derivative is 1 where its input is positive and α·e^x otherwise."
    torch_name = "ELU"
    torch_fields = ("alpha",)
    onnx_op = "Elu"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha=alpha)

    @property
    def alpha(self) -> float:
        return self.options["alpha"]

    def forward(self, z: Array, out: Array | None = None) -> Array:
        # expm1 of min(z, 0): exact near 0, and no overflow for large positive z.
        a = np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0)))
        if out is None:
            return a
        np.copyto(out, a)
        return out

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1.0, self.alpha * np.exp(np.minimum(z, 0))).astype(z.dtype)

    def rule(self, z: Node, zs: list[Node] | None = None) -> Node:
        from glassnet.mathtree import GT, MINUS, TIMES, Const, Exp, Paren, Text, row

        alpha = Const(f"{self.alpha:g}")
        return row(
            z, Text(" if "), z, GT, Const("0"), Text(", otherwise "),
            alpha, TIMES, Paren(row(Exp(z), MINUS, Const("1"))),
        )  # fmt: skip

    def derivative_rule(self, z: Node, a: Node) -> Node:
        from glassnet.mathtree import GT, TIMES, Const, Exp, Text, row

        alpha = Const(f"{self.alpha:g}")
        return row(
            Const("1"), Text(" if "), z, GT, Const("0"), Text(", otherwise "), alpha, TIMES, Exp(z)
        )

    def circuit_text(self, z: str) -> str | None:
        # z where z > 0 (the second part is α(e⁰ − 1) = 0), α(e^z − 1) elsewhere.
        return f"relu({z}) + {self.alpha!r} * (exp(min({z}, 0)) - 1)"

    def numpy_code(self, z: str) -> str:
        return f"np.where({z} > 0, {z}, {self.alpha!r} * (np.exp(np.minimum({z}, 0)) - 1))"

    def numpy_derivative_code(self, z: str, a: str) -> str:
        return f"np.where({z} > 0, 1.0, {self.alpha!r} * np.exp(np.minimum({z}, 0)))"

    def torch_options(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    @classmethod
    def from_torch_options(cls, options: dict[str, Any]) -> Activation:
        alpha = options.get("alpha", 1.0)
        if isinstance(alpha, bool) or not isinstance(alpha, int | float):
            raise GlassnetError("expected a number 'alpha'", got=repr(alpha)[:60], field="module")
        return cls(alpha=float(alpha))

    def onnx_attributes(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def why(self) -> str:
        """Why the derivative is what it is (a short derivation, for explain)."""
        return (
            f"The rule is z where z > 0 (slope 1) and α(e^z − 1) otherwise, α = {self.alpha:g}; "
            "the derivative of α(e^z − 1) is α·e^z (which is also a + α there)."
        )
