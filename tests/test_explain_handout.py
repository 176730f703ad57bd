"""Issue 16, the handout: what a lecturer hands out must be honest to its precision,
readable on a phone and on paper, and short.  These tests read the documents explain
writes (Markdown, HTML) and the engine's trace; the browser checks drive Chromium."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.cli import main
from glassnet.explain import derive, explain
from glassnet.layers import Dense


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
    updates = [c for c in doc.calculations() if getattr(c.lhs, "prime", False)]
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


# -- small defects -------------------------------------------------------------------------


def _net(acts: list[str], sizes: list[int], seed: int = 3) -> gn.Network:
    rng = np.random.default_rng(seed)
    layers = [
        Dense(rng.normal(size=(a, b)), rng.normal(size=b) - 0.5, act)
        for a, b, act in zip(sizes[:-1], sizes[1:], acts, strict=True)
    ]
    return gn.Network(layers)


def test_no_doubled_parentheses() -> None:
    net = _net(["tanh", "relu", "sigmoid"], [2, 3, 3, 2])
    x = np.array([[-1.0, 0.5], [0.3, -2.0]])
    md = explain(gn.trace_step(net, x, [[0.0, 1.0], [1.0, 0.0]], loss="mse", lr=0.1), format="md")
    md += explain(gn.load_spec("seed").trace(), format="md")
    assert r"\left(-" in md  # negative numbers in sums keep their parentheses
    for doubled in (r"\tanh\left(\left(", r"\text{, }\left(", r"\mathrm{e}^{\left(-"):
        assert doubled not in md, doubled
    assert r"\tanh\left(-" in md and r"\max\left(0\text{, }-" in md


def test_passes_are_sections_with_their_layers_inside() -> None:
    md = explain(gn.load_spec("seed").trace(), format="md")
    heads = re.findall(r"^(#+) (.*)$", md, flags=re.M)
    for k, (hashes, title) in enumerate(heads):
        if re.match(r"(Forward|Backward|Update), layer", title):
            assert hashes == "###", title
            parent = next(t for h, t in reversed(heads[:k]) if h == "##")
            assert parent.split(",")[0].lower().startswith(f"the {title.split(',')[0].lower()}")


def test_caption_mentions_grids_only_when_drawn() -> None:
    seed = explain(gn.load_spec("seed").trace(), format="html")
    assert "the grids give each weight" in seed
    net = _net(["tanh", "softmax"], [5, 6, 3])
    md = explain(
        gn.trace_step(net, np.ones(5), np.eye(3)[0], loss="cross_entropy", lr=0.1), format="html"
    )
    assert "<figcaption>" in md and "grids" not in md


def test_no_seed_specific_words_elsewhere_and_the_letter_matches() -> None:
    net = _net(["relu", "sigmoid"], [2, 2, 2])
    md = explain(gn.trace_step(net, [1.0, -1.0], [0.0, 1.0], loss="mse", lr=0.1), format="md")
    assert "seed" not in md.lower()
    assert "Only the term of output k depends on that output, so:" in md  # layer 2 -> k
    assert r"\frac{\partial E}{\partial h1_{\mathrm{out}k}}" not in md


# -- order that teaches --------------------------------------------------------------------


def test_every_update_comes_after_the_whole_backward_pass() -> None:
    trace = gn.load_spec("seed").trace()
    doc = derive(trace).document
    kinds = [s.kind for s in doc.sections]
    last_backward = max(k for k, kind in enumerate(kinds) if kind == "backward")
    first_update = min(k for k, kind in enumerate(kinds) if kind == "update")
    assert first_update > last_backward
    assert sum(kind == "update" for kind in kinds) == len(trace.layers)
    md = explain(trace, format="md")
    assert md.count("before the update") >= len(trace.layers) - 1


# -- Markdown that renders on GitHub -------------------------------------------------------


def test_markdown_file_links_its_picture_written_beside_it(tmp_path, monkeypatch) -> None:
    from glassnet.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["explain", "seed", "-o", "page.md"]) == 0
    md = (tmp_path / "page.md").read_text()
    svg = (tmp_path / "page.svg").read_text()
    assert "data:" not in md
    assert 'src="page.svg"' in md
    assert svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg


def test_markdown_to_stdout_has_no_picture_but_says_how_to_get_one(capsys) -> None:
    from glassnet.cli import main

    assert main(["explain", "seed", "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "<img" not in out and "data:" not in out
    assert "-o page.md" in out


# -- layout, in Chromium -------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    return sync_api


def _wide_network_trace():
    """A 4-6-3 network with a batch: the issue's overflowing case."""
    net = _net(["tanh", "softmax"], [4, 6, 3], seed=7)
    rng = np.random.default_rng(7)
    return gn.trace_step(
        net, rng.normal(size=(2, 4)), np.eye(3)[[0, 2]], loss="cross_entropy", lr=0.1
    )


