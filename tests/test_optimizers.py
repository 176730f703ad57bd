"""Optimiser plugins (glassnet.optimizers): each update against its formula written out
again here, against torch.optim in float64 over 5 steps, and the traced step's node
declarations (evaluated by a small loop here) against the in-place step ``fit`` uses;
their symbols against their rules, their mistakes, their checkpoint state and their
hyperparameter checks."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import glassnet as gn
from glassnet import GlassnetError, mathtree, optim
from glassnet.nodes import NodeDecl
from glassnet.optimizers import Optimizer, names, optimizer_class, optimizer_from_spec

Array = np.ndarray

# name, options, and what the options mean to the reference formulas below.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.05}),
    ("momentum", {"lr": 0.05, "momentum": 0.9}),
    ("momentum", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("momentum", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.02}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}),
    ("adam", {"lr": 0.01, "weight_decay": 0.03}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.02, "beta1": 0.85, "beta2": 0.95, "eps": 1e-7, "weight_decay": 0.0}),
    ("rmsprop", {"lr": 0.01, "rho": 0.95, "eps": 1e-6, "weight_decay": 0.01}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, o in CASES]


def _params(rng: np.random.Generator) -> list[Array]:
    """Two layers' [W1, b1, W2, b2]: weights are 2-D, biases 1-D."""
    return [
        rng.normal(size=(3, 4)),
        rng.normal(size=4),
        rng.normal(size=(4, 2)),
        rng.normal(size=2),
    ]


def _grads_seq(rng: np.random.Generator, params: list[Array], steps: int) -> list[list[Array]]:
    return [[rng.normal(size=p.shape) for p in params] for _ in range(steps)]


def _run(opt: Optimizer, params: list[Array], seq: list[list[Array]]) -> list[Array]:
    params = [p.copy() for p in params]
    for grads in seq:
        before = [g.copy() for g in grads]
        opt.step(params, grads)
        for g, b in zip(grads, before, strict=True):
            np.testing.assert_array_equal(g, b)  # the caller's gradients are left as they were
    return params


# -- the formulas, written out again (independent of glassnet's functions) ---------------------
def _reference(name: str, o: dict[str, Any], params: list[Array], seq: list[list[Array]]):
    lr, wd = o["lr"], o.get("weight_decay", 0.01 if name == "adamw" else 0.0)
    b1, b2, eps = o.get("beta1", 0.9), o.get("beta2", 0.999), o.get("eps", 1e-8)
    mu, nesterov, rho = o.get("momentum", 0.9), o.get("nesterov", False), o.get("rho", 0.9)
    p = [x.copy() for x in params]
    s1 = [np.zeros_like(x) for x in params]  # velocity, m or the square average
    s2 = [np.zeros_like(x) for x in params]  # v
    for t, grads in enumerate(seq, start=1):
        for i, g in enumerate(grads):
            weight = p[i].ndim == 2
            if name != "adamw" and weight:
                g = g + wd * p[i]  # L2: only weight matrices
            if name == "sgd":
                p[i] = p[i] - lr * g
            elif name == "momentum":
                s1[i] = mu * s1[i] + g
                p[i] = p[i] - lr * (g + mu * s1[i] if nesterov else s1[i])
            elif name in ("adam", "adamw"):
                if name == "adamw" and weight:
                    p[i] = p[i] - lr * wd * p[i]  # decoupled, before the Adam step
                s1[i] = b1 * s1[i] + (1 - b1) * g
                s2[i] = b2 * s2[i] + (1 - b2) * g * g
                m_hat = s1[i] / (1 - b1**t)
                v_hat = s2[i] / (1 - b2**t)
                p[i] = p[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
            elif name == "rmsprop":
                s1[i] = rho * s1[i] + (1 - rho) * g * g
                p[i] = p[i] - lr * g / (np.sqrt(s1[i]) + eps)
    return p


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_update_is_its_formula(name, options):
    rng = np.random.default_rng(10)
    params = _params(rng)
    seq = _grads_seq(rng, params, 5)
    got = _run(optim.get_optimizer(name, **options), params, seq)
    for g, w in zip(got, _reference(name, options, params, seq), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)


# -- PyTorch float64 -----------------------------------------------------------------------------
TORCH_CASES: list[tuple[Callable[[], Optimizer], str, dict[str, Any]]] = [
    (lambda: optim.SGD(lr=0.1), "SGD", {"lr": 0.1, "weight_decay": 0.0}),
    (lambda: optim.SGD(lr=0.1, weight_decay=0.05), "SGD", {"lr": 0.1, "weight_decay": 0.05}),
    (
        lambda: optim.SGD(lr=0.05, momentum=0.9),
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
    ),
    (
        lambda: optim.Momentum(lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.02),
        "SGD",
        {"lr": 0.05, "momentum": 0.7, "nesterov": True, "weight_decay": 0.02},
    ),
    (
        lambda: optim.Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6),
        "Adam",
        {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.0},
    ),
    (
        lambda: optim.Adam(lr=0.01, weight_decay=0.03),
        "Adam",
        {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.03},
    ),
    (
        lambda: optim.AdamW(lr=0.01, weight_decay=0.1),
        "AdamW",
        {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1},
    ),
    (
        lambda: optim.RMSprop(lr=0.01, rho=0.95, weight_decay=0.01),
        "RMSprop",
        {"lr": 0.01, "alpha": 0.95, "eps": 1e-8, "weight_decay": 0.01},
    ),
]


