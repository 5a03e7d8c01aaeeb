"""Training steps per second of the GPT example (n_layer 1, n_embd 16, 4 heads, block 16), one
name a step (forward, backward, Adam), in one process, the contenders alternating:

(a) ``Value``: a micrograd-style scalar autograd written here, microGPT's ~40-line kind, running
    the model written the micrograd way (plain ``*`` and ``+``, list indexing, ``max(.data)``);
(a') MinGrad eager running that same micrograd-way code, ``Value`` swapped for ``Scalar``;
(b) MinGrad eager running ``examples/gpt.py`` (fused ``linear``, ``pick``, ``logsumexp``);
(c) MinGrad jit running ``examples/gpt.py`` (one trace per name length, replayed);
(d) PyTorch on 1 thread (float64), when it is importable.

Each round runs every contender on the same names; the best round counts. Besides whole steps,
the figures without the optimizer's update (forward and backward only) are printed. The garbage
collector stays on, as users run, unless --no-gc.
Run: uv run python benchmarks/gpt_step.py [--rounds N] [--names N] [--no-gc]; with PyTorch,
from a venv holding torch and this project (pip install -e .).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mingrad_core import Scalar
from mingrad_jit import jit
from mingrad_nn import Adam

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("gpt_example", ROOT / "examples" / "gpt.py")
gpt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpt)

N_LAYER, N_EMBD, N_HEAD, BLOCK = 1, 16, 4, 16


class Value:
    """A scalar with a gradient, as microGPT writes it: children and local gradients per node."""

    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data, children=(), local_grads=()):
        self.data, self.grad = data, 0.0
        self._children, self._local_grads = children, local_grads

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, k):
        return Value(self.data**k, (self,), (k * self.data ** (k - 1),))

    def log(self):
        return Value(math.log(self.data), (self,), (1 / self.data,))

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def relu(self):
        return Value(max(0.0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other**-1

    def backward(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:  # iterative: no recursion limit
            node, done = stack.pop()
            if done:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((c, False) for c in node._children)
        self.grad = 1.0
        for node in reversed(order):
            for child, local in zip(node._children, node._local_grads):
                child.grad += local * node.grad


def micro_params(value, vocab: int, seed: int) -> dict[str, list]:
    rng = random.Random(seed)

    def matrix(nout, nin):
        return [[value(rng.gauss(0.0, 0.08)) for _ in range(nin)] for _ in range(nout)]

    return {
        "wte": matrix(vocab, N_EMBD), "wpe": matrix(BLOCK, N_EMBD),
        "wq": matrix(N_EMBD, N_EMBD), "wk": matrix(N_EMBD, N_EMBD),
        "wv": matrix(N_EMBD, N_EMBD), "wo": matrix(N_EMBD, N_EMBD),
        "fc1": matrix(4 * N_EMBD, N_EMBD), "fc2": matrix(N_EMBD, 4 * N_EMBD),
        "lm_head": matrix(vocab, N_EMBD),
    }  # fmt: skip


def micro_loss(state: dict[str, list], tokens: list[int]):
    """The model written the micrograd way: plain * and +, values read for the softmax max."""

    def linear(x, w):
        return [sum(wi * xi for wi, xi in zip(row, x)) for row in w]

    def softmax(logits):
        top = max(v.data for v in logits)
        exps = [(v - top).exp() for v in logits]
        total = sum(exps)
        return [e / total for e in exps]

    def rmsnorm(x):
        scale = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** -0.5
        return [xi * scale for xi in x]

    keys, values, losses, hs = [], [], [], N_EMBD // N_HEAD
    n = len(tokens) - 1
    for pos in range(n):
        x = rmsnorm([t + p for t, p in zip(state["wte"][tokens[pos]], state["wpe"][pos])])
        residual = x
        x = rmsnorm(x)
        q, k, v = linear(x, state["wq"]), linear(x, state["wk"]), linear(x, state["wv"])
        keys.append(k)
        values.append(v)
        heads = []
        for h in range(0, N_EMBD, hs):
            scores = [sum(a * b for a, b in zip(q[h : h + hs], kt[h : h + hs])) / hs**0.5
                      for kt in keys]  # fmt: skip
            weights = softmax(scores)
            heads += [sum(w * vt[j] for w, vt in zip(weights, values)) for j in range(h, h + hs)]
        x = [a + b for a, b in zip(linear(heads, state["wo"]), residual)]
        residual = x
        hidden = [h.relu() for h in linear(rmsnorm(x), state["fc1"])]
        x = [a + b for a, b in zip(linear(hidden, state["fc2"]), residual)]
        probs = softmax(linear(x, state["lm_head"]))
        losses.append(-probs[tokens[pos + 1]].log())
    return (1 / n) * sum(losses)


class MicroAdam:
    """microGPT's Adam over a flat parameter list."""

    def __init__(self, params, lr=0.01, betas=(0.85, 0.99), eps=1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m, self.v, self.t = [0.0] * len(params), [0.0] * len(params), 0

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        for i, p in enumerate(self.params):
            self.m[i] = b1 * self.m[i] + (1 - b1) * p.grad
            self.v[i] = b2 * self.v[i] + (1 - b2) * p.grad**2
            m_hat, v_hat = self.m[i] / (1 - b1**self.t), self.v[i] / (1 - b2**self.t)
            p.data -= self.lr * m_hat / (v_hat**0.5 + self.eps)
            p.grad = 0.0


def micro_step(value) -> Callable[[list[int]], float]:
    state = micro_params(value, VOCAB, seed=0)
    params = [p for m in state.values() for row in m for p in row]
    optimizer = MicroAdam(params)

    def step(tokens):
        loss = micro_loss(state, tokens)
        loss.backward()
        start = time.perf_counter()
        optimizer.step()  # and zero the gradients
        return time.perf_counter() - start

    return step


def mingrad_step(use_jit: bool) -> Callable[[list[int]], float]:
    model = gpt.GPT(VOCAB, N_LAYER, N_EMBD, N_HEAD, BLOCK, seed=0)
    loss_of = jit(model.loss) if use_jit else model.loss
    optimizer = Adam(model.parameters(), lr=0.01, betas=(0.85, 0.99))

    def step(tokens):
        loss = loss_of(tokens)
        loss.backward()
        start = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - start

    return step


def torch_step() -> Callable[[list[int]], float] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)

    def matrix(nout, nin):
        return (torch.randn(nout, nin, generator=g, dtype=torch.float64) * 0.08).requires_grad_()

    wte, wpe, lm_head = matrix(VOCAB, N_EMBD), matrix(BLOCK, N_EMBD), matrix(VOCAB, N_EMBD)
    wq, wk, wv, wo = (matrix(N_EMBD, N_EMBD) for _ in range(4))
    fc1, fc2 = matrix(4 * N_EMBD, N_EMBD), matrix(N_EMBD, 4 * N_EMBD)
    params = [wte, wpe, wq, wk, wv, wo, fc1, fc2, lm_head]
    optimizer = torch.optim.Adam(params, lr=0.01, betas=(0.85, 0.99))
    hs = N_EMBD // N_HEAD

    def rmsnorm(x):
        return x * (x.pow(2).mean(-1, keepdim=True) + 1e-5).rsqrt()

    def step(tokens):
        ids = torch.tensor(tokens)
        n = len(tokens) - 1
        x = rmsnorm(wte[ids[:n]] + wpe[:n])
        h = rmsnorm(x)
        q, k, v = (
            (h @ w.T).view(n, N_HEAD, hs).transpose(0, 1) for w in (wq, wk, wv)
        )  # (heads, n, hs)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(hs)
        mask = torch.ones(n, n, dtype=torch.bool).tril()
        att = scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        x = att.transpose(0, 1).reshape(n, N_EMBD) @ wo.T + x
        x = torch.relu(rmsnorm(x) @ fc1.T) @ fc2.T + x
        loss = torch.nn.functional.cross_entropy(x @ lm_head.T, ids[1 : n + 1])
        loss.backward()
        start = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - start

    return step


