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
    data = write_csv(
        tmp_path / "d.csv", ["a", "b", "label"], [[*r, t] for r, t in zip(X, y, strict=True)]
    )
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


# -- 1: text columns encoded straight from Arrow: the same numbers ------------------------------
def _mixed(path: Path, n: int = 240, seed: int = 4) -> dict[str, list[str]]:
    """Numbers, text with missing cells (``""``, ``NA``), a tie for the most frequent
    category, a number column with one stray word; written as text cells."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list[str]] = {
        "age": [f"{v:.2f}" for v in rng.normal(40, 12, n)],
        "city": [("oslo", "rome", "lima", " oslo ")[k] for k in rng.integers(0, 4, n)],
        "size": [("S", "M", "L", "XL")[k] for k in rng.integers(0, 4, n)],
        "income": [f"{v:.1f}" for v in rng.normal(3000, 400, n)],
    }
    for i in (3, 50, 51):
        cols["city"][i] = ("", "NA", "")[(3, 50, 51).index(i)]
    for i in (7, 90):
        cols["age"][i] = ""
    cols["income"][11] = "unknown"  # one stray word: an error, or missing with --coerce
    y = (rng.random(n) < 0.5).astype(int)
    write_csv(path, [*cols, "label"], [[*r, t] for *r, t in zip(*cols.values(), y, strict=True)])
    return cols


@pytest.mark.parametrize("impute", ["median", "most_frequent", "mean"])
def test_text_columns_from_arrow_give_the_same_numbers_as_cells(tmp_path, impute):
    """The columns kept as codes (RawTable) and the same cells as an object array (the
    old path) give the same preprocessing, the same features and the same model; and
    both equal an encoding written independently with pandas."""
    pd = pytest.importorskip("pandas", reason="the independent encoding uses pandas")
    from glassnet.data import read_rows
    from glassnet.preprocess import Preprocessing
    from glassnet.rawtable import RawTable, TextCells

    data = tmp_path / "d.csv"
    _mixed(data)
    t = read_rows(str(data))
    assert isinstance(t.X, RawTable)
    assert [type(c).__name__ for c in t.X.data] == [
        "ndarray",
        "TextCells",
        "TextCells",
        "TextCells",
    ]
    assert all(c.codes.dtype == np.int32 for c in t.X.data if isinstance(c, TextCells))
    cells = np.asarray(t.X)  # the object table the old reader gave
    assert cells.dtype == object and cells.shape == (240, 4)
    train = np.arange(0, 240, 3)  # some rows, as a split would
    kw = {"impute": impute, "coerce": True}
    new = Preprocessing.fit(t.X, t.names, train, **kw)
    old = Preprocessing.fit(cells, t.names, train, **kw)
    assert [c.to_dict() for c in new.columns] == [c.to_dict() for c in old.columns]
    np.testing.assert_array_equal(new.mean, old.mean)
    np.testing.assert_array_equal(new.scale, old.scale)
    np.testing.assert_array_equal(new.transform(t.X), old.transform(cells))
    assert (
        new.notes
        == old.notes
        == ["income: 1 cell(s) that are not numbers read as missing (--coerce)"]
    )

    # an independent encoding: pandas reads the file, fills and one-hot encodes
    frame = pd.read_csv(data, dtype=str, keep_default_na=False).drop(columns="label")
    frame = frame.apply(lambda s: s.str.strip())
    frame = frame.replace({"": np.nan, "NA": np.nan})
    frame["income"] = pd.to_numeric(frame["income"], errors="coerce")
    frame["age"] = frame["age"].astype(float)
    part = frame.iloc[train]
    blocks = []
    for name in ["age", "city", "size", "income"]:
        col = frame[name]
        if name in ("age", "income"):
            if impute == "most_frequent":
                fill = (
                    part[name]
                    .value_counts(sort=False)
                    .sort_values(ascending=False, kind="stable")
                    .index[0]
                )
            else:
                fill = getattr(part[name], impute)()
            v = col.fillna(fill)
            mean, std = v.iloc[train].mean(), v.iloc[train].std(ddof=0)
            blocks.append(((v - mean) / std).to_numpy()[:, None])
        else:
            present = part[name].dropna()
            fill = present.value_counts(sort=False).sort_values(ascending=False, kind="stable")
            cats = sorted(col.dropna().unique())
            dummies = pd.get_dummies(col.fillna(fill.index[0])).reindex(columns=cats)
            blocks.append(dummies.to_numpy(dtype=float))
    np.testing.assert_allclose(new.transform(t.X), np.hstack(blocks), rtol=0, atol=1e-12)


def test_text_columns_from_arrow_train_the_same_model(tmp_path):
    from glassnet.data import load_dataset

    data = tmp_path / "d.csv"
    _mixed(data)
    ds = load_dataset(str(data), impute="median", coerce=True)
    models = []
    for X in (ds.X_train_raw, np.asarray(ds.X_train_raw)):  # codes, then object cells
        net = gn.mlp([ds.n_features, 8, 2], seed=3)
        net.preprocessing = ds.preprocessing
        net.fit(X, ds.y_train, epochs=5, batch_size=16, validation_split=0.2)
        models.append(net)
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(
        models[0].predict_proba(ds.X_test_raw), models[1].predict_proba(np.asarray(ds.X_test_raw))
    )


def test_predict_on_a_file_with_text_columns_matches_the_python_path(tmp_path, capsys):
    data = tmp_path / "d.csv"
    cols = _mixed(data)
    model = tmp_path / "m.npz"
    argv = ["train", "--data", data, *FAST, "--impute", "median", "--coerce", "--out", model]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    code, out, err = run(capsys, "predict", model, data)
    assert code == 0, err
    written = np.array([[float(v) for v in line.split(",")[-2:]] for line in out.splitlines()[1:]])
    cells = np.array(list(zip(*cols.values(), strict=True)), dtype=object)
    np.testing.assert_allclose(written[:, -2:], gn.load(model).predict_proba(cells), atol=1e-6)


# -- 2: 1.234,5 with a decimal comma ------------------------------------------------------------
def _comma_file(path: Path, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A semicolon file whose amounts are written the German way: 1.234,5 (thousands
    dots, decimal comma), and a small column written 0,25."""
    rng = np.random.default_rng(2)
    amount = np.round(rng.uniform(1000, 900_000, n), 1)
    small = np.round(rng.normal(size=n), 2)
    y = (small > 0).astype(int)

    def german(v: float, decimals: int) -> str:
        text = f"{v:,.{decimals}f}"  # 1,234.5
        return text.replace(",", "_").replace(".", ",").replace("_", ".")

    rows = [[german(a, 1), german(s, 2), t] for a, s, t in zip(amount, small, y, strict=True)]
    write_csv(path, ["amount", "small", "label"], rows, delimiter=";")
    return amount, small


