"""The studio's graph mode (``/graph``): an expression's circuit in a real browser
(Playwright driving Debian's chromium), and its two endpoints.

Every value and gradient the page shows is compared with the circuit's trace computed
here; clicking a number shows its derivation; bad input is one line on the page and a
4xx (never 500) from the API; requests from another origin are refused; no console
error and no request that leaves the local server; an axe-core scan finds no serious or
critical violation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from _studio_server import serve_studio
from hypothesis import given, settings
from hypothesis import strategies as st
from test_studio_browser import AXE, CHROMIUM, Page, sync_api

from glassnet.graphs import parse_expression, parse_values

CS231N = ("q = x + y\nf = q * z", "x=-2,y=5,z=-4")
NEURON = ("f = 1 / (1 + exp(-(w0 * x0 + w1 * x1 + w2)))", "w0=2,w1=-3,w2=-3,x0=-1,x1=-2")
MATRIX = ("D = x @ W + b\nf = sum(sigmoid(D) * D)", "x=[1,-2],W=[[0.5,-1,2],[1,0.25,-0.5]],b=0.1")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_studio() as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (CI installs it: apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    p = Page(browser, server)
    yield p
    p.close()


def link(expression: str, values: str) -> str:
    return f"graph#e={quote(expression)}&v={quote(values)}"


def settle(pg: Any) -> None:
    pg.wait_for_function(
        "() => document.body.dataset.ready === '1'"
        " && document.querySelector('#status').textContent === ''"
    )


def assert_numbers_are_the_trace(pg: Any, expression: str, values: str) -> int:
    """Every value and gradient button holds the circuit's trace (full precision)."""
    trace = parse_expression(expression).trace(parse_values(values))
    c = trace.circuit
    seen = 0
    for b in pg.locator("#nodes button.num").all():
        node, what = b.get_attribute("data-node"), b.get_attribute("data-what")
        got = np.array(json.loads(b.get_attribute("data-value")))
        want = trace.array(node) if what == "value" else trace.grad_array(node)
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
        seen += 1
    named = [n for n in c.order() if c.nodes[n].constant is None]
    assert seen == 2 * len(named)  # each node's value and gradient, nothing else
    return seen


@pytest.mark.parametrize(("expression", "values"), [CS231N, NEURON, MATRIX])
def test_every_number_is_the_traces(page: Page, expression: str, values: str) -> None:
    pg = page.open(link(expression, values))
    settle(pg)
    assert assert_numbers_are_the_trace(pg, expression, values) >= 10


def test_cs231n_numbers_and_a_gradients_derivation(page: Page) -> None:
    pg = page.open(link(*CS231N))
    settle(pg)
    # CS231n's figure: df/dx = -4, df/dy = -4, df/dz = 3.
    for node, shown in (("x", "-4.000"), ("y", "-4.000"), ("z", "3.000")):
        b = pg.locator(f"#nodes button[data-node='{node}'][data-what='grad']")
        assert b.text_content() == shown
    pg.locator("#nodes button[data-node='z'][data-what='grad']").click()
    pg.wait_for_function("() => document.body.dataset.explained === 'z:grad'")
    settle(pg)
    text = pg.locator("#detail").text_content()
    assert "Through f = q * z" in text and "swaps" in text
    assert pg.locator("#detail .deriv math").count() >= 2
    # A number in the picture opens its derivation too.
    pg.locator("#circuit text.pick[data-node='q'][data-what='value']").click()
    pg.wait_for_function("() => document.body.dataset.explained === 'q:value'")
    settle(pg)
    assert "3.000" in pg.locator("#detail").text_content()


def test_editing_the_values_redraws_and_a_bad_one_is_said(page: Page) -> None:
    pg = page.open(link(*CS231N))
    settle(pg)
    pg.fill("#vals", "x=1,y=2,z=3")
    pg.locator("#vals").press("Enter")
    settle(pg)
    assert_numbers_are_the_trace(pg, CS231N[0], "x=1,y=2,z=3")
    assert "x%3D1" in pg.evaluate("location.hash")  # the state is in the link
    pg.fill("#vals", "x=1,y=2")
    pg.locator("#vals").press("Enter")
    settle(pg)
    error = pg.locator("#error")
    assert error.is_visible() and "undefined variable" in error.text_content()
    assert "\n" not in error.text_content()
    pg.fill("#expr", "q = x + y\nf = foo(q) * z")
    pg.locator("#draw").click()
    settle(pg)
    assert "expected a function among" in error.text_content()
    pg.fill("#expr", CS231N[0])
    pg.fill("#vals", CS231N[1])
    pg.locator("#draw").click()
    settle(pg)
    assert error.is_hidden()
    # The browser logs each refused request (422) itself; nothing else went wrong.
    assert len(page.errors) == 2 and all("422" in e for e in page.errors), page.errors
    page.errors.clear()


