"""Annotation benchmark: MC, binary search, OmegaPRM, SCAN and a judge against the exact checker.

Command (the recorded runs are in docs/BENCHMARKS.md, "Annotation"):

    .venv/bin/python bench/annotate/run.py --adapter warmup --n-traces 20 --steps 8

``bench/annotate/cost_model.py`` reads the ``--json`` file and extrapolates the per-labelled-step
costs to a budget (e.g. 1M labelled steps at a given generation throughput).

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
``--sc-samples`` of it), and OmegaPRM draws new states for its tree. Each method's cost is the
distinct samples it *used* (drawn now or read from the store: the engine's
:class:`~prmkit.annotate.rollouts.Usage`, reset before each method): rollouts, their generated
(policy) tokens and the prompt/prefix tokens they were conditioned on. For every rollout method
this equals ``meta["annotation"]["rollouts"]`` / ``["policy_tokens"]`` summed over its records
(OmegaPRM's extra tree traces included; the script prints a line if it does not).

Judge (``--judge-votes``, default 5 as ``prmkit annotate``; 0 skips it): built as
``prmkit.annotate.build`` builds it, with the policy as its own judge, ``--judge-max-new-tokens``
per verdict. Its cost is verdict samples and judge tokens (counted in the rollout columns); a
trace with no valid vote gets no record, but its verdicts are still counted. The exact checker
is a row too (no samples). Verdicts are kept in the same store, so a rerun asks again only for
the missing ones.

Per labelled step: a *labelled step* is a step with a non-null label in any output record (the
input traces' and OmegaPRM's tree traces'), i.e. a step a PRM can be trained on. Monte Carlo
labels every step (after stop-at-zero, the steps up to the first zero); binary search, OmegaPRM,
SCAN, the judge and the exact checker label the steps up to and including the first error (all
of a trace with no error) and none of a trace they leave ``null`` (unsolvable, filtered). Costs
per labelled step are a method's total cost (null-labelled traces' spending included) divided by
its labelled steps.

Throughput: before the benchmark, ``--throughput-prefixes`` bare problems get
``--throughput-k`` rollouts each in one generator call with a seed the store never uses (so it is
always drawn, never read back), timed: generated tokens per wall second of this machine, the
figure ``cost_model.py`` prints as "measured".

Metrics: first-error accuracy (the predicted first wrong step, or "none", equals the exact one)
and step-label accuracy (hard labels at 0.5 over the steps both label, i.e. up to the first
error) against :class:`~prmkit.annotate.exact.ExactLabeler`, over the traces a method labelled;
``coverage`` is the share it labelled (binary search and OmegaPRM give ``null`` labels on a
problem no root rollout solves; SCAN on one below its self-confidence threshold).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

from prmkit.annotate.binary_search import BinarySearchLabeler
from prmkit.annotate.build import policy_name
from prmkit.annotate.checkers import ArithmeticStepChecker, TaskAnswerChecker
from prmkit.annotate.config import AnnotateConfig
from prmkit.annotate.exact import ExactLabeler
from prmkit.annotate.judge import JudgeLabeler
from prmkit.annotate.montecarlo import MonteCarloLabeler
from prmkit.annotate.omega import OmegaPRMLabeler
from prmkit.annotate.protocol import Labeler
from prmkit.annotate.rollouts import RolloutEngine, Usage
from prmkit.annotate.scan import ScanLabeler
from prmkit.annotate.store import RolloutStore, derive_seed
from prmkit.generate.protocol import Generator, Prefix, SamplingParams
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


def score(
    labeled: list[LabeledTrace], exact: list[LabeledTrace], used: Usage
) -> dict[str, float | None]:
    """Accuracy against the exact labels, and cost per input trace and per labelled step.

    ``labeled`` holds at most one record per input trace (matched by id; the judge leaves out a
    trace with no valid vote) and may hold extra records (OmegaPRM's tree), which count in the
    cost and the labelled steps only. A record with no labels (an unsolvable or SCAN-filtered
    problem) is left out of the accuracies and counted in ``coverage`` (the share of traces
    labelled). ``used``: the distinct samples the method used (its whole cost). The per-step
    costs are ``None`` when the method labelled no step.
    """
    by_id = {t.id: t for t in labeled}
    kept = [
        (by_id[b.id], b)
        for b in exact
        if b.id in by_id and any(x is not None for x in by_id[b.id].labels)
    ]
    fe = sum(a.first_error == b.first_error for a, b in kept)
    hits = total = 0
    for a, b in kept:
        for x, y in zip(a.labels, b.labels, strict=True):
            if x is not None and y is not None:
                hits += (x >= 0.5) == (y >= 0.5)
                total += 1
    n = len(exact)
    steps = sum(sum(x is not None for x in t.labels) for t in labeled)

    def per_step(amount: int) -> float | None:  # None: nothing labelled
        return amount / steps if steps else None

    return {
        "first_error_acc": fe / max(1, len(kept)),
        "step_acc": hits / max(1, total),
        "coverage": len(kept) / n,
        "extra_traces": len(labeled) - len(by_id.keys() & {b.id for b in exact}),
        "rollouts_per_trace": used.rollouts / n,
        "tokens_per_trace": used.policy_tokens / n,
        "rollouts": used.rollouts,
        "policy_tokens": used.policy_tokens,
        "prompt_tokens": used.prompt_tokens,
        "labelled_steps": steps,
        "labelled_steps_per_trace": steps / n,
        "rollouts_per_step": per_step(used.rollouts),
        "tokens_per_step": per_step(used.policy_tokens),
        "prompt_tokens_per_step": per_step(used.prompt_tokens),
        "record_rollouts": sum(t.meta["annotation"]["rollouts"] for t in labeled),
        "record_policy_tokens": sum(t.meta["annotation"]["policy_tokens"] for t in labeled),
    }


def measure_throughput(
    generator: Generator, traces: list[Trace], n_prefixes: int, k: int, params: SamplingParams
) -> dict[str, float]:
    """One timed generator call: ``k`` rollouts of each of ``n_prefixes`` bare problems."""
    prefixes = [Prefix(t.prompt) for t in traces[:n_prefixes]]
    started = time.monotonic()
    outs = generator.continue_from(prefixes, k, params, stop="solution")
    seconds = time.monotonic() - started
    completions = [c for row in outs for c in row]
    tokens = sum(c.completion_tokens for c in completions)
    return {
        "sequences": len(completions),
        "policy_tokens": tokens,
        "prompt_tokens": sum(c.prompt_tokens for c in completions),
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
    }


def machine() -> dict[str, object]:
    """What ran the benchmark: :func:`prmkit.models.precision.describe_machine` (CPU model,
    torch's CPU capability, bf16 flags, torch threads) plus the cores and the device."""
    from prmkit.models.precision import describe_machine

    return {**describe_machine(), "cores": os.cpu_count(), "device": "cpu"}


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _ints(text: str) -> list[int]:
    return sorted(int(k) for k in text.split(",") if k.strip())


def main() -> int:
    defaults = AnnotateConfig()
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
    parser.add_argument(
        "--judge-votes", type=int, default=defaults.votes, help="judge samples per trace (0 skips)"
    )
    parser.add_argument(
        "--judge-max-new-tokens",
        type=int,
        default=defaults.judge_max_new_tokens,
        help="judge reply cap",
    )
    parser.add_argument(
        "--throughput-prefixes",
        type=int,
        default=16,
        help="bare problems in the timed throughput call (0 skips it)",
    )
    parser.add_argument("--throughput-k", type=int, default=16, help="rollouts per prefix there")
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
    params = SamplingParams(temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    throughput = None
    if args.throughput_prefixes:
        throughput = measure_throughput(
            generator,
            traces,
            args.throughput_prefixes,
            args.throughput_k,
            replace(params, seed=derive_seed(args.seed, "throughput")),
        )
        print(
            f"throughput: {throughput['sequences']} rollouts, {throughput['policy_tokens']} "
            f"tokens in {throughput['seconds']:.0f}s ({throughput['tokens_per_s']:.0f} tokens/s)",
            file=sys.stderr,
        )
    store = RolloutStore(args.store)
    engine = RolloutEngine(
        generator,
        store,
        TaskAnswerChecker(),
        by_id,
        seed=args.seed,
        params=params,
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
    rows: dict[str, dict[str, float | None]] = {}

    def run(name: str, labeler: Labeler) -> None:
        """Label every trace with ``labeler``; score it on the samples it used (timed)."""
        engine.used = Usage()  # this method's distinct samples only
        drawn = engine.drawn.rollouts
        t0 = time.monotonic()
        out = labeler.label(traces)
        rows[name] = score(out, exact, engine.used)
        rows[name].update(seconds=time.monotonic() - t0, drawn=engine.drawn.rollouts - drawn)

    for k in ks:
        run(f"mc k={k}", MonteCarloLabeler(engine, k=k))
    for k in ks:
        run(f"mc k={k} stop@0", MonteCarloLabeler(engine, k=k, stop_at_zero=True))
    for k in _ints(args.binary_ks):
        run(f"binary k={k}", BinarySearchLabeler(engine, k=k))
    for k in _ints(args.omega_ks):
        run(f"omega k={k}", OmegaPRMLabeler(engine, k=k, search_limit=args.omega_search_limit))
    for k in _ints(args.scan_ks):
        run(f"scan k={k}", ScanLabeler(engine, k=k, sc_samples=args.sc_samples))
    if args.judge_votes:  # as prmkit.annotate.build builds it; the policy judges itself
        judge = JudgeLabeler(
            generator,
            store,
            by_id,
            votes=args.judge_votes,
            params=replace(params, max_new_tokens=args.judge_max_new_tokens),
            seed=args.seed,
            judge=policy_name(args.policy, None if adapter is None else str(adapter)),
            template=defaults.judge_template,
        )
        t0 = time.monotonic()
        out = judge.label(traces)
        name = f"judge votes={args.judge_votes}"
        rows[name] = score(out, exact, judge.used)
        rows[name].update(
            seconds=time.monotonic() - t0, drawn=judge.used.drawn, unlabelled=len(judge.unlabeled)
        )
    run("exact", ExactLabeler(ArithmeticStepChecker(), by_id))
    fe_hist: dict[int, int] = {}
    for t in exact:
        fe_hist[t.first_error] = fe_hist.get(t.first_error, 0) + 1
    steps_per_trace = sum(len(t.steps) for t in traces) / len(traces)
    print(
        f"policy {args.policy} adapter {adapter}; {len(traces)} traces of {steps_per_trace:g} "
        f"steps; exact first errors {dict(sorted(fe_hist.items()))}; drew "
        f"{engine.drawn.rollouts} rollouts / {engine.drawn.policy_tokens} tokens in "
        f"{draw_s:.0f}s ({engine.drawn.policy_tokens / max(draw_s, 1e-9):.0f} tokens/s)"
    )
    print(
        f"{'method':<16}{'first-err acc':>14}{'step acc':>10}{'coverage':>10}{'extra':>7}"
        f"{'rollouts/tr':>13}{'tokens/tr':>11}{'vs mc k=8':>11}"
        f"{'lab steps':>11}{'roll/step':>11}{'tok/step':>10}{'prompt/step':>13}"
    )
    base = rows.get("mc k=8", next(iter(rows.values())))
    for name, r in rows.items():
        print(
            f"{name:<16}{r['first_error_acc']:>14.3f}{r['step_acc']:>10.3f}"
            f"{r['coverage']:>10.2f}{r['extra_traces']:>7}{r['rollouts_per_trace']:>13.1f}"
            f"{r['tokens_per_trace']:>11.0f}"
            f"{r['rollouts_per_trace'] / max(base['rollouts_per_trace'], 1e-9):>10.0%}"
            f"{r['labelled_steps']:>11}{_num(r['rollouts_per_step'], 11, 2)}"
            f"{_num(r['tokens_per_step'], 10, 1)}{_num(r['prompt_tokens_per_step'], 13, 1)}"
        )
    for name, r in rows.items():
        if not name.startswith("judge") and (
            r["record_rollouts"] != r["rollouts"] or r["record_policy_tokens"] != r["policy_tokens"]
        ):
            print(
                f"note: {name}: records charge {r['record_rollouts']} rollouts / "
                f"{r['record_policy_tokens']} tokens, the distinct samples used are "
                f"{r['rollouts']} / {r['policy_tokens']} (the table shows the latter)"
            )
    for k in _ints(args.binary_ks):
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
            {
                "args": vars(args),
                "adapter": str(adapter),
                "machine": machine(),
                "n_traces": len(traces),
                "steps_per_trace": steps_per_trace,
                "draw_seconds": draw_s,
                "drawn": {
                    "rollouts": engine.drawn.rollouts,
                    "policy_tokens": engine.drawn.policy_tokens,
                },
                "throughput": throughput,
                "rows": rows,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
