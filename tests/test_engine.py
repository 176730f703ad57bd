"""Engine behaviour: extremes, the fast path against the traced path, the fused
softmax + cross-entropy gradient, rounding, batches and errors raised at build time."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import glassnet as gn
from glassnet.activations import get_activation
from glassnet.layers import Dense
from glassnet.losses import get_loss
from glassnet.network import Network
from glassnet.trace import apply_step, trace_step

from helpers import COMBOS, HIDDEN, random_targets


@pytest.mark.parametrize("name", HIDDEN)
def test_activations_are_finite_and_silent_at_extremes(name):
    z = np.array([[-1e4, -700.0, -50.0, 0.0, 50.0, 700.0, 1e4]])
    act = get_activation(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = act.forward(z)
        d = act.derivative(z, a)
        delta = act.backward(z, a, np.ones_like(z))
    for v in (a, d, delta):
        assert np.isfinite(v).all()
    if name == "softmax":
        assert a.sum() == pytest.approx(1.0)
        # the largest logit takes all the mass; exp(1e4) did not overflow
        assert a[0, -1] == pytest.approx(1.0)
    if name == "sigmoid":
        assert a[0, 0] == 0.0 and a[0, -1] == 1.0


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse", "half_sse"])
def test_losses_are_finite_when_p_reaches_0_or_1(loss):
    p = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.0]])
    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    obj = get_loss(loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        terms = obj.terms(p, y)
        grad = obj.grad(p, y)
    assert np.isfinite(terms).all() and np.isfinite(grad).all()
    assert obj.value(p, y) > 0


def test_extreme_logits_give_finite_trace():
    net = Network([Dense(np.array([[1e4, -1e4, 0.0]]), np.zeros(3), "softmax")])
    for loss in ("cross_entropy", "binary_cross_entropy", "mse", "half_sse"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tr = trace_step(net, np.array([[1.0]]), np.array([[0.0, 1.0, 0.0]]), loss=loss, lr=0.1)
        for lt in tr.layers:
            for name in ("z", "a", "da_dz", "dL_da", "delta", "dW", "db", "W_new"):
                assert np.isfinite(getattr(lt, name)).all(), (loss, name)
        assert np.isfinite(tr.loss)


def test_softmax_backward_uses_the_full_jacobian(rng):
    act = get_activation("softmax")
    z = rng.normal(size=(4, 5))
    a = act.forward(z)
    g = rng.normal(size=(4, 5))
    # Reference: build J[i, j] = a_i (δ_ij − a_j) by hand and multiply.
    expected = np.stack([g[s] @ (np.diag(a[s]) - np.outer(a[s], a[s])) for s in range(4)])
    np.testing.assert_allclose(act.backward(z, a, g), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(act.vjp(act.derivative(z, a), g), expected, rtol=1e-12, atol=1e-15)
    # and it is not the diagonal-only product
    assert not np.allclose(act.backward(z, a, g), g * a * (1 - a))


@pytest.mark.parametrize(("loss", "output"), COMBOS)
def test_fast_path_equals_traced_path(loss, output, rng):
    net = gn.mlp([4, 5, 3], hidden="tanh", output=output, init="xavier", seed=3, dtype="float64")
    x = rng.normal(size=(6, 4))
    y = random_targets(rng, loss, 6, 3)
    trace = trace_step(net, x, y, loss=loss, lr=0.1)
    value, grads = net.loss_and_grads(x, y, loss)
    assert value == pytest.approx(trace.loss, rel=1e-12)
    for g, lt in zip(grads, trace.layers, strict=True):
        np.testing.assert_allclose(g.dW, lt.dW, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(g.db, lt.db, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(g.delta, lt.delta, rtol=1e-12, atol=1e-15)


def test_fused_softmax_cross_entropy_equals_general_path(rng):
    for batch in (1, 3, 16):
        net = gn.mlp([5, 7, 4], hidden="relu", output="softmax", seed=batch, dtype="float64")
        x = rng.normal(size=(batch, 5))
        labels = rng.integers(0, 4, size=batch)
        y = np.eye(4)[labels]
        general_value, general = net.loss_and_grads(x, y, "cross_entropy", fused=False)
        fused_value, fused = net.loss_and_grads(x, y, "cross_entropy", fused=True)
        assert fused_value == general_value
        for f, g in zip(fused, general, strict=True):
            np.testing.assert_allclose(f.delta, g.delta, rtol=0, atol=1e-12)
            np.testing.assert_allclose(f.dW, g.dW, rtol=0, atol=1e-12)
            np.testing.assert_allclose(f.db, g.db, rtol=0, atol=1e-12)
        tr = trace_step(net, x, y, loss="cross_entropy", lr=0.1)
        np.testing.assert_allclose(tr.output_delta_shortcut, tr.layers[-1].delta, atol=1e-12)


def test_step_applies_the_update():
    spec = gn.load_spec("seed")
    net = spec.network
    W3 = net.layers[2].W.copy()
    tr = apply_step(net, spec.x, spec.y, loss=spec.loss, lr=spec.lr, update_bias=False)
    np.testing.assert_array_equal(net.layers[2].W, tr.layer(3).W_new)
    np.testing.assert_array_equal(tr.layer(3).W, W3)  # the trace keeps the old weights


def test_batch_gradients_are_the_mean_of_single_sample_gradients(rng):
    net = gn.mlp([3, 4, 2], hidden="sigmoid", output="sigmoid", seed=1, dtype="float64")
    x = rng.normal(size=(5, 3))
    y = rng.random((5, 2))
    batch = trace_step(net, x, y, loss="binary_cross_entropy", lr=0.1)
    singles = [trace_step(net, x[s], y[s], loss="binary_cross_entropy", lr=0.1) for s in range(5)]
    for index in range(2):
        mean_dW = np.mean([t.layers[index].dW for t in singles], axis=0)
        np.testing.assert_allclose(batch.layers[index].dW, mean_dW, rtol=1e-12)
    assert batch.loss == pytest.approx(np.mean([t.loss for t in singles]), rel=1e-12)


def test_round_to_rounds_every_intermediate():
    tr = gn.load_spec("seed").trace(round_to=4)
    for lt in tr.layers:
        for name in ("z", "a", "da_dz", "dL_da", "delta", "dW", "W_new"):
            v = getattr(lt, name)
            np.testing.assert_array_equal(v, np.round(v, 4))
    # Hand mode, first layer by hand: x @ W + b with the 4-decimal numbers is exact here.
    np.testing.assert_array_equal(tr.layer(1).z, [[1.35, 1.27, 1.8]])
    # sigmoid(2.731) = 0.93883..., rounded to 4 decimals
    assert tr.layer(2).a[0, 0] == 0.9388


def test_bad_values_are_refused():
    net = gn.mlp([2, 2], output="softmax", seed=0, dtype="float64")
    x = np.array([[0.1, 0.2]])
    with pytest.raises(gn.GlassnetError, match="lr"):
        trace_step(net, x, [[1.0, 0.0]], loss="cross_entropy", lr=-1)
    with pytest.raises(gn.GlassnetError, match=r"target.*\[0, 1\]"):
        trace_step(net, x, [[2.0, 0.0]], loss="cross_entropy", lr=0.1)
    with pytest.raises(gn.GlassnetError, match="input"):
        trace_step(net, [[0.1, 0.2, 0.3]], [[1.0, 0.0]], loss="cross_entropy", lr=0.1)
    with pytest.raises(gn.GlassnetError, match="finite"):
        trace_step(net, [[np.nan, 0.2]], [[1.0, 0.0]], loss="cross_entropy", lr=0.1)
    sig = gn.mlp([2, 2], output="sigmoid", seed=0, dtype="float64")
    with pytest.raises(gn.GlassnetError, match="softmax output"):
        trace_step(sig, x, [[1.0, 0.0]], loss="cross_entropy", lr=0.1)
    with pytest.raises(gn.GlassnetError, match="activation"):
        gn.get_activation("swish")
    with pytest.raises(gn.GlassnetError, match="layer 2"):
        Network([Dense(np.zeros((2, 3)), np.zeros(3)), Dense(np.zeros((2, 1)), np.zeros(1))])