@pytest.mark.parametrize(("make", "torch_name", "kwargs"), TORCH_CASES)
def test_against_torch_optim_float64_five_steps(make, torch_name, kwargs):
    torch = pytest.importorskip("torch", reason="PyTorch is the independent reference")
    ours = make()
    # What another engine reads to build the same optimiser: the class and its arguments.
    assert ours.torch_spec() == (torch_name, kwargs)
    rng = np.random.default_rng(11)
    params = _params(rng)
    seq = _grads_seq(rng, params, 5)
    got = _run(ours, params, seq)
    tp = [torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True) for p in params]
    # Biases are not decayed: their group has weight_decay 0 (PyTorch decays every tensor).
    groups = [
        {"params": [t for t in tp if t.ndim == 2]},
        {"params": [t for t in tp if t.ndim == 1], "weight_decay": 0.0},
    ]
    theirs = getattr(torch.optim, torch_name)(groups, **kwargs)
    for grads in seq:
        for t, g in zip(tp, grads, strict=True):
            t.grad = torch.tensor(g, dtype=torch.float64)
        theirs.step()
    for g, t in zip(got, tp, strict=True):
        np.testing.assert_allclose(g, t.detach().numpy(), rtol=0, atol=1e-12)


# -- the node declarations, evaluated by hand ------------------------------------------------------
def _evaluate(
    decls: list[NodeDecl],
    given: dict[tuple[str, int], Array],
    rules: dict[tuple[str, int], Any] | None = None,
) -> dict[tuple[str, int], Array]:
    """Every declared node's value, in the declared order: leaves from ``given`` (or their
    ``initial``), the rest by their rule (or a replacement from ``rules``)."""
    values = dict(given)
    for d in decls:
        if d.phase == "leaf":
            if d.key not in values:
                assert d.initial is not None, f"{d.key} has no value and no default"
                values[d.key] = d.initial([values[k] for k in d.inputs])
            continue
        rule = (rules or {}).get(d.key, d.rule)
        assert rule is not None
        values[d.key] = rule([values[k] for k in d.inputs])
    return values


