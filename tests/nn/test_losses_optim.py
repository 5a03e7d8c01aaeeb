import math

import numpy as np
import pytest

from mingrad_core import Scalar
from mingrad_nn import (
    SGD,
    Adam,
    bce_with_logits,
    cross_entropy,
    hinge_loss,
    l2,
    linear_decay,
    mse_loss,
)


def test_hinge_loss_by_hand():
    s = [Scalar(0.5), Scalar(-2.0), Scalar(3.0)]
    loss = hinge_loss(s, [1, 1, 1])  # relu(0.5), relu(3), relu(-2) -> mean 3.5 / 3
    loss.backward()
    assert loss.data == pytest.approx(3.5 / 3)
    assert [x.grad for x in s] == pytest.approx([-1 / 3, -1 / 3, 0.0])


def test_mse_by_hand():
    p = [Scalar(1.0), Scalar(4.0)]
    loss = mse_loss(p, [0.0, 2.0])
    loss.backward()
    assert loss.data == 2.5
    assert [x.grad for x in p] == [1.0, 2.0]


def test_bce_with_logits_by_hand_and_at_large_logits():
    z = [Scalar(0.0), Scalar(2.0)]
    loss = bce_with_logits(z, [1.0, 0.0])
    loss.backward()
    expected = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert loss.data == pytest.approx(expected, rel=1e-12)
    sigmoid = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    assert [x.grad for x in z] == pytest.approx([(0.5 - 1) / 2, sigmoid(2.0) / 2], rel=1e-12)
    big = [Scalar(1000.0), Scalar(-1000.0), Scalar(-1000.0)]
    loss = bce_with_logits(big, [1.0, 0.0, 1.0])
    loss.backward()
    assert loss.data == pytest.approx(1000.0 / 3)
    assert [x.grad for x in big] == pytest.approx([0.0, 0.0, -1 / 3])


def test_losses_refuse_mismatched_lengths():
    with pytest.raises(ValueError, match="2 predictions and 1 targets"):
        mse_loss([Scalar(1.0), Scalar(2.0)], [1.0])


def test_l2_by_hand():
    ps = [Scalar(1.0), Scalar(-2.0)]
    reg = l2(ps, 0.1)
    reg.backward()
    assert reg.data == pytest.approx(0.5)
    assert [p.grad for p in ps] == pytest.approx([0.2, -0.4])


def test_sgd_with_momentum_by_hand():
    p = Scalar(1.0)
    opt = SGD([p], lr=0.1, momentum=0.9)
    for expected in (0.95, 0.855):
        p.grad = 0.5
        opt.step()
        assert p.data == pytest.approx(expected)
    opt.zero_grad()
    assert p.grad == 0.0


def test_sgd_follows_a_schedule():
    p = Scalar(0.0)
    opt = SGD([p], lr=linear_decay(1.0, 0.1, 100))
    rates = []
    for _ in range(3):
        rates.append(opt.learning_rate())
        p.grad = 1.0
        opt.step()
    assert rates == pytest.approx([1.0, 0.991, 0.982])
    assert p.data == pytest.approx(-sum(rates))
    assert linear_decay(1.0, 0.1, 100)(250) == pytest.approx(0.1)


def test_adam_by_hand():
    p = Scalar(1.0)
    opt = Adam([p], lr=0.1)
    p.grad = 2.0
    opt.step()  # m_hat = 2, v_hat = 4: step = 0.1 * 2 / (2 + 1e-8)
    after_one = 1.0 - 0.1 * 2 / (2 + 1e-8)
    assert p.data == pytest.approx(after_one, rel=1e-12)
    p.grad = -1.0
    opt.step()
    m = 0.9 * 0.2 + 0.1 * -1.0  # 0.08
    v = 0.999 * 0.004 + 0.001 * 1.0  # 0.004996
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    assert p.data == pytest.approx(after_one - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8), rel=1e-12)


def test_optimizers_take_scalars_only():
    with pytest.raises(TypeError, match="takes Scalars"):
        SGD([1.0])


@pytest.mark.parametrize(
    "loss, argument",
    [
        (hinge_loss, "hinge_loss(scores, labels): scores"),
        (bce_with_logits, "bce_with_logits(logits, targets): logits"),
    ],
)
@pytest.mark.parametrize("number", [0.5, 2, np.float64(0.5)])
def test_losses_refuse_plain_numbers_naming_the_argument(loss, argument, number):
    with pytest.raises(TypeError) as caught:
        loss([Scalar(1.0), number], [1, 1])
    assert str(caught.value) == (
        f"{argument}[1] is {type(number).__name__} {number!r}; expected a Scalar, such as a "
        f"model's output (a plain number has no gradient; Scalar({number!r}) makes one)"
    )


def test_cross_entropy_refuses_a_row_of_plain_numbers_naming_it():
    with pytest.raises(
        TypeError, match=r"logits_rows\[1\] holds only numbers \[0.5, 1.0\]; expected Scalars"
    ):
        cross_entropy([[Scalar(0.0), Scalar(1.0)], [0.5, 1.0]], [0, 1])
    with pytest.raises(TypeError, match=r"logits_rows\[0\] is Scalar; expected a row of Scalars"):
        cross_entropy([Scalar(0.5)], [0])
    # a constant logit beside Scalars is fine: the row still has a gradient
    z = Scalar(0.0)
    loss = cross_entropy([[z, 0.0]], [0])
    loss.backward()
    assert loss.data == pytest.approx(math.log(2)) and z.grad == pytest.approx(-0.5)
