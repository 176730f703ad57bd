"""Training: the training state, the epoch loop, its history, callbacks and early stopping.

:func:`fit` runs mini-batch training through the very layer code the trace records
(:meth:`Network.forward_backward`: each ``Dense.forward``, the loss, the reverse loop
of ``Dense.backward``) — only without recording, and batched.  What a trace shows for
one step is what every step of training does.

``fit`` is three parts, each its own function: :func:`resolve_state` (the optimiser,
loss, seed and random stream a call continues with), :class:`Batches` (the buffers one
batch is gathered into) and :func:`run_epochs` (the loop).

How the loop stays fast without hiding the maths:

- each batch is gathered by index into a buffer allocated once (``np.take(out=)``),
  so the data is never copied or permuted as a whole — only an index array is shuffled;
- softmax + cross-entropy uses the fused output delta ``(p − y)/batch`` (proved equal
  when every target row sums to 1, which is checked once, before the first epoch);
- optimisers update the weights in place (:mod:`glassnet.optim`);
- the epoch's loss and accuracy are running means of the batches' own values
  (no extra pass over the data); validation is one chunked forward pass per epoch.

Random numbers come from one seeded stream kept in the model's ``train_state``, so
``fit(5)`` then ``fit(5)`` equals ``fit(10)``, and a checkpoint (which saves the stream)
resumes bit for bit.  The state's file form is :meth:`TrainState.to_meta` /
:meth:`TrainState.from_meta`: the model-file format (:mod:`glassnet.io`) stores it
without knowing what it means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from glassnet.activations import Activation
from glassnet.errors import GlassnetError
from glassnet.layers import Dense
from glassnet.losses import Loss, fused_delta_ok
from glassnet.network import Network
from glassnet.optim import Optimizer, get_optimizer, optimizer_from_config
from glassnet.parallel import train_step

if TYPE_CHECKING:  # the model carries a TrainState: imported for types only
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from glassnet.model import Model

Array = np.ndarray

#: Rows per chunk when predicting or validating (bounds the memory of one forward pass).
CHUNK = 4096


# -- history and state -------------------------------------------------------------------
@dataclass
class History:
    """Per-epoch logs: ``history["loss"][k]`` is the loss of epoch ``epoch[k]`` (from 1).

    Keys: ``loss``, ``lr`` and, for classification, ``accuracy``; with validation data
    also ``val_loss`` (and ``val_accuracy``).
    """

    epoch: list[int] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __len__(self) -> int:
        return len(self.epoch)

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def last(self) -> dict[str, float]:
        """The most recent epoch's logs."""
        return {key: values[-1] for key, values in self.history.items() if values}

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        try:
            epochs = [int(e) for e in d["epoch"]]
            hist = {str(k): [float(x) for x in v] for k, v in d["history"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise GlassnetError(
                "expected a history {epoch: [...], history: {...}}",
                got=repr(d)[:80],
                field="history",
            ) from None
        return cls(epochs, hist)


@dataclass
class TrainState:
    """What a second ``fit`` (or a resumed run) needs to continue exactly."""

    optimizer: Optimizer
    loss: str
    seed: int
    rng: np.random.Generator
    epoch: int = 0
    history: History = field(default_factory=History)

    def to_meta(self) -> tuple[dict[str, Any], dict[str, Array]]:
        """(JSON-able description, optimiser state arrays) for a model file's ``training``
        section (:func:`glassnet.io.write`)."""
        meta = {
            "optimizer": self.optimizer.config(),
            "loss": self.loss,
            "seed": self.seed,
            "epoch": self.epoch,
            # PCG64's state is a dict of (big) ints: JSON keeps them exactly.
            "rng": self.rng.bit_generator.state,
            "history": self.history.to_dict(),
        }
        return meta, self.optimizer.state_arrays()

    @classmethod
    def from_meta(cls, meta: dict[str, Any], arrays: dict[str, Array], net: Network) -> TrainState:
        """Inverse of :meth:`to_meta`, checked against ``net`` (the file's network): every
        field's type, the random state, the loss, and exactly the optimiser's arrays."""
        opt = optimizer_from_config(_get(meta, "optimizer", dict))
        params = net.parameters()
        expected = {
            f"{name}.{i}" for name in opt.state_names for i in range(len(params)) if opt.t > 0
        }
        if set(arrays) != expected:  # state arrays exist from the first step on
            missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
            raise GlassnetError(
                "expected exactly the arrays the architecture describes",
                got=f"missing {[f'optimizer.{k}' for k in missing] or 'none'}, "
                f"unexpected {[f'optimizer.{k}' for k in extra] or 'none'}",
                field="arrays",
            )
        opt.load_state_arrays(arrays, params)
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = _get(meta, "rng", dict)
        except (TypeError, ValueError, KeyError, OverflowError) as err:
            raise GlassnetError(
                "expected a PCG64 random state", got=str(err)[:60], field="meta.training.rng"
            ) from None
        loss = _get(meta, "loss", str)
        net.check_loss(loss)
        seed, epoch = _get(meta, "seed", int), _get(meta, "epoch", int)
        for name, value in (("seed", seed), ("epoch", epoch)):
            if value < 0:  # a negative seed would reach numpy's seeding as a ValueError
                raise GlassnetError(
                    "expected a whole number ≥ 0", got=repr(value), field=f"meta.training.{name}"
                )
        return cls(
            optimizer=opt,
            loss=loss,
            seed=seed,
            rng=rng,
            epoch=epoch,
            history=History.from_dict(_get(meta, "history", dict)),
        )


def _get(d: dict[str, Any], key: str, kind: type) -> Any:
    value = d.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise GlassnetError(
            f"expected a {kind.__name__}", got=repr(value)[:60], field=f"meta.training.{key}"
        )
    return value


def shuffle_rng(seed: int) -> np.random.Generator:
    """The stream that shuffles batches."""
    return np.random.default_rng(seed)


def split_indices(n: int, fraction: float, seed: int) -> tuple[Array, Array]:
    """(train, validation) row indices, each sorted: the last ``fraction`` of a seeded
    permutation is held out.  Its own stream, so every ``fit`` on the same data splits alike."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    n_val = max(1, round(n * fraction))
    if n_val >= n:
        raise GlassnetError(
            f"expected a validation split leaving training rows ({n} rows in all)",
            got=f"{fraction:g} (holds out {n_val})",
            field="validation_split",
        )
    perm = np.random.default_rng([seed, 1]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


# -- callbacks ----------------------------------------------------------------------------
class Callback:
    """Hooks into :func:`fit`.  ``on_epoch_end`` returns True to stop training."""

    def on_train_begin(self, net: Model, epochs: int) -> None:
        """Called once, before the first epoch of this ``fit`` call."""

    def on_epoch_end(self, net: Model, epoch: int, logs: dict[str, float]) -> bool | None:
        """Called after each epoch (numbered from 1, counting earlier fits) with its logs."""
        return None

    def on_train_end(self, net: Model, history: History) -> None:
        """Called once at the end (also after early stopping)."""


#: Metrics that are better when larger; every other metric (losses, errors) is minimised.
_MAXIMISED = ("accuracy", "r2")


class EarlyStopping(Callback):
    """Stop when ``monitor`` (default ``val_loss``) has not improved by more than
    ``min_delta`` for ``patience`` epochs; then restore the best epoch's weights (unless
    ``restore_best=False``).

    ``mode`` says which way is better: ``"min"``, ``"max"``, or ``"auto"`` (the default):
    ``max`` for accuracy and R² (``accuracy``, ``val_accuracy``, ``val_r2``), ``min``
    for every loss and error."""

    def __init__(
        self,
        patience: int = 5,
        *,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        mode: Literal["auto", "min", "max"] = "auto",
        restore_best: bool = True,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise GlassnetError(
                "expected a whole number of epochs ≥ 1", got=repr(patience), field="patience"
            )
        if mode not in ("auto", "min", "max"):
            raise GlassnetError("expected auto, min or max", got=repr(mode), field="mode")
        if not isinstance(min_delta, int | float) or not min_delta >= 0:
            raise GlassnetError("expected a number ≥ 0", got=repr(min_delta), field="min_delta")
        self.patience = patience
        self.monitor = monitor
        self.min_delta = float(min_delta)
        if mode == "auto":
            mode = "max" if monitor.removeprefix("val_") in _MAXIMISED else "min"
        self.mode: Literal["min", "max"] = mode
        self.restore_best = restore_best
        self.best = math.inf
        self.best_epoch = 0
        self.stopped_epoch: int | None = None
        self._best_params: list[Array] | None = None
        self._wait = 0

    def on_train_begin(self, net: Model, epochs: int) -> None:
        self.best, self.best_epoch, self._wait, self.stopped_epoch = math.inf, 0, 0, None
        self._best_params = None

    def improved(self, value: float) -> bool:
        """True when ``value`` beats the best so far by more than ``min_delta``."""
        # The best is kept as a value to minimise: a maximised metric is stored negated.
        signed = -value if self.mode == "max" else value
        return signed < self.best - self.min_delta

    def on_epoch_end(self, net: Model, epoch: int, logs: dict[str, float]) -> bool | None:
        if self.monitor not in logs:
            raise GlassnetError(
                f"expected '{self.monitor}' in the epoch's logs (give validation data "
                "for val_loss)",
                got=", ".join(logs),
                field="monitor",
            )
        value = logs[self.monitor]
        if self.improved(value):
            self.best = -value if self.mode == "max" else value
            self.best_epoch, self._wait = epoch, 0
            if self.restore_best:
                self._best_params = [p.copy() for p in net.parameters()]
            return None
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return None

    @property
    def best_value(self) -> float:
        """The best value of ``monitor`` seen (in its own sign)."""
        return -self.best if self.mode == "max" else self.best

    def on_train_end(self, net: Model, history: History | None) -> None:
        # Only when it stopped training (as Keras does): an EarlyStopping that never
        # fires changes nothing.
        if self.restore_best and self._best_params is not None and self.stopped_epoch:
            for p, best in zip(net.parameters(), self._best_params, strict=True):
                p[...] = best


class Checkpoint(Callback):
    """Save the network with its training state to ``path`` (atomically) every
    ``every`` epochs, so ``--resume`` can continue from it."""

    def __init__(
        self,
        path: str,
        *,
        every: int = 1,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.path, self.every, self.info = path, every, info

    def on_epoch_end(self, net: Model, epoch: int, logs: dict[str, float]) -> bool | None:
        if epoch % self.every == 0:
            net.save(self.path, info=self.info)
        return None


class ProgressBar(Callback):
    """Progress over epochs with the latest loss and accuracy, on stderr: a rich progress
    bar in a terminal, one plain line per epoch otherwise (logs, pipes, CI), where a bar
    would only be drawn once, at the end."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._epochs = 0

    def on_train_begin(self, net: Model, epochs: int) -> None:
        from rich.console import Console

        console = self.console = self.console or Console(stderr=True)
        self._epochs = epochs
        if not console.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Column

        def fixed() -> Column:
            return Column(no_wrap=True)

        # In a narrow terminal the metrics wrap onto a second line; the counter, bar and
        # clock keep their width (rich would otherwise squeeze them to "…").
        self._progress = Progress(
            TextColumn("epoch", table_column=fixed()),
            MofNCompleteColumn(table_column=fixed()),
            BarColumn(bar_width=20, table_column=fixed()),
            TimeElapsedColumn(table_column=fixed()),
            TextColumn("{task.fields[metrics]}", table_column=Column(overflow="fold")),
            console=console,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=epochs, metrics="")

    def on_epoch_end(self, net: Model, epoch: int, logs: dict[str, float]) -> bool | None:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "lr")
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, metrics=shown)
        elif self.console is not None:
            width = len(str(self._epochs))
            self.console.print(
                f"epoch {epoch:>{width}}/{self._epochs}  {shown}", highlight=False, soft_wrap=True
            )
        return None

    def on_train_end(self, net: Model, history: History) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# -- input checks ---------------------------------------------------------------------------
