"""The studio's worksheet side: what a practice sheet shows, hints that stop before the
answer, per-number links of the step graph, and what a locked sheet may be told.

A *locked* request (``"locked": true``, sent by a page opened from a teacher's
``#…&lock=`` link) is answered with no right value of any computed quantity: the sheet
carries the givens and the shapes of the unknowns only, marks carry the verdict and the
mistake's name but not the expected number, hints carry the rule (and the student's own
numbers put into it) but never its result.  The lock keeps answers off a student's
screen; it is not a secret — the givens are enough to work every answer out, which is
the point of the exercise.

Numbers still come from the engine: the sheet's givens from the parsed spec, marks from
``check``, the rule and its numbers from ``explain``'s own blocks (built from a copy of
the trace in which every computed value is the student's, or unknown).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import TYPE_CHECKING, Any

from glassnet.studio.api import (
    LABEL,
    StudioError,
    _dense_only,
    _digits,
    _kind,
    _locked,
    _object,
    _parse_index,
    _unknown,
    describe,
    parse,
    spec_dict,
)
from glassnet.studio.entries import BATCHED, Entry, EntryGraph, Index, kind_of

if TYPE_CHECKING:
    from glassnet.spec import Spec
    from glassnet.trace import Trace


# -- what each number is, in words ------------------------------------------------------


def _names(n_layers: int) -> dict[str, dict[str, Any]]:
    from glassnet.check.steps import order
    from glassnet.check.worksheet import key_name
    from glassnet.notation import seed_name

    out: dict[str, dict[str, Any]] = {}
    for key in order(n_layers):
        name = key_name(key)
        if name == "output":
            continue
        out[name] = {"seed": seed_name(name, n_layers), "describe": describe(name, n_layers)}
    return out


# -- the sheet ------------------------------------------------------------------------------


def sheet(body: Any) -> dict[str, Any]:
    """``{"spec"}`` -> what a practice sheet shows, with no computed value in it: the
    givens as the spec writes them (x, y, each layer's W, b and activation; the loss, lr
    and whether biases are updated) and the unknowns, in the order a derivation meets
    them, each with its shape, its seed name and what its entries are."""
    from glassnet.check.steps import order
    from glassnet.check.worksheet import key_name

    body = _object(body, "a request")
    _unknown(body, {"spec", "locked"})
    _locked(body)
    spec = parse(body.get("spec"))
    _dense_only(spec, "practice in the studio")
    data = spec_dict(spec, body.get("spec"))
    n_layers = len(spec.network.layers)
    batch = int(spec.x.shape[0])
    names = _names(n_layers)
    shapes = _shapes(spec)
    unknowns = []
    for key in order(n_layers):
        name = key_name(key)
        if key[0] in ("x", "y", "W", "b", "output"):
            continue
        unknowns.append({"name": name, "shape": list(shapes[name]), **names[name]})
    return {
        "spec": data,
        "batch": batch,
        "givens": [
            {"name": n, "value": v, **names[n]}
            for n, v in (
                # (as the page indexes them: no batch axis for one sample)
                ("x", data["input"][0] if batch == 1 else data["input"]),
                ("y", data["target"][0] if batch == 1 else data["target"]),
                *(
                    (f"{p}{k}", layer[f])
                    for k, layer in enumerate(data["layers"], start=1)
                    for p, f in (("W", "weights"), ("b", "bias"))
                ),
            )
        ],
        "settings": {
            "loss": data["loss"],
            "lr": data["lr"],
            "update_bias": data["update_bias"],
            "activations": [layer["activation"] for layer in data["layers"]],
        },
        "unknowns": unknowns,
    }


def _shapes(spec: Spec) -> dict[str, Index]:
    """Each quantity's shape as the page indexes it (no batch axis for one sample), from
    the layer sizes alone: nothing is computed."""
    batch = int(spec.x.shape[0])
    layers = spec.network.layers
    n_layers = len(layers)

    def b(*rest: int) -> Index:
        return rest if batch == 1 else (batch, *rest)

    out: dict[str, Index] = {"x": b(layers[0].n_in), "y": b(layers[-1].n_out)}
    out["loss_terms"], out["loss"] = b(layers[-1].n_out), ()
    for k, layer in enumerate(layers, start=1):
        n = layer.n_out
        jac = not layer.activation.elementwise  # da/dz is then the full Jacobian
        out.update(
            {
                f"W{k}": (layer.n_in, n),
                f"b{k}": (n,),
                f"z{k}": b(n),
                f"a{k}": b(n),
                f"dL_da{k}": b(n),
                f"da{k}_dz{k}": b(n, n) if jac else b(n),
                f"delta{k}": b(n),
                f"dW{k}": (layer.n_in, n),
                f"db{k}": (n,),
                f"W{k}_new": (layer.n_in, n),
                f"b{k}_new": (n,),
            }
        )
    del n_layers
    return out


# -- per-number links of the step graph ---------------------------------------------------------


def _batched(name: str) -> bool:
    return kind_of(name)[0] in BATCHED


def _full(name: str, index: Index, batch: int) -> Index:
    return (0, *index) if batch == 1 and _batched(name) else index


def _page(entry: Entry, batch: int) -> list[Any]:
    name, index = entry
    if batch == 1 and _batched(name):
        index = index[1:]
    return [name, ",".join(map(str, index))]


def _graph_of(spec: Spec) -> EntryGraph:
    layers = spec.network.layers
    sizes = (layers[0].n_in, *(layer.n_out for layer in layers))
    jac = frozenset(
        k for k, layer in enumerate(layers, start=1) if not layer.activation.elementwise
    )
    return EntryGraph(sizes, int(spec.x.shape[0]), jac)


def links(body: Any) -> dict[str, Any]:
    """``{"spec", "quantity", "index"}`` -> ``{"inputs": [[name, index], ...],
    "consumers": [...]}``: the numbers this one is computed from and the numbers computed
    from it (indexes as the page writes them: no batch axis for one sample)."""
    body = _object(body, "a request")
    _unknown(body, {"spec", "quantity", "index", "locked"})
    spec = parse(body.get("spec"))
    from glassnet.studio.maps import is_maps
    from glassnet.studio.maps import links as map_links

    if is_maps(spec):  # feature maps: full indexes, the plugins' written-out terms
        return map_links(spec, body.get("quantity"), body.get("index"))
    _key, name, _n = _step_quantity(body, spec)
    index = _parse_index(body.get("index")) or ()
    graph = _graph_of(spec)
    batch = graph.batch
    entry = (name, _full(name, index, batch))
    if not graph.has(entry):
        raise StudioError(
            f"expected an index of {name}", got=",".join(map(str, index)) or "none", field="index"
        )
    return {
        "quantity": name,
        "index": ",".join(map(str, index)),
        "inputs": [_page(e, batch) for e in graph.inputs(entry)],
        "consumers": [_page(e, batch) for e in graph.consumers(entry)],
    }


# -- hints ---------------------------------------------------------------------------------------


def _typed(
    values: dict[str, Any], batch: int, n_layers: int
) -> dict[str, dict[Index, tuple[float, str]]]:
    """The boxes a person filled, as ``{name: {full index: (number, text)}}``; text that
    is not a number is left out (its box says so on the page)."""
    from glassnet.check.worksheet import key_name, resolve_name
    from glassnet.errors import GlassnetError
    from glassnet.toml_writer import written_number

    out: dict[str, dict[Index, tuple[float, str]]] = {}

    def walk(name: str, v: Any, at: Index) -> None:
        if isinstance(v, list):
            for i, e in enumerate(v):
                walk(name, e, (*at, i))
            return
        if v is None or (isinstance(v, str) and not v.strip()):
            return
        text = str(v)
        try:
            number = float(written_number(text, f"values.{name}"))
        except GlassnetError:  # not a number: its box says so on the page
            return
        if len(at) > 4 or not math.isfinite(number):
            return
        out.setdefault(name, {})[_full(name, at, batch)] = (number, text.strip())

    for name, v in values.items():
        if not isinstance(name, str) or len(name) > 40:
            raise StudioError("expected a quantity name", got=_kind(name), field="values")
        key, _ = resolve_name(name, n_layers, LABEL)
        walk(f"a{n_layers}" if key[0] == "output" else key_name(key), v, ())
    return out


def _mine(trace: Trace, typed: dict[str, dict[Index, tuple[float, str]]]) -> Trace:
    """A copy of ``trace`` in which every computed number is the person's own (NaN where
    they typed nothing): explain's numbers for a rule are then theirs, or unknown."""
    import numpy as np

    mine = copy.deepcopy(trace)
    mine.after, mine.later, mine.output_delta_shortcut = None, [], None

    def put(name: str, arr: Any) -> None:
        arr[...] = np.nan
        for index, (number, _text) in typed.get(name, {}).items():
            if len(index) == arr.ndim and all(
                0 <= i < n for i, n in zip(index, arr.shape, strict=True)
            ):
                arr[index] = number

    for lt in mine.layers:
        k = lt.index
        for field, name in (
            ("z", f"z{k}"),
            ("a", f"a{k}"),
            ("dL_da", f"dL_da{k}"),
            ("da_dz", f"da{k}_dz{k}"),
            ("delta", f"delta{k}"),
            ("dW", f"dW{k}"),
            ("db", f"db{k}"),
            ("W_new", f"W{k}_new"),
            ("b_new", f"b{k}_new"),
        ):
            put(name, getattr(lt, field))
        if k < len(mine.layers):
            mine.layers[k].x = lt.a  # the next layer's input is this layer's output
    put("loss_terms", mine.loss_terms)
    mine.output = mine.layers[-1].a
    mine.loss = float("nan")
    return mine


