"""The warm-up stage: train (or fetch from the cache) the default policy's LoRA adapter, then
evaluate it on held-out 4-step problems with the exact checker.

:func:`run_warmup` is what ``prmkit warmup`` runs; :func:`warmup_from_config` is the training
half alone (what recipes call before generating). Only the training keys of
:class:`WarmupConfig` reach :func:`prmkit.policy.lora.warmup` and its cache key; the ``eval_*``
keys, ``out`` and ``threads`` do not, so changing them never retrains.

Example:
    >>> from prmkit.config import load_config
    >>> cfg = load_config(WarmupConfig, "recipes/warmup.yaml", ["eval_problems=8"])
    >>> result = run_warmup(cfg)  # doctest: +SKIP
    >>> result.adapter, result.evaluation.pass_at_1  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prmkit.config import check_ranges, option
from prmkit.errors import ConfigError
from prmkit.policy.lora import DEFAULT_TARGETS

if TYPE_CHECKING:
    from prmkit.policy.evaluate import PolicyEval

__all__ = ["WarmupConfig", "WarmupResult", "run_warmup", "warmup_from_config"]


@dataclass
class WarmupConfig:
    """Settings of ``prmkit warmup`` (training keys form the cache key; ``eval_*`` do not)."""

    base: str = option("smollm2", "base model: 'smollm2' or a local Hugging Face directory")
    n_examples: int = option(400, "gold worked solutions to train on", ge=1)
    min_steps: int = option(2, "fewest operations per training problem", ge=1)
    max_steps: int = option(6, "most operations per training problem", ge=1)
    start_range: list[int] = option([2, 30], "range of a training problem's starting quantity")
    add_range: list[int] = option([1, 30], "range of +/- operands in training problems")
    mul_range: list[int] = option([2, 5], "range of * and / operands in training problems")
    max_value: int = option(300, "largest quantity in a training problem", ge=1)
    ops: list[str] = option(["+", "-", "*"], "operations of the training problems")
    system: str | None = option(
        None,
        "system message of the chat template (null: the "
        "template's default, what generators use by default)",
    )
    lora_r: int = option(16, "LoRA rank", ge=1)
    lora_alpha: int = option(32, "LoRA alpha (scale = alpha / r)", ge=1)
    lora_dropout: float = option(0.0, "LoRA dropout", ge=0, lt=1)
    lora_targets: list[str] = option(list(DEFAULT_TARGETS), "modules that get an adapter")
    lora_layers: int = option(0, "adapt only the top k transformer blocks (0 = all)", ge=0)
    lr: float = option(1e-3, "peak learning rate (AdamW, linear warm-up then linear decay)", gt=0)
    batch_size: int = option(8, "examples per optimizer step (length-bucketed)", ge=1)
    epochs: int = option(1, "passes over the training examples", ge=1)
    warmup_steps: int = option(5, "learning-rate warm-up steps", ge=0)
    max_seq_len: int = option(512, "longest training example allowed (tokens)", ge=1)
    seed: int = option(0, "seed of the training problems, the adapter init and batch order", ge=0)
    bf16: bool | Literal["auto"] = option(
        "auto",
        "bfloat16 autocast for training matmuls; auto = only where the CPU computes bf16 "
        "natively (AVX512-BF16/AMX; emulated bf16 is ~20x slower than float32)",
    )
    threads: int = option(0, "torch threads (0 = torch's default); not part of the cache key", ge=0)
    cache_dir: str | None = option(None, "adapter cache folder (null: <prmkit cache>/adapters)")
    force: bool = option(False, "retrain even when the adapter is cached")
    eval_problems: int = option(24, "held-out problems to evaluate on (0 = skip evaluation)", ge=0)
    eval_steps: int = option(4, "operations per held-out problem", ge=1)
    eval_seed: int = option(1000, "seed of the held-out problems (must differ from seed)", ge=0)
    eval_k: int = option(16, "samples per held-out problem (pass@k, maj@k)", ge=1)
    eval_temperature: float = option(0.7, "sampling temperature of the evaluation", ge=0)
    eval_max_new_tokens: int = option(192, "longest sampled solution (tokens)", ge=1)
    eval_batch_size: int = option(64, "rows decoded together in the evaluation", ge=1)
    out: str | None = option(None, "write the evaluation summary as JSON here")

    def __post_init__(self) -> None:
        check_ranges(self)


# keys that never reach prmkit.policy.lora.warmup (``base`` is its positional argument)
_EVAL_KEYS = {
    "base",
    "eval_problems",
    "eval_steps",
    "eval_seed",
    "eval_k",
    "eval_temperature",
    "eval_max_new_tokens",
    "eval_batch_size",
    "out",
}


@dataclass
class WarmupResult:
    """What :func:`run_warmup` returns.

    Attributes:
        adapter: The adapter directory (peft files plus ``warmup.json``).
        evaluation: The held-out evaluation (``None`` when ``eval_problems=0``).
    """

    adapter: Path
    evaluation: PolicyEval | None

    def as_dict(self) -> dict[str, Any]:
        """``{"adapter": path, **evaluation}``: what ``out`` holds."""
        return {
            "adapter": str(self.adapter),
            **(self.evaluation.as_dict() if self.evaluation else {}),
        }


def warmup_from_config(cfg: WarmupConfig, *, progress: bool = True) -> Path:
    """Train or fetch the adapter of ``cfg`` (only its training keys matter); return its dir.

    Example:
        >>> from prmkit.config import load_config
        >>> adapter = warmup_from_config(load_config(WarmupConfig, "recipes/warmup.yaml"))  # doctest: +SKIP
    """
    from prmkit.policy.lora import warmup

    values = asdict(cfg)
    train_kwargs = {f.name: values[f.name] for f in fields(cfg) if f.name not in _EVAL_KEYS}
    return warmup(cfg.base, progress=progress, **train_kwargs)


def run_warmup(cfg: WarmupConfig, *, progress: bool = True) -> WarmupResult:
    """Train or fetch the adapter, then evaluate it; write ``cfg.out`` (JSON) when set.

    Args:
        cfg: The stage config.
        progress: Show the training progress bar.

    Returns:
        The adapter directory and the held-out evaluation.

    Raises:
        ConfigError: ``eval_seed`` equals ``seed`` (held-out problems would be training
            problems), or a bad training setting.
        ModelLoadError: the base model cannot be found.
    """
    if cfg.eval_problems and cfg.eval_seed == cfg.seed:
        raise ConfigError(
            "held-out problems would be training problems",
            got=cfg.eval_seed,
            expected=f"an eval_seed other than seed={cfg.seed}",
            fix="pick another eval_seed",
        )
    adapter = warmup_from_config(cfg, progress=progress)
    if not cfg.eval_problems:
        return WarmupResult(adapter, None)
    from prmkit.generate import TransformersGenerator
    from prmkit.models import load_policy
    from prmkit.policy.evaluate import evaluate_policy, heldout_problems

    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    policy = load_policy(cfg.base, adapter)
    generator = TransformersGenerator(
        policy.model, policy.tokenizer, system=cfg.system, batch_size=cfg.eval_batch_size
    )
    problems = heldout_problems(cfg.eval_problems, seed=cfg.eval_seed, n_steps=cfg.eval_steps)
    evaluation = evaluate_policy(
        generator,
        problems,
        k=cfg.eval_k,
        temperature=cfg.eval_temperature,
        max_new_tokens=cfg.eval_max_new_tokens,
    )
    result = WarmupResult(adapter, evaluation)
    if cfg.out:
        from prmkit.io import write_json

        write_json(Path(cfg.out), result.as_dict())
    return result
