"""Issue 13's silent wrong answers, one regression test each (each fails on the code
before the fix):

1. a model trained by the CLI predicts raw rows from Python (its preprocessing applied);
2. a spec with ``model = "x.npz"`` traces from the raw row, the scaling its first step;
3. the PyTorch export keeps scaling and class names: a round trip predicts the same;
4. early stopping on accuracy maximises it and restores the best weights;
5. a float target trains as regression from the CLI (R², MAE, RMSE), and a label
   column that cannot be classes is refused with a hint;
6. resume runs to the checkpoint's total, refuses conflicting options, times the run;
7. custom activations load with ``custom_objects``; ``--patience`` without validation
   is refused up front; no file is left by a failed run.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet import cli
from glassnet.activations import Activation
from glassnet.errors import GlassnetError
from glassnet.training import Checkpoint, EarlyStopping

pytest.importorskip("sklearn", reason="the bundled data sets come from scikit-learn")

FAST = ["--layers", "16", "--epochs", "40", "--no-progress", "--lr", "0.01"]


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("iris") / "iris.npz"
    assert cli.main(["train", "--data", "iris", *FAST, "--out", str(path), "--json"]) == 0
    return path


def _iris_raw():
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data, data.target


# -- 1 -------------------------------------------------------------------------------------
def test_a_cli_model_loaded_in_python_predicts_raw_rows_like_glassnet_predict(
    iris_model, tmp_path, capsys
):
    X, y = _iris_raw()
    model = gn.load(iris_model)
    proba = model.predict_proba(X)
    # Before the fix the raw rows went in unscaled: accuracy 0.33 on iris.
    # predict names the class (issue 23): iris's own target names, indexed by y here
    assert (model.predict(X) == np.asarray(model.classes)[y]).mean() > 0.85
    assert (model.predict_index(X) == y).mean() > 0.85
    rows = tmp_path / "rows.npz"
    np.savez(rows, X=X)
    code, out, _ = run(capsys, "predict", iris_model, rows)
    assert code == 0
    lines = list(csv.reader(out.splitlines()))
    cli_proba = np.array([[float(v) for v in line[1:]] for line in lines[1:]])
    np.testing.assert_allclose(proba, cli_proba, atol=5e-6)  # the CLI prints 6 digits
    assert [line[0] for line in lines[1:]] == list(model.predict(X))
    # And the standardisation is the training part's, computed here independently.
    pre = model.preprocessing
    train_rows = np.setdiff1d(np.arange(len(y)), _test_rows(iris_model, len(y)))
    np.testing.assert_allclose(pre.mean, X[train_rows].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(pre.scale, X[train_rows].std(axis=0), rtol=1e-12)


def _test_rows(model_path: Path, n: int) -> np.ndarray:
    """The held-out rows, from the model file's own record of its split (re-derived)."""
    from glassnet.runs import dataset_of, load_trained

    _, settings = load_trained(str(model_path))
    ds = dataset_of(settings)
    X, _ = _iris_raw()
    return np.flatnonzero((X[:, None, :] == ds.X_test_raw[None, :, :]).all(axis=2).any(axis=1))


def test_onnx_export_of_a_loaded_model_agrees_on_raw_rows(iris_model):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    import onnxruntime as ort

    from glassnet.interop import to_onnx

    X, _ = _iris_raw()
    model = gn.load(iris_model)
    sess = ort.InferenceSession(to_onnx(model).SerializeToString())
    got = sess.run(None, {"x": X.astype(np.float64)})[0]  # raw rows go in as double
    np.testing.assert_allclose(got, model.predict_proba(X), atol=1e-5)


# -- 2 -------------------------------------------------------------------------------------
def test_a_spec_on_a_trained_model_traces_from_the_raw_row(iris_model, tmp_path, capsys):
    X, _ = _iris_raw()
    raw = X[0]
    spec = tmp_path / "s.toml"
    spec.write_text(
        f'model = "{iris_model}"\nloss = "cross_entropy"\nlr = 0.1\n'
        f"input = {raw.tolist()}\ntarget = [1.0, 0.0, 0.0]\n"
    )
    from glassnet.spec import load_spec

    model = gn.load(iris_model)
    trace = load_spec(str(spec)).trace()
    # The trace's output is what predict says for the raw row (before: 0.998 versicolor
    # against predict's 0.991 setosa).
    np.testing.assert_allclose(trace.output[0], model.predict_proba(raw[None])[0], rtol=1e-5)
    d = trace.to_dict()
    np.testing.assert_allclose(d["preprocessing"]["raw_input"], [raw])
    np.testing.assert_allclose(
        d["input"], [(raw - model.preprocessing.mean) / model.preprocessing.scale]
    )
    code, out, _ = run(capsys, "step", spec)
    assert code == 0 and "raw row scaled first" in out
    code, out, _ = run(capsys, "explain", spec)
    assert code == 0 and "First the raw row is scaled" in out


