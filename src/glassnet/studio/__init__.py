"""glassnet studio: a local web page where every number of one training step can be
changed, followed to where it came from, and worked by hand with live marks.

The page computes nothing: :mod:`.api` answers its requests with the engine's own
functions (the spec parser, the trace, ``check``, ``explain``, ``Network.fit``), and
:mod:`.app` serves that API and the page's files with Starlette (the ``studio`` extra).
Importing this package imports neither Starlette nor NumPy.
"""

from __future__ import annotations

from typing import Any


def create_app(**options: Any) -> Any:
    """The Starlette application (see :func:`glassnet.studio.app.create_app`)."""
    from glassnet.studio.app import create_app as make

    return make(**options)


__all__ = ["create_app"]