OVERFLOW_JS = """() => {
  const boxes = [...document.querySelectorAll('.step, .eq, figure, details, table, p')];
  const root = document.documentElement;
  return {n: boxes.length, page: root.scrollWidth - root.clientWidth,
          over: boxes.filter(b => b.scrollWidth > b.clientWidth + 1)
                     .map(b => b.textContent.replace(/\\s+/g, ' ').slice(0, 60))};
}"""


def test_no_box_and_no_page_overflows_from_phone_to_desktop(tmp_path: Path) -> None:
    sync_api = _browser()
    seed_cli = tmp_path / "seed-cli.html"  # with the tutorial's errata and the after-step
    assert main(["explain", "seed", "-o", str(seed_cli)]) == 0
    pages = {
        "seed": explain(gn.load_spec("seed").trace(), format="html"),
        "seed-cli": seed_cli.read_text(encoding="utf-8"),
        "wide": explain(_wide_network_trace(), format="html"),
        "wide-columns": explain(_wide_network_trace(), format="html", notation="columns"),
    }
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for name, html in pages.items():
                path = tmp_path / f"{name}.html"
                path.write_text(html)
                for width in (360, 390, 1000, 1280):
                    page = browser.new_page(viewport={"width": width, "height": 800})
                    page.goto(path.as_uri())
                    r = page.evaluate(OVERFLOW_JS)
                    assert r["n"] > 50
                    assert r["page"] <= 0, (name, width)
                    assert not r["over"], (name, width, r["over"][:3])
                    page.close()
        finally:
            browser.close()


