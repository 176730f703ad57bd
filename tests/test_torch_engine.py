"""The PyTorch engine (``fit(engine="torch")``, ``glassnet train --engine torch``).

References: the step written out with NumPy in the test itself (shares no code with
glassnet), and the NumPy engine — whose steps are tested against the traced step, finite
differences and PyTorch autograd elsewhere — in float64: one step to float64 rounding,
three epochs far inside 1e-6, for every optimiser, loss, dropout, row weights and a
normalised network.  Skipped only when torch is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import glassnet as gn  # noqa: E402
from glassnet import cli  # noqa: E402
from glassnet.errors import GlassnetError  # noqa: E402
from glassnet.layers import Dense  # noqa: E402
from glassnet.layers.batch_norm import BatchNorm  # noqa: E402
from glassnet.layers.layer_norm import LayerNorm  # noqa: E402
from glassnet.optim import SGD, Adam, AdamW, Momentum, Optimizer, RMSprop, StepLR  # noqa: E402
from glassnet.training import Callback, EarlyStopping  # noqa: E402
from glassnet.training.torch_engine import TorchEngine  # noqa: E402

Array = np.ndarray
SRC = Path(gn.__file__).resolve().parents[1]

OPTIMIZERS: dict[str, Callable[[], Optimizer]] = {
    "sgd": lambda: SGD(lr=0.2),
    "momentum": lambda: Momentum(lr=0.1, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda: Momentum(lr=0.1, momentum=0.8, nesterov=True),
    "adam": lambda: Adam(lr=0.01, weight_decay=1e-3),
    "adamw": lambda: AdamW(lr=0.01, weight_decay=0.05),
    "rmsprop": lambda: RMSprop(lr=0.005),
}
#: (output activation, loss): every loss a fit trains with on its natural output.
LOSSES = [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"), ("identity", "mse")]


def _task(output: str, n: int = 40, seed: int = 2) -> tuple[Array, Array, int]:
    """Inputs (n, 4), targets for ``output`` and the output width."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if output == "softmax":
        return X, rng.integers(0, 3, size=n), 3
    if output == "sigmoid":
        return X, rng.integers(0, 2, size=n).astype(float), 1
    return X, rng.normal(size=(n, 2)), 2


def _pair(
    make: Callable[[], gn.Model],
    X: Array,
    y: Array,
    optimizer: Callable[[], Optimizer],
    **options: Any,
) -> tuple[gn.Model, gn.Model]:
    """The same model fitted by the NumPy engine and by the torch engine, each with an
    optimiser of its own from ``optimizer``."""
    ours, theirs = make(), make()
    ours.fit(X, y, engine="numpy", optimizer=optimizer(), **options)
    theirs.fit(X, y, engine="torch", device="cpu", optimizer=optimizer(), **options)
    return ours, theirs


def _assert_same(a: gn.Model, b: gn.Model, rtol: float, atol: float) -> None:
    """Parameters, constants (running statistics), optimiser state and step count, and
    the logged history."""
    for la, lb in zip(a.layers, b.layers, strict=True):
        for name in (*la.params, *la.constants):
            np.testing.assert_allclose(
                getattr(lb, name), getattr(la, name), rtol=rtol, atol=atol, err_msg=name
            )
    sa, sb = a.train_state, b.train_state
    assert sa is not None and sb is not None
    assert sb.optimizer.t == sa.optimizer.t
    state_a, state_b = sa.optimizer.state_arrays(), sb.optimizer.state_arrays()
    assert state_a.keys() == state_b.keys()
    for key, value in state_a.items():
        np.testing.assert_allclose(state_b[key], value, rtol=rtol, atol=atol, err_msg=key)
    assert sb.history.epoch == sa.history.epoch
    assert sb.history.history.keys() == sa.history.history.keys()
    for key in sa.history.history:  # loss, lr, accuracy, val_*
        np.testing.assert_allclose(sb.history[key], sa.history[key], rtol=rtol, atol=atol)


def _mlp(sizes: list[int], output: str, **options: Any) -> Callable[[], gn.Model]:
    return lambda: gn.mlp(sizes, hidden="tanh", output=output, seed=5, dtype="float64", **options)


