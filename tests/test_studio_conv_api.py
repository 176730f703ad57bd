"""A CNN in the studio's JSON API: the bundled conv example opens in Explore, its step is
``glassnet step --json``'s, its feature maps come as explain's grids whose every cell's
number has a derivation and links that resolve; the links are the convolution's own
windows (checked with window arithmetic written here, and by adding the linked numbers up
again with NumPy); bad quantities and indexes are 4xx, never 5xx; what is for dense
networks only (practice, hints, training, the gradient check, worksheets) is refused in
one line; cross-site posts are refused as for any spec."""

from __future__ import annotations

import json
import re
import tomllib

import numpy as np
import pytest

pytest.importorskip("starlette", reason="starlette is not installed (the studio extra)")
pytest.importorskip("httpx", reason="httpx is not installed (Starlette's TestClient needs it)")

from starlette.testclient import TestClient

from glassnet.cli import main
from glassnet.spec import example_path
from glassnet.studio.app import create_app

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(), base_url=LOCAL)


def conv_spec() -> dict:
    return tomllib.loads(example_path("conv").read_text(encoding="utf-8"))


#: A second CNN: two input channels, padding 1, stride 2, a batch of two, average pooling.
WIDE = {
    "loss": "mse",
    "lr": 0.05,
    "input": np.arange(2 * 2 * 4 * 4).reshape(2, 2, 4, 4).__truediv__(20.0).tolist(),
    "target": [[0.5], [-0.25]],
    "layers": [
        {
            "type": "conv2d",
            "weights": (np.arange(2 * 2 * 3 * 3).reshape(2, 2, 3, 3) % 5 - 2).__mul__(0.1).tolist(),
            "bias": [0.1, -0.1],
            "stride": 2,
            "padding": 1,
            "activation": "tanh",
        },
        {"type": "avg_pool2d", "size": 2},
        {"type": "flatten"},
        {"weights": [[0.3], [-0.2]], "bias": [0.0], "activation": "identity"},
    ],
}


def cells(html: str) -> list[tuple[str, str]]:
    """Every grid cell's (quantity, index), in page order, without repeats."""
    out: list[tuple[str, str]] = []
    for q, i in re.findall(r'data-q="([^"]+)" data-i="([^"]+)"', html):
        if (q, i) not in out:
            out.append((q, i))
    return out


def test_conv_example_opens_with_its_layer_types(client: TestClient) -> None:
    r = client.get("/api/example/conv")
    assert r.status_code == 200
    spec = r.json()["spec"]
    types = [layer.get("type", "dense") for layer in spec["layers"]]
    assert types == ["conv2d", "max_pool2d", "flatten", "dense"]
    assert "type" not in spec["layers"][3]  # a dense layer's table as it always was
    # the page's spec, sent back, is the same network: the same step
    again = client.post("/api/canonical", json={"spec": spec}).json()["spec"]
    assert again == spec


