"""A plain-NumPy reference step for the checker's tests, sharing no code with glassnet.

Everything here is written out again from the textbook formulas: z = x·W + b, the
activations and their derivatives, the softmax Jacobian diag(a) − a·aᵀ, the losses as
batch means, dW = xᵀ·delta, db = Σ delta, W_new = W − lr·dW.
"""

from __future__ import annotations

import itertools

import numpy as np


def normal_cdf(z):
    """Φ(z) = ½(1 + erf(z/√2)), with the C library's erf."""
    import math

    return 0.5 * (1 + np.vectorize(math.erf)(np.asarray(z) / math.sqrt(2)))


def normal_pdf(z):
    return np.exp(-(np.asarray(z) ** 2) / 2) / np.sqrt(2 * np.pi)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


FORWARD = {
    "sigmoid": sigmoid,
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "identity": lambda z: z.copy(),
    "softmax": softmax,
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.exp(np.minimum(z, 0)) - 1),
    "gelu": lambda z: z * normal_cdf(z),
}


def local_derivative(act, z, a):
    """Elementwise da/dz, or the softmax Jacobian (batch, n, n)."""
    if act == "sigmoid":
        return a * (1 - a)
    if act == "relu":
        return (z > 0).astype(float)
    if act == "tanh":
        return 1 - a**2
    if act == "identity":
        return np.ones_like(z)
    if act == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    if act == "elu":  # (alpha = 1)
        return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))
    if act == "gelu":
        return normal_cdf(z) + z * normal_pdf(z)
    return np.stack([np.diag(r) - np.outer(r, r) for r in a])


def loss_terms(loss, p, y):
    if loss == "binary_cross_entropy":
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))
    if loss == "cross_entropy":
        return -y * np.log(p)
    if loss == "half_sse":
        return 0.5 * (y - p) ** 2
    if loss == "mse":
        return (p - y) ** 2 / p.shape[1]
    raise ValueError(loss)


def loss_grad(loss, p, y):
    n = p.shape[0]
    if loss == "binary_cross_entropy":
        return (-y / p + (1 - y) / (1 - p)) / n
    if loss == "cross_entropy":
        return -y / p / n
    if loss == "mse":
        return 2 * (p - y) / (p.shape[1] * n)
    return (p - y) / n


def reference_step(Ws, bs, acts, x, y, loss, lr):
    """Every quantity of one step, keyed by glassnet's names (full shapes)."""
    out = {}
    a = x
    xs = []
    for i, (W, b, act) in enumerate(zip(Ws, bs, acts, strict=True), start=1):
        xs.append(a)
        z = a @ W + b
        a = FORWARD[act](z)
        out[f"z{i}"], out[f"a{i}"] = z, a
    L = len(Ws)
    out["loss_terms"] = loss_terms(loss, a, y)
    out["loss"] = out["loss_terms"].sum() / x.shape[0]
    g = loss_grad(loss, a, y)
    for i in range(L, 0, -1):
        out[f"dL_da{i}"] = g
        d = local_derivative(acts[i - 1], out[f"z{i}"], out[f"a{i}"])
        out[f"da{i}_dz{i}"] = d
        delta = np.einsum("si,sij->sj", g, d) if d.ndim == 3 else g * d
        out[f"delta{i}"] = delta
        out[f"dW{i}"] = xs[i - 1].T @ delta
        out[f"db{i}"] = delta.sum(axis=0)
        out[f"W{i}_new"] = Ws[i - 1] - lr * out[f"dW{i}"]
        out[f"b{i}_new"] = bs[i - 1] - lr * out[f"db{i}"]
        g = delta @ Ws[i - 1].T
    return out


def toml_array(v, digits: int = 8) -> str:
    v = np.asarray(v)
    if v.ndim == 0:
        return f"{float(v):.{digits}f}"
    return "[" + ", ".join(toml_array(e, digits) for e in v) + "]"


def worksheet_text(Ws, bs, acts, x, y, loss, lr, values: dict, digits: int = 8) -> str:
    """A worksheet: the network as a spec, then ``values`` (batch axis dropped for one
    sample), every number written with ``digits`` decimals unless given as text."""
    lines = [f'loss = "{loss}"', f"lr = {lr}", f"input = {toml_array(x, 2)}"]
    lines.append(f"target = {toml_array(y, 1)}")
    for W, b, act in zip(Ws, bs, acts, strict=True):
        lines += ["[[layers]]", f"weights = {toml_array(W, 2)}", f"bias = {toml_array(b, 2)}"]
        lines.append(f'activation = "{act}"')
    lines.append("[values]")
    batch = x.shape[0]
    for name, v in values.items():
        if isinstance(v, str):
            lines.append(f"{name} = {v}")
            continue
        v = np.asarray(v)
        batched = not name.startswith(("dW", "db", "W", "b", "loss")) or name == "loss_terms"
        if batched and batch == 1 and v.ndim >= 2:
            v = v[0]
        lines.append(f"{name} = {toml_array(v, digits)}")
    return "\n".join(lines) + "\n"