@pytest.mark.parametrize("said", [[], ["--decimal", ","]])
def test_thousands_dots_with_a_decimal_comma_are_read_as_numbers(tmp_path, capsys, said):
    from glassnet.data import read_rows

    data = tmp_path / "d.csv"
    amount, small = _comma_file(data)
    t = read_rows(str(data), **({"decimal": ","} if said else {}))
    np.testing.assert_array_equal(t.X[:, 0], amount)
    np.testing.assert_array_equal(t.X[:, 1], small)
    code, _, err = run(capsys, "train", "--data", data, *said, *FAST, "--out", tmp_path / "m.npz")
    assert code == 0, err
    pre = gn.load(tmp_path / "m.npz").preprocessing
    assert pre.numbers_only and abs(pre.mean[0] - amount.mean()) < 0.1 * amount.std()


def test_an_ambiguous_thousands_dot_is_an_error_naming_the_cell(tmp_path, capsys):
    data = tmp_path / "d.csv"
    _comma_file(data)
    lines = data.read_text().splitlines()
    lines[5] = "1.234;" + lines[5].split(";", 1)[1]  # 1.234: 1234 or 1.234?
    data.write_text("\n".join(lines) + "\n")
    line = one_error_line(
        *run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")[::2]
    )
    assert "field 'amount'" in line and "'1.234' on line 6" in line and "--decimal" in line
    assert not (tmp_path / "m.npz").exists()
    # in a column that is not all numbers (a stray word too), the same
    lines[9] = "unknown;" + lines[9].split(";", 1)[1]
    data.write_text("\n".join(lines) + "\n")
    line = one_error_line(
        *run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")[::2]
    )
    assert "'1.234' on line 6" in line
    # with a decimal point, 1.234 is a plain number and "1,234" a thousands comma
    plain = write_csv(tmp_path / "p.csv", ["a", "label"], [["1.234", 0], ["1,234", 1]] * 10)
    from glassnet.data import read_rows

    assert set(read_rows(str(plain)).X[:, 0]) == {1.234, 1234.0}
    # with a decimal comma, a point that cannot be a thousands mark is a decimal point
    comma = write_csv(
        tmp_path / "c.csv",
        ["a", "label"],
        [["0.125", 0], ["2,5", 1], ["1234.5", 0]] * 10,
        delimiter=";",
    )
    assert set(read_rows(str(comma), decimal=",").X[:, 0]) == {0.125, 2.5, 1234.5}


