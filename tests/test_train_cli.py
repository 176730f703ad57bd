"""glassnet train / evaluate / predict: the whole journey, exact resume, and bad input
(exit 2, one line, nothing written or changed)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from glassnet import cli
from glassnet.training import Checkpoint

pytest.importorskip("sklearn", reason="the bundled data sets come from scikit-learn")

FAST = ["--layers", "16", "--epochs", "3", "--no-progress", "--batch-size", "32"]


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def arrays(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def test_train_evaluate_predict_journey(tmp_path, capsys):
    model, plot = tmp_path / "m.npz", tmp_path / "curves.png"
    code, out, _ = run(
        capsys, "train", "--data", "iris", *FAST, "--out", str(model), "--plot", str(plot), "--json"
    )
    assert code == 0
    summary = json.loads(out)
    assert summary["epochs"] == 3 and summary["sizes"] == [4, 16, 3]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "m.ckpt.npz").exists()  # the default checkpoint is tidied away

    code, out, _ = run(capsys, "evaluate", str(model), "--json")
    result = json.loads(out)
    assert code == 0 and result["part"] == "test part"
    assert result["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert result["loss"] == pytest.approx(summary["test_loss"])
    cm = np.array(result["confusion_matrix"])
    assert cm.sum() == result["n"] and np.trace(cm) / cm.sum() == pytest.approx(result["accuracy"])

    code, out, _ = run(capsys, "evaluate", str(model))
    assert code == 0 and "confusion matrix" in out

    from sklearn.datasets import load_iris

    data = load_iris()
    rows = tmp_path / "rows.npz"
    np.savez(rows, X=data.data[:7])
    pred = tmp_path / "pred.csv"
    code, _, _ = run(capsys, "predict", str(model), str(rows), "-o", str(pred))
    lines = list(csv.reader(pred.open()))
    assert code == 0 and lines[0][0] == "prediction" and len(lines) == 8
    assert {line[0] for line in lines[1:]} <= {"setosa", "versicolor", "virginica"}
    assert all(abs(sum(float(v) for v in line[1:]) - 1) < 1e-4 for line in lines[1:])


def test_csv_training_with_text_labels(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "kind", "b"])
        for i in range(60):
            kind = ["cat", "dog"][i % 2]
            w.writerow([rng.normal() + 3 * (i % 2), kind, rng.normal()])
    model = tmp_path / "m.npz"
    code, out, _ = run(
        capsys,
        "train",
        "--data",
        str(path),
        "--label",
        "kind",
        *FAST,
        "--out",
        str(model),
        "--json",
    )
    assert code == 0
    code, out, _ = run(capsys, "predict", str(model), str(path))
    assert code == 0 and out.splitlines()[0] == "prediction,p_cat,p_dog"
    assert len(out.splitlines()) == 61


class InterruptAfter(Checkpoint):
    """A checkpoint that stops the run (like Ctrl-C) right after saving epoch ``at``."""

    at = 2

    def on_epoch_end(self, net, epoch, logs):
        super().on_epoch_end(net, epoch, logs)
        if epoch == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "extra",
    [
        [],
        [
            "--optimizer",
            "sgd",
            "--lr",
            "0.05",
            "--momentum",
            "0.9",
            "--schedule",
            "cosine",
            "--weight-decay",
            "1e-4",
        ],
    ],
)
def test_resume_ends_bit_identical_to_an_uninterrupted_run(tmp_path, capsys, monkeypatch, extra):
    common = [
        "train",
        "--data",
        "wine",
        "--layers",
        "8",
        "--epochs",
        "5",
        "--no-progress",
        "--validation-split",
        "0.2",
        "--batch-size",
        "16",
        *extra,
    ]
    whole = tmp_path / "whole.npz"
    assert run(capsys, *common, "--out", str(whole))[0] == 0

    import glassnet.training as training

    ckpt, part = tmp_path / "ckpt.npz", tmp_path / "part.npz"
    monkeypatch.setattr(training, "Checkpoint", InterruptAfter)
    code, _, err = run(capsys, *common, "--out", str(part), "--checkpoint", str(ckpt))
    assert code == 130 and f"--resume {ckpt}" in err and not part.exists()
    monkeypatch.undo()

    resumed = tmp_path / "resumed.npz"
    code, _, _ = run(
        capsys,
        "train",
        "--resume",
        str(ckpt),
        "--epochs",
        "5",
        "--no-progress",
        "--out",
        str(resumed),
    )
    assert code == 0
    a, b = arrays(whole), arrays(resumed)
    assert set(a) == set(b)
    for key in a:
        if key != "meta":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    ma, mb = json.loads(a["meta"].tobytes()), json.loads(b["meta"].tobytes())
    assert ma["training"] == mb["training"]  # epoch, rng, optimiser, history: all equal


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def workdir(tmp_path, capsys):
    model = tmp_path / "model.npz"
    assert run(capsys, "train", "--data", "iris", *FAST, "--out", str(model), "--json")[0] == 0
    (tmp_path / "nan.csv").write_text("a,b,label\n1,2,x\n1,nan,y\n")
    (tmp_path / "short.csv").write_text("a,b,label\n1,2,x\n1,y\n")
    (tmp_path / "text.csv").write_text("a,b,label\n1,2,x\n1,two,y\n")
    (tmp_path / "one.csv").write_text("a,b,label\n1,2,x\n3,4,x\n")
    (tmp_path / "empty.csv").write_text("a,b,label\n")
    (tmp_path / "three.csv").write_text("x1,x2,x3\n1,2,3\n")
    (tmp_path / "iris_bad.csv").write_text("a,b,c,d,target\n1,2,3,4,tulip\n")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    return tmp_path


BAD = [
    ["train", "--data", "mnist"],
    ["train", "--data", "{d}/absent.csv"],
    ["train", "--data", "{d}/nan.csv"],
    ["train", "--data", "{d}/short.csv"],
    ["train", "--data", "{d}/text.csv"],
    ["train", "--data", "{d}/one.csv"],
    ["train", "--data", "{d}/empty.csv"],
    ["train", "--data", "{d}/junk.npz"],
    ["train", "--data", "iris", "--layers", "8,x"],
    ["train", "--data", "iris", "--epochs", "0"],
    ["train", "--data", "iris", "--lr", "-1"],
    ["train", "--data", "iris", "--lr", "nan"],
    ["train", "--data", "iris", "--batch-size", "0"],
    ["train", "--data", "iris", "--momentum", "0.9"],
    ["train", "--data", "iris", "--activation", "swish"],
    ["train", "--data", "iris", "--test-size", "1.5"],
    ["train", "--data", "iris", "--plot", "{d}/curves.jpg"],
    ["train", "--data", "iris", "--out", "{d}/missing/m.npz"],
    ["train", "--resume", "{d}/junk.npz"],
    ["train", "--resume", "{d}/model.npz", "--epochs", "2"],
    ["train"],
    ["evaluate", "{d}/junk.npz"],
    ["evaluate", "{d}/model.npz", "--data", "{d}/three.csv"],
    ["evaluate", "{d}/model.npz", "--data", "{d}/iris_bad.csv"],
    ["predict", "{d}/model.npz", "{d}/three.csv"],
    ["predict", "{d}/model.npz", "{d}/nan.csv"],
    ["predict", "{d}/absent.npz", "{d}/three.csv"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a[:3]) for a in BAD])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(workdir, capsys, monkeypatch, argv):
    monkeypatch.chdir(workdir)
    argv = [a.format(d=workdir) for a in argv]
    if argv[0] == "train" and "--out" not in argv:
        argv += ["--out", str(workdir / "model.npz"), "--no-progress"]
    before = _snapshot(workdir)
    code, _out, err = run(capsys, *argv)
    assert code == 2, err
    assert err.startswith("glassnet: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert _snapshot(workdir) == before
