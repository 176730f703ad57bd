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

import math
import stat
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations import activation_class, get_activation
from glassnet.activations import names as activation_names
from glassnet.errors import GlassnetError
from glassnet.init import INITS, init_weights
from glassnet.layers import Dense
from glassnet.limits import (
    MAX_SPEC_BATCH,
    MAX_SPEC_PARAMETERS,
    MAX_STEPS,
    MAX_TEXT_BYTES,
    check_fits,
    check_nesting,
)
from glassnet.losses import LOSSES
from glassnet.network import Network
from glassnet.trace import Trace, trace_steps

if TYPE_CHECKING:
    from glassnet.preprocess import Preprocessing
    from glassnet.trace import Trace

Array = np.ndarray

#: Bundled examples, by name.
EXAMPLES: tuple[str, ...] = ("seed",)
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
    "steps",
    "after",
    "layout",
    "bias",
}
#: How a spec (and its worksheets) write weight matrices: W[from][to] (x·W, the seed's) or
#: W[to][from] (W·x, as many textbooks and PyTorch's ``weight``).
LAYOUTS: tuple[str, ...] = ("from_to", "to_from")
#: A layer's own fields; an activation's options (leaky_relu's ``slope``, elu's
#: ``alpha``) are fields of its layer too (see :func:`_layer`).
LAYER_KEYS = {"weights", "bias", "activation", "units", "init"}


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
    #: A ``model = "..."`` file's stored preprocessing: ``x`` is then the raw row, and
    #: the step starts by turning it into the network's input.
    preprocessing: Preprocessing | None = None

    @property
    def network_input(self) -> Array:
        """The network's input: ``x``, after the model's preprocessing if it has one."""
        if self.preprocessing is None:
            return self.x
        return self.preprocessing.transform(self.x)

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
            )
            if self.preprocessing is not None:
                tr.preprocessing = self.preprocessing.record(self.x)
            return tr
        except GlassnetError as err:
            raise err.with_file(self.path) from None


def weights_from_layout(M: Array, layout: str, bias_row0: bool) -> tuple[Array, Array | None]:
    """A weight matrix as written -> (W[from][to], the bias folded into it or None).
    ``to_from`` is transposed; with ``bias_row0`` row 0 of the W[from][to] matrix (column 0
    of a W[to][from] one: the weights of a constant input 1) is the bias."""
    W = M.T if layout == "to_from" else M
    if bias_row0:
        return W[1:], W[0]
    return W, None


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
    update_bias = data.get("update_bias", True)
    if not isinstance(update_bias, bool):
        raise GlassnetError("expected true or false", got=repr(update_bias), field="update_bias")
    x = _matrix(_require(data, "input"), "input", rows_ok=True)
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
        network, preprocessing = _model_network(data, label, x.shape[1])
    else:
        network = _layers_network(data, x.shape[1], seed, default_init, layout, bias_mode == "row0")
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
    )


def trace_numbers(network: Network, batch: int) -> int:
    """How many numbers a trace of one step over ``batch`` samples holds (an upper bound:
    W, dW, W_new, b, db, b_new per layer; x, z, a, dL_da, delta and da_dz per sample —
    da_dz a full Jacobian for softmax), doubled for the rounded copies of hand mode."""
    total = 0
    for layer in network.layers:
        n_in, n_out = layer.n_in, layer.n_out
        jacobian = n_out * n_out if not layer.activation.elementwise else n_out
        total += 3 * (n_in * n_out + n_out) + batch * (n_in + 4 * n_out + jacobian)
    return 2 * total


def _layers_network(
    data: dict[str, Any],
    n_in: int,
    seed: int,
    default_init: str,
    layout: str = "from_to",
    bias_row0: bool = False,
) -> Network:
    """The network of the spec's [[layers]] tables."""
    layers_data = _require(data, "layers")
    if not isinstance(layers_data, list) or not layers_data:
        raise GlassnetError(
            "expected one or more [[layers]] tables", got=_kind(layers_data), field="layers"
        )
    # The generator is made on first use: numpy.random costs ~10 ms to import, and a
    # spec that gives every weight (like the seed's) never draws.
    rng = _LazyRng(seed)
    layers: list[Dense] = []
    total = 0
    for index, ld in enumerate(layers_data, start=1):
        try:
            layer = _layer(ld, n_in, rng, default_init, total, layout, bias_row0)
        except GlassnetError as err:
            if err.layer is None:
                err.layer = index
                err.args = (err._message(),)
            raise
        total += layer.W.size + layer.b.size
        layers.append(layer)
        n_in = layer.n_out
    return Network(layers)


