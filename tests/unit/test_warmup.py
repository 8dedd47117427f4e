"""Tests of the policy warm-up: loss masking, LoRA training, the adapter cache, merged loading."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from prmkit.errors import ConfigError, ModelLoadError
from prmkit.tasks.arithmetic import build_problem, generate

TINY = {  # a handful of short examples, a tiny LoRA: seconds on CPU
    "n_examples": 8,
    "min_steps": 2,
    "max_steps": 2,
    "lora_r": 4,
    "lora_alpha": 8,
    "lr": 1e-2,
    "batch_size": 4,
    "warmup_steps": 0,
    "progress": False,
}


def test_example_masks_exactly_the_prompt(smol_tokenizer):
    from prmkit.generate.chat import encode_prefix
    from prmkit.generate.protocol import Prefix
    from prmkit.policy.lora import build_example
    from prmkit.tasks.prompts import render_prompt

    problem = build_problem(12, [("+", 5), ("-", 3)], id="p")
    ex = build_example(smol_tokenizer, problem)
    prompt_ids = encode_prefix(smol_tokenizer, Prefix(render_prompt(problem)))
    n = len(prompt_ids)
    # the prompt is tokenized exactly as the generator encodes it at inference
    assert ex.input_ids[:n] == prompt_ids
    assert ex.n_prompt == n
    # labels: -100 on every prompt position, the token itself on every solution position
    assert ex.labels == [-100] * n + ex.input_ids[n:]
    solution = smol_tokenizer.decode(ex.input_ids[n:])
    assert solution == (
        "He buys 5 more: 12 + 5 = 17\n\nHe gives away 3: 17 - 3 = 14\n\nThe answer is 14.<|im_end|>"
    )
    assert ex.input_ids[-1] == smol_tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_collate_and_loss_use_only_labelled_positions(smol_tokenizer, tiny_lm):
    import torch

    from prmkit.policy.lora import _collate, _loss, build_example

    problems = generate(2, seed=3, min_steps=2, max_steps=3)
    batch = [build_example(smol_tokenizer, p) for p in problems]
    ids, mask, labels = _collate(batch, pad_id=0)
    width = max(len(e.input_ids) for e in batch)
    assert ids.shape == mask.shape == labels.shape == (2, width)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        assert mask[row].tolist() == [1] * n + [0] * (width - n)
        assert labels[row].tolist() == e.labels + [-100] * (width - n)
        assert (labels[row] != -100).nonzero().flatten().tolist() == list(range(e.n_prompt, n))
    # the loss equals the plain causal-LM loss of the full logits at the labelled positions
    with torch.no_grad():
        ours = _loss(tiny_lm, ids, mask, labels)
        logits = tiny_lm(input_ids=ids, attention_mask=mask).logits
        ref = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]),
            labels[:, 1:].reshape(-1),
            ignore_index=-100,
        )
    assert torch.allclose(ours, ref, atol=1e-5)


def test_lora_trains_and_loss_goes_down(smol_tokenizer, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from prmkit.policy.lora import _collate, _loss, build_example, train_lora

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    base = {k: v.clone() for k, v in model.state_dict().items()}
    example = build_example(smol_tokenizer, generate(1, seed=1, min_steps=2, max_steps=2)[0])
    batch = _collate([example], pad_id=0)
    with torch.no_grad():
        before = float(_loss(model, *batch))
    peft_model, stats = train_lora(
        model,
        smol_tokenizer,
        [example] * 6,
        lora_r=8,
        lora_alpha=64,
        lr=3e-2,
        batch_size=1,
        warmup_steps=0,
        progress=False,
    )
    with torch.no_grad():
        after = float(_loss(peft_model.get_base_model(), *batch))
    assert stats.steps == 6 and stats.examples == 6
    # a random tiny LM cannot move far from uniform (tiny logits); the drop is seeded and steady
    assert after < before - 0.1, (before, after, stats.losses)
    assert stats.losses[-1] < stats.losses[0]
    assert stats.label_tokens == 6 * (len(example.labels) - example.n_prompt)
    assert stats.tokens == 6 * len(example.input_ids)
    # only LoRA weights changed; the base weights are frozen
    trained = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    merged = peft_model.merge_and_unload().state_dict()
    assert any(not (merged[k] == base[k]).all() for k in base if "proj" in k)
    assert all((merged[k] == base[k]).all() for k in base if "proj" not in k)


def test_lora_layers_limits_the_adapted_blocks(smol_tokenizer, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from prmkit.policy.lora import build_example, train_lora

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    examples = [build_example(smol_tokenizer, p) for p in generate(2, seed=1, max_steps=2)]
    peft_model, _ = train_lora(
        model, smol_tokenizer, examples, lora_r=2, lora_layers=1, progress=False
    )
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all(".layers.1." in n for n in names)  # the top block of two only
    with pytest.raises(ConfigError, match="lora_layers"):
        train_lora(model, smol_tokenizer, examples, lora_layers=3, progress=False)


def test_warmup_caches_then_hits_without_training(tiny_model_dir, tmp_path, caplog):
    from prmkit.policy.lora import INFO_FILE, read_info, warmup

    caplog.set_level(logging.INFO, logger="prmkit.policy")
    first = warmup(str(tiny_model_dir), cache_dir=tmp_path, **TINY)
    assert (first / "adapter_config.json").exists()
    assert (first / "adapter_model.safetensors").exists()
    info = read_info(first)
    assert info["stats"]["examples"] == 8 and info["stats"]["steps"] == 2
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp folder left behind
    stamp = (first / INFO_FILE).stat().st_mtime_ns
    assert "cache miss" in caplog.text
    caplog.clear()

    second = warmup(str(tiny_model_dir), cache_dir=tmp_path, **TINY)
    assert second == first
    assert "cache hit" in caplog.text and "cache miss" not in caplog.text
    assert "trained" not in caplog.text  # no training ran
    assert (first / INFO_FILE).stat().st_mtime_ns == stamp  # nothing rewritten
    caplog.clear()

    # any training setting changes the key: a miss, a second adapter
    third = warmup(str(tiny_model_dir), cache_dir=tmp_path, **{**TINY, "lr": 5e-3})
    assert third != first and "cache miss" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, third.name])


def test_warmup_key_ignores_threads_and_progress(tiny_model_dir, tmp_path):
    from prmkit.policy.lora import warmup

    first = warmup(str(tiny_model_dir), cache_dir=tmp_path, **TINY)
    assert (
        warmup(str(tiny_model_dir), cache_dir=tmp_path, threads=1, **{**TINY, "progress": True})
        == first
    )


def test_warmup_rejects_bad_settings(tiny_model_dir, tmp_path):
    from prmkit.policy.lora import warmup

    with pytest.raises(ConfigError, match="max_seq_len"):
        warmup(str(tiny_model_dir), cache_dir=tmp_path, **{**TINY, "max_seq_len": 16})
    with pytest.raises(ConfigError):
        warmup(str(tiny_model_dir), cache_dir=tmp_path, **{**TINY, "n_examples": 0})
    with pytest.raises(ModelLoadError):
        warmup(str(tmp_path / "nowhere"), cache_dir=tmp_path, **TINY)
    assert not any(tmp_path.glob("warmup-*"))


def test_load_policy_merges_the_adapter(tiny_model_dir, tmp_path, smol_tokenizer):
    import torch

    from prmkit.models import load_policy
    from prmkit.policy.lora import warmup

    adapter = warmup(str(tiny_model_dir), cache_dir=tmp_path, **TINY)
    base = load_policy(str(tiny_model_dir))
    policy = load_policy(str(tiny_model_dir), adapter=adapter)
    assert type(policy.model) is type(base.model)  # merged: a plain model, no peft wrapper
    assert not any("lora" in n for n, _ in policy.model.named_parameters())
    assert policy.source.endswith(f"+{adapter}")
    ids = torch.tensor([smol_tokenizer.encode("Tom has 12 apples.")])
    with torch.no_grad():
        a = base.model(ids).logits
        b = policy.model(ids).logits
    assert not torch.allclose(a, b, atol=1e-4)
    with pytest.raises(ModelLoadError, match="adapter"):
        load_policy(str(tiny_model_dir), adapter=tmp_path / "missing")


def test_evaluate_policy_counts_with_the_exact_checker():
    from prmkit.generate.protocol import Completion, SamplingParams
    from prmkit.policy.evaluate import evaluate_policy, heldout_problems
    from prmkit.tasks.arithmetic import gold_text

    problems = heldout_problems(2, seed=5, n_steps=3)

    class Scripted:  # a real Generator implementation whose outputs are known
        def sample(self, prompts, n, params: SamplingParams):
            gold = gold_text(problems[0]).split("\n\n")
            wrong_step1 = [gold[0], "He adds: 1 + 1 = 3", *gold[2:]]
            outs = [
                ["\n\n".join(gold), "\n\n".join(wrong_step1), "\n\n".join(gold), "oops"],
                ["1 + 1 = 2\n\nThe answer is 2.", "nothing", "5 * 5 = 24", "The answer is 2."],
            ]
            return [[Completion(t, 10, 5, "eos") for t in o] for o in outs]

        def continue_from(self, prefixes, n, params, stop="solution"):
            raise NotImplementedError

    r = evaluate_policy(Scripted(), problems, k=4)
    assert r.correct == 2
    assert r.pass_at_1 == pytest.approx((2 / 4 + 0) / 2)
    assert r.pass_at_k == 0.5
    assert r.maj_at_k == 0.5  # problem 0: gold answer twice; problem 1: '2' twice, wrong
    assert r.first_errors == {1: 1, 0: 5}
    assert r.no_answer == 3
    assert r.completion_tokens == 40
    assert "pass@4 50.0%" in r.summary()


def test_cli_config_keys_and_seed_clash():
    from prmkit.cli import main

    assert main(["warmup", "eval_seed=0", "seed=0"]) == 1
    assert main(["warmup", "no_such_key=1"]) == 1
    assert Path("recipes/warmup.yaml").exists()


def test_cli_trains_caches_and_evaluates(tiny_model_dir, tmp_path, capsys):
    from prmkit.cli import main
    from prmkit.config import load_config
    from prmkit.io import read_json
    from prmkit.policy import WarmupConfig, run_warmup, warmup_from_config

    args = [
        f"base={tiny_model_dir}",
        f"cache_dir={tmp_path / 'cache'}",
        "n_examples=4",
        "max_steps=2",
        "lora_r=2",
        "batch_size=2",
        "eval_problems=2",
        "eval_k=2",
        "eval_max_new_tokens=6",
        f"out={tmp_path / 'eval.json'}",
    ]
    assert main(["warmup", *args]) == 0
    printed = capsys.readouterr().out
    adapter = Path(printed.split("adapter: ")[1].split("\n")[0])
    assert adapter.parent == tmp_path / "cache" and (adapter / "adapter_config.json").exists()
    result = read_json(tmp_path / "eval.json")
    assert result["n_problems"] == 2 and result["k"] == 2
    assert sum(result["first_errors"].values()) + result["correct"] == 4
    # the eval keys are not part of the cache key: the config API finds the same adapter
    cfg = load_config(WarmupConfig, None, [a for a in args if not a.startswith(("eval", "out"))])
    assert warmup_from_config(cfg, progress=False) == adapter
    # the stage as a function: a cache hit, then the evaluation (none with eval_problems=0)
    assert run_warmup(replace(cfg, eval_problems=0), progress=False).adapter == adapter
    small = replace(cfg, eval_problems=1, eval_k=2, eval_max_new_tokens=4)
    result = run_warmup(small, progress=False)
    assert result.adapter == adapter and result.evaluation.n_problems == 1
    assert result.as_dict()["adapter"] == str(adapter) and result.as_dict()["k"] == 2
    with pytest.raises(ConfigError, match="held-out problems would be training problems"):
        run_warmup(replace(cfg, eval_seed=cfg.seed))


def test_package_warmup_is_the_function_even_after_the_module_is_imported():
    import prmkit.policy.lora  # noqa: F401  (the module that defines it)
    from prmkit.policy import warmup

    assert callable(warmup) and warmup.__module__ == "prmkit.policy.lora"
