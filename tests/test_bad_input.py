"""Every CLI command, walked with bad arguments and bad files: exit status 2, exactly one
line on stderr, no traceback, and no file written or changed (names, bytes and mtimes
of everything under the working folder compared before and after).

The cases are generated: every file argument of every command is given each kind of bad
file (missing, a folder, empty, binary junk, another format, a device, nesting or sizes
past the limits), every output each kind of bad place (a missing folder, a folder where
nothing can be created, a folder instead of a file), and every numeric option values that
make no sense.  Commands this file does not know (added later) still get the generic
cases, read from the parser itself.
"""

from __future__ import annotations

import argparse
import csv
import os
import pickle
from pathlib import Path

import numpy as np

from glassnet import cli

# -- the bad files ---------------------------------------------------------------------------
BAD_KINDS = ("absent", "folder", "empty", "junk", "device", "other_format")


def _write_fixtures(d: Path) -> dict[str, str]:
    """Good and bad files in ``d``; returns name -> path."""
    rng = np.random.default_rng(0)
    f: dict[str, str] = {}
    # a small, well separated data set (no scikit-learn needed)
    data = d / "blobs.csv"
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "label"])
        for i in range(40):
            w.writerow([rng.normal() + 4 * (i % 2), rng.normal(), ["cat", "dog"][i % 2]])
    f["data"] = str(data)
    rows = d / "rows.csv"
    rows.write_text("a,b\n0.1,0.2\n3.9,-0.3\n")
    f["rows"] = str(rows)
    model = d / "model.npz"
    code = cli.main(
        [
            *("train", "--data", str(data), "--layers", "4", "--epochs", "2", "--no-progress"),
            *("--json", "--out", str(model), "--checkpoint", str(d / "model.ckpt.npz")),
        ]
    )
    assert code == 0
    f["model"] = str(model)
    f["ckpt"] = str(d / "model.ckpt.npz")
    (d / "folder").mkdir()
    (d / "folder" / "inside.txt").write_text("a folder, not a file\n")
    for ext in ("toml", "npz", "csv", "safetensors"):
        (d / f"empty.{ext}").write_bytes(b"")
        (d / f"junk.{ext}").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    # another format under each extension: a model named .toml, a spec named .npz, ...
    (d / "model_as.toml").write_bytes(model.read_bytes())
    (d / "spec_as.npz").write_text('loss = "mse"\nlr = 0.1\n')
    (d / "spec_as.csv").write_bytes(model.read_bytes())
    (d / "pickle_as.npz").write_bytes(pickle.dumps({"W": np.zeros(3)}))
    (d / "spec_as.safetensors").write_text('loss = "mse"\n')
    # past the limits
    (d / "deep.toml").write_text("input = " + "[" * 3000 + "]" * 3000 + "\n")
    (d / "huge.toml").write_text(
        'loss = "mse"\nlr = 0.1\ninput = [1.0]\ntarget = [0.0]\n'
        "[[layers]]\nunits = 4000000000\n[[layers]]\nunits = 1\n"
    )
    (d / "nonsense.toml").write_text(
        'loss = "binary_cross_entropy"\nlr = -0.5\ninput = [1.0]\ntarget = [2.0]\n'
        '[[layers]]\nweights = [[1.0]]\nactivation = "sigmoid"\n'
    )
    (d / "bad_target.toml").write_text(
        'loss = "binary_cross_entropy"\nlr = 0.5\ninput = [1.0]\ntarget = [2.0]\n'
        '[[layers]]\nweights = [[1.0]]\nactivation = "sigmoid"\n'
    )
    (d / "bad_width.toml").write_text(
        'loss = "mse"\nlr = 0.5\ninput = [1.0, 2.0]\ntarget = [0.5]\n'
        "[[layers]]\nweights = [[1.0]]\n"
    )
    for name in ("deep", "huge", "nonsense", "bad_target", "bad_width"):  # as worksheets
        text = (d / f"{name}.toml").read_text()
        (d / f"ws_{name}.toml").write_text(text + "\n[values]\nloss = 1.0\n")
    np.savez(d / "objects.npz", X=np.array([{"x": 1}], dtype=object), y=np.zeros(1))
    (d / "three.csv").write_text("x1,x2,x3\n1,2,3\n")
    (d / "existing.md").write_text("keep me\n")
    return f


