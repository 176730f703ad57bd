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

import functools
import re

from glassnet.mathtree import EQ, Const, Frac, Node, Op, Paren, Script, Sym, row
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
    # Built once per size (check resolves every written name through it); a copy, so a
    # caller may change what it gets.
    return dict(_seed_aliases(n_layers))


@functools.lru_cache(maxsize=64)
def _seed_aliases(n_layers: int) -> dict[str, str]:
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


# -- a value's name as the page writes it, in plain text ----------------------------------


def page_name(kind: str, layer: int, index: tuple[int, ...], n_layers: int) -> str:
    """The page's (the seed's) name of one value of the step, 1-based, as plain text:
    ("a", 3, (0,)) -> "O_out1"; ("dW", 3, (0, 1)) -> "∂E/∂W_k1l2"; ("W_new", 1, (2, 0))
    -> "W′_i3j1"; ("da_dz", 3, (0, 1)) -> "∂O_out1/∂O_in2"; ("loss", 0, ()) -> "E".
    (Rows notation: a weight is named from its source to its target, as in the seed.)

    >>> page_name("delta", 2, (1,), 3), page_name("loss_terms", 0, (2,), 3)
    ('δh2_2', 'E3')
    """
    n = [str(i + 1) for i in index]
    if kind in ("loss", "loss_terms"):
        return "E" + "".join(n)
    if kind in ("W", "dW", "W_new"):
        w = f"W{'′' if kind == 'W_new' else ''}_{letter(layer - 1)}{n[0]}{letter(layer)}{n[1]}"
        return f"∂E/∂{w}" if kind == "dW" else w
    if kind in ("b", "db", "b_new"):
        b = f"b{'′' if kind == 'b_new' else ''}_{letter(layer)}{n[0]}"
        return f"∂E/∂{b}" if kind == "db" else b
    if kind == "x":
        return "I" + n[0]
    if kind == "y":
        return "y" + n[0]
    zin, aout = unit_name(n_layers, layer, "in"), unit_name(n_layers, layer, "out")
    if kind == "z":
        return zin + n[0]
    if kind == "a":
        return aout + n[0]
    if kind == "dL_da":
        return f"∂E/∂{aout}{n[0]}"
    if kind == "delta":
        base = zin.split("_")[0]
        return f"δ{base}_{n[0]}" if base[-1].isdigit() else f"δ{base}{n[0]}"
    if kind == "da_dz":
        return f"∂{aout}{n[0]}/∂{zin}{n[-1]}"
    return quantity_name(kind, layer)


def page_quantity(kind: str, layer: int, n_layers: int) -> str:
    """The page's name of a whole quantity, as plain text: ("dW", 3) -> "∂E/∂W_kl",
    ("a", 3) -> "O_out", ("loss_terms", 0) -> "E_l" (the terms, one per output).

    >>> page_quantity("dW", 3, 3), page_quantity("a", 3, 3), page_quantity("delta", 1, 3)
    ('∂E/∂W_kl', 'O_out', 'δh1')
    """
    if kind in ("loss", "loss_terms"):
        return "E" if kind == "loss" else f"E_{letter(n_layers)}"
    if kind in ("W", "dW", "W_new"):
        w = f"W{'′' if kind == 'W_new' else ''}_{letter(layer - 1)}{letter(layer)}"
        return f"∂E/∂{w}" if kind == "dW" else w
    if kind in ("b", "db", "b_new"):
        b = f"b{'′' if kind == 'b_new' else ''}_{letter(layer)}"
        return f"∂E/∂{b}" if kind == "db" else b
    zin, aout = unit_name(n_layers, layer, "in"), unit_name(n_layers, layer, "out")
    names = {
        "z": zin,
        "a": aout,
        "dL_da": f"∂E/∂{aout}",
        "delta": "δ" + zin.split("_")[0],
        "da_dz": f"∂{aout}/∂{zin}",
    }
    return names.get(kind, quantity_name(kind, layer))


