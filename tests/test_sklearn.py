"""The scikit-learn estimators: scikit-learn's own check suite, Pipelines, GridSearchCV."""

from __future__ import annotations

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="the estimators wrap scikit-learn's API")

from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import glassnet as gn  # noqa: E402
from glassnet.sklearn import GlassnetClassifier, GlassnetRegressor  # noqa: E402


@parametrize_with_checks([GlassnetClassifier(random_state=0), GlassnetRegressor(random_state=0)])
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def test_pipeline_and_grid_search_on_iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]  # text labels work too
    X_tr, X_te, y_tr, y_te = train_test_split(X, labels, test_size=0.3, stratify=y, random_state=0)
    pipe = make_pipeline(StandardScaler(), GlassnetClassifier(epochs=60, random_state=0))
    search = GridSearchCV(pipe, {"glassnetclassifier__lr": [1e-3, 1e-2]}, cv=3)
    search.fit(X_tr, y_tr)
    assert search.best_params_["glassnetclassifier__lr"] in (1e-3, 1e-2)
    assert search.score(X_te, y_te) >= 0.9
    proba = search.predict_proba(X_te)
    assert proba.shape == (45, 3) and np.allclose(proba.sum(axis=1), 1)
    assert set(search.predict(X_te)) <= set(labels)


def test_fitted_network_is_a_plain_glassnet_network(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = X @ np.array([1.0, -1.0, 0.5])
    reg = GlassnetRegressor(hidden_layer_sizes=(8,), lr=0.01, epochs=200, random_state=0).fit(X, y)
    net = reg.network_
    assert isinstance(net, gn.Network) and net.sizes == [3, 8, 1]
    np.testing.assert_allclose(reg.predict(X), net.forward(X)[:, 0])
    net.save(tmp_path / "reg.npz")
    np.testing.assert_allclose(gn.load(tmp_path / "reg.npz").forward(X)[:, 0], reg.predict(X))
    assert reg.score(X, y) > 0.9


def test_sample_weight_zero_drops_rows_as_scikit_learn_means_it():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    opts = {"hidden_layer_sizes": (4,), "optimizer": "sgd", "lr": 0.05, "epochs": 5}
    opts |= {"batch_size": 100, "n_iter_no_change": None, "random_state": 0}
    w = np.r_[np.ones(20), np.zeros(10)]
    a = GlassnetRegressor(**opts).fit(X, y, sample_weight=w)
    b = GlassnetRegressor(**opts).fit(X[:20], y[:20])
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-10, atol=1e-12)


def test_partial_fit_warm_start_and_early_stopping():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 3
    clf = GlassnetClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:30], y[:30], classes=[0, 1, 2]).partial_fit(X[30:], y[30:])
    assert clf.network_.train_state.epoch == 2 and clf.n_iter_ == 2
    warm = GlassnetClassifier(hidden_layer_sizes=(8,), epochs=3, warm_start=True, random_state=0)
    first = warm.fit(X, y).network_
    assert warm.fit(X, y).network_ is first and warm.n_iter_ == 6
    noise = rng.normal(size=(200, 4))
    es = GlassnetClassifier(
        hidden_layer_sizes=(32,), lr=0.05, epochs=300, early_stopping=True, random_state=0
    ).fit(noise, np.arange(200) % 2)
    assert es.n_iter_ < 300  # stopped: validation accuracy on noise does not improve