def _node_steps(opt: Optimizer, params: list[Array], seq: list[list[Array]]):
    """The same steps as ``opt.step``, through the node rules: parameter i is ``W`` of
    layer i//2 + 1 (decayed) or ``b`` (not); state carried as :meth:`carried` says."""
    p = [x.copy() for x in params]
    state: list[dict[str, Array]] = [{} for _ in params]
    for t, grads in enumerate(seq, start=1):
        for i, g in enumerate(grads):
            param, layer = ("W" if i % 2 == 0 else "b"), i // 2 + 1
            decls = opt.update_nodes(param, layer, t=t, decay=param == "W")
            given = {(param, layer): p[i], ("d" + param, layer): g}
            given.update({(k, layer): v for k, v in state[i].items()})
            values = _evaluate(decls, given)
            p[i] = values[(f"{param}_new", layer)]
            state[i] = {nxt: values[(now, layer)] for now, nxt in opt.carried(param)}
    return p, state


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_node_rules_equal_the_in_place_step(name, options):
    rng = np.random.default_rng(12)
    params = _params(rng)
    seq = _grads_seq(rng, params, 4)
    opt = optim.get_optimizer(name, **options)
    got = _run(opt, params, seq)
    nodes, state = _node_steps(optim.get_optimizer(name, **options), params, seq)
    for i, (g, w) in enumerate(zip(got, nodes, strict=True)):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)
        param = "W" if i % 2 == 0 else "b"
        for s in opt.state_names:  # the carried state is the optimiser's state, too
            np.testing.assert_allclose(
                state[i][f"{s}_{param}_prev"], opt.state[s][i], rtol=0, atol=1e-12
            )


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_fit_steps_equal_the_traced_steps(name, options):
    """Three batches of ``fit`` (float64, no shuffling) against three traced steps of the
    step graph with the same optimiser, each from the last one's updated parameters and
    carried state (t = 1, 2, 3): one code path, so equal to rounding."""
    rng = np.random.default_rng(13)
    X = rng.normal(size=(12, 4))
    Y = rng.normal(size=(12, 2))
    a = gn.mlp([4, 5, 2], hidden="tanh", output="identity", seed=3, dtype="float64")
    b = a.copy()
    fitted = optim.get_optimizer(name, **options)
    a.fit(X, Y, loss="mse", optimizer=fitted, epochs=1, batch_size=4, shuffle=False)
    opt = optim.get_optimizer(name, **options)
    state: dict[tuple[str, int], Array] = {}
    for t, start in enumerate((0, 4, 8), start=1):
        rows = slice(start, start + 4)
        trace = gn.trace_step(
            b, X[rows], Y[rows], loss="mse", lr=opt.lr, optimizer=opt, state=state, t=t
        )
        for layer, lt in enumerate(trace.layers, start=1):
            for param in ("W", "b"):
                setattr(b.layers[layer - 1], param, lt.value(f"{param}_new"))
                for now, nxt in opt.carried(param):
                    state[(nxt, layer)] = lt.value(now)
    for i, (la, lb) in enumerate(zip(a.layers, b.layers, strict=True)):
        np.testing.assert_allclose(la.W, lb.W, rtol=0, atol=1e-12)
        np.testing.assert_allclose(la.b, lb.b, rtol=0, atol=1e-12)
        for s in opt.state_names:  # and the state fit carries is the traced step's
            layer = i + 1
            W_state, b_state = fitted.state[s][2 * i], fitted.state[s][2 * i + 1]
            np.testing.assert_allclose(W_state, state[(f"{s}_W_prev", layer)], rtol=0, atol=1e-12)
            np.testing.assert_allclose(b_state, state[(f"{s}_b_prev", layer)], rtol=0, atol=1e-12)


