"""glassnet networks to and from PyTorch, exactly.

- :func:`to_torch` / :func:`from_torch`: a ``torch.nn.Sequential`` of ``Linear`` and
  activation modules with the same weights, bit for bit.  ``Linear`` stores its weight
  as (out, in) — W transposed — so each crossing transposes.  Each activation class
  names its own module (``torch_name``, ``torch_options``), so nothing here lists them.
- :func:`save_torch_model` / :func:`load_torch_model`: a PyTorch model file that cannot
  run code — the Sequential's state dict in safetensors, its architecture (and a model's
  preprocessing, classes and task) as JSON in the file's metadata.  (``torch.save`` files
  are pickles; glassnet never loads those.)

- :func:`check_step`: one step of a user's own PyTorch loop on a ``to_torch`` model,
  compared with glassnet's step graph (the step ``glassnet step`` records and ``explain``
  writes out).

torch and safetensors are optional (``pip install glassnet[torch]``); each is imported
only by the function that needs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.activations import Activation, by_torch_name, names
from glassnet.errors import GlassnetError
from glassnet.extras import install_hint
from glassnet.fileio import atomic_write_bytes
from glassnet.layers import Layer
from glassnet.layers.base import layer_by_torch_name, torch_module
from glassnet.model import Model
from glassnet.network import Network

Array = np.ndarray

#: Modules that do nothing at inference, skipped by from_torch.
_SKIPPED = ("Identity", "Dropout")
_ARCH_KEY = "glassnet.torch_architecture"
#: safetensors metadata keys for what stands around the network: the preprocessing
#: (JSON: feature names, mean, scale — Python's float repr, so exact), class names, task.
_PREPROCESSING_KEY = "glassnet.preprocessing"
_CLASSES_KEY = "glassnet.classes"
_TASK_KEY = "glassnet.task"
#: One sample's input shape, for a network whose first module takes feature maps.
_INPUT_SHAPE_KEY = "glassnet.input_shape"


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise GlassnetError(
            f"expected PyTorch to be installed ({install_hint('torch')})",
            got="no module named torch",
            field="torch",
        ) from None
    return torch


def _safetensors(sub: str = "") -> Any:
    import importlib

    try:
        return importlib.import_module("safetensors" + (f".{sub}" if sub else ""))
    except ImportError:
        raise GlassnetError(
            f"expected safetensors to be installed ({install_hint('torch')})",
            got="no module named safetensors",
            field="safetensors",
        ) from None


# -- PyTorch -----------------------------------------------------------------------------
def _supported() -> tuple[str, ...]:
    """The module classes glassnet reads: each layer type's own (Linear, BatchNorm1d,
    LayerNorm), Identity and each activation's own."""
    from glassnet.activations import activation_class
    from glassnet.layers import layer_class, layer_types

    layers = [layer_class(t).torch_name for t in layer_types()]
    own = [activation_class(n).torch_name for n in names()]
    return (*(t for t in layers if t), "Identity", *(t for t in own if t))


def _activation_from(kind: str, options: dict[str, Any]) -> Activation:
    """The activation for a module class and its options (the class's own reading)."""
    cls = by_torch_name(kind)
    assert cls is not None  # the caller checked kind against _supported()
    return cls.from_torch_options(options)


def to_torch(net: Network) -> Any:
    """A ``torch.nn.Sequential`` equal to ``net``: each layer's own module (Linear with
    weight = Wᵀ, BatchNorm1d, LayerNorm), then its activation's (none for identity).
    Parameters and buffers keep ``net``'s dtype and values exactly."""
    torch = _torch()
    modules = []
    for layer in net.layers:
        modules.append(torch_module(torch, *layer.torch_data()))
        act = layer.activation.torch_module(torch.nn)
        if act is not None:
            modules.append(act)
    return torch.nn.Sequential(*modules)


def _flatten(module: Any) -> list[tuple[str, Any]]:
    torch = _torch()
    if isinstance(module, torch.nn.Sequential):
        out: list[tuple[str, Any]] = []
        for name, child in module.named_children():
            out.extend((f"{name}.{n}" if n else name, m) for n, m in _flatten(child))
        return out
    return [("", module)]


