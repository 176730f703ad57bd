"""The derivation as a Jupyter notebook (nbformat 4): the document's sections as
Markdown cells and, after each, a code cell that rebuilds that part with NumPy — the
network is rebuilt with glassnet from the trace's numbers — and checks it against
glassnet's trace, so the notebook runs top to bottom and proves its own numbers.

The code cells write each rule once more, in NumPy, the way a student would check a
hand calculation; they compare with the engine's trace (``same(...)``), they do not
feed the document.  A dense page's cells are written here, in the page's notation; a
page of other layer types (explain/generic.py) gets each layer's own code
(``Layer.notebook_forward``, ``notebook_backward``) and the checks of every quantity
its step graph records.
"""

from __future__ import annotations

import json
from typing import Any

from glassnet.explain.document import Document, Section
from glassnet.explain.render_markdown import section_markdown
from glassnet.losses import get_loss


def _lit(a: Any) -> str:
    """A NumPy array literal with every digit of the float64 values."""
    return f"np.array({json.dumps(a.tolist())})"


def _setup(doc: Document) -> str:
    t = doc.trace
    layers = []
    for lt in t.layers:
        options = "".join(f", {k}={v!r}" for k, v in lt.activation_options.items())
        act = f'get_activation("{lt.activation}"{options})' if options else f'"{lt.activation}"'
        layers.append(f"    Dense({_lit(lt.W)}, {_lit(lt.b)}, {act}),")
    return _setup_with(
        doc,
        layers,
        ["from glassnet.activations import get_activation", "from glassnet.layers import Dense"],
        ["# The network, rebuilt with glassnet from the numbers above."],
    )


def _setup_with(doc: Document, layers: list[str], imports: list[str], says: list[str]) -> str:
    """The first code cell: imports, the network (``layers``: its list's lines), the
    trace glassnet records of it, ``r`` (hand mode's rounding) and ``same``."""
    t = doc.trace
    K = t.round_to
    tol = "rtol=1e-9, atol=1e-12" if K is None else f"rtol=0, atol={1.01 * 10.0**-K!r}"
    return "\n".join(
        [
            "import math",
            "",
            "import numpy as np",
            "",
            "import glassnet as gn",
            *imports,
            "",
            *says,
            *(
                [
                    "# The page writes each layer in columns, W·a + b with W[to][from]: the",
                    "# code below does the same (W = layer.W.T; each sample a column in the",
                    "# products), and keeps one row per sample elsewhere, as glassnet does.",
                ]
                if doc.notation == "columns"
                else []
            ),
            "net = gn.Network([",
            *layers,
            "])",
            f"x = {_lit(t.x)}",
            f"y = {_lit(t.y)}",
            f"lr, update_bias, K = {t.lr!r}, {t.update_bias!r}, {K!r}",
            f'trace = gn.trace_step(net, x, y, loss="{t.loss_name}", lr=lr, '
            "update_bias=update_bias, round_to=K)",
            "B = x.shape[0]",
            "",
            "",
            "def r(v):",
            '    """Round to K decimals in hand mode (as the document does), else keep."""',
            "    return v if K is None else np.round(v, K)",
            "",
            "",
            "def same(name, ours, recorded):",
            '    """Check a value recomputed here against the one glassnet recorded, and',
            "    return the one to carry on from: ours — in hand mode the recorded one, as a",
            "    marker checks each line of a worked solution from the line before it (a sum",
            "    landing on a tie at the last decimal may round either way, and the next line",
            '    would inherit it)."""',
            f"    assert np.allclose(ours, recorded, {tol}), name",
            '    print(f"{name}: recomputed, equal to the trace")',
            "    return ours if K is None else recorded",
            "",
            "",
            "a0 = r(x)",
        ]
    )


def _forward(doc: Document, layer: int) -> str:
    lt = doc.trace.layer(layer)
    act = lt.act.numpy_code(f"z{layer}")
    if doc.notation == "columns":
        weights = [
            f"# W{layer}[to][from], as the page writes it: glassnet's W[from][to] transposed.",
            f"W{layer}, b{layer} = r(net.layers[{layer - 1}].W.T), r(net.layers[{layer - 1}].b)",
            f"z{layer} = r((W{layer} @ a{layer - 1}.T).T + b{layer})  # W·a + b per column",
        ]
    else:
        weights = [
            f"W{layer}, b{layer} = r(net.layers[{layer - 1}].W), r(net.layers[{layer - 1}].b)",
            f"z{layer} = r(a{layer - 1} @ W{layer} + b{layer})",
        ]
    lines = [
        *weights,
        f"a{layer} = r({act})",
        f'same("z{layer}", z{layer}, trace.layer({layer}).z)',
        f'same("a{layer}", a{layer}, trace.layer({layer}).a)',
        f"print(np.round(a{layer}, 6))",
    ]
    return "\n".join(lines)


