"""Data loaders: stratified seeded splits, standardisation from the training part only,
CSV and NPZ files."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet import GlassnetError
from glassnet.data import load_dataset, read_table, stratified_split


def test_stratified_split_keeps_class_shares_and_is_seeded():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train, test = stratified_split(labels, 0.2, seed=3)
    assert np.intersect1d(train, test).size == 0 and train.size + test.size == 100
    assert np.bincount(labels[test]).tolist() == [10, 6, 4]
    again = stratified_split(labels, 0.2, seed=3)
    np.testing.assert_array_equal(test, again[1])
    assert not np.array_equal(test, stratified_split(labels, 0.2, seed=4)[1])


@pytest.mark.parametrize(
    "name,shape,k", [("digits", 64, 10), ("iris", 4, 3), ("wine", 13, 3), ("breast_cancer", 30, 2)]
)
def test_bundled_sets_standardised_on_the_training_part(name, shape, k):
    pytest.importorskip("sklearn", reason="the bundled data sets come from scikit-learn")
    ds = load_dataset(name, test_size=0.25, seed=0)
    assert ds.n_features == shape and ds.n_classes == k
    n = ds.X_train.shape[0] + ds.X_test.shape[0]
    assert ds.X_test.shape[0] == pytest.approx(0.25 * n, abs=k)
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0, atol=1e-9)
    spread = ds.X_train.std(axis=0)
    assert np.all((np.abs(spread - 1) < 1e-9) | (spread == 0))  # constant pixels stay 0
    # The test part is scaled with the training statistics, so its mean is not exactly 0.
    assert np.abs(ds.X_test.mean(axis=0)).max() > 1e-6


def test_csv_with_named_label_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x1,colour,x2\n1,red,2\n3,blue,4\n5,red,6\n7,blue,8\n")
    X, y, names, _label = read_table(str(path), label="colour")
    assert X.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert y.tolist() == ["red", "blue", "red", "blue"] and names == ["x1", "x2"]
    ds = load_dataset(str(path), label="colour", test_size=0.5, seed=0)
    assert ds.classes == ["blue", "red"] and ds.label == "colour"


def test_csv_integer_labels_default_to_last_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n0.5,1,1\n0.25,2,0\n")
    _, y, _, label = read_table(str(path))
    assert label == "y" and y.dtype == np.int64 and y.tolist() == [1, 0]


def test_npz_data(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(12.0).reshape(6, 2), y=np.array([0, 1, 0, 1, 0, 1]))
    ds = load_dataset(str(path), test_size=0.34, seed=1)
    assert ds.n_features == 2 and ds.X_test.shape[0] == 2
    bad = tmp_path / "obj.npz"
    np.savez(bad, X=np.array([object()] * 3, dtype=object), y=np.zeros(3))
    with pytest.raises(GlassnetError, match="plain numeric"):
        load_dataset(str(bad))


@pytest.mark.parametrize(
    "text,match",
    [
        ("a,b,y\n1,2,0\n1,inf,1\n", "finite"),
        ("a,b\n1,2\n,3\n", "line 3"),
        ("a,b\n", "header row and at least one data row"),
        ("a,b\n1,x\n2,x\n", "two classes"),
    ],
)
def test_bad_csv(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(GlassnetError, match=match) as info:
        load_dataset(str(path))
    assert "bad.csv" in str(info.value)
