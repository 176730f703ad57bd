"""Network spec files (TOML): a network, one sample or batch, a target, a loss, a rate.

Format (see docs/spec.md)::

    loss = "binary_cross_entropy"   # cross_entropy | binary_cross_entropy | mse | half_sse
    lr = 0.1
    input = [[0.5, -1.0]]           # one sample as a flat list, or a batch as rows
    target = [[1.0, 0.0]]
    update_bias = true              # optional; false keeps biases fixed
    seed = 0                        # optional; for layers given as `units`
    init = "xavier"                 # optional default initialiser for `units` layers
    steps = 1                       # optional: N steps in a row, each traced
    after = false                   # optional: the forward pass and loss after the update
    layout = "from_to"              # optional: "to_from" reads weights as W[to][from]
    bias = "row0"                   # optional: each layer's bias is row 0 of its weights

    [[layers]]
    weights = [[0.2, -0.4, 0.1], [0.7, 0.3, -0.5]]   # [from][to]: 2 inputs -> 3 units
    bias = [0.1, 0.1, 0.1]
    activation = "tanh"

    [[layers]]
    units = 2                       # instead of weights: random weights from `init`
    activation = "sigmoid"

The name ``seed`` (wherever a spec path is accepted) is the seed tutorial's network,
shipped inside the package.
"""

from __future__ import annotations

import stat
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.init import INITS
from glassnet.layers import Layer, layer_class
from glassnet.limits import (
    MAX_SPEC_BATCH,
    MAX_STEPS,
    MAX_TEXT_BYTES,
    check_fits,
    check_nesting,
)
from glassnet.losses import LOSSES, get_loss
from glassnet.network import Network
from glassnet.optimizers import Optimizer, optimizer_from_spec, spec_keys
from glassnet.specvalues import LAYOUTS, LayerContext, weights_from_layout
from glassnet.specvalues import array as _array
from glassnet.specvalues import kind as _kind
from glassnet.specvalues import matrix as _matrix
from glassnet.specvalues import number as _number
from glassnet.specvalues import require as _require
from glassnet.step import StepGraph
from glassnet.trace import Trace, trace_steps

if TYPE_CHECKING:
    from glassnet.preprocess import Preprocessing
    from glassnet.trace import Trace

Array = np.ndarray

#: Bundled examples, by name.
EXAMPLES: tuple[str, ...] = ("seed", "conv")
TOP_KEYS = {
    "model",
    "loss",
    "lr",
    "input",
    "target",
    "layers",
    "seed",
    "init",
    "update_bias",
    "name",
    "description",
    "values",
    # a tutorial's printed numbers, which explain notes where they differ (check/errata.py)
    "published",
    "steps",
    "after",
    "layout",
    "bias",
    # the optimiser and its settings: optimizer, momentum, nesterov, beta1, beta2, eps,
    # weight_decay, ... (each optimiser declares its own; glassnet.optimizers)
    *spec_keys(),
}
__all__ = ["LAYOUTS", "Spec", "load_spec", "parse_spec", "weights_from_layout"]


@dataclass
class Spec:
    """A parsed spec: the network (float64) and the step to run on it."""

    network: Network
    x: Array
    y: Array
    loss: str
    lr: float
    update_bias: bool = True
    path: str = "<spec>"
    name: str = ""
    description: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    #: ``steps = N``: N steps in a row; ``after``: the forward pass and loss after them.
    steps: int = 1
    after: bool = False
    #: How weights are written: "from_to" (W[from][to]) or "to_from" (W[to][from]).
    layout: str = "from_to"
    #: The bias folded into the weights as row 0 (the weight of a constant input 1).
    bias_row0: bool = False
    #: ``optimizer = "adam"`` (and its settings): the update rule; None for plain
    #: gradient descent with ``lr`` (no optimizer named).
    optimizer: Optimizer | None = None
    #: A ``model = "..."`` file's stored preprocessing: ``x`` is then the raw row, and
    #: the step starts by turning it into the network's input.
    preprocessing: Preprocessing | None = None

    @property
    def network_input(self) -> Array:
        """The network's input: ``x``, after the model's preprocessing if it has one."""
        if self.preprocessing is None:
            return self.x
        return self.preprocessing.transform(self.x)

    def graph(self) -> StepGraph:
        """The step graph of this spec's step (its layers, loss, rate, optimiser)."""
        return StepGraph(
            loss=get_loss(self.loss),
            lr=self.lr,
            update_bias=self.update_bias,
            layers=self.network.layers,
            optimizer=self.optimizer,
        )

    def trace(self, round_to: int | None = None) -> Trace:
        """Run the spec's step (or ``steps`` steps, and the forward pass ``after``) and
        return its trace (see :func:`glassnet.trace.trace_steps`); a model's stored
        preprocessing is recorded as the step's first part."""
        try:
            # One step is trace_steps with steps=1 (it adds nothing then).
            tr = trace_steps(
                self.network,
                self.network_input,
                self.y,
                loss=self.loss,
                lr=self.lr,
                update_bias=self.update_bias,
                round_to=round_to,
                steps=self.steps,
                after=self.after,
                optimizer=self.optimizer,
            )
            if self.preprocessing is not None:
                tr.preprocessing = self.preprocessing.record(self.x)
            return tr
        except GlassnetError as err:
            raise err.with_file(self.path) from None