def _error(doc: Document) -> str:
    L = len(doc.trace.layers)
    return "\n".join(
        [
            f"p = a{L}",
            f"terms = r({get_loss(doc.trace.loss_name).numpy_terms_code})",
            "E = r(terms.sum() / B)",
            'same("loss terms", terms, trace.loss_terms)',
            'same("E", E, trace.loss)',
            "print(E)",
        ]
    )


def _dloss(doc: Document) -> str:
    L = len(doc.trace.layers)
    return "\n".join(
        [
            f"dL_da{L} = r(({get_loss(doc.trace.loss_name).numpy_grad_code}) / B)",
            f'same("dE/dO_out", dL_da{L}, trace.layer({L}).dL_da)',
        ]
    )


def _backward(doc: Document, layer: int) -> str:
    t = doc.trace
    L = len(t.layers)
    lt = t.layer(layer)
    deriv = lt.act.numpy_derivative_code(f"z{layer}", f"a{layer}")
    lines = []
    if layer < L:
        lines += [
            f"# dE/da{layer} sums over every unit of layer {layer + 1}.",
            (
                f"dL_da{layer} = r((W{layer + 1}.T @ delta{layer + 1}.T).T)  # Wᵀ·δ per column"
                if doc.notation == "columns"
                else f"dL_da{layer} = r(delta{layer + 1} @ W{layer + 1}.T)"
            ),
            f'same("dL_da{layer}", dL_da{layer}, trace.layer({layer}).dL_da)',
        ]
    lines.append(f"da_dz{layer} = r({deriv})")
    if lt.jacobian:
        lines.append(f'delta{layer} = r(np.einsum("si,sij->sj", dL_da{layer}, da_dz{layer}))')
    else:
        lines.append(f"delta{layer} = r(dL_da{layer} * da_dz{layer})")
    lines += [
        f'same("da{layer}_dz{layer}", da_dz{layer}, trace.layer({layer}).da_dz)',
        f'same("delta{layer}", delta{layer}, trace.layer({layer}).delta)',
    ]
    if layer == L and t.output_delta_shortcut is not None and t.round_to is None:
        lines += [
            "# softmax + cross-entropy, every target row summing to 1: the same delta, the "
            "short way",
            f'same("(p - y)/B", (a{L} - y) / B, delta{L})',
        ]
    prev = f"a{layer - 1}"
    columns = doc.notation == "columns"
    lines += [
        (
            f"dW{layer} = r(delta{layer}.T @ {prev})  # δ·aᵀ: W[to][from], as the page"
            if columns
            else f"dW{layer} = r({prev}.T @ delta{layer})"
        ),
        f"db{layer} = r(delta{layer}.sum(axis=0))",
        f'same("dW{layer}", dW{layer}{".T" if columns else ""}, trace.layer({layer}).dW)',
        f'same("db{layer}", db{layer}, trace.layer({layer}).db)',
    ]
    return "\n".join(lines)


def _update(doc: Document, layer: int) -> str:
    return "\n".join(
        [
            f"W{layer}_new = r(W{layer} - lr * dW{layer})",
            f"b{layer}_new = r(b{layer} - lr * db{layer}) if update_bias else b{layer}",
            f'same("W{layer}_new", W{layer}_new{".T" if doc.notation == "columns" else ""}, '
            f"trace.layer({layer}).W_new)",
            f'same("b{layer}_new", b{layer}_new, trace.layer({layer}).b_new)',
        ]
    )


def _summary(doc: Document) -> str:
    t = doc.trace
    lines = [
        "# Apply the step to the network itself and check its new weights.",
        f'gn.apply_step(net, x, y, loss="{t.loss_name}", lr=lr, update_bias=update_bias, '
        "round_to=K)",
    ]
    for lt in t.layers:
        i = lt.index
        new = f"W{i}_new.T" if doc.notation == "columns" else f"W{i}_new"
        lines.append(f'same("layer {i} weights after the step", net.layers[{i - 1}].W, {new})')
    lines.append('print("every value of the derivation reproduced")')
    return "\n".join(lines)


