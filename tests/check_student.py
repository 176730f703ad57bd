"""An independent student who works a step with normalisation layers and stateful
optimisers by hand, for the checker's tests — plain NumPy, no glassnet code.

Beside tests/check_reference.py (dense layers, plain gradient descent) this student also
works, from the textbook formulas written out again here:

* **batch normalisation** (Ioffe & Szegedy, "Batch Normalization: Accelerating Deep
  Network Training by Reducing Internal Covariate Shift", ICML 2015, Algorithm 1 and the
  back-propagation equations of section 3): per feature over the batch's N samples
  μ = (1/N)Σx, σ² = (1/N)Σ(x − μ)², x̂ = (x − μ)/√(σ² + ε), z = γx̂ + β; backward
  ∂ℓ/∂x̂ = ∂ℓ/∂z·γ, ∂ℓ/∂σ² = Σ ∂ℓ/∂x̂·(x − μ)·(−½)(σ² + ε)^(−3/2),
  ∂ℓ/∂μ = Σ ∂ℓ/∂x̂·(−1/√(σ² + ε)) + ∂ℓ/∂σ²·Σ(−2(x − μ))/N,
  ∂ℓ/∂x = ∂ℓ/∂x̂/√(σ² + ε) + ∂ℓ/∂σ²·2(x − μ)/N + ∂ℓ/∂μ/N, ∂ℓ/∂γ = Σ ∂ℓ/∂z·x̂,
  ∂ℓ/∂β = Σ ∂ℓ/∂z.  The running statistics move as PyTorch's ``BatchNorm1d`` documents:
  (1 − m)·old + m·batch statistic, the variance's with the unbiased σ²·N/(N − 1);
* **layer normalisation** (Ba, Kiros & Hinton, "Layer Normalization", arXiv:1607.06450,
  2016, eq. 4): the same formulas over each sample's D features instead of the batch;
* **momentum** in PyTorch's form (``torch.optim.SGD`` docs; Sutskever et al., ICML 2013):
  v = μ·v_prev + g, p_new = p − lr·v (Nesterov: p − lr·(g + μ·v));
* **Adam** (Kingma & Ba, ICLR 2015, Algorithm 1): m = β1·m_prev + (1 − β1)·g,
  v = β2·v_prev + (1 − β2)·g², m̂ = m/(1 − β1ᵗ), v̂ = v/(1 − β2ᵗ),
  p_new = p − lr·m̂/(√v̂ + ε);
* **RMSprop** (Hinton, Coursera lecture 6e; PyTorch's ``RMSprop``, not centred):
  s = ρ·s_prev + (1 − ρ)·g², p_new = p − lr·g/(√s + ε).

Every quantity is computed from the student's own earlier *written* (rounded) numbers,
and written to 4 decimals — the optimiser's moments, whose scale can be 10⁻⁷, to 4
significant digits, as a person would.  With ``steps = 2`` the second step starts from
the student's own W_new, b_new, γ_new, β_new and optimiser state of the first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from check_reference import FORWARD, local_derivative, loss_grad, loss_terms

#: Hyperparameters written into every sheet's spec (never glassnet's defaults).
BN_EPS, BN_MOMENTUM = 1e-5, 0.1
OPTIMIZERS: dict[str, dict[str, float | bool]] = {
    "sgd": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9, "nesterov": True},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "rmsprop": {"rho": 0.9, "eps": 1e-8},
}
#: The state each optimiser writes per parameter, in the order it is worked.
STATE = {
    "sgd": (),
    "momentum": ("velocity",),
    "nesterov": ("velocity",),
    "adam": ("m", "v", "m_hat", "v_hat"),
    "rmsprop": ("square_avg",),
}
#: Quantities written to 4 significant digits rather than 4 decimals.
SIGNIFICANT = ("m_", "v_", "velocity_", "square_avg_")


def round_decimals(v, digits: int):
    """Half-up rounding to ``digits`` decimals, on the float's shortest repr."""
    q = Decimal(1).scaleb(-digits)
    v = np.asarray(v, dtype=float)
    out = [
        float(Decimal(repr(float(e))).quantize(q, rounding=ROUND_HALF_UP))
        if math.isfinite(e)
        else float(e)  # a slip that took a log or root of a negative number
        for e in v.flat
    ]
    return np.array(out).reshape(v.shape)


