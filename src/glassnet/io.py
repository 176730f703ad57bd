"""The model-file format: ``.npz`` of plain numeric arrays, never pickle.

A file holds

==========================  =================================================
``meta``                    uint8: UTF-8 JSON — format, dtype, layers (each its
                            ``type`` — dense when absent — and its plugin's
                            config: sizes, activation, eps, …), and, for a
                            checkpoint, the training
                            state (optimiser settings, epoch, random stream,
                            history); plus free ``info`` (data set, classes,
                            preprocessing)
``layer{l}.W``, ``.b``      the arrays of layer l (from 1), float32/float64 —
                            ``.gamma``, ``.beta``, ``.running_mean``, … for other
                            layer types: the layer's own file form (``config``, ``arrays``,
                            ``file_shapes``, ``from_file`` of its plugin)
``optimizer.{name}.{i}``    optimiser state for parameter i (checkpoints)
``extra.{name}``            extra float arrays (e.g. the input standardisation)
==========================  =================================================

This module knows the container and the network; what the ``training`` section means
belongs to :mod:`glassnet.training` (``TrainState.to_meta``/``from_meta``) and what
``info``/``extras`` mean to :mod:`glassnet.model` — so nothing here imports them.
The arrays are read by :class:`glassnet.npz.NpzReader`, which refuses object arrays,
members larger than their declared shapes, and truncated or non-zip files; here the
arrays are checked against the description: unknown or missing keys, wrong shapes or
dtypes are refused with a :class:`GlassnetError`.  Saving is atomic: a temporary file
in the same folder, flushed and fsynced, then ``os.replace``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.activations import Activation
from glassnet.activations import from_dict as activation_from_dict
from glassnet.errors import GlassnetError
from glassnet.layers import Layer, layer_class
from glassnet.limits import MAX_META_BYTES, MAX_ZIP_RATIO
from glassnet.network import Network
from glassnet.npz import NpzReader, atomic_save_npz

Array = np.ndarray

FORMAT = "glassnet-model"
VERSION = 1

#: What ``custom_objects`` maps a saved activation name to: an Activation subclass
#: (called with the saved options) or a ready instance.
CustomObjects = Mapping[str, type[Activation] | Activation]

_OPTIMIZER_KEY = re.compile(r"optimizer\.([A-Za-z_][A-Za-z0-9_]*)\.([0-9]+)")


@dataclass
class ModelFile:
    """What a model file holds, checked as a container: the network, the free ``info``,
    the ``extras`` arrays, and the ``training`` section with its arrays (keys without
    the ``optimizer.`` prefix), uninterpreted (None for a plain model)."""

    network: Network
    info: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Array] = field(default_factory=dict)
    training: dict[str, Any] | None = None
    training_arrays: dict[str, Array] = field(default_factory=dict)


# -- saving --------------------------------------------------------------------------------
def write(
    path: str | Path,
    net: Network,
    *,
    info: dict[str, Any] | None = None,
    extras: Mapping[str, Array] | None = None,
    training: dict[str, Any] | None = None,
    training_arrays: Mapping[str, Array] | None = None,
) -> None:
    """Write ``net`` with ``info``, ``extras`` and a ``training`` section (JSON) and its
    arrays (stored as ``optimizer.{key}``) to ``path``, atomically."""
    arrays: dict[str, Array] = {}
    layers = []
    for index, layer in enumerate(net.layers, start=1):
        # the layer's own file form (its plugin's type, config and arrays), by number
        arrays.update({f"layer{index}.{name}": a for name, a in layer.arrays().items()})
        layers.append({"type": layer.type, **layer.config()})
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": str(net.dtype),
        "layers": layers,
        "info": info or {},
        "extras": {},
        "training": training,
    }
    for name, a in (extras or {}).items():
        a = np.asarray(a)
        if a.dtype.kind != "f":
            raise GlassnetError("expected a float array", got=str(a.dtype), field=f"extra.{name}")
        arrays[f"extra.{name}"] = a
        meta["extras"][name] = {"shape": list(a.shape), "dtype": str(a.dtype)}
    for key, a in (training_arrays or {}).items():
        arrays[f"optimizer.{key}"] = a
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise GlassnetError(
            "expected plain JSON data (no NaN, no objects)", got=str(err)[:80], field="meta"
        ) from None
    arrays["meta"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    atomic_save_npz(path, arrays)


# -- loading -------------------------------------------------------------------------------
def read(path: str | Path, *, custom_objects: CustomObjects | None = None) -> ModelFile:
    """Everything in a model file, checked (see the module docstring).  Activations are
    looked up in ``custom_objects`` first, then among glassnet's own."""
    name = str(path)
    try:
        return _load(Path(path), custom_objects or {})
    except GlassnetError as err:
        raise err.with_file(name) from None


