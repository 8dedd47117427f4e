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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from prmkit.cluster.config import RayConfig
from prmkit.config import Dtype, check_ranges, option
from prmkit.errors import ConfigError
from prmkit.records import ScoredTrace, Trace

if TYPE_CHECKING:
    from prmkit.score.distributed import RayScoreResult

__all__ = ["ScoreConfig", "score", "score_with_report"]


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
    ray: RayConfig = field(
        default_factory=RayConfig,
        metadata={
            "help": "scale out on Ray: ray.address=auto (--ray auto) scores shards on PRM "
            "replicas; with out set, finished shards are kept in <out>.parts until the output "
            "is written, so a rerun after a crash resumes"
        },
    )
    shard_traces: int = option(256, "--ray: traces per worker call (one part file each)", ge=1)

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
    return score_with_report(cfg, traces)[0]


def score_with_report(
    cfg: ScoreConfig, traces: Sequence[Trace] | None = None
) -> tuple[list[ScoredTrace], RayScoreResult | None]:
    """:func:`score`, plus what the Ray workers did (``None`` without ``ray.address``)."""
    from prmkit.io import read_json
    from prmkit.prm.spec import PRMSpec
    from prmkit.records import read_nonempty, write_records
    from prmkit.score.distributed import ScorerSpec

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
    scorer_spec = ScorerSpec(
        prm=cfg.prm,
        spec=read_json(cfg.spec) if cfg.spec else None,
        device=cfg.device,
        dtype=cfg.dtype,
        attn_implementation=cfg.attn_implementation,
        trust_remote_code=cfg.trust_remote_code,
        batch_size=cfg.batch_size,
        max_batch_tokens=cfg.max_batch_tokens or None,
        packing=cfg.packing,
    )
    if cfg.spec:  # a bad spec file fails here, before any model or worker loads
        PRMSpec.from_dict(scorer_spec.spec, where=cfg.spec)  # type: ignore[arg-type]
    if cfg.ray.enabled:
        from prmkit.score.distributed import finish_parts, score_on_ray

        result = score_on_ray(
            list(traces),
            scorer_spec,
            address=str(cfg.ray.address),
            ray_cfg=cfg.ray,
            shard_traces=cfg.shard_traces,
            out=cfg.out,
        )
        if cfg.out:
            write_records(cfg.out, result.records)
            finish_parts(cfg.out)
        return result.records, result
    scorer = scorer_spec.load()
    scored = scorer.score_records(traces, prm_name=cfg.prm)
    if cfg.out:
        write_records(cfg.out, scored)
    return scored, None