# -- 3: line numbers after quoted line breaks -----------------------------------------------------
def _broken_lines(path: Path) -> list[list[str]]:
    """Rows whose note cell holds line breaks early on, so later rows sit lower in the
    file than their row number says."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(60):
        note = "two\nlines" if i in (2, 4) else ("three\nlines\nhere" if i == 6 else "one")
        rows.append([f"{rng.normal():.3f}", f"{rng.normal():.3f}", note, str(i % 2)])
    return rows


def _line_of(path: Path, cell: str) -> int:
    """The file line where ``cell`` starts, counted in the text itself."""
    text = path.read_text()
    return text[: text.index(cell)].count("\n") + 1


def test_errors_name_the_files_real_line_after_quoted_line_breaks(tmp_path, capsys):
    rows = _broken_lines(tmp_path / "d.csv")
    rows[30][0] = "oops"  # a stray word in a number column (fit's message)
    data = write_csv(tmp_path / "d.csv", ["a", "b", "note", "label"], rows)
    want = _line_of(data, "oops")
    assert want == 30 + 2 + 4  # row 30, after the header and 4 extra lines
    line = one_error_line(
        *run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")[::2]
    )
    assert f"'oops' on line {want}" in line, line
    # an empty label (the reader's message)
    rows = _broken_lines(tmp_path / "d.csv")
    rows[40][3] = ""
    data = write_csv(tmp_path / "d.csv", ["a", "b", "note", "label"], rows)
    line = one_error_line(
        *run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")[::2]
    )
    assert f"on line {40 + 2 + 4}" in line, line
    # a missing cell at predict (the encoder's message)
    rows = _broken_lines(tmp_path / "d.csv")
    data = write_csv(tmp_path / "d.csv", ["a", "b", "note", "label"], rows)
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", data, *FAST, "--out", model)[0] == 0
    rows[50][1] = ""
    new = write_csv(tmp_path / "new.csv", ["a", "b", "note", "label"], rows)
    line = one_error_line(*run(capsys, "predict", model, new)[::2])
    assert "field 'b'" in line and f"on line {50 + 2 + 4}" in line, line
    # an infinite number (the number reader's message), below a blank line too
    rows[50][1], rows[55][0] = "0.5", "inf"
    write_csv(new, ["a", "b", "note", "label"], rows)
    text = new.read_text()
    new.write_text(text.replace("\n", "\n\n", 1))  # a blank line after the header
    line = one_error_line(*run(capsys, "predict", model, new)[::2])
    assert f"on line {_line_of(new, 'inf')}" in line and _line_of(new, "inf") == 55 + 2 + 5, line


# -- 4: DataFrames expand date columns as the CLI does -----------------------------------------
def _dated(path: Path, n: int = 160) -> list[list[object]]:
    rng = np.random.default_rng(6)
    days = rng.integers(0, 700, n)
    dates = [(np.datetime64("2023-01-01") + int(d)).astype(str) for d in days]
    x = rng.normal(size=n)
    label = ((days % 365) > 182).astype(int)  # the second half of a year
    rows = [[d, f"{v:.3f}", t] for d, v, t in zip(dates, x, label, strict=True)]
    write_csv(path, ["when", "x", "label"], rows)
    return rows


def test_a_dataframe_with_a_date_column_predicts_as_the_csv_does(tmp_path, capsys):
    pd = pytest.importorskip("pandas", reason="DataFrames are pandas'")
    from glassnet.data import stratified_split
    from glassnet.runs import load_trained

    data = tmp_path / "d.csv"
    rows = _dated(data)
    model = tmp_path / "m.npz"
    argv = ["train", "--data", data, *FAST, "--dates", "expand", "--out", model]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    code, out, err = run(capsys, "predict", model, data)
    assert code == 0, err
    from_csv = [line.split(",")[0] for line in out.splitlines()[1:]]
    m = gn.load(model)
    assert m.preprocessing.feature_names == [
        "when_year", "when_month", "when_day", "when_weekday", "x"
    ]  # fmt: skip
    text = pd.DataFrame({"x": [float(r[1]) for r in rows], "when": [r[0] for r in rows]})
    stamps = text.assign(when=pd.to_datetime(text["when"]))
    for frame in (text, stamps):  # dates as text, and as datetime64
        assert [str(v) for v in m.predict(frame)] == from_csv
    # the same frame gives the CLI's preprocessing, fitted on the CLI's training rows
    _, settings = load_trained(str(model))
    labels = np.array([r[2] for r in rows])
    train, _ = stratified_split(labels, settings.test_size, settings.seed)
    for frame in (text, stamps):
        pre = gn.preprocessing_from(frame.iloc[train], dates="expand")
        assert sorted(pre.feature_names) == sorted(m.preprocessing.feature_names)
        order = [pre.feature_names.index(n) for n in m.preprocessing.feature_names]
        np.testing.assert_allclose(pre.mean[order], m.preprocessing.mean, rtol=1e-12)
        np.testing.assert_allclose(pre.scale[order], m.preprocessing.scale, rtol=1e-12)
    # without saying what dates are, a frame's date column is refused with the hint
    with pytest.raises(gn.GlassnetError, match='dates="expand"'):
        gn.preprocessing_from(stamps)
    # fit on a frame: the network is given the expanded columns
    net = gn.mlp([5, 4, 2], seed=0)
    net.preprocessing = gn.preprocessing_from(text, dates="expand")
    net.fit(text, labels, epochs=2)
    assert net.predict(stamps).shape == (len(rows),)


def test_the_sklearn_date_expander_gives_the_clis_features(tmp_path):
    pd = pytest.importorskip("pandas", reason="DataFrames are pandas'")
    pytest.importorskip("sklearn", reason="the wrapper is scikit-learn's")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from glassnet.data import read_rows
    from glassnet.sklearn import DateExpander, GlassnetClassifier

    data = tmp_path / "d.csv"
    rows = _dated(data)
    t = read_rows(str(data), dates="expand")  # what train and predict read from the CSV
    frame = pd.DataFrame({"when": pd.to_datetime([r[0] for r in rows]), "x": [r[1] for r in rows]})
    frame["x"] = frame["x"].astype(float)
    out = DateExpander().fit(frame).transform(frame)
    assert list(out.columns) == t.names
    np.testing.assert_array_equal(out.to_numpy(dtype=float), t.X)
    labels = np.array([r[2] for r in rows])
    pipe = make_pipeline(DateExpander(), StandardScaler(), GlassnetClassifier((8,), epochs=3))
    assert pipe.fit(frame, labels).predict(frame).shape == (len(rows),)
    with pytest.raises(ValueError, match="when_day"):
        DateExpander().fit(frame).transform(frame[["x"]])
