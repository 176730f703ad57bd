"""A practitioner's own CSV from the command line (issue 13): an ID column, a text
column, empty cells, a header in another order at predict time; and the same raw row
giving the same prediction through ``gn.load().predict``, ``glassnet predict``, ONNX
and the PyTorch round trip for a model with scaling, text columns and imputation."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet import cli

CITIES = ["paris", "rome", "oslo"]


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _messy(path: Path, n: int = 120, seed: int = 0) -> list[list[str]]:
    """id (unique text), age (a few empty cells), city (text, one 'NA'), income,
    bought (the label, yes/no, depending on age, city and income)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        age, city, income = rng.normal(40, 12), CITIES[i % 3], rng.normal(3000, 800)
        score = (age - 40) / 12 + (1.5 if city == "oslo" else -0.5) + (income - 3000) / 800
        rows.append(
            [
                f"u{i:04d}",
                "" if i % 17 == 5 else f"{age:.1f}",
                "NA" if i == 7 else city,
                f"{income:.2f}",
                "yes" if score > 0 else "no",
            ]
        )
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["id", "age", "city", "income", "bought"], *rows])
    return rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("messy")
    data, model = folder / "people.csv", folder / "m.npz"
    _messy(data)
    argv = ["train", "--data", data, "--label", "bought", "--drop", "id", "--impute", "median"]
    argv += ["--epochs", "60", "--lr", "0.01", "--no-progress", "--out", model, "--json"]
    assert cli.main([str(a) for a in argv]) == 0
    return data, model


def test_id_column_and_missing_cells_each_stop_the_run_with_a_hint(tmp_path, capsys):
    data = tmp_path / "people.csv"
    _messy(data)
    common = [
        "train",
        "--data",
        data,
        "--label",
        "bought",
        "--no-progress",
        "--out",
        tmp_path / "m.npz",
    ]
    code, _, err = run(capsys, *common, "--impute", "mean")
    assert code == 2 and "--drop id" in err and err.count("\n") == 1
    code, _, err = run(capsys, *common, "--drop", "id")
    assert code == 2 and "--impute" in err and "lines 7, 24" in err and "age" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.csv"]


def test_messy_csv_trains_and_predicts_with_a_shuffled_header(trained, tmp_path, capsys):
    _, model = trained
    m = gn.load(model)
    pre = m.preprocessing
    assert pre.feature_names == ["age", "city", "income"] and m.sizes[0] == 5  # 1 + 3 + 1
    city = pre.columns[1]
    assert city.kind == "text" and city.categories == sorted(CITIES) and city.fill in CITIES
    rows = _messy(tmp_path / "fresh.csv", n=30, seed=1)
    shuffled = tmp_path / "shuffled.csv"
    with shuffled.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["income", "id", "city", "age"])
        w.writerows([[r[3], r[0], r[2], r[1]] for r in rows])
    code, out, err = run(capsys, "predict", model, shuffled, "--id-column", "id")
    assert code == 0, err
    lines = list(csv.reader(out.splitlines()))
    assert lines[0] == ["id", "prediction", "p_no", "p_yes"]
    assert [line[0] for line in lines[1:]] == [r[0] for r in rows]
    truth = [r[4] for r in rows]
    accuracy = np.mean([line[1] == t for line, t in zip(lines[1:], truth, strict=True)])
    assert accuracy > 0.75
    # header-less, columns in training order
    bare = tmp_path / "bare.csv"
    with bare.open("w", newline="") as f:
        csv.writer(f).writerows([[r[1], r[2], r[3]] for r in rows])
    code, out2, _ = run(capsys, "predict", model, bare, "--no-header")
    assert code == 0 and [line[1:] for line in lines] == list(csv.reader(out2.splitlines()))
    # a file from other data
    other = tmp_path / "other.csv"
    other.write_text("a,b,c\n1,2,3\n")
    code, _, err = run(capsys, "predict", model, other)
    assert code == 2 and "columns don't match: expected age, city, income" in err


