"""Loss functions: the per-output terms, the batch-mean value, and dL/dp.

Shapes: predictions ``p`` and targets ``y`` are (batch, n_out).  Every loss is
defined as ``L = (1/batch) · Σ_samples Σ_outputs terms`` — the seed's "if there are
more examples then just average everything" — so ``terms`` are exactly the
numbers a person adds up, and ``grad`` already carries the 1/batch factor.

Logs are natural logs.  The cross-entropies clip p to [eps, 1 − eps] (eps the
dtype's machine epsilon, as scikit-learn does), so the value and gradient stay
finite when p reaches 0 or 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from glassnet.errors import GlassnetError

if TYPE_CHECKING:
    from glassnet.mathtree import Node

Array = np.ndarray


def batch_mean(total: Array | float, batch: int) -> Array:
    """A sum over the batch divided by the batch size: the one place the step averages
    (the loss, and the 1/batch every loss gradient carries)."""
    return np.asarray(total) / batch


def _clip(p: Array) -> Array:
    eps = _EPS.get(p.dtype.char)
    if eps is None:
        eps = float(np.finfo(p.dtype).eps) if np.issubdtype(p.dtype, np.floating) else 1e-15
        _EPS[p.dtype.char] = eps
    # np.clip's Python wrapper costs more than the work on a few numbers; this is the
    # same min(max(p, eps), 1 − eps) in two ufunc calls.
    return np.minimum(np.maximum(p, eps), 1 - eps)


#: Machine epsilon per dtype, looked up once (np.finfo is slow to call every step).
_EPS: dict[str, float] = {}


class Loss:
    """Base class: subclasses implement ``terms`` and ``grad``."""

    name: ClassVar[str] = ""
    #: Output activations this loss is defined for (None: any).
    needs_output: ClassVar[tuple[str, ...] | None] = None
    #: True when targets must lie in [0, 1].
    probabilities: ClassVar[bool] = False
    formula: ClassVar[str] = ""
    #: For explain: what each output adds to the error, in words.
    words: ClassVar[str] = ""
    #: One output's term and dE/dp as NumPy expressions on ``p`` and ``y`` (for the
    #: notebook, which checks the trace with them; the gradient without the 1/batch).
    numpy_terms_code: ClassVar[str] = ""
    numpy_grad_code: ClassVar[str] = ""

    def terms(self, p: Array, y: Array) -> Array:
        """Per-sample, per-output terms (batch, n_out); L is their sum over the batch mean."""
        raise NotImplementedError

    def value(self, p: Array, y: Array) -> float:
        """L = Σ terms / batch."""
        return float(batch_mean(self.terms(p, y).sum(), p.shape[0]))

    def term_rule(self, p: Node, y: Node, m: Node) -> Node:
        """The term E_k of output k in symbols (``m``: the number of outputs)."""
        raise NotImplementedError

    def grad_rule(self, p: Node, y: Node, m: Node) -> Node:
        """dE_k/dp_k in symbols, for one sample (the 1/batch is written by the caller)."""
        raise NotImplementedError

    def grad(self, p: Array, y: Array) -> Array:
        """dL/dp, (batch, n_out), including the 1/batch of the mean."""
        raise NotImplementedError

    def why(self) -> str:
        """Why :meth:`grad_rule` is the derivative of :meth:`term_rule`: a short
        derivation shown folded beside its first use (each loss writes its own)."""
        return (
            "Only output k's term contains O_out k, so ∂E/∂O_out k is the derivative of that "
            "one term."
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CrossEntropy(Loss):
    """Categorical cross-entropy −Σ_k y_k log p_k, for a softmax output."""

    name = "cross_entropy"
    needs_output = ("softmax",)
    probabilities = True
    formula = r"-\sum_k y_k \ln p_k"
    words = "cross-entropy: each output adds −y ln O_out"
    numpy_terms_code = "-np.where(y != 0, y * np.log(p), 0.0)"
    numpy_grad_code = "-y / p"

    def terms(self, p: Array, y: Array) -> Array:
        # y = 0 contributes exactly 0 (xlogy), never 0·(−inf).
        return -np.where(y != 0, y * np.log(_clip(p)), 0.0)

    def value(self, p: Array, y: Array) -> float:
        # Σ terms / batch with fewer passes: where y = 0, y·ln p is ±0 and adds nothing,
        # so the mask is only needed when the sum is NaN (0·ln NaN) or zero (its sign).
        t = np.log(_clip(p))
        t *= y
        total = -np.add.reduce(t, axis=None)
        if total != total or total == 0:
            return super().value(p, y)
        return float(total / p.shape[0])

    def grad(self, p: Array, y: Array) -> Array:
        return -y / _clip(p) / p.shape[0]

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


class BinaryCrossEntropy(Loss):
    """Σ_k −(y_k log p_k + (1 − y_k) log(1 − p_k)): the seed's error, natural log."""

    name = "binary_cross_entropy"
    needs_output = ("sigmoid", "softmax")
    probabilities = True
    formula = r"-\sum_k \left[y_k \ln p_k + (1-y_k)\ln(1-p_k)\right]"
    words = (
        "binary cross-entropy (natural log): each output adds −(y ln O_out + (1 − y) ln(1 − O_out))"
    )
    numpy_terms_code = (
        "-(np.where(y != 0, y * np.log(p), 0.0) + np.where(y != 1, (1 - y) * np.log(1 - p), 0.0))"
    )
    numpy_grad_code = "-y / p + (1 - y) / (1 - p)"

    def terms(self, p: Array, y: Array) -> Array:
        pc = _clip(p)
        pos = np.where(y != 0, y * np.log(pc), 0.0)
        neg = np.where(y != 1, (1 - y) * np.log1p(-pc), 0.0)
        return -(pos + neg)

    def grad(self, p: Array, y: Array) -> Array:
        pc = _clip(p)
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


