"""Several steps in a row, the forward pass after the update, and weights written the
other way round (W[to][from]) or with the bias as row 0: the engine's numbers against
PyTorch float64 (a plain loop of forward, loss, backward, SGD), and worksheets in those
forms marked like the default form."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.check import check, errata, parse_worksheet
from glassnet.spec import parse_spec

from check_reference import random_network

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

CASES = [
    (("sigmoid", "sigmoid"), "binary_cross_entropy"),
    (("tanh", "identity"), "half_sse"),
    (("relu", "softmax"), "cross_entropy"),
    (("sigmoid", "identity"), "mse"),
]
LR = 0.5


def _torch_steps(Ws, bs, acts, x, y, loss, steps):
    """``steps`` SGD steps and one more forward pass, in PyTorch float64: per step the
    z, a, loss, dW and the updated W, b; and the loss and output after them."""
    W = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in Ws]
    b = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in bs]
    X, Y = torch.tensor(x), torch.tensor(y)
    f = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "identity": lambda t: t,
        "softmax": lambda t: torch.softmax(t, dim=1),
    }

    def forward():
        a, zs, as_ = X, [], []
        for Wl, bl, act in zip(W, b, acts, strict=True):
            z = a @ Wl + bl
            a = f[act](z)
            zs.append(z)
            as_.append(a)
        p = a
        if loss == "binary_cross_entropy":
            terms = -(Y * torch.log(p) + (1 - Y) * torch.log(1 - p))
        elif loss == "cross_entropy":
            terms = -Y * torch.log(p)
        elif loss == "half_sse":
            terms = 0.5 * (Y - p) ** 2
        else:
            terms = (p - Y) ** 2 / p.shape[1]
        return zs, as_, terms.sum() / X.shape[0]

    out = []
    for _ in range(steps):
        zs, as_, L = forward()
        for t in (*W, *b):
            t.grad = None
        L.backward()
        rec = {"loss": float(L.detach())}
        for i in range(len(W)):
            rec[f"z{i + 1}"] = zs[i].detach().numpy()
            rec[f"a{i + 1}"] = as_[i].detach().numpy()
            rec[f"dW{i + 1}"] = W[i].grad.numpy().copy()
        with torch.no_grad():
            for t in (*W, *b):
                t -= LR * t.grad
        for i in range(len(W)):
            rec[f"W{i + 1}_new"] = W[i].detach().numpy().copy()
            rec[f"b{i + 1}_new"] = b[i].detach().numpy().copy()
        out.append(rec)
    zs, as_, L = forward()
    after = {"loss": float(L.detach()), "output": as_[-1].detach().numpy()}
    after.update({f"z{i + 1}": z.detach().numpy() for i, z in enumerate(zs)})
    return out, after


def _mat(M) -> str:
    return "[" + ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in M) + "]"


def _vec(v) -> str:
    return "[" + ", ".join(repr(float(e)) for e in v) + "]"


def _spec_text(Ws, bs, acts, x, y, loss, *, extra="", layout="from_to", row0=False) -> str:
    lines = [f'loss = "{loss}"', f"lr = {LR}", f"input = {_mat(x)}", f"target = {_mat(y)}"]
    if extra:
        lines.append(extra)
    if layout != "from_to":
        lines.append(f'layout = "{layout}"')
    if row0:
        lines.append('bias = "row0"')
    for W, b, act in zip(Ws, bs, acts, strict=True):
        M = np.vstack([b, W]) if row0 else W
        M = M.T if layout == "to_from" else M
        lines += ["[[layers]]", f"weights = {_mat(M)}"]
        if not row0:
            lines.append(f"bias = {_vec(b)}")
        lines.append(f'activation = "{act}"')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("acts", "loss"), CASES)
def test_steps_and_after_match_pytorch(acts, loss):
    Ws, bs, x, y = random_network(3, batch=2, positive_last=acts[1] == "softmax")
    spec = parse_spec(_spec_text(Ws, bs, acts, x, y, loss, extra="steps = 3\nafter = true"))
    tr = spec.trace()
    ref, after = _torch_steps(Ws, bs, acts, x, y, loss, 3)
    assert len(tr.later) == 2 and tr.after is not None
    for t, r in zip([tr, *tr.later], ref, strict=True):
        assert t.loss == pytest.approx(r["loss"], rel=1e-12, abs=1e-14)
        for lt in t.layers:
            i = lt.index
            for mine, theirs in (
                (lt.z, f"z{i}"), (lt.a, f"a{i}"), (lt.dW, f"dW{i}"),
                (lt.W_new, f"W{i}_new"), (lt.b_new, f"b{i}_new"),
            ):  # fmt: skip
                np.testing.assert_allclose(mine, r[theirs], rtol=1e-10, atol=1e-12)
    assert tr.after.loss == pytest.approx(after["loss"], rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(tr.after.output, after["output"], rtol=1e-10, atol=1e-12)
    d = tr.to_dict()
    assert len(d["steps"]) == 2 and d["after"]["loss"] == tr.after.loss
    # the default spec's JSON has neither key
    plain = parse_spec(_spec_text(Ws, bs, acts, x, y, loss)).trace().to_dict()
    assert "steps" not in plain and "after" not in plain


def _line(name: str, v, digits=4) -> str:
    v = np.asarray(v)
    if v.ndim == 0:
        return f'"{name}" = {float(v):.{digits}f}'
    if v.ndim == 1:
        return f'"{name}" = [' + ", ".join(f"{e:.{digits}f}" for e in v) + "]"
    return (
        f'"{name}" = ['
        + ", ".join("[" + ", ".join(f"{e:.{digits}f}" for e in row) + "]" for row in v)
        + "]"
    )


@pytest.mark.parametrize(("acts", "loss"), CASES)
def test_later_steps_and_after_are_marked(acts, loss):
    """A sheet of PyTorch's numbers for steps 2, 3 and after, to 4 decimals, is all ok;
    a slip in W2_new of step 2 makes it wrong, and step 3 worked from it follows."""
    Ws, bs, x, y = random_network(4, positive_last=acts[1] == "softmax")
    text = _spec_text(Ws, bs, acts, x, y, loss, extra="steps = 3\nafter = true") + "[values]\n"
    ref, after = _torch_steps(Ws, bs, acts, x, y, loss, 3)
    lines = []
    for s, r in enumerate(ref, start=1):
        tag = "" if s == 1 else f"@step{s}"
        for name in ("z1", "a2", "W1_new", "W2_new", "b2_new"):
            v = r[name][0] if name[0] in "za" else r[name]
            lines.append(_line(name + tag, v))
    lines.append(_line("loss@after", after["loss"]))
    lines.append(_line("output@after", after["output"][0]))
    report = check(parse_worksheet(text + "\n".join(lines) + "\n", "steps.toml"))
    assert len(report.entries) > 40
    assert all(e.verdict == "ok" for e in report.entries), report.wrong()[:3]
    assert {e.name for e in report.entries} >= {"z1@step2", "W2_new@step3", "loss@after"}
    # The person's W2_new of step 2 slips; their step 3 starts from it.
    W2 = ref[1]["W2_new"].copy()
    W2[0, 0] += 0.5
    a1_3 = ref[2]["a1"]  # step 3's a1 does not depend on W2
    z2_3 = a1_3 @ W2 + ref[1]["b2_new"]
    slipped = [
        ln
        for ln in lines
        if not ln.startswith(
            ('"W2_new@step2"', '"z1@step3"', '"a2@step3"', '"W', '"b', '"loss@', '"output@')
        )
    ]
    slipped += [_line("W2_new@step2", W2), _line("z2@step3", z2_3[0])]
    report = check(parse_worksheet(text + "\n".join(slipped) + "\n", "slip.toml"))
    marks = {(e.name, e.index): e for e in report.entries}
    assert marks[("W2_new@step2", (0, 0))].verdict == "wrong"
    z2 = [e for e in report.entries if e.name == "z2@step3"]
    assert z2[0].verdict == "follows", z2[0]
    assert "your W2_new@step2[0, 0]" in z2[0].explanation


@pytest.mark.parametrize(("acts", "loss"), CASES[:3])
@pytest.mark.parametrize(
    ("layout", "row0"), [("to_from", False), ("from_to", True), ("to_from", True)]
)
def test_layouts_give_the_default_layouts_numbers_and_marks(acts, loss, layout, row0):
    Ws, bs, x, y = random_network(6, positive_last=acts[1] == "softmax")
    default = parse_spec(_spec_text(Ws, bs, acts, x, y, loss)).trace()
    other = parse_spec(_spec_text(Ws, bs, acts, x, y, loss, layout=layout, row0=row0)).trace()
    for a, b in zip(default.layers, other.layers, strict=True):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)
        np.testing.assert_array_equal(a.W_new, b.W_new)
    # The same worked numbers (PyTorch's, 4 decimals, one slip in dW2[0, 1]), written in
    # each layout: the same verdicts at the same places, reported in the layout written.
    ref, _ = _torch_steps(Ws, bs, acts, x, y, loss, 1)
    r = ref[0]
    dW2 = r["dW2"].copy()
    dW2[0, 1] += 0.3

    def sheet(layout_: str, row0_: bool) -> str:
        text = _spec_text(Ws, bs, acts, x, y, loss, layout=layout_, row0=row0_) + "[values]\n"
        mats = {"dW2": dW2, "W2_new": r["W2_new"], "W1_new": r["W1_new"]}
        biases = {"dW2": None, "W2_new": r["b2_new"], "W1_new": r["b1_new"]}
        out = [_line("z2", r["z2"][0])]
        for name, M in mats.items():
            if row0_ and biases[name] is not None:
                M = np.vstack([biases[name], M])
            out.append(_line(name, M.T if layout_ == "to_from" else M))
        return text + "\n".join(out) + "\n"

    base = check(parse_worksheet(sheet("from_to", False), "base.toml"))
    mine = check(parse_worksheet(sheet(layout, row0), "mine.toml"))

    def to_written(name: str, idx: tuple[int, ...]) -> tuple[int, ...]:
        if len(idx) != 2:
            return idx
        if row0 and name in ("W2_new", "W1_new"):
            idx = (idx[0] + 1, idx[1])
        return (idx[1], idx[0]) if layout == "to_from" else idx

    base_marks = {(e.name, to_written(e.name, e.index)): e.verdict for e in base.entries}
    mine_marks = {(e.name, e.index): e.verdict for e in mine.entries}
    for key, verdict in base_marks.items():
        assert mine_marks.get(key) == verdict, (key, verdict, mine_marks.get(key))
    wrong = [e for e in mine.entries if e.verdict == "wrong"]
    assert [(e.name, e.index) for e in wrong] == [("dW2", to_written("dW2", (0, 1)))]
    # explain's errata place each mark where the engine holds the number, whatever the
    # layout written: the same places as the default layout's sheet.
    assert set(errata(mine)) == set(errata(base)) == {("dW", 2, (0, 1))}
    if row0:  # the bias rows are marked too, under the matrix's name
        assert sum(e.name == "W2_new" for e in mine.entries) == r["W2_new"].size + r["b2_new"].size
