"""Half the sum of squared errors, ½ Σ_k (y_k − p_k)²: the classic textbook error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glassnet.losses.base import Array, Loss, register

if TYPE_CHECKING:
    from glassnet.mathtree import Node


@register
class HalfSSE(Loss):
    """½ Σ_k (y_k − p_k)², the classic textbook error (never a default: named in a spec)."""

    name = "half_sse"
    formula = r"\frac{1}{2}\sum_k (y_k - p_k)^2"
    words = "half the sum of squared errors: each output adds ½(y − O_out)²"
    numpy_terms_code = "0.5 * (y - p) ** 2"
    numpy_grad_code = "p - y"

    def terms(self, p: Array, y: Array) -> Array:
        return 0.5 * (y - p) ** 2

    def mean_grad(self, p: Array, y: Array) -> Array:
        return (p - y) / p.shape[0]

    def term_rule(self, p: Node, y: Node, m: Node) -> Node:
        from glassnet.mathtree import MINUS, TIMES, Const, Frac, Paren, Pow, row

        return row(Frac(Const("1"), Const("2")), TIMES, Pow(Paren(row(y, MINUS, p)), "2"))

    def grad_rule(self, p: Node, y: Node, m: Node) -> Node:
        from glassnet.mathtree import MINUS, Paren, row

        return Paren(row(p, MINUS, y))

    def why(self) -> str:
        return (
            "E_k = ½(y − p)².  The chain rule: ½·2(y − p)·(−1) = p − y (the ½ is there to "
            "cancel the 2)."
        )

    def torch_terms(self, torch: Any, p: Any, y: Any) -> Any:
        return 0.5 * (y - p) ** 2