def from_torch(module: Any, input_shape: tuple[int, ...] | None = None) -> Model:
    """A glassnet :class:`~glassnet.model.Model` from a ``Sequential`` of layer modules
    (each layer type names its own: Linear, BatchNorm1d, LayerNorm) and supported
    activations.

    Each layer module becomes a layer; the activation module after it (if any) becomes
    its activation.  The first unsupported module is named in the error.
    ``input_shape``: one sample's input shape, (channels, height, width) for a network
    that starts with ``Conv2d`` or pooling (whose modules do not store the height and
    width of their input); each later module's follows from the one before.
    """
    torch = _torch()
    items = _flatten(module) if isinstance(module, torch.nn.Sequential) else [("0", module)]
    layers: list[Layer] = []
    open_layer = False  # the last layer can still take the activation module after it
    for position, (name, mod) in enumerate(items):
        kind = type(mod).__name__
        where = f"module {name or position} ({kind})"
        cls = layer_by_torch_name(kind)
        if cls is None and kind not in (*_supported(), *_SKIPPED):
            raise GlassnetError(
                f"expected only {', '.join(_supported())} (and Dropout) modules",
                got=kind,
                field=where,
            )
        if kind in _SKIPPED:  # Dropout is the identity at inference
            continue
        try:
            if cls is not None:
                shape = layers[-1].out_shape if layers else input_shape
                layers.append(cls.from_torch_shaped(*cls.torch_data_of(mod), _shape(shape)))
                open_layer = cls.takes_activation
                continue
            if not open_layer:
                raise GlassnetError(
                    "expected a layer module (such as Linear) before each activation",
                    got=kind,
                    field=where,
                )
            fields = by_torch_name(kind).torch_fields  # type: ignore[union-attr]
            layers[-1].activation = _activation_from(kind, {f: getattr(mod, f) for f in fields})
            open_layer = False
        except GlassnetError as err:
            raise GlassnetError(err.expected, got=err.got, field=where) from None
    if not layers:
        raise GlassnetError("expected at least one Linear module", got="none", field="module")
    return Model(layers)


def _shape(shape: Any) -> tuple[int, ...] | None:
    """A given input shape as a tuple of whole numbers >= 1 (None stays None)."""
    if shape is None:
        return None
    if (
        not isinstance(shape, list | tuple)
        or not shape
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape)
    ):
        raise GlassnetError(
            "expected a shape of whole numbers >= 1, such as (1, 8, 8)",
            got=repr(shape)[:40],
            field="input_shape",
        )
    return tuple(shape)


def torch_architecture(net: Network) -> list[dict[str, Any]]:
    """The Sequential's architecture as plain data: one dict per module, in order."""
    return [m for m, _ in _torch_modules(net)]


def _torch_modules(net: Network) -> list[tuple[dict[str, Any], dict[str, Array]]]:
    """Each module of the Sequential as (architecture, tensors): a layer's own module,
    then its activation's (with no tensors)."""
    out: list[tuple[dict[str, Any], dict[str, Array]]] = []
    for layer in net.layers:
        out.append(layer.torch_data())
        act = layer.activation
        if act.torch_name is not None:
            out.append(({"type": act.torch_name, **act.torch_options()}, {}))
    return out


def save_torch_model(net: Network, path: str | Path) -> None:
    """Write ``net`` as a PyTorch model file: the ``nn.Sequential`` state dict (keys
    ``"0.weight"``, ``"0.bias"``, ``"1.running_mean"``, ...) in safetensors, the
    architecture in its metadata.  Load it in PyTorch with
    ``safetensors.torch.load_file`` + the architecture, or with :func:`load_torch_model`.
    A :class:`~glassnet.model.Model`'s preprocessing, class names and task go into the
    metadata too (``glassnet.preprocessing``: feature names, mean and scale as JSON;
    apply ``(x − mean) / scale`` before the Sequential), so :func:`load_torch_model`
    gives back a model that predicts exactly the same."""
    save = _safetensors("numpy").save

    tensors: dict[str, Array] = {}
    arch = []
    for pos, (mod, ts) in enumerate(_torch_modules(net)):
        arch.append(mod)
        tensors.update({f"{pos}.{name}": t for name, t in ts.items()})
    # safetensors serialises to bytes; the write itself goes through atomic_write
    metadata = {_ARCH_KEY: json.dumps(arch), **_model_metadata(net)}
    if len(net.layers[0].in_shape) > 1:  # feature maps: their size is no module's
        metadata[_INPUT_SHAPE_KEY] = json.dumps(list(net.layers[0].in_shape))
    data = save(tensors, metadata=metadata)
    atomic_write_bytes(path, data)