# -- 3 -------------------------------------------------------------------------------------
def test_pytorch_export_round_trip_keeps_scaling_and_classes(iris_model, tmp_path, capsys):
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    from glassnet.interop import load_torch_model

    X, _ = _iris_raw()
    out = tmp_path / "m.safetensors"
    code, _, _ = run(capsys, "export", iris_model, "--format", "torch", "-o", out)
    assert code == 0
    model, back = gn.load(iris_model), load_torch_model(out)
    assert back.classes == model.classes and back.task == "classification"
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
    # and back to a glassnet model file, which glassnet predict accepts
    again = tmp_path / "again.npz"
    assert run(capsys, "export", out, "--format", "npz", "-o", again)[0] == 0
    np.testing.assert_array_equal(gn.load(again).predict_proba(X), model.predict_proba(X))


# -- 4 -------------------------------------------------------------------------------------
def test_early_stopping_on_accuracy_keeps_the_best_model():
    net = gn.mlp([2, 2], output="identity", dtype="float64")
    es = EarlyStopping(patience=2, monitor="val_accuracy")
    assert es.mode == "max"
    es.on_train_begin(net, 10)
    accuracies = [0.356, 0.57, 0.733, 0.70, 0.72]  # best at epoch 3
    stops = []
    for epoch, v in enumerate(accuracies, start=1):
        net.layers[0].W[...] = epoch
        stops.append(bool(es.on_epoch_end(net, epoch, {"val_accuracy": v})))
    assert stops == [False] * 4 + [True]
    es.on_train_end(net, None)
    assert es.best_epoch == 3 and es.best_value == 0.733 and (net.layers[0].W == 3).all()


@pytest.mark.parametrize(
    "monitor,mode", [("val_loss", "min"), ("loss", "min"), ("accuracy", "max"), ("val_r2", "max")]
)
def test_early_stopping_infers_the_direction(monitor, mode):
    assert EarlyStopping(monitor=monitor).mode == mode
    assert EarlyStopping(monitor=monitor, mode="min").mode == "min"


def test_early_stopping_refuses_a_metric_fit_does_not_log():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(GlassnetError, match="val_accuracy"):
        gn.mlp([2, 3, 2]).fit(
            X, np.arange(30) % 2, epochs=3, callbacks=[EarlyStopping(monitor="val_accuracy")]
        )
    with pytest.raises(GlassnetError, match="mode"):
        EarlyStopping(mode="up")  # type: ignore[arg-type]


# -- 5 -------------------------------------------------------------------------------------
def _regression_csv(path: Path, n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 5.0, 0.1] + [0.0, 10.0, 3.0]
    y = 2.0 * X[:, 0] - 0.3 * X[:, 1] + 0.05 * rng.normal(size=n) + 50.0
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "progression"])
        for row, t in zip(X, y, strict=True):
            w.writerow([*(f"{v:.6f}" for v in row), f"{t:.4f}"])
    return np.round(X, 6), np.round(y, 4)  # as written


def test_a_float_target_trains_as_regression_from_the_cli(tmp_path, capsys):
    from sklearn.metrics import mean_absolute_error, r2_score

    data, model, plot = tmp_path / "d.csv", tmp_path / "m.npz", tmp_path / "p.png"
    _regression_csv(data)
    code, out, err = run(
        capsys, "train", "--data", data, "--label", "progression", "--layers", "16",
        "--epochs", "150", "--lr", "0.03", "--no-progress", "--out", model, "--plot", plot,
    )  # fmt: skip
    assert code == 0, err
    # one line says so, with the run's summary on stdout (stderr is kept for the one
    # error line a failed run prints: issue 23)
    assert out.count("task: regression") == 1 and err == ""
    assert "regression" in out and plot.read_bytes()[:4] == b"\x89PNG"
    m = gn.load(model)
    assert m.sizes == [3, 16, 1] and m.task == "regression"
    assert m.output_activation.name == "identity" and m.train_state.loss == "mse"
    # evaluate --json on fresh rows: R², MAE, RMSE as scikit-learn computes them
    fresh = tmp_path / "fresh.csv"
    Xf, yf = _regression_csv(fresh, n=50, seed=1)
    code, out, _ = run(capsys, "evaluate", model, "--data", fresh, "--json")
    result = json.loads(out)
    pred = m.predict(Xf)[:, 0]
    assert code == 0 and result["task"] == "regression" and result["n"] == 50
    assert result["r2"] == pytest.approx(r2_score(yf, pred), rel=1e-9)
    assert result["mae"] == pytest.approx(mean_absolute_error(yf, pred), rel=1e-9)
    assert result["rmse"] == pytest.approx(math.sqrt(np.mean((yf - pred) ** 2)), rel=1e-9)
    assert result["r2"] > 0.8
    code, out, _ = run(capsys, "predict", model, fresh)
    assert code == 0 and out.splitlines()[0] == "prediction" and len(out.splitlines()) == 51


