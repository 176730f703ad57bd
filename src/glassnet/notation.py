"""The one place where glassnet's names meet the seed's notation.

glassnet says ``z``, ``a``, ``delta``, ``W``, ``dW`` with layers numbered from 1.
The seed (and many hand-worked tutorials) says:

=====================  =========================  ================================
glassnet               seed, 3 layers             seed, general (L layers)
=====================  =========================  ================================
x                      I (I_out)                  I
z1, a1                 h1_in, h1_out              h{l}_in, h{l}_out for l < L
z3, a3                 O_in, O_out                O_in, O_out for l = L
W1, W2, W3             W_ij, W_jk, W_kl           W_{letter(l-1)}{letter(l)}
dL_da3, da3_dz3        dE_dO_out, dO_out_dO_in    likewise for every layer
dW3, W3_new            dW_kl, W_kl_new            likewise
loss                   E_total (Error)
=====================  =========================  ================================

Index letters: the input is i, then j, k, l, m, n, p, q, ... (o is skipped: it reads
as zero beside O).  A unit is written with its letter and a 1-based number, so
``W[0, 2]`` of layer 1 is W_{i1j3}.
"""

from __future__ import annotations

import re

from glassnet.step import LAYER_LEAVES, LAYER_QUANTITIES

LETTERS: str = "ijklmnpqrstuvwxyzabcdefgh"


def letter(level: int) -> str:
    """Index letter of level 0 (the input), 1 (layer 1's units), ..."""
    if level < len(LETTERS):
        return LETTERS[level]
    return f"{LETTERS[level % len(LETTERS)]}{level // len(LETTERS)}"


def unit_name(n_layers: int, layer: int, kind: str) -> str:
    """The seed's name for z (``kind='in'``) or a (``kind='out'``) of ``layer`` (1-based)."""
    if layer == 0:
        return "I"
    base = "O" if layer == n_layers else f"h{layer}"
    return f"{base}_{kind}"


def weight_name(layer: int) -> str:
    """W_ij for layer 1, W_jk for layer 2, ..."""
    return f"W_{letter(layer - 1)}{letter(layer)}"


def seed_aliases(n_layers: int) -> dict[str, str]:
    """Map every seed-style name to glassnet's name, for a network of ``n_layers``.

    >>> seed_aliases(3)["h2_out"], seed_aliases(3)["dW_kl"], seed_aliases(3)["dE_dO_out"]
    ('a2', 'dW3', 'dL_da3')
    """
    out: dict[str, str] = {
        "E_total": "loss",
        "Error": "loss",
        "E": "loss",
        "I": "x",
        "I_out": "x",
        "input": "x",
        "target": "y",
        # The seed's per-output error terms (its E_1, E_2, E_3).
        "E_terms": "loss_terms",
    }
    for lyr in range(1, n_layers + 1):
        zin, aout = unit_name(n_layers, lyr, "in"), unit_name(n_layers, lyr, "out")
        w = weight_name(lyr)
        out[zin] = f"z{lyr}"
        out[aout] = f"a{lyr}"
        out[f"dE_d{aout}"] = f"dL_da{lyr}"
        out[f"d{aout}_d{zin}"] = f"da{lyr}_dz{lyr}"
        out[f"dE_d{zin}"] = f"delta{lyr}"
        out[w] = f"W{lyr}"
        out[f"d{w}"] = f"dW{lyr}"
        out[f"{w}_new"] = f"W{lyr}_new"
        b = f"b_{letter(lyr)}"
        out[b] = f"b{lyr}"
        out[f"d{b}"] = f"db{lyr}"
        out[f"{b}_new"] = f"b{lyr}_new"
    return out


def seed_name(name: str, n_layers: int) -> str | None:
    """The seed's name for a glassnet name (``"a2"`` -> ``"h2_out"``), or None."""
    for alias, ours in seed_aliases(n_layers).items():
        if ours == name and alias not in ("E", "Error", "I_out", "input", "target"):
            return alias
    return None


def quantity_name(kind: str, layer: int) -> str:
    """glassnet's written name of a step quantity: ("dW", 3) -> "dW3", ("W_new", 2) ->
    "W2_new", ("da_dz", 1) -> "da1_dz1"; whole-step kinds (layer 0) keep their name."""
    if layer == 0:
        return kind
    if kind == "da_dz":
        return f"da{layer}_dz{layer}"
    if kind.endswith("_new"):
        return f"{kind[:-4]}{layer}_new"
    return f"{kind}{layer}"


# The inverse of quantity_name, for every per-layer kind of the step graph.
_KINDS = (*LAYER_LEAVES, *LAYER_QUANTITIES)
_PLAIN = "|".join(k for k in _KINDS if k != "da_dz" and not k.endswith("_new"))
_NEW = "|".join(k[:-4] for k in _KINDS if k.endswith("_new"))
_ANY_NUMBERED = re.compile(r"^([A-Za-z][A-Za-z_]*?)(\d+)(_new)?$")
_NUMBERED = re.compile(rf"^({_PLAIN})(\d+)$|^({_NEW})(\d+)_new$|^da(\d+)_dz(\d+)$")


def split_name(name: str) -> tuple[str, int | None]:
    """``"dW3"`` -> ``("dW", 3)``; ``"W2_new"`` -> ``("W_new", 2)``; ``"da1_dz1"`` ->
    ``("da_dz", 1)``; ``"loss"`` -> ``("loss", None)``.  Unknown shapes return (name, None)."""
    m = _NUMBERED.match(name)
    if not m:
        # Another layer type's or an optimiser's quantity, named the same way:
        # "x_hat2", "m_W1", "gamma2_new" (quantity_name's inverse; the caller checks the
        # kind is one of the step's).
        g = _ANY_NUMBERED.match(name)
        if g is None:
            return name, None
        return g.group(1) + (g.group(3) or ""), int(g.group(2))
    if m.group(1):
        return m.group(1), int(m.group(2))
    if m.group(3):
        return f"{m.group(3)}_new", int(m.group(4))
    if m.group(5) != m.group(6):
        return name, None
    return "da_dz", int(m.group(5))


def latex_symbol(name: str, n_layers: int) -> str:
    """A LaTeX subscripted form of a seed name: ``h1_in`` -> ``h1_{in}``."""
    seed = seed_name(name, n_layers) or name
    head, _, tail = seed.partition("_")
    return f"{head}_{{{tail}}}" if tail else head


__all__ = [
    "LETTERS",
    "latex_symbol",
    "letter",
    "seed_aliases",
    "seed_name",
    "split_name",
    "unit_name",
    "weight_name",
]
