"""The example MinGrad grew from: build a small expression, backpropagate, read the gradients."""

from mingrad_core import Scalar

a = Scalar(2)
b = Scalar(-6.5)
c = a * 5 / 2
d = c + (b**6).relu()

# compute gradients
d.backward()

print(f"d = {d.data}")
print(f"dd/da = {a.grad}")  # 2.5
print(f"dd/db = {b.grad}")  # 6 * (-6.5)**5
