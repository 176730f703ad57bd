"""DistributedDataParallel with 2 processes against 1 process (issue 27's benchmark).

    python bench/ddp.py [--rows 200000] [--columns 50] [--epochs 2] [--rounds 3]
                        [--batch-size 256] [--layers 64]

Writes ``rows`` × ``columns`` numbers and a two-class label to a temporary CSV (the
stream memory benchmark's writer), then alternates, each in fresh processes:

- ``glassnet train --engine torch`` in one process, and
- ``torchrun --nproc-per-node 2 -m glassnet train --engine torch`` (gloo on the loopback),

the same run (the same global batch: N processes equal one, docs/scale.md), timed as
whole commands (start-up, reading the file, training, writing the model) and by the run's
own training seconds (``--json``'s ``seconds``).  Prints the times, the ratios 1 ÷ 2
processes within each round, the machine's CPU and load, and the largest difference
between the two runs' trained weights (they should agree to float rounding: float32
sums in another order).  On a 2-core machine no speed-up is expected — both processes
share the two cores that one process's threads already use; the point is correctness.
Nothing is asserted (no timed tests, house rule).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream_memory import write_file  # a sibling script, not a package

SRC = Path(__file__).resolve().parents[1] / "src"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def run(processes: int, data: Path, out: Path, args: argparse.Namespace) -> tuple[float, float]:
    """(wall seconds of the whole command, the run's own training seconds)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    launch = [sys.executable, "-m", "glassnet"]
    if processes > 1:
        launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                  str(processes), "--master-addr", "127.0.0.1", "--master-port",
                  str(_port()), "-m", "glassnet"]  # fmt: skip
    argv = [*launch, "train", "--data", str(data), "--engine", "torch", "--layers",
            args.layers, "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
            "--lr", "0.01", "--optimizer", "sgd", "--no-progress", "--json",
            "--out", str(out)]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed:\n{done.stderr[-2000:]}")
    return wall, float(json.loads(done.stdout)["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--columns", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--layers", default="64")
    args = ap.parse_args()
    print(f"CPU: {_cpu()}, {os.cpu_count()} cores; load at start {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.csv"
        write_file(data, args.rows, args.columns)
        print(f"data: {args.rows} × {args.columns} ({data.stat().st_size / 1e6:.0f} MB CSV)")
        times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        for r in range(args.rounds):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                times[n].append(run(n, data, Path(tmp) / f"m{n}.npz", args))
            (w1, s1), (w2, s2) = times[1][-1], times[2][-1]
            print(f"round {r + 1}: 1 process {w1:.1f} s ({s1:.1f} s training), "
                  f"2 processes {w2:.1f} s ({s2:.1f} s training); "
                  f"1 ÷ 2: {w1 / w2:.2f} whole, {s1 / s2:.2f} training")  # fmt: skip
        with np.load(Path(tmp) / "m1.npz") as a, np.load(Path(tmp) / "m2.npz") as b:
            keys = [k for k in a.files if k != "meta" and a[k].dtype.kind == "f"]
            diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in keys)
        for label, i in (("whole command", 0), ("training", 1)):
            ratios = [t1[i] / t2[i] for t1, t2 in zip(times[1], times[2], strict=True)]
            print(f"{label}: 1 process ÷ 2 processes, median {statistics.median(ratios):.2f} "
                  f"(range {min(ratios):.2f}–{max(ratios):.2f})")  # fmt: skip
        print(f"largest difference between the two runs' trained arrays: {diff:.3g}")
        print(f"load at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
