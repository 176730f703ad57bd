"""The numba kernels of the fast step's element-wise passes (glassnet.kernels; the
kernels themselves live in the plugins: ReLU's bias + activation and mask × delta with
the bias sums, cross-entropy's softmax + loss + fused delta) give the plain step's and
the traced step's numbers, on one thread and in halves, for full and short batches;
activations and losses without kernels fall back to NumPy's passes; ``kernels="auto"``
keeps numba out of a short fit; ``"numba"`` without numba is a one-line error.

References: the plain step (:meth:`Network.forward_backward` then the optimiser, which
never uses the kernels), the traced step (every intermediate recorded), and a float64
step written out in NumPy below.

Tolerances: float64 1e-14 relative, as tests/test_fast_step.py (the folded update
alone differs from the plain step by rounding: W − lr·g inside the gemm).  float32
2e-6 for outputs and 8e-6 for parameters: the output kernel's e^z (numba's expf) and
the folded gemm may each differ from NumPy's by an ulp (1.2e-7) per number, and a step
chains a few such passes; 2e-6 is ~16 ulps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from step_reference import against_float64_step, data

import glassnet as gn
from glassnet import cli, kernels
from glassnet.errors import GlassnetError
from glassnet.losses import get_loss
from glassnet.parallel import TrainStep

HAVE_NUMBA = kernels.available()
#: A child process imports this glassnet (the one under test), wherever it runs.
CHILD_ENV = {**os.environ, "PYTHONPATH": str(Path(gn.__file__).resolve().parents[1])}
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed (glassnet[fast])")

CASES = [
    # relu: hidden kernels; softmax + cross-entropy (fused): the output kernel
    ("relu", "softmax", "cross_entropy", True),
    # relu hidden kernels; the output through NumPy (targets not proved to sum to 1)
    ("relu", "softmax", "cross_entropy", False),
    # relu as the output's activation with mse: its backward kernel takes dL/dp
    ("relu", "relu", "mse", False),
    # no kernels at all: tanh and sigmoid offer none, binary cross-entropy none
    ("tanh", "sigmoid", "binary_cross_entropy", False),
]


@needs_numba
@pytest.mark.parametrize("mode", ["folded", "halves"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden,output,loss,fused", CASES)
def test_kernel_steps_equal_plain_steps(hidden, output, loss, fused, dtype, mode):
    X, Y = data(60, 6, 4, dtype)
    loss_obj = get_loss(loss)
    a = gn.mlp([6, 11, 7, 4], hidden=hidden, output=output, seed=3, dtype=dtype)
    b = a.copy()
    plain = TrainStep(
        a, X, Y, loss_obj, gn.optim.SGD(lr=0.1), fused=fused, batch_size=16, mode="plain"
    )
    fast = TrainStep(
        b,
        X,
        Y,
        loss_obj,
        gn.optim.SGD(lr=0.1),
        fused=fused,
        batch_size=16,
        mode=mode,
        kernels=True,
    )
    assert fast.kernels
    has_hidden = hidden == "relu"
    assert (fast._fwd[0] is not None) == has_hidden
    assert (fast._out is not None) == (loss == "cross_entropy" and fused)
    rng = np.random.default_rng(1)
    tol = 2e-6 if dtype == "float32" else 1e-14
    # Three full batches and two short ones (the buffers' first rows; an odd split).
    for m in (16, 16, 16, 5, 3):
        idx = rng.permutation(60)[:m]
        p1, v1 = plain(idx)
        p2, v2 = fast(idx)
        np.testing.assert_allclose(p2, p1, rtol=tol, atol=tol)
        assert v2 == pytest.approx(v1, rel=tol, abs=tol)
        for w1, w2 in zip(a.parameters(), b.parameters(), strict=True):
            np.testing.assert_allclose(w2, w1, rtol=4 * tol, atol=4 * tol)
    assert plain.opt.t == fast.opt.t == 5


@needs_numba
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hidden_kernels_are_bit_for_bit_numpys_passes(dtype, monkeypatch):
    # ReLU's kernels run the same IEEE operations as NumPy's passes (z + b, max(z, 0),
    # dL/da × 1.0 or 0.0, the sums row after row): the same step with and without them
    # agrees exactly when the output pass is NumPy's in both.
    monkeypatch.setenv("GLASSNET_BLAS", "numpy")
    X, Y = data(40, 5, 3, dtype, seed=4)
    a = gn.mlp([5, 9, 8, 3], hidden="relu", output="identity", seed=1, dtype=dtype)
    b = a.copy()
    loss = get_loss("mse")
    kernel_step = TrainStep(
        b, X, Y, loss, gn.optim.SGD(0.05), fused=False, batch_size=16, mode="folded", kernels=True
    )
    numpy_step = TrainStep(
        a, X, Y, loss, gn.optim.SGD(0.05), fused=False, batch_size=16, mode="folded"
    )
    for start in (0, 16, 32):
        idx = np.arange(start, min(start + 16, 40))
        p1, v1 = numpy_step(idx)
        p2, v2 = kernel_step(idx)
        np.testing.assert_array_equal(p1, p2)
        assert v1 == v2
    for w1, w2 in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(w1, w2)


@needs_numba
def test_a_kernel_step_equals_the_traced_step():
    """The traced step (every intermediate recorded, float64) updates each parameter to
    W_new, b_new; the float64 kernel step must give those numbers."""
    X, Y = data(8, 4, 3, "float64", seed=11)
    net = gn.mlp([4, 5, 6, 3], hidden="relu", seed=7, dtype="float64")
    trace = gn.trace_step(net, X, Y, loss="cross_entropy", lr=0.3, optimizer=gn.optim.SGD(0.3))
    step = TrainStep(
        net,
        X,
        Y,
        get_loss("cross_entropy"),
        gn.optim.SGD(lr=0.3),
        fused=True,
        batch_size=8,
        mode="folded",
        kernels=True,
    )
    assert step._out is not None and step._fwd[0] is not None
    p, value = step(np.arange(8))
    np.testing.assert_allclose(p, trace.layers[-1].a, rtol=1e-13, atol=1e-15)
    assert value == pytest.approx(trace.loss, rel=1e-13)
    for layer, lt in zip(net.layers, trace.layers, strict=True):
        np.testing.assert_allclose(layer.W, lt.W_new, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(layer.b, lt.b_new, rtol=1e-13, atol=1e-15)


@needs_numba
def test_a_float32_kernel_step_against_a_float64_step_written_out():
    """The folded step with the kernels against the float64 step written out
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
            mode="folded",
            kernels=True,
        )
    )


