"""Mean squared error: the mean over outputs of (p − y)²."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glassnet.losses.base import Array, Loss, register

if TYPE_CHECKING:
    from glassnet.activations import Activation
    from glassnet.mathtree import Node


@register
class MSE(Loss):
    """Mean over outputs of (p − y)²; each term is (p_k − y_k)²/n_out."""

    name = "mse"
    formula = r"\frac{1}{n}\sum_k (p_k - y_k)^2"
    words = "mean squared error: each output adds (O_out − y)²/m, with m the number of outputs"
    numpy_terms_code = "(p - y) ** 2 / p.shape[1]"
    numpy_grad_code = "2 * (p - y) / p.shape[1]"

    def default_for(self, activation: Activation) -> bool:
        # The regression default: every output that is not a probability.
        return not activation.outputs_probabilities

    def terms(self, p: Array, y: Array) -> Array:
        return (p - y) ** 2 / p.shape[1]

    def mean_grad(self, p: Array, y: Array) -> Array:
        return 2 * (p - y) / (p.shape[1] * p.shape[0])

    def term_rule(self, p: Node, y: Node, m: Node) -> Node:
        from glassnet.mathtree import MINUS, Frac, Paren, Pow, row

        return Frac(Pow(Paren(row(p, MINUS, y)), "2"), m)

    def grad_rule(self, p: Node, y: Node, m: Node) -> Node:
        from glassnet.mathtree import MINUS, TIMES, Const, Frac, Paren, row

        return row(Frac(Const("2"), m), TIMES, Paren(row(p, MINUS, y)))

    def why(self) -> str:
        return (
            "E_k = (p − y)²/m.  The chain rule: 2(p − y)·1/m = (2/m)(p − y); no other term "
            "contains p."
        )

    def torch_terms(self, torch: Any, p: Any, y: Any) -> Any:
        return (p - y) ** 2 / p.shape[1]
