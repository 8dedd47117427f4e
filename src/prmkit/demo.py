"""``prmkit demo``: the whole PRM life cycle on the embedded SmolLM2, small enough for 2 CPU cores.

Reads top to bottom: policy warm-up (cached) -> problems -> sampling -> exact step checks ->
automatic annotation (Monte Carlo, binary search) -> a probe-head PRM -> scoring -> best-of-N and
ProcessBench-style evaluation -> PRM-guided beam search -> the field's data formats -> report.
Every stage writes its records under ``out_dir``; sizes live in ``recipes/demo.yaml``, larger runs
in ``recipes/demo_large.yaml``.

Example:
    prmkit demo --config recipes/demo.yaml
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from prmkit.config import add_config_arguments, check_ranges, load_config, option, stage_config

__all__ = ["DemoConfig", "add_arguments", "run", "run_demo"]

LabelSource = Literal["exact", "mc", "binary", "synthetic", "exact+synthetic"]
LABEL_SOURCES: tuple[str, ...] = ("exact", "mc", "binary", "synthetic", "exact+synthetic")


@dataclass
class DemoConfig:
    """Sizes and settings of the demo run."""

    out_dir: str = option("runs/demo", "where every record, checkpoint and the report go")
    model: str = option("smollm2", "policy base model: 'smollm2' or a local HF directory")
    warmup_recipe: str = option("recipes/warmup.yaml", "warm-up recipe ('' = untuned policy)")
    n_eval_problems: int = option(20, "held-out 4-step problems for best-of-N")
    n_samples: int = option(16, "solutions sampled per held-out problem (N_max)")
    n_train_problems: int = option(24, "problems whose samples train the PRM")
    n_train_samples: int = option(4, "solutions sampled per PRM-training problem")
    n_steps: int = option(4, "operations per problem")
    temperature: float = option(0.7, "policy sampling temperature")
    max_new_tokens: int = option(160, "token budget of one solution")
    seed: int = option(2026, "seed of problems, sampling, rollouts and training")
    mc_k: int = option(4, "Monte Carlo rollouts per step prefix")
    binary_k: int = option(4, "binary-search rollouts per probed prefix")
    n_annotate: int = option(32, "PRM-training traces annotated by both MC and binary search")
    prm_labels: LabelSource = option(
        "exact",
        "labels the demo PRM trains on: 'exact' (the exact checker's, on every PRM-training "
        "trace), 'mc' / 'binary' (step 4's, on the n_annotate annotated traces), 'synthetic' "
        "(gold solutions with injected slips, exact-labelled, no sampling) or 'exact+synthetic'",
    )
    compare_labels: list[str] = option(
        [],
        "more label sources, each training its own PRM, evaluated the same way in a table "
        "(e.g. [mc, binary, synthetic]; the demo PRM above is the one search uses)",
    )
    synthetic_per_problem: int = option(
        4, "slipped gold solutions per PRM-training problem (synthetic labels)", ge=0
    )
    prm_features: Literal["hidden", "logprobs", "hidden+logprobs"] = option(
        "logprobs",
        "what the probe reads: the backbone's hidden state, its own token log-probability "
        "statistics, or both (docs/BENCHMARKS.md, 'PRMs that beat majority vote')",
    )
    prm_backbone: Literal["policy", "base"] = option(
        "policy", "the PRM's frozen backbone: the warmed-up policy, or the bare base model"
    )
    prm_epochs: int = option(60, "probe-head training epochs")
    prm_lr: float = option(1e-3, "probe-head learning rate", gt=0)
    prm_batch_size: int = option(8, "probe-head training batch (traces)", ge=1)
    prm_until_first_error: bool = option(
        True, "train on the steps up to the first error only (labels after it are dropped)"
    )
    probe_layer: int = option(
        16, "hidden_states layer the probe reads (blocks past it are not run; -1 = last)"
    )
    probe_hidden: int = option(0, "probe MLP width (0 = linear)")
    calibration_problems: int = option(
        0,
        "PRM-training problems held out of training to choose the PRM's threshold "
        "(0 = choose it on the training traces themselves, for runs too small to split)",
    )
    search_problems: int = option(4, "problems for the PRM-guided beam search")
    search_n: int = option(4, "beam search: beams per round")
    search_m: int = option(2, "beam search: beam width")
    search_step_tokens: int = option(48, "beam search: token budget of one step", ge=1)
    search_max_steps: int = option(7, "beam search: rounds (the last completes)", ge=1)
    serve_traces: int = option(
        8, "held-out traces scored through prmkit serve and compared with in-process", ge=1
    )
    data_dir: str = option("", "shared data folder ('' = $PRMKIT_DATA_DIR or ../shared/data)")

    def __post_init__(self) -> None:
        check_ranges(self)
        bad = [x for x in self.compare_labels if x not in LABEL_SOURCES]
        if bad:
            from prmkit.errors import ConfigError

            raise ConfigError(
                "unknown label sources in compare_labels",
                got=bad,
                expected=f"a list of {list(LABEL_SOURCES)}",
                fix="e.g. compare_labels=[mc,synthetic]",
            )


def _say(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _policy(cfg: DemoConfig) -> tuple[Any, str | None]:
    """The warmed-up policy as a Generator (warm-up cached under the prmkit cache dir)."""
    from prmkit.generate.transformers_backend import TransformersGenerator
    from prmkit.models import load_policy

    adapter = None
    if cfg.warmup_recipe:
        from prmkit.models.precision import resolve_bf16
        from prmkit.policy import WarmupConfig, warmup_from_config

        warm = load_config(WarmupConfig, cfg.warmup_recipe)
        dtype = "bfloat16 autocast" if resolve_bf16(warm.bf16) else "float32"
        print(f"warm-up precision: {dtype} (bf16={warm.bf16} in {cfg.warmup_recipe})")
        adapter = warmup_from_config(warm)
        print(f"policy adapter: {adapter}")
    policy = load_policy(cfg.model, adapter)
    generator = TransformersGenerator(policy.model, policy.tokenizer)
    return generator, str(adapter) if adapter else None


def _sample(
    generator: Any, problems: Sequence[Any], n: int, cfg: DemoConfig, seed: int
) -> list[Any]:
    """Sample ``n`` solutions per problem and return exact-labelled traces."""
    from prmkit.generate import traces_for
    from prmkit.generate.protocol import SamplingParams
    from prmkit.tasks.arithmetic_check import label_trace
    from prmkit.tasks.prompts import render_prompt

    params = SamplingParams(
        temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=seed
    )
    prompts = [render_prompt(p) for p in problems]
    out = generator.sample(prompts, n, params)
    labeled = []
    for problem, prompt, group in zip(problems, prompts, out, strict=True):
        traces, _ = traces_for(
            problem,
            prompt,
            group,
            params=params,
            strategy="double_newline",
            meta={"policy": "demo"},
        )
        for t in traces:
            t.meta["final_answer_correct"] = t.answer is not None and t.answer == problem.answer
            labeled.append(label_trace(problem, t))
    return labeled


def _policy_summary(problems: Sequence[Any], traces: Sequence[Any]) -> dict[str, Any]:
    """pass@1, pass@N and maj@N (the project's one implementation) and where errors start."""
    from prmkit.tasks.accuracy import Attempt, accuracy_at_k

    by_problem: dict[str, list[Any]] = {}
    for t in traces:
        check = t.meta["exact_check"]
        by_problem.setdefault(t.problem_id, []).append(
            Attempt(t.first_error == -1, check["final_answer"], check["answer_correct"])
        )
    acc = accuracy_at_k(by_problem.values())
    first_errors = Counter(t.first_error for t in traces if t.first_error >= 0)
    return {
        "pass@1": 100 * acc.pass_at_1,
        "pass@N": 100 * acc.pass_at_k,
        "maj@N": 100 * acc.maj_at_k,
        "first_errors": dict(sorted(first_errors.items())),
        "traces": len(traces),
    }


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run every stage; return the summary numbers (also written to ``out_dir``)."""
    from prmkit.io import write_json
    from prmkit.records import write_records
    from prmkit.tasks import arithmetic_problems

    start = time.perf_counter()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"config": asdict(cfg)}
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"   ({name}: {timings[name]:.1f} s)", flush=True)

    from prmkit.models.precision import describe_machine

    machine = describe_machine()
    summary["machine"] = machine
    print(
        f"machine: {machine['cpu']}, CPU capability {machine['cpu_capability']}, "
        f"native bf16 {'yes' if machine['native_bf16_cpu'] else 'no'}, "
        f"{machine['torch_threads']} torch threads; inference runs in float32",
        flush=True,
    )

    _say("1. policy: SmolLM2-135M-Instruct + cached warm-up LoRA")
    t0 = time.perf_counter()
    generator, adapter = _policy(cfg)
    summary["adapter"] = adapter
    lap("policy", t0)

    _say("2. problems: built-in arithmetic, held-out seeds")
    train_problems = arithmetic_problems(cfg.n_train_problems, seed=cfg.seed, n_steps=cfg.n_steps)
    eval_problems = arithmetic_problems(cfg.n_eval_problems, seed=cfg.seed + 1, n_steps=cfg.n_steps)
    write_records(out / "problems_train.jsonl", train_problems)
    write_records(out / "problems_eval.jsonl", eval_problems)
    print(f"{len(train_problems)} PRM-training and {len(eval_problems)} held-out problems; e.g.")
    print(f"   {eval_problems[0].prompt}")

    _say(f"3. generate: {cfg.n_samples} samples per held-out problem, exact-checked")
    t0 = time.perf_counter()
    eval_traces = _sample(generator, eval_problems, cfg.n_samples, cfg, seed=cfg.seed + 2)
    train_traces = _sample(generator, train_problems, cfg.n_train_samples, cfg, seed=cfg.seed + 3)
    write_records(out / "traces_eval.jsonl", eval_traces)
    write_records(out / "traces_train.jsonl", train_traces)
    policy = _policy_summary(eval_problems, eval_traces)
    summary["policy"] = policy
    write_json(
        out / "policy.json",
        {"benchmark": "policy", "n": cfg.n_samples, "problems": len(eval_problems), **policy},
    )
    print(
        f"pass@1 {policy['pass@1']:.1f}%  maj@{cfg.n_samples} {policy['maj@N']:.1f}%  "
        f"pass@{cfg.n_samples} {policy['pass@N']:.1f}%  over {policy['traces']} traces"
    )
    print(f"first wrong step (0-based) histogram: {policy['first_errors']}")
    example = next((t for t in eval_traces if t.first_error >= 0), eval_traces[0])
    print("a sampled solution, exact-checked:")
    for i, (step, label) in enumerate(zip(example.steps, example.labels, strict=True)):
        mark = {1.0: "ok ", 0.0: "BAD", None: " - "}[label]
        print(f"   [{mark}] step {i}: {step}")
    lap("generate", t0)

    summary["annotate"] = _annotate(cfg, generator, adapter, train_problems, train_traces, out, lap)
    summary["prm"] = _prm(cfg, out, train_traces, train_problems, eval_traces, adapter, lap)
    summary["search"] = _search(cfg, generator, eval_problems, out, lap)
    summary["serve"] = _serve(cfg, out, generator, lap)
    summary["formats"] = _formats(cfg, out, lap)

    _say("11. report")
    from prmkit.evaluate.report import write_report

    paths = write_report(out)
    print(f"wrote {', '.join(str(p) for p in paths)}")
    summary["timings_s"] = timings
    summary["total_s"] = round(time.perf_counter() - start, 1)
    write_json(out / "demo_summary.json", summary)
    print(f"\ndemo finished in {summary['total_s']:.0f} s; everything is under {out}/")
    return summary


def _annotate(cfg, generator, adapter, problems, traces, out, lap) -> dict[str, Any]:
    from prmkit.annotate.binary_search import BinarySearchLabeler
    from prmkit.annotate.checkers import TaskAnswerChecker
    from prmkit.annotate.montecarlo import MonteCarloLabeler
    from prmkit.annotate.rollouts import RolloutEngine
    from prmkit.annotate.store import RolloutStore
    from prmkit.generate.protocol import SamplingParams
    from prmkit.io import write_json
    from prmkit.records import Trace, write_records

    _say(
        f"4. annotate: Monte Carlo (k={cfg.mc_k}) and binary search (k={cfg.binary_k}) "
        "vs the exact checker"
    )
    t0 = time.perf_counter()
    chosen = traces[: cfg.n_annotate]
    plain = [Trace(**t.trace_fields()) for t in chosen]
    params = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    store = RolloutStore(out / "rollouts.sqlite")
    engine = RolloutEngine(
        generator,
        store,
        TaskAnswerChecker(),
        {p.id: p for p in problems},
        seed=cfg.seed,
        params=params,
        policy=f"{cfg.model}+{adapter}",
    )
    results = {}
    for name, labeler in (
        ("mc", MonteCarloLabeler(engine, k=cfg.mc_k)),
        ("binary", BinarySearchLabeler(engine, k=cfg.binary_k)),
    ):
        labeled = labeler.label(plain)
        write_records(out / f"labeled_{name}.jsonl", labeled)
        results[name] = _agreement(chosen, labeled)
    store.close()
    write_json(
        out / "annotation.json",
        {"benchmark": "annotation", "methods": results, "reference": "exact"},
    )
    print(
        f"{'method':<8} {'first-error acc':>16} {'step-label acc':>15} {'rollouts/trace':>15} "
        f"{'tokens/trace':>13} {'unlabelled':>10}"
    )
    for name, r in results.items():
        print(
            f"{name:<8} {r['first_error_acc']:>15.1f}% {r['step_acc']:>14.1f}% "
            f"{r['rollouts_per_trace']:>15.1f} {r['tokens_per_trace']:>13.0f} "
            f"{r['unlabelled']:>10}"
        )
    for name, r in results.items():
        cells = "  ".join(
            f"step {i}: {100 * a / max(c, 1):.0f}% of {c}" for i, (a, c) in r["by_position"].items()
        )
        print(f"{name} step-label agreement by position: {cells or 'none compared'}")
    lap("annotate", t0)
    return results


def _agreement(exact: Sequence[Any], labeled: Sequence[Any]) -> dict[str, Any]:
    """First-error and step-label agreement of automatic labels with the exact ones.

    Records with no labels (an unsolvable problem) are left out of the accuracies and counted in
    ``unlabelled``; their rollouts still count in the cost. ``by_position`` is the step-label
    agreement per 0-based step index (the steps both label), ``[agree, compared]``.
    """
    fe = steps = n_steps = rollouts = tokens = unlabelled = 0
    by_position: dict[int, list[int]] = {}
    for e, a in zip(exact, labeled, strict=True):
        rollouts += a.meta["annotation"]["rollouts"]
        tokens += a.meta["annotation"]["policy_tokens"]
        if all(y is None for y in a.labels):
            unlabelled += 1
            continue
        fe += e.first_error == a.first_error
        for i, (x, y) in enumerate(zip(e.labels, a.labels, strict=True)):
            if x is not None and y is not None:
                same = (x >= 0.5) == (y >= 0.5)
                steps += same
                n_steps += 1
                cell = by_position.setdefault(i, [0, 0])
                cell[0] += same
                cell[1] += 1
    n = max(len(exact), 1)
    return {
        "first_error_acc": 100 * fe / max(len(exact) - unlabelled, 1),
        "step_acc": 100 * steps / max(n_steps, 1),
        "by_position": {str(i): by_position[i] for i in sorted(by_position)},
        "rollouts_per_trace": rollouts / n,
        "tokens_per_trace": tokens / n,
        "traces": n,
        "unlabelled": unlabelled,
    }


def _prm_records(
    cfg: DemoConfig, out: Path, source: str, train_traces, train_problems, held: set[str]
) -> list[Any]:
    """The PRM-training records of one label source (never a calibration problem's)."""
    from prmkit.records import LabeledTrace, read_records
    from prmkit.tasks.arithmetic_slips import slip_traces

    records: list[Any] = []
    if source in ("exact", "exact+synthetic"):
        records += train_traces
    if source in ("mc", "binary"):
        records += read_records(out / f"labeled_{source}.jsonl", LabeledTrace)
    if source in ("synthetic", "exact+synthetic"):
        problems = [p for p in train_problems if p.id not in held]
        records += slip_traces(problems, cfg.synthetic_per_problem, seed=cfg.seed)
    # unsolvable problems' null labels teach nothing; calibration problems stay unseen
    return [t for t in records if t.problem_id not in held and any(y is not None for y in t.labels)]


def _train_prm(cfg: DemoConfig, out: Path, name: str, records, adapter: str | None) -> Any:
    """Train the probe PRM on ``records``; return (checkpoint dir, train report)."""
    from prmkit.records import write_records
    from prmkit.train import TrainConfig, train

    prm_dir = out / name
    data = out / f"{name}_train.jsonl"
    write_records(data, records)
    report = train(
        TrainConfig(
            data=str(data),
            out=str(prm_dir),
            overwrite=True,  # the demo's own checkpoint from an earlier run
            base=cfg.model,
            adapter=(adapter or "") if cfg.prm_backbone == "policy" else "",
            head="probe",
            probe_layer=cfg.probe_layer,
            probe_hidden=cfg.probe_hidden,
            probe_features=cfg.prm_features,
            until_first_error=cfg.prm_until_first_error,
            lr=cfg.prm_lr,
            epochs=cfg.prm_epochs,
            batch_size=cfg.prm_batch_size,
            seed=cfg.seed,
            eval_fraction=0.0,  # too few traces for a useful early-stopping split
            patience=0,
        ),
        log=lambda *a: None,
    )
    return prm_dir, report


def _evaluate_prm(
    cfg: DemoConfig,
    prm_dir: Path,
    eval_traces,
    calibration,
    held: set[str],
    shared: dict[str, Any] | None = None,
    train_traces: Sequence[Any] = (),
) -> dict[str, Any]:
    """Score held-out and calibration traces; best-of-N, step AUROC and first-error F1.

    ``shared``: the probe inputs of an earlier PRM with the same frozen backbone and spec (only
    the probe weights differ): this PRM scores from them instead of running the backbone again.
    Filled on the first call.
    """
    from prmkit.evaluate.best_of_n import best_of_n, group_problems
    from prmkit.evaluate.processbench import (
        Sample,
        ThresholdSelectionError,
        choose_threshold,
        evaluate_predictions,
        predictions_from_scores,
    )
    from prmkit.evaluate.step_metrics import step_metrics
    from prmkit.score.scorer import PRMScorer, to_scored

    scorer = PRMScorer.from_checkpoint(str(prm_dir))
    if shared is None or scorer.prm.spec.head != "probe":
        scored_eval = scorer.score_records(eval_traces, prm_name=str(prm_dir))
        scored_calibration = scorer.score_records(calibration, prm_name=str(prm_dir))
    else:
        spec = scorer.prm.spec.to_dict()
        if shared.get("spec") != spec:
            shared.update(
                spec=spec,
                eval=scorer.probe_inputs(eval_traces),
                calibration=scorer.probe_inputs(calibration),
            )
        scored_eval, scored_calibration = (
            [
                to_scored(t, s, str(prm_dir))
                for t, s in zip(traces, scorer.score_inputs(shared[key]), strict=True)
            ]
            for traces, key in ((eval_traces, "eval"), (calibration, "calibration"))
        )
    for t in scored_eval:  # best-of-N judges the final answer, as the field does
        t.meta["correct"] = t.meta["final_answer_correct"]
    bon = best_of_n(group_problems(scored_eval), seed=cfg.seed)
    threshold, calibration_f1, source = 0.5, None, ""
    candidates = [
        (scored_calibration, "calibration traces held out of PRM training (exact labels)")
    ]
    if held:  # a small split may hold no error-free trace: fall back to the training traces
        candidates.append((None, "the PRM-training traces (the calibration split cannot choose)"))
    for traces, where in candidates:
        if traces is None:
            traces = scorer.score_records(train_traces, prm_name=str(prm_dir))
        try:
            threshold, calibration_f1 = choose_threshold(
                [(t.first_error, t.step_scores) for t in traces]
            )
        except ThresholdSelectionError as exc:  # e.g. an untuned policy never solves one
            source = f"fixed 0.5: {exc.what}"
            continue
        source = where if held else "the PRM-training traces themselves (no held-out split)"
        break
    samples = [Sample(id=t.id, label=t.first_error, n_steps=len(t.steps)) for t in scored_eval]
    preds = predictions_from_scores({t.id: t for t in scored_eval}, samples, threshold)
    pb = evaluate_predictions({"arithmetic": samples}, preds)
    pb.update(threshold=threshold, threshold_source=source, calibration_f1=calibration_f1)
    return {
        "scored_eval": scored_eval,
        "scored_calibration": scored_calibration,
        "bon": bon,
        "processbench": pb,
        "steps": step_metrics(scored_eval),
    }


def _bon_line(bon: dict[str, Any], method: str) -> dict[str, Any]:
    """A method's accuracy and its difference from majority vote at N_max."""
    acc = bon["curves"][method][-1]
    diff = bon["vs_majority"][method][-1]
    return {"n": acc["n"], "acc": acc["mean"], "ci": acc["ci"], "diff": diff}


def _prm(
    cfg: DemoConfig, out: Path, train_traces, train_problems, eval_traces, adapter, lap
) -> dict[str, Any]:
    """Train the demo's probe PRM, score held-out traces, evaluate against exact labels."""
    from prmkit.io import write_json
    from prmkit.records import write_records

    layer = "last layer" if cfg.probe_layer == -1 else f"layer {cfg.probe_layer}"
    feats = {
        "hidden": f"{layer} hidden state",
        "logprobs": "its own token log-probabilities",
        "hidden+logprobs": f"{layer} hidden state and token log-probabilities",
    }[cfg.prm_features]
    backbone = "the warmed-up policy" if cfg.prm_backbone == "policy" and adapter else cfg.model
    _say(f"5. train: a probe-head PRM on the {cfg.prm_labels} labels (frozen {backbone}, {feats})")
    t0 = time.perf_counter()
    problem_ids = list(dict.fromkeys(t.problem_id for t in train_traces))
    n_held = min(max(cfg.calibration_problems, 0), max(len(problem_ids) - 1, 0))
    held = set(problem_ids[len(problem_ids) - n_held :]) if n_held else set()
    calibration = [t for t in train_traces if t.problem_id in held] if held else train_traces
    records = _prm_records(cfg, out, cfg.prm_labels, train_traces, train_problems, held)
    prm_dir, report = _train_prm(cfg, out, "prm", records, adapter)
    kept = (
        f"{len(calibration)} traces of {len(held)} other problems kept for the threshold"
        if held
        else "threshold chosen on these same traces"
    )
    print(
        f"trained on {report['data']['steps_labeled']} step labels of "
        f"{report['train_traces']} traces ({kept}); checkpoint {prm_dir} (safetensors + "
        f"prm_spec.json + tokenizer); train report: {prm_dir / 'train_report.json'}"
    )
    lap("train", t0)

    _say("6. score: every step of every held-out trace, one forward pass per trace")
    t0 = time.perf_counter()
    shared: dict[str, Any] = {}  # probe inputs, reused by PRMs on the same backbone and spec
    training = [t for t in train_traces if t.problem_id not in held]
    result = _evaluate_prm(cfg, prm_dir, eval_traces, calibration, held, shared, training)
    write_records(out / "scored_eval.jsonl", result["scored_eval"])
    write_records(out / "scored_calibration.jsonl", result["scored_calibration"])
    steps = sum(len(t.steps) for t in result["scored_eval"])
    print(f"scored {len(result['scored_eval'])} traces, {steps} steps")
    lap("score", t0)

    _say("7. evaluate: best-of-N and ProcessBench-style first-error F1 vs the exact checker")
    t0 = time.perf_counter()
    bon, pb, metrics = result["bon"], result["processbench"], result["steps"]
    write_json(out / "bon.json", {"benchmark": "bon", **bon})
    write_json(out / "processbench_arithmetic.json", {"benchmark": "processbench", **pb})
    write_json(out / "steps.json", {"benchmark": "steps", **metrics})
    last = {m: c[-1] for m, c in bon["curves"].items()}
    n_max = last["majority"]["n"]
    print(
        f"N = {n_max}, {bon['n_problems']} problems:  pass@1 {bon['pass@1']['mean']:.1f}%  "
        + "  ".join(f"{m} {c['mean']:.1f}%" for m, c in last.items())
    )
    verdicts = {}
    for method in ("prm_min", "weighted_min"):
        line = _bon_line(bon, method)
        d = line["diff"]
        verdicts[method] = d
        lo, hi = d["ci"]
        verdict = (
            "significant: the interval is above 0"
            if d["significant"]
            else f"NOT significant at {bon['n_problems']} problems: the interval includes 0 "
            "(recipes/verify_large.yaml measures it on 100 problems)"
        )
        print(
            f"{method} - majority@{n_max}: {d['mean']:+.1f} points, 95% paired bootstrap CI "
            f"[{lo:+.1f}, {hi:+.1f}]; {verdict}"
        )
    sub = pb["subsets"]["arithmetic"]
    print(
        f"threshold {pb['threshold']:.3f} from {pb['threshold_source']} (F1 there "
        f"{_pct(pb['calibration_f1'])}); held-out: acc_error {_pct(sub['acc_error'])}  "
        f"acc_correct {_pct(sub['acc_correct'])}  F1 {_pct(sub['f1'])}"
    )
    print(f"step AUROC {_num(metrics['auroc'])}  ECE {_num(metrics['ece'])}")
    sources = {cfg.prm_labels: _source_row(cfg.prm_labels, records, result)}
    for source in cfg.compare_labels:
        if source == cfg.prm_labels:
            continue
        name = "prm_" + source.replace("+", "_")
        records = _prm_records(cfg, out, source, train_traces, train_problems, held)
        if not records:
            print(f"label source {source}: no labelled traces; skipped")
            continue
        prm_dir, _ = _train_prm(cfg, out, name, records, adapter)
        other = _evaluate_prm(cfg, prm_dir, eval_traces, calibration, held, shared, training)
        sources[source] = _source_row(source, records, other)
    if len(sources) > 1:
        print(
            "label source comparison (each its own PRM; same held-out traces and threshold rule):"
        )
        print(
            f"{'labels':<16} {'traces':>7} {'AUROC':>6} {'F1':>6} {'prm_min':>8} "
            f"{'weighted':>8} {'prm-maj [95% CI]':>24}"
        )
        for source, r in sources.items():
            lo, hi = r["prm_min_vs_majority"]["ci"]
            print(
                f"{source:<16} {r['traces']:>7} {_num(r['auroc']):>6} {_pct(r['f1']):>6} "
                f"{r['prm_min']:>7.1f}% {r['weighted_min']:>7.1f}% "
                f"{r['prm_min_vs_majority']['mean']:>+6.1f} [{lo:+.1f}, {hi:+.1f}]"
            )
    write_json(out / "label_sources.json", {"benchmark": "label_sources", "sources": sources})
    lap("evaluate", t0)
    return {
        "bon_last": last,
        "pass@1": bon["pass@1"]["mean"],
        "vs_majority": verdicts,
        "processbench": sub,
        "threshold": pb["threshold"],
        "auroc": metrics["auroc"],
        "label_sources": sources,
    }


def _source_row(source: str, records, result: dict[str, Any]) -> dict[str, Any]:
    bon = result["bon"]
    return {
        "traces": len(records),
        "auroc": result["steps"]["auroc"],
        "f1": result["processbench"]["subsets"]["arithmetic"]["f1"],
        "majority": bon["curves"]["majority"][-1]["mean"],
        "prm_min": bon["curves"]["prm_min"][-1]["mean"],
        "weighted_min": bon["curves"]["weighted_min"][-1]["mean"],
        "prm_min_vs_majority": bon["vs_majority"]["prm_min"][-1],
        "weighted_min_vs_majority": bon["vs_majority"]["weighted_min"][-1],
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _search(cfg: DemoConfig, generator, problems, out: Path, lap) -> dict[str, Any]:
    """A small PRM-guided beam search, compared with best-of-N at the same policy tokens."""
    from prmkit.generate.protocol import SamplingParams
    from prmkit.io import write_json
    from prmkit.prm.checkpoint import load_prm
    from prmkit.records import write_records
    from prmkit.score import IncrementalPRMScorer
    from prmkit.search import SearchConfig, compare_with_best_of_n, search

    _say(
        f"8. search: step-level beam search (N={cfg.search_n}, M={cfg.search_m}) vs best-of-N "
        "at equal policy tokens"
    )
    t0 = time.perf_counter()
    scorer = IncrementalPRMScorer(load_prm(str(out / "prm")))
    search_cfg = SearchConfig(
        method="beam",
        n=cfg.search_n,
        m=cfg.search_m,
        max_steps=cfg.search_max_steps,
        step_tokens=cfg.search_step_tokens,
        sampling=SamplingParams(
            temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed
        ),
        aggregation="min",
    )

    def beam(problem: Any) -> Any:
        return search([problem], generator, scorer, search_cfg)[0]

    result, records, bon_records = compare_with_best_of_n(
        problems[: cfg.search_problems],
        generator,
        scorer,
        beam,
        method="beam",
        aggregation="min",
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        seed=cfg.seed,
    )
    write_records(out / "search_beam.jsonl", records)
    write_records(out / "search_bon.jsonl", bon_records)
    write_json(out / "search_vs_bon.json", result)
    s, b = result["search"], result["best_of_n"]
    print(
        f"beam search {s['accuracy']:.1f}%  vs  best-of-N (PRM) {b['accuracy_prm']:.1f}% / "
        f"majority {b['accuracy_majority']:.1f}%  on {cfg.search_problems} problems"
    )
    lap("search", t0)
    return {"search": s, "best_of_n": b}


def _serve(cfg: DemoConfig, out: Path, generator: Any, lap) -> dict[str, Any]:
    """``prmkit serve`` on loopback: the client, /get_reward and /pooling equal in-process;
    ``prmkit serve-policy``'s app: OpenAI completions equal the in-process samples."""
    import httpx

    from prmkit.io import write_json
    from prmkit.models.loading import load_tokenizer
    from prmkit.prm import PRMSpec
    from prmkit.records import ScoredTrace, read_records
    from prmkit.score import PRMScorer, aggregate
    from prmkit.serve import (
        HTTPScorer,
        ServeConfig,
        VLLMPoolingScorer,
        create_app,
        serve_in_thread,
        serve_process,
    )
    from prmkit.testing import build_tiny_lm
    from prmkit.train.loop import build_prm

    _say(
        f"9. serve: prmkit serve on 127.0.0.1; {cfg.serve_traces} held-out traces through the "
        "client, /get_reward and /pooling vs in-process scores"
    )
    t0 = time.perf_counter()
    scored = read_records(out / "scored_eval.jsonl", ScoredTrace)[: cfg.serve_traces]
    want = [t.step_scores for t in scored]
    result: dict[str, Any] = {"traces": len(scored)}

    def gap(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> float:
        return max(abs(x - y) for u, v in zip(a, b, strict=True) for x, y in zip(u, v, strict=True))

    with serve_process(str(out / "prm"), threads=2) as (url, _):
        with HTTPScorer(url) as client:
            got = client.score(scored)
        result["client_max_diff"] = gap(got, want)
        print(
            f"{url}: POST /v1/score (HTTPScorer): max |served - in-process| "
            f"{result['client_max_diff']:.1e} over {sum(map(len, want))} steps"
        )
        joiner = "\n\n"  # the demo PRM's segmentation (double_newline) splits it back
        body = {
            "query": [t.prompt + joiner + joiner.join(t.steps) for t in scored],
            "prompts": [t.prompt for t in scored],
        }
        rewards = httpx.post(f"{url}/get_reward", json=body, timeout=120).json()["rewards"]
        result["get_reward_max_diff"] = max(
            abs(r - aggregate(w, "min")) for r, w in zip(rewards, want, strict=True)
        )
        print(
            f"POST /get_reward (OpenRLHF): max |reward - min of in-process| "
            f"{result['get_reward_max_diff']:.1e}"
        )
        refused = httpx.post(f"{url}/pooling", json={"input": "x", "task": "token_classify"})
        message = refused.json()["error"]["message"].split(";")[0]
        print(f"POST /pooling with this PRM: {refused.status_code}, {message}")
    # /pooling serves PRMs read from one joined text (Qwen2.5-Math-PRM's format): a small
    # random-weight one here, served from a thread of this process, to check the wire format
    tok = load_tokenizer(cfg.model)
    base = out / "prm_pooling_check_base"
    build_tiny_lm(len(tok), hidden=64, layers=2).save_pretrained(base)
    tok.save_pretrained(base)
    qwen = build_prm(PRMSpec.from_format("qwen_prm", head="tokcls"), str(base), add_tag_token=True)
    local = PRMScorer(qwen).score(scored)
    app = create_app(PRMScorer(qwen), ServeConfig(model_name="qwen-format-check"))
    with serve_in_thread(app) as url:
        pooled = VLLMPoolingScorer(
            url, spec=qwen.spec, tokenizer=qwen.tokenizer, model="qwen-format-check"
        )
        got = pooled.score(scored)
    result["pooling_max_diff"] = gap(got, local)
    print(
        f"POST /pooling (vLLM's API, VLLMPoolingScorer) with a random tiny PRM in "
        f"Qwen2.5-Math-PRM's format: max |served - in-process| {result['pooling_max_diff']:.1e}"
    )
    # the policy behind an OpenAI-compatible API (prmkit serve-policy's app, in a thread)
    from prmkit.generate.protocol import SamplingParams
    from prmkit.serve.policy_app import create_policy_app
    from prmkit.serve.policy_config import PolicyServeConfig

    ids = generator.tokenizer(scored[0].prompt, add_special_tokens=False)["input_ids"]
    app = create_policy_app(generator, PolicyServeConfig(model_name="policy"))
    body = {"model": "policy", "prompt": ids, "n": 2, "max_tokens": 8, "seed": cfg.seed}
    body.update(temperature=0.7, ignore_eos=True)
    with serve_in_thread(app) as url:
        served = httpx.post(f"{url}/v1/completions", json=body, timeout=120).json()["choices"]
    local = generator.generate_ids(
        [ids],
        2,
        SamplingParams(temperature=0.7, max_new_tokens=8, seed=cfg.seed, ignore_eos=True),
    )[0]
    result["policy_same_samples"] = [c["text"] for c in served] == [g.text for g in local]
    same = "the same samples as in-process" if result["policy_same_samples"] else "DIFFERENT"
    print(f"POST /v1/completions (prmkit serve-policy, OpenAI's API), n=2, seed {cfg.seed}: {same}")
    worst = max(
        result["client_max_diff"], result["get_reward_max_diff"], result["pooling_max_diff"]
    )
    result["equal"] = worst <= 1e-5 and result["policy_same_samples"]
    print("served answers equal in-process ones" if result["equal"] else "MISMATCH (see above)")
    write_json(out / "serve_check.json", result)
    lap("serve", t0)
    return result


def _formats(cfg: DemoConfig, out: Path, lap) -> dict[str, Any]:
    from prmkit.errors import DataFormatError
    from prmkit.formats import convert
    from prmkit.tasks.data import data_file

    _say("10. formats: the demo's labels to ProcessBench and TRL; shared data to prmkit records")
    t0 = time.perf_counter()
    result = {}
    jobs = [
        (
            "prmkit",
            "processbench",
            out / "traces_eval.jsonl",
            out / "traces_eval.processbench.json",
        ),
        ("prmkit", "trl", out / "traces_eval.jsonl", out / "traces_eval.trl.jsonl"),
    ]
    try:
        processbench = data_file("processbench/math.json", cfg.data_dir or None)
    except DataFormatError as exc:
        print(f"shared data not converted: {exc.what} (set data_dir or PRMKIT_DATA_DIR)")
    else:
        jobs += [
            ("processbench", "prmkit", processbench, out / "processbench.jsonl"),
            ("prmbench", "prmkit", processbench.parent.parent / "prmbench", out / "prmbench.jsonl"),
        ]
    for src_fmt, dst_fmt, src, dst in jobs:
        report = convert(src_fmt, dst_fmt, src, dst)
        result[f"{src_fmt}->{dst_fmt}"] = {"records": report.written, "steps": report.steps_written}
        print(
            f"{src_fmt:>12} -> {dst_fmt:<12} {report.written:>6} records, "
            f"{report.steps_written:>6} steps -> {dst}"
        )
    lap("formats", t0)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config recipes/demo.yaml`` plus ``key=value`` overrides."""
    add_config_arguments(parser, DemoConfig)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``prmkit demo``."""
    run_demo(stage_config(DemoConfig, args))
    return 0
