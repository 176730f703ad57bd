"""Training: the epoch loop, its history, callbacks and early stopping; prediction.

:func:`fit` runs mini-batch training through the very layer code the trace records
(:meth:`Network.forward_backward`: each ``Dense.forward``, the loss, the reverse loop
of ``Dense.backward``) — only without recording, and batched.  What a trace shows for
one step is what every step of training does.

How the loop stays fast without hiding the maths:

- each batch is gathered by index into a buffer allocated once (``np.take(out=)``),
  so the data is never copied or permuted as a whole — only an index array is shuffled;
- softmax + cross-entropy uses the fused output delta ``(p − y)/batch`` (proved equal
  when every target row sums to 1, which is checked once, before the first epoch);
- optimisers update the weights in place (:mod:`glassnet.optim`);
- the epoch's loss and accuracy are running means of the batches' own values
  (no extra pass over the data); validation is one chunked forward pass per epoch.

Random numbers come from one seeded stream kept in the network's ``train_state``, so
``fit(5)`` then ``fit(5)`` equals ``fit(10)``, and a checkpoint (which saves the stream)
resumes bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.losses import Loss, fused_delta_ok
from glassnet.optim import Optimizer, get_optimizer

if TYPE_CHECKING:
    from glassnet.network import Network

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

    def on_train_begin(self, net: Network, epochs: int) -> None:
        """Called once, before the first epoch of this ``fit`` call."""

    def on_epoch_end(self, net: Network, epoch: int, logs: dict[str, float]) -> bool | None:
        """Called after each epoch (numbered from 1, counting earlier fits) with its logs."""
        return None

    def on_train_end(self, net: Network, history: History) -> None:
        """Called once at the end (also after early stopping)."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` (default ``val_loss``) has not improved by more than
    ``min_delta`` for ``patience`` epochs; then restore the best weights (unless told not to)."""

    def __init__(
        self,
        patience: int = 5,
        *,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise GlassnetError(
                "expected a whole number of epochs ≥ 1", got=repr(patience), field="patience"
            )
        self.patience = patience
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.restore_best = restore_best
        self.best = math.inf
        self.best_epoch = 0
        self.stopped_epoch: int | None = None
        self._best_params: list[Array] | None = None
        self._wait = 0

    def on_train_begin(self, net: Network, epochs: int) -> None:
        self.best, self.best_epoch, self._wait, self.stopped_epoch = math.inf, 0, 0, None
        self._best_params = None

    def on_epoch_end(self, net: Network, epoch: int, logs: dict[str, float]) -> bool | None:
        if self.monitor not in logs:
            raise GlassnetError(
                f"expected '{self.monitor}' in the epoch's logs (give validation data "
                "for val_loss)",
                got=", ".join(logs),
                field="monitor",
            )
        value = logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self._wait = value, epoch, 0
            if self.restore_best:
                self._best_params = [p.copy() for p in net.parameters()]
            return None
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return None

    def on_train_end(self, net: Network, history: History) -> None:
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
        extras: dict[str, Array] | None = None,
    ) -> None:
        self.path, self.every, self.info, self.extras = path, every, info, extras

    def on_epoch_end(self, net: Network, epoch: int, logs: dict[str, float]) -> bool | None:
        if epoch % self.every == 0:
            from glassnet.io import save

            save(net, self.path, info=self.info, extras=self.extras)
        return None


class ProgressBar(Callback):
    """Progress over epochs with the latest loss and accuracy, on stderr: a rich progress
    bar in a terminal, one plain line per epoch otherwise (logs, pipes, CI), where a bar
    would only be drawn once, at the end."""

    def __init__(self, console: Any = None) -> None:
        self.console = console
        self._progress: Any = None
        self._task: Any = None
        self._epochs = 0

    def on_train_begin(self, net: Network, epochs: int) -> None:
        from rich.console import Console

        self.console = self.console or Console(stderr=True)
        self._epochs = epochs
        if not self.console.is_terminal:
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
            console=self.console,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=epochs, metrics="")

    def on_epoch_end(self, net: Network, epoch: int, logs: dict[str, float]) -> bool | None:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "lr")
        if self._progress is not None:
            self._progress.update(self._task, advance=1, metrics=shown)
        else:
            width = len(str(self._epochs))
            self.console.print(
                f"epoch {epoch:>{width}}/{self._epochs}  {shown}", highlight=False, soft_wrap=True
            )
        return None

    def on_train_end(self, net: Network, history: History) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# -- input checks ---------------------------------------------------------------------------
def check_data(net: Network, X: Any, field: str = "X") -> Array:
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
    net: Network, y: Any, loss: Loss, n: int, field: str = "y"
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


def _positive_int(value: Any, field: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise GlassnetError(f"expected a whole number ≥ {minimum}", got=repr(value), field=field)
    return int(value)


# -- prediction and evaluation ---------------------------------------------------------------
def predict_proba(net: Network, X: Any) -> Array:
    """The output layer's values (n, n_out), computed in chunks of :data:`CHUNK` rows."""
    X = check_data(net, X)
    out = np.empty((X.shape[0], net.sizes[-1]), dtype=net.dtype)
    for start in range(0, X.shape[0], CHUNK):
        xb = np.asarray(X[start : start + CHUNK], dtype=net.dtype)
        out[start : start + xb.shape[0]] = net.forward(xb)
    return out