def example_path(name: str) -> Path:
    """Path of a bundled example spec (``"seed"``)."""
    return Path(str(resources.files("glassnet") / "examples" / f"{name}.toml"))


def load_spec(source: str | Path, *, extra_keys: set[str] | None = None) -> Spec:
    """Load a spec file, or a bundled example by name (``"seed"``)."""
    name = str(source)
    path = example_path(name) if name in EXAMPLES else Path(name)
    label = name if name in EXAMPLES else str(path)
    text = read_text(path, label, "a spec file (TOML) or 'seed'")
    return parse_spec(text, label, extra_keys=extra_keys)


def read_text(path: Path, label: str, kind: str) -> str:
    """The UTF-8 text of a hand-written file, refused (GlassnetError naming ``label``) when
    it is missing, a folder, not a regular file (a device or pipe could block or never
    end), larger than :data:`~glassnet.limits.MAX_TEXT_BYTES`, or not UTF-8."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise GlassnetError(f"expected {kind}", got="no such file", file=label) from None
    except OSError as err:
        raise GlassnetError(
            "expected a readable file", got=err.strerror or str(err), file=label
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise GlassnetError(f"expected {kind}", got="a folder", file=label)
    if not stat.S_ISREG(info.st_mode):
        raise GlassnetError(f"expected {kind}", got="not a regular file", file=label)
    if info.st_size > MAX_TEXT_BYTES:
        raise GlassnetError(
            f"expected at most {MAX_TEXT_BYTES} bytes", got=f"{info.st_size}", file=label
        )
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TEXT_BYTES + 1)  # the file may have grown since stat
    except OSError as err:
        raise GlassnetError(
            "expected a readable file", got=err.strerror or str(err), file=label
        ) from None
    if len(data) > MAX_TEXT_BYTES:
        raise GlassnetError(f"expected at most {MAX_TEXT_BYTES} bytes", got="more", file=label)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise GlassnetError(
            "expected UTF-8 text (TOML)", got="undecodable bytes", file=label
        ) from None


def parse_spec(text: str, label: str = "<spec>", *, extra_keys: set[str] | None = None) -> Spec:
    """Parse spec text; every problem is a :class:`GlassnetError` naming ``label``."""
    check_nesting(text, file=label)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise GlassnetError("expected valid TOML", got=str(err), file=label) from None
    try:
        return _build(data, label, extra_keys or set())
    except GlassnetError as err:
        raise err.with_file(label) from None


def _build(data: dict[str, Any], label: str, extra_keys: set[str]) -> Spec:
    unknown = sorted(set(data) - TOP_KEYS - extra_keys)
    if unknown:
        raise GlassnetError(
            f"expected only the fields {', '.join(sorted(TOP_KEYS))}",
            got=f"unknown field {unknown[0]!r}",
            field=unknown[0],
        )
    loss = _require(data, "loss")
    if not isinstance(loss, str) or loss not in LOSSES:
        raise GlassnetError(f"expected one of {', '.join(LOSSES)}", got=repr(loss), field="loss")
    lr = _number(_require(data, "lr"), "lr")
    if lr <= 0:
        raise GlassnetError("expected a positive number", got=repr(lr), field="lr")
    optimizer = None
    settings = {k: data[k] for k in spec_keys() if k in data}
    if settings:
        # An optimiser is named (or one of its settings given): it owns lr too.
        optimizer = optimizer_from_spec({**settings, "lr": lr})
    update_bias = data.get("update_bias", True)
    if not isinstance(update_bias, bool):
        raise GlassnetError("expected true or false", got=repr(update_bias), field="update_bias")
    x = _input(_require(data, "input"))
    y = _matrix(_require(data, "target"), "target", rows_ok=True)
    if x.shape[0] > MAX_SPEC_BATCH:
        raise GlassnetError(
            f"expected at most {MAX_SPEC_BATCH} samples", got=str(x.shape[0]), field="input"
        )
    if y.shape[0] != x.shape[0]:
        raise GlassnetError(
            f"expected as many target rows as input rows ({x.shape[0]})",
            got=str(y.shape[0]),
            field="target",
        )
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise GlassnetError("expected a whole number >= 0", got=repr(seed), field="seed")
    steps = data.get("steps", 1)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise GlassnetError(
            f"expected a whole number of steps from 1 to {MAX_STEPS}",
            got=repr(steps),
            field="steps",
        )
    after = data.get("after", False)
    if not isinstance(after, bool):
        raise GlassnetError("expected true or false", got=_kind(after), field="after")
    layout = data.get("layout", "from_to")
    if layout not in LAYOUTS:
        raise GlassnetError(
            f"expected one of {', '.join(LAYOUTS)}", got=_kind(layout), field="layout"
        )
    bias_mode = data.get("bias", None)
    if bias_mode not in (None, "row0"):
        raise GlassnetError(
            'expected "row0" (the bias as row 0 of each weight matrix)',
            got=_kind(bias_mode),
            field="bias",
        )
    default_init = data.get("init", "xavier")
    if default_init not in INITS:
        raise GlassnetError(
            f"expected one of {', '.join(INITS)}", got=repr(default_init), field="init"
        )
    preprocessing = None
    if "model" in data:
        network, preprocessing = _model_network(data, label, x.shape[1:])
    else:
        network = _layers_network(
            data, x.shape[1:], seed, default_init, layout, bias_mode == "row0", x.shape[0]
        )
    check_fits(
        8 * trace_numbers(network, x.shape[0]) * (steps + int(after)),
        "the step's trace",
        field="layers",
    )
    if y.shape[1] != network.layers[-1].n_out:
        raise GlassnetError(
            f"expected {network.layers[-1].n_out} numbers per row (the last layer's units)",
            got=str(y.shape[1]),
            field="target",
        )
    network.check_loss(loss)
    values = data.get("values", {})
    if not isinstance(values, dict):
        raise GlassnetError("expected a [values] table", got=_kind(values), field="values")
    name = data.get("name", "")
    description = data.get("description", "")
    for key, val in (("name", name), ("description", description)):
        if not isinstance(val, str):
            raise GlassnetError("expected text", got=_kind(val), field=key)
    return Spec(
        network=network,
        x=x,
        y=y,
        loss=loss,
        lr=lr,
        update_bias=update_bias,
        path=label,
        name=name,
        description=description,
        values=values,
        steps=steps,
        after=after,
        layout=layout,
        bias_row0=bias_mode == "row0",
        preprocessing=preprocessing,
        optimizer=optimizer,
    )


def trace_numbers(network: Network, batch: int) -> int:
    """How many numbers a trace of one step over ``batch`` samples holds (an upper bound:
    W, dW, W_new, b, db, b_new per layer; x, z, a, dL_da, delta and da_dz per sample —
    da_dz a full Jacobian for softmax), doubled for the rounded copies of hand mode."""
    total = 0
    for layer in network.layers:
        n_in, n_out = layer.n_in, layer.n_out
        jacobian = n_out * n_out if not layer.activation.elementwise else n_out
        params = sum(p.size for p in layer.parameters())
        total += 3 * params + batch * (n_in + 4 * n_out + jacobian)
    return 2 * total


def _input(v: Any, field: str = "input") -> Array:
    """The spec's ``input`` (or ``field``): one sample as a flat list, a batch as rows,
    or a batch of feature maps [batch][channels][height][width]."""
    if isinstance(v, list) and v and isinstance(v[0], list) and v[0] and isinstance(v[0][0], list):
        x = _array(v, field)
        if x.ndim != 4:
            raise GlassnetError(
                "expected rows of numbers, or feature maps [batch][channels][height][width]",
                got=f"{x.ndim} levels of lists",
                field=field,
            )
        return x
    return _matrix(v, field, rows_ok=True)


def _layers_network(
    data: dict[str, Any],
    in_shape: tuple[int, ...],
    seed: int,
    default_init: str,
    layout: str = "from_to",
    bias_row0: bool = False,
    batch: int = 1,
) -> Network:
    """The network of the spec's [[layers]] tables."""
    layers_data = _require(data, "layers")
    if not isinstance(layers_data, list) or not layers_data:
        raise GlassnetError(
            "expected one or more [[layers]] tables", got=_kind(layers_data), field="layers"
        )
    ctx = LayerContext(
        layout=layout, bias_row0=bias_row0, default_init=default_init, seed=seed, batch=batch
    )
    layers: list[Layer] = []
    for index, ld in enumerate(layers_data, start=1):
        try:
            if not isinstance(ld, dict):
                raise GlassnetError("expected a [[layers]] table", got=_kind(ld))
            # The table's type names the layer plugin that reads the rest of it.
            cls = layer_class(ld.get("type", "dense"))
            _check_rank(cls, in_shape)
            ctx.in_shape = in_shape
            layer = cls.from_spec(ld, int(np.prod(in_shape)), ctx)
        except GlassnetError as err:
            if err.layer is None:
                err.layer = index
                err.args = (err._message(),)
            raise
        ctx.params_before += sum(p.size for p in layer.parameters())
        layers.append(layer)
        in_shape = layer.out_shape
    return Network(layers)


