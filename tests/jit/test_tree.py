"""Argument structures: flattened to numbers and a structure, rebuilt around new leaves."""

from collections import namedtuple

import numpy as np
import pytest

from mingrad_jit import JitArgumentError
from mingrad_jit.tree import flatten_arguments, remake, unflatten

Point = namedtuple("Point", "x y")


@pytest.mark.parametrize(
    "args",
    [
        ([1.0, 2.0], 3),
        ([[1, 2], [3, 4]],),
        ([(1.0, 2.0), [3.0]], Point(4.0, 5.0)),
        (np.arange(6.0).reshape(3, 2), np.float64(7.0)),
        (np.arange(24.0).reshape(2, 3, 4),),
        ([[1.0], [2.0, 3.0, [4.0]]],),
    ],
)
def test_unflatten_rebuilds_what_flatten_took_apart(args):
    _, values = flatten_arguments(args, "f")
    rebuilt = unflatten(args, values.tolist())
    as_lists = tuple(a.tolist() if isinstance(a, np.ndarray) else a for a in args)
    assert rebuilt == as_lists
    containers = (list, tuple)
    assert [type(a) for a in rebuilt if isinstance(a, containers)] == [
        type(a) for a in as_lists if isinstance(a, containers)
    ]
    assert flatten_arguments(rebuilt, "f")[1].tolist() == values.tolist()


def test_the_structure_tells_shapes_and_container_types_apart():
    keys = [
        flatten_arguments(args, "f")[0]
        for args in (([1.0, 2.0],), ((1.0, 2.0),), ([1.0, 2.0, 3.0],), ([[1.0, 2.0]],))
    ]
    assert len(set(keys)) == len(keys)
    assert (
        flatten_arguments((np.zeros((2, 2)),), "f")[0]
        != flatten_arguments(([[0.0] * 2] * 2,), "f")[0]
    )


def test_remake_keeps_named_tuples():
    assert remake(Point(1, 2), [3, 4]) == Point(3, 4)
    assert remake((1, 2), [3, 4]) == (3, 4)


def test_flatten_refuses_what_is_not_numbers():
    with pytest.raises(JitArgumentError, match="argument 2 of jitted f\\(\\) holds str 'a'"):
        flatten_arguments(([1.0], "a"), "f")
