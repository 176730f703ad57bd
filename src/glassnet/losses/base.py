"""The loss base class and the registry every loss is found through.

A loss owns everything about itself, in one class (one file of this package): its
per-output terms and their gradient, the rule in symbols and in words for ``explain``,
the NumPy code a notebook checks it with, its PyTorch form for another engine, and its
**capabilities** — which outputs it accepts, whether it is the default for one, whether
its gradient through an output fuses to ``p − y``.  Nothing outside the class branches
on its name (``tests/test_plugins.py`` fails if anything does).

Shapes: predictions ``p`` and targets ``y`` are (batch, n_out); row weights ``weights``
are (batch,).  Every loss is defined as ``L = (1/batch) · Σ_samples w_s Σ_outputs terms``
(w_s = 1 without weights) — the seed's "if there are more examples then just average
everything" — so ``terms`` are exactly the numbers a person adds up, and ``grad``
already carries the 1/batch factor (and each row's weight).

Logs are natural logs.  The cross-entropies clip p to [eps, 1 − eps] (eps the dtype's
machine epsilon, as scikit-learn does), so the value and gradient stay finite when p
reaches 0 or 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from glassnet.errors import GlassnetError

if TYPE_CHECKING:
    from glassnet.activations import Activation
    from glassnet.mathtree import Node

Array = np.ndarray


def batch_mean(total: Array | float, batch: int) -> Array:
    """A sum over the batch divided by the batch size: the one place the step averages
    (the loss, and the 1/batch every loss gradient carries)."""
    return np.asarray(total) / batch


def clip(p: Array) -> Array:
    """p clipped to [eps, 1 − eps] (eps: p's machine epsilon), for the logs of the
    cross-entropies; (batch, n_out) -> (batch, n_out)."""
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
    """Base class.  Subclasses set the class attributes and implement ``terms``,
    ``mean_grad``, ``term_rule``, ``grad_rule`` and ``torch_terms``; the capability
    methods default to "any output, never the default, never fused"."""

    #: The name specs, model files and the CLI use.
    name: ClassVar[str] = ""
    #: True when targets must lie in [0, 1].
    probabilities: ClassVar[bool] = False
    #: True when the loss scores class membership (accuracy is logged beside it).
    is_classification: ClassVar[bool] = False
    #: True when every term is a multiple of a natural log (so ln → log10 scales it).
    logarithmic: ClassVar[bool] = False
    #: True when each term adds the complement (1 − y)·ln(1 − p) to y·ln p.
    complement_term: ClassVar[bool] = False
    #: The output layer this loss needs, in words, for an error message ("" for any).
    output_words: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    #: For explain: what each output adds to the error, in words.
    words: ClassVar[str] = ""
    #: One output's term and dE/dp as NumPy expressions on ``p`` and ``y`` (for the
    #: notebook, which checks the trace with them; the gradient without the 1/batch).
    numpy_terms_code: ClassVar[str] = ""
    numpy_grad_code: ClassVar[str] = ""

    # -- capabilities (what callers ask instead of comparing names) -----------------------
    def accepts_output(self, activation: Activation) -> bool:
        """True when this loss is defined for an output layer with ``activation``."""
        return True

    def default_for(self, activation: Activation) -> bool:
        """True when this is the loss an output layer with ``activation`` gets by default.
        Exactly one registered loss claims each activation (a test checks it)."""
        return False

    def fused_delta_with(self, activation: Activation) -> bool:
        """True when delta_L = dL/dz_L through ``activation`` simplifies to (p − y)/batch
        for targets whose rows sum to 1 (see :func:`fused_delta_ok`)."""
        return False

    def fused_output_kernel(self, activation: Activation) -> Any:
        """A compiled one-pass kernel for the output layer of the fast step
        (:mod:`glassnet.kernels`, numba), or None (the default: the NumPy passes run).
        Asked only where the fused delta applies (:meth:`fused_delta_with` and targets
        whose rows sum to 1, :func:`fused_delta_ok`).  When given,
        ``kernel(z, b, y, a, delta, batch) -> total``: z (m, n) holds x·W; adds b in
        place, writes a = f(z) for ``activation``, delta = (a − y)/batch and returns the
        sum over the m rows of the loss terms (the loss value times m/batch·batch: the
        caller divides by batch).  Calling this compiles (or loads from the cache)."""
        return None

    def shortcut_note(self, activation: Activation) -> str:
        """For explain, when delta_L was computed the general way: why the familiar
        ``p − y`` does not apply here ("" when there is nothing to say)."""
        return ""

    # -- the maths -------------------------------------------------------------------------
    def terms(self, p: Array, y: Array) -> Array:
        """Per-sample, per-output terms (batch, n_out); L is their sum over the batch mean."""
        raise NotImplementedError

    def mean_value(self, p: Array, y: Array) -> float:
        """L = Σ terms / batch, every row weighing 1."""
        return float(batch_mean(self.terms(p, y).sum(), p.shape[0]))

    def value(self, p: Array, y: Array, weights: Array | None = None) -> float:
        """L = Σ_s w_s Σ_k terms[s, k] / batch; ``weights`` (batch,) default all 1."""
        if weights is None:
            return self.mean_value(p, y)
        return float(batch_mean((self.terms(p, y) * weights[:, None]).sum(), p.shape[0]))

    def mean_grad(self, p: Array, y: Array) -> Array:
        """dL/dp (batch, n_out) of the unweighted batch mean (including its 1/batch)."""
        raise NotImplementedError

    def grad(self, p: Array, y: Array, weights: Array | None = None) -> Array:
        """dL/dp (batch, n_out), including the 1/batch of the mean and row s's weight w_s."""
        g = self.mean_grad(p, y)
        # Only row s's terms carry w_s, so only row s of the gradient is scaled.
        return g if weights is None else g * weights[:, None]

    # -- in symbols and words (explain) ----------------------------------------------------
    def term_rule(self, p: Node, y: Node, m: Node) -> Node:
        """The term E_k of output k in symbols (``m``: the number of outputs)."""
        raise NotImplementedError

    def grad_rule(self, p: Node, y: Node, m: Node) -> Node:
        """dE_k/dp_k in symbols, for one sample (the 1/batch is written by the caller)."""
        raise NotImplementedError

    def why(self) -> str:
        """Why :meth:`grad_rule` is the derivative of :meth:`term_rule`: a short
        derivation shown folded beside its first use (each loss writes its own)."""
        return (
            "Only output k's term contains O_out k, so ∂E/∂O_out k is the derivative of that "
            "one term."
        )

    # -- for another engine ----------------------------------------------------------------
    def torch_terms(self, torch: Any, p: Any, y: Any) -> Any:
        """:meth:`terms` on tensors (``torch`` is the module): what a PyTorch engine
        differentiates, so it never rewrites a loss by its name.  (batch, n_out)."""
        raise NotImplementedError

    def torch_value(self, torch: Any, p: Any, y: Any, weights: Any = None) -> Any:
        """:meth:`value` on tensors: Σ_s w_s Σ_k terms / batch, a 0-d tensor."""
        t = self.torch_terms(torch, p, y)
        if weights is not None:
            t = t * weights[:, None]
        return t.sum() / p.shape[0]

    def config(self) -> dict[str, Any]:
        """What rebuilds this loss (:func:`get_loss` of ``config()["name"]``); losses
        have no hyperparameters today."""
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config() == self.config()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.name))


