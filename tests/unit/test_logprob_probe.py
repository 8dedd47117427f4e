"""The probe's log-probability features: what they compute, that training reads what scoring
reads, that a checkpoint round-trips, and the policy adapter as the PRM's backbone."""

from __future__ import annotations

import pytest
import torch

from prmkit.errors import ConfigError
from prmkit.prm import PRMSpec, encode
from prmkit.prm.checkpoint import load_prm, save_prm
from prmkit.prm.heads import (
    LOGPROB_FEATURES,
    LOGPROB_SCALE,
    ProbeHead,
    logprob_features,
    pad_batch,
    probe_inputs,
    step_outputs,
)
from prmkit.records import LabeledTrace
from prmkit.train import build_examples, build_prm, probe_features

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tiny_base(tmp_path, smol_tokenizer):
    from prmkit.testing import build_tiny_lm

    base = tmp_path / "tiny"
    build_tiny_lm(len(smol_tokenizer), layers=2, hidden=16).save_pretrained(base)
    smol_tokenizer.save_pretrained(base)
    return base


def traces() -> list[LabeledTrace]:
    return [
        LabeledTrace(
            id="a",
            problem_id="p",
            prompt="Tom has 3 apples. He buys 4 more.",
            steps=["He buys 4 more: 3 + 4 = 7", "The answer is 7."],
            labels=[1.0, 1.0],
            first_error=-1,
            label_source="exact",
        ),
        LabeledTrace(
            id="b",
            problem_id="p",
            prompt="Tom has 3 apples. He buys 4 more.",
            steps=["Let's think.", "He buys 4 more: 3 + 4 = 9", "The answer is 9."],
            labels=[1.0, 0.0, None],
            first_error=1,
            label_source="exact",
        ),
    ]


def test_spec_refuses_unknown_probe_features():
    with pytest.raises(ConfigError, match="probe_features"):
        PRMSpec.from_format("trl", head="probe", probe_features="attention")


def test_logprob_features_by_hand():
    """One sequence of 5 tokens, two steps: tokens 1-2 and 3-4; vocab 3 (token 2 is a digit)."""
    logits = torch.log(
        torch.tensor(
            [
                [0.5, 0.25, 0.25],  # predicts token 1 (ids[1] = 0: p 0.5, the argmax)
                [0.25, 0.25, 0.5],  # predicts token 2 (ids[2] = 2: p 0.5, argmax, a digit)
                [0.5, 0.25, 0.25],  # predicts token 3 (ids[3] = 1: p 0.25, margin log 0.5)
                [0.5, 0.25, 0.25],  # predicts token 4 (ids[4] = 2: p 0.25, a digit)
                [1 / 3, 1 / 3, 1 / 3],
            ]
        )
    ).unsqueeze(0)
    ids = torch.tensor([[0, 0, 2, 1, 2]])

    class Enc:
        def step_token_spans(self):
            return [(1, 3), (3, 5)]

    digits = torch.tensor([False, False, True])
    got = logprob_features(logits, ids, [Enc()], digits)[0] * LOGPROB_SCALE
    ln = torch.log
    half, quarter = float(ln(torch.tensor(0.5))), float(ln(torch.tensor(0.25)))
    want = torch.tensor(
        [
            [half, half, 0.0, half, 0.0, half],
            [quarter, quarter, quarter - half, quarter, quarter - half, quarter],
        ]
    )
    assert len(LOGPROB_FEATURES) == 6
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("features", ["logprobs", "hidden+logprobs"])
def test_training_reads_what_scoring_reads_and_the_checkpoint_round_trips(
    tmp_path, tiny_base, features
):
    spec = PRMSpec.from_format("trl", head="probe", probe_features=features, probe_hidden=0)
    prm = build_prm(spec, str(tiny_base))
    width = (16 if "hidden" in features else 0) + len(LOGPROB_FEATURES)
    assert prm.probe.net[0].in_features == width
    data = traces()
    examples, _ = build_examples(prm.spec, prm.tokenizer, data, until_first_error=True)
    x, y = probe_features(prm, examples, batch_size=2)
    assert x.shape == (4, width) and y.tolist() == [1.0, 1.0, 1.0, 0.0]
    encs = [encode(prm.spec, prm.tokenizer, t.prompt, t.steps) for t in data]
    ids, mask = pad_batch(encs, prm.pad_id())
    with torch.no_grad():
        one = torch.cat(
            [
                f[: len(e.targets)]
                for f, e in zip(probe_inputs(prm, ids, mask, encs), examples, strict=True)
            ]
        )
        assert torch.allclose(one, x, atol=1e-5)
        before = step_outputs(prm, ids, mask, encs)
    save_prm(prm, tmp_path / "ckpt")
    again = load_prm(tmp_path / "ckpt")
    assert again.spec.probe_features == features
    with torch.no_grad():
        after = step_outputs(again, ids, mask, encs)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(before, after, strict=True))


