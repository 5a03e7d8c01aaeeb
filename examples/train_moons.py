"""Train a small neural net on the two-moons data set, exactly as the seed notebook does.

Run: uv run python examples/train_moons.py
"""

from sklearn.datasets import make_moons

from mingrad import MLP, Scalar

# 100 points in two interleaving half-circles; labels -1 and +1
X, y = make_moons(n_samples=100, noise=0.1, random_state=0)
y = y * 2 - 1

# 2 inputs, two hidden layers of 16 ReLU neurons, 1 output: 337 parameters
model = MLP(2, [16, 16, 1], seed=0)
print(model)


def loss():
    inputs = [list(map(Scalar, row)) for row in X]
    scores = list(map(model, inputs))
    # max-margin loss: each point wants y * score >= 1
    losses = [(1 + -yi * score).relu() for yi, score in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    # L2 regularisation keeps the weights small
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    accuracy = sum((yi > 0) == (score.data > 0) for yi, score in zip(y, scores)) / len(y)
    return data_loss + reg_loss, accuracy


for k in range(100):
    total_loss, accuracy = loss()

    # backward pass: gradients of the loss with respect to every parameter
    model.zero_grad()
    total_loss.backward()

    # gradient descent, the learning rate decaying from 1.0 to 0.1
    learning_rate = 1.0 - 0.9 * k / 100
    for p in model.parameters():
        p.data -= learning_rate * p.grad

    if k % 10 == 0 or k == 99:
        print(f"step {k:3d}  loss {total_loss.data:.4f}  accuracy {accuracy:.0%}")