def _model_network(
    data: dict[str, Any], label: str, n_in: int
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
    if network.layers[0].n_in != n_in:
        raise GlassnetError(
            f"expected inputs of {network.layers[0].n_in} numbers (the model's)",
            got=str(n_in),
            field="input",
        )
    return network, model.preprocessing


class _LazyRng:
    """``numpy.random.default_rng(seed)``, created when first asked for."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng: np.random.Generator | None = None

    def get(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng


def _layer(
    ld: Any,
    n_in: int,
    rng: _LazyRng,
    default_init: str,
    total: int,
    layout: str = "from_to",
    bias_row0: bool = False,
) -> Dense:
    if not isinstance(ld, dict):
        raise GlassnetError("expected a [[layers]] table", got=_kind(ld))
    act_name = ld.get("activation", "identity")
    if not isinstance(act_name, str) or act_name not in activation_names():
        raise GlassnetError(
            f"expected one of {', '.join(activation_names())}",
            got=repr(act_name),
            field="activation",
        )
    act_cls = activation_class(act_name)
    # Any activation's options are fields of its layer; an option of another activation
    # is named as such (a typo'd activation would otherwise hide behind "unknown field").
    all_options = {o for n in activation_names() for o in activation_class(n).defaults}
    unknown = sorted(set(ld) - LAYER_KEYS - set(act_cls.defaults))
    if unknown:
        if unknown[0] in all_options:
            owners = [n for n in activation_names() if unknown[0] in activation_class(n).defaults]
            raise GlassnetError(
                f"expected {unknown[0]!r} only with {' or '.join(owners)}",
                got=act_name,
                field=unknown[0],
            )
        raise GlassnetError(
            f"expected only the fields {', '.join(sorted(LAYER_KEYS | set(act_cls.defaults)))}",
            got=f"unknown field {unknown[0]!r}",
            field=unknown[0],
        )
    options = {k: _number(ld[k], k) for k in act_cls.defaults if k in ld}
    activation = get_activation(act_name, **options)
    if "weights" in ld:
        if "units" in ld or "init" in ld:
            raise GlassnetError(
                "expected either 'weights' or 'units' (with 'init'), not both",
                got="both",
                field="units" if "units" in ld else "init",
            )
        M = _matrix(ld["weights"], "weights", rows_ok=False)
        want = n_in + int(bias_row0)
        across = M.shape[0] if layout == "from_to" else M.shape[1]
        if across != want:
            extra = " (row 0 the bias)" if bias_row0 else ""
            raise GlassnetError(
                f"expected {want} rows ([from][to]: one per input of this layer{extra}), "
                "each of the layer's units"
                if layout == "from_to"
                else f"expected {want} columns ([to][from]: one per input of this "
                f"layer{extra.replace('row', 'column')}), in a row per unit",
                got=f"{M.shape[0]} rows of {M.shape[1]}",
                field="weights",
            )
        W, folded = weights_from_layout(M, layout, bias_row0)
        if folded is not None and "bias" in ld:
            raise GlassnetError(
                "expected no 'bias' with bias = \"row0\" (it is row 0 of the weights)",
                got="both",
                field="bias",
            )
        n_out = W.shape[1]
    elif "units" in ld:
        n_out = ld["units"]
        if isinstance(n_out, bool) or not isinstance(n_out, int) or n_out < 1:
            raise GlassnetError("expected a whole number >= 1", got=repr(n_out), field="units")
        if total + n_in * n_out + n_out > MAX_SPEC_PARAMETERS:
            raise GlassnetError(
                f"expected at most {MAX_SPEC_PARAMETERS:,} parameters in all",
                got=f"{n_in} x {n_out} here",
                field="units",
            )
        init = ld.get("init", default_init)
        if init not in INITS:
            raise GlassnetError(f"expected one of {', '.join(INITS)}", got=repr(init), field="init")
        W = init_weights(init, n_in, n_out, rng.get(), np.float64)
        folded = None
    else:
        raise GlassnetError(
            "expected 'weights' (a matrix) or 'units' (a count)", got="neither", field="weights"
        )
    if "weights" in ld and folded is not None:
        b = np.array(folded, dtype=np.float64)
    elif "bias" in ld:
        b = _vector(ld["bias"], "bias")
        if b.shape != (n_out,):
            raise GlassnetError(
                f"expected {n_out} numbers (one per unit)", got=str(b.size), field="bias"
            )
    else:
        b = np.zeros(n_out)
    return Dense(W, b, activation)


def _require(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise GlassnetError("expected this field", got="nothing (missing)", field=key)
    return data[key]


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, str):
        return f"the text {v!r}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a table"
    return repr(v)


def _number(v: Any, field_name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise GlassnetError("expected a number", got=_kind(v), field=field_name)
    if not math.isfinite(v):
        raise GlassnetError("expected a finite number", got=repr(v), field=field_name)
    return float(v)


def _vector(v: Any, field_name: str) -> Array:
    if not isinstance(v, list) or not v:
        raise GlassnetError("expected a list of numbers", got=_kind(v), field=field_name)
    return np.array([_number(e, field_name) for e in v], dtype=np.float64)


def _matrix(v: Any, field_name: str, *, rows_ok: bool) -> Array:
    """A matrix from a list of rows; with ``rows_ok`` a flat list is one row (one sample)."""
    if not isinstance(v, list) or not v:
        raise GlassnetError("expected a list of rows of numbers", got=_kind(v), field=field_name)
    if rows_ok and not isinstance(v[0], list):
        return _vector(v, field_name)[None, :]
    rows = []
    for r, row in enumerate(v):
        if not isinstance(row, list) or not row:
            raise GlassnetError(
                "expected a list of rows of numbers",
                got=f"row {r + 1} is {_kind(row)}",
                field=field_name,
            )
        rows.append(_vector(row, field_name))
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise GlassnetError(
            "expected rows of equal length", got=f"lengths {sorted(widths)}", field=field_name
        )
    return np.array(rows)
