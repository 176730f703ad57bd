"""Faults: a training process killed (SIGKILL) while it saves, a disk that fills up, and
the same seed giving the same bits in separate processes.

- ``glassnet train`` on a tiny data set saves a checkpoint every epoch, so saving is most
  of what it does; it is killed at random moments, many times.  Each time the checkpoint
  on disk loads and equals, bit for bit, the state of one epoch of an uninterrupted run
  (never half of one); the temporary files left behind show that kills did land in the
  middle of saves; and ``--resume`` from the killed checkpoints ends with exactly the
  weights of the uninterrupted run.
- A write past the file-size limit (RLIMIT_FSIZE: EFBIG, as from a full disk) gives a
  GlassnetError; the old model file is unchanged and no temporary file remains.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from glassnet import cli
from glassnet import model as gmodel
from glassnet.training import Checkpoint

EPOCHS = 300
ARGS = ["--layers", "8", "--batch-size", "8", "--no-progress", "--json"]


def _data(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    path = folder / "small.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "label"])
        for i in range(40):
            w.writerow([rng.normal() + 3 * (i % 2), rng.normal(), i % 2])
    return path


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _same_model(a: Path, b: Path) -> None:
    """Equal weights, optimiser state, random stream and history (meta's timestamps-free
    parts); the zip containers themselves may differ in their dates."""
    x, y = _arrays(a), _arrays(b)
    assert set(x) == set(y)
    for key in x:
        if key != "meta":
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)
    mx, my = json.loads(x["meta"].tobytes()), json.loads(y["meta"].tobytes())
    assert mx["training"] == my["training"] and mx["layers"] == my["layers"]


def _glassnet(*argv: str, cwd: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "glassnet", *argv],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **kw,
    )


def test_kill_during_checkpoint_saves_leaves_a_whole_checkpoint_and_resume_is_exact(
    tmp_path, monkeypatch, capsys
):
    data = _data(tmp_path)
    common = ["train", "--data", str(data), *ARGS, "--epochs", str(EPOCHS)]

    # The uninterrupted run, recording the weights after every epoch.
    states: dict[int, list[np.ndarray]] = {}

    class Recording(Checkpoint):
        def on_epoch_end(self, net, epoch, logs):
            super().on_epoch_end(net, epoch, logs)
            states[epoch] = [p.copy() for p in net.parameters()]

    import glassnet.training as training

    monkeypatch.setattr(training, "Checkpoint", Recording)
    whole = tmp_path / "whole.npz"
    assert cli.main([*common, "--out", str(whole), "--checkpoint", str(tmp_path / "w.ckpt")]) == 0
    monkeypatch.undo()
    capsys.readouterr()
    assert sorted(states) == list(range(1, EPOCHS + 1))

    # Kill it at random moments while it saves a checkpoint every epoch.
    rng = np.random.default_rng(7)
    folder = tmp_path / "killed"
    folder.mkdir()
    ckpt = folder / "run.ckpt.npz"
    epochs_seen, leftovers, kills = [], 0, 0
    resume_from: list[Path] = []
    while kills < 30 and not (kills >= 12 and leftovers >= 3):
        before = {p.name for p in folder.iterdir()}
        proc = _glassnet(
            *common, "--out", str(folder / "out.npz"), "--checkpoint", str(ckpt), cwd=tmp_path
        )
        # Wait for this process's first checkpoint (a rename gives the file a new inode).
        old = ckpt.stat().st_ino if ckpt.exists() else None
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            if ckpt.exists() and ckpt.stat().st_ino != old:
                break
            time.sleep(0.002)
        time.sleep(float(rng.uniform(0.0, 0.6)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
        new = {p.name for p in folder.iterdir()} - before
        leftovers += sum(1 for name in new if name.endswith(".tmp"))  # a save cut short
        net = gmodel.load(ckpt)  # whole: it loads ...
        epoch = net.train_state.epoch
        epochs_seen.append(epoch)
        for got, want in zip(net.parameters(), states[epoch], strict=True):
            np.testing.assert_array_equal(got, want)  # ... and is exactly one epoch's state
        if len(resume_from) < 2 and epoch < EPOCHS - 20 and epoch not in {0}:
            copy = tmp_path / f"killed_at_{epoch}.ckpt.npz"
            copy.write_bytes(ckpt.read_bytes())
            resume_from.append(copy)
    with capsys.disabled():  # shown with pytest -s: the numbers docs/reliability.md quotes
        print(f"\n{kills} kills at epochs {sorted(epochs_seen)}; {leftovers} inside a save")
    assert leftovers >= 1, f"no kill landed inside a save in {kills} tries"
    assert len(set(epochs_seen)) >= 3  # killed at different moments

    # Resume each killed checkpoint: the same weights as the run never interrupted.
    for copy in resume_from:
        out = tmp_path / f"resumed_{copy.stem}.npz"
        argv = ["train", "--resume", str(copy), "--epochs", str(EPOCHS), "--no-progress"]
        assert cli.main([*argv, "--json", "--out", str(out)]) == 0
        _same_model(whole, out)
    capsys.readouterr()


def test_same_seed_same_bits_in_separate_processes(tmp_path):
    """Two processes (different hash seeds) and this one train to identical files."""
    data = _data(tmp_path)
    common = ["train", "--data", str(data), *ARGS, "--epochs", "4", "--validation-split", "0.2"]
    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"proc{hash_seed}.npz"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = _glassnet(*common, "--out", str(out), cwd=tmp_path, env=env)
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
        outs.append(out)
    here = tmp_path / "here.npz"
    assert cli.main([*common, "--out", str(here)]) == 0
    _same_model(outs[0], outs[1])
    _same_model(outs[0], here)


_DISK_FULL = r"""
import json, os, resource, signal, sys
import numpy as np
import glassnet as gn
path = sys.argv[1]
gn.mlp([2, 2], seed=0).save(path)              # the old file, small
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    gn.mlp([50, 50, 2], seed=1).save(path)     # ~40 KB: cannot be written
except gn.GlassnetError as err:
    print(json.dumps({"error": str(err)}))
