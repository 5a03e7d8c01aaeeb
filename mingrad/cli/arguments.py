"""The checks ``mingrad``'s arguments pass, as argparse ``type=`` functions.

Each converts one argument or raises ``ArgumentTypeError``. An option's message reads after the
option's name (``--steps must be at least 1; got 0``); a positional argument's stands alone.
"""

from __future__ import annotations

import keyword
import os
from argparse import ArgumentTypeError
from collections.abc import Callable
from pathlib import Path

_QUOTE = 40  # characters of an argument quoted in a message


def quote(text: str, limit: int = _QUOTE) -> str:
    """``text`` quoted for a message, cut short if longer than ``limit``."""
    return repr(text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)")


def whole_number(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """A ``type=`` for an int from ``low`` to ``high`` (either bound may be left open)."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            bounds = "" if low is None else f" of at least {low}"
            raise ArgumentTypeError(f"must be a whole number{bounds}; got {quote(text)}") from None
        if low is not None and value < low:
            raise ArgumentTypeError(f"must be at least {low}; got {value}")
        if high is not None and value > high:
            raise ArgumentTypeError(f"must be at most {high}; got {value}")
        return value

    return convert


def binding(text: str) -> tuple[str, float]:
    """``NAME=NUMBER`` as ``(name, value)``: a variable's value for ``mingrad graph``."""
    name, sep, number = text.partition("=")
    name = name.strip()
    why = ""
    if not sep:
        why = "no '='"
    elif not name.isidentifier() or keyword.iskeyword(name):
        why = f"{quote(name)} is not a name (letters, digits and _, not a Python keyword)"
    else:
        try:
            return name, float(number)
        except ValueError:
            why = f"{quote(number.strip())} is not a number"
    raise ArgumentTypeError(f"expected NAME=NUMBER, such as x=1.5; got {quote(text)}: {why}")


def output_file(text: str) -> Path:
    """A path to write a file to: not empty, not a folder, in a folder that exists."""
    path = Path(text)
    if not text.strip():
        raise ArgumentTypeError(f"must name a file to write; got {quote(text, 500)}")
    try:
        folder = path.is_dir() or text.endswith(("/", os.sep))
        missing = not path.parent.is_dir()
    except OSError as exc:  # a name too long, say
        raise ArgumentTypeError(f"cannot be a file: {exc.strerror}; got {quote(text)}") from None
    if folder:
        raise ArgumentTypeError(f"must name a file, not a folder; got {quote(text, 500)}")
    if missing:
        raise ArgumentTypeError(f"must be in a folder that exists; got {quote(text, 500)}")
    return path
