"""Issue 23: where a practitioner's data comes in and predictions go out, no silent wrong
answers.  Each test is written from the user's side — a CSV in, a file or a number out —
and its expected values come from the data the test itself wrote (never from glassnet's
own output pasted in)."""

from __future__ import annotations

import csv
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet import cli

FAST = ["--layers", "8", "--epochs", "30", "--lr", "0.01", "--no-progress"]


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def one_error_line(code: int, err: str) -> str:
    """The single line of a refused command (exit 2, no traceback)."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def blobs(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two features, two well-separated classes (label 1 where a + b > 0)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, (X.sum(axis=1) > 0).astype(int)


# -- 1: Model.predict on a DataFrame takes columns by name ---------------------------------
@pytest.fixture(scope="module")
def wide_model(tmp_path_factory) -> tuple[Path, np.ndarray, list[str]]:
    """A model on five columns with very different scales (so standardising matters)."""
    folder = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(3)
    n = 200
    X = np.column_stack(
        [
            rng.normal(50, 10, n),
            rng.normal(-3, 1, n),
            rng.normal(1000, 200, n),
            rng.normal(7, 2, n),
            rng.normal(0.5, 0.1, n),
        ]
    )
    y = ((X[:, 0] - 50) / 10 - (X[:, 2] - 1000) / 200 + (X[:, 3] - 7) / 2 > 0).astype(int)
    names = ["age", "debt", "income", "years", "ratio"]
    data = write_csv(
        folder / "wide.csv", [*names, "label"], [[*r, t] for r, t in zip(X, y, strict=True)]
    )
    model = folder / "m.npz"
    argv = ["train", "--data", data, *FAST, "--epochs", "60", "--out", model, "--json"]
    assert cli.main([str(a) for a in argv]) == 0
    return model, X, names


def test_a_dataframe_is_taken_by_column_name_in_any_order(wide_model):
    pd = pytest.importorskip("pandas", reason="pandas is not installed")
    model, X, names = wide_model
    m = gn.load(model)
    in_order = m.predict_proba(X)
    shuffled = pd.DataFrame(X, columns=names)[["ratio", "income", "age", "years", "debt"]]
    shuffled["note"] = "an extra column is ignored"
    np.testing.assert_array_equal(m.predict_proba(shuffled), in_order)
    # positional reading of the same frame would give other answers: the test can tell
    assert not np.allclose(m.predict_proba(shuffled.iloc[:, :5].to_numpy(float)), in_order)


def test_a_dataframe_without_a_column_is_refused_by_name(wide_model):
    pd = pytest.importorskip("pandas", reason="pandas is not installed")
    model, X, names = wide_model
    frame = pd.DataFrame(X, columns=names).drop(columns=["income", "years"])
    with pytest.raises(gn.GlassnetError, match="2 missing: income, years"):
        gn.load(model).predict(frame)


def test_already_standardised_rows_get_a_warning_and_raw_rows_none(wide_model):
    model, X, _ = wide_model
    m = gn.load(model)
    z = (X - X.mean(axis=0)) / X.std(axis=0)  # what ds.X_test holds: standardised by hand
    with pytest.warns(UserWarning, match="already standardised"):
        m.predict(z[:40])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.predict(X[:40])  # raw rows: silent
        m.predict(X[:1])


def test_a_bare_array_of_the_wrong_width_is_refused(wide_model):
    model, X, _ = wide_model
    with pytest.raises(gn.GlassnetError, match="5 raw features"):
        gn.load(model).predict(X[:, :4])


# -- 2: IDs are copied as written ------------------------------------------------------------
def test_numeric_ids_are_copied_verbatim(tmp_path, capsys):
    X, y = blobs()
    data = write_csv(
        tmp_path / "d.csv", ["a", "b", "label"], [[*r, t] for r, t in zip(X, y, strict=True)]
    )
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", data, *FAST, "--out", model, "--json")[0] == 0
    ids = [f"{91234567 + 7 * i:08d}" for i in range(48)] + ["00000042", "1e5"]
    rows = write_csv(
        tmp_path / "rows.csv", ["id", "a", "b"], [[i, *r] for i, r in zip(ids, X[:50], strict=True)]
    )
    out = tmp_path / "p.csv"
    code, _, err = run(capsys, "predict", model, rows, "--id-column", "id", "-o", out)
    assert code == 0, err
    with out.open(newline="") as f:
        written = [line[0] for line in list(csv.reader(f))[1:]]
    assert written == ids


# -- 3: a few non-numbers in a number column; thousands separators -----------------------------
def test_a_stray_word_in_a_number_column_is_named_or_coerced(tmp_path, capsys):
    X, y = blobs()
    cells = [[f"{a:.4f}", f"{b:.4f}", t] for (a, b), t in zip(X, y, strict=True)]
    cells[9][0] = "unknown"  # line 11 of the file (header on line 1)
    data = write_csv(tmp_path / "d.csv", ["a", "b", "label"], cells)
    model = tmp_path / "m.npz"
    line = one_error_line(*run(capsys, "train", "--data", data, *FAST, "--out", model)[::2])
    assert "field 'a'" in line and "'unknown' on line 11" in line and "--coerce" in line
    assert not model.exists()
    code, out, err = run(
        capsys, "train", "--data", data, *FAST, "--out", model, "--coerce", "--impute", "mean"
    )
    assert code == 0, err
    assert "a: 1 cell(s) that are not numbers read as missing" in out
    m = gn.load(model)
    assert m.sizes[0] == 2  # a stayed one number input, not ~120 one-hot categories
    # at predict the coerced model fills such a cell as it would a missing one
    fill = m.preprocessing.columns[0].fill
    np.testing.assert_array_equal(
        m.predict_proba(np.array([["n/a?", "0.5"]], dtype=object)),
        m.predict_proba(np.array([[fill, 0.5]])),
    )


def test_thousands_separators_read_as_the_same_numbers(tmp_path, capsys):
    rng = np.random.default_rng(1)
    income = rng.integers(500, 90_000, size=120)
    other = rng.normal(size=120)
    label = (income > 40_000).astype(int)
    write_csv(
        tmp_path / "plain.csv",
        ["income", "other", "label"],
        [[v, f"{o:.3f}", t] for v, o, t in zip(income, other, label, strict=True)],
    )
    grouped = write_csv(
        tmp_path / "grouped.csv",
        ["income", "other", "label"],
        [[f"{v:,}", f"{o:.3f}", t] for v, o, t in zip(income, other, label, strict=True)],
    )
    assert '"5' in grouped.read_text() or '",' in grouped.read_text()  # quoted "12,345" cells
    for name in ("plain", "grouped"):
        data = tmp_path / f"{name}.csv"
        code, _, err = run(
            capsys, "train", "--data", data, *FAST, "--out", tmp_path / f"{name}.npz"
        )
        assert code == 0, err
    a, b = gn.load(tmp_path / "plain.npz"), gn.load(tmp_path / "grouped.npz")
    assert b.sizes == a.sizes == [2, 8, 2]
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(la.W, lb.W)
    # and at predict: "5,123" is 5123
    rows = write_csv(tmp_path / "rows.csv", ["income", "other"], [["45,123", "0.1"]])
    plain_rows = write_csv(tmp_path / "rows2.csv", ["income", "other"], [["45123", "0.1"]])
    assert (
        run(capsys, "predict", tmp_path / "grouped.npz", rows)[1]
        == run(capsys, "predict", tmp_path / "grouped.npz", plain_rows)[1]
    )


# -- 4: ONNX keeps a 1e9 column and a timestamp ----------------------------------------------
def test_onnx_agrees_on_a_1e9_column_and_a_timestamp(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="onnx is not installed")
    from glassnet.interop import to_onnx

    rng = np.random.default_rng(5)
    n = 400
    big = 1e9 + rng.normal(0, 30, n)  # the signal is in the last tens of units
    stamp = 1.7e9 + rng.uniform(0, 86_400, n)  # Unix seconds within one day
    label = ((big - 1e9) / 30 + (stamp - 1.7e9 - 43_200) / 25_000 > 0).astype(int)
    data = write_csv(
        tmp_path / "d.csv",
        ["big", "stamp", "label"],
        [[repr(float(b)), repr(float(s)), t] for b, s, t in zip(big, stamp, label, strict=True)],
    )
    model = tmp_path / "m.npz"
    argv = ["train", "--data", data, *FAST, "--epochs", "80", "--dtype", "float64"]
    assert run(capsys, *argv, "--out", model)[0] == 0
    m = gn.load(model)
    X = np.column_stack([big, stamp])
    expected = m.predict_proba(X)
    assert (expected.argmax(axis=1) == label).mean() > 0.9  # it learned from the low digits
    sess = ort.InferenceSession(to_onnx(m).SerializeToString())
    (got,) = sess.run(None, {"x": X})
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # why it matters: float32 cannot hold these raw values to the units the model reads
    assert np.abs(big.astype(np.float32) - big).max() > 10


# -- 5: empty label cells -----------------------------------------------------------------
def test_empty_labels_are_refused_or_dropped_with_a_count(tmp_path, capsys):
    X, y = blobs()
    cells: list[list[object]] = [[*r, t] for r, t in zip(X, y, strict=True)]
    cells[3][2] = ""
    cells[40][2] = ""
    data = write_csv(tmp_path / "d.csv", ["a", "b", "label"], cells)
    model = tmp_path / "m.npz"
    line = one_error_line(*run(capsys, "train", "--data", data, *FAST, "--out", model)[::2])
    assert "2 empty, on lines 5, 42" in line and "--drop-missing-labels" in line
    code, out, err = run(
        capsys, "train", "--data", data, *FAST, "--out", model, "--drop-missing-labels"
    )
    assert code == 0, err
    assert "dropped 2 row(s) with no label" in out
    assert gn.load(model).classes == [0, 1]
    code, _, err = run(capsys, "evaluate", model, "--json")
    assert code == 0, err


# -- 6: evaluate scores the rows that were held out, or refuses --------------------------------
def test_evaluate_refuses_a_file_that_changed_and_says_how(tmp_path, capsys):
    X, y = blobs()
    rows = [[f"{a:.5f}", f"{b:.5f}", t] for (a, b), t in zip(X, y, strict=True)]
    data = write_csv(tmp_path / "d.csv", ["a", "b", "label"], rows)
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", data, *FAST, "--out", model, "--json")[0] == 0
    assert run(capsys, "evaluate", model, "--json")[0] == 0
    original = data.read_bytes()
    shuffled = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    write_csv(data, ["a", "b", "label"], shuffled)
    line = one_error_line(*run(capsys, "evaluate", model)[::2])
    assert "the same rows in another order" in line and str(data) in line
    edited = [list(r) for r in rows]
    edited[7][0] = "9.99999"
    write_csv(data, ["a", "b", "label"], edited)
    assert "cells changed" in one_error_line(*run(capsys, "evaluate", model)[::2])
    write_csv(data, ["a", "b", "label"], rows[:-3])
    assert "120 rows then, 117 now" in one_error_line(*run(capsys, "evaluate", model)[::2])
    data.write_bytes(original)
    assert run(capsys, "evaluate", model, "--json")[0] == 0


# -- 7: a whole-number quantity is regression, and the choice is said -----------------------
def test_many_whole_numbers_are_regression_and_the_reason_is_printed(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 50, 300)
    days = np.round(x).astype(int)  # about 50 distinct whole numbers, a quantity
    data = write_csv(
        tmp_path / "d.csv",
        ["x", "noise", "days"],
        [[f"{a:.3f}", rng.normal(), d] for a, d in zip(x, days, strict=True)],
    )
    code, out, err = run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")
    assert code == 0, err
    distinct = np.unique(days).size
    assert distinct > 40
    assert f"task: regression (days has {distinct} distinct whole numbers" in out
    assert gn.load(tmp_path / "m.npz").task == "regression"
    few = write_csv(tmp_path / "few.csv", ["x", "grade"], [[f"{a:.3f}", int(a // 17)] for a in x])
    code, out, err = run(capsys, "train", "--data", few, *FAST, "--out", tmp_path / "f.npz")
    assert code == 0 and "task: classification (grade has 3 distinct whole numbers" in out


# -- 8: regression values are written in full ------------------------------------------------
def test_regression_predictions_are_written_with_full_precision(tmp_path, capsys):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 2))
    target = 1e9 + 1000 * x[:, 0] + 0.123  # near 1e9, varying in the last thousands
    data = write_csv(
        tmp_path / "d.csv",
        ["a", "b", "price"],
        [[*r, repr(float(t))] for r, t in zip(x, target, strict=True)],
    )
    model = tmp_path / "m.npz"
    argv = ["train", "--data", data, *FAST, "--dtype", "float64", "--out", model, "--json"]
    assert run(capsys, *argv)[0] == 0
    rows = write_csv(tmp_path / "rows.csv", ["a", "b"], x[:20].tolist())
    code, out, _ = run(capsys, "predict", model, rows)
    written = np.array([float(line[0]) for line in list(csv.reader(out.splitlines()))[1:]])
    assert code == 0
    np.testing.assert_array_equal(written, gn.load(model).predict(x[:20]).ravel())
    # the test can tell: six significant digits would have collapsed them onto 1e+09
    assert len({f"{v:.6g}" for v in written}) < len(set(written.tolist())) == 20


# -- 9: duplicate column names ---------------------------------------------------------------
def test_duplicate_column_names_are_refused(tmp_path, capsys):
    X, y = blobs()
    data = write_csv(
        tmp_path / "d.csv",
        ["a", "b", "a", "label"],
        [[r[0], r[1], -r[0], t] for r, t in zip(X, y, strict=True)],
    )
    line = one_error_line(
        *run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")[::2]
    )
    assert "'a' in columns 1, 3" in line and str(data) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


# -- labels that are the same number -------------------------------------------------------
def test_labels_written_as_the_same_number_are_one_class(tmp_path, capsys):
    X, y = blobs()
    spellings = {0: ["0", "0.0", "-0.0"], 1: ["1", "1.0", "1.00"]}
    cells = [[*r, spellings[int(t)][i % 3]] for i, (r, t) in enumerate(zip(X, y, strict=True))]
    data = write_csv(tmp_path / "d.csv", ["a", "b", "label"], cells)
    code, _, err = run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")
    assert code == 0, err
    assert gn.load(tmp_path / "m.npz").classes == [0, 1]


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path, capsys):
    X, y = blobs()
    data = tmp_path / "d.csv"
    text = "a,b,label\n" + "".join(f"{r[0]},{r[1]},{t}\n" for r, t in zip(X, y, strict=True))
    data.write_bytes(b"\xef\xbb\xbf" + text.encode())
    code, _, err = run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")
    assert code == 0, err
    assert gn.load(tmp_path / "m.npz").preprocessing.feature_names == ["a", "b"]


def test_empty_and_constant_columns_are_left_out_with_a_note(tmp_path, capsys):
    X, y = blobs()
    data = write_csv(
        tmp_path / "d.csv",
        ["a", "empty", "b", "same", "label"],
        [[r[0], "", r[1], "v1", t] for r, t in zip(X, y, strict=True)],
    )
    model = tmp_path / "m.npz"
    argv = ["train", "--data", data, *FAST, "--impute", "most_frequent", "--out", model]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "left out 2 column(s) with one value in every row or none: empty, same" in out
    assert gn.load(model).preprocessing.feature_names == ["a", "b"]
    # predict takes a file that still has them
    rows = write_csv(tmp_path / "rows.csv", ["same", "a", "b", "empty"], [["v1", 0.5, 0.5, ""]])
    code, out, err = run(capsys, "predict", model, rows)
    assert code == 0 and out.splitlines()[1].split(",")[0] == "1", err


# -- dialects and dates (read by pyarrow, decided by glassnet.tables) ------------------------
def _blob_text(sep: str, decimal: str) -> tuple[str, np.ndarray, np.ndarray]:
    X, y = blobs()
    lines = [sep.join(["a", "b", "label"])]
    for r, t in zip(X, y, strict=True):
        a, b = (f"{v:.4f}".replace(".", decimal) for v in r)
        lines.append(sep.join([a, b, str(t)]))
    return "\n".join(lines) + "\n", X, y


@pytest.mark.parametrize(
    "sep,decimal,encoding",
    [(";", ",", "utf-8"), ("\t", ".", "utf-8"), ("|", ".", "utf-8"), (";", ",", "cp1252")],
)
def test_the_dialect_is_sniffed_and_gives_the_same_model(tmp_path, capsys, sep, decimal, encoding):
    text, _, _ = _blob_text(",", ".")
    (tmp_path / "plain.csv").write_text(text)
    other, _, _ = _blob_text(sep, decimal)
    if encoding == "cp1252":  # a Windows file: a name with "é" in the header
        other = other.replace("a", "é", 1)
        text = text.replace("a", "é", 1)
        (tmp_path / "plain.csv").write_text(text)
    (tmp_path / "other.csv").write_bytes(other.encode(encoding))
    for name in ("plain", "other"):
        code, out, err = run(
            capsys,
            "train",
            "--data",
            tmp_path / f"{name}.csv",
            *FAST,
            "--out",
            tmp_path / f"{name}.npz",
        )
        assert code == 0, err
    if encoding == "cp1252":
        assert "not UTF-8; read as cp1252" in out
    a, b = gn.load(tmp_path / "plain.npz"), gn.load(tmp_path / "other.npz")
    assert a.preprocessing.feature_names == b.preprocessing.feature_names
    np.testing.assert_array_equal(a.preprocessing.mean, b.preprocessing.mean)
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(la.W, lb.W)


def test_sep_and_decimal_can_be_said(tmp_path, capsys):
    # one column only: nothing to sniff a separator from, so --sep ';' says it
    X, y = blobs()
    text = "a;label\n" + "".join(
        f"{r[0]:.3f};{t}\n".replace(".", ",") for r, t in zip(X, y, strict=True)
    )
    data = tmp_path / "d.csv"
    data.write_text(text)
    code, _, err = run(
        capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz", "--sep", ";"
    )
    assert code == 0, err
    assert gn.load(tmp_path / "m.npz").preprocessing.feature_names == ["a"]
    line = one_error_line(
        *run(
            capsys,
            "train",
            "--data",
            data,
            *FAST,
            "--out",
            tmp_path / "x.npz",
            "--decimal",
            ",",
            "--sep",
            ",",
        )[::2]
    )
    assert "--decimal" in line


def test_a_row_with_another_number_of_values_is_named(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,7,1\n")
    line = one_error_line(
        *run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")[::2]
    )
    assert "expected 3 values (as in the header)" in line and "got 4" in line


def test_a_quoted_cell_may_hold_the_separator_and_a_line_break(tmp_path, capsys):
    X, y = blobs()
    rows = [
        [f"{r[0]:.4f}", f"{r[1]:.4f}", "x, y\nz" if i == 3 else "plain", t]
        for i, (r, t) in enumerate(zip(X, y, strict=True))
    ]
    data = write_csv(tmp_path / "d.csv", ["a", "b", "note", "label"], rows)
    code, _, err = run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")
    assert code == 0, err
    assert gn.load(tmp_path / "m.npz").preprocessing.columns[2].categories == ["plain", "x, y\nz"]


def _dated(path: Path, n: int = 120) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(6)
    days = rng.integers(0, 365, n)
    dates = [(np.datetime64("2024-01-01") + int(d)).astype(str) for d in days]
    label = (days > 182).astype(int)  # the second half of the year
    write_csv(
        path,
        ["when", "x", "label"],
        [[d, f"{v:.3f}", t] for d, v, t in zip(dates, rng.normal(size=n), label, strict=True)],
    )
    return dates, label


def test_a_date_column_is_refused_with_a_hint_or_expanded_or_dropped(tmp_path, capsys):
    data = tmp_path / "d.csv"
    dates, _ = _dated(data)
    line = one_error_line(
        *run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")[::2]
    )
    assert "field 'when'" in line and "--dates expand" in line and "--dates drop" in line
    assert not (tmp_path / "m.npz").exists()
    model = tmp_path / "m.npz"
    argv = ["train", "--data", data, *FAST, "--epochs", "80", "--out", model, "--dates", "expand"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    names = gn.load(model).preprocessing.feature_names
    # every date is in 2024: when_year has one value, so it is left out too
    assert names == ["when_month", "when_day", "when_weekday", "x"]
    # (and dates without times: when_hour and when_minute are 0 in every row)
    assert "dates expanded" in out and "left out 3 column(s)" in out and "when_year" in out
    # at predict, a new file's dates are expanded the same way (new dates are fine)
    rows = write_csv(
        tmp_path / "rows.csv", ["x", "when"], [["0.1", "2025-11-30"], ["0.1", "2025-02-01"]]
    )
    code, out, err = run(capsys, "predict", model, rows)
    assert code == 0, err
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ["1", "0"]
    # the parts are the calendar's: checked against numpy's own date arithmetic
    m = gn.load(model)
    part = dict(zip(names, m.preprocessing.mean, strict=True))
    months = np.array([int(d[5:7]) for d in dates], float)
    assert abs(part["when_month"] - months.mean()) < 1.5  # the training part's mean
    code, _, err = run(
        capsys, "train", "--data", data, *FAST, "--out", tmp_path / "d.npz", "--dates", "drop"
    )
    assert code == 0 and gn.load(tmp_path / "d.npz").preprocessing.feature_names == ["x"]


def test_without_pyarrow_a_csv_is_refused_with_the_install_line(tmp_path, capsys, monkeypatch):
    X, y = blobs()
    data = write_csv(
        tmp_path / "d.csv", ["a", "b", "label"], [[*r, t] for r, t in zip(X, y, strict=True)]
    )
    for name in ("pyarrow", "pyarrow.csv", "pyarrow.compute"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    line = one_error_line(
        *run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "m.npz")[::2]
    )
    assert "pyarrow" in line and "pip install -e '.[train]'" in line


# -- the Python path gets what the CLI gets ------------------------------------------------------
def test_preprocessing_from_a_dataframe_is_the_clis(tmp_path, capsys):
    pd = pytest.importorskip("pandas", reason="pandas is not installed")
    rng = np.random.default_rng(8)
    n = 90
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(1),
            "city": [("oslo", "rome", "lima")[i % 3] for i in range(n)],
            "income": rng.normal(3000, 500, n).round(2),
        }
    )
    frame.loc[[4, 17], "age"] = np.nan
    pre = gn.preprocessing_from(frame, impute="median")
    # written out from the frame alone (pandas' own median, mean and population std)
    age = frame["age"].fillna(frame["age"].median())
    assert pre.columns[0].fill == frame["age"].median()
    assert pre.columns[1].categories == ["lima", "oslo", "rome"]
    np.testing.assert_allclose(pre.mean[[0, 4]], [age.mean(), frame["income"].mean()])
    np.testing.assert_allclose(pre.scale[[0, 4]], [age.std(ddof=0), frame["income"].std(ddof=0)])
    # the CLI, trained on the same table as a CSV with test rows kept out, stores the same
    # kind of thing: same columns, kinds and categories
    data = tmp_path / "d.csv"
    frame.assign(label=(frame["income"] > 3000).astype(int)).to_csv(data, index=False)
    argv = ["train", "--data", data, *FAST, "--impute", "median", "--out", tmp_path / "m.npz"]
    assert run(capsys, *argv)[0] == 0
    cli_pre = gn.load(tmp_path / "m.npz").preprocessing
    assert [c.to_dict().keys() for c in cli_pre.columns] == [
        c.to_dict().keys() for c in pre.columns
    ]
    assert cli_pre.columns[1].categories == pre.columns[1].categories
    net = gn.mlp([pre.n_inputs, 4, 2], seed=0)
    net.preprocessing = pre
    assert net.predict_proba(frame[["income", "city", "age"]]).shape == (n, 2)


def test_a_cell_missing_only_at_predict_is_filled_when_the_model_imputes(tmp_path, capsys):
    X, y = blobs()
    cells: list[list[object]] = [
        [f"{a:.4f}", f"{b:.4f}", t] for (a, b), t in zip(X, y, strict=True)
    ]
    cells[5][0] = ""  # a has a missing cell in training, b has none
    data = write_csv(tmp_path / "d.csv", ["a", "b", "label"], cells)
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", data, *FAST, "--impute", "median", "--out", model)[0] == 0
    rows = write_csv(tmp_path / "rows.csv", ["a", "b"], [["0.3", ""]])
    code, out, err = run(capsys, "predict", model, rows)
    assert code == 0, err
    b_median = float(
        np.median([float(r[1]) for r in cells])
    )  # all rows: close to the training part's
    m = gn.load(model)
    assert abs(m.preprocessing.columns[1].fill - b_median) < 0.2
    filled = m.predict_proba(np.array([[0.3, m.preprocessing.columns[1].fill]]))[0]
    assert [float(v) for v in out.splitlines()[1].split(",")[1:]] == pytest.approx(filled, abs=1e-6)


def test_early_stopping_says_which_epochs_weights_were_kept(tmp_path, capsys):
    X, y = blobs(400)
    y = np.where(np.random.default_rng(1).random(400) < 0.3, 1 - y, y)  # noise: it overfits
    data = write_csv(
        tmp_path / "d.csv", ["a", "b", "label"], [[*r, t] for r, t in zip(X, y, strict=True)]
    )
    argv = ["train", "--data", data, "--layers", "64,64", "--epochs", "300", "--lr", "0.03"]
    code, out, err = run(
        capsys, *argv, "--patience", "3", "--no-progress", "--out", tmp_path / "m.npz", "--json"
    )
    assert code == 0, err
    s = json.loads(out)
    assert s["stopped_epoch"] is not None and s["kept_epoch"] == s["stopped_epoch"] - 3
    history = gn.load(tmp_path / "m.npz").train_state.history
    val = history["val_loss"]
    assert s["kept_epoch"] == int(np.argmin(val)) + 1  # the best val_loss, from the history
    assert s["last_epoch"]["val_loss"] == min(val)
    code, out, _ = run(
        capsys, *argv, "--patience", "3", "--no-progress", "--out", tmp_path / "n.npz"
    )
    assert (
        f"the weights of epoch {s['kept_epoch']}" in out
        and f"train (epoch {s['kept_epoch']})" in out
    )


def test_predict_names_the_class_as_glassnet_predict_writes_it(tmp_path, capsys):
    X, y = blobs()
    names = np.array(["no", "yes"])[y]
    data = write_csv(
        tmp_path / "d.csv", ["a", "b", "bought"], [[*r, t] for r, t in zip(X, names, strict=True)]
    )
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", data, *FAST, "--out", model)[0] == 0
    m = gn.load(model)
    rows = write_csv(tmp_path / "rows.csv", ["a", "b"], X[:30].tolist())
    code, out, _ = run(capsys, "predict", model, rows)
    written = [line.split(",")[0] for line in out.splitlines()[1:]]
    assert code == 0 and list(m.predict(X[:30])) == written
    assert set(written) == {"no", "yes"}
    np.testing.assert_array_equal(m.predict_index(X[:30]), m.predict_proba(X[:30]).argmax(axis=1))


def test_messy_raw_rows_predict_the_same_everywhere(tmp_path, capsys):
    """gn.load().predict_proba, glassnet predict, ONNX and the PyTorch (safetensors) round
    trip on rows with a BOM, text, missing cells, a 1e9 column, a timestamp and a date,
    the file to predict having its columns in another order."""
    rng = np.random.default_rng(11)
    n = 240
    big = 1e9 + rng.normal(0, 40, n)
    stamp = 1.7e9 + rng.uniform(0, 86_400 * 30, n)
    day = rng.integers(0, 300, n)
    when = [(np.datetime64("2023-01-01") + int(d)).astype(str) for d in day]
    city = rng.choice(["oslo", "rome", "lima"], n)
    score = (big - 1e9) / 40 + (day - 150) / 90 + (city == "oslo") - 0.3
    label = np.where(score > 0, "yes", "no")
    cells = [
        [repr(float(b)), repr(float(s)), w, c if i % 23 else "", t]
        for i, (b, s, w, c, t) in enumerate(zip(big, stamp, when, city, label, strict=True))
    ]
    data = tmp_path / "d.csv"
    text = "big,stamp,when,city,label\n" + "".join(",".join(r) + "\n" for r in cells)
    data.write_bytes(b"\xef\xbb\xbf" + text.encode())
    model = tmp_path / "m.npz"
    argv = ["train", "--data", data, *FAST, "--epochs", "60", "--dtype", "float64"]
    code, _, err = run(
        capsys, *argv, "--impute", "most_frequent", "--dates", "expand", "--out", model
    )
    assert code == 0, err
    m = gn.load(model)
    names = m.preprocessing.feature_names
    assert names[:2] == ["big", "stamp"] and "when_month" in names and names[-1] == "city"
    # the file to predict: columns in another order, a BOM, a missing city
    rows = [[r[3], r[2], r[0], r[1]] for r in cells[:40]]
    rows[3][0] = ""
    path = tmp_path / "rows.csv"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + ("city,when,big,stamp\n" + "".join(",".join(r) + "\n" for r in rows)).encode()
    )
    code, out, err = run(capsys, "predict", model, path)
    assert code == 0, err
    cli_p = np.array([[float(v) for v in line.split(",")[1:]] for line in out.splitlines()[1:]])
    # the same rows for Python, by name, dates expanded by the reader the CLI uses
    from glassnet.data import read_rows

    table = read_rows(str(path), need_label=False, dates="expand")
    frame_cols = {nm: table.X[:, j] for j, nm in enumerate(table.names)}
    raw = np.empty((40, len(names)), dtype=object)
    for j, nm in enumerate(names):
        raw[:, j] = frame_cols[nm]
    expected = m.predict_proba(raw)
    np.testing.assert_allclose(cli_p, expected, atol=5e-6)
    # the date parts are the calendar's (checked with numpy's datetime64 here)
    month = np.array([int(r[1][5:7]) for r in rows], float)
    np.testing.assert_array_equal(raw[:, names.index("when_month")].astype(float), month)
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    pytest.importorskip("torch", reason="PyTorch is not installed")
    from glassnet.interop import load_torch_model, save_torch_model, to_onnx

    save_torch_model(m, tmp_path / "m.safetensors")
    back = load_torch_model(tmp_path / "m.safetensors")
    np.testing.assert_allclose(back.predict_proba(raw), expected, atol=1e-12)
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    numbers = [j for j, c in enumerate(m.preprocessing.columns) if c.kind == "number"]
    x = np.array([[float(raw[i, j]) for j in numbers] for i in range(40)], dtype=np.float64)
    x_text = np.array([[raw[i, -1]] for i in range(40)], dtype=object)
    (got,) = ort.InferenceSession(to_onnx(m).SerializeToString()).run(
        None, {"x": x, "x_text": x_text}
    )
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(got, expected, atol=1e-5)


# -- whatever the bytes, a table or one GlassnetError ------------------------------------------
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_any_csv_bytes_give_a_table_or_a_glassnet_error(tmp_path_factory):
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    from glassnet.data import load_dataset, read_rows

    cells = st.text(alphabet='0123456789.,;|\t"-eE aNx\n\r\ufeffé', max_size=60)
    raw = st.one_of(
        cells.map(lambda t: t.encode("utf-8")),
        cells.map(lambda t: t.encode("utf-8", "ignore") + b"\xff\xfe\x00"),
        st.binary(max_size=80),
    )
    folder = tmp_path_factory.mktemp("fuzzcsv")

    @hypothesis.settings(max_examples=150, deadline=None, database=None)
    @hypothesis.given(raw)
    def check(content: bytes) -> None:
        path = folder / "f.csv"
        path.write_bytes(content)
        for read in (
            lambda: read_rows(str(path), need_label=False),
            lambda: load_dataset(str(path), impute="most_frequent", dates="drop"),
        ):
            try:
                read()
            except gn.GlassnetError as err:
                assert "\n" not in str(err)

    check()