def _model_metadata(net: Network) -> dict[str, str]:
    """safetensors metadata (str -> str) for a model's preprocessing, classes and task."""
    if not isinstance(net, Model):
        return {}
    meta: dict[str, str] = {}
    pre = net.preprocessing
    if pre is not None:
        info, _ = pre.to_file()  # feature names, and columns/categories/fills if any
        meta[_PREPROCESSING_KEY] = json.dumps(
            {"info": info, "mean": pre.mean.tolist(), "scale": pre.scale.tolist()},
            allow_nan=False,
        )
    if net.classes is not None:
        meta[_CLASSES_KEY] = json.dumps(net.classes)
    if net.task is not None:
        meta[_TASK_KEY] = net.task
    return meta


def _model_from_metadata(layers: list[Layer], meta: dict[str, str], label: str) -> Model:
    """The model of a PyTorch model file: its layers, and the preprocessing, classes and
    task its metadata records (checked like a glassnet model file's)."""
    from glassnet.io import ModelFile
    from glassnet.model import _model

    info: dict[str, Any] = {}
    extras: dict[str, Array] = {}
    try:
        if _PREPROCESSING_KEY in meta:
            pre = json.loads(meta[_PREPROCESSING_KEY])
            extras = {
                "input_mean": np.asarray(pre["mean"], dtype=np.float64),
                "input_scale": np.asarray(pre["scale"], dtype=np.float64),
            }
            info.update(pre["info"])
        if _CLASSES_KEY in meta:
            info["classes"] = json.loads(meta[_CLASSES_KEY])
    except (ValueError, TypeError, KeyError) as err:
        raise GlassnetError(
            "expected glassnet metadata as written by save_torch_model",
            got=str(err)[:80],
            file=label,
            field=_PREPROCESSING_KEY,
        ) from None
    if _TASK_KEY in meta:
        info["task"] = meta[_TASK_KEY]
    try:
        return _model(ModelFile(Network(layers), info, extras))
    except GlassnetError as err:
        raise err.with_file(label) from None