@needs_numba
def test_a_kernel_step_keeps_a_nan_and_does_not_update():
    # A NaN in the data must come out as a NaN loss (the loop reports it), never as a
    # ReLU's 0: the kernels propagate NaN as np.maximum does.
    X, Y = data(8, 4, 3, "float64")
    X[2, 1] = np.nan
    net = gn.mlp([4, 5, 3], seed=0, dtype="float64")
    before = [w.copy() for w in net.parameters()]
    step = TrainStep(
        net,
        X,
        Y,
        get_loss("cross_entropy"),
        gn.optim.SGD(0.1),
        fused=True,
        batch_size=8,
        mode="folded",
        kernels=True,
    )
    _, value = step(np.arange(8))
    assert value != value
    for w0, w in zip(before, net.parameters(), strict=True):
        np.testing.assert_array_equal(w0, w)


@needs_numba
def test_fit_with_numba_kernels_equals_fit_without():
    X, Y = data(96, 6, 3, "float64", seed=2)
    labels = Y.argmax(axis=1)
    nets = []
    for choice in ("numpy", "numba"):
        net = gn.mlp([6, 10, 3], seed=5, dtype="float64")
        net.fit(X, labels, optimizer=gn.optim.SGD(0.2), epochs=3, batch_size=16, kernels=choice)
        nets.append(net)
    for w1, w2 in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        np.testing.assert_allclose(w2, w1, rtol=1e-12, atol=1e-14)


