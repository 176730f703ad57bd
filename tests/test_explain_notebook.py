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


# -- a CNN's page (conv2d, pooling, flatten, dense): each layer's own NumPy code --------


def _cnn(*, stride: int, padding: int, c: int, pool: str, pool_stride: int, batch: int, seed: int):
    """conv (2×2, first: no input gradient) → conv under test (3×3 with padding, 2×2
    without) → pool 2×2 → flatten → dense softmax of 3, random numbers, a 7×7 input."""
    from glassnet.spec import parse_spec
    from glassnet.toml_writer import to_toml

    rng = np.random.default_rng(seed)
    k = 3 if padding else 2
    h = 6  # after the first 2×2 convolution
    oh = (h + 2 * padding - k) // stride + 1
    ph = (oh - 2) // pool_stride + 1
    data = {
        "loss": "cross_entropy",
        "lr": 0.1,
        "input": np.round(rng.uniform(-1, 1, (batch, c, h + 1, h + 1)), 2).tolist(),
        "target": np.eye(3)[rng.integers(0, 3, batch)].tolist(),
        "layers": [
            {
                "type": "conv2d",
                "weights": np.round(rng.uniform(-1, 1, (c, c, 2, 2)), 2).tolist(),
                "bias": np.round(rng.uniform(-0.5, 0.5, c), 2).tolist(),
                "activation": "tanh",
            },
            {
                "type": "conv2d",
                "weights": np.round(rng.uniform(-1, 1, (c, c, k, k)), 2).tolist(),
                "bias": np.round(rng.uniform(-0.5, 0.5, c), 2).tolist(),
                "stride": stride,
                "padding": padding,
                "activation": "relu",
            },
            {"type": pool, "size": 2, "stride": pool_stride},
            {"type": "flatten"},
            {
                "weights": np.round(rng.uniform(-0.3, 0.3, (c * ph * ph, 3)), 2).tolist(),
                "activation": "softmax",
            },
        ],
    }
    return parse_spec(to_toml(data), "cnn.toml")


#: (stride, padding, channels, pooling, pool stride, batch, hand mode's K): stride 1 and
#: 2, padding 0 and 1, 1–2 channels, max and average pooling (overlapping windows too),
#: batch 1 and 2, plain and hand mode.
_CNN_CASES = [
    (1, 0, 1, "max_pool2d", 2, 1, None),
    (2, 1, 2, "avg_pool2d", 2, 2, None),
    (1, 1, 2, "max_pool2d", 1, 2, 3),
    (2, 0, 1, "avg_pool2d", 1, 1, 2),
    (1, 1, 1, "avg_pool2d", 2, 2, None),
    (2, 1, 2, "max_pool2d", 2, 1, 4),
]


