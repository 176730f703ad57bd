"""The catalogue of common hand-calculation mistakes, each an alternative rule.

A mistake is a small function with a stable id.  Most are *rules*: given the step being
computed, its inputs (the person's own earlier values where written) and the right rule
in force, they return what the mistaken rule gives, built from the same engine pieces
(the activation's forward/derivative/vjp, the loss's terms/grad, the layer's backward,
:func:`glassnet.optim.sgd_update`), or None where the mistake cannot happen.  A value is
named by a mistake only when re-running that rule on the person's numbers reproduces it
— never from a table of known answers.

A few are *checks* on the written number itself (copied from another quantity, cut off
instead of rounded).

Adding a mistake: write one function, register it with :func:`mistake`, add a test that
plants it (tests/test_check_mistakes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.layers import Dense
from glassnet.optim import sgd_update

if TYPE_CHECKING:
    from glassnet.check.steps import Evaluator, Rule
    from glassnet.check.worksheet import Key

Array = np.ndarray
RuleFn = Callable[["Evaluator", "Key", list[Array], Any, "Rule"], "Array | None"]


@dataclass(frozen=True)
class Mistake:
    """One catalogue entry.  ``kinds``: the steps it changes; ``variants``: the values
    of its parameter to try; ``wraps``: it modifies whatever rule is in force (so it
    combines with a mistake that replaces the same step)."""

    id: str
    title: str
    kinds: frozenset[str]
    rule: RuleFn | None = None
    variants: tuple[Any, ...] = (None,)
    wraps: bool = False
    #: May name a value that is only close (not equal to the digits written).
    near_ok: bool = True
    describe: Callable[[Any], str] = field(default=lambda v: "")


CATALOGUE: dict[str, Mistake] = {}


def mistake(
    id: str,
    title: str,
    kinds: Sequence[str] = (),
    *,
    variants: tuple[Any, ...] = (None,),
    wraps: bool = False,
    near_ok: bool = True,
    describe: Callable[[Any], str] | None = None,
) -> Callable[[RuleFn], RuleFn]:
    """Register a rule-mistake under a stable ``id``."""

    def deco(fn: RuleFn) -> RuleFn:
        CATALOGUE[id] = Mistake(
            id,
            title,
            frozenset(kinds),
            fn,
            variants,
            wraps,
            near_ok,
            describe or (lambda v: ""),
        )
        return fn

    return deco


def _act(ev: Evaluator, key: Key):
    return ev.ctx.act(key[1])


@mistake("log10", "log base 10 instead of the natural log", ["loss_terms"])
def _log10(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if ev.ctx.loss.name not in ("cross_entropy", "binary_cross_entropy"):
        return None
    # Every term is a multiple of ln(·); log10 = ln / ln 10.
    return base(ins) / np.log(10)


@mistake("normalize_not_softmax", "divided by the sum instead of taking the softmax", ["a"])
def _normalize(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if _act(ev, key).name != "softmax":
        return None
    z = ins[0]
    return z / z.sum(axis=1, keepdims=True)


@mistake(
    "softmax_diagonal_jacobian",
    "softmax derivative without its off-diagonal terms (dL/dz_i = dL/da_i · da_i/dz_i)",
    ["delta"],
)
def _softmax_diag(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    dL_da, J = ins
    if J.ndim != 3:
        return None
    # The engine's vjp with a per-unit (2-D) derivative is the elementwise product.
    return _act(ev, key).vjp(np.diagonal(J, axis1=1, axis2=2), dL_da)


@mistake(
    "bce_derivative_sign",
    "sign slip in the derivative of (1−y)·log(1−p): −y/p − (1−y)/(1−p)",
    ["dL_da"],
)
def _bce_sign(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[1] != ev.ctx.n_layers or ev.ctx.loss.name != "binary_cross_entropy":
        return None
    p, y = ins
    # The right gradient is (−y/p + (1−y)/(1−p))/batch; the slip flips the second term.
    return base(ins) - 2 * (1 - y) / (1 - p) / p.shape[0]


@mistake(
    "diagonal_weight_backprop",
    "dL/da of a hidden unit from one weight (W[j, j]) instead of the whole row",
    ["dL_da"],
)
def _diag_weight(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[1] == ev.ctx.n_layers:
        return None
    delta, W = ins
    if W.shape[0] != W.shape[1]:
        return None
    # The layer's own backward through a weight matrix that keeps only its diagonal.
    return (
        Dense(np.diag(np.diag(W)), np.zeros(W.shape[1]))
        .backward_from_delta(_cache(delta, W), delta)
        .dx
    )


@mistake(
    "missing_activation_derivative",
    "the activation's derivative left out (delta taken as dL/da)",
    ["delta"],
)
def _no_derivative(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    return ins[0].copy()


@mistake(
    "relu_derivative_from_output_or_wrong_side",
    "ReLU derivative taken from the output, or 1 on the wrong side of zero",
    ["da_dz"],
    variants=("output", "wrong_side"),
    describe=lambda v: (
        "the output a used as the derivative" if v == "output" else "1 for z < 0 and 0 for z > 0"
    ),
)
def _relu(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    act = _act(ev, key)
    if act.name not in ("relu", "leaky_relu"):
        return None
    z, a = ins
    return a.copy() if v == "output" else act.derivative(-z, a)


@mistake(
    "transposed_weights",
    "the weight matrix used transposed (W[j, i] for W[i, j])",
    ["z", "dL_da"],
)
def _transposed(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[0] == "z":
        x, W, b = ins
        if W.shape[0] != W.shape[1]:
            return None
        return Dense(W.T, b).pre_activation(x)
    if key[1] == ev.ctx.n_layers:
        return None
    delta, W = ins
    if W.shape[0] != W.shape[1]:
        return None
    return Dense(W.T, np.zeros(W.shape[0])).backward_from_delta(_cache(delta, W), delta).dx


@mistake("update_sign", "the gradient added instead of subtracted", ["W_new", "b_new"])
def _update_sign(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[0] == "b_new" and not ev.ctx.update_bias:
        return None
    return sgd_update(ins[0], ins[1], -ev.ctx.lr)


@mistake(
    "lr_slip",
    "the learning rate off by a power of ten",
    ["W_new", "b_new"],
    variants=(10.0, 0.1, 100.0, 0.01),
    describe=lambda f: f"learning rate × {f:g}",
)
def _lr_slip(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[0] == "b_new" and not ev.ctx.update_bias:
        return None
    return sgd_update(ins[0], ins[1], ev.ctx.lr * v)


@mistake(
    "missing_batch_mean",
    "summed over the batch instead of averaged (the 1/batch left out)",
    ["dL_da", "loss"],
)
def _batch_mean(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    batch = ev.ctx.batch
    if batch == 1:
        return None
    if key[0] == "loss":
        return base(ins) * batch
    if key[1] != ev.ctx.n_layers:
        return None
    return base(ins) * batch


@mistake(
    "bias_grad_not_summed",
    "the bias gradient not summed over the batch (one sample's delta, or their mean)",
    ["db"],
    variants=("first", "mean"),
    describe=lambda v: "the first sample's delta" if v == "first" else "the mean delta",
)
def _bias_sum(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    delta = ins[0]
    if delta.shape[0] == 1:
        return None
    return delta[0].copy() if v == "first" else base(ins) / delta.shape[0]


@mistake("double_softmax", "the softmax applied twice", ["a"])
def _double_softmax(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    act = _act(ev, key)
    if act.name != "softmax":
        return None
    return act.forward(base(ins))


@mistake(
    "activation_derivative_twice",
    "the activation's derivative applied twice (delta multiplied by da/dz again)",
    ["delta"],
    wraps=True,
)
def _twice(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    # Whatever delta rule is in force (right, or another mistake), run on its own output.
    return base([base(ins), ins[1]])


@mistake(
    "rounding",
    "right for the inputs rounded to fewer decimals than written",
    [
        "z",
        "a",
        "output",
        "loss_terms",
        "loss",
        "dL_da",
        "da_dz",
        "delta",
        "dW",
        "db",
        "W_new",
        "b_new",
    ],
    variants=(1, 2, 3, 4),
    wraps=True,
    near_ok=False,
    describe=lambda k: f"inputs rounded to {k} decimal{'s' if k != 1 else ''}",
)
def _rounding(ev: Evaluator, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    return base([np.round(i, v) for i in ins])


def _cache(delta: Array, W: Array):
    from glassnet.layers import Cache

    x = np.zeros((delta.shape[0], W.shape[0]))
    return Cache(x, delta, delta)


# -- checks on the written number itself ---------------------------------------------------

#: Ids of the checks below (they are not rules, so they have no place in an Evaluator).
CHECKS: dict[str, str] = {
    "wrong_source_value": "a value copied from another quantity",
    "truncation": "cut off instead of rounded at the last written digit",
}


def truncation(given: float, half: float, candidates: Sequence[float]) -> float | None:
    """The candidate (right or follows value) that, cut off at the written decimals
    instead of rounded, gives ``given``; None if none does."""
    # Past ~300 written decimals 10**decimals overflows; nobody truncates by hand there.
    if not 0 < half < np.inf or (decimals := round(-np.log10(2 * half))) > 300:
        return None
    scale = 10.0**decimals
    with np.errstate(over="ignore", invalid="ignore"):  # huge candidates: no match, no noise
        for c in candidates:
            cut = np.trunc(c * scale) / scale
            rounded = np.round(c, decimals)
            if abs(cut - given) <= half * 1e-6 and abs(rounded - given) > half * 1e-6:
                return float(c)
    return None


def wrong_source_value(
    given: float, half: float, sources: Sequence[tuple[str, float]]
) -> tuple[str, float] | None:
    """The first other quantity whose value at the same place equals ``given`` to the
    written digits (``sources`` are (name, value) pairs, nearest in the derivation first)."""
    tol = max(half, 1e-12 * abs(given))
    for name, value in sources:
        if abs(value - given) <= tol:
            return name, value
    return None


def all_ids() -> list[str]:
    """Every stable id: the rules, then the checks."""
    return [*CATALOGUE, *CHECKS]
