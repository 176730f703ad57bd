"""``glassnet seed``, ``glassnet step``, ``glassnet gradcheck``: the engine's commands."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from glassnet.errors import GlassnetError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "seed",
        help="run the seed tutorial's step and show every number",
        description="Run one training step of the seed tutorial's 3-3-3-3 "
        "network and print every intermediate, layer by layer, "
        "with the seed's names beside glassnet's.",
    )
    p.add_argument("--json", action="store_true", help="print the trace as JSON instead")
    p.add_argument("--digits", type=int, default=6, help="significant digits (default 6)")
    p.set_defaults(func=_run_seed)

    p = sub.add_parser(
        "step",
        help="run one traced step of a spec file",
        description="Run one training step of the network in SPEC (a TOML "
        "file, or 'seed') and print every intermediate.",
    )
    p.add_argument("spec", metavar="SPEC", help="spec file (TOML) or 'seed'")
    p.add_argument(
        "--input",
        help="override the input: JSON list, or numbers with ',' "
        "between values and ';' between samples",
    )
    p.add_argument("--target", help="override the target, written like --input")
    p.add_argument("--json", action="store_true", help="print one JSON object (docs/json.md)")
    p.add_argument("--digits", type=int, default=6, help="significant digits (default 6)")
    p.set_defaults(func=_run_step)

    p = sub.add_parser(
        "gradcheck",
        help="compare every gradient with finite differences",
        description="Compare every analytic gradient of SPEC's step with "
        "central finite differences in float64.",
    )
    p.add_argument("spec", metavar="SPEC", help="spec file (TOML) or 'seed'")
    p.add_argument("--eps", type=float, default=1e-6, help="finite-difference step (1e-6)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-6,
        help="worst relative error allowed before exit status 1 (1e-6)",
    )
    p.set_defaults(func=_run_gradcheck)


def parse_rows(text: str, field: str) -> list[list[float]]:
    """``"0.1,0.2;0.3,0.4"`` or a JSON list -> rows of floats."""
    from glassnet.limits import check_nesting

    text = text.strip()
    check_nesting(text, field=field)
    try:
        value = (
            json.loads(text)
            if text.startswith("[")
            else [[float(v) for v in row.split(",")] for row in text.split(";")]
        )
    except ValueError:
        raise GlassnetError(
            "expected numbers like 0.1,0.2;0.3,0.4 or a JSON list", got=repr(text), field=field
        ) from None
    if isinstance(value, list) and value and not isinstance(value[0], list):
        value = [value]
    return value


def _load(args: argparse.Namespace):  # -> Spec
    from glassnet.spec import _input, _matrix, load_spec

    spec = load_spec(args.spec)
    for name in ("input", "target"):
        text = getattr(args, name, None)
        if text is not None:
            value = parse_rows(text, f"--{name}")
            rows = (
                _input(value, "--input")  # rows, or feature maps as a 4-level JSON list
                if name == "input"
                else _matrix(value, f"--{name}", rows_ok=True)
            )
            setattr(spec, "x" if name == "input" else "y", rows)
    return spec


def _check_digits(digits: int) -> int:
    if not 1 <= digits <= 17:
        raise GlassnetError(
            "expected a number of digits from 1 to 17", got=str(digits), field="--digits"
        )
    return digits


def _run_seed(args: argparse.Namespace) -> int:
    args.spec = "seed"
    args.input = args.target = None
    return _run_step(args)


def _run_step(args: argparse.Namespace) -> int:
    digits = _check_digits(args.digits)
    spec = _load(args)
    try:
        trace = spec.trace()
    except GlassnetError as err:
        # A width mismatch from --input/--target is the option's fault, not the file's.
        if err.field in ("input", "target") and getattr(args, err.field, None) is not None:
            err.field = f"--{err.field}"
            err.args = (err._message(),)
        raise
    if args.json:
        print(trace.to_json())
        return 0
    from glassnet.render_terminal import print_trace

    print_trace(trace, title=spec.name or spec.path, digits=digits)
    return 0


def _run_gradcheck(args: argparse.Namespace) -> int:
    from glassnet.gradcheck import gradcheck

    for flag, value in (("--eps", args.eps), ("--tolerance", args.tolerance)):
        if not (math.isfinite(value) and value > 0):
            raise GlassnetError("expected a positive finite number", got=repr(value), field=flag)
    spec = _load(args)
    try:
        rows = gradcheck(spec.network, spec.network_input, spec.y, spec.loss, eps=args.eps)
    except GlassnetError as err:
        raise err.with_file(spec.path) from None
    worst = max(rows, key=lambda r: r.max_rel_error)
    for r in rows:
        print(
            f"layer {r.layer} d{r.param}: max abs error {r.max_abs_error:.3e}, "
            f"max relative error {r.max_rel_error:.3e}"
        )
    print(f"worst relative error: {worst.max_rel_error:.3e} (layer {worst.layer} d{worst.param})")
    return 0 if worst.max_rel_error <= args.tolerance else 1
