"""The epoch loop and :func:`fit`.

:func:`fit` runs mini-batch training through the very layer code the trace records
(:meth:`Network.forward_backward`: each ``Dense.forward``, the loss, the reverse loop
of ``Dense.backward``) — only without recording, and batched.  What a trace shows for
one step is what every step of training does.

``fit`` is three parts: :func:`~glassnet.training.trainable.resolve_state` (the optimiser,
loss, seed and random stream a call continues with), the :class:`StepEngine` (one batch's
gather, forward, backward and update; :class:`NumpyEngine` by default) and
:func:`run_epochs` (the loop).

How the loop stays fast without hiding the maths:

- each batch is gathered by index into a buffer allocated once (``np.take(out=)``),
  so the data is never copied or permuted as a whole — only an index array is shuffled;
- softmax + cross-entropy uses the fused output delta ``(p − y)/batch`` (proved equal
  when every target row sums to 1, which is checked once, before the first epoch);
- optimisers update the weights in place (:mod:`glassnet.optim`);
- the epoch's loss and accuracy are running means of the batches' own values
  (no extra pass over the data); validation is one chunked forward pass per epoch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.kernels import check_choice
from glassnet.losses import Loss
from glassnet.network import Network
from glassnet.optim import Optimizer
from glassnet.training.batches import Rows, split_indices
from glassnet.training.callbacks import Callback, EarlyStopping, ProgressBar
from glassnet.training.engine import NumpyEngine, StepEngine
from glassnet.training.inputs import check_data, check_finite, prepare_targets
from glassnet.training.metrics import evaluate_rows
from glassnet.training.state import (
    History,
    TrainState,
    positive_int,
)
from glassnet.training.trainable import TrainableNetwork, resolve_loss, resolve_state
from glassnet.training.weights import row_weights, training_weights

Array = np.ndarray


def run_epochs(
    net: TrainableNetwork,
    state: TrainState,
    loss: Loss,
    train: Rows,
    val: Rows | None,
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    callbacks: Sequence[Callback],
    engine: StepEngine | None = None,
) -> None:
    """``epochs`` epochs of mini-batch training on ``train``, logging into
    ``state.history`` and calling ``callbacks``; stops early when one asks.  Each batch
    is one ``engine.step`` (default :class:`NumpyEngine`); everything else — the order
    of the rows, the running loss and accuracy, validation, divergence, callbacks — is
    the loop's, the same for every engine."""
    engine = engine if engine is not None else NumpyEngine()
    opt, rng = state.optimizer, state.rng
    n_train = train.rows.shape[0]
    # The rows' order, shuffled in place each epoch (only this index array moves).
    order = np.empty_like(train.rows)
    engine.begin(net, loss, opt, train, batch_size=batch_size, rng=rng, dropout=net.dropout)
    # Overflow on the way to a NaN loss is reported once, as a GlassnetError, not as warnings.
    errstate = np.errstate(over="ignore", invalid="ignore")
    errstate.__enter__()
    try:
        for cb in callbacks:
            cb.on_train_begin(net, epochs)
        for _ in range(epochs):
            epoch = state.epoch + 1  # numbered from 1, across fits
            opt.set_epoch(state.epoch)
            snapshot = _snapshot(net, opt)
            order[:] = train.rows  # reshuffle from one fixed order: depends only on the rng
            if shuffle:
                rng.shuffle(order)
            loss_sum, correct, batch = 0.0, 0, 0
            # The labels in this epoch's order, gathered once (not once per batch).
            labels = train.labels[order] if train.labels is not None else None
            classes = net.output_activation.classes  # the same activation all fit long
            for batch, start in enumerate(range(0, n_train, batch_size), start=1):
                idx = order[start : start + batch_size]
                p, value = engine.step(idx)  # updates the weights only when value is finite
                if not math.isfinite(value):
                    _restore(net, opt, snapshot)
                    # Data changed since it was checked (check_finite_once) is named as such.
                    check_finite(train.X, "X")
                    _diverged(value, epoch, batch)
                loss_sum += value * idx.shape[0]
                if labels is not None:
                    hits = classes(p) == labels[start : start + batch_size]
                    correct += int(np.count_nonzero(hits))
            # Validation, callbacks and the next snapshot read the network itself.
            engine.sync()
            # The network's arrays now (the engine may have laid them out, a callback
            # replaced one): the ones validation and the next epoch use.
            if not all(np.isfinite(w).all() for w in net.parameters()):
                _restore(net, opt, snapshot)
                check_finite(train.X, "X")
                _diverged(math.nan, epoch, batch)
            logs = {"loss": loss_sum / n_train}
            if train.labels is not None:
                logs["accuracy"] = correct / n_train
            if val is not None:
                v = evaluate_rows(net, val.X, val.Y, val.labels, val.rows, loss)
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
        engine.end()
        for cb in callbacks:
            cb.on_train_end(net, state.history)


