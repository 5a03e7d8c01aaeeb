"""A character-level GPT in scalar code: train it on first names, then sample new ones.

The model is microGPT's kind: token and position embeddings, RMSNorm, multi-head causal
self-attention with a KV cache, an MLP block, Adam, sampling. Every number is a MinGrad Scalar
and every step a registered op: ``linear`` for the matrix-vector products, ``pick`` for the
embedding lookup (the token id is data, an input of the op, so a jitted step is fed each name
anew), ``logsumexp`` for a stable softmax. Run ``python examples/gpt.py --help`` for the flags;
``--jit`` replays one trace per name length instead of building each step's graph.

The names are the US Census 1990 first names (public domain), in ``examples/names.txt``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mingrad_core import Scalar
from mingrad_core import functional as F
from mingrad_nn import Adam, linear_decay
from mingrad_nn.parameters import ParameterStore
from mingrad_ops import softmax

NAMES = Path(__file__).with_name("names.txt")
BOS = "."  # begins and ends every name: token 0
Matrix = list[list[Scalar]]


def load_names(path: Path = NAMES) -> list[str]:
    """The names in ``path``, one a line; lines starting with ``#`` are comments."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


class Tokenizer:
    """Characters to token ids and back; id 0 is ``BOS``."""

    def __init__(self, names: Sequence[str]) -> None:
        self.chars = [BOS, *sorted(set("".join(names)) - {BOS})]
        self.ids = {c: i for i, c in enumerate(self.chars)}

    def encode(self, name: str) -> list[int]:
        """``name`` between two BOS tokens."""
        return [0, *(self.ids[c] for c in name), 0]

    def decode(self, tokens: Sequence[int]) -> str:
        return "".join(self.chars[t] for t in tokens if t != 0)


class GPT:
    """The transformer's parameters, and its forward pass one token at a time."""

    def __init__(
        self,
        vocab_size: int,
        n_layer: int = 1,
        n_embd: int = 16,
        n_head: int = 4,
        block_size: int = 16,
        seed: int = 42,
    ) -> None:
        if n_embd % n_head:
            raise ValueError(f"n_embd must be a multiple of n_head; got {n_embd} and {n_head}")
        rng = random.Random(seed)
        # One store for every parameter: plain Scalars to a learner, and under jit read, added
        # into and updated by Adam as arrays, one numpy call each (mingrad_nn.parameters).
        self.parameter_store = store = ParameterStore()

        def matrix(nout: int, nin: int, std: float = 0.08) -> Matrix:
            return [[store.new(rng.gauss(0.0, std)) for _ in range(nin)] for _ in range(nout)]

        self.vocab_size, self.n_layer, self.n_embd = vocab_size, n_layer, n_embd
        self.n_head, self.block_size = n_head, block_size
        self.wte = matrix(vocab_size, n_embd)
        self.wpe = matrix(block_size, n_embd)
        self.layers = [
            {
                "wq": matrix(n_embd, n_embd),
                "wk": matrix(n_embd, n_embd),
                "wv": matrix(n_embd, n_embd),
                "wo": matrix(n_embd, n_embd),
                "fc1": matrix(4 * n_embd, n_embd),
                "fc2": matrix(n_embd, 4 * n_embd),
            }
            for _ in range(n_layer)
        ]
        self.lm_head = matrix(vocab_size, n_embd)
        self.wte_columns = [list(column) for column in zip(*self.wte)]  # what pick chooses from

    def parameters(self) -> list[Scalar]:
        """Every parameter, in a fixed order."""
        matrices = [self.wte, self.wpe, *(m for layer in self.layers for m in layer.values())]
        return [p for m in (*matrices, self.lm_head) for row in m for p in row]

    def forward(self, token, pos: int, keys: list, values: list) -> list[Scalar]:
        """The logits of the token after ``token`` at position ``pos``; appends to the KV cache
        (``keys[layer]``, ``values[layer]``: one list per earlier position)."""
        # The token is data (a number, or under jit an argument): pick() looks it up by value.
        # It and the zero that starts each sum enter as constants, once per token.
        token, zero = constant(token), constant(0.0)
        x = [F.pick(token, *column) + p for column, p in zip(self.wte_columns, self.wpe[pos])]
        x = rmsnorm(x, zero)
        head_size = self.n_embd // self.n_head
        scale = 1 / math.sqrt(head_size)
        for layer, (cache_k, cache_v) in zip(self.layers, zip(keys, values)):
            residual = x
            x = rmsnorm(x, zero)
            q, k, v = (matvec(layer[w], x, zero) for w in ("wq", "wk", "wv"))
            cache_k.append(k)
            cache_v.append(v)
            heads = []
            for h in range(0, self.n_embd, head_size):
                q_h = q[h : h + head_size]
                scores = [dot(q_h, k_t[h : h + head_size], zero) * scale for k_t in cache_k]
                weights = softmax(scores)
                for j in range(h, h + head_size):
                    heads.append(dot(weights, [v[j] for v in cache_v], zero))
            x = [a + b for a, b in zip(matvec(layer["wo"], heads, zero), residual)]
            residual = x
            hidden = [h.relu() for h in matvec(layer["fc1"], rmsnorm(x, zero), zero)]
            x = [a + b for a, b in zip(matvec(layer["fc2"], hidden, zero), residual)]
        return matvec(self.lm_head, x, zero)

    def loss(self, tokens: Sequence) -> Scalar:
        """The mean cross-entropy of predicting each token from those before it."""
        keys, values = [[] for _ in self.layers], [[] for _ in self.layers]
        n = len(tokens) - 1
        if not 1 <= n <= self.block_size:
            raise ValueError(f"a sequence holds 2..{self.block_size + 1} tokens; got {n + 1}")
        total = None
        for pos in range(n):
            logits = self.forward(tokens[pos], pos, keys, values)
            # -log softmax(logits)[target]; the target is data too, so pick() takes its logit.
            nll = F.logsumexp(*logits) - F.pick(constant(tokens[pos + 1]), *logits)
            total = nll if total is None else total + nll
        return total * (1 / n)

    def sample(self, rng: random.Random, temperature: float = 1.0) -> list[int]:
        """New tokens, one at a time from the predicted distribution, until BOS or full."""
        keys, values = [[] for _ in self.layers], [[] for _ in self.layers]
        token, out = 0, []
        for pos in range(self.block_size):
            logits = self.forward(token, pos, keys, values)
            probs = [p.data for p in softmax([z * (1 / temperature) for z in logits])]
            token = rng.choices(range(self.vocab_size), weights=probs)[0]
            if token == 0:
                break
            out.append(token)
        return out


