"""Marking a circuit worksheet (``glassnet check`` of an expression file with
[answers]).  Each student below is an independent model: their numbers are worked here
by hand (arithmetic in the comments), with the mistake planted — glassnet only marks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from glassnet import cli
from glassnet.check.circuit import load_circuit_sheet, mark_circuit
from glassnet.graphs import parse_expression

CS231N = 'expression = """\nq = x + y\nf = q * z\n"""\nvalues = { x = -2, y = 5, z = -4 }\n'


def sheet(tmp_path: Path, head: str, answers: str) -> str:
    path = tmp_path / "sheet.toml"
    path.write_text(head + "[answers]\n" + answers, encoding="utf-8")
    return str(path)


def marks(path: str) -> dict[str, tuple[str, str | None]]:
    return {e.name: (e.verdict, e.mistake) for e in mark_circuit(load_circuit_sheet(path))}


def test_right_answers_are_ok(tmp_path: Path) -> None:
    # CS231n: q = −2 + 5 = 3, f = 3·(−4) = −12; df/dq = z = −4, df/dz = q = 3,
    # df/dx = df/dy = −4·1 = −4.
    m = marks(
        sheet(tmp_path, CS231N, "q = 3\nf = -12\ndf = 1\ndq = -4\ndz = 3\ndx = -4\ndy = -4\n")
    )
    assert set(m.values()) == {("ok", None)} and len(m) == 7


def test_a_generated_key_marks_itself_ok(tmp_path: Path) -> None:
    """Every value and gradient of a circuit with forks and every kind of gate, written
    to 4 decimals from the trace, is marked ok."""
    text = (
        "a = x * y + max(x, z)\nb = sigmoid(a) - tanh(y) / (z * z + 1)\n"
        "f = b * a + relu(x) + abs(z) ** 2"
    )
    values = {"x": 0.7, "y": -1.3, "z": 0.4}
    trace = parse_expression(text).trace(values, round_to=4)
    c = trace.circuit
    lines = [
        f"{n} = {trace.value(n):.4f}"
        for n in c.order()
        if c.has_gradient(n) and not c.nodes[n].is_input
    ]
    lines += [f"d{n} = {trace.grad(n):.4f}" for n in c.order() if c.has_gradient(n)]
    head = f'expression = """\n{text}\n"""\nvalues = {{ x = 0.7, y = -1.3, z = 0.4 }}\nround = 4\n'
    m = marks(sheet(tmp_path, head, "\n".join(lines) + "\n"))
    assert len(m) == len(lines)
    assert all(v == ("ok", None) for v in m.values()), m


def test_an_error_is_carried_forward(tmp_path: Path) -> None:
    # q written as 4 (wrong: 3); then f = 4·(−4) = −16 and df/dz = q = 4 follow from it;
    # df/dq = z = −4 does not use q: ok.
    m = marks(sheet(tmp_path, CS231N, "q = 4\nf = -16\ndq = -4\ndz = 4\ndx = -4\n"))
    assert m["q"][0] == "wrong"
    assert m["f"] == ("follows", None) and m["dz"] == ("follows", None)
    assert m["dq"] == ("ok", None) and m["dx"] == ("ok", None)


def test_hand_rounding_carried_is_ok(tmp_path: Path) -> None:
    """CS231n's neuron to two decimals: dot = 1, f = σ(1) = 0.73; df/ddot = 0.73·0.27 =
    0.1971 → 0.20; dx0 = w0·0.20 = 0.40 (the exact 0.3932 would round to 0.39: the 0.40
    is the student's correct rounding carried)."""
    head = (
        'expression = """\ndot = w0 * x0 + w1 * x1 + w2\nf = sigmoid(dot)\n"""\n'
        "values = { w0 = 2, w1 = -3, w2 = -3, x0 = -1, x1 = -2 }\n"
    )
    m = marks(sheet(tmp_path, head, "dot = 1\nf = 0.73\nddot = 0.20\ndx0 = 0.40\ndw2 = 0.20\n"))
    assert all(v == ("ok", None) for v in m.values()), m


PLANTED = [
    # (expression file head, the student's answers worked with the mistake, the number
    #  the mistake shows in, the mistake's id)
    # multiply not swapped: df/dz written as z itself = −4 (right: q = 3).
    (CS231N, "dz = -4\n", "dz", "multiply_not_swapped"),
    # add gate's gradient split: df/dx = −4·0.5 = −2 (right: −4).
    (CS231N, "dq = -4\ndx = -2\n", "dx", "add_gradient_split"),
    # subtraction's sign lost: f = (x − y)·z at 1, 2, 3: df/dy = 3·(+1) = 3 (right: −3).
    (
        'expression = "f = (x - y) * z"\nvalues = { x = 1, y = 2, z = 3 }\n',
        "dy = 3\n",
        "dy",
        "subtract_sign_lost",
    ),
    # a fork overwritten: f = (x + y)·x at x = 3, y = −4: the paths into x are
    # df/dq·1 = x = 3 and q = −1; the student kept only the one met last (via q): 3.
    (
        'expression = "q = x + y\\nf = q * x"\nvalues = { x = 3, y = -4 }\n',
        "dq = 3\ndx = 3\n",
        "dx",
        "fork_overwritten_last",
    ),
    # ... or only the one met first (via f): −1.  Right: 3 + (−1) = 2.
    (
        'expression = "q = x + y\\nf = q * x"\nvalues = { x = 3, y = -4 }\n',
        "dq = 3\ndx = -1\n",
        "dx",
        "fork_overwritten_first",
    ),
    # max sends its gradient to both: f = max(x, y)·z at 2, 1, 3: df/dy = 3 (right: 0).
    (
        'expression = "m = max(x, y)\\nf = m * z"\nvalues = { x = 2, y = 1, z = 3 }\n',
        "dm = 3\ndy = 3\n",
        "dy",
        "max_routes_to_both",
    ),
    # max routed to the smaller input: df/dx = 0 (right: 3).
    (
        'expression = "m = max(x, y)\\nf = m * z"\nvalues = { x = 2, y = 1, z = 3 }\n',
        "dm = 3\ndx = 0\n",
        "dx",
        "max_routes_to_the_other",
    ),
    # σ′ at the input: s = σ(z), z = 0.5: z(1 − z) = 0.25 (right: σ(0.5)(1 − σ(0.5)) =
    # 0.6225·0.3775 = 0.2350).
    (
        'expression = "z = w * x\\ns = sigmoid(z)"\nvalues = { w = 1, x = 0.5 }\n',
        "ds = 1\ndz = 0.25\n",
        "dz",
        "sigmoid_derivative_at_input",
    ),
    # σ′ written as σ: 0.62 (σ(0.5) = 0.6225).
    (
        'expression = "z = w * x\\ns = sigmoid(z)"\nvalues = { w = 1, x = 0.5 }\n',
        "ds = 1\ndz = 0.62\n",
        "dz",
        "sigmoid_derivative_as_output",
    ),
]


@pytest.mark.parametrize(("head", "answers", "where", "mistake"), PLANTED)
def test_each_planted_mistake_is_named(
    tmp_path: Path, head: str, answers: str, where: str, mistake: str
) -> None:
    m = marks(sheet(tmp_path, head, answers))
    assert m[where] == ("wrong", mistake), m


def test_sigma_model_numbers_are_what_the_comment_says() -> None:
    # The planted σ numbers above, worked again with math (not glassnet).
    s = 1 / (1 + math.exp(-0.5))
    assert round(s, 4) == 0.6225 and round(s * (1 - s), 4) == 0.2350


def test_check_command_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sheet(tmp_path, CS231N, "q = 3\ndz = -4\n")
    assert cli.main(["check", path, "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)["entries"]}
    assert entries["q"]["verdict"] == "ok"
    assert entries["dz"]["mistake"] == "multiply_not_swapped" and entries["dz"]["right"] == 3.0
    assert cli.main(["check", path]) == 0
    assert "multiply_not_swapped" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answers", "words"),
    [
        ("", ["[answers]"]),
        ("w = 3\n", ["'w'", "answers.w"]),
        ('q = "three"\n', ["answers.q"]),
    ],
)
def test_bad_circuit_sheets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], answers: str, words: list[str]
) -> None:
    path = sheet(tmp_path, CS231N, answers)
    assert cli.main(["check", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for w in words:
        assert w in err, err


def test_an_ambiguous_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = 'expression = "dx = x * 2\\nf = dx + x"\nvalues = { x = 1 }\n'
    assert cli.main(["check", sheet(tmp_path, head, "dx = 2\n")]) == 2
    assert "ambiguous" in capsys.readouterr().err


# -- exercises -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_gates", "gates"),
    [(4, None), (6, None), (8, None), (5, ["add", "mul", "max"]), (6, ["mul", "sigmoid", "sub"])],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_generated_exercise_key_marks_itself_ok(
    tmp_path: Path, n_gates: int, gates: list[str] | None, seed: int
) -> None:
    from glassnet.check.circuit import circuit_exercise

    ex = circuit_exercise(n_gates, gates, seed=seed)
    # The blank worksheet with the key's lines put under [answers].
    path = tmp_path / "key.toml"
    path.write_text(ex.worksheet_text + "\n".join(ex.key_lines) + "\n", encoding="utf-8")
    entries = mark_circuit(load_circuit_sheet(str(path)))
    assert len(entries) == len(ex.key_lines)
    assert all(e.verdict == "ok" for e in entries)
    circuit = load_circuit_sheet(str(path)).expression.circuit
    assert len(circuit.gates()) == n_gates
    if gates is not None:  # the mix asked for, and only it
        gates_of = [circuit.nodes[n].gate for n in circuit.gates()]
        # A gate asked for by its registered name or by the function it is called as.
        kinds = {g.name for g in gates_of if g} | {g.function for g in gates_of if g}
        assert all((g.name in gates) or (g.function in gates) for g in gates_of if g), kinds
    assert circuit.forks()  # the chain rule's sum is part of every exercise


def test_exercise_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ex"
    assert cli.main(["exercise", "--graph", "5", "-o", str(out)]) == 0
    assert (out / "answers.md").read_text(encoding="utf-8").startswith("# Answer key")
    capsys.readouterr()
    # The blank worksheet, checked as it comes, says it has no answers yet.
    assert cli.main(["check", str(out / "worksheet.toml")]) == 2
    assert "[answers]" in capsys.readouterr().err
    for bad in (["--gates", "add,foo"], ["--graph", "0"], ["--assignment", "hw1"]):
        argv = ["exercise", "--graph", "5", "-o", str(tmp_path / "ex2"), *bad]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
    assert not (tmp_path / "ex2").exists()


@pytest.mark.parametrize("suffix", [".md", ".html"])
def test_check_writes_a_report_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    path = sheet(tmp_path, CS231N, "q = 3\ndz = -4\n")
    out = tmp_path / f"marks{suffix}"
    assert cli.main(["check", path, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "multiply_not_swapped" in text and "1 of 2 ok" in text
    if suffix == ".md":
        assert "| dz | **-4** |" in text  # the wrong number stressed, not by colour alone
    else:
        assert text.lstrip().lower().startswith("<!doctype html") and "<tr class='wrong'>" in text
    capsys.readouterr()
    assert cli.main(["check", path, "-o", str(tmp_path / "marks.pdf")]) == 2
    assert cli.main(["check", path, "--rtol", "0.1"]) == 2


def test_a_roster_gets_one_circuit_per_student(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = tmp_path / "students.csv"
    roster.write_text("id,name\nanna,Anna\nben,Ben\ncleo,Cleo\n", encoding="utf-8")
    argv = ["exercise", "--graph", "5", "--roster", str(roster), "--assignment", "hw2"]
    assert cli.main([*argv, "-o", str(tmp_path / "a")]) == 0
    assert cli.main([*argv, "-o", str(tmp_path / "b")]) == 0
    sheets = {
        s: (tmp_path / "a" / s / "worksheet.toml").read_text(encoding="utf-8")
        for s in ("anna", "ben", "cleo")
    }
    assert len(set(sheets.values())) == 3  # a variant each
    for s, text in sheets.items():  # made again from the same roster and name: the same
        assert (tmp_path / "b" / s / "worksheet.toml").read_text(encoding="utf-8") == text
        assert (tmp_path / "a" / s / "answers.md").is_file()


def test_a_hand_mode_sheet_is_marked_on_rounded_values(tmp_path: Path) -> None:
    """round = 2, by hand: q = 1/3 → 0.33, f = 0.33·3 = 0.99; df/dz = q = 0.33;
    df/dx = 3·(1/3 → 0.33) = 0.99; df/dy = 3·(−1/9 → −0.11) = −0.33.  A student who
    writes f = 1.00 (the exact value) did not work in hand mode: wrong."""
    head = 'expression = "q = x / y\\nf = q * z"\nvalues = { x = 1, y = 3, z = 3 }\nround = 2\n'
    m = marks(sheet(tmp_path, head, "q = 0.33\nf = 0.99\ndz = 0.33\ndx = 0.99\ndy = -0.33\n"))
    assert all(v == ("ok", None) for v in m.values()), m
    assert marks(sheet(tmp_path, head, "q = 0.33\nf = 1.00\n"))["f"][0] == "wrong"
