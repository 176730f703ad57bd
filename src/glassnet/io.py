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
import math
import struct
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.activations import from_dict as activation_from_dict
from glassnet.errors import GlassnetError
from glassnet.fileio import atomic_write
from glassnet.layers import Dense
from glassnet.limits import check_fits
from glassnet.network import Network

Array = np.ndarray

FORMAT = "glassnet-model"
VERSION = 1
#: glassnet stores model files uncompressed (ratio 1); a member inflating more than this
#: is refused before it is inflated (random floats deflate by less than 2:1).
MAX_RATIO = 20.0
#: The JSON description may not be larger than this (checked before reading it).
MAX_META_BYTES = 16 * 1024 * 1024


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


# -- reading .npz without trusting it ------------------------------------------------------
#: Errors the zip, zlib and npy layers raise for damaged input (never a bug of ours).
_DAMAGE = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    NotImplementedError,  # a compression method zipfile does not know
    RuntimeError,  # an encrypted member
    OverflowError,
    struct.error,
    zlib.error,
)


def _npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from an .npy header; ``f`` is left at the data."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f"npy format version {version}")


#: What numpy's .npy header parser (a Python literal, read with tokenize and ast) raises
#: for a crafted header: found by fuzzing (a TokenError escaped np.load too).
_BAD_HEADER = (tokenize.TokenError, SyntaxError, RecursionError, TypeError)


class NpzReader:
    """An ``.npz`` opened for reading without trusting it.

    Opening reads only the zip's directory and each member's ``.npy`` header, and refuses
    (GlassnetError) anything that is not plain numeric arrays: names that repeat or are
    not ``NAME.npy``, object, structured or sub-array dtypes, a header that does not parse,
    a member whose size on disk is not exactly its header plus its shape's bytes (a
    truncated member, or a small one declaring a huge shape), and members that together
    would not fit in memory.  So :meth:`read` allocates only what was checked, and the
    declared shapes (``headers``) can be compared with what is expected *before* reading.
    Nothing is ever unpickled.
    """

    def __init__(self, path: str | Path, *, max_ratio: float | None = None) -> None:
        self.path = Path(path)
        self.max_ratio = max_ratio
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _DAMAGE as err:
            raise _bad(
                "expected an .npz file (a zip of arrays)",
                f"a file that is not a whole zip archive ({err})",
            ) from None
        try:
            self.headers = self._headers()
        except BaseException:
            self._zip.close()
            raise

    def _headers(self) -> dict[str, tuple[tuple[int, ...], np.dtype, bool]]:
        infos = self._zip.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise _bad("expected each array once", "a name stored twice", "arrays")
        self._infos = {}
        headers = {}
        total = 0
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise _bad("expected only .npy arrays", repr(info.filename)[:60], "arrays")
            key = info.filename[: -len(".npy")]
            ratio = info.file_size / max(info.compress_size, 1)
            if self.max_ratio is not None and ratio > self.max_ratio:
                # a zip bomb: refused from the directory, before a byte is inflated
                raise _bad(
                    f"expected a member compressed at most {self.max_ratio:g}:1",
                    f"{info.file_size} bytes from {info.compress_size} ({ratio:.0f}:1)",
                    key,
                )
            try:
                with self._zip.open(info) as f:
                    shape, fortran, dtype = _npy_header(f)
                    header_bytes = f.tell()
            except (*_DAMAGE, *_BAD_HEADER) as err:
                raise _bad(
                    "expected plain numeric arrays in a whole file",
                    f"{type(err).__name__}: {err}",
                    key,
                ) from None
            if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
                raise _bad("expected plain numeric arrays (never objects)", str(dtype), key)
            nbytes = math.prod(shape) * dtype.itemsize
            if header_bytes + nbytes != info.file_size:
                raise _bad(
                    f"expected {header_bytes + nbytes} bytes for shape {shape} {dtype}",
                    f"{info.file_size} bytes",
                    key,
                )
            total += nbytes
            self._infos[key] = info
            headers[key] = (tuple(shape), dtype, bool(fortran))
        check_fits(total, "the arrays")
        return headers

    def read(self, key: str) -> Array:
        """The array ``key`` (its size already checked against its header)."""
        shape, dtype, fortran = self.headers[key]
        buf = bytearray(math.prod(shape) * dtype.itemsize)
        try:
            with self._zip.open(self._infos[key]) as f:
                _npy_header(f)
                view = memoryview(buf)
                got = 0
                while got < len(buf):
                    chunk = f.read(min(len(buf) - got, 1 << 24))
                    if not chunk:
                        raise EOFError("the member ends early")
                    view[got : got + len(chunk)] = chunk
                    got += len(chunk)
                f.read()  # to the end: zipfile checks the CRC there
        except _DAMAGE as err:
            raise _bad(
                "expected plain numeric arrays in a whole file",
                f"{type(err).__name__}: {err}",
                key,
            ) from None
        a = np.frombuffer(buf, dtype=dtype)
        return a.reshape(shape, order="F" if fortran else "C")

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load(path: Path) -> Saved:
    if not path.is_file():
        raise _bad(
            "expected a glassnet model file (.npz)",
            "a folder"
            if path.is_dir()
            else "no such file"
            if not path.exists()
            else "not a regular file",
        )
    with NpzReader(path, max_ratio=MAX_RATIO) as npz:
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
    return _build(meta, arrays)


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
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise _bad("expected a PCG64 random state", str(err)[:60], "meta.training.rng") from None
    loss = _get(training, "loss", str)
    net.check_loss(loss)
    seed, epoch = _get(training, "seed", int), _get(training, "epoch", int)
    for name, value in (("seed", seed), ("epoch", epoch)):
        if value < 0:  # a negative seed would reach numpy's seeding as a ValueError
            raise _bad("expected a whole number ≥ 0", repr(value), f"meta.training.{name}")
    return TrainState(
        optimizer=opt,
        loss=loss,
        seed=seed,
        rng=rng,
        epoch=epoch,
        history=History.from_dict(_get(training, "history", dict)),
    )
