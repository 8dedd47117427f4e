"""Packed rows (no padding, positions restart per trace) give the padded scores, for every head."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from prmkit.prm import PRMSpec, encode
from prmkit.prm.batch import pack_rows, packed_batch, padded_batch
from prmkit.prm.heads import step_outputs
from prmkit.score import PRMScorer
from prmkit.testing import labeled_trace
from prmkit.train.loop import build_prm

pytestmark = pytest.mark.usefixtures("one_thread")


def _traces():
    """Traces of different lengths, so rows hold several of them and some tails are padding."""
    return [
        labeled_trace(i, [1.0] * n, prompt="Tom has 3 apples and buys 4." + " More." * i)
        for i, n in enumerate([1, 4, 2, 6, 3, 1, 5])
    ]


def test_pack_rows_is_first_fit_decreasing_and_never_splits_a_trace():
    rows = pack_rows([5, 3, 4, 2, 9], row_tokens=7)
    assert rows == [[4], [0, 3], [2, 1]]
    assert sorted(i for r in rows for i in r) == [0, 1, 2, 3, 4]


def test_packed_layout_restarts_positions_and_places_every_token(smol_tokenizer):
    spec = PRMSpec.from_format("trl", head="tokcls")
    encs = [encode(spec, smol_tokenizer, t.prompt, t.steps) for t in _traces()]
    batch = packed_batch(encs, pad_id=0, row_tokens=None)
    assert batch.attention_mask is None
    assert batch.input_ids.shape[0] < len(encs)  # short traces fill the long ones' rows
    for b, e in enumerate(encs):
        row, start, end = batch.span(b)
        assert batch.input_ids[row, start:end].tolist() == e.input_ids
        assert batch.position_ids[row, start:end].tolist() == list(range(len(e.input_ids)))


@pytest.mark.parametrize(
    ("head", "extra"),
    [
        ("tokcls", {}),
        ("labeltok", {}),
        ("implicit", {}),
        ("probe", {"probe_features": "hidden", "probe_layer": 1}),
        ("probe", {"probe_features": "hidden+logprobs", "probe_layer": 1}),
    ],
)
@pytest.mark.parametrize("row_tokens", [None, 4096])
def test_packed_equals_padded_for_every_head(tiny_model_dir, head, extra, row_tokens):
    fmt = "math_shepherd" if head in ("labeltok", "implicit") else "trl"
    spec = PRMSpec.from_format(fmt, head=head, **extra)
    prm = build_prm(spec, str(tiny_model_dir), seed=3)
    data = _traces()
    encs = [encode(prm.spec, prm.tokenizer, t.prompt, t.steps) for t in data]
    with torch.no_grad():
        padded = step_outputs(prm, padded_batch(encs, prm.pad_id()))
        packed = step_outputs(prm, packed_batch(encs, prm.pad_id(), row_tokens=row_tokens))
    for a, b, e in zip(padded, packed, encs, strict=True):
        assert a.shape == b.shape == (len(e.step_positions),)
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)


def test_scorer_packing_is_a_layout_choice_not_a_score_change(tiny_model_dir):
    prm = build_prm(PRMSpec.from_format("trl", head="tokcls"), str(tiny_model_dir), seed=1)
    data = _traces()
    padded = PRMScorer(prm, batch_size=3, packing=False).score(data)
    packed = PRMScorer(prm, batch_size=3, packing=True, max_batch_tokens=400).score(data)
    assert [len(s) for s in packed] == [len(t.steps) for t in data]
    for a, b in zip(padded, packed, strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 1e-5


def test_packing_is_on_only_for_models_that_read_packed_rows_apart(tiny_model_dir):
    from transformers import LlamaForCausalLM

    from prmkit.prm.heads import packing_supported

    prm = build_prm(PRMSpec.from_format("trl", head="tokcls"), str(tiny_model_dir))
    assert packing_supported(prm.model)
    assert PRMScorer(prm).uses_packing()

    class OwnCode(LlamaForCausalLM):  # stands for a trust_remote_code model's own class
        pass

    remote = OwnCode(prm.model.config)
    assert not packing_supported(remote)
    assert not PRMScorer(dataclasses.replace(prm, model=remote)).uses_packing()
