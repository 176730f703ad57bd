"""A person's working of the step, evaluated by the engine's step graph.

The checker never does the maths its own way, nor evaluates the step its own way: every
quantity is computed by :meth:`glassnet.step.StepGraph.evaluate`, the graph's one
evaluator — with the person's values ``given`` where they wrote them (so a value
"follows" when the right rule applied to the person's own earlier numbers gives it) and
the mistakes of the catalogue (:mod:`glassnet.check.mistakes`) swapped in as alternative
``rules``.  :class:`Working` only says which values and which rules: it is the adapter
between a worksheet's vocabulary (``output``, a softmax Jacobian written as its
diagonal, a mistake named on purpose) and the graph's.

``output`` is another name of a_L (:func:`glassnet.step.canonical`): a written ``output``
feeds the error and dE/da_L exactly as a written a_L does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from glassnet.check.mistakes import Mistake, Rule
from glassnet.check.quantities import Context, Key, inputs_of, order
from glassnet.step import LEAVES

Array = np.ndarray

__all__ = [
    "LEAVES",
    "Context",
    "Working",
    "correct_rule",
    "inputs_of",
    "order",
    "propagate",
    "upstream_given",
]


def correct_rule(ctx: Context, key: Key, ins: Sequence[Array]) -> Array:
    """The right way to compute ``key`` from its inputs: the step graph's rule (and for
    ``output``, a_L's other name, a copy of a_L)."""
    if key[0] == "output":
        return np.array(ins[0], copy=True)
    return ctx.graph.compute(key, ins)


class Working:
    """Values of one step: the person's where ``given`` has them, otherwise computed
    from the inputs by the step graph with the right rule, or with ``mistakes`` swapped
    in.  ``used`` collects the ids of the mistakes that changed a value on the way.

    ``diagonal`` lists softmax Jacobians the person wrote as their diagonal: the full
    Jacobian then takes the person's diagonal and the engine's off-diagonal terms (from
    the person's own z and a) — an alternative rule for that node, not a given value.
    """

    def __init__(
        self,
        ctx: Context,
        given: Mapping[Key, Array],
        *,
        diagonal: Iterable[Key] = (),
        mistakes: Sequence[tuple[Mistake, Any]] = (),
    ) -> None:
        self.ctx = ctx
        self.given = given
        self.diagonal = frozenset(diagonal)
        # Rules that replace a step first, then those that wrap whatever rule is in force.
        self.mistakes = sorted(mistakes, key=lambda mv: mv[0].wraps)
        self.memo: dict[Key, Array] = {}
        self.used: set[str] = set()
        self._a_L: Key = ("a", ctx.n_layers)

    def value(self, key: Key) -> Array:
        """``key`` as the person has it: written, or computed from what they wrote."""
        if key not in self.memo:
            self.memo[key] = self._value(key)
        return self.memo[key]

    def _value(self, key: Key) -> Array:
        out: Key = ("output", 0)
        # a_L and output are one node: whichever name the person wrote stands for both.
        if key not in self.given and key in (out, self._a_L):
            other = self._a_L if key == out else out
            if other in self.given:
                return self.value(other)
        if key in self.given:
            if key in self.diagonal:
                return self._evaluate(key, self._diagonal_rule(key))
            return np.asarray(self.given[key], dtype=np.float64)
        if self.ctx.is_leaf(key):
            return self.ctx.right[key]
        return self.compute(key)

    def compute(self, key: Key) -> Array:
        """``key`` from its inputs (ignoring any given value of ``key`` itself)."""
        if key[0] == "output":
            if self._a_L not in self.given:
                # Recomputing output is recomputing a_L (not reading the output written).
                return self.compute(self._a_L)
            # The graph has no node "output": its rule is a copy of the written a_L.
            rule = self._rule(key) or (lambda ins: correct_rule(self.ctx, key, ins))
            return rule([self.value(self._a_L)])
        return self._evaluate(key, self._rule(key))

    # -- what the step graph is given ---------------------------------------------------
    def _evaluate(self, key: Key, rule: Rule | None) -> Array:
        """The step graph evaluated up to ``key`` (computed by ``rule``, or the right
        one), with the person's values and the rules in force on the way."""
        given = self._given_nodes(key)
        rules: dict[Key, Rule] = {}
        for k in self._diagonal_nodes(key):
            rules[k] = self._diagonal_rule(k)
        for k in self._computed_upstream(key, given):
            # upstream, a mistake keeps the node's shape (a z on another grid of
            # windows is named where it is written, not fed to layers that cannot
            # read it)
            r = self._rule(k, keep_shape=True)
            if r is not None:
                rules[k] = r
        if rule is not None:
            rules[key] = rule
        values = self.ctx.graph.evaluate(self.ctx.right, given=given, rules=rules, upto=key)
        return values[key]

    def _given_nodes(self, key: Key) -> dict[Key, Array]:
        """The written values as the graph's nodes (``output`` is a_L), but not ``key``
        (it is being computed) nor a diagonal (a rule, see :meth:`_diagonal_rule`)."""
        given = {
            k: np.asarray(v, dtype=np.float64)
            for k, v in self.given.items()
            if k != key and k[0] != "output" and k not in self.diagonal
        }
        written = self.given.get(("output", 0))
        if written is not None and self._a_L not in self.given and key != self._a_L:
            given[self._a_L] = np.asarray(written, dtype=np.float64)
        return given

    def _diagonal_nodes(self, key: Key) -> list[Key]:
        return [k for k in self.diagonal if k in self.given and k != key]

    def _computed_upstream(self, key: Key, given: Mapping[Key, Array]) -> set[Key]:
        """The nodes ``key`` is computed from through values not written: only these run
        a mistaken rule, so a mistake is "used" only where it can reach ``key``."""
        found: set[Key] = set()
        stack = list(inputs_of(key, self.ctx.graph))
        while stack:
            k = stack.pop()
            if k in found or k in given or self.ctx.is_leaf(k):
                continue
            if k not in self.diagonal or k not in self.given:
                found.add(k)  # a written diagonal runs its own rule, no mistake
            stack.extend(inputs_of(k, self.ctx.graph))
        return found

    def _diagonal_rule(self, key: Key) -> Rule:
        diag = np.asarray(self.given[key], dtype=np.float64)

        def rule(ins: Sequence[Array]) -> Array:
            J = correct_rule(self.ctx, key, ins).copy()
            idx = np.arange(J.shape[1])
            J[:, idx, idx] = diag
            return J

        return rule

    def _rule(self, key: Key, *, keep_shape: bool = False) -> Rule | None:
        """The mistakes in force for ``key``, wrapped round the right rule (None: the
        right rule alone, which the graph applies itself)."""
        # The catalogue's rules are written for dense layers under plain gradient
        # descent; a plugin's own mistakes bind to the exact nodes they name.
        applies = self.ctx.catalogue_applies(key)
        chain = [(m, v) for m, v in self.mistakes if key[0] in m.kinds and (m.plugin or applies)]
        if not chain:
            return None

        def correct(ins: Sequence[Array]) -> Array:
            return correct_rule(self.ctx, key, ins)

        rule: Rule = correct
        for mistake, variant in chain:
            rule = self._bind(mistake, variant, key, rule, keep_shape)
        return rule

    def _bind(
        self, mistake: Mistake, variant: Any, key: Key, base: Rule, keep_shape: bool = False
    ) -> Rule:
        alternative = mistake.rule
        if alternative is None:  # a check on a written number, never a rule in force
            raise ValueError(f"{mistake.id} is not a rule")

        def rule(ins: Sequence[Array]) -> Array:
            alt = alternative(self, key, list(ins), variant, base)
            if alt is None:
                return base(ins)
            alt = np.asarray(alt, dtype=np.float64)
            ref = base(ins)
            if keep_shape and alt.shape != ref.shape:
                return ref
            if alt.shape != ref.shape or not np.array_equal(alt, ref):
                self.used.add(mistake.id)
            return alt

        return rule


