"""The HTML page: every number in its MathML is the trace's value at the shown
precision (parsed back with our own walker); it needs no network; and headless
Chromium renders it (a screenshot that is not blank, MathML laid out as maths, the SVG
drawn, no console messages)."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.explain import derive, explain
from glassnet.layers import Dense

from _explain_parse import Resolver, check_blocks, html_blocks, shortcut_values

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _check_html(trace, digits: int = 4) -> str:
    html = explain(trace, format="html", digits=digits)
    report = check_blocks(
        html_blocks(html),
        Resolver(trace),
        digits=None if trace.round_to is not None else digits,
        decimals=trace.round_to,
        special=shortcut_values(trace),
    )
    assert report.checked > 50
    return html


def test_seed_html_numbers_are_the_trace() -> None:
    html = _check_html(gn.load_spec("seed").trace())
    assert "<svg" in html and "<math" in html
    # Standalone: no script, no stylesheet or font to fetch, no remote anything.
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert set(re.findall(r"https?://[^\"' ]+", html)) <= {"http://www.w3.org/2000/svg"}


@pytest.mark.parametrize(
    ("acts", "loss", "batch"),
    [(["tanh", "softmax"], "cross_entropy", 2), (["sigmoid", "identity"], "mse", 1)],
)
def test_other_networks_html_numbers_are_the_trace(acts, loss, batch) -> None:
    rng = np.random.default_rng(5)
    layers = [
        Dense(rng.normal(size=(2, 3)), rng.normal(size=3), acts[0]),
        Dense(rng.normal(size=(3, 2)), rng.normal(size=2), acts[1]),
    ]
    y = np.eye(2)[:batch] if loss == "cross_entropy" else rng.normal(size=(batch, 2))
    trace = gn.trace_step(gn.Network(layers), rng.normal(size=(batch, 2)), y, loss=loss, lr=0.3)
    _check_html(trace, digits=5)


def test_derivation_displays_itself_in_a_notebook() -> None:
    trace = gn.load_spec("seed").trace()
    derivation = derive(trace)
    html = derivation._repr_html_()
    assert html.startswith('<div class="glassnet-explain">') and "<math" in html
    assert check_blocks(html_blocks(html), Resolver(trace), digits=4, decimals=None).checked
    assert derivation._repr_markdown_().startswith("# Backpropagation")


# -- the browser ---------------------------------------------------------------------------


def _png_pixels(data: bytes) -> tuple[int, int, np.ndarray]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into (h, w, channels):
    with Pillow when it is there (fast), else by hand (zlib and the PNG filters)."""
    try:
        import io

        from PIL import Image

        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        return img.shape[0], img.shape[1], img
    except ImportError:
        pass
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for r in range(height):
        f = raw[r * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, r * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        for i in range(stride):
            a = cur[i - channels] if i >= channels else 0
            b, c = prev[i], (prev[i - channels] if i >= channels else 0)
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[i] = (line[i] + pred) & 0xFF
        out[r], prev = cur, cur
    return height, width, out.reshape(height, width, channels)


def _chromium(tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        url,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)  # type: ignore[arg-type]


def _console(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI installs it: apt-get install chromium)"
)


@needs_chromium
def test_console_check_is_not_vacuous(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<p>x</p><script>console.error('boom')</script>")
    r = _chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert any("boom" in ln for ln in _console(r.stderr))


@needs_chromium
def test_chromium_renders_the_page(tmp_path: Path) -> None:
    page = tmp_path / "seed.html"
    page.write_text(explain(gn.load_spec("seed").trace(), format="html"), encoding="utf-8")

    # 1. A screenshot that is not blank, and nothing on the console.
    shot = tmp_path / "seed.png"
    r = _chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1000,1000")
    assert shot.exists(), r.stderr[-2000:]
    assert _console(r.stderr) == []
    _, _, px = _png_pixels(shot.read_bytes())
    rgb = px[:, :, :3]
    dark = (rgb.sum(axis=2) < 300).mean()
    assert dark > 0.005, "the screenshot is (nearly) blank"
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50

    # 2. The maths laid out as maths and the SVG drawn: a copy of the page with a probe
    #    script (the page itself has none) that measures what the browser laid out.
    probe = page.read_text(encoding="utf-8").replace(
        "</body>",
        "<script>const f = document.querySelector('mtable.derivation mfrac, mfrac');"
        "const m = document.querySelector('math[display=block]');"
        "const s = document.querySelector('svg.network');"
        "const n = document.querySelector('mtable.derivation mn');"
        "document.body.dataset.probe = JSON.stringify({"
        "maths: document.querySelectorAll('math').length,"
        "display: getComputedStyle(m).display,"
        "frac: f.getBoundingClientRect().height, mn: n.getBoundingClientRect().height,"
        "svgW: s.getBoundingClientRect().width, svgH: s.getBoundingClientRect().height,"
        "circles: s.querySelectorAll('circle').length});</script></body>",
    )
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(probe, encoding="utf-8")
    r = _chromium(tmp_path, probe_page.as_uri(), "--dump-dom")
    assert _console(r.stderr) == []
    m = re.search(r'data-probe="([^"]*)"', r.stdout)
    assert m, r.stdout[:500]
    info = json.loads(m.group(1).replace("&quot;", '"'))
    assert info["maths"] > 100
    assert "math" in info["display"]  # MathML Core layout, not unknown inline tags
    assert info["frac"] > 1.5 * info["mn"] > 0  # a fraction is stacked
    assert info["svgW"] > 300 and info["svgH"] > 200 and info["circles"] == 12