class MSE(Loss):
    """Mean over outputs of (p − y)²; each term is (p_k − y_k)²/n_out."""

    name = "mse"
    formula = r"\frac{1}{n}\sum_k (p_k - y_k)^2"
    words = "mean squared error: each output adds (O_out − y)²/m, with m the number of outputs"
    numpy_terms_code = "(p - y) ** 2 / p.shape[1]"
    numpy_grad_code = "2 * (p - y) / p.shape[1]"

    def terms(self, p: Array, y: Array) -> Array:
        return (p - y) ** 2 / p.shape[1]

    def grad(self, p: Array, y: Array) -> Array:
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


class HalfSSE(Loss):
    """½ Σ_k (y_k − p_k)², the classic textbook error."""

    name = "half_sse"
    formula = r"\frac{1}{2}\sum_k (y_k - p_k)^2"
    words = "half the sum of squared errors: each output adds ½(y − O_out)²"
    numpy_terms_code = "0.5 * (y - p) ** 2"
    numpy_grad_code = "p - y"

    def terms(self, p: Array, y: Array) -> Array:
        return 0.5 * (y - p) ** 2

    def grad(self, p: Array, y: Array) -> Array:
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


_BY_NAME: dict[str, type[Loss]] = {
    cls.name: cls for cls in (CrossEntropy, BinaryCrossEntropy, MSE, HalfSSE)
}
LOSSES: tuple[str, ...] = tuple(_BY_NAME)


def get_loss(spec: str | Loss) -> Loss:
    """A loss from its name (``"mse"``) or an instance (returned as is)."""
    if isinstance(spec, Loss):
        return spec
    cls = _BY_NAME.get(spec) if isinstance(spec, str) else None
    if cls is None:
        raise GlassnetError(f"expected one of {', '.join(LOSSES)}", got=repr(spec), field="loss")
    return cls()


def fused_delta_ok(activation: object, loss: Loss, y: Array | None) -> bool:
    """True when delta_L may be taken as (p − y)/batch: a softmax output under
    cross-entropy, and every target row summing to 1 (to a few units of rounding).

    Why: dL/dp_k = −y_k/(p_k·batch) and the softmax Jacobian p_k(δ_kj − p_j) multiply
    to (p_j·Σ_k y_k − y_j)/batch, which is (p − y)/batch exactly when Σ_k y_k = 1.  This
    one predicate decides it for training, the trace, explain and the notebook.
    """
    if getattr(activation, "name", None) != "softmax" or loss.name != "cross_entropy":
        return False
    if y is None:
        return False
    y = np.asarray(y)
    if y.size == 0:
        return True
    eps = np.finfo(y.dtype).eps if np.issubdtype(y.dtype, np.floating) else np.finfo(float).eps
    return bool(np.abs(y.sum(axis=1) - 1).max() <= 10 * y.shape[1] * eps)
