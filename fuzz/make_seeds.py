"""Write the binary seed inputs of fuzz_model.py and fuzz_torch.py (and the worksheet
seeds) from glassnet itself.  Run after a change to the model-file formats::

    python fuzz/make_seeds.py
"""

from __future__ import annotations

import io
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def main() -> None:
    import fuzz_model
    import fuzz_torch

    import glassnet as gn
    from glassnet.check.exercise import make_exercise
    from glassnet.spec import example_path

    model = HERE / "seeds_model"
    model.mkdir(exist_ok=True)
    base = fuzz_model.BASE
    (model / "raw_checkpoint.bin").write_bytes(b"\x00" + base)
    net = gn.mlp([2, 2], output="sigmoid", dtype="float32")
    net.save(fuzz_model.PATH)
    (model / "raw_model.bin").write_bytes(b"\x00" + Path(fuzz_model.PATH).read_bytes())
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        meta = zf.read("meta.npy")
        (model / "meta.bin").write_bytes(b"\x01" + bytes(np.load(io.BytesIO(meta))))
        for i, name in enumerate(fuzz_model.NAMES):
            (model / f"member_{i}.bin").write_bytes(b"\x02" + bytes([i]) + zf.read(name))
    (model / "flips.bin").write_bytes(b"\x03" + bytes([7, 1, 255, 200, 3, 1, 40, 0, 0]))

    torch_dir = HERE / "seeds_torch"
    torch_dir.mkdir(exist_ok=True)
    raw = fuzz_torch.BASE
    (torch_dir / "raw.bin").write_bytes(b"\x00" + raw)
    (n,) = struct.unpack("<Q", raw[:8])
    (torch_dir / "header.bin").write_bytes(b"\x01" + raw[8 : 8 + n])

    sheets = HERE / "seeds_worksheet"
    sheets.mkdir(exist_ok=True)
    (sheets / "seed_worksheet.toml").write_text(example_path("seed_worksheet").read_text())
    ex = make_exercise([2, 2, 2], ["tanh", "softmax"], None, seed=3)
    filled = ex.spec_text + "\n[values]\nloss = 0.7\nz1 = [0.1, -0.2]\ndelta2 = [0.3, -0.3]\n"
    (sheets / "exercise.toml").write_text(filled)
    (sheets / "by_name.toml").write_text('spec = "seed"\n[values]\nh1_in = [1.35, 1.27, 1.8]\n')
    print("wrote", *(p.name for d in (model, torch_dir, sheets) for p in sorted(d.iterdir())))


if __name__ == "__main__":
    main()
