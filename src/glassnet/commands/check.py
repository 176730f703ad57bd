"""``glassnet check`` and ``glassnet exercise``: mark hand-worked steps, make new ones."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, cast

from glassnet.errors import GlassnetError
from glassnet.fileio import atomic_write_text, check_writable


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="mark a hand-worked step: ok / follows / wrong, and name each mistake",
        description="Mark every number of WORKSHEET (a spec with a [values] table, or "
        "'seed' for the seed tutorial's printed numbers): ok, follows from an earlier "
        "error, or wrong, with the mistake that reproduces it.  See docs/check.md.",
    )
    p.add_argument(
        "worksheet",
        metavar="WORKSHEET",
        nargs="+",
        help="worksheet file (TOML), a folder of them, or 'seed'; with several, each bad "
        "file is listed with its error and the others are still marked",
    )
    p.add_argument("--json", action="store_true", help="print the marking as JSON")
    p.add_argument("--all", action="store_true", help="list every number, not only those not ok")
    p.add_argument("--rtol", type=float, help="relative tolerance instead of the written digits")
    p.add_argument(
        "--rubric",
        metavar="FILE",
        help="score by this rubric.toml (points per stage or quantity, credit for follows, "
        "a penalty per distinct exact mistake, required quantities); default: the built-in "
        "rubric (docs/check.md)",
    )
    p.add_argument("--format", choices=("md", "html"), help="write a report document")
    p.add_argument("-o", "--output", metavar="FILE", help="where --format writes")
    p.add_argument(
        "--gradebook",
        metavar="FILE",
        help="write the class's marks as CSV: one row per worksheet, one column per quantity",
    )
    p.add_argument(
        "--gradebook-format",
        choices=("csv", "canvas", "moodle"),
        default=None,
        help="csv (default), canvas or moodle (the same as --lms)",
    )
    p.add_argument(
        "--lms",
        choices=("canvas", "moodle"),
        help="write --gradebook for this LMS's import (default: the kind of --roster, "
        "when it is a Canvas or Moodle export)",
    )
    p.add_argument(
        "--roster",
        metavar="CSV",
        help="the class's roster (a CSV, or a Canvas/Moodle gradebook export): the "
        "gradebook's rows and identity columns, and the ids each sheet's header is "
        "checked against",
    )
    p.add_argument(
        "--assignment",
        metavar="NAME",
        help="the assignment's name (its column in the LMS gradebook; default: the sheets' own)",
    )
    p.add_argument(
        "--comments",
        metavar="FILE",
        help="also write each student's mistakes in words as CSV (Canvas's import has "
        "no comment column; Moodle's file carries them in its feedback column)",
    )
    p.add_argument(
        "--feedback",
        metavar="DIR",
        help="write one feedback page per student (STUDENT.html and .md) and the "
        "class's (index.html, index.md) to DIR",
    )
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
    p.add_argument(
        "--roster",
        metavar="CSV",
        help="one variant per student of this CSV (an id column, optionally name), seeded "
        "from a hash of the id and --assignment; written to DIR/ID/",
    )
    p.add_argument("--assignment", metavar="NAME", help="the assignment's name (with --roster)")
    p.add_argument(
        "--graph",
        type=int,
        metavar="N",
        help="a circuit of N gates instead of a network (docs/graphs.md): DIR/worksheet.toml "
        "and DIR/answers.md",
    )
    p.add_argument(
        "--gates",
        metavar="LIST",
        help="with --graph: the gate mix, e.g. add,mul,max,sigmoid (default: every gate)",
    )
    conv = p.add_argument_group(
        "a convolutional exercise (--conv): conv2d -> 2×2 pooling -> flatten -> dense softmax"
    )
    conv.add_argument("--conv", action="store_true", help="a convolutional network instead")
    conv.add_argument("--image", default="1,4,4", help="the input's channels,height,width (1,4,4)")
    conv.add_argument("--kernel", type=int, default=2, help="the kernel's side (2)")
    conv.add_argument("--channels", type=int, default=1, help="output channels (1)")
    conv.add_argument("--stride", type=int, default=1, help="the convolution's stride (1)")
    conv.add_argument("--padding", type=int, default=0, help="the convolution's padding (0)")
    conv.add_argument("--pool", default="max", help="max or avg (max)")
    conv.add_argument("--classes", type=int, default=2, help="classes of the softmax (2)")
    p.add_argument("-o", "--output", metavar="DIR", default=".", help="folder to write (.)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=_run_exercise)


def _conv_options(args: argparse.Namespace) -> dict[str, object] | None:
    """The --conv options as an exercise's (None without --conv)."""
    if not args.conv:
        return None
    if args.layers != "3,3,3":  # a conv exercise's sizes are --image, --kernel, ...
        raise GlassnetError(
            "expected --layers or --conv, not both", got=f"--layers {args.layers}", field="--conv"
        )
    try:
        image = [int(s) for s in args.image.split(",")]
    except ValueError:
        raise GlassnetError(
            "expected C,H,W like 1,4,4", got=repr(args.image), field="--image"
        ) from None
    return {
        "conv": True,
        "image": image,
        "kernel": args.kernel,
        "channels": args.channels,
        "stride": args.stride,
        "padding": args.padding,
        "pool": args.pool,
        "classes": args.classes,
    }