def _code(doc: Document, sec: Section) -> str | None:
    if sec.kind == "intro":
        return _setup(doc)
    if sec.kind == "forward":
        assert sec.layer is not None
        return _forward(doc, sec.layer)
    if sec.kind == "error":
        return _error(doc)
    if sec.kind == "dloss":
        return _dloss(doc)
    if sec.kind == "backward":
        assert sec.layer is not None
        return _backward(doc, sec.layer)
    if sec.kind == "update":
        assert sec.layer is not None
        return _update(doc, sec.layer)
    if sec.kind in ("summary", "after"):
        return _summary(doc)
    return None


# -- a page of several layer types (explain/generic.py), a phase at a time ---------------
#
# Each layer writes its own code (Layer.notebook_forward / notebook_backward, from its
# definition); this module writes the checks, from the step graph: every quantity the
# trace recorded is compared once, in the cell of the phase that computes it.


def _generic_supported(doc: Document) -> bool:
    """True when every layer writes its notebook code and the update is plain gradient
    descent with the trace's learning rate (no state, no weight decay): what the cells
    below rebuild.  Otherwise the notebook has the Markdown only."""
    t = doc.trace
    graph = t.graph
    if graph is None:
        return False
    linear = getattr(graph.optimizer, "linear_update", None)
    if linear is None or linear() != (-t.lr, 1.0):
        return False
    for key in graph.order():
        decl = graph.decl(key)
        if decl.phase == "update" and not key[0].endswith("_new"):
            return False  # an optimiser's own quantities (decayed gradients, state)
    layers = graph.layers
    return all(
        layer.notebook_forward(i, f"a{i - 1}") is not None
        and layer.notebook_backward(i, f"a{i - 1}", first=i == 1) is not None
        for i, layer in enumerate(layers, 1)
    )


def _var(kind: str, layer: int) -> str:
    """The notebook's variable for quantity ``kind`` of ``layer``: z1, dW2, W2_new."""
    if kind.endswith("_new"):
        return f"{kind.removesuffix('_new')}{layer}_new"
    return f"{kind}{layer}"


def _same(kind: str, layer: int) -> str:
    """The check of ``kind`` of ``layer`` against the trace, by the variable's name."""
    v = _var(kind, layer)
    return f'{v} = same("{v}", {v}, trace.layer({layer}).{kind})'


def _generic_setup(doc: Document) -> str:
    t = doc.trace
    assert t.graph is not None
    layers = []
    for layer in t.graph.layers:
        arrays = ", ".join(f'"{name}": {_lit(v)}' for name, v in layer.arrays().items())
        layers.append(f'    layer_class("{layer.type}").from_file(')
        layers.append(f"        {layer.config()!r},")
        layers.append(f"        {{{arrays}}},")
        # a step's own leaves the saved form leaves out (dropout's mask)
        saved = layer.arrays()
        own = {k: v for k, v in layer.leaf_values().items() if k not in saved}
        if own:
            given = ", ".join(f'"{name}": {_lit(v)}' for name, v in own.items())
            layers.append(f"    ).with_leaves({{{given}}}),")
        else:
            layers.append("    ),")
    return _setup_with(
        doc,
        layers,
        ["from glassnet.layers import layer_class"],
        [
            "# The network, rebuilt with glassnet from each layer's saved form (its settings,",
            "# then its arrays).",
        ],
    )


def _generic_leaves(doc: Document) -> str:
    t = doc.trace
    lines = ['a0 = same("x", a0, trace.x)']
    for lt in t.layers:
        i = lt.index
        for kind in lt.layer.params + lt.layer.constants:
            lines.append(f'{kind}{i} = r(net.layers[{i - 1}].leaf_values()["{kind}"])')
            lines.append(_same(kind, i))
    return "\n".join(lines)


def _generic_forward(doc: Document) -> str:
    graph = doc.trace.graph
    assert graph is not None
    lines: list[str] = []
    for i, layer in enumerate(graph.layers, 1):
        lines.append(f"# layer {i}: {layer.describe()}")
        lines += layer.notebook_forward(i, f"a{i - 1}") or []
        lines += [
            _same(k, i) for k in graph.layer_kinds(i) if graph.decl((k, i)).phase == "forward"
        ]
        lines.append("")
    lines.append(f"print(np.round(a{graph.n_layers}, 6))")
    return "\n".join(lines)


