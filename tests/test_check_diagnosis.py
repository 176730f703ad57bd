"""How the checker names a mistake: only from the person's own values, only where the rule
changes the number and lands closer to it, stating what the person actually did (the
decimals they rounded to, the value they cut off, the earlier value they copied)."""

from __future__ import annotations

import numpy as np

from glassnet.check import check, parse_worksheet

from check_reference import LR, random_network, sheet_text, sigmoid, student_step

ACTS, LOSS = ("sigmoid", "sigmoid"), "binary_cross_entropy"


def _marked(values, digits=4, net_seed=5):
    Ws, bs, x, y = random_network(net_seed)
    return check(parse_worksheet(sheet_text(Ws, bs, ACTS, x, y, LOSS, values, digits), "d"))


def test_rounding_states_the_decimals_used():
    for seed in range(5, 40):
        Ws, bs, x, y = random_network(seed)
        v = student_step(Ws, bs, list(ACTS), x, y, LOSS, LR)
        # z2 worked from a1 rounded to 2 decimals, though a1 is written with 4
        z2 = np.round(np.round(v["a1"], 2) @ Ws[1] + bs[1], 4)
        if np.all(np.abs(z2 - v["z2"]) > 3e-4):
            break
    report = _marked({"a1": v["a1"], "z2": z2}, net_seed=seed)
    for e in report.by_name("z2"):
        assert e.verdict == "wrong" and e.diagnosis == "rounding", e
        assert "inputs rounded to 2 decimals" in e.explanation
        assert abs(e.alternative - e.given) <= 5e-5 * (1 + 1e-9)


def test_truncation_cuts_the_persons_own_value():
    for seed in range(5, 60):
        Ws, bs, x, y = random_network(seed)
        v = student_step(Ws, bs, list(ACTS), x, y, LOSS, LR)
        z1 = v["z1"].copy()
        z1[0, 0] += 0.5  # an earlier slip
        own = sigmoid(z1)  # the right rule on the person's own z1
        cut = np.trunc(own * 1000) / 1000
        if cut[0, 0] != np.round(own[0, 0], 3):
            break
    # z1 written with 6 decimals (its rounding carries little), a1 with 3
    text = sheet_text(Ws, bs, ACTS, x, y, LOSS, {"z1": z1}, 6)
    text += "a1 = [" + ", ".join(f"{t:.3f}" for t in cut[0]) + "]\n"
    report = check(parse_worksheet(text, "cut"))
    a1 = report.by_name("a1")[0]
    assert a1.verdict == "wrong" and a1.diagnosis == "truncation", a1
    assert abs(a1.alternative - own[0, 0]) < 1e-3  # the person's own value, not the right
    assert "3 decimals" in a1.explanation


def test_copied_from_an_earlier_value_is_named_and_from_a_later_one_is_not():
    Ws, bs, x, y = random_network(5)
    v = student_step(Ws, bs, list(ACTS), x, y, LOSS, LR)
    # a1 = z1: the activation forgotten, the earlier z1 copied — named, saying which
    report = _marked({"z1": v["z1"], "a1": v["z1"]})
    for e in report.by_name("a1"):
        assert e.verdict == "wrong" and e.diagnosis == "wrong_source_value"
        assert "your z1" in e.explanation
    # dL_da1 equal to the delta1 the person works out *after* it: not a copy of it
    fake = v["delta1"] + 0.0
    report = _marked({"dL_da1": fake, "delta1": fake})
    assert all(e.diagnosis != "wrong_source_value" for e in report.by_name("dL_da1"))


def test_copy_needs_equal_written_numbers_not_a_loose_match():
    Ws, bs, x, y = random_network(5)
    v = student_step(Ws, bs, list(ACTS), x, y, LOSS, LR)
    z1 = v["z1"]
    loose = np.round(z1, 1) + 0.0  # z1 to one decimal is "equal" only loosely
    text = sheet_text(Ws, bs, ACTS, x, y, LOSS, {"z1": z1}, 4)
    text += "a1 = [" + ", ".join(f"{t:.1f}" for t in loose[0]) + "]\n"
    report = check(parse_worksheet(text, "loose"))
    checked = 0
    for e, exact in zip(report.by_name("a1"), (loose == z1)[0], strict=True):
        if e.verdict == "wrong" and not exact:  # (1.0000 copied as 1.0 is a copy)
            assert e.diagnosis != "wrong_source_value", e
            checked += 1
    assert checked


def test_a_rule_that_changes_nothing_or_lands_farther_is_not_named():
    """A planted arithmetic slip far from every rule stays unexplained (no "near" rule
    that equals the right value or is farther from the number than the right value)."""
    Ws, bs, x, y = random_network(5)
    v = student_step(Ws, bs, list(ACTS), x, y, LOSS, LR)
    z1 = v["z1"] + np.array([[0.0123, 0.0, 0.0]])
    report = _marked({"z1": z1})
    e = report.by_name("z1")[0]
    assert e.verdict == "wrong"
    if e.diagnosis is not None:
        assert abs(e.alternative - e.given) < abs(e.follows_from_given - e.given)
        assert abs(e.alternative - e.follows_from_given) > 1e-12


def test_docs_list_every_rule_with_an_example():
    from pathlib import Path

    from glassnet.check import all_ids

    doc = (Path(__file__).parents[1] / "docs" / "check.md").read_text()
    for rule in all_ids():
        rows = [line for line in doc.splitlines() if line.startswith(f"| `{rule}` |")]
        assert len(rows) == 1, rule
        assert any(c.isdigit() for c in rows[0]), rows[0]  # a worked example, with numbers
