"""Random exercises a person can work by hand: a spec with one-decimal numbers, a blank
worksheet listing every quantity to fill in, and the answer key (read from the trace)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from glassnet.check.steps import order
from glassnet.check.worksheet import expected_shape, key_name
from glassnet.errors import GlassnetError
from glassnet.losses import get_loss
from glassnet.notation import seed_name
from glassnet.spec import Spec, parse_spec


@dataclass
class Exercise:
    spec_text: str
    worksheet_text: str
    answer_markdown: str
    spec: Spec


def _toml_list(a: np.ndarray) -> str:
    if a.ndim == 1:
        return "[" + ", ".join(f"{v:g}" for v in a) + "]"
    return "[" + ", ".join(_toml_list(r) for r in a) + "]"


def default_loss(output: str) -> str:
    return {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy"}.get(output, "half_sse")


def make_exercise(
    sizes: list[int],
    activations: list[str] | None = None,
    loss: str | None = None,
    *,
    seed: int = 0,
    lr: float = 0.1,
    decimals: int = 1,
) -> Exercise:
    """A random exercise: weights, biases and input drawn from [-1, 1] and rounded to
    ``decimals`` (1 or 2), a one-hot target."""
    if len(sizes) < 2 or any(n < 1 or n > 8 for n in sizes):
        raise GlassnetError(
            "expected at least two layer sizes from 1 to 8 (by hand!)",
            got=repr(sizes),
            field="--layers",
        )
    if decimals not in (1, 2):
        raise GlassnetError("expected 1 or 2", got=str(decimals), field="--decimals")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise GlassnetError("expected a whole number ≥ 0", got=repr(seed), field="--seed")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
        raise GlassnetError("expected a positive finite number", got=repr(lr), field="--lr")
    n_layers = len(sizes) - 1
    acts = activations or ["sigmoid"] * (n_layers - 1) + ["softmax"]
    if len(acts) != n_layers:
        raise GlassnetError(
            f"expected {n_layers} activations (one per layer)",
            got=str(len(acts)),
            field="--activations",
        )
    loss = loss or default_loss(acts[-1])
    get_loss(loss)
    rng = np.random.default_rng(seed)

    def draw(*shape: int) -> np.ndarray:
        return np.round(rng.uniform(-1, 1, size=shape), decimals) + 0.0

    x = np.abs(draw(sizes[0]))
    y = np.zeros(sizes[-1])
    y[rng.integers(sizes[-1])] = 1.0
    lines = [
        f"# glassnet exercise (seed {seed}): work one step by hand.",
        f'name = "exercise-{seed}"',
        f'loss = "{loss}"',
        f"lr = {lr:g}",
        f"input = {_toml_list(x)}",
        f"target = {_toml_list(y)}",
    ]
    for lyr in range(1, n_layers + 1):
        lines += [
            "",
            "[[layers]]",
            f"weights = {_toml_list(draw(sizes[lyr - 1], sizes[lyr]))}",
            f"bias = {_toml_list(draw(sizes[lyr]))}",
            f'activation = "{acts[lyr - 1]}"',
        ]
    spec_text = "\n".join(lines) + "\n"
    spec = parse_spec(spec_text, "exercise")
    blank = [spec_text.rstrip("\n"), "", "# Fill in what you compute (any subset), then run:", ""]
    blank.append("#   glassnet check THIS_FILE")
    blank += ["", "[values]"]
    for key in order(n_layers):
        if key[0] in ("x", "y", "W", "b", "output"):
            continue
        shape = expected_shape(spec, key)
        shape = shape[1:] if key[0] not in ("dW", "db", "W_new", "b_new", "loss") else shape
        if len(shape) == 2 and key[0] == "da_dz":
            shape = shape[:1]  # the diagonal is enough to write
        name = key_name(key)
        alias = seed_name(name, n_layers)
        blank.append(f"# {name} = {_blank(shape)}" + (f"    # seed name: {alias}" if alias else ""))
    return Exercise(spec_text, "\n".join(blank) + "\n", answer_key(spec), spec)


def _blank(shape: tuple[int, ...]) -> str:
    if not shape:
        return "_"
    if len(shape) == 1:
        return "[" + ", ".join("_" for _ in range(shape[0])) + "]"
    return "[" + ", ".join(_blank(shape[1:]) for _ in range(shape[0])) + "]"


def answer_key(spec: Spec, digits: int = 4) -> str:
    """Every quantity of the step, rounded to ``digits`` decimals, as Markdown."""
    tr = spec.trace()
    out = [f"# Answer key: {spec.name}", "", f"loss = {tr.loss:.{digits}f}", ""]

    def row(name: str, v: np.ndarray) -> str:
        v = np.asarray(v)
        if v.ndim == 3 and v.shape[0] == 1:
            v = v[0]
        elif v.ndim == 2 and v.shape[0] == 1 and name[:2] not in ("dW", "W_"):
            v = v[0]
        text = np.array2string(v, precision=digits, floatmode="fixed", separator=", ")
        return f"| {name} | `{' '.join(text.split())}` |"

    out += ["| quantity | value |", "|---|---|"]
    out.append(row("loss_terms", tr.loss_terms))
    for lt in tr.layers:
        for f in ("z", "a"):
            out.append(row(f"{f}{lt.index}", getattr(lt, f)))
    for lt in reversed(tr.layers):
        out.append(row(f"dL_da{lt.index}", lt.dL_da))
        out.append(row(f"da{lt.index}_dz{lt.index}", lt.da_dz))
        out.append(row(f"delta{lt.index}", lt.delta))
        out.append(row(f"dW{lt.index}", lt.dW))
        out.append(row(f"db{lt.index}", lt.db))
    for lt in tr.layers:
        out.append(row(f"W{lt.index}_new", lt.W_new))
        out.append(row(f"b{lt.index}_new", lt.b_new))
    return "\n".join(out) + "\n"