def _generic_backward(doc: Document) -> str:
    graph = doc.trace.graph
    assert graph is not None
    L = graph.n_layers
    lines = [
        f"dL_da{L} = r(({get_loss(doc.trace.loss_name).numpy_grad_code}) / B)",
        _same("dL_da", L),
        "",
    ]
    for i in range(L, 0, -1):
        layer = graph.layers[i - 1]
        lines.append(f"# layer {i}: {layer.describe()}")
        lines += layer.notebook_backward(i, f"a{i - 1}", first=i == 1) or []
        lines += [
            _same(k, i)
            for k in graph.layer_kinds(i)
            if graph.decl((k, i)).phase == "backward" and k != "dL_da"
        ]
        if i > 1 and graph.has(("dL_da", i - 1)):
            lines.append(_same("dL_da", i - 1))
        lines.append("")
    return "\n".join(lines).rstrip()


def _generic_update(doc: Document) -> str:
    graph = doc.trace.graph
    assert graph is not None
    lines = []
    for i in range(1, graph.n_layers + 1):
        for kind in graph.layer_kinds(i):
            update = graph.update_of((kind, i))
            if update is None or graph.decl((kind, i)).phase != "update":
                continue
            param, grad = (f"{k}{n}" for k, n in graph.inputs((kind, i)))
            fixed = update[2]
            rule = f"{param}  # held fixed" if fixed else f"r({param} - lr * {grad})"
            lines += [f"{_var(kind, i)} = {rule}", _same(kind, i)]
    return "\n".join(lines)


def _generic_summary(doc: Document) -> str:
    graph = doc.trace.graph
    assert graph is not None
    t = doc.trace
    lines = [
        "# Apply the step to the network itself and check its new parameters.",
        f'gn.apply_step(net, x, y, loss="{t.loss_name}", lr=lr, update_bias=update_bias, '
        "round_to=K)",
    ]
    for i in range(1, graph.n_layers + 1):
        for kind in graph.layer_kinds(i):
            update = graph.update_of((kind, i))
            if update is not None and graph.decl((kind, i)).phase == "update":
                lines.append(
                    f'same("layer {i} {update[0]} after the step", '
                    f'net.layers[{i - 1}].leaf_values()["{update[0]}"], {_var(kind, i)})'
                )
    lines.append('print("every value of the derivation reproduced")')
    return "\n".join(lines)


_GENERIC_CELLS = {
    "g-intro": _generic_setup,
    "g-leaf": _generic_leaves,
    "g-forward": _generic_forward,
    "g-loss": _error,
    "g-backward": _generic_backward,
    "g-update": _generic_update,
    "g-summary": _generic_summary,
}


def _generic_code(doc: Document, sec: Section) -> str | None:
    cell = _GENERIC_CELLS.get(sec.kind)
    return None if cell is None else cell(doc)


def build_notebook(doc: Document):  # -> nbformat.NotebookNode
    """The notebook object (nbformat 4).  A page of several layer types (its sections'
    kinds "g-…") gets its cells from each layer's own code, when every layer writes
    some (see :func:`_generic_supported`); otherwise the Markdown only."""
    if any(sec.kind.startswith("g-") for sec in doc.sections):
        if not _generic_supported(doc):
            return notebook_of([(sec, None) for sec in doc.sections])
        return notebook_of([(sec, _generic_code(doc, sec)) for sec in doc.sections])
    return notebook_of([(sec, _code(doc, sec)) for sec in doc.sections])


def notebook_of(cells: list[tuple[Section, str | None]]):  # -> nbformat.NotebookNode
    """A notebook of sections, each a Markdown cell, followed by its code cell if any
    (a network's page and a circuit's are built alike)."""
    try:
        import nbformat
    except ImportError:  # pragma: no cover - depends on the environment
        from glassnet.errors import GlassnetError
        from glassnet.extras import install_hint

        raise GlassnetError(
            f"expected nbformat to be installed for --format ipynb ({install_hint('explain')})",
            got="no nbformat",
            field="format",
        ) from None
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for sec, code in cells:
        nb.cells.append(v4.new_markdown_cell(section_markdown(sec)))
        if code:
            nb.cells.append(v4.new_code_cell(code))
    return nb


def render_notebook(doc: Document) -> str:
    """The notebook as .ipynb JSON text."""
    return notebook_text(build_notebook(doc))


def notebook_text(nb: Any) -> str:
    """A notebook object validated and written as .ipynb JSON text."""
    import nbformat

    nbformat.validate(nb)
    return str(nbformat.writes(nb))
