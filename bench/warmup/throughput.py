"""Training throughput of the warm-up recipe variants, interleaved in one run (ratios vs fp32/all).

    .venv/bin/python bench/warmup/throughput.py [--batches 6] [--rounds 2] [--variants a,b]

Each variant trains a fresh LoRA on the same batches of gold solutions; tokens/s counts every
non-pad token (forward + backward). Variants: float32 vs bfloat16 autocast, LoRA on every block
vs the top 20 / top 15 blocks. bf16 variants run by default only where the CPU computes bf16
natively (emulated bf16 takes minutes per batch); name them in --variants to force them.
The machine (CPU model, capability, bf16 flags) is printed first.
"""

from __future__ import annotations

import argparse
import statistics

import torch


def main() -> None:
    from prmkit.models import load_base
    from prmkit.policy.lora import build_example, train_lora
    from prmkit.tasks.arithmetic import generate

    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="", help="comma-separated variant names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from prmkit.models.precision import describe_machine, native_bf16

    print(describe_machine(), flush=True)
    base = load_base("smollm2")
    state = {k: v.clone() for k, v in base.model.state_dict().items()}
    problems = generate(args.batches * args.batch_size, seed=7, min_steps=2, max_steps=6)
    examples = [build_example(base.tokenizer, p) for p in problems]
    variants = {
        "fp32 all-layers": {"bf16": False, "lora_layers": 0},
        "bf16 all-layers": {"bf16": True, "lora_layers": 0},
        "fp32 top-20": {"bf16": False, "lora_layers": 20},
        "fp32 top-15": {"bf16": False, "lora_layers": 15},
        "bf16 top-15": {"bf16": True, "lora_layers": 15},
    }
    if args.variants:
        variants = {k: variants[k] for k in args.variants.split(",")}
    elif not native_bf16():
        variants = {k: v for k, v in variants.items() if not v["bf16"]}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, kw in variants.items():
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(base.source)
            model.load_state_dict(state)
            _, stats = train_lora(
                model, base.tokenizer, examples, batch_size=args.batch_size, progress=False, **kw
            )
            rates[name].append(stats.tokens_per_s)
            print(
                f"{name:18s} {stats.tokens_per_s:7.1f} tok/s  ({stats.tokens} tokens, "
                f"{stats.wall_s:.1f} s)",
                flush=True,
            )
    ref = statistics.median(rates["fp32 all-layers"])
    print("\nvariant             median tok/s   ratio vs fp32 all-layers")
    for name, xs in rates.items():
        print(f"{name:18s} {statistics.median(xs):10.1f}   {statistics.median(xs) / ref:5.2f}x")


if __name__ == "__main__":
    main()
