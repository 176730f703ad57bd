"""The two-thread training step (glassnet.parallel, "halves") gives the plain step's
numbers within float rounding, for one step and for a whole fit; the plain step is
still the reference; the choice, the worker thread and BLAS's thread count behave."""

from __future__ import annotations

import numpy as np
import pytest
from step_reference import against_float64_step, data

import glassnet as gn
from glassnet import parallel
from glassnet.losses import get_loss
from glassnet.parallel import TrainStep

CASES = [
    ("relu", "softmax", "cross_entropy", True),
    ("relu", "softmax", "cross_entropy", False),
    ("tanh", "sigmoid", "binary_cross_entropy", False),
    ("sigmoid", "identity", "mse", False),
    ("leaky_relu", "softmax", "half_sse", False),
]

OPTIMIZERS = [
    lambda: gn.optim.SGD(lr=0.05),
    lambda: gn.optim.SGD(lr=0.05, momentum=0.9),
    lambda: gn.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    lambda: gn.optim.SGD(lr=0.05, weight_decay=0.01),
    lambda: gn.optim.Adam(lr=0.01),
    lambda: gn.optim.RMSprop(lr=0.01),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden,output,loss,fused", CASES)
@pytest.mark.parametrize("m", [9, 2, 40])
def test_one_halves_step_equals_the_plain_step(hidden, output, loss, fused, dtype, m):
    X, Y = data(50, 6, 4, dtype)
    loss_obj = get_loss(loss)
    a = gn.mlp([6, 11, 7, 4], hidden=hidden, output=output, seed=3, dtype=dtype)
    b = a.copy()
    idx = np.random.default_rng(1).permutation(50)[:m]
    plain = TrainStep(
        a, X, Y, loss_obj, gn.optim.SGD(lr=0.1), fused=fused, batch_size=m, mode="plain"
    )
    # fold=False: the halves' own gradients, summed (the folded update is
    # tests/test_fast_step.py's).
    halves = TrainStep(
        b,
        X,
        Y,
        loss_obj,
        gn.optim.SGD(lr=0.1),
        fused=fused,
        batch_size=m,
        mode="halves",
        fold=False,
    )
    p1, v1 = plain(idx)
    p2, v2 = halves(idx)
    tol = 2e-6 if dtype == "float32" else 1e-14
    # Each row's output is computed the same way on both paths.
    np.testing.assert_allclose(p2, p1, rtol=tol, atol=tol)
    assert v2 == pytest.approx(v1, rel=tol, abs=tol)
    # The gradients are sums of the halves' sums: the same numbers in another order.
    for g1, g2 in zip(plain.grads, halves.grads, strict=True):
        scale = float(np.abs(g1).max()) + 1.0
        np.testing.assert_allclose(g2, g1, rtol=0, atol=4 * tol * scale)
    for w1, w2 in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(w2, w1, rtol=tol, atol=tol)


def test_halves_step_against_a_float64_reference_written_out():
    """The float32 halves step against the float64 step written out
    (step_reference.against_float64_step)."""
    against_float64_step(
        lambda net, X, Y, lr: TrainStep(
            net,
            X,
            Y,
            get_loss("cross_entropy"),
            gn.optim.SGD(lr=lr),
            fused=True,
            batch_size=33,
            mode="halves",
        )
    )


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_fit_in_halves_is_within_1e_5_of_the_plain_fit(make, monkeypatch):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(203, 12)).astype(np.float32)  # 203 = 5 batches of 40 and one of 3
    y = rng.integers(0, 4, 203)
    results = []
    for mode in ("plain", "halves"):
        monkeypatch.setenv("GLASSNET_STEP", mode)
        net = gn.mlp([12, 24, 16, 4], seed=1)
        hist = net.fit(X, y, optimizer=make(), epochs=4, batch_size=40, validation_split=0.1)
        results.append((net, hist))
    (a, ha), (b, hb) = results
    for w1, w2 in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(w2, w1, rtol=0, atol=1e-5)
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(hb[key], ha[key], rtol=0, atol=1e-5)


class FakeBlas:
    def __init__(self, threads: int, lib: object = "a BLAS") -> None:
        self.threads, self.lib = threads, lib