def _unwritable(d: Path) -> str:
    """A folder where no file can be created — for root too (permission bits do not
    stop root, so then /proc, which refuses new files to everyone)."""
    if os.geteuid() == 0:
        return "/proc"
    ro = d / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    return str(ro)


def _bad_file(kind: str, ext: str, d: Path) -> str:
    return {
        "absent": str(d / f"absent.{ext}"),
        "folder": str(d / "folder"),
        "empty": str(d / f"empty.{ext}"),
        "junk": str(d / f"junk.{ext}"),
        "device": "/dev/zero",
        "other_format": str(
            d
            / {
                "toml": "model_as.toml",
                "npz": "spec_as.npz",
                "csv": "spec_as.csv",
                "safetensors": "spec_as.safetensors",
            }[ext]
        ),
    }[kind]


# -- the cases ------------------------------------------------------------------------------
# For each command: a good argv and, per file argument, where it sits and what it expects.
# "{model}" etc. are filled from the fixtures; "{d}" is the working folder.
GOOD = {
    "seed": [],
    "step": ["seed"],
    "gradcheck": ["seed"],
    "explain": ["seed"],
    "check": ["seed"],
    "exercise": ["-o", "{d}/ex"],
    "train": ["--data", "{data}", "--epochs", "1", "--no-progress", "--out", "{d}/new.npz"],
    "evaluate": ["{model}"],
    "predict": ["{model}", "{rows}"],
    "export": ["{model}", "--format", "npz", "-o", "{d}/exported.npz"],
}
#: (command, index in GOOD[command] of the file argument, its extension)
FILE_ARGS = [
    ("step", 0, "toml"),
    ("gradcheck", 0, "toml"),
    ("explain", 0, "toml"),
    ("check", 0, "toml"),
    ("train", 1, "csv"),
    ("evaluate", 0, "npz"),
    ("predict", 0, "npz"),
    ("predict", 1, "csv"),
    ("export", 0, "npz"),
    ("export", 0, "safetensors"),
    ("export", 0, "toml"),
]
EXTRA_FILE_CASES = [
    # worse than junk: limits, values that make no sense, unsafe model files
    *[
        [cmd, "{d}/" + prefix + name]
        for cmd, prefix in (("step", ""), ("gradcheck", ""), ("explain", ""), ("check", "ws_"))
        for name in ("deep.toml", "huge.toml", "nonsense.toml", "bad_target.toml", "bad_width.toml")
    ],
    ["evaluate", "{d}/pickle_as.npz"],
    ["train", "--data", "{d}/objects.npz", "--out", "{d}/new.npz"],
    ["train", "--data", "{d}/pickle_as.npz", "--out", "{d}/new.npz"],
    ["train", "--data", "{model}", "--out", "{d}/new.npz"],
    ["train", "--resume", "{d}/junk.npz", "--out", "{d}/new.npz"],
    ["train", "--resume", "{d}/pickle_as.npz", "--out", "{d}/new.npz"],
    ["train", "--resume", "{ckpt}", "--epochs", "1", "--out", "{d}/new.npz"],
    ["train", "--resume", "{ckpt}", "--epochs", "5", "--data", "iris", "--out", "{d}/new.npz"],
    ["evaluate", "{model}", "--data", "{d}/three.csv"],
    ["evaluate", "{model}", "--data", "{d}/junk.csv"],
    ["predict", "{model}", "{d}/three.csv"],
    ["check", "seed", "{d}/junk.toml", "{d}/folder"],  # a batch with bad files: exit 2
    ["check", "{d}/folder"],  # a folder without worksheets
]
BAD_OPTIONS = {
    "seed": [["--digits", "0"], ["--digits", "x"], ["--nope"], ["extra"]],
    "step": [
        ["--input", "1,x"],
        ["--input", "[[1, 2]]"],
        ["--input", "[" * 200 + "]" * 200],
        ["--input", "1e999,0,0"],
        ["--target", "2,0,0"],
        ["--digits", "99"],
    ],
    "gradcheck": [["--eps", "0"], ["--eps", "nan"], ["--eps", "-1"], ["--tolerance", "nan"]],
    "explain": [
        ["--digits", "0"],
        ["--round", "-1"],
        ["--max-units", "1"],
        ["--format", "pdf"],
    ],
    "check": [
        ["--rtol", "-1"],
        ["--rtol", "nan"],
        ["--format", "md"],
        ["--format", "pdf", "-o", "{d}/r.pdf"],
    ],
    "exercise": [
        ["--layers", "3,x"],
        ["--layers", "100,3"],
        ["--lr", "0"],
        ["--lr", "nan"],
        ["--lr", "inf"],
        ["--seed", "-1"],
        ["--decimals", "3"],
        ["--activations", "relu,swish"],
        ["--loss", "nope"],
    ],
    "train": [
        ["--lr", "0"],
        ["--lr=-1e-3"],
        ["--lr", "inf"],
        ["--lr", "nan"],
        ["--epochs", "0"],
        ["--layers", "100000000"],
        ["--layers", "0"],
        ["--layers", "4,x"],
        ["--seed", "-1"],
        ["--batch-size", "0"],
        ["--validation-split", "1"],
        ["--test-size", "0"],
        ["--test-size", "nan"],
        ["--weight-decay", "-1"],
        ["--optimizer", "sgd", "--momentum", "2"],
        ["--momentum", "0.9"],
        ["--schedule", "step", "--gamma", "0"],
        ["--schedule", "step", "--step-size", "0"],
        ["--patience", "0"],
        ["--dtype", "float16"],
        ["--init", "nope"],
        ["--activation", "nope"],
        ["--label", "nope"],
        ["--plot", "{d}/curves.jpg"],
    ],
    "evaluate": [["--data", "{d}/absent.csv"], ["--data", "mnist"]],
    "predict": [["--nope"]],
    "export": [["--format", "pdf"]],
}
#: (command, the option naming an output file, or None for a positional after GOOD)
OUTPUTS = [
    ("explain", "-o"),
    ("check", "-o"),  # with --format md
    ("train", "--out"),
    ("train", "--checkpoint"),
    ("train", "--plot"),
    ("predict", "-o"),
    ("export", "-o"),
]


