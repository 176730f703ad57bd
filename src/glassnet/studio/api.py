"""What the studio page asks for, answered with the engine's own functions.

Every function here takes the decoded JSON of one request and returns something JSON
can carry; bad input raises :class:`StudioError` (a :class:`GlassnetError` with an HTTP
status).  Nothing here computes maths of its own: a spec written as JSON is turned back
into TOML text and read by :func:`glassnet.spec.parse_spec` (so the page gets exactly
the CLI's checks and messages), numbers come from ``Spec.trace()``, marks from
``glassnet.check``, derivations from ``glassnet.explain``, training from
``Network.fit``.  No Starlette here: the tests call these functions directly too.
"""

from __future__ import annotations

import functools
import json
import math
import re
from html import escape as html_escape
from typing import TYPE_CHECKING, Any

from glassnet.errors import GlassnetError
from glassnet.studio.entries import kind_of
from glassnet.studio.requests import StudioError
from glassnet.studio.requests import kind_of as _kind
from glassnet.studio.requests import parse_index as _parse_index
from glassnet.toml_writer import to_toml

if TYPE_CHECKING:
    from glassnet.spec import Spec
    from glassnet.trace import Trace

#: Label the spec parser puts in messages for a spec that came from the page.
LABEL = "<studio>"
#: The page is for networks a person reads: the same bounds explain keeps for a
#: derivation (so every network on the page can also show its derivation), checked
#: before anything is allocated.  413 when exceeded.
STUDIO_MAX_LAYERS = 16
STUDIO_MAX_UNITS = 256
STUDIO_MAX_PARAMETERS = 20_000
STUDIO_MAX_BATCH = 256
#: Largest request body (bytes); uploads are bounded by this too (and by the spec
#: files' own limit, glassnet.limits.MAX_TEXT_BYTES, which is larger).
STUDIO_MAX_BODY = 2 * 1024 * 1024
#: Numbers marked in one request: check looks for the mistake behind each wrong one
#: (about 8 ms each on an 8-32-32-4 network on the machine this was written on), so
#: 600 stay within a few seconds.  A hand-worked sheet has far fewer.
MAX_MARKED = 600
#: Training: steps per request, points per data set, heat-map resolution.
MAX_TRAIN_STEPS = 500
MAX_POINTS = 1000
GRID = 33
#: A training request stops after this many seconds (the steps done so far are
#: answered, with ``stopped`` saying why): one request never holds a worker longer.
TRAIN_SECONDS = 5.0
#: At most this many hidden units' maps over the plane in one answer (each is GRID²
#: numbers): keeps an answer under a megabyte however wide the network.
MAX_UNIT_MAPS = 32
#: Finite-difference steps outside this range are all rounding (too small) or no
#: derivative (too large).
EPS_RANGE = (1e-10, 1e-1)
DATASETS: tuple[str, ...] = ("xor", "circles", "spirals", "blobs")
#: Regression data sets (TensorFlow Playground's two): a number per point, not a class.
REGRESSION: tuple[str, ...] = ("plane", "bumps")


def status_of(err: GlassnetError) -> int:
    """400 unreadable, 413 too large, 422 readable but wrong."""
    if isinstance(err, StudioError):
        return err.status
    if err.expected.startswith("expected valid TOML"):
        return 400
    if err.expected.startswith(("expected at most", "expected lists nested")) or (
        "to fit in memory" in err.expected
    ):
        return 413
    return 422


# -- JSON in ------------------------------------------------------------------------------