def round_significant(v, figures: int):
    """Half-up rounding to ``figures`` significant digits (0 stays 0)."""
    v = np.asarray(v, dtype=float)
    out = []
    for e in v.flat:
        if e == 0 or not math.isfinite(e):
            out.append(float(e))
            continue
        d = Decimal(repr(float(e)))
        q = Decimal(1).scaleb(d.adjusted() - figures + 1)
        out.append(float(d.quantize(q, rounding=ROUND_HALF_UP)))
    return np.array(out).reshape(v.shape)


def significant(name: str) -> bool:
    """Whether the student writes ``name`` to significant digits (an optimiser moment)."""
    return name.startswith(SIGNIFICANT)


def unit(name: str, value: float) -> float:
    """The scale of a slip of ±(1–10)·10⁻ᵖ (p = 1, 2, 3: a slip in the first, second or
    third written digit): 1 for a number written to decimals (0.1 is its first decimal);
    for one written to significant digits, ten units of its leading digit
    (10^(⌊log10|value|⌋ + 1)), so that p counts its significant digits the same way."""
    if not significant(name) or value == 0 or not math.isfinite(value):
        return 1.0
    return 10.0 ** (math.floor(math.log10(abs(value))) + 1)


# -- a random network -----------------------------------------------------------------------
def random_net(seed: int, norm: str, optimizer: str, *, acts=("tanh", "relu", "softmax")):
    """dense (3→3, act0) → ``norm`` over 3 features (γ, β, act1) → dense (3→2, act2):
    one-decimal parameters, a batch of 4 one-decimal inputs, one-hot targets."""
    rng = np.random.default_rng(seed)

    def one_dec(lo, hi, shape):
        return np.round(rng.uniform(lo, hi, shape), 1)

    layers = [
        {"type": "dense", "W": one_dec(-1, 1, (3, 3)), "b": one_dec(-1, 1, 3), "act": acts[0]},
        {"type": norm, "gamma": one_dec(0.5, 1.5, 3), "beta": one_dec(-0.5, 0.5, 3)},
        {"type": "dense", "W": one_dec(-1, 1, (3, 2)), "b": one_dec(-1, 1, 2), "act": acts[2]},
    ]
    layers[1]["act"] = acts[1]
    if norm == "batch_norm":
        layers[1]["running_mean"] = np.zeros(3)
        layers[1]["running_var"] = np.ones(3)
    x = one_dec(-1, 1, (4, 3))
    y = np.zeros((4, 2))
    y[np.arange(4), rng.integers(2, size=4)] = 1.0
    return {"layers": layers, "x": x, "y": y, "optimizer": optimizer}


# -- the student ----------------------------------------------------------------------------
def norm_axis(kind: str) -> int:
    """What the statistics run over: the batch (0) or each sample's features (1)."""
    return 0 if kind == "batch_norm" else 1


def norm_backward(dx_hat, x_hat, var, axis: int, eps: float = BN_EPS):
    """∂ℓ/∂x from ∂ℓ/∂x̂, x̂ and σ²: Ioffe & Szegedy's three equations (below) with
    (x − μ)/√(σ² + ε) written x̂ and the sums collected,
    (1/(n·√(σ² + ε)))·(n·dx̂ − Σ dx̂ − x̂·Σ dx̂·x̂), over ``axis`` (0: the batch's n
    samples; 1: a sample's n features, Ba et al. 2016)."""
    if axis == 1:  # layer norm: one variance per sample, (batch,) -> (batch, 1)
        var = var[:, None]
    n = dx_hat.shape[axis]
    s1 = dx_hat.sum(axis=axis, keepdims=True)
    s2 = (dx_hat * x_hat).sum(axis=axis, keepdims=True)
    return (n * dx_hat - s1 - x_hat * s2) / (n * np.sqrt(var + eps))


