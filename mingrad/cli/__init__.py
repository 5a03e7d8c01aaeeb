"""The ``mingrad`` command: its parser, and one line on stderr for every error.

Each command lives in a module of its own (``demo``, ``graph``, ``ops``, ``check``) that adds
its parser with ``add_to(commands)`` and runs with ``run(args)``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from typing import NoReturn

from . import check, demo, graph, ops
from .arguments import quote

EXIT_USAGE = 2  # bad input or setup
EXIT_INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE: an exception that is nobody's input's fault
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that left early

# raised by a slip in code (MinGrad's or a plugin's), whatever the input: reported as bugs
_BUGS = (IndexError, KeyError, NotImplementedError, RecursionError)


class UsageError(Exception):
    """Arguments the parser refuses; the message is the whole line to print."""


class _Parser(argparse.ArgumentParser):
    """A parser that raises its errors as one line (for ``main`` to print) and phrases a
    ``type=`` check's message after the argument's name."""

    def __init__(self, **kwargs) -> None:
        super().__init__(exit_on_error=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")

    def parse_known_args(self, args=None, namespace=None):
        try:
            return super().parse_known_args(args, namespace)
        except argparse.ArgumentError as exc:
            if not isinstance(exc.__context__, argparse.ArgumentTypeError):
                self.error(str(exc))
            name = exc.argument_name or ""
            self.error(f"{name} {exc.message}" if name.startswith("-") else exc.message)


class _CommandParser(_Parser):
    """A command's parser: positional arguments and options in any order (``mingrad graph
    'x*x' --animate x=1``), what follows ``--`` positional; no argument left over."""

    _mixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._mixing:  # parse_known_intermixed_args calls back here, twice
            return super().parse_known_args(args, namespace)
        args = sys.argv[1:] if args is None else list(args)
        self._mixing = True
        try:
            if "--" in args:  # intermixing would drop it; options come before it anyway
                namespace, extras = super().parse_known_args(args, namespace)
            else:
                namespace, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._mixing = False
        if extras:
            hint = ""
            if any(extra.startswith("-") for extra in extras):
                hint = f" (not options of {self.prog}; a value that starts with '-' goes after --)"
            self.error(f"unrecognized arguments: {quote(' '.join(extras), 200)[1:-1]}{hint}")
        return namespace, extras


def build_parser() -> argparse.ArgumentParser:
    """The ``mingrad`` parser, with one sub-parser per command."""
    parser = _Parser(
        prog="mingrad", description="MinGrad: a scalar autograd engine where every op is a plugin."
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser
    )
    for command in (demo, graph, ops, check):
        command.add_to(commands)
    return parser


def _internal_error(exc: Exception) -> str:
    """One line for an exception no input explains: what, where it was raised, whom to tell."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = f"{text[:300]}..."
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        where = f" (raised at {frames[-1].filename}:{frames[-1].lineno}, in {frames[-1].name})"
    return (
        f"{type(exc).__name__}: {text}{where}. This is a bug in MinGrad or in a plugin, not in "
        "what you typed; please report it with the command you ran"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the ``mingrad`` command and return its exit status: 0, or 1 for what the command
    reports as a failure (``check``, ``demo``). Errors are one line on stderr, never a
    traceback, with status 2 for a bad input or setup, 70 for an internal error and 130 when
    interrupted; 141, silently, when the reader of the output left early. A warning (a plugin
    that failed to load) is one line, once, with the line it points at."""
    prog = "mingrad"
    shown: set[str] = set()

    def warn(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split()).removeprefix("mingrad: ")
        if text not in shown:
            shown.add(text)
            print(f"{prog}: warning: {text} (at {filename}:{lineno})", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = warn
        try:
            args = build_parser().parse_args(argv)
            prog = f"mingrad {args.command}"
            return args.run(args)
        except UsageError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
        except BrokenPipeError:  # the reader left (mingrad ops | head -1): stop quietly
            sys.stdout = open(os.devnull, "w")  # which the interpreter flushes at exit
            return EXIT_BROKEN_PIPE
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:
            if isinstance(exc, ValueError | LookupError | OSError | RuntimeError) and (
                type(exc) not in _BUGS
            ):
                print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
                return EXIT_USAGE
            print(f"{prog}: internal error: {_internal_error(exc)}", file=sys.stderr)
            return EXIT_INTERNAL_ERROR
