"""TransformersGenerator: stops, prefix KV reuse, token accounting, seeds, padding, chunking.

The models are tiny random Llamas over the real SmolLM2 vocabulary. For the stop tests a forward
hook adds a fixed bias to the LM head's output, so the model mostly emits a handful of tokens
(digits, "=", newlines, EOS) and step boundaries appear within a few tokens - including boundaries
inside larger tokens such as " \\n\\n" and "\\n\\n ".
"""

from __future__ import annotations

import pytest
import torch

from prmkit.errors import ConfigError
from prmkit.generate.chat import STEP_BOUNDARY, encode_prefix, find_step_end
from prmkit.generate.protocol import Generator, Prefix, SamplingParams
from prmkit.generate.sampling import draw_uniforms, row_seed, sample_next
from prmkit.generate.transformers_backend import TransformersGenerator
from prmkit.testing import build_tiny_lm

FAVOURED = ["A", "Ġ=", "Ġ", "5", ".", "Ġ+", "Ċ", "ĊĊ", "ĠĊĊ", "ĊĊĠ"]

PREFIXES = [
    Prefix("What is 2+3?"),
    Prefix("Tom has 4 apples and buys 3 more. How many apples?", ("Tom buys 3: 4 + 3 = 7.",)),
    Prefix("Short.", ("One.", "Two.")),
]


def biased_lm(tokenizer, *, eos_bias: float, seed: int = 1):
    """A tiny random LM whose logits favour FAVOURED tokens (and EOS by ``eos_bias``)."""
    model = build_tiny_lm(len(tokenizer), seed=seed)
    bias = torch.zeros(len(tokenizer))
    bias[tokenizer.convert_tokens_to_ids(FAVOURED)] = 12.0
    bias[tokenizer.eos_token_id] = eos_bias
    model.lm_head.register_forward_hook(lambda _m, _i, out: out + bias)
    return model


@pytest.fixture(scope="module")
def steppy(smol_tokenizer):
    """Biased model, EOS rare: completions end at step boundaries."""
    return biased_lm(smol_tokenizer, eos_bias=8.0)


@pytest.fixture(scope="module")
def eosy(smol_tokenizer):
    """Biased model without newlines favoured more than EOS: solutions end at EOS."""
    return biased_lm(smol_tokenizer, eos_bias=12.0, seed=2)


def count_fed_tokens(model) -> list[int]:
    """Attach a hook counting the tokens fed through the embedding; returns the live counter."""
    fed = [0]

    def hook(_module, args):
        fed[0] += args[0].numel()

    model.model.embed_tokens.register_forward_pre_hook(hook)
    return fed


def test_is_a_generator(tiny_lm, smol_tokenizer):
    assert isinstance(TransformersGenerator(tiny_lm, smol_tokenizer), Generator)


def test_stop_at_step_cuts_exactly_at_the_boundary(steppy, smol_tokenizer):
    gen = TransformersGenerator(steppy, smol_tokenizer, batch_size=16)
    params = SamplingParams(temperature=1.0, max_new_tokens=40, seed=5)
    ids = [gen.encode(p) for p in PREFIXES]
    out = gen.generate_ids(ids, 12, params, stop="step")
    inside_larger_token = 0
    for group in out:
        for g in group:
            assert g.finish_reason == "stop", g
            full = gen._decode_text(g.token_ids)
            # the text is the step: non-blank, no boundary inside, and the boundary follows it
            assert g.text.strip() and find_step_end(g.text) is None
            assert full.startswith(g.text)
            assert STEP_BOUNDARY.match(full, len(g.text))
            # honest count: the last sampled token completed the boundary
            assert find_step_end(gen._decode_text(g.token_ids[:-1])) is None
            last = gen._decode_text(g.token_ids[-1:])
            inside_larger_token += last.strip("\n") != ""
    assert inside_larger_token > 0  # some boundary arrived inside " \n\n" or "\n\n "


def test_step_completion_texts_match_generate_ids(steppy, smol_tokenizer):
    gen = TransformersGenerator(steppy, smol_tokenizer)
    params = SamplingParams(temperature=1.0, max_new_tokens=40, seed=9)
    completions = gen.continue_from(PREFIXES, 3, params, stop="step")
    generated = gen.generate_ids([gen.encode(p) for p in PREFIXES], 3, params, stop="step")
    for comps, gens in zip(completions, generated, strict=True):
        for c, g in zip(comps, gens, strict=True):
            assert (c.text, c.completion_tokens, c.finish_reason) == (
                g.text,
                len(g.token_ids),
                g.finish_reason,
            )


