"""Each reference format, expressed as PRMSpec data, reproduces its model card's recipe.

The recipes (TRL's PRMTrainer.tokenize_row, Qwen2.5-Math-PRM's make_step_rewards,
Math-Shepherd's step-tag read-out) are re-implemented step by step here, independently of prmkit,
on tiny random-weight models; prmkit's positions and probabilities must match them exactly.
"""

from __future__ import annotations

import copy
from itertools import chain

import pytest
import torch
import torch.nn.functional as F

from prmkit.errors import ConfigError, DataFormatError, ModelLoadError
from prmkit.prm import PRMSpec, encode, load_spec, save_spec
from prmkit.prm.heads import PRM
from prmkit.records import Trace
from prmkit.score import PRMScorer
from prmkit.testing import build_tiny_lm, build_tiny_tokcls

PROBLEM = "Janet has 3 apples and buys 4 more. How many now?"
STEPS = ["Step 1: She starts with 3 apples.", "Step 2: 3 + 4 = 7.", "Step 3: The answer is 7."]


@pytest.fixture(scope="module")
def tok(smol_tokenizer):
    return copy.deepcopy(smol_tokenizer)


def _trace(steps=STEPS, prompt=PROBLEM) -> Trace:
    return Trace(id="t0", problem_id="p0", prompt=prompt, steps=list(steps))


# ---------------------------------------------------------------- (a) TRL stepwise


def trl_tokenize_row(tokenizer, prompt, completions, labels, step_separator="\n"):
    """TRL PRMTrainer.tokenize_row, re-implemented: pieces tokenized separately, label on the
    last token of ``completion + separator``, -100 elsewhere, BOS before the prompt."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completions_ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in completions]
    separator_ids = tokenizer.encode(step_separator, add_special_tokens=False)
    completions_ids = [c + separator_ids for c in completions_ids]
    step_labels = [
        [-100] * (len(c) - 1) + [int(lab)] for c, lab in zip(completions_ids, labels, strict=False)
    ]
    if tokenizer.bos_token_id is not None:
        prompt_ids = [tokenizer.bos_token_id, *prompt_ids]
    input_ids = prompt_ids + list(chain(*completions_ids))
    all_labels = [-100] * len(prompt_ids) + list(chain(*step_labels))
    return input_ids, all_labels


def test_trl_format_matches_tokenize_row_and_softmax(tok):
    spec = PRMSpec.from_format("trl", head="tokcls")
    ref_ids, ref_labels = trl_tokenize_row(tok, PROBLEM, STEPS, [1, 0, 1])
    enc = encode(spec, tok, PROBLEM, STEPS)
    assert enc.input_ids == ref_ids
    assert enc.step_positions == [i for i, lab in enumerate(ref_labels) if lab != -100]
    model = build_tiny_tokcls(len(tok))
    with torch.no_grad():
        logits = model(torch.tensor([ref_ids])).logits[0]
    expected = F.softmax(logits, dim=-1)[torch.tensor(ref_labels) != -100][:, 1]
    got = PRMScorer(PRM(spec=spec, tokenizer=tok, model=model)).score([_trace()])[0]
    assert got == pytest.approx(expected.tolist(), abs=1e-6)


# ---------------------------------------------------------------- (b) Qwen2.5-Math-PRM


def make_step_rewards(logits, token_masks):
    """The model card's make_step_rewards."""
    probabilities = F.softmax(logits, dim=-1)
    probabilities = probabilities * token_masks.unsqueeze(-1)
    out = []
    for i in range(probabilities.size(0)):
        sample = probabilities[i]
        positive_probs = sample[sample != 0].view(-1, 2)[:, 1]
        out.append(positive_probs.cpu().tolist())
    return out


@pytest.fixture(scope="module")
def qwen_tok(smol_tokenizer):
    t = copy.deepcopy(smol_tokenizer)
    t.add_special_tokens({"additional_special_tokens": ["<extra_0>"]})
    return t


def test_qwen_prm_format_matches_model_card(qwen_tok):
    tok = qwen_tok
    spec = PRMSpec.from_format("qwen_prm", head="tokcls")
    system = "Please reason step by step, and put your final answer within \\boxed{}."
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": PROBLEM},
        {"role": "assistant", "content": "<extra_0>".join(STEPS) + "<extra_0>"},
    ]
    conversation = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    input_ids = tok.encode(conversation, return_tensors="pt")
    step_sep_id = tok.encode("<extra_0>")[0]
    token_masks = input_ids == step_sep_id
    model = build_tiny_tokcls(len(tok), seed=1)
    with torch.no_grad():
        expected = make_step_rewards(model(input_ids=input_ids)[0], token_masks)[0]

    enc = encode(spec, tok, PROBLEM, STEPS)
    assert enc.input_ids == input_ids[0].tolist()
    assert enc.step_positions == token_masks[0].nonzero().squeeze(-1).tolist()
    assert len(enc.step_positions) == len(STEPS)
    got = PRMScorer(PRM(spec=spec, tokenizer=tok, model=model)).score([_trace()])[0]
    assert got == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------- (c) Math-Shepherd