def _bad_outputs(d: Path, unwritable: str, suffix: str) -> list[str]:
    return [
        str(d / "missing" / f"out{suffix}"),  # a folder that does not exist
        f"{unwritable}/out{suffix}",  # a folder where nothing can be created
        str(d / "folder"),  # a folder, not a file
    ]


def _known_cases(d: Path, unwritable: str) -> list[list[str]]:
    cases: list[list[str]] = []
    for command, index, ext in FILE_ARGS:
        for kind in BAD_KINDS:
            argv = list(GOOD[command])
            argv[index] = _bad_file(kind, ext, d)
            cases.append([command, *argv])
    cases += EXTRA_FILE_CASES
    for command, options in BAD_OPTIONS.items():
        cases += [[command, *GOOD[command], *opt] for opt in options]
    for command, flag in OUTPUTS:
        suffix = ".png" if flag == "--plot" else ".md"
        for out in _bad_outputs(d, unwritable, suffix):
            argv = [
                a
                for a in GOOD[command]
                if a not in ("--out", "{d}/new.npz", "-o", "{d}/exported.npz")
            ]
            extra = ["--format", "md"] if command == "check" else []
            if command == "train" and flag != "--out":
                extra += ["--out", "{d}/new.npz"]
            cases.append([command, *argv, *extra, flag, out])
    for out in (str(d / "existing.md"), f"{unwritable}/ex", str(d / "existing.md" / "x")):
        cases.append(["exercise", "-o", out])
    return cases


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no sub-commands")


