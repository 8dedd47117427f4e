"""Benchmark on one GPU: prmkit's PRM scoring and training against plain-transformers baselines
measured in the same run, on the same random-weight model; tokens/s and MFU for each row.

Commands (from the repo root):

    .venv/bin/python bench/gpu/run.py                 # one GPU: Qwen2-1.5B shape, 2,000 traces
    .venv/bin/python bench/gpu/run.py --tiny          # CPU smoke run: tiny model, 64 traces
    .venv/bin/python bench/gpu/run.py --json out.json # also write the results as JSON

The model is ``Qwen2ForTokenClassification`` (2 labels) built from a config with random weights
(nothing is downloaded): Qwen2-1.5B's shape in bf16 on CUDA, float32 on a CPU; ``--tiny``: hidden
64, 2 layers. Inputs use the packaged SmolLM2 tokenizer in TRL's stepwise format (step tag
``"\\n"``), so token ids stay below either vocabulary.

Scoring rows (the same encoded traces, ProcessBench filled up with synthetic ones to 2,000; each
row scores them all once after a warm-up pass over a subset; encoding is timed apart):

1. prmkit ``PRMScorer`` packed: traces back to back in rows without padding, up to 256 traces
   and 65,536 real tokens per forward pass (the default on CUDA; flash-attention 2 when
   installed, SDPA with a block-causal mask otherwise).
2. prmkit ``PRMScorer`` padded: length-sorted batches of 32, right-padded.
3. baseline, plain transformers: traces in input order, 32 per batch, padded to the longest,
   ``model(input_ids, attention_mask).logits``, step positions read on the host.
4. baseline, dense: full 32 x 512 rows of random ids, no padding (the card's practical
   ceiling for this model; it scores nothing).

The packed and padded prmkit scores must agree (max difference <= 1e-3 in bf16, 1e-5 in float32);
the run exits with status 1 otherwise, after printing everything.

Training rows (24 optimizer steps of 16 length-sorted traces, PRMBench; ``--tiny``: 4 of 4):

1. prmkit ``prmkit.train.loop.fit`` (transformers.Trainer inside, packed rows, bf16 autocast
   on CUDA, the default optimizer).
2. baseline: a plain ``transformers.Trainer`` on the same model shape and seed, padded batches
   of the same groups of traces, dense labels (-100 except at the step tags), fused AdamW.

Timed: the optimizer steps after the first (warm-up) one; tokens are real (non-padding) tokens;
MFU uses 3x the forward FLOPs; peak memory is ``torch.cuda.max_memory_allocated``.
MFU = (2 * non-embedding params * tokens + causal attention FLOPs) / seconds / peak (see
bench/gpu/flops.py and README.md); n/a on a CPU or an unknown GPU.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import inspect
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from flops import forward_flops, mfu, non_embedding_params, peak_flops
from scoring import (
    dense_batches,
    dense_forward,
    plain_padded_scores,
    timed,
    warmup_subset,
)
from training import TrainResult, prmkit_fit, trainer_baseline
from workload import ScoringWorkload, scoring_workload, training_workload

from prmkit.models.loading import load_tokenizer
from prmkit.models.precision import default_attention, describe_machine
from prmkit.prm.heads import PRM
from prmkit.prm.spec import PRMSpec
from prmkit.score import PRMScorer

REPO = Path(__file__).resolve().parents[2]
NEW_FIT_KWARGS = ("bf16", "packing", "optim")


@dataclass(frozen=True)
class Settings:
    """Sizes of one run."""

    traces: int
    max_length: int
    packed_batch: int
    packed_tokens: int
    padded_batch: int
    dense_rows: int
    dense_length: int
    warmup_traces: int
    train_steps: int
    train_batch: int
    train_max_tokens: int
    baseline_max_seconds: float | None


FULL = Settings(2000, 4096, 256, 65536, 32, 32, 512, 256, 24, 16, 1024, 150.0)
TINY = Settings(64, 512, 32, 8192, 32, 32, 512, 16, 4, 4, 512, None)


def model_config(tiny: bool, vocab: int) -> Any:
    """Qwen2-1.5B's shape (``tiny``: hidden 64, 2 layers, the tokenizer's vocabulary)."""
    from transformers import Qwen2Config

    if tiny:
        shape = {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": vocab,
        }
    else:
        shape = {
            "hidden_size": 1536,
            "intermediate_size": 8960,
            "num_hidden_layers": 28,
            "num_attention_heads": 12,
            "num_key_value_heads": 2,
            "vocab_size": 151936,
        }
    return Qwen2Config(
        **shape,
        max_position_embeddings=32768,
        rope_theta=1e6,
        tie_word_embeddings=True,
        num_labels=2,
    )


def build_model(
    config: Any, device: torch.device, dtype: torch.dtype, attn: str, seed: int = 0
) -> Any:
    """A random-weight ``Qwen2ForTokenClassification``, initialised on ``device``."""
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(seed)
    with device:
        model = AutoModelForTokenClassification.from_config(
            copy.deepcopy(config), dtype=dtype, attn_implementation=attn
        )
    return model.eval()


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU and its flags (prmkit's describe_machine), GPU, library versions."""
    import transformers

    info = describe_machine()
    info.update(
        python=platform.python_version(),
        transformers=transformers.__version__,
        cuda=torch.version.cuda,
        flash_attn=importlib.util.find_spec("flash_attn") is not None,
        device=str(device),
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1))
    return info