# -- other people's names: Mazur's, the textbooks', PyTorch's -----------------------------


def mazur_shaped(sizes: list[int] | tuple[int, ...]) -> bool:
    """Whether a network has the shape of Mazur's worked example (2 inputs, 2 hidden
    units, 2 outputs), the only shape his names (w1…w8, net_h1, out_o2) are given for."""
    return tuple(sizes) == (2, 2, 2)


def mazur_name(kind: str, layer: int, index: tuple[int, ...]) -> str | None:
    """Matt Mazur's name ("A Step by Step Backpropagation Example", 2015) for a value
    of a 2-2-2 network, or None where he has none.  He numbers the weights by layer,
    then by the unit they go to, then by the unit they come from — net_h1 = w1·i1 +
    w2·i2 + b1, net_h2 = w3·i1 + w4·i2 + b1, net_o1 = w5·out_h1 + w6·out_h2 + b2 — and
    gives each layer one bias (b1, b2).  His "h1" is a hidden *unit*; this page's h1
    is the first hidden *layer*.

    >>> mazur_name("W", 1, (1, 0)), mazur_name("W_new", 2, (0, 1)), mazur_name("a", 1, (1,))
    ('w2', 'w7⁺', 'out_h2')
    """
    n = [i + 1 for i in index]
    if kind in ("W", "W_new", "dW"):
        i, j = index
        w = f"w{4 * (layer - 1) + 2 * j + i + 1}"
        return {"W": w, "W_new": w + "⁺", "dW": f"∂E_total/∂{w}"}[kind]
    unit = {1: "h", 2: "o"}.get(layer)
    names = {
        "x": f"i{n[0]}" if n else None,
        "y": f"target_o{n[0]}" if n else None,
        "loss_terms": f"E_o{n[0]}" if n else None,
        "loss": "E_total",
        "b": f"b{layer}",
        "z": f"net_{unit}{n[0]}" if unit and n else None,
        "a": f"out_{unit}{n[0]}" if unit and n else None,
        "dL_da": f"∂E_total/∂out_{unit}{n[0]}" if unit and n else None,
        "da_dz": f"∂out_{unit}{n[0]}/∂net_{unit}{n[0]}" if unit and n else None,
        "delta": f"∂E_total/∂net_{unit}{n[0]}" if unit and n else None,
    }
    return names.get(kind)


#: How each book writes the weight from unit i of layer l−1 to unit j of layer l, and
#: which index runs where; "rows"/"columns" is this page's own notation.
def weight_conventions(columns: bool) -> list[tuple[str, str, str]]:
    """(who, how they write that weight, how it relates to this page's matrix) for the
    weight from unit i of layer l−1 to unit j of layer l."""
    page = "W[to][from]" if columns else "W[from][to]"
    same_or_t = "the same matrix" if columns else f"the transpose of this page's {page}"
    return [
        ("this page", "W_ji (to j, from i)" if columns else "W_ij (from i, to j)", page),
        (
            "Nielsen",
            "w^l_jk: to unit j of layer l from unit k of layer l−1 (k here is i)",
            f"w^l[j][k] — {same_or_t}",
        ),
        (
            "Goodfellow et al.",
            "W^(k)_{j,i} in the forward pass a^(k) = b^(k) + W^(k) h^(k−1) (Algorithm 6.3)",
            f"W[to][from] — {same_or_t}",
        ),
        ("Mazur", "w1…w8, numbered to-unit first, then from-unit (2-2-2 only)", "one by one"),
        (
            "PyTorch nn.Linear",
            "weight[j, i]: shape (out_features, in_features); y = x @ weight.T + bias",
            f"weight = {'W' if columns else 'Wᵀ'}",
        ),
    ]


