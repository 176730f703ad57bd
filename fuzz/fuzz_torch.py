"""Coverage-guided fuzzing (atheris) of the PyTorch model-file loader
(``glassnet.interop.load_torch_model``: safetensors + an architecture in its metadata).

The first byte picks how the rest becomes a file: 0, as is; 1, as the safetensors
header (JSON: tensor names, dtypes, shapes, offsets, the architecture) in front of a
real file's tensor bytes.  Only GlassnetError may come out.  Seeds: fuzz/seeds_torch.
Needs safetensors (no torch).  Run::

    python fuzz/fuzz_torch.py -runs=50000 CORPUS_DIR fuzz/seeds_torch
"""

from __future__ import annotations

import struct
import sys

import atheris
import numpy as np
from _common import check_error, scratch_file

with atheris.instrument_imports():
    import glassnet as gn
    from glassnet import interop

PATH = scratch_file(".safetensors")


def base_file() -> bytes:
    net = gn.mlp([3, 4, 2], hidden="leaky_relu", seed=0, dtype="float32")
    interop.save_torch_model(net, PATH)
    with open(PATH, "rb") as f:
        return f.read()


BASE = base_file()
(_N,) = struct.unpack("<Q", BASE[:8])
TENSOR_BYTES = BASE[8 + _N :]


def to_file(data: bytes) -> bytes:
    mode, rest = (data[0] % 2, data[1:]) if data else (0, b"")
    if mode == 0:
        return rest
    return struct.pack("<Q", len(rest)) + rest + TENSOR_BYTES


def one_input(data: bytes) -> None:
    with open(PATH, "wb") as f:
        f.write(to_file(data))
    try:
        net = interop.load_torch_model(PATH)
    except gn.GlassnetError as err:
        check_error(err, PATH)
        return
    net.predict_proba(np.ones((2, net.sizes[0]), dtype=net.dtype))


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
