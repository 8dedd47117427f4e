"""Load the policy: a base model with an optional LoRA adapter merged in for fast inference.

Example:
    >>> from prmkit.models import load_policy
    >>> from prmkit.policy import warmup
    >>> policy = load_policy("smollm2", adapter=warmup())  # doctest: +SKIP
    >>> policy.model  # a plain causal LM: no peft wrappers at decode time  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from prmkit.errors import ModelLoadError
from prmkit.models.loading import BaseModel, check_safetensors, load_base

__all__ = ["load_policy"]

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def load_policy(
    base: str = "smollm2",
    adapter: str | Path | None = None,
    *,
    dtype: str = "float32",
    device: str = "cpu",
) -> BaseModel:
    """Load ``base`` and merge the LoRA ``adapter`` into its weights.

    Args:
        base: ``"smollm2"`` or a local Hugging Face model directory.
        adapter: A peft adapter directory (e.g. the path :func:`prmkit.policy.warmup` returned),
            or ``None`` for the bare base model.
        dtype: Torch dtype name.
        device: Torch device string.

    Returns:
        A :class:`~prmkit.models.BaseModel` whose ``model`` is a plain causal LM in eval mode
        (``merge_and_unload``: decoding costs the same as the base model) and whose ``source``
        names the adapter too (``"<base path>+<adapter>"``).

    Raises:
        ModelLoadError: the base model or the adapter cannot be found, or holds no safetensors
            weights (prmkit never unpickles ``pytorch_model.bin`` / ``adapter_model.bin``).
        ConfigError: an unknown dtype or a device this machine lacks.
    """
    loaded = load_base(base, dtype=dtype, device=device)
    if adapter is None:
        return loaded
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").exists():
        raise ModelLoadError(
            "no LoRA adapter at this path",
            got=str(path),
            expected="a peft adapter directory with adapter_config.json",
            fix="run `prmkit warmup` and pass the folder it printed",
        )
    check_safetensors(path, ADAPTER_WEIGHTS)  # peft would fall back to unpickling a .bin
    from peft import PeftModel

    merged = PeftModel.from_pretrained(loaded.model, str(path)).merge_and_unload()
    merged.eval()
    return BaseModel(model=merged, tokenizer=loaded.tokenizer, source=f"{loaded.source}+{path}")
