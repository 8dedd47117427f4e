"""Precision defaults that follow the machine: bf16 only where the hardware computes it natively.

On a CPU without AVX512-BF16 or AMX (every AVX2-only machine, many AVX-512 ones), PyTorch
emulates bfloat16 matmuls and a bf16-autocast training step is ~20x slower than float32. So
``"auto"`` picks bf16 on a CUDA device that supports it and on a CPU that reports
``avx512_bf16`` or ``amx_bf16``, and float32 everywhere else.

Example:
    >>> resolve_bf16(False)
    False
    >>> resolve_bf16("auto") == native_bf16()
    True
"""

from __future__ import annotations

import platform
from functools import lru_cache
from typing import Any, Literal

from prmkit.errors import ConfigError

__all__ = [
    "cpu_capability",
    "default_attention",
    "describe_machine",
    "native_bf16",
    "resolve_bf16",
]

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""CPU features that make bfloat16 matmuls native rather than emulated."""


@lru_cache(maxsize=1)
def _cpu_flags() -> dict[str, Any]:
    """The CPU features torch detected (cpuinfo), or those of ``/proc/cpuinfo`` as a fallback."""
    import torch

    try:
        return dict(torch._C._cpu._get_cpu_capability())
    except (AttributeError, RuntimeError):  # an older or newer torch without the private hook
        flags: dict[str, Any] = {}
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("flags"):
                        flags = {name: True for name in line.split(":", 1)[1].split()}
                        break
                    if line.startswith("model name"):
                        flags["cpu_name"] = line.split(":", 1)[1].strip()
        except OSError:
            pass
        return flags


def cpu_capability() -> str:
    """The vector ISA torch's CPU kernels use: ``"AVX2"``, ``"AVX512"``, ``"DEFAULT"``, ..."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def native_bf16(device: str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively (CUDA: ``is_bf16_supported``)."""
    if device.startswith("cuda"):
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    flags = _cpu_flags()
    return any(bool(flags.get(name)) for name in BF16_FLAGS)


def resolve_bf16(value: bool | Literal["auto"], device: str = "cpu") -> bool:
    """``True``/``False`` as given; ``"auto"`` = :func:`native_bf16` of ``device``.

    Raises:
        ConfigError: ``value`` is neither a bool nor ``"auto"``.
    """
    if isinstance(value, bool):
        return value
    if value == "auto":
        return native_bf16(device)
    raise ConfigError(
        "bad bf16 setting",
        got=value,
        expected="true, false or 'auto'",
        fix="use bf16=auto (bf16 only where the hardware computes it natively)",
    )


def default_attention(device: str = "cpu") -> str:
    """transformers' attention kernel for ``device``: ``flash_attention_2`` on CUDA when the
    ``flash_attn`` package is installed (varlen attention: packed rows cost no cross-trace
    work), else ``sdpa`` (packed rows get a block-causal mask)."""
    import importlib.util

    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def describe_machine() -> dict[str, Any]:
    """CPU model, torch's CPU capability and the bf16-relevant flags (for benchmark records)."""
    import torch

    flags = _cpu_flags()
    info: dict[str, Any] = {
        "cpu": flags.get("cpu_name") or platform.processor() or platform.machine(),
        "cpu_capability": cpu_capability(),
        "avx512_f": bool(flags.get("avx512_f") or flags.get("avx512f")),
        "avx512_bf16": bool(flags.get("avx512_bf16")),
        "amx_bf16": bool(flags.get("amx_bf16")),
        "native_bf16_cpu": native_bf16("cpu"),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