@needs_numba
def test_numba_asked_where_no_kernel_runs_is_said_and_where_they_run_is_silent(tmp_path, capsys):
    """kernels="numba" with Adam or momentum (the stateful optimisers take the plain
    step) runs NumPy's passes: a warning says so; with plain SGD the kernels run and
    nothing is said.  On the CLI the warning is one line."""
    X, Y = data(64, 6, 3, "float64", seed=3)
    labels = Y.argmax(axis=1)
    for kwargs in (
        {"optimizer": gn.optim.Adam(0.01)},
        {"optimizer": gn.optim.Momentum(0.1)},
    ):
        with pytest.warns(UserWarning, match="no compiled kernels to run"):
            gn.mlp([6, 8, 3], seed=1).fit(
                X, labels, epochs=1, batch_size=16, kernels="numba", **kwargs
            )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gn.mlp([6, 8, 3], seed=1).fit(
            X, labels, optimizer=gn.optim.SGD(0.1), epochs=1, batch_size=16, kernels="numba"
        )
    code = cli.main(["train", "--data", "iris", "--epochs", "1", "--kernels", "numba",
                     "--no-progress", "--out", str(tmp_path / "m.npz")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    assert err.count("\n") == 1 and err.startswith("glassnet: warning: kernels='numba' asked")


def test_auto_takes_numpy_for_a_short_fit_and_numba_only_past_the_threshold(monkeypatch):
    assert not kernels.wanted("auto", kernels.MIN_WORK - 1)
    assert not kernels.wanted("numpy", 10 * kernels.MIN_WORK)
    assert kernels.wanted("auto", kernels.MIN_WORK) == HAVE_NUMBA
    monkeypatch.setattr(kernels, "available", lambda: False)
    assert not kernels.wanted("auto", 10 * kernels.MIN_WORK)


def test_a_short_fit_never_imports_numba():
    # In a fresh process (numba may be loaded in this one): a 1-epoch digits fit with
    # the default kernels="auto" leaves numba unimported.
    code = (
        "import sys\n"
        "from sklearn.datasets import load_digits\n"
        "import glassnet as gn\n"
        "X, y = load_digits(return_X_y=True)\n"
        "net = gn.mlp([64, 32, 10], seed=0)\n"
        "net.fit(X / 16, y, optimizer=gn.optim.SGD(0.1), epochs=1)\n"
        "print('numba' in sys.modules, gn.__file__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=CHILD_ENV,
    )
    assert out.stdout.split() == ["False", gn.__file__]


def test_numba_asked_for_without_numba_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(kernels, "available", lambda: False)
    X, Y = data(10, 3, 2, "float32")
    net = gn.mlp([3, 4, 2], seed=0)
    with pytest.raises(GlassnetError) as err:
        net.fit(X, Y.argmax(axis=1), epochs=1, kernels="numba")
    message = str(err.value)
    assert "\n" not in message
    assert "field 'kernels'" in message
    assert "pip install" in message and "[fast]'" in message


def test_compiling_without_numba_is_the_same_error(monkeypatch):
    # The import itself fails (numba uninstalled after the check): jit says so too.
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    monkeypatch.setattr(kernels, "_JITTED", {})
    with pytest.raises(GlassnetError, match=r"field 'kernels'.*pip install.*\[fast\]'"):
        kernels.jit(lambda x: x)


def test_a_wrong_kernels_value_is_a_one_line_error():
    X, Y = data(10, 3, 2, "float32")
    with pytest.raises(GlassnetError, match="field 'kernels': expected one of auto, numpy"):
        gn.mlp([3, 4, 2]).fit(X, Y.argmax(axis=1), epochs=1, kernels="fast")


def test_train_kernels_numba_without_numba_is_one_line_exit_2(tmp_path):
    # A process where `import numba` fails (its entry in sys.modules is None): the CLI
    # refuses before reading anything, in one line, status 2, no traceback.
    code = (
        "import sys\n"
        "sys.modules['numba'] = None\n"
        "from glassnet.cli import main\n"
        "sys.exit(main(['train', '--data', 'digits', '--kernels', 'numba']))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env=CHILD_ENV,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "field '--kernels'" in r.stderr and "[fast]'" in r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_kernels_numba_with_the_torch_engine_is_an_error():
    with pytest.raises(GlassnetError, match="field 'kernels'"):
        gn.training.resolve_engine("torch", None, "numba")


def test_the_cache_goes_to_a_user_folder_when_the_package_is_read_only(tmp_path, monkeypatch):
    # numba writes its cache beside the plugin files; an install there that cannot be
    # written gets $XDG_CACHE_HOME/glassnet/numba, and a NUMBA_CACHE_DIR set is kept.
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(kernels.os, "access", lambda path, mode: False)
    kernels._cache_dir()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "glassnet" / "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    kernels._cache_dir()
    assert os.environ["NUMBA_CACHE_DIR"] == "/somewhere/else"