def check_data(net: Network, X: object, field: str = "X") -> Array:
    """X as a 2-D numeric array (not copied when it already is one), checked: rows of the
    first layer's width, at least one row, every value finite."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise GlassnetError("expected numbers", got=f"values of type {X.dtype}", field=field)
    if X.ndim != 2:
        raise GlassnetError(
            "expected a table (rows × features)", got=f"shape {X.shape}", field=field
        )
    if X.shape[0] == 0:
        raise GlassnetError("expected at least one row", got="an empty data set", field=field)
    n_in = net.sizes[0]
    if X.shape[1] != n_in:
        raise GlassnetError(
            f"expected {n_in} features per row (the network's input size)",
            got=f"{X.shape[1]}",
            field=field,
        )
    check_finite(X, field)
    return X


def check_finite(X: Array, field: str) -> None:
    """Refuse NaN or inf, checking in chunks so no full-size mask is ever allocated."""
    if X.dtype.kind != "f":
        return
    for start in range(0, X.shape[0], CHUNK):
        block = X[start : start + CHUNK]
        if not np.isfinite(block).all():
            row = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise GlassnetError(
                "expected finite numbers", got=f"NaN or inf in row {row}", field=field
            )


def prepare_targets(
    net: Network, y: object, loss: Loss, n: int, field: str = "y"
) -> tuple[Array, Array | None]:
    """Targets Y (n, n_out) in the network's dtype, and class labels (n,) when the task
    is classification (None otherwise).

    ``y`` may be class labels 0..n_out−1 (shape (n,)), or targets (n, n_out); for a
    single output unit, (n,) is that unit's target.
    """
    y = np.asarray(y)
    n_out = net.sizes[-1]
    out = net.output_activation.name
    if y.dtype.kind not in "biuf":
        raise GlassnetError(
            "expected numeric labels or targets (encode text labels first, e.g. with "
            "glassnet.sklearn.GlassnetClassifier)",
            got=f"values of type {y.dtype}",
            field=field,
        )
    if y.shape[:1] != (n,):
        raise GlassnetError(
            f"expected {n} targets (one per row of X)", got=f"shape {y.shape}", field=field
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise GlassnetError("expected finite numbers", got="NaN or inf", field=field)
    dtype = net.dtype
    labels: Array | None = None
    if y.ndim == 1 and n_out > 1:
        if y.dtype.kind == "f" and not (y == np.round(y)).all():
            raise GlassnetError(
                f"expected class labels 0..{n_out - 1} (whole numbers) or targets shaped "
                f"({n}, {n_out})",
                got="fractional values",
                field=field,
            )
        labels = y.astype(np.int64)
        if labels.min() < 0 or labels.max() >= n_out:
            raise GlassnetError(
                f"expected class labels 0..{n_out - 1} (the output layer has {n_out} units)",
                got=f"labels from {labels.min()} to {labels.max()}",
                field=field,
            )
        Y = np.zeros((n, n_out), dtype=dtype)
        Y[np.arange(n), labels] = 1
        return Y, labels
    Y = np.asarray(y, dtype=dtype).reshape(n, -1) if y.ndim == 1 else np.asarray(y, dtype=dtype)
    if Y.ndim != 2 or Y.shape[1] != n_out:
        raise GlassnetError(
            f"expected targets shaped ({n}, {n_out}) or class labels shaped ({n},)",
            got=f"shape {y.shape}",
            field=field,
        )
    if loss.probabilities and ((Y < 0) | (Y > 1)).any():
        raise GlassnetError(
            f"expected targets in [0, 1] for {loss.name}",
            got=f"values from {Y.min():g} to {Y.max():g}",
            field=field,
        )
    if out == "softmax" and n_out > 1:
        labels = Y.argmax(axis=1)
    elif out == "sigmoid" and n_out == 1 and np.isin(Y, (0, 1)).all():
        labels = Y[:, 0].astype(np.int64)
    return Y, labels


def default_loss(net: Network) -> str:
    """cross_entropy for softmax, binary_cross_entropy for sigmoid, mse otherwise."""
    return {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy"}.get(
        net.output_activation.name, "mse"
    )


def _positive_int(value: object, field: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise GlassnetError(f"expected a whole number ≥ {minimum}", got=repr(value), field=field)
    return int(value)


# -- prediction and evaluation (on the network's own inputs, already preprocessed) -----------
def forward_chunked(net: Network, X: Array) -> Array:
    """The output layer's values (n, n_out) for checked inputs X, in chunks of
    :data:`CHUNK` rows."""
    out = np.empty((X.shape[0], net.sizes[-1]), dtype=net.dtype)
    for start in range(0, X.shape[0], CHUNK):
        xb = np.asarray(X[start : start + CHUNK], dtype=net.dtype)
        out[start : start + xb.shape[0]] = net.forward(xb)
    return out


def predict_proba(net: Network, X: object) -> Array:
    """The output layer's values (n, n_out) for inputs X (no preprocessing: a
    :class:`~glassnet.model.Model` applies its own first)."""
    return forward_chunked(net, check_data(net, X))


def classes_from_output(net: Network, p: Array) -> Array:
    """Predicted classes from outputs p: argmax for softmax, p ≥ 0.5 for sigmoid."""
    if net.output_activation.name == "sigmoid":
        hit = (p >= 0.5).astype(np.int64)
        return hit[:, 0] if hit.shape[1] == 1 else hit
    return p.argmax(axis=1)


def predict(net: Network, X: object) -> Array:
    """Class indices (n,) for softmax, 0/1 for sigmoid, the raw outputs otherwise."""
    p = predict_proba(net, X)
    if net.output_activation.name in ("softmax", "sigmoid"):
        return classes_from_output(net, p)
    return p


def _evaluate_rows(
    net: Network, X: Array, Y: Array, labels: Array | None, rows: Array, loss: Loss
) -> dict[str, float]:
    """Mean loss (and accuracy) over ``rows`` of (X, Y), one chunked forward pass."""
    total, correct = 0.0, 0
    for start in range(0, rows.shape[0], CHUNK):
        idx = rows[start : start + CHUNK]
        xb = np.take(X, idx, axis=0).astype(net.dtype, copy=False)
        p = net.forward(xb)
        total += loss.value(p, Y[idx]) * idx.shape[0]
        if labels is not None:
            correct += int(np.count_nonzero(classes_from_output(net, p) == labels[idx]))
    logs = {"loss": total / rows.shape[0]}
    if labels is not None:
        logs["accuracy"] = correct / rows.shape[0]
    return logs


def evaluate(
    net: Network, X: object, y: object, loss: str | Loss | None = None
) -> dict[str, float]:
    """``{"loss": ..., "accuracy": ...}`` (accuracy for classification) on (X, y)."""
    X = check_data(net, X)
    loss_obj = net.check_loss(loss or default_loss(net))
    Y, labels = prepare_targets(net, y, loss_obj, X.shape[0])
    return _evaluate_rows(net, X, Y, labels, np.arange(X.shape[0]), loss_obj)


def confusion_matrix(labels: Array, predicted: Array, n_classes: int) -> Array:
    """C[i, j] = number of samples of class i predicted as class j."""
    return np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


# -- fit: state resolution ---------------------------------------------------------------------
def resolve_loss(net: Model, loss: str | Loss | None) -> Loss:
    """The loss a ``fit`` uses: the one given, else the last fit's, else the default."""
    state = net.train_state
    return net.check_loss(loss or (state.loss if state is not None else default_loss(net)))