def test_stop_at_solution_ends_at_eos_or_length(eosy, smol_tokenizer):
    gen = TransformersGenerator(eosy, smol_tokenizer)
    params = SamplingParams(temperature=1.0, max_new_tokens=12, seed=3)
    out = gen.generate_ids([gen.encode(p) for p in PREFIXES], 6, params, stop="solution")
    reasons = {g.finish_reason for group in out for g in group}
    assert reasons == {"eos", "length"}
    for g in (g for group in out for g in group):
        if g.finish_reason == "eos":
            assert g.token_ids[-1] == smol_tokenizer.eos_token_id
            assert smol_tokenizer.eos_token_id not in g.token_ids[:-1]
            assert g.text == gen._decode_text(g.token_ids[:-1])
        else:
            assert len(g.token_ids) == params.max_new_tokens
            assert g.text == gen._decode_text(g.token_ids)


def test_ignore_eos_runs_to_max_new_tokens(eosy, smol_tokenizer):
    gen = TransformersGenerator(eosy, smol_tokenizer)
    params = SamplingParams(temperature=1.0, max_new_tokens=10, seed=3, ignore_eos=True)
    out = gen.continue_from(PREFIXES[:1], 4, params)
    assert [c.completion_tokens for c in out[0]] == [10] * 4
    assert {c.finish_reason for c in out[0]} == {"length"}


def no_cache_reference(
    model, ids: list[int], params: SamplingParams, seed: int, i: int, j: int, eos: int
) -> list[int]:
    """The naive path, independent of the backend: re-run the whole sequence for every token."""
    uniforms = draw_uniforms([row_seed(seed, i, j)], params.max_new_tokens)
    tokens: list[int] = []
    with torch.inference_mode():
        for step in range(params.max_new_tokens):
            logits = model(input_ids=torch.tensor([ids + tokens])).logits[:, -1, :]
            token = int(
                sample_next(
                    logits,
                    uniforms[:, step],
                    temperature=params.temperature,
                    top_k=params.top_k,
                    top_p=params.top_p,
                )[0]
            )
            tokens.append(token)
            if token == eos:
                break
    return tokens


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_prefix_reuse_equals_naive_paths(tiny_lm, smol_tokenizer, temperature):
    params = SamplingParams(
        temperature=temperature, top_k=50, top_p=0.95, max_new_tokens=6, seed=11
    )
    shared = TransformersGenerator(tiny_lm, smol_tokenizer, batch_size=4)
    naive = TransformersGenerator(tiny_lm, smol_tokenizer, batch_size=64, share_prefix=False)
    ids = [shared.encode(p) for p in PREFIXES]
    a = shared.generate_ids(ids, 3, params)
    b = naive.generate_ids(ids, 3, params)
    assert [[g.token_ids for g in grp] for grp in a] == [[g.token_ids for g in grp] for grp in b]
    for i in (0, 2):
        for j in (0, 2):
            ref = no_cache_reference(tiny_lm, ids[i], params, 11, i, j, smol_tokenizer.eos_token_id)
            assert a[i][j].token_ids == ref
    if temperature == 1.0:  # sampled rows differ from each other
        assert len({tuple(g.token_ids) for g in a[0]}) == 3


def test_prefix_is_encoded_once_for_all_samples_and_chunks(smol_tokenizer):
    model = build_tiny_lm(len(smol_tokenizer), seed=3)
    fed = count_fed_tokens(model)
    gen = TransformersGenerator(model, smol_tokenizer, batch_size=5, prefill_batch_size=1)
    params = SamplingParams(temperature=1.0, max_new_tokens=5, seed=0, ignore_eos=True)
    ids = [gen.encode(p) for p in PREFIXES]
    out = gen.generate_ids(ids, 7, params)  # 21 rows in chunks of 5: prefixes straddle chunks
    decoded = sum(len(g.token_ids) - 1 for grp in out for g in grp)  # each fed back once
    assert fed[0] == sum(len(x) for x in ids) + decoded
    naive = TransformersGenerator(
        model, smol_tokenizer, batch_size=5, prefill_batch_size=1, share_prefix=False
    )
    fed[0] = 0
    naive.generate_ids(ids, 7, params)
    assert fed[0] == 7 * sum(len(x) for x in ids) + decoded


def test_chunking_and_kv_buffers_do_not_change_outputs(tiny_lm, smol_tokenizer):
    params = SamplingParams(temperature=1.0, max_new_tokens=5, seed=4)
    ids = [encode_prefix(smol_tokenizer, p) for p in PREFIXES]
    small = TransformersGenerator(tiny_lm, smol_tokenizer, batch_size=3, prefill_batch_size=2)
    large = TransformersGenerator(tiny_lm, smol_tokenizer, batch_size=64, preallocate=False)
    a, b = small.generate_ids(ids, 5, params), large.generate_ids(ids, 5, params)
    assert [len(grp) for grp in a] == [5, 5, 5]
    assert [[g.token_ids for g in grp] for grp in a] == [[g.token_ids for g in grp] for grp in b]


