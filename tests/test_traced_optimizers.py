"""A spec's optimiser in the traced step: `steps = 5` of momentum, Nesterov, Adam, AdamW
and SGD with weight decay against ``torch.optim`` in float64 (the same network, the same
batch, five steps), state included (m, v, velocity); and the JSON and the derivation of
such a step.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from glassnet.spec import parse_spec

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

SPEC = """
loss = "cross_entropy"
lr = {lr}
{settings}
steps = 5
input = [[0.1, 0.2, 0.7], [0.5, -0.3, 0.2]]
target = [[1, 0], [0, 1]]
[[layers]]
weights = [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]]
bias = [0.1, -0.1]
activation = "tanh"
[[layers]]
weights = [[0.2, -0.1], [0.3, 0.5]]
bias = [0.0, 0.05]
activation = "softmax"
"""

CASES = {
    "momentum": ('optimizer = "momentum"\nmomentum = 0.9', "SGD", {"momentum": 0.9}),
    "nesterov": (
        'optimizer = "momentum"\nmomentum = 0.8\nnesterov = true',
        "SGD",
        {"momentum": 0.8, "nesterov": True},
    ),
    "adam": (
        'optimizer = "adam"\nbeta1 = 0.8\nbeta2 = 0.95\neps = 1e-6',
        "Adam",
        {"betas": (0.8, 0.95), "eps": 1e-6},
    ),
    "adamw": (
        'optimizer = "adamw"\nweight_decay = 0.1',
        "AdamW",
        {"weight_decay": 0.1},
    ),
    "sgd_decay": ('optimizer = "sgd"\nweight_decay = 0.05', "SGD", {"weight_decay": 0.05}),
}


def _torch_steps(spec, cls, options, lr, n):
    """n steps of the spec's network in torch, float64; biases never decayed (glassnet's
    convention, scikit-learn's alpha) — a param group without weight decay."""
    Ws = [torch.tensor(layer.W, requires_grad=True) for layer in spec.network.layers]
    bs = [torch.tensor(layer.b, requires_grad=True) for layer in spec.network.layers]
    decay = options.get("weight_decay", 0.0)
    groups = [{"params": Ws}, {"params": bs, "weight_decay": 0.0}]
    opt = getattr(torch.optim, cls)(groups, lr=lr, **{**options, "weight_decay": decay})
    x, y = torch.tensor(spec.x), torch.tensor(spec.y)
    history = []
    for _ in range(n):
        opt.zero_grad()
        a = x
        a = torch.tanh(a @ Ws[0] + bs[0])
        p = torch.softmax(a @ Ws[1] + bs[1], dim=1)
        (-(y * torch.log(p)).sum() / x.shape[0]).backward()
        opt.step()
        history.append(
            {
                "W": [w.detach().clone().numpy() for w in Ws],
                "b": [b.detach().clone().numpy() for b in bs],
                # torch updates its state tensors in place: copies of this step's
                "state": {
                    k: {n: t.clone() if torch.is_tensor(t) else t for n, t in v.items()}
                    for k, v in opt.state.items()
                },
                "Ws": Ws,
            }
        )
    return history


@pytest.mark.parametrize("case", sorted(CASES))
def test_five_traced_steps_equal_torch_optim(case):
    settings, cls, options = CASES[case]
    lr = 0.05
    spec = parse_spec(SPEC.format(lr=lr, settings=settings), f"{case}.toml")
    tr = spec.trace()
    steps = [tr, *tr.later]
    assert len(steps) == 5
    ref = _torch_steps(spec, cls, options, lr, 5)
    for k, (ours, theirs) in enumerate(zip(steps, ref, strict=True), start=1):
        for lyr in (1, 2):
            np.testing.assert_allclose(
                ours.layer(lyr).W_new,
                theirs["W"][lyr - 1],
                rtol=1e-12,
                atol=1e-14,
                err_msg=f"{case}: W_new of layer {lyr} at step {k}",
            )
            np.testing.assert_allclose(
                ours.layer(lyr).b_new,
                theirs["b"][lyr - 1],
                rtol=1e-12,
                atol=1e-14,
                err_msg=f"{case}: b_new of layer {lyr} at step {k}",
            )
        state = theirs["state"].get(theirs["Ws"][0], {})  # plain SGD keeps none
        lt = ours.layer(1)
        if "momentum_buffer" in state:
            np.testing.assert_allclose(lt.velocity_W, state["momentum_buffer"].numpy(), rtol=1e-12)
        if "exp_avg" in state:
            np.testing.assert_allclose(lt.m_W, state["exp_avg"].numpy(), rtol=1e-12)
            np.testing.assert_allclose(lt.v_W, state["exp_avg_sq"].numpy(), rtol=1e-12)
        if k > 1:  # each step starts from the state the one before left
            prev = steps[k - 2].layer(1)
            for computed, leaf in spec.optimizer.carried("W"):
                np.testing.assert_array_equal(lt.value(leaf), prev.value(computed))


def test_an_adam_step_in_json_and_in_the_derivation(tmp_path, capsys):
    from glassnet import cli

    path = tmp_path / "adam.toml"
    path.write_text(
        SPEC.format(lr=0.01, settings='optimizer = "adam"').replace("steps = 5", "steps = 2")
    )
    assert cli.main(["step", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["optimizer"]["name"] == "adam" and d["t"] == 1 and d["steps"][0]["t"] == 2
    layer = d["layers"][0]
    for kind in ("m_W_prev", "v_W_prev", "m_W", "v_W", "m_hat_W", "v_hat_W", "W_new", "m_b"):
        assert kind in layer
    assert np.all(np.asarray(layer["m_W_prev"]) == 0)  # Adam starts from zeros
    np.testing.assert_array_equal(d["steps"][0]["layers"][0]["m_W_prev"], layer["m_W"])
    out = tmp_path / "adam.md"
    assert cli.main(["explain", str(path), "-o", str(out)]) == 0
    md = out.read_text()
    # the bias correction, in Adam's own symbols, with its why
    assert r"m̂_{W1} = \frac{m_{W1\mathrm{,}t}}{1 - {β_{1}}^{t}}" in md
    assert "why m_hat_W is computed this way" in md


def test_an_optimiser_setting_of_another_optimiser_is_refused():
    from glassnet.errors import GlassnetError

    with pytest.raises(GlassnetError, match="beta1") as err:
        parse_spec(SPEC.format(lr=0.1, settings='optimizer = "momentum"\nbeta1 = 0.9'), "m.toml")
    assert "\n" not in str(err.value) and "m.toml" in str(err.value)