@pytest.mark.parametrize(("make", "torch_name", "kwargs"), TORCH_CASES)
def test_traced_steps_equal_torch_optim_float64_five_steps(make, torch_name, kwargs):
    """``trace_steps`` (5 full-batch steps, the state carried by the graph) against
    PyTorch's autograd and ``torch.optim`` in float64, built from ``torch_spec``."""
    torch = pytest.importorskip("torch", reason="PyTorch is the independent reference")
    from glassnet.trace import trace_steps

    opt = make()
    rng = np.random.default_rng(17)
    X, labels = rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)
    Y = np.eye(3)[labels]
    W1, b1 = rng.normal(size=(4, 5)) * 0.5, rng.normal(size=5) * 0.1
    W2, b2 = rng.normal(size=(5, 3)) * 0.5, rng.normal(size=3) * 0.1
    net = gn.mlp(
        [4, 5, 3], hidden="tanh", output="softmax", init=[(W1, b1), (W2, b2)], dtype="float64"
    )
    first = trace_steps(net, X, Y, loss="cross_entropy", lr=opt.lr, steps=5, optimizer=opt)
    assert first.later is not None and len(first.later) == 4
    last = first.later[-1]

    l1, l2 = torch.nn.Linear(4, 5).double(), torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        l1.weight.copy_(torch.tensor(W1.T)), l1.bias.copy_(torch.tensor(b1))
        l2.weight.copy_(torch.tensor(W2.T)), l2.bias.copy_(torch.tensor(b2))
    model = torch.nn.Sequential(l1, torch.nn.Tanh(), l2)
    name, options = opt.torch_spec()
    groups = [
        {"params": [l1.weight, l2.weight]},
        {"params": [l1.bias, l2.bias], "weight_decay": 0.0},  # biases are not decayed
    ]
    topt = getattr(torch.optim, name)(groups, **options)
    Xt, yt = torch.tensor(X), torch.tensor(labels)
    for _ in range(5):
        topt.zero_grad()
        torch.nn.functional.cross_entropy(model(Xt), yt).backward()
        topt.step()
    for lt, lin in zip(last.layers, (l1, l2), strict=True):
        np.testing.assert_allclose(
            lt.value("W_new"), lin.weight.detach().numpy().T, rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(lt.value("b_new"), lin.bias.detach().numpy(), rtol=0, atol=1e-12)


def test_node_kinds_and_order():
    """The declared kinds, in the order a derivation meets them (the issue's names)."""

    def kinds(opt: Optimizer, param: str = "W", **kw: Any) -> list[str]:
        return [d.kind for d in opt.update_nodes(param, 2, t=3, decay=kw.pop("decay", True), **kw)]

    assert kinds(optim.SGD(lr=0.1)) == ["W_new"]
    assert kinds(optim.SGD(lr=0.1, weight_decay=0.1)) == ["g_W", "W_new"]
    assert kinds(optim.Momentum()) == ["velocity_W_prev", "velocity_W", "W_new"]
    assert kinds(optim.Adam()) == [
        "m_W_prev",
        "v_W_prev",
        "m_W",
        "v_W",
        "m_hat_W",
        "v_hat_W",
        "W_new",
    ]
    assert kinds(optim.Adam(weight_decay=0.1), "gamma") == [
        "m_gamma_prev",
        "v_gamma_prev",
        "g_gamma",
        "m_gamma",
        "v_gamma",
        "m_hat_gamma",
        "v_hat_gamma",
        "gamma_new",
    ]
    assert kinds(optim.AdamW()) == [
        "m_W_prev",
        "v_W_prev",
        "decayed_W",
        "m_W",
        "v_W",
        "m_hat_W",
        "v_hat_W",
        "W_new",
    ]
    assert kinds(optim.RMSprop()) == ["square_avg_W_prev", "square_avg_W", "W_new"]
    for cls in (optim.SGD, optim.Momentum, optim.Adam, optim.AdamW, optim.RMSprop):
        opt = cls(weight_decay=0.1)
        assert kinds(opt, "b", fixed=True) == ["b_new"]
        assert opt.carried("b", fixed=True) == []
        decls = opt.update_nodes("b", 1, t=1, decay=True, fixed=True)
        b = np.array([1.0, -2.0])
        out = _evaluate(decls, {("b", 1): b})[("b_new", 1)]
        assert out is not b and np.array_equal(out, b)  # a copy: the bias held fixed
        for d in opt.update_nodes("W", 1, t=1, decay=True):
            assert d.layer == 1
            if d.phase == "leaf":
                assert d.kind.endswith("_W_prev") and d.inputs == (("W", 1),)
            else:
                assert d.phase == "update"
        assert opt.carried("W") == [(f"{s}_W", f"{s}_W_prev") for s in opt.state_names]


def test_state_leaves_start_at_zero_and_a_bias_is_not_decayed():
    opt = optim.Momentum(lr=0.1, momentum=0.5, weight_decay=0.3)
    b, db = np.array([2.0, -1.0]), np.array([0.5, 0.25])
    values = _evaluate(opt.update_nodes("b", 1, t=1, decay=False), {("b", 1): b, ("db", 1): db})
    np.testing.assert_array_equal(values[("velocity_b_prev", 1)], [0.0, 0.0])
    assert ("g_b", 1) not in values  # the bias's rule reads db itself
    # v = 0.5·0 + g = [0.5, 0.25]; b' = b − 0.1·v = [1.95, −1.025]
    np.testing.assert_allclose(values[("b_new", 1)], [1.95, -1.025], rtol=0, atol=1e-15)


def test_adam_hand_worked_first_step():
    """One entry, t = 1, written out: g = 0.5, β1 = 0.9, β2 = 0.999, lr = 0.1, ε = 1e-8."""
    opt = optim.Adam(lr=0.1)
    v = _evaluate(
        opt.update_nodes("W", 1, t=1, decay=True),
        {("W", 1): np.array([[1.0]]), ("dW", 1): np.array([[0.5]])},
    )
    # m = 0.1·0.5 = 0.05; v = 0.001·0.25 = 0.00025
    assert v[("m_W", 1)].item() == pytest.approx(0.05, abs=1e-15)
    assert v[("v_W", 1)].item() == pytest.approx(0.00025, abs=1e-15)
    # m̂ = 0.05/0.1 = 0.5 = g; v̂ = 0.00025/0.001 = 0.25 = g² (the bias correction at t = 1)
    assert v[("m_hat_W", 1)].item() == pytest.approx(0.5, abs=1e-13)
    assert v[("v_hat_W", 1)].item() == pytest.approx(0.25, abs=1e-13)
    # W' = 1 − 0.1·0.5/(0.5 + 1e-8) ≈ 0.9 + 2e-9
    assert v[("W_new", 1)].item() == pytest.approx(1 - 0.1 * 0.5 / (0.5 + 1e-8), abs=1e-13)


# -- symbols against the rules --------------------------------------------------------------------
def _number(node: mathtree.Node) -> float:
    """Evaluate a rule whose every symbol has had its number put in (a scalar)."""
    return float(eval(_python(node), {"sqrt": math.sqrt}))  # our own tree, numbers only


def _python(node: mathtree.Node) -> str:
    m = mathtree
    if isinstance(node, m.Num):
        return f"({node.value!r})"
    if isinstance(node, m.Const):
        return f"({node.value if node.value is not None else float(node.text)!r})"
    if isinstance(node, m.Op):
        return {"+": "+", "-": "-", r"\cdot": "*"}[node.tex]
    if isinstance(node, m.Row):
        return "(" + "".join(_python(i) for i in node.items) + ")"
    if isinstance(node, m.Paren):
        return "(" + _python(node.inner) + ")"
    if isinstance(node, m.Frac):
        return f"({_python(node.num)}/{_python(node.den)})"
    if isinstance(node, m.Pow):
        return f"({_python(node.base)}**{int(node.power)})"
    if isinstance(node, m.Func):
        assert node.name == "\u221a"
        return f"sqrt({_python(node.arg)})"
    raise AssertionError(f"not substituted: {node!r}")


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
@pytest.mark.parametrize("param", ["W", "b"])
def test_symbols_with_numbers_put_in_give_the_nodes_value(name, options, param):
    """For every update node: its rule in symbols, each input replaced by the value it
    has at step 2, evaluated, equals the node's value; and each prints both ways."""
    rng = np.random.default_rng(14)
    opt = optim.get_optimizer(name, **options)
    decay = param == "W"
    decls = opt.update_nodes(param, 1, t=2, decay=decay)
    given = {(param, 1): rng.normal(size=(1, 1)), ("d" + param, 1): rng.normal(size=(1, 1))}
    for d in decls:
        if d.phase == "leaf":  # a state from an earlier step (a second moment is ≥ 0)
            given[d.key] = np.abs(rng.normal(size=(1, 1)))
    values = _evaluate(decls, given)
    for d in decls:
        assert opt.words(d.kind, param) == opt.words(d.kind), f"no words for {d.kind}"
        assert opt.words(d.kind), f"no words for {d.kind}"
        if d.phase == "leaf":
            continue
        # Each input's symbol in the declared order, carrying its value (as explain does).
        ins = [mathtree.Sym("x", ((k[0], "txt"),), value=float(values[k].item())) for k in d.inputs]
        rule = opt.symbols(d.kind, param, 1, ins, t=2, decay=decay)
        assert rule is not None
        with_numbers = mathtree.substitute(rule, lambda v: repr(v))
        assert _number(with_numbers) == pytest.approx(values[d.key].item(), rel=1e-12, abs=1e-15)
        assert mathtree.tex(rule) and mathtree.mml(rule)  # both printers take it
    held = mathtree.Sym(param, (("1", "num"),))
    # a fixed parameter is itself
    assert opt.symbols(f"{param}_new", param, 1, [held], fixed=True) == held


def test_symbols_show_the_power_t_and_why_says_why():
    opt = optim.Adam()
    rule = opt.symbols("m_hat_W", "W", 1, t=3)  # the inputs' own symbols: m_{W1,t}
    assert "^{t}" in mathtree.tex(rule)  # β1ᵗ in symbols ...
    assert "^{3}" in mathtree.tex(
        mathtree.substitute(rule, lambda v: f"{v:g}")
    )  # ... 0.9³ in numbers
    assert "m_{W1" in mathtree.tex(rule)
    assert "1 − β1ᵗ" in opt.why("m_hat_W")
    assert optim.Momentum().why("velocity_W")
    assert optim.AdamW().why("decayed_W")
    assert opt.symbols("m_W_prev", "W", 1) is None  # a state leaf has no rule
    assert opt.split("v_hat_gamma") == ("v_hat", "gamma")
    assert opt.split("m_b_prev") == ("m_prev", "b")
    assert opt.split("W_new") == ("new", "W")
    with pytest.raises(GlassnetError, match="kind"):
        opt.words("velocity_W")  # not Adam's
    with pytest.raises(GlassnetError, match="kind"):
        opt.why("m_W", "b")  # not b's


# -- mistakes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
@pytest.mark.parametrize("param", ["W", "b"])
def test_each_alternative_changes_the_update(name, options, param):
    rng = np.random.default_rng(15)
    opt = optim.get_optimizer(name, **options)
    decay = param == "W"
    decls = opt.update_nodes(param, 1, t=2, decay=decay)
    given = {(param, 1): rng.normal(size=(3, 2)), ("d" + param, 1): rng.normal(size=(3, 2))}
    for d in decls:
        if d.phase == "leaf":
            given[d.key] = np.abs(rng.normal(size=(3, 2)))  # a state carried from step 1
    right = _evaluate(decls, given)
    alternatives = opt.alternatives(param, 1, t=2, decay=decay)
    assert opt.alternatives(param, 1, t=2, decay=decay, fixed=True) == {}
    keys = {d.key for d in decls}
    for mistake, rules in alternatives.items():
        assert set(rules) <= keys, f"{mistake} names nodes {param} does not have"
        wrong = _evaluate(decls, given, rules)
        new = (f"{param}_new", 1)
        assert not np.allclose(wrong[new], right[new], rtol=0, atol=1e-9), mistake
    expected = {
        "sgd": {"update_sign"},
        "momentum": {"momentum_sign_slip", "velocity_not_carried"},
        "adam": {"adam_no_bias_correction", "adam_sqrt_forgotten", "adam_v_not_squared"},
        "rmsprop": {"rmsprop_sqrt_forgotten"},
    }
    expected["adamw"] = expected["adam"]
    want = set(expected[name])
    if options.get("nesterov"):
        want.add("nesterov_as_plain_momentum")
    wd = options.get("weight_decay", 0.01 if name == "adamw" else 0.0)
    if wd and decay:
        want |= {"weight_decay_forgotten"}
        want |= {"adamw_decay_without_lr"} if name == "adamw" else {"weight_decay_sign"}
    elif wd and name in ("sgd", "adamw"):
        # Only where a bias's node reads the bias: b_new (an L2 slip in momentum's, Adam's or
        # RMSprop's state would need b in a node that has only db).
        want.add("weight_decay_on_bias")
    assert set(alternatives) == want


# -- checkpoint state ------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_checkpoint_round_trip_resumes_bit_identically(name, options):
    rng = np.random.default_rng(16)
    params = _params(rng)
    seq = _grads_seq(rng, params, 6)
    straight = _run(optim.get_optimizer(name, **options), params, seq)
    first = optim.get_optimizer(name, **options, schedule=optim.StepLR(2, 0.5))
    first.set_epoch(1)
    half = _run(first, params, seq[:3])
    config, arrays = first.config(), {k: a.copy() for k, a in first.state_arrays().items()}
    assert set(arrays) == {f"{s}.{i}" for s in first.state_names for i in range(4)}
    again = optim.optimizer_from_config(config)
    assert type(again) is type(first) and again.config() == config and again.t == 3
    again.load_state_arrays(arrays, half)
    again.set_epoch(1)
    first.set_epoch(1)
    np.testing.assert_array_equal(_run(again, half, seq[3:])[0], _run(first, half, seq[3:])[0])
    # The schedule left aside, resuming equals running straight through (bit for bit).
    plain = optim.get_optimizer(name, **options)
    mid = _run(plain, params, seq[:3])
    resumed = optim.optimizer_from_config(plain.config())
    resumed.load_state_arrays(plain.state_arrays(), mid)
    for a, b in zip(_run(resumed, mid, seq[3:]), straight, strict=True):
        np.testing.assert_array_equal(a, b)


def test_old_sgd_momentum_checkpoint_still_loads():
    """A model file from before the plugins: name "sgd" with momentum and velocity arrays."""
    old = {
        "name": "sgd",
        "lr": 0.1,
        "weight_decay": 0.0,
        "schedule": None,
        "t": 2,
        "momentum": 0.9,
        "nesterov": True,
    }
    opt = optim.optimizer_from_config(old)
    assert isinstance(opt, optim.Momentum) and isinstance(opt, optim.SGD)
    assert (opt.momentum, opt.nesterov, opt.t) == (0.9, True, 2)
    W = np.ones((2, 2))
    opt.load_state_arrays({"velocity.0": np.full((2, 2), 0.5)}, [W])
    opt.step([W], [np.ones((2, 2))])
    # v = 0.9·0.5 + 1 = 1.45; step = 1 + 0.9·1.45 = 2.305; W = 1 − 0.1·2.305 = 0.7695
    np.testing.assert_allclose(W, np.full((2, 2), 0.7695), rtol=0, atol=1e-15)
    plain = optim.optimizer_from_config({**old, "momentum": 0.0, "nesterov": False})
    assert type(plain) is optim.SGD and plain.state_names == ()


# -- hyperparameters ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "field", "got"),
    [
        (lambda: optim.SGD(lr=0), "lr", "0"),
        (lambda: optim.SGD(lr=float("inf")), "lr", "inf"),
        (lambda: optim.SGD(lr="0.1"), "lr", "'0.1'"),
        (lambda: optim.SGD(lr=True), "lr", "True"),
        (lambda: optim.SGD(lr=0.1, nesterov=True), "nesterov", "momentum 0"),
        (lambda: optim.Momentum(momentum=1.0), "momentum", "1.0"),
        (lambda: optim.Momentum(momentum=0), "momentum", "0"),
        (lambda: optim.Momentum(nesterov="yes"), "nesterov", "'yes'"),
        (lambda: optim.Adam(beta1=-0.1), "beta1", "-0.1"),
        (lambda: optim.Adam(beta2=1), "beta2", "1"),
        (lambda: optim.Adam(eps=0), "eps", "0"),
        (lambda: optim.AdamW(weight_decay=-1), "weight_decay", "-1"),
        (lambda: optim.RMSprop(rho=float("nan")), "rho", "nan"),
        (lambda: optim.get_optimizer("adam", momentum=0.9), "optimizer", "momentum"),
        (lambda: optim.get_optimizer("adagrad"), "optimizer", "'adagrad'"),
        (lambda: optim.Adam(schedule="step"), "schedule", "'step'"),
    ],
)
def test_bad_hyperparameters_give_one_line_errors(make, field, got):
    with pytest.raises(GlassnetError) as err:
        make()
    message = str(err.value)
    assert "\n" not in message
    assert err.value.field == field and f"field '{field}'" in message
    assert got in (err.value.got or "")
    assert message.count("expected") >= 1