def _generic_cases(d: Path) -> list[list[str]]:
    """For every command, read from its parser: an unknown option, missing positionals,
    and each positional given a bad file while the others point into a missing folder."""
    cases = []
    for name, sub in _subcommands().items():
        positionals = [a for a in sub._actions if not a.option_strings and a.dest != "help"]
        cases.append([name, "--no-such-option"])
        if positionals:
            cases.append([name])
            for kind in ("absent", "folder", "junk"):
                rest = [str(d / "missing" / f"arg{i}") for i in range(len(positionals) - 1)]
                cases.append([name, _bad_file(kind, "npz", d), *rest])
    return cases


# -- the walk ---------------------------------------------------------------------------------
def _snapshot(d: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(d)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    _, err = capsys.readouterr()
    return code, err


def test_every_command_refuses_bad_input_with_one_line_and_writes_nothing(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    files = _write_fixtures(tmp_path)
    unwritable = _unwritable(tmp_path)
    capsys.readouterr()
    cases = _known_cases(tmp_path, unwritable) + _generic_cases(tmp_path)
    assert {c[0] for c in cases} >= set(_subcommands())  # every command is walked
    before = _snapshot(tmp_path)
    failures = []
    for case in cases:
        argv = [a.format(d=tmp_path, **files) for a in case]
        code, err = _run(argv, capsys)
        lines = err.splitlines()
        ok = (
            code == 2
            and len(lines) == 1
            and err.endswith("\n")
            and "error:" in lines[0]
            and "Traceback" not in err
            and "internal error" not in err
        )
        if not ok:
            failures.append(f"{argv}: exit {code}, stderr {err!r}")
        now = _snapshot(tmp_path)
        if now != before:
            changed = sorted(set(now.items()) ^ set(before.items()))
            failures.append(f"{argv}: changed {[name for name, _ in changed]}")
            before = now
    assert not failures, "\n".join(failures)
    assert len(cases) > 150


def test_a_batch_with_bad_files_lists_each_on_one_line(tmp_path, capsys, monkeypatch):
    """The one case where stderr has several lines: one per bad worksheet, while every
    good worksheet is still marked and a summary line ends the output."""
    from glassnet.spec import example_path

    monkeypatch.chdir(tmp_path)
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    good = example_path("seed_worksheet").read_text()
    for name in ("a", "c", "e"):
        (sheets / f"{name}.toml").write_text(good)
    (sheets / "b.toml").write_text("[values\n")  # not TOML
    (sheets / "d.toml").write_text('spec = "/dev/zero"\n[values]\nloss = 1.0\n')  # a device
    (sheets / "f.toml").write_bytes(b"\xff\xfe junk")  # not UTF-8
    (sheets / "notes.txt").write_text("not a worksheet: ignored\n")
    code = cli.main(["check", str(sheets)])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 3 and all(line.startswith("glassnet: error: ") for line in lines)
    for name, line in zip("bdf", lines, strict=True):
        assert str(sheets / f"{name}.toml") in line
    # a, c, e marked: one line per student (issue 12: the class view)
    marked = [ln for ln in out.splitlines() if ln.startswith(str(sheets)) and "numbers:" in ln]
    assert [ln.split(":")[0] for ln in marked] == [str(sheets / f"{n}.toml") for n in "ace"]
    assert "\nmarked 3 of 6 worksheets; 3 could not" in out

    import json

    code = cli.main(["check", str(sheets / "a.toml"), str(sheets / "b.toml"), "--json"])
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert code == 2 and result["marked"] == 1 and result["failed"] == 1
    assert "report" in result["worksheets"][0] and "error" in result["worksheets"][1]
    assert len(err.splitlines()) == 1

    code = cli.main(["check", str(sheets / "a.toml"), str(sheets / "c.toml")])
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and "marked 2 of 2 worksheets; 0 could not" in out
