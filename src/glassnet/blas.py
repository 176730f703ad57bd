"""NumPy's own BLAS, called through ctypes for the one product NumPy cannot express.

``np.matmul`` has no α and β: it computes ``C = A·B`` into a fresh or given array.
BLAS's gemm computes ``C ← α·A·B + β·C`` in one call, and the training step uses that
to put plain SGD's update inside the weight-gradient multiply:

    W ← β·W + α·xᵀ·delta,   α = −lr, β = 1 (or 1 − lr·λ with L2 weight decay)

— no dW array and no separate update pass over W (see :mod:`glassnet.parallel`).

**Which BLAS.**  Only the library NumPy itself calls its multiplies through (a wheel's
bundled OpenBLAS, e.g. ``numpy.libs/libscipy_openblas64_-….so``, whose symbols carry a
``scipy_`` prefix and a ``64_`` suffix), never a second one: a second OpenBLAS (SciPy's)
brings its own thread pool, which fights NumPy's for the cores.  It is found from the
libraries threadpoolctl reports (its ``filepath``, when the file sits under NumPy's
install), else from the libraries this process has mapped (Linux); and opened by that
path, which returns the handle of the copy already loaded.  The integer width (LP64 or
ILP64) comes from ``openblas_get_config`` (``USE64BITINT``): a library without it is
not used.  Before first use a small product is checked against ``np.matmul``; any
mismatch, a missing symbol or a library that is not OpenBLAS means :func:`gemm` returns
None and the caller takes its plain NumPy path (the same numbers to float rounding).

Nothing here is imported on the CLI's start-up path; the search runs once per process,
on the first fit that could use it.
"""

from __future__ import annotations

import ctypes
import itertools
import os
from collections.abc import Callable
from typing import Any

import numpy as np

Array = np.ndarray

# cblas enums
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

#: Why gemm is not available, when it is not (for the bench's report); "" when it is.
reason = ""
_found: dict[str, Gemm | None] | None = None