@pytest.fixture(scope="module")
def shepherd_tok(smol_tokenizer):
    t = copy.deepcopy(smol_tokenizer)
    t.add_tokens(["ки"])
    return t


def test_math_shepherd_format_matches_model_card(shepherd_tok):
    tok = shepherd_tok
    good_token, bad_token, step_tag = "+", "-", "ки"
    # The card drops a BOS with [1:]; this tokenizer adds none, so nothing is dropped.
    candidate_tokens = tok.encode(f"{good_token} {bad_token}", add_special_tokens=False)
    step_tag_id = tok.encode(f"{step_tag}")[-1]
    output = "".join(f"{s} ки\n" for s in STEPS).rstrip("\n")
    input_ids = torch.tensor([tok.encode(f"{PROBLEM} {output}")])
    model = build_tiny_lm(len(tok), seed=2)
    with torch.no_grad():
        logits = model(input_ids).logits[:, :, candidate_tokens]
        scores = logits.softmax(dim=-1)[:, :, 0]
        expected = scores[input_ids == step_tag_id].tolist()

    spec = PRMSpec.from_format("math_shepherd", head="labeltok", label_token_ids=candidate_tokens)
    enc = encode(spec, tok, PROBLEM, STEPS)
    assert enc.input_ids == input_ids[0].tolist()
    assert enc.step_positions == (input_ids[0] == step_tag_id).nonzero().squeeze(-1).tolist()
    got = PRMScorer(PRM(spec=spec, tokenizer=tok, model=model)).score([_trace()])[0]
    assert got == pytest.approx(expected, abs=1e-6)


def test_batched_scoring_equals_one_by_one(shepherd_tok):
    """Right padding and length bucketing do not change any score."""
    tok = shepherd_tok
    spec = PRMSpec.from_format("math_shepherd", head="labeltok")
    prm = PRM(spec=spec, tokenizer=tok, model=build_tiny_lm(len(tok), seed=3))
    traces = [_trace(STEPS[:k], prompt=PROBLEM * k) for k in (1, 3, 2)]
    batched = PRMScorer(prm, batch_size=3).score(traces)
    single = [PRMScorer(prm, batch_size=1).score([t])[0] for t in traces]
    assert [len(s) for s in batched] == [1, 3, 2]
    for a, b in zip(batched, single, strict=True):
        assert a == pytest.approx(b, abs=1e-5)


# ---------------------------------------------------------------- spec and encode errors


def test_spec_round_trip_and_file(tmp_path):
    spec = PRMSpec.from_format("qwen_prm", head="tokcls", max_length=512)
    save_spec(spec, tmp_path)
    assert load_spec(tmp_path) == spec
    assert PRMSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"head": "regression"}, "head"),
        ({"step_tag": ""}, "step_tag"),
        ({"tokenization": "per_step", "use_chat_template": True}, "tokenization"),
        ({"positive_index": 2}, "positive_index"),
        ({"head": "labeltok", "label_tokens": ["+"]}, "label_tokens"),
        ({"label_token_ids": [5, 5]}, "label_token_ids"),
        ({"beta": 0}, "beta"),
        ({"max_length": 2}, "max_length"),
        ({"aggregation": "median"}, "aggregation"),
        ({"system_prompt": "x"}, "system_prompt"),
    ],
)
def test_spec_rejects_bad_fields(changes, field):
    data = {"head": "tokcls", "step_tag": "\n", **changes}
    with pytest.raises(ConfigError, match=field):
        PRMSpec.from_dict(data)


def test_spec_rejects_unknown_keys_and_formats(tmp_path):
    with pytest.raises(ConfigError, match="unknown PRMSpec keys"):
        PRMSpec.from_dict({"head": "tokcls", "step_tag": "\n", "model_name": "x"})
    with pytest.raises(ConfigError, match="unknown PRM input format"):
        PRMSpec.from_format("math-shepherd-mistral-7b", head="labeltok")
    with pytest.raises(ModelLoadError, match=r"prm_spec\.json"):
        load_spec(tmp_path)


def test_encode_truncation_and_errors(tok):
    spec = PRMSpec.from_format("trl", head="tokcls")
    full = encode(spec, tok, PROBLEM, STEPS)
    cut = encode(spec.replace(max_length=full.step_positions[1]), tok, PROBLEM, STEPS)
    assert cut.step_positions == full.step_positions[:1]
    assert cut.truncated_steps == 2
    with pytest.raises(DataFormatError, match="no steps"):
        encode(spec, tok, PROBLEM, [])
    scorer = PRMScorer(
        PRM(
            spec=spec.replace(max_length=full.step_positions[1]),
            tokenizer=tok,
            model=build_tiny_tokcls(len(tok)),
        )
    )
    with pytest.raises(DataFormatError, match="beyond max_length"):
        scorer.score([_trace()])


def test_merged_tag_is_an_error(tok):
    """A tag the tokenizer merges with the next step's text cannot be read: refuse."""
    spec = PRMSpec(head="tokcls", step_tag="a", step_join="")
    with pytest.raises(ConfigError, match="same token"):
        encode(spec, tok, "q", ["b", "c"])
