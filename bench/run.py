"""glassnet's speed beside PyTorch and scikit-learn, side by side, in one command.

    .venv/bin/python bench/run.py [--quick] [--rounds N] [--out bench/results/NAME.json]
    .venv/bin/python bench/run.py --only throughput --kernel-report   # the step's time split

Every measurement runs in its own process (bench/workers.py), contenders alternating
A B C A B C over several rounds, so no library's idle BLAS threads steal a core from
the next one; the table shows medians with min–max, and each ratio is computed within
a round, then its median (and min–max) over rounds is shown.  OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE, if set, are removed from the workers' environment (they slow a
current numpy; the JSON records whether they were set).  See docs/performance.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKER = HERE / "workers.py"
CONTENDERS = ("glassnet", "torch", "sklearn")
BATCHES = (32, 128, 1024)
#: Targets of issues 6 and 15 (glassnet ÷ other, higher is better).
TARGET_VS_TORCH = {32: 2.0, 128: 1.5, 1024: 1.15}
TARGET_VS_SKLEARN = 2.0
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def worker_env(keep_openblas: bool, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if not keep_openblas:
        for var in OPENBLAS_VARS:
            env.pop(var, None)
    if threads:
        # numpy's OpenBLAS reads this; torch is then given as many (workers.numpy_threads).
        env["OPENBLAS_NUM_THREADS"] = str(threads)
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_worker(job: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run one measurement in a fresh process; its last stdout line is the JSON result."""
    out = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"worker {job} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ratios(a: list[float], b: list[float]) -> dict[str, Any]:
    """a[i]/b[i] per round (same round), summarised."""
    per_round = [x / y for x, y in zip(a, b, strict=True)]
    return {**summary(per_round), "rounds": per_round}


def torch_mkl_kernel(env: dict[str, str]) -> str:
    """The code path MKL reports for PyTorch's multiplies (MKL_VERBOSE's banner: the
    instruction set it dispatched to, e.g. "Intel(R) AVX2 enabled processors", or a
    generic "Intel(R) Architecture processors"), from one small multiply in its own
    process (verbose mode would print a line per call in the timed workers)."""
    code = "import torch; a = torch.ones(64, 64); a @ a"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "MKL_VERBOSE": "1"},
        check=False,
    )
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith("MKL_VERBOSE") and "SGEMM" not in line:
            return line.removeprefix("MKL_VERBOSE").strip()
    return ""


def loadavg() -> list[float]:
    return list(os.getloadavg())


