"""One contender, one measurement, in its own process: ``bench/run.py`` starts these.

    python bench/workers.py '{"task": "throughput", "contender": "torch", "batch": 128}'

prints one JSON object (the measurement, the BLAS in use) on its last line of stdout.
Every contender gets the same data (seeded), the same architecture, glassnet's initial
weights (copied in) and the same hyperparameters; see docs/performance.md.

Tasks: ``throughput`` (784-256-128-10, one epoch after a warm-up, samples/s),
``digits`` (64-64-10 to a fixed test accuracy, wall time), ``seed_step`` (the seed's
3-3-3-3 traced step vs the same step with PyTorch autograd, µs/step), ``profile``
(glassnet's training step beside its matrix multiplies alone, at one batch size) and
``memory`` (peak resident set of ``fit`` next to the data's size).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

SIZES = [784, 256, 128, 10]
LR = 0.01
#: Rows of the warm-up pass (each contender, before the timed epoch).
WARM_ROWS = 4096


# -- shared ingredients -------------------------------------------------------------------------
def mnist_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic MNIST-shaped data: n × 784 float32 "pixels" in [0, 1) and 10 classes
    given by a random linear teacher (so it is learnable).  Built in chunks: no
    temporary as large as the data."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, SIZES[0]), dtype=np.float32)
    teacher = rng.standard_normal((SIZES[0], SIZES[-1])).astype(np.float32)
    y = np.empty(n, dtype=np.int64)
    rng.random(dtype=np.float32, out=X)  # in place: no temporary
    for start in range(0, n, 1024):
        y[start : start + 1024] = np.argmax((X[start : start + 1024] - 0.5) @ teacher, axis=1)
    return X, y


def initial_weights(sizes: list[int], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """glassnet's He initial weights (float32), the ones every contender starts from."""
    import glassnet as gn

    net = gn.mlp(sizes, hidden="relu", output="softmax", init="he", seed=seed)
    return [(layer.W.copy(), layer.b.copy()) for layer in net.layers]