def test_fields_are_declared_once_and_the_constructors_agree():
    assert set(names()) >= {"sgd", "momentum", "adam", "adamw", "rmsprop"}
    for name in names():
        cls = optimizer_class(name)
        signature = inspect.signature(cls.__init__).parameters
        assert [f.name for f in cls.fields] == [
            p
            for p in signature
            if p not in ("self", "schedule")
            and not (cls is optim.SGD and p in ("momentum", "nesterov"))
        ]
        opt = cls()
        for f in cls.fields:
            assert signature[f.name].default == f.default, (name, f.name)
            assert getattr(opt, f.name) == f.default


def test_from_spec_reads_its_keys_and_names_the_misplaced():
    opt = optimizer_from_spec(
        {
            "optimizer": "adam",
            "lr": 0.5,
            "beta1": 0.5,
            "beta2": 0.9,
            "eps": 1e-6,
            "weight_decay": 0.1,
        }
    )
    assert type(opt) is optim.Adam
    assert (opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay) == (0.5, 0.5, 0.9, 1e-6, 0.1)
    opt = optimizer_from_spec({"optimizer": "momentum", "lr": 1, "momentum": 0.5, "nesterov": True})
    assert type(opt) is optim.Momentum and opt.nesterov and opt.lr == 1.0
    assert type(optimizer_from_spec({"lr": 0.1})) is optim.SGD  # sgd is the default
    with pytest.raises(GlassnetError, match=r"field 'beta1'.*optimizer = 'sgd'.*got beta1"):
        optimizer_from_spec({"optimizer": "sgd", "lr": 0.1, "beta1": 0.9})
    with pytest.raises(GlassnetError, match="got momentum, nesterov"):
        optimizer_from_spec({"optimizer": "adam", "nesterov": True, "momentum": 0.9})
    with pytest.raises(GlassnetError, match=r"field 'betas'.*got betas"):
        optimizer_from_spec({"optimizer": "adam", "betas": [0.9, 0.99]})
    with pytest.raises(GlassnetError, match=r"field 'optimizer'.*got 'adamax'"):
        optimizer_from_spec({"optimizer": "adamax"})
    with pytest.raises(GlassnetError, match=r"field 'eps'"):
        optimizer_from_spec({"optimizer": "adamw", "eps": -1.0})


