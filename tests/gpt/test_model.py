"""The GPT example's gradients against HIPS autograd, and its jitted steps against eager ones."""

import math
import subprocess
import sys

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad as agrad

from mingrad_jit import jit

from .conftest import EXAMPLE

TINY = dict(vocab_size=7, n_layer=2, n_embd=4, n_head=2, block_size=6, seed=3)


def oracle_loss(model, tokens):
    """The same model in autograd.numpy, the whole sequence at once, causal mask and all."""
    shapes = [(model.vocab_size, model.n_embd), (model.block_size, model.n_embd)]
    for layer in model.layers:
        shapes += [(len(m), len(m[0])) for m in layer.values()]
    shapes.append((model.vocab_size, model.n_embd))
    sizes = [r * c for r, c in shapes]
    hs = model.n_embd // model.n_head

    def rmsnorm(x):  # rows are positions
        return x * (anp.mean(x * x, axis=1, keepdims=True) + 1e-5) ** -0.5

    def loss(flat):
        mats, at = [], 0
        for (r, c), size in zip(shapes, sizes):
            mats.append(anp.reshape(flat[at : at + size], (r, c)))
            at += size
        wte, wpe, *rest = mats
        lm_head = rest.pop()
        n = len(tokens) - 1
        x = rmsnorm(wte[tokens[:n]] + wpe[:n])
        causal = np.tril(np.ones((n, n))) == 1
        for i in range(model.n_layer):
            wq, wk, wv, wo, fc1, fc2 = rest[6 * i : 6 * i + 6]
            residual = x
            h = rmsnorm(x)
            q, k, v = h @ wq.T, h @ wk.T, h @ wv.T
            heads = []
            for s in range(0, model.n_embd, hs):
                scores = q[:, s : s + hs] @ k[:, s : s + hs].T / math.sqrt(hs)
                scores = anp.where(causal, scores, -np.inf)
                weights = anp.exp(scores - anp.max(scores, axis=1, keepdims=True))
                weights = weights / anp.sum(weights, axis=1, keepdims=True)
                heads.append(weights @ v[:, s : s + hs])
            x = anp.concatenate(heads, axis=1) @ wo.T + residual
            x = anp.maximum(rmsnorm(x) @ fc1.T, 0.0) @ fc2.T + x
        logits = x @ lm_head.T
        top = anp.max(logits, axis=1, keepdims=True)
        logprobs = logits - top - anp.log(anp.sum(anp.exp(logits - top), axis=1, keepdims=True))
        return -anp.mean(logprobs[np.arange(n), tokens[1 : n + 1]])

    return loss


def test_loss_and_every_gradient_match_the_autograd_oracle(gpt):
    model = gpt.GPT(**TINY)
    tokens = [0, 3, 1, 4, 1, 5, 0]  # a token used twice; the full block
    params = model.parameters()
    loss = model.loss(tokens)
    loss.backward()
    oracle = oracle_loss(model, np.array(tokens))
    flat = np.array([p.data for p in params])
    assert loss.data == pytest.approx(oracle(flat), rel=1e-12)
    expected = agrad(oracle)(flat)
    got = np.array([p.grad for p in params])
    assert np.abs(expected).max() > 1e-3  # the check has something to compare
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_the_oracle_comparison_catches_a_wrong_gradient(gpt):
    model = gpt.GPT(**TINY)
    tokens = [0, 2, 2, 0]
    model.loss(tokens).backward()
    expected = agrad(oracle_loss(model, np.array(tokens)))(
        np.array([p.data for p in model.parameters()])
    )
    got = np.array([p.grad for p in model.parameters()])
    got[np.argmax(np.abs(got))] *= 1.0001
    assert not np.allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_jitted_training_equals_eager_training_within_rounding(gpt):
    docs = [[0, 3, 1, 0], [0, 5, 2, 6, 2, 0], [0, 1, 0], [0, 4, 4, 3, 0]]
    eager, jitted = gpt.GPT(**TINY), gpt.GPT(**TINY)
    eager_losses = gpt.train(eager, docs, steps=6)
    jit_losses = gpt.train(jitted, docs, steps=6, use_jit=True)
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-12)
    assert eager_losses[4] != eager_losses[0]  # the parameters moved between the two
    a = np.array([p.data for p in eager.parameters()])
    b = np.array([p.data for p in jitted.parameters()])
    np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("strategy", ["levels", "code"])
def test_each_sequence_length_is_traced_once_and_replayed_with_new_tokens(gpt, strategy):
    model = gpt.GPT(**TINY)
    loss = jit(model.loss, strategy=strategy)
    docs = [[0, 1, 2, 0], [0, 3, 0], [0, 2, 1, 0], [0, 6, 5, 4, 3, 0], [0, 5, 0], [0, 1, 1, 0]]
    for tokens in docs:
        replayed = loss(tokens)
        assert replayed.data == pytest.approx(model.loss(tokens).data, rel=1e-13)
    assert loss.traces == len({len(d) for d in docs}) == 3
    # different names of one length give different losses: the tokens are fed anew
    assert loss([0, 1, 2, 0]).data != loss([0, 2, 1, 0]).data
    assert loss.traces == 3


def test_a_name_longer_than_the_block_is_refused_clearly(gpt):
    model = gpt.GPT(**TINY)
    with pytest.raises(ValueError, match=r"a sequence holds 2\.\.7 tokens; got 8"):
        model.loss([0] * 8)
    with pytest.raises(ValueError, match="n_embd must be a multiple of n_head; got 6 and 4"):
        gpt.GPT(7, n_embd=6, n_head=4)


def test_sampling_is_seeded_and_stops_at_the_block_size(gpt):
    import random

    model = gpt.GPT(**TINY)
    first = [model.sample(random.Random(1)) for _ in range(5)]
    again = [model.sample(random.Random(1)) for _ in range(5)]
    assert first == again
    assert all(len(s) <= TINY["block_size"] and 0 not in s for s in first)


def test_the_names_data_states_its_source_and_holds_lowercase_names(gpt):
    header = EXAMPLE.with_name("names.txt").read_text().splitlines()[0]
    assert "US Census 1990" in header and "public domain" in header
    names = gpt.load_names()
    assert len(names) > 5000 and all(n.isalpha() and n.islower() for n in names)
    assert EXAMPLE.with_name("names.txt").stat().st_size < 300_000


def run_example(*flags):
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *flags], capture_output=True, text=True, timeout=120
    )


def test_the_example_trains_and_samples_end_to_end_eager_and_jitted():
    flags = ("--steps", "12", "--samples", "3", "--n-embd", "8", "--n-head", "2")
    eager = run_example(*flags)
    assert eager.returncode == 0, eager.stderr
    lines = eager.stdout.splitlines()
    losses = [line for line in lines if line.startswith("step ")]
    assert losses[0].startswith("step     1 / 12  loss 3.") and losses[-1].startswith("step    12")
    names = lines[lines.index("sampled names:") + 1 :]
    assert len(names) == 3 and all(n.strip().isalpha() for n in names if n.strip())
    jitted = run_example(*flags, "--jit")
    assert jitted.returncode == 0, jitted.stderr
    assert [line for line in jitted.stdout.splitlines() if line.startswith("step ")] == losses


def test_the_example_refuses_bad_flags_without_a_traceback():
    result = run_example("--n-embd", "6", "--n-head", "4")
    assert result.returncode == 2
    assert "n_embd must be a multiple of n_head" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_example("--steps", "0")
    assert result.returncode == 2 and "--steps must be at least 1" in result.stderr
