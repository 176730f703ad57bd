"""Random exercises a person can work by hand: a spec with one-decimal numbers, a blank
worksheet listing every quantity to fill in, and the answer key (read from the trace).

For a class, :func:`roster_exercise` makes one variant per student, seeded from a hash of
the student's id and the assignment's name (:func:`variant_seed`), so a lost sheet can be
made again and ``glassnet check`` can rebuild each sheet's network from the ``student``
and ``assignment`` written in it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.activations import get_activation
from glassnet.check.quantities import expected_shape, key_name, order, spec_graph
from glassnet.check.roster import folder_name as folder_name  # kept here: its old home
from glassnet.check.roster import read_roster_file
from glassnet.errors import GlassnetError
from glassnet.layers import Dense
from glassnet.losses import default_loss_for, get_loss
from glassnet.notation import seed_name
from glassnet.spec import Spec, parse_spec
from glassnet.toml_writer import to_toml, toml_value


@dataclass
class Exercise:
    spec_text: str
    worksheet_text: str
    answer_markdown: str
    spec: Spec
    #: The answer key as a worksheet's ``[values]`` lines (4 decimals), which marks all ok.
    key_lines: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


#: The options an exercise is made from (a roster sheet's ``[exercise]`` table).
DEFAULTS: dict[str, Any] = {
    "layers": [3, 3, 3],
    "activations": None,
    "loss": None,
    "lr": 0.1,
    "decimals": 1,
}


#: The options of a convolutional exercise (``glassnet exercise --conv``): the input's
#: (channels, height, width), the kernel's side, the output channels, stride, padding,
#: the pooling after it (2×2, stride 2: "max" or "avg") and the classes of the softmax.
CONV_DEFAULTS: dict[str, Any] = {
    "conv": False,
    "image": [1, 4, 4],
    "kernel": 2,
    "channels": 1,
    "stride": 1,
    "padding": 0,
    "pool": "max",
    "classes": 2,
}


def variant_seed(student: str, assignment: str) -> int:
    """The random seed of a student's variant: a hash of their id and the assignment's
    name (stable across runs and machines, unlike Python's ``hash``)."""
    digest = hashlib.sha256(f"{assignment}\x00{student}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def default_loss(output: str) -> str:
    """The loss an exercise on an output activation (by name) uses: the activation's own
    default for probabilities (:func:`~glassnet.losses.default_loss_for`), else half the
    sum of squares — the textbook's error, not the regression default mse."""
    act = get_activation(output)
    return default_loss_for(act).name if act.outputs_probabilities else "half_sse"


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
    layers = [
        Dense(draw(sizes[lyr - 1], sizes[lyr]), draw(sizes[lyr]), acts[lyr - 1])
        for lyr in range(1, n_layers + 1)
    ]
    spec_text = f"# glassnet exercise (seed {seed}): work one step by hand.\n" + to_toml(
        {
            "name": f"exercise-{seed}",
            "loss": loss,
            "lr": lr,
            "input": x.tolist(),
            "target": y.tolist(),
            "layers": [layer.to_spec() for layer in layers],
        }
    )
    spec = parse_spec(spec_text, "exercise")
    blank = [spec_text.rstrip("\n"), "", "# Fill in what you compute (any subset), then run:", ""]
    blank.append("#   glassnet check THIS_FILE")
    blank += ["", "[values]"]
    blank += _blank_lines(spec)
    options = {
        "layers": list(sizes),
        "activations": list(acts),
        "loss": loss,
        "lr": lr,
        "decimals": decimals,
    }
    return Exercise(
        spec_text,
        "\n".join(blank) + "\n",
        answer_key(spec),
        spec,
        key_lines(spec),
        options,
    )


def _small(v: Any, name: str, low: int, high: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise GlassnetError(
            f"expected a whole number from {low} to {high} (by hand!)", got=repr(v), field=name
        )
    return v


def make_conv_exercise(
    options: dict[str, Any] | None = None,
    activations: list[str] | None = None,
    loss: str | None = None,
    *,
    seed: int = 0,
    lr: float = 0.1,
    decimals: int = 1,
) -> Exercise:
    """A random convolutional exercise, the step exams ask by hand: conv2d (ReLU unless
    ``activations`` says) → 2×2 pooling → flatten → a dense softmax layer.  Kernel,
    biases, dense weights and input drawn from [-1, 1] (the input from [0, 1]) and
    rounded to ``decimals``; a one-hot target.  ``options``: :data:`CONV_DEFAULTS`'s keys
    (the input's [C, H, W], kernel side, output channels, stride, padding, pool, classes)."""
    o = {**CONV_DEFAULTS, **(options or {}), "conv": True}
    image = o["image"]
    if not isinstance(image, list) or len(image) != 3:
        raise GlassnetError("expected C,H,W (e.g. 1,4,4)", got=repr(image), field="--image")
    c = _small(image[0], "--image", 1, 3)
    h, w = (_small(e, "--image", 1, 8) for e in image[1:])
    k = _small(o["kernel"], "--kernel", 1, 5)
    out_c = _small(o["channels"], "--channels", 1, 3)
    stride = _small(o["stride"], "--stride", 1, 3)
    padding = _small(o["padding"], "--padding", 0, 2)
    classes = _small(o["classes"], "--classes", 2, 8)
    if o["pool"] not in ("max", "avg"):
        raise GlassnetError("expected max or avg", got=repr(o["pool"]), field="--pool")
    oh, ow = ((n + 2 * padding - k) // stride + 1 for n in (h, w))
    if k > min(h, w) + 2 * padding or min(oh, ow) < 2:
        raise GlassnetError(
            "expected a convolution whose output is at least 2×2 (for the 2×2 pooling)",
            got=f"a {k}×{k} kernel on {h}×{w}, stride {stride}, padding {padding}",
            field="--kernel",
        )
    if decimals not in (1, 2):
        raise GlassnetError("expected 1 or 2", got=str(decimals), field="--decimals")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise GlassnetError("expected a whole number ≥ 0", got=repr(seed), field="--seed")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
        raise GlassnetError("expected a positive finite number", got=repr(lr), field="--lr")
    acts = activations or ["relu", "softmax"]
    if len(acts) != 2:
        raise GlassnetError(
            "expected 2 activations (the convolution's, the output's)",
            got=str(len(acts)),
            field="--activations",
        )
    loss = loss or default_loss(acts[-1])
    get_loss(loss)
    rng = np.random.default_rng(seed)

    def draw(*shape: int, low: float = -1.0) -> np.ndarray:
        return np.round(rng.uniform(low, 1, size=shape), decimals) + 0.0

    x = draw(1, c, h, w, low=0.0)
    n_flat = out_c * (oh // 2) * (ow // 2)
    y = np.zeros((1, classes))
    y[0, rng.integers(classes)] = 1.0
    conv = {
        "type": "conv2d",
        "weights": draw(out_c, c, k, k).tolist(),
        "bias": draw(out_c).tolist(),
        "stride": stride,
        "padding": padding,
        "activation": acts[0],
    }
    dense = {
        "weights": draw(n_flat, classes).tolist(),
        "bias": draw(classes).tolist(),
        "activation": acts[1],
    }
    pool = {"type": f"{o['pool']}_pool2d", "size": 2}
    spec_text = f"# glassnet exercise (seed {seed}): work one step by hand.\n" + to_toml(
        {
            "name": f"exercise-{seed}",
            "loss": loss,
            "lr": lr,
            "input": x.tolist(),
            "target": y.tolist(),
            "layers": [conv, pool, {"type": "flatten"}, dense],
        }
    )
    spec = parse_spec(spec_text, "exercise")
    blank = [spec_text.rstrip("\n"), "", "# Fill in what you compute (any subset), then run:", ""]
    blank.append("#   glassnet check THIS_FILE")
    blank += ["", "[values]"]
    blank += _blank_lines(spec)
    options_out = {
        "activations": list(acts),
        "loss": loss,
        "lr": lr,
        "decimals": decimals,
        **{key: o[key] for key in CONV_DEFAULTS},
        "image": [c, h, w],
    }
    return Exercise(
        spec_text,
        "\n".join(blank) + "\n",
        answer_key(spec),
        spec,
        key_lines(spec),
        options_out,
    )


def _blank_lines(spec: Spec) -> list[str]:
    """``# z1 = [_, _, _]    # seed name: h1_in`` for every quantity to work out.  A
    softmax's da/dz is a matrix: its off-diagonal terms belong to the work (the vector
    form invites the diagonal-only mistake)."""
    n_layers = len(spec.network.layers)
    graph = spec_graph(spec)
    out = []
    for key in order(graph):
        # the givens (x, y, the parameters, an optimiser's starting state) and output,
        # a_L's other name, are not part of the work
        if key[0] == "output" or graph.is_leaf(key):
            continue
        shape = expected_shape(spec, key)
        shape = shape[1:] if graph.batched(key) else shape
        name = key_name(key)
        # the seed's names (h1_in, O_out, ...) are a dense network's, none for images
        alias = seed_name(name, n_layers) if spec.x.ndim <= 2 else None
        out.append(f"# {name} = {_blank(shape)}" + (f"    # seed name: {alias}" if alias else ""))
    return out


def _blank(shape: tuple[int, ...]) -> str:
    if not shape:
        return "_"
    if len(shape) == 1:
        return "[" + ", ".join("_" for _ in range(shape[0])) + "]"
    return "[" + ", ".join(_blank(shape[1:]) for _ in range(shape[0])) + "]"


def _number(v: float, digits: int) -> str:
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.0"


def _written(v: np.ndarray, digits: int) -> Any:
    """``v`` as numbers written to ``digits`` decimals (nested lists of text)."""
    if v.ndim == 0:
        return _number(float(v), digits)
    return [_written(e, digits) for e in v]


def key_values(spec: Spec, digits: int = 4) -> list[tuple[str, str]]:
    """Every quantity of the step (the engine's trace, in the derivation's order),
    rounded to ``digits`` decimals: (name, TOML value) pairs."""
    trace = spec.trace()
    graph = spec_graph(spec)
    out = []
    for key in order(graph):
        if key[0] == "output" or graph.is_leaf(key):
            continue
        v = np.asarray(trace.value(key))
        if graph.batched(key) and v.shape[0] == 1:
            v = v[0]
        name = key_name(key)
        places = 0 if np.issubdtype(v.dtype, np.integer) else digits  # indices (arg-max)
        out.append((name, toml_value(_written(v, places), f"values.{name}", written=True)))
    return out


def key_lines(spec: Spec, digits: int = 4) -> list[str]:
    """The answer key as a worksheet's ``[values]`` lines."""
    return [f"{name} = {value}" for name, value in key_values(spec, digits)]


def answer_key(spec: Spec, digits: int = 4) -> str:
    """Every quantity of the step, rounded to ``digits`` decimals, as Markdown, and the
    same as ``[values]`` lines to paste into a worksheet (they mark all ok)."""
    values = key_values(spec, digits)
    loss = dict(values)["loss"]
    out = [f"# Answer key: {spec.name}", "", f"loss = {loss}", ""]
    out += ["| quantity | value |", "|---|---|"]
    out += [f"| {name} | `{value}` |" for name, value in values if name != "loss"]
    out += ["", "As worksheet values:", "", "```toml", "[values]"]
    out += [f"{name} = {value}" for name, value in values]
    out += ["```"]
    return "\n".join(out) + "\n"


# -- a class ----------------------------------------------------------------------------
@dataclass
class Student:
    id: str
    name: str = ""


def read_roster(path: str | Path) -> list[Student]:
    """Students from a roster: a CSV with a header row and an id column (``id``,
    ``student_id``, ``student``, ``SIS User ID``, ...; else the first column) and an
    optional ``name`` column, or a Canvas or Moodle gradebook export (separator sniffed,
    a byte-order mark accepted: :func:`glassnet.check.roster.read_roster_file`)."""
    return [Student(s.id, s.name) for s in read_roster_file(path).students]


def roster_exercise(
    student: str, assignment: str, options: dict[str, Any] | None = None
) -> Exercise:
    """The variant of ``assignment`` for ``student`` (the same every time)."""
    opts = {**DEFAULTS, **(options or {})}
    if opts.get("conv"):
        return make_conv_exercise(
            {key: opts[key] for key in CONV_DEFAULTS if key in opts},
            opts["activations"],
            opts["loss"],
            seed=variant_seed(student, assignment),
            lr=float(opts["lr"]),
            decimals=int(opts["decimals"]),
        )
    return make_exercise(
        [int(n) for n in opts["layers"]],
        opts["activations"],
        opts["loss"],
        seed=variant_seed(student, assignment),
        lr=float(opts["lr"]),
        decimals=int(opts["decimals"]),
    )


def _digest(field: str, text: str) -> str:
    return hashlib.sha256(f"{field}\x00{text}".encode()).hexdigest()[:8]


def _options_text(options: dict[str, Any]) -> str:
    """The ``[exercise]`` table's lines, as a roster sheet writes them (the text its
    checksum is taken of): a conv exercise's sizes are its conv options, not dense
    layers."""
    conv = bool(options.get("conv"))
    keys = [k for k in DEFAULTS if not (conv and k == "layers")]
    keys += list(CONV_DEFAULTS) if conv else []
    return "\n".join(f"{k} = {toml_value(options.get(k), k)}" for k in keys)


def header_checksum(student: str, assignment: str, options: dict[str, Any]) -> str:
    """A roster sheet's ``checksum``: a short hash of each header field, so an edited
    field is found and named (``student:1a2b3c4d assignment:... exercise:...``).  Not
    a seal against a determined forger (the hash is public); it catches the edit made
    by accident, or by hand, that would otherwise mark the sheet against another
    network."""
    return (
        f"student:{_digest('student', student)} "
        f"assignment:{_digest('assignment', assignment)} "
        f"exercise:{_digest('exercise', _options_text(options))}"
    )


@dataclass
class Known:
    """Who a roster sheet may be for, besides what its header says: the roster's
    student ids, assignment names (the one given, those the other sheets of the class
    name), and ``hints``: ids the sheet's place suggests (its folder or file name),
    used only to recover an edited header its checksum catches."""

    students: list[str] = field(default_factory=list)
    assignments: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)


def verify_header(
    data: dict[str, Any], known: Known | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A roster sheet's header checked against its ``checksum`` (and, without one,
    the student against ``known.students``): (the header to mark against, warnings as
    (field, message)).  An edited ``student`` or ``assignment`` is replaced by the
    candidate of ``known`` whose hash the checksum holds, so the sheet is marked
    against the variant it was made for; with no such candidate it is marked as
    written, and the warning says it may be another network."""
    known = known or Known()
    notes: list[tuple[str, str]] = []
    out = dict(data)
    stored = data.get("checksum")
    if stored is None:
        student = data.get("student")
        if known.students and isinstance(student, str) and student not in known.students:
            same = [s for s in known.students if s.lower() == student.lower()]
            if len(same) == 1:
                out["student"] = same[0]
                notes.append(
                    (
                        "student",
                        f"{student!r} is not on the roster; marked as {same[0]!r}'s "
                        "variant (the same id but for capitals)",
                    )
                )
            else:
                notes.append(
                    (
                        "student",
                        f"{student!r} is not on the roster; marked against the header as written",
                    )
                )
        return out, notes
    parts = dict(p.split(":", 1) for p in str(stored).split() if ":" in p)
    if set(parts) != {"student", "assignment", "exercise"}:
        notes.append(
            (
                "checksum",
                "expected 'student:… assignment:… exercise:…' as the exercise wrote it; "
                "the header could not be checked",
            )
        )
        return out, notes
    fields = {
        "student": data.get("student"),
        "assignment": data.get("assignment"),
        "exercise": _options_or_none(data.get("exercise")),
    }
    if all(
        isinstance(v, str) and _digest(k, v) != parts[k] for k, v in fields.items()
    ):  # nothing matches: the checksum line itself was changed
        notes.append(
            (
                "checksum",
                "edited: it matches none of student, assignment and [exercise]; the "
                "header could not be checked (marked as written)",
            )
        )
        return out, notes
    pools = {"student": [*known.students, *known.hints], "assignment": known.assignments}
    for name, pool in pools.items():
        written = data.get(name)
        if not isinstance(written, str) or _digest(name, written) == parts[name]:
            continue
        found = [c for c in dict.fromkeys(pool) if _digest(name, c) == parts[name]]
        if found:
            out[name] = found[0]
            notes.append(
                (
                    name,
                    f"edited: {written!r} is not the {name} this sheet was made for; marked "
                    f"as {found[0]!r}'s variant (its checksum's {name})",
                )
            )
        else:
            notes.append(
                (
                    name,
                    f"edited: {written!r} is not the {name} this sheet was made for (its "
                    "checksum differs) and no known one matches; marked against the header "
                    "as written, which may be another network",
                )
            )
    text = fields["exercise"]
    if text is not None:
        if _digest("exercise", text) != parts["exercise"]:
            notes.append(
                (
                    "exercise",
                    "edited: the [exercise] table is not the one this sheet was made with "
                    "(its checksum differs); marked against the table as written",
                )
            )
    return out, notes


def _options_or_none(options: Any) -> str | None:
    """The ``[exercise]`` table's text as a checksum reads it (None: not a table)."""
    if not isinstance(options, dict):
        return None
    try:
        return _options_text(options)
    except (GlassnetError, TypeError, ValueError):  # a value TOML cannot hold back
        return ""


def roster_worksheet(ex: Exercise, student: str, assignment: str) -> str:
    """A student's blank worksheet: who and what (so check can rebuild the network) and
    the header's checksum, the network as comments, and the quantities to fill in."""
    o = ex.options
    lines = [
        f"# glassnet exercise {assignment!r} for {student!r}: work one step by hand,",
        "# fill in what you compute (any subset), hand in this file.",
        f"student = {toml_value(student)}",
        f"assignment = {toml_value(assignment)}",
        "# the header's checksum: glassnet check warns when student, assignment or",
        "# [exercise] no longer match it",
        f"checksum = {toml_value(header_checksum(student, assignment, o))}",
        "",
        "[exercise]",
        _options_text(o),
        "",
        "# Your network (also in exercise.toml):",
    ]
    lines += ["#   " + line for line in ex.spec_text.splitlines() if line and line[0] != "#"]
    lines += ["", "[values]", *_blank_lines(ex.spec)]
    return "\n".join(lines) + "\n"


def exercise_from_sheet(data: dict[str, Any], label: str) -> Spec:
    """The network of a roster sheet (``student``, ``assignment``, ``[exercise]``)."""
    student, assignment = data.get("student"), data.get("assignment")
    if not isinstance(student, str) or not isinstance(assignment, str):
        raise GlassnetError(
            "expected student and assignment as text (or a spec)",
            got=f"student = {student!r}, assignment = {assignment!r}",
            file=label,
            field="student",
        )
    options = data.get("exercise", {})
    if not isinstance(options, dict) or set(options) - set(DEFAULTS) - set(CONV_DEFAULTS):
        raise GlassnetError(
            f"expected an [exercise] table with {', '.join([*DEFAULTS, *CONV_DEFAULTS])}",
            got=repr(options),
            file=label,
            field="exercise",
        )
    try:
        ex = roster_exercise(student, assignment, options)
    except (GlassnetError, TypeError, ValueError) as err:
        raise GlassnetError(
            "expected the exercise options to make a network",
            got=str(err),
            file=label,
            field="exercise",
        ) from None
    ex.spec.name = f"{assignment} · {student}"
    return ex.spec
