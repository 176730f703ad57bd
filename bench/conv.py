"""glassnet's convolutional training step beside PyTorch's on the CPU, in the same run.

    python bench/conv.py [--rounds 7] [--steps 50] [--threads 1]

The network: conv2d(1→8, 3×3, padding 1, ReLU) → max-pool 2 → flatten → dense 10
(softmax + cross-entropy), float32, plain SGD (lr 0.01) — on 8×8 and 28×28
single-channel images, batches of 32 and 128.  One step is: gather the batch's rows by
index from the whole data, forward, loss, backward, update.

- glassnet: the NumPy engine's step as ``fit`` runs it (``NumpyEngine.step``: the
  buffered conv step, glassnet/training/conv_step.py);
- PyTorch: ``nn.Sequential(Conv2d, ReLU, MaxPool2d, Flatten, Linear)``,
  ``F.cross_entropy``, ``torch.optim.SGD``, ``zero_grad(set_to_none=True)``, the batch
  indexed from a tensor of the whole data.

Both start from the same weights.  Rounds alternate (glassnet, PyTorch, glassnet, ...)
so a change in the machine's load falls on both; each round times ``--steps`` steps
after one warm-up step, and the table gives each side's median µs per step and the
ratio PyTorch time ÷ glassnet time (> 1: glassnet is faster).  Both run on ``--threads``
threads (OPENBLAS_NUM_THREADS for NumPy, ``torch.set_num_threads``): on a shared
machine one thread each is the steadiest comparison.  Prints the CPU and the load
average before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(hw: int, batch: int, args: argparse.Namespace) -> tuple[float, float]:
    """(glassnet, PyTorch) median seconds per step on hw×hw images in batches of batch."""
    import numpy as np
    import torch

    import glassnet as gn
    from glassnet.interop import to_torch
    from glassnet.layers.conv2d import Conv2d
    from glassnet.layers.dense import Dense
    from glassnet.layers.flatten import Flatten
    from glassnet.layers.max_pool2d import MaxPool2d
    from glassnet.losses import get_loss
    from glassnet.training.batches import Rows
    from glassnet.training.engine import NumpyEngine

    rng = np.random.default_rng(0)
    X = rng.random((args.rows, 1, hw, hw), dtype=np.float32)
    labels = rng.integers(0, 10, args.rows)
    Y = np.eye(10, dtype=np.float32)[labels]
    conv = Conv2d(rng.normal(0, 0.5, (8, 1, 3, 3)).astype(np.float32),
                  np.zeros(8, np.float32), (1, hw, hw), padding=1, activation="relu")  # fmt: skip
    pool = MaxPool2d(conv.out_shape, size=2)
    flat = Flatten(pool.out_shape)
    dense = Dense(rng.normal(0, 0.1, (flat.n_out, 10)).astype(np.float32),
                  np.zeros(10, np.float32), "softmax")  # fmt: skip
    net = gn.Network([conv, pool, flat, dense])
    module = to_torch(net)  # the same weights; softmax is folded into the loss
    layers = list(module.children())[:-1]  # drop nn.Softmax: F.cross_entropy has it
    tnet = torch.nn.Sequential(*layers)
    opt_t = torch.optim.SGD(tnet.parameters(), lr=0.01)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(labels)

    engine = NumpyEngine()
    engine.begin(net, get_loss("cross_entropy"), gn.optim.SGD(lr=0.01),
                 Rows(X, Y, labels, np.arange(args.rows)), batch_size=batch,
                 rng=np.random.default_rng(0), dropout=0.0)  # fmt: skip
    order = [rng.permutation(args.rows)[:batch] for _ in range(args.steps + 1)]
    order_t = [torch.from_numpy(i) for i in order]

    def run_glassnet() -> float:
        engine.step(order[0])
        t = time.perf_counter()
        for idx in order[1:]:
            engine.step(idx)
        return (time.perf_counter() - t) / args.steps

    def run_torch() -> float:
        def one(i: torch.Tensor) -> None:
            opt_t.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(tnet(Xt[i]), yt[i])
            loss.backward()
            opt_t.step()

        one(order_t[0])
        t = time.perf_counter()
        for i in order_t[1:]:
            one(i)
        return (time.perf_counter() - t) / args.steps

    g, p = [], []
    for _ in range(args.rounds):
        g.append(run_glassnet())
        p.append(run_torch())
    engine.end()
    return statistics.median(g), statistics.median(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", type=int, default=2048)
    args = ap.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores), {args.threads} thread(s) each; "
          f"numpy {np.__version__}, torch {torch.__version__}, "
          f"Python {sys.version.split()[0]}")  # fmt: skip
    print(f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"{'image':>6} {'batch':>5} {'glassnet µs':>12} {'PyTorch µs':>11} "
          f"{'PyTorch ÷ glassnet':>19}")  # fmt: skip
    for hw in (8, 28):
        for batch in (32, 128):
            gm, pm = measure(hw, batch, args)
            print(f"{hw:>3}×{hw:<2} {batch:>5} {gm * 1e6:>12.0f} {pm * 1e6:>11.0f} "
                  f"{pm / gm:>19.2f}", flush=True)  # fmt: skip
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