def _bad(expected: str, got: str, field: str | None = None) -> GlassnetError:
    return GlassnetError(expected, got=got, field=field)


def _load(path: Path, custom_objects: CustomObjects) -> ModelFile:
    if not path.is_file():
        raise _bad(
            "expected a glassnet model file (.npz)",
            "a folder"
            if path.is_dir()
            else "no such file"
            if not path.exists()
            else "not a regular file",
        )
    with NpzReader(path, max_ratio=MAX_ZIP_RATIO) as npz:
        if "meta" not in npz.headers:
            raise _bad(
                "expected a 'meta' entry (the architecture)",
                f"entries {sorted(npz.headers)[:8]}",
                "meta",
            )
        shape, dtype, _ = npz.headers["meta"]
        if dtype != np.uint8 or len(shape) != 1:
            raise _bad("expected UTF-8 bytes", f"{dtype} shape {shape}", "meta")
        if shape[0] > MAX_META_BYTES:
            raise _bad(f"expected at most {MAX_META_BYTES} bytes", f"{shape[0]}", "meta")
        meta = _read_meta(npz.read("meta"))
        expected = _expected_arrays(meta)
        _training_arrays(meta, npz.headers, expected)
        keys = set(npz.headers) - {"meta"}
        if keys != set(expected):
            missing, extra = sorted(set(expected) - keys), sorted(keys - set(expected))
            raise _bad(
                "expected exactly the arrays the architecture describes",
                f"missing {missing or 'none'}, unexpected {extra or 'none'}",
                "arrays",
            )
        for key, (want_shape, want_dtype) in expected.items():
            shape, dtype, _ = npz.headers[key]
            if dtype != np.dtype(want_dtype) or shape != want_shape:
                raise _bad(
                    f"expected {want_dtype} shaped {want_shape}", f"{dtype} shaped {shape}", key
                )
        arrays = {key: npz.read(key) for key in expected}
    for key, a in arrays.items():
        if not np.isfinite(a).all():
            raise _bad("expected finite numbers", "NaN or inf", key)
    return _build(meta, arrays, custom_objects)


def _read_meta(raw: Array) -> dict[str, Any]:
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise _bad("expected JSON text", str(err)[:80], "meta") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(
            f"expected format '{FORMAT}'",
            repr(meta.get("format") if isinstance(meta, dict) else meta)[:60],
            "meta",
        )
    if meta.get("version") != VERSION:
        raise _bad(f"expected version {VERSION}", repr(meta.get("version")), "meta")
    if meta.get("dtype") not in ("float32", "float64"):
        raise _bad("expected dtype float32 or float64", repr(meta.get("dtype")), "meta.dtype")
    layers = meta.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _bad("expected a list of layers", repr(layers)[:60], "meta.layers")
    for index, layer in enumerate(layers, start=1):
        # Each layer's description is its plugin's to check (a file from before layer
        # types has none: dense).
        try:
            if not isinstance(layer, dict):
                raise GlassnetError("expected a layer description", got=repr(layer)[:60])
            cls = _layer_type(layer)
            cls.file_shapes(layer)  # the plugin checks its own description
            if "activation" in layer and not isinstance(layer["activation"], dict):
                raise GlassnetError(
                    "expected an activation", got=repr(layer.get("activation"))[:60]
                )
        except GlassnetError as err:
            raise GlassnetError(
                err.expected, got=err.got, layer=index, field=f"meta.layers.{err.field or 'type'}"
            ) from None
    for key in ("info", "extras"):
        if not isinstance(meta.get(key), dict):
            raise _bad("expected a JSON object", repr(meta.get(key))[:60], f"meta.{key}")
    if meta.get("training") is not None and not isinstance(meta["training"], dict):
        raise _bad("expected a JSON object or null", repr(meta["training"])[:60], "meta.training")
    return meta


