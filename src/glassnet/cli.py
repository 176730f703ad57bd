"""The ``glassnet`` command.  Each feature registers its sub-commands from its own
module in :mod:`glassnet.commands`; heavy libraries are imported only when a
command runs, so ``glassnet --help`` and ``glassnet seed`` start fast.

Exit status: 0 success, 2 bad input (one line on stderr, no traceback), 1 a bug.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from glassnet.errors import GlassnetError

#: Modules in glassnet.commands that add sub-commands, in the order --help lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "engine",
    "graph",
    "explain",
    "check",
    "train",
    "interop",
    "studio",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake on one line (exit 2), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from glassnet import __version__

    parser = _Parser(
        prog="glassnet",
        description="A glass-box neural-network engine: every number of backpropagation, "
        "in a trace you can read.",
    )
    parser.add_argument("--version", action="version", version=f"glassnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"glassnet.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GlassnetError as err:
        print(f"glassnet: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("glassnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # a bug: say so, briefly, and how to get the details
        print(
            f"glassnet: internal error: {type(err).__name__}: {err} — please report it "
            "(set GLASSNET_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        import os

        if os.environ.get("GLASSNET_DEBUG"):
            raise
        return 1


if __name__ == "__main__":
    sys.exit(main())
