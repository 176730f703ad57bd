"""Worksheets: a spec plus a ``[values]`` table of the numbers a person computed.

A worksheet is a spec file (see docs/spec.md) with one more table::

    [values]
    z1 = [1.35, 1.27, 1.8]          # our names ...
    O_out = [0.2698, 0.3223, 0.4078]  # ... or the seed's (glassnet.notation.seed_aliases)
    loss = 0.985
    dW3 = [[-0.5531, -0.0576, -0.5836], [...], [...]]
    "W_ij@layer1_example" = [[...]]   # name@tag: the same quantity written a second time

or, instead of the network, ``spec = "seed"`` (or a path relative to the worksheet) naming
the spec the values belong to.  Values are written without the batch axis when the batch
is one sample.  Every number keeps the digits it was written with: the marking tolerance
is half a unit in its last written decimal place.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.limits import check_nesting
from glassnet.notation import seed_aliases, split_name
from glassnet.spec import EXAMPLES, Spec, example_path, load_spec, parse_spec, read_text
from glassnet.trace import LAYER_FIELDS

Array = np.ndarray
#: A quantity: (kind, layer).  Kinds per layer: W, b, z, a, da_dz, dL_da, delta, dW, db,
#: W_new, b_new; whole-step kinds (layer 0): x, y, loss_terms, loss, output.
Key = tuple[str, int]

LAYER_KINDS: tuple[str, ...] = ("W", "b", *LAYER_FIELDS)
STEP_KINDS: tuple[str, ...] = ("x", "y", "loss_terms", "loss", "output")
#: Names of the bundled worksheets (``glassnet check seed``).
WORKSHEETS: dict[str, str] = {"seed": "seed_worksheet"}


def key_name(key: Key) -> str:
    """Our name of a quantity: ("dW", 3) -> "dW3", ("da_dz", 2) -> "da2_dz2"."""
    kind, layer = key
    if kind in STEP_KINDS:
        return kind
    if kind == "da_dz":
        return f"da{layer}_dz{layer}"
    if kind.endswith("_new"):
        return f"{kind[:-4]}{layer}_new"
    return f"{kind}{layer}"


class Written(float):
    """A float that remembers the text it was written as (for its last decimal place)."""

    text: str

    def __new__(cls, text: str) -> Written:
        obj = super().__new__(cls, float(text))
        obj.text = text
        return obj


def half_unit(v: Any) -> float:
    """Half a unit in the last written decimal place: 0.2698 -> 0.00005, 4 -> 0.5,
    1.5e-3 -> 0.00005.  A float without its text (from Python) counts as exact."""
    text = getattr(v, "text", None)
    if text is None:
        return 0.5 if isinstance(v, int) and not isinstance(v, bool) else 0.0
    try:
        exponent = Decimal(text.replace("_", "")).as_tuple().exponent
    except InvalidOperation:  # pragma: no cover - tomllib only hands over valid floats
        return 0.0
    return 0.5 * 10.0 ** int(exponent) if isinstance(exponent, int) else 0.0


@dataclass
class Given:
    """One value a person wrote.  ``value`` and ``half`` have the quantity's full shape
    (with the batch axis); ``diagonal`` marks a vector written for a full Jacobian."""

    written_name: str
    key: Key
    tag: str
    value: Array
    half: Array
    diagonal: bool = False

    @property
    def name(self) -> str:
        return key_name(self.key)


@dataclass
class Worksheet:
    """A spec and the person's values, in the order written."""

    spec: Spec
    label: str
    givens: list[Given] = field(default_factory=list)

    @property
    def n_layers(self) -> int:
        return len(self.spec.network.layers)

    def own(self) -> dict[Key, Given]:
        """The person's value of each quantity: the untagged one, else the first written."""
        out: dict[Key, Given] = {}
        for g in self.givens:
            if g.key not in out or (out[g.key].tag and not g.tag):
                out[g.key] = g
        return out


def resolve_name(name: str, n_layers: int, label: str) -> tuple[Key, str]:
    """``"h2_out@copy"`` -> (("a", 2), "copy").  Unknown names are a GlassnetError."""
    base, _, tag = name.partition("@")
    ours = seed_aliases(n_layers).get(base, base)
    if ours in STEP_KINDS:
        return (ours, 0), tag
    kind, layer = split_name(ours)
    if layer is not None and kind in LAYER_KINDS and 1 <= layer <= n_layers:
        return (kind, layer), tag
    raise GlassnetError(
        f"expected a quantity of this {n_layers}-layer network: our names (z1, a1, da1_dz1, "
        "dL_da1, delta1, dW1, db1, W1_new, b1_new, ..., loss, loss_terms, output) or the "
        "seed's (h1_in, O_out, dE_dO_out, dW_kl, ...)",
        got=f"unknown name {name!r}",
        file=label,
        field=f"values.{name}",
    )