def cpu_info() -> dict[str, Any]:
    """The CPU model and its vector extensions (from /proc/cpuinfo; Linux)."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    wanted = ("sse4_2", "avx", "avx2", "fma")
    return {
        "model": model,
        "vector_extensions": [f for f in wanted if f in flags]
        + sorted(f for f in flags if f.startswith("avx512")),
    }


def cpu_family(cpu: dict[str, Any]) -> str:
    """A short name for the kind of CPU, by what decides the kernels: vendor and the
    widest vector extension ("Intel AVX-512", "AMD AVX2")."""
    model = str(cpu.get("model", ""))
    vendor = "Intel" if "Intel" in model else "AMD" if "AMD" in model else model or "?"
    ext = cpu.get("vector_extensions", [])
    width = "AVX-512" if "avx512f" in ext else "AVX2" if "avx2" in ext else "no AVX2"
    return f"{vendor} {width}"


def blas_info(contender: str) -> dict[str, Any]:
    """Which CPU, BLAS (its kernel: threadpoolctl's ``architecture``) and how many
    threads this process uses."""
    from threadpoolctl import threadpool_info

    pools = [
        {
            k: p.get(k)
            for k in ("internal_api", "version", "architecture", "num_threads", "filepath")
        }
        for p in threadpool_info()
    ]
    info: dict[str, Any] = {"cpu": cpu_info(), "threadpools": pools}
    blas = [p for p in pools if p.get("internal_api") in ("openblas", "mkl", "blis")]
    info["blas_kernel"] = ", ".join(
        f"{p['internal_api']} {p['version']} {p['architecture'] or ''}".strip() for p in blas
    )
    info["cpu_family"] = cpu_family(info["cpu"])
    if contender in ("glassnet", "glassnet_plain"):
        import glassnet as gn
        from glassnet import blas
        from glassnet.losses import get_loss
        from glassnet.parallel import train_step

        net = gn.mlp(SIZES)
        X, Y = np.zeros((1024, SIZES[0]), np.float32), np.zeros((1024, SIZES[-1]), np.float32)
        opt, loss = gn.optim.SGD(lr=LR), get_loss("cross_entropy")
        info["glassnet_step"] = {
            str(b): train_step(net, X, Y, loss, opt, fused=True, batch_size=b).mode
            for b in (32, 128, 1024)
        }
        # The BLAS gemm the folded SGD update calls (NumPy's own), or why not.
        info["glassnet_gemm"] = blas.describe()
    if contender in ("torch", "glassnet_torch"):
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch_mkl"] = bool(torch.backends.mkl.is_available())
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
        info["torch_blas"] = next(
            (w.strip(",") for w in torch.__config__.show().split() if w.startswith("BLAS_INFO=")),
            "",
        )
        # PyTorch's own element-wise kernels are chosen by this (DEFAULT, AVX2, AVX512).
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        # PyTorch's multiplies go through its own MKL, not NumPy's OpenBLAS (also loaded).
        info["numpy_blas_kernel"] = info["blas_kernel"]
        info["blas_kernel"] = f"{info['torch_blas'].split('=')[-1]} (PyTorch's own)"
        info["torch_mkl_version"] = next(
            (
                line.split("Version", 1)[1].strip()
                for line in torch.__config__.show().splitlines()
                if "Math Kernel Library Version" in line
            ),
            "",
        )
    return info


def numpy_threads() -> int:
    """Threads of numpy's BLAS (torch gets as many)."""
    from threadpoolctl import threadpool_info

    for p in threadpool_info():
        if p["user_api"] == "blas" and "numpy" in p["filepath"]:
            return int(p["num_threads"])
    return 1


def torch_model(weights: list[tuple[np.ndarray, np.ndarray]], dtype: Any = None):
    """nn.Sequential of Linear + ReLU, last layer without activation (CrossEntropyLoss
    applies log-softmax), with glassnet's weights copied in (torch stores W transposed)."""
    import torch
    from torch import nn

    torch.set_num_threads(numpy_threads())
    mods: list[Any] = []
    for i, (W, _) in enumerate(weights):
        mods.append(nn.Linear(W.shape[0], W.shape[1]))
        if i < len(weights) - 1:
            mods.append(nn.ReLU())
    model = nn.Sequential(*mods)
    if dtype is not None:
        model = model.to(dtype)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, (W, b) in zip(linears, weights, strict=True):
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
    return model, linears


def torch_epoch(model, opt, lossf, Xt, yt, batch: int, gen) -> None:
    """One epoch of the plain PyTorch loop: shuffle, gather a batch, step."""
    import torch

    n = Xt.shape[0]
    perm = torch.randperm(n, generator=gen)
    for start in range(0, n, batch):
        idx = perm[start : start + batch]
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(Xt[idx]), yt[idx])
        loss.backward()
        opt.step()


def sklearn_model(batch: int, lr: float, hidden: tuple[int, ...]):
    """MLPClassifier set like the others: plain SGD (no momentum), constant rate, no L2,
    no early stopping, one epoch per partial_fit."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=hidden,
        activation="relu",
        solver="sgd",
        alpha=0.0,
        batch_size=batch,
        learning_rate="constant",
        learning_rate_init=lr,
        momentum=0.0,
        nesterovs_momentum=False,
        shuffle=True,
        random_state=0,
        early_stopping=False,
        max_iter=1,
        tol=0.0,
        n_iter_no_change=10**9,
    )


def sklearn_set_weights(clf, weights: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Copy the initial weights in place (sklearn's optimiser holds these very arrays)."""
    for i, (W, b) in enumerate(weights):
        clf.coefs_[i][...] = W
        clf.intercepts_[i][...] = b