def resolve_state(
    net: Model, loss_obj: Loss, optimizer: str | Optimizer | None, seed: int | None
) -> TrainState:
    """The state this ``fit`` continues with, made or updated on ``net``: a first fit
    makes one (default Adam, seed 0); a later fit keeps the optimiser (and its state),
    seed and random stream unless given new ones."""
    state = net.train_state
    if seed is not None:
        seed = _positive_int(seed, "seed", minimum=0)
    if state is None:
        state = TrainState(
            optimizer=get_optimizer(optimizer if optimizer is not None else "adam"),
            loss=loss_obj.name,
            seed=seed if seed is not None else 0,
            rng=shuffle_rng(seed if seed is not None else 0),
        )
        net.train_state = state
    else:
        if optimizer is not None:
            state.optimizer = get_optimizer(optimizer)
        if seed is not None and seed != state.seed:
            state.seed, state.rng = seed, shuffle_rng(seed)
        state.loss = loss_obj.name
    params = net.parameters()
    for i, p in enumerate(params):
        for arrays in state.optimizer.state.values():
            if arrays[i].shape != p.shape:
                raise GlassnetError(
                    "expected an optimiser used with this network (or a fresh one)",
                    got=f"state shaped {arrays[i].shape} for a parameter shaped {p.shape}",
                    field="optimizer",
                )
    return state