def expected_shape(spec: Spec, key: Key) -> tuple[int, ...]:
    """Full shape (batch axis included) of a quantity of ``spec``'s step."""
    kind, layer = key
    batch = spec.x.shape[0]
    sizes = spec.network.sizes
    if kind == "x":
        return (batch, sizes[0])
    if kind in ("y", "loss_terms", "output"):
        return (batch, sizes[-1])
    if kind == "loss":
        return ()
    n_in, n_out = sizes[layer - 1], sizes[layer]
    if kind in ("W", "dW", "W_new"):
        return (n_in, n_out)
    if kind in ("b", "db", "b_new"):
        return (n_out,)
    if kind == "da_dz" and not spec.network.layers[layer - 1].activation.elementwise:
        return (batch, n_out, n_out)
    return (batch, n_out)


def _batch_free(shape: tuple[int, ...], batched: bool, batch: int) -> tuple[int, ...]:
    return shape[1:] if batched and batch == 1 else shape


def _numbers(v: Any, where: str, label: str) -> tuple[Array, Array]:
    """Nested lists of numbers -> (values, half units); text or tables are errors."""
    if isinstance(v, bool) or isinstance(v, str | dict) or v is None:
        kind = "text" if isinstance(v, str) else type(v).__name__
        raise GlassnetError(
            "expected a number or a list of numbers",
            got=f"{kind} {v!r}",
            file=label,
            field=where,
        )
    if isinstance(v, list):
        if not v:
            raise GlassnetError("expected numbers", got="an empty list", file=label, field=where)
        parts = [_numbers(e, where, label) for e in v]
        shapes = {p[0].shape for p in parts}
        if len(shapes) != 1:
            raise GlassnetError(
                "expected rows of equal length",
                got=f"rows of shapes {sorted(shapes)}",
                file=label,
                field=where,
            )
        return np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts])
    if not isinstance(v, int | float):
        raise GlassnetError("expected a number", got=repr(v), file=label, field=where)
    if not math.isfinite(float(v)):
        raise GlassnetError("expected a finite number", got=repr(v), file=label, field=where)
    return np.asarray(float(v)), np.asarray(half_unit(v))


def _given(spec: Spec, written: str, raw: Any, label: str) -> Given:
    key, tag = resolve_name(written, len(spec.network.layers), label)
    where = f"values.{written}"
    value, half = _numbers(raw, where, label)
    full = expected_shape(spec, key)
    batched = key[0] not in ("W", "b", "dW", "db", "W_new", "b_new", "loss")
    batch = spec.x.shape[0]
    diagonal = False
    candidates = [full, _batch_free(full, batched, batch)]
    if len(full) == 3:  # a Jacobian may be written as its diagonal
        candidates += [full[:2], _batch_free(full[:2], True, batch)]
    if value.shape not in candidates:
        want = _batch_free(full, batched, batch)
        extra = " (or its diagonal)" if len(full) == 3 else ""
        raise GlassnetError(
            f"expected shape {want}{extra} for {key_name(key)}",
            got=f"shape {value.shape}",
            file=label,
            field=where,
        )
    if len(full) == 3 and value.shape in (full[:2], _batch_free(full[:2], True, batch)):
        diagonal = True
        full = full[:2]
    value = value.reshape(full)
    half = half.reshape(full)
    return Given(written, key, tag, value, half, diagonal)


def parse_worksheet(
    text: str, label: str = "<worksheet>", *, base: Path | None = None
) -> Worksheet:
    """Parse worksheet text (a spec with ``[values]``, or ``spec = ...`` and ``[values]``)."""
    check_nesting(text, file=label)
    try:
        data = tomllib.loads(text, parse_float=Written)
    except tomllib.TOMLDecodeError as err:
        raise GlassnetError("expected valid TOML", got=str(err), file=label) from None
    values = data.get("values")
    if not isinstance(values, dict) or not values:
        raise GlassnetError(
            "expected a [values] table with what was computed",
            got="nothing" if values is None else repr(values),
            file=label,
            field="values",
        )
    if "spec" in data:
        ref = data["spec"]
        extra = sorted(set(data) - {"spec", "values", "name", "description"})
        if not isinstance(ref, str) or extra:
            raise GlassnetError(
                'expected spec = "seed" or a spec file\'s path, with only [values] beside it',
                got=repr(ref) if not isinstance(ref, str) else f"also {extra[0]!r}",
                file=label,
                field="spec",
            )
        path = ref if ref in EXAMPLES or base is None else str(base / ref)
        try:
            spec = load_spec(path)
        except GlassnetError as err:  # name the worksheet first: it is what was given
            raise GlassnetError(
                "expected the spec it names to load", got=str(err), file=label, field="spec"
            ) from None
        for key in ("name", "description"):
            if isinstance(data.get(key), str):
                setattr(spec, key, data[key])
    else:
        spec = parse_spec(text, label)
    sheet = Worksheet(spec=spec, label=label)
    for written, raw in values.items():
        sheet.givens.append(_given(spec, written, raw, label))
    return sheet


def load_worksheet(source: str | Path) -> Worksheet:
    """Load a worksheet file, or a bundled one by name (``"seed"``)."""
    name = str(source)
    if name in WORKSHEETS:
        path = example_path(WORKSHEETS[name])
        label = name
    else:
        path = Path(name)
        label = str(path)
    text = read_text(path, label, "a worksheet file (TOML) or 'seed'")
    return parse_worksheet(text, label, base=path.parent)
