"""``--round K`` (hand mode): the document equals the seed's step worked by hand in
this test — plain Python, every intermediate rounded to K decimals before the next step
uses it, no glassnet code — parsed back from the CLI's Markdown and HTML output."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from glassnet.cli import main

from _explain_parse import Resolver, check_blocks, html_blocks, markdown_blocks

# The seed tutorial's network (shared/seed/000_77f373048d5bd3e8.txt), written out again.
X = [0.1, 0.2, 0.7]
Y = [1.0, 0.0, 0.0]
W = [
    [[0.1, 0.2, 0.3], [0.3, 0.2, 0.7], [0.4, 0.3, 0.9]],  # W_ij, relu
    [[0.2, 0.3, 0.5], [0.3, 0.5, 0.7], [0.6, 0.4, 0.8]],  # W_jk, sigmoid
    [[0.1, 0.4, 0.8], [0.3, 0.7, 0.2], [0.5, 0.2, 0.9]],  # W_kl, softmax
]
B = [[1.0, 1.0, 1.0]] * 3
LR = 0.01


def by_hand(K: int) -> SimpleNamespace:
    """One step of the seed network with binary cross-entropy, biases fixed, every
    intermediate rounded to K decimals — a careful hand calculation."""

    def r(v: float) -> float:
        return round(v, K)

    n = 3
    a = [r(v) for v in X]
    xs, zs, as_ = [], [], []
    for layer in range(3):
        xs.append(a)
        z = [r(sum(a[i] * W[layer][i][j] for i in range(n)) + B[layer][j]) for j in range(n)]
        if layer == 0:
            a = [r(max(0.0, v)) for v in z]
        elif layer == 1:
            a = [r(1 / (1 + math.exp(-v))) for v in z]
        else:
            e = [math.exp(v) for v in z]
            a = [r(v / sum(e)) for v in e]
        zs.append(z)
        as_.append(a)
    p = as_[2]
    terms = [r(-(Y[k] * math.log(p[k]) + (1 - Y[k]) * math.log(1 - p[k]))) for k in range(n)]
    loss = r(sum(terms))
    dL_da = [r(-Y[k] / p[k] + (1 - Y[k]) / (1 - p[k])) for k in range(n)]
    records: list = [None] * 3
    for layer in (2, 1, 0):
        z, a = zs[layer], as_[layer]
        if layer == 2:  # softmax: the full Jacobian J[i][j] = a_i (δ_ij − a_j)
            J = [[r(a[i] * ((1.0 if i == j else 0.0) - a[j])) for j in range(n)] for i in range(n)]
            delta = [r(sum(dL_da[i] * J[i][j] for i in range(n))) for j in range(n)]
            da_dz = J
        else:
            da_dz = (
                [r(1.0 if v > 0 else 0.0) for v in z] if layer == 0 else [r(v * (1 - v)) for v in a]
            )
            delta = [r(dL_da[j] * da_dz[j]) for j in range(n)]
        dW = [[r(xs[layer][i] * delta[j]) for j in range(n)] for i in range(n)]
        db = [r(v) for v in delta]
        records[layer] = SimpleNamespace(
            x=[xs[layer]],
            W=W[layer],
            b=B[layer],
            z=[z],
            a=[a],
            da_dz=[da_dz],
            dL_da=[dL_da],
            delta=[delta],
            dW=dW,
            db=db,
            W_new=[[r(W[layer][i][j] - LR * dW[i][j]) for j in range(n)] for i in range(n)],
            b_new=B[layer],
        )
        # dE/da of the layer below sums over every unit of this layer.
        dL_da = [r(sum(delta[k] * W[layer][j][k] for k in range(n))) for j in range(n)]
    return SimpleNamespace(
        x=[[r(v) for v in X]], y=[Y], loss=loss, loss_terms=[terms], lr=LR, layers=records
    )


@pytest.mark.parametrize("K", [3, 4])
@pytest.mark.parametrize("fmt", ["md", "html"])
def test_round_k_equals_the_hand_calculation(
    K: int, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "seed", "--round", str(K), "--format", fmt]) == 0
    text = capsys.readouterr().out
    blocks = markdown_blocks(text) if fmt == "md" else html_blocks(text)
    report = check_blocks(blocks, Resolver(by_hand(K)), digits=None, decimals=K)
    assert report.checked > 300


def test_the_hand_calculation_is_not_the_full_precision_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The full-precision document (shown to 6 digits) must disagree with the rounded
    # hand calculation somewhere: hand mode is really a different calculation.
    assert main(["explain", "seed", "--digits", "6"]) == 0
    blocks = markdown_blocks(capsys.readouterr().out)
    with pytest.raises(AssertionError):
        check_blocks(blocks, Resolver(by_hand(2)), digits=6, decimals=None)
