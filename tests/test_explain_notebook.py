"""The notebook: valid per nbformat, its Markdown numbers are the trace's, and it runs
top to bottom (nbclient, a python3 kernel of this interpreter), its code cells
recomputing every value and finding the trace's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.explain import explain
from glassnet.layers import Dense

from _explain_parse import Resolver, check_blocks, markdown_blocks, shortcut_values

nbformat = pytest.importorskip("nbformat", reason="the explain extra (nbformat) is needed")
nbclient = pytest.importorskip("nbclient", reason="the explain extra (nbclient) is needed")
pytest.importorskip("ipykernel", reason="the explain extra (ipykernel) is needed")


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running this very interpreter (which imports glassnet)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "glassnet-test"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "glassnet test",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "glassnet-test"


def _run(text: str, kernel: str, cwd: Path):
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb


def _outputs(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            assert o.get("output_type") != "error", o
            out.append(o.get("text", ""))
    return "".join(out)


def _markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_seed_notebook_validates_matches_and_runs(kernel: str, tmp_path: Path) -> None:
    trace = gn.load_spec("seed").trace()
    text = explain(trace, format="ipynb")
    nb = _run(text, kernel, tmp_path)
    report = check_blocks(markdown_blocks(_markdown(nb)), Resolver(trace), digits=4, decimals=None)
    assert report.checked > 300
    out = _outputs(nb)
    for name in ["z1", "a3", "loss terms", "delta3", "dW1", "W3_new", "dL_da2"]:
        assert f"{name}: recomputed, equal to the trace" in out
    assert "every value of the derivation reproduced" in out


def test_hand_mode_batch_notebook_runs(kernel: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    net = gn.Network(
        [
            Dense(
                rng.normal(size=(2, 3)),
                rng.normal(size=3),
                gn.get_activation("leaky_relu", slope=0.1),
            ),
            Dense(rng.normal(size=(3, 2)), rng.normal(size=2), "softmax"),
        ]
    )
    trace = gn.trace_step(
        net, rng.normal(size=(3, 2)), np.eye(2)[[0, 1, 1]], loss="cross_entropy", lr=0.5, round_to=4
    )
    nb = _run(explain(trace, format="ipynb"), kernel, tmp_path)
    check_blocks(
        markdown_blocks(_markdown(nb)),
        Resolver(trace),
        digits=None,
        decimals=4,
        special=shortcut_values(trace),
    )
    assert "every value of the derivation reproduced" in _outputs(nb)


@pytest.mark.parametrize("round_to", [None, 4])
def test_columns_notebook_computes_in_columns_and_reproduces_the_trace(
    kernel: str, tmp_path: Path, round_to
) -> None:
    """With --notation columns the code multiplies as the page writes it, W[to][from]
    times each sample as a column, and still reproduces every recorded value."""
    rng = np.random.default_rng(5)
    net = gn.Network(
        [
            Dense(rng.normal(size=(3, 4)), rng.normal(size=4), "tanh"),
            Dense(rng.normal(size=(4, 2)), rng.normal(size=2), "softmax"),
        ]
    )
    x, y = rng.normal(size=(2, 3)), np.eye(2)[[0, 1]]
    trace = gn.trace_step(net, x, y, loss="cross_entropy", lr=0.5, round_to=round_to)
    nb = _run(explain(trace, format="ipynb", notation="columns"), kernel, tmp_path)
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "W1 @ a0.T" in code and "delta2.T @ a1" in code and "net.layers[0].W.T" in code
    assert "every value of the derivation reproduced" in _outputs(nb)
