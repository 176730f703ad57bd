"""The folded training step (glassnet.parallel, mode "folded": plain SGD's update inside
the weight-gradient multiply, through NumPy's own BLAS gemm with α = −lr, β = 1 − lr·λ)
gives the plain step's and the traced step's numbers: float64 to 1e-14, float32 to its
rounding; its NumPy fallback (no BLAS symbol) likewise, bit for bit where it runs the
same operations; the gemm itself against a float64 product written out here."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from step_reference import against_float64_step, data

import glassnet as gn
from glassnet import blas
from glassnet.losses import get_loss
from glassnet.parallel import TrainStep, train_step

CASES = [
    ("relu", "softmax", "cross_entropy", True),
    ("relu", "softmax", "cross_entropy", False),
    ("tanh", "sigmoid", "binary_cross_entropy", False),
    ("sigmoid", "identity", "mse", False),
    ("leaky_relu", "softmax", "half_sse", False),
]

HAVE_GEMM = blas.gemm(np.float32) is not None and blas.gemm(np.float64) is not None
#: Runs with NumPy's own BLAS (when this NumPy has one we can call) and with the fallback.
BACKENDS = [
    pytest.param(
        "blas",
        marks=pytest.mark.skipif(
            not HAVE_GEMM, reason=f"no callable gemm in NumPy's BLAS here: {blas.reason}"
        ),
    ),
    "numpy",
]


@pytest.fixture
def backend(request, monkeypatch):
    if request.param == "numpy":
        monkeypatch.setenv("GLASSNET_BLAS", "numpy")
    return request.param


def steps(net_a, net_b, X, Y, loss, opt_a, opt_b, fused, m):
    plain = TrainStep(net_a, X, Y, loss, opt_a, fused=fused, batch_size=m, mode="plain")
    folded = TrainStep(net_b, X, Y, loss, opt_b, fused=fused, batch_size=m, mode="folded")
    return plain, folded


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("decay", [0.0, 0.01])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden,output,loss,fused", CASES)
def test_folded_steps_equal_plain_steps(hidden, output, loss, fused, dtype, decay, backend):
    X, Y = data(50, 6, 4, dtype)
    loss_obj = get_loss(loss)
    a = gn.mlp([6, 11, 7, 4], hidden=hidden, output=output, seed=3, dtype=dtype)
    b = a.copy()
    plain, folded = steps(
        a,
        b,
        X,
        Y,
        loss_obj,
        gn.optim.SGD(lr=0.1, weight_decay=decay),
        gn.optim.SGD(lr=0.1, weight_decay=decay),
        fused,
        9,
    )
    assert (folded.gemm is not None) == (backend == "blas")
    rng = np.random.default_rng(1)
    # Three full batches and a short one (the buffers' first rows).
    for m in (9, 9, 9, 4):
        idx = rng.permutation(50)[:m]
        p1, v1 = plain(idx)
        p2, v2 = folded(idx)
        tol = 2e-6 if dtype == "float32" else 1e-14
        np.testing.assert_allclose(p2, p1, rtol=tol, atol=tol)
        assert v2 == pytest.approx(v1, rel=tol, abs=tol)
        for w1, w2 in zip(a.parameters(), b.parameters(), strict=True):
            np.testing.assert_allclose(w2, w1, rtol=4 * tol, atol=4 * tol)
    assert plain.opt.t == folded.opt.t == 4


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_numpy_fallback_is_bit_for_bit_the_plain_step_without_decay(dtype, monkeypatch):
    # Without BLAS the folded step runs the plain step's operations (xᵀ·delta, then
    # p + (−lr·g), which is p − lr·g exactly), only layer by layer.
    monkeypatch.setenv("GLASSNET_BLAS", "numpy")
    X, Y = data(40, 6, 4, dtype)
    a = gn.mlp([6, 9, 4], seed=5, dtype=dtype)
    b = a.copy()
    plain, folded = steps(
        a, b, X, Y, get_loss("cross_entropy"), gn.optim.SGD(0.2), gn.optim.SGD(0.2), True, 16
    )
    assert folded.gemm is None
    for start in (0, 16, 32):
        idx = np.arange(start, min(start + 16, 40))
        p1, v1 = plain(idx)
        p2, v2 = folded(idx)
        np.testing.assert_array_equal(p1, p2)
        assert v1 == v2
    for w1, w2 in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(w1, w2)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("decay", [0.0, 0.05])
def test_a_folded_step_equals_the_traced_step(decay, backend):
    """The traced step (every intermediate recorded, float64) updates each parameter to
    W_new, b_new; the folded float64 step must give those numbers."""
    X, Y = data(8, 4, 3, "float64", seed=11)
    net = gn.mlp([4, 5, 6, 3], hidden="tanh", seed=7, dtype="float64")
    opt = gn.optim.SGD(lr=0.3, weight_decay=decay)
    trace = gn.trace_step(net, X, Y, loss="cross_entropy", lr=0.3, optimizer=opt)
    step = TrainStep(
        net,
        X,
        Y,
        get_loss("cross_entropy"),
        gn.optim.SGD(lr=0.3, weight_decay=decay),
        fused=True,
        batch_size=8,
        mode="folded",
    )
    p, value = step(np.arange(8))
    np.testing.assert_allclose(p, trace.layers[-1].a, rtol=1e-13, atol=1e-15)
    assert value == pytest.approx(trace.loss, rel=1e-13)
    for layer, lt in zip(net.layers, trace.layers, strict=True):
        np.testing.assert_allclose(layer.W, lt.W_new, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(layer.b, lt.b_new, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_a_folded_float32_step_against_a_float64_step_written_out(backend):
    """The folded step (with weight decay) against the float64 step written out
    (step_reference.against_float64_step)."""
    wd = 0.01
    against_float64_step(
        lambda net, X, Y, lr: TrainStep(
            net,
            X,
            Y,
            get_loss("cross_entropy"),
            gn.optim.SGD(lr=lr, weight_decay=wd),
            fused=True,
            batch_size=33,
            mode="folded",
        ),
        wd=wd,
    )


def test_fit_folds_plain_sgd_only(monkeypatch):
    # The optimiser says whether its update is linear (SGD: yes; momentum, Adam: no).
    monkeypatch.delenv("GLASSNET_STEP", raising=False)
    X, Y = data(20, 4, 3, "float32")
    net = gn.mlp([4, 5, 3], seed=0)
    loss = get_loss("cross_entropy")

    def mode(opt):
        return train_step(net, X, Y, loss, opt, fused=True, batch_size=8).mode

    assert mode(gn.optim.SGD(lr=0.1)) == "folded"
    assert mode(gn.optim.SGD(lr=0.1, weight_decay=0.1)) == "folded"
    assert gn.optim.SGD(lr=0.1, momentum=0.9).linear_update() is None
    assert mode(gn.optim.SGD(lr=0.1, momentum=0.9)) == "plain"
    assert mode(gn.optim.Adam()) == "plain"
    monkeypatch.setenv("GLASSNET_STEP", "plain")
    assert mode(gn.optim.SGD(lr=0.1)) == "plain"


def test_a_diverging_folded_step_leaves_the_weights(monkeypatch):
    X, Y = data(10, 4, 3, "float64")
    X[3, 0] = np.inf  # the loss becomes NaN
    net = gn.mlp([4, 5, 3], seed=0, dtype="float64")
    before = [p.copy() for p in net.parameters()]
    step = TrainStep(
        net,
        X,
        Y,
        get_loss("cross_entropy"),
        gn.optim.SGD(lr=0.1),
        fused=True,
        batch_size=10,
        mode="folded",
    )
    with np.errstate(all="ignore"):
        _, value = step(np.arange(10))
    assert not np.isfinite(value)
    for p, q in zip(net.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)
    assert step.opt.t == 0


def test_a_replaced_weight_matrix_is_the_one_updated():
    # The BLAS call holds W's address; a W replaced between steps must be picked up.
    X, Y = data(12, 4, 3, "float32")
    a = gn.mlp([4, 5, 3], seed=0)
    b = a.copy()
    loss = get_loss("cross_entropy")
    plain, folded = steps(a, b, X, Y, loss, gn.optim.SGD(0.1), gn.optim.SGD(0.1), True, 6)
    plain(np.arange(6))
    folded(np.arange(6))
    b.layers[0].W = b.layers[0].W.copy()
    a.layers[0].W = a.layers[0].W.copy()
    plain.params = a.parameters()
    plain(np.arange(6, 12))
    folded(np.arange(6, 12))
    np.testing.assert_allclose(b.layers[0].W, a.layers[0].W, rtol=2e-6, atol=2e-6)


@pytest.mark.skipif(not HAVE_GEMM, reason=f"no callable gemm in NumPy's BLAS: {blas.reason}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_against_a_float64_product(dtype):
    rng = np.random.default_rng(4)
    g = blas.gemm(dtype)
    assert g is not None
    # ILP64 exactly when the library says it was built with 64-bit integers.
    lib = ctypes.CDLL(g.path)
    config = next(
        getattr(lib, f"{pre}openblas_get_config{suf}")
        for pre in ("", "scipy_")
        for suf in ("", "64_", "_64")
        if hasattr(lib, f"{pre}openblas_get_config{suf}")
    )
    config.restype = ctypes.c_char_p
    assert (g.int_type is ctypes.c_int64) == (b"USE64BITINT" in config())
    A = rng.standard_normal((37, 70)).astype(dtype)[:, 3:64]  # a row stride > width
    B = rng.standard_normal((37, 29)).astype(dtype)
    C = rng.standard_normal((61, 29)).astype(dtype)
    want = 0.9 * C.astype(np.float64) - 0.3 * (A.astype(np.float64).T @ B.astype(np.float64))
    g.at_b_arrays(A, B, C, -0.3, 0.9)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C, want, rtol=tol, atol=tol)
    with pytest.raises(ValueError):
        g.at_b_arrays(A, B, C.T, 1.0, 0.0)


def test_the_data_is_checked_once_and_a_nan_written_later_is_still_named(monkeypatch):
    from glassnet.training import inputs

    calls = []
    real = inputs.check_finite
    monkeypatch.setattr(inputs, "check_finite", lambda X, f: (calls.append(f), real(X, f)))
    X, _ = data(30, 4, 3, "float32")
    y = np.arange(30) % 3
    net = gn.mlp([4, 5, 3], seed=0)
    for _ in range(3):
        net.fit(X, y, optimizer=gn.optim.SGD(0.1), epochs=1, batch_size=8)
    assert calls == ["X"]  # once for this array, not once per fit
    net.fit(X.copy(), y, optimizer=gn.optim.SGD(0.1), epochs=1, batch_size=8)
    assert calls == ["X", "X"]  # another array: checked
    before = [p.copy() for p in net.parameters()]
    X[17, 2] = np.nan  # written after the check
    with pytest.raises(gn.GlassnetError, match="NaN or inf in row 17"):
        net.fit(X, y, optimizer=gn.optim.SGD(0.1), epochs=1, batch_size=8)
    for p, q in zip(net.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden,output,loss,fused", CASES)
def test_halves_with_the_update_folded_equal_the_plain_step(
    hidden, output, loss, fused, dtype, backend
):
    # The halves form only the deltas; W moves once, its columns split between threads.
    X, Y = data(60, 6, 5, dtype)
    loss_obj = get_loss(loss)
    a = gn.mlp([6, 11, 7, 5], hidden=hidden, output=output, seed=3, dtype=dtype)
    b = a.copy()
    kw = dict(fused=fused, batch_size=25)
    plain = TrainStep(a, X, Y, loss_obj, gn.optim.SGD(0.1, weight_decay=0.01), mode="plain", **kw)
    halves = TrainStep(b, X, Y, loss_obj, gn.optim.SGD(0.1, weight_decay=0.01), mode="halves", **kw)
    assert halves.fold and not halves._grads2
    rng = np.random.default_rng(2)
    tol = 2e-6 if dtype == "float32" else 1e-14
    for m in (25, 25, 9):
        idx = rng.permutation(60)[:m]
        p1, v1 = plain(idx)
        p2, v2 = halves(idx)
        np.testing.assert_allclose(p2, p1, rtol=tol, atol=tol)
        assert v2 == pytest.approx(v1, rel=tol, abs=tol)
        for w1, w2 in zip(a.parameters(), b.parameters(), strict=True):
            np.testing.assert_allclose(w2, w1, rtol=4 * tol, atol=4 * tol)
    assert halves.opt.t == 3


def test_a_short_fit_of_a_small_network_does_not_look_for_blas(monkeypatch):
    # Finding NumPy's BLAS costs a few ms once: a one-epoch fit of 64-64-10 on a few
    # hundred rows folds its update in NumPy instead; a long epoch of a large one calls it.
    monkeypatch.delenv("GLASSNET_STEP", raising=False)
    loss = get_loss("cross_entropy")
    X, Y = data(300, 64, 10, "float32")
    small = train_step(
        gn.mlp([64, 64, 10]), X, Y, loss, gn.optim.SGD(0.1), fused=True, batch_size=32,
        epoch_rows=300,
    )  # fmt: skip
    assert small.mode == "folded" and small.gemm is None
    X, Y = data(2000, 784, 10, "float32")
    big = train_step(
        gn.mlp([784, 256, 128, 10]), X, Y, loss, gn.optim.SGD(0.1), fused=True, batch_size=32,
        epoch_rows=2000,
    )  # fmt: skip
    assert big.mode == "folded" and (big.gemm is not None) == HAVE_GEMM
