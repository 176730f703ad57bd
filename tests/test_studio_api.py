"""glassnet studio's JSON API: the same answers as the CLI, and bad requests refused.

Every endpoint is compared with what the CLI prints for the same network (the seed and
random specs written as TOML files by hand here, so the JSON -> TOML path of the studio
is checked against the parser reading a file), and a battery of hostile requests must
each get a 4xx with one line — never a 500 — with the server answering afterwards.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

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


def seed_spec() -> dict:
    return tomllib.loads(example_path("seed").read_text())


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def cli_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


# -- random specs, written once as TOML (a file for the CLI) and once as JSON -------------

ACTS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu")


def random_spec(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 5, size=int(rng.integers(2, 5)))]
    out = str(rng.choice(["softmax", "sigmoid", "tanh", "identity"]))
    loss = {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy"}.get(out, "mse")
    if out == "softmax" and sizes[-1] == 1:
        sizes[-1] = 2
    batch = int(rng.integers(1, 4))
    y = rng.random((batch, sizes[-1]))
    if loss == "cross_entropy":
        y = y / y.sum(axis=1, keepdims=True)
    layers = []
    for k in range(1, len(sizes)):
        act = out if k == len(sizes) - 1 else str(rng.choice(ACTS))
        layer = {
            "weights": np.round(rng.normal(size=(sizes[k - 1], sizes[k])), 3).tolist(),
            "bias": np.round(rng.normal(size=sizes[k]), 3).tolist(),
            "activation": act,
        }
        if act == "leaky_relu":
            layer["slope"] = 0.2
        layers.append(layer)
    return {
        "loss": loss,
        "lr": float(rng.choice([0.5, 0.1, 0.01])),
        "update_bias": bool(rng.integers(0, 2)),
        "input": np.round(rng.normal(size=(batch, sizes[0])), 3).tolist(),
        "target": y.tolist(),
        "layers": layers,
    }


def handwritten_toml(spec: dict) -> str:
    """The same spec as a person would write the file (independent of the studio's
    JSON -> TOML writer)."""
    lines = [
        f'loss = "{spec["loss"]}"',
        f"lr = {spec['lr']!r}",
        f"update_bias = {str(spec['update_bias']).lower()}",
        f"input = {spec['input']!r}",
        f"target = {spec['target']!r}",
    ]
    for layer in spec["layers"]:
        lines += ["[[layers]]", f"weights = {layer['weights']!r}", f"bias = {layer['bias']!r}"]
        lines.append(f'activation = "{layer["activation"]}"')
        if "slope" in layer:
            lines.append(f"slope = {layer['slope']!r}")
    return "\n".join(lines) + "\n"


# -- the same answers as the CLI -------------------------------------------------------------


def test_step_seed_is_the_cli_json(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    r = client.post("/api/step", json={"spec": seed_spec()})
    assert r.status_code == 200
    assert r.json() == cli_json(capsys, "step", "seed", "--json")


@pytest.mark.parametrize("seed", range(12))
def test_step_random_specs_are_the_cli_json(
    client: TestClient, capsys: pytest.CaptureFixture[str], tmp_path: Path, seed: int
) -> None:
    spec = random_spec(seed)
    path = tmp_path / "net.toml"
    path.write_text(handwritten_toml(spec))
    r = client.post("/api/step", json={"spec": spec})
    assert r.status_code == 200, r.text
    assert r.json() == cli_json(capsys, "step", str(path), "--json")


def test_step_rounded_is_hand_mode(client: TestClient) -> None:
    from glassnet.spec import load_spec

    r = client.post("/api/step", json={"spec": seed_spec(), "round": 3})
    assert r.json() == load_spec("seed").trace(round_to=3).to_dict()
    assert r.json()["round_to"] == 3


def test_check_seed_worksheet_is_the_cli_json(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # The worksheet's numbers as typed (strings keep their digits: they set the tolerance).
    sheet = tomllib.loads(example_path("seed_worksheet").read_text(), parse_float=lambda s: s)
    r = client.post("/api/check", json={"spec": seed_spec(), "values": sheet["values"]})
    assert r.status_code == 200, r.text
    got, want = r.json(), cli_json(capsys, "check", "seed", "--json")
    assert got["entries"] == want["entries"]
    want["summary"]["worksheet"] = got["summary"]["worksheet"]  # the label differs only
    assert got["summary"] == want["summary"]


def test_check_marks_only_typed_boxes(client: TestClient) -> None:
    # The seed's printed O_out[0] = 0.2698 is its first entry divided by the sum
    # (1.8671 / 6.9204 = 0.26979): wrong, and named.
    r = client.post(
        "/api/check", json={"spec": seed_spec(), "values": {"O_out": ["0.2698", None, ""]}}
    )
    entries = r.json()["entries"]
    assert [(e["name"], e["index"]) for e in entries] == [("a3", [0])]
    assert entries[0]["verdict"] == "wrong"
    assert entries[0]["diagnosis"] == "normalize_not_softmax"
    # The right value (softmax of z3, by hand here) is ok.
    z = np.array([1.8670679715618874, 2.230282320573539, 2.8230360327250636])
    p = np.exp(z) / np.exp(z).sum()
    r = client.post(
        "/api/check", json={"spec": seed_spec(), "values": {"a3": [None, f"{p[1]:.4f}", None]}}
    )
    assert [e["verdict"] for e in r.json()["entries"]] == ["ok"]


def test_check_follows_from_an_earlier_wrong_value(client: TestClient) -> None:
    # The seed's own (wrong) O_in, then its softmax worked correctly from those numbers.
    z = np.array([1.8658, 2.2292, 2.8204])
    p = np.exp(z) / np.exp(z).sum()
    values = {"O_in": ["1.8658", "2.2292", "2.8204"], "O_out": [f"{p[0]:.5f}", None, None]}
    r = client.post("/api/check", json={"spec": seed_spec(), "values": values})
    verdicts = {(e["name"], tuple(e["index"])): e["verdict"] for e in r.json()["entries"]}
    assert verdicts[("a3", (0,))] == "follows"


def test_explain_whole_is_the_cli_html(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    r = client.post("/api/explain", json={"spec": seed_spec()})
    assert r.status_code == 200
    # The studio's spec can be edited, so it carries no errata: the tutorial's printed
    # numbers belong to the unedited seed (the CLI's page with --no-errata).
    cli = cli_text(capsys, "explain", "seed", "--format", "html", "--no-errata")
    assert r.json()["html"] == cli


def test_explain_whole_fragment_is_the_documents_blocks(client: TestClient) -> None:
    page = client.post("/api/explain", json={"spec": seed_spec()}).json()["html"]
    frag = client.post("/api/explain", json={"spec": seed_spec(), "fragment": True}).json()["html"]
    assert "<style" not in frag and "<html" not in frag
    assert frag.count('class="step"') == page.count('class="step"') > 20


def _mn(v: float) -> str:
    from glassnet.explain.symbols import number_format

    return f"<mn>{number_format(4, None)(v)}</mn>".replace("-", "−")  # MathML minus


@pytest.mark.parametrize(
    ("quantity", "field"),
    [("z2", "z"), ("a1", "a"), ("delta2", "delta"), ("dL_da1", "dL_da"), ("da2_dz2", "da_dz")],
)
def test_explain_one_block_per_unit(client: TestClient, quantity: str, field: str) -> None:
    """Each unit's block is found, alone, and ends with that unit's number."""
    from glassnet.spec import load_spec

    trace = load_spec("seed").trace()
    layer = int(quantity[-1])
    values = getattr(trace.layer(layer), field)[0]
    for u, v in enumerate(values):
        r = client.post(
            "/api/explain", json={"spec": seed_spec(), "quantity": quantity, "index": str(u)}
        )
        html = r.json()["html"]
        assert html.count('class="step"') == 1, (quantity, u)
        assert html.rstrip().endswith(f"{_mn(float(v))}</mrow></mtd></mtr></mtable></math></div>")


def test_explain_weight_blocks(client: TestClient) -> None:
    from glassnet.spec import load_spec

    lt = load_spec("seed").trace().layer(3)
    for name, arr in (("dW3", lt.dW), ("W3_new", lt.W_new)):
        for i in range(3):
            for j in range(3):
                r = client.post(
                    "/api/explain",
                    json={"spec": seed_spec(), "quantity": name, "index": f"{i},{j}"},
                )
                html = r.json()["html"]
                assert html.count('class="step"') == 1
                assert _mn(float(arr[i, j])) in html
    r = client.post("/api/explain", json={"spec": seed_spec(), "quantity": "W_kl", "index": "0,0"})
    assert "given" in r.json()["html"]


def test_graph_is_checks_graph(client: TestClient) -> None:
    from glassnet.check.steps import inputs_of, order
    from glassnet.check.worksheet import key_name

    g = client.post("/api/graph", json={"layers": 3}).json()
    assert g["order"] == [key_name(k) for k in order(3)]
    for key in order(3):
        assert g["quantities"][key_name(key)]["inputs"] == [key_name(k) for k in inputs_of(key, 3)]
    assert "z3" in g["quantities"]["a2"]["consumers"]
    assert g["quantities"]["a3"]["seed"] == "O_out"


def test_gradcheck_matches_backprop(client: TestClient) -> None:
    for layer, i, j in ((1, 0, 0), (2, 1, 2), (3, 2, 1)):
        r = client.post(
            "/api/gradcheck", json={"spec": seed_spec(), "layer": layer, "i": i, "j": j}
        ).json()
        assert math.isclose(r["finite_difference"], r["backprop"], rel_tol=1e-6, abs_tol=1e-9)


def test_train_xor_loss_falls(client: TestClient) -> None:
    spec = client.post(
        "/api/canonical",
        json={
            "spec": {
                "loss": "cross_entropy",
                "lr": 0.5,
                "input": [0, 0],
                "target": [1, 0],
                "layers": [
                    {"units": 6, "activation": "tanh"},
                    {"units": 2, "activation": "softmax"},
                ],
            }
        },
    ).json()["spec"]
    r = client.post(
        "/api/train", json={"spec": spec, "data": {"name": "xor", "n": 200}, "steps": 200}
    ).json()
    losses = [h["loss"] for h in r["history"]]
    assert len(losses) == 200
    assert losses[-1] < 0.5 * losses[0]
    assert r["accuracy"] > 0.9
    assert len(r["grid"]["hidden"][0]) == 6
    # Training is the engine's fit, from the weights sent: same request, same answer.
    again = client.post(
        "/api/train", json={"spec": spec, "data": {"name": "xor", "n": 200}, "steps": 200}
    ).json()
    assert again["spec"] == r["spec"]


def test_train_on_a_csv(client: TestClient) -> None:
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, size=(60, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)  # a linear boundary
    text = "x,y,label\n" + "\n".join(f"{a:.4f},{b:.4f},{c}" for (a, b), c in zip(X, y, strict=True))
    spec = {
        "loss": "cross_entropy",
        "lr": 0.5,
        "input": [0, 0],
        "target": [1, 0],
        "layers": [{"weights": [[0.1, -0.1], [0.2, 0.1]], "bias": [0, 0], "activation": "softmax"}],
    }
    r = client.post(
        "/api/train", json={"spec": spec, "data": {"name": "csv", "csv": text}, "steps": 100}
    )
    assert r.status_code == 200, r.text
    assert r.json()["points"] == [[float(f"{a:.4f}"), float(f"{b:.4f}")] for a, b in X]
    assert r.json()["accuracy"] > 0.9
    bad = client.post(
        "/api/train", json={"spec": spec, "data": {"name": "csv", "csv": "1,2,3\n" * 10}}
    )
    assert bad.status_code == 422 and "label" in bad.json()["error"]


@pytest.mark.parametrize("name", ["xor", "circles", "spirals", "blobs"])
def test_datasets_are_seeded_and_two_class(client: TestClient, name: str) -> None:
    from glassnet.studio.api import dataset

    X, y = dataset(name, 100, 3, 0.05)
    X2, y2 = dataset(name, 100, 3, 0.05)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert X.shape == (100, 2) and set(y.tolist()) == {0, 1}


def test_export_and_load_round_trip(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    spec = client.get("/api/example/seed").json()["spec"]
    toml = client.post("/api/export", json={"spec": spec, "format": "toml"}).json()["text"]
    back = client.post("/api/load", json={"name": "net.toml", "text": toml}).json()
    assert back["spec"] == spec and back["mode"] == "explore"
    values = {"O_out": ["0.2698", "0.3223", "0.4078"]}
    sheet = client.post(
        "/api/export", json={"spec": spec, "format": "worksheet", "values": values}
    ).json()["text"]
    loaded = client.post("/api/load", json={"name": "w.toml", "text": sheet}).json()
    assert loaded["mode"] == "practice" and loaded["values"] == values
    marks = client.post("/api/export", json={"spec": spec, "format": "marks", "values": values})
    assert "normalize_not_softmax" in marks.json()["text"]


def test_downloaded_script_runs_as_downloaded(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Python script, saved and run unmodified by another interpreter, prints the
    step's loss and the derivation ``glassnet explain`` writes; executed here, its trace
    is the CLI's.  A description with a TOML escape and quotes survives the trip."""
    import os
    import subprocess
    import sys

    spec = client.get("/api/example/seed").json()["spec"]
    spec["description"] = "two lines:\nwith ''' quotes and a \\ backslash"
    script = client.post("/api/export", json={"spec": spec, "format": "py"}).json()["text"]
    path = tmp_path / "network.py"
    path.write_text(script)
    src = str(Path(__file__).parents[1] / "src")
    run = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    cli = cli_json(capsys, "step", "seed", "--json")
    assert isinstance(cli, dict)
    assert run.stdout.startswith(f"loss before the update: {cli['loss']}\n")
    assert "O_out" in run.stdout  # explain's markdown, in the seed's names
    scope: dict = {}
    exec(compile(script, str(path), "exec"), scope)
    assert scope["trace"].to_dict() == cli
    assert scope["spec"].description == spec["description"]