def upstream_given(ctx: Context, given: Mapping[Key, Array], target: Key) -> list[Key]:
    """The given quantities ``target`` is computed from, through unwritten steps only."""
    found: list[Key] = []
    seen: set[Key] = set()
    stack = list(inputs_of(target, ctx.graph))
    while stack:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        if k in given:
            found.append(k)
        elif not ctx.is_leaf(k):
            stack.extend(inputs_of(k, ctx.graph))
    return found


def propagate(
    ctx: Context,
    given: Mapping[Key, Array],
    diagonal: Iterable[Key],
    target: Key,
    spread: Mapping[Key, Array],
    mistakes: Sequence[tuple[Mistake, Any]] = (),
) -> Array:
    """How far ``target`` (recomputed from ``given``) can move when each upstream given
    number moves by its ``spread`` (e.g. half a unit in its last written place): the sum
    over those numbers of |change|, each moved alone — a first-order bound on the
    rounding carried into this step.  With ``mistakes``, through the mistaken rules."""
    diagonal = frozenset(diagonal)

    def run(g: Mapping[Key, Array]) -> Array:
        ev = Working(ctx, g, diagonal=diagonal, mistakes=mistakes)
        return ev.compute(target) if not ctx.is_leaf(target) else ev.value(target)

    given = {k: v for k, v in given.items() if k != target}
    base = run(given)
    total = np.zeros_like(base)
    for k in upstream_given(ctx, given, target):
        s = spread.get(k)
        if s is None:
            continue
        s = np.broadcast_to(s, np.shape(given[k]))
        for idx in np.ndindex(s.shape):
            if s[idx] == 0:
                continue
            moved = dict(given)
            v = np.array(given[k], dtype=np.float64, copy=True)
            v[idx] += s[idx]
            moved[k] = v
            total += np.abs(run(moved) - base)
    return total
