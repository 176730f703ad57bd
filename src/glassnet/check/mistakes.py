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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from glassnet.activations import Activation
from glassnet.check.quantities import Context, Key
from glassnet.layers import input_grad, linear
from glassnet.optim import sgd_update

Array = np.ndarray
#: A rule of the step: its inputs' values -> its value (as :data:`glassnet.step.Rule`).
Rule = Callable[[Sequence[Array]], Array]


class Worked(Protocol):
    """What a mistaken rule may read besides its inputs: the worksheet's context and
    any other value of the step as the person worked it (the evaluator in
    :mod:`glassnet.check.steps` is one; declared here so the catalogue needs nothing
    from the module that runs it)."""

    @property
    def ctx(self) -> Context: ...

    def value(self, key: Key) -> Array: ...


RuleFn = Callable[[Worked, Key, list[Array], Any, Rule], "Array | None"]


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
    #: Declared by one of the step's plugins (a layer's or the optimiser's own rule),
    #: not by this catalogue, whose rules are written for dense layers under plain
    #: gradient descent.
    plugin: bool = False


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


def _act(ev: Worked, key: Key) -> Activation:
    return ev.ctx.act(key[1])


@mistake("log10", "log base 10 instead of the natural log", ["loss_terms"])
def _log10(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if not ev.ctx.loss.logarithmic:
        return None
    # Every term is a multiple of ln(·); log10 = ln / ln 10.
    return base(ins) / np.log(10)


@mistake("normalize_not_softmax", "divided by the sum instead of taking the softmax", ["a"])
def _normalize(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if not _act(ev, key).exp_normalised:
        return None
    z = ins[0]
    return z / z.sum(axis=1, keepdims=True)


@mistake(
    "softmax_diagonal_jacobian",
    "softmax derivative without its off-diagonal terms (dL/dz_i = dL/da_i · da_i/dz_i)",
    ["delta"],
)
def _softmax_diag(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
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
def _bce_sign(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[1] != ev.ctx.n_layers or not ev.ctx.loss.complement_term:
        return None
    p, y = ins
    # The right gradient is (−y/p + (1−y)/(1−p))/batch; the slip flips the second term.
    return base(ins) - 2 * (1 - y) / (1 - p) / p.shape[0]


@mistake(
    "diagonal_weight_backprop",
    "dL/da of a hidden unit from one weight (W[j, j]) instead of the whole row",
    ["dL_da"],
)
def _diag_weight(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[1] == ev.ctx.n_layers:
        return None
    delta, W = ins
    if W.shape[0] != W.shape[1]:
        return None
    # The layer's own backward rule through a weight matrix that keeps only its diagonal.
    return input_grad(delta, np.diag(np.diag(W)))


@mistake(
    "missing_activation_derivative",
    "the activation's derivative left out (delta taken as dL/da)",
    ["delta"],
)
def _no_derivative(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
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
def _relu(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    act = _act(ev, key)
    if not act.elementwise:
        return None
    z, a = ins
    if v == "wrong_side":
        # Any activation whose derivative reads the side of zero (ReLU, leaky ReLU, a new
        # piecewise one); for the others it changes nothing and is never named.
        return act.derivative(-z, a)
    if not act.piecewise_linear:
        return None
    return a.copy()


@mistake(
    "transposed_weights",
    "the weight matrix used transposed (W[j, i] for W[i, j])",
    ["z", "dL_da"],
)
def _transposed(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[0] == "z":
        x, W, b = ins
        if W.shape[0] != W.shape[1]:
            return None
        return linear(x, W.T, b)
    if key[1] == ev.ctx.n_layers:
        return None
    delta, W = ins
    if W.shape[0] != W.shape[1]:
        return None
    return input_grad(delta, W.T)


@mistake("update_sign", "the gradient added instead of subtracted", ["W_new", "b_new"])
def _update_sign(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
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
def _lr_slip(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[0] == "b_new" and not ev.ctx.update_bias:
        return None
    return sgd_update(ins[0], ins[1], ev.ctx.lr * v)


@mistake(
    "missing_batch_mean",
    "summed over the batch instead of averaged (the 1/batch left out)",
    ["dL_da", "loss"],
)
def _batch_mean(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
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
def _bias_sum(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    delta = ins[0]
    if delta.shape[0] == 1:
        return None
    return delta[0].copy() if v == "first" else base(ins) / delta.shape[0]


@mistake("double_softmax", "the softmax applied twice", ["a"])
def _double_softmax(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    act = _act(ev, key)
    if not act.exp_normalised:
        return None
    return act.forward(base(ins))


@mistake(
    "activation_derivative_twice",
    "the activation's derivative applied twice (delta multiplied by da/dz again)",
    ["delta"],
    wraps=True,
)
def _twice(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
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
def _rounding(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    return base([np.round(i, v) for i in ins])


@mistake("bias_omitted", "the bias left out (z = x·W without + b)", ["z"])
def _bias_omitted(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    x, W, b = ins
    return base([x, W, np.zeros_like(b)])


@mistake(
    "derivative_of_wrong_quantity",
    "the activation's derivative formula applied to the wrong quantity",
    ["da_dz"],
    variants=("z_as_a", "a_as_z"),
    describe=lambda v: (
        "the formula in terms of the output fed z (e.g. z(1−z) for a(1−a))"
        if v == "z_as_a"
        else "the derivative taken at a instead of z (e.g. σ(a)(1−σ(a)))"
    ),
)
def _derivative_wrong(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    act = _act(ev, key)
    if not act.elementwise:
        return None
    z, a = ins
    # The activation's own derivative(z, a): whichever argument its formula reads gets the
    # wrong quantity (an activation whose derivative does not read it is unchanged).
    if v == "z_as_a":
        return base([z, z])
    return base([a, act.forward(a)])


@mistake(
    "updated_weights_in_backprop",
    "dL/da sent back through the already-updated weights W_new of the next layer",
    ["dL_da"],
)
def _updated_weights(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[1] == ev.ctx.n_layers:
        return None
    delta, _W = ins
    if not ev.ctx.graph.has(("W_new", key[1] + 1)):
        return None
    return base([delta, ev.value(("W_new", key[1] + 1))])


@mistake(
    "loss_factor_slip",
    "the loss derivative with a constant factor missing or doubled",
    ["dL_da"],
    variants=("times_2", "half", "times_n_out", "over_n_out"),
    describe=lambda v: {
        "times_2": "twice the derivative (e.g. 2(p−y) for ½Σ(p−y)²)",
        "half": "half the derivative (e.g. (p−y) for (p−y)²)",
        "times_n_out": "the 1/n_out of a mean over outputs left out",
        "over_n_out": "divided by n_out once too often",
    }[v],
)
def _loss_factor(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[1] != ev.ctx.n_layers:
        return None
    n_out = ins[0].shape[1]
    factor = {"times_2": 2.0, "half": 0.5, "times_n_out": n_out, "over_n_out": 1 / n_out}[v]
    if factor == 1 or (v in ("times_n_out", "over_n_out") and n_out == 2):
        return None  # n_out = 1 changes nothing; n_out = 2 is the ×2 / ½ variant
    return base(ins) * factor


@mistake(
    "squared_error_sign",
    "the error taken as y − p instead of p − y in the loss derivative",
    ["dL_da"],
)
def _se_sign(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[1] != ev.ctx.n_layers:
        return None
    p, y = ins
    loss = ev.ctx.loss
    # Only for losses of the difference p − y (swapping p and y flips the gradient's sign):
    # asked of the loss itself, so a new loss of that kind gets the rule too.
    if not np.allclose(loss.grad(p, y), -loss.grad(y, p)):
        return None
    return -base(ins)


@mistake(
    "output_error_as_dL_da",
    "dL/da of the output written as p − y (the fused softmax/sigmoid shortcut for dL/dz)",
    ["dL_da"],
)
def _p_minus_y(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[1] != ev.ctx.n_layers:
        return None
    p, y = ins
    return (p - y) / p.shape[0]


@mistake(
    "transposed_gradient",
    "the weight gradient computed as deltaᵀ·x instead of xᵀ·delta (transposed)",
    ["dW"],
)
def _transposed_grad(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    g = base(ins)
    if g.shape[0] != g.shape[1]:
        return None  # a non-square one has the wrong shape: marked where it is read
    return g.T.copy()


@mistake(
    "pre_activation_for_activation",
    "the previous layer's z used where its activation a belongs",
    ["z", "dW"],
)
def _z_for_a(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[1] == 1 or not ev.ctx.graph.has(("z", key[1] - 1)):
        return None  # the first layer, or one after a layer without z (a flatten)
    z_prev = ev.value(("z", key[1] - 1))
    return base([z_prev, *ins[1:]])


@mistake(
    "update_applied_twice",
    "the update applied twice (W − 2·lr·dW)",
    ["W_new", "b_new"],
)
def _twice_update(ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule) -> Array | None:
    if key[0] == "b_new" and not ev.ctx.update_bias:
        return None
    return base([base(ins), ins[1]])


# -- checks on the written number itself ---------------------------------------------------

#: Ids of the checks below (they are not rules, so they are never put in force as rules).
CHECKS: dict[str, str] = {
    "wrong_source_value": "a value copied from another quantity",
    "truncation": "cut off instead of rounded at the last written digit",
    "digit_swap": "two adjacent digits exchanged when copying a number",
    "written_transposed": "a matrix written transposed (rows for columns)",
}


def plugin_mistakes(ctx: Context) -> list[Mistake]:
    """The mistakes the step's own plugins declare (:meth:`Context.plugin_alternatives`)
    as catalogue entries: each replaces exactly the nodes it names (layer included) with
    its wrong rule, so it is named only where re-running it on the person's numbers
    reproduces what they wrote — like every rule of the catalogue.

    A node's wrong rule may come as variants by name (a convolution's stride + 1 or
    − 1): each is tried on its own, like a catalogue rule's variants, and described by
    its name."""
    out = []
    for name, rules in ctx.plugin_alternatives().items():
        labels: list[str] = []
        for wrong in rules.values():
            if isinstance(wrong, Mapping):
                labels += [label for label in wrong if label not in labels]

        def rule(
            ev: Worked, key: Key, ins: list[Array], v: Any, base: Rule, rules: Any = rules
        ) -> Array | None:
            wrong = rules.get(key)
            if isinstance(wrong, Mapping):
                wrong = wrong.get(v)  # a variant this node does not have: not in force
            return None if wrong is None else wrong(ins)

        title = name.replace("_", " ")
        out.append(
            Mistake(
                name,
                title,
                frozenset(k[0] for k in rules),
                rule,
                variants=tuple(labels) or (None,),
                describe=lambda v: v or "",
                plugin=True,
            )
        )
    return out


def truncation(given: float, half: float, candidates: Sequence[float]) -> float | None:
    """The candidate (the right rule on the person's own values) that, cut off at the
    written decimals instead of rounded, gives ``given``; None if none does."""
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
    given: float, half: float, sources: Sequence[tuple[str, float, float]]
) -> tuple[str, float] | None:
    """The first other quantity whose written value at the same place equals ``given``
    (``sources``: (name, value, its half unit), nearest in the derivation first).  Equal
    means equal as written: within the finer of the two half units, not loosely."""
    for name, value, s_half in sources:
        tol = max(min(half, s_half), 1e-12 * max(1.0, abs(given)))
        if abs(value - given) <= tol * (1 + 1e-9):
            return name, value
    return None


def decimals(half: float) -> int | None:
    """The decimals a half unit stands for (0.005 -> 2), None if not a plain place."""
    if not 0 < half < np.inf:
        return None
    d = round(-np.log10(2 * half))
    return d if 0 <= d <= 300 and abs(0.5 * 10.0**-d - half) <= 1e-9 * half else None


def plain_text(v: float, places: int | None = None) -> str:
    """A number as a person writes it: ``places`` decimals, or the fewest (≤ 12) that
    give it back exactly."""
    if places is None:
        for places in range(13):
            if float(f"{v:.{places}f}") == v:
                break
    return f"{v:.{places}f}"


def digit_swaps(text: str) -> list[float]:
    """Every number made by exchanging two adjacent, different digits of ``text``."""
    out = []
    for i in range(len(text) - 1):
        a, b = text[i], text[i + 1]
        if a.isdigit() and b.isdigit() and a != b:
            swapped = text[:i] + b + a + text[i + 2 :]
            out.append(float(swapped))
    return out


def digit_swap(given: float, half: float, candidates: Sequence[float]) -> float | None:
    """The candidate that, written to the given's decimals with two adjacent digits
    exchanged, is ``given``; None if none is."""
    d = decimals(half)
    if d is None:
        return None
    for c in candidates:
        if not np.isfinite(c):
            continue
        for s in digit_swaps(plain_text(c, d)):
            if abs(s - given) <= half * 1e-6:
                return float(c)
    return None


def title_of(mistake_id: str) -> str:
    """The one-line title of a catalogue id, a check's, or a pair ``a+b`` (a plugin's
    own mistake: its name in words)."""
    parts = []
    for one in mistake_id.split("+"):
        if one in CATALOGUE:
            parts.append(CATALOGUE[one].title)
        elif one in CHECKS:
            parts.append(CHECKS[one])
        else:
            parts.append(one.replace("_", " "))
    return " + ".join(parts)


def all_ids() -> list[str]:
    """Every stable id: the rules, then the checks."""
    return [*CATALOGUE, *CHECKS]