def decode(body: bytes) -> Any:
    """Request bytes -> JSON value, refused (one line) when too big, too deep or not JSON."""
    from glassnet.limits import check_nesting

    if len(body) > STUDIO_MAX_BODY:
        raise StudioError(
            f"expected a request of at most {STUDIO_MAX_BODY} bytes",
            got=str(len(body)),
            status=413,
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise StudioError("expected UTF-8 JSON", got="undecodable bytes", status=400) from None
    try:
        check_nesting(text, field="request")
    except GlassnetError as err:
        raise StudioError(err.expected, got=err.got, field="request", status=413) from None
    try:
        value = json.loads(text, parse_int=_int)
    except StudioError:
        raise
    except (ValueError, RecursionError) as err:
        raise StudioError("expected a JSON request", got=str(err), status=400) from None
    _refuse_surrogates(value)
    return value


def _refuse_surrogates(value: Any) -> None:
    """JSON may escape a lone surrogate (``"\\ud800"``): valid JSON, but no text — it
    cannot be written as UTF-8, so every later message or TOML line would fail on it.
    Refused here, once, for every string and key of the request (nesting is bounded)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise StudioError(
                    "expected text that is valid Unicode",
                    got="a lone surrogate (\\ud800-\\udfff)",
                    status=400,
                ) from None
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())


def _int(text: str) -> int:
    """A JSON whole number; more than 18 digits is no count or weight a page needs (and
    would overflow a float or TOML's 64-bit integers further on)."""
    if len(text.lstrip("-")) > 18:
        raise StudioError(
            "expected a whole number of at most 18 digits", got=f"{len(text)} digits", status=422
        )
    return int(text)


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise StudioError(f"expected {what} (a JSON object)", got=_kind(data), status=422)
    return data


def _unknown(data: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise StudioError(
            f"expected only the fields {', '.join(sorted(allowed))}",
            got=f"unknown field {extra[0]!r}",
            field=extra[0],
        )


# -- a spec as JSON -> TOML text (glassnet.toml_writer) -> the spec parser ---------------


def _guard(data: dict[str, Any]) -> None:
    """Refuse sizes the page is not for before the parser allocates anything."""
    if "model" in data:
        raise StudioError(
            "expected [[layers]] with their weights (a model file only by upload)",
            got="a model path",
            field="model",
        )
    layers = data.get("layers")
    if isinstance(layers, list):
        if len(layers) > STUDIO_MAX_LAYERS:
            raise StudioError(
                f"expected at most {STUDIO_MAX_LAYERS} layers on the page",
                got=str(len(layers)),
                field="layers",
                status=413,
            )
        for index, layer in enumerate(layers, start=1):
            units = layer.get("units") if isinstance(layer, dict) else None
            if isinstance(units, int) and not isinstance(units, bool) and units > STUDIO_MAX_UNITS:
                raise StudioError(
                    f"expected at most {STUDIO_MAX_UNITS} units per layer on the page",
                    got=str(units),
                    layer=index,
                    field="units",
                    status=413,
                )


def _check_size(spec: Spec) -> None:
    net = spec.network
    # (one sample's input size: a vector's length, or every cell of its feature maps)
    widest = max([math.prod(spec.x.shape[1:]), *(layer.n_out for layer in net.layers)])
    params = sum(p.size for p in net.parameters())
    net.require_explained("the studio")
    from glassnet.studio.maps import is_maps

    if not is_maps(spec):
        net.dense_layers("the studio")  # its picture and editors show dense layers
    else:
        from glassnet.studio.maps import MAX_MAP_BATCH

        if spec.x.shape[0] > MAX_MAP_BATCH:
            raise StudioError(
                f"expected at most {MAX_MAP_BATCH} samples for a CNN on the page "
                "(glassnet explain writes any batch)",
                got=str(spec.x.shape[0]),
                field="input",
                status=413,
            )
    for what, got, limit, field in (
        ("units per layer", widest, STUDIO_MAX_UNITS, "layers"),
        ("parameters", params, STUDIO_MAX_PARAMETERS, "layers"),
        ("samples", spec.x.shape[0], STUDIO_MAX_BATCH, "input"),
    ):
        if got > limit:
            raise StudioError(
                f"expected at most {limit:,} {what} on the page",
                got=f"{got:,}",
                field=field,
                status=413,
            )


def parse(data: Any, *, label: str = LABEL) -> Spec:
    """A spec given as JSON (the TOML spec's fields) -> a :class:`~glassnet.spec.Spec`,
    read by the same parser as a spec file."""
    from glassnet.spec import parse_spec

    data = _object(data, "a spec")
    _guard(data)
    spec = parse_spec(to_toml(data), label)
    _check_size(spec)
    return spec


def _dense_only(spec: Spec, what: str) -> None:
    """Refuse (422, one line naming the first layer that is not dense) a step with
    feature maps where the studio shows dense networks only: practice, training, the
    gradient check.  A CNN opens in Explore (:mod:`.maps`)."""
    from glassnet.studio.maps import refuse

    refuse(spec, f"{what} (a CNN opens in Explore)")


def _round(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 12:
        raise StudioError(
            "expected a whole number of decimals from 0 to 12", got=repr(value), field="round"
        )
    return value


def _trace(spec: Spec, round_to: int | None = None) -> Trace:
    return spec.trace(round_to=round_to)


# -- a locked sheet and the words for each number (used by .practice too) -----------------

#: Fields of an entry of a ``check`` answer that hold a right value (or one close to it).
RIGHT_FIELDS = ("expected", "follows_from_given", "tolerance", "alternative", "match")


def _locked(body: dict[str, Any]) -> bool:
    locked = body.get("locked", False)
    if not isinstance(locked, bool):
        raise StudioError("expected true or false", got=_kind(locked), field="locked")
    return locked


def describe(name: str, n_layers: int) -> str:
    """What a quantity's entries are, in words, with ``{u}`` (the unit, from 1), ``{j}``
    and ``{k}`` (a weight's row and column, from 1) for the page to fill in: the second
    half of an accessible name such as "h1_out2, layer 1 unit 2 activation, 0.5987"."""
    kind, layer = kind_of(name)
    unit = "output unit {u}" if layer == n_layers else f"layer {layer} unit {{u}}"
    source = "input {j}" if layer == 1 else f"layer {layer - 1} unit {{j}}"
    weight = f"weight from {source} to {unit.replace('{u}', '{k}')}"
    words = {
        "x": "input {u}",
        "y": "target {u}",
        "W": weight,
        "b": f"bias of {unit}",
        "z": f"{unit} weighted input",
        "a": f"{unit} activation",
        "loss_terms": "loss term {u}",
        "loss": "loss",
        "dL_da": f"gradient of the loss by {unit} activation",
        "da_dz": f"derivative of {unit} activation by its weighted input",
        "delta": f"delta of {unit} (gradient of the loss by its weighted input)",
        "dW": f"gradient of the loss by the {weight}",
        "db": f"gradient of the loss by the bias of {unit}",
        "W_new": f"updated {weight}",
        "b_new": f"updated bias of {unit}",
    }
    return words[kind]


def strip_marks(report: dict[str, Any]) -> dict[str, Any]:
    """A ``check --json`` answer with every right value taken out: each entry keeps its
    verdict, the mistake's catalogue id and the catalogue's own words for it (the full
    explanation may quote a right number)."""
    from glassnet.check.mistakes import CATALOGUE

    entries = []
    for e in report["entries"]:
        e = {k: v for k, v in e.items() if k not in RIGHT_FIELDS}
        mistake = CATALOGUE.get(e.get("diagnosis") or "")
        e["explanation"] = mistake.title if mistake else ""
        entries.append(e)
    return {**report, "entries": entries}


# -- the endpoints ------------------------------------------------------------------------


def step(body: Any) -> dict[str, Any]:
    """``{"spec": {...}, "round": K?}`` -> ``Trace.to_dict()``, as ``glassnet step --json``."""
    body = _object(body, "a request")
    _unknown(body, {"spec", "round"})
    spec = parse(body.get("spec"))
    return _trace(spec, _round(body.get("round"))).to_dict()


def _blank_to_right(v: Any, right: Any, typed: list[tuple[int, ...]], at: tuple[int, ...]) -> Any:
    """Fill the boxes a person left empty (null or "") with the engine's value (written
    in full, so check counts it as exact: as if not written); record the typed places."""
    if isinstance(v, list) and isinstance(right, list):
        if len(v) != len(right):
            raise StudioError(f"expected {len(right)} entries", got=str(len(v)))
        return [
            _blank_to_right(e, r, typed, (*at, i))
            for i, (e, r) in enumerate(zip(v, right, strict=True))
        ]
    if v is None or (isinstance(v, str) and not v.strip()):
        return right
    typed.append(at)
    return v


def _right_value(trace: dict[str, Any], name: str, n_layers: int) -> Any:
    """The engine's value of quantity ``name`` as a worksheet writes it (no batch axis
    for one sample)."""
    from glassnet.check.worksheet import key_name, resolve_name

    key, _tag = resolve_name(name, n_layers, LABEL)
    kind, layer = key
    step_kinds = {
        "x": "input",
        "y": "target",
        "loss_terms": "loss_terms",
        "loss": "loss",
        "output": "output",
    }
    value = trace[step_kinds[kind]] if kind in step_kinds else trace["layers"][layer - 1][kind]
    batched = kind not in ("W", "b", "dW", "db", "W_new", "b_new", "loss")
    if batched and len(trace["input"]) == 1:
        value = value[0]
    del key_name
    return value


def _report(body: Any) -> Any:
    """The :class:`~glassnet.check.Report` of a request: only the boxes typed are kept."""
    from glassnet.check import check as mark
    from glassnet.check.marking import Report
    from glassnet.check.worksheet import parse_worksheet

    body = _object(body, "a request")
    _unknown(body, {"spec", "values", "rtol"})
    spec_data = dict(_object(body.get("spec"), "a spec"))
    spec_data.pop("values", None)
    values = _object(body.get("values"), "values (quantity name -> numbers)")
    rtol = body.get("rtol")
    if rtol is not None and (
        isinstance(rtol, bool) or not isinstance(rtol, int | float) or not 1e-12 <= rtol <= 1
    ):
        raise StudioError(
            "expected a relative tolerance from 1e-12 to 1", got=repr(rtol)[:40], field="rtol"
        )
    spec = parse(spec_data)  # the spec's own mistakes are named as the spec's
    _dense_only(spec, "practice in the studio")
    trace = spec.trace().to_dict()
    n_layers = len(spec.network.layers)
    filled: dict[str, Any] = {}
    typed: set[tuple[str, tuple[int, ...]]] = set()
    from glassnet.check.worksheet import split_tags

    for name, v in values.items():
        places: list[tuple[int, ...]] = []
        if not isinstance(name, str) or split_tags(name)[2]:  # a later step or "after"
            if not _complete(v):
                raise StudioError(
                    "expected every box of a later phase's quantity filled",
                    got="an empty box",
                    field=f"values.{name}",
                )
            filled[name] = v
            typed.update((name, p) for p in _places(v, ()))
            continue
        right = _right_value(trace, name, n_layers)
        try:
            filled[name] = _blank_to_right(v, right, places, ())
        except StudioError as err:
            raise StudioError(err.expected, got=err.got, field=f"values.{name}") from None
        typed.update((name, p) for p in places)
        if not places:
            del filled[name]  # nothing typed for this quantity
    if len(typed) > MAX_MARKED:
        raise StudioError(
            f"expected at most {MAX_MARKED} numbers marked at once",
            got=f"{len(typed):,}",
            field="values",
            status=413,
        )
    if not filled:
        from glassnet.check.steps import Context
        from glassnet.check.worksheet import Worksheet

        sheet = Worksheet(spec=spec, label=LABEL)
        return Report(sheet, Context.from_worksheet(sheet), rtol=rtol)
    sheet = parse_worksheet(to_toml({**spec_data, "values": filled}), LABEL)
    report = mark(sheet, rtol=rtol)
    report.entries = [e for e in report.entries if (e.written, tuple(e.index)) in typed]
    return report


def check(body: Any) -> dict[str, Any]:
    """``{"spec": {...}, "values": {name: numbers}}`` -> the ``glassnet check --json``
    schema.  Values are numbers or strings (the digits as typed: they set the
    tolerance); null or "" marks a box left empty (not marked, not used).  With
    ``"locked": true`` no right value is in the answer (see :mod:`.practice`)."""
    body = _object(body, "a request")
    locked = _locked(body)
    report = dict(_report({k: v for k, v in body.items() if k != "locked"}).to_dict())
    return strip_marks(report) if locked else report


def _title(spec: Spec) -> str:
    """The title ``glassnet explain`` gives a spec's derivation."""
    from pathlib import Path

    return spec.name or Path(spec.path).stem


def _closing(spec: Spec) -> Spec:
    """The spec as ``glassnet explain`` derives it: a single step closes with the error
    after the update (the engine's ``after`` pass)."""
    import dataclasses

    if getattr(spec, "steps", 1) == 1 and not getattr(spec, "after", True):
        return dataclasses.replace(spec, after=True)
    return spec


def _doc(spec: Spec, round_to: int | None, digits: int, *, whole: bool) -> Any:
    from glassnet.explain import explain_document

    trace = _trace(_closing(spec) if whole else spec, round_to)
    if whole:
        return explain_document(trace, digits=digits, title=_title(spec))
    # One quantity: nothing elided, so every unit's block is there to pick.
    return explain_document(
        trace,
        digits=digits,
        max_units=STUDIO_MAX_UNITS,
        max_samples=STUDIO_MAX_BATCH,
        picture=False,
    )


@functools.lru_cache(maxsize=16)
def _keyed_blocks(
    spec_text: str, round_to: int | None, digits: int, key: tuple[str, int]
) -> tuple[tuple[tuple[str, tuple[int, ...]], Any], ...]:
    """One quantity's blocks, each with the number it stands for, kept for the last few
    (spec, rounding, digits, quantity): clicking through the numbers of one quantity —
    1,024 weights' gradients on 8-32-32-4 — builds its section once, not per click.  The
    spec's JSON text is the key, so any edit is a new entry."""
    spec = parse(json.loads(spec_text))
    trace = _trace(spec, round_to)
    n_layers, batch = len(trace.layers), int(trace.x.shape[0])
    jac = {lt.index for lt in trace.layers if lt.jacobian}
    out = []
    for block in quantity_blocks(trace, key, digits):
        got = block_key(block.lhs, n_layers, batch, jac)
        if got:
            out.append((got, block))
    return tuple(out)


#: One number's derivation is built from its whole quantity's section (every unit and
#: sample): at most this many numbers and terms put in — about 2 s of server time on the
#: machine this was written on; a wider quantity is refused (413), and ``glassnet
#: explain`` writes any network.
MAX_DERIVATION_NUMBERS = 4096
MAX_DERIVATION_TERMS = 40_000


def derivation_budget(spec: Spec, name: str) -> None:
    """Refuse (413) a quantity too wide to derive on the page (see above)."""
    from glassnet.studio.entries import EntryGraph

    layers = spec.network.layers
    graph = EntryGraph(
        (layers[0].n_in, *(layer.n_out for layer in layers)),
        int(spec.x.shape[0]),
        frozenset(k for k, layer in enumerate(layers, 1) if not layer.activation.elementwise),
    )
    shape = graph.shape(name)
    numbers = math.prod(shape)
    terms = numbers * max(1, len(graph.inputs((name, (0,) * len(shape)))))
    if numbers > MAX_DERIVATION_NUMBERS or terms > MAX_DERIVATION_TERMS:
        raise StudioError(
            f"expected a quantity of at most {MAX_DERIVATION_NUMBERS:,} numbers and "
            f"{MAX_DERIVATION_TERMS:,} terms to derive on the page (glassnet explain "
            "writes any network)",
            got=f"{name}: {numbers:,} numbers, {terms:,} terms",
            field="quantity",
            status=413,
        )


def quantity_section(trace: Trace, key: tuple[str, int], digits: int) -> list[Any]:
    """explain's blocks for one quantity (folded ones unfolded), every unit and sample
    written out: the section writer of that quantity alone (explain's own ``Builder`` and
    writer, as its ``build`` calls them), not the whole document — on an 8-32-32-4
    network the whole one is thousands of blocks, and a click asks for one number."""
    from glassnet.explain.document import Collapsed
    from glassnet.explain.sections import OPENERS, WRITERS, Builder, place
    from glassnet.explain.symbols import number_format

    b = Builder(
        trace,
        fmt=number_format(digits, trace.round_to),
        digits=digits,
        max_units=STUDIO_MAX_UNITS,
        max_samples=STUDIO_MAX_BATCH,
        errata=None,
        notation="rows",
    )
    b.fold = False
    kind, layer = place(key, b.L)
    sec = OPENERS[kind](b, layer)
    WRITERS[key[0]](b, sec, key[1])
    out: list[Any] = []
    stack = list(reversed(sec.blocks))
    while stack:
        block = stack.pop()
        if isinstance(block, Collapsed):
            stack.extend(reversed(block.blocks))
        else:
            out.append(block)
    return out


def quantity_blocks(trace: Trace, key: tuple[str, int], digits: int) -> list[Any]:
    """The calculation blocks of :func:`quantity_section`."""
    from glassnet.explain.document import Calculation

    return [b for b in quantity_section(trace, key, digits) if isinstance(b, Calculation)]


def _digits(value: Any) -> int:
    if value is None:
        return 4
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 17:
        raise StudioError(
            "expected a number of digits from 1 to 17", got=repr(value), field="digits"
        )
    return value


def block_key(
    lhs: Any, n_layers: int, batch: int, jacobian: set[int]
) -> tuple[str, tuple[int, ...]] | None:
    """The quantity (our name) and index (as ``check --json`` writes it) a derivation's
    left-hand side stands for, read from explain's symbols (the seed's notation, see
    :mod:`glassnet.notation`); None for a line that is not one number of the step."""
    from glassnet.mathtree import Deriv, Sym
    from glassnet.notation import LETTERS

    def unit(sym: Any) -> tuple[str, int, int] | None:
        """('in'|'out', layer, unit) of h{l}_in/out u or O_in/out u."""
        if not isinstance(sym, Sym) or len(sym.sub) != 2 or sym.sub[0][1] != "txt":
            return None
        if sym.base == "O":
            layer = n_layers
        elif re.fullmatch(r"h\d+", sym.base):
            layer = int(sym.base[1:])
        else:
            return None
        return sym.sub[0][0], layer, int(sym.sub[1][0]) - 1

    def sample(sym: Any) -> tuple[int, ...]:
        return (sym.sample - 1,) if batch > 1 and sym.sample else ()

    def level(letter: str) -> int:
        return LETTERS.index(letter) if len(letter) == 1 and letter in LETTERS else -1

    if isinstance(lhs, Sym):
        if lhs.base == "E":
            if not lhs.sub:
                return "loss", ()
            return "loss_terms", (*sample(lhs), int(lhs.sub[0][0]) - 1)
        if lhs.prime and lhs.base == "W" and len(lhs.sub) == 4:
            layer = level(lhs.sub[2][0])
            return f"W{layer}_new", (int(lhs.sub[1][0]) - 1, int(lhs.sub[3][0]) - 1)
        if lhs.prime and lhs.base == "b" and len(lhs.sub) == 2:
            return f"b{level(lhs.sub[0][0])}_new", (int(lhs.sub[1][0]) - 1,)
        u = unit(lhs)
        if u:
            side, layer, k = u
            return f"{'z' if side == 'in' else 'a'}{layer}", (*sample(lhs), k)
        # δh2_1, δO_1: the δ (dL/dz) of that unit.
        m = re.fullmatch(r"δ(O|h\d+)", lhs.base)
        if m and len(lhs.sub) == 1:
            layer = n_layers if m.group(1) == "O" else int(m.group(1)[1:])
            return f"delta{layer}", (*sample(lhs), int(lhs.sub[0][0]) - 1)
        return None
    if isinstance(lhs, Deriv):
        top, bottom = lhs.top, lhs.bottom
        if isinstance(top, Sym) and top.base == "E" and not top.sub:
            u = unit(bottom)
            if u:
                side, layer, k = u
                name = f"dL_da{layer}" if side == "out" else f"delta{layer}"
                return name, (*sample(bottom), k)
            if isinstance(bottom, Sym) and bottom.base == "W" and len(bottom.sub) == 4:
                layer = level(bottom.sub[2][0])
                return f"dW{layer}", (int(bottom.sub[1][0]) - 1, int(bottom.sub[3][0]) - 1)
            if isinstance(bottom, Sym) and bottom.base == "b" and len(bottom.sub) == 2:
                return f"db{level(bottom.sub[0][0])}", (int(bottom.sub[1][0]) - 1,)
            return None
        ut, ub = unit(top), unit(bottom)
        if ut and ub and ut[0] == "out" and ub[0] == "in" and ut[1] == ub[1]:
            layer = ut[1]
            if layer in jacobian:
                return f"da{layer}_dz{layer}", (*sample(bottom), ut[2], ub[2])
            if ut[2] == ub[2]:
                return f"da{layer}_dz{layer}", (*sample(bottom), ut[2])
    return None


def explain(body: Any) -> dict[str, Any]:
    """``{"spec", "quantity"?, "index"?, "round"?, "digits"?}`` -> ``{"html": ...}``:
    the whole derivation (explain's HTML page), or the blocks of one quantity (and one
    index) as an HTML fragment, from explain's own document."""
    from glassnet.explain import explain as write
    from glassnet.explain.render_html import block_html

    body = _object(body, "a request")
    _unknown(body, {"spec", "quantity", "index", "round", "digits", "fragment"})
    spec = parse(body.get("spec"))
    round_to, digits = _round(body.get("round")), _digits(body.get("digits"))
    quantity = body.get("quantity")
    if quantity is None and body.get("fragment") is True:
        # The whole derivation for the page's panel: explain's sections and blocks, without
        # the page around them (whose inline stylesheet the page's CSP would refuse).
        doc = _doc(spec, round_to, digits, whole=True)
        parts = []
        for sec in doc.sections:
            level = min(sec.level + 2, 6)
            parts.append(f"<h{level}>{html_escape(sec.title)}</h{level}>")
            parts.extend(block_html(b) for b in sec.blocks)
        return {"html": "\n".join(parts)}
    if quantity is None:
        return {
            "html": write(
                _trace(_closing(spec), round_to), format="html", digits=digits, title=_title(spec)
            )
        }
    if not isinstance(quantity, str) or len(quantity) > 40:
        raise StudioError(
            "expected a quantity name such as z2 or dW3", got=_kind(quantity), field="quantity"
        )
    from glassnet.studio.maps import derivation, is_maps

    if is_maps(spec):  # a step with feature maps: the number explain's grid cell names
        return derivation(_trace(spec, round_to), quantity, body.get("index"), digits)
    from glassnet.check.worksheet import key_name, resolve_name, split_tags

    n_layers = len(spec.network.layers)
    if split_tags(quantity)[2]:
        return {
            "html": f'<p class="given">{html_escape(quantity)}: computed by the same rules '
            "from the updated weights; the derivation writes out the first step.</p>",
            "quantity": quantity,
            "index": [],
        }
    key, _ = resolve_name(quantity, n_layers, LABEL)
    name = key_name(key)
    if name == "output":
        name = f"a{n_layers}"
    index = _parse_index(body.get("index"))
    found = []
    if key[0] not in ("x", "y", "W", "b"):  # (a given has no derivation: said below)
        derivation_budget(spec, name)
        canon = ("a", n_layers) if key[0] == "output" else key
        spec_text = json.dumps(body.get("spec"), sort_keys=True)
        for got, block in _keyed_blocks(spec_text, round_to, digits, canon):
            if got[0] == name and (index is None or got[1] == index):
                found.append(block_html(block))
    if not found:
        kind = key[0]
        what = (
            "given: an input of the step, not computed from anything"
            if kind in ("x", "y", "W", "b")
            else "not written out one by one in the derivation"
        )
        found.append(f'<p class="given">{name}: {what}.</p>')
    return {"html": "\n".join(found), "quantity": name, "index": list(index or ())}


def graph(body: Any) -> dict[str, Any]:
    """``{"layers": L}`` -> for each quantity (our name), what it is computed from, what
    it feeds (check's step graph: :func:`glassnet.check.steps.inputs_of`) and its name in
    the seed's notation; and the order a derivation meets them."""
    from glassnet.check.steps import inputs_of, order
    from glassnet.check.worksheet import key_name

    body = _object(body, "a request")
    _unknown(body, {"layers"})
    n = body.get("layers")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= STUDIO_MAX_LAYERS:
        raise StudioError(
            f"expected a number of layers from 1 to {STUDIO_MAX_LAYERS}",
            got=repr(n)[:40],
            field="layers",
        )
    from glassnet.notation import seed_name

    out: dict[str, dict[str, Any]] = {}
    for key in order(n):
        out.setdefault(key_name(key), {"inputs": [], "consumers": []})
    for key in order(n):
        for src in inputs_of(key, n):
            out[key_name(key)]["inputs"].append(key_name(src))
            out[key_name(src)]["consumers"].append(key_name(key))
    for name, entry in out.items():
        entry["seed"] = seed_name(name, n)
        entry["describe"] = describe(name, n) if name != "output" else describe(f"a{n}", n)
    from glassnet.activations import ACTIVATIONS, get_activation

    options = {a: dict(getattr(get_activation(a), "options", {})) for a in ACTIVATIONS}
    return {"quantities": out, "order": [key_name(k) for k in order(n)], "activations": options}


def gradcheck(body: Any) -> dict[str, Any]:
    """``{"spec", "layer", "i", "j", "eps"?}``: the loss's central finite difference for
    one weight, (L(W+ε) − L(W−ε)) / 2ε with the engine's own forward pass and loss,
    beside the backprop value dW from the trace."""
    body = _object(body, "a request")
    _unknown(body, {"spec", "layer", "i", "j", "eps"})
    spec = parse(body.get("spec"))
    _dense_only(spec, "the gradient check in the studio")
    eps = body.get("eps", 1e-6)
    lo, hi = EPS_RANGE
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not lo <= eps <= hi:
        raise StudioError(f"expected a step from {lo:g} to {hi:g}", got=repr(eps)[:40], field="eps")
    n_layers = len(spec.network.layers)
    where = {}
    for name in ("layer", "i", "j"):
        v = body.get(name)
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "layer" else 0):
            raise StudioError("expected a whole number", got=repr(v)[:40], field=name)
        where[name] = v
    if where["layer"] > n_layers:
        raise StudioError(
            f"expected a layer from 1 to {n_layers}", got=str(where["layer"]), field="layer"
        )
    layer = spec.network.dense_layers("the studio")[where["layer"] - 1]
    i, j = where["i"], where["j"]
    if i >= layer.W.shape[0] or j >= layer.W.shape[1]:
        raise StudioError(f"expected an index within {layer.W.shape}", got=f"({i}, {j})", field="i")
    backprop = float(spec.trace().layer(where["layer"]).dW[i, j])
    w0 = float(layer.W[i, j])
    losses = []
    for sign in (1, -1):
        layer.W[i, j] = w0 + sign * eps
        losses.append(float(spec.trace().loss))
    layer.W[i, j] = w0
    fd = (losses[0] - losses[1]) / (2 * eps)
    return {
        "backprop": backprop,
        "finite_difference": fd,
        "eps": eps,
        "abs_error": abs(fd - backprop),
        "loss_plus": losses[0],
        "loss_minus": losses[1],
    }


# -- training ---------------------------------------------------------------------------


def dataset(name: str, n: int, seed: int, noise: float) -> tuple[Any, Any]:
    """A small 2-D data set (points in [-1, 1]²-ish), generated with
    ``numpy.random.default_rng(seed)``: xor, circles, spirals or two blobs (labels 0/1),
    or for regression a plane or two bumps (a real target per point, noise added to it)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if name in REGRESSION:  # a number per point: a tilted plane, or two Gaussian bumps
        X = rng.uniform(-1, 1, size=(n, 2))
        if name == "plane":
            t = 0.5 * (X[:, 0] + X[:, 1])
        else:
            t = np.exp(-8 * ((X - 0.4) ** 2).sum(axis=1)) - np.exp(
                -8 * ((X + 0.4) ** 2).sum(axis=1)
            )
        return X, t + rng.normal(0, noise, size=n)
    if name == "xor":
        X = rng.uniform(-1, 1, size=(n, 2))
        y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
    elif name == "circles":
        r = np.where(np.arange(n) % 2 == 0, rng.uniform(0, 0.45, n), rng.uniform(0.65, 1.0, n))
        t = rng.uniform(0, 2 * np.pi, n)
        X = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
        y = (np.arange(n) % 2).astype(np.int64)
    elif name == "spirals":
        y = (np.arange(n) % 2).astype(np.int64)
        s = rng.uniform(0.05, 1.0, n)
        t = 3.5 * np.pi * s + np.pi * y
        X = np.stack([s * np.cos(t), s * np.sin(t)], axis=1)
    else:  # blobs
        y = (np.arange(n) % 2).astype(np.int64)
        centre = np.where(y[:, None] == 1, 0.5, -0.5)
        X = centre + rng.normal(0, 0.25, size=(n, 2))
    X = X + rng.normal(0, noise, size=X.shape)
    return X, y


def csv_points(text: Any) -> tuple[Any, Any]:
    """A CSV of 2-D points — ``x,y,label`` per row, label 0 or 1, an optional header
    row — parsed in memory: at most :data:`MAX_POINTS` rows, finite numbers only."""
    import csv

    import numpy as np

    if not isinstance(text, str):
        raise StudioError("expected the CSV's text", got=_kind(text), field="data.csv")
    rows = [r for r in csv.reader(text.splitlines()[: MAX_POINTS + 2]) if any(c.strip() for c in r)]
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]  # a header
    if not 4 <= len(rows) <= MAX_POINTS:
        raise StudioError(
            f"expected 4 to {MAX_POINTS} rows of x,y,label", got=str(len(rows)), field="data.csv"
        )
    X, y = [], []
    for n, row in enumerate(rows, start=1):
        if len(row) != 3 or not all(_is_number(c) for c in row):
            raise StudioError(
                "expected x,y,label (three numbers)", got=f"row {n}: {row!r}"[:80], field="data.csv"
            )
        a, b, label = (float(c) for c in row)
        if label not in (0.0, 1.0) or not (math.isfinite(a) and math.isfinite(b)):
            raise StudioError(
                "expected finite x, y and a label 0 or 1", got=f"row {n}", field="data.csv"
            )
        X.append((a, b))
        y.append(int(label))
    if len(set(y)) < 2:
        raise StudioError("expected both labels, 0 and 1", got="one", field="data.csv")
    return np.array(X), np.array(y, dtype=np.int64)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _whole(v: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise StudioError(
            f"expected a whole number from {lo} to {hi}", got=repr(v)[:40], field=field
        )
    return v


def _number(v: Any, field: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise StudioError(f"expected a number from {lo:g} to {hi:g}", got=repr(v)[:40], field=field)
    return float(v)


class _Deadline:
    """A ``fit`` callback that stops training once :data:`TRAIN_SECONDS` have passed."""

    def __init__(self, seconds: float) -> None:
        import time

        self.clock = time.monotonic
        self.end = self.clock() + seconds
        self.stopped = False

    def on_train_begin(self, net: Any, epochs: int) -> None:
        """(Nothing to set up.)"""

    def on_epoch_end(self, net: Any, epoch: int, logs: dict[str, float]) -> bool:
        self.stopped = self.clock() > self.end
        return self.stopped

    def on_train_end(self, net: Any, history: Any) -> None:
        """(Nothing to tidy.)"""


def train(body: Any) -> dict[str, Any]:
    """``{"spec", "data": {"name", "n", "seed", "noise", "test"?}, "steps", "batch"?,
    "l2"?}``: run ``steps`` epochs of SGD with ``Network.fit`` (the spec's lr and loss;
    mini-batches of ``batch`` rows, full batch by default; ``l2`` the optimiser's weight
    decay) on the data set's training rows, from the spec's weights.  ``test``: the
    fraction of points held out (seeded), logged by ``fit`` as ``val_loss`` each step.
    Returns the new spec (weights), loss (and accuracy, for the classification sets)
    after each step, the surface over the plane and each hidden unit's output over it.
    Stops after :data:`TRAIN_SECONDS` (``stopped`` says so) whatever ``steps`` asked."""
    import numpy as np

    from glassnet.optim import SGD

    body = _object(body, "a request")
    _unknown(body, {"spec", "data", "steps", "batch", "l2"})
    data = _object(body.get("data"), "a data set")
    _unknown(data, {"name", "n", "seed", "noise", "csv", "test"})
    name = data.get("name", "xor")
    if name != "csv" and name not in DATASETS + REGRESSION:
        raise StudioError(
            f"expected one of {', '.join(DATASETS + REGRESSION)} or csv",
            got=repr(name)[:40],
            field="data.name",
        )
    n = _whole(data.get("n", 200), "data.n", 4, MAX_POINTS)
    seed = _whole(data.get("seed", 0), "data.seed", 0, 2**32 - 1)
    noise = _number(data.get("noise", 0.0), "data.noise", 0, 1)
    test = _number(data.get("test", 0.0), "data.test", 0, 0.5)
    steps = _whole(body.get("steps", 1), "steps", 0, MAX_TRAIN_STEPS)
    l2 = _number(body.get("l2", 0.0), "l2", 0, 1)
    from glassnet.model import Model

    spec = parse(body.get("spec"))
    _dense_only(spec, "training in the studio")
    net = Model.from_network(spec.network)
    if net.layers[0].n_in != 2:
        raise StudioError(
            "expected a network with 2 inputs (the plane's x and y)",
            got=str(net.layers[0].n_in),
            field="input",
        )
    if name == "csv":
        X, labels = csv_points(data.get("csv"))
    else:
        X, labels = dataset(name, n, seed, noise)
    regression = name in REGRESSION
    n_out = net.layers[-1].n_out
    if regression and n_out != 1:
        raise StudioError(
            "expected 1 output unit for a regression data set", got=str(n_out), field="layers"
        )
    if not regression and n_out > 2:
        raise StudioError(
            "expected 1 or 2 output units (two classes)", got=str(n_out), field="layers"
        )
    # The held-out rows: a seeded permutation, so the same link holds out the same points.
    order = np.random.default_rng([seed, 7]).permutation(len(labels))
    n_test = round(test * len(labels))
    test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
    targets = labels[:, None] if regression else labels
    batch = _whole(body.get("batch", len(train_rows)), "batch", 1, MAX_POINTS)
    history: list[dict[str, float]] = []
    deadline = _Deadline(TRAIN_SECONDS)
    if steps:
        hist = net.fit(
            X[train_rows],
            targets[train_rows],
            loss=spec.loss,
            optimizer=SGD(lr=spec.lr, weight_decay=l2),
            epochs=steps,
            batch_size=min(batch, len(train_rows)),
            shuffle=batch < len(train_rows),
            validation_data=(X[test_rows], targets[test_rows]) if n_test else None,
            callbacks=[deadline],  # type: ignore[list-item]
        )
        done = len(hist["loss"]) if len(hist["loss"]) < steps else steps
        for k in range(len(hist["loss"]) - done, len(hist["loss"])):
            entry = {"loss": float(hist["loss"][k])}
            for key in ("accuracy", "val_loss", "val_accuracy"):
                try:  # fit logs accuracy for a classifier, val_* with held-out rows
                    entry[key] = float(hist[key][k])
                except KeyError:
                    pass
            history.append(entry)
    grid = np.linspace(-1.5, 1.5, GRID)
    gx, gy = np.meshgrid(grid, grid)
    G = np.stack([gx.ravel(), gy.ravel()], axis=1)
    caches = net.forward_caches(G)
    surface = caches[-1].a[:, -1] if n_out <= 2 else caches[-1].a.argmax(axis=1)
    hidden: list[list[Any]] = []
    shown = 0
    for c in caches[:-1]:
        maps = []
        for u in range(c.a.shape[1]):
            if shown < MAX_UNIT_MAPS:
                maps.append(c.a[:, u].reshape(GRID, GRID).tolist())
                shown += 1
        hidden.append(maps)
    new_spec = dict(body["spec"])
    new_spec["layers"] = [layer.to_spec() for layer in net.layers]
    out: dict[str, Any] = {
        "spec": new_spec,
        "history": history,
        "points": X.tolist(),
        "labels": labels.tolist(),
        "test": test_rows.tolist(),
        "regression": regression,
        "grid": {
            "min": -1.5,
            "max": 1.5,
            "n": GRID,
            "output": surface.reshape(GRID, GRID).tolist(),
            "hidden": hidden,
        },
    }
    for part, rows in (("", train_rows), ("test_", test_rows)):
        if rows.size:
            scores = net.evaluate(X[rows], targets[rows], loss=spec.loss)
            out[part + "loss"] = float(scores["loss"])
            if "accuracy" in scores:
                out[part + "accuracy"] = float(scores["accuracy"])
    if deadline.stopped:
        out["stopped"] = f"after {len(history)} steps: a request trains at most {TRAIN_SECONDS:g} s"
    return out


# -- specs in and out -----------------------------------------------------------------------


def spec_dict(spec: Spec, original: dict[str, Any] | None = None) -> dict[str, Any]:
    """A parsed spec as the page keeps it: every weight written out (layers given as
    ``units`` get the weights glassnet's initialiser drew), input and target as rows."""

    out: dict[str, Any] = {}
    for key in ("name", "description"):
        value = (original or {}).get(key, getattr(spec, key))
        if value:
            out[key] = value
    out.update(
        loss=spec.loss,
        lr=spec.lr,
        update_bias=spec.update_bias,
        input=spec.x.tolist(),
        target=spec.y.tolist(),
        layers=[_layer_table(layer) for layer in spec.network.layers],
    )
    if getattr(spec, "steps", 1) != 1:
        out["steps"] = spec.steps
    if getattr(spec, "after", False):
        out["after"] = True
    return out


def _layer_table(layer: Any) -> dict[str, Any]:
    """A layer as a spec's ``[[layers]]`` table, with its ``type`` unless it is the
    spec's default (a dense layer's table stays as the page has always kept it)."""
    from glassnet.layers import layer_class

    table = layer.to_spec()
    if type(layer) is layer_class("dense"):
        return table
    return {"type": layer.type, **table}


def canonical(body: Any) -> dict[str, Any]:
    """``{"spec"}`` -> ``{"spec"}`` with every weight written out (see :func:`spec_dict`)."""
    body = _object(body, "a request")
    _unknown(body, {"spec"})
    return {"spec": spec_dict(parse(body.get("spec")), body.get("spec"))}


def example(name: str) -> dict[str, Any]:
    """A bundled example spec (``seed``) as the page keeps it."""
    import tomllib

    from glassnet.spec import EXAMPLES, example_path

    if name not in EXAMPLES:
        raise StudioError(
            f"expected one of {', '.join(EXAMPLES)}",
            got=repr(name[:40]),
            field="example",
            status=404,
        )
    text = example_path(name).read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return spec_dict(parse(data), data)


def from_model(path: str) -> dict[str, Any]:
    """A model file (glassnet ``.npz`` or PyTorch ``.safetensors``, read by interop's safe
    readers) as a spec the page can open: its weights, an input of zeros, the first class
    as the target, the loss its output layer usually goes with, lr 0.1."""
    from pathlib import Path

    from glassnet.interop import load_any_model
    from glassnet.losses import default_loss_for

    network = load_any_model(Path(path))
    n_in, n_out = network.layers[0].n_in, network.layers[-1].n_out
    target = [1.0 if k == 0 else 0.0 for k in range(n_out)]
    data = {
        "name": Path(path).stem,
        "loss": default_loss_for(network.layers[-1].activation).name,
        "lr": 0.1,
        "input": [0.0] * n_in,
        "target": target,
        "layers": [layer.to_spec() for layer in network.layers],
    }
    return spec_dict(parse(data, label=path), data)


def _typed(v: Any) -> Any:
    """Numbers of an uploaded worksheet as the text they were written as."""
    if isinstance(v, list):
        return [_typed(e) for e in v]
    return v if isinstance(v, str) else str(v)


def load(body: Any) -> dict[str, Any]:
    """An uploaded file, parsed in memory with the CLI's limits: ``{"name", "text"}`` ->
    ``{"spec", "values"?, "mode"}``.  A spec (TOML) opens in Explore; a worksheet (a spec
    with ``[values]``, or ``spec = "seed"``) opens in Practice with its values filled in.
    A worksheet may only name the bundled ``seed`` spec: the page never reads the
    server's files."""
    import tomllib

    from glassnet.check.worksheet import parse_worksheet
    from glassnet.limits import MAX_TEXT_BYTES, check_nesting

    body = _object(body, "an upload")
    _unknown(body, {"name", "text"})
    name, text = body.get("name", "upload.toml"), body.get("text")
    if not isinstance(name, str) or not isinstance(text, str):
        raise StudioError("expected a file name and its text", got=_kind(text), field="text")
    label = name.replace("\n", " ")[:80] or "upload"
    if len(text.encode("utf-8", "replace")) > MAX_TEXT_BYTES:
        raise StudioError(
            f"expected at most {MAX_TEXT_BYTES} bytes", got="more", file=label, status=413
        )
    check_nesting(text, file=label)
    try:
        data = tomllib.loads(text, parse_float=str)
    except tomllib.TOMLDecodeError as err:
        raise StudioError("expected valid TOML", got=str(err), file=label, status=400) from None
    if "model" in data:
        raise StudioError(
            "expected [[layers]] with their weights", got="a model path", file=label, field="model"
        )
    if "spec" in data and data["spec"] != "seed":
        raise StudioError(
            'expected spec = "seed" (the page reads no other file)',
            got=repr(data["spec"])[:40],
            file=label,
            field="spec",
        )
    if data.get("values") == {}:  # a blank sheet (glassnet exercise's worksheet.toml)
        data.pop("values")
        spec_data = tomllib.loads(text)
        spec_data.pop("values", None)
        if "spec" in spec_data:
            return {"spec": example("seed"), "mode": "practice"}
        return {"spec": spec_dict(parse(spec_data, label=label), spec_data), "mode": "practice"}
    if "values" in data:
        sheet = parse_worksheet(text, label)  # every check of glassnet check
        _check_size(sheet.spec)
        spec = spec_dict(sheet.spec)
        if isinstance(data.get("name"), str):
            spec["name"] = data["name"]
        return {
            "spec": spec,
            "values": {k: _typed(v) for k, v in data["values"].items()},
            "mode": "practice",
        }
    spec_data = tomllib.loads(text)
    return {"spec": spec_dict(parse(spec_data, label=label), spec_data), "mode": "explore"}


def export(body: Any) -> dict[str, Any]:
    """``{"spec", "format", "values"?, "round"?, "digits"?}`` -> ``{"filename", "text",
    "mime"}``: the spec as TOML, the filled worksheet, explain's HTML or notebook, the
    marks as HTML (check's report), or a Python script that rebuilds the step."""
    body = _object(body, "a request")
    _unknown(body, {"spec", "format", "values", "round", "digits", "locked"})
    fmt = body.get("format")
    if _locked(body) and fmt != "worksheet":
        # A locked sheet hands out the student's own worksheet only: every other file
        # (derivation, notebook, script, marks) writes the right values out.
        raise StudioError(
            "expected the format worksheet (a locked sheet downloads only your answers)",
            got=repr(fmt)[:40],
            field="format",
            status=403,
        )
    spec_data = dict(_object(body.get("spec"), "a spec"))
    spec_data.pop("values", None)
    spec = parse(spec_data)
    if fmt in ("worksheet", "blank", "key", "marks"):
        _dense_only(spec, "worksheets in the studio")
    toml = to_toml(spec_dict(spec, spec_data))
    if fmt == "toml":
        return {"filename": "network.toml", "text": toml, "mime": "application/toml"}
    if fmt == "py":
        # A raw string keeps the TOML's own escapes (a "\\n" in a description) as
        # written; text that would close it is written as a Python literal instead.
        literal = f"r'''\n{toml}'''" if "'''" not in toml else repr(toml)
        script = (
            '"""Rebuilds the network of glassnet studio and runs its step."""\n'
            "import glassnet as gn\n"
            "from glassnet.explain import explain\n\n"
            f"SPEC = {literal}\n\n"
            "spec = gn.parse_spec(SPEC)\n"
            "trace = spec.trace()\n"
            'print("loss before the update:", trace.loss)\n'
            "print(explain(trace))  # the derivation, as `glassnet explain` writes it\n"
        )
        return {"filename": "network.py", "text": script, "mime": "text/x-python"}
    if fmt in ("html", "ipynb"):
        from glassnet.explain import explain as write

        round_to, digits = _round(body.get("round")), _digits(body.get("digits"))
        try:
            text = write(
                _trace(_closing(spec), round_to), format=fmt, digits=digits, title=_title(spec)
            )
        except ImportError as err:
            from glassnet.extras import install_hint

            raise StudioError(
                f"expected the explain extra ({install_hint('explain')})",
                got=str(err),
                field="format",
            ) from None
        mime = "text/html" if fmt == "html" else "application/x-ipynb+json"
        return {"filename": f"derivation.{fmt}", "text": text, "mime": mime}
    if fmt == "blank":  # glassnet exercise's worksheet.toml: the spec, an empty [values]
        return {
            "filename": "worksheet.toml",
            "text": toml + "\n[values]\n",
            "mime": "application/toml",
        }
    if fmt == "key":  # every computed quantity, the engine's value in full
        trace = spec.trace().to_dict()
        n_layers = len(spec.network.layers)
        from glassnet.check.steps import order
        from glassnet.check.worksheet import key_name, parse_worksheet

        right = {
            key_name(k): _right_value(trace, key_name(k), n_layers)
            for k in order(n_layers)
            if k[0] not in ("x", "y", "W", "b", "output")
        }
        text = to_toml({**spec_dict(spec, spec_data), "values": _text_of(right)})
        parse_worksheet(text, LABEL)  # the key is a worksheet check reads (all ✓)
        return {"filename": "key.toml", "text": text, "mime": "application/toml"}
    if fmt in ("worksheet", "marks"):
        values = _object(body.get("values"), "values")
        full = {k: v for k, v in values.items() if _complete(v)}
        if not full:
            raise StudioError(
                "expected at least one quantity with every box filled", got="none", field="values"
            )
        if fmt == "worksheet":
            text = to_toml({**spec_dict(spec, spec_data), "values": full})
            from glassnet.check.worksheet import parse_worksheet

            parse_worksheet(text, LABEL)  # refuse to hand out a sheet check would refuse
            return {"filename": "worksheet.toml", "text": text, "mime": "application/toml"}
        from glassnet.check.report import to_html

        report = _report({"spec": spec_data, "values": values})
        return {"filename": "marks.html", "text": to_html(report), "mime": "text/html"}
    raise StudioError(
        "expected a format among toml, worksheet, blank, key, html, ipynb, marks, py",
        got=repr(fmt)[:40],
        field="format",
    )


def _text_of(v: Any) -> Any:
    """Numbers as the worksheet's text (repr: every digit, so check reads them exact)."""
    if isinstance(v, dict):
        return {k: _text_of(e) for k, e in v.items()}
    if isinstance(v, list):
        return [_text_of(e) for e in v]
    return repr(float(v))


def _places(v: Any, at: tuple[int, ...]) -> list[tuple[int, ...]]:
    if isinstance(v, list):
        return [p for i, e in enumerate(v) for p in _places(e, (*at, i))]
    return [at]


def _complete(v: Any) -> bool:
    if isinstance(v, list):
        return bool(v) and all(_complete(e) for e in v)
    return v is not None and not (isinstance(v, str) and not v.strip())


#: The endpoints of this module (app.py adds :mod:`.practice`'s: sheet, hint, links).
ENDPOINTS = {
    "step": step,
    "check": check,
    "explain": explain,
    "graph": graph,
    "gradcheck": gradcheck,
    "train": train,
    "canonical": canonical,
    "load": load,
    "export": export,
}
