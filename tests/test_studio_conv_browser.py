"""A CNN in the studio, in a real browser (Playwright driving Debian's chromium): the
bundled conv example opens in Explore with its feature maps drawn as grids, every cell a
number whose derivation opens on a click, highlighted by the step graph; at 390 px
nothing scrolls sideways; axe-core finds no serious violation.  The server, browser and
page fixtures are test_studio_browser's (each test fails on a console error or a request
that leaves the local server)."""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from _studio_server import serve_studio
from test_studio_browser import AXE, CHROMIUM, SHOTS, TOO_SMALL, Page, sync_api

from glassnet.spec import example_path

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI installs it: apt-get install chromium)"
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A studio of this module's own (as test_studio_browser starts one)."""
    with serve_studio() as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def conv_link(mode: str = "explore") -> str:
    """The bundled conv example as a shared link's fragment."""
    spec = tomllib.loads(example_path("conv").read_text(encoding="utf-8"))
    state = json.dumps({"spec": spec, "mode": mode})
    return "#s=" + base64.urlsafe_b64encode(state.encode()).decode().rstrip("=")


def engine_value(q: str, i: str) -> float:
    """The number ``q[i]`` (full index) from the engine's own trace of the conv example."""
    from glassnet.explain.maps import quantity_name
    from glassnet.spec import load_spec

    trace = load_spec("conv").trace()
    assert trace.graph is not None
    key = next(k for k in trace.graph.order() if quantity_name(k) == q)
    return float(np.asarray(trace.value(key))[tuple(int(e) for e in i.split(","))])


def test_conv_grids_cells_open_their_derivation(browser: Any, server: str) -> None:
    p = Page(browser, server)
    try:
        pg = p.open(conv_link())
        pg.wait_for_selector("#step .fmap button.cell")
        p.settle()
        # the picture: one box per layer with its output's shape
        boxes = pg.locator("#net li.lay").all_inner_texts()
        assert len(boxes) == 5 and "1×4×4" in boxes[0] and "conv2d" in boxes[1]
        assert "1×3×3" in boxes[1] and "max_pool2d" in boxes[2] and "→ 1\n" not in boxes[3]
        # every grid cell is a button, its shown number the engine's (4 digits)
        cells = pg.locator("#step .fmap button.cell")
        n = cells.count()
        assert n > 50
        seen = set()
        for k in range(n):
            b = cells.nth(k)
            q, i = b.get_attribute("data-q"), b.get_attribute("data-i")
            seen.add(q)
            shown = float(b.get_attribute("data-value") or "nan")
            assert shown == pytest.approx(engine_value(q, i), rel=1e-3, abs=1e-4), (q, i)
        assert {"x", "W1", "z1", "a1", "a2", "delta1", "dW1", "dL_da1"} <= seen
        # click z1[0,0,1,2]: its sum written out, the window's x and W1 lit as inputs
        pg.locator("#step button.cell[data-q='z1'][data-i='0,0,1,2']").first.click()
        pg.wait_for_selector("#detail.open .deriv .step")
        head = pg.inner_text("#detail h3")
        assert head == "z1[0,0,1,2]"
        pg.wait_for_selector("#step button.cell.src[data-q='x'][data-i='0,0,2,3']")
        lit = pg.eval_on_selector_all(
            "#step button.cell.src", "es => es.map(e => e.dataset.q + '[' + e.dataset.i + ']')"
        )
        assert set(lit) >= {"x[0,0,1,2]", "x[0,0,1,3]", "x[0,0,2,2]", "x[0,0,2,3]"}
        assert "W1[0,0,1,1]" in lit
        used = pg.eval_on_selector_all(
            "#step button.cell.use", "es => es.map(e => e.dataset.q + '[' + e.dataset.i + ']')"
        )
        assert "a1[0,0,1,2]" in used
        # the derivation's result is the engine's number
        text = pg.inner_text("#detail .deriv")
        assert f"{engine_value('z1', '0,0,1,2'):.4g}"[:4] in text
        # by keyboard: focus a max-pool output's cell, its derivation follows
        pg.locator("#step button.cell[data-q='a2'][data-i='0,0,0,0']").first.focus()
        pg.wait_for_function(
            "() => document.querySelector('#detail h3').textContent === 'a2[0,0,0,0]'"
        )
        pg.wait_for_selector("#detail .deriv .step")
        assert "max" in pg.inner_text("#detail .deriv")
        # Practice is for dense networks: one line, no retry
        pg.get_by_role("button", name="Practice").click()
        pg.wait_for_selector("#error:not([hidden])")
        err = pg.inner_text("#error")
        assert "dense" in err and "conv2d" in err and "\n" not in err.strip()
        assert pg.locator("#retry").count() == 0
        p.errors = [e for e in p.errors if "422" not in e]  # (the refused request, logged)
        SHOTS.mkdir(exist_ok=True)
        pg.get_by_role("button", name="Explore").click()
        p.settle()
        pg.screenshot(path=str(SHOTS / "conv-1280.png"), full_page=False)
    finally:
        p.close()


