"""A published hand-worked example: Matt Mazur, "A Step by Step Backpropagation Example"
(2015), https://mattmazur.com/2015/03/17/a-step-by-step-backpropagation-example/

2-2-2 network, sigmoid everywhere, E = ½Σ(target − out)², lr 0.5, biases not updated.
Mazur names weights w1..w8: net_h1 = w1·i1 + w2·i2 + b1, net_h2 = w3·i1 + w4·i2 + b1,
net_o1 = w5·out_h1 + w6·out_h2 + b2, net_o2 = w7·out_h1 + w8·out_h2 + b2.  In our [from][to]
layout W1 = [[w1, w3], [w2, w4]] and W2 = [[w5, w7], [w6, w8]].
"""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn

SPEC = """
loss = "half_sse"
lr = 0.5
update_bias = false
input = [0.05, 0.10]
target = [0.01, 0.99]

[[layers]]
weights = [[0.15, 0.25], [0.20, 0.30]]
bias = [0.35, 0.35]
activation = "sigmoid"

[[layers]]
weights = [[0.40, 0.50], [0.45, 0.55]]
bias = [0.60, 0.60]
activation = "sigmoid"
"""


def test_mazur_forward_error_and_update():
    trace = gn.parse_spec(SPEC, "mazur.toml").trace()
    # out_h1 = 0.593269992, out_h2 = 0.596884378
    np.testing.assert_allclose(trace.layer(1).a[0], [0.593269992, 0.596884378], atol=1e-9)
    # out_o1 = 0.75136507, out_o2 = 0.772928465
    np.testing.assert_allclose(trace.output[0], [0.75136507, 0.772928465], atol=1e-8)
    # E_o1 = 0.274811083, E_o2 = 0.023560026, E_total = 0.298371109
    np.testing.assert_allclose(trace.loss_terms[0], [0.274811083, 0.023560026], atol=1e-9)
    assert trace.loss == pytest.approx(0.298371109, abs=1e-9)
    # dE_total/dw5 = 0.082167041
    assert trace.layer(2).dW[0, 0] == pytest.approx(0.082167041, abs=1e-9)
    # w5+ = 0.35891648, w6+ = 0.408666186, w7+ = 0.511301270, w8+ = 0.561370121
    np.testing.assert_allclose(
        trace.layer(2).W_new, [[0.35891648, 0.511301270], [0.408666186, 0.561370121]], atol=1e-8
    )
    # dE_total/dw1 = 0.000438568; w1+ = 0.149780716, w2+ = 0.19956143,
    # w3+ = 0.24975114, w4+ = 0.29950229
    assert trace.layer(1).dW[0, 0] == pytest.approx(0.000438568, abs=1e-9)
    np.testing.assert_allclose(
        trace.layer(1).W_new, [[0.149780716, 0.24975114], [0.19956143, 0.29950229]], atol=1e-8
    )