def _norm_trace(round_to: int | None):
    """dense → batch norm → dropout (a given mask) → layer norm → dense softmax, a batch
    of 3 (the other layer types a page of several types has)."""
    from glassnet.spec import parse_spec
    from glassnet.toml_writer import to_toml

    rng = np.random.default_rng(11)
    data = {
        "loss": "cross_entropy",
        "lr": 0.5,
        "input": rng.normal(size=(3, 3)).round(2).tolist(),
        "target": [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
        "layers": [
            {"weights": rng.normal(size=(3, 4)).round(2).tolist(), "activation": "tanh"},
            {"type": "batch_norm", "activation": "relu"},
            {"type": "dropout", "p": 0.25, "mask": [[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]]},
            {"type": "layer_norm", "activation": "sigmoid"},
            {"weights": rng.normal(size=(4, 2)).round(2).tolist(), "activation": "softmax"},
        ],
    }
    return parse_spec(to_toml(data), "norm.toml").trace(round_to=round_to)


def _cnn_traces():
    out = []
    for i, (st, pad, c, pool, pst, batch, K) in enumerate(_CNN_CASES):
        spec = _cnn(stride=st, padding=pad, c=c, pool=pool, pool_stride=pst, batch=batch, seed=i)
        out.append(spec.trace(round_to=K))
    out.append(gn.load_spec("conv").trace())  # the built-in example, as `explain conv` has it
    out += [_norm_trace(None), _norm_trace(3)]
    return out


def _checked_names(trace) -> list[str]:
    """Every quantity of the step by the name the notebook checks it under: the input,
    every recorded quantity of every layer (z3, dW2, W2_new, argmax3), the loss."""
    names = ["x", "loss terms", "E"]
    for lt in trace.layers:
        for kind in lt.kinds:
            base = kind.removesuffix("_new")
            names.append(f"{base}{lt.index}" + ("_new" if kind != base else ""))
    return names


def _combined(texts: list[str], prelude: list[str] | None = None, upto: list[str] | None = None):
    """One notebook running several notebooks' code cells one after another in one kernel
    (a kernel start is slow), each after ``%reset -f`` (nothing left from the one before)
    and a printed marker; ``prelude[i]``: a code cell put after notebook i's first code
    cell (its setup); ``upto[i]``: notebook i stops after the cell that checks it."""
    combined = nbformat.v4.new_notebook()
    combined.metadata = nbformat.reads(texts[0], as_version=4).metadata
    for i, text in enumerate(texts):
        combined.cells.append(nbformat.v4.new_code_cell(f'%reset -f\nprint("=== notebook {i}")'))
        cells = [c for c in nbformat.reads(text, as_version=4).cells if c.cell_type == "code"]
        if prelude is not None:
            cells.insert(1, nbformat.v4.new_code_cell(prelude[i]))
        if upto is not None:
            # a changed copy runs as one cell (a cell costs the kernel a round trip),
            # stopping at its first error
            last = next(n for n, c in enumerate(cells) if f'same("{upto[i]}"' in c.source)
            cells = [nbformat.v4.new_code_cell("\n\n".join(c.source for c in cells[: last + 1]))]
        combined.cells += cells
    return combined


def test_layer_notebooks_recompute_and_check_every_quantity(kernel: str, tmp_path: Path) -> None:
    """Each layer's code (conv2d's loops, pooling's windows, flatten, dense; batch and
    layer norm, dropout) recomputes its quantities from the definition and every one the
    trace recorded is checked."""
    traces = _cnn_traces()
    texts = [explain(t, format="ipynb") for t in traces]
    for text in texts:  # the layers' code, not glassnet's rules, does the maths
        code = "\n".join(
            c.source for c in nbformat.reads(text, as_version=4).cells if c.cell_type == "code"
        )
        assert "conv_forward" not in code and ".predict(" not in code and "r(" in code
    nb = _combined(texts)
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    parts = _outputs(nb).split("=== notebook ")[1:]
    assert len(parts) == len(traces)
    for trace, part in zip(traces, parts, strict=True):
        checked = [
            line.split(": recomputed")[0] for line in part.splitlines() if ": recomputed" in line
        ]
        expected = _checked_names(trace)
        # each recorded quantity checked exactly once, nothing else but the parameters
        # of the network the step was applied to
        assert sorted(n for n in checked if not n.endswith("after the step")) == sorted(expected)
        n_params = sum(len(lt.layer.params) for lt in trace.layers)
        assert len(checked) == len(expected) + n_params
        assert len(expected) >= 30
        assert "every value of the derivation reproduced" in part


def test_layer_notebook_fails_on_a_changed_recorded_number_with_its_name(
    kernel: str, tmp_path: Path
) -> None:
    """The checks are real: a copy of the notebook whose recorded value of one quantity
    is changed (a line added after the setup cell of the test's copy) stops at that
    quantity's check, named — for every quantity of every layer of a max-pooling network
    (conv2d twice, max pooling, flatten, dense) in hand mode, average pooling's, batch
    normalisation's and dropout's (layer normalisation's code is batch norm's, per
    sample)."""
    traces = _cnn_traces()
    # every layer of the max-pooling network in hand mode; the average pooling (layer 3)
    # of a plain one
    runs = [(traces[5], (1, 2, 3, 4, 5)), (traces[1], (3,)), (traces[8], (2, 3))]
    texts, preludes, wanted = [], [], []
    for trace, layers in runs:
        K = trace.round_to
        step = "1e-6 * (1 + abs(v.flat[0]))" if K is None else f"3 * 10.0**-{K}"
        text = explain(trace, format="ipynb")
        names = iter(_checked_names(trace)[3:])
        for lt in trace.layers:
            for kind in lt.kinds:
                name = next(names)
                if lt.index not in layers:
                    continue
                texts.append(text)
                wanted.append(name)
                preludes.append(
                    f'v = trace.layer({lt.index}).values["{kind}"].copy()\n'
                    f'v.flat[0] += 1 if v.dtype.kind in "iu" else {step}\n'
                    f'trace.layer({lt.index}).values["{kind}"] = v'
                )
    assert len(wanted) == 38 + 2 + 19 + 3
    nb = _combined(texts, preludes, wanted)
    client = nbclient.NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=300,
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    firsts: list[tuple[str, str]] = []
    seen = -1
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream" and "=== notebook " in o.get("text", ""):
                seen += 1
            if o.get("output_type") == "error" and len(firsts) == seen:
                firsts.append((o["ename"], o["evalue"]))
    assert firsts == [("AssertionError", name) for name in wanted]
