"""A trainable model: an engine :class:`~glassnet.network.Network` plus what training
and prediction need — its training state, its preprocessing, its class names and task.

The engine's ``Network`` keeps the layers and the maths (forward, backward, the traced
step).  ``Model`` adds ``fit``, ``predict``, ``predict_proba``, ``evaluate``, ``save``
and ``summary``; :func:`mlp` and :func:`load` (``gn.mlp``, ``gn.load``) return one.

Dependencies point one way: ``network`` (engine) ← ``io`` (file format) ←
``training`` (state, loop) ← ``model``; ``io`` never imports training, training never
imports the model (a model is a :class:`~glassnet.training.TrainableNetwork`), and the
training state reaches a file only through :meth:`TrainState.to_meta` / ``from_meta``.

>>> import numpy as np
>>> net = mlp([2, 3, 2], seed=0, dtype="float64")
>>> net.predict(np.zeros((4, 2))).shape
(4,)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from glassnet import io
from glassnet.errors import GlassnetError
from glassnet.init import init_weights
from glassnet.layers import Layer
from glassnet.network import Network
from glassnet.network import mlp as network_mlp
from glassnet.preprocess import Preprocessing
from glassnet.training import (
    History,
    TrainableNetwork,
    TrainState,
    check_data,
    check_dropout,
    classes_from_output,
    evaluate,
    fit,
    forward_chunked,
)

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from glassnet.activations import Activation
    from glassnet.io import CustomObjects
    from glassnet.losses import Loss

Array = np.ndarray
Task = Literal["classification", "regression"]
TASKS: tuple[str, ...] = ("classification", "regression")


class Model(TrainableNetwork):
    """A network that trains, predicts and saves; see the module docstring.

    Attributes: ``train_state`` (None until trained), ``preprocessing`` (applied to raw
    rows by fit/predict; None: rows go in as they are), ``classes`` (names of the
    classes, one per output unit, or None), ``task`` (``"classification"``,
    ``"regression"`` or None when unknown), ``dropout`` (the rate applied to hidden
    layers while training; prediction, traces and exports never drop).
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        *,
        preprocessing: Preprocessing | None = None,
        classes: list[str | int] | None = None,
        task: Task | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(layers)
        #: Inverted dropout on the hidden layers' outputs, while training only (0: none).
        self.dropout = check_dropout(dropout)
        #: Optimiser, epoch count, random stream and history of :meth:`fit`, kept so a
        #: second ``fit`` continues where the first stopped (None until trained).
        self.train_state: TrainState | None = None
        self.preprocessing = preprocessing
        self.classes = classes
        self.task = task

    @classmethod
    def from_network(cls, net: Network, **options: Any) -> Model:
        """A model around ``net``'s layers (shared, not copied)."""
        return cls(net.layers, **options)

    def __repr__(self) -> str:
        return "Model" + super().__repr__().removeprefix("Network")

    def copy(self, dtype: DTypeLike | None = None) -> Model:
        """A deep copy of the weights (optionally cast), with the same preprocessing,
        classes and task (the training state is not copied)."""
        return Model.from_network(
            super().copy(dtype),
            preprocessing=self.preprocessing,
            classes=self.classes,
            task=self.task,
            dropout=self.dropout,
        )

    # -- inputs --------------------------------------------------------------------------
    def prepare_input(self, X: object) -> Array:
        """Raw rows -> the network's inputs: the preprocessing applied (float64), or X
        itself (not copied) when there is none.

        A DataFrame's columns are taken by name (any order, extra columns ignored; a
        missing one is an error naming it), as ``glassnet predict`` takes a CSV's.  A bare
        array is taken by position; when it looks already standardised (see
        :meth:`Preprocessing.check_scaled`) a ``UserWarning`` says so.  A network of
        feature maps takes images (n, C, H, W) or (n, H, W): the preprocessing reads each
        as its row of pixels, row by row (see :func:`~glassnet.training.check_data`)."""
        pre = self.preprocessing
        if pre is None:
            return np.asarray(X)
        if len(self.layers[0].in_shape) == 3 and not hasattr(X, "columns"):
            images = np.asarray(X)
            if images.ndim > 2:
                # images (n, C, H, W) or (n, H, W): the preprocessing reads each as its
                # row of pixels (row by row), as the file it was fitted on held them
                X = images.reshape(images.shape[0], -1)
        if hasattr(X, "columns") and hasattr(X, "to_numpy"):
            X = _columns_by_name(X, pre)
        message = pre.check_scaled(X)
        if message is not None:
            warnings.warn(message, UserWarning, stacklevel=3)
        return pre.transform(X)

    # -- training and prediction ---------------------------------------------------------
    def fit(self, X: object, y: object, **options: Any) -> History:
        """Train on raw rows X (n, n_features) and y (labels (n,) or targets (n, n_out));
        see :func:`glassnet.training.fit` for the options.  Returns the history."""
        return fit(self, X, y, **options)

    def predict_proba(self, X: object) -> Array:
        """The output layer's values (n, n_out) for raw rows X: class probabilities for
        softmax/sigmoid."""
        return self.forward_inputs(self.prepare_input(X))

    def forward_inputs(self, X: object) -> Array:
        """The output layer's values for inputs already preprocessed (checked, chunked)."""
        return forward_chunked(self, check_data(self, X))

    def predict(self, X: object) -> Array:
        """The predicted class of each row (n,): its name (``classes[i]``) for a model
        that has class names (one from ``glassnet train``: ``"yes"``, not 1), else its
        index; 0/1 for sigmoid; the raw outputs otherwise (regression).
        ``predict_index`` gives the indices whatever the names."""
        p = self.predict_proba(X)
        if self.output_activation.outputs_probabilities and self.task != "regression":
            index = classes_from_output(self, p)
            if self.classes is not None and index.ndim == 1 and len(self.classes) == p.shape[1]:
                return np.asarray(self.classes)[index]
            return index
        return p

    def predict_index(self, X: object) -> Array:
        """Class indices (n,) (what ``fit`` and ``evaluate`` take as labels): argmax for
        softmax, 0/1 for sigmoid."""
        return classes_from_output(self, self.predict_proba(X))

    def evaluate(self, X: object, y: object, loss: str | Loss | None = None) -> dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` (accuracy for classification) on raw rows."""
        return evaluate(self, self.prepare_input(X), y, loss)

    # -- saving --------------------------------------------------------------------------
    def file_contents(self) -> tuple[dict[str, Any], dict[str, Array]]:
        """(``info``, ``extras``) describing this model's preprocessing, classes and task."""
        info: dict[str, Any] = {}
        extras: dict[str, Array] = {}
        if self.preprocessing is not None:
            info, extras = self.preprocessing.to_file()
        if self.classes is not None:
            info["classes"] = list(self.classes)
        if self.task is not None:
            info["task"] = self.task
        if self.dropout:
            info["dropout"] = self.dropout
        return info, extras

    def save(
        self,
        path: str | Path,
        *,
        info: dict[str, Any] | None = None,
        extras: dict[str, Array] | None = None,
        training: bool = True,
    ) -> None:
        """Save weights, preprocessing, classes, task (and the training state, if any,
        unless ``training=False``) to ``path`` (.npz), atomically.  ``info`` and
        ``extras`` add free entries."""
        save(self, path, info=info, extras=extras, training=training)

    # -- description ---------------------------------------------------------------------
    def summary(self) -> str:
        """The layers as a table: units (one sample's output shape for feature maps),
        activation, the shape of its weights (its first parameter) and the parameter count."""
        rows = [("layer", "units", "activation", "weights", "parameters")]
        total = 0
        for index, layer in enumerate(self.layers, start=1):
            params = layer.parameters()
            count = sum(p.size for p in params)
            total += count
            rows.append(
                (
                    str(index),
                    "×".join(map(str, layer.out_shape)),
                    layer.activation.describe(),
                    "×".join(map(str, params[0].shape)) if params else "—",
                    f"{count:,}",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(
                c.ljust(w) if i in (2, 3) else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]
        head = f"inputs: {'×'.join(map(str, self.layers[0].in_shape))}"
        pre = self.preprocessing
        if (
            pre is not None
            and pre.columns is None
            and not pre.mean.any()
            and (pre.scale == pre.scale[0]).all()
        ):
            head += f" (each divided by {pre.scale[0]:g})"  # an image model's pixel scale
        elif pre is not None:
            head += " (standardised)"
        return "\n".join([head, *lines, f"total parameters: {total:,} ({self.dtype})"])


def _columns_by_name(frame: Any, pre: Preprocessing) -> Array:
    """A DataFrame's columns in the model's training order, as an array (n, n_features).
    Default column labels (0, 1, ...) are taken by position."""
    labels = list(frame.columns)
    if labels == list(range(len(labels))):
        return np.asarray(frame.to_numpy())
    names = [str(c) for c in labels]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise GlassnetError(
            "expected distinct column names", got=", ".join(map(repr, twice[:5])), field="X"
        )
    expected = pre.feature_names or []
    missing = [n for n in expected if n not in names]
    dated = sorted({m.rsplit("_", 1)[0] for m in missing if _date_part_of(m, names)})
    if dated:  # the model was trained on a date column's parts: expand it as train did
        import pandas as pd

        from glassnet.tables import expand_dates

        parts = expand_dates(frame.iloc[:, [names.index(n) for n in dated]].set_axis(dated, axis=1))
        frame = pd.concat([frame.set_axis(names, axis=1), parts], axis=1)
        frame = frame.loc[:, ~frame.columns.duplicated(keep="last")]
        names = [str(c) for c in frame.columns]
        missing = [n for n in expected if n not in names]
    if missing:
        raise GlassnetError(
            f"expected the model's {len(expected)} columns (matched by name)",
            got=f"{len(missing)} missing: {', '.join(missing[:10])}"
            + (", ..." if len(missing) > 10 else ""),
            field="X",
        )
    picked = frame.iloc[:, [names.index(n) for n in expected]]
    if all(getattr(t, "kind", "O") in "biuf" for t in picked.dtypes):
        return np.asarray(picked.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.asarray(picked.to_numpy(dtype=object))


def _date_part_of(name: str, names: list[str]) -> bool:
    """True when ``name`` is a date part (``when_month``) of a column in ``names``."""
    base, _, part = name.rpartition("_")
    return part in ("year", "month", "day", "weekday", "hour", "minute") and base in names


# -- building ----------------------------------------------------------------------------
def mlp(
    sizes: Sequence[int],
    *,
    hidden: str | Activation = "relu",
    output: str | Activation = "softmax",
    init: str | Sequence[Any] = "he",
    seed: int | None = 0,
    dtype: str = "float32",
    dropout: float = 0.0,
) -> Model:
    """A multilayer perceptron with layer sizes ``[n_in, n_1, ..., n_L]``, as a
    :class:`Model` (see :func:`glassnet.network.mlp` for the options); ``dropout`` is the
    rate of inverted dropout on the hidden layers while training."""
    net = network_mlp(sizes, hidden=hidden, output=output, init=init, seed=seed, dtype=dtype)
    return Model.from_network(net, dropout=dropout)


def cnn(
    image_shape: Sequence[int],
    n_out: int,
    *,
    channels: Sequence[int] = (16, 32),
    kernel_size: int = 3,
    activation: str | Activation = "relu",
    output: str | Activation = "softmax",
    init: str = "he",
    seed: int | None = 0,
    dtype: str = "float32",
) -> Model:
    """A small convolutional network for images ``image_shape`` (C, H, W), as a
    :class:`Model`: for each entry of ``channels`` a ``kernel_size``×``kernel_size``
    convolution with that many output channels (stride 1, padding kernel_size // 2, so
    an odd kernel keeps the map's size) and ``activation``, then 2×2 max pooling while
    the map is at least 2×2; then flatten and a dense output layer of ``n_out`` units.
    Kernels from ``init`` with fan-in C·kh·kw (as PyTorch counts it), biases zero, drawn
    with ``numpy.random.default_rng(seed)``.

    >>> cnn((1, 8, 8), 10, channels=(4,), seed=0).summary().splitlines()[0]
    'inputs: 1×8×8'
    """
    from glassnet.layers.conv2d import Conv2d
    from glassnet.layers.dense import Dense
    from glassnet.layers.flatten import Flatten
    from glassnet.layers.max_pool2d import MaxPool2d

    shape = tuple(int(n) for n in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise GlassnetError(
            "expected an image shape (channels, height, width)",
            got=repr(tuple(image_shape)),
            field="image_shape",
        )
    if not channels or any(int(c) < 1 for c in channels):
        raise GlassnetError(
            "expected convolution channels like 16,32 (positive whole numbers)",
            got=repr(list(channels)),
            field="channels",
        )
    rng = np.random.default_rng(seed)
    k, pad = int(kernel_size), int(kernel_size) // 2
    layers: list[Layer] = []
    for o in (int(c) for c in channels):
        c = shape[0]
        fan_in = c * k * k
        W = init_weights(init, fan_in, o, rng, np.float64, fan_out=o * k * k)
        W = np.ascontiguousarray(W.T.reshape(o, c, k, k)).astype(dtype)
        conv = Conv2d(W, np.zeros(o, dtype=dtype), shape, padding=pad, activation=activation)
        layers.append(conv)
        shape = conv.out_shape
        if min(shape[1:]) >= 2:
            pool = MaxPool2d(shape, size=2)
            layers.append(pool)
            shape = pool.out_shape
    layers.append(Flatten(shape))
    n_in = int(np.prod(shape))
    W = init_weights(init, n_in, int(n_out), rng, dtype)
    layers.append(Dense(W, np.zeros(int(n_out), dtype=dtype), output))
    return Model(layers)


# -- files -------------------------------------------------------------------------------
@dataclass
class Saved:
    """What a model file holds: the model (with ``train_state`` for a checkpoint), the
    free-form ``info`` and the ``extras`` arrays."""

    network: Model
    info: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Array] = field(default_factory=dict)


def save(
    net: Network,
    path: str | Path,
    *,
    info: dict[str, Any] | None = None,
    extras: dict[str, Array] | None = None,
    training: bool = True,
) -> None:
    """Write ``net`` (a :class:`Model`: with its preprocessing, classes, task and, unless
    ``training=False``, training state) to ``path``, atomically."""
    own_info: dict[str, Any] = {}
    own_extras: dict[str, Array] = {}
    section: dict[str, Any] | None = None
    state_arrays: dict[str, Array] = {}
    if isinstance(net, Model):
        own_info, own_extras = net.file_contents()
        if training and net.train_state is not None:
            section, state_arrays = net.train_state.to_meta()
    io.write(
        path,
        net,
        info={**own_info, **(info or {})},
        extras={**own_extras, **(extras or {})},
        training=section,
        training_arrays=state_arrays,
    )


def load(path: str | Path, *, custom_objects: CustomObjects | None = None) -> Model:
    """The model saved at ``path``: weights, preprocessing, classes, task and (for a
    checkpoint) training state.  ``custom_objects`` maps the name of an activation of
    your own to its class (as Keras's ``load_model`` does)."""
    return load_saved(path, custom_objects=custom_objects).network


def load_saved(path: str | Path, *, custom_objects: CustomObjects | None = None) -> Saved:
    """Everything in a model file, checked: the :class:`Model` and the raw ``info`` and
    ``extras``."""
    raw = io.read(path, custom_objects=custom_objects)
    try:
        model = _model(raw)
    except GlassnetError as err:
        raise err.with_file(str(path)) from None
    return Saved(model, raw.info, raw.extras)


def _model(raw: io.ModelFile) -> Model:
    net, info = raw.network, raw.info
    preprocessing = Preprocessing.from_file(info, raw.extras, net.sizes[0])
    task = info.get("task")
    if task is not None and task not in TASKS:
        raise GlassnetError(
            f"expected one of {', '.join(TASKS)}", got=repr(task)[:60], field="task"
        )
    classes = info.get("classes")
    if classes is not None and (
        not isinstance(classes, list)
        or len(classes) != net.sizes[-1]
        or not all(isinstance(c, str | int) and not isinstance(c, bool) for c in classes)
    ):
        raise GlassnetError(
            f"expected {net.sizes[-1]} class names (one per output)",
            got=repr(classes)[:60],
            field="classes",
        )
    if task is None and classes is not None:
        task = "classification"  # files from before the task was recorded
    model = Model.from_network(
        net,
        preprocessing=preprocessing,
        classes=classes,
        task=task,
        dropout=info.get("dropout", 0.0),
    )
    if raw.training is not None:
        model.train_state = TrainState.from_meta(raw.training, raw.training_arrays, model)
    return model