# -- the measurements -----------------------------------------------------------------------------
def bench_throughput(
    rounds: int,
    rows: int,
    env: dict[str, str],
    log,
    plain_too: bool = False,
    only: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    # glassnet_torch: glassnet's fit with engine="torch" on the CPU (issue 27), which
    # --engine auto passes over on the CPU for the NumPy engine.
    # multiplies: the step's matrix multiplies alone (the ceiling, in the same rounds).
    contenders = (*CONTENDERS, "glassnet_torch", "multiplies")
    # glassnet_numba: the same fit with kernels="numba" (issue 28), where numba is installed.
    if importlib.util.find_spec("numba") is not None:
        contenders = (*contenders, "glassnet_numba")
    if plain_too:
        contenders = (*contenders, "glassnet_plain")
    if only:  # --contenders: a shorter run (glassnet is always measured: every ratio's base)
        contenders = tuple(c for c in contenders if c in only or c == "glassnet")
    for batch in BATCHES:
        per: dict[str, list[float]] = {c: [] for c in contenders}
        per_cpu: dict[str, list[float]] = {c: [] for c in contenders}
        blas: dict[str, Any] = {}
        loads: list[float] = []
        for r in range(rounds):
            # Alternate the order every round as well (A B C, then C B A, ...).
            order = contenders if r % 2 == 0 else contenders[::-1]
            for c in order:
                res = run_worker(
                    {"task": "throughput", "contender": c, "batch": batch, "n": rows}, env
                )
                per[c].append(res["samples_per_s"])
                per_cpu[c].append(res["rows"] / res["cpu_seconds"])
                blas[c] = res["blas"]
                loads.append(res["loadavg"][0])
            log(
                f"  batch {batch:5d} round {r + 1}: "
                + "  ".join(f"{c} {per[c][-1]:9.0f}/s" for c in contenders)
            )
        results[str(batch)] = {
            "samples_per_s": {c: {**summary(v), "rounds": v} for c, v in per.items()},
            # Every row says where it was measured: the CPU family, the BLAS kernels
            # (NumPy's OpenBLAS: threadpoolctl's architecture; PyTorch's own), the load.
            "cpu_family": blas["glassnet"]["cpu_family"],
            "blas_kernel": blas["glassnet"]["blas_kernel"],
            "torch_blas_kernel": blas.get("torch", {}).get("blas_kernel", ""),
            "glassnet_step": blas["glassnet"]["glassnet_step"][str(batch)],
            "loadavg_1min": summary(loads),
            # The same by CPU time (samples per CPU-second): fair only with one BLAS
            # thread each (--threads 1), where it is what the load does not inflate.
            "cpu_time": {
                "samples_per_cpu_s": {c: {**summary(v), "rounds": v} for c, v in per_cpu.items()}
            },
            "blas": blas,
        }
        for key, a, b in (
            ("vs_torch", "glassnet", "torch"),
            ("vs_sklearn", "glassnet", "sklearn"),
            ("vs_torch_engine", "glassnet", "glassnet_torch"),
            ("torch_engine_vs_torch", "glassnet_torch", "torch"),
            # The share of the multiplies-only ceiling reached, and what it allows.
            ("share_of_ceiling", "glassnet", "multiplies"),
            ("ceiling_vs_torch", "multiplies", "torch"),
            ("ceiling_vs_sklearn", "multiplies", "sklearn"),
            ("numba_vs_torch", "glassnet_numba", "torch"),
            ("numba_vs_sklearn", "glassnet_numba", "sklearn"),
            ("numba_share_of_ceiling", "glassnet_numba", "multiplies"),
            ("numba_vs_numpy_passes", "glassnet_numba", "glassnet"),
        ):
            if a in per and b in per:
                results[str(batch)][key] = ratios(per[a], per[b])
                results[str(batch)]["cpu_time"][key] = ratios(per_cpu[a], per_cpu[b])
        if plain_too:
            results[str(batch)]["vs_plain"] = ratios(per["glassnet"], per["glassnet_plain"])
            results[str(batch)]["plain_vs_torch"] = ratios(per["glassnet_plain"], per["torch"])
    return results


def bench_digits(rounds: int, env: dict[str, str], log) -> dict[str, Any]:
    per: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    epochs: dict[str, list[int]] = {c: [] for c in CONTENDERS}
    for r in range(rounds):
        order = CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]
        for c in order:
            res = run_worker({"task": "digits", "contender": c}, env)
            if not res["reached"]:
                raise RuntimeError(f"{c} did not reach the digits accuracy: {res}")
            per[c].append(res["seconds"])
            epochs[c].append(res["epochs"])
        log(
            f"  digits round {r + 1}: "
            + "  ".join(f"{c} {per[c][-1]:.3f}s ({epochs[c][-1]} ep)" for c in CONTENDERS)
        )
    return {
        "seconds": {c: {**summary(v), "rounds": v} for c, v in per.items()},
        "epochs": epochs,
        # time ratio other ÷ glassnet: how many times faster glassnet reached the accuracy
        "speedup_vs_torch": ratios(per["torch"], per["glassnet"]),
        "speedup_vs_sklearn": ratios(per["sklearn"], per["glassnet"]),
    }


