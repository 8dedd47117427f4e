"""Benchmark: packed rows vs padded batches for one-pass scoring on the CPU, same model, same run.

Command (from the repo root):

    .venv/bin/python bench/score/bench_packing.py --traces 300 --rounds 2 --threads 2

SmolLM2-135M (the packaged GGUF) with a fresh 2-label token-classification head scores real
ProcessBench (MATH) traces in TRL's stepwise format, float32. Rows, interleaved per round so
machine noise hits all of them: ``PRMScorer`` padded (the CPU default, batch 8), packed with the
same batches, and packed under a token budget (up to 32 traces, 8,192 real tokens). Prints
tokens/s per row, the ratio against padded, the padding share, and the largest score difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from prmkit.models.precision import describe_machine
from prmkit.prm import PRMSpec
from prmkit.records import Trace
from prmkit.score import PRMScorer
from prmkit.train.loop import build_prm

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "processbench" / "math.json"


def load_traces(n: int) -> list[Trace]:
    rows = json.loads(DATA.read_text(encoding="utf-8"))[:n]
    return [
        Trace(id=str(r["id"]), problem_id=str(r["id"]), prompt=r["problem"], steps=r["steps"])
        for r in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print("machine:", describe_machine())
    prm = build_prm(PRMSpec.from_format("trl", head="tokcls", max_length=4096), "smollm2", seed=0)
    traces = load_traces(args.traces)
    rows = {
        "padded, batch 8 (CPU default)": PRMScorer(prm, batch_size=8, packing=False),
        "packed, batch 8": PRMScorer(prm, batch_size=8, packing=True),
        "packed, <= 32 traces / 8,192 tokens": PRMScorer(
            prm, batch_size=32, max_batch_tokens=8192, packing=True
        ),
    }
    encs = [rows["packed, batch 8"].encode(t) for t in traces]
    tokens = sum(len(e.input_ids) for e in encs)
    padded_tokens = sum(
        len(g) * max(len(encs[i].input_ids) for i in g)
        for g in rows["padded, batch 8 (CPU default)"].batches(encs)
    )
    print(
        f"{len(traces)} ProcessBench traces, {tokens:,} tokens "
        f"(max {max(len(e.input_ids) for e in encs)}); padded batches of 8 hold "
        f"{padded_tokens:,} token slots ({1 - tokens / padded_tokens:.1%} padding)"
    )
    rows["padded, batch 8 (CPU default)"].score_encoded(encs[:8])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in rows}
    scores: dict[str, list[list[float]]] = {}
    for _ in range(args.rounds):
        for name, scorer in rows.items():
            start = time.perf_counter()
            scores[name] = scorer.score_encoded(encs)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["padded, batch 8 (CPU default)"])
    ref = scores["padded, batch 8 (CPU default)"]
    print(f"{'row':<40} | tokens/s | vs padded | max |score diff|")
    for name in rows:
        t = statistics.median(times[name])
        gap = max(
            abs(a - b)
            for x, y in zip(ref, scores[name], strict=True)
            for a, b in zip(x, y, strict=True)
        )
        print(f"{name:<40} | {tokens / t:8,.0f} | {base / t:8.2f}x | {gap:.1e}")


if __name__ == "__main__":
    main()
