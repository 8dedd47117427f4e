"""The traces bench/gpu/run.py scores and trains on.

Scoring: ProcessBench items (``<data>/processbench/*.json``, read with
:mod:`prmkit.formats.processbench`), first ``n`` in file order, encoded with the PRM's spec
(:func:`prmkit.prm.formats.encode`, the function the scorer and training use; with a
``max_length`` below a trace's length the trace is cut there). When fewer than ``n`` exist,
synthetic traces fill up: each copies the token length, prompt and step-tag positions of a real
trace drawn at random (seeded) and fills its step text with random token ids, so the lengths
follow the observed distribution. Without a ProcessBench folder every trace is synthetic,
drawn from :data:`DEFAULT_LENGTHS`.

Training: PRMBench rows (``<data>/prmbench/*.jsonl``), else ProcessBench items, else synthetic
traces; a seeded sample of traces of at most ``max_tokens`` tokens, turned into examples by
:func:`prmkit.train.collate.build_examples` with ``until_first_error=True`` (1.0 before the first
error, 0.0 at it, later steps not trained).

Example:
    >>> work = scoring_workload(spec, tok, 2000, Path("../shared/data"))  # doctest: +SKIP
    >>> work.n_real, work.n_synthetic, work.total_tokens  # doctest: +SKIP
    (1000, 1000, 1270796)
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prmkit.formats import prmbench, processbench
from prmkit.formats.common import ConversionReport
from prmkit.prm.formats import Encoded, encode
from prmkit.prm.spec import PRMSpec
from prmkit.records import LabeledTrace
from prmkit.train.collate import Example, build_examples

__all__ = [
    "DEFAULT_LENGTHS",
    "ScoringWorkload",
    "TrainingWorkload",
    "scoring_workload",
    "training_workload",
]

DEFAULT_LENGTHS = {
    "median_tokens": 540,
    "log_sigma": 0.59,
    "min_tokens": 64,
    "prompt_tokens": 53,
    "step_tokens": (40, 130),
}
"""Synthetic traces without data: total length lognormal (median 540 tokens, sigma 0.59 in log
space, cut to [64, max_length]); the first 53 tokens (at most a quarter) are the prompt; a step
tag closes every 40-130 tokens (uniform) and the last token. These match ProcessBench math.json
under the SmolLM2 tokenizer (median 558, geometric mean 540, log-sigma 0.59, prompt median 53,
about 87 tokens per step)."""

FIRST_RANDOM_ID = 1000
"""Random step text uses token ids from here up to the vocabulary size (no special tokens)."""


@dataclass(frozen=True)
class ScoringWorkload:
    """Encoded traces to score, and where they came from."""

    encs: list[Encoded]
    n_real: int
    n_synthetic: int
    source: str

    @property
    def lengths(self) -> list[int]:
        return [len(e.input_ids) for e in self.encs]

    @property
    def total_tokens(self) -> int:
        return sum(self.lengths)

    @property
    def n_steps(self) -> int:
        return sum(len(e.step_positions) for e in self.encs)


@dataclass(frozen=True)
class TrainingWorkload:
    """Training examples (labels at step tags), and where they came from."""

    examples: list[Example]
    source: str

    @property
    def total_tokens(self) -> int:
        return sum(len(e.enc.input_ids) for e in self.examples)


def _tag_id(spec: PRMSpec, tokenizer: Any) -> int:
    return int(tokenizer.encode(spec.step_tag, add_special_tokens=False)[-1])


def _random_ids(rng: random.Random, n: int, vocab: int, avoid: int) -> list[int]:
    ids = rng.choices(range(FIRST_RANDOM_ID, vocab), k=n)
    return [i + 1 if i == avoid else i for i in ids]


def synthetic_like(
    templates: Sequence[Encoded], n: int, vocab: int, tag_id: int, seed: int
) -> list[Encoded]:
    """``n`` traces, each with the length, prompt and tag positions of a random template."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        t = rng.choice(templates)
        ids = t.input_ids[: t.content_start] + _random_ids(
            rng, len(t.input_ids) - t.content_start, vocab, tag_id
        )
        for p in t.step_positions:
            ids[p] = t.input_ids[p]
        out.append(Encoded(ids, list(t.step_positions), t.content_start, len(t.step_positions)))
    return out


