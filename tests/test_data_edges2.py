"""Issue 23, the edges left after the first round: --save-best across --resume, text
columns encoded straight from Arrow (the same numbers as an independent pandas
encoding, in a fraction of the memory), ``1.234,5`` with a decimal comma, line numbers
after quoted line breaks, and DataFrames whose date columns are expanded as the CLI
expands a CSV's.  Written from the user's side; expected values come from the data the
test wrote or from references sharing no code with glassnet (pandas, Python's csv)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet import cli


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path: Path, header: list[str], rows: list[list[object]], **kw) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f, **kw).writerows([header, *rows])
    return path


def one_error_line(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


FAST = ["--layers", "8", "--epochs", "30", "--lr", "0.01", "--no-progress"]


# -- 5: --save-best after --resume sees the whole run's best -----------------------------------
def test_save_best_after_resume_keeps_the_whole_runs_best(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = ((X.sum(axis=1) > 0) ^ (rng.random(300) < 0.3)).astype(int)  # noisy: it overfits
    data = write_csv(tmp_path / "d.csv", ["a", "b", "label"], [[*r, t] for r, t in zip(X, y, strict=True)])
    argv = ["train", "--data", data, "--layers", "64,64", "--epochs", "60", "--lr", "0.03"]
    argv += ["--save-best", "--no-progress"]
    whole = tmp_path / "whole.npz"
    code, out, err = run(capsys, *argv, "--json", "--out", whole)
    assert code == 0, err
    kept = json.loads(out)["kept_epoch"]
    val = gn.load(whole).train_state.history["val_loss"]
    assert kept == int(np.argmin(val)) + 1 and kept <= 57  # the best is not the last
    stop = kept + 2  # interrupted after the best epoch: the resumed part never beats it

    import glassnet.training as training
    from glassnet.training import Checkpoint

    class StopAt(Checkpoint):
        def on_epoch_end(self, net, epoch, logs):
            super().on_epoch_end(net, epoch, logs)
            if epoch == stop:
                raise KeyboardInterrupt

    ckpt = tmp_path / "c.npz"
    monkeypatch.setattr(training, "Checkpoint", StopAt)
    assert run(capsys, *argv, "--out", tmp_path / "r.npz", "--checkpoint", ckpt)[0] == 130
    monkeypatch.undo()
    code, out, err = run(capsys, "train", "--resume", ckpt, "--no-progress", "--json")
    assert code == 0, err
    assert json.loads(out)["kept_epoch"] == kept
    a, b = gn.load(whole), gn.load(tmp_path / "r.npz")
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
