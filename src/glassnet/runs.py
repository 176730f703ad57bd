"""A training run on a data set — what ``glassnet train`` does, as a library.

:func:`train_run` loads and splits the data, builds the model (with the data's
standardisation as its preprocessing), trains with a checkpoint after every epoch and
saves the model; or, given a checkpoint, resumes it.  The run's settings are a
:class:`RunSettings` record stored in the model file (``info["train"]``), so
``evaluate`` scores exactly the held-out rows and ``--resume`` continues the same run;
the result is a :class:`RunSummary`.  The command (:mod:`glassnet.commands.train`)
only parses options and prints.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from glassnet import training
from glassnet.data import Dataset, describe_change, load_dataset
from glassnet.errors import GlassnetError
from glassnet.metrics import (
    ClassificationScores,
    RegressionScores,
    add_sklearn_scores,
    classification_scores,
    regression_scores,
)
from glassnet.model import Model, Saved, load_saved, mlp
from glassnet.optim import CosineLR, Optimizer, Schedule, StepLR, get_optimizer
from glassnet.optimizers import optimizer_class
from glassnet.preprocess import Preprocessing
from glassnet.rawtable import RawTable
from glassnet.training import Callback, History, StepEngine, TrainableNetwork

Array = np.ndarray
Task = Literal["classification", "regression"]


@dataclass
class TrainOptions:
    """Every option that defines a run (the CLI's flags, with their defaults).

    The defaults are scikit-learn's ``MLPClassifier()``'s where they have one (100
    hidden units, 200 epochs, Adam at 1e-3, L2 1e-4, every training row used): on the
    bundled data sets they reach its test accuracy (``python bench/quality.py
    --defaults``, docs/train.md)."""

    #: "mlp" (dense layers, --layers its hidden sizes), "cnn" (images: --layers the
    #: channels of its 3×3 convolutions, each followed by 2×2 max pooling; see gn.cnn)
    #: or a spec file (.toml) whose [[layers]] are the network.
    model: str = "mlp"
    layers: list[int] = field(default_factory=lambda: [100])
    activation: str = "relu"
    init: str = "he"
    epochs: int = 200
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 1e-4
    schedule: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    batch_size: int = 64
    #: 0.1 when --patience is given without it.
    validation_split: float = 0.0
    test_size: float = 0.25
    patience: int | None = None
    seed: int = 0
    dtype: str = "float32"
    label: str | None = None
    task: str = "auto"
    features: list[str] | None = None
    drop: list[str] | None = None
    impute: str | None = None
    handle_unknown: str = "error"
    dropout: float = 0.0
    coerce: bool = False
    drop_missing_labels: bool = False
    sep: str | None = None
    decimal: str | None = None
    dates: str = "error"
    #: "balanced": each class weighs n / (k · n_c) in the loss (scikit-learn's rule).
    class_weight: str | None = None
    #: Keep (and save) the weights of the epoch with the best val_loss, not the last.
    save_best: bool = False

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class RunSettings:
    """What the model file records about its run (``info["train"]``)."""

    data: str
    label: str | None
    test_size: float
    seed: int
    batch_size: int
    validation_split: float
    patience: int | None
    #: The run's total epochs (a resumed run continues to it).
    epochs: int | None = None
    task: str = "classification"
    #: Every option of the run, to refuse conflicting ones on --resume (None: older file).
    options: dict[str, Any] | None = None
    #: Training time so far, over every part of the run (resumed parts included).
    seconds: float = 0.0
    features: list[str] | None = None
    drop: list[str] | None = None
    impute: str | None = None
    handle_unknown: str = "error"
    coerce: bool = False
    drop_missing_labels: bool = False
    #: What the data file held when the run began (:func:`glassnet.data.fingerprint`):
    #: evaluate and --resume refuse the file once it changed (None: a bundled set).
    fingerprint: dict[str, Any] | None = None
    sep: str | None = None
    decimal: str | None = None
    dates: str = "error"
    #: Columns left out at training (one value in every row, or none): predict ignores them.
    dropped: list[str] | None = None
    #: The model file the run writes (absolute): --resume without --out writes there.
    out: str | None = None
    class_weight: str | None = None
    save_best: bool = False
    #: ``--schedule plateau``: its best val_loss and epochs without progress so far, so a
    #: resumed run lowers the rate when the uninterrupted one would.
    plateau: dict[str, Any] | None = None
    #: ``--save-best``: the best val_loss so far and its epoch (the weights are the
    #: checkpoint's ``best.*`` extras), so a resumed run knows the whole run's best.
    best: dict[str, Any] | None = None

    def to_info(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_info(cls, settings: object, file: str) -> RunSettings:
        """The settings of a model file, checked (a damaged or hand-made file is refused,
        not half-used)."""
        s = settings if isinstance(settings, dict) else {}

        def whole(v: object, low: int) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= low

        def fraction(v: object, low_open: bool) -> bool:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            return ok and (0 < v < 1 if low_open else 0 <= v < 1)  # type: ignore[operator]

        ok = (
            isinstance(s.get("data"), str)
            and isinstance(s.get("label"), str | None)
            and fraction(s.get("test_size"), True)
            and whole(s.get("seed"), 0)
            and whole(s.get("batch_size"), 1)
            and fraction(s.get("validation_split"), False)
            and (s.get("patience") is None or whole(s.get("patience"), 1))
            and (s.get("epochs") is None or whole(s.get("epochs"), 1))
            and s.get("task", "classification") in ("classification", "regression")
            and isinstance(s.get("options"), dict | None)
            and isinstance(s.get("seconds", 0.0), int | float)
            and all(
                s.get(k) is None
                or (isinstance(s[k], list) and all(isinstance(c, str) for c in s[k]))
                for k in ("features", "drop")
            )
            and s.get("impute") in (None, "mean", "median", "most_frequent")
            and s.get("handle_unknown", "error") in ("error", "ignore")
            and all(isinstance(s.get(k, False), bool) for k in ("coerce", "drop_missing_labels"))
            and isinstance(s.get("fingerprint"), dict | None)
            and (s.get("sep") is None or (isinstance(s["sep"], str) and len(s["sep"]) == 1))
            and s.get("decimal") in (None, ".", ",")
            and s.get("dates", "error") in ("error", "expand", "drop")
            and isinstance(s.get("out"), str | None)
            and s.get("class_weight") in (None, "balanced")
            and isinstance(s.get("save_best", False), bool)
            and isinstance(s.get("plateau"), dict | None)
            and (
                s.get("best") is None
                or (
                    isinstance(s["best"], dict)
                    and isinstance(s["best"].get("val_loss"), int | float)
                    and whole(s["best"].get("epoch"), 1)
                )
            )
            and (
                s.get("dropped") is None
                or (
                    isinstance(s["dropped"], list) and all(isinstance(c, str) for c in s["dropped"])
                )
            )
        )
        if not ok:
            raise GlassnetError(
                "expected the training settings {data, label, test_size, seed, batch_size, "
                "validation_split, patience}",
                got=repr(settings)[:60],
                file=file,
                field="train",
            )
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in s.items() if k in known})


@dataclass
class RunSummary:
    """The result of :func:`train_run`."""

    data: str
    task: Task
    sizes: list[int]
    #: One sample's shape at the input and after each layer (feature maps unflattened).
    shapes: list[list[int]]
    optimizer: dict[str, Any]
    epochs: int
    train_rows: int
    test_rows: int
    #: Training time of the whole run (every resumed part), seconds.
    seconds: float
    last_epoch: dict[str, float]
    test: ClassificationScores | RegressionScores
    model: str
    plot: str | None
    task_note: str | None = None
    #: Early stopping: the epoch it stopped at and the epoch whose weights were kept
    #: (``last_epoch`` is then that kept epoch's logs); None when it ran every epoch.
    stopped_epoch: int | None = None
    kept_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``glassnet train --json``: test scores as ``test_<metric>``."""
        d = {k: v for k, v in asdict(self).items() if k != "test"}
        t = self.test
        if isinstance(t, ClassificationScores):
            d.update(test_loss=t.loss, test_accuracy=t.accuracy)
        else:
            d.update(test_loss=t.loss, test_r2=t.r2, test_mae=t.mae, test_rmse=t.rmse)
        return d


# -- building the run ----------------------------------------------------------------------
def make_optimizer(options: TrainOptions, epochs: int) -> Optimizer:
    """The optimiser the options describe (with its learning-rate schedule)."""
    schedule: Schedule | None = None
    if options.schedule == "step":
        schedule = StepLR(options.step_size, options.gamma)
    elif options.schedule == "cosine":
        schedule = CosineLR(epochs)
    kw: dict[str, Any] = {"lr": options.lr, "weight_decay": options.weight_decay}
    if options.momentum or options.nesterov:
        # Passed only when given, so that --optimizer momentum keeps its default μ.
        if not optimizer_class(options.optimizer).takes("momentum"):
            raise GlassnetError(
                "expected --momentum/--nesterov only with --optimizer sgd or momentum",
                got=options.optimizer,
                field="--momentum",
            )
        if options.momentum:
            kw["momentum"] = options.momentum
        if options.nesterov:
            kw["nesterov"] = options.nesterov
    return get_optimizer(options.optimizer, schedule=schedule, **kw)


def check_training_fits(sizes: list[int], options: TrainOptions) -> None:
    """Refuse, before allocating, a network whose training would not fit in memory:
    weights, gradients, optimiser state and scratch (about 6 copies of the parameters)
    and a batch's activations forward and backward (about 4 per unit)."""
    from itertools import pairwise

    from glassnet.limits import check_fits

    params = sum(a * b + b for a, b in pairwise(sizes))
    itemsize = 4 if options.dtype == "float32" else 8
    batch = max(1, min(options.batch_size, 1 << 20))
    check_fits(itemsize * (6 * params + 4 * batch * sum(sizes)), "training", field="--layers")


#: ``--model``: the kinds of network ``glassnet train`` builds.
MODELS: tuple[str, ...] = ("mlp", "cnn")
#: ``--model cnn`` without ``--layers``: the channels of its two convolutions.
CNN_CHANNELS: list[int] = [16, 32]


def build_model(ds: Dataset, options: TrainOptions) -> Model:
    """A fresh network for ``ds`` — an MLP, or (``options.model == "cnn"``) a small CNN
    for image data — with softmax over its classes, or one identity output for
    regression.  Its preprocessing, stored in the model: the data's standardisation for
    an MLP; for a CNN every pixel divided by one constant, the largest |value| of the
    training part (digits: 16), so images come in within [−1, 1] and a convolution sees
    every position scaled alike."""
    output = "identity" if ds.task == "regression" else "softmax"
    if options.model == "cnn":
        model = _build_cnn(ds, options, output)
    elif options.model not in MODELS:
        model = _build_from_file(ds, options)
    else:
        sizes = [ds.n_features, *options.layers, ds.n_outputs]
        check_training_fits(sizes, options)
        model = mlp(
            sizes,
            hidden=options.activation,
            output=output,
            init=options.init,
            seed=options.seed,
            dtype=options.dtype,
            dropout=options.dropout,
        )
        model.preprocessing = ds.preprocessing or Preprocessing(ds.mean, ds.scale, ds.feature_names)
    if ds.task == "regression":
        # The output starts at the mean target (R² 0), not at 0: targets far from 0
        # (hundreds) would otherwise take most of the epochs just to be reached.
        model.layers[-1].b[:] = np.mean(ds.y_train)  # type: ignore[attr-defined]
    model.classes = list(ds.classes) if ds.task == "classification" else None
    model.task = ds.task
    model.train_state = training.TrainState(
        optimizer=make_optimizer(options, options.epochs),
        loss="mse" if ds.task == "regression" else "cross_entropy",
        seed=options.seed,
        rng=training.shuffle_rng(options.seed),
    )
    return model


def _pixel_scale(ds: Dataset) -> Preprocessing:
    """Every input divided by one constant, the training part's largest |value| (an
    image model's preprocessing, see :func:`build_model`)."""
    # an image data set's raw rows are numbers (an .npz's X, or digits), never a table
    raw = np.asarray(ds.X_train_raw if ds.X_train_raw is not None else ds.X_train)
    peak = float(np.abs(raw).max()) if raw.size else 0.0
    n = ds.n_features
    return Preprocessing(np.zeros(n), np.full(n, peak if peak > 0 else 1.0), ds.feature_names)


def _build_from_file(ds: Dataset, options: TrainOptions) -> Model:
    """``--model FILE.toml``: the network of a spec file's ``[[layers]]``, for the
    data's images (C, H, W) when the first layer takes feature maps, else its rows;
    scaled as an image model, or standardised, accordingly."""
    from glassnet.spec import layers_from_file

    path = options.model
    if not path.lower().endswith(".toml"):
        raise GlassnetError(
            f"expected one of {', '.join(MODELS)} or a spec file (.toml) with [[layers]]",
            got=repr(path),
            field="--model",
        )
    if options.dropout:
        raise GlassnetError(
            "expected no --dropout with a --model file (a dropout layer in it says where)",
            got=f"--dropout {options.dropout:g}",
            field="--dropout",
        )
    net, unused = layers_from_file(
        path, ds.n_features, ds.image_shape, seed=options.seed, init=options.init
    )
    images = len(net.layers[0].in_shape) == 3
    if net.sizes[-1] != ds.n_outputs:
        raise GlassnetError(
            f"expected a last layer of {ds.n_outputs} units (one per "
            f"{'class' if ds.task == 'classification' else 'target'} of the data)",
            got=str(net.sizes[-1]),
            file=path,
            field="layers",
        )
    if unused:
        ds.notes.append(
            f"{Path(path).name}: its [[layers]] are trained; {', '.join(unused)} "
            "are not used (the data and the options give them)"
        )
    model = Model(net.copy(options.dtype).layers)
    model.preprocessing = (
        _pixel_scale(ds)
        if images
        else ds.preprocessing or Preprocessing(ds.mean, ds.scale, ds.feature_names)
    )
    return model


def _build_cnn(ds: Dataset, options: TrainOptions, output: str) -> Model:
    """``--model cnn``: :func:`glassnet.model.cnn` on ``ds``'s images, with the pixels
    scaled by one stored constant (see :func:`build_model`)."""
    from glassnet.limits import check_fits
    from glassnet.model import cnn

    if ds.image_shape is None:
        raise GlassnetError(
            "expected image data for --model cnn (digits, or an .npz whose X is "
            "(N, C, H, W) or (N, H, W))",
            got=f"a table of {ds.n_features} columns",
            field="--model",
        )
    if options.dropout:
        raise GlassnetError(
            "expected no --dropout with --model cnn (dropout applies to dense hidden layers)",
            got=f"--dropout {options.dropout:g}",
            field="--dropout",
        )
    model = cnn(
        ds.image_shape,
        ds.n_outputs,
        channels=options.layers,
        activation=options.activation,
        output=output,
        init=options.init,
        seed=options.seed,
        dtype=options.dtype,
    )
    itemsize = 4 if options.dtype == "float32" else 8
    batch = max(1, min(options.batch_size, 1 << 20))
    params = sum(p.size for p in model.parameters())
    # weights, gradients, optimiser state; per row: each layer's maps about 4 times and
    # each convolution's windows (C·kh·kw numbers a position) twice
    per_row = sum(4 * layer.n_out + 18 * layer.n_in for layer in model.layers)
    check_fits(itemsize * (6 * params + batch * per_row), "training", field="--layers")
    model.preprocessing = _pixel_scale(ds)
    return model


def dataset_of(settings: RunSettings) -> Dataset:
    """The data set and split a run used (the same seed and test share), refused when the
    file changed since (its held-out rows would be other rows)."""
    ds = load_dataset(
        settings.data,
        label=settings.label,
        test_size=settings.test_size,
        seed=settings.seed,
        task=settings.task,
        features=settings.features,
        drop=settings.drop,
        impute=settings.impute,
        handle_unknown="ignore" if settings.handle_unknown == "ignore" else "error",
        coerce=settings.coerce,
        drop_missing_labels=settings.drop_missing_labels,
        sep=settings.sep,
        decimal=settings.decimal,
        dates=settings.dates,
    )
    then, now = settings.fingerprint, ds.fingerprint
    if then is not None and now is not None:
        change = describe_change(then, now)
        if change is not None:
            raise GlassnetError(
                "expected the file as it was when the model was trained (its test part is "
                "rebuilt from it); to score every row of the new file, copy it to another "
                "name and pass that with --data",
                got=change,
                file=settings.data,
            )
    return ds


def load_trained(path: str) -> tuple[Saved, RunSettings | None]:
    """A model file written by ``glassnet train``: the model (with its preprocessing and
    classes or regression task) and its run settings (None if it records none)."""
    saved = load_saved(path)
    model = saved.network
    if model.preprocessing is None or (model.classes is None and model.task != "regression"):
        raise GlassnetError(
            "expected a model written by glassnet train (with its classes and scaling)",
            got="a model without them",
            file=path,
        )
    if not isinstance(saved.info.get("label"), str | None):
        raise GlassnetError(
            "expected a column name or null",
            got=repr(saved.info.get("label"))[:60],
            file=path,
            field="label",
        )
    settings = saved.info.get("train")
    return saved, None if settings is None else RunSettings.from_info(settings, path)


def same_source(a: str, b: str) -> bool:
    """True when two data sources name the same set or file."""
    if a == b:
        return True
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _normalised(name: str, value: object) -> object:
    return list(value) if name == "layers" and isinstance(value, list | tuple) else value


def resume_conflicts(settings: RunSettings, given: dict[str, Any]) -> list[str]:
    """The options given with ``--resume`` that differ from the checkpoint's run (all
    but ``--epochs``; for a checkpoint that does not record its options, every one)."""
    stored = settings.options
    conflicts = []
    for name, value in given.items():
        if name == "epochs":
            continue
        if stored is None or _normalised(name, stored.get(name)) != _normalised(name, value):
            conflicts.append(name)
    return conflicts


# -- training ------------------------------------------------------------------------------
class Plateau(Callback):
    """``--schedule plateau``: multiply the learning rate by ``factor`` after ``patience``
    epochs in a row without a lower ``val_loss`` (as PyTorch's ``ReduceLROnPlateau``
    with threshold 0).  The new rate takes effect from the next epoch; its state lives in
    the run's settings (so in every checkpoint)."""

    def __init__(self, settings: RunSettings, factor: float, patience: int) -> None:
        if not (isinstance(factor, int | float) and 0 < factor < 1):
            raise GlassnetError("expected a factor in (0, 1)", got=repr(factor), field="--gamma")
        self.settings, self.factor, self.patience = settings, float(factor), int(patience)
        state = settings.plateau or {}
        self.best = float(state.get("best", math.inf))
        self.wait = int(state.get("wait", 0))

    def on_epoch_end(
        self, net: TrainableNetwork, epoch: int, logs: dict[str, float]
    ) -> bool | None:
        value = logs.get("val_loss", math.inf)
        if value < self.best:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience and net.train_state is not None:
                net.train_state.optimizer.lr *= self.factor
                self.wait = 0
        best = self.best if math.isfinite(self.best) else None
        self.settings.plateau = {"best": best, "wait": self.wait}
        return None


class BestWeights(Callback):
    """``--save-best``: copies the weights at each new best ``val_loss`` and puts the best
    back when training ends, so the saved model is the best epoch's, not the last one's.

    The best so far is part of the run's state: its score and epoch in the settings
    (``settings.best``), its weights in ``extras`` (``best.0``, ``best.1``, ... in
    ``parameters()`` order), which every checkpoint writes — so a resumed run compares
    against the whole run's best, not only the epochs after it resumed."""

    def __init__(self, settings: RunSettings, extras: dict[str, Array]) -> None:
        self.settings, self.extras = settings, extras
        state = settings.best or {}
        self.best = float(state.get("val_loss", math.inf))
        self.epoch = int(state.get("epoch", 0))
        kept = [extras[k] for k in _best_keys(extras)]
        self._params: list[Array] | None = [a.copy() for a in kept] if kept else None

    def on_train_begin(self, net: TrainableNetwork, epochs: int) -> None:
        params = net.parameters()
        if self._params is not None and (
            len(self._params) != len(params)
            or any(a.shape != p.shape for a, p in zip(self._params, params, strict=False))
        ):
            raise GlassnetError(
                "expected the best weights to match the network",
                got="other shapes",
                field="best",
            )

    def on_epoch_end(
        self, net: TrainableNetwork, epoch: int, logs: dict[str, float]
    ) -> bool | None:
        value = logs.get("val_loss", math.inf)
        if value < self.best:
            self.best, self.epoch = value, epoch
            self._params = [p.copy() for p in net.parameters()]
            for k in _best_keys(self.extras):
                del self.extras[k]
            self.extras.update({f"best.{i}": p for i, p in enumerate(self._params)})
            self.settings.best = {"val_loss": value, "epoch": epoch}
        return None

    def on_train_end(self, net: TrainableNetwork, history: History) -> None:
        if self._params is not None:
            for p, kept in zip(net.parameters(), self._params, strict=True):
                p[...] = kept


def _best_keys(extras: dict[str, Array]) -> list[str]:
    """The ``best.i`` keys of a checkpoint's extras, in parameter order."""
    keys = [k for k in extras if k.startswith("best.") and k[5:].isdigit()]
    return sorted(keys, key=lambda k: int(k[5:]))


class _Clock(Callback):
    """Keeps ``settings.seconds`` (saved with every checkpoint) the run's whole time."""

    def __init__(self, settings: RunSettings, info: dict[str, Any]) -> None:
        self.settings, self.info = settings, info
        self.base = settings.seconds
        self.start = time.perf_counter()

    def on_epoch_end(
        self, net: TrainableNetwork, epoch: int, logs: dict[str, float]
    ) -> bool | None:
        self.settings.seconds = self.base + time.perf_counter() - self.start
        self.info["train"] = self.settings.to_info()
        return None


@dataclass
class Run:
    """A run ready to train: the model, its data, settings and the epochs to do now."""

    model: Model
    ds: Dataset
    settings: RunSettings
    info: dict[str, Any]
    remaining: int
    #: Arrays every checkpoint of the run carries (``--save-best``'s best weights).
    extras: dict[str, Array] = field(default_factory=dict)


def prepare_run(data: str | None, resume: str | None, given: dict[str, Any]) -> Run:
    """A fresh run on ``data`` with the ``given`` options (others at their defaults), or
    the run of the checkpoint ``resume``; every option checked before anything is
    trained or written."""
    if resume:
        return _prepare_resume(data, resume, given)
    if not data:
        raise GlassnetError("expected --data (or --resume CKPT)", got="nothing", field="--data")
    needs_val = "patience" in given or given.get("save_best") or given.get("schedule") == "plateau"
    if needs_val and "validation_split" not in given:
        given = {**given, "validation_split": 0.1}  # early stopping needs held-out rows
    options = TrainOptions(**given)
    if options.model not in MODELS and not options.model.lower().endswith(".toml"):
        raise GlassnetError(
            f"expected one of {', '.join(MODELS)} or a spec file (.toml) with [[layers]]",
            got=repr(options.model),
            field="--model",
        )
    if options.model == "cnn" and "layers" not in given:
        options.layers = list(CNN_CHANNELS)
    if not 0 <= options.validation_split < 1:  # before the data is read and its notes said
        raise GlassnetError(
            "expected a fraction in [0, 1)",
            got=repr(options.validation_split),
            field="--validation-split",
        )
    ds = load_dataset(
        data,
        label=options.label,
        test_size=options.test_size,
        seed=options.seed,
        task=options.task,
        features=options.features,
        drop=options.drop,
        impute=options.impute,
        handle_unknown="ignore" if options.handle_unknown == "ignore" else "error",
        coerce=options.coerce,
        drop_missing_labels=options.drop_missing_labels,
        sep=options.sep,
        decimal=options.decimal,
        dates=options.dates,
    )
    if options.patience is not None and options.validation_split <= 0:
        raise GlassnetError(
            "expected a validation split for early stopping (--validation-split > 0)",
            got=f"--patience {options.patience} with --validation-split "
            f"{options.validation_split:g}",
            field="--patience",
        )
    if options.schedule == "plateau" and options.validation_split <= 0:
        raise GlassnetError(
            "expected a validation split to watch val_loss (--validation-split > 0)",
            got=f"--schedule plateau with --validation-split {options.validation_split:g}",
            field="--schedule",
        )
    if options.save_best and options.validation_split <= 0:
        raise GlassnetError(
            "expected a validation split to tell the best epoch (--validation-split > 0)",
            got=f"--save-best with --validation-split {options.validation_split:g}",
            field="--save-best",
        )
    if options.class_weight is not None and ds.task != "classification":
        raise GlassnetError(
            "expected a classification task for class weights",
            got=f"--class-weight {options.class_weight} on a {ds.task} target",
            field="--class-weight",
        )
    model = build_model(ds, options)
    settings = RunSettings(
        data=data,
        label=ds.label if ds.label != "target" else None,
        test_size=options.test_size,
        seed=options.seed,
        batch_size=options.batch_size,
        validation_split=options.validation_split,
        patience=options.patience,
        epochs=options.epochs,
        task=ds.task,
        options=asdict(options),
        features=options.features,
        drop=options.drop,
        impute=options.impute,
        handle_unknown=options.handle_unknown,
        coerce=options.coerce,
        drop_missing_labels=options.drop_missing_labels,
        fingerprint=ds.fingerprint,
        sep=options.sep,
        decimal=options.decimal,
        dates=options.dates,
        dropped=ds.dropped or None,
        class_weight=options.class_weight,
        save_best=options.save_best,
    )
    info = {"train": settings.to_info(), "label": ds.label, "data_name": ds.name}
    return Run(model, ds, settings, info, options.epochs)


def _prepare_resume(data: str | None, resume: str, given: dict[str, Any]) -> Run:
    saved, settings = load_trained(resume)
    model = saved.network
    if model.train_state is None or settings is None:
        raise GlassnetError(
            "expected a checkpoint written by glassnet train",
            got="a model without training state",
            file=resume,
        )
    if data and not same_source(data, settings.data):
        raise GlassnetError(
            f"expected the checkpoint's data ({settings.data})", got=repr(data), field="--data"
        )
    conflicts = resume_conflicts(settings, given)
    if conflicts:
        flags = ", ".join("--" + c.replace("_", "-") for c in conflicts)
        raise GlassnetError(
            "expected no options that change the checkpoint's run (settings come from it; "
            "only --epochs may raise its total)",
            got=flags,
            field="--resume",
        )
    done = model.train_state.epoch
    total = given.get("epochs", settings.epochs)
    if total is None:
        raise GlassnetError(
            f"expected --epochs (this checkpoint does not record its total; {done} done)",
            got="nothing",
            field="--epochs",
        )
    if total <= done:
        raise GlassnetError(
            f"expected --epochs above the {done} epochs the checkpoint has done",
            got=str(total),
            field="--epochs",
        )
    settings.epochs = total
    ds = dataset_of(settings)
    info = dict(saved.info)
    info["train"] = settings.to_info()
    extras = {k: saved.extras[k] for k in _best_keys(dict(saved.extras))}
    return Run(model, ds, settings, info, total - done, extras)


def train_run(
    run: Run,
    *,
    out: str,
    checkpoint: str,
    keep_checkpoint: bool,
    plot: str | None = None,
    progress: bool = True,
    engine: str | StepEngine | None = None,
) -> RunSummary:
    """Train ``run`` (a checkpoint to ``checkpoint`` after every epoch), save the model to
    ``out`` and score it on the test part.  A failed run leaves no file of its own
    behind — except the checkpoint of a run that diverged or was interrupted, which is
    what ``--resume`` continues from.  ``engine``: the step engine ``fit`` runs (its
    name or an instance; default numpy) — how the run trains, not part of what it is.
    In a data-parallel run (an engine whose ``rank`` is not 0) nothing is written: no
    checkpoint, model file, plot or progress — rank 0 writes them."""
    model, ds, settings = run.model, run.ds, run.settings
    assert model.train_state is not None and ds.X_train_raw is not None
    assert ds.X_test_raw is not None
    clock = _Clock(settings, run.info)
    if isinstance(engine, str) or engine is None:
        engine = training.resolve_engine(engine)
    # In a data-parallel run every process trains the same weights; only rank 0 writes.
    writes = engine.rank == 0
    options = settings.options or {}
    callbacks: list[Callback] = [clock]
    if writes:
        # Looked up in the module at run time (tests replace training.Checkpoint).
        callbacks.append(training.Checkpoint(checkpoint, info=run.info, extras=run.extras))
    if options.get("schedule") == "plateau":  # before the clock: the checkpoint keeps its state
        callbacks.insert(
            0, Plateau(settings, options.get("gamma", 0.1), options.get("step_size", 10))
        )
    if progress and writes:
        callbacks.append(training.ProgressBar())
    # Our own EarlyStopping (last, where fit would put it) so the summary can say which
    # epoch's weights were kept.
    stopper = training.EarlyStopping(settings.patience) if settings.patience else None
    if stopper is not None:
        callbacks.append(stopper)
    best = BestWeights(settings, run.extras) if settings.save_best else None
    if best is not None:  # before the clock and the checkpoint: they write its state
        callbacks.insert(0, best)
    existed = os.path.exists(checkpoint)
    try:
        model.fit(
            ds.X_train_raw,
            ds.y_train,
            epochs=run.remaining,
            batch_size=settings.batch_size,
            validation_split=settings.validation_split,
            callbacks=callbacks,
            class_weight=settings.class_weight,
            engine=engine,
        )
    except GlassnetError as err:
        if err.field == "loss" and os.path.exists(checkpoint):  # diverged: say what is kept
            raise GlassnetError(
                f"{err.expected}; {checkpoint} holds epoch {model.train_state.epoch}",
                got=err.got,
                field="loss",
            ) from None
        if writes and not existed and os.path.exists(checkpoint):
            os.unlink(checkpoint)  # nothing of a failed run stays behind
        raise
    clock.on_epoch_end(model, model.train_state.epoch, {})
    test = score(model, ds.X_test_raw, ds.y_test, ds.task)
    if writes:
        model.save(out, info=run.info)
    if (
        writes
        and not keep_checkpoint
        and os.path.exists(checkpoint)
        and not same_source(checkpoint, out)
    ):
        os.unlink(checkpoint)  # the model file holds the same state; a default checkpoint goes
    history: History = model.train_state.history
    last = history.last()
    kept = None
    if best is not None and best.epoch:
        kept = best.epoch
        at = list(history.epoch).index(kept)
        last = {k: v[at] for k, v in history.history.items() if len(v) > at}
    elif stopper is not None and stopper.stopped_epoch and stopper.best_epoch:
        kept = stopper.best_epoch
        at = list(history.epoch).index(kept)
        last = {k: v[at] for k, v in history.history.items() if len(v) > at}
    if plot and writes:
        from glassnet.plots import plot_history

        truth = None
        if ds.task == "regression" and ds.n_outputs == 1:
            truth = (ds.y_test, model.predict(ds.X_test_raw))
        title = f"{ds.name}: {model.shape_text}"
        plot_history(history, plot, title=title, truth=truth)
    return RunSummary(
        data=ds.name,
        task=ds.task,
        sizes=model.sizes,
        shapes=[list(x) for x in model.shapes],
        optimizer=model.train_state.optimizer.config(),
        epochs=model.train_state.epoch,
        train_rows=int(ds.X_train_raw.shape[0]),
        test_rows=int(ds.X_test_raw.shape[0]),
        seconds=settings.seconds,
        last_epoch=last,
        test=test,
        model=out,
        plot=plot,
        task_note=ds.task_note,
        stopped_epoch=stopper.stopped_epoch if stopper is not None else None,
        kept_epoch=kept,
    )


def score(
    model: Model, X_raw: Array | RawTable, y: Array, task: str
) -> ClassificationScores | RegressionScores:
    """The model's scores on raw rows X_raw with true labels (or targets) y."""
    if task == "regression":
        return regression_scores(y, model.predict(X_raw))
    loss = model.evaluate(X_raw, y)["loss"]
    proba = model.predict_proba(X_raw)
    predicted = training.classes_from_output(model, proba)  # what model.predict gives
    scores = classification_scores(np.asarray(y), predicted, loss, list(model.classes or []))
    add_sklearn_scores(scores, np.asarray(y), predicted, proba)
    return scores


# -- rows for a trained model --------------------------------------------------------------
@dataclass
class Rows:
    """Rows of a file, in the model's column order: raw features, raw labels (empty when
    the file has none) and the ``--id-column`` values (None when not asked for)."""

    X: Array | RawTable
    labels: Array
    ids: list[str] | None
    #: Where each row is in the file, for messages (see :func:`glassnet.preprocess.line_of`).
    lines: Any = None


def rows_for_model(
    model: Model,
    path: str,
    *,
    label: str | None,
    id_column: str | None = None,
    header: bool = True,
    need_label: bool = False,
    ignore: list[str] | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    dates: str = "error",
) -> Rows:
    """The rows of ``path`` the model can take: a CSV's columns matched by header name in
    any order (the label, ``id_column`` and the ``ignore`` columns — those dropped at
    training — may be there too; with ``header=False`` the columns are in training
    order), an NPZ's X as it is.  A file without some of the model's columns gets
    "columns don't match: expected …, got … missing"; ``--id-column`` cells are copied as
    written."""
    from glassnet.data import read_rows

    pre = model.preprocessing
    expected = pre.feature_names if pre is not None else None
    csv_file = path.lower().endswith(".csv")
    if not csv_file or not header or expected is None:
        if id_column is not None and (not csv_file or not header):
            raise GlassnetError(
                "expected a CSV file with a header for --id-column", got=path, field="--id-column"
            )
        t = read_rows(
            path,
            label=label,
            need_label=need_label,
            header=header,
            sep=sep,
            decimal=decimal,
            dates=dates,
        )
        X = t.X
        if X.shape[1] != model.sizes[0] and (pre is None or X.shape[1] != pre.n_features):
            raise GlassnetError(
                f"expected {pre.n_features if pre else model.sizes[0]} feature columns "
                "(as the model was trained on)",
                got=str(X.shape[1]),
                file=path,
            )
        return Rows(X, t.labels, None, t.where)
    t = read_rows(
        path,
        label=label,
        need_label=need_label,
        id_column=id_column,
        sep=sep,
        decimal=decimal,
        dates=dates,
    )
    X, names = t.X, t.names
    extra = [n for n in names if n not in expected and n != id_column and n not in (ignore or [])]
    missing = [n for n in expected if n not in names]
    if missing or extra:
        what = []
        if missing:
            what.append(f"{len(missing)} missing: {', '.join(missing[:10])}")
        if extra:
            what.append(f"{len(extra)} the model does not know: {', '.join(extra[:10])}")
        raise GlassnetError(
            f"columns don't match: expected {', '.join(expected[:8])}"
            f"{', ...' if len(expected) > 8 else ''} ({len(expected)} columns)",
            got="; ".join(what),
            file=path,
        )
    X = X[:, [names.index(n) for n in expected]]  # training order
    return Rows(X, t.labels, t.ids, t.where)
