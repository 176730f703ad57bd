"""The studio's worksheet API: the sheet carries no computed value, a locked request is
answered without any right value, hints stop before the result and put in the student's
own numbers, and per-number links are the step graph's, number by number."""

from __future__ import annotations

import json
import math
import tomllib
from typing import Any

import pytest

pytest.importorskip("starlette", reason="starlette is not installed (the studio extra)")
pytest.importorskip("httpx", reason="httpx is not installed (Starlette's TestClient needs it)")

from starlette.testclient import TestClient

from glassnet.check.steps import inputs_of
from glassnet.check.worksheet import key_name, resolve_name
from glassnet.spec import example_path
from glassnet.studio.app import create_app

LOCAL = "http://127.0.0.1"
SEED = tomllib.loads(example_path("seed").read_text())


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(), base_url=LOCAL)


def right_forms(trace: dict[str, Any]) -> set[str]:
    """Every computed number of the seed's step as a page or a JSON answer could write
    it (3, 4 and 6 significant digits, and the start of its full form), leaving out
    forms too short to mean anything (0.5) and those a given also has."""
    computed: list[float] = [trace["loss"]]

    def flat(v: Any) -> None:
        if isinstance(v, list):
            for e in v:
                flat(e)
        else:
            computed.append(float(v))

    flat(trace["loss_terms"])
    for layer in trace["layers"]:
        for field in ("z", "a", "da_dz", "dL_da", "delta", "dW", "db", "W_new", "b_new"):
            flat(layer[field])
    givens = json.dumps(
        [trace["input"], trace["target"], [(L["W"], L["b"]) for L in trace["layers"]]]
    )
    forms = set()
    for v in computed:
        for form in (f"{v:.3g}", f"{v:.4g}", f"{v:.6g}", repr(v)[:7]):
            digits = form.lstrip("-0.").replace(".", "")
            if len(digits) >= 3 and "e" not in form and form not in givens:
                forms.add(form)
    return forms


def leaks(text: str, forms: set[str]) -> list[str]:
    return sorted(f for f in forms if f in text)


@pytest.fixture(scope="module")
def forms(client: TestClient) -> set[str]:
    trace = client.post("/api/step", json={"spec": SEED}).json()
    found = right_forms(trace)
    assert "0.1984" in found  # O_out1's right value: the helper finds what it looks for
    return found


def test_sheet_has_the_givens_and_no_computed_value(client: TestClient, forms: set[str]) -> None:
    r = client.post("/api/sheet", json={"spec": SEED, "locked": True})
    assert r.status_code == 200
    sheet = r.json()
    assert leaks(r.text, forms) == []
    givens = {g["name"]: g["value"] for g in sheet["givens"]}
    assert givens["x"] == SEED["input"] and givens["W3"] == SEED["layers"][2]["weights"]
    assert sheet["settings"] == {
        "loss": SEED["loss"],
        "lr": SEED["lr"],
        "update_bias": SEED["update_bias"],
        "activations": ["relu", "sigmoid", "softmax"],
    }
    names = [u["name"] for u in sheet["unknowns"]]
    assert names[:6] == ["z1", "a1", "z2", "a2", "z3", "a3"]  # derivation order
    assert names.index("loss") < names.index("dL_da3") < names.index("dW1") < names.index("W1_new")
    shapes = {u["name"]: u["shape"] for u in sheet["unknowns"]}
    assert shapes["z1"] == [3] and shapes["da3_dz3"] == [3, 3] and shapes["dW2"] == [3, 3]
    a1 = next(u for u in sheet["unknowns"] if u["name"] == "a1")
    assert a1["seed"] == "h1_out" and a1["describe"] == "layer 1 unit {u} activation"


def test_locked_marks_carry_no_right_value(client: TestClient, forms: set[str]) -> None:
    values = {"O_out": ["0.2698", "0.3223", "0.4078"], "h1_in": ["1.35", None, None]}
    open_ = client.post("/api/check", json={"spec": SEED, "values": values}).json()
    assert leaks(json.dumps(open_), forms)  # unlocked, the right values are there
    r = client.post("/api/check", json={"spec": SEED, "values": values, "locked": True})
    # (1.35 is right, and typed: the student's own text comes back)
    assert r.status_code == 200 and leaks(r.text, forms - {"1.35"}) == []
    marks = {(e["name"], tuple(e["index"])): e for e in r.json()["entries"]}
    assert marks[("a3", (0,))]["verdict"] == "wrong"
    assert marks[("a3", (0,))]["diagnosis"] == "normalize_not_softmax"
    assert marks[("a3", (0,))]["explanation"] == "divided by the sum instead of taking the softmax"
    assert marks[("z1", (0,))]["verdict"] == "ok"
    assert not {"expected", "follows_from_given", "alternative"} & set(marks[("a3", (0,))])


