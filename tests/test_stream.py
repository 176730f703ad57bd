"""Training on a file read in batches (``glassnet train --stream``, :mod:`glassnet.stream`).

References: the in-memory path, which reads the whole file (``glassnet.data.read_rows``)
and fits :meth:`Preprocessing.fit` on the whole table with NumPy's own mean and std —
code the stream shares nothing with but the per-row transform; and ``fit`` on the whole
array.  The first pass's statistics must equal the in-memory ones (1e-12), and a fit
streamed with shuffling off must equal the in-memory fit with shuffling off (the same
batches, so the same weights: 1e-9 in float64).  Chan et al.'s merge is checked against
NumPy's two-pass variance on badly conditioned data (mean 1e9, spread 1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")

import glassnet as gn  # noqa: E402
from glassnet import cli  # noqa: E402
from glassnet import stream as st  # noqa: E402
from glassnet.data import read_rows  # noqa: E402
from glassnet.errors import GlassnetError  # noqa: E402
from glassnet.optim import Adam, Momentum  # noqa: E402
from glassnet.preprocess import Preprocessing  # noqa: E402

Array = np.ndarray
SRC = Path(gn.__file__).resolve().parents[1]


def _frame(n: int = 503, seed: int = 0) -> dict[str, list[object]]:
    """Columns of a messy table: numbers with missing cells, a text column with missing
    cells, a constant column, a label."""
    rng = np.random.default_rng(seed)
    X = rng.normal(5, 3, size=(n, 3))
    city = rng.choice(["oslo", "rome", "lima", "kyiv"], n)
    return {
        "a": [None if i % 17 == 0 else float(X[i, 0]) for i in range(n)],
        "b": [float(v) for v in X[:, 1]],
        "c": [float(v) * 1e3 + 1e6 for v in X[:, 2]],
        "same": [7.0] * n,
        "city": [None if i % 23 == 0 else str(city[i]) for i in range(n)],
        "label": ["yes" if X[i, 0] + X[i, 1] > 10 else "no" for i in range(n)],
    }


def _write_csv(path: Path, cols: dict[str, list[object]]) -> Path:
    names = list(cols)
    lines = [",".join(names)]
    for i in range(len(cols[names[0]])):
        lines.append(",".join("" if cols[c][i] is None else repr(cols[c][i])
                              if isinstance(cols[c][i], float) else str(cols[c][i])
                              for c in names))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_parquet(path: Path, cols: dict[str, list[object]]) -> Path:
    import pyarrow.parquet as pq

    pq.write_table(pa.table(cols), path, row_group_size=100)
    return path


def _in_memory(path: Path) -> tuple[Preprocessing, Array, Array]:
    """The reference: the whole CSV read, constant columns left out as load_dataset
    does, Preprocessing.fit on every row."""
    from glassnet.preprocess import drop_constant

    t = read_rows(str(path), label="label", need_label=True)
    X, names, _ = drop_constant(t.X, t.names)
    pre = Preprocessing.fit(X, names, np.arange(X.shape[0]), impute="mean")
    return pre, X, np.unique(t.labels, return_inverse=True)[1]


# -- the first pass ----------------------------------------------------------------------------
def test_chan_merge_equals_numpy_on_badly_conditioned_batches() -> None:
    rng = np.random.default_rng(1)
    values = 1e9 + rng.normal(size=10_000)  # a naive Σx² − n·mean² loses every digit here
    m = st.Moments()
    for part in np.array_split(values, [1, 2, 700, 701, 5000]):  # uneven, one of size 1
        m.add(part)
    assert m.n == values.size
    np.testing.assert_allclose(m.mean, values.mean(), rtol=1e-15)
    np.testing.assert_allclose(m.m2 / m.n, values.var(), rtol=1e-9)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_the_first_pass_fits_the_in_memory_preprocessing(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cols = _frame()
    csv_path = _write_csv(tmp_path / "d.csv", cols)
    if kind == "parquet":
        monkeypatch.setattr(st, "PARQUET_BATCH", 37)  # many small batches to merge
        path = _write_parquet(tmp_path / "d.parquet", cols)
    else:
        path = csv_path
    found = st.scan(st.Source.open(path, label="label"), impute="mean")
    want, _, _ = _in_memory(csv_path)
    got = found.preprocessing
    assert found.dropped == ["same"] and found.rows == 503
    assert [c.name for c in got.columns or []] == [c.name for c in want.columns or []]
    for g, w in zip(got.columns or [], want.columns or [], strict=True):
        assert (g.kind, g.categories) == (w.kind, w.categories)
        if isinstance(w.fill, float):
            np.testing.assert_allclose(g.fill, w.fill, rtol=1e-12)
        else:
            assert g.fill == w.fill
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.scale, want.scale, rtol=1e-12)
    assert found.classes == ["no", "yes"] and found.task == "classification"


def test_a_column_that_turns_to_text_late_keeps_its_early_categories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(st, "PARQUET_BATCH", 10)
    n = 60
    code = [str(i % 3) for i in range(50)] + ["x", "y"] * 5  # numbers for 5 batches, then text
    code[4] = "NA"  # a missing cell before the column turns out to be text
    cols = {"code": code, "v": [float(i) for i in range(n)], "label": [i % 2 for i in range(n)]}
    path = _write_parquet(tmp_path / "d.parquet", cols)  # type: ignore[arg-type]
    source = st.Source.open(path, label="label")
    found = st.scan(source, impute="mean")
    col = (found.preprocessing.columns or [])[0]
    assert (col.kind, col.categories, col.fill) == ("text", ["0", "1", "2", "x", "y"], "0")
    with pytest.raises(GlassnetError, match="--impute mean") as info:
        st.scan(source)
    assert info.value.field == "code" and info.value.got == "1 missing"


def test_options_needing_the_whole_file_are_refused_in_one_line(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv", _frame(60))
    with pytest.raises(GlassnetError, match="median"):
        st.scan(st.Source.open(path, label="label"), impute="median")
    with pytest.raises(GlassnetError, match="--impute mean") as info:
        st.scan(st.Source.open(path, label="label"))  # missing cells, no imputation
    assert info.value.field == "a"
    cols = _frame(60)
    cols["label"][9] = ""
    for kind, write in (("csv", _write_csv), ("parquet", _write_parquet)):
        if kind == "parquet":
            cols["label"] = [None if v == "" else float(i % 2) for i, v in enumerate(cols["label"])]
        bad = write(tmp_path / f"bad.{kind}", cols)
        with pytest.raises(GlassnetError, match="a label in every row") as info:
            st.scan(st.Source.open(bad, label="label"), impute="mean")
        where = "line 11" if kind == "csv" else "row 10"  # the file's line; a Parquet row
        assert info.value.got == f"an empty label on {where}"
    out = tmp_path / "m.npz"
    for extra in (
        ["--validation-split", "0.2"],
        ["--class-weight", "balanced"],
        ["--plot", "p.png"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "glassnet", "train", "--data", str(path), "--stream",
             "--impute", "mean", "--out", str(out), *extra],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)},
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert not out.exists()


# -- training on the stream ------------------------------------------------------------------
@pytest.mark.parametrize(
    "engine,optimizer,dropout",
    [("numpy", "adam", 0.0), ("numpy", "momentum", 0.3), ("torch", "adam", 0.3)],
)
def test_a_streamed_fit_without_shuffling_equals_the_in_memory_fit(
    tmp_path: Path, engine: str, optimizer: str, dropout: float
) -> None:
    if engine == "torch":
        pytest.importorskip("torch")
    path = _write_csv(tmp_path / "d.csv", _frame())
    source = st.Source.open(path, label="label")
    found = st.scan(source, impute="mean")
    pre, X, codes = _in_memory(path)

    def make() -> tuple[gn.Model, object]:
        net = gn.mlp([pre.n_inputs, 6, 2], seed=3, dtype="float64", dropout=dropout)
        opt = Adam(lr=0.01) if optimizer == "adam" else Momentum(lr=0.05, momentum=0.9)
        return net, opt

    streamed, opt_s = make()
    # windows of 4 batches of 16: 503 rows = 7 whole windows and one of 55 (a last batch of 7)
    history = st.fit_stream(streamed, source, found, epochs=3, batch_size=16, window_batches=4,
                            shuffle=False, engine=engine, optimizer=opt_s)  # fmt: skip
    whole, opt_w = make()
    whole.preprocessing = pre
    want = whole.fit(X, codes, epochs=3, batch_size=16, shuffle=False, engine=engine,
                     optimizer=opt_w)  # fmt: skip
    for p, q in zip(streamed.parameters(), whole.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(history.history["loss"], want.history["loss"], rtol=1e-9)
    assert history.history["accuracy"] == want.history["accuracy"]


def test_one_window_holding_the_file_shuffles_as_the_in_memory_fit(tmp_path: Path) -> None:
    # The window's rows are shuffled by the fit's stream exactly as fit shuffles an epoch:
    # so a window as large as the file gives the in-memory fit; smaller windows differ
    # from it by the order of the rows only.
    path = _write_csv(tmp_path / "d.csv", _frame())
    source = st.Source.open(path, label="label")
    found = st.scan(source, impute="mean")
    pre, X, codes = _in_memory(path)
    a = gn.mlp([pre.n_inputs, 6, 2], seed=3, dtype="float64")
    b = gn.mlp([pre.n_inputs, 6, 2], seed=3, dtype="float64")
    st.fit_stream(a, source, found, epochs=2, batch_size=16, window_batches=32, seed=5)
    b.preprocessing = pre
    b.fit(X, codes, epochs=2, batch_size=16, seed=5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)
    c = gn.mlp([pre.n_inputs, 6, 2], seed=3, dtype="float64")
    st.fit_stream(c, source, found, epochs=2, batch_size=16, window_batches=2, seed=5)
    assert not np.allclose(c.parameters()[0], a.parameters()[0])  # another order


def test_a_regression_target_streams_too(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 200
    X = rng.normal(size=(n, 2))
    cols = {"x1": X[:, 0].tolist(), "x2": X[:, 1].tolist(), "y": (3 * X[:, 0] + 0.5).tolist()}
    path = _write_csv(tmp_path / "r.csv", cols)  # type: ignore[arg-type]
    source = st.Source.open(path, label="y")
    found = st.scan(source)
    assert found.task == "regression" and found.classes is None
    np.testing.assert_allclose(found.target_mean, np.mean(cols["y"]), rtol=1e-12)
    a = gn.mlp([2, 4, 1], output="identity", seed=1, dtype="float64")
    b = gn.mlp([2, 4, 1], output="identity", seed=1, dtype="float64")
    st.fit_stream(a, source, found, epochs=2, batch_size=8, window_batches=3, shuffle=False)
    b.preprocessing = found.preprocessing
    b.fit(X, np.asarray(cols["y"]), epochs=2, batch_size=8, shuffle=False)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


# -- glassnet train --stream ------------------------------------------------------------------
def _train(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert cli.main(["train", *argv, "--no-progress", "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_command_streams_writes_a_model_and_resumes_to_the_same_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_csv(tmp_path / "d.csv", _frame())
    common = ["--data", str(path), "--stream", "--impute", "mean", "--layers", "5",
              "--batch-size", "16", "--window", "4", "--dtype", "float64",
              "--lr", "0.01"]  # fmt: skip
    whole, part, resumed = (tmp_path / f"{k}.npz" for k in ("whole", "part", "resumed"))
    s = _train(capsys, *common, "--epochs", "3", "--out", str(whole))
    assert s["stream"] and s["rows"] == 503 and s["window_rows"] == 64 and s["epochs"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "whole.npz"]
    _train(capsys, *common, "--epochs", "2", "--out", str(part))
    _train(capsys, "--resume", str(part), "--epochs", "3", "--out", str(resumed))
    a, b = gn.load(whole), gn.load(resumed)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)  # the same run, interrupted or not
    # The model file holds the stored preprocessing and scores a CSV with evaluate.
    assert a.preprocessing is not None and a.classes == ["no", "yes"]
    assert cli.main(["evaluate", str(whole), "--data", str(path), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 503


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_torchrun_two_processes_stream_as_one_with_the_same_global_batch(tmp_path: Path) -> None:
    # Each process reads the stream and takes its contiguous part of every batch (8 + 7
    # rows of 15), with shuffling within windows and dropout: the same run as one process
    # with the whole batch.  gloo on the loopback, bounded in time.
    pytest.importorskip("torch")
    path = _write_csv(tmp_path / "d.csv", _frame(200))
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    common = ["train", "--data", str(path), "--stream", "--impute", "mean", "--layers", "5",
              "--dtype", "float64", "--engine", "torch", "--batch-size", "15", "--window", "3",
              "--dropout", "0.2", "--epochs", "2", "--no-progress", "--json"]  # fmt: skip
    two, one = tmp_path / "two.npz", tmp_path / "one.npz"
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
              "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
              "-m", "glassnet"]  # fmt: skip
    for argv in ([*launch, *common, "--out", str(two)],
                 [sys.executable, "-m", "glassnet", *common, "--out", str(one)]):  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout)["epochs"] == 2  # rank 0 alone printed the summary
    a, b = gn.load(one), gn.load(two)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(q, p, rtol=1e-9, atol=1e-12)
    assert a.train_state is not None and b.train_state is not None
    np.testing.assert_allclose(
        b.train_state.history.history["loss"], a.train_state.history.history["loss"], rtol=1e-9
    )


def test_a_parquet_file_trains_as_the_same_rows_in_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(st, "PARQUET_BATCH", 50)  # windows cut across the file's batches
    cols = _frame(300)
    csv_path = _write_csv(tmp_path / "d.csv", cols)
    pq_path = _write_parquet(tmp_path / "d.parquet", cols)
    models = []
    for path in (csv_path, pq_path):
        out = tmp_path / f"{path.suffix[1:]}.npz"
        _train(capsys, "--data", str(path), "--stream", "--impute", "mean", "--layers", "4",
               "--batch-size", "16", "--window", "3", "--dtype", "float64", "--epochs", "2",
               "--out", str(out))  # fmt: skip
        models.append(gn.load(out))
    a, b = models
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(q, p, rtol=1e-12, atol=1e-15)
