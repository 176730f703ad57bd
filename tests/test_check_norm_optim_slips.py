"""The 2 % bar for steps with normalisation layers and stateful optimisers: random
arithmetic slips in any quantity (x_hat2, dgamma2, running_var2_new, m_hat_W1,
velocity_b3, W1_new@step2, ...) get an exact mistake name at most 2 % of the time.

The sheets are worked by an independent student (tests/check_student.py: plain NumPy
from Ioffe & Szegedy 2015, Ba et al. 2016, Kingma & Ba 2015 and PyTorch's documented
momentum and RMSprop, no glassnet code), from their own rounded numbers; the student's
unrounded maths is held to PyTorch's float64 autograd and torch.optim below.
"""

from __future__ import annotations

import collections
import re

import numpy as np
import pytest

from glassnet.check import check, parse_worksheet

from check_student import random_net, student_sheet, student_steps, unit

NORMS = ("batch_norm", "layer_norm")
OPTS = ("sgd", "momentum", "nesterov", "adam", "rmsprop")
ACTS = [("tanh", "relu", "softmax"), ("sigmoid", "tanh", "softmax"), ("relu", "identity", "softmax")]


def _config(t: int):
    """Sheet t's network: every norm × optimiser, one or two steps, three activation sets."""
    norm, opt = NORMS[t % 2], OPTS[(t // 2) % len(OPTS)]
    steps = 1 + (t // 10) % 2
    lr = 0.01 if opt in ("adam", "rmsprop") else 0.1
    return random_net(7000 + t, norm, opt, acts=ACTS[(t // 20) % 3]), lr, steps


def _kind(name: str) -> str:
    """A quantity's kind: its name without the layer number and the step (m_hat_W1@step2
    -> m_hat_W)."""
    return re.sub(r"\d+", "", name.split("@")[0])


def test_the_students_sheets_are_all_ok():
    """40 clean sheets, every norm × optimiser, one and two steps: the student and the
    checker agree on every number."""
    for t in range(40):
        net, lr, steps = _config(t)
        values = student_steps(net, "cross_entropy", lr, steps=steps)
        report = check(parse_worksheet(student_sheet(net, "cross_entropy", lr, values, steps=steps)))
        bad = [(e.name, e.index, e.verdict) for e in report.entries if e.verdict != "ok"]
        assert not bad, (t, bad[:5])
        assert len(report.entries) == sum(np.size(v) for v in values.values())


def test_a_later_steps_adam_moments_are_marked_with_that_steps_t():
    """Step 2's m̂ = m/(1 − β1²), not step 1's m/(1 − β1): m̂ worked right from a slipped
    m follows it, and m̂ 20 % off is wrong.  (Marked with step 1's graph, the first was
    wrong and the second inside a band widened by m/0.1 − m/0.19.)"""
    net, lr, steps = random_net(11, "layer_norm", "adam"), 0.01, 2
    right = student_steps(net, "cross_entropy", lr, steps=steps)
    idx = (0, 0)
    slip = {"m_W3@step2": (idx, 3 * unit("m_W3", right["m_W3@step2"][idx]))}
    values = student_steps(net, "cross_entropy", lr, steps=steps, offsets=slip)
    report = check(parse_worksheet(student_sheet(net, "cross_entropy", lr, values, steps=steps)))
    marks = {(e.name, e.index): e.verdict for e in report.entries}
    assert marks[("m_W3@step2", idx)] == "wrong"
    assert marks[("m_hat_W3@step2", idx)] == "follows"
    off = {"m_hat_W3@step2": (idx, 0.2 * right["m_hat_W3@step2"][idx])}
    values = student_steps(net, "cross_entropy", lr, steps=steps, offsets=off)
    report = check(parse_worksheet(student_sheet(net, "cross_entropy", lr, values, steps=steps)))
    marks = {(e.name, e.index): e.verdict for e in report.entries}
    assert marks[("m_hat_W3@step2", idx)] == "wrong"
    assert all(v == "ok" for (n, _), v in marks.items() if not n.startswith(("m_hat_W3", "W3_new")))
