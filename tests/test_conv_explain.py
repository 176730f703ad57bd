"""``glassnet explain`` for a CNN step (issue 21): feature maps drawn as grids, each
position written out as the sum it is, and every "numbers put in" line arithmetic that
holds (tests/_explain_arith.py: plain interval arithmetic sharing no code with glassnet),
for stride 1 and 2, padding 0 and 1, 1–3 channels, max and average pooling, batch 1 and
3, in digits mode and hand mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _explain_arith import Precision, Unevaluable, holds

import glassnet as gn
from glassnet.explain import derive
from glassnet.explain.document import Grids
from glassnet.mathtree import tex
from glassnet.spec import parse_spec
from glassnet.toml_writer import to_toml


def _spec(*, stride: int, padding: int, c_in: int, c_out: int, pool: str, batch: int, seed: int):
    """A conv → conv → pool → flatten → dense softmax spec with random numbers: a 7×7
    input, a first 2×2 convolution (so the second's input gradient is on the page), then
    the convolution under test (3×3 kernel with padding, 2×2 without)."""
    rng = np.random.default_rng(seed)
    k = 3 if padding else 2
    h = 6
    oh = (h + 2 * padding - k) // stride + 1
    ph = (oh - 2) // 2 + 1
    n_flat = c_out * ph * ph
    data = {
        "loss": "cross_entropy",
        "lr": 0.1,
        "input": np.round(rng.uniform(-1, 1, (batch, c_in, h + 1, h + 1)), 2).tolist(),
        "target": np.eye(3)[rng.integers(0, 3, batch)].tolist(),
        "layers": [
            {
                "type": "conv2d",
                "weights": np.round(rng.uniform(-1, 1, (c_in, c_in, 2, 2)), 2).tolist(),
                "bias": np.round(rng.uniform(-0.5, 0.5, c_in), 2).tolist(),
                "activation": "tanh",
            },
            {
                "type": "conv2d",
                "weights": np.round(rng.uniform(-1, 1, (c_out, c_in, k, k)), 2).tolist(),
                "bias": np.round(rng.uniform(-0.5, 0.5, c_out), 2).tolist(),
                "stride": stride,
                "padding": padding,
                "activation": "relu",
            },
            {"type": pool, "size": 2},
            {"type": "flatten"},
            {
                "weights": np.round(rng.uniform(-1, 1, (n_flat, 3)), 2).tolist(),
                "activation": "softmax",
            },
        ],
    }
    return parse_spec(to_toml(data), "cnn.toml")


def _check(trace, digits: int, **options) -> tuple[int, set[str]]:
    """Assert every Calculation holds; (lines checked, kinds written out)."""
    doc = derive(trace, digits=digits, **options).document
    prec = Precision(digits, doc.round_to)
    checked, bad, kinds = 0, [], set()
    for calc in doc.calculations():
        kinds.add(tex(calc.lhs).split("_")[0].split("[")[0].strip())
        for line in (calc.subst, *calc.steps):
            try:
                ok, why = holds(line, calc.result, prec)
            except Unevaluable:
                continue
            checked += 1
            if not ok:
                bad.append(f"{tex(calc.lhs)} = {tex(line)} = {tex(calc.result)}: {why}")
    assert not bad, "\n".join(bad[:5])
    return checked, kinds


CASES = [
    (stride, padding, c_in, c_out, pool, batch)
    for stride, padding in ((1, 0), (1, 1), (2, 0), (2, 1))
    for c_in, c_out in ((1, 1), (2, 3), (3, 2))
    for pool in ("max_pool2d", "avg_pool2d")
    for batch in (1, 3)
    if (c_in + stride + padding + batch) % 2 == 0  # half the grid, every value of each axis
]


@pytest.mark.parametrize(("stride", "padding", "c_in", "c_out", "pool", "batch"), CASES)
def test_arithmetic_holds(stride, padding, c_in, c_out, pool, batch) -> None:
    spec = _spec(
        stride=stride, padding=padding, c_in=c_in, c_out=c_out, pool=pool, batch=batch, seed=7
    )
    checked, kinds = _check(spec.trace(), 4, max_samples=batch)
    # z, the pool's a, dW, db and both input gradients are written out position by position
    assert {"z", "a", r"\mathit{dW}", r"\mathit{db}", "dL"} <= kinds, kinds
    assert checked > 20


@pytest.mark.parametrize("round_to", [2, 3])
@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
def test_arithmetic_holds_in_hand_mode(round_to: int, pool: str) -> None:
    spec = _spec(stride=1, padding=1, c_in=2, c_out=2, pool=pool, batch=1, seed=3)
    checked, _ = _check(spec.trace(round_to=round_to), 4)
    assert checked > 40


def test_example_numbers_by_hand() -> None:
    """The shipped example (examples/conv.toml), its first position worked by hand:
    z[0,0] = 0.1·0.1 − 0.2·0.2 + 0.3·0.5 + 0.4·0.6 + 0 = 0.36; the 2×2 max pool of the
    ReLU'd 3×3 map's top-left window picks a1[1,1] = 0.66 (flat index 4), so δ comes
    back to that cell only."""
    doc = derive(gn.load_spec("conv").trace(), digits=4).document
    calcs = doc.calculations()
    first_z = next(c for c in calcs if tex(c.lhs).startswith("z_{1}"))
    assert "[0,0,0]" in tex(first_z.lhs) and float(first_z.result.text) == pytest.approx(0.36)
    pool = next(c for c in calcs if tex(c.lhs).startswith("a_{2}"))
    assert float(pool.result.text) == pytest.approx(0.66)
    routed = next(c for c in calcs if tex(c.lhs).startswith("dL_da_{1}"))
    assert "[0,1,1]" in tex(routed.lhs)  # the arg-max cell is written out first
    grids = [b for b in doc.blocks() if isinstance(b, Grids)]
    marked = [g for b in grids for g in b.grids if "arg" in g.marks.values()]
    assert marked and marked[0].marks == {(1, 1): "arg"}


def test_padding_and_stride_drawn() -> None:
    """The first position's window on a padded input: the border of 0s is drawn, the
    window reads it, and with stride 2 the next window starts two cells along."""
    spec = _spec(stride=2, padding=1, c_in=1, c_out=1, pool="max_pool2d", batch=1, seed=1)
    doc = derive(spec.trace()).document
    where = next(
        b for b in doc.blocks() if isinstance(b, Grids) and b.caption.startswith("Where z2")
    )
    g = where.grids[0]
    assert len(g.cells) == 8 and g.pad == 1  # 6×6 and a border of one 0 each side
    assert all(c == "0" for c in g.cells[0])
    read = {rc for rc, m in g.marks.items() if m in ("read", "both")}
    nxt = {rc for rc, m in g.marks.items() if m in ("next", "both")}
    assert read == {(r, c) for r in range(3) for c in range(3)}
    assert nxt == {(r, c) for r in range(3) for c in range(2, 5)}  # moved by the stride
    assert "padding" in where.legend and "moves 2 cells along" in where.legend


def test_cross_correlation_named_and_backward_words() -> None:
    md = derive(gn.load_spec("conv").trace()).markdown()
    assert "cross-correlation" in md and "flip" in md
    assert r"x \star \delta _{1}" in md  # dW: the correlation of the input with δ
    html = derive(
        _spec(stride=1, padding=0, c_in=1, c_out=1, pool="avg_pool2d", batch=1, seed=2).trace()
    ).html()
    assert "rot180" in html and "full convolution" in html
    assert 'class="fmap"' in html and 'data-q="z2" data-i="0,0,0,0"' in html


@pytest.mark.parametrize("fmt", ["md", "html", "ipynb"])
def test_cli_formats(tmp_path, fmt: str) -> None:
    from glassnet.cli import main

    out = tmp_path / f"page.{fmt}"
    assert main(["explain", "conv", "-o", str(out), "--format", fmt]) == 0
    text = out.read_text()
    assert "0.3600" in text and "▲" in text
    if fmt == "ipynb":
        json.loads(text)


def test_cli_hand_mode(tmp_path) -> None:
    from glassnet.cli import main

    out = tmp_path / "page.md"
    assert main(["explain", "conv", "--round", "2", "-o", str(out)]) == 0
    text = out.read_text()
    assert "0.36" in text and "0.3600" not in text


def test_every_calculation_is_the_trace_value() -> None:
    """Each written-out result is the trace's own number at that index (no second maths)."""
    spec = _spec(stride=2, padding=1, c_in=2, c_out=2, pool="avg_pool2d", batch=3, seed=5)
    tr = spec.trace()
    doc = derive(tr, digits=6, max_samples=3).document
    n = 0
    for calc in doc.calculations():
        lhs = calc.lhs
        idx = tuple(int(e) for e in str(lhs.sample).split(","))
        kind = {"δ": "delta"}.get(lhs.base, lhs.base)
        layer = int(lhs.sub[0][0])
        assert float(calc.result.text) == pytest.approx(
            float(tr.value((kind, layer))[idx]), rel=1e-5, abs=1e-6
        )
        n += 1
    assert n > 100


# -- in Chromium: nothing scrolls sideways at 390 and 1280 px ---------------------------------

CHROMIUM = "/usr/bin/chromium"

LAYOUT_JS = """() => {
  const root = document.documentElement;
  const boxes = [...document.querySelectorAll('.step, .eq, .maps, .fmap, details, p')];
  const grids = [...document.querySelectorAll('.fmap td')].filter(t => t.checkVisibility());
  return {page: root.scrollWidth - root.clientWidth, cells: grids.length,
          over: boxes.filter(b => b.scrollWidth > b.clientWidth + 1)
                     .map(b => b.className + ': '
                               + b.textContent.replace(/\\s+/g, ' ').slice(0, 60))};
}"""


def test_pages_fit_in_chromium(tmp_path) -> None:
    """The example and a 3-channel padded stride-2 page, every fold open: no sideways
    scrolling of the page or of any block at a phone's 390 px and a desktop's 1280 px."""
    from pathlib import Path

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    pages = {
        "example": derive(gn.load_spec("conv").trace()).html(),
        "padded": derive(
            _spec(stride=2, padding=1, c_in=3, c_out=2, pool="max_pool2d", batch=1, seed=4).trace()
        ).html(),
        "batch-hand": derive(
            _spec(stride=1, padding=1, c_in=1, c_out=2, pool="avg_pool2d", batch=3, seed=6).trace(
                round_to=3
            )
        ).html(),
    }
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for name, html in pages.items():
                path = tmp_path / f"{name}.html"
                path.write_text(html, encoding="utf-8")
                for width in (390, 1280):
                    page = browser.new_page(viewport={"width": width, "height": 900})
                    page.goto(path.as_uri())
                    page.evaluate(
                        "document.querySelectorAll('details').forEach(d => d.open = true)"
                    )
                    r = page.evaluate(LAYOUT_JS)
                    page.close()
                    assert r["cells"] > 30, (name, width)
                    assert r["page"] <= 0 and r["over"] == [], (name, width, r["over"][:3])
        finally:
            browser.close()


def test_weight_gradient_window_is_on_the_input() -> None:
    """dW[o,c,p,q] reads x_pad at (i·stride + p, j·stride + q) for every position: with
    padding 1 and stride 2 on a 6×6 map, dW[0,0,0,0] reads the padded map's rows and
    columns 0, 2, 4 (drawn on the layer's input, the border being the padding)."""
    spec = _spec(stride=2, padding=1, c_in=1, c_out=1, pool="avg_pool2d", batch=1, seed=4)
    doc = derive(spec.trace()).document
    where = next(
        b for b in doc.blocks() if isinstance(b, Grids) and b.caption.startswith("Where dW2")
    )
    g = where.grids[0]
    assert g.quantity == "a1" and g.pad == 1
    read = {rc for rc, m in g.marks.items() if m in ("read", "both")}
    assert read == {(r, c) for r in (0, 2, 4) for c in (0, 2, 4)}


# -- the studio: a CNN opens in Explore; what is for dense networks says so in one line ---------


def test_studio_opens_a_cnn_and_refuses_practice_in_one_line() -> None:
    """Every way in (an example, an upload, a request with the spec) opens a conv spec;
    a worksheet (practice) is for dense layers: a 4xx naming the layer.  The grids and
    links themselves: tests/test_studio_conv_api.py."""
    import tomllib

    pytest.importorskip("httpx", reason="httpx is not installed (Starlette's TestClient needs it)")
    from starlette.testclient import TestClient

    from glassnet.spec import example_path
    from glassnet.studio.app import create_app

    client = TestClient(create_app(), base_url="http://127.0.0.1")
    text = example_path("conv").read_text(encoding="utf-8")
    spec = tomllib.loads(text)
    answers = [
        client.get("/api/example/conv"),
        client.post("/api/load", json={"name": "conv.toml", "text": text}),
        client.post("/api/step", json={"spec": spec}),
        client.post("/api/explain", json={"spec": spec}),
        client.post("/api/links", json={"spec": spec, "quantity": "z1", "index": "0,0,0,0"}),
    ]
    for r in answers:
        assert r.status_code == 200, (r.request.url, r.status_code, r.text[:200])
    r = client.post("/api/sheet", json={"spec": spec})
    assert 400 <= r.status_code < 500
    err = r.json()["error"]
    assert "conv2d" in err and "layer 1" in err and "\n" not in err
