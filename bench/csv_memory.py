"""Memory of reading a CSV file, as a multiple of the file's size (issue 23: at most 3×).

    python bench/csv_memory.py [--rows 200000] [--columns 50] [--text 0]

Writes a CSV of ``rows`` × ``columns`` numbers (written as ``%.6g``, about 9 bytes a
cell, as a practitioner's exports are; ``--text N`` makes N of the columns text
categories) into a temporary folder, then in a fresh Python process reads it with
``glassnet.data.read_rows`` (what ``glassnet train`` and ``predict`` call) and prints the
peak resident memory the reading added (``ru_maxrss`` after minus the resident memory
just before, with NumPy and pyarrow already imported), the file's size and their ratio,
and the time taken.  Nothing is asserted: this prints, for a person to read (no timed
tests, house rule).

What counts toward the ratio is the reading (the result's float64 table included), not
training on it: a float64 cell takes 8 bytes whatever its text took, so a file of
1-character cells (2 bytes with the separator) would need 4× its size for the table
alone — the bench's cells are ordinary numbers.  Text columns are kept as int32 codes
into their distinct cells (a ``RawTable``), not as a table of Python objects.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

CHILD = textwrap.dedent(
    """
    import resource, sys, time
    import numpy, pyarrow, pyarrow.csv, pyarrow.compute
    from glassnet.data import read_rows

    def rss_kb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    before = rss_kb()
    t = time.perf_counter()
    table = read_rows(sys.argv[1], need_label=True)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kind = type(table.X).__name__ + (f"/{table.X.dtype}" if hasattr(table.X, "dtype") else "")
    print(before, peak, seconds, table.X.shape[0], table.X.shape[1], kind)
    """
)


def write_file(path: Path, rows: int, columns: int, text: int, seed: int = 0) -> None:
    """rows × columns cells in blocks (the writer itself stays small), label last."""
    rng = np.random.default_rng(seed)
    header = [f"x{j}" for j in range(columns)] + ["label"]
    with path.open("w") as f:
        f.write(",".join(header) + "\n")
        block = 20_000
        for start in range(0, rows, block):
            n = min(block, rows - start)
            values = rng.normal(100, 30, size=(n, columns))
            labels = rng.integers(0, 2, n)
            lines = []
            for i in range(n):
                cells = [f"{v:.6g}" for v in values[i]]
                for j in range(text):
                    cells[j] = ("red", "green", "blue")[int(values[i, j]) % 3]
                cells.append(str(labels[i]))
                lines.append(",".join(cells))
            f.write("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--columns", type=int, default=50)
    ap.add_argument("--text", type=int, default=0, help="text columns among them")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write_file(path, args.rows, args.columns, args.text)
        size = path.stat().st_size
        src = str(Path(__file__).resolve().parents[1] / "src")
        env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.split()
    before_kb, peak_kb, seconds = int(out[0]), int(out[1]), float(out[2])
    added = (peak_kb - before_kb) * 1024
    print(
        f"file {size / 1e6:.1f} MB ({args.rows} rows × {args.columns} columns, "
        f"{args.text} text); table {out[3]}×{out[4]} {out[5]}"
    )
    print(f"reading added {added / 1e6:.1f} MB at its peak: {added / size:.2f}× the file")
    print(f"read in {seconds:.2f} s")


if __name__ == "__main__":
    main()