def test_downloaded_notebook_runs_as_downloaded(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notebook, as downloaded, runs top to bottom in a Jupyter kernel without an
    error (nbclient; a kernel of this interpreter, as tests/test_explain_notebook.py)."""
    import sys

    nbformat = pytest.importorskip("nbformat", reason="the explain extra (nbformat) is needed")
    nbclient = pytest.importorskip("nbclient", reason="the explain extra (nbclient) is needed")
    pytest.importorskip("ipykernel", reason="the explain extra (ipykernel) is needed")
    spec_dir = tmp_path / "jupyter" / "kernels" / "glassnet-test"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "t", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1] / "src"))
    spec = client.get("/api/example/seed").json()["spec"]
    text = client.post("/api/export", json={"spec": spec, "format": "ipynb"}).json()["text"]
    nb = nbformat.reads(text, as_version=4)
    assert any(c.cell_type == "code" for c in nb.cells)
    nbclient.NotebookClient(nb, kernel_name="glassnet-test", timeout=120).execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert outputs and all(o.get("output_type") != "error" for o in outputs)


def test_uploaded_worksheet_may_name_only_the_seed(client: TestClient) -> None:
    text = 'spec = "seed"\n[values]\nO_out = [0.2698, 0.3223, 0.4078]\n'
    r = client.post("/api/load", json={"name": "w.toml", "text": text})
    assert r.status_code == 200 and r.json()["values"]["O_out"][0] == "0.2698"
    r = client.post("/api/load", json={"name": "w.toml", "text": text.replace("seed", "/etc/x")})
    assert r.status_code == 422


# -- security ----------------------------------------------------------------------------


def test_headers_and_page(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "glassnet studio" in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "http" not in csp  # nothing from elsewhere
    for name in ("studio.js", "studio.css", "explain.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for bad in ("../app.py", "..%2fapp.py", "index.html%00", "/etc/passwd", "api.py"):
        assert client.get(f"/static/{bad}").status_code == 404


def test_page_and_scripts_name_no_other_origin() -> None:
    from importlib import resources

    for name in ("index.html", "studio.js", "studio.css"):
        text = (resources.files("glassnet.studio") / "static" / name).read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text


def test_foreign_host_is_refused(client: TestClient) -> None:
    r = client.get("/api/initial", headers={"host": "evil.example:8000"})
    assert r.status_code == 403


def test_token_is_required_off_loopback() -> None:
    c = TestClient(create_app(token="s3cret", loopback_only=False), base_url="http://10.0.0.5")
    assert c.get("/").status_code == 403
    assert c.post("/api/step", json={"spec": seed_spec()}).status_code == 403
    assert c.get("/?token=wrong").status_code == 403
    r = c.get("/?token=s3cret")
    assert r.status_code == 200  # and the cookie it sets lets the page's requests in
    assert c.post("/api/step", json={"spec": seed_spec()}).status_code == 200
    fresh = TestClient(create_app(token="s3cret", loopback_only=False), base_url="http://10.0.0.5")
    h = {"X-Glassnet-Token": "s3cret"}
    assert fresh.post("/api/step", json={"spec": seed_spec()}, headers=h).status_code == 200


def test_the_studio_stays_optional() -> None:
    """``import glassnet`` and ``glassnet --help`` import neither Starlette nor uvicorn."""
    import subprocess
    import sys

    code = (
        "import sys, contextlib, io, glassnet\n"
        "from glassnet.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "import glassnet.studio\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn')))\n"
    )
    src = str(Path(__file__).parents[1] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_without_the_extra_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "starlette" else real(n, *a)
    )
    assert main(["studio", "seed", "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    # glassnet is installed from its checkout: the hint names it (no index serves it)
    assert "pip install -e '" in err and "[studio]'" in err and "\n" not in err


# -- hostile requests -------------------------------------------------------------------------


def _seed_with(**changes: object) -> dict:
    spec = seed_spec()
    spec.update(changes)
    return spec


def _layer_with(index: int, **changes: object) -> dict:
    spec = seed_spec()
    spec["layers"][index].update(changes)
    return spec


def _j(obj: object) -> bytes:
    return json.dumps(obj).encode()


SEED = seed_spec()
DEEP = b'{"spec": ' + b"[" * 100 + b"]" * 100 + b"}"
HOSTILE: list[tuple[str, bytes]] = [
    ("step", b""),
    ("step", b"not json"),
    ("step", b"{"),
    ("step", b"\xff\xfe\x00"),
    ("step", b"[]"),
    ("step", b"null"),
    ("step", b'"text"'),
    ("step", b"1e999"),
    ("step", _j({"spec": None})),
    ("step", _j({"spec": []})),
    ("step", _j({"spec": {}})),
    ("step", _j({"spec": SEED, "extra": 1})),
    (
        "step",
        b'{"spec": {"loss": "mse", "lr": NaN, "input": [1], "target": [1], '
        b'"layers": [{"units": 1}]}}',
    ),
    (
        "step",
        b'{"spec": {"loss": "mse", "lr": Infinity, "input": [1], "target": [1], '
        b'"layers": [{"units": 1}]}}',
    ),
    ("step", _j({"spec": _seed_with(lr=-1)})),
    ("step", _j({"spec": _seed_with(lr="0.1")})),
    ("step", _j({"spec": _seed_with(lr=True)})),
    ("step", _j({"spec": _seed_with(lr=10**400)})),
    ("step", _j({"spec": _layer_with(0, weights=[[0.1, "x", 0.3], [0, 0, 0], [0, 0, 0]])})),
    ("step", _j({"spec": _layer_with(0, weights=[[0.1, 0.2], [0.3], [0.4, 0.5]])})),
    ("step", _j({"spec": _layer_with(0, weights=[[0.1, 0.2, 0.3]])})),
    ("step", _j({"spec": _layer_with(1, bias=[1.0])})),
    ("step", _j({"spec": _seed_with(input=[])})),
    ("step", _j({"spec": _seed_with(input=[[0.1, 0.2, 0.7]] * 300, target=[[1, 0, 0]] * 300)})),
    ("step", DEEP),
    ("step", b'{"spec": ' + b"[" * 100_000 + b"}"),
    ("step", b'{"spec": {"input": [' + b"0," * 1_200_000 + b"0]}}"),
    ("step", _j({"spec": _layer_with(0, units=100_000, weights=None)})),
    ("step", _j({"spec": {**_seed_with(layers=[{"units": 100_000}, {"units": 3}])}})),
    ("step", _j({"spec": _seed_with(layers=[{"units": 0}])})),
    ("step", _j({"spec": _seed_with(layers=[{"units": -5}])})),
    ("step", _j({"spec": _seed_with(layers=[{"units": 1.5}])})),
    ("step", _j({"spec": _seed_with(layers=[{"units": 3}] * 17)})),
    ("step", _j({"spec": _seed_with(layers="abc")})),
    ("step", _j({"spec": _seed_with(layers=[1, 2])})),
    ("step", _j({"spec": _layer_with(2, activation="swish2")})),
    ("step", _j({"spec": _seed_with(loss="foo")})),
    ("step", _j({"spec": _seed_with(loss="cross_entropy", target=[2.0, 0, 0])})),
    ("step", _j({"spec": _layer_with(2, activation="sigmoid") | {"loss": "cross_entropy"}})),
    ("step", _j({"spec": _seed_with(learning_rate=0.1)})),
    ("step", _j({"spec": _layer_with(0, colour="red")})),
    ("step", _j({"spec": _seed_with(model="/etc/passwd")})),
    ("step", _j({"spec": {"a\nb = 1\n[x]": 1}})),
    ("step", _j({"spec": _seed_with(name="bad\u007fname")})),
    ("step", _j({"spec": _seed_with(name=None)})),
    ("step", _j({"spec": SEED, "round": 99})),
    ("step", _j({"spec": SEED, "round": "2"})),
    ("explain", _j({"spec": SEED, "digits": 0})),
    ("explain", _j({"spec": SEED, "quantity": "zz9"})),
    ("explain", _j({"spec": SEED, "quantity": 5})),
    ("explain", _j({"spec": SEED, "quantity": "z1", "index": "a,b"})),
    ("check", _j({"spec": SEED, "values": []})),
    ("check", _j({"spec": SEED, "values": None})),
    ("check", _j({"spec": SEED, "values": {"foo": 1}})),
    ("check", _j({"spec": SEED, "values": {"z1": [1, 2]}})),
    ("check", _j({"spec": SEED, "values": {"z1": ["abc", None, None]}})),
    ("check", _j({"spec": SEED, "values": {"z1": ["1e5000", None, None]}})),
    ("check", _j({"spec": SEED, "values": {"z1": ["0x10", None, None]}})),
    ("check", _j({"spec": SEED, "values": {"z1": ["1", "2", "3"]}, "rtol": -1})),
    ("check", _j({"spec": SEED, "values": {"z1": [{"a": 1}, None, None]}})),
    ("gradcheck", _j({"spec": SEED, "layer": 99, "i": 0, "j": 0})),
    ("gradcheck", _j({"spec": SEED, "layer": 1, "i": -1, "j": 0})),
    ("gradcheck", _j({"spec": SEED, "layer": 1, "i": 0, "j": 7})),
    ("gradcheck", _j({"spec": SEED, "layer": 1, "i": 0, "j": 0, "eps": 0})),
    ("train", _j({"spec": SEED, "data": {"name": "xor"}, "steps": 10**9})),
    ("train", _j({"spec": SEED, "data": {"name": "mnist"}, "steps": 1})),
    ("train", _j({"spec": SEED, "data": {"name": "xor", "n": 10**7}, "steps": 1})),
    ("train", _j({"spec": SEED, "data": {"name": "xor"}, "steps": 1})),
    ("train", _j({"spec": SEED, "data": {"name": "csv", "csv": "x,y\n1,nan,0\n"}})),
    ("train", _j({"spec": SEED, "data": {"name": "csv", "csv": 5}})),
    ("check", _j({"spec": SEED, "values": {"loss@after": None}})),
    ("load", _j({"name": "x.toml", "text": "[[["})),
    ("load", _j({"name": "x.toml", "text": 'spec = "/etc/passwd"\n[values]\nz1 = 1\n'})),
    ("load", _j({"name": "x.toml", "text": 'model = "/etc/passwd"\nloss = "mse"\n'})),
    ("load", _j({"name": "x.toml", "text": 5})),
    ("export", _j({"spec": SEED, "format": "exe"})),
    ("export", _j({"spec": SEED, "format": "worksheet", "values": {"z1": [None, None, None]}})),
    ("graph", _j({"layers": 0})),
    ("graph", _j({"layers": 10**9})),
    ("nothing", _j({})),
    # Lone surrogates: valid JSON, but text no UTF-8 can carry (was a 500 on canonical/load).
    ("canonical", b'{"spec": {"name": "\\ud800", "loss": "mse"}}'),
    ("load", b'{"name": "\\ud800.toml", "text": "[[["}'),
    ("load", b'{"name": "w.toml", "text": "name = \\"\\udfff\\"\\n"}'),
    ("step", b'{"spec": {"\\udc00": 1}}'),
    ("check", b'{"spec": {}, "values": {"z1": ["\\ud83d"]}}'),
    ("export", b'{"spec": {}, "format": "\\ud800"}'),
    # Every number has a range; every text a length.
    ("explain", _j({"spec": SEED, "quantity": "z1", "index": "0," * 100_000})),
    ("explain", _j({"spec": SEED, "quantity": "z1", "index": "1" * 30})),
    ("gradcheck", _j({"spec": SEED, "layer": 1, "i": 0, "j": 0, "eps": 1e-320})),
    ("gradcheck", _j({"spec": SEED, "layer": 1, "i": 0, "j": 0, "eps": 0.5})),
    ("gradcheck", _j({"spec": SEED, "layer": 1, "i": 0, "j": 0, "eps": "1e-6"})),
    ("check", _j({"spec": SEED, "values": {"z1": ["1", "2", "3"]}, "rtol": 1e-300})),
    ("check", _j({"spec": SEED, "values": {"z1": ["1", "2", "3"]}, "rtol": 5})),
    ("train", _j({"spec": SEED, "data": {"name": "xor"}, "steps": 1, "batch": 0})),
    ("train", _j({"spec": SEED, "data": {"name": "xor"}, "steps": 1, "l2": -1})),
    ("train", _j({"spec": SEED, "data": {"name": "xor", "test": 0.9}, "steps": 1})),
    ("train", _j({"spec": SEED, "data": {"name": "xor", "noise": 10**300}, "steps": 1})),
    # The worksheet's endpoints.
    ("sheet", _j({"spec": SEED, "extra": 1})),
    ("sheet", _j({"spec": SEED, "locked": 1})),
    ("sheet", _j({"spec": None})),
    ("links", _j({"spec": SEED, "quantity": 5, "index": "0"})),
    ("links", _j({"spec": SEED, "quantity": "z1", "index": "0," * 100_000})),
    ("links", _j({"spec": SEED, "quantity": "W1", "index": "9,9"})),
    ("links", _j({"spec": SEED, "quantity": "loss_terms@after", "index": "0"})),
    ("hint", _j({"spec": SEED, "quantity": "z1", "index": "0", "level": "own", "values": [1]})),
    (
        "hint",
        _j({"spec": SEED, "quantity": "z1", "index": "0", "level": "own", "values": {"x" * 50: 1}}),
    ),
    ("hint", _j({"spec": SEED, "quantity": "loss", "index": "0", "level": "rule"})),
    ("hint", _j({"spec": SEED, "quantity": "z1", "index": "0", "level": "rule", "digits": 99})),
    ("hint", b'{"spec": {}, "quantity": "z1", "level": "\\udfff"}'),
    ("export", _j({"spec": SEED, "format": "key", "locked": True})),
    # More numbers than one request marks (each wrong one is searched for its mistake).
    (
        "check",
        _j(
            {
                "spec": {**SEED, "input": [[0.1, 0.2, 0.7]] * 70, "target": [[1, 0, 0]] * 70},
                "values": {q: [["0.5"] * 3] * 70 for q in ("z1", "a1", "z2")},
            }
        ),
    ),
]


@pytest.mark.parametrize(("endpoint", "body"), HOSTILE, ids=[f"{i}" for i in range(len(HOSTILE))])
def test_hostile_request_is_refused_with_one_line(
    client: TestClient, endpoint: str, body: bytes
) -> None:
    r = client.post(f"/api/{endpoint}", content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    if endpoint != "nothing":
        message = r.json()["error"]
        assert message and "\n" not in message and len(message) < 600


def test_battery_is_big_enough_and_server_keeps_serving(client: TestClient) -> None:
    assert len(HOSTILE) >= 40
    for endpoint, body in HOSTILE[:20]:
        client.post(f"/api/{endpoint}", content=body)
    assert client.post("/api/step", json={"spec": SEED}).status_code == 200


def test_cross_site_posts_are_refused(client: TestClient) -> None:
    """A form on another site can post text/plain without a preflight: refused (415);
    a request naming another origin is refused (403); the page's own is answered."""
    body = _j({"spec": SEED})
    form = client.post("/api/step", content=body, headers={"content-type": "text/plain"})
    assert form.status_code == 415 and "application/json" in form.json()["error"]
    assert client.post("/api/step", content=body).status_code == 415  # no type at all
    evil = {"content-type": "application/json", "origin": "https://evil.example"}
    assert client.post("/api/step", content=body, headers=evil).status_code == 403
    null = {"content-type": "application/json", "origin": "null"}
    assert client.post("/api/step", content=body, headers=null).status_code == 403
    site = {"content-type": "application/json", "sec-fetch-site": "cross-site"}
    assert client.post("/api/step", content=body, headers=site).status_code == 403
    own = {"content-type": "application/json; charset=utf-8", "origin": LOCAL}
    assert client.post("/api/step", content=body, headers=own).status_code == 200
    same = {"content-type": "application/json", "sec-fetch-site": "same-origin", "origin": LOCAL}
    assert client.post("/api/step", content=body, headers=same).status_code == 200


def test_lone_surrogate_in_a_path_is_4xx(client: TestClient) -> None:
    assert client.get("/api/example/%ED%A0%80").status_code == 404
    assert client.get("/static/%ED%A0%80").status_code == 404


def _train_spec(hidden: list[int], out: int = 2, act: str = "softmax") -> dict:
    layers: list[dict] = [{"units": n, "activation": "tanh"} for n in hidden]
    layers.append({"units": out, "activation": act})
    target = [[1.0, 0.0]] if out == 2 else [[0.5]]
    loss = "cross_entropy" if out == 2 else "mse"
    spec = {"loss": loss, "lr": 0.1, "input": [[0.0, 0.0]], "target": target, "seed": 0}
    return {**spec, "layers": layers}


def test_training_stops_at_its_time_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many steps are asked, a request trains at most TRAIN_SECONDS: with the
    limit at 0 it stops after the first step and says why."""
    from glassnet.studio import api

    monkeypatch.setattr(api, "TRAIN_SECONDS", 0.0)
    r = client.post(
        "/api/train", json={"spec": _train_spec([4]), "data": {"name": "xor"}, "steps": 500}
    )
    assert r.status_code == 200
    assert len(r.json()["history"]) == 1 and "at most 0 s" in r.json()["stopped"]


def test_training_answer_is_bounded(client: TestClient) -> None:
    """A wide network's answer carries at most MAX_UNIT_MAPS maps over the plane."""
    from glassnet.studio import api

    r = client.post(
        "/api/train", json={"spec": _train_spec([64, 8]), "data": {"name": "xor"}, "steps": 1}
    )
    maps = r.json()["grid"]["hidden"]
    assert [len(m) for m in maps] == [api.MAX_UNIT_MAPS, 0]
    assert len(r.content) < 1_000_000


def test_get_on_api_and_unknown_paths_are_4xx(client: TestClient) -> None:
    assert client.get("/api/step").status_code == 405
    assert client.get("/etc/passwd").status_code == 404
    assert client.get("/api/example/../../etc/passwd").status_code == 404


def test_command_opens_exercise_worksheet_and_model(tmp_path: Path) -> None:
    """``glassnet studio`` starts from an exercise (Practice), a spec or a model file."""
    import glassnet as gn
    from glassnet.commands.studio import initial_state

    assert main(["exercise", "-o", str(tmp_path / "ex"), "--seed", "3"]) == 0
    blank = initial_state(str(tmp_path / "ex" / "worksheet.toml"))
    spec = initial_state(str(tmp_path / "ex" / "exercise.toml"))
    assert blank["mode"] == "practice" and spec["mode"] == "explore"
    assert blank["spec"]["layers"] == spec["spec"]["layers"]
    net = gn.mlp([2, 3, 2], seed=5)
    gn.Model.from_network(net).save(tmp_path / "m.npz")
    opened = initial_state(str(tmp_path / "m.npz"))["spec"]
    for layer, got in zip(net.layers, opened["layers"], strict=True):
        assert np.array_equal(np.asarray(got["weights"], dtype=layer.W.dtype), layer.W)
    assert initial_state("seed")["spec"] == client_example()


def client_example() -> dict:
    return TestClient(create_app(), base_url=LOCAL).get("/api/example/seed").json()["spec"]


def _start(*args: str) -> tuple[object, str]:
    import subprocess
    import sys

    src = str(Path(__file__).parents[1] / "src")
    proc = subprocess.Popen(
        [sys.executable, "-m", "glassnet", "studio", "seed", "--no-browser", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline()


def test_command_serves_loopback_and_token_elsewhere() -> None:
    import urllib.error
    import urllib.request

    from glassnet.commands.studio import _loopback

    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost")
    assert not _loopback("0.0.0.0") and not _loopback("192.168.1.5")
    proc, line = _start("--port", "0")
    try:
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:") and "token" not in url
        with urllib.request.urlopen(url + "api/example/seed", timeout=30) as r:
            assert json.load(r)["spec"]["name"] == "seed"
    finally:
        proc.terminate()  # type: ignore[attr-defined]
        proc.wait(timeout=10)  # type: ignore[attr-defined]
    proc, line = _start("--host", "0.0.0.0", "--port", "0")
    try:
        url = line.split()[2]
        assert "?token=" in url
        base, token = url.split("?token=")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "api/initial", timeout=30)
        assert refused.value.code == 403
        req = urllib.request.Request(base + "api/initial", headers={"X-Glassnet-Token": token})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
    finally:
        proc.terminate()  # type: ignore[attr-defined]
        proc.wait(timeout=10)  # type: ignore[attr-defined]


@pytest.mark.parametrize("round_to", [None, 3])
def test_one_quantitys_blocks_are_the_whole_documents(round_to: int | None) -> None:
    """The fast path (one quantity's section writer alone) gives exactly the blocks the
    whole document has for every number — on the seed and eight random specs."""
    from glassnet.explain.document import Calculation
    from glassnet.explain.render_html import block_html
    from glassnet.step import step_order
    from glassnet.studio import api

    for data in [seed_spec(), *(random_spec(s) for s in range(8))]:
        spec = api.parse(data)
        doc = api._doc(spec, round_to, 4, whole=False)
        tr = doc.trace
        L, B = len(tr.layers), tr.x.shape[0]
        jac = {lt.index for lt in tr.layers if lt.jacobian}
        whole: dict = {}
        for block in doc.blocks():
            if isinstance(block, Calculation) and (k := api.block_key(block.lhs, L, B, jac)):
                whole.setdefault(k, []).append(block_html(block))
        alone: dict = {}
        for key in step_order(L):
            if key[0] in ("x", "y", "W", "b"):
                continue
            for block in api.quantity_blocks(api._trace(spec, round_to), key, 4):
                if k := api.block_key(block.lhs, L, B, jac):
                    alone.setdefault(k, []).append(block_html(block))
        assert alone == whole and len(whole) > 10
