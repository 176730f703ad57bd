"""The training step with the parameters laid flat against parameter by parameter, in one
process: 784-256-128-10 ReLU/softmax, cross-entropy, float32, the step ``fit`` runs
(:class:`glassnet.parallel.TrainStep`, plain: one core for the element-wise work), two
copies of the same network, one per layout, timed in alternating blocks of steps;
the fastest block of each.  Also the optimiser's update alone (``Optimizer.step`` over
the six parameters against ``Optimizer.step_flat`` over the buffers, on the gradients
of one batch).  Prints µs per step and the ratios, and whether the two networks'
weights are still equal bit for bit after every block.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/flat_step.py --batches 32,128,1024 \\
        --optimizers momentum,adam --clock cpu

``--clock cpu`` (the default) times the process's CPU time, which a shared machine
disturbs less than the wall clock; with one BLAS thread it is the step's own time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from glassnet.losses import get_loss
from glassnet.model import mlp
from glassnet.optim import get_optimizer
from glassnet.parallel import TrainStep

OPTIMIZERS = {
    "momentum": ("momentum", {"lr": 0.01, "momentum": 0.9}),
    "nesterov": ("momentum", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    "adam": ("adam", {"lr": 1e-3}),
    "adamw": ("adamw", {"lr": 1e-3, "weight_decay": 0.01}),
    "rmsprop": ("rmsprop", {"lr": 1e-3}),
    "sgd-decay": ("sgd", {"lr": 0.01, "weight_decay": 1e-4}),
}


def fastest(blocks: dict[str, Callable[[], None]], rounds: int, clock: Callable[[], float]):
    """The fastest of ``rounds`` timings of each block, the blocks alternated round by round."""
    best = dict.fromkeys(blocks, float("inf"))
    for _ in range(rounds):
        for name, run in blocks.items():
            start = clock()
            run()
            best[name] = min(best[name], clock() - start)
    return best


def measure(
    key: str,
    batch: int,
    X: np.ndarray,
    Y: np.ndarray,
    sizes: list[int],
    args: argparse.Namespace,
    clock: Callable[[], float],
) -> str:
    """One optimiser at one batch size: the line to print."""
    name, options = OPTIMIZERS[key]
    rows = X.shape[0]
    nets = {lay: mlp(sizes, seed=0, dtype="float32") for lay in ("per", "flat")}
    steps = {
        lay: TrainStep(
            nets[lay],
            X,
            Y,
            get_loss("cross_entropy"),
            get_optimizer(name, **options),
            fused=True,
            batch_size=batch,
            mode="plain",
            flat=lay == "flat",
        )
        for lay in nets
    }
    order = np.random.default_rng(1).permutation(rows)
    n_steps = max(5, int(args.block / (batch * 25e-6)))  # ~25 µs a row at most
    batches = [order[s : s + batch] for s in ((i * batch) % (rows - batch) for i in range(n_steps))]

    def block(step: TrainStep) -> Callable[[], None]:
        def run() -> None:
            for idx in batches:
                step(idx)

        return run

    best = fastest({lay: block(step) for lay, step in steps.items()}, args.rounds, clock)
    same = all(
        np.array_equal(a, b)
        for a, b in zip(nets["per"].parameters(), nets["flat"].parameters(), strict=True)
    )
    per, flat = (best[lay] / n_steps * 1e6 for lay in ("per", "flat"))

    # The update alone, on the gradients the last step left in each step's buffers (a
    # copy kept and put back before each update, which may overwrite them).
    reps = 200

    def update(step: TrainStep) -> Callable[[], None]:
        kept = [g.copy() for g in step.grads]
        layout = step.flat

        def run() -> None:
            for _ in range(reps):
                for g, keep in zip(step.grads, kept, strict=True):
                    np.copyto(g, keep)
                if layout is not None:
                    step.opt.step_flat(layout)
                else:
                    step.opt.step(step.params, step.grads, scratch_grads=True)

        return run

    upd = fastest({lay: update(step) for lay, step in steps.items()}, args.rounds, clock)
    up, uf = upd["per"] / reps * 1e6, upd["flat"] / reps * 1e6
    return (
        f"{key:>9} batch {batch:>5}: step per-parameter {per:8.1f} µs, flat {flat:8.1f} µs "
        f"(per/flat ×{per / flat:.3f}, saved {per - flat:6.1f} µs); update alone (with its "
        f"gradient copy) {up:6.1f} → {uf:6.1f} µs (×{up / uf:.2f}); weights equal: {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="32,128,1024")
    parser.add_argument("--optimizers", default="momentum,adam")
    parser.add_argument("--sizes", default="784,256,128,10")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--block", type=float, default=0.25, help="seconds per block (about)")
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"])
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, sizes[0])).astype(np.float32)
    Y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], args.rows)]
    print(f"clock {args.clock}, {args.rounds} rounds, blocks of ~{args.block} s")
    for key in args.optimizers.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            print(measure(key, batch, X, Y, sizes, args, clock), flush=True)


if __name__ == "__main__":
    main()
