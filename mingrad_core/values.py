"""What counts as a real number, and how one becomes the float a Scalar stores."""

from __future__ import annotations

import math
import numbers


def is_real(value: object) -> bool:
    """True for a real number a Scalar can hold: int, float, bool, Fraction, numpy's reals."""
    if value.__class__ in (float, int):
        return True
    if isinstance(value, numbers.Real):
        return True
    dtype = getattr(value, "dtype", None)  # numpy.bool_ is not a numbers.Real
    return getattr(value, "shape", None) == () and getattr(dtype, "kind", "") in "biuf"


def to_float(value: object) -> float:
    """``value`` as a float; an int too large for one is ±inf, as IEEE arithmetic gives.

    Raises ``TypeError``, naming what was given, for anything that is not a real number.
    """
    if value.__class__ is float:
        return value
    if value.__class__ is not int and not is_real(value):
        raise TypeError(f"a Scalar holds a real number; got {described(value)}")
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def short(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def described(value: object) -> str:
    """A value's type and (short) repr, for an error message."""
    return f"{type(value).__name__} {short(value)}"