def synthetic_default(
    n: int, vocab: int, tag_id: int, max_length: int, seed: int, bos_id: int | None
) -> list[Encoded]:
    """``n`` traces drawn from :data:`DEFAULT_LENGTHS`."""
    rng = random.Random(seed)
    d = DEFAULT_LENGTHS
    lo, hi = d["step_tokens"]
    out = []
    for _ in range(n):
        length = rng.lognormvariate(math.log(d["median_tokens"]), d["log_sigma"])
        length = int(min(max(length, d["min_tokens"]), max_length))
        start = min(d["prompt_tokens"], length // 4)
        ids = _random_ids(rng, length, vocab, tag_id)
        if bos_id is not None:
            ids[0] = bos_id
        positions, at = [], start
        while True:
            at += rng.randint(lo, hi)
            if at >= length - 1:
                break
            positions.append(at - 1)
        positions.append(length - 1)
        for p in positions:
            ids[p] = tag_id
        out.append(Encoded(ids, positions, start, len(positions)))
    return out


def _data_files(data_dir: Path, folder: str, pattern: str) -> list[Path]:
    return sorted((data_dir / folder).glob(pattern))


def scoring_workload(
    spec: PRMSpec, tokenizer: Any, n: int, data_dir: Path, seed: int = 0
) -> ScoringWorkload:
    """``n`` encoded traces: ProcessBench items first, then synthetic ones (see the module)."""
    vocab, tag = len(tokenizer), _tag_id(spec, tokenizer)
    real: list[Encoded] = []
    cut = 0
    files = _data_files(data_dir, "processbench", "*.json")
    for path in files:
        for trace in processbench.read(path, report=ConversionReport()):
            if len(real) == n:
                break
            enc = encode(spec, tokenizer, trace.prompt, trace.steps)
            cut += enc.truncated_steps > 0
            if enc.step_positions:
                real.append(enc)
    names = ", ".join(p.name for p in files)
    if real:
        synth = synthetic_like(real, n - len(real), vocab, tag, seed)
        source = f"ProcessBench ({names}): {len(real)} real"
        if cut:
            source += f" ({cut} cut to {spec.max_length} tokens)"
        if synth:
            source += (
                f", {len(synth)} synthetic (lengths and step-tag positions of real traces drawn "
                f"with seed {seed}, random token ids)"
            )
    else:
        synth = synthetic_default(n, vocab, tag, spec.max_length, seed, tokenizer.bos_token_id)
        source = (
            f"no ProcessBench files under {data_dir / 'processbench'}: {n} synthetic traces "
            f"(lognormal lengths, median {DEFAULT_LENGTHS['median_tokens']} tokens, "
            f"log-sigma {DEFAULT_LENGTHS['log_sigma']}, seed {seed})"
        )
    return ScoringWorkload(real + synth, len(real), len(synth), source)


def _read_labeled(data_dir: Path) -> tuple[list[LabeledTrace], str]:
    report = ConversionReport()
    if _data_files(data_dir, "prmbench", "*.jsonl"):
        traces = list(prmbench.read(data_dir / "prmbench", report=report))
        return traces, f"PRMBench ({len(traces)} rows read)"
    files = _data_files(data_dir, "processbench", "*.json")
    traces = [t for p in files for t in processbench.read(p, report=report)]
    return traces, f"ProcessBench ({len(traces)} items read)" if traces else ""


def training_workload(
    spec: PRMSpec, tokenizer: Any, n: int, max_tokens: int, data_dir: Path, seed: int = 0
) -> TrainingWorkload:
    """``n`` training examples of at most ``max_tokens`` tokens (see the module)."""
    traces, source = _read_labeled(data_dir)
    rng = random.Random(seed)
    rng.shuffle(traces)
    examples: list[Example] = []
    for trace in traces:
        if len(examples) == n:
            break
        enc = encode(spec, tokenizer, trace.prompt, trace.steps)
        if enc.truncated_steps or len(enc.input_ids) > max_tokens:
            continue
        examples.extend(build_examples(spec, tokenizer, [trace], until_first_error=True)[0])
    if examples:
        return TrainingWorkload(
            examples,
            f"{source}: {len(examples)} traces of <= {max_tokens} tokens drawn with seed {seed}, "
            "labels 1 before the first error, 0 at it, later steps untrained",
        )
    vocab, tag = len(tokenizer), _tag_id(spec, tokenizer)
    encs = synthetic_default(n, vocab, tag, max_tokens, seed, tokenizer.bos_token_id)
    for i, enc in enumerate(encs):
        steps = len(enc.step_positions)
        first = rng.randrange(-1, steps)
        kept = steps if first < 0 else first + 1
        targets = [1.0] * kept if first < 0 else [1.0] * first + [0.0]
        examples.append(
            Example(f"synthetic-{i}", enc, list(range(kept)), targets, float(first < 0))
        )
    return TrainingWorkload(
        examples,
        f"no PRMBench or ProcessBench files under {data_dir}: {n} synthetic traces "
        f"(lognormal lengths as in the scoring fill, cut to {max_tokens} tokens; a seeded first "
        "error, labels 1 before it, 0 at it)",
    )