def classes_from_output(net: Network, p: Array) -> Array:
    """Predicted classes from outputs p: argmax for softmax, p ≥ 0.5 for sigmoid."""
    if net.output_activation.name == "sigmoid":
        hit = (p >= 0.5).astype(np.int64)
        return hit[:, 0] if hit.shape[1] == 1 else hit
    return p.argmax(axis=1)


def predict(net: Network, X: Any) -> Array:
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


def evaluate(net: Network, X: Any, y: Any, loss: str | Loss | None = None) -> dict[str, float]:
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


# -- fit ------------------------------------------------------------------------------------
def fit(
    net: Network,
    X: Any,
    y: Any,
    *,
    loss: str | Loss | None = None,
    optimizer: str | Optimizer | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    validation_split: float = 0.0,
    validation_data: tuple[Any, Any] | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    patience: int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
) -> History:
    """Train ``net`` in place with mini-batches; return the history (of every fit so far).

    Parameters
    ----------
    X : (n, n_in) numbers.  Not copied: batches are gathered from it by index.
    y : class labels (n,) in 0..n_out−1, or targets (n, n_out).
    loss : default cross_entropy (softmax), binary_cross_entropy (sigmoid), else mse.
    optimizer : an instance from :mod:`glassnet.optim` or a name; default: the one the
        last ``fit`` used (so its state carries on), else ``Adam(lr=1e-3)``.
    epochs : epochs to run now (more epochs, if the network was trained before).
    validation_split : fraction of (X, y) held out (seeded); or give ``validation_data``.
    seed : seeds shuffling and the split; default the previous fit's seed, else 0.
        The same seed continues the same random stream.
    patience : shortcut for ``callbacks=[EarlyStopping(patience)]`` (on val_loss).
    progress : show a rich progress bar.

    Raises :class:`GlassnetError` for bad data, and if the loss becomes NaN or infinite
    (naming the epoch and batch), after restoring the weights of the last whole epoch.
    """
    X = check_data(net, X)
    n = X.shape[0]
    state: TrainState | None = net.train_state
    loss_obj = net.check_loss(loss or (state.loss if state is not None else default_loss(net)))
    Y, labels = prepare_targets(net, y, loss_obj, n)
    epochs = _positive_int(epochs, "epochs", minimum=0)
    batch_size = _positive_int(batch_size, "batch_size")
    if not isinstance(validation_split, int | float) or not 0 <= validation_split < 1:
        raise GlassnetError(
            "expected a fraction in [0, 1)", got=repr(validation_split), field="validation_split"
        )
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
    opt, rng = state.optimizer, state.rng
    params = net.parameters()
    for i, p in enumerate(params):
        for arrays in opt.state.values():
            if arrays[i].shape != p.shape:
                raise GlassnetError(
                    "expected an optimiser used with this network (or a fresh one)",
                    got=f"state shaped {arrays[i].shape} for a parameter shaped {p.shape}",
                    field="optimizer",
                )

    train_idx, val_idx = split_indices(n, float(validation_split), state.seed)
    val: tuple[Array, Array, Array | None, Array] | None = None
    if validation_data is not None:
        Xv = check_data(net, validation_data[0], "validation X")
        Yv, labels_v = prepare_targets(
            net, validation_data[1], loss_obj, Xv.shape[0], "validation y"
        )
        val = (Xv, Yv, labels_v, np.arange(Xv.shape[0]))
    elif val_idx.size:
        val = (X, Y, labels, val_idx)

    # Fused output delta only where proved equal: softmax + cross-entropy with every
    # target row summing to 1 (always so for labels; checked once for given targets).
    fused = fused_delta_ok(net.output_activation, loss_obj, Y)

    calls = list(callbacks)
    if patience is not None:
        calls.append(EarlyStopping(patience))
    if progress:
        calls.insert(0, ProgressBar())

    n_train = train_idx.shape[0]
    m_max = min(batch_size, n_train)
    # Buffers for one batch, allocated once and refilled by index every step.
    xbuf = np.empty((m_max, X.shape[1]), dtype=net.dtype)
    ybuf = np.empty((m_max, Y.shape[1]), dtype=net.dtype)
    order = np.empty_like(train_idx)
    # Data in another dtype than the network's is gathered as is, then cast into xbuf.
    xraw = np.empty((m_max, X.shape[1]), dtype=X.dtype) if X.dtype != net.dtype else None
    # Every layer's z, a, delta and gradients go into arrays allocated here, once.
    buffers = net.buffers(m_max)
    grad_arrays = [a for b in buffers for a in (b.dW, b.db)]

    for cb in calls:
        cb.on_train_begin(net, epochs)
    # Overflow on the way to a NaN loss is reported once, as a GlassnetError, not as warnings.
    errstate = np.errstate(over="ignore", invalid="ignore")
    errstate.__enter__()
    try:
        for _ in range(epochs):
            epoch = state.epoch + 1  # numbered from 1, across fits
            opt.set_epoch(state.epoch)
            snapshot = _snapshot(net, opt)
            order[:] = train_idx  # reshuffle from one fixed order: depends only on the rng
            if shuffle:
                rng.shuffle(order)
            loss_sum, correct = 0.0, 0
            for batch, start in enumerate(range(0, n_train, batch_size), start=1):
                idx = order[start : start + batch_size]
                m = idx.shape[0]
                xb = _gather(X, idx, xbuf[:m], xraw)
                yb = _gather(Y, idx, ybuf[:m], None)
                p, value, _ = net.forward_backward(xb, yb, loss_obj, fused=fused, buffers=buffers)
                if not math.isfinite(value):
                    _restore(net, opt, snapshot)
                    _diverged(value, epoch, batch)
                opt.step(params, grad_arrays, scratch_grads=True)  # refilled next step
                loss_sum += value * m
                if labels is not None:
                    correct += int(np.count_nonzero(classes_from_output(net, p) == labels[idx]))
            if not all(np.isfinite(w).all() for w in params):
                _restore(net, opt, snapshot)
                _diverged(math.nan, epoch, batch)
            logs = {"loss": loss_sum / n_train}
            if labels is not None:
                logs["accuracy"] = correct / n_train
            if val is not None:
                v = _evaluate_rows(net, val[0], val[1], val[2], val[3], loss_obj)
                logs.update({f"val_{k}": value for k, value in v.items()})
            logs["lr"] = opt.current_lr
            state.epoch = epoch
            state.history.append(epoch, logs)
            stop = False
            for cb in calls:
                stop = bool(cb.on_epoch_end(net, epoch, logs)) or stop
            if stop:
                break
    finally:
        errstate.__exit__(None, None, None)
        for cb in calls:
            cb.on_train_end(net, state.history)
    return state.history


def _gather(src: Array, idx: Array, out: Array, raw: Array | None) -> Array:
    """Rows ``idx`` of ``src`` written into the reused buffer ``out`` (no new array)."""
    if raw is None:
        # mode="clip" lets take write straight into out= (the indices are in range); the
        # method, not np.take, skips a Python wrapper.
        return src.take(idx, axis=0, out=out, mode="clip")
    rows = src.take(idx, axis=0, out=raw[: idx.shape[0]], mode="clip")
    np.copyto(out, rows, casting="unsafe")
    return out


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