class Gemm:
    """``C ← α·Aᵀ·B + β·C`` for row-major float arrays through one cblas ``?gemm``:
    A (k, m), B (k, n), C (m, n), each with unit stride along its rows.  Pointers are
    taken as integers so the caller can compute them once for arrays it reuses."""

    def __init__(self, fn: Any, int_type: Any, ctype: Any, path: str, symbol: str) -> None:
        self._fn = fn
        # The same function without declared argument types, for at_b_bound's calls
        # (every argument then a ctypes object of the right C type).
        self._raw = getattr(ctypes.CDLL(path, mode=_mode()), symbol)
        self._raw.restype = None
        self._ctype = ctype
        self.int_type = int_type
        self.path = path
        self.symbol = symbol
        fn.restype = None
        i = int_type
        p = ctypes.c_void_p
        fn.argtypes = [i, i, i, i, i, i, ctype, p, i, p, i, ctype, p, i]

    def at_b(
        self, k: int, m: int, n: int, alpha: float, a: int, lda: int, b: int, ldb: int,
        beta: float, c: int, ldc: int,
    ) -> None:  # fmt: skip
        """C (m, n) ← α·Aᵀ·B + β·C with A (k, m) at address ``a`` (row stride ``lda``
        elements), B (k, n) at ``b`` (``ldb``), C at ``c`` (``ldc``)."""
        self._fn(_ROW_MAJOR, _TRANS, _NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def at_b_bound(
        self, m: int, n: int, a: int, lda: int, b: int, ldb: int, c: int, ldc: int
    ) -> Callable[[int, float, float], None]:
        """:meth:`at_b` with everything but k, α and β fixed: ``f(k, alpha, beta)``.
        The fixed arguments are converted to C once (the per-call conversion of 14
        arguments is most of a small call's cost)."""
        raw = self._raw
        i, f = self.int_type, self._ctype
        p = ctypes.c_void_p
        fixed = (i(_ROW_MAJOR), i(_TRANS), i(_NO_TRANS), i(m), i(n))
        o, ta, tb, mm, nn = fixed
        pa, la, pb, lb, pc, lc = p(a), i(lda), p(b), i(ldb), p(c), i(ldc)

        def call(k: int, alpha: float, beta: float) -> None:
            raw(o, ta, tb, mm, nn, i(k), f(alpha), pa, la, pb, lb, f(beta), pc, lc)

        return call

    def at_b_arrays(self, A: Array, B: Array, C: Array, alpha: float, beta: float) -> None:
        """:meth:`at_b` on arrays (checked: dtype, shapes, row-major unit strides)."""
        k, m = A.shape
        n = B.shape[1]
        item = C.itemsize
        for arr in (A, B, C):
            if arr.dtype != C.dtype or arr.strides[1] != item or arr.strides[0] % item:
                raise ValueError("gemm needs row-major arrays of one dtype")
        if B.shape[0] != k or C.shape != (m, n):
            raise ValueError(f"gemm shapes {A.shape}ᵀ·{B.shape} into {C.shape}")
        if k == 0:
            C *= beta
            return
        self.at_b(
            k, m, n, alpha,
            A.ctypes.data, A.strides[0] // item,
            B.ctypes.data, B.strides[0] // item,
            beta, C.ctypes.data, C.strides[0] // item,
        )  # fmt: skip


def gemm(dtype: np.dtype | type | str) -> Gemm | None:
    """NumPy's own BLAS gemm for float32 (sgemm) or float64 (dgemm), checked against
    ``np.matmul`` once; None when it cannot be found or trusted (see the module
    docstring), or for another dtype.  ``GLASSNET_BLAS=numpy`` in the environment
    refuses it (for measuring, and to test the fallback)."""
    global _found, reason
    kind = np.dtype(dtype)
    if kind not in (np.float32, np.float64):
        return None
    if os.environ.get("GLASSNET_BLAS", "") == "numpy":
        reason = "GLASSNET_BLAS=numpy"
        return None
    if _found is None:
        _found = {}
        try:
            path = numpy_blas_path()
            if path is None:
                reason = "NumPy's BLAS library not found"
            else:
                for letter in ("s", "d"):
                    g = _open(path, letter)
                    _found[letter] = g if g is not None and _self_check(g, letter) else None
                if _found.get("s") is None:
                    reason = reason or "gemm failed its check against np.matmul"
        except (OSError, AttributeError, ValueError) as err:  # unusual platforms
            reason = f"{type(err).__name__}: {err}"
            _found = {}
    return _found.get("s" if kind == np.float32 else "d")


def numpy_blas_path() -> str | None:
    """The file of the BLAS NumPy calls: OpenBLAS under NumPy's install directory
    (threadpoolctl's report, else this process's mapped libraries)."""
    np_dir = os.path.dirname(os.path.dirname(np.__file__))  # site-packages
    candidates: list[str] = []
    if os.path.exists("/proc/self/maps"):  # Linux: the mapped files, a fraction of a ms
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            seen = {line.split()[-1] for line in maps if "openblas" in line.lower()}
        candidates = sorted(p for p in seen if p.startswith("/"))
    if not candidates:  # elsewhere threadpoolctl (optional) knows (tens of ms)
        try:
            from threadpoolctl import threadpool_info

            candidates = [
                str(lib["filepath"])
                for lib in threadpool_info()
                if lib.get("internal_api") == "openblas"
            ]
        except ImportError:
            pass
    # NumPy's own copy (a wheel's numpy.libs, or numpy/.dylibs); a system NumPy that
    # links the only OpenBLAS loaded is accepted too.
    own = [p for p in candidates if p.startswith(np_dir) and "numpy" in p]
    if own:
        return own[0]
    return candidates[0] if len(candidates) == 1 else None


def _mode() -> int:
    # RTLD_NOLOAD: only the copy already loaded (by NumPy); never load a second one.
    return getattr(os, "RTLD_NOLOAD", 0) | getattr(ctypes, "RTLD_GLOBAL", 0)


def _open(path: str, letter: str) -> Gemm | None:
    global reason
    try:
        lib = ctypes.CDLL(path, mode=_mode())  # the copy already loaded: no second BLAS
    except OSError:
        reason = f"{path} is not loaded"
        return None
    for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
        config = getattr(lib, f"{prefix}openblas_get_config{suffix}", None)
        fn = getattr(lib, f"{prefix}cblas_{letter}gemm{suffix}", None)
        if fn is None or config is None:
            continue
        config.restype = ctypes.c_char_p
        text = (config() or b"").decode("ascii", "replace")
        # ILP64 (64-bit integers) is what the build says; the suffix is only a name.
        int_type = ctypes.c_int64 if "USE64BITINT" in text else ctypes.c_int32
        ctype = ctypes.c_float if letter == "s" else ctypes.c_double
        return Gemm(fn, int_type, ctype, path, f"{prefix}cblas_{letter}gemm{suffix}")
    reason = f"no cblas_{letter}gemm with openblas_get_config in {os.path.basename(path)}"
    return None


def _self_check(g: Gemm, letter: str) -> bool:
    """A small product through ``g`` against NumPy's, with α and β (non-square, a row
    stride larger than the width): wrong integer widths or argument orders show here."""
    dtype = np.float32 if letter == "s" else np.float64
    # Fixed irregular numbers (numpy.random would cost its import on a short fit).
    A = np.sin(np.arange(84.0)).reshape(7, 12).astype(dtype)[:, :5]  # row stride 12
    B = np.cos(np.arange(21.0) * 1.7).reshape(7, 3).astype(dtype)
    C = np.sin(np.arange(15.0) * 0.3 + 1.0).reshape(5, 3).astype(dtype)
    want = 0.5 * C.astype(np.float64) - 0.25 * (A.T.astype(np.float64) @ B)
    got = C.copy()
    g.at_b_arrays(A, B, got, -0.25, 0.5)
    tol = 1e-5 if letter == "s" else 1e-12
    if not np.allclose(got, want, rtol=tol, atol=tol):
        return False
    # A plain product (α 1, β 0) is NumPy's own product: the same kernel, same numbers.
    plain = np.empty((5, 3), dtype)
    g.at_b_arrays(np.ascontiguousarray(A), B, plain, 1.0, 0.0)
    return bool(np.allclose(plain, np.ascontiguousarray(A).T @ B, rtol=tol, atol=tol))


def describe() -> dict[str, Any]:
    """What :func:`gemm` found (for the bench's report)."""
    g = gemm(np.float32)
    if g is None:
        return {"gemm": None, "reason": reason}
    return {"gemm": g.symbol, "path": g.path, "ilp64": g.int_type is ctypes.c_int64}