def _unknown_nums(node: Any) -> Any:
    """explain's numbers with every NaN (a number not typed yet) written as "?"."""
    from glassnet.mathtree import Num, Text

    if isinstance(node, Num):
        return Text("?") if math.isnan(node.value) else node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {}
        for f in dataclasses.fields(node):
            v = getattr(node, f.name)
            if isinstance(v, tuple):
                changes[f.name] = tuple(_unknown_nums(e) for e in v)
            elif dataclasses.is_dataclass(v):
                changes[f.name] = _unknown_nums(v)
        return dataclasses.replace(node, **changes)
    return node


def _label(entry: Entry, batch: int, n_layers: int) -> str:
    """How a number is named in a hint: the seed's name with its unit counted from 1
    (h1_out2) where the seed has one, else ours with the page's index (W1[0,2])."""
    from glassnet.notation import seed_name

    name, index = entry
    page = index[1:] if batch == 1 and _batched(name) else index
    seed = seed_name(name, n_layers)
    if seed and len(page) == 1 and kind_of(name)[0] not in ("W", "dW", "W_new"):
        return f"{seed}{page[0] + 1}"
    return f"{name}[{','.join(map(str, page))}]" if page else name


def hint(body: Any) -> dict[str, Any]:
    """``{"spec", "quantity", "index", "values", "level", "digits"?}`` -> the rule for
    one number, from explain's block for it, stopping before its result.  ``level``
    ``"rule"``: the rule in symbols only; ``"own"``: also the rule with the person's own
    earlier numbers put in (``values``, as for check) — "?" for an input not typed yet,
    named in ``missing`` — and the givens.  Never a computed right value."""
    from glassnet.explain.document import Calculation, Para
    from glassnet.explain.render_html import block_html, mml_derivation
    from glassnet.mathtree import Matrix
    from glassnet.studio.api import block_key, derivation_budget, quantity_section

    body = _object(body, "a request")
    _unknown(body, {"spec", "quantity", "index", "values", "level", "digits", "locked"})
    _locked(body)
    level = body.get("level", "rule")
    if level not in ("rule", "own"):
        raise StudioError("expected the level rule or own", got=repr(level)[:40], field="level")
    spec = parse(body.get("spec"))
    _dense_only(spec, "hints in the studio")
    digits = _digits(body.get("digits"))
    key, name, n_layers = _step_quantity(body, spec)
    if key[0] in ("x", "y", "W", "b"):
        raise StudioError(
            "expected a computed quantity (this one is given)", got=name, field="quantity"
        )
    index = _parse_index(body.get("index")) or ()
    values = body.get("values") or {}
    values = _object(values, "values (quantity name -> numbers)")
    graph = _graph_of(spec)
    batch = graph.batch
    entry = (name, _full(name, index, batch))
    if not graph.has(entry):
        raise StudioError(
            f"expected an index of {name}", got=",".join(map(str, index)) or "none", field="index"
        )
    derivation_budget(spec, name)
    trace = spec.trace()
    typed = _typed(values, batch, n_layers) if level == "own" else {}
    source = _mine(trace, typed) if level == "own" else trace
    jac = {lt.index for lt in trace.layers if lt.jacobian}
    blocks = quantity_section(source, kind_of(name), digits)  # that quantity's alone
    calcs = [b for b in blocks if isinstance(b, Calculation)]
    block = next(
        (b for b in calcs if block_key(b.lhs, n_layers, batch, jac) == (name, index)), None
    )
    if block is None:  # written a row at a time (db, softmax's Jacobian): the row holding it
        block = next(
            (
                b
                for b in calcs
                if isinstance(b.lhs, Matrix)
                and any(
                    block_key(c, n_layers, batch, jac) == (name, index)
                    for r in b.lhs.rows
                    for c in r
                )
            ),
            None,
        )
    if block is None:
        # Not calculated number by number (biases that stay fixed): explain's words for
        # it, which name the rule; its equations would show the value itself.
        words = [block_html(b) for b in blocks if isinstance(b, Para)]
        if not words:
            raise StudioError(
                "expected a number the derivation writes out", got=name, field="quantity"
            )
        return {"html": "\n".join(words), "level": level, "used": [], "missing": []}
    lines = [block.rule]
    used, missing = [], []
    if level == "own":
        lines.append(_unknown_nums(block.subst))
        for src in graph.inputs(entry):
            if kind_of(src[0])[0] in ("x", "y", "W", "b"):
                continue  # a given: on the sheet already
            got = typed.get(src[0], {}).get(src[1])
            label = _label(src, batch, n_layers)
            if got is None:
                missing.append(label)
            else:
                used.append({"name": label, "text": got[1]})
    html = f'<div class="step">{mml_derivation(block.lhs, lines)}</div>'
    return {"html": html, "level": level, "used": used, "missing": missing}


#: This module's endpoints (served by app.py beside :data:`glassnet.studio.api.ENDPOINTS`).
ENDPOINTS = {"sheet": sheet, "hint": hint, "links": links}


def _step_quantity(body: dict[str, Any], spec: Spec) -> tuple[tuple[str, int], str, int]:
    """The request's ``quantity``: a name of this step's (not of a later step or the
    pass after the update), as its key, the name the page writes (``output`` is a_L)
    and the network's number of layers."""
    quantity = body.get("quantity")
    if not isinstance(quantity, str) or len(quantity) > 40:
        raise StudioError(
            "expected a quantity name such as z2", got=_kind(quantity), field="quantity"
        )
    from glassnet.check.worksheet import key_name, resolve_name, split_tags

    if split_tags(quantity)[2]:
        raise StudioError(
            "expected a quantity of the step itself (not after the update or a later step)",
            got=quantity,
            field="quantity",
        )
    n_layers = len(spec.network.layers)
    key, _ = resolve_name(quantity, n_layers, LABEL)
    name = f"a{n_layers}" if key[0] == "output" else key_name(key)
    return key, name, n_layers
