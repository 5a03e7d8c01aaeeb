"""The registry under threads: first use from many threads at once, concurrent registration."""

import subprocess
import sys
import threading

from mingrad_core import OpRegistrationError, register_op

FIRST_USE = """
import sys, threading
import mingrad_core
from mingrad_core import Scalar, failures, functional, get_op

sys.setswitchinterval(1e-6)
errors = []


def first_use(k):
    try:
        barrier.wait()
        x = Scalar(1.0 + k)
        y = (x * 2 + 1).tanh() - functional.relu(x) / x ** 2
        y.backward()
        assert get_op("gelu")(x).data > 0 and x.grad is not None
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")


for round in range(8):  # the first in a fresh process, the others after reset()
    mingrad_core.reset()
    barrier = threading.Barrier(16)
    threads = [threading.Thread(target=first_use, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not failures(), (round, errors[:3], failures())
"""


def test_sixteen_threads_first_using_ops_see_every_op_and_no_failure():
    result = subprocess.run(
        [sys.executable, "-c", FIRST_USE], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]


RACER = """
def register(name):
    register_op(name=name, arity=1, forward=lambda x: x**3, gradient=lambda x, out: (3 * x,))
"""


def register_racing(name: str, barrier: threading.Barrier, outcomes: list[str], k: int) -> None:
    module = {"__name__": f"racer{k}", "register_op": register_op}  # each its own origin
    exec(RACER, module)
    barrier.wait()
    try:
        module["register"](name)
        outcomes.append("ok")
    except OpRegistrationError:
        outcomes.append("refused")


def test_concurrent_registrations_of_one_name_succeed_exactly_once():
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for round in range(30):
            barrier, outcomes = threading.Barrier(16), []
            threads = [
                threading.Thread(
                    target=register_racing, args=(f"cube{round}", barrier, outcomes, i)
                )
                for i in range(16)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(outcomes) == ["ok"] + ["refused"] * 15, round
    finally:
        sys.setswitchinterval(interval)