# -- the registry -------------------------------------------------------------------------
_REGISTRY: dict[str, type[Loss]] = {}
L = TypeVar("L", bound=type[Loss])


def register(cls: L) -> L:
    """Class decorator: make ``cls`` known by its ``name`` (specs, model files, the CLI).

    A second class under a name already taken is refused: two losses answering to one
    name would make a spec mean two things."""
    if not cls.name:
        raise GlassnetError("expected a class with a name", got=cls.__name__, field="loss")
    known = _REGISTRY.get(cls.name)
    if known is not None and known is not cls:
        if (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise GlassnetError(
                "expected a name no other loss has",
                got=f"{cls.name!r} (already {known.__qualname__})",
                field="loss",
            )
    _REGISTRY[cls.name] = cls
    return cls


def names() -> tuple[str, ...]:
    """Every registered loss name."""
    return tuple(_REGISTRY)


def loss_class(name: str) -> type[Loss]:
    """The class registered under ``name``; an unknown name is an error, never a default."""
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise GlassnetError(f"expected one of {', '.join(_REGISTRY)}", got=repr(name), field="loss")
    return cls


def get_loss(spec: str | Loss) -> Loss:
    """A loss from its name (``"mse"``) or an instance (returned as is)."""
    if isinstance(spec, Loss):
        return spec
    return loss_class(spec)()


def default_loss_for(activation: Activation) -> Loss:
    """The loss an output layer with ``activation`` gets when none is named: the one
    registered loss whose :meth:`Loss.default_for` claims it."""
    for cls in _REGISTRY.values():
        loss = cls()
        if loss.default_for(activation):
            return loss
    raise GlassnetError(
        "expected a loss that is the default for this output",
        got=activation.describe(),
        field="loss",
    )


def fused_delta_ok(activation: Activation, loss: Loss, y: Array | None) -> bool:
    """True when delta_L may be taken as (p − y)/batch: the loss says its gradient fuses
    through this output (:meth:`Loss.fused_delta_with`; cross-entropy through a softmax)
    and every target row sums to 1 (to a few units of rounding).  This one predicate
    decides it for training, the trace, explain and the notebook."""
    if y is None or not loss.fused_delta_with(activation):
        return False
    y = np.asarray(y)
    if y.size == 0:
        return True
    eps = np.finfo(y.dtype).eps if np.issubdtype(y.dtype, np.floating) else np.finfo(float).eps
    return bool(np.abs(y.sum(axis=1) - 1).max() <= 10 * y.shape[1] * eps)
