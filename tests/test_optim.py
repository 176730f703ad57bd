"""Optimisers and schedules: each update checked against its formula written out again
here, step by step, and (when PyTorch is installed) against torch.optim in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glassnet import GlassnetError, optim


def _params(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.normal(size=(3, 2)), rng.normal(size=2)]


def _grads_seq(rng: np.random.Generator, steps: int) -> list[list[np.ndarray]]:
    return [[rng.normal(size=(3, 2)), rng.normal(size=2)] for _ in range(steps)]


def _run(opt: optim.Optimizer, params, grads_seq):
    params = [p.copy() for p in params]
    for grads in grads_seq:
        before = [g.copy() for g in grads]
        opt.step(params, grads)
        for g, b in zip(grads, before, strict=True):
            np.testing.assert_array_equal(g, b)  # gradients are left as they were
    return params


def test_sgd_plain_is_p_minus_lr_g():
    rng = np.random.default_rng(0)
    params, seq = _params(rng), _grads_seq(rng, 3)
    got = _run(optim.SGD(lr=0.1), params, seq)
    want = [p.copy() for p in params]
    for grads in seq:
        want = [p - 0.1 * g for p, g in zip(want, grads, strict=True)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_formula(nesterov):
    rng = np.random.default_rng(1)
    params, seq = _params(rng), _grads_seq(rng, 4)
    lr, mu = 0.05, 0.9
    got = _run(optim.SGD(lr=lr, momentum=mu, nesterov=nesterov), params, seq)
    want = [p.copy() for p in params]
    v = [np.zeros_like(p) for p in params]
    for grads in seq:
        for i, g in enumerate(grads):
            v[i] = mu * v[i] + g
            step = g + mu * v[i] if nesterov else v[i]
            want[i] = want[i] - lr * step
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)


def test_adam_formula():
    rng = np.random.default_rng(2)
    params, seq = _params(rng), _grads_seq(rng, 5)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    got = _run(optim.Adam(lr=lr, beta1=b1, beta2=b2, eps=eps), params, seq)
    want = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(seq, start=1):
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            want[i] = want[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)


def test_rmsprop_formula():
    rng = np.random.default_rng(3)
    params, seq = _params(rng), _grads_seq(rng, 4)
    lr, rho, eps = 0.01, 0.9, 1e-8
    got = _run(optim.RMSprop(lr=lr, rho=rho, eps=eps), params, seq)
    want = [p.copy() for p in params]
    s = [np.zeros_like(p) for p in params]
    for grads in seq:
        for i, g in enumerate(grads):
            s[i] = rho * s[i] + (1 - rho) * g**2
            want[i] = want[i] - lr * g / (np.sqrt(s[i]) + eps)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)


def test_weight_decay_adds_lambda_w_to_weights_only():
    rng = np.random.default_rng(4)
    params, seq = _params(rng), _grads_seq(rng, 2)
    lr, wd = 0.1, 0.01
    got = _run(optim.SGD(lr=lr, weight_decay=wd), params, seq)
    W, b = params[0].copy(), params[1].copy()
    for gW, gb in seq:
        W = W - lr * (gW + wd * W)  # L2 on the weight matrix
        b = b - lr * gb  # biases are not decayed
    np.testing.assert_allclose(got[0], W, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1], b, rtol=0, atol=1e-12)


def test_schedules_scale_the_rate_per_epoch():
    step = optim.StepLR(step_size=2, gamma=0.5)
    assert [step.factor(e) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    cos = optim.CosineLR(total_epochs=4, min_factor=0.1)
    want = [0.1 + 0.9 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)] + [0.1]
    assert [cos.factor(e) for e in range(5)] == pytest.approx(want, abs=1e-15)
    opt = optim.SGD(lr=0.2, schedule=step)
    opt.set_epoch(3)
    assert opt.current_lr == pytest.approx(0.1)


def test_update_is_in_place():
    W = np.ones((2, 2))
    ref = W
    optim.Adam(lr=0.1).step([W], [np.ones((2, 2))])
    assert ref is W and not np.array_equal(W, np.ones((2, 2)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.SGD(lr=0),
        lambda: optim.SGD(lr=float("nan")),
        lambda: optim.SGD(lr=0.1, momentum=1.5),
        lambda: optim.SGD(lr=0.1, nesterov=True),
        lambda: optim.Adam(beta1=1.0),
        lambda: optim.RMSprop(eps=-1),
        lambda: optim.SGD(weight_decay=-0.1),
        lambda: optim.StepLR(step_size=0),
        lambda: optim.CosineLR(total_epochs=3, min_factor=2),
        lambda: optim.get_optimizer("adamax"),  # unknown (adamw is registered now)
    ],
)
def test_bad_hyperparameters_are_refused(make):
    with pytest.raises(GlassnetError):
        make()


def test_config_round_trip():
    opt = optim.SGD(
        lr=0.3, momentum=0.8, nesterov=True, weight_decay=1e-4, schedule=optim.CosineLR(10, 0.05)
    )
    opt.t = 7
    again = optim.optimizer_from_config(opt.config())
    assert again.config() == opt.config()


def test_against_torch_optimisers_float64():
    torch = pytest.importorskip("torch", reason="PyTorch is the independent reference")
    rng = np.random.default_rng(5)
    params, seq = _params(rng), _grads_seq(rng, 6)
    cases = [
        (
            optim.SGD(lr=0.1, momentum=0.9, nesterov=True),
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        ),
        (optim.Adam(lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01, eps=1e-8)),
        (
            optim.RMSprop(lr=0.01, rho=0.9),
            lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-8),
        ),
    ]
    for ours, make_theirs in cases:
        got = _run(ours, params, seq)
        tp = [torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True) for p in params]
        theirs = make_theirs(tp)
        for grads in seq:
            for t, g in zip(tp, grads, strict=True):
                t.grad = torch.tensor(g)
            theirs.step()
        for g, t in zip(got, tp, strict=True):
            np.testing.assert_allclose(g, t.detach().numpy(), rtol=0, atol=1e-12)
