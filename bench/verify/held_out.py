"""Issue 13's held-out measurement: PRMs from several label sources vs majority vote.

Trains one probe PRM per label source with :func:`prmkit.train.train` (same frozen backbone and
spec, only the labels differ), scores the held-out traces once (``PRMScorer.probe_inputs``; each
PRM applies its probe to the shared features), and reports best-of-N with bootstrap intervals
(:func:`prmkit.evaluate.best_of_n.best_of_n`), step AUROC and first-error F1 with the threshold
chosen on calibration traces of other problems. Library calls only; the samples come from files
(exact-labelled traces of the warmed-up policy, e.g. written by the demo's sampler).

    .venv/bin/python bench/verify/held_out.py --eval 'runs/v/eval/*.jsonl' \\
        --train 'runs/v/train/*.jsonl' --calibration 'runs/v/dev/*.jsonl' \\
        --problems runs/v/train/problems.jsonl --mc runs/v/ann_mc.jsonl --out runs/v/prms
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path

from prmkit.evaluate.best_of_n import best_of_n, group_problems
from prmkit.evaluate.processbench import (
    Sample,
    choose_threshold,
    evaluate_predictions,
    predictions_from_scores,
)
from prmkit.evaluate.step_metrics import step_metrics
from prmkit.models.precision import describe_machine
from prmkit.records import LabeledTrace, Problem, read_records
from prmkit.score.scorer import PRMScorer, to_scored
from prmkit.tasks.arithmetic_slips import slip_traces
from prmkit.train import TrainConfig, train


def read(pattern: str) -> list[LabeledTrace]:
    return [t for f in sorted(glob.glob(pattern)) for t in read_records(f, LabeledTrace)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", required=True, help="held-out traces (glob)")
    ap.add_argument("--train", required=True, help="PRM-training traces, exact labels (glob)")
    ap.add_argument("--calibration", required=True, help="threshold traces, other problems")
    ap.add_argument("--calibration-problems", type=int, default=16)
    ap.add_argument("--problems", required=True, help="Problem records of the training traces")
    ap.add_argument("--mc", default="", help="MC-labelled training traces (prmkit annotate)")
    ap.add_argument("--binary", default="", help="binary-search-labelled training traces")
    ap.add_argument("--slips", type=int, default=4, help="synthetic slips per training problem")
    ap.add_argument("--adapter", default="")
    ap.add_argument("--features", default="logprobs")
    ap.add_argument("--probe-layer", type=int, default=16, help="hidden features' layer")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--only", nargs="*", default=None, help="train only these label sources (default: all)"
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = describe_machine()
    print(
        f"machine: {machine['cpu']}, {machine['cpu_capability']}, {machine['torch_threads']} threads"
    )

    held_out = read(args.eval)
    trained = read(args.train)
    calib_all = read(args.calibration)
    keep = list(dict.fromkeys(t.problem_id for t in calib_all))[: args.calibration_problems]
    calibration = [t for t in calib_all if t.problem_id in set(keep)]
    seen = {t.problem_id for t in trained}
    assert not seen & {t.problem_id for t in held_out}, "a held-out problem is in training"
    problems = [p for p in read_records(args.problems, Problem) if p.id in seen]
    sources = {"exact": trained}
    sources["synthetic"] = slip_traces(problems, args.slips, seed=args.seed)
    sources["exact+synthetic"] = trained + sources["synthetic"]
    for name, path in (("mc", args.mc), ("binary", args.binary)):
        if path:
            labelled = read_records(path, LabeledTrace)
            sources[name] = [t for t in labelled if any(y is not None for y in t.labels)]
            ids = {t.id for t in labelled}
            sources[f"exact (same traces as {name})"] = [t for t in trained if t.id in ids]
    print(
        f"held-out {len(held_out)} traces of {len({t.problem_id for t in held_out})} problems; "
        f"calibration {len(calibration)} traces of {len(keep)} problems; "
        + ", ".join(f"{k} {len(v)}" for k, v in sources.items())
    )
    import torch

    cache = out / "shared_features.pt"  # the frozen backbone's step features, reused by reruns
    shared: dict[str, list] = torch.load(cache) if cache.exists() else {}
    rows = (
        json.loads((out / "held_out.json").read_text()) if (out / "held_out.json").exists() else {}
    )
    for name, records in sources.items():
        if args.only is not None and name not in args.only:
            continue
        t0 = time.perf_counter()
        ckpt = out / ("prm_" + "".join(c if c.isalnum() else "_" for c in name))
        train(
            TrainConfig(
                out=str(ckpt), overwrite=True, head="probe", probe_features=args.features,
                probe_layer=args.probe_layer, probe_hidden=0, adapter=args.adapter, until_first_error=True, lr=args.lr,
                epochs=args.epochs, batch_size=8, eval_fraction=0.0, patience=0, seed=args.seed,
            ),
            records=records,
            log=lambda *a: None,
        )  # fmt: skip
        scorer = PRMScorer.from_checkpoint(str(ckpt))
        if not shared:
            shared["eval"] = scorer.probe_inputs(held_out)
            shared["calibration"] = scorer.probe_inputs(calibration)
            torch.save(shared, cache)
        eval_scores = scorer.score_inputs(shared["eval"])
        scored = [to_scored(t, s, name) for t, s in zip(held_out, eval_scores, strict=True)]
        calib = scorer.score_inputs(shared["calibration"])
        for t in scored:
            t.meta["correct"] = t.meta["final_answer_correct"]
        bon = best_of_n(group_problems(scored), n_bootstrap=2000, seed=args.seed)
        threshold, _ = choose_threshold(
            [(t.first_error, s) for t, s in zip(calibration, calib, strict=True)]
        )
        samples = [Sample(id=t.id, label=t.first_error, n_steps=len(t.steps)) for t in scored]
        pb = evaluate_predictions(
            {"a": samples},
            predictions_from_scores({t.id: t for t in scored}, samples, threshold),
        )["subsets"]["a"]
        rows[name] = {
            "traces": len(records),
            "auroc": step_metrics(scored)["auroc"],
            "f1": pb["f1"],
            "threshold": threshold,
            "bon": {m: c[-1] for m, c in bon["curves"].items()},
            "vs_majority": {m: c[-1] for m, c in bon["vs_majority"].items()},
            "pass@1": bon["pass@1"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        r = rows[name]
        print(f"\n== {name}: {r['traces']} training traces, {r['seconds']} s")
        print(
            f"step AUROC {r['auroc']:.3f}; first-error F1 {r['f1']:.1f} (threshold {threshold:.3f})"
        )
        for m in ("pass", "majority", "prm_min", "prm_last", "prm_prod", "weighted_min"):
            c = r["bon"][m]
            extra = ""
            if m in r["vs_majority"]:
                d = r["vs_majority"][m]
                extra = f"   vs majority {d['mean']:+.1f} [{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}]"
            print(f"  {m:<13} {c['mean']:5.1f}% [{c['ci'][0]:.1f}, {c['ci'][1]:.1f}]{extra}")
        print(
            f"  pass@1 {r['pass@1']['mean']:.1f}% [{r['pass@1']['ci'][0]:.1f}, {r['pass@1']['ci'][1]:.1f}]"
        )
    (out / "held_out.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
