"""Benchmark: one-pass PRM scoring vs one forward pass per step prefix, same model, same run.

Command (from the repo root):

    .venv/bin/python bench/score/bench_score.py --model smollm2 --traces 8 --rounds 2

Both methods score the same 10-step traces with the same PRM (SmolLM2-135M with a fresh 2-label
token-classification head, TRL stepwise format) and the same batch size; rounds are interleaved
so machine noise hits both. The baseline (what reward-hub and search-and-learn do for some
PRMs) runs one forward pass per step prefix and reads the last step's score. Prints steps/s for
each and the ratio, and checks that both give the same scores.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from prmkit.models.loading import resolve_model_path
from prmkit.prm import PRMSpec, encode
from prmkit.prm.heads import PRM, pad_batch, step_outputs, to_scores
from prmkit.records import Trace
from prmkit.score import PRMScorer, length_buckets


def make_traces(n: int, n_steps: int, seed: int = 0) -> list[Trace]:
    rng = random.Random(seed)
    traces = []
    for i in range(n):
        a = rng.randint(10, 99)
        steps = []
        for k in range(n_steps):
            b = rng.randint(2, 40)
            steps.append(f"Step {k + 1}: we add {b} to the running total {a} and get {a + b}.")
            a += b
        traces.append(
            Trace(
                id=f"t{i}",
                problem_id=f"p{i}",
                prompt=f"Start from a number and keep adding. Problem {i}:",
                steps=steps,
            )
        )
    return traces


def prefix_scores(prm: PRM, traces: list[Trace], batch_size: int) -> list[list[float]]:
    """The baseline: one forward pass per step prefix, reading only its last step."""
    jobs = [(t, k) for t, tr in enumerate(traces) for k in range(1, len(tr.steps) + 1)]
    encs = [encode(prm.spec, prm.tokenizer, traces[t].prompt, traces[t].steps[:k]) for t, k in jobs]
    out: list[list[float]] = [[0.0] * len(tr.steps) for tr in traces]
    with torch.inference_mode():
        for batch in length_buckets([len(e.input_ids) for e in encs], batch_size):
            chunk = [encs[i] for i in batch]
            ids, mask = pad_batch(chunk, prm.pad_id())
            values = step_outputs(prm, ids, mask, chunk)
            for i, v in zip(batch, values, strict=True):
                t, k = jobs[i]
                out[t][k - 1] = float(to_scores(prm.spec, v)[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--traces", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import AutoModelForTokenClassification

    from prmkit.models import load_tokenizer

    path = resolve_model_path(args.model)
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(str(path), num_labels=2).eval()
    prm = PRM(
        spec=PRMSpec.from_format("trl", head="tokcls"),
        tokenizer=load_tokenizer(args.model),
        model=model,
    )
    traces = make_traces(args.traces, args.steps)
    scorer = PRMScorer(prm, batch_size=args.batch_size)
    n_steps = sum(len(t.steps) for t in traces)
    tokens = sum(len(scorer.encode(t).input_ids) for t in traces)
    print(
        f"model {path.name}, {len(traces)} traces x {args.steps} steps, "
        f"{tokens / len(traces):.0f} tokens/trace, batch {args.batch_size}, "
        f"torch threads {torch.get_num_threads()}"
    )
    one = scorer.score(traces)  # warm-up and correctness check
    pre = prefix_scores(prm, traces, args.batch_size)
    worst = max(
        abs(a - b) for x, y in zip(one, pre, strict=True) for a, b in zip(x, y, strict=True)
    )
    print(f"max |one-pass - prefix| score difference: {worst:.2e}", flush=True)
    times: dict[str, list[float]] = {"one_pass": [], "per_prefix": []}
    for r in range(args.rounds):
        for name in ("one_pass", "per_prefix") if r % 2 == 0 else ("per_prefix", "one_pass"):
            start = time.perf_counter()
            if name == "one_pass":
                scorer.score(traces)
            else:
                prefix_scores(prm, traces, args.batch_size)
            times[name].append(time.perf_counter() - start)
            print(f"round {r + 1} {name}: {times[name][-1]:.2f}s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, t in med.items():
        print(f"{name:>10}: {n_steps / t:8.1f} steps/s (median of {args.rounds}: {t:.2f}s)")
    print(f"speed-up one_pass / per_prefix: {med['per_prefix'] / med['one_pass']:.1f}x")


if __name__ == "__main__":
    main()
