"""Every analytic gradient against central finite differences of an independent reference."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import glassnet as gn
from glassnet.layers import Dense
from glassnet.network import Network
from glassnet.trace import trace_step

import reference
from helpers import COMBOS, HIDDEN, random_targets


def random_network(rng, hidden: str, output: str, depth: int, widths: list[int]):
    layers = []
    for index in range(depth):
        act = output if index == depth - 1 else hidden
        W = rng.normal(0, 0.8, size=(widths[index], widths[index + 1]))
        b = rng.normal(0, 0.5, size=widths[index + 1])
        layers.append(Dense(W, b, act))
    return Network(layers)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(("loss", "output"), COMBOS)
def test_gradients_match_finite_differences(loss, output, hidden):
    rng = np.random.default_rng(zlib.crc32(f"{loss}/{output}/{hidden}".encode()))
    done = 0
    while done < 3:
        depth = int(rng.integers(1, 5))
        widths = [int(w) for w in rng.integers(1, 6, size=depth + 1)]
        if output == "softmax":
            widths[-1] = max(widths[-1], 2)
        batch = int(rng.integers(1, 5))
        net = random_network(rng, hidden, output, depth, widths)
        x = rng.normal(size=(batch, widths[0]))
        y = random_targets(rng, loss, batch, widths[-1])
        p = net.forward(x)
        if loss.endswith("cross_entropy") and not (1e-6 < p.min() and p.max() < 1 - 1e-6):
            continue  # saturated: the loss clips p there (tested in test_extremes.py)
        done += 1
        trace = trace_step(net, x, y, loss=loss, lr=0.1)

        Ws = [layer.W.copy() for layer in net.layers]
        bs = [layer.b.copy() for layer in net.layers]
        acts = [layer.activation.name for layer in net.layers]
        dWs, dbs = reference.finite_difference_grads(Ws, bs, acts, x, y, loss)
        assert trace.loss == pytest.approx(
            reference.total_loss(Ws, bs, acts, x, y, loss), rel=1e-12
        )
        for lt, dW, db in zip(trace.layers, dWs, dbs, strict=True):
            np.testing.assert_allclose(
                lt.dW, dW, rtol=1e-5, atol=1e-8, err_msg=f"dW of layer {lt.index}"
            )
            np.testing.assert_allclose(
                lt.db, db, rtol=1e-5, atol=1e-8, err_msg=f"db of layer {lt.index}"
            )


def test_leaky_relu_custom_slope_matches_finite_differences(rng):
    act = gn.get_activation("leaky_relu", slope=0.2)
    net = Network(
        [
            Dense(rng.normal(size=(3, 4)), rng.normal(size=4), act),
            Dense(rng.normal(size=(4, 2)), rng.normal(size=2), "identity"),
        ]
    )
    x = rng.normal(size=(5, 3))
    y = rng.normal(size=(5, 2))
    trace = trace_step(net, x, y, loss="mse", lr=0.1)
    eps = 1e-6
    W = net.layers[0].W
    for pos in np.ndindex(W.shape):
        old = W[pos]

        def loss_at(v, pos=pos, old=old):
            W[pos] = v
            z1 = x @ W + net.layers[0].b
            a1 = np.where(z1 > 0, z1, 0.2 * z1)
            p = a1 @ net.layers[1].W + net.layers[1].b
            W[pos] = old
            return ((p - y) ** 2).mean()

        numeric = (loss_at(old + eps) - loss_at(old - eps)) / (2 * eps)
        assert trace.layer(1).dW[pos] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_gradcheck_module_reports_small_errors():
    spec = gn.load_spec("seed")
    from glassnet.gradcheck import gradcheck

    rows = gradcheck(spec.network, spec.x, spec.y, spec.loss)
    assert len(rows) == 6
    assert max(r.max_rel_error for r in rows) < 1e-6
