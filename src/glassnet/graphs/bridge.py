"""The bridge from a network to a circuit (``glassnet graph --from-spec SPEC --unit L,J``):
one unit of a dense layer's step, unrolled as the circuit of gates a student meets first,
so the dense step is seen to be the same rule applied unit after unit.

Unit J of layer L (both from 1) computes, for one sample,

    z = w1·x1 + w2·x2 + … + wn·xn + b,    a = act(z)

with x the layer's input (the network's input for layer 1, layer L−1's outputs after
it), wi = W[i][J] and b = b[J], all read from the network's trace.  What the rest of
the network does with a is summed up by one number from the same trace, g = ∂E/∂a (the
loss's gradient with respect to this unit's output, this sample's part of the batch's
loss): the circuit's output is f = a · g, a constant times a, so that ∂f/∂node is
∂E/∂node through this unit — ∂f/∂z is the trace's delta, ∂f/∂wi its dW[i][J] and
∂f/∂b its db[J] for a batch of one (for a batch, this sample's part of them: the trace's
are the sums over the samples), and ∂f/∂xi the part of ∂E/∂xi through this unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from glassnet.errors import GlassnetError
from glassnet.graphs.parse import ExpressionFile, parse_expression
from glassnet.limits import MAX_GRAPH_GATES

if TYPE_CHECKING:
    from glassnet.trace import Trace


def parse_unit(text: str) -> tuple[int, int]:
    """``"2,1"`` -> (2, 1): layer L and unit J, both from 1."""
    parts = text.split(",")
    try:
        layer, unit = (int(p) for p in parts)
    except ValueError:
        raise GlassnetError(
            "expected a layer and a unit, both from 1, like 2,1", got=repr(text), field="--unit"
        ) from None
    return layer, unit


def unit_circuit(trace: Trace, layer: int, unit: int, sample: int = 1) -> ExpressionFile:
    """Unit ``unit`` of layer ``layer`` (both from 1) for sample ``sample`` (from 1) of a
    network's traced step, as an expression file: its circuit and its values (see the
    module docstring)."""
    n_layers = len(trace.layers)
    if not 1 <= layer <= n_layers:
        raise GlassnetError(
            f"expected a layer from 1 to {n_layers}", got=str(layer), field="--unit"
        )
    lt = trace.layer(layer)
    if not lt.layer.dense_like or lt.layer.couples_batch or not (lt.has("W") and lt.has("b")):
        raise GlassnetError(
            "expected a dense layer (z = x·W + b, then its activation)",
            got=f"layer {layer}: {lt.layer.describe()}",
            field="--unit",
        )
    n_in, n_out = lt.W.shape
    if not 1 <= unit <= n_out:
        raise GlassnetError(
            f"expected a unit from 1 to {n_out} of layer {layer}", got=str(unit), field="--unit"
        )
    batch = lt.x.shape[0]
    if not 1 <= sample <= batch:
        raise GlassnetError(
            f"expected a sample from 1 to {batch}", got=str(sample), field="--sample"
        )
    act = lt.act.circuit_text("z")
    if act is None:
        raise GlassnetError(
            "expected a layer whose activation acts on each unit alone, written with the "
            "circuit's gates (identity, sigmoid, tanh, relu, leaky_relu, elu)",
            got=f"layer {layer}: {lt.activation}",
            field="--unit",
        )
    if 2 * n_in + 4 > MAX_GRAPH_GATES:
        raise GlassnetError(
            f"expected a unit with at most {(MAX_GRAPH_GATES - 4) // 2} inputs (a circuit a "
            "person reads)",
            got=f"{n_in} inputs",
            field="--unit",
        )
    s, j = sample - 1, unit - 1
    g = float(lt.dL_da[s, j])
    terms = " + ".join(f"w{i + 1} * x{i + 1}" for i in range(n_in))
    lines = [f"z = {terms} + b"]
    out = "z"
    if act != "z":
        lines.append(f"a = {act}")
        out = "a"
    # repr: the float64 of the trace exactly, read back by the parser.
    lines.append(f"f = {out} * {g!r}")
    values: dict[str, object] = {f"x{i + 1}": float(lt.x[s, i]) for i in range(n_in)}
    values.update({f"w{i + 1}": float(lt.W[i, j]) for i in range(n_in)})
    values["b"] = float(lt.b[j])
    return ExpressionFile(parse_expression("\n".join(lines), output="f"), dict(values))


def expression_file_text(loaded: ExpressionFile, comment: str) -> str:
    """An expression file's TOML (for ``--save``), so explain, check and the studio can
    read the unit's circuit again."""
    from glassnet.toml_writer import toml_value

    values = ", ".join(f"{n} = {toml_value(v)}" for n, v in loaded.values.items())
    return (
        "".join(f"# {line}\n" for line in comment.splitlines())
        + f'expression = """\n{loaded.circuit.source}\n"""\n'
        + f"values = {{ {values} }}\n"
    )
