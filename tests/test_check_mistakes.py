"""Every catalogue mistake, planted on a random network (the planted numbers computed
here with plain NumPy), is named; the same worksheet worked right is all ok."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.check import all_ids, check, parse_worksheet

from check_reference import random_network, reference_step, sigmoid, softmax, worksheet_text


def _scenario(mistake: str, seed: int):
    """(network, acts, loss, batch, right values, planted values, name to look at,
    mask of the places the mistake changes)."""
    acts, loss, batch, positive = ["sigmoid", "sigmoid"], "binary_cross_entropy", 1, False
    if mistake in ("normalize_not_softmax", "double_softmax", "softmax_diagonal_jacobian"):
        acts = ["sigmoid", "softmax"]
        positive = True
    if mistake == "relu_derivative_from_output_or_wrong_side":
        acts = ["relu", "sigmoid"]
    if mistake in ("missing_batch_mean", "bias_grad_not_summed"):
        batch = 3
    Ws, bs, x, y = random_network(seed, batch=batch, positive_last=positive)
    ref = reference_step(Ws, bs, acts, x, y, loss, 0.1)
    r = ref
    names: dict[str, list[str]] = {
        "log10": ["a2", "loss_terms"],
        "normalize_not_softmax": ["z2", "a2"],
        "softmax_diagonal_jacobian": ["a2", "dL_da2", "delta2"],
        "bce_derivative_sign": ["a2", "dL_da2"],
        "diagonal_weight_backprop": ["delta2", "dL_da1"],
        "missing_activation_derivative": ["dL_da1", "delta1"],
        "relu_derivative_from_output_or_wrong_side": ["z1", "a1", "da1_dz1"],
        "transposed_weights": ["a1", "z2"],
        "update_sign": ["dW1", "W1_new"],
        "lr_slip": ["dW1", "W1_new"],
        "missing_batch_mean": ["loss_terms", "loss"],
        "bias_grad_not_summed": ["delta1", "db1"],
        "double_softmax": ["z2", "a2"],
        "wrong_source_value": ["dW1", "W1_new"],
        "rounding": ["a1", "z2"],
        "truncation": ["z1", "a1"],
        "activation_derivative_twice": ["dL_da1", "da1_dz1", "delta1"],
    }[mistake]
    right = {n: r[n] for n in names}
    planted = dict(right)
    target = names[-1]
    if mistake == "log10":
        planted[target] = r["loss_terms"] / np.log(10)
    elif mistake == "normalize_not_softmax":
        planted[target] = r["z2"] / r["z2"].sum(axis=1, keepdims=True)
    elif mistake == "softmax_diagonal_jacobian":
        a = r["a2"]
        planted[target] = r["dL_da2"] * a * (1 - a)
    elif mistake == "bce_derivative_sign":
        p = r["a2"]
        planted[target] = -y / p - (1 - y) / (1 - p)
    elif mistake == "diagonal_weight_backprop":
        planted[target] = r["delta2"] * np.diag(Ws[1])
    elif mistake == "missing_activation_derivative":
        planted[target] = r["dL_da1"]
    elif mistake == "relu_derivative_from_output_or_wrong_side":
        planted[target] = (r["z1"] < 0).astype(float)
    elif mistake == "transposed_weights":
        planted[target] = r["a1"] @ Ws[1].T + bs[1]
    elif mistake == "update_sign":
        planted[target] = Ws[0] + 0.1 * r["dW1"]
    elif mistake == "lr_slip":
        planted[target] = Ws[0] - 1.0 * r["dW1"]
    elif mistake == "missing_batch_mean":
        planted[target] = r["loss_terms"].sum()
    elif mistake == "bias_grad_not_summed":
        planted[target] = r["delta1"][0]
    elif mistake == "double_softmax":
        planted[target] = softmax(softmax(r["z2"]))
    elif mistake == "wrong_source_value":
        planted[target] = Ws[0].copy()  # the old weights copied, the update forgotten
    elif mistake == "rounding":
        planted[target] = np.round(r["a1"], 1) @ Ws[1] + bs[1]
    elif mistake == "truncation":
        planted[target] = np.trunc(sigmoid(r["z1"]) * 1000) / 1000
    elif mistake == "activation_derivative_twice":
        d = r["da1_dz1"]
        planted[target] = r["dL_da1"] * d * d
    changed = ~np.isclose(np.asarray(planted[target]), np.asarray(right[target]), atol=1e-7)
    if mistake == "truncation":
        # Only where cutting off differs from rounding at three decimals.
        a = sigmoid(r["z1"])
        changed &= np.trunc(a * 1000) != np.round(a * 1000)
    return (Ws, bs, x, y), acts, loss, right, planted, target, changed


#: The ids planted here; the newer ones are planted by tests/test_check_catalogue.py.
OWN_CASES = {
    "log10", "normalize_not_softmax", "softmax_diagonal_jacobian", "bce_derivative_sign",
    "diagonal_weight_backprop", "missing_activation_derivative",
    "relu_derivative_from_output_or_wrong_side", "transposed_weights", "update_sign",
    "lr_slip", "missing_batch_mean", "bias_grad_not_summed", "double_softmax",
    "wrong_source_value", "rounding", "truncation", "activation_derivative_twice",
}  # fmt: skip
CASES = [i for i in all_ids() if i in OWN_CASES]


def _marked(net, acts, loss, values, digits_for: dict[str, int] | None = None):
    Ws, bs, x, y = net
    vals = dict(values)
    text = worksheet_text(Ws, bs, acts, x, y, loss, 0.1, {})
    lines = [text.rstrip("\n")]
    for name, v in vals.items():
        d = (digits_for or {}).get(name, 8)
        lines.append(worksheet_text(Ws, bs, acts, x, y, loss, 0.1, {name: v}, d).splitlines()[-1])
    return check(parse_worksheet("\n".join(lines) + "\n", "planted.toml"))


def test_every_catalogue_id_has_a_case():
    from test_check_catalogue import IDS

    assert set(CASES) | IDS == set(all_ids())
    assert len(CASES) >= 16


@pytest.mark.parametrize("mistake", CASES)
@pytest.mark.parametrize("seed", [1, 2])
def test_planted_mistake_is_named(mistake: str, seed: int):
    for attempt in range(seed, seed + 40):
        net, acts, loss, right, planted, target, changed = _scenario(mistake, attempt)
        if changed.any() and (
            mistake != "relu_derivative_from_output_or_wrong_side"
            or ((right["z1"] < 0).any() and (right["z1"] > 0).any())
        ):
            break
    digits = {"a1": 3} if mistake == "truncation" else None
    report = _marked(net, acts, loss, planted, digits)
    entries = [e for e in report.entries if e.name == target]
    flat = np.asarray(changed).reshape(-1)
    assert entries
    named = [e for e, c in zip(entries, flat, strict=True) if c]
    assert named, "the planted mistake changed nothing"
    for e in named:
        assert e.verdict == "wrong", e
        assert e.diagnosis is not None and mistake in e.diagnosis.split("+"), (e, mistake)
        assert e.match == "exact"
    # Every other number written was right and is marked ok.
    for e in report.entries:
        if e.name != target:
            assert e.verdict == "ok", e


@pytest.mark.parametrize("mistake", CASES)
def test_same_worksheet_worked_right_is_all_ok(mistake: str):
    net, acts, loss, right, _planted, _target, _changed = _scenario(mistake, 3)
    digits = {"a1": 3} if mistake == "truncation" else None
    if mistake == "truncation":
        right = {k: np.round(v, 3) if k == "a1" else v for k, v in right.items()}
    report = _marked(net, acts, loss, right, digits)
    assert report.entries
    assert all(e.verdict == "ok" for e in report.entries), [
        e for e in report.entries if e.verdict != "ok"
    ]


def test_relu_derivative_from_output_variant():
    for seed in range(40):
        Ws, bs, x, y = random_network(seed)
        ref = reference_step(Ws, bs, ["relu", "sigmoid"], x, y, "binary_cross_entropy", 0.1)
        z = ref["z1"]
        if (z > 0).any() and (np.abs(ref["a1"] - 1) > 1e-3).all():
            break
    planted = {"z1": ref["z1"], "a1": ref["a1"], "da1_dz1": ref["a1"]}
    report = _marked((Ws, bs, x, y), ["relu", "sigmoid"], "binary_cross_entropy", planted)
    positive = ref["z1"][0] > 0
    for e in report.by_name("da1_dz1"):
        if positive[e.index[0]]:
            assert e.verdict == "wrong"
            assert e.diagnosis == "relu_derivative_from_output_or_wrong_side"


def test_truncation_check_survives_numbers_written_with_hundreds_of_decimals():
    """Regression (found by hypothesis): a value like 4.96e-308 written in full has ~310
    decimals, and 10**310 overflowed a float."""
    from glassnet.check.mistakes import truncation

    assert truncation(4.96e-308, 5e-311, [1.0, 2.0]) is None
    assert truncation(0.93, 0.005, [0.938831]) == 0.938831  # the seed's own truncation
