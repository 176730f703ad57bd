"""``glassnet check`` and ``glassnet exercise``: mark hand-worked steps, make new ones."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from glassnet.errors import GlassnetError
from glassnet.fileio import atomic_write_text


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="mark a hand-worked step: ok / follows / wrong, and name each mistake",
        description="Mark every number of WORKSHEET (a spec with a [values] table, or "
        "'seed' for the seed tutorial's printed numbers): ok, follows from an earlier "
        "error, or wrong, with the mistake that reproduces it.  See docs/check.md.",
    )
    p.add_argument("worksheet", metavar="WORKSHEET", help="worksheet file (TOML) or 'seed'")
    p.add_argument("--json", action="store_true", help="print the marking as JSON")
    p.add_argument("--all", action="store_true", help="list every number, not only those not ok")
    p.add_argument("--rtol", type=float, help="relative tolerance instead of the written digits")
    p.add_argument("--format", choices=("md", "html"), help="write a report document")
    p.add_argument("-o", "--output", metavar="FILE", help="where --format writes")
    p.set_defaults(func=_run_check)

    p = sub.add_parser(
        "exercise",
        help="write a random exercise, its blank worksheet and its answer key",
        description="Write a random network with one- or two-decimal numbers to work by "
        "hand: DIR/exercise.toml (the spec), DIR/worksheet.toml (to fill in and check) "
        "and DIR/answers.md (the answer key).",
    )
    p.add_argument("--layers", default="3,3,3", help="layer sizes, input first (3,3,3)")
    p.add_argument("--activations", help="one per layer, e.g. relu,softmax")
    p.add_argument("--loss", help="loss (default: from the output activation)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (0.1)")
    p.add_argument("--decimals", type=int, default=1, help="decimals of the numbers (1 or 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("-o", "--output", metavar="DIR", default=".", help="folder to write (.)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=_run_exercise)


def _run_check(args: argparse.Namespace) -> int:
    from glassnet.check import check_worksheet
    from glassnet.check.report import print_report, to_html, to_json, to_markdown

    if args.format and not args.output:
        raise GlassnetError("expected -o FILE with --format", got="no -o", field="--output")
    report = check_worksheet(args.worksheet, rtol=args.rtol)
    if args.format:
        text = to_markdown(report) if args.format == "md" else to_html(report)
        atomic_write_text(args.output, text, field="-o")
        print(f"wrote {args.output}")
        return 0
    if args.json:
        print(to_json(report))
        return 0
    print_report(report, everything=args.all)
    return 0


def _run_exercise(args: argparse.Namespace) -> int:
    from glassnet.check.exercise import make_exercise

    try:
        sizes = [int(s) for s in args.layers.split(",")]
    except ValueError:
        raise GlassnetError(
            "expected sizes like 3,3,3", got=repr(args.layers), field="--layers"
        ) from None
    acts = args.activations.split(",") if args.activations else None
    ex = make_exercise(sizes, acts, args.loss, seed=args.seed, lr=args.lr, decimals=args.decimals)
    out = Path(args.output)
    files = {
        "exercise.toml": ex.spec_text,
        "worksheet.toml": ex.worksheet_text,
        "answers.md": ex.answer_markdown,
    }
    if not args.force:
        for name in files:
            if (out / name).exists():
                raise GlassnetError(
                    "expected a new file (use --force to overwrite)",
                    got="it exists",
                    file=str(out / name),
                )
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        atomic_write_text(out / name, text)
        print(f"wrote {out / name}")
    return 0
