"""Issue 26, a picture you can read: at 1280 px no label of the network's picture is
under 11 px, a legend says what the colours and line widths mean, and on small
networks the step's numbers are on the picture — each unit's z and δ, each weight and
its gradient (and, on a network of Mazur's shape, each weight on its line, as in his
figure) — every one the trace's value."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.explain import derive, explain
from glassnet.explain.svg import network_svg
from glassnet.layers import Dense

from helpers import MAZUR

CHROMIUM = "/usr/bin/chromium"


def _wide_trace():
    rng = np.random.default_rng(7)
    layers = [
        Dense(rng.normal(size=(4, 6)), rng.normal(size=6) - 0.5, "tanh"),
        Dense(rng.normal(size=(6, 3)), rng.normal(size=3) - 0.5, "softmax"),
    ]
    x = rng.normal(size=(2, 4))
    return gn.trace_step(gn.Network(layers), x, np.eye(3)[[0, 2]], loss="cross_entropy", lr=0.1)


def _texts(svg: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg)]


def test_the_step_s_numbers_are_on_a_small_network_s_picture() -> None:
    for trace in (gn.parse_spec(MAZUR, "mazur.toml").trace(), gn.load_spec("seed").trace()):
        fmt = derive(trace).document.fmt
        texts = _texts(network_svg(trace, fmt=fmt))
        for lt in trace.layers:
            for u in range(lt.z.shape[1]):
                assert f"z {fmt(lt.z[0, u])}" in texts and f"δ {fmt(lt.delta[0, u])}" in texts
                assert fmt(lt.a[0, u]) in texts
            for w, g in zip(lt.W.ravel(), lt.dW.ravel(), strict=True):
                assert texts.count(fmt(w)) >= 1 and fmt(g) in texts
    # Mazur's shape: each weight on its line too (the grid has it a second time).
    mazur = gn.parse_spec(MAZUR, "mazur.toml").trace()
    fmt = derive(mazur).document.fmt
    texts = _texts(network_svg(mazur, fmt=fmt))
    assert all(texts.count(fmt(w)) == 2 for lt in mazur.layers for w in lt.W.ravel())


def test_the_legend_says_what_colours_and_widths_mean() -> None:
    for trace in (gn.load_spec("seed").trace(), _wide_trace()):
        svg = network_svg(trace)
        legend = " ".join(_texts(svg[svg.index('<g class="legend"') :]))
        assert "weight ≥ 0" in legend and "weight &lt; 0" in legend
        assert "the wider the line, the larger |W|" in legend
        assert "input" in legend and "hidden unit" in legend and "output unit" in legend


def test_no_label_is_under_11_px_at_1280(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    pages = {
        "mazur": explain(gn.parse_spec(MAZUR, "mazur.toml").trace(), format="html"),
        "seed": explain(gn.load_spec("seed").trace(), format="html"),
        "wide": explain(_wide_trace(), format="html"),
    }
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for name, html in pages.items():
                path = tmp_path / f"{name}.html"
                path.write_text(html, encoding="utf-8")
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(path.as_uri())
                sizes = page.evaluate(
                    """() => {
                      const svg = document.querySelector('svg.network');
                      const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
                      return [...svg.querySelectorAll('text')].map(
                        t => parseFloat(getComputedStyle(t).fontSize) * scale);
                    }"""
                )
                page.close()
                assert len(sizes) > 20, name
                assert min(sizes) >= 11, (name, min(sizes))
        finally:
            browser.close()
