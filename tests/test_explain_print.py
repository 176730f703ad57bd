"""Issue 26, the page on paper: printed by Chromium (``page.pdf``, A4), a derivation
prints what is open on screen — folded parts folded, each saying so — in at most the
pages the issue sets (Mazur's 2-2-2 page 6, the seed's 10, a 4-6-3 tanh/softmax batch
of 2 10), with the title and "page n of N" in every footer and no box cut across two
pages.  ``--print full`` prints every folded part open.

The PDF is read back with pypdf (its text, page by page).  Whether a box was cut is
seen from two markers the test adds to a copy of each box, one pinned to its top and
one to its bottom: both must land on the same page.  A control page whose box is too
tall for one page shows that the markers do catch a cut.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.activations import get_activation
from glassnet.cli import main
from glassnet.explain import derive, explain
from glassnet.layers import Dense

from helpers import MAZUR

CHROMIUM = "/usr/bin/chromium"


#: The boxes no page break may cut (those open on screen).
BOXES = ".step, .eq, figure, .table, details.erratum"

#: Pins a marker to the top and to the bottom of every box that is shown, and returns
#: how many boxes it marked.  Markers are 2 px text: pypdf reads them, a reader cannot.
MARK_JS = """(selector) => {
  const style = document.createElement('style');
  style.textContent = '.mk-box { position: relative; } .mk { position: absolute; left: 0;'
    + ' font: 2px monospace; color: #fff; } .mk-top { top: 0; } .mk-bottom { bottom: 0; }';
  document.head.append(style);
  const shown = [...document.querySelectorAll(selector)].filter(
    b => b.checkVisibility());
  shown.forEach((box, k) => {
    // A folded erratum shows only its summary: mark that.
    const b = box.matches('details:not([open])') ? box.querySelector('summary') : box;
    b.classList.add('mk-box');
    for (const end of ['top', 'bottom']) {
      const m = document.createElement('span');
      m.className = 'mk mk-' + end;
      m.textContent = `QQ${end === 'top' ? 'T' : 'B'}${k}QQ`;
      b.append(m);
    }
  });
  return shown.length;
}"""


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    return sync_api


def _wide_trace():
    """A 4-6-3 tanh/softmax network on a batch of 2 (cross-entropy)."""
    rng = np.random.default_rng(7)
    layers = [
        Dense(rng.normal(size=(4, 6)), rng.normal(size=6) - 0.5, "tanh"),
        Dense(rng.normal(size=(6, 3)), rng.normal(size=3) - 0.5, "softmax"),
    ]
    x = rng.normal(size=(2, 4))
    return gn.trace_step(gn.Network(layers), x, np.eye(3)[[0, 2]], loss="cross_entropy", lr=0.1)


def _pages(tmp: Path, *extra: str, only: str | None = None) -> dict[str, Path]:
    """The three pages of the issue (or ``only`` one), written the way a lecturer
    writes them."""
    tmp.mkdir(exist_ok=True)
    spec = tmp / "mazur.toml"
    spec.write_text(MAZUR)
    out = {"mazur": tmp / "mazur.html", "seed": tmp / "seed.html", "wide": tmp / "wide.html"}
    assert main(["explain", str(spec), "-o", str(out["mazur"]), *extra]) == 0
    if only:
        return {only: out[only]}
    assert main(["explain", "seed", "-o", str(out["seed"]), *extra]) == 0
    mode = "full" if "full" in extra else "open"
    out["wide"].write_text(
        derive(_wide_trace(), title="wide").html(print_mode=mode), encoding="utf-8"
    )
    return out


def _print(browser, path: Path, *, mark: bool = True) -> tuple[list[str], int]:
    """The text of each printed A4 page, and how many boxes were marked."""
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the printed PDF")
    import io

    page = browser.new_page()
    try:
        page.goto(path.as_uri())
        marked = page.evaluate(MARK_JS, BOXES) if mark else 0
        pdf = page.pdf(format="A4")
    finally:
        page.close()
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [p.extract_text() for p in reader.pages], marked


def _cut_boxes(texts: list[str], n: int) -> list[int]:
    """The boxes whose top and bottom markers are on different pages (or missing)."""
    where: dict[str, int] = {}
    for k, text in enumerate(texts):
        for token in text.replace("\n", "").split("QQ"):
            if token[:1] in "TB" and token[1:].isdigit():
                where.setdefault(token, k)
    return [b for b in range(n) if where.get(f"T{b}", -1) != where.get(f"B{b}", -2)]


LIMITS = {"mazur": 6, "seed": 10, "wide": 10}


def test_printed_pages_within_the_targets_numbered_and_no_box_cut(tmp_path: Path) -> None:
    sync_api = _browser()
    pages = _pages(tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for name, path in pages.items():
                texts, n_boxes = _print(browser, path)
                assert 1 < len(texts) <= LIMITS[name], (name, len(texts))
                title = "Backpropagation, step by step: " + name
                for k, text in enumerate(texts, start=1):
                    flat = " ".join(text.split())
                    assert f"page {k} of {len(texts)}" in flat, (name, k, flat[-200:])
                    assert title in flat, (name, k)
                assert n_boxes > 20
                assert _cut_boxes(texts, n_boxes) == [], name
        finally:
            browser.close()


def test_the_cut_check_catches_a_cut(tmp_path: Path) -> None:
    """Control: a box taller than a page is cut, and the markers say so."""
    sync_api = _browser()
    path = tmp_path / "tall.html"
    path.write_text(
        "<!DOCTYPE html><style>.step { break-inside: avoid; }</style>"
        '<div class="step">short</div><div class="step" style="height: 400mm">tall</div>'
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            texts, n = _print(browser, path)
        finally:
            browser.close()
    assert n == 2 and _cut_boxes(texts, n) == [1]


def test_folded_parts_print_folded_and_say_so_full_prints_them_open(tmp_path: Path) -> None:
    sync_api = _browser()
    why = " ".join(get_activation("sigmoid").why().split()[:6])  # folded on screen
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            folded, _ = _print(
                browser, _pages(tmp_path / "open", only="mazur")["mazur"], mark=False
            )
            pages = _pages(tmp_path / "full", "--print", "full", only="mazur")
            full, _ = _print(browser, pages["mazur"], mark=False)
        finally:
            browser.close()
    text = " ".join(" ".join(folded).split())
    assert "Why is this sigmoid's derivative? — folded; in the HTML page" in text
    assert why not in text
    assert "Printed as it was open on screen" in " ".join(folded[0].split())
    everything = " ".join(" ".join(full).split())
    assert why in everything and "— folded; in the HTML page" not in everything
    assert len(full) > len(folded)


def test_print_mode_is_checked() -> None:
    trace = gn.load_spec("seed").trace()
    with pytest.raises(gn.GlassnetError, match="print mode"):
        derive(trace).html(print_mode="some")
    assert "details::details-content" not in explain(trace, format="html")
