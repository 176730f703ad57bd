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


# -- sharded reading (--shards) ----------------------------------------------------------------
def _rows_of(source: st.Source) -> list[dict[str, object]]:
    return [row for batch in source.batches() for row in batch.to_pylist()]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_shards_cut_the_file_into_its_rows_in_order(tmp_path: Path, kind: str) -> None:
    # The shards, read one after another, are the file's rows in order, each row in
    # exactly one shard (CSV: byte ranges moved to line starts; Parquet: row groups).
    cols = _frame(503)
    write = _write_csv if kind == "csv" else _write_parquet
    source = st.Source.open(write(tmp_path / f"d.{kind}", cols), label="label")
    whole = _rows_of(source)
    assert len(whole) == 503
    for shards in (1, 2, 3, 7):
        parts = [source.shard(r, shards) for r in range(shards)]
        got = [_rows_of(p) for p in parts]
        assert [row for rows in got for row in rows] == whole
        assert [p.rows_read for p in parts] == [len(rows) for rows in got]
        if kind == "parquet":  # 6 row groups of 100 (the last 3): near-equal runs of them
            groups = np.array_split(np.arange(6), shards)
            assert [len(rows) for rows in got] == [
                sum(min(100, 503 - 100 * int(g)) for g in gs) for gs in groups
            ]
        else:  # near-equal byte ranges: no shard is empty or far from its share
            assert min(len(rows) for rows in got) > 503 / shards * 0.8


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_the_sharded_first_pass_merges_to_the_in_memory_preprocessing(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(st, "PARQUET_BATCH", 37)
    cols = _frame()
    csv_path = _write_csv(tmp_path / "d.csv", cols)
    path = csv_path if kind == "csv" else _write_parquet(tmp_path / "d.parquet", cols)
    source = st.Source.open(path, label="label")
    want, _, _ = _in_memory(csv_path)
    for shards in (2, 3, 5):
        found = st.scan(source, impute="mean",
                        shards=[source.shard(r, shards) for r in range(shards)])  # fmt: skip
        got = found.preprocessing
        assert found.dropped == ["same"] and found.rows == 503 == sum(found.shard_rows)
        assert len(found.shard_rows) == shards
        for g, w in zip(got.columns or [], want.columns or [], strict=True):
            assert (g.name, g.kind, g.categories) == (w.name, w.kind, w.categories)
            if isinstance(w.fill, float):
                np.testing.assert_allclose(g.fill, w.fill, rtol=1e-12)
            else:
                assert g.fill == w.fill
        np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.scale, want.scale, rtol=1e-12)
        assert found.classes == ["no", "yes"] and found.task == "classification"


def test_a_column_that_is_text_in_a_later_shard_only_is_text_in_all(tmp_path: Path) -> None:
    # Shard 1 sees only numbers in "code": it reads them again as text when another
    # shard found text, so the categories and their order are the whole file's.
    n = 60
    code = [str(i % 3) for i in range(50)] + ["x", "y"] * 5
    code[4] = "NA"
    cols = {"code": code, "v": [float(i) for i in range(n)], "label": [i % 2 for i in range(n)]}
    path = _write_csv(tmp_path / "d.csv", cols)  # type: ignore[arg-type]
    source = st.Source.open(path, label="label")
    whole = st.scan(source, impute="mean").preprocessing
    for shards in (2, 4):
        parts = [source.shard(r, shards) for r in range(shards)]
        got = st.scan(source, impute="mean", shards=parts).preprocessing
        assert got.columns == whole.columns
        assert (got.columns or [])[0].categories == ["0", "1", "2", "x", "y"]
        np.testing.assert_allclose(got.mean, whole.mean, rtol=1e-12)
        np.testing.assert_allclose(got.scale, whole.scale, rtol=1e-12)