def test_an_unseen_category_is_an_error_or_zeros_when_ignored(trained, tmp_path, capsys):
    data, model = trained
    rows = tmp_path / "rows.csv"
    rows.write_text("age,city,income\n30,lima,2500\n")
    code, _, err = run(capsys, "predict", model, rows)
    assert code == 2 and "city" in err and "'lima'" in err and "--handle-unknown" in err
    ignoring = tmp_path / "ignore.npz"
    argv = ["train", "--data", data, "--label", "bought", "--drop", "id", "--impute", "median"]
    argv += ["--handle-unknown", "ignore", "--epochs", "2", "--no-progress", "--out", ignoring]
    assert run(capsys, *argv)[0] == 0
    m = gn.load(ignoring)
    np.testing.assert_array_equal(
        m.preprocessing.encode(np.array([["30", "lima", "2500"]], dtype=object))[0, 1:4], 0.0
    )
    assert run(capsys, "predict", ignoring, rows)[0] == 0


def test_the_same_raw_rows_predict_the_same_everywhere(trained, tmp_path, capsys):
    """gn.load().predict_proba, glassnet predict, ONNX and the PyTorch round trip."""
    _, model = trained
    m = gn.load(model)
    rows = [["51.5", "oslo", "2800.5"], ["", "rome", "4100"], ["33", "NA", "2000"]]
    table = np.array(rows, dtype=object)
    expected = m.predict_proba(table)
    # independently: fill, one-hot, scale written out here from the stored numbers
    pre = m.preprocessing
    age_fill = pre.columns[0].fill
    enc = np.array(
        [
            [float(a) if a else age_fill, *(float(c == k) for k in sorted(CITIES)), float(i)]
            for a, c, i in [
                (r[0], r[1] if r[1] != "NA" else pre.columns[1].fill, r[2]) for r in rows
            ]
        ]
    )
    np.testing.assert_allclose(
        expected, m.forward(((enc - pre.mean) / pre.scale).astype(m.dtype)), rtol=1e-6
    )

    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["city", "income", "age"], *([r[1], r[2], r[0]] for r in rows)])
    code, out, _ = run(capsys, "predict", model, path)
    cli_p = np.array(
        [[float(v) for v in line[1:]] for line in list(csv.reader(out.splitlines()))[1:]]
    )
    assert code == 0
    np.testing.assert_allclose(cli_p, expected, atol=5e-6)

    pytest.importorskip("safetensors", reason="safetensors is not installed")
    from glassnet.interop import load_torch_model, save_torch_model, to_onnx

    save_torch_model(m, tmp_path / "m.safetensors")
    back = load_torch_model(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(back.predict_proba(table), expected)

    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    import onnxruntime as ort

    sess = ort.InferenceSession(to_onnx(m).SerializeToString())
    x = np.array([[float(r[0]) if r[0] else np.nan, float(r[2])] for r in rows], np.float64)
    x_text = np.array([[r[1]] for r in rows], dtype=object)
    got = sess.run(None, {"x": x, "x_text": x_text})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("name", ["digits", "iris", "wine", "breast_cancer"])
def test_every_bundled_set_predicts_the_same_raw_rows_everywhere(name, tmp_path, capsys):
    pytest.importorskip("sklearn", reason="the bundled data sets come from scikit-learn")
    from sklearn import datasets

    model = tmp_path / "m.npz"
    argv = ["train", "--data", name, "--epochs", "2", "--no-progress", "--out", model, "--json"]
    assert run(capsys, *argv)[0] == 0
    X = getattr(datasets, f"load_{name}")().data[:25]  # raw rows, as scikit-learn ships them
    m = gn.load(model)
    expected = m.predict_proba(X)
    rows = tmp_path / "rows.npz"
    np.savez(rows, X=X)
    code, out, _ = run(capsys, "predict", model, rows)
    lines = list(csv.reader(out.splitlines()))[1:]
    assert code == 0
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in lines], expected, atol=5e-6)
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    from glassnet.interop import load_torch_model, save_torch_model, to_onnx

    save_torch_model(m, tmp_path / "m.safetensors")
    np.testing.assert_array_equal(
        load_torch_model(tmp_path / "m.safetensors").predict_proba(X), expected
    )
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    import onnxruntime as ort

    got = ort.InferenceSession(to_onnx(m).SerializeToString()).run(
        None, {"x": X.astype(np.float64)}
    )
    np.testing.assert_allclose(got[0], expected, atol=1e-5)