def test_extra_features_skip_the_layer_norm():
    """A scalar feature's size must reach the linear map (a layer norm over 6 values would
    erase it), while the hidden part is normalised as before."""
    head = ProbeHead(hidden_size=0, width=0, n_extra=2)
    with torch.no_grad():
        head.net[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        head.net[0].bias.zero_()
    assert head(torch.tensor([[-1.0, 0.0], [-3.0, 0.0]])).tolist() == [-1.0, -3.0]


def test_adapter_merges_into_the_prm_backbone(tmp_path, tiny_base):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    peft = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    for name, p in peft.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    peft.save_pretrained(tmp_path / "adapter")
    spec = PRMSpec.from_format("trl", head="probe", probe_features="logprobs", probe_hidden=0)
    plain = build_prm(spec, str(tiny_base))
    merged = build_prm(spec, str(tiny_base), adapter=str(tmp_path / "adapter"))
    assert merged.spec.base == f"{tiny_base}+{tmp_path / 'adapter'}"
    enc = encode(spec, plain.tokenizer, "Tom has 3.", ["3 + 4 = 7"])
    ids, _ = pad_batch([enc], plain.pad_id())
    with torch.no_grad():
        a = plain.model(input_ids=ids).logits
        b = merged.model(input_ids=ids).logits
    assert not torch.allclose(a, b)


def test_probes_on_one_backbone_score_from_shared_inputs(tmp_path, tiny_base):
    """score_inputs(probe_inputs(...)) is score(...); another probe reuses the same inputs."""
    from prmkit.score.scorer import PRMScorer

    spec = PRMSpec.from_format("trl", head="probe", probe_features="logprobs", probe_hidden=0)
    data = traces()
    a = PRMScorer(build_prm(spec, str(tiny_base), seed=1), batch_size=1)
    b = PRMScorer(build_prm(spec, str(tiny_base), seed=2), batch_size=2)
    inputs = a.probe_inputs(data)
    for scorer in (a, b):
        want = scorer.score(data)
        got = scorer.score_inputs(inputs)
        assert all(g == pytest.approx(w, abs=1e-5) for g, w in zip(got, want, strict=True))
    assert a.score(data) != b.score(data)
    tokcls = PRMScorer(build_prm(PRMSpec.from_format("trl", head="tokcls"), str(tiny_base)))
    with pytest.raises(ConfigError, match="probe"):
        tokcls.probe_inputs(data)


def test_the_lm_head_on_the_steps_only_gives_the_full_forward_features(tiny_base):
    """probe_inputs skips the prompt's logits; the features equal those of the whole forward."""
    from prmkit.prm.heads import LOGPROB_FEATURES, logprob_features

    spec = PRMSpec.from_format("trl", head="probe", probe_features="logprobs", probe_hidden=0)
    prm = build_prm(spec, str(tiny_base))
    data = traces()
    encs = [encode(prm.spec, prm.tokenizer, t.prompt, t.steps) for t in data]
    ids, mask = pad_batch(encs, prm.pad_id())
    with torch.no_grad():
        fast = probe_inputs(prm, ids, mask, encs)
        logits = prm.model(input_ids=ids, attention_mask=mask).logits
        full = logprob_features(logits, ids, encs, prm.digit_mask())
    assert all(
        f.shape == (len(e.step_positions), len(LOGPROB_FEATURES))
        for f, e in zip(fast, encs, strict=True)
    )
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(fast, full, strict=True))
