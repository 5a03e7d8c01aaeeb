"""jit on classmethods and staticmethods, in either decorator order."""

import pytest

from mingrad_core import Scalar
from mingrad_jit import jit


class Scaled:
    factor = 2.0

    @classmethod
    @jit
    def outer(cls, x):  # @classmethod over @jit
        return Scalar(x[0]) * cls.factor

    @jit
    @classmethod
    def inner(cls, x):  # @jit over @classmethod
        return Scalar(x[0]) * cls.factor

    @staticmethod
    @jit
    def static_outer(x):
        return Scalar(x[0]) * 3

    @jit
    @staticmethod
    def static_inner(x):
        return Scalar(x[0]) * 3


class Tripled(Scaled):
    factor = 3.0


@pytest.mark.parametrize("name", ["outer", "inner"])
def test_a_jitted_classmethod_binds_the_class_it_is_read_from(name):
    for target, factor in [(Scaled, 2.0), (Scaled(), 2.0), (Tripled, 3.0), (Tripled(), 3.0)]:
        assert getattr(target, name)([5.0]).data == 5.0 * factor
    Scaled.factor = 4.0  # a class attribute the trace read: traced again
    try:
        assert getattr(Scaled, name)([5.0]).data == 20.0
    finally:
        Scaled.factor = 2.0
    assert getattr(Scaled, name) is getattr(Scaled(), name)  # one cache per class


@pytest.mark.parametrize("name", ["static_outer", "static_inner"])
def test_a_jitted_staticmethod_binds_nothing(name):
    for target in (Scaled, Scaled(), Tripled()):
        assert getattr(target, name)([5.0]).data == 15.0
    assert getattr(Scaled, name).traces == 1