def load_torch_model(path: str | Path) -> Model:
    """Read a file written by :func:`save_torch_model` (no torch needed, nothing unpickled)."""
    st = _safetensors()
    SafetensorError, safe_open = st.SafetensorError, st.safe_open
    label = str(path)
    try:
        with safe_open(label, framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise GlassnetError(
            "expected a PyTorch model file (.safetensors)", got="no such file", file=label
        ) from None
    except (SafetensorError, OSError, ValueError) as err:
        raise GlassnetError(
            "expected a safetensors file with a glassnet architecture",
            got=" ".join(str(err).split())[:200],
            file=label,
        ) from None
    try:
        arch = json.loads(meta[_ARCH_KEY])
        if not isinstance(arch, list):
            raise ValueError
    except (KeyError, ValueError):
        raise GlassnetError(
            f"expected metadata '{_ARCH_KEY}' (a JSON list of modules)",
            got="none" if _ARCH_KEY not in meta else "something else",
            file=label,
        ) from None
    input_shape = None
    if _INPUT_SHAPE_KEY in meta:
        try:
            input_shape = _shape(json.loads(meta[_INPUT_SHAPE_KEY]))
        except (ValueError, GlassnetError):
            raise GlassnetError(
                "expected [channels, height, width]",
                got=meta[_INPUT_SHAPE_KEY][:40],
                file=label,
                field=_INPUT_SHAPE_KEY,
            ) from None
    layers: list[Layer] = []
    used: set[str] = set()
    open_layer = False
    for pos, mod in enumerate(arch):
        kind = mod.get("type") if isinstance(mod, dict) else None
        where = f"module {pos} ({kind})"
        cls = layer_by_torch_name(kind) if isinstance(kind, str) else None
        if cls is None and kind not in _supported():
            raise GlassnetError(
                f"expected only {', '.join(_supported())} modules",
                got=repr(kind)[:60],
                file=label,
                field=where,
            )
        prefix = f"{pos}."
        own = {k[len(prefix) :]: t for k, t in tensors.items() if k.startswith(prefix)}
        try:
            if cls is not None:
                shape = layers[-1].out_shape if layers else input_shape
                layers.append(cls.from_torch_shaped(mod, own, shape))
                used |= {prefix + k for k in own}
                open_layer = cls.takes_activation
            elif kind != "Identity":
                if not open_layer:
                    raise GlassnetError(
                        "expected a layer module (such as Linear) before each activation",
                        got=str(kind),
                    )
                options = {k: v for k, v in mod.items() if k != "type"}
                layers[-1].activation = _activation_from(str(kind), options)
                open_layer = False
        except GlassnetError as err:
            raise GlassnetError(err.expected, got=err.got, file=label, field=where) from None
    if set(tensors) != used:
        raise GlassnetError(
            "expected only the tensors the architecture names",
            got=f"also {sorted(set(tensors) - used)[:4]}",
            file=label,
        )
    try:
        Network(layers)  # the layers chain
    except GlassnetError as err:
        raise err.with_file(label) from None
    return _model_from_metadata(layers, meta, label)


def check_step(
    before: Network,
    after: Any,
    x: object,
    y: object,
    *,
    optimizer: str | Any,
    loss: str | Any | None = None,
    sample_weight: object = None,
) -> float:
    """Prove one step of your own PyTorch loop is glassnet's step.

    ``before``: the glassnet network the module came from (``to_torch(before)``), as it
    was before the step; ``after``: that module after one step of your loop on the batch
    ``x`` (m, n_in), ``y`` (labels (m,) or targets (m, n_out)); ``optimizer``: glassnet's
    optimiser that your ``torch.optim`` one stands for (``gn.optim.Momentum(lr=0.1)``,
    fresh: the first step); ``loss``: the loss your loop differentiates (default the
    output's own); ``sample_weight`` (m,): row weights, if your loss has them (as
    ``fit``'s row weights: L = Σ_s w_s Σ_k terms / m).  The step graph takes the same
    step from ``before``'s values; returns the largest difference of a parameter or
    constant (running statistics), relative to its scale, when within float rounding
    (1000 machine epsilons of the dtype), and otherwise raises a one-line
    :class:`GlassnetError` naming the quantity and the difference.  Dropout is not
    compared (your loop's masks are torch's own).

    >>> module = to_torch(net)                     # doctest: +SKIP
    >>> ... one step of your loop on (x, y) ...    # doctest: +SKIP
    >>> check_step(net, module, x, y, optimizer=gn.optim.SGD(lr=0.1))  # doctest: +SKIP
    """
    from glassnet.optim import get_optimizer
    from glassnet.training.first_step import ULPS, largest_difference, reference_step
    from glassnet.training.inputs import check_data, prepare_targets
    from glassnet.training.state import default_loss

    X = check_data(before, np.asarray(x, dtype=before.dtype), "x")
    loss_obj = before.check_loss(loss if loss is not None else default_loss(before))
    Y, _ = prepare_targets(before, y, loss_obj, X.shape[0])
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=before.dtype)
        if weights.shape != (X.shape[0],) or not np.isfinite(weights).all():
            raise GlassnetError(
                f"expected {X.shape[0]} finite weights (one per row of x)",
                got=f"shape {weights.shape}",
                field="sample_weight",
            )
    mine, _ = reference_step(before, X, Y, loss_obj, get_optimizer(optimizer), weights=weights)
    theirs = from_torch(after)
    if [layer.type for layer in theirs.layers] != [layer.type for layer in mine.layers]:
        raise GlassnetError(
            "expected the module to_torch made of the network (the same layers)",
            got=", ".join(layer.type for layer in theirs.layers),
            field="after",
        )
    worst, where = largest_difference(theirs, mine)
    tolerance = ULPS * float(np.finfo(before.dtype).eps)
    if not worst <= tolerance:
        raise GlassnetError(
            f"expected your step to equal glassnet's step graph within {tolerance:.1e} "
            "(float rounding)",
            got=f"a relative difference of {worst:.3e} in {where}",
            field="step",
        )
    return worst