@dataclass
class Rows:
    """Training or validation data as the loop reads it: inputs X, targets Y (n, n_out),
    class labels (n,) for classification (else None), the rows of X/Y it uses and
    per-row weights (n,) (None: all 1)."""

    X: Array
    Y: Array
    labels: Array | None
    rows: Array
    weights: Array | None = None


class WeightedLoss(Loss):
    """``base`` with per-row weights: terms of row i times w_i, and so dL/dp row i times
    w_i (the mean over the batch unchanged).  Its name is not the base's, so the fused
    softmax + cross-entropy shortcut — derived for equal weights — never applies; the
    gradient goes the general way, through the softmax Jacobian."""

    def __init__(self, base: Loss) -> None:
        self.base = base
        self.name = f"weighted {base.name}"  # type: ignore[misc]
        self.needs_output = base.needs_output  # type: ignore[misc]
        self.probabilities = base.probabilities  # type: ignore[misc]
        #: The current batch's weights (m,), set by the loop before each step.
        self.w = np.ones(0)

    def terms(self, p: Array, y: Array) -> Array:
        return self.base.terms(p, y) * self.w[:, None]

    def grad(self, p: Array, y: Array) -> Array:
        return self.base.grad(p, y) * self.w[:, None]


def row_weights(
    n: int,
    labels: Array | None,
    n_classes: int,
    sample_weight: object,
    class_weight: object,
) -> Array | None:
    """Per-row weights from ``sample_weight`` (n,) and ``class_weight`` (``"balanced"``:
    n / (k · n_c), as scikit-learn; or {class index: weight}), multiplied; None when
    neither is given."""
    if sample_weight is None and class_weight is None:
        return None
    w = np.ones(n)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float64)
        if sw.shape != (n,) or not np.isfinite(sw).all() or (sw < 0).any() or sw.sum() <= 0:
            raise GlassnetError(
                f"expected {n} finite weights ≥ 0, not all 0 (one per row)",
                got=f"shape {sw.shape}" if sw.shape != (n,) else "negative, NaN or all 0",
                field="sample_weight",
            )
        w *= sw
    if class_weight is not None:
        if labels is None:
            raise GlassnetError(
                "expected class labels for class_weight (a classification task)",
                got="targets",
                field="class_weight",
            )
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        if isinstance(class_weight, str) and class_weight == "balanced":
            per_class = np.where(
                counts > 0, n / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0
            )
        elif isinstance(class_weight, dict):
            per_class = np.ones(n_classes)
            for k, v in class_weight.items():
                ok = isinstance(k, int | np.integer) and 0 <= k < n_classes
                if not ok or not isinstance(v, int | float) or not v >= 0:
                    raise GlassnetError(
                        f"expected {{class index 0..{n_classes - 1}: weight ≥ 0}}",
                        got=f"{k!r}: {v!r}",
                        field="class_weight",
                    )
                per_class[int(k)] = float(v)
        else:
            raise GlassnetError(
                "expected 'balanced' or a dict {class index: weight}",
                got=repr(class_weight)[:60],
                field="class_weight",
            )
        w *= per_class[labels]
    return w


