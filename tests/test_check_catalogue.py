"""The catalogue's newer rules, each planted by an independent student model: a student
who works every quantity by hand from their own earlier *rounded* numbers (plain NumPy in
tests/check_reference.py, no glassnet), slipping in exactly one place.  The slip must be
named by its id at every number it changes; every other number on the sheet is ok or
follows from it."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.check import check, parse_worksheet

from check_reference import (
    FORWARD,
    LR,
    local_derivative,
    random_network,
    round_half_up,
    sheet_text,
    sigmoid,
    student_step,
)

CONFIGS = [
    (("sigmoid", "sigmoid"), "binary_cross_entropy"),
    (("tanh", "identity"), "half_sse"),
    (("relu", "softmax"), "cross_entropy"),
    (("sigmoid", "identity"), "mse"),
    (("leaky_relu", "sigmoid"), "half_sse"),
    (("tanh", "softmax"), "cross_entropy"),
    (("elu", "identity"), "half_sse"),
    (("gelu", "sigmoid"), "binary_cross_entropy"),
]


def _swap_first(text: str) -> str:
    for i in range(len(text) - 1):
        if text[i].isdigit() and text[i + 1].isdigit() and text[i] != text[i + 1]:
            return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text


def _slips(rule: str, variant: str, Ws, bs, acts, loss, y):
    """(name planted, {name: wrong rule}) for ``rule``, or None where it cannot happen."""
    hidden = acts[0]
    n_out = y.shape[1]
    squared = loss in ("half_sse", "mse")
    if rule == "bias_omitted":
        return "z2", {"z2": lambda v: v["a1"] @ Ws[1]}
    if rule == "derivative_of_wrong_quantity":
        if hidden == "sigmoid":
            f = (
                (lambda v: v["z1"] * (1 - v["z1"]))
                if variant == "z_as_a"
                else (lambda v: sigmoid(v["a1"]) * (1 - sigmoid(v["a1"])))
            )
        elif hidden == "tanh":
            f = (
                (lambda v: 1 - v["z1"] ** 2)
                if variant == "z_as_a"
                else (lambda v: 1 - np.tanh(v["a1"]) ** 2)
            )
        elif hidden in ("elu", "gelu") and variant == "a_as_z":
            # (their derivatives are written in z: there is no formula in a to feed z)
            f = lambda v: local_derivative(hidden, v["a1"], None)  # noqa: E731
        else:
            return None
        return "da1_dz1", {"da1_dz1": f}
    if rule == "updated_weights_in_backprop":
        return "dL_da1", {"dL_da1": lambda v: v["delta2"] @ v["W2_new"].T}
    if rule == "loss_factor_slip":
        if loss == "half_sse":  # 2(p − y): the ½ forgotten
            return "dL_da2", {"dL_da2": lambda v: 2 * (v["a2"] - y)}
        if loss == "mse":  # 2(p − y): the 1/n_out of the mean forgotten
            return "dL_da2", {"dL_da2": lambda v: 2 * (v["a2"] - y)}
        return None
    if rule == "squared_error_sign":
        if not squared:
            return None
        k = 1.0 if loss == "half_sse" else 2.0 / n_out
        return "dL_da2", {"dL_da2": lambda v: k * (y - v["a2"])}
    if rule == "output_error_as_dL_da":
        if squared:
            return None
        return "dL_da2", {"dL_da2": lambda v: v["a2"] - y}
    if rule == "transposed_gradient":
        return "dW2", {"dW2": lambda v: (v["a1"].T @ v["delta2"]).T}
    if rule == "pre_activation_for_activation":
        if hidden == "identity":
            return None
        if variant == "dW":
            return "dW2", {"dW2": lambda v: v["z1"].T @ v["delta2"]}
        return "z2", {"z2": lambda v: v["z1"] @ Ws[1] + bs[1]}
    if rule == "update_applied_twice":
        return "W1_new", {"W1_new": lambda v: Ws[0] - 2 * LR * v["dW1"]}
    if rule == "digit_swap":
        if variant == "copy_input":  # z1[0] copied into a1 with two digits exchanged

            def a1(v):
                z = v["z1"].copy()
                z[0, 0] = float(_swap_first(f"{z[0, 0]:.4f}"))
                return FORWARD[hidden](z)

            return "a1", {"a1": a1}

        # the result itself written with two digits exchanged (b1_new feeds nothing)
        def b1(v):
            b = round_half_up(bs[0] - LR * v["db1"], 4)
            b[0] = float(_swap_first(f"{b[0]:.4f}"))
            return b

        return "b1_new", {"b1_new": b1}
    raise AssertionError(rule)


CASES = [
    ("bias_omitted", ""),
    ("derivative_of_wrong_quantity", "z_as_a"),
    ("derivative_of_wrong_quantity", "a_as_z"),
    ("updated_weights_in_backprop", ""),
    ("loss_factor_slip", ""),
    ("squared_error_sign", ""),
    ("output_error_as_dL_da", ""),
    ("transposed_gradient", ""),
    ("pre_activation_for_activation", "z"),
    ("pre_activation_for_activation", "dW"),
    ("update_applied_twice", ""),
    ("digit_swap", "copy_input"),
    ("digit_swap", "copy_result"),
]
#: Ids planted here (the rest of the catalogue: tests/test_check_mistakes.py).
IDS = {rule for rule, _ in CASES} | {"written_transposed"}


def _planted(rule, variant, acts, loss, seed):
    for attempt in range(seed, seed + 60):
        Ws, bs, x, y = random_network(attempt, positive_last=acts[1] == "softmax")
        plan = _slips(rule, variant, Ws, bs, acts, loss, y)
        if plan is None:
            return None
        target, slips = plan
        right = student_step(Ws, bs, acts, x, y, loss, LR)
        wrong = student_step(Ws, bs, acts, x, y, loss, LR, slips=slips)
        changed = np.abs(wrong[target] - right[target]) > 1e-9
        if changed.any():
            return (Ws, bs, x, y), target, wrong, changed
    raise AssertionError(f"no network where {rule} changes anything")


@pytest.mark.parametrize(("rule", "variant"), CASES)
@pytest.mark.parametrize(("acts", "loss"), CONFIGS)
@pytest.mark.parametrize("seed", [11, 40])
def test_planted_rule_is_named(rule, variant, acts, loss, seed):
    planted = _planted(rule, variant, acts, loss, seed=seed)
    if planted is None:
        return  # the slip does not exist for this activation/loss (e.g. p − y for half_sse)
    (Ws, bs, x, y), target, values, changed = planted
    text = sheet_text(Ws, bs, acts, x, y, loss, values, 4)
    report = check(parse_worksheet(text, "planted.toml"))
    flat = changed.reshape(-1)
    entries = report.by_name(target)
    assert len(entries) == flat.size
    for e, c in zip(entries, flat.reshape(-1), strict=True):
        if c:
            assert e.verdict == "wrong", (e, text)
            assert e.diagnosis is not None and rule in e.diagnosis.split("+"), (e, rule)
            # A digit swap in an input that moves only this one number is "possible":
            # some digit pair of some input lands on a random arithmetic slip too often
            # (tests/test_check_course.py); every other planted rule is exact.
            single = rule == "digit_swap" and variant == "copy_input" and changed.sum() == 1
            # (With relu the swapped z1 *is* a1: then the result itself is swapped, exact.)
            input_swap = "used as" in e.explanation
            assert e.match == ("possible" if single and input_swap else "exact"), e
    others = [e for e in report.entries if e.name != target and e.verdict == "wrong"]
    assert not others, others


def test_written_transposed_non_square():
    # W1 is 3×2: a student who writes W1_new as 2×3 gets it marked wrong and diagnosed,
    # and the rest of the sheet marked as usual.
    acts, loss = ("sigmoid", "sigmoid"), "binary_cross_entropy"
    Ws, bs, x, y = random_network(3, sizes=(3, 2, 2))
    v = student_step(Ws, bs, acts, x, y, loss, LR)
    v["W1_new"] = v["W1_new"].T
    report = check(parse_worksheet(sheet_text(Ws, bs, acts, x, y, loss, v, 4), "t.toml"))
    W1 = report.by_name("W1_new")
    assert len(W1) == 6 and all(e.diagnosis == "written_transposed" for e in W1)
    assert all(e.verdict != "wrong" for e in report.entries if e.name != "W1_new")
    v["W1_new"] = v["W1_new"].T
    v["dW1"] = v["dW1"].T
    report = check(parse_worksheet(sheet_text(Ws, bs, acts, x, y, loss, v, 4), "t.toml"))
    assert all(e.diagnosis == "transposed_gradient" for e in report.by_name("dW1"))
    assert len(report.by_name("dW1")) == 6