# -- throughput ------------------------------------------------------------------------------------
def throughput(contender: str, batch: int, n: int) -> dict[str, Any]:
    """Samples per second of one epoch over n rows, after a warm-up pass of WARM_ROWS rows;
    every contender starts the timed epoch from the same initial weights."""
    X, y = mnist_like(n)
    weights = initial_weights(SIZES)
    Xw, yw = X[:WARM_ROWS], y[:WARM_ROWS]
    if contender == "multiplies":
        # The ceiling: only the step's matrix multiplies (x@W, xᵀ@delta, delta@Wᵀ), same
        # shapes and dtype, preallocated outputs, as many steps as the epoch has batches.
        matmuls = step_multiplies(batch, X)
        for _ in range(max(1, WARM_ROWS // batch)):
            matmuls()
        steps = -(-n // batch)
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(steps):
            matmuls()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        return {
            "samples_per_s": n / seconds,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "rows": n,
            "loss_after_epoch": None,
            "blas": blas_info("glassnet"),
            "loadavg": list(os.getloadavg()),
        }
    if contender == "glassnet_plain":  # glassnet held to its plain step (as before issue 15)
        os.environ["GLASSNET_STEP"] = "plain"
        contender = "glassnet"
    if contender in ("glassnet", "glassnet_torch", "glassnet_numba"):
        import glassnet as gn

        # glassnet's own fit with its PyTorch engine on the CPU (issue 27), or NumPy's;
        # glassnet_numba: NumPy's with the fused numba kernels asked for (a long fit's
        # choice; the warm-up fit loads them, so the timed epoch is the steady state and
        # the start-up is the startup workload's "numba kernels" rows).
        engine = "torch" if contender == "glassnet_torch" else "numpy"
        kernels = "numba" if contender == "glassnet_numba" else None
        if engine == "torch":
            import torch

            # As many threads as the plain PyTorch loop gets (numpy's BLAS threads):
            # left at PyTorch's default (every core), a --threads 1 run timed the torch
            # engine on two threads against PyTorch on one (its "0.54× at 1024").
            torch.set_num_threads(numpy_threads())
        net = gn.mlp(SIZES, init=weights)
        net.fit(
            Xw, yw, optimizer=gn.optim.SGD(lr=LR), epochs=1, batch_size=batch, seed=0,
            engine=engine, kernels=kernels,
        )  # fmt: skip
        for layer, (W, b) in zip(net.layers, weights, strict=True):
            layer.W[...], layer.b[...] = W, b
        start, cpu_start = time.perf_counter(), time.process_time()
        hist = net.fit(X, y, epochs=1, batch_size=batch, engine=engine, kernels=kernels)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        final_loss = hist["loss"][-1]
    elif contender == "torch":
        import torch

        model, linears = torch_model(weights)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        lossf = torch.nn.CrossEntropyLoss()
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        gen = torch.Generator().manual_seed(0)
        torch_epoch(model, opt, lossf, Xt[:WARM_ROWS], yt[:WARM_ROWS], batch, gen)
        with torch.no_grad():
            for lin, (W, b) in zip(linears, weights, strict=True):
                lin.weight.copy_(torch.from_numpy(W.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
        start, cpu_start = time.perf_counter(), time.process_time()
        torch_epoch(model, opt, lossf, Xt, yt, batch, gen)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        with torch.no_grad():
            final_loss = float(lossf(model(Xt[:10000]), yt[:10000]))
    elif contender == "sklearn":
        import warnings

        clf = sklearn_model(batch, LR, tuple(SIZES[1:-1]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(Xw, yw, classes=np.arange(SIZES[-1]))
            sklearn_set_weights(clf, weights)
            start, cpu_start = time.perf_counter(), time.process_time()
            clf.partial_fit(X, y)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        final_loss = float(clf.loss_)
        if clf.coefs_[0].dtype != np.float32:
            raise RuntimeError(f"scikit-learn trained in {clf.coefs_[0].dtype}, not float32")
    else:
        raise ValueError(contender)
    return {
        "samples_per_s": n / seconds,
        "seconds": seconds,
        # The process's CPU time over the same epoch (all its threads): with one BLAS
        # thread each, a measure of the work that waiting for a shared core leaves out.
        "cpu_seconds": cpu,
        "rows": n,
        "loss_after_epoch": final_loss,
        "blas": blas_info(contender),
        "loadavg": list(os.getloadavg()),
    }


# -- digits to a fixed accuracy ------------------------------------------------------------------
DIGITS = {"sizes": [64, 64, 10], "lr": 0.05, "batch": 32, "target": 0.97, "max_epochs": 200}


def digits(contender: str) -> dict[str, Any]:
    """Wall time (training plus a test-accuracy check after every epoch) until the test
    accuracy reaches DIGITS["target"], from the same initial weights."""
    from glassnet.data import load_dataset

    ds = load_dataset("digits", test_size=0.25, seed=0)
    Xtr, ytr = ds.X_train.astype(np.float32), ds.y_train
    Xte, yte = ds.X_test.astype(np.float32), ds.y_test
    s = DIGITS
    weights = initial_weights(s["sizes"])
    epochs, acc = 0, 0.0
    if contender == "glassnet":
        import glassnet as gn
        from glassnet.training import Callback

        class ReachAccuracy(Callback):
            def on_epoch_end(self, net, epoch, logs):
                nonlocal epochs, acc
                epochs, acc = epoch, float((net.predict(Xte) == yte).mean())
                return acc >= s["target"]

        net = gn.mlp(s["sizes"], init=weights)
        start = time.perf_counter()
        net.fit(
            Xtr,
            ytr,
            optimizer=gn.optim.SGD(lr=s["lr"]),
            epochs=s["max_epochs"],
            batch_size=s["batch"],
            seed=0,
            callbacks=[ReachAccuracy()],
        )
        seconds = time.perf_counter() - start
    elif contender == "torch":
        import torch

        model, _ = torch_model(weights)
        opt = torch.optim.SGD(model.parameters(), lr=s["lr"])
        lossf = torch.nn.CrossEntropyLoss()
        Xt, yt, Xv = torch.from_numpy(Xtr), torch.from_numpy(ytr), torch.from_numpy(Xte)
        gen = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        while epochs < s["max_epochs"] and acc < s["target"]:
            torch_epoch(model, opt, lossf, Xt, yt, s["batch"], gen)
            epochs += 1
            with torch.no_grad():
                acc = float((model(Xv).argmax(1).numpy() == yte).mean())
        seconds = time.perf_counter() - start
    elif contender == "sklearn":
        import warnings

        clf = sklearn_model(s["batch"], s["lr"], tuple(s["sizes"][1:-1]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # One untimed partial_fit on one batch creates coefs_; then the initial weights.
            clf.partial_fit(Xtr[: s["batch"]], ytr[: s["batch"]], classes=np.arange(10))
            sklearn_set_weights(clf, weights)
            start = time.perf_counter()
            while epochs < s["max_epochs"] and acc < s["target"]:
                clf.partial_fit(Xtr, ytr)
                epochs += 1
                acc = float((clf.predict(Xte) == yte).mean())
            seconds = time.perf_counter() - start
    else:
        raise ValueError(contender)
    return {
        "seconds": seconds,
        "epochs": epochs,
        "accuracy": acc,
        "reached": acc >= s["target"],
        "blas": blas_info(contender),
    }


# -- the seed's traced step -----------------------------------------------------------------------
def _time_per_call(fn, repeat: int, blocks: int = 7) -> float:
    """Median over blocks of the mean time of one call, in seconds."""
    for _ in range(repeat // 5):
        fn()
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        times.append((time.perf_counter() - start) / repeat)
    return statistics.median(times)


def seed_step(contender: str, repeat: int) -> dict[str, Any]:
    """µs per traced step of the seed spec (glassnet: Spec.trace, float64), or the same
    step in PyTorch float64 autograd: forward, loss, backward, new weights."""
    import glassnet as gn

    spec = gn.load_spec("seed")
    trace = spec.trace()
    if contender == "glassnet":
        seconds = _time_per_call(spec.trace, repeat)
        return {"us_per_step": seconds * 1e6, "blas": blas_info(contender)}
    import torch

    torch.set_num_threads(numpy_threads())
    x = torch.tensor(spec.x, dtype=torch.float64)
    y = torch.tensor(spec.y, dtype=torch.float64)
    Ws = [
        torch.tensor(layer.W, dtype=torch.float64, requires_grad=True)
        for layer in spec.network.layers
    ]
    bs = [
        torch.tensor(layer.b, dtype=torch.float64, requires_grad=True)
        for layer in spec.network.layers
    ]
    acts = [torch.relu, torch.sigmoid, lambda z: torch.softmax(z, dim=1)]
    lr = spec.lr

    def plain():
        a = x
        for W, b, f in zip(Ws, bs, acts, strict=True):
            a = f(a @ W + b)
        loss = torch.nn.functional.binary_cross_entropy(a, y, reduction="sum") / x.shape[0]
        grads = torch.autograd.grad(loss, Ws)
        with torch.no_grad():
            return [W - lr * g for W, g in zip(Ws, grads, strict=True)]

    def recorded():
        # Keep what a trace keeps: z, a and their gradients (dL/da, delta) per layer.
        a, kept = x, []
        for W, b, f in zip(Ws, bs, acts, strict=True):
            z = a @ W + b
            a = f(z)
            z.retain_grad()
            a.retain_grad()
            kept.append((z, a))
        loss = torch.nn.functional.binary_cross_entropy(a, y, reduction="sum") / x.shape[0]
        for p in (*Ws, *bs):
            p.grad = None
        loss.backward()
        with torch.no_grad():
            new = [W - lr * W.grad for W in Ws]
        return new, [(z.detach(), a.detach(), a.grad, z.grad) for z, a in kept]

    # The same numbers as the trace (checked once, untimed).
    for W_new, lt in zip(plain(), trace.layers, strict=True):
        np.testing.assert_allclose(W_new.numpy(), lt.W_new, rtol=0, atol=1e-12)
    _, kept = recorded()
    for (_z, _a, dL_da, delta), lt in zip(kept, trace.layers, strict=True):
        np.testing.assert_allclose(delta.numpy(), lt.delta, rtol=0, atol=1e-12)
        np.testing.assert_allclose(dL_da.numpy(), lt.dL_da, rtol=0, atol=1e-12)
    return {
        "us_per_step": _time_per_call(plain, repeat) * 1e6,
        "us_per_step_recording": _time_per_call(recorded, repeat) * 1e6,
        "blas": blas_info(contender),
    }


# -- where a glassnet step spends its time ---------------------------------------------------------
def step_flops(batch: int) -> int:
    """Multiply-adds ×2 of one training step: forward x@W, backward xᵀ@delta, and
    delta@Wᵀ for every layer but the first."""
    flops = 0
    for index, (n_in, n_out) in enumerate(itertools.pairwise(SIZES)):
        per = 2 * batch * n_in * n_out
        flops += per * (3 if index > 0 else 2)
    return flops


def step_multiplies(batch: int, X: np.ndarray) -> Any:
    """A function running one training step's matrix multiplies on arrays shaped as in
    the step (784-256-128-10, float32, outputs preallocated): x@W per layer, then
    xᵀ@delta per layer and delta@Wᵀ for every layer but the first."""
    rng = np.random.default_rng(1)
    Ws = [w for w, _ in initial_weights(SIZES)]
    xs = [X[:batch]] + [rng.random((batch, k), dtype=np.float32) for k in SIZES[1:-1]]
    zs = [np.empty((batch, W.shape[1]), np.float32) for W in Ws]
    deltas = [rng.random((batch, W.shape[1]), dtype=np.float32) for W in Ws]
    dWs = [np.empty_like(W) for W in Ws]
    dxs = [np.empty((batch, W.shape[0]), np.float32) for W in Ws]

    def matmuls() -> None:
        for x, W, z in zip(xs, Ws, zs, strict=True):
            np.matmul(x, W, out=z)
        for i in range(len(Ws) - 1, -1, -1):
            np.matmul(xs[i].T, deltas[i], out=dWs[i])
            if i > 0:
                np.matmul(deltas[i], Ws[i].T, out=dxs[i])

    return matmuls


def profile(batch: int, steps: int, rounds: int) -> dict[str, Any]:
    """glassnet's training step (a whole ``fit`` epoch of ``steps`` batches, per step)
    beside the same matrix multiplies alone (same shapes, dtype, preallocated outputs),
    alternated in this process; medians over rounds."""
    import glassnet as gn

    n = batch * steps
    X, y = mnist_like(n)
    weights = initial_weights(SIZES)
    net = gn.mlp(SIZES, init=weights)
    net.fit(X[:WARM_ROWS], y[:WARM_ROWS], optimizer=gn.optim.SGD(lr=LR), batch_size=batch)

    # The multiplies of one step, on arrays shaped as in the step.
    rng = np.random.default_rng(1)
    Ws = [w for w, _ in weights]
    xs = [X[:batch]] + [rng.random((batch, k), dtype=np.float32) for k in SIZES[1:-1]]
    zs = [np.empty((batch, W.shape[1]), np.float32) for W in Ws]
    deltas = [rng.random((batch, W.shape[1]), dtype=np.float32) for W in Ws]
    dWs = [np.empty_like(W) for W in Ws]
    dxs = [np.empty((batch, W.shape[0]), np.float32) for W in Ws]

    def matmuls() -> None:
        for x, W, z in zip(xs, Ws, zs, strict=True):
            np.matmul(x, W, out=z)
        for i in range(len(Ws) - 1, -1, -1):
            np.matmul(xs[i].T, deltas[i], out=dWs[i])
            if i > 0:
                np.matmul(deltas[i], Ws[i].T, out=dxs[i])

    step_times, mm_times = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        net.fit(X, y, epochs=1, batch_size=batch)
        step_times.append((time.perf_counter() - start) / steps)
        for _ in range(steps // 10):
            matmuls()
        start = time.perf_counter()
        for _ in range(steps):
            matmuls()
        mm_times.append((time.perf_counter() - start) / steps)
    t_step, t_mm = statistics.median(step_times), statistics.median(mm_times)
    flops = step_flops(batch)
    return {
        "batch": batch,
        "us_per_step": t_step * 1e6,
        "us_matmuls": t_mm * 1e6,
        "matmul_share": t_mm / t_step,
        "gflops_step": flops / t_step / 1e9,
        "gflops_matmuls": flops / t_mm / 1e9,
        "step_us_rounds": [t * 1e6 for t in step_times],
        "matmul_us_rounds": [t * 1e6 for t in mm_times],
        "blas": blas_info("glassnet"),
    }


# -- the step's time split, part by part ----------------------------------------------------------
#: The parts of a step, in the order they run; "multiplies" are the three kinds of matmul.
PARTS = (
    "gather",
    "x@W",
    "bias add",
    "ReLU",
    "softmax",
    "loss value",
    "output delta",
    "ReLU mask",
    "xT@delta",
    "bias sums",
    "delta@WT",
    "hand-off wait",
    "gradient sum",
    "update",
    "accuracy",
)
MULTIPLIES = ("x@W", "xT@delta", "delta@WT")


class _Clock:
    """Adds the time since the last tick to a named part (one per thread)."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = dict.fromkeys(PARTS, 0.0)
        self.last = time.perf_counter()

    def reset(self) -> None:
        self.last = time.perf_counter()

    def tick(self, part: str) -> None:
        now = time.perf_counter()
        self.parts[part] += now - self.last
        self.last = now


def _timed_half(step, idx, r0: int, r1: int, m: int, second: bool, clock: _Clock) -> float:
    """TrainStep's forward and backward of rows r0:r1 (its ``_half``, or the plain step
    when r0:r1 is the whole batch), with every part timed: the same library calls
    (layers' pure functions, the activations' and loss's methods) in the same order."""
    from glassnet.layers import bias_grad, input_grad, weight_grad
    from glassnet.parallel import gather

    net, loss = step.net, step.loss
    clock.reset()
    rows = idx[r0:r1]
    mh = r1 - r0
    xraw = step.xraw[r0:r1] if step.xraw is not None else None
    x = gather(step.X, rows, step.xbuf[r0:r1], xraw)
    yb = gather(step.Y, rows, step.ybuf[r0:r1], None)
    clock.tick("gather")
    bufs = step._half_buffers(r0, second) if step._grads2 else step.buffers
    if not step._grads2:
        bufs = [b._replace(z=b.z[r0:], a=b.a[r0:], delta=b.delta[r0:]) for b in bufs]
    xs, zs, acts = [], [], []
    a = x
    for layer, b in zip(net.layers, bufs, strict=True):
        xs.append(a)
        z = np.matmul(a, layer.W, out=b.z[:mh])
        clock.tick("x@W")
        z += layer.b
        clock.tick("bias add")
        a = layer.activation.forward(z, out=b.a[:mh])
        clock.tick("softmax" if layer.activation.name == "softmax" else "ReLU")
        zs.append(z)
        acts.append(a)
    total = loss.value(a, yb) * mh
    clock.tick("loss value")
    delta = np.subtract(a, yb, out=bufs[-1].delta[:mh])
    delta /= m
    clock.tick("output delta")
    dL_da = delta  # dL/da of the layer below, from delta@WT (the output layer has delta)
    for i in range(len(net.layers) - 1, -1, -1):
        layer, b = net.layers[i], bufs[i]
        if i < len(net.layers) - 1:
            delta = layer.activation.backward(zs[i], acts[i], dL_da, out=b.delta[:mh])
            clock.tick("ReLU mask")
        weight_grad(xs[i], delta, out=b.dW)
        clock.tick("xT@delta")
        bias_grad(delta, out=b.db)
        clock.tick("bias sums")
        if i > 0:
            dL_da = input_grad(delta, layer.W, out=b.dx[:mh])
            clock.tick("delta@WT")
    return total


def kernel_report(batch: int, steps: int, mode: str, rounds: int = 3) -> dict[str, Any]:
    """The step's time split at one batch size, for the plain step or the one ``fit``
    chooses: ``steps`` steps of 784-256-128-10 ReLU/softmax + cross-entropy, plain SGD,
    with every part timed (µs per step, the fastest of ``rounds``), beside the same
    steps untimed (the whole ``TrainStep``)."""
    import glassnet as gn
    from glassnet.losses import get_loss
    from glassnet.parallel import TrainStep, choose
    from glassnet.training import classes_from_output

    X, y = mnist_like(batch * steps)
    Y = np.eye(SIZES[-1], dtype=np.float32)[y]
    net = gn.mlp(SIZES, init=initial_weights(SIZES))
    chosen = choose(net, batch) if mode == "auto" else mode
    loss = get_loss("cross_entropy")
    step = TrainStep(
        net, X, Y, loss, gn.optim.SGD(lr=LR), fused=True, batch_size=batch, mode=chosen
    )
    order = np.random.default_rng(0).permutation(X.shape[0])
    batches = [order[i : i + batch] for i in range(0, X.shape[0], batch)]
    best_parts: dict[str, float] | None = None
    best_worker: dict[str, float] = {}
    walls, untimed = [], []
    for _ in range(rounds):
        main, other = _Clock(), _Clock()
        start = time.perf_counter()
        for idx in batches:
            m = idx.shape[0]
            if chosen == "halves":
                half = m // 2
                blas, threads = step._blas.lib, step._blas.threads
                if blas is not None:
                    blas.set_num_threads(1)
                step._worker.start(
                    lambda idx=idx, half=half, m=m, clock=other: _timed_half(
                        step, idx, half, m, m, True, clock
                    )
                )
                total = _timed_half(step, idx, 0, half, m, False, main)
                total += step._worker.join()
                main.tick("hand-off wait")
                if blas is not None:
                    blas.set_num_threads(threads)
                for b, (dW2, db2) in zip(step.buffers, step._grads2, strict=True):
                    np.add(b.dW, dW2, out=b.dW)
                    np.add(b.db, db2, out=b.db)
                main.tick("gradient sum")
            else:
                total = _timed_half(step, idx, 0, m, m, False, main)
            step.opt.step(step.params, step.grads, scratch_grads=True)
            main.tick("update")
            p = step.buffers[-1].a[:m]
            int(np.count_nonzero(classes_from_output(net, p) == y[idx]))
            main.tick("accuracy")
            del total
        wall = (time.perf_counter() - start) / len(batches)
        walls.append(wall)
        # the same steps through the real TrainStep, untimed inside
        start = time.perf_counter()
        for idx in batches:
            p, _ = step(idx)
            int(np.count_nonzero(classes_from_output(net, p) == y[idx]))
        untimed.append((time.perf_counter() - start) / len(batches))
        if best_parts is None or wall <= min(walls):
            best_parts = {k: v / len(batches) for k, v in main.parts.items()}
            best_worker = {k: v / len(batches) for k, v in other.parts.items()}
    assert best_parts is not None
    wall = min(walls)
    mult = sum(best_parts[k] for k in MULTIPLIES)
    return {
        "batch": batch,
        "mode": chosen,
        "us_per_step": wall * 1e6,
        "us_per_step_untimed": min(untimed) * 1e6,
        "us_parts": {k: v * 1e6 for k, v in best_parts.items()},
        "us_parts_worker": {k: v * 1e6 for k, v in best_worker.items()}
        if chosen == "halves"
        else {},
        "us_python_and_other": (wall - sum(best_parts.values())) * 1e6,
        "multiplies_share": mult / wall,
        "blas": blas_info("glassnet"),
    }


# -- memory -------------------------------------------------------------------------------------
def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def memory(n: int, batch: int) -> dict[str, Any]:
    """Peak resident set (VmHWM) of the process during one ``fit`` epoch, the peak reset
    just before (Linux /proc/self/clear_refs), next to the size of X and y."""
    import glassnet as gn

    baseline = _status_kb("VmRSS")
    X, y = mnist_like(n)
    net = gn.mlp(SIZES, seed=0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set to the current one
    before = _status_kb("VmRSS")
    net.fit(X, y, optimizer=gn.optim.SGD(lr=LR), epochs=1, batch_size=batch)
    peak = _status_kb("VmHWM")
    data_mb = (X.nbytes + y.nbytes) / 2**20
    return {
        "data_mb": data_mb,
        "rss_before_data_mb": baseline / 1024,
        "rss_before_fit_mb": before / 1024,
        "peak_rss_mb": peak / 1024,
        "fit_extra_mb": (peak - before) / 1024,
        "limit_mb": data_mb * 1.1 + 50,
        "rows": n,
        "batch": batch,
    }


def main(argv: list[str]) -> None:
    job = json.loads(argv[1])
    task = job.pop("task")
    result = {
        "throughput": throughput,
        "digits": digits,
        "seed_step": seed_step,
        "profile": profile,
        "memory": memory,
        "kernels": kernel_report,
    }[task](**job)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
