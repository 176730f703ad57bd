"""Categorical cross-entropy −Σ_k y_k ln p_k, for an output that is a distribution."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.losses.base import Array, Loss, clip, register

if TYPE_CHECKING:
    from glassnet.activations import Activation
    from glassnet.mathtree import Node


def _softmax_kernel(
    z: Array, b: Array, y: Array, a: Array, delta: Array, batch: int
) -> float:  # pragma: no cover (numba)
    """Per row: z += b, a = softmax(z) (the row maximum subtracted, e^z, divided by the
    row's sum: Softmax.forward's steps), delta = (a − y)/batch, and the terms
    −y·ln(clip(a)) added up where y ≠ 0 — one pass over the row's numbers each, in float64 for the
    sums (NumPy sums in the array's dtype, pairwise: equal to float rounding)."""
    m, n = z.shape
    eps = np.finfo(a.dtype).eps
    total = 0.0
    for i in range(m):
        top = -np.inf
        for j in range(n):
            v = z[i, j] + b[j]
            z[i, j] = v
            if v > top or v != v:
                top = v
        s = 0.0
        for j in range(n):
            e = math.exp(z[i, j] - top)
            a[i, j] = e
            s += a[i, j]
        for j in range(n):
            p = a[i, j] / s
            a[i, j] = p
            delta[i, j] = (a[i, j] - y[i, j]) / batch
            # A target of 0 adds exactly 0 (as terms' xlogy): no log for it, which was
            # most of this kernel's time with one-hot targets.
            if y[i, j] != 0:
                q = min(max(float(a[i, j]), eps), 1.0 - eps)
                total -= y[i, j] * math.log(q)
    return total


@register
class CrossEntropy(Loss):
    """Categorical cross-entropy −Σ_k y_k ln p_k, for a softmax (or any distribution)
    output."""

    name = "cross_entropy"
    probabilities = True
    is_classification = True
    logarithmic = True
    output_words = "a softmax output (a probability distribution)"
    formula = r"-\sum_k y_k \ln p_k"
    words = "cross-entropy: each output adds −y ln O_out"
    # p clipped to [eps, 1 − eps] (float64's eps, 2⁻⁵²) as the engine does, so a p that
    # hand mode rounded to 0 gives the engine's finite numbers, not inf or nan
    numpy_terms_code = "-np.where(y != 0, y * np.log(np.clip(p, 2**-52, 1 - 2**-52)), 0.0)"
    numpy_grad_code = "-y / np.clip(p, 2**-52, 1 - 2**-52)"

    def accepts_output(self, activation: Activation) -> bool:
        # ln p_k of one output is meaningful only when the outputs share one distribution.
        return activation.output_kind == "distribution"

    def default_for(self, activation: Activation) -> bool:
        return activation.output_kind == "distribution"

    def fused_delta_with(self, activation: Activation) -> bool:
        """Why: dL/dp_k = −y_k/(p_k·batch) and the softmax Jacobian p_k(δ_kj − p_j)
        multiply to (p_j·Σ_k y_k − y_j)/batch, which is (p − y)/batch exactly when
        Σ_k y_k = 1.  That needs the softmax's Jacobian, which any activation with
        ``exp_normalised`` has — not merely one whose outputs sum to 1."""
        return activation.exp_normalised

    def fused_output_kernel(self, activation: Activation) -> Any:
        # softmax (any exp-normalised output) + cross-entropy + the fused delta.
        if not activation.exp_normalised:
            return None
        from glassnet.kernels import jit

        return jit(_softmax_kernel)

    def shortcut_note(self, activation: Activation) -> str:
        if not activation.exp_normalised:
            return ""
        # Softmax + cross-entropy whose targets do not sum to 1 (fused_delta_ok said no
        # when the trace was made).
        return (
            "(The targets of a sample do not sum to 1 here, so the familiar "
            "simplification to O_out − y does not hold; the sum above is the "
            "derivative.)"
        )

    def terms(self, p: Array, y: Array) -> Array:
        # y = 0 contributes exactly 0 (xlogy), never 0·(−inf).
        return -np.where(y != 0, y * np.log(clip(p)), 0.0)

    def mean_value(self, p: Array, y: Array) -> float:
        # Σ terms / batch with fewer passes: where y = 0, y·ln p is ±0 and adds nothing,
        # so the mask is only needed when the sum is NaN (0·ln NaN) or zero (its sign).
        t = np.log(clip(p))
        t *= y
        total = -np.add.reduce(t, axis=None)
        if total != total or total == 0:
            return super().mean_value(p, y)
        return float(total / p.shape[0])

    def mean_grad(self, p: Array, y: Array) -> Array:
        return -y / clip(p) / p.shape[0]

    def term_rule(self, p: Node, y: Node, m: Node) -> Node:
        from glassnet.mathtree import MINUS, TIMES, Func, row

        return row(MINUS, y, TIMES, Func("ln", p))

    def grad_rule(self, p: Node, y: Node, m: Node) -> Node:
        from glassnet.mathtree import MINUS, Frac, row

        return row(MINUS, Frac(y, p))

    def why(self) -> str:
        return (
            "E_k = −y_k·ln O_k and d(ln p)/dp = 1/p, so ∂E/∂O_k = −y_k/O_k; no other term "
            "contains O_k."
        )

    def torch_terms(self, torch: Any, p: Any, y: Any) -> Any:
        eps = torch.finfo(p.dtype).eps
        return -torch.xlogy(y, p.clamp(eps, 1 - eps))