def test_locked_downloads_only_the_students_worksheet(client: TestClient, forms: set[str]) -> None:
    values = {"O_out": ["0.2698", "0.3223", "0.4078"]}
    for fmt in ("toml", "html", "ipynb", "py", "marks"):
        r = client.post(
            "/api/export", json={"spec": SEED, "format": fmt, "values": values, "locked": True}
        )
        assert r.status_code == 403, fmt
    r = client.post(
        "/api/export", json={"spec": SEED, "format": "worksheet", "values": values, "locked": True}
    )
    assert r.status_code == 200 and leaks(r.text, forms) == []
    assert "0.2698" in r.json()["text"]


def test_hint_rule_only_has_no_number(client: TestClient) -> None:
    r = client.post(
        "/api/hint",
        json={"spec": SEED, "quantity": "z2", "index": "0", "level": "rule", "locked": True},
    )
    assert r.status_code == 200
    html = r.json()["html"]
    assert "<mn>0." not in html and "<mn>1." not in html  # symbols only: h1_out1 · W_j1k1 …
    assert html.count("<mtr>") == 1  # lhs = rule, nothing after it


def test_hint_own_numbers_stop_before_the_result(client: TestClient, forms: set[str]) -> None:
    """z2[0] = Σ h1_out_j · W_j1 + b: the student's h1_out2 is put in, the two not typed
    are "?" and named, the givens appear, and neither the right z2[0] nor the right
    h1_out values are anywhere."""
    values = {"h1_out": [None, "0.5987", None]}
    r = client.post(
        "/api/hint",
        json={
            "spec": SEED,
            "quantity": "h2_in",
            "index": "0",
            "level": "own",
            "values": values,
            "locked": True,
        },
    )
    assert r.status_code == 200
    hint = r.json()
    assert hint["used"] == [{"name": "h1_out2", "text": "0.5987"}]
    assert hint["missing"] == ["h1_out1", "h1_out3"]
    assert "<mn>0.5987</mn><mo>⋅</mo><mn>0.3000</mn>" in hint["html"]  # yours · W_21
    assert hint["html"].count("?") == 2
    assert hint["html"].count("<mtr>") == 2  # the rule, the numbers: no result line
    assert leaks(r.text, forms) == []


def test_hint_own_softmax_uses_the_students_inputs(client: TestClient) -> None:
    values = {"O_in": ["1", "2", "3"]}
    r = client.post(
        "/api/hint",
        json={"spec": SEED, "quantity": "O_out", "index": "1", "level": "own", "values": values},
    )
    hint = r.json()
    assert [u["text"] for u in hint["used"]] == ["1", "2", "3"] and hint["missing"] == []
    assert hint["html"].count("<mn>2.000</mn>") == 2  # e^{O_in2} above and below


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"quantity": "z1", "index": "0", "level": "answer"}, 422),
        ({"quantity": "W1", "index": "0,0", "level": "rule"}, 422),
        ({"quantity": "z1", "index": "7", "level": "rule"}, 422),
        ({"quantity": "z1", "index": "0", "level": "own", "values": {"z9": [1]}}, 422),
        ({"quantity": "z1", "index": "0", "level": "rule", "locked": "yes"}, 422),
    ],
)
def test_bad_hints_are_4xx(client: TestClient, body: dict, status: int) -> None:
    r = client.post("/api/hint", json={"spec": SEED, **body})
    assert r.status_code == status, r.text


def test_links_of_z1_0_are_the_weights_into_unit_0(client: TestClient) -> None:
    r = client.post("/api/links", json={"spec": SEED, "quantity": "z1", "index": "0"}).json()
    assert sorted(map(tuple, r["inputs"])) == sorted(
        [
            ("x", "0"),
            ("x", "1"),
            ("x", "2"),
            ("W1", "0,0"),
            ("W1", "1,0"),
            ("W1", "2,0"),
            ("b1", "0"),
        ]
    )
    assert sorted(map(tuple, r["consumers"])) == [("a1", "0"), ("da1_dz1", "0")]