def _check_rank(cls: type[Layer], in_shape: tuple[int, ...]) -> None:
    """Refuse a layer whose input has a rank it does not take (a dense layer after a
    convolution without a flatten between, a convolution on rows of numbers)."""
    rank = cls.input_rank
    if rank is None or rank == len(in_shape):
        return
    shape = "×".join(map(str, in_shape))
    if rank == 1:
        raise GlassnetError(
            f"expected a vector per sample for {cls.type} (put a flatten layer before it)",
            got=f"feature maps {shape}",
            field="type",
        )
    raise GlassnetError(
        f"expected feature maps (channels, height, width) per sample for {cls.type} "
        "(an input [batch][channels][height][width])",
        got=f"a shape {shape}",
        field="type",
    )


def _model_network(
    data: dict[str, Any], label: str, in_shape: tuple[int, ...]
) -> tuple[Network, Preprocessing | None]:
    """The network (float64) of a model file named by ``model`` (relative to the spec's
    folder) — a glassnet ``.npz`` model or a PyTorch ``.safetensors`` model file (see
    interop) — and the preprocessing it stores, which the step applies first."""
    if "layers" in data:
        raise GlassnetError(
            "expected either 'model' or [[layers]], not both", got="both", field="model"
        )
    name = data["model"]
    if not isinstance(name, str) or not name:
        raise GlassnetError("expected the path of a model file", got=_kind(name), field="model")
    path = Path(name)
    if not path.is_absolute():
        path = Path(label).parent / path
    from glassnet.interop import load_any_model

    try:
        model = load_any_model(path)
    except GlassnetError as err:
        if err.field is None:
            err.field = "model"
            err.args = (err._message(),)
        raise
    network = Network(model.copy(np.float64).layers)
    pre = model.preprocessing
    if pre is not None and not pre.numbers_only:
        raise GlassnetError(
            "expected a model whose raw columns are all numbers (a spec's input is numbers; "
            "this model encodes text columns)",
            got=", ".join(c.name for c in pre.columns or [] if c.kind == "text"),
            field="model",
        )
    if network.layers[0].in_shape != in_shape:
        want = network.layers[0].in_shape
        raise GlassnetError(
            f"expected inputs of {'×'.join(map(str, want))} numbers (the model's)",
            got="×".join(map(str, in_shape)),
            field="input",
        )
    return network, model.preprocessing