def fit(
    net: TrainableNetwork,
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
    engine: str | StepEngine | None = None,
    device: str | None = None,
    kernels: str | None = None,
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
        Each batch's weights go into the loss (``loss.value``/``loss.grad`` ``weights=``).
    engine : the :class:`StepEngine` that runs each batch's step, or its name:
        ``"numpy"`` (the default: :class:`NumpyEngine`, the fast step on one core or
        two), ``"torch"`` (:class:`~glassnet.training.torch_engine.TorchEngine`, PyTorch
        on ``device``; needs torch) or ``"auto"`` (numpy on the CPU, torch elsewhere).
    device : ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"`` or ``"mps"``: where the torch
        engine trains (the NumPy engine runs on the CPU only).
    kernels : ``"auto"``, ``"numpy"`` or ``"numba"`` (default: the engine's own, which
        for a named engine is ``"auto"``): the NumPy engine's fast step does its
        element-wise passes with compiled numba kernels (:mod:`glassnet.kernels`;
        the fast extra) — ``"auto"`` only when numba is installed and
        the fit is long enough to repay numba's start-up (rows × epochs × the layers'
        widths, :data:`glassnet.kernels.MIN_WORK`).  Same numbers as NumPy's passes to
        float rounding.  ``"numba"`` with the torch engine is an error.

    Raises :class:`GlassnetError` for bad data, and if the loss becomes NaN or infinite
    (naming the epoch and batch), after restoring the weights of the last whole epoch.
    """
    # Before any work: a typo, or numba missing for kernels="numba", fails fast.
    step_engine = resolve_engine(engine, device, kernels)
    X = check_data(net, net.prepare_input(X))
    n = X.shape[0]
    epochs = positive_int(epochs, "epochs", minimum=0)
    batch_size = positive_int(batch_size, "batch_size")
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
        seed = positive_int(seed, "seed", minimum=0)
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
    weights = training_weights(
        row_weights(n, labels, net.sizes[-1], sample_weight, class_weight), train_idx
    )
    # The numbers the element-wise passes walk in this fit (kernels="auto" asks).
    step_engine.plan(train_idx.shape[0] * epochs * sum(net.sizes[1:]))
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
        engine=step_engine,
    )
    return state.history


#: The names ``fit(engine=...)`` and ``glassnet train --engine`` take.
ENGINES = ("numpy", "torch", "auto")


def resolve_engine(
    engine: str | StepEngine | None, device: str | None = None, kernels: str | None = None
) -> StepEngine:
    """The :class:`StepEngine` ``fit`` runs: an instance as given, or one by name
    (:data:`ENGINES`).  ``"auto"`` takes the NumPy engine on the CPU in one process — the
    faster one there for the networks glassnet trains — and PyTorch on another device
    or under torchrun.  A device with the NumPy engine, the NumPy engine under torchrun,
    or an unknown name, is a one-line :class:`GlassnetError`.  ``kernels`` (``"auto"``,
    ``"numpy"``, ``"numba"``; None: the engine's own) is the NumPy engine's
    :mod:`glassnet.kernels` choice; ``"numba"`` with the torch engine is an error."""
    if kernels is not None:
        check_choice(kernels)  # a typo, or numba missing for "numba"
    if isinstance(engine, StepEngine):
        if kernels is not None and isinstance(engine, NumpyEngine):
            engine.kernels = kernels
            engine.use_kernels = kernels == "numba"
        if device is not None:
            raise GlassnetError(
                "expected device only with an engine name (give the engine its device)",
                got=repr(device),
                field="device",
            )
        return engine
    name = "numpy" if engine is None else engine
    if not isinstance(name, str) or name not in ENGINES:
        raise GlassnetError(
            f"expected one of {', '.join(ENGINES)} or a StepEngine",
            got=repr(engine),
            field="engine",
        )
    where = "cpu" if device is None else device
    # Under torchrun each process would train the whole run alone, and all would write.
    parallel = os.environ.get("WORLD_SIZE", "1") not in ("", "0", "1")
    if name == "auto":
        name = "numpy" if where == "cpu" and not parallel else "torch"
    if name == "numpy" and parallel:
        raise GlassnetError(
            "expected engine torch under torchrun (the NumPy engine trains in one process)",
            got=f"numpy with WORLD_SIZE={os.environ.get('WORLD_SIZE')}",
            field="engine",
        )
    if name == "numpy":
        if where != "cpu":
            raise GlassnetError(
                "expected device cpu with the numpy engine (engine torch runs elsewhere)",
                got=repr(device),
                field="device",
            )
        return NumpyEngine("auto" if kernels is None else kernels)
    if kernels == "numba":
        raise GlassnetError(
            "expected kernels auto or numpy with the torch engine (numba's kernels are the "
            "NumPy engine's)",
            got="numba",
            field="kernels",
        )
    from glassnet.training.torch_engine import TorchEngine  # imports torch: only now

    return TorchEngine(where)


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
