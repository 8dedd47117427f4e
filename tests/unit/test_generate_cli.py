"""``prmkit generate``: inputs, Trace output, meta, answer extraction, errors; chat rendering."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prmkit.cli import main
from prmkit.errors import ConfigError, ModelLoadError
from prmkit.generate.chat import (
    STEP_SEPARATOR,
    encode_prefix,
    find_step_end,
    render_prefix,
    render_solution,
    separator_ids,
)
from prmkit.generate.protocol import Prefix
from prmkit.records import Problem, Trace, read_records, write_records
from prmkit.steps import split
from prmkit.tasks import read_problems
from prmkit.tasks.answers import extract_answer


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("a\n\nb", 1),
        ("3 + 4 = 7.\n\nThe", 10),
        ("\n\nlead\n\nx", 6),  # leading blank lines never make an empty step
        ("a \n \nb", 2),  # boundary with spaces between the newlines
        ("a\nb", None),
        ("abc", None),
        (" \n\n ", None),
        ("", None),
        ("x.\n\n\n\ny", 2),
    ],
)
def test_find_step_end(text, cut):
    assert find_step_end(text) == cut


@given(st.text(alphabet="ab .\n\t", max_size=30))
def test_step_end_agrees_with_steps_split(text):
    cut = find_step_end(text)
    steps = split(text).steps
    if cut is None:
        assert len(steps) <= 1
    else:
        assert steps[0] == text[:cut].strip()
        assert len(steps) >= 2 or not text[cut:].strip()


def test_render_and_encode_prefix(smol_tokenizer):
    bare = Prefix("What is 2+3?")
    with_steps = Prefix("What is 2+3?", ("2 + 3 = 5.", "So 5."))
    head = render_prefix(smol_tokenizer, bare)
    assert head.endswith("<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
    assert render_prefix(smol_tokenizer, with_steps) == head + "2 + 3 = 5.\n\nSo 5.\n\n"
    ids = encode_prefix(smol_tokenizer, with_steps)
    assert smol_tokenizer.decode(ids) == render_prefix(smol_tokenizer, with_steps)
    assert ids[: len(encode_prefix(smol_tokenizer, bare))] == encode_prefix(smol_tokenizer, bare)
    # the separator as it tokenizes between steps: "\n", "\n" (not the end-of-text "\n\n")
    assert smol_tokenizer.convert_ids_to_tokens(separator_ids(smol_tokenizer)) == ["Ċ", "Ċ"]
    whole = smol_tokenizer.encode(
        render_prefix(smol_tokenizer, with_steps) + "Next", add_special_tokens=False
    )
    assert whole[: len(ids)] == ids


def test_render_solution_and_system(smol_tokenizer):
    prompt, completion = render_solution(smol_tokenizer, "Q?", ["s1.", "s2."], system="Be exact.")
    assert prompt.startswith("<|im_start|>system\nBe exact.<|im_end|>")
    assert completion == "s1." + STEP_SEPARATOR + "s2.<|im_end|>"


def test_no_chat_template_is_an_error(smol_tokenizer):
    plain = copy.deepcopy(smol_tokenizer)
    plain.chat_template = None
    with pytest.raises(ModelLoadError, match="no chat template"):
        render_prefix(plain, Prefix("x"))
    assert render_prefix(plain, Prefix("x", ("a.",)), chat=False) == "x\n\na.\n\n"


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("4 + 3 = 7.\n\nThe answer is 7.", "7"),
        ("The answer is 7.\n\nWait, the answer is: 8", "8"),
        ("so the answer is $\\frac{3}{4}$.", "\\frac{3}{4}"),
        ("Thus $\\boxed{\\frac{1}{2}}$ and the answer is 3.", "\\frac{1}{2}"),
        ("\\boxed{x^{2}+1}", "x^{2}+1"),
        ("The answer is -12.5.", "-12.5"),
        ("no final line", None),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_read_problems_accepts_records_and_plain_prompts(tmp_path):
    plain = tmp_path / "plain.jsonl"
    plain.write_text(
        json.dumps({"prompt": "1+1?", "answer": 2})
        + "\n"
        + json.dumps({"id": "b", "prompt": "2+2?"})
        + "\n"
    )
    got = read_problems(plain)
    assert [(p.id, p.prompt, p.answer) for p in got] == [("line1", "1+1?", "2"), ("b", "2+2?", "")]
    records = tmp_path / "problems.jsonl"
    write_records(records, [Problem(id="p0", prompt="3+3?", answer="6")])
    assert read_problems(records)[0].answer == "6"
    assert len(read_problems(plain, limit=1)) == 1


def test_generate_writes_traces(tmp_path, tiny_model_dir, capsys):
    problems = tmp_path / "problems.jsonl"
    records = [Problem(id=f"p{i}", prompt=f"What is {i} + 1?", answer=str(i + 1)) for i in range(3)]
    records[2].meta = {"task": "arithmetic"}  # gets the task's prompt template
    write_records(problems, records)
    out = tmp_path / "traces.jsonl"
    args = [
        "generate",
        f"problems={problems}",
        f"out={out}",
        "n=2",
        "sampling.temperature=1.0",
        "sampling.max_new_tokens=6",
        f"policy.model={tiny_model_dir}",
        "batch_size=3",
        "sampling.seed=5",
    ]
    assert main(args) == 0
    traces = read_records(out, Trace)
    assert "wrote" in capsys.readouterr().out
    assert {t.problem_id for t in traces} <= {"p0", "p1", "p2"}
    assert len(traces) >= 5  # an all-blank completion of 6 random tokens is (almost) impossible
    by_id = {p.id: p for p in records}
    for t in traces:
        meta = t.meta
        assert meta["sampling"]["temperature"] == 1.0 and meta["sampling"]["max_new_tokens"] == 6
        assert meta["completion_tokens"] == 6 and meta["finish_reason"] in ("length", "eos")
        assert meta["prompt_tokens"] > 0
        assert meta["reference_answer"] == by_id[t.problem_id].answer
        assert meta["segmentation"] == "double_newline"  # the step boundary travels with it
        assert t.id == f"{t.problem_id}-s{meta['sample_index']}"
        if t.problem_id == "p2":
            assert t.prompt.startswith("What is 2 + 1?\n") and "step by step" in t.prompt
        else:
            assert t.prompt == by_id[t.problem_id].prompt
    again = tmp_path / "again.jsonl"
    assert main([*args[:2], f"out={again}", *args[3:-2], "batch_size=64", "--seed", "5"]) == 0
    assert again.read_text() == out.read_text()  # batch size does not change the samples


def test_generate_rejects_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "1+1?"}) + "\n")
    assert main(["generate", f"problems={bad}", f"out={tmp_path / 'o.jsonl'}"]) == 1
    err = capsys.readouterr().err
    assert "no 'prompt'" in err and "prmkit problems" in err
    assert main(["generate", "out=x.jsonl"]) == 1
    assert "no problems file" in capsys.readouterr().err


class _Echo:
    """A Generator that answers every prefix with fixed texts and records the seeds it got."""

    def __init__(self, texts):
        self.texts, self.seeds = texts, []

    def sample(self, prompts, n, params):
        return self.continue_from([Prefix(p) for p in prompts], n, params)

    def continue_from(self, prefixes, n, params, stop="solution"):
        from prmkit.generate import Completion

        self.seeds.append(params.seed)
        return [
            [
                Completion(
                    text=self.texts[j % len(self.texts)],
                    prompt_tokens=3,
                    completion_tokens=5,
                    finish_reason="length" if j == 0 else "eos",
                )
                for j in range(n)
            ]
            for _ in prefixes
        ]


def test_generate_api_takes_problems_and_a_generator(tmp_path):
    from prmkit.generate import GenerateConfig, GenerateStats, SamplingParams, generate
    from prmkit.generate.sampling import row_seed

    problems = [Problem(id=f"p{i}", prompt=f"{i}+1?", answer=str(i + 1)) for i in range(5)]
    echo = _Echo(["1 + 1 = 2.\n\nThe answer is 2.", "  \n\n "])
    stats = GenerateStats()
    cfg = GenerateConfig(out=None, n=3, problems_per_call=2, limit=4)
    traces = generate(cfg, problems, generator=echo, stats=stats, progress=False)
    assert [t.id for t in traces] == [f"p{i}-s{j}" for i in range(4) for j in (0, 2)]
    assert traces[0].steps == ["1 + 1 = 2.", "The answer is 2."] and traces[0].answer == "2"
    assert traces[0].meta["sampling"] == {
        "temperature": 0.7,
        "top_p": 1.0,
        "top_k": 0,
        "max_new_tokens": 256,
        "seed": 0,
        "ignore_eos": False,
    }
    assert traces[0].meta["model"] == "smollm2" and traces[0].meta["backend"] == "transformers"
    assert echo.seeds == [row_seed(0, 0, 0), row_seed(0, 2, 0)]  # one seed per call of 2
    assert (stats.problems, stats.traces, stats.empty, stats.length, stats.tokens) == (
        4,
        8,
        4,
        4,
        60,
    )
    assert stats.summary() == (
        "8 traces for 4 problems (not written) (60 completion tokens; 4 hit max_new_tokens; "
        "4 empty completions skipped)"
    )
    assert list(tmp_path.iterdir()) == []  # out=None writes nothing
    # unseeded: every call unseeded; the file holds what is returned
    echo = _Echo(["a."])
    out = tmp_path / "t.jsonl"
    cfg = GenerateConfig(out=str(out), n=1, sampling=SamplingParams(seed=None))
    traces = generate(cfg, problems, generator=echo, progress=False)
    assert echo.seeds == [None, None] and read_records(out, Trace) == traces


def test_generate_api_refuses_missing_problems_and_a_remote_adapter():
    from prmkit.errors import ConfigError
    from prmkit.generate import GenerateConfig, generate
    from prmkit.models import PolicyConfig

    with pytest.raises(ConfigError, match="no problems file given"):
        generate(GenerateConfig(out=None))
    with pytest.raises(ConfigError, match="no problems given"):
        generate(GenerateConfig(out=None), [], generator=_Echo(["a."]))
    cfg = GenerateConfig(out=None, backend="openai", policy=PolicyConfig(adapter="x"))
    with pytest.raises(ConfigError, match=r"policy\.adapter needs backend=transformers"):
        generate(cfg, [Problem(id="p", prompt="q?", answer="1")])


def test_generate_config_groups_and_shortcut_flags():
    import argparse

    from prmkit.config import config_help, load_config, stage_config
    from prmkit.generate.cli import GenerateConfig, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = "--model m --adapter a --dtype bfloat16 --device cuda --temperature 0 --top-p 0.9"
    args = parser.parse_args(
        [*flags.split(), "--top-k", "5", "--max-new-tokens", "9", "--seed", "3"]
    )
    cfg = stage_config(GenerateConfig, args)
    keys = (
        "policy.model=m policy.adapter=a policy.dtype=bfloat16 policy.device=cuda "
        "sampling.temperature=0 sampling.top_p=0.9 sampling.top_k=5 sampling.max_new_tokens=9 "
        "sampling.seed=3"
    )
    assert cfg == load_config(GenerateConfig, None, keys.split())
    assert cfg.policy.model == "m" and cfg.sampling.max_new_tokens == 9
    defaults = GenerateConfig()
    assert (defaults.sampling.temperature, defaults.sampling.max_new_tokens) == (0.7, 256)
    assert (defaults.sampling.seed, defaults.policy.model, defaults.policy.dtype) == (
        0,
        "smollm2",
        "float32",
    )
    text = config_help(GenerateConfig)
    assert "  policy.model (str, default 'smollm2')" in text
    assert "  sampling.temperature (float, default 0.7, >= 0)" in text
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(GenerateConfig, None, ["temperature=0.5"])  # the key is sampling.temperature