def layers_from_file(
    path: str | Path,
    n_features: int,
    image_shape: tuple[int, int, int] | None = None,
    *,
    seed: int,
    init: str,
) -> tuple[Network, list[str]]:
    """The network of a spec file's ``[[layers]]`` tables (what ``glassnet train --model
    FILE.toml`` trains) for samples of ``image_shape`` (C, H, W) when the data holds
    images and the first layer takes feature maps, else of ``n_features`` numbers:
    weights as given, or drawn
    (``units``; ``channels`` and ``kernel_size``) with the file's ``init`` or else
    ``init``, from ``seed``.  Returns it with the names of the file's other top-level
    fields (``input``, ``target``, ``lr``, ...), which a training run does not use (the
    data and the run's options give them) — for the caller to say so."""
    label = str(path)
    text = read_text(Path(path), label, "a spec file (TOML)")
    check_nesting(text, file=label)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise GlassnetError("expected valid TOML", got=str(err), file=label) from None
    try:
        default_init = data.get("init", init)
        if default_init not in INITS:
            raise GlassnetError(
                f"expected one of {', '.join(INITS)}", got=repr(default_init), field="init"
            )
        layout = data.get("layout", "from_to")
        if layout not in LAYOUTS:
            raise GlassnetError(
                f"expected one of {', '.join(LAYOUTS)}", got=_kind(layout), field="layout"
            )
        in_shape: tuple[int, ...] = (n_features,)
        tables = data.get("layers")
        if image_shape is not None and isinstance(tables, list) and tables:
            head = tables[0]
            kind = head.get("type", "dense") if isinstance(head, dict) else "dense"
            if layer_class(kind).input_rank == 3:
                in_shape = tuple(image_shape)
        network = _layers_network(
            data, in_shape, seed, default_init, layout, data.get("bias") == "row0"
        )
    except GlassnetError as err:
        raise err.with_file(label) from None
    unused = sorted(set(data) - {"layers", "init", "layout", "bias"})
    return network, unused
