"""µs per training step of ``fit`` in this process: 784-256-128-10 ReLU/softmax,
cross-entropy, plain SGD (lr 0.01), float32, one epoch on 20,000 synthetic rows; the
minimum over several runs.  A quick check of the training loop's fixed costs (the full
comparison with PyTorch and scikit-learn is ``bench/run.py``).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/step_time.py 32 128 1024
    .venv/bin/python bench/step_time.py 128 512 1024 --modes plain,halves,auto

``--modes`` times the step's ways (glassnet.parallel: ``plain``, ``halves``, ``auto``
= what fit chooses) alternately, run by run, in this process; ``--kernels numpy,numba``
each of them with NumPy's element-wise passes and with numba's kernels
(glassnet.kernels; numba's start-up is paid before the first timed run).  ``--clock
cpu`` times the process's CPU time (all its threads) instead of the wall clock, steadier
on a shared machine.

    .venv/bin/python bench/step_time.py 32 128 1024 --kernels numpy,numba --clock cpu

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
from glassnet.optim import SGD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", type=int, nargs="*", default=[32, 128, 1024])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--modes", default="auto", help="comma-separated: plain,halves,auto")
    parser.add_argument("--sizes", default="784,256,128,10", help="layer sizes")
    parser.add_argument("--kernels", default="numpy", help="comma-separated: numpy,numba")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = [
        f"{mode}/{kernels}" if "," in args.kernels else mode
        for mode in args.modes.split(",")
        for kernels in args.kernels.split(",")
    ]
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], args.rows)
    for batch in args.batch:
        best = dict.fromkeys(modes, float("inf"))
        nets = {}
        for _ in range(args.runs):
            for mode in modes:
                way, _, kernels = mode.partition("/")
                if way == "auto":
                    os.environ.pop("GLASSNET_STEP", None)
                else:
                    os.environ["GLASSNET_STEP"] = way
                net = mlp(sizes, seed=0, dtype="float32")
                start = clock()
                net.fit(
                    X,
                    y,
                    optimizer=SGD(lr=0.01),
                    epochs=1,
                    batch_size=batch,
                    seed=0,
                    kernels=kernels or args.kernels,
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