# -- fit: dropout ----------------------------------------------------------------------------
class Dropped(Activation):
    """A hidden layer's activation with inverted dropout while training: a = f(z)·mask,
    mask_ij = 1/(1 − p) with probability 1 − p, else 0 (drawn per batch by the loop);
    da/dz = f'(z)·mask.  With no mask set (validation, prediction) it is f itself."""

    elementwise = True

    def __init__(self, base: Activation, p: float) -> None:
        if not base.elementwise:
            raise GlassnetError(
                "expected an elementwise hidden activation for dropout",
                got=base.name,
                field="dropout",
            )
        self.base, self.p = base, p
        self.name = base.name  # type: ignore[misc]
        self.options = base.options
        self.mask: Array | None = None

    def draw(self, rng: np.random.Generator, m: int, n: int, dtype: np.dtype) -> None:
        keep = rng.random((m, n)) >= self.p
        self.mask = keep.astype(dtype) / dtype.type(1 - self.p)

    def forward(self, z: Array, out: Array | None = None) -> Array:
        a = self.base.forward(z, out=out)
        if self.mask is None:
            return a
        if out is None:
            return a * self.mask  # a may be z itself (identity): not scaled in place
        a *= self.mask
        return a

    def derivative(self, z: Array, a: Array) -> Array:
        # from z (a is the dropped output): f'(z), then the mask
        d = self.base.derivative(z, self.base.forward(z))
        return d if self.mask is None else d * self.mask

    def backward(self, z: Array, a: Array, dL_da: Array, out: Array | None = None) -> Array:
        return np.multiply(dL_da, self.derivative(z, a), out=out)

    def describe(self) -> str:
        return self.base.describe()

    def to_dict(self) -> dict[str, object]:
        return self.base.to_dict()


