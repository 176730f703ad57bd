"""Plugins answer for themselves: capabilities are attributes, never names.

``test_no_name_comparisons`` reads every module of the package with ``ast`` and fails on
any comparison with a registered activation's, loss's, layer's or optimiser's name
outside that plugin's own file; the rest checks the capabilities that replace those
comparisons (the issue's repro: a copy of softmax under another name behaves as softmax).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.activations import Activation, Softmax, get_activation, names
from glassnet.activations import base as activation_base
from glassnet.losses import LOSSES, default_loss_for, fused_delta_ok, get_loss, loss_class
from glassnet.training import default_loss

SRC = Path(gn.__file__).parent


def _registry_modules() -> Iterator[object]:
    """Every ``glassnet.<package>.base`` (where a plugin package keeps its registry, as
    activations/, losses/, layers/ and optimizers/ do), and ``glassnet.optim`` while it
    still holds optimisers itself."""
    for info in pkgutil.iter_modules(gn.__path__):
        if info.ispkg:
            try:
                yield importlib.import_module(f"glassnet.{info.name}.base")
            except ImportError:
                continue  # a package without a base module: no registry
    try:
        yield importlib.import_module("glassnet.optim")
    except ImportError:
        pass


#: What a registry of activations, losses, layers or optimisers is called (not, for
#: instance, the learning-rate schedules' table, which the issue leaves alone).
_REGISTRY_NAMES = ("_REGISTRY", "REGISTRY", "ACTIVATIONS", "LOSSES", "LAYERS", "OPTIMIZERS")


def _registries(module: object) -> Iterator[dict[str, type]]:
    """Module-level dicts that are plugin registries: one of :data:`_REGISTRY_NAMES`,
    every key a class's own name for itself (its ``name``, or a layer's ``type``)."""
    for attr, value in vars(module).items():
        if attr not in _REGISTRY_NAMES:
            continue
        if (
            isinstance(value, dict)
            and value
            and all(
                isinstance(k, str)
                and inspect.isclass(c)
                and k in (getattr(c, "name", None), getattr(c, "type", None))
                for k, c in value.items()
            )
        ):
            yield value


def option_names() -> set[str]:
    """Every option (field, hyperparameter) a registered plugin declares: ``momentum``
    is SGD's option and batch norm's as well as an optimiser's name, and a dict keyed by
    options (``{"eps": …, "momentum": …}``) is a table of settings, not of plugins."""
    out: set[str] = set()
    for module in _registry_modules():
        for registry in _registries(module):
            for cls in registry.values():
                out |= set(getattr(cls, "defaults", None) or {})
                out |= {f for f in getattr(cls, "spec_fields", ()) if isinstance(f, str)}
                for f in getattr(cls, "fields", ()):
                    name = getattr(f, "name", f)
                    if isinstance(name, str):
                        out.add(name)
    return out


def plugin_files() -> dict[str, set[Path]]:
    """Every registered plugin name -> the files allowed to compare with it: the
    plugin's own file, and the file of the registry that lists it.  Read at test time,
    so a new plugin (or a new plugin package) counts as soon as it exists."""
    owners: dict[str, set[Path]] = {}
    for module in _registry_modules():
        for registry in _registries(module):
            for name, cls in registry.items():
                files = owners.setdefault(name, set())
                files.add(Path(inspect.getfile(cls)).resolve())
                files.add(Path(inspect.getfile(module)).resolve())  # type: ignore[arg-type]
    return owners


def _names_in(node: ast.AST) -> Iterator[str]:
    """String literals in ``node``: the constant itself, or the elements of a literal
    tuple, list or set (``x in ("softmax", "sigmoid")``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        for element in node.elts:
            yield from _names_in(element)


def _pattern_names(pattern: ast.pattern) -> Iterator[str]:
    if isinstance(pattern, ast.MatchValue):
        yield from _names_in(pattern.value)
    elif isinstance(pattern, ast.MatchOr):
        for p in pattern.patterns:
            yield from _pattern_names(p)


def name_uses(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    """(line, what, name literal) for every use of a string literal as something
    compared with or looked up by: comparisons (==, !=, in, not in, is), match/case
    values, and dict keys (a table keyed by names is a comparison made in advance).
    Docstrings and other free-standing strings are not uses."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                for value in _names_in(operand):
                    yield node.lineno, "comparison", value
        elif isinstance(node, ast.match_case):
            for value in _pattern_names(node.pattern):
                yield node.pattern.lineno, "case", value
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                if key is not None:
                    for value in _names_in(key):
                        yield key.lineno, "dict key", value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "dict":
                for kw in node.keywords:
                    if kw.arg is not None:
                        yield node.lineno, "dict key", kw.arg


def test_no_name_comparisons() -> None:
    owners = plugin_files()
    # The registries were found (else this test would pass by reading nothing).
    assert set(names()) <= set(owners) and set(LOSSES) <= set(owners)
    assert {"sgd", "adam"} <= set(owners)  # the optimisers, wherever they live
    # A dict key that is also some plugin's option name is that option (batch norm's
    # momentum), not a lookup by the plugin of the same name; comparisons still count.
    options = option_names()
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, what, value in name_uses(tree):
            if what == "dict key" and value in options:
                continue
            if value in owners and path.resolve() not in owners[value]:
                found.append(f"{path.relative_to(SRC)}:{line}: {what} with {value!r}")
    assert not found, "ask the plugin for a capability instead:\n" + "\n".join(found)


def test_the_checker_sees_each_kind_of_use() -> None:
    # The walker itself: each smell it exists for is found, and a docstring is not.
    code = '''
"""softmax in a docstring is fine."""
if act.name == "softmax": pass
if act.name in ("relu", "tanh"): pass
if "mse" != loss.name: pass
table = {"sigmoid": 1}
other = dict(identity=2)
match loss.name:
    case "cross_entropy" | "half_sse": pass
'''
    found = sorted(value for _, _, value in name_uses(ast.parse(code)))
    assert found == [
        "cross_entropy", "half_sse", "identity", "mse", "relu", "sigmoid", "softmax", "tanh",
    ]  # fmt: skip


# -- capabilities ---------------------------------------------------------------------------
@pytest.fixture
def softmax_copy() -> Iterator[str]:
    """Softmax registered under another name (only its name differs), for one test."""

    class SoftmaxCopy(Softmax):
        name = "softmax_copy"

    activation_base.register(SoftmaxCopy)
    try:
        yield SoftmaxCopy.name
    finally:
        del activation_base._REGISTRY[SoftmaxCopy.name]


def test_a_renamed_softmax_is_a_softmax(softmax_copy: str) -> None:
    # The repro: cross-entropy refused it, the default loss became mse and
    # predict returned probabilities.
    model = gn.mlp([3, 4, 3], output=softmax_copy, seed=0, dtype="float64")
    reference = gn.mlp([3, 4, 3], output="softmax", seed=0, dtype="float64")
    assert model.check_loss("cross_entropy").name == "cross_entropy"
    assert default_loss(model) == default_loss(reference) == "cross_entropy"
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(24, 3)), rng.integers(0, 3, size=24)
    Y = np.eye(3)[y]
    assert fused_delta_ok(model.output_activation, get_loss("cross_entropy"), Y)
    h1 = model.fit(X, y, epochs=2, batch_size=8, optimizer="sgd")
    h2 = reference.fit(X, y, epochs=2, batch_size=8, optimizer="sgd")
    assert "accuracy" in h1.history
    # The same weights, trained the same way (fused delta included): the same numbers.
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert h1.history == h2.history
    predicted = model.predict(X)
    assert predicted.shape == (24,) and predicted.dtype.kind == "i"
    np.testing.assert_array_equal(predicted, reference.predict(X))


def test_capabilities_of_the_outputs() -> None:
    softmax, sigmoid, identity = (get_activation(n) for n in ("softmax", "sigmoid", "identity"))
    assert softmax.outputs_probabilities and sigmoid.outputs_probabilities
    assert not identity.outputs_probabilities
    ce, bce, mse, half = (get_loss(n) for n in ("cross_entropy", "binary_cross_entropy", "mse",
                                                 "half_sse"))  # fmt: skip
    assert ce.accepts_output(softmax) and not ce.accepts_output(sigmoid)
    assert bce.accepts_output(softmax) and bce.accepts_output(sigmoid)
    assert not bce.accepts_output(identity)
    assert all(loss.accepts_output(identity) for loss in (mse, half))
    assert ce.fused_delta_with(softmax)
    assert not any(loss.fused_delta_with(softmax) for loss in (bce, mse, half))
    assert default_loss_for(softmax) == ce and default_loss_for(sigmoid) == bce
    assert default_loss_for(identity) == mse
    assert ce.is_classification and bce.is_classification and not mse.is_classification
    p = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    np.testing.assert_array_equal(softmax.classes(p), [1, 0])
    np.testing.assert_array_equal(sigmoid.classes(np.array([[0.2], [0.5]])), [0, 1])


def test_exactly_one_default_loss_per_activation() -> None:
    for name in names():
        act = get_activation(name)
        claims = [n for n in LOSSES if loss_class(n)().default_for(act)]
        assert len(claims) == 1, (name, claims)
        assert get_loss(claims[0]).accepts_output(act)


# -- weights go into the loss explicitly ------------------------------------------------------
@pytest.mark.parametrize("name", LOSSES)
def test_weighted_value_and_grad(name: str) -> None:
    loss = get_loss(name)
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, size=(5, 3))
    p /= p.sum(axis=1, keepdims=True)
    y = np.eye(3)[rng.integers(0, 3, size=5)]
    w = rng.uniform(0, 2, size=5)
    # L = Σ_s w_s Σ_k terms / batch, and row s of dL/dp scaled by w_s.
    expected = sum(w[s] * loss.terms(p[s : s + 1], y[s : s + 1]).sum() for s in range(5)) / 5
    assert loss.value(p, y, weights=w) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(loss.grad(p, y, weights=w), loss.grad(p, y) * w[:, None])
    ones = np.ones(5)
    assert loss.value(p, y, weights=ones) == pytest.approx(loss.value(p, y), rel=1e-12)


@pytest.mark.parametrize("name", LOSSES)
def test_torch_terms_match_the_numpy_loss(name: str) -> None:
    # What another engine differentiates is the same loss: value and autograd gradient
    # equal the NumPy value and grad, weighted, in float64.
    torch = pytest.importorskip("torch")
    loss = get_loss(name)
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.95, size=(6, 2))
    y = rng.uniform(0, 1, size=(6, 2))
    w = rng.uniform(0.1, 2, size=6)
    pt = torch.tensor(p, requires_grad=True)
    value = loss.torch_value(torch, pt, torch.tensor(y), torch.tensor(w))
    value.backward()
    assert value.item() == pytest.approx(loss.value(p, y, weights=w), rel=1e-12)
    np.testing.assert_allclose(pt.grad.numpy(), loss.grad(p, y, weights=w), rtol=1e-12)


def test_activation_capabilities_are_declared_on_the_class() -> None:
    # A plugin that says nothing is a regression output with no shortcut.
    class Plain(Activation):
        name = "plain_for_test"

    act = Plain()
    assert act.output_kind == "values" and not act.outputs_probabilities
    assert not act.exp_normalised and not act.piecewise_linear
    assert act.labels_from_targets(np.eye(2)) is None
