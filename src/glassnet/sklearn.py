"""scikit-learn estimators around glassnet: use a glassnet MLP in Pipelines, GridSearchCV,
cross_val_score — anywhere scikit-learn takes an estimator.

Both pass scikit-learn's own ``check_estimator`` suite (tests/test_sklearn.py).  Input
checking follows scikit-learn's conventions (``validate_data``); training is
:meth:`glassnet.Network.fit`, so the trained network is ``estimator.network_``, a
plain glassnet network you can trace, save and load.

>>> from glassnet.sklearn import GlassnetClassifier
>>> clf = GlassnetClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0)
>>> clf.fit([[0.0, 1.0], [1.0, 0.0]] * 10, [0, 1] * 10).predict([[0.0, 1.0]]).shape
(1,)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, check_random_state

from glassnet.errors import GlassnetError
from glassnet.model import Model, cnn, mlp
from glassnet.optim import get_optimizer
from glassnet.optimizers import optimizer_class
from glassnet.training import Callback, EarlyStopping

Array = np.ndarray

try:  # scikit-learn ≥ 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(est: Any, X: Any, y: Any = "no_validation", **kw: Any) -> Any:
        return est._validate_data(X, y, **kw)


class _GlassnetBase(BaseEstimator):
    """Shared hyperparameters and the training call.

    Parameters
    ----------
    hidden_layer_sizes : sizes of the hidden layers, e.g. (64, 32).
    activation : hidden activation (relu, leaky_relu, tanh, sigmoid, identity).
    optimizer : adam, adamw, sgd, momentum or rmsprop.
    lr : learning rate.
    momentum : SGD momentum (sgd, momentum; ignored by the other optimisers).
    weight_decay : L2 weight decay on the weights.
    batch_size : rows per step (capped at the number of rows).
    epochs : passes over the data.
    validation_split, patience : early stopping on a held-out share (patience None: off).
    early_stopping : hold out ``validation_fraction`` of the rows and stop when the
        validation score (accuracy; for the regressor the validation loss) has not
        improved by ``tol`` for ``n_iter_no_change`` epochs, keeping the best epoch's
        weights (scikit-learn's meaning).
    validation_fraction : the share held out for ``early_stopping``.
    n_iter_no_change, tol : without ``early_stopping``, training stops when the training
        loss has not improved by ``tol`` for ``n_iter_no_change`` epochs (None: never).
    warm_start : a second ``fit`` continues from the fitted network (same architecture)
        instead of starting again.
    init : weight initialiser.
    dtype : float64 (as scikit-learn's own MLP) or float32.
    random_state : seed for weights and shuffling (None: a fresh one each fit).
    image_shape : (C, H, W), or None (the default: a multilayer perceptron).  Given, each
        row of X is one image of C·H·W pixels read row by row (as ``digits.data`` holds
        its 8×8 images: ``image_shape=(1, 8, 8)``), and the network is a small CNN
        (:func:`glassnet.cnn`) whose 3×3 convolutions have ``hidden_layer_sizes``
        channels, each followed by 2×2 max pooling, then a dense output layer.
    """

    _output = "identity"

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (64,),
        *,
        activation: str = "relu",
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        batch_size: int = 32,
        epochs: int = 200,
        validation_split: float = 0.0,
        patience: int | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int | None = 10,
        tol: float = 1e-4,
        warm_start: bool = False,
        init: str = "he",
        dtype: str = "float64",
        random_state: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_split = validation_split
        self.patience = patience
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.init = init
        self.dtype = dtype
        self.random_state = random_state
        self.image_shape = image_shape

    def _train(
        self,
        X: Array,
        targets: Array,
        n_out: int,
        sample_weight: Any = None,
        *,
        partial: bool = False,
    ) -> Model:
        """Fit (or, with ``partial``, one epoch of ``partial_fit``) and return the network."""
        sizes = [X.shape[1], *(int(n) for n in self.hidden_layer_sizes), n_out]
        shape = self._image_shape(X)
        old: Model | None = getattr(self, "network_", None)
        if old is None:
            same = False
        elif shape is None:
            same = old.sizes == sizes
        else:
            same = old.layers[0].in_shape == shape and old.sizes[-1] == n_out
        reuse = (self.warm_start or partial) and same
        if reuse and old is not None:
            net, seed, optimizer = old, None, None  # the state carries on
        else:
            seed = int(check_random_state(self.random_state).randint(2**31 - 1))
            if shape is not None:
                net = cnn(
                    shape,
                    n_out,
                    channels=[int(n) for n in self.hidden_layer_sizes],
                    activation=self.activation,
                    output=self._output,
                    init=self.init,
                    seed=seed,
                    dtype=self.dtype,
                )
            else:
                net = mlp(
                    sizes,
                    hidden=self.activation,
                    output=self._output,
                    init=self.init,
                    seed=seed,
                    dtype=self.dtype,
                )
            options: dict[str, Any] = {"lr": self.lr, "weight_decay": self.weight_decay}
            if self.momentum and optimizer_class(self.optimizer).takes("momentum"):
                options["momentum"] = self.momentum
            optimizer = get_optimizer(self.optimizer, **options)
        callbacks: list[Callback] = []
        validation_split = self.validation_split
        if not partial and self.early_stopping:
            validation_split = self.validation_fraction
            monitor = "val_accuracy" if net.output_activation.outputs_probabilities else "val_loss"
            callbacks.append(
                EarlyStopping(self.n_iter_no_change or 10, monitor=monitor, min_delta=self.tol)
            )
        elif not partial and self.n_iter_no_change is not None:
            callbacks.append(
                EarlyStopping(
                    self.n_iter_no_change, monitor="loss", min_delta=self.tol, restore_best=False
                )
            )
        history = net.fit(
            X,
            targets,
            optimizer=optimizer,
            epochs=1 if partial else self.epochs,
            batch_size=min(self.batch_size, X.shape[0]),
            validation_split=0.0 if partial else validation_split,
            patience=None if partial else self.patience,
            seed=seed,
            sample_weight=sample_weight,
            callbacks=callbacks,
        )
        self.loss_curve_ = list(history["loss"])
        self.n_iter_ = len(history)
        return net

    def _image_shape(self, X: Array) -> tuple[int, int, int] | None:
        """``image_shape`` checked against X's rows (None: no images)."""
        if self.image_shape is None:
            return None
        shape = tuple(int(v) for v in self.image_shape)
        if len(shape) != 3 or min(shape) < 1 or X.shape[1] != int(np.prod(shape)):
            raise GlassnetError(
                "expected (channels, height, width) whose product is X's row length "
                f"({X.shape[1]})",
                got=repr(self.image_shape),
                field="image_shape",
            )
        return shape  # type: ignore[return-value]

    def _forward(self, X: Any) -> Array:
        check_is_fitted(self, "network_")
        X = _validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.network_.predict_proba(X).astype(np.float64)


class GlassnetClassifier(ClassifierMixin, _GlassnetBase):
    """A glassnet MLP classifier: softmax output, cross-entropy, any labels.

    Attributes: ``classes_``, ``network_``, ``loss_curve_``, ``n_iter_``, ``n_features_in_``.
    """

    _output = "softmax"

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GlassnetClassifier:
        X, y = _validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        before: Array | None = getattr(self, "classes_", None)
        if self.warm_start and before is not None and not np.array_equal(classes, before):
            delattr(self, "network_")  # other classes: a warm start cannot continue
        self.classes_: Array = classes
        sw = _check_sample_weight(sample_weight, X) if sample_weight is not None else None
        # One class: the network still trains (2 outputs), and only that class is ever predicted.
        self.network_ = self._train(X, codes, max(len(self.classes_), 2), sw)
        return self

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> GlassnetClassifier:
        """One epoch on (X, y); the first call needs ``classes`` (every label there will be)."""
        first = not hasattr(self, "network_")
        X, y = _validate_data(self, X, y, dtype=[np.float64, np.float32], reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit")
            self.classes_ = np.unique(np.asarray(classes))
        codes = np.searchsorted(self.classes_, y)
        codes = np.minimum(codes, len(self.classes_) - 1)
        if not np.array_equal(self.classes_[codes], y):
            raise ValueError(f"expected labels among classes {self.classes_.tolist()}")
        sw = _check_sample_weight(sample_weight, X) if sample_weight is not None else None
        self.network_ = self._train(X, codes, max(len(self.classes_), 2), sw, partial=True)
        return self

    def predict_proba(self, X: Any) -> Array:
        """(n, n_classes) probabilities, columns in the order of ``classes_``."""
        p = self._forward(X)
        return p[:, : len(self.classes_)] / p[:, : len(self.classes_)].sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> Array:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> Array:
        best = self.predict_proba(X).argmax(axis=1)
        return self.classes_[best]


class GlassnetRegressor(RegressorMixin, _GlassnetBase):
    """A glassnet MLP regressor: identity output, mean squared error, 1 or more targets.

    Attributes: ``network_``, ``loss_curve_``, ``n_iter_``, ``n_features_in_``.
    """

    _output = "identity"

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GlassnetRegressor:
        X, y = _validate_data(
            self, X, y, dtype=[np.float64, np.float32], y_numeric=True, multi_output=True
        )
        self._one_target = y.ndim == 1
        targets = y.reshape(-1, 1) if y.ndim == 1 else y
        sw = _check_sample_weight(sample_weight, X) if sample_weight is not None else None
        self.network_ = self._train(X, targets, targets.shape[1], sw)
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> GlassnetRegressor:
        """One epoch on (X, y), continuing the fitted network (or starting one)."""
        first = not hasattr(self, "network_")
        X, y = _validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            y_numeric=True,
            multi_output=True,
            reset=first,
        )
        if first:
            self._one_target = y.ndim == 1
        targets = y.reshape(-1, 1) if y.ndim == 1 else y
        sw = _check_sample_weight(sample_weight, X) if sample_weight is not None else None
        self.network_ = self._train(X, targets, targets.shape[1], sw, partial=True)
        return self

    def predict(self, X: Any) -> Array:
        p = self._forward(X)
        return p[:, 0] if self._one_target else p

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y may be (n,) or (n, n_targets)
        return tags


class DateExpander(TransformerMixin, BaseEstimator):
    """A DataFrame's date columns as number columns, as ``glassnet train --dates
    expand`` makes a CSV's (:func:`glassnet.tables.expand_dates`): put it before the
    estimators, which take numbers, in a Pipeline —
    ``make_pipeline(DateExpander(), StandardScaler(), GlassnetClassifier())``.

    ``dates``: ``"expand"`` or ``"drop"`` (leave date columns out).  ``fit`` records the
    columns it makes (``get_feature_names_out``); ``transform`` gives those, in that
    order, and refuses a frame that lacks one.
    """

    def __init__(self, dates: str = "expand") -> None:
        self.dates = dates

    def fit(self, X: Any, y: Any = None) -> DateExpander:
        from glassnet.tables import expand_dates

        if not hasattr(X, "columns"):
            raise ValueError("DateExpander takes a DataFrame (date columns are found by name)")
        out = expand_dates(X, self.dates)
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(X.columns)
        self.columns_ = [str(c) for c in out.columns]
        return self

    def transform(self, X: Any) -> Any:
        from glassnet.tables import expand_dates

        check_is_fitted(self, "columns_")
        out = expand_dates(X, self.dates)
        missing = [c for c in self.columns_ if c not in out.columns]
        if missing:
            raise ValueError(f"expected the columns seen in fit; missing: {', '.join(missing)}")
        return out[self.columns_]

    def get_feature_names_out(self, input_features: Any = None) -> Array:
        check_is_fitted(self, "columns_")
        return np.asarray(self.columns_, dtype=object)