def _run_circuit_check(args: argparse.Namespace, source: str) -> int:
    """A circuit worksheet (an expression file with [answers]): each number marked."""
    from glassnet.check.circuit import (
        entries_json,
        entries_lines,
        load_circuit_sheet,
        mark_circuit,
        report_document,
    )

    # (--gradebook, --roster and --comments make it a class of one: _run_batch.)
    for flag, used in (
        ("--rtol", args.rtol),
        ("--feedback", args.feedback),
        ("--rubric", args.rubric),
        ("--lms", args.lms),
        ("--assignment", args.assignment),
    ):
        if used is not None:
            raise GlassnetError(
                f"expected {flag} only with a network's worksheet", got=source, field=flag
            )
    entries = mark_circuit(load_circuit_sheet(source))
    if args.format:
        title = f"Marked worksheet: {Path(source).stem}"
        atomic_write_text(args.output, report_document(entries, title, args.format), field="-o")
        print(f"wrote {args.output}")
        return 0
    print(entries_json(entries) if args.json else "\n".join(entries_lines(entries)))
    return 0


def _run_check(args: argparse.Namespace) -> int:
    from glassnet.check import check_worksheet
    from glassnet.check.report import print_report, to_html, to_json, to_markdown
    from glassnet.graphs import is_expression_file

    sources = _expand(args.worksheet)
    circuit = len(sources) == 1 and is_expression_file(sources[0])
    batch = args.gradebook or args.roster or args.comments or (args.feedback and not circuit)
    if len(sources) != 1 or Path(args.worksheet[0]).is_dir() or batch:
        return _run_batch(args, sources)
    if args.format and not args.output:
        raise GlassnetError("expected -o FILE with --format", got="no -o", field="--output")
    if args.output and not args.format:  # the format from -o's suffix, never ignored
        suffix = Path(args.output).suffix.lower()
        args.format = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}.get(suffix)
        if args.format is None:
            raise GlassnetError(
                "expected -o FILE ending in .md or .html (or --format md|html)",
                got=repr(args.output),
                field="-o",
            )
    if args.format:
        check_writable(args.output, field="-o")
    if circuit:
        return _run_circuit_check(args, sources[0])
    report = check_worksheet(sources[0], rtol=args.rtol, rubric=_rubric(args))
    report.grade()  # a rubric naming a quantity this step lacks: one error, before output
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


def _rubric(args: argparse.Namespace) -> Any:
    """The rubric of ``--rubric`` (None: the built-in one)."""
    if getattr(args, "rubric", None) is None:
        return None
    from glassnet.check.rubric import load_rubric

    return load_rubric(args.rubric)


def _expand(names: list[str]) -> list[str]:
    """Each argument as given, a folder as its ``*.toml`` files (sorted), or — a folder
    written by ``glassnet exercise --roster`` — its ``*/worksheet.toml``."""
    out: list[str] = []
    for name in names:
        path = Path(name)
        if not path.is_dir():
            out.append(name)
            continue
        found = sorted(str(p) for p in path.glob("*.toml"))
        out.extend(found or sorted(str(p) for p in path.glob("*/worksheet.toml")))
    return out