# -- against the step written out ---------------------------------------------------------
def test_one_torch_step_is_the_step_written_out_with_numpy() -> None:
    # softmax + cross-entropy, row weights, plain SGD, one full batch, by hand:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(6, 3))
    y = np.array([0, 2, 1, 1, 0, 2])
    w = rng.uniform(0.5, 2.0, size=6)
    model = gn.mlp([3, 4, 3], hidden="tanh", output="softmax", seed=3, dtype="float64")
    W1, b1, W2, b2 = (p.copy() for p in model.parameters())
    model.fit(
        X, y, epochs=1, batch_size=6, shuffle=False, optimizer=SGD(lr=0.5), sample_weight=w,
        engine="torch",
    )  # fmt: skip
    ws = w / w.mean()  # fit scales row weights to mean 1 over the training rows
    Y = np.eye(3)[y]
    a1 = np.tanh(X @ W1 + b1)
    z2 = a1 @ W2 + b2
    p = np.exp(z2 - z2.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -(ws * np.log(p[np.arange(6), y])).sum() / 6
    delta2 = ws[:, None] * (p - Y) / 6  # softmax + cross-entropy: dL/dz = w·(p − y)/B
    delta1 = (delta2 @ W2.T) * (1 - a1**2)  # tanh' = 1 − a²
    expected = [
        W1 - 0.5 * X.T @ delta1, b1 - 0.5 * delta1.sum(axis=0),
        W2 - 0.5 * a1.T @ delta2, b2 - 0.5 * delta2.sum(axis=0),
    ]  # fmt: skip
    for got, want in zip(model.parameters(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert model.train_state is not None
    np.testing.assert_allclose(model.train_state.history["loss"], [loss], rtol=1e-14)


# -- against the NumPy engine ---------------------------------------------------------------
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize(("output", "loss"), LOSSES)
def test_one_step_equals_the_numpy_engines_to_float64_rounding(
    optimizer: str, output: str, loss: str
) -> None:
    X, y, n_out = _task(output)
    a, b = _pair(
        _mlp([4, 6, n_out], output), X, y, loss=loss, epochs=1, batch_size=40,
        optimizer=OPTIMIZERS[optimizer],
    )  # fmt: skip
    assert a.train_state is not None and a.train_state.optimizer.t == 1
    _assert_same(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize(("output", "loss"), LOSSES)
def test_three_epochs_agree_with_the_numpy_engine(optimizer: str, output: str, loss: str) -> None:
    # Row weights and a schedule too; the issue asks 1e-6, the engines agree far closer.
    X, y, n_out = _task(output)
    weights = np.random.default_rng(4).uniform(0.2, 2.0, size=40)

    def scheduled() -> Optimizer:
        opt = OPTIMIZERS[optimizer]()
        opt.schedule = StepLR(step_size=1, gamma=0.5)
        return opt

    a, b = _pair(
        _mlp([4, 6, 5, n_out], output), X, y, loss=loss, epochs=3, batch_size=7,
        optimizer=scheduled, sample_weight=weights,
    )  # fmt: skip
    assert a.train_state is not None
    lr = a.train_state.optimizer.lr
    assert a.train_state.history["lr"] == [lr, lr / 2, lr / 4]
    _assert_same(a, b, rtol=1e-9, atol=1e-11)


def test_class_weights_and_validation_agree() -> None:
    X, y, _ = _task("softmax", n=60)
    a, b = _pair(
        _mlp([4, 6, 3], "softmax"), X, y, epochs=3, batch_size=8, optimizer=lambda: Adam(lr=0.01),
        class_weight="balanced", validation_split=0.25,
    )  # fmt: skip
    _assert_same(a, b, rtol=1e-9, atol=1e-11)


def test_dropout_drops_the_same_units_from_the_same_stream() -> None:
    X, y, _ = _task("softmax")
    a, b = _pair(
        _mlp([4, 8, 6, 3], "softmax", dropout=0.4), X, y, epochs=3, batch_size=8,
        optimizer=lambda: Momentum(lr=0.1),
    )  # fmt: skip
    _assert_same(a, b, rtol=1e-9, atol=1e-11)
    # The masks were drawn from the fit's stream in the same order: it ends in one state.
    assert a.train_state is not None and b.train_state is not None
    assert a.train_state.rng.random() == b.train_state.rng.random()
    # and dropout did something: without it the weights differ
    c = _mlp([4, 8, 6, 3], "softmax")()
    c.fit(X, y, epochs=3, batch_size=8, optimizer=Momentum(lr=0.1), engine="torch")
    assert not np.allclose(c.parameters()[0], b.parameters()[0])


def _normalised() -> gn.Model:
    rng = np.random.default_rng(12)
    return gn.Model(
        [
            Dense(rng.normal(0, 0.7, (4, 5)), rng.normal(0, 0.1, 5), "identity"),
            BatchNorm(5, activation="relu"),
            LayerNorm(5, gamma=rng.uniform(0.5, 1.5, 5), activation="tanh"),
            Dense(rng.normal(0, 0.7, (5, 3)), np.zeros(3), "softmax"),
        ]
    )


def test_a_batch_norm_network_trains_to_the_same_weights_and_running_statistics() -> None:
    # Momentum, not Adam: the bias of the Dense layer before batch norm has a gradient
    # that is zero up to rounding (the normalisation takes the mean out), and Adam
    # divides it by its own tiny √v̂ — it turns float rounding into 1e-9 differences.
    X, y, _ = _task("softmax", n=48)
    a, b = _pair(_normalised, X, y, lambda: Momentum(lr=0.05), epochs=3, batch_size=8)
    _assert_same(a, b, rtol=1e-9, atol=1e-11)
    bn = b.layers[1]
    assert isinstance(bn, BatchNorm)
    assert not np.allclose(bn.running_mean, 0)  # the running statistics moved


def test_early_stopping_stops_at_the_same_epoch_and_restores_the_same_weights() -> None:
    X, y, _ = _task("softmax", n=60, seed=9)  # random labels: validation loss soon rises

    def make() -> gn.Model:
        return gn.mlp([4, 32, 3], seed=1, dtype="float64")

    options: dict[str, Any] = {
        "epochs": 60, "batch_size": 8, "validation_split": 0.3, "optimizer": Adam(lr=0.02),
    }  # fmt: skip
    a = make()
    a.fit(X, y, engine="numpy", callbacks=[EarlyStopping(patience=3)], **options)
    options["optimizer"] = Adam(lr=0.02)
    b = make()
    b.fit(X, y, engine="torch", callbacks=[EarlyStopping(patience=3)], **options)
    assert a.train_state is not None and b.train_state is not None
    stopped = a.train_state.history.epoch
    assert len(stopped) < 60  # it did stop early
    assert b.train_state.history.epoch == stopped
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(q, p, rtol=1e-9, atol=1e-11)


def test_a_fit_continued_or_resumed_on_either_engine_is_one_fit() -> None:
    # The optimiser's state crosses the boundary both ways (and through a model file).
    X, y, _ = _task("softmax")
    make = _mlp([4, 6, 3], "softmax")
    whole = make()
    whole.fit(X, y, epochs=3, batch_size=8, optimizer=Adam(lr=0.01), seed=3)
    numpy_then_torch = make()
    numpy_then_torch.fit(X, y, epochs=1, batch_size=8, optimizer=Adam(lr=0.01), seed=3)
    numpy_then_torch.fit(X, y, epochs=2, batch_size=8, engine="torch")
    _assert_same(whole, numpy_then_torch, rtol=1e-9, atol=1e-11)


def test_a_torch_fit_resumed_from_its_model_file_continues_it(tmp_path: Path) -> None:
    X, y, _ = _task("softmax")
    make = _mlp([4, 6, 3], "softmax")
    whole = make()
    whole.fit(X, y, epochs=3, batch_size=8, optimizer=Momentum(lr=0.1), seed=3)
    first = make()
    first.fit(X, y, epochs=2, batch_size=8, optimizer=Momentum(lr=0.1), seed=3, engine="torch")
    first.save(tmp_path / "m.npz")
    resumed = gn.load(tmp_path / "m.npz")
    resumed.fit(X, y, epochs=1, batch_size=8, engine="torch")
    _assert_same(whole, resumed, rtol=1e-9, atol=1e-11)


def test_weights_a_callback_changes_between_epochs_are_the_ones_trained_on() -> None:
    class Halve(Callback):
        def on_epoch_end(self, net, epoch, logs):  # type: ignore[no-untyped-def]
            net.parameters()[0][...] *= 0.5

    X, y, _ = _task("softmax")
    a, b = _pair(
        _mlp([4, 6, 3], "softmax"), X, y, epochs=3, batch_size=8, optimizer=lambda: SGD(lr=0.1),
        callbacks=[Halve()],
    )  # fmt: skip
    _assert_same(a, b, rtol=1e-9, atol=1e-11)


def test_a_diverging_torch_fit_stops_and_restores_like_the_numpy_one() -> None:
    X, y, _ = _task("identity")
    y = y * 1e200  # squared errors of order 1e400: inf at the first batch
    make = _mlp([4, 6, 2], "identity")
    errors, models = [], []
    for engine in ("numpy", "torch"):
        model = make()
        with pytest.raises(GlassnetError) as info:
            model.fit(X, y, epochs=2, batch_size=8, optimizer=SGD(lr=1.0), engine=engine)
        errors.append(info.value)
        models.append(model)
    assert errors[1].field == "loss" and str(errors[1]) == str(errors[0])
    for p, q, r in zip(
        models[0].parameters(), models[1].parameters(), make().parameters(), strict=True
    ):
        np.testing.assert_array_equal(q, r)  # the weights from before training
        np.testing.assert_array_equal(p, r)


# -- the model file, without torch -----------------------------------------------------------
def _without_torch(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python where ``import torch`` fails."""
    script = "import sys\nsys.modules['torch'] = None  # import torch: ImportError\n" + code
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_model_file_of_a_torch_fit_loads_and_predicts_without_torch(tmp_path: Path) -> None:
    X, y, _ = _task("softmax")
    model = gn.mlp([4, 6, 3], seed=2)  # float32, the default
    model.fit(X, y, epochs=2, batch_size=8, engine="torch")
    model.save(tmp_path / "m.npz")
    np.save(tmp_path / "X.npy", X)
    done = _without_torch(
        textwrap.dedent(f"""
            import json, numpy as np, glassnet as gn
            m = gn.load({str(tmp_path / "m.npz")!r})
            p = m.predict_proba(np.load({str(tmp_path / "X.npy")!r}))
            assert "torch" not in [k for k, v in sys.modules.items() if v is not None]
            print(json.dumps(p.astype(float).tolist()))
        """)
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.array(json.loads(done.stdout)), model.predict_proba(X))


def test_without_torch_the_torch_engine_is_one_error_saying_how_to_install() -> None:
    done = _without_torch(
        textwrap.dedent("""
            import numpy as np, glassnet as gn
            from glassnet.errors import GlassnetError
            m = gn.mlp([2, 3, 2])
            m.fit(np.zeros((4, 2)), [0, 1, 0, 1], epochs=1)  # numpy: fine
            try:
                m.fit(np.zeros((4, 2)), [0, 1, 0, 1], epochs=1, engine="torch")
            except GlassnetError as err:
                print(err.field, "|", err)
        """)
    )
    assert done.returncode == 0, done.stderr
    field, message = done.stdout.strip().split(" | ")
    assert field == "engine" and "pip install" in message and "\n" not in message


# -- choosing an engine ------------------------------------------------------------------------
def test_engine_names_devices_and_instances() -> None:
    X, y, _ = _task("softmax", n=8)
    model = gn.mlp([4, 3, 3])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"engine": "jax"}, "engine"),
        ({"engine": "numpy", "device": "cuda"}, "device"),
        ({"engine": "torch", "device": "tpu"}, "device"),
        ({"engine": "torch", "device": "cuda:99"}, "device"),  # no machine has 100 GPUs
        ({"engine": TorchEngine(), "device": "cpu"}, "device"),
    ]
    before = [p.copy() for p in model.parameters()]
    for options, field in cases:
        with pytest.raises(GlassnetError) as info:
            model.fit(X, y, epochs=1, **options)
        assert info.value.field == field, options
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)  # refused before any step
    model.fit(X, y, epochs=1, engine="auto")  # numpy on the CPU
    model.fit(X, y, epochs=1, engine=TorchEngine("cpu"))
    assert model.train_state is not None and model.train_state.epoch == 2


def test_the_numpy_engine_is_refused_under_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    from glassnet.training import resolve_engine

    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets in each process
    with pytest.raises(GlassnetError) as info:
        resolve_engine("numpy")
    assert info.value.field == "engine" and "torchrun" in str(info.value)


def test_an_optimiser_without_a_pytorch_form_is_refused_by_name() -> None:
    class Halving(SGD):
        """SGD under another name, with no torch_spec of its own."""

        name = "halving_test_only"

        def torch_spec(self) -> tuple[str, dict[str, Any]]:
            raise NotImplementedError

    X, y, _ = _task("softmax", n=8)
    with pytest.raises(GlassnetError) as info:
        gn.mlp([4, 3, 3]).fit(X, y, epochs=1, optimizer=Halving(lr=0.1), engine="torch")
    assert info.value.field == "optimizer" and "Halving" in str(info.value)


# -- the command line -------------------------------------------------------------------------
def _train(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(["train", *argv])
    return code, capsys.readouterr().err


def test_glassnet_train_engine_torch_writes_the_numpy_engines_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    label = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    csv = tmp_path / "d.csv"
    lines = ["a,b,c,label", *(f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(X, label, strict=True))]
    csv.write_text("\n".join(lines) + "\n")
    files = {}
    for engine in ("numpy", "torch"):
        out = tmp_path / f"{engine}.npz"
        argv = ["--data", str(csv), "--layers", "5", "--epochs", "3", "--dtype", "float64",
                "--engine", engine, "--out", str(out), "--no-progress", "--json"]  # fmt: skip
        code, err = _train(capsys, *argv)
        assert code == 0, err
        with np.load(out, allow_pickle=False) as npz:
            files[engine] = {k: npz[k] for k in npz.files}
    assert files["numpy"].keys() == files["torch"].keys()
    for key, value in files["numpy"].items():
        if key == "meta":
            continue
        np.testing.assert_allclose(files["torch"][key], value, rtol=1e-9, atol=1e-11, err_msg=key)
    assert gn.load(tmp_path / "torch.npz").predict(X).shape == (80,)


@pytest.mark.parametrize(
    ("argv", "field"),
    [(["--engine", "torch", "--device", "cuda:99"], "--device"),
     (["--engine", "numpy", "--device", "cuda"], "--device"),
     (["--engine", "torch", "--device", "abacus"], "--device")],
)  # fmt: skip
def test_glassnet_train_refuses_a_device_in_one_line_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], field: str
) -> None:
    out = tmp_path / "m.npz"
    code, err = _train(capsys, "--data", "nowhere.csv", "--out", str(out), *argv)
    assert code == 2
    assert err.count("\n") == 1 and field in err
    assert not out.exists()


def test_glassnet_train_without_torch_exits_2_saying_how_to_install(tmp_path: Path) -> None:
    out = tmp_path / "m.npz"
    done = _without_torch(
        "from glassnet.cli import main\n"
        f"sys.exit(main(['train', '--data', 'iris', '--engine', 'torch', '--out', {str(out)!r}]))"
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "--engine" in done.stderr
    assert "pip install" in done.stderr
    assert not out.exists()


# -- data parallel: torchrun ------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _glassnet(argv: list[str], processes: int = 1) -> subprocess.CompletedProcess[str]:
    """``glassnet train`` in a fresh process, or under torchrun with ``processes`` on the
    loopback (gloo); bounded in time, so a hung rendezvous fails instead of waiting."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "glassnet"]
    if processes > 1:
        launch = [
            sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
            "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), "-m", "glassnet",
        ]  # fmt: skip
    return subprocess.run(
        [*launch, "train", *argv], capture_output=True, text=True, env=env, timeout=300
    )


def _csv(path: Path, n: int = 90) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    label = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    lines = ["a,b,c,label", *(f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(X, label, strict=True))]
    path.write_text("\n".join(lines) + "\n")
    return path


def _model_arrays(path: Path) -> dict[str, Array]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k != "meta"}


def test_torchrun_two_processes_equal_one_process_with_the_whole_batch(tmp_path: Path) -> None:
    # 68 training rows in batches of 15: four of 8 + 7 rows (unequal parts), one of 4 + 4; with
    # dropout (each process takes its rows of the batch's masks).  Then the two-process
    # model resumed for a third epoch on one process, and the one-process model on two,
    # equal three epochs on one.
    data = _csv(tmp_path / "d.csv")
    common = ["--data", str(data), "--layers", "5", "--dtype", "float64", "--engine", "torch",
              "--batch-size", "15", "--dropout", "0.2", "--no-progress", "--json"]  # fmt: skip
    two, one, three = (tmp_path / f"{k}.npz" for k in ("two", "one", "three"))
    # (each process also checks its first step against the step graph's)
    done = _glassnet([*common, "--epochs", "2", "--check-first-step", "--out", str(two)], 2)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["epochs"] == 2  # rank 0 alone printed the summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "two.npz"]  # no checkpoint
    done = _glassnet([*common, "--epochs", "2", "--out", str(one)])
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = _model_arrays(one), _model_arrays(two)
    assert a.keys() == b.keys()
    for key, value in a.items():
        np.testing.assert_allclose(b[key], value, rtol=1e-9, atol=1e-12, err_msg=key)
    # Resumed on the other number of processes: 2 -> 1, and 1 -> 2.
    three_on_two = tmp_path / "three_on_two.npz"
    for model, out, processes in ((two, three, 1), (one, three_on_two, 2)):
        resumed = _glassnet(
            ["--resume", str(model), "--epochs", "3", "--out", str(out), "--engine", "torch",
             "--no-progress", "--json"], processes,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole = tmp_path / "whole.npz"
    done = _glassnet([*common, "--epochs", "3", "--out", str(whole)])
    assert done.returncode == 0, done.stderr[-3000:]
    a = _model_arrays(whole)
    for c in (_model_arrays(three), _model_arrays(three_on_two)):
        for key, value in a.items():
            np.testing.assert_allclose(c[key], value, rtol=1e-9, atol=1e-12, err_msg=key)


# -- --check-first-step ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_first_step_check_passes_a_right_engine_and_changes_nothing(dtype: str) -> None:
    from glassnet.training import FirstStepCheck

    X, y, _ = _task("softmax")
    weights = np.random.default_rng(4).uniform(0.2, 2.0, size=40)

    def make() -> gn.Model:
        return gn.mlp([4, 6, 3], seed=5, dtype=dtype, dropout=0.3)

    checked, plain = make(), make()
    check = FirstStepCheck(TorchEngine())
    options: dict[str, Any] = {"epochs": 2, "batch_size": 8, "sample_weight": weights}
    checked.fit(X, y, engine=check, optimizer=Adam(lr=0.01), **options)
    plain.fit(X, y, engine="torch", optimizer=Adam(lr=0.01), **options)
    assert check.difference is not None and check.tolerance is not None
    assert check.difference <= check.tolerance
    # The check's copies left the fit's stream and weights alone.
    for p, q in zip(checked.parameters(), plain.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_the_first_step_check_stops_a_loss_whose_torch_form_disagrees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from glassnet.losses import get_loss
    from glassnet.training import FirstStepCheck

    cls = type(get_loss("cross_entropy"))
    right = cls.torch_terms
    # A plugin whose PyTorch form is 1% off its NumPy form: what the check is for.
    monkeypatch.setattr(cls, "torch_terms", lambda self, t, p, y: right(self, t, p, y) * 1.01)
    X, y, _ = _task("softmax")
    model = gn.mlp([4, 6, 3], seed=5, dtype="float64")
    before = [p.copy() for p in model.parameters()]
    with pytest.raises(GlassnetError) as info:
        model.fit(X, y, epochs=1, batch_size=8, engine=FirstStepCheck(TorchEngine()))
    assert info.value.field == "check-first-step" and "the loss" in str(info.value)
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)  # put back as before the step
    assert model.train_state is not None and model.train_state.optimizer.t == 0


def test_glassnet_train_check_first_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from glassnet.losses import get_loss

    data = _csv(tmp_path / "d.csv")
    out = tmp_path / "m.npz"
    argv = ["--data", str(data), "--layers", "5", "--epochs", "1", "--engine", "torch",
            "--check-first-step", "--no-progress", "--out", str(out)]  # fmt: skip
    code = cli.main(["train", *argv])
    said, err = capsys.readouterr()
    assert code == 0, err
    assert "first step: equal to the step graph's within" in said
    assert out.exists()
    out.unlink()
    cls = type(get_loss("cross_entropy"))
    right = cls.torch_terms
    monkeypatch.setattr(cls, "torch_terms", lambda self, t, p, y: right(self, t, p, y) * 1.01)
    code, err = _train(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and "check-first-step" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]  # nothing written


def test_a_batch_of_one_row_for_batch_norm_is_refused_before_the_first_step() -> None:
    # PyTorch's batch norm refuses one row in training mode: 41 rows in batches of 8
    # leave a last batch of 1, said before anything is trained.
    X, y, _ = _task("softmax", n=41)
    model = _normalised()
    before = [p.copy() for p in model.parameters()]
    with pytest.raises(GlassnetError) as info:
        model.fit(X, y, epochs=1, batch_size=8, engine="torch")
    assert info.value.field == "batch_size" and "41 rows" in str(info.value)
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)
    model.fit(X, y, epochs=1, batch_size=9, engine="torch")  # 4 batches of 9, one of 5: fine
    assert model.train_state is not None and model.train_state.epoch == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_a_cuda_fit_agrees_with_the_cpu_within_float32_rounding() -> None:
    X, y, _ = _task("softmax", n=64)

    def make() -> gn.Model:
        return gn.mlp([4, 16, 3], seed=5)  # float32

    cpu, gpu = make(), make()
    cpu.fit(X, y, epochs=3, batch_size=16, optimizer=Adam(lr=0.01), engine="torch")
    gpu.fit(X, y, epochs=3, batch_size=16, optimizer=Adam(lr=0.01), engine="torch", device="cuda")
    for p, q in zip(cpu.parameters(), gpu.parameters(), strict=True):
        assert isinstance(q, np.ndarray)  # back in the network, as NumPy arrays
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)


# -- check_step: a to_torch model in your own loop -----------------------------------------------
def _your_step(module: Any, x: Array, labels: Array, *, double_softmax: bool = False) -> None:
    """One step of a plain PyTorch loop, as a user writes it (nothing from glassnet):
    the module ends in Softmax, so the loss is the NLL of its log; momentum SGD."""
    opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    p = module(torch.from_numpy(x))
    target = torch.from_numpy(labels)
    if double_softmax:  # the classic slip: CrossEntropyLoss on probabilities
        value = torch.nn.functional.cross_entropy(p, target)
    else:
        value = torch.nn.functional.nll_loss(torch.log(p), target)
    opt.zero_grad()
    value.backward()
    opt.step()


def test_check_step_proves_a_users_own_torch_step_and_names_a_wrong_one() -> None:
    from glassnet.interop import check_step, to_torch

    X, y, _ = _task("softmax", n=12)
    net = gn.mlp([4, 6, 3], hidden="tanh", seed=5, dtype="float64")
    module = to_torch(net)
    _your_step(module, X, y)
    difference = check_step(net, module, X, y, optimizer=Momentum(lr=0.1, momentum=0.9))
    assert difference < 1e-13  # float rounding
    wrong = to_torch(net)
    _your_step(wrong, X, y, double_softmax=True)
    with pytest.raises(GlassnetError) as info:
        check_step(net, wrong, X, y, optimizer=Momentum(lr=0.1, momentum=0.9))
    assert info.value.field == "step" and "of layer" in str(info.value)
    # The optimiser must be the loop's: at a first step momentum is plain SGD (v = g),
    # so SGD at the same rate agrees, at another it does not.
    assert check_step(net, module, X, y, optimizer=SGD(lr=0.1)) < 1e-13
    with pytest.raises(GlassnetError):
        check_step(net, module, X, y, optimizer=SGD(lr=0.2))
