"""``glassnet explain`` on the command line: formats, files, and bad input (exit 2,
one line, no file written)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from glassnet.cli import main

SPEC = """
loss = "mse"
lr = 0.5
input = [[0.5, -1.0], [0.1, 0.2]]
target = [[1.0], [0.0]]

[[layers]]
weights = [[0.2, -0.4], [0.7, 0.3]]
bias = [0.1, 0.1]
activation = "tanh"

[[layers]]
weights = [[0.5], [-0.6]]
bias = [0.0]
activation = "sigmoid"
"""


def test_markdown_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "seed"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Backpropagation, step by step: seed")
    assert "$$" in out


@pytest.mark.parametrize(
    ("suffix", "marker"), [(".md", "$$"), (".html", "<math"), (".ipynb", '"nbformat": 4')]
)
def test_format_from_the_suffix(tmp_path: Path, suffix: str, marker: str) -> None:
    out = tmp_path / f"seed{suffix}"
    assert main(["explain", "seed", "-o", str(out)]) == 0
    assert marker in out.read_text(encoding="utf-8")


def test_a_spec_file_with_a_batch(tmp_path: Path) -> None:
    spec = tmp_path / "net.toml"
    spec.write_text(SPEC)
    out = tmp_path / "net.txt"
    assert main(["explain", str(spec), "--format", "md", "-o", str(out), "--digits", "5"]) == 0
    assert "}[2]" in out.read_text()  # sample 2, in brackets after the name


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glassnet.cli", *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "args",
    [
        ["no_such.toml"],
        ["bad.toml"],
        ["seed", "--digits", "0"],
        ["seed", "--digits", "x"],
        ["seed", "--round", "-1"],
        ["seed", "--round", "16"],
        ["seed", "--format", "pdf"],
        ["seed", "-o", "missing_dir/out.md"],
        ["seed", "-o", "."],
        ["seed", "-o", "/proc/glassnet-explain-test.md"],
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "bad.toml").write_text("loss = \n")
    (tmp_path / "keep.md").write_text("precious")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    args = [str(tmp_path) if a == "." else a for a in args]
    if "-o" not in args:
        args += ["-o", "keep.md"]  # an existing file must survive bad input untouched
    r = _run("explain", *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "keep.md").read_text() == "precious"
    assert not os.path.exists("/proc/glassnet-explain-test.md")
