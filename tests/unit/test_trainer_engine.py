"""The Trainer engine: packing and accumulation change the layout, not the update; warm-up,
clipping, bf16 and gradient checkpointing run; the log carries loss, lr and tokens/s."""

from __future__ import annotations

import re

import pytest
import torch

from prmkit.errors import ConfigError
from prmkit.prm import PRMSpec
from prmkit.prm.batch import packed_batch, padded_batch
from prmkit.testing import labeled_trace
from prmkit.train import build_examples
from prmkit.train.loop import build_prm, fit
from prmkit.train.trainer import batch_loss, fit_trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def _setup(base, head="labeltok", n=2, steps=2):
    """A PRM without dropout (labeltok: the causal LM) and ``n`` traces of ``steps`` labels."""
    fmt = "math_shepherd" if head in ("labeltok", "implicit") else "trl"
    prm = build_prm(PRMSpec.from_format(fmt, head=head), str(base), seed=0)
    traces = [
        labeled_trace(i, [1.0, 0.0][:steps] if i % 2 else [1.0] * steps, prompt="Q" + "?" * i * 7)
        for i in range(n)
    ]
    examples, _ = build_examples(prm.spec, prm.tokenizer, traces)
    return prm, examples


def _params(prm) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in prm.model.named_parameters()}


def _assert_same(a, b, atol=1e-5):
    for name in a:
        gap = (a[name] - b[name]).abs().max().item()
        assert gap <= atol, f"{name}: {gap}"


def test_packed_loss_equals_padded_loss(tiny_model_dir):
    prm, examples = _setup(tiny_model_dir, head="tokcls", n=5)
    encs = [e.enc for e in examples]
    with torch.no_grad():
        prm.model.eval()
        a, n = batch_loss(prm, padded_batch(encs, prm.pad_id()), examples)
        b, m = batch_loss(prm, packed_batch(encs, prm.pad_id()), examples)
    assert n == m == sum(len(e.targets) for e in examples)
    assert abs(float(a) - float(b)) < 1e-6


def test_packed_and_padded_training_take_the_same_step(tiny_model_dir):
    runs = []
    for packing in (False, True):
        prm, examples = _setup(tiny_model_dir, n=3)
        start = _params(prm)
        fit(prm, examples, lr=0.5, batch_size=3, max_steps=2, packing=packing, optim="sgd")
        runs.append(_params(prm))
        assert max((runs[-1][k] - start[k]).abs().max().item() for k in start) > 1e-3
    _assert_same(*runs)


def test_accumulating_two_halves_is_one_whole_batch(tiny_model_dir):
    """Traces with equal label counts: the mean of two micro-batch means is the batch mean.

    Plain SGD, so the weights compare gradients (Adam's first step is ~sign(g), which float
    noise flips where a gradient is ~0)."""
    sgd = {"lr": 0.5, "max_steps": 1, "max_grad_norm": 0, "optim": "sgd"}
    prm, examples = _setup(tiny_model_dir, n=2)
    fit(prm, examples, batch_size=2, **sgd)
    whole = _params(prm)
    prm, examples = _setup(tiny_model_dir, n=2)
    fit(prm, examples, batch_size=1, grad_accum=2, **sgd)
    _assert_same(whole, _params(prm))


def test_warmup_then_decay_and_the_log_line(tiny_model_dir):
    prm, examples = _setup(tiny_model_dir, head="tokcls", n=4)
    lines: list[str] = []
    result = fit(
        prm, examples, lr=1e-3, batch_size=1, max_steps=6, warmup=3, log_every=1, log=lines.append
    )
    rates = [float(m) for m in re.findall(r"learning_rate=([0-9.e-]+)", "\n".join(lines))]
    assert len(rates) == 6
    peak = rates.index(max(rates))
    assert rates[:peak] == sorted(rates[:peak]) and rates[peak:] == sorted(rates[peak:])[::-1]
    assert max(rates) == pytest.approx(1e-3, rel=0.05) and rates[0] < 0.5e-3
    assert all("grad_norm=" in line for line in lines if "learning_rate" in line)
    assert any("tokens_per_s=" in line for line in lines)
    assert result.optimizer_steps == 6 and result.tokens_per_second > 0


@pytest.mark.slow
def test_bf16_and_gradient_checkpointing_train(tiny_model_dir):
    """bf16 autocast (emulated on an AVX2 CPU: correct, only slow) and recomputed activations."""
    prm, examples = _setup(tiny_model_dir, head="tokcls", n=4)
    before = _params(prm)
    result = fit(
        prm,
        examples,
        lr=1e-3,
        batch_size=2,
        max_steps=2,
        bf16=True,
        gradient_checkpointing=True,
        packing=True,
    )
    after = _params(prm)
    assert result.optimizer_steps == 2
    assert all(v.dtype == torch.float32 for v in after.values())  # fp32 master weights
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(v).all() for v in after.values())


def test_the_trainer_engine_refuses_the_probe_and_a_blind_resume(tiny_model_dir):
    spec = PRMSpec.from_format("trl", head="probe", probe_layer=1)
    prm = build_prm(spec, str(tiny_model_dir))
    examples, _ = build_examples(prm.spec, prm.tokenizer, [labeled_trace(0, [1.0])])
    with pytest.raises(ConfigError, match="backbone heads"):
        fit_trainer(prm, examples)
    prm, examples = _setup(tiny_model_dir)
    with pytest.raises(ConfigError, match="work_dir"):
        fit_trainer(prm, examples, resume=True)
