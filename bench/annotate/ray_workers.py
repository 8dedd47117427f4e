"""Annotation throughput: one process vs Ray with 1 and 2 workers (SmolLM2-135M, CPU).

Command (the recorded run is in docs/BENCHMARKS.md, "Annotation on Ray"):

    .venv/bin/python bench/annotate/ray_workers.py --traces 16 --k 4

Each mode labels the same traces (built-in arithmetic problems, gold solutions) with Monte Carlo
into a fresh rollout store, so every mode draws every rollout:

* ``one process``: the baseline, ``prmkit annotate`` without Ray, torch on all ``--cores`` threads;
* ``ray 1 worker``: one worker actor with all the threads;
* ``ray 2 workers``: two actors with ``cores / 2`` threads each (cpus_per_worker likewise).

Time is the labelling only (``AnnotateResult.elapsed_s``: models loaded and workers started
before). It prints rollouts/s and generated tokens/s per mode and the ratios against the one-
process baseline measured in the same run, the CPU model and flags, and whether each mode's labels
equal the baseline's (sampling with a different thread count may differ in the last bits).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from prmkit.annotate import AnnotateConfig, annotate
from prmkit.cluster import RayConfig
from prmkit.generate.protocol import SamplingParams
from prmkit.models import PolicyConfig
from prmkit.models.precision import describe_machine
from prmkit.records import Trace
from prmkit.tasks.arithmetic import gold_solution, make_problem


def cpu_info() -> str:
    """CPU model and torch's CPU capability (:func:`prmkit.models.precision.describe_machine`)."""
    info = describe_machine()
    return f"{info['cpu']}; {info['cpu_capability']}"


def run_mode(name: str, traces, problems, args, workers: int, root: Path) -> dict:
    threads = args.cores if workers <= 1 else max(1, args.cores // workers)
    cfg = AnnotateConfig(
        method="mc",
        k=args.k,
        store=str(root / f"{name}.sqlite"),
        policy=PolicyConfig(model=args.policy, threads=threads),
        sampling=SamplingParams(max_new_tokens=args.max_new_tokens, seed=0),
        max_prefixes_per_call=args.prefixes_per_call,
        batch_traces=args.batch_traces,
        no_progress=True,
        ray=RayConfig(
            address="local" if workers else None,
            workers=workers,
            cpus_per_worker=args.cores / max(1, workers),
        ),
    )
    result = annotate(cfg, traces, problems)
    drawn = result.drawn
    return {
        "mode": name,
        "workers": workers,
        "threads_per_worker": threads,
        "seconds": result.elapsed_s,
        "rollouts": drawn.rollouts,
        "tokens": drawn.policy_tokens,
        "calls": drawn.calls,
        "rollouts_per_s": drawn.rollouts / result.elapsed_s,
        "tokens_per_s": drawn.policy_tokens / result.elapsed_s,
        "labels": [r.labels for r in result.records],
        "processes": result.workers.processes if result.workers else 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="operations per problem")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--prefixes-per-call", type=int, default=4)
    parser.add_argument("--batch-traces", type=int, default=4)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--policy", default="smollm2")
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    problems = [make_problem(29, i, n_steps=args.steps) for i in range(args.traces)]
    traces = [
        Trace(id=f"t{i}", problem_id=p.id, prompt=p.prompt, steps=gold_solution(p), answer=p.answer)
        for i, p in enumerate(problems)
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, workers in (("one process", 0), ("ray 1 worker", 1), ("ray 2 workers", 2)):
            rows.append(run_mode(name, traces, problems, args, workers, Path(tmp)))
            print(f"{name}: {rows[-1]['seconds']:.1f}s", flush=True)
    base = rows[0]
    print(f"\nCPU: {cpu_info()}; {args.cores} cores; policy {args.policy}")
    print(
        f"{args.traces} traces x {args.steps + 1} steps, MC k={args.k}, "
        f"{args.max_new_tokens} new tokens max, {args.prefixes_per_call} prefixes per call\n"
    )
    print(
        "| mode | threads/worker | calls | rollouts | tokens | s | rollouts/s | tokens/s "
        "| vs one process | labels = baseline |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['threads_per_worker']} | {r['calls']} | {r['rollouts']} | "
            f"{r['tokens']} | {r['seconds']:.1f} | {r['rollouts_per_s']:.2f} | "
            f"{r['tokens_per_s']:.1f} | {r['tokens_per_s'] / base['tokens_per_s']:.2f}x | "
            f"{r['labels'] == base['labels']} |"
        )
    one, two = rows[1], rows[2]
    print(f"\n2 workers vs 1 worker: {two['tokens_per_s'] / one['tokens_per_s']:.2f}x tokens/s")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"cpu": cpu_info(), "args": vars(args), "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
