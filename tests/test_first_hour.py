"""Issue 23, the first hour: what a new user meets — misspelled options, an ``-o`` no
writer takes, a missing extra, an interrupted run (Ctrl-C or SIGTERM) and its resume,
and the docs' own examples."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet import cli

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- did you mean ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv,suggestion",
    [
        (["trian", "--data", "iris"], "did you mean train?"),
        (["train", "--data", "iris", "--epohcs", "3"], "did you mean --epochs?"),
        (["explain", "seed", "--notaton", "rows"], "did you mean --notation?"),
        (["train", "--data", "iris", "--optimizer", "adma"], "did you mean adam?"),
    ],
)
def test_a_misspelled_option_or_command_gets_a_suggestion(capsys, argv, suggestion):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and suggestion in err and err.count("\n") == 1


def test_a_misspelled_bundled_data_set_gets_a_suggestion(tmp_path, capsys):
    code = cli.main(["train", "--data", "irsi", "--out", str(tmp_path / "m.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "did you mean iris?" in err and err.count("\n") == 1


def test_nothing_close_gets_no_guess(capsys):
    with pytest.raises(SystemExit):
        cli.main(["seed", "--zzzzzz"])
    assert "did you mean" not in capsys.readouterr().err


# -- -o that no writer takes -----------------------------------------------------------------
def test_check_o_writes_by_its_suffix_or_refuses(tmp_path, capsys):
    code, _out, err = run(capsys, "check", "seed", "-o", tmp_path / "marks.html")
    assert code == 0, err
    assert (tmp_path / "marks.html").read_text().lstrip().lower().startswith("<!doctype html")
    line = one_error_line(*run(capsys, "check", "seed", "-o", tmp_path / "marks.pdf")[::2])
    assert ".md or .html" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marks.html"]


def test_explain_refuses_an_o_it_cannot_write(tmp_path, capsys):
    line = one_error_line(*run(capsys, "explain", "seed", "-o", tmp_path / "seed.pdf")[::2])
    assert "seed.pdf" in line and ".html" in line and "--format" in line
    assert list(tmp_path.iterdir()) == []


# -- extras ----------------------------------------------------------------------------------
def _without(monkeypatch, module: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == module else real(n, *a)
    )


def test_plot_without_matplotlib_is_refused_before_training(tmp_path, capsys, monkeypatch):
    pytest.importorskip("sklearn", reason="the bundled data sets come from scikit-learn")
    _without(monkeypatch, "matplotlib")
    argv = ["train", "--data", "iris", "--epochs", "2", "--no-progress"]
    argv += ["--out", tmp_path / "m.npz", "--plot", tmp_path / "c.png"]
    line = one_error_line(*run(capsys, *argv)[::2])
    assert "matplotlib" in line and "pip install -e '" in line and "[train]'" in line
    assert list(tmp_path.iterdir()) == []  # no model, no checkpoint: nothing was trained


def test_the_install_hint_names_this_checkout():
    from glassnet.extras import install_hint

    hint = install_hint("studio")
    # an editable install from a checkout: the path (or .) with the extra, never the index
    assert re.fullmatch(r"pip install -e '(\.|/.+)\[studio\]'", hint), hint
    where = hint.split("'")[1].removesuffix("[studio]")
    assert (Path.cwd() / where / "pyproject.toml").is_file()


# -- interrupted runs --------------------------------------------------------------------------
def _slow_data(path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 20))
    y = (X[:, :3].sum(axis=1) > 0).astype(int)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*(f"x{j}" for j in range(20)), "label"])
        w.writerows([[*(f"{v:.4f}" for v in r), t] for r, t in zip(X, y, strict=True)])


def _glassnet(*argv, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "glassnet", *map(str, argv)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_stops_like_ctrl_c_and_resume_writes_the_runs_own_model(tmp_path):
    _slow_data(tmp_path / "d.csv")
    (tmp_path / "model.npz").write_bytes(b"another run's model, not to be touched")
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    proc = _glassnet(
        "train", "--data", tmp_path / "d.csv", "--layers", "256,256", "--epochs", "400",
        "--batch-size", "16", "--no-progress", "--out", run_dir / "dig.npz", cwd=tmp_path,
    )  # fmt: skip
    ckpt = run_dir / "dig.ckpt.npz"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ckpt.exists(), proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"--resume {ckpt}" in err
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    done = gn.load(ckpt).train_state.epoch
    assert 1 <= done < 400
    # resume from the folder where an unrelated model.npz lies: it writes runs/dig.npz
    proc = _glassnet("train", "--resume", ckpt, "--epochs", str(done + 2), cwd=tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert (tmp_path / "model.npz").read_bytes() == b"another run's model, not to be touched"
    assert gn.load(run_dir / "dig.npz").train_state.epoch == done + 2
    # progress counted across the whole run: the first line after resuming is done+1 of done+2
    progress = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert progress[0].split()[1] == f"{done + 1}/{done + 2}", progress


def test_resume_refuses_to_write_over_another_runs_model(tmp_path, capsys):
    pytest.importorskip("sklearn", reason="the bundled data sets come from scikit-learn")
    out = tmp_path / "dig.npz"
    argv = ["train", "--data", "iris", "--epochs", "2", "--no-progress", "--json"]
    assert run(capsys, *argv, "--out", out, "--checkpoint", tmp_path / "c.npz")[0] == 0
    # another run's model where this run's should go
    assert run(capsys, *argv, "--seed", "3", "--out", tmp_path / "other.npz")[0] == 0
    os.replace(tmp_path / "other.npz", out)
    before = out.read_bytes()
    line = one_error_line(
        *run(capsys, "train", "--resume", tmp_path / "c.npz", "--epochs", "4")[::2]
    )
    assert "another run" in line and "--out" in line and str(out) in line
    assert out.read_bytes() == before


# -- every TOML example in the docs loads ------------------------------------------------------
def _toml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for doc in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        text = doc.read_text()
        for i, block in enumerate(re.findall(r"```toml\n(.*?)```", text, flags=re.S)):
            blocks.append((f"{doc.name}#{i + 1}", block))
    return blocks


@pytest.mark.parametrize("where,block", _toml_blocks(), ids=[w for w, _ in _toml_blocks()])
def test_every_toml_example_in_the_docs_loads(where, block, tmp_path, monkeypatch):
    import tomllib

    data = tomllib.loads(block)  # it is TOML at all
    path = tmp_path / "example.toml"
    if "points" in data:  # a rubric (docs/check.md): it loads; the one shown is the default
        from glassnet.check.rubric import DEFAULT, parse_rubric

        rubric = parse_rubric(block, where)
        assert (rubric.stages, rubric.follows, rubric.penalty, rubric.total) == (
            DEFAULT.stages,
            DEFAULT.follows,
            DEFAULT.penalty,
            DEFAULT.total,
        )
        assert rubric.penalties == DEFAULT.penalties and rubric.required == DEFAULT.required
        return
    if "expression" in data:  # an expression's circuit (docs/graphs.md), or its worksheet
        path.write_text(block)
        from glassnet.check.circuit import load_circuit_sheet, mark_circuit
        from glassnet.graphs import load_expression

        if "answers" in data:
            assert mark_circuit(load_circuit_sheet(str(path)))
        else:
            loaded = load_expression(str(path))
            assert np.isfinite(loaded.circuit.trace(loaded.values).value(loaded.circuit.output))
        return
    if "loss" not in data and "spec" not in data:
        # a fragment (some [[layers]] to add to a spec): put it after a minimal head with
        # an input as wide and as many rows as its own numbers say (gamma, mask), and a
        # dense layer first (a batch_norm first layer is an internal error on main today:
        # KeyError ('dx_hat', 1) in trace.record — reported, not this test's subject)
        layers = data["layers"]
        width = next(len(x["gamma"]) for x in layers if "gamma" in x)
        rows = next((len(x["mask"]) for x in layers if "mask" in x), 2)
        grid = np.random.default_rng(0).normal(size=(rows, width)).round(2).tolist()
        block = (
            f'loss = "mse"\nlr = 0.1\ninput = {grid}\ntarget = {[[0.0] * width] * rows}\n'
            f"[[layers]]\nunits = {width}\n\n" + block
        )
    path.write_text(block)
    monkeypatch.chdir(tmp_path)
    if "values" in data:  # a worksheet: check marks it
        from glassnet.check import check_worksheet

        report = check_worksheet(str(path))
        assert report is not None
        return
    if "model" in data:  # a spec on a model file: make the file it names
        model = gn.mlp([len(data["input"]), 4, len(data["target"])], seed=0)
        if str(data["model"]).endswith(".safetensors"):
            pytest.importorskip("safetensors", reason="safetensors is not installed")
            pytest.importorskip("torch", reason="PyTorch is not installed")
            from glassnet.interop import save_torch_model

            save_torch_model(model, tmp_path / data["model"])
        else:
            model.save(tmp_path / data["model"])
    trace = gn.load_spec(str(path)).trace()
    assert np.isfinite(trace.loss)


# -- a glassnet that runs in a new shell -------------------------------------------------------
def test_scripts_glassnet_runs_the_checkouts_venv_from_any_folder(tmp_path):
    import shutil

    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "glassnet", checkout / "scripts" / "glassnet")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    wrapper = str(checkout / "scripts" / "glassnet")
    # not set up yet: one line saying how
    r = subprocess.run([wrapper, "seed"], cwd=elsewhere, capture_output=True, text=True)
    assert r.returncode == 2 and "scripts/seed.sh" in r.stderr
    # set up: the venv's glassnet gets the arguments as given (a stand-in records them)
    stub = checkout / ".venv" / "bin" / "glassnet"
    stub.parent.mkdir(parents=True)
    stub.write_text('#!/usr/bin/env bash\nprintf "%s|" "$@"\n')
    stub.chmod(0o755)
    r = subprocess.run(
        [wrapper, "explain", "seed", "-o", "a b.html"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},  # a new shell: no venv on PATH
    )
    assert r.returncode == 0 and r.stdout == "explain|seed|-o|a b.html|", r.stderr


def test_the_set_up_scripts_say_how_to_reach_glassnet_from_a_new_shell():
    for name in ("seed.sh", "test.sh"):
        text = (ROOT / "scripts" / name).read_text()
        assert "source $(pwd)/.venv/bin/activate" in text and "scripts/glassnet" in text


# -- the README's and start.md's commands, as written ---------------------------------------
#: Commands that cannot run as they stand, and why (each still checked to be a glassnet
#: command line argparse accepts, by --help on its sub-command).
NOT_RUN = {
    "studio": "starts a server and waits",
    "--resume": "needs a run interrupted first (tests/test_first_hour.py does that)",
}
#: Blank worksheets are for a person to fill in: checking one as it comes says so.
BLANK = ("check ex/worksheet.toml", "check hw1/ --", "--errata hw1/")


def _doc_commands(doc: Path) -> list[str]:
    """Every ``glassnet ...`` line of the doc's bash blocks, comments cut."""
    out, lang = [], None
    for line in doc.read_text().splitlines():
        if line.startswith("```"):
            lang = None if lang is not None else line[3:].strip()
            continue
        if lang in ("bash", "sh", "") and line.strip().startswith("glassnet "):
            out.append(re.split(r"\s+#", line.strip())[0].strip())
    return out


