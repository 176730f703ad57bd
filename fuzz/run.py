"""Run every atheris fuzz target for a fixed number of inputs and print the counts.

Each target starts from a temporary copy of its seeds (``fuzz/seeds_<name>``) — the
corpus it grows is thrown away, never committed — and stops after ``--runs`` inputs.
A finding (any exception other than GlassnetError, a crash, more than ``--rss-mb`` of
memory, an input running longer than ``--timeout`` seconds) fails the run; the input is
kept in ``--artifacts`` (default: a temporary folder, printed).  Exit status 0 only if
every target finished clean.  Usage::

    python fuzz/run.py --runs 200000            # every target
    python fuzz/run.py --runs 20000 spec model  # some targets
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = ("spec", "worksheet", "model", "torch")


def run_target(
    name: str, runs: int, *, timeout: int, rss_mb: int, artifacts: Path, seed: int
) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory(prefix=f"glassnet-corpus-{name}-") as corpus,
        tempfile.TemporaryDirectory(prefix="glassnet-fuzz-tmp-") as scratch,
    ):
        for f in (HERE / f"seeds_{name}").iterdir():
            shutil.copy(f, corpus)
        cmd = [
            sys.executable,
            str(HERE / f"fuzz_{name}.py"),
            f"-runs={runs}",
            f"-timeout={timeout}",
            f"-rss_limit_mb={rss_mb}",
            f"-seed={seed}",
            f"-artifact_prefix={artifacts}/{name}-",
            "-max_len=65536",
            "-print_final_stats=1",
            corpus,
        ]
        start = time.perf_counter()
        env = {**os.environ, "GLASSNET_FUZZ_TMP": scratch}
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE, env=env)
        seconds = time.perf_counter() - start
        n_corpus = len(list(Path(corpus).iterdir()))
    log = proc.stdout + proc.stderr
    done = re.search(r"Done (\d+) runs", log)
    cov = re.findall(r"cov: (\d+)", log)
    return {
        "target": name,
        "ok": proc.returncode == 0 and done is not None,
        "runs": int(done.group(1)) if done else None,
        "seconds": seconds,
        "coverage": int(cov[-1]) if cov else None,
        "corpus": n_corpus,
        "log": log,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (default: all)")
    p.add_argument("--runs", type=int, default=20000, help="inputs per target (20000)")
    p.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    p.add_argument("--rss-mb", type=int, default=2048, help="memory a target may use")
    p.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed")
    p.add_argument("--artifacts", type=Path, help="where findings are kept")
    args = p.parse_args(argv)
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        p.error(f"unknown targets {sorted(unknown)}; expected some of {', '.join(TARGETS)}")
    args.targets = args.targets or list(TARGETS)
    artifacts = args.artifacts or Path(tempfile.mkdtemp(prefix="glassnet-fuzz-findings-"))
    artifacts.mkdir(parents=True, exist_ok=True)
    failed = 0
    print(f"{'target':<10} {'inputs':>9} {'seconds':>8} {'coverage':>9} {'corpus':>7}  result")
    for name in args.targets:
        r = run_target(
            name,
            args.runs,
            timeout=args.timeout,
            rss_mb=args.rss_mb,
            artifacts=artifacts,
            seed=args.seed,
        )
        result = "clean" if r["ok"] else "FINDING"
        print(
            f"{name:<10} {r['runs'] or '-':>9} {r['seconds']:>8.1f} {r['coverage'] or '-':>9} "
            f"{r['corpus']:>7}  {result}",
            flush=True,
        )
        if not r["ok"]:
            failed += 1
            tail = str(r["log"])[-3000:]
            print(f"--- {name}: last lines of the log (inputs in {artifacts}) ---\n{tail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
