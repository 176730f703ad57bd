"""Issue 23, the CLI for practitioners: class weights, F1 / balanced accuracy / ROC AUC
in evaluate (scikit-learn's own functions as the reference), and --save-best."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet import cli

pytest.importorskip("sklearn", reason="the metrics are scikit-learn's")


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _imbalanced(path: Path, n: int = 600, seed: int = 0) -> None:
    """About 8% positives, overlapping the negatives."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.08).astype(int)
    X = rng.normal(size=(n, 3)) + 1.2 * y[:, None]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "label"])
        w.writerows([[*(f"{v:.4f}" for v in r), t] for r, t in zip(X, y, strict=True)])


def test_evaluate_reports_f1_balanced_accuracy_and_roc_auc(tmp_path, capsys):
    from sklearn import metrics

    from glassnet.runs import dataset_of, load_trained

    data, model = tmp_path / "d.csv", tmp_path / "m.npz"
    _imbalanced(data)
    argv = ["train", "--data", data, "--layers", "8", "--epochs", "20", "--no-progress"]
    assert run(capsys, *argv, "--out", model, "--json")[0] == 0
    code, out, err = run(capsys, "evaluate", model, "--json")
    assert code == 0, err
    got = json.loads(out)
    # the reference: scikit-learn on the held-out rows and the model's probabilities
    _, settings = load_trained(str(model))
    ds = dataset_of(settings)
    proba = gn.load(model).predict_proba(ds.X_test_raw)
    predicted = proba.argmax(axis=1)
    assert got["f1_macro"] == pytest.approx(metrics.f1_score(ds.y_test, predicted, average="macro"))
    assert got["balanced_accuracy"] == pytest.approx(
        metrics.balanced_accuracy_score(ds.y_test, predicted)
    )
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(ds.y_test, proba[:, 1]))
    code, out, _ = run(capsys, "evaluate", model)
    said = " ".join(out.split())
    assert code == 0 and "F1 (macro)" in said and "balanced accuracy" in said and "ROC AUC" in said


def test_class_weight_balanced_finds_more_of_the_rare_class(tmp_path, capsys):
    data = tmp_path / "d.csv"
    _imbalanced(data, n=1200, seed=3)
    argv = ["train", "--data", data, "--layers", "16", "--epochs", "40", "--no-progress", "--json"]
    recall = {}
    for name, extra in (("plain", []), ("balanced", ["--class-weight", "balanced"])):
        model = tmp_path / f"{name}.npz"
        assert run(capsys, *argv, *extra, "--out", model)[0] == 0
        scores = json.loads(run(capsys, "evaluate", model, "--json")[1])
        recall[name] = scores["recall"][1]
    assert recall["balanced"] > recall["plain"] + 0.1, recall
    # a regression target has no classes to weigh: refused before training
    rng = np.random.default_rng(0)
    reg = tmp_path / "r.csv"
    with reg.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "y"])
        w.writerows([[f"{v:.3f}", f"{2 * v + 0.5:.4f}"] for v in rng.normal(size=80)])
    code, _, err = run(
        capsys, "train", "--data", reg, "--class-weight", "balanced", "--out", tmp_path / "x.npz"
    )
    assert code == 2 and "--class-weight" in err and not (tmp_path / "x.npz").exists()


def test_save_best_keeps_the_best_val_loss_epoch(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = ((X.sum(axis=1) > 0) ^ (rng.random(300) < 0.3)).astype(int)  # 30% noise: it overfits
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "label"])
        w.writerows([[*r, t] for r, t in zip(X, y, strict=True)])
    argv = ["train", "--data", data, "--layers", "64,64", "--epochs", "60", "--lr", "0.03"]
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, *argv, "--save-best", "--no-progress", "--json", "--out", model)
    assert code == 0, err
    s = json.loads(out)
    history = gn.load(model).train_state.history
    val = history["val_loss"]
    assert s["epochs"] == 60 and s["kept_epoch"] == int(np.argmin(val)) + 1 < 60
    assert s["last_epoch"]["val_loss"] == min(val)
    # the saved weights are that epoch's: the last epoch's (a run without it) differ
    last = tmp_path / "last.npz"
    assert (
        run(capsys, *argv, "--validation-split", "0.1", "--no-progress", "--json", "--out", last)[0]
        == 0
    )
    a, b = gn.load(model), gn.load(last)
    assert not all(
        np.array_equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True)
    )
    code, _, err = run(
        capsys, *argv, "--save-best", "--validation-split", "0", "--out", tmp_path / "z.npz"
    )
    assert code == 2 and "--save-best" in err


