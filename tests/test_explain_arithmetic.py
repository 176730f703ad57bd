"""Every derivation on an explain page is arithmetic that holds: each "rule with the
numbers put in" line, evaluated from the numbers as printed (tests/_explain_arith.py,
plain interval arithmetic sharing no code with glassnet), reaches the result printed
beside it at the page's precision — for the seed and random networks of every
activation and loss."""

from __future__ import annotations

import pytest
from _explain_arith import Precision, Unevaluable, holds

import glassnet as gn
from glassnet.explain import derive
from glassnet.mathtree import tex

from helpers import COMBOS, HIDDEN, random_trace


def _check(trace, digits: int, **options) -> int:
    """Assert every Calculation holds; the number of lines checked."""
    doc = derive(trace, digits=digits, **options).document
    prec = Precision(digits, doc.round_to)
    checked, bad = 0, []
    for calc in doc.calculations():
        for line in (calc.subst, *calc.steps):
            try:
                ok, why = holds(line, calc.result, prec)
            except Unevaluable:
                continue
            checked += 1
            if not ok:
                bad.append(f"{tex(calc.lhs)} = {tex(line)} = {tex(calc.result)}: {why}")
    assert not bad, "\n".join(bad[:5])
    return checked


@pytest.mark.parametrize("digits", [3, 4, 6])
def test_seed(digits: int) -> None:
    assert _check(gn.load_spec("seed").trace(), digits) > 40


@pytest.mark.parametrize("round_to", [2, 3, 4])
def test_seed_hand_mode(round_to: int) -> None:
    assert _check(gn.load_spec("seed").trace(round_to=round_to), 4) > 40


@pytest.mark.parametrize(("loss", "out"), COMBOS)
@pytest.mark.parametrize("batch", [1, 2])
def test_random_networks(loss: str, out: str, batch: int) -> None:
    for k, hidden in enumerate(HIDDEN):
        trace = random_trace(hidden, out, loss, batch, seed=10 * k + batch)
        assert _check(trace, 4, max_units=6, max_samples=batch) > 10


@pytest.mark.parametrize(("loss", "out"), COMBOS[::3])
def test_random_networks_hand_mode(loss: str, out: str) -> None:
    for k, hidden in enumerate(HIDDEN):
        trace = random_trace(hidden, out, loss, 2, seed=k, round_to=4)
        assert _check(trace, 4, max_units=6, max_samples=2) > 10