def test_task_auto_keeps_whole_labels_as_classes_and_classification_can_be_forced(tmp_path):
    from glassnet.data import load_dataset

    data = tmp_path / "d.csv"
    _regression_csv(data)
    assert load_dataset(str(data), label="progression").task == "regression"
    with pytest.raises(GlassnetError, match="--task regression"):
        load_dataset(str(data), label="progression", task="classification")


@pytest.mark.parametrize(
    "rows,task,match",
    [
        # 150 text classes, 2 rows each: more than 100 needs --task classification (issue 23)
        ([[i, i % 7, f"c{i % 150}"] for i in range(300)], "auto", "at most 100 classes"),
        ([[i, i % 7, f"{i}"] for i in range(150)], "classification", "at least 2 rows"),
        ([[i, 0, "a" if i else "b"] for i in range(20)], "classification", "at least 2 rows"),
    ],
)
def test_labels_that_cannot_be_classes_are_refused_with_a_hint(tmp_path, capsys, rows, task, match):
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows([["x1", "x2", "label"], *rows])
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(capsys, "train", "--data", data, "--task", task, "--out", tmp_path / "m.npz")
    assert code == 2 and match in err and "--task regression" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_more_than_100_text_classes_train_when_asked_for(tmp_path, capsys):
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as f:
        rows = [[i, i % 7, f"c{i % 150}"] for i in range(300)]
        csv.writer(f).writerows([["x1", "x2", "label"], *rows])
    argv = ["train", "--data", data, "--task", "classification", "--epochs", "1"]
    code, _, err = run(capsys, *argv, "--no-progress", "--out", tmp_path / "m.npz", "--json")
    assert code == 0, err
    assert len(gn.load(tmp_path / "m.npz").classes) == 150


# -- 6 -------------------------------------------------------------------------------------
class InterruptAfter(Checkpoint):
    at = 2

    def on_epoch_end(self, net, epoch, logs):
        super().on_epoch_end(net, epoch, logs)
        if epoch == self.at:
            raise KeyboardInterrupt


def test_resume_continues_to_the_total_and_refuses_conflicting_options(
    tmp_path, capsys, monkeypatch
):
    common = ["train", "--data", "wine", "--layers", "8", "--epochs", "4", "--no-progress"]
    whole = tmp_path / "whole.npz"
    assert run(capsys, *common, "--out", whole)[0] == 0
    import glassnet.training as training

    ckpt = tmp_path / "ckpt.npz"
    monkeypatch.setattr(training, "Checkpoint", InterruptAfter)
    assert run(capsys, *common, "--out", tmp_path / "p.npz", "--checkpoint", ckpt)[0] == 130
    monkeypatch.undo()
    done_seconds = json.loads(_meta(ckpt))["info"]["train"]["seconds"]
    assert done_seconds > 0

    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(capsys, "train", "--resume", ckpt, "--lr", "0.5", "--layers", "8,8")
    assert code == 2 and "--lr" in err and "--layers" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before

    resumed = tmp_path / "resumed.npz"
    code, out, _ = run(
        capsys, "train", "--resume", ckpt, "--no-progress", "--out", resumed, "--json"
    )
    summary = json.loads(out)
    assert code == 0 and summary["epochs"] == 4  # no --epochs: the checkpoint's total
    assert summary["seconds"] > done_seconds  # the whole run, not only the resumed part
    a, b = gn.load(whole), gn.load(resumed)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    # --epochs raises the total
    more = tmp_path / "more.npz"
    code, out, _ = run(
        capsys, "train", "--resume", ckpt, "--epochs", "6", "--no-progress", "--out", more, "--json"
    )
    assert code == 0 and json.loads(out)["epochs"] == 6


def _meta(path: Path) -> bytes:
    with np.load(path, allow_pickle=False) as npz:
        return npz["meta"].tobytes()


# -- 7 -------------------------------------------------------------------------------------
class Swish(Activation):
    """x·sigmoid(x), a user's own activation."""

    name = "swish"

    def forward(self, z, out=None):
        return np.divide(z, 1 + np.exp(-z), out=out)

    def derivative(self, z, a):
        s = 1 / (1 + np.exp(-z))
        return s + z * s * (1 - s)