def test_fit_chooses_halves_for_large_batches_on_two_blas_threads_only(monkeypatch):
    monkeypatch.delenv("GLASSNET_STEP", raising=False)
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    monkeypatch.setattr(parallel, "blas", lambda: FakeBlas(2))
    net = gn.mlp([784, 256, 128, 10])
    assert parallel.choose(net, 32) == "plain"
    assert parallel.choose(net, 128) == "plain"
    assert parallel.choose(net, 1024) == "halves"
    assert parallel.choose(gn.mlp([4, 3, 2]), 4096) == "plain"  # too little work per row
    assert parallel.choose(net, 1024, plain_only=True) == "plain"  # dropout, row weights
    monkeypatch.setenv("GLASSNET_STEP", "plain")
    assert parallel.choose(net, 1024) == "plain"
    monkeypatch.setenv("GLASSNET_STEP", "halves")
    assert parallel.choose(net, 32) == "halves"
    monkeypatch.delenv("GLASSNET_STEP")
    # BLAS told to use one thread (the caller wants one core), or more than two (BLAS
    # alone would use more cores than two halves), or one core: plain.
    for threads in (1, 4):
        monkeypatch.setattr(parallel, "blas", lambda threads=threads: FakeBlas(threads))
        assert parallel.choose(net, 1024) == "plain"
    monkeypatch.setattr(parallel, "blas", lambda: FakeBlas(2))
    monkeypatch.setattr(parallel, "_cores", lambda: 1)
    assert parallel.choose(net, 1024) == "plain"


def test_without_threadpoolctl_the_plain_path_runs(monkeypatch):
    monkeypatch.delenv("GLASSNET_STEP", raising=False)
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    monkeypatch.setattr(parallel, "blas", lambda: FakeBlas(1, lib=None))
    assert parallel.choose(gn.mlp([784, 256, 128, 10]), 1024) == "plain"


def _numpys_blas():
    """NumPy's BLAS as the halves step sees it.  Skips only when threadpoolctl (the
    optional dependency that sets BLAS's threads) is not installed; installed, it must
    find the BLAS NumPy uses, or the halves step would silently never run."""
    pytest.importorskip(
        "threadpoolctl", reason="threadpoolctl is not installed: BLAS threads are never changed"
    )
    b = parallel.blas()
    assert b.lib is not None, "threadpoolctl is installed but finds no BLAS NumPy uses"
    return b


def test_a_halves_step_leaves_blas_threads_as_they_were():
    b = _numpys_blas()
    before = b.lib.get_num_threads()
    X, Y = data(64, 6, 4, "float32")
    net = gn.mlp([6, 8, 4])
    step = TrainStep(
        net,
        X,
        Y,
        get_loss("cross_entropy"),
        gn.optim.SGD(),
        fused=True,
        batch_size=64,
        mode="halves",
    )
    step(np.arange(64))
    assert b.lib.get_num_threads() == before