def test_conv_phone_no_sideways_scroll(browser: Any, server: str) -> None:
    p = Page(browser, server, 390, 844)
    try:
        pg = p.open(conv_link())
        pg.wait_for_selector("#step .fmap button.cell")
        p.settle()
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390
        small = pg.evaluate(TOO_SMALL)
        assert small == [], small[:10]
        pg.locator("#step button.cell[data-q='dW1'][data-i='0,0,1,0']").first.click()
        pg.wait_for_selector("#detail.open .deriv .step")
        p.settle()
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390
        SHOTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(SHOTS / "conv-390-derivation.png"))
        pg.locator("#detail .close").click()
        pg.screenshot(path=str(SHOTS / "conv-390.png"))
    finally:
        p.close()


@pytest.mark.skipif(
    not AXE.exists(), reason="axe-core is not installed (scripts/test.sh: npm install axe-core)"
)
def test_conv_axe_finds_no_serious_violation(browser: Any, server: str) -> None:
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 800})
    try:
        pg = context.new_page()
        pg.goto(server + conv_link())
        pg.wait_for_selector("#step .fmap button.cell")
        pg.locator("#step button.cell[data-q='z1'][data-i='0,0,0,0']").first.click()
        pg.wait_for_selector("#detail.open .deriv .step")
        pg.wait_for_function("() => document.querySelector('#status').textContent === ''")
        pg.wait_for_timeout(300)
        pg.add_script_tag(content=AXE.read_text())
        result = pg.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"][:3]])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == []
    finally:
        context.close()


def test_conv_learning_rate_applies(browser: Any, server: str) -> None:
    """The settings still apply to a CNN: a learning rate of 0.5 gives W′ = W − 0.5·dW
    (the rule written here; W and dW the engine's, which the rate does not change)."""
    p = Page(browser, server)
    try:
        pg = p.open(conv_link())
        pg.wait_for_selector("#step .fmap button.cell")
        p.settle()
        box = pg.locator("#lr")
        box.fill("0.5")
        box.press("Enter")
        want = engine_value("W1", "0,0,1,0") - 0.5 * engine_value("dW1", "0,0,1,0")
        cell = "#step button.cell[data-q='W_new1'][data-i='0,0,1,0']"
        pg.wait_for_function(
            "([sel, v]) => { const e = document.querySelector(sel);"
            " return e && Math.abs(Number(e.dataset.value) - v) < 1e-3; }",
            arg=[cell, want],
        )
        p.settle()
        assert float(pg.get_attribute(cell, "data-value") or "nan") == pytest.approx(want, abs=1e-4)
        assert pg.locator("#params input").count() == 0  # inputs and kernels: read-only
    finally:
        p.close()