def test_a_custom_activation_loads_with_custom_objects(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    net = gn.mlp([3, 5, 2], hidden=Swish(), seed=0, dtype="float64")
    net.fit(X, y, epochs=2)
    path = tmp_path / "m.npz"
    net.save(path)
    with pytest.raises(GlassnetError, match="custom_objects") as info:
        gn.load(path)
    assert "swish" in str(info.value) and "layer 1" in str(info.value)
    back = gn.load(path, custom_objects={"swish": Swish})
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    assert back.train_state.epoch == 2


def test_patience_without_a_validation_split_is_refused_before_training(tmp_path, capsys):
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(
        capsys, "train", "--data", "iris", "--patience", "3", "--validation-split", "0",
        "--out", tmp_path / "m.npz", "--no-progress",
    )  # fmt: skip
    assert code == 2 and "--patience" in err and "monitor" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    with pytest.raises(GlassnetError, match="validation"):
        gn.mlp([2, 3, 2]).fit(np.zeros((10, 2)), np.arange(10) % 2, patience=2)


# -- weights (issue 13, "what practitioners expect") ------------------------------------------
def _fit(X, y, **kw):
    net = gn.mlp([3, 5, 3], seed=0, dtype="float64")
    opt = gn.optim.SGD(lr=0.1)
    net.fit(X, y, optimizer=opt, epochs=3, batch_size=len(X), shuffle=False, **kw)
    return net


def test_a_weight_of_k_equals_the_row_repeated_k_times():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 3)), np.arange(12) % 3
    w = rng.integers(1, 4, size=12)
    weighted = _fit(X, y, sample_weight=w)
    repeated = gn.mlp([3, 5, 3], seed=0, dtype="float64")
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w)
    repeated.fit(
        Xr, yr, optimizer=gn.optim.SGD(lr=0.1), epochs=3, batch_size=len(Xr), shuffle=False
    )
    for a, b in zip(weighted.parameters(), repeated.parameters(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_balanced_class_weight_is_scikit_learns():
    from sklearn.utils.class_weight import compute_sample_weight

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(20, 3)), np.r_[np.zeros(12, int), np.ones(5, int), np.full(3, 2)]
    a = _fit(X, y, class_weight="balanced")
    b = _fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    with pytest.raises(GlassnetError, match="sample_weight"):
        _fit(X, y, sample_weight=-np.ones(20))
    with pytest.raises(GlassnetError, match="class_weight"):
        _fit(X, y, class_weight={7: 1.0})


# -- dropout -------------------------------------------------------------------------------------
def test_dropout_step_matches_pytorch_with_the_same_masks():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 3)), np.arange(8) % 2
    net = gn.mlp([3, 6, 5, 2], seed=0, dtype="float64", dropout=0.3)
    Ws = [torch.tensor(layer.W.copy(), requires_grad=True) for layer in net.layers]
    bs = [torch.tensor(layer.b.copy(), requires_grad=True) for layer in net.layers]
    net.fit(X, y, optimizer=gn.optim.SGD(lr=0.1), epochs=1, batch_size=8, shuffle=False, seed=4)
    # The masks: the fit's random stream (seed 4), one draw per hidden layer, in order.
    stream = np.random.default_rng(4)
    masks = [torch.tensor((stream.random((8, n)) >= 0.3) / 0.7) for n in (6, 5)]
    h = torch.tensor(X)
    for i in range(2):
        h = torch.relu(h @ Ws[i] + bs[i]) * masks[i]
    logits = h @ Ws[2] + bs[2]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    loss.backward()
    for layer, W, b in zip(net.layers, Ws, bs, strict=True):
        np.testing.assert_allclose(layer.W, (W - 0.1 * W.grad).detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(layer.b, (b - 0.1 * b.grad).detach().numpy(), atol=1e-12)
    # prediction never drops: the plain forward pass, the same every time
    np.testing.assert_array_equal(net.predict_proba(X), net.forward(X))
    assert (
        net.layers[0].activation.name == "relu"
        and type(net.layers[0].activation).__name__ == "ReLU"
    )


def test_dropout_is_stored_and_exports_omit_it(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from glassnet.interop import from_torch, to_torch

    net = gn.mlp([3, 4, 2], dropout=0.5, dtype="float64")
    net.save(tmp_path / "m.npz")
    assert gn.load(tmp_path / "m.npz").dropout == 0.5
    assert not any(isinstance(m, torch.nn.Dropout) for m in to_torch(net))
    seq = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(4, 2)
    ).double()
    back = from_torch(seq.eval())
    x = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(back.forward(x), seq(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    with pytest.raises(GlassnetError, match="dropout"):
        gn.mlp([3, 4, 2], dropout=1.0)
