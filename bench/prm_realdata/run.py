"""Real-data PRM result: probe PRMs on SmolLM2-135M trained on PRMBench, scored on ProcessBench MATH.

One command does everything (each stage resumes from what is already on disk):

    PRMKIT_CACHE_DIR=$PWD/.cache .venv/bin/python bench/prm_realdata/run.py \\
        --config recipes/prm_processbench.yaml [key=value ...] [--stage all]

Stages:

1. ``data``: PRMBench (with the 758 unmodified solutions as class ``correct``) split **by
   problem** into a training pool and a held-out calibration split; problems that also appear in
   ProcessBench MATH are left out. Written as LabeledTrace JSONL under ``work_dir``.
2. ``features``: one frozen forward pass per trace (train, held-out, ProcessBench) through
   ``prmkit.train.step_features``, the function ``prmkit train --head probe`` computes its
   features with: hidden states of several layers at the step-tag positions, inputs encoded with
   ``prmkit.prm.encode`` exactly as ``prmkit train``/``prmkit score`` encode them, the backbone
   built by ``prmkit.train.build_prm`` (only the blocks up to the deepest layer run). Cached in
   chunks, so an interrupted run resumes.
3. ``probes``: a grid of probe heads (``prmkit.prm.heads.ProbeHead``: layer x width x label
   scheme x class set) trained on the cached features by ``prmkit.train.fit_probe``, the engine
   ``prmkit train --head probe`` runs (AdamW, BCE, its early-stopping rule, here on a 10% trace
   split). Each variant's threshold is chosen on the held-out PRMBench split
   (``choose_threshold``), never on ProcessBench. The variant with the best held-out F1 is the
   selected one.
4. ``final``: the selected variant is saved as a normal prmkit checkpoint (``save_prm``), its
   ProcessBench and held-out scores are written as ScoredTrace JSONL and evaluated with
   ``prmkit eval processbench --threshold-from <held-out scores>``; a parity check re-scores a
   few ProcessBench traces with ``PRMScorer.from_checkpoint`` and compares.

Why not ``prmkit train`` per variant: every variant would recompute the backbone features of
every trace (the dominant cost on a shared 2-core CPU); here the library's feature pass runs
once for all layers and variants, and each variant calls the library's probe trainer on them.
The selected variant is reproducible with ``prmkit train`` (see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prmkit.config import load_config, option

__all__ = ["RealDataConfig", "main"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RealDataConfig:
    """Settings of the real-data PRM run."""

    prmbench: str = option("/work/shared/data/prmbench", "PRMBench folder (training data)")
    processbench: str = option(
        "/work/shared/data/processbench/math.json", "ProcessBench subset (evaluation only)"
    )
    work_dir: str = option("runs/prm_realdata", "big files: data, feature cache, checkpoint")
    results_dir: str = option("bench/prm_realdata/results", "small JSON results (kept in git)")
    base: str = option("smollm2", "base model")
    format: Literal["trl", "qwen_prm", "math_shepherd"] = option(
        "trl", "PRM input format (prmkit.prm.FORMATS)"
    )
    strip_numbering: bool = option(True, "PRMBench reader: drop 'k. ' step numbering")
    exclude_eval_problems: bool = option(
        True, "leave out PRMBench problems whose text also appears in ProcessBench"
    )
    train_problems: int = option(100, "PRMBench problems (all their variants) for training")
    heldout_problems: int = option(30, "PRMBench problems for threshold/variant selection")
    train_variants: int = option(
        0, "per training problem: its correct solution + this many erroneous variants (0 = all)"
    )
    heldout_variants: int = option(
        0, "per held-out problem: its correct solution + this many erroneous variants (0 = all)"
    )
    max_train_tokens: int = option(1024, "drop PRMBench traces longer than this (counted)")
    max_length: int = option(4096, "spec max_length (ProcessBench traces reach ~2300 tokens)")
    seed: int = option(0, "split and training seed")
    layers: list[int] = option(
        [8, 12, 16],
        "hidden_states indices cached (0 = embeddings, 30 = last); only the first "
        "max(layers) + 1 blocks are run, so low layers are cheaper",
    )
    batch_size: int = option(4, "traces per forward pass")
    chunk: int = option(32, "traces per feature-cache file")
    threads: int = option(2, "torch threads")
    probe_layers: list[int] = option(
        [], "layers (a subset of `layers`) to train probes on; [] = all cached layers"
    )
    widths: list[int] = option([0, 256], "probe MLP widths to try (0 = linear)")
    schemes: list[Literal["all", "first"]] = option(
        ["all", "first"], "label schemes: all steps / up to and including the first error"
    )
    class_sets: list[Literal["all", "no_simplicity"]] = option(
        ["all", "no_simplicity"], "all classes / without redundency+circular"
    )
    balance: list[bool] = option([False, True], "weight wrong steps by n_pos/n_neg")
    lr: float = option(1e-3, "probe AdamW learning rate")
    weight_decay: float = option(1e-2, "probe AdamW weight decay")
    probe_batch: int = option(128, "feature rows per probe optimizer step")
    epochs: int = option(200, "probe epochs (early stopping on the 10% split)")
    patience: int = option(10, "probe early-stopping patience (epochs)")
    parity_traces: int = option(4, "ProcessBench traces re-scored through the saved checkpoint")


SIMPLICITY = {"redundency", "circular"}
DATA_KEYS = (
    "prmbench",
    "processbench",
    "format",
    "strip_numbering",
    "exclude_eval_problems",
    "train_problems",
    "heldout_problems",
    "train_variants",
    "heldout_variants",
    "max_train_tokens",
    "seed",
)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


# ----------------------------------------------------------------------------- data


def stage_data(cfg: RealDataConfig, log) -> dict:
    """Write train.jsonl / heldout.jsonl (LabeledTrace) under work_dir; return counts."""
    import warnings

    from prmkit.formats import read
    from prmkit.models import load_tokenizer
    from prmkit.prm.formats import encode
    from prmkit.records import write_records

    work = Path(cfg.work_dir)
    key = {k: getattr(cfg, k) for k in DATA_KEYS}
    if (work / "data.json").exists():
        counts = json.loads((work / "data.json").read_text())
        if counts.get("key") == key:
            return counts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traces = list(
            read("prmbench", cfg.prmbench, add_correct=True, strip_numbering=cfg.strip_numbering)
        )
    pb_problems = {_norm(t.prompt) for t in read("processbench", cfg.processbench)}
    by_problem: dict[str, list] = {}
    for t in traces:
        by_problem.setdefault(str(t.problem_id), []).append(t)
    overlap = sorted(p for p, ts in by_problem.items() if _norm(ts[0].prompt) in pb_problems)
    # the original question (class 'correct' prompt) may differ from modified ones; check all
    overlap = sorted(
        p for p, ts in by_problem.items() if any(_norm(t.prompt) in pb_problems for t in ts)
    )
    pool = sorted(set(by_problem) - (set(overlap) if cfg.exclude_eval_problems else set()))
    random.Random(cfg.seed).shuffle(pool)
    # held-out from the front, training from the back: growing one never moves the other
    if cfg.heldout_problems + cfg.train_problems > len(pool):
        raise SystemExit(f"only {len(pool)} problems; lower train_problems/heldout_problems")
    held = pool[: cfg.heldout_problems]
    train = pool[len(pool) - cfg.train_problems :]
    spec = _spec(cfg)
    tok = load_tokenizer(cfg.base)
    counts: dict = {
        "key": key,
        "prmbench_traces": len(traces),
        "prmbench_problems": len(by_problem),
        "problems_in_processbench": len(overlap),
        "excluded_overlap": cfg.exclude_eval_problems,
    }
    for name, problems, k in (
        ("train", train, cfg.train_variants),
        ("heldout", held, cfg.heldout_variants),
    ):
        # one generator per split: growing the training set never changes the held-out sample
        rng = random.Random(f"{cfg.seed}-{name}")
        kept, too_long = [], 0
        for p in problems:
            chosen = by_problem[p]
            if k:
                good = [t for t in chosen if t.first_error < 0]
                bad = [t for t in chosen if t.first_error >= 0]
                chosen = good + rng.sample(bad, min(k, len(bad)))
            for t in chosen:
                n = len(encode(spec, tok, t.prompt, t.steps).input_ids)
                if n > cfg.max_train_tokens:
                    too_long += 1
                    continue
                kept.append(t)
        write_records(work / f"{name}.jsonl", kept)
        counts[name] = {
            "problems": len(problems),
            "traces": len(kept),
            "dropped_too_long": too_long,
            "with_error": sum(t.first_error >= 0 for t in kept),
            "steps": sum(len(t.steps) for t in kept),
        }
    (work / "data.json").write_text(json.dumps(counts, indent=1))
    log(f"data: {json.dumps(counts)}")
    return counts


def _spec(cfg: RealDataConfig, layer: int = -1, width: int = 256):
    from prmkit.prm.spec import PRMSpec

    return PRMSpec.from_format(
        cfg.format,
        head="probe",
        max_length=cfg.max_length,
        probe_layer=layer,
        probe_hidden=width,
        base=cfg.base,
    )


def _load_set(cfg: RealDataConfig, name: str) -> list:
    from prmkit.formats import read
    from prmkit.records import LabeledTrace, read_records

    if name == "processbench":
        return list(read("processbench", cfg.processbench))
    return list(read_records(Path(cfg.work_dir) / f"{name}.jsonl", LabeledTrace))


# ----------------------------------------------------------------------------- features


def stage_features(cfg: RealDataConfig, log) -> None:
    """Cache hidden states of ``cfg.layers`` at every step tag, chunk by chunk (resumable)."""
    import torch

    from prmkit.prm.formats import encode
    from prmkit.train import build_prm, step_features

    torch.set_num_threads(cfg.threads)
    prm = None
    for name in ("train", "heldout", "processbench"):
        traces = _load_set(cfg, name)
        if name == "processbench":  # a seeded random order: any prefix is a random subset
            random.Random(cfg.seed).shuffle(traces)
        out = Path(cfg.work_dir) / "features" / name
        out.mkdir(parents=True, exist_ok=True)
        done = set(_features(cfg, name))
        n_files = len(list(out.glob("*.pt")))
        todo = [t for t in traces if t.id not in done]
        n_done = len(traces) - len(todo)
        for c in range(0, len(todo), cfg.chunk):
            path = out / f"{n_files + c // cfg.chunk:05d}.pt"
            if prm is None:
                # a probe PRM at the deepest cached layer keeps only blocks 0..max(layers):
                # hidden_states[i] (i < n_layers) is block i's raw output, the same values as
                # the full model gives, at a fraction of the cost
                prm = build_prm(_spec(cfg, layer=max(cfg.layers)), cfg.base)
            part = todo[c : c + cfg.chunk]
            encs = [encode(prm.spec, prm.tokenizer, t.prompt, t.steps) for t in part]
            cut = [t.id for t, e in zip(part, encs, strict=True) if e.truncated_steps]
            if cut:
                raise SystemExit(f"{name}: max_length {cfg.max_length} cuts step tags of {cut}")
            start = time.perf_counter()
            feats = step_features(
                prm.model, encs, cfg.layers, pad_id=prm.pad_id(), batch_size=cfg.batch_size
            )
            secs = time.perf_counter() - start
            n_tok = sum(len(e.input_ids) for e in encs)
            blob = {t.id: f.to(torch.float16) for t, f in zip(part, feats, strict=True)}
            torch.save({"layers": list(cfg.layers), "features": blob}, f"{path}.tmp")
            Path(f"{path}.tmp").replace(path)
            log(
                f"features {name} {n_done + c + len(part)}/{len(traces)}: {n_tok} tokens in "
                f"{secs:.1f}s ({n_tok / secs:.0f} tok/s)"
            )


def _cached_sets(cfg: RealDataConfig) -> tuple[dict, dict]:
    """Train/held-out (all must be cached) and the ProcessBench traces cached so far."""
    sets = {n: _load_set(cfg, n) for n in ("train", "heldout", "processbench")}
    feats = {n: _features(cfg, n) for n in sets}
    for n in ("train", "heldout"):
        missing = [t.id for t in sets[n] if t.id not in feats[n]]
        if missing:
            raise SystemExit(f"{n}: {len(missing)} traces without features; run --stage features")
    sets["processbench"] = [t for t in sets["processbench"] if t.id in feats["processbench"]]
    return sets, feats


def _features(cfg: RealDataConfig, name: str) -> dict:
    import torch

    feats: dict = {}
    for path in sorted((Path(cfg.work_dir) / "features" / name).glob("*.pt")):
        blob = torch.load(path)
        if blob["layers"] != list(cfg.layers):
            raise SystemExit(f"{path}: cached layers {blob['layers']} != config {cfg.layers}")
        feats.update(blob["features"])
    return feats


# ----------------------------------------------------------------------------- probes


def _targets(trace, scheme: str) -> list[tuple[int, float]]:
    """(step index, label) pairs trained under a label scheme."""
    pairs = [(i, float(x)) for i, x in enumerate(trace.labels) if x is not None]
    if scheme == "first" and trace.first_error >= 0:
        pairs = [(i, x) for i, x in pairs if i <= trace.first_error]
    return pairs


def train_probe(x, y, xe, ye, *, width: int, balance: bool, cfg: RealDataConfig):
    """A probe trained by ``prmkit.train.fit_probe`` (the engine of ``prmkit train --head
    probe``) on cached features; ``balance`` weighs wrong steps by n_pos/n_neg."""
    import torch

    from prmkit.prm.heads import ProbeHead
    from prmkit.train import fit_probe

    torch.manual_seed(cfg.seed)
    probe = ProbeHead(x.shape[1], width)
    result = fit_probe(
        probe,
        x,
        y,
        xe,
        ye,
        lr=cfg.lr,
        epochs=cfg.epochs,
        batch_size=cfg.probe_batch,
        patience=cfg.patience,
        weight_decay=cfg.weight_decay,
        error_weight=float((y >= 0.5).sum() / max(1, (y < 0.5).sum())) if balance else 1.0,
        seed=cfg.seed,
    )
    return probe, {"epochs": result.epochs_run, "best_eval_loss": result.best_eval_loss}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _score_set(probe, traces, feats, layer_idx: int) -> list[list[float]]:
    import torch

    with torch.no_grad():
        return [torch.sigmoid(probe(feats[t.id][:, layer_idx].float())).tolist() for t in traces]


def stage_probes(cfg: RealDataConfig, log) -> dict:
    """Train the grid of probe variants; pick thresholds on held-out; report ProcessBench F1."""
    import torch

    from prmkit.evaluate.processbench import (
        choose_threshold,
        first_error_prediction,
        subset_metrics,
    )

    sets, feats = _cached_sets(cfg)
    n_pb_total = len(_load_set(cfg, "processbench"))
    log(f"processbench: {len(sets['processbench'])}/{n_pb_total} traces have features")
    # the same 10% trace split for early stopping in every variant
    order = list(range(len(sets["train"])))
    random.Random(cfg.seed).shuffle(order)
    n_stop = max(1, round(0.1 * len(order)))
    stop_ids = {sets["train"][i].id for i in order[:n_stop]}

    def matrix(traces, scheme, classes, li):
        xs, ys = [], []
        for t in traces:
            if classes == "no_simplicity" and t.meta.get("classification") in SIMPLICITY:
                continue
            pairs = _targets(t, scheme)
            if not pairs:
                continue
            f = feats["train"][t.id][:, li].float()
            xs.append(f[[i for i, _ in pairs]])
            ys.extend(x for _, x in pairs)
        return torch.cat(xs), torch.tensor(ys)

    train_tr = [t for t in sets["train"] if t.id not in stop_ids]
    stop_tr = [t for t in sets["train"] if t.id in stop_ids]
    held_items = [t.first_error for t in sets["heldout"]]
    pb_labels = [t.first_error for t in sets["processbench"]]
    rows = []
    for li, layer in enumerate(cfg.layers):
        if cfg.probe_layers and layer not in cfg.probe_layers:
            continue
        for scheme in cfg.schemes:
            for classes in cfg.class_sets:
                x, y = matrix(train_tr, scheme, classes, li)
                xe, ye = matrix(stop_tr, scheme, classes, li)
                for width in cfg.widths:
                    for balance in cfg.balance:
                        start = time.perf_counter()
                        probe, info = train_probe(
                            x, y, xe, ye, width=width, balance=balance, cfg=cfg
                        )
                        hs = _score_set(probe, sets["heldout"], feats["heldout"], li)
                        thr, held_f1 = choose_threshold(list(zip(held_items, hs, strict=True)))
                        ps = _score_set(probe, sets["processbench"], feats["processbench"], li)
                        preds = [first_error_prediction(s, thr) for s in ps]
                        m = subset_metrics(pb_labels, preds)
                        # diagnostic only (never used for selection): the best threshold on
                        # ProcessBench itself, to separate ranking quality from threshold transfer
                        _, oracle = choose_threshold(list(zip(pb_labels, ps, strict=True)))
                        row = {
                            "layer": layer,
                            "width": width,
                            "scheme": scheme,
                            "classes": classes,
                            "balance": balance,
                            "train_steps": len(y),
                            "threshold": thr,
                            "heldout_f1": round(held_f1, 2),
                            "pb_acc_error": _r(m.acc_error),
                            "pb_acc_correct": _r(m.acc_correct),
                            "pb_f1": _r(m.f1),
                            "pb_oracle_f1_diagnostic": _r(oracle),
                            **info,
                            "seconds": round(time.perf_counter() - start, 1),
                        }
                        rows.append(row)
                        log(json.dumps(row))
    best = max(rows, key=lambda r: (r["heldout_f1"], -r["layer"]))
    result = {
        "selection": "highest held-out PRMBench F1 (threshold chosen there too)",
        "selected": best,
        "processbench_scored": len(sets["processbench"]),
        "processbench_total": n_pb_total,
        "variants": rows,
        "baselines": _baselines(sets),
    }
    _write_result(cfg, "variants.json", result)
    return result


def _baselines(sets: dict) -> dict:
    """No-training predictors on ProcessBench (their F1 shows the floor)."""
    from prmkit.evaluate.processbench import subset_metrics

    labels = [t.first_error for t in sets["processbench"]]
    rng = random.Random(0)
    out = {}
    for name, preds in {
        "always_no_error": [-1] * len(labels),
        "always_step_0": [0] * len(labels),
        "random_step_or_none": [rng.randrange(-1, len(t.steps)) for t in sets["processbench"]],
    }.items():
        m = subset_metrics(labels, preds)
        out[name] = {"acc_error": m.acc_error, "acc_correct": m.acc_correct, "f1": m.f1}
    return out


def _write_result(cfg: RealDataConfig, name: str, obj) -> None:
    from prmkit.io import write_json

    Path(cfg.results_dir).mkdir(parents=True, exist_ok=True)
    write_json(Path(cfg.results_dir) / name, obj)


# ----------------------------------------------------------------------------- final


def stage_final(cfg: RealDataConfig, variants: dict, log) -> dict:
    """Save the selected probe as a prmkit checkpoint; score files; the CLI's ProcessBench F1."""
    import subprocess

    import torch

    from prmkit.prm.checkpoint import save_prm
    from prmkit.records import write_records
    from prmkit.score import PRMScorer
    from prmkit.score.scorer import to_scored
    from prmkit.train import build_prm

    sel = variants["selected"]
    li = cfg.layers.index(sel["layer"])
    sets, feats = _cached_sets(cfg)
    work = Path(cfg.work_dir)
    pb_data = cfg.processbench
    if len(sets["processbench"]) < variants["processbench_total"]:
        # evaluate on the scored subset only (ids in the original order), said in the result
        keep = {t.id for t in sets["processbench"]}
        rows = [r for r in json.loads(Path(cfg.processbench).read_text()) if r["id"] in keep]
        pb_data = str(work / "processbench_subset.json")
        Path(pb_data).write_text(json.dumps(rows))
    order = list(range(len(sets["train"])))
    random.Random(cfg.seed).shuffle(order)
    stop_ids = {sets["train"][i].id for i in order[: max(1, round(0.1 * len(order)))]}
    xs, ys, xes, yes = [], [], [], []
    for t in sets["train"]:
        if sel["classes"] == "no_simplicity" and t.meta.get("classification") in SIMPLICITY:
            continue
        pairs = _targets(t, sel["scheme"])
        if not pairs:
            continue
        f = feats["train"][t.id][[i for i, _ in pairs], li].float()
        (xes if t.id in stop_ids else xs).append(f)
        (yes if t.id in stop_ids else ys).extend(x for _, x in pairs)
    probe, _ = train_probe(
        torch.cat(xs),
        torch.tensor(ys),
        torch.cat(xes),
        torch.tensor(yes),
        width=sel["width"],
        balance=sel["balance"],
        cfg=cfg,
    )
    spec = _spec(cfg, layer=sel["layer"], width=sel["width"])
    prm = build_prm(spec, cfg.base)
    prm.probe.load_state_dict(probe.state_dict())
    save_prm(prm, work / "checkpoint", overwrite=True)
    name = f"probe-L{sel['layer']}-w{sel['width']}"
    for n in ("heldout", "processbench"):
        scores = _score_set(probe, sets[n], feats[n], li)
        write_records(
            work / f"{n}_scored.jsonl",
            [to_scored(t, s, name) for t, s in zip(sets[n], scores, strict=True)],
        )
    cmd = [
        str(Path(sys.executable).parent / "prmkit"),
        "eval",
        "processbench",
        "--data",
        pb_data,
        "--scores",
        str(work / "processbench_scored.jsonl"),
        "--threshold-from",
        str(work / "heldout_scored.jsonl"),
        "--output",
        str(Path(cfg.results_dir) / "processbench_selected.json"),
    ]
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True)
    # parity: the saved checkpoint through PRMScorer vs the cached-feature scores
    scorer = PRMScorer.from_checkpoint(str(work / "checkpoint"), batch_size=cfg.batch_size)
    few = sorted(sets["processbench"], key=lambda t: len(t.steps))[: cfg.parity_traces]
    fresh = scorer.score(few)
    cached = _score_set(probe, few, feats["processbench"], li)
    diff = max(
        abs(a - b)
        for fa, fb in zip(fresh, cached, strict=True)
        for a, b in zip(fa, fb, strict=True)
    )
    result = json.loads((Path(cfg.results_dir) / "processbench_selected.json").read_text())
    result["selected_variant"] = {
        k: sel[k] for k in ("layer", "width", "scheme", "classes", "balance")
    }
    result["processbench_scored"] = len(sets["processbench"])
    result["processbench_total"] = variants["processbench_total"]
    result["parity_max_abs_diff"] = diff
    result["parity_traces"] = len(few)
    _write_result(cfg, "processbench_selected.json", result)
    log(f"parity: max |checkpoint score - cached score| over {len(few)} traces = {diff:.2e}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the stages named by ``--stage`` (default: all)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None)
    parser.add_argument(
        "--stage", default="all", choices=["all", "data", "features", "probes", "final"]
    )
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args(argv)
    cfg = load_config(RealDataConfig, args.config, args.overrides)
    Path(cfg.work_dir).mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    timings = {}
    stages = ["data", "features", "probes", "final"] if args.stage == "all" else [args.stage]
    variants = None
    for stage in stages:
        start = time.perf_counter()
        if stage == "data":
            stage_data(cfg, log)
        elif stage == "features":
            stage_data(cfg, log)
            stage_features(cfg, log)
        elif stage == "probes":
            variants = stage_probes(cfg, log)
        else:
            if variants is None:
                variants = json.loads((Path(cfg.results_dir) / "variants.json").read_text())
            stage_final(cfg, variants, log)
        timings[stage] = round(time.perf_counter() - start, 1)
        log(f"stage {stage}: {timings[stage]}s")
    _write_result(
        cfg, f"timings_{args.stage}.json", {"stages": timings, "config": dataclasses.asdict(cfg)}
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