def test_several_labels_train_one_regression_output_each(tmp_path, capsys):
    from sklearn import metrics

    from glassnet.runs import dataset_of, load_trained

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    Y = np.column_stack([2 * X[:, 0] + X[:, 1], 3 * X[:, 2] - 1])
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "y1", "y2"])
        w.writerows([[*r, *t] for r, t in zip(X, Y, strict=True)])
    model = tmp_path / "m.npz"
    argv = ["train", "--data", data, "--label", "y1,y2", "--epochs", "80", "--lr", "0.01"]
    code, out, err = run(capsys, *argv, "--no-progress", "--out", model)
    assert code == 0 and "task: regression (2 targets)" in out
    m = gn.load(model)
    assert m.sizes[-1] == 2 and m.preprocessing.feature_names == ["a", "b", "c"]
    got = json.loads(run(capsys, "evaluate", model, "--json")[1])
    _, settings = load_trained(str(model))
    ds = dataset_of(settings)
    pred = m.predict(ds.X_test_raw)
    each = metrics.r2_score(ds.y_test, pred, multioutput="raw_values")
    assert [t["r2"] for t in got["per_target"]] == pytest.approx(each)
    assert got["r2"] == pytest.approx(metrics.r2_score(ds.y_test, pred))  # uniform average
    assert min(each) > 0.8
    rows = tmp_path / "rows.csv"
    rows.write_text("c,a,b\n0.1,0.2,0.3\n")
    code, out, _ = run(capsys, "predict", model, rows)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "prediction_y1,prediction_y2"
    want = m.predict(np.array([[0.2, 0.3, 0.1]]))[0]
    assert [float(v) for v in lines[1].split(",")] == [float(v) for v in want]
    code, _, err = run(capsys, *argv, "--task", "classification", "--out", tmp_path / "x.npz")
    assert code == 2 and "one label column for classification" in err


def _noisy(path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = ((X.sum(axis=1) > 0) ^ (rng.random(300) < 0.3)).astype(int)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "label"])
        w.writerows([[*r, t] for r, t in zip(X, y, strict=True)])


def _expected_rates(val_loss: list[float], lr: float, factor: float, patience: int) -> list[float]:
    """The plateau rule written out again: the rate each epoch ran with."""
    rates, best, wait = [], float("inf"), 0
    for v in val_loss:
        rates.append(lr)
        if v < best:
            best, wait = v, 0
        else:
            wait += 1
            if wait >= patience:
                lr, wait = lr * factor, 0
    return rates


def test_plateau_schedule_lowers_the_rate_when_val_loss_stalls(tmp_path, capsys, monkeypatch):
    data = tmp_path / "d.csv"
    _noisy(data)
    argv = ["train", "--data", data, "--layers", "64,64", "--epochs", "30", "--lr", "0.03"]
    argv += ["--schedule", "plateau", "--step-size", "2", "--gamma", "0.5", "--no-progress"]
    model = tmp_path / "m.npz"
    assert run(capsys, *argv, "--json", "--out", model)[0] == 0
    history = gn.load(model).train_state.history
    rates = history["lr"]
    assert rates == pytest.approx(_expected_rates(history["val_loss"], 0.03, 0.5, 2))
    assert min(rates) < 0.03  # it did lower the rate
    # interrupted and resumed: the same weights as the run never interrupted
    import glassnet.training as training
    from glassnet.training import Checkpoint

    class StopAt(Checkpoint):
        def on_epoch_end(self, net, epoch, logs):
            super().on_epoch_end(net, epoch, logs)
            if epoch == 17:
                raise KeyboardInterrupt

    ckpt = tmp_path / "c.npz"
    monkeypatch.setattr(training, "Checkpoint", StopAt)
    assert run(capsys, *argv, "--out", tmp_path / "p.npz", "--checkpoint", ckpt)[0] == 130
    monkeypatch.undo()
    assert run(capsys, "train", "--resume", ckpt, "--no-progress", "--json")[0] == 0
    a, b = gn.load(model), gn.load(tmp_path / "p.npz")
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