def test_sgd_with_momentum_is_the_momentum_plugin():
    opt = optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    assert type(opt) is optim.Momentum and opt.name == "momentum"
    assert (opt.lr, opt.momentum, opt.nesterov, opt.weight_decay) == (0.1, 0.9, True, 0.01)
    assert type(optim.SGD(lr=0.1, momentum=0.0)) is optim.SGD
    assert type(optim.get_optimizer("sgd", momentum=0.5)) is optim.Momentum


def test_registering_a_second_class_under_a_name_is_refused():
    from glassnet.optimizers import register

    class Impostor(optim.SGD):
        name = "adam"

    with pytest.raises(GlassnetError, match="already Adam"):
        register(Impostor)
    assert optimizer_class("adam") is optim.Adam


def test_the_cli_and_runs_offer_every_optimiser():
    from glassnet.commands.train import OPTIMIZERS
    from glassnet.runs import TrainOptions, make_optimizer

    assert set(OPTIMIZERS) == set(names())  # the CLI's list is static (no NumPy at start-up)
    opt = make_optimizer(TrainOptions(optimizer="momentum", lr=0.1), 5)
    assert type(opt) is optim.Momentum and opt.momentum == 0.9  # its own default μ
    opt = make_optimizer(TrainOptions(optimizer="sgd", momentum=0.5, nesterov=True), 5)
    assert type(opt) is optim.Momentum and (opt.momentum, opt.nesterov) == (0.5, True)
    opt = make_optimizer(TrainOptions(optimizer="adamw", weight_decay=0.05), 5)
    assert type(opt) is optim.AdamW and opt.weight_decay == 0.05
    with pytest.raises(GlassnetError, match="--momentum"):
        make_optimizer(TrainOptions(optimizer="adam", momentum=0.9), 5)


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_explain_writes_every_update_node_with_its_rule(name, options):
    """Explain's generic derivation (which asks the graph's plugins, never names) writes
    each update node of a traced step as symbol = rule = value, and the rule's why."""
    from glassnet.explain.document import Equation
    from glassnet.explain.generic import build_generic
    from glassnet.trace import trace_steps

    opt = optim.get_optimizer(name, **options)
    net = gn.mlp([2, 2, 1], hidden="sigmoid", output="sigmoid", seed=0, dtype="float64")
    x, y = np.array([[0.05, 0.1]]), np.array([[0.01]])
    trace = trace_steps(net, x, y, loss="mse", lr=opt.lr, steps=2, optimizer=opt)
    doc = build_generic(trace, fmt=lambda v: f"{v:.4g}", digits=4)
    (update,) = [s for s in doc.sections if s.kind == "g-update"]
    equations = [b for b in update.blocks if isinstance(b, Equation)]
    graph = trace.graph
    assert graph is not None
    n_update = sum(1 for k in graph.order() if graph.decl(k).phase == "update")
    assert len(equations) == n_update
    assert all(len(e.sides) == 3 for e in equations)  # symbol = rule = value


