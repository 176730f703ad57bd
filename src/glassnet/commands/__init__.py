"""Sub-commands of the ``glassnet`` CLI, one module per feature.

Each module defines ``register(subparsers)``, which adds its parsers and sets
``func`` to a function taking the parsed arguments and returning an exit status.
Modules import heavy libraries inside those functions, never at the top.
"""