def test_conv_step_is_the_cli_json(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["step", "conv", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    r = client.post("/api/step", json={"spec": conv_spec()})
    assert r.status_code == 200
    assert r.json() == cli


@pytest.mark.parametrize("spec", [conv_spec(), WIDE], ids=["conv", "wide"])
def test_every_grid_cell_has_a_derivation_and_links(client: TestClient, spec: dict) -> None:
    whole = client.post("/api/explain", json={"spec": spec, "fragment": True})
    assert whole.status_code == 200
    found = cells(whole.json()["html"])
    names = {q for q, _ in found}
    assert {"x", "W1", "z1", "a1", "a2", "delta1", "dW1"} <= names
    links = {}
    for q, i in found:
        d = client.post("/api/explain", json={"spec": spec, "quantity": q, "index": i})
        assert d.status_code == 200, (q, i, d.text)
        assert d.json()["html"] and d.json()["quantity"] == q
        r = client.post("/api/links", json={"spec": spec, "quantity": q, "index": i})
        assert r.status_code == 200, (q, i, r.text)
        links[(q, i)] = r.json()
    # inputs and consumers are each other's inverse, number by number
    for (q, i), got in links.items():
        for n, k in got["inputs"]:
            if (n, k) in links:
                assert [q, i] in links[(n, k)]["consumers"], ((q, i), (n, k))
        for n, k in got["consumers"]:
            if (n, k) in links:
                assert [q, i] in links[(n, k)]["inputs"], ((q, i), (n, k))


def test_first_positions_derivation_is_the_explain_pages_block(client: TestClient) -> None:
    """The number explain writes out open (each quantity's first position) is derived
    alone exactly as the page writes it."""
    spec = conv_spec()
    whole = client.post("/api/explain", json={"spec": spec, "fragment": True}).json()["html"]
    for q, i in (("z1", "0,0,0,0"), ("dW1", "0,0,0,0"), ("db1", "0"), ("a2", "0,0,0,0")):
        one = client.post("/api/explain", json={"spec": spec, "quantity": q, "index": i})
        block = one.json()["html"]
        assert block.startswith('<div class="step">'), (q, block[:80])
        assert block.split("\n")[0] in whole, q


def _value(trace: dict, name: str, index: str) -> float:
    m = re.fullmatch(r"([A-Za-z_]+?)(\d*)", name)
    assert m
    kind, layer = m.group(1), m.group(2)
    top = {"x": "input", "y": "target"}
    v = trace[top[kind]] if kind in top else trace["layers"][int(layer) - 1][kind]
    for k in index.split(","):
        v = v[int(k)]
    return float(v)


def test_conv_links_are_the_windows_and_add_up(client: TestClient) -> None:
    """z1[s,o,i,j] reads x[s,c,i·stride+p−pad, j·stride+q−pad] and W1[o,c,p,q] for every
    kernel cell inside the input, and b1[o] (written here from the definition of a
    cross-correlation); the linked numbers, multiplied in pairs and added with the bias
    by NumPy, give the engine's z1; dW1[o,c,p,q] reads delta1 and x the same way."""
    spec = WIDE
    trace = client.post("/api/step", json={"spec": spec}).json()
    st, pad, kh = 2, 1, 3
    x = np.array(spec["input"])
    W = np.array(spec["layers"][0]["weights"])
    z = np.array(trace["layers"][0]["z"])
    for s, o, i, j in [(0, 0, 0, 0), (1, 1, 1, 0), (0, 1, 1, 1)]:
        r = client.post(
            "/api/links", json={"spec": spec, "quantity": "z1", "index": f"{s},{o},{i},{j}"}
        )
        got = {(n, k) for n, k in r.json()["inputs"]}
        want = {("b1", str(o))}
        total = spec["layers"][0]["bias"][o]
        for c in range(2):
            for p in range(kh):
                for q in range(kh):
                    h, w = i * st + p - pad, j * st + q - pad
                    if 0 <= h < 4 and 0 <= w < 4:
                        want |= {("x", f"{s},{c},{h},{w}"), ("W1", f"{o},{c},{p},{q}")}
                        total += x[s, c, h, w] * W[o, c, p, q]
        assert got == want
        assert total == pytest.approx(z[s, o, i, j], abs=1e-12)
    r = client.post("/api/links", json={"spec": spec, "quantity": "dW1", "index": "1,0,2,1"})
    pairs = r.json()["inputs"]
    deltas = {k for n, k in pairs if n == "delta1"}
    assert deltas == {f"{s},1,{i},{j}" for s in range(2) for i in range(2) for j in range(2)}
    dW = sum(
        _value(trace, "delta1", f"{s},1,{i},{j}") * x[s, 0, i * st + 2 - pad, j * st + 1 - pad]
        for s in range(2)
        for i in range(2)
        for j in range(2)
        if 0 <= i * st + 2 - pad < 4 and 0 <= j * st + 1 - pad < 4
    )
    assert dW == pytest.approx(_value(trace, "dW1", "1,0,2,1"), abs=1e-12)


def test_flatten_and_pool_links(client: TestClient) -> None:
    spec = conv_spec()
    r = client.post("/api/links", json={"spec": spec, "quantity": "a3", "index": "0,0"}).json()
    assert r["inputs"] == [["a2", "0,0,0,0"]]
    r = client.post("/api/links", json={"spec": spec, "quantity": "a2", "index": "0,0,0,0"}).json()
    window = [["a1", f"0,0,{h},{w}"] for h in range(2) for w in range(2)]
    assert all(c in r["inputs"] for c in window) and ["argmax2", "0,0,0,0"] in r["inputs"]
    # the arg-max reads its window whole: named, not guessed number by number
    r = client.post("/api/links", json={"spec": spec, "quantity": "argmax2", "index": "0,0,0,0"})
    assert r.json()["whole"] == ["a1"]


@pytest.mark.parametrize(
    ("body"),
    [
        {"quantity": "z1", "index": "0,0,3,0"},
        {"quantity": "z1", "index": "0,0,1"},
        {"quantity": "z1", "index": "a,b"},
        {"quantity": "z1", "index": "-1,0,0,0"},
        {"quantity": "z1", "index": "9" * 30},
        {"quantity": "z9", "index": "0"},
        {"quantity": "argmax1", "index": "0,0,0,0"},
        {"quantity": 3, "index": "0"},
        {"quantity": "z1", "index": [0, 0, 0, 0]},
        {"quantity": "loss", "index": "0"},
        {"quantity": "x" * 41, "index": "0"},
    ],
)
def test_bad_quantities_and_indexes_are_4xx(client: TestClient, body: dict) -> None:
    for endpoint in ("links", "explain"):
        r = client.post(f"/api/{endpoint}", json={"spec": conv_spec(), **body})
        assert 400 <= r.status_code < 500, (endpoint, body, r.status_code, r.text[:200])
        message = r.json()["error"]
        assert message and "\n" not in message


@pytest.mark.parametrize(
    ("endpoint", "extra"),
    [
        ("sheet", {}),
        ("check", {"values": {"z1": [[[0.36, 0.42, 0.48]]]}}),
        ("hint", {"quantity": "z1", "index": "0,0,0,0", "level": "rule"}),
        ("gradcheck", {"layer": 1, "i": 0, "j": 0}),
        ("export", {"format": "worksheet", "values": {}}),
        ("export", {"format": "key"}),
    ],
)
def test_dense_only_views_refuse_a_cnn_in_one_line(
    client: TestClient, endpoint: str, extra: dict
) -> None:
    r = client.post(f"/api/{endpoint}", json={"spec": conv_spec(), **extra})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert "dense" in err and "conv2d" in err and "layer 1" in err and "\n" not in err


def test_training_refuses_a_cnn_in_one_line(client: TestClient) -> None:
    r = client.post("/api/train", json={"spec": conv_spec(), "data": {"name": "xor"}, "steps": 1})
    assert r.status_code == 422
    assert "conv2d" in r.json()["error"]


def test_exports_and_uploads_of_a_cnn(client: TestClient) -> None:
    spec = conv_spec()
    step = client.post("/api/step", json={"spec": spec}).json()
    toml = client.post("/api/export", json={"spec": spec, "format": "toml"})
    assert toml.status_code == 200
    loaded = client.post("/api/load", json={"name": "net.toml", "text": toml.json()["text"]})
    assert loaded.status_code == 200 and loaded.json()["mode"] == "explore"
    assert client.post("/api/step", json={"spec": loaded.json()["spec"]}).json() == step
    text = example_path("conv").read_text(encoding="utf-8")
    up = client.post("/api/load", json={"name": "conv.toml", "text": text})
    assert up.status_code == 200
    assert client.post("/api/step", json={"spec": up.json()["spec"]}).json() == step
    html = client.post("/api/export", json={"spec": spec, "format": "html"})
    assert html.status_code == 200 and 'data-q="z1"' in html.json()["text"]


def test_a_cnn_too_big_for_the_page_is_413(client: TestClient) -> None:
    spec = conv_spec()
    spec["input"] = np.zeros((1, 1, 20, 20)).tolist()  # 400 cells; z1 19×19 = 361
    spec["layers"][3]["weights"] = [[0.1, -0.1]] * 81  # (pooled 9×9, flattened)
    assert (
        client.post(
            "/api/step",
            json={
                "spec": {
                    **spec,
                    "input": np.zeros((1, 1, 10, 10)).tolist(),
                    "layers": [
                        *spec["layers"][:3],
                        {**spec["layers"][3], "weights": [[0.1, -0.1]] * 16},
                    ],
                }
            },
        ).status_code
        == 200
    )
    r = client.post("/api/step", json={"spec": spec})
    assert r.status_code == 413 and "\n" not in r.json()["error"]


#: Wrong CNN specs, each changed in one place from the conv example.
BAD_CNNS = [
    ("stride 0", lambda s: s["layers"][0].update(stride=0)),
    ("padding too wide for the dense layer", lambda s: s["layers"][0].update(padding=99)),
    ("a kernel of 3 levels", lambda s: s["layers"][0].update(weights=[[[0.1]]])),
    ("type a number", lambda s: s["layers"][0].update(type=3)),
    ("type unknown", lambda s: s["layers"][0].update(type="nope")),
    ("a window wider than the map", lambda s: s["layers"][1].update(size=9)),
    ("size true", lambda s: s["layers"][1].update(size=True)),
    ("no flatten before dense", lambda s: s["layers"].pop(2)),
    ("flatten with an activation", lambda s: s["layers"][2].update(activation="relu")),
    ("softmax over a feature map", lambda s: s["layers"][0].update(activation="softmax")),
    ("units on a conv layer", lambda s: s["layers"][0].update(units=3)),
    ("flatten before conv", lambda s: s["layers"].insert(0, {"type": "flatten"})),
    ("5-D input", lambda s: s.update(input=[[[[[0.1]]]]])),
    ("ragged input", lambda s: s.update(input=[[[[0.1, 0.2], [0.3]]]])),
]


@pytest.mark.parametrize("change", [c for _, c in BAD_CNNS], ids=[n for n, _ in BAD_CNNS])
def test_wrong_cnn_specs_are_4xx_with_one_line(client: TestClient, change: object) -> None:
    spec = conv_spec()
    change(spec)  # type: ignore[operator]
    for endpoint, extra in (
        ("step", {}),
        ("links", {"quantity": "z1", "index": "0,0,0,0"}),
        ("explain", {"quantity": "a2", "index": "0,0,0,0"}),
        ("explain", {"fragment": True}),
        ("canonical", {}),
        ("sheet", {}),
    ):
        r = client.post(f"/api/{endpoint}", json={"spec": spec, **extra})
        assert 400 <= r.status_code < 500, (endpoint, r.status_code, r.text[:200])
        assert "\n" not in r.json()["error"]


def test_a_cnn_with_a_large_batch_is_413(client: TestClient) -> None:
    spec = conv_spec()
    spec["input"] = np.zeros((9, 1, 4, 4)).tolist()
    spec["target"] = [[1.0, 0.0]] * 9
    r = client.post("/api/step", json={"spec": spec})
    assert r.status_code == 413 and "samples" in r.json()["error"]
    spec["input"], spec["target"] = spec["input"][:8], spec["target"][:8]
    assert client.post("/api/step", json={"spec": spec}).status_code == 200


def test_cross_site_posts_with_a_cnn_are_refused(client: TestClient) -> None:
    body = json.dumps({"spec": conv_spec(), "quantity": "z1", "index": "0,0,0,0"})
    form = client.post("/api/links", content=body, headers={"content-type": "text/plain"})
    assert form.status_code == 415
    evil = {"content-type": "application/json", "origin": "https://evil.example"}
    assert client.post("/api/links", content=body, headers=evil).status_code == 403
    own = {"content-type": "application/json", "origin": LOCAL}
    assert client.post("/api/links", content=body, headers=own).status_code == 200


def test_command_opens_the_conv_example() -> None:
    from glassnet.commands.studio import initial_state

    state = initial_state("conv")
    assert state["mode"] == "explore" and state["spec"]["layers"][0]["type"] == "conv2d"
    state = initial_state(str(example_path("conv")))
    assert state["mode"] == "explore" and len(state["spec"]["layers"]) == 4
