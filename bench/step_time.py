"""µs per training step of ``fit`` in this process: 784-256-128-10 ReLU/softmax,
cross-entropy, plain SGD (lr 0.01), float32, one epoch on 20,000 synthetic rows; the
minimum over several runs.  A quick check of the training loop's fixed costs (the full
comparison with PyTorch and scikit-learn is ``bench/run.py``).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/step_time.py 32 128 1024

Also prints the last loss, accuracy and a hash of the final weights, so two versions of
the code can be checked to give the same numbers bit for bit.
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np

from glassnet.model import mlp
from glassnet.optim import SGD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", type=int, nargs="*", default=[32, 128, 1024])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, 784)).astype(np.float32)
    y = rng.integers(0, 10, args.rows)
    for batch in args.batch:
        best = float("inf")
        for _ in range(args.runs):
            net = mlp([784, 256, 128, 10], seed=0, dtype="float32")
            start = time.perf_counter()
            net.fit(X, y, optimizer=SGD(lr=0.01), epochs=1, batch_size=batch, seed=0)
            best = min(best, time.perf_counter() - start)
        steps = -(-args.rows // batch)
        last = net.train_state.history.last()
        digest = hashlib.sha256(b"".join(p.tobytes() for p in net.parameters())).hexdigest()
        print(
            f"batch {batch:>5}: {best / steps * 1e6:9.1f} µs/step  loss {last['loss']!r}  "
            f"accuracy {last['accuracy']!r}  weights {digest[:12]}"
        )


if __name__ == "__main__":
    main()
