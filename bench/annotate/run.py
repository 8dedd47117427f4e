"""Annotation benchmark: Monte Carlo, binary search, OmegaPRM and SCAN against the exact checker.

Command (the recorded run is in docs/BENCHMARKS.md, "Annotation"):

    .venv/bin/python bench/annotate/run.py --adapter warmup --n-traces 20 --steps 8

Traces: built-in arithmetic problems with ``--steps`` operations (``--steps + 1`` steps with the
answer line), solved by the gold solution with one arithmetic slip injected at a random step (or
none, in ``--correct-share`` of the traces), carried through to the answer. So first errors are
spread over all positions and the exact checker knows each one.

Policy: SmolLM2-135M-Instruct with the warm-up LoRA adapter (``--adapter warmup`` trains or fetches
it with ``recipes/warmup.yaml``, the demo's recipe, so the cached adapter is shared;
``--adapter PATH`` uses a trained one; ``--adapter none`` the bare base model, which almost never
solves these problems).

Cost accounting: Monte Carlo k=16 draws every inner prefix's 16 rollouts into one store; k=4 and
k=8 read the first 4 / 8 of them and binary search reads the first k of its midpoints (rollouts are
i.i.d. samples, so a subset is an honest k-sample estimate, and one drawing serves every method).
Binary search, OmegaPRM and SCAN also roll out the bare problem (the root; SCAN's
``--sc-samples`` of it), and OmegaPRM draws new states for its tree. Each method's cost is what its
labels *used*: ``meta["annotation"]["rollouts"]`` and ``["policy_tokens"]``, summed over all its
records (OmegaPRM's extra tree traces included) and divided by the input traces.

Metrics: first-error accuracy (the predicted first wrong step, or "none", equals the exact one)
and step-label accuracy (hard labels at 0.5 over the steps both label, i.e. up to the first
error) against :class:`~prmkit.annotate.exact.ExactLabeler`, over the traces a method labelled;
``coverage`` is the share it labelled (binary search and OmegaPRM give ``null`` labels on a
problem no root rollout solves; SCAN on one below its self-confidence threshold).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from prmkit.annotate.binary_search import BinarySearchLabeler
from prmkit.annotate.checkers import ArithmeticStepChecker, TaskAnswerChecker
from prmkit.annotate.exact import ExactLabeler
from prmkit.annotate.montecarlo import MonteCarloLabeler
from prmkit.annotate.omega import OmegaPRMLabeler
from prmkit.annotate.rollouts import RolloutEngine
from prmkit.annotate.scan import ScanLabeler
from prmkit.annotate.store import RolloutStore
from prmkit.generate.protocol import SamplingParams
from prmkit.records import LabeledTrace, Problem, Trace


def make_traces(
    n: int, steps: int, correct_share: float, seed: int
) -> tuple[list[Problem], list[Trace]]:
    """Gold solutions with one injected slip each (the warm-up's task settings, ``steps`` ops)."""
    from prmkit.tasks.arithmetic import generate
    from prmkit.tasks.prompts import render_prompt

    problems = generate(
        n,
        seed=seed,
        min_steps=steps,
        max_steps=steps,
        ops=("+", "-", "*"),
        start_range=(2, 30),
        add_range=(1, 30),
        mul_range=(2, 5),
        max_value=300,
    )
    rng = random.Random(seed)
    traces = []
    for i, p in enumerate(problems):
        m = p.meta
        slip = -1 if rng.random() < correct_share else rng.randrange(steps)
        value, lines = m["start"], []
        for j, (op, x, clause) in enumerate(
            zip(m["ops"], m["operands"], m["clauses"], strict=True)
        ):
            exact = {"+": value + x, "-": value - x, "*": value * x}[op]
            result = exact + rng.choice([-10, -2, -1, 1, 2, 10]) if j == slip else exact
            lines.append(f"{clause}: {value} {op} {x} = {result}")
            value = result
        lines.append(f"The answer is {value}.")
        traces.append(
            Trace(
                id=f"bench-{i}",
                problem_id=p.id,
                prompt=render_prompt(p),
                steps=lines,
                answer=str(value),
            )
        )
    return problems, traces


def score(labeled: list[LabeledTrace], exact: list[LabeledTrace]) -> dict[str, float]:
    """First-error and step-label accuracy against the exact labels, and cost per trace.

    ``labeled`` may hold extra records after the input traces' (OmegaPRM's tree): they are
    scored by cost only. A record with no labels (an unsolvable or SCAN-filtered problem) is left
    out of the accuracies and counted in ``coverage`` (the share of traces labelled).
    """
    main = labeled[: len(exact)]
    kept = [
        (a, b) for a, b in zip(main, exact, strict=True) if any(x is not None for x in a.labels)
    ]
    fe = sum(a.first_error == b.first_error for a, b in kept)
    hits = total = 0
    for a, b in kept:
        for x, y in zip(a.labels, b.labels, strict=True):
            if x is not None and y is not None:
                hits += (x >= 0.5) == (y >= 0.5)
                total += 1
    n = len(exact)
    return {
        "first_error_acc": fe / max(1, len(kept)),
        "step_acc": hits / max(1, total),
        "coverage": len(kept) / n,
        "extra_traces": len(labeled) - n,
        "rollouts_per_trace": sum(t.meta["annotation"]["rollouts"] for t in labeled) / n,
        "tokens_per_trace": sum(t.meta["annotation"]["policy_tokens"] for t in labeled) / n,
    }


def _ints(text: str) -> list[int]:
    return sorted(int(k) for k in text.split(",") if k.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="smollm2")
    parser.add_argument("--adapter", default="warmup", help="'warmup', 'none' or an adapter dir")
    parser.add_argument(
        "--warmup-recipe", default="recipes/warmup.yaml", help="recipe for --adapter warmup"
    )
    parser.add_argument("--n-traces", type=int, default=20)
    parser.add_argument("--steps", type=int, default=8, help="operations per problem")
    parser.add_argument("--correct-share", type=float, default=0.15)
    parser.add_argument("--ks", default="4,8,16")
    parser.add_argument("--binary-ks", default="4,8")
    parser.add_argument("--omega-ks", default="8", help="OmegaPRM k ('' to skip)")
    parser.add_argument("--omega-search-limit", type=int, default=4)
    parser.add_argument("--scan-ks", default="8", help="SCAN k ('' to skip)")
    parser.add_argument("--sc-samples", type=int, default=32, help="SCAN self-confidence samples")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--gen-batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--store", default="bench/annotate/rollouts.sqlite")
    parser.add_argument("--json", default="bench/annotate/results.json")
    args = parser.parse_args()

    from prmkit.generate.transformers_backend import TransformersGenerator

    adapter = None
    if args.adapter == "warmup":
        from prmkit.config import load_config
        from prmkit.policy import WarmupConfig, warmup_from_config

        adapter = warmup_from_config(load_config(WarmupConfig, args.warmup_recipe))
    elif args.adapter != "none":
        adapter = args.adapter
    problems, traces = make_traces(args.n_traces, args.steps, args.correct_share, args.seed)
    by_id = {p.id: p for p in problems}
    exact = ExactLabeler(ArithmeticStepChecker(), by_id).label(traces)
    generator = TransformersGenerator.from_pretrained(
        args.policy, adapter=adapter, batch_size=args.gen_batch_size
    )
    engine = RolloutEngine(
        generator,
        RolloutStore(args.store),
        TaskAnswerChecker(),
        by_id,
        seed=args.seed,
        params=SamplingParams(temperature=args.temperature, max_new_tokens=args.max_new_tokens),
        policy=f"{args.policy}+{adapter}",
        max_prefixes_per_call=16,
    )
    ks = sorted(int(k) for k in args.ks.split(","))
    started = time.monotonic()
    for done, trace in enumerate(traces, 1):  # draw k_max per trace (progress; resumable)
        MonteCarloLabeler(engine, k=ks[-1]).label([trace])
        print(
            f"\r{done}/{len(traces)} traces, {engine.drawn.rollouts} rollouts drawn, "
            f"{time.monotonic() - started:.0f}s",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    draw_s = time.monotonic() - started
    rows: dict[str, dict[str, float]] = {}
    for k in ks:
        rows[f"mc k={k}"] = score(MonteCarloLabeler(engine, k=k).label(traces), exact)
    for k in ks:
        rows[f"mc k={k} stop@0"] = score(
            MonteCarloLabeler(engine, k=k, stop_at_zero=True).label(traces), exact
        )
    for k in sorted(int(k) for k in args.binary_ks.split(",")):
        rows[f"binary k={k}"] = score(BinarySearchLabeler(engine, k=k).label(traces), exact)
    for k in _ints(args.omega_ks):
        rows[f"omega k={k}"] = score(
            OmegaPRMLabeler(engine, k=k, search_limit=args.omega_search_limit).label(traces), exact
        )
    for k in _ints(args.scan_ks):
        rows[f"scan k={k}"] = score(
            ScanLabeler(engine, k=k, sc_samples=args.sc_samples).label(traces), exact
        )
    fe_hist: dict[int, int] = {}
    for t in exact:
        fe_hist[t.first_error] = fe_hist.get(t.first_error, 0) + 1
    print(
        f"policy {args.policy} adapter {adapter}; {len(traces)} traces of {args.steps + 1} "
        f"steps; exact first errors {dict(sorted(fe_hist.items()))}; drew "
        f"{engine.drawn.rollouts} rollouts / {engine.drawn.policy_tokens} tokens in "
        f"{draw_s:.0f}s ({engine.drawn.policy_tokens / max(draw_s, 1e-9):.0f} tokens/s)"
    )
    print(
        f"{'method':<16}{'first-err acc':>14}{'step acc':>10}{'coverage':>10}{'extra':>7}"
        f"{'rollouts/tr':>13}{'tokens/tr':>11}{'vs mc k=8':>11}"
    )
    base = rows.get("mc k=8", next(iter(rows.values())))
    for name, r in rows.items():
        print(
            f"{name:<16}{r['first_error_acc']:>14.3f}{r['step_acc']:>10.3f}"
            f"{r['coverage']:>10.2f}{r['extra_traces']:>7}{r['rollouts_per_trace']:>13.1f}{r['tokens_per_trace']:>11.0f}"
            f"{r['rollouts_per_trace'] / max(base['rollouts_per_trace'], 1e-9):>10.0%}"
        )
    for k in sorted(int(k) for k in args.binary_ks.split(",")):
        r = rows[f"binary k={k}"]
        met = (
            r["first_error_acc"] >= base["first_error_acc"] - 0.02
            and r["rollouts_per_trace"] <= 0.35 * base["rollouts_per_trace"]
        )
        print(
            f"goal (binary k={k}: first-error acc >= mc k=8 - 2 points with <= 35% of its "
            f"rollouts): {'met' if met else 'not met'} (binary labels {r['coverage']:.0%} of "
            "the traces; the rest are unsolvable problems)"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {"args": vars(args), "adapter": str(adapter), "draw_seconds": draw_s, "rows": rows},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
