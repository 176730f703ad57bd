"""Optional numba kernels for the fast step's element-wise passes (``glassnet[fast]``).

The fast training step (:mod:`glassnet.parallel`) spends part of each batch in NumPy's
element-wise passes: the bias add and the activation after ``x @ W``, the activation's
derivative times delta and the bias-gradient sums, the output layer's softmax, loss and
delta.  Each is a separate walk over (batch, n_out) numbers; a compiled loop does the
walks of one layer in one.  The kernels belong to the plugins whose maths they compute
(:meth:`Activation.fused_kernels`, :meth:`Loss.fused_output_kernel`), written as plain
Python loops there; this module only compiles them, with numba, serial, without
fastmath (the same IEEE operations as NumPy's), and with the compile cached on disk.

numba is loaded only when a fit asks for it (``fit(kernels="numba")``) or is long
enough to repay its start-up (``"auto"``, :func:`wanted`): importing numba and loading
the cached kernels costs about a second per process (docs/performance.md), which a
short fit never gets back.  Nothing imports numba on the CLI's start-up path, nor in
``glassnet seed``, ``step``, or a short fit.

The compiled code is cached in ``NUMBA_CACHE_DIR`` when it is set; otherwise next to
the plugin files when that directory is writable (numba's default), else in
``$XDG_CACHE_HOME/glassnet/numba`` (``~/.cache/glassnet/numba``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glassnet.errors import GlassnetError
from glassnet.extras import install_hint

#: The values ``fit(kernels=...)`` and ``glassnet train --kernels`` take.
KERNELS = ("auto", "numpy", "numba")

#: ``"auto"`` takes the numba kernels when rows × epochs × Σ n_out (the numbers the
#: element-wise passes walk in a fit) reaches this.  Measured (docs/performance.md,
#: CPU time): numba's start-up with a warm cache is 0.47–0.59 s per process (1.2 s
#: cold, once), and the kernels save 1.2–3.7 ns per number (batch 128 to 32) on
#: 784-256-128-10; 0.55 s / 1.5 ns ≈ 4·10⁸: about 17 epochs of 60,000 rows on that
#: network — never a short fit.
MIN_WORK = 400_000_000

_JITTED: dict[Callable[..., Any], Any] = {}


def available() -> bool:
    """Whether numba can be imported (found, not imported: this costs no start-up)."""
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # a broken or stubbed-out numba
        return False


def check_choice(kernels: object) -> str:
    """``kernels`` checked: one of :data:`KERNELS`; ``"numba"`` needs numba installed."""
    if not isinstance(kernels, str) or kernels not in KERNELS:
        raise GlassnetError(
            f"expected one of {', '.join(KERNELS)}", got=repr(kernels), field="kernels"
        )
    if kernels == "numba" and not available():
        raise GlassnetError(
            f"expected numba for the numba kernels (the fast extra: {install_hint('fast')})",
            got="no numba",
            field="kernels",
        )
    return kernels


def wanted(kernels: str, work: int) -> bool:
    """Whether a fit takes the numba kernels: ``"numba"`` always, ``"numpy"`` never,
    ``"auto"`` when numba is installed and ``work`` (rows × epochs × Σ n_out) reaches
    :data:`MIN_WORK`."""
    choice = check_choice(kernels)
    if choice == "auto":
        return work >= MIN_WORK and available()
    return choice == "numba"


def _cache_dir() -> None:
    """Point numba's cache somewhere writable when the package is not (see the module's
    docstring); a ``NUMBA_CACHE_DIR`` already set is left alone."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    if os.access(Path(__file__).parent, os.W_OK):
        return  # numba's default: __pycache__ beside each plugin file
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    os.environ["NUMBA_CACHE_DIR"] = str(Path(base) / "glassnet" / "numba")


def jit(fn: Callable[..., Any]) -> Any:
    """``fn`` (a plugin's kernel, plain Python loops over NumPy arrays) compiled by
    numba: serial, no fastmath, cached on disk; once per process per function.  Raises
    :class:`GlassnetError` when numba is missing."""
    compiled = _JITTED.get(fn)
    if compiled is None:
        _cache_dir()
        try:
            import numba
        except ImportError as err:
            raise GlassnetError(
                f"expected numba for the numba kernels (the fast extra: {install_hint('fast')})",
                got=f"import error: {err}",
                field="kernels",
            ) from None
        # error_model="numpy": a division by zero gives inf/NaN as NumPy does, not an
        # exception; nogil: the two-thread step runs kernels in both threads at once.
        compiled = numba.njit(cache=True, fastmath=False, nogil=True, error_model="numpy")(fn)
        _JITTED[fn] = compiled
    return compiled


__all__ = ["KERNELS", "MIN_WORK", "available", "check_choice", "jit", "wanted"]
