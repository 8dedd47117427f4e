"""Incremental PRM scoring in search: KV-cached prefix vs recompute, on SmolLM2-135M.

Workload: a search-like tree on one arithmetic problem: each round, ``width`` children of the
kept beam each add one gold-like step; the first child is kept. Both modes score exactly the
same states; the benchmark checks their scores agree, and prints PRM tokens and wall time of
each, measured interleaved (alternating repeats) in the same run, and the ratio.

    .venv/bin/python bench/search_incremental.py [--rounds 8] [--width 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from prmkit.models import load_base
from prmkit.prm import PRMSpec
from prmkit.prm.heads import PRM
from prmkit.score import IncrementalPRMScorer
from prmkit.tasks.arithmetic import generate, gold_solution


def run(scorer: IncrementalPRMScorer, prompt: str, steps: list[str], width: int):
    state, tokens, t0 = scorer.root(prompt), 0, time.perf_counter()
    for step in steps:
        kids = [[f"{step} (variant {j})" if j else step] for j in range(width)]
        out, cost = scorer.extend([(state, k) for k in kids])
        tokens += cost.prm_tokens
        state = out[0]
    return state, tokens, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    base = load_base("smollm2")
    spec = PRMSpec.from_format("math_shepherd", head="labeltok")
    prm = PRM(spec=spec, tokenizer=base.tokenizer, model=base.model.eval(), source="smollm2")
    problem = generate(1, seed=0, min_steps=args.rounds - 1, max_steps=args.rounds - 1)[0]
    steps = gold_solution(problem)[: args.rounds]
    kv = IncrementalPRMScorer(prm, mode="kv")
    rc = IncrementalPRMScorer(prm, mode="recompute")
    times = {"kv": [], "recompute": []}
    for _ in range(args.repeats):
        for name, scorer in (("kv", kv), ("recompute", rc)):
            state, tokens, dt = run(scorer, problem.prompt, steps, args.width)
            times[name].append(dt)
            if name == "kv":
                kv_state, kv_tokens = state, tokens
            else:
                rc_state, rc_tokens = state, tokens
    diff = max(abs(a - b) for a, b in zip(kv_state.scores, rc_state.scores, strict=True))
    best = {k: min(v) for k, v in times.items()}
    print(
        f"rounds={len(steps)} width={args.width} repeats={args.repeats} max|score diff|={diff:.2e}"
    )
    print(f"prm tokens: kv {kv_tokens}  recompute {rc_tokens}  ratio {rc_tokens / kv_tokens:.2f}x")
    print(
        f"wall (best of {args.repeats}): kv {best['kv']:.2f}s  recompute {best['recompute']:.2f}s"
        f"  speedup {best['recompute'] / best['kv']:.2f}x"
    )


if __name__ == "__main__":
    main()