def _fixtures(folder: Path) -> None:
    """The files the docs' commands name: my_net.toml (docs/spec.md's example's layers
    with the README's 2-in, 2-out shape), people.csv / new_people.csv (a practitioner's
    messy CSV), rows.csv (digits rows), students.csv, canvas_export.csv, a filled-in
    worksheet as anna.toml and my_worksheet.toml, and docs/graphs.md's expression file
    and circuit worksheet as cs231n.toml and circuit_sheet.toml."""
    (folder / "my_net.toml").write_text(
        'loss = "cross_entropy"\nlr = 0.1\ninput = [[0.5, -1.0]]\ntarget = [[1.0, 0.0]]\n'
        '[[layers]]\nweights = [[0.2, -0.4, 0.1], [0.7, 0.3, -0.5]]\nactivation = "tanh"\n'
        '[[layers]]\nunits = 2\nactivation = "softmax"\n'
    )
    rng = np.random.default_rng(0)
    for name, n in (("people.csv", 120), ("new_people.csv", 20)):
        with (folder / name).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "age", "city", "income", "bought"])
            for i in range(n):
                age, city = rng.normal(40, 12), ("paris", "rome", "oslo")[i % 3]
                income = rng.normal(3000, 800)
                s = (age - 40) / 12 + (city == "oslo") + (income - 3000) / 800
                w.writerow([f"u{i:04d}", "" if i % 17 == 5 else f"{age:.1f}", city,
                            f"{income:.2f}", "yes" if s > 0 else "no"])  # fmt: skip
    (folder / "students.csv").write_text("id,name\nanna,Anna\nben,Ben\n")
    # a Canvas gradebook export, as Canvas writes it (tests/data/lms/README.md)
    lms = ROOT / "tests" / "data" / "lms" / "canvas_export.csv"
    (folder / "canvas_export.csv").write_bytes(lms.read_bytes())
    from sklearn.datasets import load_digits  # rows.csv: new rows for the README's digits

    digits = load_digits()
    with (folder / "rows.csv").open("w", newline="") as f:
        csv.writer(f).writerows([digits.feature_names, *digits.data[:5].tolist()])
    # a filled-in worksheet: docs/check.md's own example (the seed's step, some numbers)
    sheet = re.findall(r"```toml\n(.*?)```", (ROOT / "docs" / "check.md").read_text(), re.S)[0]
    for name in ("anna.toml", "my_worksheet.toml"):
        (folder / name).write_text(sheet)
    # an expression file and a circuit worksheet: docs/graphs.md's own examples
    circuit = re.findall(r"```toml\n(.*?)```", (ROOT / "docs" / "graphs.md").read_text(), re.S)
    (folder / "cs231n.toml").write_text(next(b for b in circuit if "[answers]" not in b))
    (folder / "circuit_sheet.toml").write_text(next(b for b in circuit if "[answers]" in b))