#: Nielsen's four equations of backpropagation ("Neural Networks and Deep Learning",
#: ch. 2), as he writes them: C the cost, ⊙ the elementwise product, σ′ the activation's
#: derivative, w^l_jk the weight to unit j of layer l from unit k of layer l−1.
NIELSEN_BP: dict[str, str] = {
    "BP1": "δ^L = ∇_a C ⊙ σ′(z^L)",
    "BP2": "δ^l = ((w^(l+1))ᵀ δ^(l+1)) ⊙ σ′(z^l)",
    "BP3": "∂C/∂b^l_j = δ^l_j",
    "BP4": "∂C/∂w^l_jk = a^(l−1)_k δ^l_j",
}


def nielsen_bp() -> dict[str, Node]:
    """Nielsen's BP1–BP4 as maths, as his book sets them (:data:`NIELSEN_BP` in words)."""
    odot = Op(r"\odot", "\u2299")

    def d(sup: str) -> Node:
        return Script(Sym("δ"), None, sup)

    def partial(top: Node, bottom: Node) -> Node:
        return Frac(row(Const("∂"), top), row(Const("∂"), bottom))

    sigma = Sym("σ", prime=True)
    return {
        "BP1": row(
            d("L"), EQ, Script(Const("∇"), "a"), Sym("C"), odot, sigma,
            Paren(Script(Sym("z"), None, "L")),
        ),
        "BP2": row(
            d("l"), EQ,
            Paren(row(Script(Paren(Script(Sym("w"), None, "l+1")), None, "T"), d("l+1"))),
            odot, sigma, Paren(Script(Sym("z"), None, "l")),
        ),
        "BP3": row(partial(Sym("C"), Script(Sym("b"), "j", "l")), EQ, Script(Sym("δ"), "j", "l")),
        "BP4": row(
            partial(Sym("C"), Script(Sym("w"), "jk", "l")), EQ,
            Script(Sym("a"), "k", "l−1"), Script(Sym("δ"), "j", "l"),
        ),
    }  # fmt: skip


#: The engine's words in check's catalogue, and the page's for them (see page_words).
_ENGINE_WORDS: tuple[tuple[str, str], ...] = (
    (r"\bdL/d([az])(?:_i)?\b", r"∂E/∂{\1}"),
    (r"\bd([az])(?:_i)?/d([az])(?:_i)?\b", r"∂{\1}/∂{\2}"),
    (r"\bdelta(?=ᵀ|\b)", "δ"),
    (r"\bW_new\b", "W′"),
    (r"\bW\[([ij]), ([ij])\]", r"W_\1\2"),
    (r"\bdW\b", "∂E/∂W"),
    (r"(?<![A-Za-z_])p(?![A-Za-z_])", "{a}"),
)


def page_words(text: str, n_layers: int, layer: int) -> str:
    """A sentence of ``glassnet check`` (its catalogue's titles write the engine's
    dL/dz_i, da/dz, delta, W_new, p) in the page's names for the units of ``layer``:
    "dL/dz_i = dL/da_i · da_i/dz_i" at the seed's output layer reads
    "∂E/∂O_in,l = ∂E/∂O_out,l · ∂O_out,l/∂O_in,l".

    >>> page_words("delta multiplied by da/dz again", 3, 2)
    'δ multiplied by ∂h2_out,k/∂h2_in,k again'
    """
    if layer < 1:
        layer = n_layers  # the error's quantities: the output layer's units
    names = {
        "a": f"{unit_name(n_layers, layer, 'out')},{letter(layer)}",
        "z": f"{unit_name(n_layers, layer, 'in')},{letter(layer)}",
    }
    for pattern, repl in _ENGINE_WORDS:
        text = re.sub(pattern, repl, text)
    return re.sub(r"\{(\w)\}", lambda m: names.get(m.group(1), m.group(0)), text)


__all__ = [
    "LETTERS",
    "NIELSEN_BP",
    "latex_symbol",
    "letter",
    "mazur_name",
    "mazur_shaped",
    "nielsen_bp",
    "page_name",
    "page_quantity",
    "page_words",
    "seed_aliases",
    "seed_name",
    "split_name",
    "unit_name",
    "weight_conventions",
    "weight_name",
]