def _run_batch(args: argparse.Namespace, sources: list[str]) -> int:
    """Mark every worksheet: one line per student, then the class report (how many made
    each named mistake where); each sheet that cannot be read at all is listed on
    stderr.  ``--gradebook`` writes the marks as CSV.  Exit status 2 if any sheet could
    not be read."""
    import json
    import sys

    from glassnet.check import check_worksheet
    from glassnet.check.circuit import CircuitReport, entries_lines, mark_circuit_report
    from glassnet.check.marking import Report
    from glassnet.check.report import (
        Marked,
        class_report,
        notes_lines,
        print_report,
        student_line,
        summary_line,
    )
    from glassnet.graphs import is_expression_file

    if args.format or args.output:
        raise GlassnetError(
            "expected one worksheet with --format/-o (a report document is per worksheet)",
            got=f"{len(sources)} worksheets",
            field="--format",
        )
    if args.rtol is not None:  # a bad option is one error, not one per file
        from glassnet.check.marking import check_rtol

        check_rtol(args.rtol)
    if not sources:
        raise GlassnetError("expected worksheets (*.toml)", got="none", file=args.worksheet[0])
    circuits = {s for s in sources if is_expression_file(s)}
    for flag, used, why in (
        ("--rtol", args.rtol, "a circuit's is marked to its written digits"),
        ("--rubric", args.rubric, "a circuit's numbers are worth equal points"),
        ("--feedback", args.feedback, "its pages are written from a network's step"),
    ):
        if circuits and used is not None:
            raise GlassnetError(
                f"expected {flag} only with networks' worksheets ({why})",
                got=f"{sorted(circuits)[0]}, a circuit worksheet",
                field=flag,
            )
    from glassnet.check.exercise import Known
    from glassnet.check.lms import Marked as LmsMarked
    from glassnet.check.lms import duplicates, unlisted
    from glassnet.check.roster import Roster, read_roster_file

    roster: Roster | None = read_roster_file(args.roster) if args.roster else None
    form = _gradebook_form(args, roster)
    for flag, path in (("--gradebook", args.gradebook), ("--comments", args.comments)):
        if path:
            check_writable(path, field=flag)
    if args.feedback:
        _check_folder(args.feedback)
    known = Known(
        [s.id for s in roster.students] if roster else [],
        [a for a in [args.assignment, *_assignments(sources)] if a],
    )
    rubric = _rubric(args)
    results: list[dict[str, Any]] = []
    marked: list[Marked] = []
    failed = 0
    for source in sources:
        try:
            report: Report | CircuitReport = (
                mark_circuit_report(source)
                if source in circuits
                else check_worksheet(source, rtol=args.rtol, rubric=rubric, known=known)
            )
        except GlassnetError as err:
            failed += 1
            message = str(err.with_file(source))
            if not message.startswith(source):  # e.g. the spec a worksheet names is bad
                message = f"{source}: {message}"
            print(f"glassnet: error: {message}", file=sys.stderr)
            results.append({"file": source, "error": message})
            marked.append((source, None, message))
            continue
        # Grading fails only on a rubric that names a quantity this step lacks: the
        # rubric's fault, not the sheet's, so one error (naming the rubric) for the class.
        report.grade()
        marked.append((source, report, None))
        if args.json:
            results.append({"file": source, "report": report.to_dict()})
            continue
        for line in notes_lines(report):
            print(f"glassnet: warning: {line}", file=sys.stderr)
        if args.all:
            print(f"== {source}")
            if isinstance(report, CircuitReport):
                print("\n".join(entries_lines(report.entries)))
            else:
                print_report(report, everything=True)
        else:
            print(student_line(source, report, None))
        results.append({"file": source, "summary": summary_line(report)})
    marked_n = len(sources) - failed
    line = f"marked {marked_n} of {len(sources)} worksheets; {failed} could not be read"
    # The LMS writers read a report's grade() and sheet.student/assignment, which a
    # circuit's report has too (tests/test_graphs_class.py writes each for circuits);
    # their type names only a network's report.
    lms_marked = cast("list[LmsMarked]", marked)
    for sid, files in duplicates(lms_marked).items():
        print(
            f"glassnet: warning: {sid!r} has {len(files)} sheets ({', '.join(files)}): the "
            f"gradebook takes the first, {files[0]}",
            file=sys.stderr,
        )
    for sid in unlisted(lms_marked, roster):
        print(
            f"glassnet: warning: {sid!r} handed in a sheet but is not on {args.roster}: "
            "their gradebook row has no LMS identity to match",
            file=sys.stderr,
        )
    if args.gradebook:
        atomic_write_text(
            args.gradebook,
            _gradebook_text(marked, form, roster, args.assignment),
            field="--gradebook",
        )
    if args.comments:
        from glassnet.check.lms import comments_csv

        atomic_write_text(args.comments, comments_csv(lms_marked, roster), field="--comments")
    feedback_files = []
    if args.feedback:
        from glassnet.check.feedback import write_feedback

        names = {st.id: st.name for st in roster.students if st.name} if roster else {}
        # No circuit sheet is here: --feedback refused them above.
        feedback_files = write_feedback(lms_marked, args.feedback, names)
    if args.json:
        print(
            json.dumps(
                {
                    "worksheets": results,
                    "marked": marked_n,
                    "failed": failed,
                    "class": class_report(marked),
                },
                indent=2,
            )
        )
    else:
        print(line + (" (listed on stderr)" if failed else ""))
        mistakes = class_report(marked)
        if mistakes:
            print(
                "Class report (students who made each mistake, where, exact and possible "
                "apart; then wrong numbers no rule explains):"
            )
            for m in mistakes:
                print(f"  {m}")
        for path in (args.gradebook, args.comments):
            if path:
                print(f"wrote {path}")
        if args.feedback:
            print(f"wrote {len(feedback_files)} feedback files to {args.feedback}/")
    return 2 if failed else 0