def test_left_padded_batch_equals_unbatched_greedy(tiny_lm, smol_tokenizer):
    gen = TransformersGenerator(tiny_lm, smol_tokenizer, batch_size=8)
    params = SamplingParams(temperature=0.0, max_new_tokens=8)
    lengths = {len(gen.encode(p)) for p in PREFIXES}
    assert len(lengths) == 3  # the batch really is padded
    together = gen.continue_from(PREFIXES, 1, params)
    alone = [gen.continue_from([p], 1, params)[0] for p in PREFIXES]
    assert [c[0].text for c in together] == [c[0].text for c in alone]
    ids = gen.encode(PREFIXES[1])
    ref = no_cache_reference(tiny_lm, ids, params, 0, 0, 0, smol_tokenizer.eos_token_id)
    assert gen.generate_ids([ids], 1, params)[0][0].token_ids == ref


def test_token_accounting(steppy, smol_tokenizer):
    gen = TransformersGenerator(steppy, smol_tokenizer)
    params = SamplingParams(temperature=1.0, max_new_tokens=30, seed=2)
    out = gen.continue_from(PREFIXES, 4, params, stop="step")
    for prefix, group in zip(PREFIXES, out, strict=True):
        # prompt tokens: the chat-rendered prefix; a trailing separator counts in its in-text
        # form ("\n", "\n"), one more token than the end-of-text form "\n\n"
        text_ids = smol_tokenizer.encode(gen_text := _render(gen, prefix), add_special_tokens=False)
        expected = len(text_ids) + (1 if gen_text.endswith("\n\n") else 0)
        assert {c.prompt_tokens for c in group} == {expected}
        for c in group:
            assert 1 <= c.completion_tokens <= params.max_new_tokens
            assert c.meta["seed"] == 2
    # counts add up: tokens fed = prefixes once + every sampled token but each row's last
    fed = count_fed_tokens(steppy)
    params = SamplingParams(temperature=1.0, max_new_tokens=30, seed=8)
    gen = TransformersGenerator(steppy, smol_tokenizer, prefill_batch_size=1)
    out = gen.continue_from(PREFIXES, 4, params, stop="step")
    prompt = sum(grp[0].prompt_tokens for grp in out)
    assert fed[0] == prompt + sum(c.completion_tokens - 1 for grp in out for c in grp)


def _render(gen, prefix):
    from prmkit.generate.chat import render_prefix

    return render_prefix(gen.tokenizer, prefix)


def test_seeds_make_runs_reproducible(tiny_lm, smol_tokenizer):
    gen = TransformersGenerator(tiny_lm, smol_tokenizer)
    texts = lambda out: [c.text for grp in out for c in grp]  # noqa: E731
    params = SamplingParams(temperature=1.0, max_new_tokens=6, seed=123)
    first = texts(gen.continue_from(PREFIXES[:2], 3, params))
    assert first == texts(gen.continue_from(PREFIXES[:2], 3, params))
    other = texts(
        gen.continue_from(
            PREFIXES[:2], 3, SamplingParams(temperature=1.0, max_new_tokens=6, seed=124)
        )
    )
    assert all(a != b for a, b in zip(first, other, strict=True))
    unseeded = SamplingParams(temperature=1.0, max_new_tokens=6, seed=None)
    torch.manual_seed(0)
    u1 = gen.continue_from(PREFIXES[:1], 2, unseeded)
    torch.manual_seed(0)
    u2 = gen.continue_from(PREFIXES[:1], 2, unseeded)
    assert texts(u1) == texts(u2) and isinstance(u1[0][0].meta["seed"], int)


@pytest.mark.parametrize(
    "bad",
    [{"temperature": -1.0}, {"top_p": 0.0}, {"top_k": -1}, {"max_new_tokens": 0}],
)
def test_invalid_params_raise_when_built(bad):
    """SamplingParams checks its ranges when built, before any generator sees it."""
    (name,) = bad
    with pytest.raises(ConfigError, match=f"'{name}' out of range"):
        SamplingParams(**bad)


def test_n_must_be_positive(tiny_lm, smol_tokenizer):
    with pytest.raises(ConfigError, match="'n'"):
        TransformersGenerator(tiny_lm, smol_tokenizer).sample(["x"], 0, SamplingParams())


def test_top_k_one_is_greedy():
    logits = torch.randn(4, 50)
    u = torch.rand(4, dtype=torch.float64)
    assert torch.equal(sample_next(logits, u, temperature=1.0, top_k=1), logits.argmax(-1))
    assert torch.equal(sample_next(logits, u, temperature=1.0, top_p=1e-6), logits.argmax(-1))


def test_sampling_follows_the_distribution():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]])).repeat(20000, 1)
    u = draw_uniforms([0], 20000)[0]
    picked = sample_next(logits, u, temperature=1.0)
    freq = torch.bincount(picked, minlength=3).double() / 20000
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.7], dtype=torch.float64), atol=0.015)
    nucleus = sample_next(logits, u, temperature=1.0, top_p=0.75)  # keeps 0.7 and 0.2
    assert set(nucleus.tolist()) == {1, 2}