def norm_backward_paper(dx_hat, x, mean, var, axis: int, eps: float = BN_EPS):
    """∂ℓ/∂x from ∂ℓ/∂x̂ through μ and σ² as Ioffe & Szegedy (2015, section 3) write it,
    from x and μ (not x̂), over ``axis``."""
    if axis == 1:  # layer norm: one mean and variance per sample, (batch,) -> (batch, 1)
        mean, var = mean[:, None], var[:, None]
    n = x.shape[axis]
    xc = x - mean
    dvar = (dx_hat * xc * -0.5 * (var + eps) ** -1.5).sum(axis=axis, keepdims=True)
    dmean = (dx_hat * -1 / np.sqrt(var + eps)).sum(axis=axis, keepdims=True)
    dmean = dmean + dvar * (-2 * xc).sum(axis=axis, keepdims=True) / n
    return dx_hat / np.sqrt(var + eps) + dvar * 2 * xc / n + dmean / n


def student_steps(
    net: dict,
    loss: str,
    lr: float,
    *,
    steps: int = 1,
    digits: int = 4,
    figures: int = 4,
    offsets: dict | None = None,
) -> dict[str, np.ndarray]:
    """Every quantity of ``steps`` steps as the student writes them (names as a
    worksheet's: ``x_hat2``, ``m_hat_W1``, ``gamma2_new``, ``z1@step2``).  ``offsets``
    maps a name to (index, amount): an arithmetic slip added to that one number of the
    right rule's result before it is written (later numbers use the slipped one)."""
    offsets = offsets or {}
    v: dict[str, np.ndarray] = {}
    layers = [dict(layer) for layer in net["layers"]]
    x, y, opt = net["x"], net["y"], net["optimizer"]
    hyper = OPTIMIZERS[opt]
    state: dict[str, np.ndarray] = {}
    for t in range(1, steps + 1):
        tag = "" if t == 1 else f"@step{t}"

        def put(name: str, compute: Callable[[], np.ndarray], tag: str = tag) -> np.ndarray:
            full = name + tag
            value = np.array(compute(), dtype=float)
            if full in offsets:
                idx, amount = offsets[full]
                value[idx] += amount
            if significant(name):
                v[full] = round_significant(value, figures)
            else:
                v[full] = round_decimals(value, digits)
            return v[full]

        _one_step(layers, x, y, loss, lr, opt, hyper, state, t, put)
        # The next step starts from the student's own written numbers.
        for i, layer in enumerate(layers, start=1):
            for p in ("W", "b") if layer["type"] == "dense" else ("gamma", "beta"):
                layer[p] = v[f"{p}{i}_new{tag}"]
            if layer["type"] == "batch_norm":
                layer["running_mean"] = v[f"running_mean{i}_new{tag}"]
                layer["running_var"] = v[f"running_var{i}_new{tag}"]
    return v