def bench_seed_step(rounds: int, repeat: int, env: dict[str, str], log) -> dict[str, Any]:
    g, t, tr = [], [], []
    for r in range(rounds):
        order = ("glassnet", "torch") if r % 2 == 0 else ("torch", "glassnet")
        for c in order:
            res = run_worker({"task": "seed_step", "contender": c, "repeat": repeat}, env)
            if c == "glassnet":
                g.append(res["us_per_step"])
            else:
                t.append(res["us_per_step"])
                tr.append(res["us_per_step_recording"])
        log(
            f"  seed step round {r + 1}: glassnet {g[-1]:.1f} µs  torch {t[-1]:.1f} µs "
            f"(recording {tr[-1]:.1f} µs)"
        )
    return {
        "us_per_step": {
            "glassnet": {**summary(g), "rounds": g},
            "torch": {**summary(t), "rounds": t},
            "torch_recording": {**summary(tr), "rounds": tr},
        },
        "speedup_vs_torch": ratios(t, g),
        "speedup_vs_torch_recording": ratios(tr, g),
    }


def glassnet_command() -> list[str]:
    script = Path(sys.executable).parent / "glassnet"
    return [str(script)] if script.exists() else [sys.executable, "-m", "glassnet"]


#: A process that loads the fast step's numba kernels (glassnet.kernels) and runs each
#: once: numba's start-up as a fit with kernels="numba" pays it (import, then the cached
#: compile loaded or, cold, compiled).
KERNELS_SNIPPET = """
import numpy as np
from glassnet.activations import get_activation
from glassnet.losses import get_loss
fwd, bwd = get_activation("relu").fused_kernels()
out = get_loss("cross_entropy").fused_output_kernel(get_activation("softmax"))
z = np.ones((4, 3), np.float32); b = np.zeros(3, np.float32); a = np.empty_like(z)
fwd(z, b, a); bwd(z, a, np.empty_like(z), np.empty_like(b))
out(z, b, np.full_like(z, 1 / 3), a, np.empty_like(z), 4)
"""


def bench_startup(reps: int, env: dict[str, str], log) -> dict[str, Any]:
    """Whole processes, start to finish, alternated; output thrown away.  With numba
    installed, also numba's kernels loaded with the cache warm, and cold (a fresh
    NUMBA_CACHE_DIR each time)."""
    commands = {
        "import numpy": [sys.executable, "-c", "import numpy"],
        "glassnet seed": [*glassnet_command(), "seed"],
        "glassnet --help": [*glassnet_command(), "--help"],
    }
    kernels = importlib.util.find_spec("numba") is not None
    if kernels:
        commands["numba kernels, warm"] = [sys.executable, "-c", KERNELS_SNIPPET]
        commands["numba kernels, cold"] = [sys.executable, "-c", KERNELS_SNIPPET]
    times: dict[str, list[float]] = {k: [] for k in commands}
    for cmd in commands.values():  # warm the file cache (and numba's, for "warm")
        subprocess.run(cmd, stdout=subprocess.DEVNULL, env=env, check=True)
    for _ in range(reps):
        for name, cmd in commands.items():
            with tempfile.TemporaryDirectory() as cold:
                run_env = {**env, "NUMBA_CACHE_DIR": cold} if name.endswith("cold") else env
                start = time.perf_counter()
                subprocess.run(cmd, stdout=subprocess.DEVNULL, env=run_env, check=True)
                times[name].append(time.perf_counter() - start)
    base = times["import numpy"]
    out = {
        "seconds": {k: {**summary(v), "rounds": v} for k, v in times.items()},
        "seed_vs_numpy": ratios(times["glassnet seed"], base),
        "help_vs_numpy": ratios(times["glassnet --help"], base),
    }
    if kernels:
        # Seconds beyond `import numpy` in the same round: what numba adds to a fit.
        for name in ("numba kernels, warm", "numba kernels, cold"):
            out[name] = summary([t - b for t, b in zip(times[name], base, strict=True)])
    log(
        "  startup medians: "
        + "  ".join(f"{k} {statistics.median(v) * 1e3:.0f} ms" for k, v in times.items())
    )
    return out


