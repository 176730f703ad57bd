"""glassnet studio under load, on loopback only: p50/p95 latency of an edit.

Two measurements, for the seed (3-3-3-3), a 4-16-16-3 and an 8-32-32-4 network (each
printed with its ratio to the first, and the CPU):

1. API: ``--clients`` concurrent clients (threads, one HTTP connection each) each send
   ``--edits`` edits — a ``POST /api/step`` with one weight changed — to one local
   server (``glassnet studio --no-browser``, its own process); every answer must be 200.
   Latency = request sent -> whole JSON answer received.
2. Page (needs playwright and chromium): one browser page, ``--page-edits`` edits typed
   into a weight box; latency = the edit (Enter) -> the next animation frame after every
   number on the page was redrawn from the answer, timed by the page itself
   (``body[data-edit-ms]``), while ``clients − 1`` API clients keep the server busy
   unless ``--quiet-page``; then clicks on numbers, click -> its derivation drawn in the
   side panel (``body[data-deriv-ms]``, timed by the page).

    PYTHONPATH=src .venv/bin/python bench/studio_load.py --clients 8 --edits 200
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

import numpy as np


def serve() -> tuple[str, subprocess.Popen[str]]:
    """``glassnet studio --no-browser`` in its own process (as a person runs it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "glassnet", "studio", "seed", "--no-browser"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = line.split()[2].rstrip("/")
    return url, proc


def wide_spec(sizes: tuple[int, ...] = (4, 16, 16, 3)) -> dict:
    """A network of ``sizes`` (4-16-16-3 or 8-32-32-4): tanh hidden layers, a softmax
    output, cross-entropy, weights written out."""
    rng = np.random.default_rng(0)
    acts = ["tanh"] * (len(sizes) - 2) + ["softmax"]
    target = [0.0] * sizes[-1]
    target[1] = 1.0
    return {
        "loss": "cross_entropy",
        "lr": 0.1,
        "input": [np.round(rng.normal(size=sizes[0]), 2).tolist()],
        "target": [target],
        "layers": [
            {
                "weights": np.round(rng.normal(0, 0.5, size=(a, b)), 2).tolist(),
                "bias": [0.0] * b,
                "activation": act,
            }
            for a, b, act in zip(sizes[:-1], sizes[1:], acts, strict=True)
        ],
    }


def seed_spec() -> dict:
    from glassnet.studio.api import example

    return example("seed")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def api_load(base: str, spec: dict, clients: int, edits: int) -> tuple[list[float], int]:
    # http.client sends a bytes body with its headers in one write (httpx writes them
    # apart, and Nagle + delayed ACK then add ~40 ms to every request on loopback).
    import http.client
    from urllib.parse import urlsplit

    host, port = urlsplit(base).hostname, urlsplit(base).port
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def client(k: int) -> None:
        nonlocal errors
        mine = json.loads(json.dumps(spec))
        conn = http.client.HTTPConnection(host, port, timeout=60)
        headers = {"Content-Type": "application/json"}
        for e in range(edits):
            mine["layers"][0]["weights"][0][0] = round(0.01 * ((k * edits + e) % 200) - 1, 2)
            t0 = time.perf_counter()
            conn.request("POST", "/api/step", json.dumps({"spec": mine}).encode(), headers)
            r = conn.getresponse()
            body = r.read()
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if r.status != 200 or b'"loss"' not in body:
                    errors += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def page_edits(base: str, spec: dict, edits: int) -> tuple[list[float], list[float]]:
    import base64

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    state = base64.urlsafe_b64encode(json.dumps({"spec": spec}).encode()).decode().rstrip("=")
    out: list[float] = []
    clicks: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/#s={state}")
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        box = page.locator("#params input[data-q='W1'][data-i='0,0']")
        for e in range(edits):
            seq = int(page.evaluate("document.body.dataset.seq"))
            box.fill(f"{0.01 * (e % 100) - 0.5:.2f}")
            t0 = time.perf_counter()
            box.press("Enter")
            page.wait_for_function(f"() => +document.body.dataset.seq > {seq}", timeout=30_000)
            # measured in the page: key press -> the frame after every number is redrawn
            out.append(float(page.evaluate("document.body.dataset.editMs")) / 1000)
            del t0
        # click -> its derivation drawn in the panel (timed by the page), on numbers of
        # every layer in turn
        targets = page.locator("#step button.num")
        n = targets.count()
        for e in range(max(10, edits // 5)):
            page.evaluate("delete document.body.dataset.derivMs")
            targets.nth((e * 37) % n).click()
            page.wait_for_function("() => document.body.dataset.derivMs !== undefined")
            clicks.append(float(page.evaluate("document.body.dataset.derivMs")) / 1000)
        browser.close()
    return out, clicks


def cpu() -> str:
    """The processor's model name (Linux), to print beside any timing."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--page-edits", type=int, default=100)
    parser.add_argument("--quiet-page", action="store_true", help="measure the page alone")
    parser.add_argument(
        "--networks", default="seed,4-16-16-3,8-32-32-4", help="comma-separated: seed or sizes"
    )
    args = parser.parse_args()
    print(f"CPU: {cpu()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    nets = [
        ("seed 3-3-3-3", seed_spec())
        if n == "seed"
        else (n, wide_spec(tuple(int(k) for k in n.split("-"))))
        for n in args.networks.split(",")
    ]
    base, proc = serve()
    seed_p95: dict[str, float] = {}
    try:
        for name, spec in nets:
            t0 = time.perf_counter()
            lat, errors = api_load(base, spec, args.clients, args.edits)
            wall = time.perf_counter() - t0
            ms = [1000 * v for v in lat]
            print(
                f"{name}: API {args.clients} clients x {args.edits} edits: {len(ms)} requests, "
                f"{errors} errors, p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms, "
                f"max {max(ms):.1f} ms, {len(ms) / wall:.0f} edits/s"
            )
            if args.page_edits and (shutil.which("chromium") or shutil.which("chromium-browser")):
                background: threading.Thread | None = None
                if not args.quiet_page:
                    background = threading.Thread(
                        target=api_load, args=(base, spec, args.clients - 1, args.edits // 2)
                    )
                    background.start()
                edit_s, click_s = page_edits(base, spec, args.page_edits)
                pms, cms = [1000 * v for v in edit_s], [1000 * v for v in click_s]
                if background:
                    background.join()
                load = "quiet server" if args.quiet_page else f"{args.clients - 1} API clients busy"
                # Beside the seed: the ratio says how much slower the bigger network is on
                # the same machine in the same run, whatever that machine's speed.
                seed_p95.setdefault("edit", pct(pms, 95))
                seed_p95.setdefault("click", pct(cms, 95))
                print(
                    f"{name}: page, {len(pms)} edits typed ({load}): "
                    f"p50 {pct(pms, 50):.1f} ms, p95 {pct(pms, 95):.1f} ms "
                    f"({pct(pms, 95) / seed_p95['edit']:.2f}x the first network's), "
                    f"median of all {statistics.median(pms):.1f} ms; "
                    f"{len(cms)} clicks to a derivation: p50 {pct(cms, 50):.1f} ms, "
                    f"p95 {pct(cms, 95):.1f} ms ({pct(cms, 95) / seed_p95['click']:.2f}x)"
                )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