@pytest.mark.parametrize("doc", ["README.md", "docs/start.md"])
def test_the_docs_commands_run_as_written(doc, tmp_path):
    pytest.importorskip("sklearn", reason="the bundled data sets come from scikit-learn")
    shim = tmp_path / "bin" / "glassnet"  # glassnet on PATH, as after `source .venv/...`
    shim.parent.mkdir()
    shim.write_text(f'#!/usr/bin/env bash\nexec {sys.executable} -m glassnet "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PATH": f"{shim.parent}:/usr/bin:/bin"}
    work = tmp_path / "work"
    work.mkdir()
    _fixtures(work)
    ran = []
    for command in _doc_commands(ROOT / doc):
        skip = next((why for key, why in NOT_RUN.items() if key in command), None)
        if skip:
            sub = command.split()[1]
            r = subprocess.run(["glassnet", sub, "--help"], cwd=work, env=env, capture_output=True)
            assert r.returncode == 0, command
            continue
        r = subprocess.run(
            ["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=300
        )
        if any(b in command for b in BLANK):  # nothing filled in yet: one line that says so
            assert r.returncode == 2 or "could not be read" in r.stdout + r.stderr, command
            assert "values" in r.stderr, (command, r.stderr)
            continue
        assert r.returncode == 0, (command, r.stderr[-500:])
        ran.append(command)
    assert len(ran) >= 5, ran


def test_a_notebook_without_nbformat_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    _without(monkeypatch, "nbformat")
    line = one_error_line(*run(capsys, "explain", "seed", "-o", tmp_path / "seed.ipynb")[::2])
    assert "nbformat" in line and "[explain]'" in line
    assert list(tmp_path.iterdir()) == []