def random_network(seed: int, sizes=(3, 3, 3), batch: int = 1, positive_last: bool = False):
    """One-decimal weights and biases in [-1, 1], positive one-decimal inputs."""
    rng = np.random.default_rng(seed)
    Ws, bs = [], []
    for n_in, n_out in itertools.pairwise(sizes):
        Ws.append(np.round(rng.uniform(-1, 1, (n_in, n_out)), 1))
        bs.append(np.round(rng.uniform(-1, 1, n_out), 1))
    if positive_last:
        Ws[-1] = np.abs(Ws[-1]) + 0.1
        bs[-1] = np.abs(bs[-1])
    x = np.round(rng.uniform(0.1, 1, (batch, sizes[0])), 1)
    y = np.zeros((batch, sizes[-1]))
    y[np.arange(batch), rng.integers(sizes[-1], size=batch)] = 1.0
    return Ws, bs, x, y


# -- a student working by hand --------------------------------------------------------------
def activation_derivative(act, z, a):
    """The textbook formula of each activation's derivative, in terms of z or of a."""
    return local_derivative(act, z, a)


def round_half_up(v, digits: int):
    """Round as a person does (a tie goes away from zero), on the decimal digits of the
    float's shortest repr (so 0.135 -> 0.14 at 2 decimals)."""
    from decimal import ROUND_HALF_UP, Decimal

    v = np.asarray(v, dtype=float)
    q = Decimal(1).scaleb(-digits)
    flat = [float(Decimal(repr(float(e))).quantize(q, rounding=ROUND_HALF_UP)) for e in v.flat]
    return np.array(flat).reshape(v.shape)


def student_step(Ws, bs, acts, x, y, loss, lr, digits: int = 4, slips=None, offsets=None):
    """Every quantity of one step as a student computes it by hand: each from their own
    earlier *rounded* numbers, written to ``digits`` decimals.  ``slips`` maps a name to
    ``f(values) -> array``: the student's wrong rule for that quantity (``values`` holds
    what they wrote so far; W_new of a layer is written right after its dW and db).
    ``offsets`` maps a name to (index, amount): an arithmetic slip, the amount added to
    that one number of the right rule's result (later numbers use the slipped one)."""
    slips = slips or {}
    offsets = offsets or {}
    v: dict = {}

    def put(name, compute):
        value = np.array(slips[name](v) if name in slips else compute(), dtype=float)
        if name in offsets:
            idx, amount = offsets[name]
            value[idx] += amount
        v[name] = round_half_up(value, digits)

    L = len(Ws)
    prev = x
    for i in range(1, L + 1):
        p = prev
        put(f"z{i}", lambda p=p, i=i: p @ Ws[i - 1] + bs[i - 1])
        put(f"a{i}", lambda i=i: FORWARD[acts[i - 1]](v[f"z{i}"]))
        prev = v[f"a{i}"]
    n = x.shape[0]
    put("loss_terms", lambda: loss_terms(loss, v[f"a{L}"], y))
    put("loss", lambda: v["loss_terms"].sum() / n)
    for i in range(L, 0, -1):
        if i == L:
            put(f"dL_da{i}", lambda: loss_grad(loss, v[f"a{L}"], y))
        else:
            put(f"dL_da{i}", lambda i=i: v[f"delta{i + 1}"] @ Ws[i].T)
        put(f"da{i}_dz{i}", lambda i=i: local_derivative(acts[i - 1], v[f"z{i}"], v[f"a{i}"]))

        def delta(i=i):
            d = v[f"da{i}_dz{i}"]
            g = v[f"dL_da{i}"]
            return np.einsum("si,sij->sj", g, d) if d.ndim == 3 else g * d

        put(f"delta{i}", delta)
        inp = x if i == 1 else v[f"a{i - 1}"]
        put(f"dW{i}", lambda inp=inp, i=i: inp.T @ v[f"delta{i}"])
        put(f"db{i}", lambda i=i: v[f"delta{i}"].sum(axis=0))
        put(f"W{i}_new", lambda i=i: Ws[i - 1] - lr * v[f"dW{i}"])
        put(f"b{i}_new", lambda i=i: bs[i - 1] - lr * v[f"db{i}"])
    return v


#: The learning rate of the student sheets.
LR = 0.1


def sheet_text(Ws, bs, acts, x, y, loss, values: dict, digits: int, ints: bool = False) -> str:
    """A worksheet (batch axis dropped for one sample), numbers with ``digits`` decimals;
    with ``ints``, a whole number is written as an integer (``0``, ``1``)."""

    def num(e: float) -> str:
        if ints and float(e) == round(float(e)):
            return str(round(float(e)))
        return f"{float(e):.{digits}f}"

    def arr(v) -> str:
        v = np.asarray(v)
        if v.ndim == 0:
            return num(float(v))
        return "[" + ", ".join(arr(e) for e in v) + "]"

    lines = [f'loss = "{loss}"', f"lr = {LR}", f"input = {toml_array(x, 2)}"]
    lines.append(f"target = {toml_array(y, 1)}")
    for W, b, act in zip(Ws, bs, acts, strict=True):
        lines += ["[[layers]]", f"weights = {toml_array(W, 2)}", f"bias = {toml_array(b, 2)}"]
        lines.append(f'activation = "{act}"')
    lines.append("[values]")
    for name, v in values.items():
        v = np.asarray(v)
        batched = name not in ("loss",) and not name.startswith(("dW", "db", "W", "b"))
        if batched and x.shape[0] == 1 and v.ndim >= 2:
            v = v[0]
        lines.append(f"{name} = {arr(v)}")
    return "\n".join(lines) + "\n"
