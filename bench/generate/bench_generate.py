"""Rollout throughput: prmkit's TransformersGenerator vs. a plain ``model.generate`` loop.

Workload: ``n`` (16) sampled rollouts of ``new_tokens`` (128) tokens each from one shared prefix
of exactly ``prefix_tokens`` (200) tokens, real SmolLM2-135M-Instruct (fp32) on CPU, temperature
0.7, no top-k/top-p, EOS disabled so every rollout has the full length.

* baseline: ``model.generate`` called once per sample (re-encodes the prefix 16 times, batch 1).
* prmkit:   one ``generate_ids`` call (prefix encoded once, KV cache shared, batch of 16).
* llama.cpp (optional, ``--llama-python``): llama-cpp-python on the same GGUF file, one
  ``create_completion`` per sample (it reuses the cached prompt prefix), in its own venv.

The backends run interleaved, ``--reps`` times, in one process run; the ratio is prmkit tokens/s
over baseline tokens/s per repetition (median reported).

Run:
    .venv/bin/python bench/generate/bench_generate.py --reps 2 \
        [--llama-python /tmp/llama-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import torch

from prmkit.generate.chat import encode_prefix
from prmkit.generate.protocol import Prefix, SamplingParams
from prmkit.generate.transformers_backend import TransformersGenerator
from prmkit.models import find_packaged_gguf, load_base

PROBLEM = (
    "A bakery sells muffins for 3 dollars each and cookies for 2 dollars each. On Monday it sold "
    "45 muffins and 60 cookies. On Tuesday it sold twice as many muffins as on Monday and 15 "
    "fewer cookies. On Wednesday it sold as many muffins as on Monday and Tuesday together, and "
    "half as many cookies as on Tuesday. The bakery pays 40 dollars a day in rent and 25 dollars "
    "a day for ingredients. How much profit did the bakery make over the three days? Show each "
    "step of your reasoning on its own line, and end with 'The answer is' and the number."
)
STEPS = (
    "On Monday the bakery sold 45 muffins for 45 * 3 = 135 dollars.",
    "It sold 60 cookies for 60 * 2 = 120 dollars, so Monday brought 135 + 120 = 255 dollars.",
    "On Tuesday it sold 2 * 45 = 90 muffins for 90 * 3 = 270 dollars.",
    "It sold 60 - 15 = 45 cookies for 45 * 2 = 90 dollars, so Tuesday brought 360 dollars.",
    "On Wednesday it sold 45 + 90 = 135 muffins for 135 * 3 = 405 dollars.",
)


def shared_prefix(tokenizer, length: int) -> list[int]:
    """Exactly ``length`` tokens: the chat-rendered problem and steps, cut at the end."""
    ids = encode_prefix(tokenizer, Prefix(PROBLEM, STEPS))
    if len(ids) < length:
        raise SystemExit(f"prefix has only {len(ids)} tokens; lower --prefix-tokens")
    return ids[:length]


def run_baseline(
    model, tokenizer, ids: list[int], n: int, new_tokens: int, temperature: float, seed: int
) -> tuple[float, int]:
    """``model.generate`` once per sample; returns (seconds, generated tokens)."""
    input_ids = torch.tensor([ids])
    mask = torch.ones_like(input_ids)
    tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for j in range(n):
            torch.manual_seed(seed + j)
            out = model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                do_sample=True,
                temperature=temperature,
                top_k=0,
                top_p=1.0,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
            tokens += out.shape[1] - len(ids)
    return time.perf_counter() - start, tokens


def run_prmkit(
    gen: TransformersGenerator,
    ids: list[int],
    n: int,
    new_tokens: int,
    temperature: float,
    seed: int,
) -> tuple[float, int]:
    """One ``generate_ids`` call for all samples; returns (seconds, generated tokens)."""
    params = SamplingParams(
        temperature=temperature, max_new_tokens=new_tokens, seed=seed, ignore_eos=True
    )
    start = time.perf_counter()
    out = gen.generate_ids([ids], n, params)
    seconds = time.perf_counter() - start
    return seconds, sum(len(g.token_ids) for g in out[0])


def run_llama(
    python: str,
    ids: list[int],
    n: int,
    new_tokens: int,
    temperature: float,
    seed: int,
    threads: int,
    eos_id: int,
) -> tuple[float, int]:
    job = {
        "gguf": str(find_packaged_gguf("smollm2")),
        "prompt_ids": ids,
        "n": n,
        "max_new_tokens": new_tokens,
        "temperature": temperature,
        "seed": seed,
        "threads": threads,
        "eos_id": eos_id,
    }
    worker = Path(__file__).with_name("llama_worker.py")
    done = subprocess.run(
        [python, str(worker), json.dumps(job)], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["seconds"], result["completion_tokens"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--prefix-tokens", type=int, default=200)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--baseline-samples",
        type=int,
        default=None,
        help="time the per-sample baselines (model.generate, llama.cpp) on only this "
        "many of the n samples (tokens/s is per sample; saves time on a busy machine)",
    )
    ap.add_argument(
        "--llama-python", default=None, help="python of a venv with llama-cpp-python (optional)"
    )
    args = ap.parse_args()

    base = load_base("smollm2")
    model, tokenizer = base.model, base.tokenizer
    gen = TransformersGenerator(model, tokenizer, batch_size=args.batch_size)
    ids = shared_prefix(tokenizer, args.prefix_tokens)
    threads = torch.get_num_threads()
    print(
        f"SmolLM2-135M fp32, torch threads {threads}, n={args.n}, prefix {len(ids)} tokens, "
        f"{args.new_tokens} new tokens, temperature {args.temperature}"
    )
    work = (ids, args.n, args.new_tokens, args.temperature)
    base_work = (ids, args.baseline_samples or args.n, args.new_tokens, args.temperature)
    run_prmkit(gen, ids, 2, 4, args.temperature, args.seed)  # warm-up (lazy inits)
    rates: dict[str, list[float]] = {"baseline": [], "prmkit": [], "llama.cpp": []}
    for rep in range(args.reps):
        seed = args.seed + rep
        runs = [
            ("baseline", partial(run_baseline, model, tokenizer, *base_work, seed)),
            ("prmkit", partial(run_prmkit, gen, *work, seed)),
        ]
        if args.llama_python:
            runs.append(
                (
                    "llama.cpp",
                    partial(
                        run_llama,
                        args.llama_python,
                        *base_work,
                        seed,
                        threads,
                        tokenizer.eos_token_id,
                    ),
                )
            )
        for name, fn in runs:
            seconds, tokens = fn()
            rates[name].append(tokens / seconds)
            print(
                f"rep {rep} {name:<10} {tokens:5d} tokens in {seconds:7.2f} s = "
                f"{tokens / seconds:7.1f} tokens/s",
                flush=True,
            )
    ratios = [p / b for p, b in zip(rates["prmkit"], rates["baseline"], strict=True)]
    print(
        f"prmkit / model.generate loop: median ratio {statistics.median(ratios):.2f}x "
        f"(per rep: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    if rates["llama.cpp"]:
        vs = [p / q for p, q in zip(rates["prmkit"], rates["llama.cpp"], strict=True)]
        print(
            f"prmkit / llama.cpp: median ratio {statistics.median(vs):.2f}x "
            f"(llama.cpp median {statistics.median(rates['llama.cpp']):.1f} tokens/s)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
