"""The score stage: one forward pass per trace, batched, ScoredTrace records out.

Example:
    >>> from prmkit.score import ScoreConfig, score
    >>> cfg = ScoreConfig(prm="runs/prm", traces="traces.jsonl", out="scored.jsonl")
    >>> scored = score(cfg)  # doctest: +SKIP
    >>> scored[0].step_scores, scored[0].meta["prm_aggregates"]["min"]  # doctest: +SKIP
    ([0.93, 0.12], 0.12)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from prmkit.config import Dtype, check_ranges, option
from prmkit.errors import ConfigError
from prmkit.records import ScoredTrace, Trace

__all__ = ["ScoreConfig", "score"]


@dataclass
class ScoreConfig:
    """Settings of ``prmkit score`` and :func:`score`."""

    prm: str = option("", "PRM checkpoint directory (with prm_spec.json)")
    traces: str = option("", "input Trace/LabeledTrace records (.jsonl or .parquet)")
    out: str = option("", "output ScoredTrace records (.jsonl or .parquet; '' = not written)")
    batch_size: int = option(8, "traces per forward pass (length-sorted)", ge=1)
    max_batch_tokens: int = option(
        0, "cap on tokens per batch: padded, or real when packed (0 = none)", ge=0
    )
    packing: bool | Literal["auto"] = option(
        "auto",
        "pack traces into rows without padding (same scores); auto = where the model supports it",
    )
    device: str = option("cpu", "torch device (cpu, cuda, cuda:1, ...)")
    dtype: Dtype = option(
        "auto", "torch dtype; auto = bfloat16 where the device computes it natively, else float32"
    )
    attn_implementation: str = option(
        "auto", "transformers attention: auto (flash_attention_2 on CUDA if installed, else sdpa)"
    )
    trust_remote_code: bool = option(False, "allow a checkpoint's own model code (opt-in)")
    spec: str = option(
        "",
        "a prm_spec.json to use instead of the checkpoint's own (for a plain "
        "local model directory such as a Math-Shepherd or Qwen2.5-Math-PRM copy)",
    )

    def __post_init__(self) -> None:
        check_ranges(self)


def score(cfg: ScoreConfig, traces: Sequence[Trace] | None = None) -> list[ScoredTrace]:
    """Score every step of each trace with the PRM ``cfg.prm``; write ``cfg.out`` when set.

    Args:
        cfg: The settings.
        traces: Trace (or LabeledTrace) records (default: read ``cfg.traces``).

    Returns:
        One :class:`~prmkit.records.ScoredTrace` per trace, in order: the step scores, the
        aggregates (min, prod, last, mean) in ``meta["prm_aggregates"]``, labels kept.

    Raises:
        ConfigError: no PRM, or neither ``traces`` nor ``cfg.traces``.
        DataFormatError: an empty or malformed traces file, a bad ``spec`` file, a trace longer
            than the spec's ``max_length``.
        ModelLoadError: the checkpoint cannot be loaded.

    Example:
        >>> scored = score(ScoreConfig(prm="runs/prm"), traces)  # doctest: +SKIP
    """
    from prmkit.records import read_nonempty, write_records
    from prmkit.score.scorer import PRMScorer

    for key, given in (("prm", cfg.prm), ("traces", traces is not None or cfg.traces)):
        if not given:
            raise ConfigError(
                f"missing '{key}'", got="", expected="a path", fix=f"pass --{key} PATH"
            )
    if traces is None:
        traces = read_nonempty(
            cfg.traces,
            Trace,
            noun="traces",
            fix="pass the output of prmkit generate (did an earlier stage write nothing?)",
        )
    spec = None
    if cfg.spec:
        from prmkit.io import read_json
        from prmkit.prm.spec import PRMSpec

        spec = PRMSpec.from_dict(read_json(cfg.spec), where=cfg.spec)
    scorer = PRMScorer.from_checkpoint(
        cfg.prm,
        spec=spec,
        device=cfg.device,
        dtype=cfg.dtype,
        trust_remote_code=cfg.trust_remote_code,
        attn_implementation=cfg.attn_implementation,
        batch_size=cfg.batch_size,
        max_batch_tokens=cfg.max_batch_tokens or None,
        packing=cfg.packing,
    )
    scored = scorer.score_records(traces, prm_name=cfg.prm)
    if cfg.out:
        write_records(cfg.out, scored)
    return scored
