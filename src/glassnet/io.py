"""Model files and checkpoints: ``.npz`` of plain numeric arrays, never pickle.

A file holds

==========================  =================================================
``meta``                    uint8: UTF-8 JSON — format, dtype, layers (sizes,
                            activations), and, for a checkpoint, the training
                            state (optimiser settings, epoch, random stream,
                            history); plus free ``info`` (data set, classes)
``layer{l}.W``, ``.b``      the weights of layer l (from 1), float32/float64
``optimizer.{name}.{i}``    optimiser state for parameter i (checkpoints)
``extra.{name}``            extra float arrays (e.g. the input standardisation)
==========================  =================================================

Loading uses ``np.load(allow_pickle=False)`` and accepts nothing else: object
arrays, unknown or missing keys, wrong shapes or dtypes, members larger than their
declared shapes, and truncated or non-zip files are refused with a
:class:`GlassnetError`.  Saving is atomic: a temporary file in the same folder,
flushed and fsynced, then ``os.replace`` — a crash mid-save leaves the old file whole.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.activations import from_dict as activation_from_dict
from glassnet.errors import GlassnetError
from glassnet.fileio import atomic_write
from glassnet.layers import Dense
from glassnet.network import Network

Array = np.ndarray

FORMAT = "glassnet-model"
VERSION = 1
#: The JSON description may not be larger than this (checked before reading it).
MAX_META_BYTES = 16 * 1024 * 1024
#: Room for the .npy header beyond an array's data bytes.
NPY_HEADER_SLACK = 4096


@dataclass
class Saved:
    """What a model file holds: the network (with ``train_state`` for a checkpoint),
    the free-form ``info`` and the ``extras`` arrays."""

    network: Network
    info: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Array] = field(default_factory=dict)


# -- saving --------------------------------------------------------------------------------
def save(
    net: Network,
    path: str | Path,
    *,
    info: dict[str, Any] | None = None,
    extras: dict[str, Array] | None = None,
    training: bool = True,
) -> None:
    """Write ``net`` (and its training state unless ``training=False``) to ``path``, atomically."""
    arrays: dict[str, Array] = {}
    layers = []
    for index, layer in enumerate(net.layers, start=1):
        arrays[f"layer{index}.W"] = layer.W
        arrays[f"layer{index}.b"] = layer.b
        layers.append(
            {"n_in": layer.n_in, "n_out": layer.n_out, "activation": layer.activation.to_dict()}
        )
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": str(net.dtype),
        "layers": layers,
        "info": info or {},
        "extras": {},
        "training": None,
    }
    for name, a in (extras or {}).items():
        a = np.asarray(a)
        if a.dtype.kind != "f":
            raise GlassnetError("expected a float array", got=str(a.dtype), field=f"extra.{name}")
        arrays[f"extra.{name}"] = a
        meta["extras"][name] = {"shape": list(a.shape), "dtype": str(a.dtype)}
    state = net.train_state
    if training and state is not None:
        meta["training"] = {
            "optimizer": state.optimizer.config(),
            "loss": state.loss,
            "seed": state.seed,
            "epoch": state.epoch,
            # PCG64's state is a dict of (big) ints: JSON keeps them exactly.
            "rng": state.rng.bit_generator.state,
            "history": state.history.to_dict(),
        }
        for key, a in state.optimizer.state_arrays().items():
            arrays[f"optimizer.{key}"] = a
    text = json.dumps(meta, allow_nan=False)
    arrays["meta"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    atomic_save_npz(path, arrays)


def atomic_save_npz(path: str | Path, arrays: dict[str, Array]) -> None:
    """``np.savez`` through :func:`glassnet.fileio.atomic_write`."""
    atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def load(path: str | Path) -> Network:
    """The network saved at ``path`` (with its training state, if it is a checkpoint)."""
    return load_saved(path).network


def load_saved(path: str | Path) -> Saved:
    """Everything in a model file, checked (see the module docstring)."""
    name = str(path)
    try:
        return _load(Path(path))
    except GlassnetError as err:
        raise err.with_file(name) from None


def _bad(expected: str, got: str, field: str | None = None) -> GlassnetError:
    return GlassnetError(expected, got=got, field=field)


def _load(path: Path) -> Saved:
    if not path.is_file():
        raise _bad("expected a glassnet model file (.npz)", "no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            sizes = {i.filename: i.file_size for i in zf.infolist()}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise _bad(
            "expected a glassnet model file (.npz, a zip of arrays)",
            f"a file that is not a whole zip archive ({err})",
        ) from None
    if "meta.npy" not in sizes:
        raise _bad(
            "expected a 'meta' entry (the architecture)", f"entries {sorted(sizes)[:8]}", "meta"
        )
    if sizes["meta.npy"] > MAX_META_BYTES:
        raise _bad(f"expected at most {MAX_META_BYTES} bytes", f"{sizes['meta.npy']}", "meta")
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = _read_meta(_read(npz, "meta", sizes, None))
            expected = _expected_arrays(meta)
            keys = set(npz.files) - {"meta"}
            if keys != set(expected):
                missing, extra = sorted(set(expected) - keys), sorted(keys - set(expected))
                raise _bad(
                    "expected exactly the arrays the architecture describes",
                    f"missing {missing or 'none'}, unexpected {extra or 'none'}",
                    "arrays",
                )
            arrays = {key: _read(npz, key, sizes, spec) for key, spec in expected.items()}
    except GlassnetError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        # allow_pickle=False raises ValueError for object arrays; damage raises the rest.
        raise _bad(
            "expected plain numeric arrays in a whole file",
            f"{type(err).__name__}: {err}",
        ) from None
    return _build(meta, arrays)


def _read(
    npz: Any, key: str, sizes: dict[str, int], spec: tuple[tuple[int, ...], str] | None
) -> Array:
    """One member, its stored size checked against its declared shape *before* reading."""
    if spec is not None:
        shape, dtype = spec
        limit = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize + NPY_HEADER_SLACK
        if sizes.get(f"{key}.npy", 0) > limit:
            raise _bad(
                f"expected at most {limit} bytes for shape {shape}", f"{sizes[f'{key}.npy']}", key
            )
    a = npz[key]
    if spec is None:
        if a.dtype != np.uint8 or a.ndim != 1:
            raise _bad("expected UTF-8 bytes", f"{a.dtype} shape {a.shape}", key)
        return a
    shape, dtype = spec
    if a.dtype != np.dtype(dtype) or a.shape != shape:
        raise _bad(f"expected {dtype} shaped {shape}", f"{a.dtype} shaped {a.shape}", key)
    if not np.isfinite(a).all():
        raise _bad("expected finite numbers", "NaN or inf", key)
    return a


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
        ok = (
            isinstance(layer, dict)
            and all(
                isinstance(layer.get(k), int) and 1 <= layer[k] <= 1 << 24
                for k in ("n_in", "n_out")
            )
            and isinstance(layer.get("activation"), dict)
        )
        if not ok:
            raise GlassnetError(
                "expected {n_in, n_out, activation} with sizes from 1 to 2^24",
                got=repr(layer)[:80],
                layer=index,
                field="meta.layers",
            )
    for key in ("info", "extras"):
        if not isinstance(meta.get(key), dict):
            raise _bad("expected a JSON object", repr(meta.get(key))[:60], f"meta.{key}")
    if meta.get("training") is not None and not isinstance(meta["training"], dict):
        raise _bad("expected a JSON object or null", repr(meta["training"])[:60], "meta.training")
    return meta


def _expected_arrays(meta: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every array key the description implies, with its shape and dtype."""
    dtype = meta["dtype"]
    expected: dict[str, tuple[tuple[int, ...], str]] = {}
    shapes = []
    for index, layer in enumerate(meta["layers"], start=1):
        expected[f"layer{index}.W"] = ((layer["n_in"], layer["n_out"]), dtype)
        expected[f"layer{index}.b"] = ((layer["n_out"],), dtype)
        shapes += [(layer["n_in"], layer["n_out"]), (layer["n_out"],)]
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
    training = meta.get("training")
    if training:
        from glassnet.optim import optimizer_from_config

        opt = optimizer_from_config(_get(training, "optimizer", dict))
        if opt.t > 0:  # state arrays exist from the first step on
            for state_name in opt.state_names:
                for i, shape in enumerate(shapes):
                    expected[f"optimizer.{state_name}.{i}"] = (shape, dtype)
    return expected