def main(argv: list[str] | None = None) -> int:
    global VOCAB
    parser = argparse.ArgumentParser(description="GPT training steps per second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--names", type=int, default=16, help="names (steps) per round")
    parser.add_argument("--no-gc", action="store_true", help="switch the garbage collector off")
    args = parser.parse_args(argv)
    if args.no_gc:
        gc.disable()
    names = gpt.load_names()
    tokenizer = gpt.Tokenizer(names)
    VOCAB = len(tokenizer.chars)
    docs = [tokenizer.encode(n)[: BLOCK + 1] for n in random.Random(0).sample(names, args.names)]
    contenders = {
        "(a) Value, micrograd-way code": micro_step(Value),
        "(a') MinGrad eager, micrograd-way code": micro_step(Scalar),
        "(b) MinGrad eager, examples/gpt.py": mingrad_step(use_jit=False),
        "(c) MinGrad jit, examples/gpt.py": mingrad_step(use_jit=True),
    }
    torch = torch_step()
    if torch is not None:
        contenders["(d) PyTorch, 1 thread, float64"] = torch
    for step in contenders.values():  # warm up: the jit traces each length here
        for tokens in docs:
            step(tokens)
    best = dict.fromkeys(contenders, (math.inf, math.inf))
    for _ in range(args.rounds):
        for name, step in contenders.items():
            gc.collect()
            start = time.perf_counter()
            optimizer = sum(step(tokens) for tokens in docs)
            total = time.perf_counter() - start
            best[name] = min(best[name], (total, total - optimizer))
    collector = "on" if gc.isenabled() else "off"
    print(f"Python {sys.version.split()[0]}, gc {collector}; {len(docs)} names a round, best of "
          f"{args.rounds}; model n_layer {N_LAYER}, n_embd {N_EMBD}, {N_HEAD} heads")  # fmt: skip
    print(f"  {'':42s} {'steps/s':>9s} {'vs Value':>9s}   {'fwd+bwd/s':>9s} {'vs Value':>9s}")
    rate = {name: (len(docs) / t, len(docs) / fb) for name, (t, fb) in best.items()}
    base = rate["(a) Value, micrograd-way code"]
    for name, (r, fb) in rate.items():
        print(f"  {name:42s} {r:9.1f} {r / base[0]:8.2f}x   {fb:9.1f} {fb / base[1]:8.2f}x")
    eager = rate["(b) MinGrad eager, examples/gpt.py"]
    jitted = rate["(c) MinGrad jit, examples/gpt.py"]
    print(
        f"  jit / eager: {jitted[0] / eager[0]:.1f}x a whole step (Adam in bulk under jit), "
        f"{jitted[1] / eager[1]:.1f}x forward and backward"
    )
    if torch is None:
        print("  (d) PyTorch: not importable in this environment, not measured")
    return 0


VOCAB = 27

if __name__ == "__main__":
    sys.exit(main())
