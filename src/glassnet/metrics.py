"""Scores of a trained model on labelled rows, as typed records (what ``glassnet
evaluate`` prints and ``--json`` writes).

- classification: loss, accuracy, per-class precision and recall, confusion matrix;
- regression: loss (mse), R², MAE and RMSE.

Each is computed from the model's own predictions (:meth:`glassnet.model.Model.predict`
/ ``predict_proba``); nothing here runs the network another way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from glassnet.training import confusion_matrix

Array = np.ndarray


@dataclass
class ClassificationScores:
    """Scores of a classifier on ``n`` rows."""

    n: int
    loss: float
    accuracy: float
    classes: list[Any]
    #: Per class; None where the class was never predicted (precision) or never occurs.
    precision: list[float | None]
    recall: list[float | None]
    confusion_matrix: list[list[int]]
    #: scikit-learn's ``f1_score(average="macro")``, ``balanced_accuracy_score`` and
    #: ``roc_auc_score`` (one-vs-rest macro for more than two classes); None without
    #: scikit-learn, or where undefined (a class absent from the rows, for ROC AUC).
    f1_macro: float | None = None
    balanced_accuracy: float | None = None
    roc_auc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RegressionScores:
    """Scores of a regressor on ``n`` rows.  With several targets, ``r2`` is the mean of
    the targets' R² (scikit-learn's ``uniform_average``), ``mae``/``rmse``/``loss`` are
    over every value, and ``per_target`` holds each target's own {r2, mae, rmse}."""

    n: int
    loss: float
    r2: float
    mae: float
    rmse: float
    per_target: list[dict[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classification_scores(
    labels: Array, predicted: Array, loss: float, classes: list[Any]
) -> ClassificationScores:
    """Scores from true class indices and predicted ones."""
    k = len(classes)
    cm = confusion_matrix(labels, predicted, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.diag(cm) / cm.sum(axis=0)
        recall = np.diag(cm) / cm.sum(axis=1)
    return ClassificationScores(
        n=int(labels.shape[0]),
        loss=float(loss),
        accuracy=float(np.trace(cm) / max(cm.sum(), 1)),
        classes=list(classes),
        precision=[None if math.isnan(v) else float(v) for v in precision],
        recall=[None if math.isnan(v) else float(v) for v in recall],
        confusion_matrix=cm.tolist(),
    )


def regression_scores(y: Array, predicted: Array) -> RegressionScores:
    """R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)², MAE = mean |y − ŷ|, RMSE = √mean (y − ŷ)²;
    the loss is the mse glassnet trains with (mean of (y − ŷ)² over rows and outputs).
    y and predicted (n,) or (n, k): several targets are scored one by one, then averaged
    (see :class:`RegressionScores`)."""
    y2 = np.asarray(y, dtype=np.float64)
    if y2.ndim == 2 and y2.shape[1] > 1:
        p2 = np.asarray(predicted, dtype=np.float64).reshape(y2.shape)
        each = [regression_scores(y2[:, j], p2[:, j]) for j in range(y2.shape[1])]
        mse = float(np.mean((y2 - p2) ** 2))
        return RegressionScores(
            n=int(y2.shape[0]),
            loss=mse,
            r2=float(np.mean([e.r2 for e in each])),
            mae=float(np.mean(np.abs(y2 - p2))),
            rmse=math.sqrt(mse),
            per_target=[{"r2": e.r2, "mae": e.mae, "rmse": e.rmse} for e in each],
        )
    y = y2.reshape(-1)
    p = np.asarray(predicted, dtype=np.float64).reshape(-1)
    err = y - p
    sse = float(np.sum(err**2))
    sst = float(np.sum((y - y.mean()) ** 2))
    mse = sse / y.shape[0]
    # A constant target has no spread to explain: R² is 1 for a perfect fit, else 0
    # would be a guess, so it is NaN-free by convention of scikit-learn's r2_score (0.0).
    r2 = 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0)
    return RegressionScores(
        n=int(y.shape[0]),
        loss=mse,
        r2=r2,
        mae=float(np.mean(np.abs(err))),
        rmse=math.sqrt(mse),
    )


def add_sklearn_scores(
    scores: ClassificationScores, labels: Array, predicted: Array, proba: Array
) -> bool:
    """Fill ``f1_macro``, ``balanced_accuracy`` and ``roc_auc`` from true and predicted
    class indices (n,) and class probabilities (n, k), with scikit-learn's own functions
    (imported here; False when scikit-learn is not installed)."""
    try:
        from sklearn import metrics
    except ImportError:
        return False
    labels = np.asarray(labels)
    k = len(scores.classes)
    if k < 2 or np.asarray(proba).shape[1] != k:
        return False
    scores.f1_macro = float(
        metrics.f1_score(labels, predicted, average="macro", labels=np.arange(k), zero_division=0)
    )
    scores.balanced_accuracy = float(metrics.balanced_accuracy_score(labels, predicted))
    try:
        if k == 2:
            scores.roc_auc = float(metrics.roc_auc_score(labels, proba[:, 1]))
        else:
            p = np.asarray(proba, dtype=np.float64)
            p = p / p.sum(axis=1, keepdims=True)  # float32 sums are not exactly 1
            scores.roc_auc = float(
                metrics.roc_auc_score(labels, p, multi_class="ovr", labels=np.arange(k))
            )
    except ValueError:  # a class absent from these rows: AUC is undefined
        scores.roc_auc = None
    return True
