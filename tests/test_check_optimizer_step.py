"""check recomputes a step on the graph the trace evaluated: under a spec's optimiser a
weight update written from the person's own (wrong) gradient follows from it.

The reference is Adam's first step written out here: m̂ = g, v̂ = g², so
W_new = W − lr·g/(|g| + eps).
"""

from __future__ import annotations

import numpy as np

from glassnet.check import check, parse_worksheet
from glassnet.spec import parse_spec

SPEC = """
loss = "mse"
lr = 0.1
optimizer = "adam"
eps = 1e-8
input = [[0.5, -0.2]]
target = [[1.0, 0.0]]
[[layers]]
weights = [[0.3, -0.1], [0.2, 0.4]]
bias = [0.1, -0.2]
activation = "sigmoid"
"""


def _rows(a: np.ndarray) -> str:
    return "[" + ", ".join("[" + ", ".join(f"{v:.6f}" for v in r) + "]" for r in a) + "]"


def test_an_update_from_a_wrong_gradient_follows_under_adam():
    spec = parse_spec(SPEC, "adam.toml")
    trace = spec.trace()
    W, dW = trace.value(("W", 1)), trace.value(("dW", 1))
    theirs = dW.copy()
    theirs[0, 0] = -theirs[0, 0]  # a sign slip in one entry of the gradient
    W_new = W - 0.1 * theirs / (np.abs(theirs) + 1e-8)  # Adam's first step, by hand
    right_new = W - 0.1 * dW / (np.abs(dW) + 1e-8)
    np.testing.assert_allclose(trace.value(("W_new", 1)), right_new, rtol=1e-12)
    sheet = parse_worksheet(SPEC + f"[values]\ndW1 = {_rows(theirs)}\nW1_new = {_rows(W_new)}\n")
    marks = {(e.name, e.index): e.verdict for e in check(sheet).entries}
    assert marks[("dW1", (0, 0))] == "wrong"
    assert marks[("W1_new", (0, 0))] == "follows"  # Adam on their gradient, not SGD's rule
    assert [v for (n, i), v in marks.items() if i != (0, 0)] == ["ok"] * 6