def _one_step(layers, x, y, loss, lr, opt, hyper, state, t, put) -> None:
    L = len(layers)
    ins: list[np.ndarray] = []
    w: dict[str, np.ndarray] = {}  # this step's written values, by untagged name
    prev = x

    def p_(name, compute):
        w[name] = put(name, compute)
        return w[name]

    # -- forward --
    for i, layer in enumerate(layers, start=1):
        ins.append(prev)
        act = layer["act"]
        if layer["type"] == "dense":
            p_(f"z{i}", lambda p=prev, layer=layer: p @ layer["W"] + layer["b"])
        else:
            ax = norm_axis(layer["type"])

            def keep(s, ax=ax):  # a per-sample statistic broadcasts over the features
                return s if ax == 0 else s[:, None]

            mean = p_(f"mean{i}", lambda p=prev, ax=ax: p.mean(axis=ax))
            var = p_(f"var{i}", lambda p=prev, m=mean, ax=ax: ((p - keep(m)) ** 2).mean(axis=ax))
            x_hat = p_(
                f"x_hat{i}", lambda p=prev, m=mean, s=var: (p - keep(m)) / np.sqrt(keep(s) + BN_EPS)
            )
            p_(f"z{i}", lambda xh=x_hat, layer=layer: layer["gamma"] * xh + layer["beta"])
        a = p_(f"a{i}", lambda i=i, act=act: FORWARD[act](w[f"z{i}"]))
        if layer["type"] == "batch_norm":
            n = prev.shape[0]
            m = BN_MOMENTUM
            p_(
                f"running_mean{i}_new",
                lambda layer=layer, i=i, m=m: (1 - m) * layer["running_mean"] + m * w[f"mean{i}"],
            )
            p_(
                f"running_var{i}_new",
                lambda layer=layer, i=i, n=n, m=m: (
                    (1 - m) * layer["running_var"] + m * w[f"var{i}"] * n / (n - 1)
                ),
            )
        prev = a
    n = x.shape[0]
    p_("loss_terms", lambda: loss_terms(loss, w[f"a{L}"], y))
    p_("loss", lambda: w["loss_terms"].sum() / n)
    # -- backward --
    for i in range(L, 0, -1):
        layer = layers[i - 1]
        if i == L:
            p_(f"dL_da{i}", lambda: loss_grad(loss, w[f"a{L}"], y))
        elif layers[i]["type"] == "dense":
            p_(f"dL_da{i}", lambda i=i: w[f"delta{i + 1}"] @ layers[i]["W"].T)
        else:
            nxt = layers[i]
            # The closed form in x̂ (below), from the student's own dx̂, x̂ and σ².
            # (Ioffe & Szegedy's three equations, worked from the written a and μ
            # instead, land further from the truth than the checker's bands allow on
            # most sheets: see norm_backward_paper and docs/check.md.)
            p_(
                f"dL_da{i}",
                lambda i=i, nxt=nxt: norm_backward(
                    w[f"dx_hat{i + 1}"],
                    w[f"x_hat{i + 1}"],
                    w[f"var{i + 1}"],
                    norm_axis(nxt["type"]),
                ),
            )
        act = layer["act"]
        p_(f"da{i}_dz{i}", lambda i=i, act=act: local_derivative(act, w[f"z{i}"], w[f"a{i}"]))

        def delta(i=i):
            d, g = w[f"da{i}_dz{i}"], w[f"dL_da{i}"]
            return np.einsum("si,sij->sj", g, d) if d.ndim == 3 else g * d

        p_(f"delta{i}", delta)
        if layer["type"] == "dense":
            p_(f"dW{i}", lambda i=i: ins[i - 1].T @ w[f"delta{i}"])
            p_(f"db{i}", lambda i=i: w[f"delta{i}"].sum(axis=0))
        else:
            p_(f"dgamma{i}", lambda i=i: (w[f"delta{i}"] * w[f"x_hat{i}"]).sum(axis=0))
            p_(f"dbeta{i}", lambda i=i: w[f"delta{i}"].sum(axis=0))
            if i > 1:
                p_(f"dx_hat{i}", lambda i=i, layer=layer: w[f"delta{i}"] * layer["gamma"])
    # -- the update, parameter by parameter --
    for i, layer in enumerate(layers, start=1):
        for p in ("W", "b") if layer["type"] == "dense" else ("gamma", "beta"):
            _update(p, i, layer[p], w[f"d{p}{i}"], lr, opt, hyper, state, t, p_)