else:
    print(json.dumps({"error": None}))
"""


def test_a_full_disk_gives_a_clear_error_and_keeps_the_old_file(tmp_path):
    pytest.importorskip("resource", reason="RLIMIT_FSIZE is POSIX")
    path = tmp_path / "model.npz"
    script = tmp_path / "fill.py"
    script.write_text(_DISK_FULL)
    # The old file as the child writes it, made again here to compare bytes with.
    result = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error is not None and str(path) in error and "File too large" in error, error
    assert "\n" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fill.py", "model.npz"]  # no temp
    old = gmodel.load(path)
    assert old.sizes == [2, 2]  # the old file, whole


def test_diverging_training_stops_naming_epoch_and_batch_and_keeps_the_checkpoint(tmp_path, capsys):
    """The rate grows 1000-fold per epoch: the loss becomes NaN a few epochs in.  Exit 2,
    one line naming the epoch and batch; the checkpoint holds the last good epoch's
    weights; no model file is written."""
    import re

    import glassnet as gn

    data = _data(tmp_path)
    ckpt, out = tmp_path / "run.ckpt.npz", tmp_path / "model.npz"
    code = cli.main(
        [
            *("train", "--data", str(data), *ARGS[:-1], "--epochs", "50", "--optimizer", "sgd"),
            *("--lr", "0.01", "--schedule", "step", "--step-size", "1", "--gamma", "1000"),
            *("--out", str(out), "--checkpoint", str(ckpt)),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    m = re.search(r"holds epoch (\d+).*at epoch (\d+), batch (\d+)", err)
    assert m, err
    kept, failed = int(m.group(1)), int(m.group(2))
    assert kept == failed - 1 >= 1
    assert not out.exists()
    net = gn.load(ckpt)
    assert net.train_state.epoch == kept
    assert all(np.isfinite(p).all() for p in net.parameters())


def test_same_seed_same_bits_with_checkpoints_early_stopping_and_progress(tmp_path, capsys):
    """Extends test_train's progress/callback case: saving every epoch, an EarlyStopping
    that never fires and a progress bar change nothing in the weights or the stream."""
    import glassnet as gn
    from glassnet.training import EarlyStopping

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 3
    runs = []
    for extra in (
        {},
        {
            "progress": True,
            "callbacks": [Checkpoint(str(tmp_path / "c.npz")), EarlyStopping(patience=1000)],
        },
    ):
        net = gn.mlp([4, 6, 3], seed=1)
        net.fit(X, y, epochs=4, seed=5, validation_split=0.25, optimizer="rmsprop", **extra)
        runs.append(net)
    for a, b in zip(runs[0].parameters(), runs[1].parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert (
        runs[0].train_state.rng.bit_generator.state == runs[1].train_state.rng.bit_generator.state
    )
    capsys.readouterr()
