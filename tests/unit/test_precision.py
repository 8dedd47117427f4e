"""bf16 only where the hardware computes it natively; the warm-up recipe follows the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from prmkit.config import load_config
from prmkit.errors import ConfigError
from prmkit.models import precision
from prmkit.policy.cli import WarmupConfig

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "warmup.yaml"


@pytest.fixture
def cpu(monkeypatch):
    """Pretend the CPU has exactly the given flags."""

    def set_flags(**flags: bool) -> None:
        monkeypatch.setattr(precision, "_cpu_flags", lambda: {"cpu_name": "test CPU", **flags})

    return set_flags


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ({"avx2": True}, False),  # an AVX2-only laptop or cloud VM: bf16 is emulated
        ({"avx2": True, "avx512_f": True}, False),  # AVX-512 without BF16 (e.g. Skylake-X)
        ({"avx512_f": True, "avx512_bf16": True}, True),  # Cooper Lake, Zen 4
        ({"avx512_f": True, "amx_bf16": True}, True),  # Sapphire Rapids
    ],
)
def test_auto_picks_bf16_only_where_native(cpu, flags, native):
    cpu(**flags)
    assert precision.native_bf16() is native
    assert precision.resolve_bf16("auto") is native
    assert precision.describe_machine()["native_bf16_cpu"] is native


def test_explicit_choice_overrides_the_machine(cpu):
    cpu(avx2=True)
    assert precision.resolve_bf16(True) is True
    cpu(avx512_bf16=True)
    assert precision.resolve_bf16(False) is False


def test_bad_value_is_a_config_error():
    with pytest.raises(ConfigError, match="bf16"):
        precision.resolve_bf16("sometimes")  # type: ignore[arg-type]


def test_the_warmup_recipe_never_forces_emulated_bf16(cpu):
    """The shipped recipe trained in emulated bf16 on AVX2 machines (hours instead of minutes)."""
    cfg = load_config(WarmupConfig, RECIPE)
    cpu(avx2=True)
    assert precision.resolve_bf16(cfg.bf16) is False
    cpu(avx2=True, avx512_f=True, avx512_bf16=True)
    assert precision.resolve_bf16(cfg.bf16) is True


def test_warmup_config_accepts_auto_and_bools_only():
    assert load_config(WarmupConfig, None, ["bf16=auto"]).bf16 == "auto"
    assert load_config(WarmupConfig, None, ["bf16=false"]).bf16 is False
    with pytest.raises(ConfigError, match="bf16"):
        load_config(WarmupConfig, None, ["bf16=maybe"])
