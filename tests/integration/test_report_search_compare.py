"""``prmkit report`` reads the search_vs_bon file that prmkit.search.compare really writes."""

from __future__ import annotations

import re

import pytest

from prmkit.evaluate.report import build_report, render_html

pytestmark = pytest.mark.integration


def _section(page: str, title: str) -> str:
    """The HTML from the <h2> with ``title`` to the next <h2>."""
    start = page.index(f"<h2>{title}")
    end = page.find("<h2>", start + 1)
    return page[start : end if end > 0 else len(page)]


def _points(svg: str) -> dict[str, tuple[float, float]]:
    """Marker title -> (x, y) of the circles (search points) of an SVG."""
    found = re.findall(
        r'<circle cx="([\d.]+)" cy="([\d.]+)" r="4" fill="[^"]+"><title>([^<]+)', svg
    )
    return {t: (float(x), float(y)) for x, y, t in found}


def test_report_reads_what_the_search_comparison_writes(tmp_path, smol_tokenizer):
    """The search_vs_bon schema the report needs is the one prmkit.search.compare writes."""
    import torch
    from transformers import LlamaConfig, LlamaForTokenClassification

    from prmkit.generate.protocol import SamplingParams
    from prmkit.generate.transformers_backend import TransformersGenerator
    from prmkit.io import write_json
    from prmkit.prm import PRMSpec
    from prmkit.prm.heads import PRM
    from prmkit.score import IncrementalPRMScorer
    from prmkit.search import SearchConfig, compare_with_best_of_n, search
    from prmkit.tasks.arithmetic import generate as arithmetic_problems
    from prmkit.testing import build_tiny_lm

    vocab = len(smol_tokenizer)
    lm = build_tiny_lm(vocab, seed=7)
    bias = torch.zeros(vocab)  # short digit "steps" separated by blank lines, sometimes EOS
    bias[smol_tokenizer.convert_tokens_to_ids(["1", "2", "Ġ=", "Ġ+", "ĊĊ"])] = 11.0
    bias[smol_tokenizer.eos_token_id] = 8.5
    lm.lm_head.register_forward_hook(lambda _m, _i, out: out + bias)
    policy = TransformersGenerator(lm, smol_tokenizer, batch_size=16)
    torch.manual_seed(0)
    head = LlamaForTokenClassification(
        LlamaConfig(
            vocab_size=vocab,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            num_labels=2,
        )
    ).eval()
    prm = PRM(spec=PRMSpec.from_format("trl", head="tokcls"), tokenizer=smol_tokenizer, model=head)
    scorer = IncrementalPRMScorer(prm)
    problems = arithmetic_problems(2, seed=0, min_steps=2, max_steps=2)
    cfg = SearchConfig(
        method="greedy",
        k=2,
        max_steps=3,
        step_tokens=12,
        sampling=SamplingParams(temperature=0.8, max_new_tokens=24, seed=3),
        aggregation="min",
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest on a loaded machine
    try:
        result, _, _ = compare_with_best_of_n(
            problems,
            policy,
            scorer,
            lambda p: search([p], policy, scorer, cfg)[0],
            method="greedy",
            settings={"k": 2},
            max_new_tokens=24,
        )
    finally:
        torch.set_num_threads(threads)
    write_json(tmp_path / "greedy_vs_bon.json", result)
    sec = _section(render_html(build_report(tmp_path)), "Search vs best-of-N")
    budget = result["budget"]
    tokens = f"<td>{budget['search_tokens'] / 2:.0f} / {budget['bon_tokens'] / 2:.0f}</td>"
    assert f"<td>greedy k=2</td><td>2</td><td>{result['search']['accuracy']:.1f}</td>" in sec
    assert tokens in sec and budget["search_tokens"] > 0
    assert len(_points(sec)) == 1