def bench_kernels(rounds: int, env: dict[str, str], log) -> dict[str, Any]:
    """The step's time split per part, before (the plain step, as fit ran it before the
    two-thread step) and after (the step fit now chooses), at each batch size; each in
    its own process, alternated."""
    out: dict[str, Any] = {}
    for batch in BATCHES:
        steps = max(20, min(200, 200_000 // batch // 10))
        per: dict[str, Any] = {}
        for mode in ("plain", "auto"):
            per["before" if mode == "plain" else "after"] = run_worker(
                {"task": "kernels", "batch": batch, "steps": steps, "mode": mode, "rounds": rounds},
                env,
            )
        out[str(batch)] = per
        log(
            f"  batch {batch}: before {per['before']['us_per_step']:.0f} µs/step, "
            f"after ({per['after']['mode']}) {per['after']['us_per_step']:.0f} µs/step"
        )
    return out


def kernel_table(res: dict[str, Any]) -> str:
    """Per part: µs per step before → after, per batch size (after: the caller's thread;
    in halves the worker thread does the other half at the same time)."""
    from workers import MULTIPLIES, PARTS

    batches = list(res)
    lines = [
        "| part (µs per step) | "
        + " | ".join(f"batch {b}: before → after ({res[b]['after']['mode']})" for b in batches)
        + " |",
        "| --- |" + " --- |" * len(batches),
    ]
    for part in PARTS:
        cells = []
        for b in batches:
            before = res[b]["before"]["us_parts"][part]
            after = res[b]["after"]["us_parts"][part]
            cells.append(f"{before:.0f} → {after:.0f}")
        if all(c == "0 → 0" for c in cells):
            continue
        tag = " (multiply)" if part in MULTIPLIES else ""
        lines.append(f"| {part}{tag} | " + " | ".join(cells) + " |")
    for label, key in (
        ("Python and the rest", "us_python_and_other"),
        ("whole step, timed part by part", "us_per_step"),
        ("whole step, untimed", "us_per_step_untimed"),
    ):
        cells = [f"{res[b]['before'][key]:.0f} → {res[b]['after'][key]:.0f}" for b in batches]
        lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    cells = [
        f"{res[b]['before']['multiplies_share'] * 100:.0f}% → "
        f"{res[b]['after']['multiplies_share'] * 100:.0f}%"
        for b in batches
    ]
    lines.append("| share in multiplies | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def limits(res: dict[str, Any]) -> dict[str, Any]:
    """Per batch size, how fast the step could be if everything but its matrix
    multiplies were free: samples/s at the multiplies alone (the faster of the plain
    and the chosen step's, measured in --kernel-report), that ceiling's ratio to each
    peer (the best ratio this machine's BLAS allows), and the measured ratio as a share
    of it."""
    from workers import MULTIPLIES

    out: dict[str, Any] = {}
    for batch, r in res.get("throughput", {}).items():
        k = res.get("kernels", {}).get(batch)
        if k is None:
            continue
        us = min(sum(k[w]["us_parts"][m] for m in MULTIPLIES) for w in ("before", "after"))
        ceiling = int(batch) / (us * 1e-6)
        sp = r["samples_per_s"]
        row: dict[str, Any] = {"us_multiplies": us, "ceiling_samples_per_s": ceiling}
        for peer, key in (("torch", "vs_torch"), ("sklearn", "vs_sklearn")):
            best = ceiling / sp[peer]["median"]
            row[peer] = {
                "ceiling_ratio": best,
                "measured_ratio": r[key]["median"],
                "share_of_ceiling": r[key]["median"] / best,
            }
        out[batch] = row
    return out


def limits_table(lim: dict[str, Any]) -> str:
    lines = [
        "| batch | multiplies alone (µs/step) | ceiling (samples/s) | ceiling ÷ PyTorch "
        "| measured ÷ PyTorch (target) | ceiling ÷ scikit-learn "
        "| measured ÷ scikit-learn (target) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for batch, r in lim.items():
        t, s = r["torch"], r["sklearn"]
        lines.append(
            f"| {batch} | {r['us_multiplies']:.0f} | {r['ceiling_samples_per_s']:.0f} "
            f"| {t['ceiling_ratio']:.2f} | {t['measured_ratio']:.2f} "
            f"({TARGET_VS_TORCH[int(batch)]}; {t['share_of_ceiling'] * 100:.0f}% of the ceiling) "
            f"| {s['ceiling_ratio']:.2f} | {s['measured_ratio']:.2f} "
            f"({TARGET_VS_SKLEARN}; {s['share_of_ceiling'] * 100:.0f}% of the ceiling) |"
        )
    return "\n".join(lines)


# -- the table ---------------------------------------------------------------------------------
def fmt_range(s: dict[str, float], spec: str = ".0f", scale: float = 1.0) -> str:
    return f"{s['median'] * scale:{spec}} ({s['min'] * scale:{spec}}–{s['max'] * scale:{spec}})"


def table(res: dict[str, Any]) -> str:
    lines = []

    def row(*cells: str) -> None:
        lines.append("| " + " | ".join(cells) + " |")

    # The whole comparison's rows (a --contenders run has the torch engine's table below).
    full = {
        b: r
        for b, r in res.get("throughput", {}).items()
        if all(k in r for k in ("vs_torch", "vs_sklearn", "share_of_ceiling"))
    }
    if full:
        row(
            "batch",
            "CPU family; BLAS kernel (NumPy's)",
            "glassnet step",
            "glassnet (samples/s)",
            "PyTorch",
            "scikit-learn",
            "multiplies alone (ceiling)",
            "glassnet ÷ PyTorch",
            "÷ scikit-learn",
            "share of ceiling",
            "ceiling ÷ PyTorch",
            "load (1 min)",
        )
        row(*["---"] * 12)
    for batch, r in full.items():
        sp = r["samples_per_s"]
        row(
            str(batch),
            f"{r['cpu_family']}; {r['blas_kernel']}",
            r["glassnet_step"],
            fmt_range(sp["glassnet"]),
            fmt_range(sp["torch"]),
            fmt_range(sp["sklearn"]),
            fmt_range(sp["multiplies"]),
            f"{fmt_range(r['vs_torch'], '.2f')} ≥ {TARGET_VS_TORCH[int(batch)]}",
            f"{fmt_range(r['vs_sklearn'], '.2f')} ≥ {TARGET_VS_SKLEARN}",
            f"{fmt_range(r['share_of_ceiling'], '.2f')}",
            f"{fmt_range(r['ceiling_vs_torch'], '.2f')}",
            fmt_range(r["loadavg_1min"], ".1f"),
        )
    if full:
        lines.append("")
    numba = {b: r for b, r in full.items() if "numba_vs_torch" in r}
    if numba:
        lines.append('The same fit with kernels="numba" (its start-up excluded: see startup):')
        lines.append("")
        row("batch", "glassnet + numba (samples/s)", "÷ PyTorch", "÷ scikit-learn",
            "share of ceiling", "÷ glassnet's NumPy passes")  # fmt: skip
        row(*["---"] * 6)
        for batch, r in numba.items():
            row(
                str(batch),
                fmt_range(r["samples_per_s"]["glassnet_numba"]),
                f"{fmt_range(r['numba_vs_torch'], '.2f')} ≥ {TARGET_VS_TORCH[int(batch)]}",
                f"{fmt_range(r['numba_vs_sklearn'], '.2f')} ≥ {TARGET_VS_SKLEARN}",
                fmt_range(r["numba_share_of_ceiling"], ".2f"),
                fmt_range(r["numba_vs_numpy_passes"], ".2f"),
            )
        lines.append("")
    if res.get("settings", {}).get("threads") == 1 and full:
        lines.append(
            "By CPU time (one BLAS thread each: the work, without the waits a shared "
            "machine adds), samples per CPU-second:"
        )
        lines.append("")
        row(
            "batch",
            "glassnet",
            "PyTorch",
            "scikit-learn",
            "multiplies alone",
            "glassnet ÷ PyTorch",
            "÷ scikit-learn",
            "share of ceiling",
            "ceiling ÷ PyTorch",
        )
        row(*["---"] * 9)
        for batch, r in full.items():
            c = r["cpu_time"]
            sp = c["samples_per_cpu_s"]
            row(
                str(batch),
                fmt_range(sp["glassnet"]),
                fmt_range(sp["torch"]),
                fmt_range(sp["sklearn"]),
                fmt_range(sp["multiplies"]),
                fmt_range(c["vs_torch"], ".2f"),
                fmt_range(c["vs_sklearn"], ".2f"),
                fmt_range(c["share_of_ceiling"], ".2f"),
                fmt_range(c["ceiling_vs_torch"], ".2f"),
            )
        lines.append("")
    if "digits" in res or "seed_step" in res:
        row(
            "workload",
            "glassnet",
            "PyTorch",
            "scikit-learn",
            "glassnet ÷ PyTorch",
            "÷ scikit-learn",
        )
        row(*["---"] * 6)
    plain_rows = [(b, r) for b, r in res.get("throughput", {}).items() if "vs_plain" in r]
    if "digits" in res:
        d = res["digits"]
        s = d["seconds"]
        ep = {c: statistics.median(v) for c, v in d["epochs"].items()}
        row(
            "digits 64-64-10 to test acc ≥ 0.97 (ms)",
            fmt_range(s["glassnet"], ".0f", 1e3) + f", {ep['glassnet']:.0f} ep",
            fmt_range(s["torch"], ".0f", 1e3) + f", {ep['torch']:.0f} ep",
            fmt_range(s["sklearn"], ".0f", 1e3) + f", {ep['sklearn']:.0f} ep",
            fmt_range(d["speedup_vs_torch"], ".2f") + " (time ratio)",
            fmt_range(d["speedup_vs_sklearn"], ".2f") + " (time ratio)",
        )
    if "seed_step" in res:
        s = res["seed_step"]
        u = s["us_per_step"]
        row(
            "seed 3-3-3-3 traced step, float64 (µs)",
            fmt_range(u["glassnet"], ".1f"),
            fmt_range(u["torch"], ".1f")
            + f"; recording z, a, grads {fmt_range(u['torch_recording'], '.1f')}",
            "—",
            f"{fmt_range(s['speedup_vs_torch'], '.2f')} ≥ 5 "
            f"(vs recording {fmt_range(s['speedup_vs_torch_recording'], '.2f')})",
            "—",
        )
    lines.append("")
    if plain_rows:
        lines.append(
            "| batch | glassnet's step now (samples/s) | its plain step, as before | now ÷ plain "
            "| plain ÷ PyTorch |"
        )
        lines.append("| --- | --- | --- | --- | --- |")
        for b, r in plain_rows:
            sp = r["samples_per_s"]
            lines.append(
                f"| {b} | {fmt_range(sp['glassnet'])} | {fmt_range(sp['glassnet_plain'])} | "
                f"{fmt_range(r['vs_plain'], '.2f')} | {fmt_range(r['plain_vs_torch'], '.2f')} |"
            )
        lines.append("")
    engine_rows = [
        (b, r) for b, r in res.get("throughput", {}).items() if "torch_engine_vs_torch" in r
    ]
    if engine_rows:
        lines.append("")
        lines.append(
            "| batch | NumPy engine (samples/s) | torch engine, CPU | plain PyTorch "
            "| NumPy engine ÷ torch engine | torch engine ÷ plain PyTorch |"
        )
        lines.append("| --- | --- | --- | --- | --- | --- |")
        for b, r in engine_rows:
            sp = r["samples_per_s"]
            lines.append(
                f"| {b} | {fmt_range(sp['glassnet'])} | {fmt_range(sp['glassnet_torch'])} | "
                f"{fmt_range(sp['torch'])} | {fmt_range(r['vs_torch_engine'], '.2f')} | "
                f"{fmt_range(r['torch_engine_vs_torch'], '.2f')} |"
            )
        lines.append("")
    if "startup" in res:
        st = res["startup"]
        sec = st["seconds"]
        lines.append(
            "| process, start to finish (ms) | median (min–max) | ÷ import numpy (≤ 1.5) |"
        )
        lines.append("| --- | --- | --- |")
        lines.append(
            f"| python -c 'import numpy' | {fmt_range(sec['import numpy'], '.0f', 1e3)} | 1 |"
        )
        lines.append(
            f"| glassnet seed | {fmt_range(sec['glassnet seed'], '.0f', 1e3)} | "
            f"{fmt_range(st['seed_vs_numpy'], '.2f')} |"
        )
        lines.append(
            f"| glassnet --help | {fmt_range(sec['glassnet --help'], '.0f', 1e3)} | "
            f"{fmt_range(st['help_vs_numpy'], '.2f')} |"
        )
        for name in ("numba kernels, warm", "numba kernels, cold"):
            if name in sec:  # numba's start-up: paid by a fit with kernels="numba"
                lines.append(
                    f"| {name} (beyond import numpy: {fmt_range(st[name], '.0f', 1e3)}) | "
                    f"{fmt_range(sec[name], '.0f', 1e3)} | — |"
                )
        lines.append("")
    if "profile" in res:
        p = res["profile"]
        lines.append(
            f"Step at batch {p['batch']}: {p['us_per_step']:.0f} µs, of which matrix multiplies "
            f"{p['us_matmuls']:.0f} µs ({p['matmul_share'] * 100:.0f}%, target ≥ 80%); "
            f"{p['gflops_step']:.1f} GFLOP/s for the whole step vs {p['gflops_matmuls']:.1f} "
            "GFLOP/s for its matrix multiplies alone."
        )
    if "memory" in res:
        m = res["memory"]
        lines.append(
            f"fit memory ({m['rows']} rows, batch {m['batch']}): data {m['data_mb']:.0f} MB, "
            f"process {m['rss_before_data_mb']:.0f} MB before the data, "
            f"{m['rss_before_fit_mb']:.0f} MB before fit, peak {m['peak_rss_mb']:.0f} MB during "
            f"fit (+{m['fit_extra_mb']:.1f} MB); limit data + 10% + 50 MB = {m['limit_mb']:.0f} MB."
        )
    return "\n".join(lines)


def blas_lines(res: dict[str, Any]) -> str:
    out = []
    first = next(iter(res["throughput"].values()))["blas"]
    for c, info in first.items():
        cpu = info.get("cpu", {})
        out.append(
            f"- {c}: CPU {cpu.get('model', '?')} ({', '.join(cpu.get('vector_extensions', []))}); "
            f"BLAS kernel {info.get('blas_kernel') or '-'}"
            + (
                f"; PyTorch CPU capability {info.get('torch_cpu_capability')}, "
                f"MKL {info.get('torch_mkl_version', '')[:20]}"
                if c == "torch"
                else ""
            )
            + (
                f"; glassnet step per batch {info['glassnet_step']}"
                if "glassnet_step" in info
                else ""
            )
        )
        pools = [
            f"{p['internal_api']} {p['version']} ({p['architecture'] or '-'}, "
            f"{p['num_threads']} threads, {Path(p['filepath']).name})"
            for p in info["threadpools"]
        ]
        extra = (
            f"; torch threads {info['torch_threads']}, MKL {info['torch_mkl']}, "
            f"{info['torch_blas']}"
            if c == "torch"
            else ""
        )
        out.append(f"- {c}: " + ", ".join(pools) + extra)
    kernel = res.get("machine", {}).get("torch_mkl_kernel")
    if kernel:
        out.append(f"- torch's MKL (MKL_VERBOSE): {kernel}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 rounds, 20,000 rows: a smoke run")
    ap.add_argument("--rounds", type=int, help="rounds per workload (default 5, quick 2)")
    ap.add_argument("--rows", type=int, help="rows of the synthetic data (default 60000)")
    ap.add_argument("--only", help="comma-separated: throughput,digits,seed,startup,profile,memory")
    ap.add_argument("--out", help="JSON file (default bench/results/<date-time>.json)")
    ap.add_argument(
        "--keep-openblas-env",
        action="store_true",
        help=f"pass {' and '.join(OPENBLAS_VARS)} on to the workers",
    )
    ap.add_argument(
        "--plain-too",
        action="store_true",
        help="throughput: also glassnet held to its plain step (GLASSNET_STEP=plain), the "
        "step before issue 15, in the same rounds",
    )
    ap.add_argument(
        "--contenders",
        help="throughput: only these (comma-separated, of torch, sklearn, glassnet_torch, "
        "glassnet_plain; glassnet always), for a shorter run",
    )
    ap.add_argument(
        "--kernel-report",
        action="store_true",
        help="also time the step part by part (multiplies vs each element-wise part), "
        "before (plain) and after (the step fit chooses)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        help="BLAS threads for every contender (default: numpy's default, all cores)",
    )
    args = ap.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    rows = args.rows or (20000 if args.quick else 60000)
    parts = set((args.only or "throughput,digits,seed,startup,profile,memory").split(","))
    if args.kernel_report:
        parts.add("kernels")
    env = worker_env(args.keep_openblas_env, args.threads)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    res: dict[str, Any] = {
        "settings": {
            "rounds": rounds,
            "rows": rows,
            "quick": args.quick,
            "threads": args.threads or "default",
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "openblas_env_set": {v: os.environ.get(v) for v in OPENBLAS_VARS},
            "openblas_env_removed_for_workers": not args.keep_openblas_env,
            "hyperfine": shutil.which("hyperfine"),
        },
        "loadavg_start": loadavg(),
    }
    sys.path.insert(0, str(HERE))
    from workers import cpu_info

    res["machine"]["cpu"] = cpu_info()
    res["machine"]["torch_mkl_kernel"] = torch_mkl_kernel(env)
    import numpy
    import sklearn
    import torch

    res["versions"] = {
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
    }
    del torch  # the workers use it; this process only asked its version
    started = time.perf_counter()
    if "throughput" in parts:
        log("throughput (784-256-128-10, one epoch):")
        only = tuple(args.contenders.split(",")) if args.contenders else None
        res["throughput"] = bench_throughput(rounds, rows, env, log, args.plain_too, only)
    if "digits" in parts:
        log("digits to a fixed accuracy:")
        res["digits"] = bench_digits(rounds, env, log)
    if "seed" in parts:
        log("seed traced step:")
        res["seed_step"] = bench_seed_step(rounds, 1000 if args.quick else 3000, env, log)
    if "startup" in parts:
        log("startup:")
        res["startup"] = bench_startup(5 if args.quick else 15, env, log)
    if "profile" in parts:
        log("profile at batch 128:")
        res["profile"] = run_worker(
            {"task": "profile", "batch": 128, "steps": 200, "rounds": rounds}, env
        )
    if "memory" in parts:
        log("memory:")
        res["memory"] = run_worker({"task": "memory", "n": rows, "batch": 128}, env)
    if "kernels" in parts:
        log("the step part by part, before and after:")
        res["kernels"] = bench_kernels(rounds, env, log)
    res["loadavg_end"] = loadavg()
    res["wall_seconds"] = time.perf_counter() - started

    text = table(res)
    if "kernels" in res:
        text += "\n\nThe step part by part:\n\n" + kernel_table(res["kernels"])
    if "kernels" in res and "throughput" in res:
        res["limits"] = limits(res)
        text += (
            "\n\nThe ceiling: the step's matrix multiplies alone (everything else free), "
            "against the peers' measured speed:\n\n" + limits_table(res["limits"])
        )
    if "throughput" in res:
        text += "\n\nCPU and BLAS per contender:\n" + blas_lines(res)
    print(text)
    print(
        f"\nload average (1, 5, 15 min) at start {res['loadavg_start']}, "
        f"at end {res['loadavg_end']}"
    )
    res["table"] = text
    out = Path(args.out) if args.out else HERE / "results" / time.strftime("%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
