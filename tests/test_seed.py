"""The seed tutorial's network (shared/seed/000_77f373048d5bd3e8.txt), worked right.

Expected values come from an independent float64 computation below (plain NumPy, the
seed's own definitions: natural log, full softmax Jacobian, full backprop) and, where
the issue states them, from its text.  Comments give the seed's printed value wherever
it differs.
"""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn

X = np.array([[0.1, 0.2, 0.7]])
Y = np.array([[1.0, 0.0, 0.0]])
W_IJ = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.7], [0.4, 0.3, 0.9]])
W_JK = np.array([[0.2, 0.3, 0.5], [0.3, 0.5, 0.7], [0.6, 0.4, 0.8]])
W_KL = np.array([[0.1, 0.4, 0.8], [0.3, 0.7, 0.2], [0.5, 0.2, 0.9]])
B = np.ones(3)
LR = 0.01


def independent_step():
    """The seed's step, written out from its definitions with no glassnet code."""
    h1_in = X @ W_IJ + B
    h1_out = np.maximum(h1_in, 0)
    h2_in = h1_out @ W_JK + B
    h2_out = 1 / (1 + np.exp(-h2_in))
    O_in = h2_out @ W_KL + B
    O_out = np.exp(O_in) / np.exp(O_in).sum()
    terms = -(Y * np.log(O_out) + (1 - Y) * np.log(1 - O_out))
    dE_dO_out = -Y / O_out + (1 - Y) / (1 - O_out)
    # full softmax Jacobian J[i, j] = dO_out_i / dO_in_j
    p = O_out[0]
    J = np.diag(p) - np.outer(p, p)
    dE_dO_in = dE_dO_out @ J
    dW_kl = h2_out.T @ dE_dO_in
    dE_dh2_out = dE_dO_in @ W_KL.T  # every unit of the next layer, the whole row
    dE_dh2_in = dE_dh2_out * h2_out * (1 - h2_out)
    dW_jk = h1_out.T @ dE_dh2_in
    dE_dh1_out = dE_dh2_in @ W_JK.T
    dE_dh1_in = dE_dh1_out * (h1_in > 0)
    dW_ij = X.T @ dE_dh1_in
    return {
        "h1_in": h1_in,
        "h2_in": h2_in,
        "h2_out": h2_out,
        "O_in": O_in,
        "O_out": O_out,
        "terms": terms,
        "E": terms.sum(),
        "dE_dO_out": dE_dO_out,
        "J": J,
        "dE_dh2_out": dE_dh2_out,
        "dE_dh1_out": dE_dh1_out,
        "dW_kl": dW_kl,
        "dW_jk": dW_jk,
        "dW_ij": dW_ij,
        "W_kl_new": W_KL - LR * dW_kl,
        "W_jk_new": W_JK - LR * dW_jk,
        "W_ij_new": W_IJ - LR * dW_ij,
    }


@pytest.fixture(scope="module")
def trace():
    return gn.load_spec("seed").trace()


def test_values_stated_in_the_issue(trace):
    # Seed prints O_out = [0.2698, 0.3223, 0.4078] (a plain normalisation, not softmax).
    np.testing.assert_allclose(trace.layer(3).a[0], [0.19845, 0.28536, 0.51620], atol=5e-6)
    # Seed prints Error = 0.985 (base-10 logs of its wrong O_out).
    assert trace.loss == pytest.approx(2.67928, abs=5e-6)
    # Seed prints W_kl'[0][0] = 0.105531.
    assert trace.layer(3).W_new[0, 0] == pytest.approx(0.110257, abs=5e-7)


def test_forward_matches_independent_computation(trace):
    ref = independent_step()
    np.testing.assert_allclose(trace.layer(1).z, ref["h1_in"], rtol=1e-12)  # seed: 1.35 1.27 1.8 ✓
    np.testing.assert_allclose(trace.layer(2).z, ref["h2_in"], rtol=1e-12)  # seed: 4.001 for 4.004
    np.testing.assert_allclose(trace.layer(2).a, ref["h2_out"], rtol=1e-12)  # seed: 0.938 0.94 0.98
    # seed: O_in = 1.8658 2.2292 2.8204
    np.testing.assert_allclose(trace.layer(3).z, ref["O_in"], rtol=1e-12)
    np.testing.assert_allclose(trace.layer(3).a, ref["O_out"], rtol=1e-12)
    # seed's terms: 0.569858 0.16886 0.22753 (log10); ours are natural logs
    np.testing.assert_allclose(trace.loss_terms, ref["terms"], rtol=1e-12)
    assert trace.loss == pytest.approx(ref["E"], rel=1e-12)


def test_backward_matches_independent_computation(trace):
    ref = independent_step()
    # seed: dE/dO_out = [-3.70644, -1.4755, -1.6886] (sign slip on the (1-y) term)
    np.testing.assert_allclose(trace.layer(3).dL_da, ref["dE_dO_out"], rtol=1e-12)
    # seed keeps only the diagonal [0.15911, 0.2040, 0.3685]; the Jacobian has cross terms
    np.testing.assert_allclose(trace.layer(3).da_dz[0], ref["J"], rtol=1e-12)
    # seed: dE/dh2_out = [-0.8903, -0.74218, -1.0810]
    np.testing.assert_allclose(trace.layer(2).dL_da, ref["dE_dh2_out"], rtol=1e-12)
    # seed: dE/dh1_out = [-0.01035, -0.0209, -0.0169] (one weight instead of the row)
    np.testing.assert_allclose(trace.layer(1).dL_da, ref["dE_dh1_out"], rtol=1e-12)
    # seed: dW_kl[0] = [-0.5531, -0.0576, -0.5836]
    np.testing.assert_allclose(trace.layer(3).dW, ref["dW_kl"], rtol=1e-12)
    # seed: dW_jk[0] = [-0.06989, -0.0565, -0.0286]
    np.testing.assert_allclose(trace.layer(2).dW, ref["dW_jk"], rtol=1e-12)
    # seed: dW_ij[0] = [-0.001035, -0.00209, -0.00169]
    np.testing.assert_allclose(trace.layer(1).dW, ref["dW_ij"], rtol=1e-12)


def test_update_matches_independent_computation(trace):
    ref = independent_step()
    for index, name in ((1, "W_ij_new"), (2, "W_jk_new"), (3, "W_kl_new")):
        np.testing.assert_allclose(trace.layer(index).W_new, ref[name], rtol=1e-12)
        # The seed keeps its biases at 1.0; so does its spec (update_bias = false).
        np.testing.assert_array_equal(trace.layer(index).b_new, B)


def test_seed_notation_maps_onto_ours():
    from glassnet.notation import seed_aliases, seed_name, weight_name

    aliases = seed_aliases(3)
    assert aliases["h1_in"] == "z1" and aliases["h1_out"] == "a1"
    assert aliases["O_in"] == "z3" and aliases["O_out"] == "a3"
    assert [weight_name(i) for i in (1, 2, 3)] == ["W_ij", "W_jk", "W_kl"]
    assert aliases["dW_kl"] == "dW3" and aliases["W_jk_new"] == "W2_new"
    assert seed_name("a2", 3) == "h2_out"
    assert seed_name("dL_da3", 3) == "dE_dO_out"
