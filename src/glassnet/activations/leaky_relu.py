"""Leaky ReLU: z for z > 0, slope·z otherwise (slope 0.01 unless set).  The derivative at
0 is the slope, as in PyTorch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from glassnet.activations.base import Activation, Array, register
from glassnet.errors import GlassnetError

if TYPE_CHECKING:
    from glassnet.mathtree import Node


@register
class LeakyReLU(Activation):
    name = "leaky_relu"
    piecewise_linear = True
    defaults: ClassVar[dict[str, float]] = {"slope": 0.01}
    words = "leaky ReLU"
    derivative_words = (
        "Leaky ReLU's derivative is 1 where its input is positive and the slope otherwise."
    )
    torch_name = "LeakyReLU"
    torch_fields = ("negative_slope",)
    onnx_op = "LeakyRelu"

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__(slope=slope)

    @property
    def slope(self) -> float:
        return self.options["slope"]

    def forward(self, z: Array, out: Array | None = None) -> Array:
        a = np.where(z > 0, z, self.slope * z)
        if out is None:
            return a
        np.copyto(out, a)
        return out

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1.0, self.slope).astype(z.dtype)

    def rule(self, z: Node, zs: list[Node] | None = None) -> Node:
        from glassnet.mathtree import GT, TIMES, Const, Text, row

        slope = Const(f"{self.slope:g}")
        return row(z, Text(" if "), z, GT, Const("0"), Text(", otherwise "), slope, TIMES, z)

    def derivative_rule(self, z: Node, a: Node) -> Node:
        from glassnet.mathtree import GT, Const, Text, row

        slope = Const(f"{self.slope:g}")
        return row(Const("1"), Text(" if "), z, GT, Const("0"), Text(", otherwise "), slope)

    def circuit_text(self, z: str) -> str | None:
        # relu(z) − slope·relu(−z): z where z > 0, slope·z elsewhere, for any slope.
        return f"relu({z}) - {self.slope!r} * relu(-{z})"

    def numpy_code(self, z: str) -> str:
        return f"np.where({z} > 0, {z}, {self.slope!r} * {z})"

    def numpy_derivative_code(self, z: str, a: str) -> str:
        return f"np.where({z} > 0, 1.0, {self.slope!r})"

    def torch_options(self) -> dict[str, Any]:
        return {"negative_slope": self.slope}

    @classmethod
    def from_torch_options(cls, options: dict[str, Any]) -> Activation:
        slope = options.get("negative_slope")
        if isinstance(slope, bool) or not isinstance(slope, int | float):
            raise GlassnetError(
                "expected a number 'negative_slope'", got=repr(slope)[:60], field="module"
            )
        return cls(slope=float(slope))

    def onnx_attributes(self) -> dict[str, Any]:
        return {"alpha": self.slope}

    def why(self) -> str:
        """Why the derivative is what it is (a short derivation, for explain)."""
        return (
            "The rule is z where z > 0, whose derivative is 1, and slope·z otherwise "
            f"(slope {self.slope:g}), whose derivative is the slope; at exactly 0 the slope "
            "is taken, as in PyTorch."
        )
