"""Binary cross-entropy Σ_k −(y_k ln p_k + (1 − y_k) ln(1 − p_k)): the seed's error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.losses.base import Array, Loss, clip, register

if TYPE_CHECKING:
    from glassnet.activations import Activation
    from glassnet.mathtree import Node


@register
class BinaryCrossEntropy(Loss):
    """Σ_k −(y_k log p_k + (1 − y_k) log(1 − p_k)): the seed's error, natural log.  Each
    output is its own yes/no probability (a sigmoid), or one of a softmax's."""

    name = "binary_cross_entropy"
    probabilities = True
    is_classification = True
    logarithmic = True
    complement_term = True
    output_words = "a sigmoid or softmax output (probabilities)"
    formula = r"-\sum_k \left[y_k \ln p_k + (1-y_k)\ln(1-p_k)\right]"
    words = (
        "binary cross-entropy (natural log): each output adds −(y ln O_out + (1 − y) ln(1 − O_out))"
    )
    # p clipped to [eps, 1 − eps] (float64's eps, 2⁻⁵²) as the engine does (see
    # cross_entropy.py)
    numpy_terms_code = (
        "-(np.where(y != 0, y * np.log(np.clip(p, 2**-52, 1 - 2**-52)), 0.0)"
        " + np.where(y != 1, (1 - y) * np.log(1 - np.clip(p, 2**-52, 1 - 2**-52)), 0.0))"
    )
    numpy_grad_code = (
        "-y / np.clip(p, 2**-52, 1 - 2**-52) + (1 - y) / (1 - np.clip(p, 2**-52, 1 - 2**-52))"
    )

    def accepts_output(self, activation: Activation) -> bool:
        # ln p and ln(1 − p) need every output in (0, 1).
        return activation.outputs_probabilities

    def default_for(self, activation: Activation) -> bool:
        return activation.output_kind == "probabilities"

    def shortcut_note(self, activation: Activation) -> str:
        if activation.output_kind != "distribution":
            return ""
        return (
            "(With categorical cross-entropy this sum would collapse to O_out − y. "
            "With binary cross-entropy on a softmax, as here, it does not: every "
            "term of the sum counts.)"
        )

    def terms(self, p: Array, y: Array) -> Array:
        pc = clip(p)
        pos = np.where(y != 0, y * np.log(pc), 0.0)
        neg = np.where(y != 1, (1 - y) * np.log1p(-pc), 0.0)
        return -(pos + neg)

    def mean_grad(self, p: Array, y: Array) -> Array:
        pc = clip(p)
        return (-y / pc + (1 - y) / (1 - pc)) / p.shape[0]

    def term_rule(self, p: Node, y: Node, m: Node) -> Node:
        from glassnet.mathtree import MINUS, PLUS, TIMES, Const, Func, Paren, row

        one = Const("1")
        return row(
            MINUS,
            Paren(
                row(
                    y, TIMES, Func("ln", p), PLUS,
                    Paren(row(one, MINUS, y)), TIMES, Func("ln", row(one, MINUS, p)),
                )
            ),
        )  # fmt: skip

    def grad_rule(self, p: Node, y: Node, m: Node) -> Node:
        from glassnet.mathtree import MINUS, PLUS, Const, Frac, row

        one = Const("1")
        return row(MINUS, Frac(y, p), PLUS, Frac(row(one, MINUS, y), row(one, MINUS, p)))

    def why(self) -> str:
        return (
            "E_k = −(y·ln p + (1 − y)·ln(1 − p)).  d(ln p)/dp = 1/p and, by the chain rule, "
            "d(ln(1 − p))/dp = −1/(1 − p); so ∂E_k/∂p = −y/p + (1 − y)/(1 − p)."
        )

    def torch_terms(self, torch: Any, p: Any, y: Any) -> Any:
        eps = torch.finfo(p.dtype).eps
        pc = p.clamp(eps, 1 - eps)
        return -(torch.xlogy(y, pc) + torch.xlogy(1 - y, 1 - pc))
