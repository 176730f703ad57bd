"""GELU (Hendrycks & Gimpel, 2016), the exact form PyTorch uses by default:
a = z·Φ(z) with Φ(z) = ½(1 + erf(z/√2)) the standard normal's distribution function.

Its derivative is Φ(z) + z·φ(z), with φ(z) = e^(−z²/2)/√(2π) the normal density.
NumPy has no erf, so it is the C library's (``math.erf``) applied to each number:
exact, and fast enough for the networks glassnet explains and trains.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations.base import Activation, Array, register
from glassnet.errors import GlassnetError

if TYPE_CHECKING:
    from glassnet.mathtree import Node

_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _cdf(z: Array) -> Array:
    """Φ(z) = ½(1 + erf(z/√2)), in z's dtype."""
    erf = np.asarray(_erf(z * _SQRT1_2), dtype=np.float64)  # object array -> float64
    return (0.5 * (1.0 + erf)).astype(z.dtype, copy=False)


@register
class GELU(Activation):
    name = "gelu"
    words = "GELU, x·Φ(x) with Φ the standard normal distribution function"
    derivative_words = (
        "GELU's derivative, by the product rule: Φ(x) + x·φ(x), with φ(x) = e^(−x²/2)/√(2π)."
    )
    torch_name = "GELU"
    torch_fields = ("approximate",)

    def forward(self, z: Array, out: Array | None = None) -> Array:
        return np.multiply(z, _cdf(z), out=out)

    def derivative(self, z: Array, a: Array) -> Array:
        with np.errstate(over="ignore"):  # z² overflowing means e^(−z²/2) = 0: the same
            pdf = np.exp(-0.5 * z * z) * _INV_SQRT_2PI
        return (_cdf(z) + z * pdf).astype(z.dtype, copy=False)

    def rule(self, z: Node, zs: list[Node] | None = None) -> Node:
        from glassnet.mathtree import PLUS, TIMES, Const, Frac, Func, Paren, row

        sqrt2 = Const("√2", value=math.sqrt(2.0))
        inner = row(Const("1"), PLUS, Func("erf", Frac(z, sqrt2)))
        return row(Frac(Const("1"), Const("2")), TIMES, z, TIMES, Paren(inner))

    def derivative_rule(self, z: Node, a: Node) -> Node:
        from glassnet.mathtree import MINUS, PLUS, TIMES, Const, Exp, Frac, Func, Paren, Pow, row

        sqrt2 = Const("√2", value=math.sqrt(2.0))
        sqrt2pi = Const("√(2π)", value=math.sqrt(2.0 * math.pi))
        cdf = row(
            Frac(Const("1"), Const("2")),
            TIMES,
            Paren(row(Const("1"), PLUS, Func("erf", Frac(z, sqrt2)))),
        )
        pdf = Frac(Exp(row(MINUS, Frac(Pow(z, "2"), Const("2")))), sqrt2pi)
        return row(cdf, PLUS, z, TIMES, pdf)

    def numpy_code(self, z: str) -> str:
        erf = "np.frompyfunc(math.erf, 1, 1)"
        return f"{z} * 0.5 * (1 + {erf}({z} / np.sqrt(2)).astype(float))"

    def numpy_derivative_code(self, z: str, a: str) -> str:
        erf = "np.frompyfunc(math.erf, 1, 1)"
        return (
            f"0.5 * (1 + {erf}({z} / np.sqrt(2)).astype(float))"
            f" + {z} * np.exp(-{z} ** 2 / 2) / np.sqrt(2 * np.pi)"
        )

    def torch_options(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_torch_options(cls, options: dict[str, Any]) -> Activation:
        # PyTorch's GELU(approximate="tanh") is another function; glassnet computes the exact one.
        approximate = options.get("approximate", "none")
        if approximate != "none":
            raise GlassnetError(
                "expected GELU(approximate='none') (the exact erf form)",
                got=f"approximate={approximate!r}",
                field="module",
            )
        return cls()

    def onnx_nodes(self, helper: Any, z: str, out: str, name: str) -> list[Any]:
        # ONNX has Gelu only from opset 20; Erf is in every opset glassnet writes.
        from onnx import TensorProto

        def const(tag: str, value: float) -> Any:
            return helper.make_node(
                "Constant", [], [f"{name}_{tag}"], name=f"{name}_{tag}",
                value=helper.make_tensor(f"{name}_{tag}", TensorProto.FLOAT, [], [value]),
            )  # fmt: skip

        return [
            const("sqrt2", math.sqrt(2.0)),
            const("one", 1.0),
            const("half", 0.5),
            helper.make_node("Div", [z, f"{name}_sqrt2"], [f"{name}_s"], name=f"{name}_div"),
            helper.make_node("Erf", [f"{name}_s"], [f"{name}_erf"], name=f"{name}_erf"),
            helper.make_node(
                "Add", [f"{name}_erf", f"{name}_one"], [f"{name}_1p"], name=f"{name}_add"
            ),
            helper.make_node("Mul", [z, f"{name}_1p"], [f"{name}_m"], name=f"{name}_mul"),
            helper.make_node("Mul", [f"{name}_m", f"{name}_half"], [out], name=f"{name}_half_mul"),
        ]

    def why(self) -> str:
        """Why the derivative is what it is (a short derivation, for explain)."""
        return (
            "GELU(z) = z·Φ(z), with Φ(z) = ½(1 + erf(z/√2)) the standard normal distribution "
            "function.  The product rule gives Φ(z) + z·Φ′(z), and Φ′(z) = φ(z) = "
            "e^(−z²/2)/√(2π), the normal density (the derivative of erf(x) is 2e^(−x²)/√π)."
        )
