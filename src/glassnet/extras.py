"""The optional extras and how to install one *here*.

glassnet is installed from its checkout (``pip install -e .``, as the scripts do), not
from a package index, so ``pip install 'glassnet[studio]'`` would find nothing.  A hint
names the checkout instead: ``pip install -e '/path/to/glassnet[studio]'``.  Each
command that needs an extra checks it with :func:`require` before it starts working
(so a missing matplotlib is said before training, not after).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from glassnet.errors import GlassnetError


def install_hint(extra: str) -> str:
    """The pip line that adds ``extra`` to this installation.

    >>> install_hint("studio").startswith("pip install ")
    True
    """
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():  # an editable install from a checkout
        here = Path.cwd().resolve()
        where = "." if here == root else str(root)
        return f"pip install -e '{where}[{extra}]'"
    return f"pip install 'glassnet[{extra}]'"


def require(modules: tuple[str, ...], extra: str, *, field: str, what: str = "") -> None:
    """Refuse, naming the install line, when one of ``modules`` cannot be imported.
    Checked without importing them (``importlib.util.find_spec``), so it costs nothing."""
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if absent:
        raise GlassnetError(
            f"expected {what or ', '.join(modules)} (the {extra} extra: {install_hint(extra)})",
            got=f"no {', '.join(absent)}",
            field=field,
        )
