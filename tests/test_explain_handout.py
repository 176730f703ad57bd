"""Issue 16, the handout: what a lecturer hands out must be honest to its precision,
readable on a phone and on paper, and short.  These tests read the documents explain
writes (Markdown, HTML) and the engine's trace; the browser checks drive Chromium."""

from __future__ import annotations

import re

import pytest

import glassnet as gn
from glassnet.explain import derive, explain


def _numbers(md: str) -> list[str]:
    """Every number in the maths of a Markdown document."""
    maths = "\n".join(re.findall(r"\$\$\n(.*?)\n\$\$", md, flags=re.S))
    return re.findall(r"(?<![\w.{])-?\d+\.\d+(?![\d}])", maths)


# -- honest precision ----------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 4])
def test_hand_mode_keeps_trailing_zeros(k: int) -> None:
    trace = gn.load_spec("seed").trace(round_to=k)
    md = explain(trace, format="md")
    # lr is a setting, written as given (0.01); every engine value has exactly K
    # decimals (the seed's targets too); the steps ΔW are shown exactly, with more.
    nums = [n for n in _numbers(md) if float(n) != trace.lr]
    with_k = [n for n in nums if len(n.split(".")[1]) == k]
    assert len(with_k) > 0.8 * len(nums)
    assert any(n.endswith("0") for n in with_k)  # 2.8230, 0.0100: the zeros stay
    assert all(len(n.split(".")[1]) >= k for n in nums if "e" not in n)


@pytest.mark.parametrize("digits", [3, 6])
def test_digits_mode_keeps_significant_zeros(digits: int) -> None:
    trace = gn.load_spec("seed").trace()
    md = explain(trace, format="md", digits=digits)
    for n in (n for n in _numbers(md) if float(n) != trace.lr):  # lr: as given
        significant = n.lstrip("-").replace(".", "").lstrip("0")
        assert len(significant) == digits or n.lstrip("-0.") == "", n
    if digits == 6:
        assert "0.397500" in md  # the seed's W'_{i1j2}, 0.3975 exactly


def test_each_update_shows_its_step_and_hand_mode_says_when_it_is_below_the_rounding() -> None:
    trace = gn.load_spec("seed").trace(round_to=4)
    doc = derive(trace).document
    updates = [c for c in doc.calculations() if c.steps]
    n_weights = sum(lt.W.size for lt in trace.layers)
    assert len(updates) == n_weights  # one W' = W + ΔW line per weight of the seed
    unchanged = sum(int(((lt.W_new == lt.W) & (lt.dW != 0)).sum()) for lt in trace.layers)
    md = explain(trace, format="md")
    assert unchanged > 0
    assert md.count("does not change at 4 decimals") == unchanged
    # The step is visible even where the weight does not move: ΔW ≠ 0 is printed.
    for lt in trace.layers:
        for g in lt.dW[(lt.W_new == lt.W) & (lt.dW != 0)]:
            shown = f"{float(-trace.lr * g):.10f}".rstrip("0")
            assert shown in md, shown
