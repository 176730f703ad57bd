"""The training loop's buffer path (``buffers=``, activations' ``out=``)
gives exactly the numbers of the plain fast path and of the traced step; fit uses it."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.activations import ACTIVATIONS, get_activation

CASES = [
    ("relu", "softmax", "cross_entropy", True),
    ("relu", "softmax", "cross_entropy", False),
    ("tanh", "sigmoid", "binary_cross_entropy", False),
    ("sigmoid", "identity", "mse", False),
    ("leaky_relu", "softmax", "half_sse", False),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden,output,loss,fused", CASES)
def test_buffers_give_the_same_numbers_as_no_buffers(hidden, output, loss, fused, dtype):
    rng = np.random.default_rng(0)
    net = gn.mlp([5, 7, 6, 4], hidden=hidden, output=output, seed=2, dtype=dtype)
    buffers = net.buffers(9)
    # A full batch, then a smaller one that uses the buffers' first rows.
    for m in (9, 4):
        x = rng.normal(size=(m, 5)).astype(dtype)
        y = rng.random(size=(m, 4)).astype(dtype)
        y /= y.sum(axis=1, keepdims=True)
        p1, v1, plain = net.forward_backward(x, y, loss, fused=fused)
        p2, v2, buffered = net.forward_backward(x, y, loss, fused=fused, buffers=buffers)
        np.testing.assert_array_equal(p1, p2)
        assert v1 == v2
        for g1, g2, layer_buffers in zip(plain, buffered, buffers, strict=True):
            for name in ("dW", "db", "delta"):
                np.testing.assert_array_equal(getattr(g1, name), getattr(g2, name))
            # the results live in the buffers (nothing allocated)
            assert np.shares_memory(g2.dW, layer_buffers.dW)
            assert np.shares_memory(g2.delta, layer_buffers.delta)
        assert buffered[0].dx is None and buffers[0].dx is None


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_forward_and_backward_into_out_equal_forward_and_backward(name):
    rng = np.random.default_rng(1)
    act = get_activation(name)
    z = rng.normal(scale=3.0, size=(6, 5))
    z[0, 0] = 0.0  # ReLU's kink
    g = rng.normal(size=(6, 5))
    a = act.forward(z)
    np.testing.assert_array_equal(act.forward(z, out=np.empty_like(z)), a)
    np.testing.assert_array_equal(
        act.backward(z, a, g, out=np.empty_like(z)), act.backward(z, a, g)
    )
    # backward may write over dL/da itself (the loop reuses that buffer)
    g2 = g.copy()
    np.testing.assert_array_equal(act.backward(z, a, g2, out=g2), act.backward(z, a, g))


def test_relu_backward_is_the_product_with_the_recorded_derivative():
    # The traced step multiplies dL/da by da/dz = 1[z > 0]; the fast path must agree.
    act = get_activation("relu")
    z = np.array([[-1.0, 0.0, 2.0]])
    g = np.array([[3.0, 4.0, 5.0]])
    a = act.forward(z)
    np.testing.assert_array_equal(act.backward(z, a, g), [[0.0, 0.0, 5.0]])
    np.testing.assert_array_equal(act.backward(z, a, g), act.vjp(act.derivative(z, a), g))


def test_fit_with_buffers_equals_steps_without_buffers_float64():
    """One fit epoch (buffers, in place) against the same batches through loss_and_grads
    (no buffers) and the update written out here."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 5))
    y = np.arange(20) % 4
    Y = np.eye(4)[y]
    a = gn.mlp([5, 8, 4], seed=4, dtype="float64")
    b = a.copy()
    lr = 0.05
    a.fit(X, y, optimizer=gn.optim.SGD(lr=lr), epochs=1, batch_size=6, shuffle=False)
    for start in range(0, 20, 6):
        _, grads = b.loss_and_grads(X[start : start + 6], Y[start : start + 6], "cross_entropy")
        for layer, g in zip(b.layers, grads, strict=True):
            layer.W = layer.W - lr * g.dW
            layer.b = layer.b - lr * g.db
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_allclose(la.W, lb.W, rtol=0, atol=1e-14)
        np.testing.assert_allclose(la.b, lb.b, rtol=0, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_value_is_the_sum_of_its_terms_bit_for_bit(dtype):
    # value skips the terms' y = 0 mask; it must still be Σ terms / batch exactly.
    loss = gn.losses.get_loss("cross_entropy")
    rng = np.random.default_rng(3)
    for k in range(300):
        m, n = int(rng.integers(1, 40)), int(rng.integers(2, 11))
        z = rng.normal(size=(m, n)) * rng.choice([1, 10, 100])
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p = (p / p.sum(axis=1, keepdims=True)).astype(dtype)
        y = np.zeros((m, n), dtype)
        if k % 2:
            y[np.arange(m), rng.integers(0, n, m)] = 1
        else:
            y[...] = rng.random((m, n)) * (rng.random((m, n)) < 0.7)
        assert loss.value(p, y) == float(loss.terms(p, y).sum() / m)
    # NaN where y = 0 is masked out by the terms, and an all-zero target sums to −0.
    p = np.array([[np.nan, np.nan], [0.5, 0.5]], dtype)
    y = np.array([[0, 0], [1, 0]], dtype)
    assert loss.value(p, y) == float(loss.terms(p, y).sum() / 2)
    zero = loss.value(p[1:], y[:1])
    assert zero == 0 and np.signbit(zero) == np.signbit(loss.terms(p[1:], y[:1]).sum())


@pytest.mark.parametrize(
    "make",
    [
        lambda: gn.optim.SGD(lr=0.1),
        lambda: gn.optim.SGD(lr=0.1, momentum=0.9),
        lambda: gn.optim.SGD(lr=0.1, momentum=0.9, nesterov=True),
        lambda: gn.optim.SGD(lr=0.1, weight_decay=0.01),
        lambda: gn.optim.Adam(lr=0.1),
        lambda: gn.optim.RMSprop(lr=0.1),
    ],
)
def test_scratch_grads_give_the_same_update(make):
    # fit lets the optimiser overwrite its gradient buffers; the parameters must not notice.
    rng = np.random.default_rng(4)
    shapes = [(5, 3), (3,)]
    start = [rng.normal(size=s).astype("float32") for s in shapes]
    kept, scratched = [p.copy() for p in start], [p.copy() for p in start]
    a, b = make(), make()
    for _ in range(3):
        grads = [rng.normal(size=s).astype("float32") for s in shapes]
        copies = [g.copy() for g in grads]
        a.step(kept, grads)
        for g, c in zip(grads, copies, strict=True):
            np.testing.assert_array_equal(g, c)  # left unchanged by default
        b.step(scratched, copies, scratch_grads=True)
        for p1, p2 in zip(kept, scratched, strict=True):
            np.testing.assert_array_equal(p1, p2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_into_matches_bit_for_bit_at_special_values(dtype):
    # With out=, forward/backward use other NumPy loops than without; the bits
    # (signed zeros, NaN, inf) must be the same.
    special = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -2.5, 1e-40]
    z = np.array([[s for s in special for _ in special]], dtype)
    g = np.array([[s for _ in special for s in special]], dtype)
    act = get_activation("relu")
    with np.errstate(invalid="ignore"):
        a = act.forward(z)
        assert act.forward(z, out=np.empty_like(z)).tobytes() == a.tobytes()
        want = act.backward(z, a, g).tobytes()
        assert act.backward(z, a, g, out=np.empty_like(z)).tobytes() == want
        g2 = g.copy()  # out may be dL/da itself
        assert act.backward(z, a, g2, out=g2).tobytes() == want
