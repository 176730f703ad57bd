"""Test accuracy of a small CNN on the bundled digits beside the dense network, in the
same run, over several seeds — each trained exactly as ``glassnet train`` trains it
(the library the command uses: :func:`glassnet.runs.prepare_run`, ``train_run``).

    python bench/conv_quality.py [--seeds 3] [--epochs 200]

Per seed S both get the same stratified 75/25 split (S's), the CLI's defaults (Adam
1e-3, weight decay 1e-4, batch 64, float32) and ``--seed S``:

- ``glassnet train --data digits --seed S`` (dense: 64-100-10, standardised pixels);
- ``glassnet train --data digits --model cnn --seed S`` (conv 3×3 16 → max-pool 2 →
  conv 3×3 32 → max-pool 2 → flatten → dense 10; pixels / 16).

Prints each seed's test accuracy and time, the medians, the CPU and the load average.
Bar (issue 21): the CNN's median ≥ 0.985 and ≥ the dense network's.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

from glassnet.runs import prepare_run, train_run


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def one(model: str, seed: int, epochs: int, where: str) -> tuple[float, float]:
    given = {"seed": seed, "epochs": epochs, "model": model}
    run = prepare_run("digits", None, given)
    out = os.path.join(where, f"{model}-{seed}.npz")
    t = time.perf_counter()
    summary = train_run(run, out=out, checkpoint=out + ".ckpt.npz", keep_checkpoint=False,
                        progress=False)  # fmt: skip
    return float(summary.test.accuracy), time.perf_counter() - t  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=200)
    args = ap.parse_args()
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores); load average at start "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    acc: dict[str, list[float]] = {"mlp": [], "cnn": []}
    secs: dict[str, list[float]] = {"mlp": [], "cnn": []}
    with tempfile.TemporaryDirectory() as where:
        for seed in range(args.seeds):
            for model in ("mlp", "cnn"):
                a, s = one(model, seed, args.epochs, where)
                acc[model].append(a)
                secs[model].append(s)
                print(f"seed {seed} {model}: test accuracy {a:.4f}  ({s:.1f} s)", flush=True)
    for model in ("mlp", "cnn"):
        print(f"{model}: median test accuracy {statistics.median(acc[model]):.4f} "
              f"(min {min(acc[model]):.4f}, max {max(acc[model]):.4f}); median time "
              f"{statistics.median(secs[model]):.1f} s")  # fmt: skip
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