def _get(d: dict[str, Any], key: str, kind: type) -> Any:
    value = d.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _bad(f"expected a {kind.__name__}", repr(value)[:60], f"meta.training.{key}")
    return value


def _build(meta: dict[str, Any], arrays: dict[str, Array]) -> Saved:
    layers = []
    for index, layer in enumerate(meta["layers"], start=1):
        try:
            act = activation_from_dict(layer["activation"])
        except GlassnetError as err:
            err.layer = index
            raise GlassnetError(
                err.expected, got=err.got, layer=index, field="activation"
            ) from None
        layers.append(Dense(arrays[f"layer{index}.W"], arrays[f"layer{index}.b"], act))
    net = Network(layers)
    training = meta.get("training")
    if training:
        net.train_state = _train_state(training, arrays, net)
    extras = {name: arrays[f"extra.{name}"] for name in meta["extras"]}
    return Saved(net, meta["info"], extras)


def _train_state(training: dict[str, Any], arrays: dict[str, Array], net: Network) -> Any:
    from glassnet.optim import optimizer_from_config
    from glassnet.training import History, TrainState

    opt = optimizer_from_config(_get(training, "optimizer", dict))
    state = {k[len("optimizer.") :]: a for k, a in arrays.items() if k.startswith("optimizer.")}
    opt.load_state_arrays(state, net.parameters())
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = _get(training, "rng", dict)
    except (TypeError, ValueError, KeyError) as err:
        raise _bad("expected a PCG64 random state", str(err)[:60], "meta.training.rng") from None
    loss = _get(training, "loss", str)
    net.check_loss(loss)
    return TrainState(
        optimizer=opt,
        loss=loss,
        seed=_get(training, "seed", int),
        rng=rng,
        epoch=_get(training, "epoch", int),
        history=History.from_dict(_get(training, "history", dict)),
    )
