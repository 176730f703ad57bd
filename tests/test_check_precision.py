"""Marking at every precision: a sheet worked right and written to d decimals (d = 1..6,
whole numbers written as integers, ties rounded half up) is all ok; one changed number is
wrong and everything the person then worked from it follows.  The sheets come from plain
NumPy (tests/check_reference.py), never from glassnet."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassnet.check import check, parse_worksheet

from check_reference import (
    LR,
    random_network,
    reference_step,
    round_half_up,
    sheet_text,
    student_step,
)

CONFIGS = [
    (("sigmoid", "sigmoid"), "binary_cross_entropy"),
    (("relu", "identity"), "half_sse"),
    (("tanh", "softmax"), "cross_entropy"),
    (("leaky_relu", "identity"), "mse"),
]


def _tie_network(seed: int):
    """Inputs 0.5 and two-decimal weights: x·W has three decimals, often ending in 5 — a
    tie at two decimals (0.5 · 0.27 = 0.135)."""
    Ws, bs, x, y = random_network(seed)
    rng = np.random.default_rng(seed + 1000)
    Ws = [np.round(rng.uniform(-1, 1, W.shape), 2) for W in Ws]
    return Ws, bs, np.full_like(x, 0.5), y


@pytest.mark.parametrize("digits", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize(("acts", "loss"), CONFIGS)
@pytest.mark.parametrize("ties", [False, True])
def test_right_sheet_at_any_precision_is_all_ok(digits, acts, loss, ties):
    for seed in range(2):
        net = _tie_network(seed) if ties else random_network(seed)
        Ws, bs, x, y = net
        if acts[1] == "softmax":
            Ws[1], bs[1] = np.abs(Ws[1]) + 0.1, np.abs(bs[1])
        # The exact trace, each number rounded as a person rounds.
        exact = reference_step(Ws, bs, list(acts), x, y, loss, LR)
        written = {k: round_half_up(v, digits) for k, v in exact.items()}
        text = sheet_text(Ws, bs, acts, x, y, loss, written, digits, ints=True)
        report = check(parse_worksheet(text, "right.toml"))
        bad = [e for e in report.entries if e.verdict != "ok"]
        assert not bad, (digits, bad[:3])
        # ... and the same worked by hand, each step from the person's own rounded numbers.
        own = student_step(Ws, bs, list(acts), x, y, loss, LR, digits)
        text = sheet_text(Ws, bs, acts, x, y, loss, own, digits, ints=True)
        report = check(parse_worksheet(text, "own.toml"))
        bad = [e for e in report.entries if e.verdict != "ok"]
        assert not bad, (digits, bad[:3])


def test_ties_do_occur():
    """The tie networks above really write ties: some z1 at two decimals is x.xx5."""
    found = 0
    for seed in range(2):
        Ws, bs, x, _y = _tie_network(seed)
        z = (x @ Ws[0] + bs[0]) * 1000
        found += int(np.sum(np.isclose(np.abs(np.round(z)) % 10, 5) & np.isclose(z, np.round(z))))
    assert found > 0


DOWNSTREAM = {
    # name -> every name the student computes from it (directly or not), in this network
    "z1": ["a1", "z2", "a2", "loss_terms", "loss", "dL_da2", "da2_dz2", "delta2", "dW2",
           "db2", "W2_new", "b2_new", "dL_da1", "da1_dz1", "delta1", "dW1", "db1", "W1_new",
           "b1_new"],
    "a2": ["loss_terms", "loss", "dL_da2", "da2_dz2", "delta2", "dW2", "db2", "W2_new",
           "b2_new", "dL_da1", "delta1", "dW1", "db1", "W1_new", "b1_new"],
    "delta2": ["dW2", "db2", "W2_new", "b2_new", "dL_da1", "delta1", "dW1", "db1", "W1_new",
               "b1_new"],
    "dL_da1": ["delta1", "dW1", "db1", "W1_new", "b1_new"],
    "dW1": ["W1_new"],
}  # fmt: skip


@pytest.mark.parametrize("digits", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("name", list(DOWNSTREAM))
@pytest.mark.parametrize(
    ("acts", "loss"),
    # (no log loss: at one decimal a written probability of 1.0 makes it infinite)
    [(("sigmoid", "sigmoid"), "half_sse"), CONFIGS[1], CONFIGS[3]],
)
def test_one_changed_number_is_wrong_and_what_follows_from_it_follows(digits, name, acts, loss):
    Ws, bs, x, y = random_network(7)
    acts = list(acts)
    right = student_step(Ws, bs, acts, x, y, loss, LR, digits)
    idx = (0, 0) if right[name].ndim == 2 else (0,)
    bump = max(0.3, 40 * 10.0**-digits)
    changed = right[name].copy()
    # (towards 0.5 for a probability, so a log loss stays defined)
    changed[idx] += -bump if name == "a2" and changed[idx] > 0.5 else bump
    own = student_step(Ws, bs, acts, x, y, loss, LR, digits, slips={name: lambda v: changed})
    report = check(parse_worksheet(sheet_text(Ws, bs, acts, x, y, loss, own, digits), "c"))
    unit = 10.0**-digits
    moved_any = False
    for e in report.entries:
        shape = np.shape(own[e.name])
        full = (0, *e.index) if len(e.index) < len(shape) else e.index
        if e.name == name:
            expect = "wrong" if full == idx else "ok"
            assert e.verdict == expect, e
        elif e.name in DOWNSTREAM[name]:
            assert e.verdict in ("ok", "follows"), e
            moved = abs(own[e.name][full] - right[e.name][full])
            if moved > 3 * unit and e.verdict == "ok":
                # ok only where the band (the rounding carried here) covers the move
                assert abs(e.given - e.expected) <= e.tolerance * (1 + 1e-9), e
            if e.verdict == "follows":
                assert "marked using your" in e.explanation
        else:
            assert e.verdict == "ok", e
    if moved_any:  # (a dead ReLU unit carries nothing on)
        assert any(e.verdict == "follows" for e in report.entries if e.name in DOWNSTREAM[name])


# -- the same as a property (hypothesis): any network, any precision ------------------------
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    digits=st.integers(1, 6),
    config=st.sampled_from(CONFIGS),
    ties=st.booleans(),
    change=st.sampled_from([None, *DOWNSTREAM]),
)
def test_property_right_sheets_ok_and_one_change_wrong(seed, digits, config, ties, change):
    acts, loss = config
    Ws, bs, x, y = _tie_network(seed) if ties else random_network(seed)
    if acts[1] == "softmax":
        Ws[1], bs[1] = np.abs(Ws[1]) + 0.1, np.abs(bs[1])
    if loss == "binary_cross_entropy" or acts[1] == "softmax":
        change = None  # (a log loss of a hand-rounded probability may be infinite)
    own = student_step(Ws, bs, list(acts), x, y, loss, LR, digits)
    if change is None:
        text = sheet_text(Ws, bs, acts, x, y, loss, own, digits, ints=True)
        report = check(parse_worksheet(text, "right.toml"))
        assert all(e.verdict == "ok" for e in report.entries), report.wrong()[:2]
        return
    bumped = own[change].copy()
    idx = (0, 0) if bumped.ndim == 2 else (0,)
    bumped[idx] += max(0.3, 40 * 10.0**-digits)
    slipped = student_step(
        Ws, bs, list(acts), x, y, loss, LR, digits, slips={change: lambda v: bumped}
    )
    report = check(parse_worksheet(sheet_text(Ws, bs, acts, x, y, loss, slipped, digits), "c"))
    for e in report.entries:
        shape = np.shape(slipped[e.name])
        full = (0, *e.index) if len(e.index) < len(shape) else e.index
        if e.name == change:
            assert e.verdict == ("wrong" if full == idx else "ok"), e
        elif e.name in DOWNSTREAM[change]:
            assert e.verdict in ("ok", "follows"), e
        else:
            assert e.verdict == "ok", e
