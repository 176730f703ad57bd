"""The step graph (glassnet.step): one definition of the step that trace and check walk.

The references here are PyTorch float64 autograd (every node the graph computes, on a
random network) and the graph's own structure checked against what it must be (inputs
come first; a changed value moves exactly what is computed from it).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from glassnet.activations import get_activation
from glassnet.check.steps import Context, Working
from glassnet.check.worksheet import parse_worksheet
from glassnet.losses import get_loss
from glassnet.step import LAYER_QUANTITIES, LEAVES, StepGraph, leaves_of, step_order

from helpers import HIDDEN


def _graph(acts=("tanh", "sigmoid", "softmax"), loss="binary_cross_entropy", lr=0.3):
    return StepGraph(tuple(get_activation(a) for a in acts), get_loss(loss), lr, True)


def _leaves(rng, sizes, batch):
    params = [
        (rng.normal(0, 0.8, size=(a, b)), rng.normal(0, 0.5, size=b))
        for a, b in itertools.pairwise(sizes)
    ]
    x = rng.normal(size=(batch, sizes[0]))
    y = rng.dirichlet(np.ones(sizes[-1]), size=batch)
    return leaves_of(params, x, y), params, x, y


def test_order_is_topological_and_complete():
    g = _graph()
    order = g.order()
    assert len(order) == len(set(order))
    seen: set = set()
    for key in order:
        assert all(i in seen for i in g.inputs(key)), f"{key} before its inputs"
        seen.add(key)
    computed = {k for k in order if k[0] not in LEAVES}
    want = {(k, lyr) for lyr in (1, 2, 3) for k in LAYER_QUANTITIES} | {
        ("loss_terms", 0),
        ("loss", 0),
    }
    assert computed == want
    # output is a_L under another name, not a node of its own
    assert g.canonical(("output", 0)) == ("a", 3)
    assert ("output", 0) not in order


def test_every_node_matches_torch_autograd_float64():
    torch = pytest.importorskip(
        "torch", reason="PyTorch is not installed (pip install torch==2.13.0)"
    )
    rng = np.random.default_rng(11)
    g = _graph()
    leaves, params, x, y = _leaves(rng, [3, 4, 4, 3], 2)
    values = g.evaluate(leaves)

    tW = [torch.tensor(W, requires_grad=True) for W, _ in params]
    tb = [torch.tensor(b, requires_grad=True) for _, b in params]
    fns = [torch.tanh, torch.sigmoid, lambda t: torch.softmax(t, dim=1)]
    a = torch.tensor(x)
    zs, as_ = [], []
    for W, b, f in zip(tW, tb, fns, strict=True):
        z = a @ W + b
        z.retain_grad()
        a = f(z)
        a.retain_grad()
        zs.append(z)
        as_.append(a)
    ty = torch.tensor(y)
    terms = -(ty * torch.log(a) + (1 - ty) * torch.log(1 - a))
    loss = terms.sum() / x.shape[0]
    loss.backward()
    np.testing.assert_allclose(values[("loss", 0)], loss.item(), rtol=1e-12)
    np.testing.assert_allclose(values[("loss_terms", 0)], terms.detach().numpy(), rtol=1e-12)
    for lyr in (1, 2, 3):
        i = lyr - 1
        for key, ref in (
            ("z", zs[i].detach()),
            ("a", as_[i].detach()),
            ("dL_da", as_[i].grad),
            ("delta", zs[i].grad),
            ("dW", tW[i].grad),
            ("db", tb[i].grad),
            ("W_new", tW[i].detach() - 0.3 * tW[i].grad),
            ("b_new", tb[i].detach() - 0.3 * tb[i].grad),
        ):
            np.testing.assert_allclose(
                values[(key, lyr)], ref.numpy(), rtol=1e-10, atol=1e-13, err_msg=f"{key}{lyr}"
            )


@pytest.mark.parametrize("seed", range(6))
def test_a_substituted_value_changes_exactly_what_is_downstream(seed):
    # Smooth activations (no dead units), so every dependency really moves.
    rng = np.random.default_rng(seed)
    g = _graph(acts=("tanh", "sigmoid", "softmax"))
    leaves, *_ = _leaves(rng, [3, 4, 5, 3], 2)
    base = g.evaluate(leaves)
    computed = [k for k in g.order() if k[0] not in LEAVES]
    key = computed[int(rng.integers(len(computed)))]
    wrong = base[key] + rng.normal(0, 0.1, size=np.shape(base[key]))
    moved = g.evaluate(leaves, given={key: wrong})
    changed = {k for k in g.order() if k != key and not np.array_equal(moved[k], base[k])}
    assert changed == g.downstream(key), key


def test_rounding_is_the_same_evaluation_wrapped():
    # Hand mode: the graph evaluated with every computed value rounded, against a plain
    # NumPy hand calculation of the same step rounded at each line.
    rng = np.random.default_rng(5)
    g = _graph(acts=("sigmoid", "softmax"), loss="cross_entropy", lr=0.5)
    leaves, _, x, y = _leaves(rng, [2, 3, 2], 1)
    y = np.array([[1.0, 0.0]])
    leaves[("y", 0)] = y

    def r(v):
        return np.round(v, 3)

    leaves = {k: (v if k[0] == "y" else r(v)) for k, v in leaves.items()}
    values = g.evaluate(leaves, each=r)
    (W1, b1), (W2, b2) = [(leaves[("W", i)], leaves[("b", i)]) for i in (1, 2)]
    x = leaves[("x", 0)]
    z1 = r(x @ W1 + b1)
    a1 = r(1 / (1 + np.exp(-z1)))
    z2 = r(a1 @ W2 + b2)
    e = np.exp(z2 - z2.max())
    a2 = r(e / e.sum())
    dL_da2 = r(-y / a2)
    J = a2[0][:, None] * (np.eye(2) - a2[0][None, :])
    da2 = r(J)
    delta2 = r(dL_da2 @ da2)
    np.testing.assert_array_equal(values[("z", 1)], z1)
    np.testing.assert_array_equal(values[("a", 1)], a1)
    np.testing.assert_array_equal(values[("a", 2)], a2)
    np.testing.assert_array_equal(values[("da_dz", 2)][0], da2)
    np.testing.assert_allclose(values[("delta", 2)], delta2, atol=1e-12)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_a_worksheet_built_from_a_trace_marks_every_value_ok(hidden):
    import glassnet as gn

    out = "softmax" if hidden != "softmax" else "sigmoid"
    loss = "cross_entropy" if out == "softmax" else "binary_cross_entropy"
    net = gn.mlp([2, 3, 2], hidden=hidden, output=out, seed=3, dtype="float64")
    x, y = np.array([[0.4, -0.7]]), np.array([[0.0, 1.0]])
    trace = gn.trace_step(net, x, y, loss=loss, lr=0.1)
    layers = "".join(
        f"[[layers]]\nactivation = {layer.activation.name!r}\n"
        f"weights = {layer.W.tolist()!r}\nbias = {layer.b.tolist()!r}\n"
        for layer in net.layers
    )
    values = []
    for kind, lyr in step_order(2):
        if kind in LEAVES:
            continue
        v = trace.value((kind, lyr))
        v = v[0] if kind not in ("loss",) and v.ndim >= 2 and v.shape[0] == 1 else v
        name = kind if lyr == 0 else (f"da{lyr}_dz{lyr}" if kind == "da_dz" else None)
        if name is None:
            name = f"{kind[:-4]}{lyr}_new" if kind.endswith("_new") else f"{kind}{lyr}"
        values.append(f"{name} = {np.asarray(v).tolist()!r}")
    text = (
        f'input = {x.tolist()!r}\ntarget = {y.tolist()!r}\nloss = "{loss}"\nlr = 0.1\n'
        + layers
        + "[values]\n"
        + "\n".join(values)
        + "\n"
    )
    sheet = parse_worksheet(text, label="from_trace.toml")
    ctx = Context.from_worksheet(sheet)
    ev = Working(ctx, {})
    # The checker's evaluation with nothing written is the trace, number for number.
    for key in ctx.right:
        if key[0] not in LEAVES:
            np.testing.assert_array_equal(ev.value(key), trace.value(key))
    from glassnet.check import check_worksheet

    report = check_worksheet(sheet)
    assert report.entries and {e.verdict for e in report.entries} == {"ok"}


def test_check_recomputes_only_through_the_graphs_evaluator(monkeypatch):
    """check has no evaluator of its own: a value it recomputes from a person's numbers
    is StepGraph.evaluate's.  Shift what the graph's evaluator returns for the quantity
    asked for (``upto``) and every "from your values" number of a computed quantity
    moves by exactly that shift."""
    from glassnet.check import check_worksheet

    before = {(e.name, e.index): e for e in check_worksheet("seed").entries}
    evaluate = StepGraph.evaluate

    def shifted(self, leaves, *, given=None, rules=None, each=None, upto=None):
        values = evaluate(self, leaves, given=given, rules=rules, each=each, upto=upto)
        if upto is not None:  # check's questions (the trace asks for every node)
            values[upto] = values[upto] + 1.0
        return values

    monkeypatch.setattr(StepGraph, "evaluate", shifted)
    after = check_worksheet("seed").entries
    moved = 0
    for e in after:
        old = before[(e.name, e.index)]
        # quantities the seed sheet never writes under another name (a3 is also "output")
        if e.name in ("loss", "z1") or e.name.startswith(("dW", "delta")):
            if old.follows_from_given is not None and "@" not in e.name:
                assert e.follows_from_given == pytest.approx(old.follows_from_given + 1.0)
                moved += 1
        assert e.expected == old.expected  # the right values come from the trace
    assert moved > 20