def test_links_follow_the_step_graph_number_by_number(client: TestClient) -> None:
    """Every number's inputs are the quantities check's step graph says it is computed
    from, and consumers are inputs inverted — on
    the seed (softmax: a full Jacobian) and a batch of two."""
    batch = {**SEED, "input": [[0.1, 0.2, 0.7], [0.5, 0.1, 0.3]], "target": [[1, 0, 0], [0, 1, 0]]}
    for spec in (SEED, batch):
        sheet = client.post("/api/sheet", json={"spec": spec}).json()
        seen: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for u in sheet["unknowns"]:
            shape = u["shape"]
            indexes: list[list[int]] = [[]]
            for n in shape:
                indexes = [[*i, k] for i in indexes for k in range(n)]
            for idx in indexes:
                at = ",".join(map(str, idx))
                r = client.post(
                    "/api/links", json={"spec": spec, "quantity": u["name"], "index": at}
                ).json()
                key, _ = resolve_name(u["name"], 3, "t")
                allowed = {key_name(k) for k in inputs_of(key, 3)}
                got = {name for name, _ in r["inputs"]}
                # (softmax's Jacobian entry a_i(δ_ik − a_k) needs a alone, not z)
                if u["name"].startswith("da3"):
                    assert got == {"a3"}, (u["name"], at)
                else:
                    assert got == allowed, (u["name"], at)
                seen[(u["name"], at)] = [tuple(c) for c in r["consumers"]]
                for src in r["inputs"]:
                    if (src[0], src[1]) in seen:
                        assert (u["name"], at) in seen[(src[0], src[1])]


def test_links_refuse_a_bad_index(client: TestClient) -> None:
    r = client.post("/api/links", json={"spec": SEED, "quantity": "z1", "index": "5"})
    assert r.status_code == 422


@pytest.mark.parametrize("level", ["rule", "own"])
def test_every_hint_of_the_seed_is_answered_without_a_right_value(
    client: TestClient, forms: set[str], level: str
) -> None:
    """A hint for every number of the seed's sheet — rows written at once (db, softmax's
    Jacobian) and biases that stay fixed included — is answered, and none holds a right
    value (the student has typed O_in wrong, so "own" puts those in)."""
    values = {"O_in": ["1.8658", "2.2292", "2.8204"]}  # the seed tutorial's own O_in
    sheet = client.post("/api/sheet", json={"spec": SEED}).json()
    # (a form the student's own numbers also have — 2.82 of their 2.8204 — is theirs)
    theirs = {f for f in forms if any(v.startswith(f) for v in values["O_in"])}
    asked = 0
    for u in sheet["unknowns"]:
        indexes: list[list[int]] = [[]]
        for n in u["shape"]:
            indexes = [[*i, k] for i in indexes for k in range(n)]
        for idx in indexes:
            body = {"spec": SEED, "quantity": u["name"], "index": ",".join(map(str, idx))}
            r = client.post(
                "/api/hint", json={**body, "level": level, "values": values, "locked": True}
            )
            assert r.status_code == 200, (u["name"], idx, r.text)
            assert leaks(r.text, forms - theirs) == [], (u["name"], idx)
            asked += 1
    assert asked == sum(math.prod(u["shape"]) for u in sheet["unknowns"])


def whole_graph(sizes: list[int], batch: int, jacobian: set[int]) -> dict:
    """An independent reference: every number's inputs, written out for the whole step
    from the step graph's rules (z = prev·W + b, a from z — all of z for a softmax —,
    the loss from a and y, dL/da back through W and δ, da/dz from z and a — from a alone
    for a softmax's Jacobian —, δ = dL/da·da/dz, dW from prev and δ over the batch, db
    from δ, W′ and b′ from W, b and their gradients)."""
    L, S = len(sizes) - 1, range(batch)
    g: dict = {}
    for lyr in range(1, L + 1):
        n_in, n = sizes[lyr - 1], sizes[lyr]
        prev = "x" if lyr == 1 else f"a{lyr - 1}"
        for s in S:
            for k in range(n):
                g[(f"z{lyr}", (s, k))] = (
                    {(prev, (s, j)) for j in range(n_in)}
                    | {(f"W{lyr}", (j, k)) for j in range(n_in)}
                    | {(f"b{lyr}", (k,))}
                )
                g[(f"a{lyr}", (s, k))] = (
                    {(f"z{lyr}", (s, m)) for m in range(n)}
                    if lyr in jacobian
                    else {(f"z{lyr}", (s, k))}
                )
                if lyr == L:
                    g[(f"dL_da{lyr}", (s, k))] = {(f"a{lyr}", (s, k)), ("y", (s, k))}
                    g[("loss_terms", (s, k))] = {(f"a{lyr}", (s, k)), ("y", (s, k))}
                else:
                    g[(f"dL_da{lyr}", (s, k))] = {
                        (f"delta{lyr + 1}", (s, m)) for m in range(sizes[lyr + 1])
                    } | {(f"W{lyr + 1}", (k, m)) for m in range(sizes[lyr + 1])}
                d = f"da{lyr}_dz{lyr}"
                if lyr in jacobian:
                    for i in range(n):
                        g[(d, (s, i, k))] = {(f"a{lyr}", (s, i)), (f"a{lyr}", (s, k))}
                    g[(f"delta{lyr}", (s, k))] = {(f"dL_da{lyr}", (s, i)) for i in range(n)} | {
                        (d, (s, i, k)) for i in range(n)
                    }
                else:
                    g[(d, (s, k))] = {(f"z{lyr}", (s, k)), (f"a{lyr}", (s, k))}
                    g[(f"delta{lyr}", (s, k))] = {(f"dL_da{lyr}", (s, k)), (d, (s, k))}
        for k in range(n):
            for j in range(n_in):
                g[(f"dW{lyr}", (j, k))] = {(prev, (s, j)) for s in S} | {
                    (f"delta{lyr}", (s, k)) for s in S
                }
                g[(f"W{lyr}_new", (j, k))] = {(f"W{lyr}", (j, k)), (f"dW{lyr}", (j, k))}
            g[(f"db{lyr}", (k,))] = {(f"delta{lyr}", (s, k)) for s in S}
            g[(f"b{lyr}_new", (k,))] = {(f"b{lyr}", (k,)), (f"db{lyr}", (k,))}
    g[("loss", ())] = {("loss_terms", (s, k)) for s in S for k in range(sizes[-1])}
    return g


