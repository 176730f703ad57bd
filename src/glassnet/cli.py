"""The ``glassnet`` command.  Each feature registers its sub-commands from its own
module in :mod:`glassnet.commands`; heavy libraries are imported only when a
command runs, so ``glassnet --help`` and ``glassnet seed`` start fast.

Exit status: 0 success, 2 bad input (one line on stderr, no traceback), 1 a bug.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
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
    """argparse that reports a usage mistake on one line (exit 2), like every other error,
    with a "did you mean" for a misspelled option or command (Python 3.11's argparse has
    no ``suggest_on_error``; difflib finds the closest)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = _did_you_mean(self, message)
        self.exit(2, f"{self.prog}: error: {message}{hint} (see '{self.prog} --help')\n")


def _did_you_mean(parser: argparse.ArgumentParser, message: str) -> str:
    """ "; did you mean --epochs?" for the first unknown option or choice that is close
    to a known one ("" when none is)."""
    import difflib
    import re

    choice = re.match(r"argument .*?: invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        known = re.findall(r"'([^']*)'", choice.group(2)) or [
            c.strip() for c in choice.group(2).split(",")
        ]
        close = difflib.get_close_matches(choice.group(1), known, n=1)
        return f"; did you mean {close[0]}?" if close else ""
    if not message.startswith("unrecognized arguments:"):
        return ""
    options = set(parser._option_string_actions)
    words = list(_ARGV)
    for action in parser._actions:  # the sub-command's own options, when one was given
        if isinstance(action, argparse._SubParsersAction):
            for word in words:
                if word in action.choices:
                    options |= set(action.choices[word]._option_string_actions)
                    break
    for word in message.removeprefix("unrecognized arguments:").split():
        if word.startswith("-"):
            close = difflib.get_close_matches(word.split("=")[0], sorted(options), n=1)
            if close:
                return f"; did you mean {close[0]}?"
    return ""


#: The arguments being parsed (for :func:`_did_you_mean` to find the sub-command).
_ARGV: list[str] = []


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


def _say_warning(message: Warning | str, *_: object, **__: object) -> None:
    print(f"glassnet: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            # A warning is one line on stderr, like an error (not Python's file:line
            # and source line); the filters stay the caller's.
            warnings.showwarning = _say_warning
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