def _expected_arrays(meta: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every array key the description implies, with its shape and dtype (the training
    section's arrays are added by :func:`_training_arrays`)."""
    dtype = meta["dtype"]
    expected: dict[str, tuple[tuple[int, ...], str]] = {}
    for index, layer in enumerate(meta["layers"], start=1):
        for name, shape in _layer_type(layer).file_shapes(layer).items():
            expected[f"layer{index}.{name}"] = (shape, dtype)
    for name, spec in meta["extras"].items():
        try:
            shape = tuple(int(n) for n in spec["shape"])
            edtype = str(np.dtype(spec["dtype"]))
        except (KeyError, TypeError, ValueError):
            raise _bad("expected {shape, dtype}", repr(spec)[:60], f"meta.extras.{name}") from None
        if edtype not in ("float32", "float64") or any(n < 0 or n > 1 << 24 for n in shape):
            raise _bad(
                "expected a float array of sensible size", repr(spec)[:60], f"meta.extras.{name}"
            )
        expected[f"extra.{name}"] = (shape, edtype)
    return expected


def _training_arrays(
    meta: dict[str, Any],
    headers: dict[str, tuple[tuple[int, ...], np.dtype, bool]],
    expected: dict[str, tuple[tuple[int, ...], str]],
) -> None:
    """Add to ``expected`` the file's ``optimizer.{name}.{i}`` arrays, when the file has a
    training section: each shaped like parameter i ([W1, b1, W2, b2, ...]), in the
    model's dtype.  Which names must be there is the training state's business
    (``TrainState.from_meta`` checks that)."""
    if not meta.get("training"):
        return
    shapes: list[tuple[int, ...]] = []
    for layer in meta["layers"]:
        cls = _layer_type(layer)
        of = cls.file_shapes(layer)
        shapes += [of[p] for p in cls.params]  # optimiser state: parameters only
    for key in headers:
        match = _OPTIMIZER_KEY.fullmatch(key)
        if match is None:
            continue
        i = int(match.group(2))
        if i >= len(shapes):
            raise _bad(
                f"expected optimiser state for parameters 0..{len(shapes) - 1}", key, "arrays"
            )
        expected[key] = (shapes[i], meta["dtype"])


def _layer_type(description: dict[str, Any]) -> type[Layer]:
    """The layer plugin a description names (``"dense"`` when it names none)."""
    return layer_class(description.get("type", "dense"))


def _build(
    meta: dict[str, Any], arrays: dict[str, Array], custom_objects: CustomObjects
) -> ModelFile:
    layers = []
    for index, layer in enumerate(meta["layers"], start=1):
        try:
            act = (
                _activation(layer["activation"], custom_objects) if "activation" in layer else None
            )
        except GlassnetError as err:
            raise GlassnetError(
                err.expected, got=err.got, layer=index, field="activation"
            ) from None
        cls = _layer_type(layer)
        parts = {name: arrays[f"layer{index}.{name}"] for name in cls.file_shapes(layer)}
        layers.append(cls.from_file(layer, parts, activation=act))
    net = Network(layers)
    extras = {name: arrays[f"extra.{name}"] for name in meta["extras"]}
    training = meta.get("training") or None
    training_arrays = {
        k[len("optimizer.") :]: a for k, a in arrays.items() if k.startswith("optimizer.")
    }
    return ModelFile(net, meta["info"], extras, training, training_arrays)


def _activation(d: dict[str, Any], custom_objects: CustomObjects) -> Activation:
    """The activation a layer's description names: from ``custom_objects`` first (a class
    is called with the saved options), else glassnet's own; an unknown name says how to
    load it."""
    name = d.get("name")
    custom = custom_objects.get(name) if isinstance(name, str) else None
    if custom is not None:
        if isinstance(custom, Activation):
            return custom
        options = {k: v for k, v in d.items() if k != "name"}
        try:
            return custom(**options)
        except TypeError as err:
            raise _bad(f"expected options {name} accepts", str(err)[:80]) from None
    from glassnet.activations import names

    if name not in names():  # the registry, live: a registered activation loads by name
        raise _bad(
            f"expected a known activation ({', '.join(names())}); for your own, "
            f"load with custom_objects={{{name!r}: YourActivation}}",
            repr(name)[:60],
        )
    return activation_from_dict(d)
