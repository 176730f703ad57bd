"""Coverage-guided fuzzing (atheris) of the model loader (``glassnet.io.load_saved``).

The first byte of an input picks how the rest becomes a model file, so that mutations
reach past the zip layer's CRC checks into the checks of the description and arrays:

0. the rest, as is (mutated, truncated, bit-flipped zip files);
1. the rest as the ``meta`` description (JSON text), zipped with a real checkpoint's
   arrays — wrong shapes, dtypes, sizes, activations, optimiser state, huge declared sizes;
2. a real checkpoint with one member (picked by the second byte) replaced by the rest,
   as raw ``.npy`` bytes — crafted headers (object dtypes, huge shapes), short data;
3. a real checkpoint cut at, or with bits flipped at, positions read from the rest.

Only GlassnetError may come out; whatever loads must also predict.  Seeds:
fuzz/seeds_model (``python fuzz/make_seeds.py`` remakes them).  Run::

    python fuzz/fuzz_model.py -runs=50000 CORPUS_DIR fuzz/seeds_model
"""

from __future__ import annotations

import io
import sys
import zipfile

import atheris
import numpy as np
from _common import check_error, scratch_file

with atheris.instrument_imports():
    import glassnet as gn
    from glassnet import model as gmodel

PATH = scratch_file(".npz")


def base_checkpoint() -> bytes:
    """A small checkpoint with every kind of member: weights, Adam state, extras."""
    net = gn.mlp([3, 4, 2], hidden="leaky_relu", seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 3)), np.arange(12) % 2
    net.fit(X, y, optimizer=gn.optim.Adam(lr=0.01, schedule=gn.optim.StepLR(2, 0.5)), epochs=2)
    gmodel.save(net, PATH, info={"classes": ["a", "b"]}, extras={"input_mean": np.zeros(3)})
    with open(PATH, "rb") as f:
        return f.read()


BASE = base_checkpoint()
with zipfile.ZipFile(io.BytesIO(BASE)) as _zf:
    MEMBERS = {name: _zf.read(name) for name in _zf.namelist()}
NAMES = sorted(MEMBERS)


def rezip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    return buf.getvalue()


def to_file(data: bytes) -> bytes:
    mode, rest = (data[0] % 4, data[1:]) if data else (0, b"")
    if mode == 0:
        return rest
    if mode == 1:
        meta = np.frombuffer(rest, dtype=np.uint8)
        buf = io.BytesIO()
        np.lib.format.write_array(buf, meta)
        return rezip({**MEMBERS, "meta.npy": buf.getvalue()})
    if mode == 2:
        name = NAMES[rest[0] % len(NAMES)] if rest else NAMES[0]
        return rezip({**MEMBERS, name: rest[1:]})
    out = bytearray(BASE)
    for i in range(0, len(rest) - 2, 3):
        pos = int.from_bytes(rest[i : i + 2], "little") % len(out)
        if rest[i + 2] == 0:
            del out[pos:]  # truncate
            break
        out[pos] ^= rest[i + 2]
    return bytes(out)


def one_input(data: bytes) -> None:
    with open(PATH, "wb") as f:
        f.write(to_file(data))
    try:
        saved = gmodel.load_saved(PATH)
    except gn.GlassnetError as err:
        check_error(err, PATH)
        return
    net = saved.network
    net.predict_proba(np.ones((2, net.sizes[0])))


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