def constant(value) -> Scalar:
    """A number as a Scalar that takes no gradient (under jit, an argument stays fed anew)."""
    node = Scalar(value)
    node.grad = None
    return node


def rmsnorm(x: list[Scalar], zero: Scalar) -> list[Scalar]:
    """x scaled to a root mean square of 1."""
    scale = (dot(x, x, zero) * (1 / len(x)) + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def dot(a: Sequence, b: Sequence, zero: Scalar) -> Scalar:
    """Σ ai·bi as one ``linear`` node, from ``zero``."""
    return F.linear(zero, *a, *b)


def matvec(w: Matrix, x: list[Scalar], zero: Scalar) -> list[Scalar]:
    """w @ x, one ``linear`` node per row."""
    return [F.linear(zero, *row, *x) for row in w]


def train(
    model: GPT,
    docs: Sequence[list[int]],
    steps: int,
    lr: float = 0.01,
    use_jit: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """``steps`` Adam steps, one name each (cycling through ``docs``); the losses."""
    loss_of = model.loss
    if use_jit:
        from mingrad_jit import jit

        # One trace per name length: keep them all, and warn only if that is exceeded.
        loss_of = jit(model.loss, cache_size=model.block_size + 1)
    optimizer = Adam(model.parameters(), lr=linear_decay(lr, 0.0, steps), betas=(0.85, 0.99))
    losses = []
    for step in range(steps):
        tokens = docs[step % len(docs)][: model.block_size + 1]
        loss = loss_of(tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
        if on_step is not None:
            on_step(step, losses[-1])
    return losses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps, one name each")
    parser.add_argument("--n-layer", type=int, default=1)
    parser.add_argument("--n-embd", type=int, default=16)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--samples", type=int, default=20, help="names to sample at the end")
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--jit", action="store_true", help="replay each step with mingrad_jit")
    args = parser.parse_args(argv)
    for flag in ("steps", "n_layer", "n_embd", "n_head", "block_size"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if not args.temperature > 0:
        parser.error("--temperature must be above 0")
    try:
        names = load_names()
        tokenizer = Tokenizer(names)
        docs = [tokenizer.encode(name) for name in names]
        random.Random(args.seed).shuffle(docs)
        model = GPT(
            len(tokenizer.chars), args.n_layer, args.n_embd, args.n_head, args.block_size, args.seed
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{len(names)} names, {len(tokenizer.chars)} tokens, "
          f"{len(model.parameters())} parameters")  # fmt: skip
    every = max(1, args.steps // 20)
    start = time.perf_counter()

    def report(step: int, loss: float) -> None:
        if step % every == 0 or step == args.steps - 1:
            print(f"step {step + 1:5d} / {args.steps}  loss {loss:.4f}")

    train(model, docs, args.steps, args.lr, args.jit, report)
    print(f"trained in {time.perf_counter() - start:.1f} s")
    rng = random.Random(args.seed)
    print("sampled names:")
    for _ in range(args.samples):
        print(" ", tokenizer.decode(model.sample(rng, args.temperature)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