def test_fixed_biases_in_the_traced_step_keep_no_state():
    """``update_bias = false``: each b_new is b, and only the weights carry state."""
    from glassnet.trace import trace_steps

    net = gn.mlp([2, 3, 1], hidden="tanh", output="sigmoid", seed=1, dtype="float64")
    x, y = np.array([[0.5, -1.0], [1.0, 2.0]]), np.array([[0.0], [1.0]])
    opt = optim.Adam(lr=0.1)
    first = trace_steps(net, x, y, loss="mse", lr=opt.lr, update_bias=False, steps=3, optimizer=opt)
    assert first.later is not None
    for trace in (first, *first.later):
        for layer, lt in zip(net.layers, trace.layers, strict=True):
            np.testing.assert_array_equal(lt.value("b_new"), layer.b)
            assert not lt.has("m_b") and lt.has("m_W") and lt.has("v_hat_W")
    assert not np.array_equal(first.later[-1].layers[0].value("W_new"), net.layers[0].W)


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_alternatives_swap_into_the_step_graphs_one_evaluator(name, options):
    """Each mistake is a ``rules=`` mapping for :meth:`StepGraph.evaluate` (the evaluator
    check marks with): swapped into a whole step at t = 2 it changes that parameter's
    update and nothing upstream of it."""
    from glassnet.step import StepGraph, network_leaves

    opt = optim.get_optimizer(name, **options)
    net = gn.mlp([3, 4, 2], hidden="tanh", output="softmax", seed=2, dtype="float64")
    rng = np.random.default_rng(18)
    x, y = rng.normal(size=(2, 3)), np.eye(2)[[0, 1]]
    graph = StepGraph(loss=gn.get_loss("cross_entropy"), layers=net.layers, optimizer=opt, t=2)
    leaves = network_leaves(net.layers, x, y)
    for layer in (1, 2):  # mlp starts biases at 0, where decaying them would change nothing
        leaves[("b", layer)] = rng.normal(size=leaves[("b", layer)].shape)
    for key in graph.order():  # a state carried from step 1 (a second moment is ≥ 0)
        if graph.is_leaf(key) and key[0].endswith("_prev"):
            leaves[key] = np.abs(rng.normal(size=leaves[(key[0].split("_")[-2], key[1])].shape))
    right = graph.evaluate(leaves)
    tried = 0
    for layer in (1, 2):
        for param, decay in (("W", True), ("b", False)):
            for mistake, rules in opt.alternatives(param, layer, t=2, decay=decay).items():
                wrong = graph.evaluate(leaves, rules=rules)
                new = (f"{param}_new", layer)
                assert not np.allclose(wrong[new], right[new], rtol=0, atol=1e-9), mistake
                for key in graph.order():
                    if graph.decl(key).phase != "update":  # the forward and backward passes
                        np.testing.assert_array_equal(wrong[key], right[key])
                tried += 1
    assert tried >= 2
