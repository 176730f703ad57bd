"""µs per training step of ``fit`` in this process: 784-256-128-10 ReLU/softmax,
cross-entropy, plain SGD (lr 0.01; ``--optimizer`` another), float32, one epoch on
20,000 synthetic rows; the minimum over several runs.  A quick check of the training
loop's fixed costs (the full comparison with PyTorch and scikit-learn is
``bench/run.py``).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/step_time.py 32 128 1024
    .venv/bin/python bench/step_time.py 128 512 1024 --modes plain,halves,auto

``--modes`` times the step's ways (glassnet.parallel: ``plain``, ``halves``, ``auto``
= what fit chooses) alternately, run by run, in this process; ``--kernels numpy,numba``
each of them with NumPy's element-wise passes and with numba's kernels
(glassnet.kernels; numba's start-up is paid before the first timed run).  ``--clock
cpu`` times the process's CPU time (all its threads) instead of the wall clock, steadier
on a shared machine.

    .venv/bin/python bench/step_time.py 32 128 1024 --kernels numpy,numba --clock cpu

``--layouts per,flat`` likewise times the parameters' layout (``flat``: one buffer, the
optimiser stepped on whole buffers, what fit does; ``per``: each parameter its own
array, stepped one by one, ``NumpyEngine(flat=False)``), for an optimiser that is not
folded into the multiplies:

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/step_time.py 32 128 1024 \
        --optimizer adam --layouts per,flat --clock cpu

Also prints the last loss, accuracy and a hash of the final weights, so two versions of
the code can be checked to give the same numbers bit for bit.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

import numpy as np

from glassnet.model import mlp
from glassnet.optim import get_optimizer
from glassnet.training.engine import NumpyEngine

#: Each --optimizer's settings (the rates are those the optimisers are used with).
OPTIMIZERS = {
    "sgd": ("sgd", {"lr": 0.01}),
    "momentum": ("momentum", {"lr": 0.01, "momentum": 0.9}),
    "nesterov": ("momentum", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    "adam": ("adam", {"lr": 1e-3}),
    "adamw": ("adamw", {"lr": 1e-3, "weight_decay": 0.01}),
    "rmsprop": ("rmsprop", {"lr": 1e-3}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", type=int, nargs="*", default=[32, 128, 1024])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--modes", default="auto", help="comma-separated: plain,halves,auto")
    parser.add_argument("--sizes", default="784,256,128,10", help="layer sizes")
    parser.add_argument("--kernels", default="numpy", help="comma-separated: numpy,numba")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--optimizer", default="sgd", choices=sorted(OPTIMIZERS))
    parser.add_argument("--layouts", default="flat", help="comma-separated: flat,per")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    # Every way × kernels × layout, alternated run by run ("auto/numpy/per").
    modes = [
        "/".join(
            [mode]
            + ([kernels] if "," in args.kernels else [])
            + ([layout] if "," in args.layouts else [])
        )
        for mode in args.modes.split(",")
        for kernels in args.kernels.split(",")
        for layout in args.layouts.split(",")
    ]
    name, options = OPTIMIZERS[args.optimizer]
    print(f"optimizer {args.optimizer} {options}, clock {args.clock}")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], args.rows)
    for batch in args.batch:
        best = dict.fromkeys(modes, float("inf"))
        nets = {}
        for _ in range(args.runs):
            for mode in modes:
                way = mode.split("/")[0]
                kernels = next((k for k in mode.split("/") if k in ("numpy", "numba")), "")
                flat = not mode.endswith("/per") and args.layouts != "per"
                if way == "auto":
                    os.environ.pop("GLASSNET_STEP", None)
                else:
                    os.environ["GLASSNET_STEP"] = way
                net = mlp(sizes, seed=0, dtype="float32")
                start = clock()
                net.fit(
                    X,
                    y,
                    optimizer=get_optimizer(name, **options),
                    epochs=1,
                    batch_size=batch,
                    seed=0,
                    kernels=kernels or args.kernels,
                    engine=NumpyEngine(flat=flat),
                )
                best[mode] = min(best[mode], clock() - start)
                nets[mode] = net
        steps = -(-args.rows // batch)
        for mode in modes:
            net = nets[mode]
            last = net.train_state.history.last()
            digest = hashlib.sha256(b"".join(p.tobytes() for p in net.parameters())).hexdigest()
            ratio = best[modes[0]] / best[mode]
            print(
                f"batch {batch:>5} {mode:>6}: {best[mode] / steps * 1e6:9.1f} µs/step "
                f"(×{ratio:.2f} vs {modes[0]})  loss {last['loss']!r}  "
                f"accuracy {last['accuracy']!r}  weights {digest[:12]}"
            )
    os.environ.pop("GLASSNET_STEP", None)


if __name__ == "__main__":
    main()
