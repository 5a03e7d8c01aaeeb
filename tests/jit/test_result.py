"""A jitted call's Result behaves like a number where a Scalar does."""

import numpy as np
import pytest

from mingrad_core import Scalar
from mingrad_jit import jit


def double(x):
    return jit(lambda x: (Scalar(x[0]) * 2, Scalar(x[1]) * 2))(x)


def test_a_result_formats_its_value_and_plain_format_is_the_repr():
    loss, _ = double([0.0617283, 1.0])
    assert f"{loss:.4f}" == "0.1235" and format(loss, ">8.2f") == "    0.12"
    assert f"{loss}" == repr(loss) == str(loss)
    assert float(loss) == loss.data
    with pytest.raises(ValueError):
        f"{loss:q}"


@pytest.mark.parametrize("other", [2, 2.0, np.float64(2.0), Scalar(2.0), "result"])
def test_a_result_compares_with_numbers_scalars_and_results(other):
    one, three = double([0.5, 1.5])
    if other == "result":
        other = jit(lambda x: Scalar(x[0]) * 1)([2.0])
    assert (one < other, one <= other, one > other, one >= other) == (True, True, False, False)
    assert (three < other, three > other, three >= other) == (False, True, True)
    assert type(one < other) is bool
    assert (other > one, other < three) == (True, True)  # reflected


@pytest.mark.parametrize("other", ["1", None, 1j, [1.0]])
def test_comparing_a_result_with_a_non_number_is_a_type_error(other):
    one, _ = double([0.5, 1.5])
    with pytest.raises(TypeError, match="not supported"):
        _ = one < other
