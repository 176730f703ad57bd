"""Peak memory of ``glassnet train --stream`` against the file's size (issue 27).

    python bench/stream_memory.py [--rows 450000] [--columns 50] [--engine numpy|torch]
                                  [--in-memory] [--shards S [--processes N]]

Writes a CSV of ``rows`` × ``columns`` numbers (4 decimals, about 9 bytes a cell) and a
two-class label into a temporary folder — and a quarter of it, the same rows' first
quarter — then runs, each in a fresh process, ``glassnet train --stream`` for one epoch
(window 16 batches of 256 rows: 4,096 rows, 1.6 MB of float64 inputs) on each file, and
prints each run's peak resident memory (the child's ``ru_maxrss``: interpreter, NumPy,
pyarrow, the model and the data) beside the file's size, and the memory of a process
that only imports what the run imports (the floor).  A streamed run's peak should be the
same for the quarter file and the whole one: bounded by the window and Arrow's read
blocks, not by the file.  ``--in-memory`` also runs the ordinary ``glassnet train`` (the
whole file in memory) on the whole file, for comparison.  ``--shards S`` reads the file
as S shards (``glassnet train --stream --shards S``), in one process or, with
``--processes N``, in N processes under torchrun (torch engine, gloo): the peak printed
is then the largest of the processes' (``ru_maxrss`` of the waited-for descendants), and
each process's rows read are printed.  Nothing is asserted: this prints, for a person to
read (no timed tests, house rule).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"
FLOOR = "import numpy, pyarrow, pyarrow.csv, pyarrow.compute, glassnet.stream, glassnet.cli{}"


def write_file(path: Path, rows: int, columns: int, seed: int = 0) -> None:
    """rows × columns numbers and a label, written by pyarrow in blocks (small writer)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    block = 50_000
    writer = None
    with path.open("wb") as f:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            values = np.round(rng.normal(100, 30, size=(n, columns)), 4)
            label = (values[:, 0] + values[:, 1] > 200).astype(np.int64)
            table = pa.table({**{f"x{j}": values[:, j] for j in range(columns)}, "label": label})
            if writer is None:
                writer = pacsv.CSVWriter(f, table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()


def child_peak(argv: list[str]) -> tuple[float, float, str]:
    """(peak MB, seconds, stdout's last line) of one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    # The wrapper measures its own child only: ru_maxrss of RUSAGE_CHILDREN is the
    # largest of the children waited for, and this wrapper waits for exactly one.
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "out = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "s = time.perf_counter() - t\n"
        "if out.returncode: sys.exit(out.stderr[-2000:])\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(peak, s, (out.stdout.strip().splitlines() or [''])[-1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, env=env, check=True
    )
    kb, seconds, last = done.stdout.split(" ", 2)
    return int(kb) / 1024, float(seconds), last.strip()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=450_000)
    ap.add_argument("--columns", type=int, default=50)
    ap.add_argument("--engine", choices=("numpy", "torch"), default="numpy")
    ap.add_argument("--in-memory", action="store_true", help="also the in-memory train")
    ap.add_argument("--shards", type=int, help="read the file as S shards (--stream --shards)")
    ap.add_argument("--processes", type=int, default=1, help="torchrun processes (--shards)")
    args = ap.parse_args()
    if args.processes > 1 and (args.engine != "torch" or not args.shards):
        ap.error("--processes needs --engine torch and --shards")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for rows in (args.rows // 4, args.rows):
            path = Path(folder) / f"data{rows}.csv"
            write_file(path, rows, args.columns)
            files.append(path)
        floor_code = FLOOR.format(", torch" if args.engine == "torch" else "")
        floor, _, _ = child_peak([sys.executable, "-c", floor_code])
        print(f"imports alone ({args.engine} engine): {floor:.0f} MB")
        launch = [sys.executable, "-m", "glassnet"]
        if args.processes > 1:
            launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                      str(args.processes), "--master-addr", "127.0.0.1", "--master-port",
                      str(_free_port()), "-m", "glassnet"]  # fmt: skip
        shards = ["--shards", str(args.shards)] if args.shards else []
        for path in files:
            argv = [*launch, "train", "--data", str(path), "--stream", *shards,
                    "--layers", "64", "--batch-size", "256", "--window", "16", "--epochs", "1",
                    "--engine", args.engine, "--out", str(Path(folder) / "m.npz"),
                    "--no-progress", "--json"]  # fmt: skip
            peak, seconds, last = child_peak(argv)
            summary = json.loads(last)
            size = path.stat().st_size / 1e6
            read = f", rows read per process {summary['rows_read']}" if args.shards else ""
            print(
                f"--stream{' --shards ' + str(args.shards) if args.shards else ''} on "
                f"{size:6.1f} MB ({summary['rows']} rows × {args.columns}), "
                f"{args.processes} process(es): peak {peak:6.0f} MB ({peak - floor:+.0f} MB over "
                f"the imports), {seconds:.1f} s (first pass + 1 epoch), loss "
                f"{summary['last_epoch']['loss']:.4f}{read}"
            )
        if args.in_memory:
            path = files[-1]
            argv = [sys.executable, "-m", "glassnet", "train", "--data", str(path),
                    "--layers", "64", "--batch-size", "256", "--epochs", "1",
                    "--engine", args.engine, "--out", str(Path(folder) / "m2.npz"),
                    "--no-progress", "--json"]  # fmt: skip
            peak, seconds, _ = child_peak(argv)
            size = path.stat().st_size / 1e6
            print(f"in memory on {size:6.1f} MB: peak {peak:6.0f} MB, {seconds:.1f} s")


if __name__ == "__main__":
    main()
