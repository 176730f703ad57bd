"""ReLU, max(0, z).  NOTE: the derivative at z = 0 is taken as 0, as the seed says
("otherwise 0") and as PyTorch does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations.base import Activation, Array, register

if TYPE_CHECKING:
    from glassnet.mathtree import Node

#: Read-only zero arrays by (shape, dtype), for the buffered forward.
_ZEROS: dict[tuple[tuple[int, ...], str], Array] = {}


def _zeros_like(z: Array) -> Array:
    """A cached read-only array of zeros shaped like z (the training loop's shapes repeat)."""
    key = (z.shape, z.dtype.str)
    zeros = _ZEROS.get(key)
    if zeros is None:
        if len(_ZEROS) >= 32:  # bound the cache: a few shapes per fit
            _ZEROS.clear()
        zeros = _ZEROS[key] = np.zeros(z.shape, z.dtype)
        zeros.flags.writeable = False
    return zeros


def _forward_kernel(z: Array, b: Array, a: Array) -> None:  # pragma: no cover (numba)
    """z += b, a = max(z, 0) in one pass over (m, n) (see :meth:`ReLU.fused_kernels`).
    A NaN stays NaN, as in np.maximum: the loop tests ``v > 0`` and keeps v unless it
    is ≤ 0."""
    m, n = z.shape
    for i in range(m):
        for j in range(n):
            v = z[i, j] + b[j]
            z[i, j] = v
            a[i, j] = 0.0 if v <= 0 else v


def _backward_kernel(
    z: Array, dL_da: Array, delta: Array, db: Array
) -> None:  # pragma: no cover (numba)
    """delta = dL_da · 1[z > 0] and db = Σ_samples delta in one pass (see
    :meth:`ReLU.fused_kernels`): the product with 1.0 or 0.0, as :meth:`ReLU.backward`
    forms it (so 0·inf is NaN there too), and the sums row after row, as NumPy's
    reduction over axis 0 adds them."""
    m, n = z.shape
    for j in range(n):
        db[j] = 0.0
    for i in range(m):
        for j in range(n):
            d = dL_da[i, j] * (1.0 if z[i, j] > 0 else 0.0)
            delta[i, j] = d
            db[j] += delta[i, j]


@register
class ReLU(Activation):
    name = "relu"
    piecewise_linear = True
    words = "ReLU, max(0, x)"
    derivative_words = (
        "ReLU's derivative is 1 where its input is positive and 0 otherwise "
        "(taken as 0 at exactly 0, a convention)."
    )
    torch_name = "ReLU"
    onnx_op = "Relu"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        if out is None:
            return np.maximum(z, 0)
        # max(z, 0) against an array of zeros: NumPy's SIMD loop, ~3× faster than the
        # scalar 0 (the same 0.0 in the same dtype, so the same numbers).
        return np.maximum(z, _zeros_like(z), out=out)

    def derivative(self, z: Array, a: Array) -> Array:
        return (z > 0).astype(z.dtype)

    def backward(self, z: Array, a: Array, dL_da: Array, out: Array | None = None) -> Array:
        # dL_da · 1[z > 0]: the product the traced step forms with the recorded derivative.
        if out is None or np.may_share_memory(out, dL_da):
            return np.multiply(dL_da, z > 0, out=out)
        # The mask 1[z > 0] as 1.0/0.0 in out, then a same-dtype product: what × bool
        # computes (bool is cast to 1.0/0.0), without NumPy's slower mixed-type loop.
        np.greater(z, 0, out=out)
        return np.multiply(dL_da, out, out=out)

    def fused_kernels(self) -> tuple[Any, Any] | None:
        from glassnet.kernels import jit

        return jit(_forward_kernel), jit(_backward_kernel)

    def rule(self, z: Node, zs: list[Node] | None = None) -> Node:
        from glassnet.mathtree import Const, Func, Text, row

        return Func("max", row(Const("0"), Text(", "), z))

    def derivative_rule(self, z: Node, a: Node) -> Node:
        from glassnet.mathtree import GT, Const, Text, row

        one, zero = Const("1"), Const("0")
        return row(one, Text(" if "), z, GT, zero, Text(", otherwise "), zero)

    def circuit_text(self, z: str) -> str | None:
        return f"relu({z})"

    def numpy_code(self, z: str) -> str:
        return f"np.maximum({z}, 0)"

    def numpy_derivative_code(self, z: str, a: str) -> str:
        return f"({z} > 0).astype(float)"

    def why(self) -> str:
        """Why the derivative is what it is (a short derivation, for explain)."""
        return (
            "max(0, z) is z where z > 0 (slope 1) and 0 where z < 0 (slope 0).  At exactly "
            "0 the two slopes disagree and there is no derivative: 0 is taken by convention."
        )