def test_the_worker_hands_back_errors_and_the_callers_error_state():
    w = parallel.worker()
    w.start(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        w.join()
    with np.errstate(over="ignore", invalid="raise"):
        w.start(np.geterr)
        got = w.join()
    assert got["over"] == "ignore" and got["invalid"] == "raise"
    w.start(lambda: 42)  # still working after an error
    assert w.join() == 42


def test_a_diverging_fit_in_halves_stops_and_restores_like_the_plain_one(monkeypatch):
    rng = np.random.default_rng(2)
    X = (rng.normal(size=(64, 5)) * 1e3).astype(np.float32)
    y = rng.integers(0, 3, 64)
    errors, weights = [], []
    for mode in ("plain", "halves"):
        monkeypatch.setenv("GLASSNET_STEP", mode)
        net = gn.mlp([5, 16, 3], seed=0)
        with pytest.raises(gn.GlassnetError) as err:
            net.fit(X, y, optimizer=gn.optim.SGD(lr=1e6), epochs=3, batch_size=32)
        errors.append(str(err.value))
        weights.append(net.parameters())
    # The same batch diverges, and both restore the weights of the same epoch's end.
    assert errors[0] == errors[1]
    assert "got nan at epoch 2, batch 2" in errors[0]
    for w1, w2 in zip(*weights, strict=True):
        assert np.isfinite(w2).all()
        np.testing.assert_allclose(w2, w1, rtol=1e-5)


def test_a_forked_child_gets_its_own_worker_thread():
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("this platform cannot fork")
    w = parallel.worker()  # started in the parent
    w.start(lambda: 1)
    assert w.join() == 1
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        # In the child, the parent's thread does not exist: a halves step must not hang.
        assert pool.apply_async(_child_halves_step).get(timeout=60) == 64


def _child_halves_step() -> int:
    X, Y = data(64, 6, 4, "float32")
    net = gn.mlp([6, 8, 4])
    step = TrainStep(
        net,
        X,
        Y,
        get_loss("cross_entropy"),
        gn.optim.SGD(),
        fused=True,
        batch_size=64,
        mode="halves",
    )
    p, _ = step(np.arange(64))
    return p.shape[0]


def test_an_interrupted_wait_retires_the_worker(monkeypatch):
    import threading

    release = threading.Event()
    w = parallel.worker()
    w.start(lambda: release.wait(30))

    class Interrupted:
        def acquire(self):
            raise KeyboardInterrupt

    done, w._done = w._done, Interrupted()
    with pytest.raises(KeyboardInterrupt):
        w.join()
    w._done = done
    # Its thread may still be busy with that job: the next step gets a fresh worker.
    assert w.broken and parallel.worker() is not w
    release.set()
    fresh = parallel.worker()
    fresh.start(lambda: 7)
    assert fresh.join() == 7


@pytest.mark.parametrize("case", ["dropout", "sample_weight"])
def test_dropout_and_row_weights_keep_the_plain_step(case, monkeypatch):
    # Their per-batch masks and weights are the plain step's business: even forced,
    # halves is not used, so the numbers are the plain step's bit for bit.
    rng = np.random.default_rng(8)
    X = rng.normal(size=(90, 6)).astype(np.float32)
    y = rng.integers(0, 3, 90)
    options = {"sample_weight": rng.random(90) + 0.5} if case == "sample_weight" else {}
    results = []
    for mode in ("plain", "halves"):
        monkeypatch.setenv("GLASSNET_STEP", mode)
        net = gn.mlp([6, 10, 3], seed=2, dropout=0.3 if case == "dropout" else 0.0)
        net.fit(X, y, optimizer=gn.optim.SGD(lr=0.1), epochs=2, batch_size=30, **options)
        results.append(net.parameters())
    for w1, w2 in zip(*results, strict=True):
        np.testing.assert_array_equal(w2, w1)


def test_an_unknown_glassnet_step_is_an_error(monkeypatch):
    monkeypatch.setenv("GLASSNET_STEP", "fast")
    with pytest.raises(gn.GlassnetError, match="GLASSNET_STEP"):
        parallel.choose(gn.mlp([4, 3, 2]), 1024)


def test_a_halves_step_puts_back_the_callers_blas_limit():
    b = _numpys_blas()
    import threadpoolctl

    X, Y = data(64, 6, 4, "float32")
    net = gn.mlp([6, 8, 4])
    step = TrainStep(
        net,
        X,
        Y,
        get_loss("cross_entropy"),
        gn.optim.SGD(),
        fused=True,
        batch_size=64,
        mode="halves",
    )
    outside = b.lib.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        step(np.arange(64))
        assert b.lib.get_num_threads() == 1
    assert b.lib.get_num_threads() == outside


def test_in_a_halves_fit_blas_has_its_threads_back_at_each_epochs_end(monkeypatch):
    b = _numpys_blas()
    from glassnet.training import Callback

    outside = b.lib.get_num_threads()
    seen = []

    class Threads(Callback):
        def on_epoch_end(self, net, epoch, logs):
            seen.append(b.lib.get_num_threads())

    monkeypatch.setenv("GLASSNET_STEP", "halves")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(101, 6)).astype(np.float32)  # batches of 25, 25, 25, 25, 1
    y = rng.integers(0, 3, 101)
    gn.mlp([6, 8, 3]).fit(X, y, epochs=3, batch_size=25, callbacks=[Threads()])
    assert seen == [outside] * 3
    assert b.lib.get_num_threads() == outside