@pytest.mark.parametrize(
    ("sizes", "batch", "jacobian"),
    [([3, 3, 3, 3], 1, {3}), ([3, 3, 3, 3], 2, {3}), ([2, 4, 1], 3, set()), ([4, 2, 3], 2, {1, 2})],
)
def test_entry_graph_is_the_whole_graph_number_by_number(
    sizes: list[int], batch: int, jacobian: set[int]
) -> None:
    """The per-number rules the server answers with equal the whole graph written out,
    inputs and consumers (its inverse), for every number of the step."""
    from glassnet.studio.entries import EntryGraph

    whole = whole_graph(sizes, batch, jacobian)
    consumers: dict = {}
    for entry, ins in whole.items():
        for src in ins:
            consumers.setdefault(src, set()).add(entry)
    graph = EntryGraph(tuple(sizes), batch, frozenset(jacobian))
    for entry in set(whole) | set(consumers):
        assert graph.has(entry), entry
        assert set(graph.inputs(entry)) == whole.get(entry, set()), entry
        assert len(graph.inputs(entry)) == len(whole.get(entry, set())), entry
        assert set(graph.consumers(entry)) == consumers.get(entry, set()), entry
    assert not graph.has(("z1", (batch, 0))) and not graph.has(("W1", (0, sizes[1])))


def test_links_on_the_largest_page_network(client: TestClient) -> None:
    """A network at the page's limits (19,200 parameters, 256 samples) answers one
    number's links without building the whole graph (millions of edges)."""
    import numpy as np

    rng = np.random.default_rng(0)
    spec = {
        "loss": "mse",
        "lr": 0.1,
        "input": rng.normal(size=(256, 96)).round(2).tolist(),
        "target": rng.normal(size=(256, 2)).round(2).tolist(),
        "layers": [
            {"weights": rng.normal(size=(96, 192)).round(2).tolist(), "bias": [0.0] * 192},
            {"weights": rng.normal(size=(192, 4)).round(2).tolist(), "bias": [0.0] * 4},
            {"weights": rng.normal(size=(4, 2)).round(2).tolist(), "bias": [0.0] * 2},
        ],
    }
    r = client.post("/api/links", json={"spec": spec, "quantity": "x", "index": "5,7"})
    assert r.status_code == 200, r.text
    assert len(r.json()["consumers"]) == 192 + 192  # z1[5, :] and dW1[7, :]
    r = client.post("/api/links", json={"spec": spec, "quantity": "dW1", "index": "7,3"})
    assert len(r.json()["inputs"]) == 2 * 256


def test_a_quantity_too_wide_to_derive_is_refused_not_worked_for_minutes(
    client: TestClient,
) -> None:
    """One number's derivation builds its whole quantity: a 96-192 layer's dW (18,432
    numbers) is refused with 413 for the panel and for a hint, before any is built."""
    import numpy as np

    rng = np.random.default_rng(1)
    spec = {
        "loss": "mse",
        "lr": 0.1,
        "input": rng.normal(size=(1, 96)).round(2).tolist(),
        "target": [[0.5]],
        "layers": [
            {"weights": rng.normal(size=(96, 192)).round(2).tolist(), "bias": [0.0] * 192},
            {"weights": rng.normal(size=(192, 1)).round(2).tolist(), "bias": [0.0]},
        ],
    }
    for endpoint, extra in (("explain", {}), ("hint", {"level": "rule"})):
        r = client.post(
            f"/api/{endpoint}", json={"spec": spec, "quantity": "dW1", "index": "3,5", **extra}
        )
        assert r.status_code == 413 and "18,432 numbers" in r.json()["error"], endpoint
    ok = client.post("/api/explain", json={"spec": spec, "quantity": "a2", "index": "0"})
    assert ok.status_code == 200 and "<math" in ok.json()["html"]