def test_a_quoted_line_break_is_refused_with_shards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["a,note,label"] + [f"{i},plain,{i % 2}" for i in range(40)]
    lines[30] = '29,"two\nlines",1'
    path = tmp_path / "q.csv"
    path.write_text("\n".join(lines) + "\n")
    argv = ["train", "--data", str(path), "--stream", "--shards", "2", "--epochs", "1",
            "--out", str(tmp_path / "m.npz")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "line break" in err and str(path) in err
    assert not (tmp_path / "m.npz").exists()
    assert cli.main([*argv[:4], *argv[6:], "--no-progress"]) == 0  # without --shards: read whole


def test_one_shard_is_the_plain_streamed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_csv(tmp_path / "d.csv", _frame(200))
    common = ["--data", str(path), "--stream", "--impute", "mean", "--layers", "5",
              "--dtype", "float64", "--batch-size", "15", "--window", "3",
              "--dropout", "0.2", "--epochs", "2"]  # fmt: skip
    _train(capsys, *common, "--out", str(tmp_path / "plain.npz"))
    summary = _train(capsys, *common, "--shards", "1", "--out", str(tmp_path / "one.npz"))
    assert summary["shards"] == 1 and summary["rows_read"] == [200 * 3]  # first pass, 2 epochs
    a, b = gn.load(tmp_path / "plain.npz"), gn.load(tmp_path / "one.npz")
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(q, p)  # the same steps on the same rows


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_two_shards_make_each_batch_of_both_shards_parts(tmp_path: Path, dropout: float) -> None:
    # The semantics, against fit on the whole table in memory: 160 rows in two row groups
    # of 80 (the two shards), batch 16 = 8 rows of each shard a step, shuffling off; so
    # step s is shard 0's rows 8s..8s+7 then shard 1's, which fit on the rows put in
    # that order with consecutive batches of 16 takes too.
    n = 160
    cols = _frame(n)
    pre, X, codes = _in_memory(_write_csv(tmp_path / "d.csv", cols))
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(cols), path, row_group_size=80)
    source = st.Source.open(path, label="label")
    sharding = st.Sharding(2, [], [source.shard(r, 2) for r in range(2)])
    found = st.scan(source, impute="mean", shards=sharding.sources)
    sharding.rows = found.shard_rows
    assert sharding.rows == [80, 80]

    def make() -> tuple[gn.Model, object]:
        return gn.mlp([pre.n_inputs, 6, 2], seed=3, dtype="float64", dropout=dropout), Adam(0.01)

    streamed, opt_s = make()
    history = st.fit_stream(streamed, source, found, epochs=2, batch_size=16, window_batches=3,
                            shuffle=False, optimizer=opt_s, sharding=sharding)  # fmt: skip
    order = np.concatenate([np.r_[8 * s : 8 * s + 8, 80 + 8 * s : 80 + 8 * s + 8]
                            for s in range(10)])  # fmt: skip
    whole, opt_w = make()
    whole.preprocessing = pre
    want = whole.fit(X[order], codes[order], epochs=2, batch_size=16, shuffle=False,
                     optimizer=opt_w)  # fmt: skip
    for p, q in zip(streamed.parameters(), whole.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(history.history["loss"], want.history["loss"], rtol=1e-9)
    assert history.history["accuracy"] == want.history["accuracy"]


def _torchrun(argv: list[str], processes: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "glassnet"]
    if processes > 1:
        launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                  str(processes), "--master-addr", "127.0.0.1", "--master-port",
                  str(_free_port()), "-m", "glassnet"]  # fmt: skip
    done = subprocess.run([*launch, "train", *argv, "--no-progress", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    return done


def test_torchrun_two_processes_each_reading_its_shard_equal_one_reading_both(
    tmp_path: Path,
) -> None:
    # Two processes, each reading only its shard of the CSV (101 and 99 rows: byte
    # ranges), equal one process reading both shards in lockstep: float64, dropout,
    # window shuffling, a batch of 15 = 8 + 7 rows, and the process whose shard runs
    # out first giving empty parts.  Then each run resumed on the other number of
    # processes for a third epoch equals 3 epochs in one process.
    pytest.importorskip("torch")
    path = _write_csv(tmp_path / "d.csv", _frame(200))
    common = ["--data", str(path), "--stream", "--impute", "mean", "--layers", "5",
              "--dtype", "float64", "--engine", "torch", "--batch-size", "15", "--window",
              "3", "--dropout", "0.2", "--shards", "2"]  # fmt: skip
    resume = ["--epochs", "3", "--engine", "torch"]
    runs: dict[str, dict[str, object]] = {}
    for name, processes, argv in (
        ("two", 2, [*common, "--epochs", "2"]),
        ("one", 1, [*common, "--epochs", "2"]),
        ("three", 1, [*common, "--epochs", "3"]),
        ("two_then_one", 1, ["--resume", str(tmp_path / "two.npz"), *resume]),
        ("one_then_two", 2, ["--resume", str(tmp_path / "one.npz"), *resume]),
    ):
        done = _torchrun([*argv, "--out", str(tmp_path / f"{name}.npz")], processes)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = json.loads(done.stdout)  # rank 0 alone printed the summary
    # Each process read its own shard only: the first pass and two epochs of it.
    shard_rows = [len(_rows_of(st.Source.open(path, label="label").shard(r, 2))) for r in (0, 1)]
    assert sum(shard_rows) == 200 and min(shard_rows) > 80
    assert runs["two"]["rows_read"] == [3 * n for n in shard_rows]
    assert runs["one"]["rows_read"] == [3 * 200]
    models = {k: gn.load(tmp_path / f"{k}.npz") for k in runs}
    for a, b in (("one", "two"), ("three", "two_then_one"), ("three", "one_then_two")):
        for p, q in zip(models[a].parameters(), models[b].parameters(), strict=True):
            np.testing.assert_allclose(q, p, rtol=1e-9, atol=1e-12)
        ha, hb = (models[k].train_state.history.history for k in (a, b))  # type: ignore[union-attr]
        np.testing.assert_allclose(hb["loss"], ha["loss"], rtol=1e-9)
        assert hb["accuracy"] == ha["accuracy"]


def test_torchrun_a_bad_cell_in_one_shard_stops_every_process_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    cols = _frame(200)
    cols["b"][180] = float("inf")  # in the second shard only
    path = _write_csv(tmp_path / "d.csv", cols)
    done = _torchrun(["--data", str(path), "--stream", "--impute", "mean", "--engine", "torch",
                      "--shards", "2", "--out", str(tmp_path / "m.npz")], 2)  # fmt: skip
    assert done.returncode != 0
    # Each process says it (neither waits for the other); counted, not split in lines:
    # the two processes' writes to the one stderr may interleave.
    said = "expected a finite number, got inf on line 182"  # data row 180 + the header
    assert done.stderr.count(said) == 2, done.stderr[-3000:]
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("shards", [None, 2, 3])
def test_a_bad_cell_is_named_by_its_line_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shards: int | None
) -> None:
    # Blank lines (not rows) and, without shards, a quoted cell holding a line break (one
    # row on two lines) come before the bad cell: its line is found in the text itself.
    rng = np.random.default_rng(3)
    lines = ["a,b,note,label"]
    for i in range(120):
        if i % 25 == 7:
            lines.append("")
        note = '"two\nlines"' if shards is None and i == 40 else "x"
        b = "inf" if i == 101 else repr(float(rng.normal()))
        lines.append(f"{rng.normal()!r},{b},{note},{'yes' if i % 2 else 'no'}")
    text = "\n".join(lines) + "\n"
    path = tmp_path / "d.csv"
    path.write_text(text)
    expected = 1 + next(n for n, line in enumerate(text.split("\n")) if ",inf," in line)
    argv = ["train", "--data", str(path), "--stream", "--impute", "mean", "--epochs", "1",
            "--no-progress", "--out", str(tmp_path / "m.npz")]  # fmt: skip
    if shards:
        argv += ["--shards", str(shards)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"field 'b': expected a finite number, got inf on line {expected}" in err, err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "m.npz").exists()


def test_an_ambiguous_decimal_comma_is_named_by_one_line_on_every_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A ;-separated file with decimal commas, a blank line, and "1.234" (1234 or 1,234?)
    # in the second half: the in-memory reader, --stream and --stream --shards 2 name
    # the same line, the one the text has it on.
    lines = ["a;b;label"]
    for i in range(80):
        lines.append(f"{i},25;{'1.234' if i == 60 else f'{i},5'};{'yes' if i % 2 else 'no'}")
        if i == 30:
            lines.append("")
    path = tmp_path / "dc.csv"
    path.write_text("\n".join(lines) + "\n")
    expected = 1 + next(n for n, line in enumerate(lines) if "1.234" in line)
    base = ["train", "--data", str(path), "--epochs", "1", "--no-progress",
            "--out", str(tmp_path / "m.npz")]  # fmt: skip
    for extra in ([], ["--stream"], ["--stream", "--shards", "2"]):
        assert cli.main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert "field 'b': expected a number that reads one way" in err, err
        assert err.endswith(f"got '1.234' on line {expected}"), (extra, err)


def test_shards_options_are_checked_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_csv(tmp_path / "d.csv", _frame(60))
    base = ["train", "--data", str(path), "--impute", "mean", "--epochs", "1", "--no-progress"]
    run = tmp_path / "run.npz"
    assert cli.main([*base, "--stream", "--shards", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    for argv, words in (
        ([*base, "--shards", "2"], "with --stream"),  # not streamed: nothing to shard
        ([*base, "--stream", "--shards", "0"], "≥ 1"),
        ([*base, "--stream", "--shards", "40", "--batch-size", "32"], "--batch-size ≥ --shards"),
        (["train", "--resume", str(run), "--epochs", "2", "--shards", "3"], "checkpoint's"),
        (["train", "--resume", str(run), "--epochs", "2", "--shards", "2"], None),
    ):
        out = tmp_path / "m.npz"
        code = cli.main([*argv, "--out", str(out)])
        err = capsys.readouterr().err.strip()
        if words is None:
            assert code == 0 and gn.load(out).train_state.epoch == 2  # type: ignore[union-attr]
            continue
        assert code == 2 and len(err.splitlines()) == 1 and words in err, err
        assert "--shards" in err