def test_printed_page_has_a_readable_title_and_breaks_between_sections(tmp_path: Path) -> None:
    """``--print full``: every section on a page of its own (the default print keeps
    pages full: tests/test_explain_print.py)."""
    sync_api = _browser()
    path = tmp_path / "seed.html"
    path.write_text(derive(gn.load_spec("seed").trace()).html(print_mode="full"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(path.as_uri())
            page.emulate_media(media="print")
            title, header_bg, body_bg, breaks = page.evaluate(
                """() => {
                  const h = document.querySelector('header.top');
                  const hs = getComputedStyle(h);
                  const clear = hs.backgroundColor === 'rgba(0, 0, 0, 0)';
                  const bg = hs.backgroundImage === 'none' && clear
                    ? getComputedStyle(document.body).backgroundColor : hs.backgroundColor;
                  const h2 = [...document.querySelectorAll('main > section > h2')];
                  return [getComputedStyle(h.querySelector('h1')).color, bg,
                          getComputedStyle(document.body).backgroundColor,
                          h2.filter(e => getComputedStyle(e).breakBefore === 'page').length];
                }"""
            )
            assert title not in (header_bg, body_bg)  # not white on white
            assert breaks >= 5
        finally:
            browser.close()


def test_passes_are_labelled_in_words_and_coloured_apart() -> None:
    html = explain(gn.load_spec("seed").trace(), format="html")
    assert html.count('<span class="pass">forward →</span>') == 3
    assert html.count('<span class="pass">← backward</span>') == 3
    assert "section.backward .step { border-left-color" in html


# -- shorter -------------------------------------------------------------------------------


def _text(node) -> str:
    from glassnet.mathtree import Num, Paren

    if isinstance(node, Paren):
        node = node.inner
    assert isinstance(node, Num), node
    return node.text


@pytest.mark.parametrize("round_to", [None, 3])
def test_summary_tables_are_the_trace(round_to) -> None:
    """Each table cell is the trace's value at the page's precision."""
    from glassnet.explain.document import Table

    trace = _wide_network_trace() if round_to is None else gn.load_spec("seed").trace(round_to=3)
    doc = derive(trace).document
    tables = [b for b in doc.blocks() if isinstance(b, Table) and "layer" in b.caption.lower()]
    assert len(tables) == 2 * len(trace.layers)
    close = (
        (lambda t, v: abs(float(t) - v) <= 0.5e-3)
        if round_to
        else (lambda t, v: abs(float(t) - v) <= 5e-4 * max(abs(v), 1e-12))
    )
    for table in tables:
        layer = int(re.search(r"layer (\d+)", table.caption, flags=re.I).group(1))  # type: ignore[union-attr]
        lt = trace.layer(layer)
        if "weights" in table.caption:
            assert len(table.rows) == lt.W.size
            for k, (_, w, g, step, new) in enumerate(table.rows):
                i, j = divmod(k, lt.W.shape[1])
                assert close(_text(w), lt.W[i, j]) and close(_text(g), lt.dW[i, j])
                assert close(_text(new), lt.W_new[i, j])
                if round_to:  # hand mode: the engine's values with exactly K decimals
                    assert all(len(_text(c).split(".")[1]) == round_to for c in (w, g, new))
                assert float(_text(step)) == pytest.approx(-trace.lr * lt.dW[i, j], rel=1e-3)
        else:
            batch = trace.x.shape[0] > 1
            for r in table.rows:
                s, j = (int(r[0]) - 1, int(r[1]) - 1) if batch else (0, int(r[0]) - 1)
                cells = [_text(c) for c in r[2 if batch else 1 :]]
                want = [lt.z[s, j], lt.a[s, j], lt.dL_da[s, j]]
                if not lt.jacobian:
                    want.append(lt.da_dz[s, j])
                want.append(lt.delta[s, j])
                assert all(close(c, v) for c, v in zip(cells, want, strict=True)), (r, want)


def test_every_number_is_still_on_the_page() -> None:
    """Folding hides nothing: every per-unit value of the trace is in the HTML."""
    trace = gn.load_spec("seed").trace()
    html = explain(trace, format="html")
    fmt = derive(trace).document.fmt
    for lt in trace.layers:
        for name in ("z", "a", "dL_da", "delta", "dW", "W_new"):
            for v in np.asarray(getattr(lt, name)).ravel():
                assert f"<mn>{fmt(v).replace('-', '−')}</mn>" in html, (lt.index, name, v)
    assert html.count("<details>") >= 15


def test_the_seed_page_is_under_half_its_former_height(tmp_path: Path) -> None:
    """Before issue 16 the seed page was 20 945 px tall at 1280 px in Chromium.  Measured
    on the page the issue names, ``glassnet explain seed -o seed.html``: with the error
    after the step and the tutorial's errata."""
    sync_api = _browser()
    path = tmp_path / "seed.html"
    assert main(["explain", "seed", "-o", str(path)]) == 0
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(path.as_uri())
            height = page.evaluate("document.documentElement.scrollHeight")
        finally:
            browser.close()
    assert height < 20945 / 2


# -- why, once per rule; the notation bridge -----------------------------------------------


def test_each_rule_has_its_why_once_beside_its_first_use() -> None:
    from glassnet.activations import activation_class, get_activation, names
    from glassnet.activations.base import Activation
    from glassnet.losses import Loss, get_loss

    # Every activation and loss writes its own derivation (not the base class's default).
    for name in names():
        assert activation_class(name).why is not Activation.why, name
    for loss in ("cross_entropy", "binary_cross_entropy", "mse", "half_sse"):
        assert type(get_loss(loss)).why is not Loss.why, loss
    trace = gn.load_spec("seed").trace()  # relu, sigmoid, softmax; binary cross-entropy
    html = explain(trace, format="html")
    for lt in trace.layers:
        why = get_activation(lt.activation).why()
        assert html.count(escape(why)[:60]) == 1, lt.activation
    assert html.count(escape(get_loss(trace.loss_name).why())[:40]) == 1
    assert html.count("Why is ∂(input)/∂W the previous layer") == 1
    # Two layers with the same activation: one why.
    net = _net(["sigmoid", "sigmoid"], [2, 2, 2])
    md = explain(gn.trace_step(net, [1.0, 0.5], [0.0, 1.0], loss="mse", lr=0.1), format="md")
    assert md.count("Why is this sigmoid's derivative?") == 1


def test_a_notation_glossary_at_the_top() -> None:
    html = explain(gn.load_spec("seed").trace(), format="html")
    glossary = html.index("Notation: this page")
    assert glossary < html.index('<section class="sec network">')
    for word in ("Mazur", "Nielsen", "layer.weight[j, i]", "W transposed"):
        assert word in html[glossary : glossary + 6000], word


# -- the payoff: the error after the step --------------------------------------------------


def _seed_after_loss_by_hand() -> float:
    """The seed's error after one step, from the updated weights with plain NumPy:
    relu, sigmoid, softmax, binary cross-entropy (the seed's network)."""
    trace = gn.load_spec("seed").trace()
    a = trace.x
    for lt, f in zip(
        trace.layers,
        (
            lambda z: np.maximum(z, 0),
            lambda z: 1 / (1 + np.exp(-z)),
            lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True),
        ),
        strict=True,
    ):
        a = f(a @ lt.W_new + lt.b_new)
    y = trace.y
    return float(-(y * np.log(a) + (1 - y) * np.log(1 - a)).sum() / y.shape[0])


def test_the_page_ends_with_the_error_before_and_after(capsys) -> None:
    from glassnet.cli import main

    assert main(["explain", "seed", "--format", "md"]) == 0
    md = capsys.readouterr().out
    tail = md[md.index("## After the step") :]
    shown = float(re.search(r"\| \$E'\$ \| \$(-?\d+\.\d+)\$", tail).group(1))  # type: ignore[union-attr]
    before = float(re.search(r"\| \$E\$ \| \$(-?\d+\.\d+)\$", tail).group(1))  # type: ignore[union-attr]
    assert shown == pytest.approx(_seed_after_loss_by_hand(), abs=5e-4)
    assert shown < before
    assert "The step lowered the error" in tail
