"""``glassnet explain``: write the worked derivation of a spec's step (Markdown, HTML
or a Jupyter notebook)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from glassnet.errors import GlassnetError
from glassnet.fileio import atomic_write_text, check_writable

_SUFFIX_FORMAT = {
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".ipynb": "ipynb",
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="write the worked derivation of one step (Markdown, HTML, notebook)",
        description="Write one training step of SPEC (a TOML file, or 'seed') as a worked "
        "derivation in the seed tutorial's notation: every rule in symbols, with the "
        "numbers put in, and the result — every number from glassnet's engine.",
    )
    p.add_argument(
        "spec",
        metavar="SPEC",
        nargs="?",
        help="spec file (TOML) or 'seed' (may be left out with --errata: the worksheet's "
        "spec), or an expression file (TOML with an 'expression': its circuit, gate by gate; "
        "docs/graphs.md)",
    )
    p.add_argument(
        "--format",
        choices=("md", "html", "ipynb"),
        help="output format (default: from -o's suffix, else md)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--digits", type=int, default=4, help="significant digits shown (default 4)")
    p.add_argument(
        "--round",
        type=int,
        default=None,
        metavar="K",
        help="hand-calculation mode: round every intermediate to K decimals before the "
        "next step uses it",
    )
    p.add_argument(
        "--max-units",
        type=int,
        default=4,
        metavar="N",
        help="write layers wider than N out for their first units only (default 4)",
    )
    p.add_argument(
        "--notation",
        choices=("rows", "columns"),
        default=None,
        help="rows: x·W + b with W[from][to], as the seed writes it; columns: W·a + b with "
        "W[to][from], as Nielsen and Goodfellow write it (default: the spec's layout, "
        'columns for layout = "to_from", else rows)',
    )
    p.add_argument(
        "--print",
        dest="print_mode",
        choices=("open", "full"),
        default="open",
        help="HTML: what paper gets — open (default): what is open on screen, folded "
        "parts folded, each saying so; full: every folded part open, a page per section",
    )
    p.add_argument(
        "--errata",
        metavar="WORKSHEET",
        help="mark WORKSHEET (a hand-worked solution, as glassnet check reads it) and write "
        "below each value it got wrong what it wrote and the mistake check names",
    )
    p.add_argument(
        "--no-errata",
        action="store_true",
        help="leave out the tutorial's own mistakes ('explain seed': by default each wrong "
        "number it printed is shown beside the right one, named by glassnet check) and the "
        "notes on a spec's [published] numbers",
    )
    p.set_defaults(func=_run_explain)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output:
        fmt = _SUFFIX_FORMAT.get(Path(args.output).suffix.lower())
        if fmt is None:  # seed.pdf: no writer makes a PDF; Markdown under .pdf would mislead
            raise GlassnetError(
                f"expected -o FILE ending in {', '.join(sorted(_SUFFIX_FORMAT))} "
                "(or --format md|html|ipynb)",
                got=repr(args.output),
                field="-o",
            )
        return fmt
    return "md"


def _check_output(path: str) -> Path:
    """Fail before any work if FILE cannot be written (nothing is created)."""
    return check_writable(path, field="-o")


def _write(out: Path, text: str) -> None:
    atomic_write_text(out, text, field="-o")


def _errata_sheet(source: str) -> Any:
    """The worksheet ``--errata`` names, loaded; refused where its marks could not be
    placed on the page one to one (a batch, another layout, a bias row)."""
    from glassnet.check import load_worksheet

    sheet = load_worksheet(source)
    if sheet.spec.x.shape[0] != 1:
        raise GlassnetError(
            "expected a worksheet of one sample for --errata (the page writes a batch's "
            "per-unit boxes for its first samples only)",
            got=f"{sheet.spec.x.shape[0]} samples",
            file=sheet.label,
            field="input",
        )
    if sheet.layout != "from_to" or sheet.bias_row0:
        raise GlassnetError(
            "expected a worksheet with its weights in the from_to layout and no bias row "
            "for --errata",
            got=f'layout = "{sheet.layout}"' + (', bias = "row0"' if sheet.bias_row0 else ""),
            file=sheet.label,
            field="layout",
        )
    return sheet


def _same_step(a: Any, b: Any) -> bool:
    """Do two specs describe the same step (input, target, parameters, activations,
    loss, learning rate, bias updates)?"""
    import numpy as np

    ta, tb = a.trace(), b.trace()
    if (ta.loss_name, ta.lr, ta.update_bias) != (tb.loss_name, tb.lr, tb.update_bias):
        return False
    if ta.x.shape != tb.x.shape or not (np.array_equal(ta.x, tb.x) and np.array_equal(ta.y, tb.y)):
        return False
    if len(ta.layers) != len(tb.layers):
        return False
    return all(
        la.W.shape == lb.W.shape
        and np.array_equal(la.W, lb.W)
        and np.array_equal(la.b, lb.b)
        and la.act == lb.act
        for la, lb in zip(ta.layers, tb.layers, strict=True)
    )


def _run_circuit(args: argparse.Namespace) -> int:
    """``glassnet explain expr.toml``: an expression's circuit, gate by gate."""
    from glassnet.explain.circuit import (
        circuit_notebook,
        circuit_sections,
        picture_of,
        render_circuit,
    )
    from glassnet.explain.symbols import check_digits
    from glassnet.graphs import load_expression

    check_digits(args.digits)
    if _format(args) == "ipynb":
        from glassnet.extras import require

        require(("nbformat",), "explain", field="--format", what="nbformat for a notebook")
    out = _check_output(args.output) if args.output else None
    if args.spec is None:  # --errata alone: the worksheet's own circuit
        from glassnet.check.circuit import load_circuit_sheet

        loaded = load_circuit_sheet(args.errata).expression
    else:
        loaded = load_expression(args.spec)
    round_to = args.round if args.round is not None else loaded.round_to
    if round_to is not None and not 0 <= round_to <= 15:
        raise GlassnetError(
            "expected a number of decimals from 0 to 15", got=str(round_to), field="--round"
        )
    try:
        trace = loaded.circuit.trace(loaded.values, round_to=round_to)
    except GlassnetError as err:
        raise err.with_file(args.spec or args.errata) from None
    fmt = _format(args)
    title = Path(args.spec or args.errata).stem
    errata = _circuit_errata(args.errata, loaded) if args.errata and not args.no_errata else None
    sections = circuit_sections(trace, digits=args.digits, title=title, errata=errata)
    svg_path = out.with_suffix(".svg") if out is not None and fmt == "md" else None
    if svg_path is not None:
        check_writable(str(svg_path), field="-o")
    picture = svg_path.name if svg_path is not None else "inline"
    if fmt == "ipynb":
        text = circuit_notebook(trace, sections)
    else:
        text = render_circuit(sections, fmt, title=title, picture=picture)
    if out is None:
        sys.stdout.write(text)
        return 0
    svg = picture_of(sections)
    if svg_path is not None and svg is not None:
        _write(svg_path, svg)
        print(f"wrote {svg_path}", file=sys.stderr)
    _write(out, text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _circuit_errata(source: str, loaded: Any) -> list[Any]:
    """``--errata WORKSHEET`` for a circuit: the worksheet (of the same expression,
    values and output) marked by check; refused when it is another circuit."""
    import numpy as np

    from glassnet.check.circuit import load_circuit_sheet, mark_circuit
    from glassnet.graphs import is_expression_file

    if not is_expression_file(source):
        raise GlassnetError(
            "expected a circuit worksheet (an expression file with [answers])",
            got=source,
            field="--errata",
        )
    sheet = load_circuit_sheet(source)
    ex, c = sheet.expression, loaded.circuit
    same = (
        ex.circuit.source == c.source
        and ex.circuit.output == c.output
        and set(ex.values) == set(loaded.values)
        and all(np.array_equal(ex.values[n], loaded.values[n]) for n in ex.values)
    )
    if not same:
        raise GlassnetError(
            "expected a worksheet of this expression (the same expression, values and output)",
            got=f"{source} is of another",
            field="--errata",
        )
    return mark_circuit(sheet)


def _run_explain(args: argparse.Namespace) -> int:
    from glassnet.graphs import is_expression_file

    if args.spec is not None and is_expression_file(args.spec):
        return _run_circuit(args)
    if args.spec is None and args.errata is not None and is_expression_file(args.errata):
        return _run_circuit(args)  # a circuit worksheet's own circuit, with its errata
    from glassnet.explain import derive
    from glassnet.explain.symbols import check_digits
    from glassnet.spec import load_spec

    check_digits(args.digits)
    if args.max_units < 2:
        raise GlassnetError(
            "expected at least 2 units", got=str(args.max_units), field="--max-units"
        )
    if _format(args) == "ipynb":  # an -o no writer takes (seed.pdf) is refused too
        from glassnet.extras import require

        require(("nbformat",), "explain", field="--format", what="nbformat for a notebook")
    out = _check_output(args.output) if args.output else None
    sheet = _errata_sheet(args.errata) if args.errata else None
    if args.spec is None and sheet is None:
        raise GlassnetError(
            "expected a SPEC (a spec file or 'seed'), or --errata WORKSHEET",
            got="neither",
            field="SPEC",
        )
    spec = load_spec(args.spec) if args.spec is not None else sheet.spec  # type: ignore[union-attr]
    if sheet is not None and args.spec is not None and not _same_step(spec, sheet.spec):
        raise GlassnetError(
            f"expected a worksheet for the network of {args.spec} (the same input, target, "
            "weights, biases, activations, loss and learning rate)",
            got=f"{sheet.label} is for another network",
            field="--errata",
        )
    try:
        spec.network.require_explained("explain")
    except GlassnetError as err:
        raise err.with_file(spec.path) from None
    if spec.steps == 1 and not spec.after:
        # The page closes with the error after the update (the engine's "after" pass).
        spec = dataclasses.replace(spec, after=True)
    trace = spec.trace(round_to=args.round)
    fmt = _format(args)
    errata = None
    if sheet is not None and not args.no_errata:
        from glassnet.check import check
        from glassnet.check import errata as errata_of

        errata = errata_of(check(sheet), who="the tutorial" if sheet.is_seed else "the worksheet")
    elif args.spec == "seed" and not args.no_errata:
        # The tutorial's printed numbers are the seed worksheet; check marks them and
        # names each mistake, and the page shows that beside the right value.
        from glassnet.check import check_worksheet
        from glassnet.check import errata as errata_of

        errata = errata_of(check_worksheet("seed"))
    path = Path(spec.path) if spec.path and args.spec not in (None, "seed") else None
    if path is not None and path.is_file() and not args.no_errata:
        # A tutorial's printed numbers in the spec ([published]): noted where they differ
        # from the engine's beyond their printed rounding.
        from glassnet.check import published_notes

        notes = published_notes(path.read_text(encoding="utf-8"), str(path), path.parent)
        if notes:
            errata = {**notes, **(errata or {})}
    derivation = derive(
        trace,
        digits=args.digits,
        title=spec.name or Path(spec.path or "step").stem,
        max_units=args.max_units,
        errata=errata,
        notation=args.notation or ("columns" if spec.layout == "to_from" else "rows"),
    )
    svg = derivation.svg() if fmt == "md" and out is not None else None
    svg_path = out.with_suffix(".svg") if out is not None and svg is not None else None
    if svg_path is not None:
        check_writable(str(svg_path), field="-o")
    if fmt == "md":
        # GitHub strips data: images: the picture goes beside the file, linked.
        text = derivation.markdown(picture=svg_path.name if svg_path is not None else None)
    else:
        text = derivation.render(fmt, print_mode=args.print_mode)
    if out is None:
        sys.stdout.write(text)
    else:
        if svg_path is not None and svg is not None:
            _write(svg_path, svg)
            print(f"wrote {svg_path}", file=sys.stderr)
        _write(out, text)
        print(f"wrote {out}", file=sys.stderr)
    return 0