def _gradebook_form(args: argparse.Namespace, roster: Any) -> str:
    """The gradebook's format: --lms, else --gradebook-format, else the roster's kind
    (a Canvas or Moodle export), else plain CSV."""
    if args.lms and args.gradebook_format and args.gradebook_format not in ("csv", args.lms):
        raise GlassnetError(
            f"expected --gradebook-format {args.lms} or none with --lms {args.lms}",
            got=args.gradebook_format,
            field="--gradebook-format",
        )
    if (args.lms or args.gradebook_format) and not args.gradebook:
        flag = "--lms" if args.lms else "--gradebook-format"
        raise GlassnetError(
            f"expected --gradebook FILE with {flag}", got="no --gradebook", field=flag
        )
    if args.lms:
        return str(args.lms)
    if args.gradebook_format:
        return str(args.gradebook_format)
    if roster is not None and roster.kind in ("canvas", "moodle"):
        return str(roster.kind)
    return "csv"


def _gradebook_text(marked: Any, form: str, roster: Any, assignment: str | None) -> str:
    from glassnet.check.lms import canvas_gradebook, moodle_gradebook
    from glassnet.check.report import gradebook

    if form == "canvas":
        return canvas_gradebook(marked, roster, assignment)
    if form == "moodle":
        return moodle_gradebook(marked, roster, assignment)
    return gradebook(marked, "csv")


def _assignments(sources: list[str]) -> list[str]:
    """The assignments the sheets name (``assignment = "..."``): what an edited header
    may have been."""
    import re

    found: dict[str, int] = {}
    pattern = re.compile(r'^assignment\s*=\s*"([^"\\]*)"', re.M)
    for source in sources:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for m in pattern.finditer(text):
            found[m.group(1)] = found.get(m.group(1), 0) + 1
    return sorted(found, key=lambda a: -found[a])


def _check_folder(folder: str) -> None:
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise GlassnetError("expected a folder", got="a file", file=folder, field="--feedback")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GlassnetError(
            "expected a folder that can be made",
            got=err.strerror or str(err),
            file=folder,
            field="--feedback",
        ) from None


def _run_circuit_exercise(args: argparse.Namespace) -> int:
    """``--graph N``: a random circuit's blank worksheet and its answer key."""
    from glassnet.check.circuit import circuit_exercise

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise GlassnetError("expected a folder", got="a file", file=str(out), field="--output")
    gates = args.gates.split(",") if args.gates else None
    if not (args.roster or args.assignment):
        ex = circuit_exercise(args.graph, gates, seed=args.seed, decimals=args.decimals)
        files = {out / "worksheet.toml": ex.worksheet_text, out / "answers.md": ex.answer_markdown}
        _write_all(files, args.force, out)
        return 0
    # One variant per student, seeded from the student's id and the assignment (as for
    # networks): the same roster and name make the same circuits again.
    from glassnet.check.exercise import folder_name, read_roster

    if not (args.roster and args.assignment):
        raise GlassnetError(
            "expected --roster CSV and --assignment NAME together",
            got="only " + ("--roster" if args.roster else "--assignment"),
            field="--roster",
        )
    students = read_roster(args.roster)
    files = {}
    folders: dict[str, str] = {}
    for st in students:
        folder = folder_name(st.id)
        if folder in folders:
            raise GlassnetError(
                "expected ids that make distinct folder names",
                got=f"{st.id!r} and {folders[folder]!r} both give {folder!r}",
                file=args.roster,
            )
        folders[folder] = st.id
        roster = (st.id, args.assignment)
        ex = circuit_exercise(args.graph, gates, decimals=args.decimals, roster=roster)
        files[out / folder / "worksheet.toml"] = ex.worksheet_text
        files[out / folder / "answers.md"] = ex.answer_markdown
    _write_all(files, args.force, out, quiet=True)
    print(
        f"wrote {len(students)} circuits of {args.assignment!r} to {out}/ (one folder per student)"
    )
    return 0


