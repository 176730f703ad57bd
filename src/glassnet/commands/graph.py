"""``glassnet graph``: backpropagation on any small expression (a "circuit"): every
node's value and gradient, each gate's local gradients, and at forks each path's part."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from glassnet.errors import GlassnetError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "graph",
        help="backpropagate through an expression and show every value and gradient",
        description="Evaluate an expression forward and backward, as a circuit of gates "
        "(CS231n's 'Backpropagation, Intuitions'): every node's value and its gradient "
        "∂f/∂node, each gate's local gradients, and where a node is used twice (a fork) "
        "the gradient of each path and their sum.  EXPRESSION is statements like "
        "'q = x + y; f = q * z' (or one nested expression), or an expression file "
        "(TOML: expression, values, optional output and round; see docs/graphs.md).",
    )
    p.add_argument(
        "expression",
        metavar="EXPRESSION",
        nargs="?",
        help="an expression, or a .toml expression file (left out with --from-spec)",
    )
    p.add_argument(
        "--from-spec",
        metavar="SPEC",
        help="the bridge from a network: unroll one unit of SPEC's step (a spec file or "
        "'seed') as a circuit, with --unit L,J",
    )
    p.add_argument(
        "--unit",
        metavar="L,J",
        help="with --from-spec: unit J of layer L (both from 1)",
    )
    p.add_argument(
        "--sample",
        type=int,
        default=1,
        metavar="S",
        help="with --from-spec: the batch's sample S (from 1; default 1)",
    )
    p.add_argument(
        "--save",
        metavar="FILE",
        help="with --from-spec: also write the unit's circuit as an expression file (TOML), "
        "for explain, the studio or a worksheet",
    )
    p.add_argument(
        "--values",
        metavar="X=V,...",
        help="the variables' values, e.g. x=-2,y=5,z=-4 (override a file's)",
    )
    p.add_argument(
        "--output", metavar="NAME", help="the node to differentiate (default: the last assigned)"
    )
    p.add_argument(
        "--round",
        type=int,
        default=None,
        metavar="K",
        help="hand-calculation mode: round every value to K decimals before the next step uses it",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (docs/graphs.md)")
    p.add_argument("--digits", type=int, default=6, help="significant digits (default 6)")
    p.set_defaults(func=_run_graph)


def load(expression: str, values: str | None, output: str | None, round_to: int | None) -> Any:
    """The expression (text or file) and its values, with the command line's overrides:
    an :class:`~glassnet.graphs.ExpressionFile`."""
    from glassnet.graphs import (
        ExpressionFile,
        is_expression_file,
        load_expression,
        parse_expression,
    )

    if is_expression_file(expression):
        loaded = load_expression(expression)
        if output is not None:
            loaded = ExpressionFile(
                parse_expression(loaded.circuit.source, output=output),
                loaded.values,
                loaded.round_to,
                loaded.path,
            )
    elif expression.lower().endswith(".toml"):
        raise GlassnetError(
            "expected an expression file (TOML with an 'expression' key)",
            got=f"{expression}, which is not one (or cannot be read)",
            field="EXPRESSION",
        )
    else:
        loaded = ExpressionFile(parse_expression(expression, output=output))
    if values is not None:
        from glassnet.graphs import parse_values

        loaded.values.update(parse_values(values))
    if round_to is not None:
        if not 0 <= round_to <= 15:
            raise GlassnetError(
                "expected a number of decimals from 0 to 15", got=str(round_to), field="--round"
            )
        loaded.round_to = round_to
    return loaded


def _run_graph(args: argparse.Namespace) -> int:
    if not 1 <= args.digits <= 17:
        raise GlassnetError(
            "expected a number of digits from 1 to 17", got=str(args.digits), field="--digits"
        )
    if args.from_spec is not None:
        loaded = _from_spec(args)
    elif args.unit is not None or args.save is not None:
        raise GlassnetError(
            "expected --unit and --save only with --from-spec SPEC", got="no SPEC", field="--unit"
        )
    elif args.expression is None:
        raise GlassnetError(
            "expected an EXPRESSION (or --from-spec SPEC --unit L,J)",
            got="none",
            field="EXPRESSION",
        )
    else:
        loaded = load(args.expression, args.values, args.output, args.round)
    try:
        trace = loaded.circuit.trace(loaded.values, round_to=loaded.round_to)
    except GlassnetError as err:
        raise err.with_file(loaded.path) if loaded.path else err from None
    if args.json:
        print(trace.to_json())
        return 0
    _print(trace, args.digits)
    return 0


def _print(trace: Any, digits: int) -> None:
    import numpy as np

    from glassnet.graphs.circuit import format_value

    c = trace.circuit

    def n(v: Any) -> str:
        return format_value(v, lambda x: f"{x:.{digits}g}")

    rows = [("node", "rule", "value", f"d{c.output}/dnode")]
    for name in c.order():
        node = c.nodes[name]
        if node.constant is not None:
            continue
        rule = node.gate.text([c.nodes[s].label for s in node.inputs]) if node.gate else "(given)"
        rows.append((name, rule, n(trace.array(name)), n(trace.grad_array(name))))
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    print()
    print("backward, gate by gate (upstream × local = the input's part):")
    for name in reversed(c.order()):
        node = c.nodes[name]
        if node.gate is None or not c.feeds(name):
            continue
        for i, src in enumerate(node.inputs):
            if not c.has_gradient(src):
                continue
            up, local = n(trace.grad_array(name)), n(trace.local_array(name, i))
            if node.gate.matrix_product:  # D = A @ B: dA = dD @ Bᵀ, dB = Aᵀ @ dD
                product = f"{up} @ ({local})ᵀ" if i == 0 else f"({local})ᵀ @ {up}"
            else:
                product = f"{up} × {local}"
                if np.shape(trace.path_array(name, i)) != np.broadcast_shapes(
                    np.shape(trace.grad_array(name)), np.shape(trace.local_array(name, i))
                ):
                    product += ", summed over the axes it was broadcast along,"
            print(f"  {name} -> {src}: {product} = {n(trace.path_array(name, i))}")
    for name in c.forks():
        parts = " + ".join(n(trace.path_array(g, i)) for g, i in c.paths(name))
        print(f"fork at {name}: d{c.output}/d{name} = {parts} = {n(trace.grad_array(name))}")


def _from_spec(args: argparse.Namespace) -> Any:
    """``--from-spec SPEC --unit L,J``: one unit of SPEC's traced step as a circuit."""
    from glassnet.fileio import atomic_write_text, check_writable
    from glassnet.graphs.bridge import expression_file_text, parse_unit, unit_circuit
    from glassnet.spec import load_spec

    for flag, used in (
        ("EXPRESSION", args.expression),
        ("--values", args.values),
        ("--output", args.output),
        ("--round", args.round),
    ):
        if used is not None:
            raise GlassnetError(
                f"expected {flag} not with --from-spec (the unit's values are the trace's)",
                got=str(used),
                field=flag,
            )
    if args.unit is None:
        raise GlassnetError("expected --unit L,J with --from-spec", got="none", field="--unit")
    layer, unit = parse_unit(args.unit)
    if args.save is not None:
        check_writable(args.save, field="--save")
    trace = load_spec(args.from_spec).trace()
    loaded = unit_circuit(trace, layer, unit, args.sample)
    if args.save is not None:
        comment = (
            f"Unit {unit} of layer {layer} of {args.from_spec}, sample {args.sample}, "
            "unrolled by glassnet graph --from-spec:\n"
            "z = x·w + b, its activation, and f = a · (dE/da from the network's trace)."
        )
        atomic_write_text(args.save, expression_file_text(loaded, comment), field="--save")
        print(f"wrote {args.save}", file=sys.stderr)
    return loaded