def check_dropout(p: object) -> float:
    """A dropout rate in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
        raise GlassnetError("expected a rate in [0, 1)", got=repr(p), field="dropout")
    return float(p)


# -- fit: batching -----------------------------------------------------------------------------
class Batches:
    """The buffers one batch is gathered into, allocated once for batches of up to
    ``batch_size`` rows of ``data``, with every layer's intermediates and gradients
    (:meth:`Network.buffers`)."""

    def __init__(self, net: Network, data: Rows, batch_size: int) -> None:
        X, Y = data.X, data.Y
        m_max = min(batch_size, data.rows.shape[0])
        self.batch_size = batch_size
        self.x = np.empty((m_max, X.shape[1]), dtype=net.dtype)
        self.y = np.empty((m_max, Y.shape[1]), dtype=net.dtype)
        # Data in another dtype than the network's is gathered as is, then cast into x.
        self.x_raw = np.empty((m_max, X.shape[1]), dtype=X.dtype) if X.dtype != net.dtype else None
        self.order = np.empty_like(data.rows)
        self.layers = net.buffers(m_max)
        self.grads = [a for b in self.layers for a in (b.dW, b.db)]


# -- fit: the epoch loop -----------------------------------------------------------------------
def run_epochs(
    net: Model,
    state: TrainState,
    loss: Loss,
    train: Rows,
    val: Rows | None,
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    callbacks: Sequence[Callback],
) -> None:
    """``epochs`` epochs of mini-batch training on ``train``, logging into
    ``state.history`` and calling ``callbacks``; stops early when one asks."""
    # Fused output delta only where proved equal (losses.fused_delta_ok: softmax +
    # cross-entropy, every target row summing to 1), and never with row weights.
    fused = train.weights is None and fused_delta_ok(net.output_activation, loss, train.Y)
    # Dropout: hidden layers' activations wrapped for this call only (restored below).
    rate = check_dropout(getattr(net, "dropout", 0.0))
    dropped: list[tuple[Dense, Activation]] = []
    if rate > 0:
        for layer in net.dense_layers("dropout in fit")[:-1]:
            dropped.append((layer, layer.activation))
            layer.activation = Dropped(layer.activation, rate)
    weighted = WeightedLoss(loss) if train.weights is not None else None
    step_loss: Loss = weighted if weighted is not None else loss
    batches = Batches(net, train, batch_size)
    opt, rng, params = state.optimizer, state.rng, net.parameters()
    n_train = train.rows.shape[0]
    # Gather, forward, backward and update of one batch, in batches' buffers: on one core
    # or two (glassnet.parallel chooses; dropout and row weights keep the plain step).
    step = train_step(
        net,
        train.X,
        train.Y,
        step_loss,
        opt,
        fused=fused,
        batch_size=min(batch_size, n_train),
        plain_only=bool(dropped) or weighted is not None,
        batches=batches,
        epoch_rows=n_train,
    )
    order = batches.order
    for cb in callbacks:
        cb.on_train_begin(net, epochs)
    # Overflow on the way to a NaN loss is reported once, as a GlassnetError, not as warnings.
    errstate = np.errstate(over="ignore", invalid="ignore")
    errstate.__enter__()
    try:
        for _ in range(epochs):
            epoch = state.epoch + 1  # numbered from 1, across fits
            opt.set_epoch(state.epoch)
            snapshot = _snapshot(net, opt)
            order[:] = train.rows  # reshuffle from one fixed order: depends only on the rng
            if shuffle:
                rng.shuffle(order)
            loss_sum, correct, batch = 0.0, 0, 0
            for batch, start in enumerate(range(0, n_train, batch_size), start=1):
                idx = order[start : start + batch_size]
                if weighted is not None and train.weights is not None:
                    weighted.w = train.weights[idx]
                for layer, _ in dropped:
                    assert isinstance(layer.activation, Dropped)
                    layer.activation.draw(rng, idx.shape[0], layer.n_out, net.dtype)
                p, value = step(idx)  # updates the weights only when value is finite
                if not math.isfinite(value):
                    _restore(net, opt, snapshot)
                    _diverged(value, epoch, batch)
                for layer, _ in dropped:  # validation and callbacks see the whole network
                    assert isinstance(layer.activation, Dropped)
                    layer.activation.mask = None
                loss_sum += value * idx.shape[0]
                if train.labels is not None:
                    predicted = classes_from_output(net, p)
                    correct += int(np.count_nonzero(predicted == train.labels[idx]))
            if not all(np.isfinite(w).all() for w in params):
                _restore(net, opt, snapshot)
                _diverged(math.nan, epoch, batch)
            logs = {"loss": loss_sum / n_train}
            if train.labels is not None:
                logs["accuracy"] = correct / n_train
            if val is not None:
                v = _evaluate_rows(net, val.X, val.Y, val.labels, val.rows, loss)
                logs.update({f"val_{k}": value for k, value in v.items()})
            logs["lr"] = opt.current_lr
            state.epoch = epoch
            state.history.append(epoch, logs)
            stop = False
            for cb in callbacks:
                stop = bool(cb.on_epoch_end(net, epoch, logs)) or stop
            if stop:
                break
    finally:
        errstate.__exit__(None, None, None)
        for layer, base in dropped:
            layer.activation = base
        for cb in callbacks:
            cb.on_train_end(net, state.history)


# -- fit ------------------------------------------------------------------------------------
def fit(
    net: Model,
    X: object,
    y: object,
    *,
    loss: str | Loss | None = None,
    optimizer: str | Optimizer | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    validation_split: float = 0.0,
    validation_data: tuple[object, object] | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    patience: int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    sample_weight: object = None,
    class_weight: object = None,
) -> History:
    """Train ``net`` in place with mini-batches; return the history (of every fit so far).

    Parameters
    ----------
    X : (n, n_features) raw rows: the model's preprocessing (if any) is applied first.
        Without preprocessing, not copied: batches are gathered from it by index.
    y : class labels (n,) in 0..n_out−1, or targets (n, n_out).
    loss : default cross_entropy (softmax), binary_cross_entropy (sigmoid), else mse.
    optimizer : an instance from :mod:`glassnet.optim` or a name; default: the one the
        last ``fit`` used (so its state carries on), else ``Adam(lr=1e-3)``.
    epochs : epochs to run now (more epochs, if the network was trained before).
    validation_split : fraction of (X, y) held out (seeded); or give ``validation_data``.
    seed : seeds shuffling and the split; default the previous fit's seed, else 0.
        The same seed continues the same random stream.
    patience : shortcut for ``callbacks=[EarlyStopping(patience)]`` (on val_loss; needs
        validation data, checked before training).
    progress : show a rich progress bar.
    sample_weight : (n,) weights ≥ 0, one per row: row i counts w_i times in the loss.
    class_weight : ``"balanced"`` (n / (k · n_c), as scikit-learn) or {class index:
        weight}; multiplies ``sample_weight``.  Weights are scaled to mean 1 over the
        training rows, so the learning rate means the same; validation is unweighted.

    Raises :class:`GlassnetError` for bad data, and if the loss becomes NaN or infinite
    (naming the epoch and batch), after restoring the weights of the last whole epoch.
    """
    X = check_data(net, net.prepare_input(X))
    n = X.shape[0]
    epochs = _positive_int(epochs, "epochs", minimum=0)
    batch_size = _positive_int(batch_size, "batch_size")
    if not isinstance(validation_split, int | float) or not 0 <= validation_split < 1:
        raise GlassnetError(
            "expected a fraction in [0, 1)", got=repr(validation_split), field="validation_split"
        )
    has_val = validation_data is not None or validation_split > 0
    if patience is not None and not has_val:
        # Refused before anything is trained or saved (it used to fail after epoch 1).
        raise GlassnetError(
            "expected validation data for early stopping on val_loss (validation_split > 0 "
            "or validation_data)",
            got=f"patience {patience} without either",
            field="patience",
        )
    loss_obj = resolve_loss(net, loss)
    Y, labels = prepare_targets(net, y, loss_obj, n)
    if seed is not None:
        seed = _positive_int(seed, "seed", minimum=0)
    state = resolve_state(net, loss_obj, optimizer, seed)

    train_idx, val_idx = split_indices(n, float(validation_split), state.seed)
    val: Rows | None = None
    if validation_data is not None:
        Xv = check_data(net, net.prepare_input(validation_data[0]), "validation X")
        Yv, labels_v = prepare_targets(
            net, validation_data[1], loss_obj, Xv.shape[0], "validation y"
        )
        val = Rows(Xv, Yv, labels_v, np.arange(Xv.shape[0]))
    elif val_idx.size:
        val = Rows(X, Y, labels, val_idx)

    calls = list(callbacks)
    if patience is not None:
        calls.append(EarlyStopping(patience))
    logged = {"loss", "lr"} | ({"accuracy"} if labels is not None else set())
    if val is not None:
        logged |= {f"val_{k}" for k in logged - {"lr"}}
    for cb in calls:
        if isinstance(cb, EarlyStopping) and cb.monitor not in logged:
            raise GlassnetError(
                f"expected a metric this fit logs ({', '.join(sorted(logged))}); val_ metrics "
                "need validation data",
                got=repr(cb.monitor),
                field="monitor",
            )
    if progress:
        calls.insert(0, ProgressBar())
    weights = row_weights(n, labels, net.sizes[-1], sample_weight, class_weight)
    if weights is not None:
        mean = weights[train_idx].mean()
        if not mean > 0:
            raise GlassnetError(
                "expected some weight on the training rows", got="all 0", field="sample_weight"
            )
        weights = weights / mean
    run_epochs(
        net,
        state,
        loss_obj,
        Rows(X, Y, labels, train_idx, weights),
        val,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        callbacks=calls,
    )
    return state.history


def _snapshot(net: Network, opt: Optimizer) -> tuple[list[Array], dict[str, Array], int]:
    """Copies of the weights and optimiser state (a NaN loss restores them)."""
    return (
        [p.copy() for p in net.parameters()],
        {k: a.copy() for k, a in opt.state_arrays().items()},
        opt.t,
    )


def _restore(
    net: Network, opt: Optimizer, snapshot: tuple[list[Array], dict[str, Array], int]
) -> None:
    params, state, t = snapshot
    for p, saved in zip(net.parameters(), params, strict=True):
        p[...] = saved
    opt.load_state_arrays(state, net.parameters())
    opt.t = t


def _diverged(value: float, epoch: int, batch: int) -> None:
    kept = f"the end of epoch {epoch - 1}" if epoch > 1 else "their values before training"
    raise GlassnetError(
        f"expected a finite loss; training stopped and the weights were restored to {kept} "
        "(try a smaller learning rate)",
        got=f"{value} at epoch {epoch}, batch {batch}",
        field="loss",
    )