def test_keyboard_reaches_every_number(page: Page) -> None:
    pg = page.open(link(*CS231N))
    settle(pg)
    pg.locator("#nodes button[data-node='x'][data-what='value']").focus()
    pg.keyboard.press("Tab")
    pg.wait_for_function("() => document.body.dataset.explained === 'x:grad'")
    name = pg.evaluate("document.activeElement.getAttribute('aria-label')")
    assert name == "df/dx, -4.000"


def test_the_network_studio_links_here(page: Page) -> None:
    pg = page.open()
    pg.get_by_role("link", name="circuits").click()
    pg.wait_for_selector("body[data-ready='1']")
    settle(pg)
    assert pg.locator("#nodes button.num").count() == 10  # CS231n's, by default


def _answer(pg: Any, name: str, text: str) -> tuple[str | None, str | None]:
    before = pg.evaluate("document.body.dataset.checked || '0'")
    box = pg.locator(f"#nodes input.ans[data-name='{name}']")
    box.fill(text)
    box.press("Enter")
    pg.wait_for_function(f"() => (document.body.dataset.checked || '0') !== '{before}'")
    settle(pg)
    return box.get_attribute("data-verdict"), box.get_attribute("data-mistake")


def test_practice_marks_each_box_as_it_is_typed(page: Page) -> None:
    """CS231n's circuit worked by a student (by hand): q = −2 + 5 = 3 (ok); then a wrong
    q = 4 carried into f = 4·(−4) = −16 (follows); df/dz written as z = −4 instead of
    q = 3 (the multiply gate not swapped); a box that is no number."""
    pg = page.open(link(*CS231N) + "&p=1")
    settle(pg)
    pg.wait_for_function("() => document.body.dataset.checked !== undefined")
    # A worksheet: no computed number anywhere on the page.
    text = pg.locator("main").inner_text()
    assert "-12" not in text and "3.000" not in text
    assert pg.locator("#nodes button.num").count() == 0
    assert _answer(pg, "q", "3") == ("ok", "")
    assert _answer(pg, "q", "4")[0] == "wrong"
    assert _answer(pg, "f", "-16") == ("follows", "")
    assert _answer(pg, "dz", "-4") == ("wrong", "multiply_not_swapped")
    assert "multiply gate" in pg.locator("#mark-dz").text_content()
    assert _answer(pg, "dq", "minus four")[0] == "bad"
    assert _answer(pg, "dq", "-4") == ("ok", "")
    assert pg.locator("#gprogress").text_content() == "1 of 7 ok"  # q, f and five gradients
    # Leaving practice shows the numbers again.
    pg.locator("#gpractice").uncheck()
    settle(pg)
    assert_numbers_are_the_trace(pg, *CS231N)


@pytest.mark.skipif(
    not AXE.exists(), reason="axe-core is not installed (scripts/test.sh: npm install axe-core)"
)
@pytest.mark.parametrize("case", ["derivation", "error", "practice"])
def test_axe_finds_no_serious_violation(browser: Any, server: str, case: str) -> None:
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 800})
    try:
        pg = context.new_page()
        pg.goto(server + (link(*MATRIX) if case != "practice" else link(*CS231N) + "&p=1"))
        settle(pg)
        if case == "practice":
            pg.wait_for_function("() => document.body.dataset.checked !== undefined")
            _answer(pg, "q", "4")
            _answer(pg, "dz", "-4")
            _answer(pg, "f", "x")
        elif case == "derivation":
            pg.locator("#nodes button[data-node='W'][data-what='grad']").click()
            pg.wait_for_function("() => document.body.dataset.explained === 'W:grad'")
        else:
            pg.fill("#vals", "x=[1,2,3]")
            pg.locator("#vals").press("Enter")
            pg.wait_for_selector("#error:not([hidden])")
        settle(pg)
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


