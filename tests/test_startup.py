"""Startup stays light: ``import glassnet`` and ``glassnet --help`` load no NumPy, and
no command module imports a heavy library at its top (issue 6; timings are in bench/)."""

from __future__ import annotations

import subprocess
import sys

import glassnet

HEAVY = ("numpy", "rich", "matplotlib", "sklearn", "torch", "nbformat", "scipy")


def modules_after(code: str) -> set[str]:
    """Top-level modules loaded by running ``code`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {name.split(".")[0] for name in out}


def test_import_glassnet_loads_no_heavy_library():
    assert not modules_after("import glassnet") & set(HEAVY)


def test_help_loads_no_heavy_library():
    code = (
        "import contextlib, io\n"
        "from glassnet.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])"
    )
    assert not modules_after(code) & set(HEAVY)


def test_seed_loads_numpy_and_rich_but_nothing_heavier():
    code = (
        "import contextlib, io\n"
        "from glassnet.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['seed'])"
    )
    loaded = modules_after(code)
    assert {"numpy", "rich"} <= loaded
    assert not loaded & {"matplotlib", "sklearn", "torch", "nbformat", "scipy"}


def test_lazy_names_resolve_to_the_modules_objects():
    from glassnet.model import mlp
    from glassnet.trace import Trace

    assert glassnet.mlp is mlp
    assert glassnet.Trace is Trace
    assert set(glassnet.__all__) == {*glassnet._LAZY, "__version__"}
    for name in glassnet.__all__:
        assert getattr(glassnet, name) is not None