def rate_row(
    name: str, tokens: int, seconds: float, flops: float, peak: float | None, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "tokens": tokens,
        "seconds": round(seconds, 4),
        "tokens_per_s": tokens / seconds,
        "mfu": mfu(flops, seconds, peak),
        **extra,
    }


def fmt_mfu(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def run_scoring(
    prm: PRM, work: ScoringWorkload, s: Settings, peak: float | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The four scoring rows and the packed = padded check."""
    model, device = prm.model, prm.device
    cfg = model.config
    n_params, layers, hidden = non_embedding_params(model), cfg.num_hidden_layers, cfg.hidden_size
    flops = forward_flops(n_params, layers, hidden, work.lengths)
    warm = warmup_subset(work.encs, s.warmup_traces)
    rows = []
    attn = cfg._attn_implementation
    scores: dict[str, list[list[float]]] = {}
    scorers = {
        "packed": PRMScorer(
            prm, batch_size=s.packed_batch, max_batch_tokens=s.packed_tokens, packing=True
        ),
        "padded": PRMScorer(prm, batch_size=s.padded_batch, packing=False),
    }
    labels = {
        "packed": f"prmkit PRMScorer packed (bs {s.packed_batch}, {s.packed_tokens:,} tok)",
        "padded": f"prmkit PRMScorer padded (bs {s.padded_batch})",
    }
    for key, scorer in scorers.items():
        scorer.score_encoded(warm)
        scores[key], seconds = timed(lambda sc=scorer: sc.score_encoded(work.encs), device)
        rows.append(rate_row(labels[key], work.total_tokens, seconds, flops, peak, attention=attn))
        print(f"  {labels[key]}: {seconds:.2f} s", flush=True)
    worst = max(
        abs(a - b)
        for x, y in zip(scores["packed"], scores["padded"], strict=True)
        for a, b in zip(x, y, strict=True)
    )
    bf16 = next(model.parameters()).dtype == torch.bfloat16
    limit = 1e-3 if bf16 else 1e-5
    n_scores = sum(len(x) for x in scores["packed"])
    mean = sum(
        abs(a - b)
        for x, y in zip(scores["packed"], scores["padded"], strict=True)
        for a, b in zip(x, y, strict=True)
    ) / max(1, n_scores)
    parity = {"max_abs_diff": worst, "mean_abs_diff": mean, "limit": limit, "ok": worst <= limit}
    if not parity["ok"]:
        print(f"  PARITY FAILED: max |packed - padded| = {worst:.2e} > {limit:.0e}", flush=True)

    if attn != "sdpa":  # the baselines use plain transformers' default kernel
        model.set_attn_implementation("sdpa")
    pad = prm.pad_id()
    name = f"baseline: plain transformers, input order, padded (bs {s.padded_batch})"
    plain_padded_scores(model, warm, pad, s.padded_batch, prm.spec.positive_index)
    base, seconds = timed(
        lambda: plain_padded_scores(
            model, work.encs, pad, s.padded_batch, prm.spec.positive_index, s.baseline_max_seconds
        ),
        device,
    )
    done = work.lengths[: len(base)]
    extra: dict[str, Any] = {"attention": "sdpa"}
    if len(base) < len(work.encs):  # stopped at the time limit: the first traces only
        extra["subset"] = (
            f"first {len(base)} of {len(work.encs)} traces ({s.baseline_max_seconds:.0f} s limit)"
        )
        name += f" [{extra['subset']}]"
    sub_flops = forward_flops(n_params, layers, hidden, done)
    rows.append(rate_row(name, sum(done), seconds, sub_flops, peak, **extra))
    print(f"  {name}: {seconds:.2f} s", flush=True)
    parity["baseline3_vs_padded"] = max(
        abs(a - b)
        for x, y in zip(base, scores["padded"][: len(base)], strict=True)
        for a, b in zip(x, y, strict=True)
    )

    per_batch = s.dense_rows * s.dense_length
    n_batches = max(2, math.ceil(work.total_tokens / per_batch))
    vocab = model.get_input_embeddings().weight.shape[0]
    batches = dense_batches(vocab, n_batches, s.dense_rows, s.dense_length, device)
    dense_forward(model, batches[:2])
    _, seconds = timed(lambda: dense_forward(model, batches), device)
    name = f"baseline: dense {s.dense_rows} x {s.dense_length}, no padding (ceiling)"
    dense_flops = forward_flops(
        n_params, layers, hidden, [s.dense_length] * (n_batches * s.dense_rows)
    )
    rows.append(rate_row(name, n_batches * per_batch, seconds, dense_flops, peak, attention="sdpa"))
    print(f"  {name}: {seconds:.2f} s", flush=True)
    if attn != "sdpa":
        model.set_attn_implementation(attn)
    base_rate = rows[2]["tokens_per_s"]
    for row in rows:
        row["vs_baseline3"] = row["tokens_per_s"] / base_rate
    return rows, parity


def fit_takes_new_kwargs() -> list[str]:
    """The kwargs of NEW_FIT_KWARGS that ``prmkit.train.loop.fit`` does not take (yet)."""
    from prmkit.train.loop import fit

    params = inspect.signature(fit).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        from prmkit.train import trainer  # fit passes **engine on to trainer.fit_trainer

        params = inspect.signature(trainer.fit_trainer).parameters
    return [k for k in NEW_FIT_KWARGS if k not in params]


def train_row(
    name: str, r: TrainResult, n_params: int, layers: int, hidden: int, peak: float | None
) -> dict[str, Any]:
    w = r.window
    flops = 3 * (2.0 * n_params * w.tokens + 2.0 * layers * hidden * w.squares)
    return {
        "name": name,
        "steps_timed": w.steps,
        "tokens": w.tokens,
        "seconds": round(w.seconds, 4),
        "tokens_per_s": w.tokens / w.seconds if w.seconds else None,
        "mfu": mfu(flops, w.seconds, peak) if w.seconds else None,
        "peak_memory_gib": None if r.peak_memory_gib is None else round(r.peak_memory_gib, 2),
        "wall_seconds": round(r.wall_seconds, 2),
        "optimizer_steps_seen": r.steps_recorded,
        "tokens_counted_all_steps": r.tokens_counted,
        "note": r.note,
    }


def run_training(
    config: Any,
    tokenizer: Any,
    spec: PRMSpec,
    s: Settings,
    device: torch.device,
    data_dir: Path,
    peak: float | None,
    n_params: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The two training rows on the same examples (``n_params``: non-embedding parameters)."""
    n = s.train_steps * s.train_batch
    work = training_workload(spec, tokenizer, n, s.train_max_tokens, data_dir)
    expected = work.total_tokens
    print(
        f"training workload: {work.source}; {expected:,} tokens, "
        f"max {max(len(e.enc.input_ids) for e in work.examples):,}",
        flush=True,
    )
    bf16 = device.type == "cuda"
    attn = default_attention(device.type)

    def make_model(attn: str) -> Any:
        return build_model(config, device, torch.float32, attn).train()

    rows: list[dict[str, Any]] = []
    missing = fit_takes_new_kwargs()
    common = {"steps": s.train_steps, "batch_size": s.train_batch, "bf16": bf16, "device": device}
    if missing:
        print(
            f"  prmkit training row NOT RUN: prmkit.train.loop.fit does not take {missing} yet",
            flush=True,
        )
    else:
        r = prmkit_fit(
            lambda: PRM(spec=spec, tokenizer=tokenizer, model=make_model(attn)),
            work.examples,
            log=lambda line: print(f"    fit: {line}", flush=True),
            **common,
        )
        name = f"prmkit fit (packed, {'bf16' if bf16 else 'fp32'}, {attn})"
        rows.append(
            train_row(name, r, n_params, config.num_hidden_layers, config.hidden_size, peak)
        )
        print(f"  {name}: {r.window.seconds:.2f} s over {r.window.steps} steps", flush=True)
    r = trainer_baseline(
        lambda: make_model("sdpa"), work.examples, pad_id=tokenizer.pad_token_id, **common
    )
    name = f"baseline: transformers.Trainer (padded, {'bf16' if bf16 else 'fp32'}, sdpa)"
    rows.append(train_row(name, r, n_params, config.num_hidden_layers, config.hidden_size, peak))
    print(f"  {name}: {r.window.seconds:.2f} s over {r.window.steps} steps", flush=True)
    base = rows[-1]["tokens_per_s"]
    for row in rows:
        row["vs_baseline"] = row["tokens_per_s"] / base if base and row["tokens_per_s"] else None
        row["tokens_expected_all_steps"] = expected
    info = {"source": work.source, "traces": len(work.examples), "tokens": expected}
    if missing:
        info["prmkit_row_missing_fit_kwargs"] = missing
    return rows, info


def print_table(title: str, header: list[str], lines: list[list[str]]) -> None:
    widths = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print(
        "  "
        + " | ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for x in lines:
        print(
            "  "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(x, widths, strict=True))
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model, 64 traces (CPU smoke)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cuda, cpu")
    parser.add_argument("--traces", type=int, default=0, help="scoring traces (0: 2,000 / 64)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if args.device == "auto" else args.device)
    s = TINY if args.tiny else FULL
    if args.traces:
        s = Settings(**{**asdict(s), "traces": args.traces})
    machine = machine_info(device)
    print(f"machine: {machine}", flush=True)
    peak = peak_flops(machine.get("gpu")) if device.type == "cuda" else None
    print(f"peak bf16 FLOP/s for MFU: {'n/a' if peak is None else f'{peak:.3g}'}")

    tokenizer = load_tokenizer("smollm2")
    spec = PRMSpec.from_format("trl", head="tokcls", max_length=s.max_length)
    config = model_config(args.tiny, len(tokenizer))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    attn = default_attention(device.type)
    model = build_model(config, device, dtype, attn)
    n_all = sum(p.numel() for p in model.parameters())
    n_params = non_embedding_params(model)
    model_info = {
        "class": type(model).__name__,
        "params": n_all,
        "non_embedding_params": n_params,
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "vocab": config.vocab_size,
        "dtype": str(dtype).removeprefix("torch."),
        "attention_prmkit": attn,
        "attention_baselines": "sdpa",
    }
    print(
        f"model: {model_info['class']} random weights, {n_all / 1e6:,.1f}M params "
        f"({n_params / 1e6:,.1f}M non-embedding), {config.num_hidden_layers} layers, hidden "
        f"{config.hidden_size}, {model_info['dtype']} on {device}, attention {attn} (prmkit) / "
        "sdpa (baselines)",
        flush=True,
    )
    prm = PRM(spec=spec, tokenizer=tokenizer, model=model, source="random")

    t0 = time.perf_counter()
    work = scoring_workload(spec, tokenizer, s.traces, args.data_dir)
    encode_s = time.perf_counter() - t0
    workload_info = {
        "source": work.source,
        "traces": len(work.encs),
        "real": work.n_real,
        "synthetic": work.n_synthetic,
        "steps": work.n_steps,
        "tokens": work.total_tokens,
        "max_length": max(work.lengths),
        "mean_length": work.total_tokens / len(work.encs),
        "read_and_encode_seconds": round(encode_s, 2),
    }
    print(
        f"scoring workload: {len(work.encs):,} traces ({work.source}); "
        f"{work.total_tokens:,} tokens, {work.n_steps:,} steps, max length "
        f"{max(work.lengths):,}, mean {workload_info['mean_length']:.0f}; read + encode "
        f"{encode_s:.1f} s (not in the rows)",
        flush=True,
    )
    print(f"scoring (warm-up on {min(s.warmup_traces, len(work.encs))} traces, then one pass):")
    score_rows, parity = run_scoring(prm, work, s, peak)
    print_table(
        "scoring",
        ["scorer", "tokens/s", "MFU", "vs baseline 3", "seconds"],
        [
            [
                f"{i + 1}. {r['name']}",
                f"{r['tokens_per_s']:,.0f}",
                fmt_mfu(r["mfu"]),
                f"{r['vs_baseline3']:.2f}x",
                f"{r['seconds']:.2f}",
            ]
            for i, r in enumerate(score_rows)
        ],
    )
    precision = "bf16" if dtype == torch.bfloat16 else "fp32"
    print(
        f"  parity: max |prmkit packed - prmkit padded| step score = {parity['max_abs_diff']:.2e}"
        f" (limit {parity['limit']:.0e} in {precision}): {'ok' if parity['ok'] else 'FAILED'}; "
        f"mean {parity['mean_abs_diff']:.1e} over {workload_info['steps']:,} steps"
    )
    print(
        f"  info: max |baseline 3 - prmkit padded| = {parity['baseline3_vs_padded']:.2e} "
        "(kernels may differ)\n",
        flush=True,
    )
    del prm, model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()

    print("training:", flush=True)
    train_rows, train_info = run_training(
        config, tokenizer, spec, s, device, args.data_dir, peak, n_params
    )
    print_table(
        f"training ({s.train_steps} optimizer steps of {s.train_batch} traces; timed: the steps "
        "after the first)",
        ["trainer", "tokens/s", "MFU", "peak mem", "vs baseline", "steps", "seconds", "wall s"],
        [
            [
                r["name"],
                "n/a" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:,.0f}",
                fmt_mfu(r["mfu"]),
                "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f} GiB",
                "n/a" if r["vs_baseline"] is None else f"{r['vs_baseline']:.2f}x",
                str(r["steps_timed"]),
                f"{r['seconds']:.2f}",
                f"{r['wall_seconds']:.1f}",
            ]
            for r in train_rows
        ],
    )
    for r in train_rows:
        counted, expected = r["tokens_counted_all_steps"], r["tokens_expected_all_steps"]
        check = "" if counted == expected else "  <- differs"
        print(f"  {r['name']}: tokens in all forward passes {counted:,} of {expected:,}{check}")
        if r["note"]:
            print(f"    {r['note']}")
    if "prmkit_row_missing_fit_kwargs" in train_info:
        print(f"  prmkit row not run: fit lacks {train_info['prmkit_row_missing_fit_kwargs']}")
    wall = time.perf_counter() - start
    print(f"\nwall time: {wall:.1f} s")
    if args.json:
        from prmkit.io import write_json

        write_json(
            args.json,
            {
                "machine": machine,
                "peak_flops": peak,
                "settings": asdict(s),
                "model": model_info,
                "scoring_workload": workload_info,
                "scoring": score_rows,
                "parity": parity,
                "training_workload": train_info,
                "training": train_rows,
                "wall_seconds": round(wall, 1),
            },
        )
        print(f"wrote {args.json}")
    if not parity["ok"]:
        print(
            f"FAILED: prmkit packed and padded scores differ by {parity['max_abs_diff']:.2e} "
            f"(limit {parity['limit']:.0e})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
