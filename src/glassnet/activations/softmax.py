"""Softmax: e^{z_i} / Σ_j e^{z_j} per row, with the row maximum subtracted first.

The derivative is the full Jacobian ``J[s, i, j] = a_i (δ_ij − a_j)``; ``backward``
applies it as a vector-Jacobian product, ``delta_j = Σ_i dL_da_i J_ij
= a_j (dL_da_j − Σ_i dL_da_i a_i)`` — every off-diagonal term included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations.base import Activation, Array, register
from glassnet.errors import GlassnetError

if TYPE_CHECKING:
    from glassnet.mathtree import Node


@register
class Softmax(Activation):
    name = "softmax"
    elementwise = False
    words = "softmax, e^x_j / Σ e^x"
    torch_name = "Softmax"
    torch_fields = ("dim",)
    onnx_op = "Softmax"
    output_kind = "distribution"
    exp_normalised = True

    def labels_from_targets(self, Y: Array) -> Array | None:
        # One distribution per row: its most likely class (one-hot or soft targets).
        return Y.argmax(axis=1) if Y.shape[1] > 1 else None

    def forward(self, z: Array, out: Array | None = None) -> Array:
        if out is None:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        # The same three steps, each in place in out.  The ufuncs' own reduce is what
        # z.max / sum call, minus their Python wrapper (a few µs a step).
        np.subtract(z, np.maximum.reduce(z, axis=1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= np.add.reduce(out, axis=1, keepdims=True)
        return out

    def derivative(self, z: Array, a: Array) -> Array:
        n = a.shape[1]
        return a[:, :, None] * (np.eye(n, dtype=a.dtype)[None] - a[:, None, :])

    def backward(self, z: Array, a: Array, dL_da: Array, out: Array | None = None) -> Array:
        # J is symmetric, so Jᵀ·g = J·g; this is that product without building J.
        return np.multiply(a, dL_da - (dL_da * a).sum(axis=1, keepdims=True), out=out)

    def by_hand(
        self, z: Array, written: Callable[[Array], Array] | None = None
    ) -> tuple[Array, Array] | None:
        """Each e^{z_i} and their sum S per row, as a person computes softmax by hand
        (a_i = e^{z_i}/S; :meth:`forward` subtracts the row maximum first, which changes
        neither quotient).  ``written``: how each e^z is written down (rounded) before
        it is added, as by hand.  None when some e^z overflows a float."""
        with np.errstate(over="ignore"):
            e = np.exp(np.asarray(z, dtype=np.float64))
        if not np.all(np.isfinite(e)):
            return None
        if written is not None:
            e = np.asarray(written(e), dtype=np.float64)
        total = e.sum(axis=1)
        if not np.all(np.isfinite(total)):
            return None
        return e, total

    def rule(self, z: Node, zs: list[Node] | None = None) -> Node:
        from glassnet.mathtree import PLUS, Dots, Exp, Frac, join

        if zs is None:
            raise GlassnetError("expected the layer's inputs", got="none", field="softmax")
        return Frac(Exp(z), join([n if isinstance(n, Dots) else Exp(n) for n in zs], PLUS))

    def derivative_rule(self, z: Node, a: Node) -> Node:
        # Not elementwise: explain writes the Jacobian a_i(δ_ij − a_j) out entry by entry.
        raise GlassnetError(
            "expected an elementwise activation", got="softmax (a full Jacobian)", field="rule"
        )

    def numpy_code(self, z: str) -> str:
        return (
            f"np.exp({z} - {z}.max(axis=1, keepdims=True)) / "
            f"np.exp({z} - {z}.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)"
        )

    def numpy_derivative_code(self, z: str, a: str) -> str:
        # The full Jacobian, J[s, i, j] = a_i (δ_ij − a_j).
        return f"{a}[:, :, None] * (np.eye({a}.shape[1])[None] - {a}[:, None, :])"

    def torch_options(self) -> dict[str, Any]:
        return {"dim": -1}

    @classmethod
    def from_torch_options(cls, options: dict[str, Any]) -> Activation:
        # Over the features of a (batch, n) row: dim -1 or 1; anything else is another map.
        if options.get("dim", -1) not in (-1, 1):
            raise GlassnetError(
                "expected Softmax over the features (dim=-1 or 1)",
                got=f"dim={options.get('dim')}",
                field="module",
            )
        return cls()

    def onnx_attributes(self) -> dict[str, Any]:
        return {"axis": -1}

    def why(self) -> str:
        """Why the derivative is what it is (a short derivation, for explain)."""
        return (
            "a_j = e^(z_j)/S with S = Σ_u e^(z_u), and ∂S/∂z_u = e^(z_u).  The quotient rule: "
            "for u = j, ∂a_j/∂z_j = (e^(z_j)·S − e^(z_j)·e^(z_j))/S² = a_j − a_j² = a_j(1 − a_j); "
            "for u ≠ j the numerator does not change, so ∂a_j/∂z_u = −e^(z_j)·e^(z_u)/S² = "
            "−a_j·a_u.  Every output depends on every input: a full matrix, the Jacobian."
        )