def _run_exercise(args: argparse.Namespace) -> int:
    from glassnet.check.exercise import make_conv_exercise, make_exercise

    if args.graph is not None:
        return _run_circuit_exercise(args)
    conv = _conv_options(args)

    try:
        sizes = [int(s) for s in args.layers.split(",")]
    except ValueError:
        raise GlassnetError(
            "expected sizes like 3,3,3", got=repr(args.layers), field="--layers"
        ) from None
    acts = args.activations.split(",") if args.activations else None
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise GlassnetError("expected a folder", got="a file", file=str(out), field="--output")
    if args.roster or args.assignment:
        return _run_roster(args, sizes, acts, out)
    if conv is not None:
        ex = make_conv_exercise(
            conv, acts, args.loss, seed=args.seed, lr=args.lr, decimals=args.decimals
        )
    else:
        ex = make_exercise(
            sizes, acts, args.loss, seed=args.seed, lr=args.lr, decimals=args.decimals
        )
    files = {
        out / "exercise.toml": ex.spec_text,
        out / "worksheet.toml": ex.worksheet_text,
        out / "answers.md": ex.answer_markdown,
    }
    _write_all(files, args.force, out)
    return 0


def _run_roster(
    args: argparse.Namespace, sizes: list[int], acts: list[str] | None, out: Path
) -> int:
    """One variant per student: DIR/ID/{exercise.toml, worksheet.toml, answers.md}."""
    from glassnet.check.exercise import (
        folder_name,
        read_roster,
        roster_exercise,
        roster_worksheet,
    )

    if not (args.roster and args.assignment):
        raise GlassnetError(
            "expected --roster CSV and --assignment NAME together",
            got="only " + ("--roster" if args.roster else "--assignment"),
            field="--roster",
        )
    students = read_roster(args.roster)
    options = {
        "layers": sizes,
        "activations": acts,
        "loss": args.loss,
        "lr": args.lr,
        "decimals": args.decimals,
        **(_conv_options(args) or {}),
    }
    files: dict[Path, str] = {}
    folders: dict[str, str] = {}
    for st in students:
        folder = folder_name(st.id)
        if folder in folders:
            raise GlassnetError(
                "expected ids that make distinct folder names",
                got=f"{st.id!r} and {folders[folder]!r} both give {folder!r}",
                file=args.roster,
            )
        folders[folder] = st.id
        ex = roster_exercise(st.id, args.assignment, options)
        files[out / folder / "exercise.toml"] = ex.spec_text
        files[out / folder / "worksheet.toml"] = roster_worksheet(ex, st.id, args.assignment)
        files[out / folder / "answers.md"] = ex.answer_markdown
    _write_all(files, args.force, out, quiet=True)
    print(
        f"wrote {len(students)} variants of {args.assignment!r} to {out}/ (one folder per student)"
    )
    return 0


def _write_all(files: dict[Path, str], force: bool, out: Path, *, quiet: bool = False) -> None:
    """All files or none: every check before the first write."""
    if not force:
        for path in files:
            if path.exists():
                raise GlassnetError(
                    "expected a new file (use --force to overwrite)",
                    got="it exists",
                    file=str(path),
                )
    for folder in sorted({p.parent for p in files} | {out}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise GlassnetError(
                "expected a folder that can be made",
                got=f"{type(err).__name__}: {err.strerror or err}",
                file=str(folder),
                field="--output",
            ) from None
    for path in files:
        check_writable(path, field="--output")
    for path, text in files.items():
        atomic_write_text(path, text)
        if not quiet:
            print(f"wrote {path}")