def _update(p, i, param, g, lr, opt, hyper, state, t, p_) -> None:
    """One parameter's update: its optimiser state, then ``{p}{i}_new``."""

    def prev(s):  # the state the step starts from: zero at the first step
        return state.get(f"{s}_{p}{i}", np.zeros_like(param))

    def keep(s, value):
        state[f"{s}_{p}{i}"] = value
        return value

    new = f"{p}{i}_new"
    if opt == "sgd":
        p_(new, lambda: param - lr * g)
    elif opt in ("momentum", "nesterov"):
        mu = hyper["momentum"]
        vel = keep("velocity", p_(f"velocity_{p}{i}", lambda: mu * prev("velocity") + g))
        if opt == "nesterov":
            p_(new, lambda: param - lr * (g + mu * vel))
        else:
            p_(new, lambda: param - lr * vel)
    elif opt == "adam":
        b1, b2, eps = hyper["beta1"], hyper["beta2"], hyper["eps"]
        m = keep("m", p_(f"m_{p}{i}", lambda: b1 * prev("m") + (1 - b1) * g))
        v2 = keep("v", p_(f"v_{p}{i}", lambda: b2 * prev("v") + (1 - b2) * g**2))
        m_hat = p_(f"m_hat_{p}{i}", lambda: m / (1 - b1**t))
        v_hat = p_(f"v_hat_{p}{i}", lambda: v2 / (1 - b2**t))
        p_(new, lambda: param - lr * m_hat / (np.sqrt(v_hat) + eps))
    elif opt == "rmsprop":
        rho, eps = hyper["rho"], hyper["eps"]
        s = keep(
            "square_avg",
            p_(f"square_avg_{p}{i}", lambda: rho * prev("square_avg") + (1 - rho) * g**2),
        )
        p_(new, lambda: param - lr * g / (np.sqrt(s) + eps))
    else:
        raise ValueError(opt)


# -- the worksheet --------------------------------------------------------------------------
def _arr(v, fmt: Callable[[float], str]) -> str:
    v = np.asarray(v)
    if v.ndim == 0:
        return fmt(float(v))
    return "[" + ", ".join(_arr(e, fmt) for e in v) + "]"


def student_sheet(net: dict, loss: str, lr: float, values: dict, *, steps: int = 1) -> str:
    """A worksheet: the network as a spec (every hyperparameter written out), then the
    student's ``values`` as written (4 decimals; moments to 4 significant digits)."""
    opt = net["optimizer"]
    lines = [f'loss = "{loss}"', f"lr = {lr}", f"steps = {steps}"]
    if opt != "sgd":
        lines.append(f'optimizer = "{"momentum" if opt == "nesterov" else opt}"')
        for k, val in OPTIMIZERS[opt].items():
            lines.append(f"{k} = {str(val).lower() if isinstance(val, bool) else val}")

    def plain(e: float) -> str:
        return repr(float(e))

    lines += [f"input = {_arr(net['x'], plain)}", f"target = {_arr(net['y'], plain)}"]
    for layer in net["layers"]:
        lines.append("[[layers]]")
        if layer["type"] == "dense":
            lines += [f"weights = {_arr(layer['W'], plain)}", f"bias = {_arr(layer['b'], plain)}"]
        else:
            lines.append(f'type = "{layer["type"]}"')
            lines += [f"gamma = {_arr(layer['gamma'], plain)}"]
            lines += [f"beta = {_arr(layer['beta'], plain)}", f"eps = {BN_EPS}"]
            if layer["type"] == "batch_norm":
                lines.append(f"momentum = {BN_MOMENTUM}")
        lines.append(f'activation = "{layer["act"]}"')
    lines.append("[values]")
    for name, val in values.items():
        sig = significant(name)
        fmt = (lambda e: f"{e:.3e}") if sig else (lambda e: f"{e:.4f}")
        lines.append(f'"{name}" = {_arr(val, fmt)}')
    return "\n".join(lines) + "\n"