# -- the API ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Any:
    pytest.importorskip("httpx", reason="starlette's test client needs httpx")
    from starlette.testclient import TestClient

    from glassnet.studio.app import create_app

    return TestClient(create_app(), base_url="http://127.0.0.1")


def test_api_answers_and_refuses(client: Any) -> None:
    body = {"expression": MATRIX[0], "values": MATRIX[1], "digits": 6}
    r = client.post("/api/circuit", json=body)
    assert r.status_code == 200
    nodes = {n["name"]: n for n in r.json()["trace"]["nodes"]}
    trace = parse_expression(MATRIX[0]).trace(parse_values(MATRIX[1]))
    np.testing.assert_allclose(nodes["W"]["grad"], trace.grad_array("W"), rtol=1e-15)
    r = client.post(
        "/api/circuit", json={**body, "values": {"x": [1, -2], "W": [[1, 2, 3], [4, 5, 6]], "b": 0}}
    )
    assert r.status_code == 200
    bad = [
        {**body, "expression": 3},
        {**body, "values": "x=[1,2"},
        {**body, "values": 7},
        {**body, "extra": 1},
        {**body, "round": 99},
        {**body, "expression": "f = x @ W"},
        {**body, "expression": "f = 1 / (x - x)", "values": "x=1"},
    ]
    for b in bad:
        r = client.post("/api/circuit", json=b)
        assert r.status_code == 422, (b, r.status_code)
        assert "\n" not in r.json()["error"]
    r = client.post("/api/circuit", json={**body, "expression": "x" * 30_000})
    assert r.status_code == 413
    cs = {"expression": CS231N[0], "values": CS231N[1]}
    r = client.post("/api/circuit", json={**cs, "practice": True})
    assert r.status_code == 200 and "trace" not in r.json() and "-12" not in r.text
    r = client.post("/api/circuit_check", json={**cs, "answers": {"q": "3", "dz": "-4", "f": ""}})
    assert r.json()["entries"] == [
        {"name": "q", "verdict": "ok", "mistake": None, "title": None},
        {
            "name": "dz",
            "verdict": "wrong",
            "mistake": "multiply_not_swapped",
            "title": "the multiply gate's local gradient not swapped: ∂(xy)/∂x written as x",
        },
    ]
    for b in (
        {**cs, "answers": {"w": "3"}},
        {**cs, "answers": [1]},
        {**body, "answers": {"D": "1"}},  # the page's boxes are numbers: glassnet check
        {**body, "practice": True},
        {**cs, "practice": "yes"},
    ):
        r = client.post("/api/circuit_check" if "answers" in b else "/api/circuit", json=b)
        assert r.status_code == 422, b
    for extra in ({"node": "nope"}, {"node": "W", "what": "both"}, {"node": 3}):
        r = client.post("/api/circuit_explain", json={**body, **extra})
        assert r.status_code == 422, extra
    r = client.post("/api/circuit_explain", json={**body, "node": "W", "what": "grad"})
    assert r.status_code == 200 and "<math" in r.json()["html"]
    # Same origin only: another page's request is refused; a form's text/plain too.
    r = client.post("/api/circuit", json=body, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post(
        "/api/circuit", content=json.dumps(body), headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415


_PIECES = ["x", "y", "=", "+", "*", "@", "(", ")", "sum", "exp", "[", "]", ",", "1", "\n", "f", "q"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=20),
    st.sampled_from(["x=1,y=2", "x=[1,2],y=[[1],[2]]", "x=[1", ""]),
)
def test_api_never_answers_500(text: list[str], values: str) -> None:
    from starlette.testclient import TestClient

    from glassnet.studio.app import create_app

    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        r = c.post("/api/circuit", json={"expression": "".join(text), "values": values})
    assert r.status_code in (200, 413, 422), r.text


@pytest.mark.parametrize("practice", [False, True])
def test_a_phone_does_not_scroll_sideways(browser: Any, server: str, practice: bool) -> None:
    p = Page(browser, server, width=380, height=800)
    try:
        which = link(*CS231N) + "&p=1" if practice else link(*MATRIX)
        pg = p.open(which)
        settle(pg)
        assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        p.close()
