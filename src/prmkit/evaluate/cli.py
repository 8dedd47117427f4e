"""``prmkit eval``: ProcessBench, PRMBench, step metrics and best-of-N from files.

Examples:
    prmkit eval processbench --data ../shared/data/processbench/math.json --predictions p.jsonl
    prmkit eval processbench --data math.json --scores scored.jsonl --threshold-from dev.jsonl \\
        --output result.json
    prmkit eval prmbench --scores prmbench_scored.jsonl --threshold 0.5 --output prmbench.json
    prmkit eval steps --scores scored.jsonl --output steps.json
    prmkit eval bon --scores samples_scored.jsonl --output bon.json
"""

from __future__ import annotations

import argparse
from typing import Any

from prmkit.io import write_json

__all__ = ["add_arguments", "run"]


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``processbench``, ``prmbench``, ``steps`` and ``bon`` subcommands."""
    sub = parser.add_subparsers(dest="eval_command", required=True, metavar="BENCHMARK")

    pb = sub.add_parser(
        "processbench",
        help="ProcessBench: first-error F1 per subset",
        description="ProcessBench: accuracy on erroneous and on correct samples, "
        "their harmonic mean (F1) per subset, and the mean F1.",
    )
    pb.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="FILE",
        help="a subset file (ProcessBench JSON, or JSONL of labelled records); "
        "repeatable; the subset name is the file name before the first dot",
    )
    src = pb.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--predictions", metavar="FILE", help='JSONL of {"id", "prediction"} (-1 = no error)'
    )
    src.add_argument(
        "--scores",
        metavar="FILE",
        help="ScoredTrace records; prediction = first step scoring below the threshold",
    )
    src.add_argument(
        "--judge",
        metavar="MODEL",
        help="an LLM critic ('smollm2', a local model dir, or a served model's name with "
        "--judge-base-url) predicts each first error with the ProcessBench critic protocol",
    )
    judge = pb.add_argument_group("judge (with --judge)")
    judge.add_argument("--judge-adapter", default=None, help="a LoRA adapter dir for the judge")
    judge.add_argument(
        "--judge-base-url",
        default=None,
        metavar="URL",
        help="an OpenAI-compatible server (vLLM, SGLang) serving MODEL, e.g. "
        "http://localhost:8000/v1; default: load MODEL in-process",
    )
    judge.add_argument(
        "--judge-votes",
        type=int,
        default=1,
        help="1 = greedy (ProcessBench default); N > 1 = N samples at temperature 1, "
        "top-p 0.9, majority vote (ProcessBench --use_voting); >= 1",
    )
    judge.add_argument("--judge-max-new-tokens", type=int, default=2048, help="critique cap (>= 1)")
    judge.add_argument(
        "--judge-template",
        default="judge_processbench",
        help="prompt template name under prmkit/prompts (slots {problem}, {paragraphs})",
    )
    judge.add_argument(
        "--judge-store",
        default=None,
        metavar="FILE",
        help="SQLite file keeping every critique, so a rerun resumes "
        "(default: OUTPUT.judge.sqlite beside --output, else a temporary file)",
    )
    judge.add_argument(
        "--judge-batch", type=int, default=8, help="samples judged per generator call (>= 1)"
    )
    judge.add_argument(
        "--predictions-out",
        default=None,
        metavar="FILE",
        help='write the judge\'s predictions as JSONL {"id", "prediction"} for --predictions '
        "(null = no usable answer, counted as wrong)",
    )
    pb.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="a given threshold for --scores (in [0, 1] for probability scores)",
    )
    pb.add_argument(
        "--threshold-from",
        default=None,
        metavar="SPLIT",
        help="labelled ScoredTrace records of a separate split: choose the threshold "
        "maximizing F1 there",
    )
    pb.add_argument(
        "--oracle-threshold",
        action="store_true",
        help="choose the threshold on the evaluated data itself (reported as oracle)",
    )
    pb.add_argument(
        "--allow-missing",
        action="store_true",
        help="count samples without a prediction as wrong instead of failing",
    )
    pb.add_argument("--output", default=None, metavar="FILE", help="write the result as JSON")

    prm = sub.add_parser(
        "prmbench",
        help="PRMBench: PRMScore per error class and overall",
        description="PRMBench: PRMScore = (F1 + negative F1) / 2 from step "
        "scores against step labels, per class and overall, by PRMBench's own rules.",
    )
    prm.add_argument(
        "--scores",
        required=True,
        metavar="FILE",
        help="ScoredTrace records with labels and meta['classification']",
    )
    prm.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="a step scoring above it is predicted correct (default 0.5; in [0, 1] for "
        "probability scores)",
    )
    prm.add_argument(
        "--class-key", default="classification", help="the meta key holding the error class"
    )
    prm.add_argument(
        "--repeated-pairs",
        choices=["first", "all"],
        default="first",
        help="traces repeating an (idx, class) pair: score only the first, as PRMBench does "
        "(default), or all of them",
    )
    prm.add_argument("--output", default=None, metavar="FILE", help="write the result as JSON")

    st = sub.add_parser("steps", help="step AUROC, calibration error, last-step-minimum share")
    st.add_argument("--scores", required=True, metavar="FILE", help="ScoredTrace records")
    st.add_argument("--bins", type=int, default=10, help="calibration bins (default 10, >= 1)")
    st.add_argument("--output", default=None, metavar="FILE", help="write the result as JSON")

    bon = sub.add_parser(
        "bon",
        help="best-of-N: pass@N, maj@N, prm@N, weighted vote vs N",
        description="Best-of-N from one sampling run, by subsampling, with "
        "bootstrap confidence intervals over problems.",
    )
    bon.add_argument(
        "--scores",
        required=True,
        metavar="FILE",
        help="ScoredTrace records: N_max solutions per problem, with answer and meta['correct']",
    )
    bon.add_argument(
        "--correct-from",
        choices=["meta", "labels"],
        default="meta",
        help="read correctness from meta[--correct-key] or from labels (first_error == -1)",
    )
    bon.add_argument("--correct-key", default="correct", help="the meta key of correctness")
    bon.add_argument(
        "--ns",
        default=None,
        type=_int_list,
        help="comma-separated N values (default 1,2,4,...,N_max)",
    )
    bon.add_argument("--subsets", type=int, default=200, help="subsets per problem and N (>= 1)")
    bon.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (>= 1)")
    bon.add_argument("--seed", type=int, default=0, help="random seed (>= 0)")
    bon.add_argument("--output", default=None, metavar="FILE", help="write the result as JSON")


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def format_processbench(result: dict[str, Any]) -> str:
    """The printed ProcessBench table."""
    rows = [
        [
            name,
            _fmt(r["acc_error"]),
            _fmt(r["acc_correct"]),
            _fmt(r["f1"]),
            str(r["n_error"]),
            str(r["n_correct"]),
        ]
        for name, r in result["subsets"].items()
    ]
    rows.append(["mean", "", "", _fmt(result["mean_f1"]), "", ""])
    text = _table(["subset", "acc_error", "acc_correct", "F1", "n_error", "n_correct"], rows)
    if result["threshold"] is not None:
        text += f"\nthreshold {result['threshold']:.6g} ({result['threshold_source']})"
    return "\n".join([text, *result["notes"]])


def format_prmbench(result: dict[str, Any]) -> str:
    """The printed PRMBench table."""
    entries = [("overall", result["overall"]), *result["classes"].items()]
    rows = [
        [name, _fmt(r["prm_score"]), _fmt(r["f1"]), _fmt(r["negative_f1"]), str(r["n_traces"])]
        for name, r in entries
    ]
    text = _table(["class", "PRMScore", "F1", "neg_F1", "traces"], rows)
    groups = ", ".join(f"{g} {_fmt(v)}" for g, v in result["groups"].items())
    return "\n".join(
        [text, f"groups: {groups}", f"threshold {result['threshold']}", *result["notes"]]
    )


def format_steps(result: dict[str, Any]) -> str:
    """The printed step-metrics summary."""
    last = result["last_step_min"]
    lines = [
        f"AUROC {_fmt(result['auroc'], 4)}  ECE {_fmt(result['ece'], 4)}  "
        f"({result['n_steps']} labelled steps, {result['n_unlabelled_steps']} unlabelled)",
        f"last-step minimum share {_fmt(last['share'], 4)} "
        f"({last['n_on_last']} of {last['n_traces']} traces with >= 2 steps)",
    ]
    return "\n".join(lines + result["notes"])


def format_bon(result: dict[str, Any]) -> str:
    """The printed best-of-N table (mean accuracy, percent)."""
    methods = list(result["curves"])
    rows = []
    for i, n in enumerate(result["ns"]):
        rows.append([str(n), *(_fmt(result["curves"][m][i]["mean"]) for m in methods)])
    p1 = result["pass@1"]
    text = _table(["N", *methods], rows)
    lines = [
        text,
        f"pass@1 {_fmt(p1['mean'])} [{_fmt(p1['ci'][0])}, "
        f"{_fmt(p1['ci'][1])}] over {result['n_problems']} problems",
    ]
    grouping = result.get("answer_grouping")
    if grouping:
        lines.append(
            f"votes: {grouping['answers']} answers in {grouping['groups']} groups of equivalent "
            f"answers ({grouping['comparisons']} math-verify comparisons)"
        )
    return "\n".join([*lines, *result["notes"]])


def _judge(args: argparse.Namespace) -> tuple[dict[str, int | None], dict[str, Any]]:
    """Predictions from an LLM critic over every ``--data`` sample (resumable store)."""
    import tempfile

    from prmkit.annotate.store import RolloutStore
    from prmkit.config import check_range
    from prmkit.errors import ConfigError
    from prmkit.evaluate.judge_eval import judge_predictions, load_subset_traces
    from prmkit.evaluate.processbench import load_subset
    from prmkit.io import write_jsonl

    if args.threshold is not None or args.threshold_from is not None or args.oracle_threshold:
        raise ConfigError(
            "a threshold applies only to --scores",
            got="--judge with a threshold option",
            expected="--judge alone",
            fix="drop the threshold option",
        )
    check_range("--judge-votes", args.judge_votes, ge=1)
    check_range("--judge-max-new-tokens", args.judge_max_new_tokens, ge=1)
    check_range("--judge-batch", args.judge_batch, ge=1)
    for path in args.data:  # the data's own checks first, before any model is loaded
        load_subset(path)
    traces = [t for path in args.data for t in load_subset_traces(path)]
    if args.judge_base_url:
        from prmkit.generate.openai_backend import OpenAIGenerator

        generator: Any = OpenAIGenerator(args.judge_base_url, args.judge)
    else:
        from prmkit.generate.transformers_backend import TransformersGenerator

        generator = TransformersGenerator.from_pretrained(
            args.judge, adapter=args.judge_adapter, batch_size=max(8, args.judge_batch)
        )
    store_path = args.judge_store or (f"{args.output}.judge.sqlite" if args.output else None)
    with tempfile.TemporaryDirectory() as tmp:
        store = RolloutStore(store_path or f"{tmp}/judge.sqlite")
        try:
            predictions, summary = judge_predictions(
                traces,
                generator,
                store,
                votes=args.judge_votes,
                max_new_tokens=args.judge_max_new_tokens,
                judge=f"{args.judge}+{args.judge_adapter}" if args.judge_adapter else args.judge,
                template=args.judge_template,
                max_prompts_per_call=args.judge_batch,
            )
        finally:
            store.close()
    summary["store"] = store_path
    if args.predictions_out:
        write_jsonl(
            args.predictions_out,
            ({"id": k, "prediction": v} for k, v in predictions.items()),
        )
    return predictions, summary


def run(args: argparse.Namespace) -> int:
    """Run one ``prmkit eval`` subcommand; print its table and write ``--output``."""
    command = args.eval_command
    if command == "processbench":
        from prmkit.evaluate.processbench import run_processbench

        predictions, judged = args.predictions, None
        if args.judge:
            predictions, judged = _judge(args)
        result = run_processbench(
            args.data,
            predictions=predictions,
            scores=args.scores,
            threshold=args.threshold,
            threshold_from=args.threshold_from,
            oracle_threshold=args.oracle_threshold,
            allow_missing=args.allow_missing,
        )
        if judged is not None:
            result["judge"] = judged
            result["notes"].append(
                f"judge {judged['judge']}: {judged['votes']} vote(s) per sample; "
                f"{judged['n_no_answer']} without a usable \\boxed{{}} answer and "
                f"{judged['n_out_of_range']} past the last step, counted as wrong; "
                f"{judged['prompt_tokens']} prompt + {judged['completion_tokens']} "
                "completion tokens"
            )
        text = format_processbench(result)
    elif command == "prmbench":
        from prmkit.evaluate.prmbench import run_prmbench

        result = run_prmbench(args.scores, args.threshold, args.class_key, args.repeated_pairs)
        text = format_prmbench(result)
    elif command == "steps":
        from prmkit.evaluate.step_metrics import run_step_metrics

        result = run_step_metrics(args.scores, args.bins)
        text = format_steps(result)
    else:
        from prmkit.evaluate.best_of_n import run_best_of_n

        result = run_best_of_n(
            args.scores,
            correct_key=args.correct_key,
            correct_from=args.correct_from,
            ns=args.ns,
            n_subsets=args.subsets,
            n_bootstrap=args.bootstrap,
            seed=args.seed,
        )
        text = format_bon(result)
    print(text)
    if args.output:
        write_json(args.output, {"benchmark": command, **result})
    return 0
