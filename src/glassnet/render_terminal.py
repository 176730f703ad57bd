"""Terminal tables of a trace (rich), layer by layer, seed names beside ours.

Reads the trace only: every number shown is a number the engine recorded.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from glassnet.notation import letter, seed_name, weight_name
from glassnet.trace import Trace


def fmt(v: float, digits: int = 6) -> str:
    """A number with ``digits`` significant digits, no exponent for everyday sizes."""
    v = float(v)
    if v == 0:
        return "0"
    if 1e-4 <= abs(v) < 1e6:
        return (
            f"{v:.{digits}g}"
            if abs(v) >= 1
            else np.format_float_positional(
                v, precision=digits, unique=False, fractional=False, trim="-"
            )
        )
    return f"{v:.{digits - 1}e}"


def _label(ours: str, n_layers: int) -> str:
    seed = seed_name(ours, n_layers)
    return f"{ours}  [dim]({seed})[/dim]" if seed else ours


def _matrix_table(
    title: str, M: np.ndarray, row_letter: str, col_letter: str, digits: int
) -> Group:
    t = Table(show_edge=False)
    t.add_column("")
    for j in range(M.shape[1]):
        t.add_column(f"{col_letter}{j + 1}", justify="right")
    for i in range(M.shape[0]):
        t.add_row(f"{row_letter}{i + 1}", *(fmt(v, digits) for v in M[i]))
    return Group(Text.from_markup(f"[bold]{title}[/bold]"), t)


def _needs_generic(trace: Trace) -> bool:
    """True unless every layer is dense under plain gradient descent (the seed's kind of
    step, which the tables below lay out unit by unit with the seed's names)."""
    from glassnet.explain.generic import needs_generic

    return needs_generic(trace)


def _print_generic(trace: Trace, con: Console, digits: int) -> None:
    """Any other step: each layer's recorded quantities in the trace's order, each a
    table with a row per sample (a vector as one row)."""
    for lt in trace.layers:
        con.rule(f"layer {lt.index}: {lt.layer.describe()}")
        params = lt.layer.params
        for kind in lt.kinds:
            value = lt.value(kind)
            # A parameter, its gradient, update or optimiser state is shaped like the
            # parameter (rows: its inputs); anything else 2-D has a row per sample.
            of_param = any(
                kind in (p, "d" + p, p + "_new") or kind.endswith("_" + p) or f"_{p}_" in kind
                for p in params
            )
            if value.ndim == 4:
                # feature maps (batch, C, H, W) or a kernel (out, in, kh, kw): one grid
                # per (sample, channel) or (output, input channel)
                first = "sample" if not of_param else "output channel"
                for i, j in np.ndindex(*value.shape[:2]):
                    title = f"{kind}{lt.index}  ({first} {i + 1}, channel {j + 1})"
                    con.print(_matrix_table(title, value[i, j], "r", "c", digits))
                continue
            M = np.atleast_2d(value)
            if M.ndim == 3:  # a Jacobian per sample: the first sample's
                kind, M = f"{kind} (sample 1)", M[0]
            rows = "s" if value.ndim >= 2 and not of_param else ""
            con.print(_matrix_table(f"{kind}{lt.index}", M, rows, "", digits))
    con.rule("error")
    con.print(f"E = {fmt(trace.loss, digits)}  ({trace.loss_name})")


def print_trace(
    trace: Trace, *, title: str = "", digits: int = 6, console: Console | None = None
) -> None:
    """Print every quantity of ``trace`` as tables: forward, error, backward, update."""
    con = console or Console()
    L = len(trace.layers)
    batch = trace.x.shape[0]
    con.rule(
        f"[bold]{title or 'step'}[/bold]  ·  loss {trace.loss_name}, lr {trace.lr:g}, "
        f"batch {batch}" + ("" if trace.update_bias else ", biases fixed")
    )
    if trace.preprocessing is not None:  # the model's stored preprocessing, step 0
        pp = trace.preprocessing
        con.print(
            "raw row scaled first (the model's stored preprocessing): x = (raw − mean) / scale"
        )
        for s in range(batch):
            pre = f"sample {s + 1}: " if batch > 1 else ""
            con.print(
                f"{pre}raw = [{', '.join(fmt(v, digits) for v in pp.raw[s])}]  "
                f"mean = [{', '.join(fmt(v, digits) for v in pp.mean)}]  "
                f"scale = [{', '.join(fmt(v, digits) for v in pp.scale)}]"
            )
    if trace.x.ndim > 2:  # feature maps: shown as grids, one per sample and channel
        for s, c in np.ndindex(*trace.x.shape[:2]):
            con.print(
                _matrix_table(
                    f"input x  (sample {s + 1}, channel {c + 1})", trace.x[s, c], "r", "c", digits
                )
            )
        for s in range(batch):
            pre = f"sample {s + 1}: " if batch > 1 else ""
            con.print(f"{pre}target y = [{', '.join(fmt(v, digits) for v in trace.y[s])}]")
    for s in range(batch if trace.x.ndim <= 2 else 0):
        pre = f"sample {s + 1}: " if batch > 1 else ""
        con.print(
            f"{pre}input x (I) = [{', '.join(fmt(v, digits) for v in trace.x[s])}]  "
            f"target y = [{', '.join(fmt(v, digits) for v in trace.y[s])}]"
        )

    if _needs_generic(trace):
        _print_generic(trace, con, digits)
        return
    con.rule("forward")
    for lt in trace.layers:
        lyr = lt.index
        head = f"layer {lyr}: z = x @ {weight_name(lyr)} + b, a = {lt.activation}(z)"
        t = Table()
        t.add_column("unit")
        if batch > 1:
            t.add_column("sample", justify="right")
        t.add_column(_label(f"z{lyr}", L), justify="right")
        t.add_column(_label(f"a{lyr}", L), justify="right")
        for s in range(batch):
            for u in range(lt.z.shape[1]):
                cells = [f"{letter(lyr)}{u + 1}"] + ([str(s + 1)] if batch > 1 else [])
                t.add_row(*cells, fmt(lt.z[s, u], digits), fmt(lt.a[s, u], digits))
        con.print(Group(Text.from_markup(f"[bold]{head}[/bold]"), t))

    con.rule("error")
    head = f"loss terms ({trace.loss_name}); loss = Σ terms / batch"
    t = Table()
    t.add_column("output")
    for s in range(batch):
        t.add_column(f"term (sample {s + 1})" if batch > 1 else "term", justify="right")
    for u in range(trace.loss_terms.shape[1]):
        t.add_row(
            f"{letter(L)}{u + 1}", *(fmt(trace.loss_terms[s, u], digits) for s in range(batch))
        )
    con.print(Group(Text.from_markup(f"[bold]{head}[/bold]"), t))
    con.print(f"[bold]loss (E_total) = {fmt(trace.loss, digits)}[/bold]")

    con.rule("backward (from the output back)")
    for lt in reversed(trace.layers):
        lyr = lt.index
        head = f"layer {lyr}: delta = dL/da · da/dz" + (
            " (full softmax Jacobian)" if lt.jacobian else ""
        )
        t = Table()
        t.add_column("unit")
        if batch > 1:
            t.add_column("sample", justify="right")
        t.add_column(_label(f"dL_da{lyr}", L), justify="right")
        if not lt.jacobian:
            t.add_column(_label(f"da{lyr}_dz{lyr}", L), justify="right")
        t.add_column(_label(f"delta{lyr}", L), justify="right")
        t.add_column(f"db{lyr}", justify="right")
        for s in range(batch):
            for u in range(lt.z.shape[1]):
                cells = [f"{letter(lyr)}{u + 1}"] + ([str(s + 1)] if batch > 1 else [])
                cells.append(fmt(lt.dL_da[s, u], digits))
                if not lt.jacobian:
                    cells.append(fmt(lt.da_dz[s, u], digits))
                cells.append(fmt(lt.delta[s, u], digits))
                cells.append(fmt(lt.db[u], digits) if s == 0 else "")
                t.add_row(*cells)
        con.print(Group(Text.from_markup(f"[bold]{head}[/bold]"), t))
        if lt.jacobian:
            for s in range(batch):
                name = _label(f"da{lyr}_dz{lyr}", L)
                con.print(
                    _matrix_table(
                        f"{name}: Jacobian J[u, v] = da_u/dz_v"
                        + (f", sample {s + 1}" if batch > 1 else ""),
                        lt.da_dz[s],
                        letter(lyr),
                        letter(lyr),
                        digits,
                    )
                )
        con.print(
            _matrix_table(
                f"{_label(f'dW{lyr}', L)} = xᵀ · delta", lt.dW, letter(lyr - 1), letter(lyr), digits
            )
        )

    con.rule(f"update (lr = {trace.lr:g})")
    for lt in trace.layers:
        lyr = lt.index
        con.print(
            _matrix_table(
                f"{_label(f'W{lyr}_new', L)} = W{lyr} − lr · dW{lyr}",
                lt.W_new,
                letter(lyr - 1),
                letter(lyr),
                digits,
            )
        )
        con.print(
            f"b{lyr}_new = [{', '.join(fmt(v, digits) for v in lt.b_new)}]"
            + ("" if trace.update_bias else "  (biases fixed)")
        )
