"""Every trace quantity against PyTorch autograd in float64, on random networks.

Depth 1–5, widths 1–8, batches 1–6, every activation and every loss it applies to.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from glassnet.layers import Dense
from glassnet.network import Network
from glassnet.trace import trace_step

from helpers import COMBOS, HIDDEN, random_targets

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

RTOL = 1e-9


def torch_act(name: str, z):
    return {
        "identity": lambda t: t,
        "relu": torch.relu,
        "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda t: torch.softmax(t, dim=1),
        "elu": torch.nn.functional.elu,
        "gelu": torch.nn.functional.gelu,
    }[name](z)


def torch_loss_terms(name: str, p, y):
    if name == "cross_entropy":
        return -y * torch.log(p)
    if name == "binary_cross_entropy":
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
    if name == "mse":
        return (p - y) ** 2 / p.shape[1]
    return 0.5 * (y - p) ** 2


def close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    scale = max(1.0, float(np.abs(theirs).max(initial=0)))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def run_case(rng, hidden, output, loss, update_bias=True):
    depth = int(rng.integers(1, 6))
    widths = [int(w) for w in rng.integers(1, 9, size=depth + 1)]
    if output == "softmax":
        widths[-1] = max(widths[-1], 2)
    batch = int(rng.integers(1, 7))
    acts = [hidden] * (depth - 1) + [output]
    Ws = [rng.normal(0, 0.7, size=(widths[i], widths[i + 1])) for i in range(depth)]
    bs = [rng.normal(0, 0.5, size=widths[i + 1]) for i in range(depth)]
    x = rng.normal(size=(batch, widths[0]))
    y = random_targets(rng, loss, batch, widths[-1])
    lr = float(rng.uniform(0.01, 1.0))

    net = Network([Dense(W.copy(), b.copy(), a) for W, b, a in zip(Ws, bs, acts, strict=True)])
    trace = trace_step(net, x, y, loss=loss, lr=lr, update_bias=update_bias)

    tW = [torch.tensor(W, requires_grad=True) for W in Ws]
    tb = [torch.tensor(b, requires_grad=True) for b in bs]
    a = torch.tensor(x)
    zs, as_ = [], []
    for W, b, act in zip(tW, tb, acts, strict=True):
        z = a @ W + b
        z.retain_grad()
        a = torch_act(act, z)
        a.retain_grad()
        zs.append(z)
        as_.append(a)
    terms = torch_loss_terms(loss, a, torch.tensor(y))
    total = terms.sum() / batch
    total.backward()

    close(trace.loss, total, "loss")
    close(trace.loss_terms, terms, "loss_terms")
    close(trace.output, as_[-1], "output")
    for i, lt in enumerate(trace.layers):
        what = f"layer {i + 1} ({acts[i]}), {loss}"
        close(lt.z, zs[i], f"z {what}")
        close(lt.a, as_[i], f"a {what}")
        close(lt.dL_da, as_[i].grad, f"dL_da {what}")
        close(lt.delta, zs[i].grad, f"delta {what}")
        close(lt.dW, tW[i].grad, f"dW {what}")
        close(lt.db, tb[i].grad, f"db {what}")
        close(lt.W_new, tW[i].detach() - lr * tW[i].grad, f"W_new {what}")
        b_new = tb[i].detach() - lr * tb[i].grad if update_bias else tb[i].detach()
        close(lt.b_new, b_new, f"b_new {what}")
        # The local derivative: per sample, torch's Jacobian of a w.r.t. z.
        for s in range(batch):
            zs_s = zs[i][s : s + 1].detach()
            J = torch.autograd.functional.jacobian(
                lambda t, act=acts[i]: torch_act(act, t)[0], zs_s
            )[:, 0, :]
            if lt.jacobian:
                close(lt.da_dz[s], J, f"da_dz {what}")
            else:
                close(lt.da_dz[s], torch.diagonal(J), f"da_dz {what}")
                off = J - torch.diag(torch.diagonal(J))
                assert float(off.abs().max()) == 0.0, "elementwise activation with cross terms"


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(("loss", "output"), COMBOS)
def test_trace_matches_torch_autograd(loss, output, hidden):
    rng = np.random.default_rng(zlib.crc32(f"torch/{loss}/{output}/{hidden}".encode()))
    for case in range(4):
        run_case(rng, hidden, output, loss, update_bias=case % 2 == 0)
